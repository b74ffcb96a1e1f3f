//! The forwarding headers: what the upstream is told about the client's connection.
//!
//! Apps take the client's address, scheme and host from headers: Express with `trust proxy`,
//! Werkzeug's `ProxyFix`, Rack, Spring's `ForwardedHeaderFilter` read `X-Forwarded-*` and
//! `Forwarded`, and many apps and libraries (npm's `request-ip`) read `X-Real-IP` or a CDN's
//! `CF-Connecting-IP` with no setting at all. By default the proxy is the edge: every such
//! header a client sends is removed, and the proxy describes the connection it received.
//! Behind [`TrustedProxies`], the `X-Forwarded-*` and `Forwarded` a trusted peer sends are
//! kept and continued.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::body::Bytes;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::request::is_tchar;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers that name the client's address, set by CDNs and load balancers and believed by
/// apps as they come: never forwarded, whoever sends them. (`Forwarded` and every
/// `X-Forwarded-*` go too unless a trusted proxy sends them, see [`is_forwarding`].)
const CLIENT_ADDRESS_CLAIMS: [HeaderName; 8] = [
    X_REAL_IP,
    HeaderName::from_static("x-client-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("cf-connecting-ip"),
    HeaderName::from_static("fastly-client-ip"),
    HeaderName::from_static("x-cluster-client-ip"),
    HeaderName::from_static("x-forwarded"),
    HeaderName::from_static("forwarded-for"),
];

/// The proxies in front (load balancers, TLS terminators) whose forwarding headers are
/// believed: addresses and CIDR ranges. Empty by default: the proxy is the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Why a trusted-proxy entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy {0:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)")]
pub struct InvalidTrustedProxy(String);

impl TrustedProxies {
    /// Parses entries such as `10.0.0.0/8`, `fd00::/8` or `127.0.0.1`; blank ones are
    /// skipped (`a,,b` in a variable).
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<TrustedProxies, InvalidTrustedProxy> {
        entries
            .into_iter()
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| InvalidTrustedProxy(entry.chars().take(60).collect()))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|range| range.contains(&address))
    }

    /// The client behind a trusted `peer`: walking `X-Forwarded-For` from its end (the hop
    /// nearest to the proxy), the first address that is not a trusted proxy. An entry that
    /// is not an address stops the walk at the hop that wrote it. (`tessera serve`'s
    /// `trusted_proxies` reads the chain the same way.)
    fn client_behind(&self, peer: IpAddr, chain: &[u8]) -> IpAddr {
        let mut client = peer;
        for hop in chain.rsplit(|b| *b == b',') {
            let Some(address) = parse_hop(hop) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `203.0.113.7:443`.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

/// What the proxy knows about the client's request.
pub(crate) struct Origin<'a> {
    pub(crate) peer: SocketAddr,
    /// The client came over TLS.
    pub(crate) https: bool,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) trusted_proxies: &'a TrustedProxies,
}

/// `Forwarded` and the whole `X-Forwarded-*` family (`-For`, `-Host`, `-Proto`, `-Port`,
/// `-Prefix`, `-Ssl`, `-Scheme`, …): what proxies write about the request they received.
fn is_forwarding(name: &HeaderName) -> bool {
    *name == header::FORWARDED || name.as_str().starts_with("x-forwarded-")
}

/// Replaces whatever the client said about its connection by what the proxy saw:
/// `X-Forwarded-For` and `X-Real-IP` the peer's address, `X-Forwarded-Proto` and
/// `X-Forwarded-Host` the request's scheme and `Host`, and `Forwarded` (RFC 7239) all three.
///
/// From a trusted proxy, its `X-Forwarded-*` and `Forwarded` are kept: the peer is appended
/// to its `X-Forwarded-For` and this hop's element to its `Forwarded`, and `X-Real-IP` is
/// the first address from the right of the chain that is not a trusted proxy. A chain it
/// sends only as `X-Forwarded-For` gets no `Forwarded`: one naming the proxy in front as
/// the client would contradict it (Spring and Rack read `Forwarded` first).
pub(crate) fn describe_connection(headers: &mut HeaderMap, origin: &Origin<'_>) {
    // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6 addresses.
    let peer = origin.peer.ip().to_canonical();
    let trusted_peer = origin.trusted_proxies.trusts(peer);
    let claimed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            CLIENT_ADDRESS_CLAIMS.contains(name) || (!trusted_peer && is_forwarding(name))
        })
        .cloned()
        .collect();
    for name in claimed {
        headers.remove(name);
    }
    let received_for = take_list(headers, &X_FORWARDED_FOR);
    let received_forwarded = take_list(headers, &header::FORWARDED);

    let peer_text = peer.to_string().into_bytes();
    let client = match &received_for {
        Some(chain) => origin.trusted_proxies.client_behind(peer, chain),
        None => peer,
    };
    headers.insert(X_REAL_IP, ascii_value(client.to_string().into_bytes()));
    headers.insert(
        X_FORWARDED_FOR,
        ascii_value(appended(received_for.as_deref(), &peer_text)),
    );
    let proto = if origin.https { "https" } else { "http" };
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(host) = &origin.host
        && !headers.contains_key(&X_FORWARDED_HOST)
    {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if received_forwarded.is_some() || received_for.is_none() {
        let element = forwarded_element(peer, proto, origin.host.as_ref());
        headers.insert(
            header::FORWARDED,
            ascii_value(appended(received_forwarded.as_deref(), &element)),
        );
    }
}

