//! The client's IP address, for login throttling and lockout. Behind a reverse proxy every
//! connection comes from the proxy, which would make all users share one throttle and let
//! anyone lock any account; so when the connection comes from a configured trusted proxy,
//! the address is read from `X-Forwarded-For` instead — never otherwise, since a client can
//! write that header itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::state::AppState;

/// Why a trusted-proxy entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)")]
pub struct InvalidRange(String);

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges. Empty by
/// default: the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a list such as `["127.0.0.1", "10.0.0.0/8", "fd00::/8"]`; blank entries are
    /// skipped (`a,,b` in a variable).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidRange> {
        entries
            .into_iter()
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidRange(entry.chars().take(60).collect()))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let address = address.to_canonical();
        self.0.iter().any(|range| range.contains(&address))
    }

    /// The end user's address at the token endpoint: Auth0's `auth0-forwarded-for`, which a
    /// confidential application's backend sends with a password grant, believed only when
    /// `client` (the address [`Self::client_ip`] gave) is itself a trusted proxy's —
    /// otherwise anyone could pick whose throttle and lockout a guess counts against.
    pub fn end_user_ip(&self, client: IpAddr, headers: &HeaderMap, confidential: bool) -> IpAddr {
        if !confidential || !self.trusts(client) {
            return client;
        }
        headers
            .get("auth0-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_hop)
            .unwrap_or(client)
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then, walking
    /// `X-Forwarded-For` from its end (the hop nearest to us), the first address that is
    /// not a trusted proxy. An entry that is not an address stops the walk at the hop that
    /// wrote it.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("!").split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(address) => {
                    client = address;
                    if !self.trusts(address) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `203.0.113.7:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    hop.parse::<SocketAddr>().ok().map(|socket| socket.ip())
}

/// The client's IP address as the throttles should see it (see [`TrustedProxies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Every listener inserts the peer address (tessera_http::serve); the fallback only
        // matters for a router driven without one, as in unit tests.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(ClientIp(
            state
                .config()
                .trusted_proxies
                .client_ip(peer, &parts.headers),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn ranges_parse_and_match() {
        let trusts = |entry: &str, address: &str| {
            TrustedProxies::parse([entry]).unwrap().trusts(ip(address))
        };
        assert!(trusts("10.0.0.0/8", "10.200.3.4"));
        assert!(!trusts("10.0.0.0/8", "11.0.0.1"));
        assert!(trusts("10.0.0.0/8", "::ffff:10.1.2.3"), "IPv4-mapped");
        assert!(trusts("10.1.2.3/8", "10.9.9.9"), "host bits are ignored");
        assert!(trusts(" 127.0.0.1 ", "127.0.0.1"));
        assert!(!trusts("127.0.0.1", "127.0.0.2"));
        assert!(trusts("fd00::/8", "fd12::1"));
        assert!(!trusts("fd00::/8", "fe80::1"));
        assert!(!trusts("fd00::/8", "10.0.0.1"));
        assert!(trusts("::1", "::1"));
        assert!(trusts("0.0.0.0/0", "203.0.113.9"));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "localhost",
            "10.0.0.0/x",
            "10.0.0.0/",
            "/8",
        ] {
            assert!(TrustedProxies::parse([bad]).is_err(), "{bad:?}");
        }
        assert_eq!(
            TrustedProxies::parse(["", " "]),
            Ok(TrustedProxies::default())
        );
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(
            none.client_ip(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(
            trusted.client_ip(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", "127.0.0.1"]).unwrap();
        // The client forged the first entry; our proxies appended the rest.
        let headers = forwarded(&["1.2.3.4, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers),
            ip("203.0.113.7")
        );
        // Only trusted hops: the leftmost one.
        let headers = forwarded(&["10.0.0.9, 10.0.0.5"]);
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &headers), ip("10.0.0.9"));
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        // Ports and brackets are tolerated.
        let headers = forwarded(&["[2001:db8::7]:4711, 203.0.113.8:443"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers),
            ip("203.0.113.8")
        );
    }

    #[test]
    fn garbage_stops_at_the_hop_that_wrote_it() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let headers = forwarded(&["203.0.113.7, unknown, 10.0.0.5"]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &headers), ip("10.0.0.5"));
    }

    #[test]
    fn bad_entries_are_named() {
        let error = TrustedProxies::parse(["10.0.0.0/8", " 10.0.0.0/99 "]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"10.0.0.0/99\" is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)"
        );
    }
}
