//! Redirect-URI and origin matching.

use url::Url;

/// Exact string match against the registered URIs. The one exception (RFC 8252 §7.3):
/// for a registered loopback IP literal (`http://127.0.0.1/...`, `http://[::1]/...`) the
/// port may differ, because native apps get an ephemeral port from the OS.
pub fn redirect_uri_allowed(requested: &str, registered: &[String]) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(requested_url) = Url::parse(requested) else {
        return false;
    };
    if requested_url.scheme() != "http" || !is_loopback_ip(&requested_url) {
        return false;
    }
    registered.iter().any(|candidate| {
        Url::parse(candidate).is_ok_and(|registered_url| {
            registered_url.scheme() == "http"
                && is_loopback_ip(&registered_url)
                && registered_url.host() == requested_url.host()
                && registered_url.path() == requested_url.path()
                && registered_url.query() == requested_url.query()
                && requested_url.fragment().is_none()
                && requested_url.username().is_empty()
                && requested_url.password().is_none()
        })
    })
}

fn is_loopback_ip(url: &Url) -> bool {
    matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

/// The origin (`scheme://host[:port]`) of a URL, as browsers send it in `Origin`.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Whether a browser origin is one of the app's allowed web origins (trailing slashes
/// in the registration are tolerated, as Auth0 does).
pub fn origin_allowed(origin: &str, web_origins: &[String]) -> bool {
    web_origins
        .iter()
        .any(|allowed| allowed.trim_end_matches('/') == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_only() {
        let registered = regs(&["https://app.example/callback", "http://localhost:3000"]);
        assert!(redirect_uri_allowed(
            "https://app.example/callback",
            &registered
        ));
        assert!(redirect_uri_allowed("http://localhost:3000", &registered));
        for evil in [
            "https://app.example/callback/",
            "https://app.example/callback?x=1",
            "https://app.example/callback#x",
            "https://APP.example/callback",
            "https://app.example.evil/callback",
            "https://app.example@evil.example/callback",
            "http://localhost:3001",
            "http://localhost:3000/",
            "",
        ] {
            assert!(!redirect_uri_allowed(evil, &registered), "{evil}");
        }
    }

    #[test]
    fn loopback_ip_port_may_vary() {
        let registered = regs(&["http://127.0.0.1/cb", "http://[::1]/cb"]);
        assert!(redirect_uri_allowed(
            "http://127.0.0.1:51234/cb",
            &registered
        ));
        assert!(redirect_uri_allowed("http://[::1]:8080/cb", &registered));
        assert!(!redirect_uri_allowed(
            "http://127.0.0.1:51234/other",
            &registered
        ));
        assert!(!redirect_uri_allowed(
            "https://127.0.0.1:51234/cb",
            &registered
        ));
        assert!(!redirect_uri_allowed(
            "http://localhost:51234/cb",
            &registered
        ));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("http://localhost:3000/callback?x").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(
            origin_of("https://a.example/").as_deref(),
            Some("https://a.example")
        );
        assert!(origin_of("not a url").is_none());
        assert!(origin_allowed(
            "http://localhost:3000",
            &regs(&["http://localhost:3000/"])
        ));
        assert!(!origin_allowed(
            "http://localhost:3001",
            &regs(&["http://localhost:3000"])
        ));
    }
}
