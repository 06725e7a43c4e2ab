//! The outbound HTTP port over reqwest, with the guard of
//! [`latchkey_core::outbound`]: the only place latchkey builds an HTTP client.
//! HTTPS trusts the system's roots and, when the operator gives a CA file
//! (`--outbound-ca-file`), its certificates too; HTTP/2 is negotiated by
//! ALPN (APNs speaks nothing else).
//!
//! The guard holds for the address actually connected to: names are
//! resolved by our own resolver, which refuses the whole name when any of
//! its addresses is refused, and the connection is made only to what it
//! returned (a name that resolves to something else later is checked
//! again then). Addresses written in the URL are checked before anything is
//! sent. Redirects are never followed and proxies from the environment are
//! not used (the proxy would make the connection, unguarded).

use std::net::SocketAddr;
use std::time::Duration;

use latchkey_core::outbound::{
    HttpClient, NetworkAccess, OutboundError, Request, Response, refused_name,
};

/// One reqwest client for each [`NetworkAccess`] (their resolvers differ),
/// each keeping its own pool of connections.
pub struct ReqwestClient {
    clients: [reqwest::Client; 4],
}

impl ReqwestClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        Self::with_roots(&[])
    }

    /// A client that trusts the CA certificates of the PEM file at `path`
    /// besides the system's (a provider behind a private CA).
    pub fn with_ca_file(path: &std::path::Path) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
        if roots.is_empty() {
            return Err(format!("{}: holds no certificate", path.display()));
        }
        Self::with_roots(&roots).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn with_roots(roots: &[reqwest::Certificate]) -> Result<Self, reqwest::Error> {
        let build = |private_networks, loopback| {
            guarded_client(
                NetworkAccess {
                    private_networks,
                    loopback,
                },
                roots,
            )
        };
        Ok(Self {
            clients: [
                build(false, false)?,
                build(true, false)?,
                build(false, true)?,
                build(true, true)?,
            ],
        })
    }

    fn client(&self, access: NetworkAccess) -> &reqwest::Client {
        &self.clients[usize::from(access.private_networks) + 2 * usize::from(access.loopback)]
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the outbound port's adapter is where HTTP clients are built"
)]
fn guarded_client(
    access: NetworkAccess,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(GuardedResolver { access })
        .tls_certs_merge(roots.iter().cloned())
        .build()
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, request: Request) -> Result<Response, OutboundError> {
        let url = reqwest::Url::parse(&request.url).map_err(|_| OutboundError::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::InvalidUrl);
        }
        match url.host() {
            None => return Err(OutboundError::InvalidUrl),
            Some(url::Host::Domain(name)) => {
                if refused_name(name) {
                    return Err(OutboundError::Refused(format!(
                        "{name} is a cloud metadata name"
                    )));
                }
            }
            Some(url::Host::Ipv4(ip)) => check_literal(request.access, ip.into())?,
            Some(url::Host::Ipv6(ip)) => check_literal(request.access, ip.into())?,
        }
        let cap = request.max_response_bytes;
        let exchange = async {
            let mut response = self
                .client(request.access)
                .request(request.method, url)
                .headers(request.headers)
                .body(request.body)
                .timeout(request.deadline)
                .send()
                .await
                .map_err(|e| outbound_error(&e))?;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| outbound_error(&e))? {
                if body.len() + chunk.len() > cap {
                    return Err(OutboundError::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status: response.status(),
                headers: response.headers().clone(),
                body,
            })
        };
        tokio::time::timeout(request.deadline, exchange)
            .await
            .map_err(|_| OutboundError::Timeout)?
    }
}

/// An address written in the URL, checked before anything is sent.
fn check_literal(access: NetworkAccess, ip: std::net::IpAddr) -> Result<(), OutboundError> {
    access
        .permits(ip)
        .map_err(|class| OutboundError::Refused(format!("{ip} is {}", class.describe())))
}

/// The port's error for a reqwest error; a refusal of our resolver keeps its
/// reason.
fn outbound_error(error: &reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return OutboundError::Refused(refusal.0.clone());
        }
        source = e.source();
    }
    if error.is_timeout() {
        OutboundError::Timeout
    } else if error.is_connect() {
        OutboundError::Connect
    } else if error.is_builder() {
        OutboundError::InvalidUrl
    } else {
        OutboundError::Interrupted
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

/// Resolves with the system's resolver, then refuses the name when any of
/// its addresses is one `access` does not permit.
struct GuardedResolver {
    access: NetworkAccess,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let access = self.access;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if refused_name(&host) {
                return Err(Box::new(Refusal(format!("{host} is a cloud metadata name"))) as _);
            }
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                access.permits(addr.ip()).map_err(|class| {
                    Refusal(format!(
                        "{host} resolves to {}, which is {}",
                        addr.ip(),
                        class.describe()
                    ))
                })?;
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, access: NetworkAccess) -> Request {
        Request::new(http::Method::GET, url, Duration::from_secs(2), access)
    }

    async fn refusal(url: &str, access: NetworkAccess) -> String {
        match ReqwestClient::new().unwrap().send(get(url, access)).await {
            Err(OutboundError::Refused(why)) => why,
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn addresses_in_the_url_are_checked_before_sending() {
        let public = NetworkAccess::PUBLIC;
        assert!(
            refusal("http://169.254.169.254/latest/meta-data/", public)
                .await
                .contains("metadata")
        );
        assert!(
            refusal("http://[::ffff:169.254.169.254]/", public)
                .await
                .contains("metadata")
        );
        assert!(
            refusal("http://[fd00:ec2::254]/", public)
                .await
                .contains("metadata")
        );
        assert!(
            refusal("http://10.0.0.1/", public)
                .await
                .contains("private")
        );
        assert!(
            refusal("http://127.0.0.1:9/", public)
                .await
                .contains("loopback")
        );
        assert!(
            refusal("http://[::1]:9/", public)
                .await
                .contains("loopback")
        );
        assert!(
            refusal(
                "http://metadata.google.internal/computeMetadata/v1/",
                public
            )
            .await
            .contains("metadata")
        );
        let all = NetworkAccess {
            private_networks: true,
            loopback: true,
        };
        assert!(
            refusal("http://169.254.169.254/", all)
                .await
                .contains("metadata")
        );
        assert!(
            refusal("http://0.0.0.0:9/", all)
                .await
                .contains("unspecified")
        );
    }

    #[tokio::test]
    async fn names_are_checked_where_they_resolve() {
        // `localhost` resolves to loopback: refused by the resolver, with
        // its reason, unless loopback is allowed.
        let why = refusal("http://localhost:9/", NetworkAccess::PUBLIC).await;
        assert!(
            why.contains("localhost resolves to") && why.contains("loopback"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn allowed_loopback_is_reached_and_the_answer_capped() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = "x".repeat(1000);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let loopback = NetworkAccess {
            private_networks: false,
            loopback: true,
        };
        let client = ReqwestClient::new().unwrap();
        for host in ["127.0.0.1", "localhost"] {
            let url = format!("http://{host}:{port}/");
            let response = client.send(get(&url, loopback)).await.unwrap();
            assert_eq!(response.status, http::StatusCode::OK);
            assert_eq!(response.body.len(), 1000);
            let mut small = get(&url, loopback);
            small.max_response_bytes = 100;
            assert_eq!(
                client.send(small).await.unwrap_err(),
                OutboundError::TooLarge(100)
            );
        }
    }
}
