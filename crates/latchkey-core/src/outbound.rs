//! The outbound HTTP port: every request latchkey makes to another server
//! (SMS and voice providers, upstream identity providers; push gateways
//! next) goes through an [`HttpClient`], with a deadline, a cap on the
//! answer's size and the networks it may reach.
//!
//! The guard against server-side request forgery is decided here, once:
//! [`NetworkAccess::permits`] says which addresses a request may connect
//! to. The adapter applies it to every address it actually connects to (after
//! its own resolution of the name, so a name that resolves differently the
//! second time is checked again), never follows redirects, and refuses
//! [`REFUSED_NAMES`] before resolving anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

/// Names refused whatever they resolve to: the cloud metadata services.
pub(crate) const REFUSED_NAMES: &[&str] = &["metadata.google.internal", "metadata"];

/// The cloud metadata addresses (AWS, GCP, Azure, and AWS's IPv6 one).
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// One request. The body is sent as is; `headers` are sent in order.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    pub url: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// The whole exchange, from resolving the name to the answer's last byte.
    pub deadline: Duration,
    /// Answers longer than this are an error ([`OutboundError::TooLarge`]).
    pub max_response_bytes: usize,
    /// The networks this request may reach.
    pub access: NetworkAccess,
}

/// The cap on an answer unless a request says otherwise.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

impl Request {
    pub fn new(method: http::Method, url: &str, deadline: Duration, access: NetworkAccess) -> Self {
        Self {
            method,
            url: url.to_owned(),
            headers: http::HeaderMap::new(),
            body: Vec::new(),
            deadline,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            access,
        }
    }
}

/// The answer: its status, headers and body (at most the request's cap).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// Why a request got no answer. Texts never carry the URL (a webhook URL may
/// hold a credential in its query).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL cannot be used (not http(s), no host, malformed).
    #[error("the URL is not usable")]
    InvalidUrl,
    /// The guard refused the destination: it says which address class.
    #[error("the destination is refused: {0}")]
    Refused(String),
    /// No connection could be made.
    #[error("the connection failed")]
    Connect,
    /// The deadline passed.
    #[error("it did not answer in time")]
    Timeout,
    /// The answer was larger than the request allows.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The exchange broke off after it started.
    #[error("the exchange was interrupted")]
    Interrupted,
}

#[async_trait::async_trait]
pub trait HttpClient: Send + Sync {
    async fn send(&self, request: Request) -> Result<Response, OutboundError>;
}

pub type SharedHttpClient = Arc<dyn HttpClient>;

/// Which networks beyond the public internet a request may reach. The
/// metadata services, link-local, unspecified, broadcast and multicast
/// addresses are never reachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkAccess {
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7: allowed by
    /// `--outbound-allow-private-networks` or a tenant's
    /// `outbound.allow_private_networks`.
    pub private_networks: bool,
    /// 127/8 and ::1: allowed by `--outbound-allow-loopback`, for development
    /// and tests only.
    pub loopback: bool,
}

impl NetworkAccess {
    /// The public internet only.
    pub const PUBLIC: Self = Self {
        private_networks: false,
        loopback: false,
    };

    /// What the server allows, widened by what the tenant allows.
    pub fn for_tenant(self, tenant: &crate::tenant::model::OutboundSettings) -> Self {
        Self {
            private_networks: self.private_networks || tenant.allow_private_networks,
            loopback: self.loopback,
        }
    }

    /// Whether a connection to `ip` is allowed; else the class that is not.
    pub fn permits(self, ip: IpAddr) -> Result<(), AddressClass> {
        let class = classify(ip);
        let allowed = match class {
            AddressClass::Public => true,
            AddressClass::Private => self.private_networks,
            AddressClass::Loopback => self.loopback,
            AddressClass::Metadata
            | AddressClass::LinkLocal
            | AddressClass::Unspecified
            | AddressClass::Broadcast
            | AddressClass::Multicast
            | AddressClass::Reserved => false,
        };
        if allowed { Ok(()) } else { Err(class) }
    }
}

/// Whether a host name is refused before it is resolved (compared without
/// case or a final dot).
pub fn refused_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    REFUSED_NAMES.iter().any(|n| host.eq_ignore_ascii_case(n))
}

