//! Redirect-URI and origin matching.

use url::Url;

use crate::{AppType, validate};

/// Whether `requested` is one of the application's registered callbacks: byte for byte,
/// no normalisation. The one exception (RFC 8252 §7.3): a native app's loopback IP
/// callback (`http://127.0.0.1/…`, `http://[::1]/…`) matches with any port, because the
/// app listens on whatever port the OS gives it. `localhost` is no IP literal (RFC 8252
/// §8.3 calls it NOT RECOMMENDED): its port is compared like the rest.
pub fn redirect_uri_allowed(requested: &str, registered: &[String], app_type: AppType) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    if app_type != AppType::Native {
        return false;
    }
    let Some(requested) = loopback_without_port(requested) else {
        return false;
    };
    registered
        .iter()
        .any(|r| loopback_without_port(r) == Some(requested))
}

/// A loopback IP redirect URI split around its port, which is dropped:
/// `http://127.0.0.1:51004/cb` → `("http://127.0.0.1", "/cb")`. Only these exact
/// spellings count (`127.1`, `0x7f.0.0.1` or `HTTP://` are other strings).
fn loopback_without_port(uri: &str) -> Option<(&'static str, &str)> {
    const LOOPBACK: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];
    LOOPBACK.into_iter().find_map(|host| {
        let rest = uri.strip_prefix(host)?;
        let rest = match rest.strip_prefix(':') {
            None => rest,
            Some(after) => {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                let port = &after[..digits];
                let canonical = !port.starts_with('0') && port.parse::<u16>().is_ok();
                if !canonical {
                    return None;
                }
                &after[digits..]
            }
        };
        (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((host, rest))
    })
}

/// Whether an authorization response may be sent to this (matched) callback: http(s),
/// or a native app's private-use scheme as registration accepts it today — a callback
/// registered under older rules may be `javascript:` or `data:`.
pub fn deliverable(redirect_uri: &str, app_type: AppType) -> bool {
    Url::parse(redirect_uri).is_ok_and(|url| match url.scheme() {
        "http" | "https" => true,
        scheme => app_type == AppType::Native && validate::private_use_scheme(scheme).is_ok(),
    })
}

/// The origin (`scheme://host[:port]`) of a URL, as browsers send it in `Origin`; none
/// for a private-use scheme.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// The Content-Security-Policy source that lets a form lead (through redirects) to
/// `uri`: its origin, or a native app's scheme (`com.example.app:`).
pub fn form_action_source(uri: &str) -> Option<String> {
    origin_of(uri).or_else(|| {
        let scheme = Url::parse(uri).ok()?.scheme().to_string();
        validate::private_use_scheme(&scheme)
            .is_ok()
            .then(|| format!("{scheme}:"))
    })
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
        for app_type in [AppType::Spa, AppType::RegularWeb, AppType::Native] {
            assert!(redirect_uri_allowed(
                "https://app.example/callback",
                &registered,
                app_type
            ));
            assert!(redirect_uri_allowed(
                "http://localhost:3000",
                &registered,
                app_type
            ));
            for evil in [
                "https://app.example/callback/",
                "https://app.example/callback?x=1",
                "https://app.example/callback#x",
                "https://APP.example/callback",
                "https://app.example.evil/callback",
                "https://app.example@evil.example/callback",
                "https://app.example:443/callback",
                "http://localhost:3001",
                "http://localhost:3000/",
                "",
            ] {
                assert!(!redirect_uri_allowed(evil, &registered, app_type), "{evil}");
            }
        }
    }

    #[test]
    fn a_native_apps_loopback_ip_port_may_vary() {
        let registered = regs(&[
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
        ]);
        let native = AppType::Native;
        for good in [
            "http://127.0.0.1:51234/cb",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:65535/cb",
            "http://[::1]:61023/cb",
            "http://[::1]/cb",
        ] {
            assert!(redirect_uri_allowed(good, &registered, native), "{good}");
        }
        for evil in [
            "http://127.0.0.1:51234/other",
            "http://127.0.0.1:51234/cb/",
            "http://127.0.0.1:51234/cb?x",
            "http://127.0.0.1:51234/cb#x",
            "http://127.0.0.1:51234/x/../cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:080/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:5x/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1:5@evil.example/cb",
            "https://127.0.0.1:51234/cb",
            "HTTP://127.0.0.1:51234/cb",
            "http://127.1:51234/cb",
            "http://2130706433:51234/cb",
            "http://[0:0:0:0:0:0:0:1]:51234/cb",
            "http://[::1]:61023/cb/",
            "http://localhost:51234/cb",
        ] {
            assert!(!redirect_uri_allowed(evil, &registered, native), "{evil}");
        }
        // Only native apps listen on an ephemeral port.
        for app_type in [AppType::Spa, AppType::RegularWeb] {
            assert!(!redirect_uri_allowed(
                "http://127.0.0.1:51234/cb",
                &registered,
                app_type
            ));
            assert!(redirect_uri_allowed(
                "http://127.0.0.1/cb",
                &registered,
                app_type
            ));
        }
    }

    #[test]
    fn only_http_and_native_private_schemes_are_deliverable() {
        assert!(deliverable("https://app.example/cb", AppType::Spa));
        assert!(deliverable("com.example.app:/cb", AppType::Native));
        assert!(!deliverable("com.example.app:/cb", AppType::Spa));
        for legacy in [
            "javascript:alert(1)",
            "data:text/html,x",
            "myapp:/cb",
            "file:///x",
        ] {
            assert!(!deliverable(legacy, AppType::Native), "{legacy}");
        }
        assert_eq!(
            form_action_source("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(
            form_action_source("http://localhost:3000/cb").as_deref(),
            Some("http://localhost:3000")
        );
        assert!(form_action_source("javascript:alert(1)").is_none());
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
