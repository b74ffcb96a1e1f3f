//! The forwarding headers: what the upstream is told about the client's connection.
//!
//! Apps take the client's address, scheme and host from headers: Express with `trust proxy`,
//! Werkzeug's `ProxyFix`, Rack, Spring's `ForwardedHeaderFilter` read `X-Forwarded-*` and
//! `Forwarded`, and many apps and libraries (npm's `request-ip`) read `X-Real-IP` or a CDN's
//! `CF-Connecting-IP` with no setting at all. The proxy is the edge: every such header a
//! client sends is removed, and the proxy describes the connection it received.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::request::is_tchar;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers that name the client's address, set by CDNs and load balancers and believed by
/// apps as they come: never taken from the client. (`Forwarded` and every `X-Forwarded-*`
/// go too, see [`is_forwarding`].)
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

/// What the proxy knows about the client's request.
pub(crate) struct Origin {
    pub(crate) peer: SocketAddr,
    /// The client came over TLS.
    pub(crate) https: bool,
    pub(crate) host: Option<HeaderValue>,
}

/// `Forwarded` and the whole `X-Forwarded-*` family (`-For`, `-Host`, `-Proto`, `-Port`,
/// `-Prefix`, `-Ssl`, `-Scheme`, …): what proxies write about the request they received.
fn is_forwarding(name: &HeaderName) -> bool {
    *name == header::FORWARDED || name.as_str().starts_with("x-forwarded-")
}

/// Replaces whatever the client said about its connection by what the proxy saw:
/// `X-Forwarded-For` and `X-Real-IP` the peer's address, `X-Forwarded-Proto` and
/// `X-Forwarded-Host` the request's scheme and `Host`, and `Forwarded` (RFC 7239) all three.
pub(crate) fn describe_connection(headers: &mut HeaderMap, origin: &Origin) {
    let claimed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_forwarding(name) || CLIENT_ADDRESS_CLAIMS.contains(name))
        .cloned()
        .collect();
    for name in claimed {
        headers.remove(name);
    }

    // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6 addresses.
    let peer = origin.peer.ip().to_canonical();
    let address = ascii_value(peer.to_string().into_bytes());
    headers.insert(X_FORWARDED_FOR, address.clone());
    headers.insert(X_REAL_IP, address);
    let proto = if origin.https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = &origin.host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    headers.insert(
        header::FORWARDED,
        forwarded_element(peer, proto, origin.host.as_ref()),
    );
}

/// One `Forwarded` element, `for=…;proto=…[;host=…]`, quoted as RFC 7239 §4 asks: an IPv6
/// node in brackets and a host with a port (`:` is no token character) as quoted strings.
fn forwarded_element(peer: IpAddr, proto: &str, host: Option<&HeaderValue>) -> HeaderValue {
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
    ascii_value(element)
}

/// A value made of visible ASCII and the bytes of other header values: always valid.
fn ascii_value(bytes: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(bytes))
        .expect("visible ASCII and header value bytes make a header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forwarding headers a request gets from a peer, with everything a client could
    /// send in their place.
    fn forwarded_for_peer(peer: &str, host: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
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
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let origin = Origin {
            peer: peer.parse().unwrap(),
            https: false,
            host: host.map(HeaderValue::from_static),
        };
        describe_connection(&mut headers, &origin);
        headers
    }

    #[test]
    fn the_forwarding_headers_describe_the_peer_alone() {
        let headers = forwarded_for_peer("192.0.2.7:5555", Some("api.example.com"));
        let mut described: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        described.sort_unstable();
        assert_eq!(
            described,
            [
                ("forwarded", "for=192.0.2.7;proto=http;host=api.example.com"),
                ("x-forwarded-for", "192.0.2.7"),
                ("x-forwarded-host", "api.example.com"),
                ("x-forwarded-proto", "http"),
                ("x-real-ip", "192.0.2.7"),
            ]
        );

        // RFC 7239 quoting: an IPv6 node in brackets, a host with a port quoted. An
        // IPv4-mapped peer (a dual-stack listener) is named as the IPv4 address it is.
        let headers = forwarded_for_peer("[2001:db8::7]:5555", Some("api.example.com:8443"));
        assert_eq!(
            headers["forwarded"],
            r#"for="[2001:db8::7]";proto=http;host="api.example.com:8443""#
        );
        assert_eq!(headers["x-forwarded-for"], "2001:db8::7");
        assert_eq!(headers["x-real-ip"], "2001:db8::7");
        let headers = forwarded_for_peer("[::ffff:192.0.2.7]:5555", None);
        assert_eq!(headers["forwarded"], "for=192.0.2.7;proto=http");
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert!(!headers.contains_key("x-forwarded-host"));
    }
}