/// Removes a list header (`X-Forwarded-For`, `Forwarded`) and returns its lines joined as
/// one list; `None` when it was absent or blank.
fn take_list(headers: &mut HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut list = Vec::new();
    if let header::Entry::Occupied(entry) = headers.entry(name) {
        for value in entry.remove_entry_mult().1 {
            let value = value.as_bytes().trim_ascii();
            if !value.is_empty() {
                if !list.is_empty() {
                    list.extend_from_slice(b", ");
                }
                list.extend_from_slice(value);
            }
        }
    }
    (!list.is_empty()).then_some(list)
}

/// `list, item`, or `item` alone.
fn appended(list: Option<&[u8]>, item: &[u8]) -> Vec<u8> {
    match list {
        Some(list) => [list, b", ", item].concat(),
        None => item.to_vec(),
    }
}

/// One `Forwarded` element, `for=…;proto=…[;host=…]`, quoted as RFC 7239 §4 asks: an IPv6
/// node in brackets and a host with a port (`:` is no token character) as quoted strings.
fn forwarded_element(peer: IpAddr, proto: &str, host: Option<&HeaderValue>) -> Vec<u8> {
    let mut element = match peer {
        IpAddr::V4(v4) => format!("for={v4}"),
        IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
    }
    .into_bytes();
    element.extend_from_slice(b";proto=");
    element.extend_from_slice(proto.as_bytes());
    if let Some(host) = host {
        element.extend_from_slice(b";host=");
        let host = host.as_bytes();
        if host.iter().all(|b| is_tchar(*b)) {
            element.extend_from_slice(host);
        } else {
            element.push(b'"');
            for &b in host {
                if b == b'"' || b == b'\\' {
                    element.push(b'\\');
                }
                element.push(b);
            }
            element.push(b'"');
        }
    }
    element
}