/// The kinds of address the guard tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Private,
    Loopback,
    Metadata,
    LinkLocal,
    Unspecified,
    Broadcast,
    Multicast,
    /// Documentation, benchmarking and other ranges never routed.
    Reserved,
}

impl AddressClass {
    /// What an address of this class is, for a refusal.
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Private => {
                "in a private network (allow with outbound.allow_private_networks)"
            }
            AddressClass::Loopback => "loopback (allowed only with --outbound-allow-loopback)",
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// The class of `ip`; IPv4-mapped and IPv4-compatible IPv6 addresses, NAT64
/// and 6to4 count as the IPv4 address they carry.
pub(crate) fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip == METADATA_V4 {
        AddressClass::Metadata
    } else if ip.is_unspecified() || a == 0 {
        AddressClass::Unspecified
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressClass::Private
    } else if a >= 240
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let first = ip.segments()[0];
    if ip == METADATA_V6 {
        AddressClass::Metadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if (first & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if (first & 0xfe00) == 0xfc00 {
        AddressClass::Private
    } else if (first & 0xffc0) == 0xfec0 || first == 0x2001 && ip.segments()[1] == 0x0db8 {
        // Site-local (deprecated) and documentation.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:a.b.c.d`),
/// compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let (s, o) = (ip.segments(), ip.octets());
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified())
        || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        Some(tail)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn address_classes() {
        use AddressClass::*;
        for (ip, want) in [
            ("93.184.216.34", Public),
            ("2606:2800:220:1:248:1893:25c8:1946", Public),
            ("169.254.169.254", Metadata),
            ("fd00:ec2::254", Metadata),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("100.128.0.1", Public),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("127.0.0.1", Loopback),
            ("127.8.9.10", Loopback),
            ("::1", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("192.0.2.1", Reserved),
            ("240.0.0.1", Reserved),
            ("2001:db8::1", Reserved),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_counts_as_its_ipv4() {
        use AddressClass::*;
        for (ip, want) in [
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.3.4", LinkLocal),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:93.184.216.34", Public),
            ("::10.1.2.3", Private),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("2002:c0a8:0101::1", Private),
            ("2002:7f00:1::1", Loopback),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn access_decides_per_class() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let public = NetworkAccess::PUBLIC;
        assert!(public.permits(ip("93.184.216.34")).is_ok());
        for refused in ["10.0.0.1", "127.0.0.1", "::1", "169.254.169.254", "fe80::1"] {
            assert!(public.permits(ip(refused)).is_err(), "{refused}");
        }
        let private = NetworkAccess {
            private_networks: true,
            loopback: false,
        };
        assert!(private.permits(ip("192.168.0.10")).is_ok());
        assert!(private.permits(ip("fd12::1")).is_ok());
        assert!(private.permits(ip("127.0.0.1")).is_err());
        let everything = NetworkAccess {
            private_networks: true,
            loopback: true,
        };
        assert!(everything.permits(ip("127.0.0.1")).is_ok());
        assert!(everything.permits(ip("::ffff:127.0.0.1")).is_ok());
        // Never reachable, whatever is allowed.
        for never in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "169.254.10.10",
            "fe80::1",
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(everything.permits(ip(never)).is_err(), "{never}");
        }
        let class = public.permits(ip("169.254.169.254")).unwrap_err();
        assert!(class.describe().contains("metadata"));
    }

    #[test]
    fn the_tenant_widens_to_private_networks_only() {
        let tenant = crate::tenant::model::OutboundSettings {
            allow_private_networks: true,
        };
        assert_eq!(
            NetworkAccess::PUBLIC.for_tenant(&tenant),
            NetworkAccess {
                private_networks: true,
                loopback: false
            }
        );
        assert_eq!(
            NetworkAccess::PUBLIC.for_tenant(&Default::default()),
            NetworkAccess::PUBLIC
        );
    }

    #[test]
    fn metadata_names_are_refused() {
        assert!(refused_name("metadata.google.internal"));
        assert!(refused_name("Metadata.Google.Internal."));
        assert!(refused_name("metadata"));
        assert!(!refused_name("metadata.example.com"));
        assert!(!refused_name("api.twilio.com"));
    }
}
