//! Who is calling, behind trusted reverse proxies: `X-Forwarded-For` and
//! `Forwarded` are believed only when the socket peer is one of the
//! configured proxies (`--trusted-proxies`), and only as far as the chain of
//! trusted hops goes.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma- or space-separated list of CIDRs (`10.0.0.0/8, fd00::/8`) or
    /// single addresses (`192.0.2.7`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(|p| {
                IpNet::from_str(p)
                    .or_else(|_| IpAddr::from_str(p).map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!("{p:?} is not an IP address or CIDR (10.0.0.0/8, fd00::/8)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request that arrived from `peer`: the
    /// peer itself unless it is a trusted proxy; then the forwarded chain
    /// walked from the right (nearest hop first), skipping trusted hops, up
    /// to the first untrusted address. A hop that cannot be read (`unknown`,
    /// an obfuscated name, garbage) ends the walk at the last address a
    /// trusted hop vouched for, so nothing a client writes there is believed.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        for hop in forwarded_chain(headers).into_iter().rev() {
            let Some(ip) = hop else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// The forwarded chain, client first: `X-Forwarded-For` when present (what
/// common load balancers write), else the `for=` of `Forwarded` (RFC 7239).
/// Several header lines form one list, in order. `None` marks a hop that is
/// not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("unknown"))
        .collect();
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|line| line.split(','))
            .map(parse_node)
            .collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .map(|v| v.to_str().unwrap_or("unknown"))
        .flat_map(|line| line.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| parse_node(v))
        })
        .collect()
}

/// One hop: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally quoted (RFC 7239).
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = IpAddr::from_str(s) {
        return Some(ip.to_canonical());
    }
    let host = match s.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => s.rsplit_once(':')?.0,
    };
    IpAddr::from_str(host).ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_lists_of_networks_and_addresses() {
        let p: TrustedProxies = "10.0.0.0/8, 192.0.2.7 fd00::/8".parse().unwrap();
        assert!(p.contains(ip("10.1.2.3")));
        assert!(p.contains(ip("192.0.2.7")));
        assert!(!p.contains(ip("192.0.2.8")));
        assert!(p.contains(ip("fd00::1")));
        assert!(p.contains(ip("::ffff:10.0.0.1")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.internal".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let p: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(p.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn walks_from_the_right_skipping_trusted_hops() {
        let p: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        // The client wrote the first two entries itself; the proxies added
        // the last two.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 10.9.9.9"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
        ]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Every hop trusted: the farthest one.
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Garbage past a trusted hop: the last address vouched for.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, nonsense, 10.0.0.2")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.2"));
        // Ports and IPv6.
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:4711, 10.0.0.2:80")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::5"));
    }

    #[test]
    fn reads_forwarded_when_there_is_no_x_forwarded_for() {
        let p: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=https;by=10.0.0.1, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.60, for=10.0.0.5;proto=https")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("192.0.2.60"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.0.0.5")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.5"));
    }
}