/// A value made of visible ASCII and the bytes of other header values: always valid.
fn ascii_value(bytes: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(bytes))
        .expect("visible ASCII and header value bytes make a header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a client could send in place of the forwarding headers.
    const FORGED: [(&str, &str); 18] = [
        ("forwarded", "for=10.0.0.1;proto=https;host=evil.test"),
        ("x-real-ip", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.2"),
        ("x-forwarded-host", "evil.test"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/evil"),
        ("x-forwarded-ssl", "on"),
        ("x-forwarded-scheme", "https"),
        ("x-forwarded-server", "evil.test"),
        ("x-forwarded", "for=10.0.0.1"),
        ("forwarded-for", "10.0.0.1"),
        ("x-client-ip", "10.0.0.1"),
        ("true-client-ip", "10.0.0.1"),
        ("cf-connecting-ip", "10.0.0.1"),
        ("fastly-client-ip", "10.0.0.1"),
        ("x-cluster-client-ip", "10.0.0.1"),
    ];

    /// The forwarding headers a request with `sent` gets from `peer`.
    fn described(
        sent: &[(&'static str, &'static str)],
        peer: &str,
        host: Option<&'static str>,
        trusted: &[&str],
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in sent {
            headers.append(*name, HeaderValue::from_static(value));
        }
        let trusted_proxies = TrustedProxies::parse(trusted.iter().copied()).unwrap();
        let origin = Origin {
            peer: peer.parse().unwrap(),
            https: false,
            host: host.map(HeaderValue::from_static),
            trusted_proxies: &trusted_proxies,
        };
        describe_connection(&mut headers, &origin);
        headers
    }

    fn sorted(headers: &HeaderMap) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    #[test]
    fn the_forwarding_headers_describe_the_peer_alone() {
        let at_the_edge = [
            ("forwarded", "for=192.0.2.7;proto=http;host=api.example.com"),
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-host", "api.example.com"),
            ("x-forwarded-proto", "http"),
            ("x-real-ip", "192.0.2.7"),
        ];
        let headers = described(&FORGED, "192.0.2.7:5555", Some("api.example.com"), &[]);
        assert_eq!(sorted(&headers), at_the_edge);
        // Trusting other proxies changes nothing for a peer that is not one of them.
        let trusted = ["10.0.0.0/8", "192.0.2.8"];
        let headers = described(&FORGED, "192.0.2.7:5555", Some("api.example.com"), &trusted);
        assert_eq!(sorted(&headers), at_the_edge);

        // RFC 7239 quoting: an IPv6 node in brackets, a host with a port quoted. An
        // IPv4-mapped peer (a dual-stack listener) is named as the IPv4 address it is.
        let headers = described(&[], "[2001:db8::7]:5555", Some("api.example.com:8443"), &[]);
        assert_eq!(
            headers["forwarded"],
            r#"for="[2001:db8::7]";proto=http;host="api.example.com:8443""#
        );
        assert_eq!(headers["x-forwarded-for"], "2001:db8::7");
        assert_eq!(headers["x-real-ip"], "2001:db8::7");
        let headers = described(&FORGED, "[::ffff:192.0.2.7]:5555", None, &[]);
        assert_eq!(headers["forwarded"], "for=192.0.2.7;proto=http");
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert!(!headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn a_trusted_proxy_s_chain_is_kept_and_continued() {
        let trusted = ["10.0.0.0/8"];
        let headers = described(&FORGED, "10.1.2.3:5555", Some("api.example.com"), &trusted);
        assert_eq!(
            sorted(&headers),
            [
                (
                    "forwarded",
                    "for=10.0.0.1;proto=https;host=evil.test, \
                     for=10.1.2.3;proto=http;host=api.example.com"
                ),
                ("x-forwarded-for", "10.0.0.1, 10.0.0.2, 10.1.2.3"),
                ("x-forwarded-host", "evil.test"),
                ("x-forwarded-port", "443"),
                ("x-forwarded-prefix", "/evil"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-scheme", "https"),
                ("x-forwarded-server", "evil.test"),
                ("x-forwarded-ssl", "on"),
                // The whole chain is trusted: its first hop is the client.
                ("x-real-ip", "10.0.0.1"),
            ],
            "the address claims of CDNs are never kept"
        );

        // X-Real-IP: the first hop from the right that is not trusted, never the leftmost
        // entry (the client's own); an entry that is not an address ends the walk.
        let real_ip = |chain: &'static str, trusted: &[&str]| {
            let sent = [("x-forwarded-for", chain), ("x-real-ip", "10.9.9.9")];
            let headers = described(&sent, "[::ffff:10.0.0.5]:1", None, trusted);
            headers["x-real-ip"].to_str().unwrap().to_owned()
        };
        assert_eq!(real_ip("6.6.6.6, 203.0.113.9", &trusted), "203.0.113.9");
        assert_eq!(
            real_ip("6.6.6.6, 203.0.113.9, 10.0.0.4", &trusted),
            "203.0.113.9"
        );
        assert_eq!(
            real_ip(
                "203.0.113.9:443, [2001:db8::1]:80",
                &["10.0.0.5", "2001:db8::/32"]
            ),
            "203.0.113.9"
        );
        assert_eq!(
            real_ip("203.0.113.9, unknown, 10.0.0.4", &trusted),
            "10.0.0.4"
        );
        assert_eq!(
            real_ip(" ", &trusted),
            "10.0.0.5",
            "a blank chain names no one"
        );

        // A chain sent as X-Forwarded-For alone gets no Forwarded; one sent as neither gets
        // both, started here.
        let sent = [("x-forwarded-for", "203.0.113.9")];
        let headers = described(&sent, "10.0.0.5:1", None, &trusted);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 10.0.0.5");
        assert!(!headers.contains_key("forwarded"));
        let headers = described(&[], "10.0.0.5:1", Some("api.example.com"), &trusted);
        assert_eq!(
            sorted(&headers),
            [
                ("forwarded", "for=10.0.0.5;proto=http;host=api.example.com"),
                ("x-forwarded-for", "10.0.0.5"),
                ("x-forwarded-host", "api.example.com"),
                ("x-forwarded-proto", "http"),
                ("x-real-ip", "10.0.0.5"),
            ]
        );
    }

    #[test]
    fn trusted_proxies_parse_and_match() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", " 127.0.0.1 ", "", "fd00::/8"]).unwrap();
        let trusts = |address: &str| trusted.trusts(address.parse().unwrap());
        assert!(trusts("10.200.3.4"));
        assert!(trusts("::ffff:10.1.2.3"), "IPv4-mapped");
        assert!(trusts("127.0.0.1"));
        assert!(!trusts("127.0.0.2"));
        assert!(trusts("fd12::1"));
        assert!(!trusts("11.0.0.1"));
        assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/", "10.0.0", "::1/129"] {
            let error = TrustedProxies::parse([bad]).unwrap_err();
            assert!(error.to_string().contains(bad), "{error}");
        }
    }
}
