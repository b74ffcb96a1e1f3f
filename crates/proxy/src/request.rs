//! How the proxy reads a request before judging it. The rules must judge what the upstream
//! will act on, and upstreams act on more than the request line says:
//!
//! - Methods are case-sensitive (RFC 9110 §9.1) but Werkzeug and Django upper-case them:
//!   `post` would be judged as an unknown method and run as `POST`. A method with a
//!   lower-case letter is refused.
//! - Frameworks let a request name another method: the `X-HTTP-Method-Override`,
//!   `X-HTTP-Method` and `X-Method-Override` headers (Rack, Express's method-override,
//!   Symfony and Laravel, ASP.NET Core, OData) and the `_method` query parameter (Symfony
//!   and Laravel, Spring's `HiddenHttpMethodFilter`, `methodOverride('_method')`). Each
//!   named method is read as the frameworks read it (upper-cased) and the request must
//!   meet its rules as well as its own method's. A value that is not a method name is
//!   refused. A `_method` field in a form *body* is not seen (bodies are streamed).
//! - Rails and Spring up to 5.2 route `/admin.json` to `/admin`: a path whose last segment
//!   has an extension must meet the rules of the path without it too
//!   ([`CanonicalPath::stems`]).
//!
//! - `TRACE`, `TRACK` and `CONNECT` are never forwarded, sent or named by an override.
//!
//! Every method × path reading is judged and the strictest wins ([`Access::and`]). The
//! request itself is forwarded unchanged. Framing and `Host` that two servers could read
//! differently are refused here too.

use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, Method, Request, StatusCode, Uri, Version, header};

use crate::path::{CanonicalPath, PathError, hex_value};
use crate::rules::{Access, RouteRules};

/// Why a request is refused before any rule: no token is looked at, nothing is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Path(#[from] PathError),
    #[error(
        "the method has a lower-case letter (methods are case-sensitive: write it in upper case)"
    )]
    MethodCase,
    #[error("TRACE, TRACK and CONNECT are not forwarded")]
    MethodNotAllowed,
    #[error("a method override (X-HTTP-Method-Override, _method …) is not a method name")]
    MethodOverride,
    #[error("the Host header is missing, repeated, invalid or not the request target's")]
    Host,
    #[error("the request has a transfer coding other than chunked")]
    TransferCoding,
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            // RFC 9112 §6.1: a transfer coding the server does not understand.
            RequestError::TransferCoding => StatusCode::NOT_IMPLEMENTED,
            RequestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The headers by which frameworks let a request name another method.
const OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Methods never forwarded, whatever the rules: TRACE (and IIS's TRACK) echo the request
/// back, `Authorization` and cookies included, to any script that can send one; CONNECT
/// would ask the upstream for a tunnel the rules could not see into.
const REFUSED_METHODS: [&str; 3] = ["TRACE", "TRACK", "CONNECT"];

/// The query parameter by which frameworks let a request name another method.
const OVERRIDE_PARAMETER: &str = "_method";

/// Every way the upstream may read one request.
#[derive(Debug)]
pub(crate) struct Reading {
    /// The request's method, then each one an override names.
    methods: Vec<Method>,
    /// The path, then its stems.
    paths: Vec<CanonicalPath>,
    /// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`, no override):
    /// it carries no token, and the upstream's CORS answers it.
    preflight: bool,
}

impl Reading {
    /// Reads a request, or says why it is refused.
    pub(crate) fn of<B>(request: &Request<B>) -> Result<Reading, RequestError> {
        let (method, uri, headers) = (request.method(), request.uri(), request.headers());
        check_method(method)?;
        check_framing(headers)?;
        check_host(request.version(), uri, headers)?;
        if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(RequestError::MethodCase);
        }
        let path = CanonicalPath::parse(uri.path())?;
        let mut methods = vec![method.clone()];
        for named in overrides(uri, headers)? {
            check_method(&named)?;
            if !methods.contains(&named) {
                methods.push(named);
            }
        }
        let preflight = methods == [Method::OPTIONS]
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let mut paths: Vec<CanonicalPath> = path.stems().collect();
        paths.insert(0, path);
        Ok(Reading {
            methods,
            paths,
            preflight,
        })
    }

    /// What the rules ask of the request: every reading's rule at once.
    pub(crate) fn access<'r>(&self, rules: &'r RouteRules) -> Access<'r> {
        if self.preflight {
            return Access::Public;
        }
        let mut access = Access::Public;
        for method in &self.methods {
            for path in &self.paths {
                access = access.and(rules.access(method, path));
            }
        }
        access
    }
}

/// Refuses the methods that are never forwarded, spelled by the request line or named by
/// an override.
fn check_method(method: &Method) -> Result<(), RequestError> {
    if REFUSED_METHODS.contains(&method.as_str()) {
        return Err(RequestError::MethodNotAllowed);
    }
    Ok(())
}

/// `Transfer-Encoding` may only be `chunked`, once: the proxy decodes chunked bodies and
/// frames them afresh for the upstream, so any other coding would reach it unannounced.
/// (hyper already refuses a `Transfer-Encoding` not ending in `chunked`, conflicting
/// `Content-Length`s, and `Transfer-Encoding` in HTTP/1.0; with both headers it reads the
/// body as chunked, drops `Content-Length` and closes the connection afterwards.)
fn check_framing(headers: &HeaderMap) -> Result<(), RequestError> {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(RequestError::TransferCoding),
    }
}

/// One valid `Host` (RFC 9112 §3.2: required in HTTP/1.1, at most one), without user
/// information, and the authority of an absolute-form target if there is one: the
/// `X-Forwarded-Host` the upstream gets is never a second opinion.
fn check_host(version: Version, uri: &Uri, headers: &HeaderMap) -> Result<(), RequestError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host,
        (None, None) if version == Version::HTTP_10 => return Ok(()),
        _ => return Err(RequestError::Host),
    };
    let host = Authority::try_from(host.as_bytes()).map_err(|_| RequestError::Host)?;
    let agrees = uri
        .authority()
        .is_none_or(|target| target.as_str().eq_ignore_ascii_case(host.as_str()));
    if host.as_str().contains('@') || !agrees {
        return Err(RequestError::Host);
    }
    Ok(())
}

/// The methods a request's overrides name, upper-cased as the frameworks read them.
fn overrides(uri: &Uri, headers: &HeaderMap) -> Result<Vec<Method>, RequestError> {
    let mut named = Vec::new();
    for name in &OVERRIDE_HEADERS {
        for value in headers.get_all(name) {
            // Node joins repeated headers with commas and method-override takes the first
            // element: read every element.
            for element in value.as_bytes().split(|b| *b == b',') {
                named.extend(override_method(element.trim_ascii())?);
            }
        }
    }
    let pairs = uri.query().into_iter().flat_map(|query| {
        // `;` separates parameters too for older Rack and Python (before 3.9.2).
        query
            .split(['&', ';'])
            .filter_map(|pair| pair.split_once('='))
    });
    for (name, value) in pairs {
        if is_override_parameter(&decode_query_component(name)) {
            named.extend(override_method(&decode_query_component(value))?);
        }
    }
    Ok(named)
}

/// Whether a decoded query parameter name is `_method` to some framework: PHP drops
/// leading spaces, reads `.` and space as `_` and `_method[]` as `_method`. Case is
/// ignored, which is only stricter.
fn is_override_parameter(name: &[u8]) -> bool {
    let name = name.trim_ascii_start();
    let name = name.split(|b| *b == b'[').next().unwrap_or_default();
    name.len() == OVERRIDE_PARAMETER.len()
        && name
            .iter()
            .zip(OVERRIDE_PARAMETER.bytes())
            .all(|(b, expected)| match b {
                b'.' | b' ' => expected == b'_',
                b => b.eq_ignore_ascii_case(&expected),
            })
}

/// An override's value as the method it names: `None` when empty (frameworks ignore it),
/// refused unless it is a method token — non-ASCII could upper-case to one (`ſ` → `S`).
fn override_method(value: &[u8]) -> Result<Option<Method>, RequestError> {
    if value.is_empty() {
        return Ok(None);
    }
    if !value.iter().all(|b| is_tchar(*b)) {
        return Err(RequestError::MethodOverride);
    }
    Method::from_bytes(&value.to_ascii_uppercase())
        .map(Some)
        .map_err(|_| RequestError::MethodOverride)
}

/// RFC 9110 §5.6.2 token characters.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A query name or value as a form decoder reads it: `+` is a space, `%XX` a byte, and a
/// `%` not followed by two hex digits stays as it is.
fn decode_query_component(raw: &str) -> Vec<u8> {
    let raw = raw.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = match raw[i..] {
            [b'%', high, low, ..] => hex_value(high).zip(hex_value(low)),
            _ => None,
        };
        match (escaped, raw[i]) {
            (Some((high, low)), _) => {
                decoded.push((high << 4) | low);
                i += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                i += 1;
            }
            (None, byte) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_guard::Requirement;

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(target);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            builder = builder.header("host", "proxy.test");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn read(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<Reading, RequestError> {
        Reading::of(&request(method, target, headers))
    }

    fn methods(reading: &Reading) -> Vec<&str> {
        reading.methods.iter().map(Method::as_str).collect()
    }

    #[test]
    fn methods_must_be_upper_case() {
        for method in ["post", "Post", "pOST", "get", "delete", "foo"] {
            assert_eq!(
                read(method, "/api", &[]).unwrap_err(),
                RequestError::MethodCase,
                "{method}"
            );
        }
        for method in ["GET", "POST", "PROPFIND", "M-SEARCH", "FOO_1"] {
            assert_eq!(methods(&read(method, "/api", &[]).unwrap()), [method]);
        }
    }

    #[test]
    fn methods_that_echo_or_tunnel_are_refused_before_anything_else() {
        for method in ["TRACE", "TRACK", "CONNECT"] {
            assert_eq!(
                read(method, "/api/public", &[]).unwrap_err(),
                RequestError::MethodNotAllowed,
                "{method}"
            );
            let override_header = [("x-http-method-override", method)];
            assert_eq!(
                read("POST", "/api/public", &override_header).unwrap_err(),
                RequestError::MethodNotAllowed,
                "an override naming {method}"
            );
            let query = format!("/api/public?_method={}", method.to_lowercase());
            assert_eq!(
                read("POST", &query, &[]).unwrap_err(),
                RequestError::MethodNotAllowed,
                "{query}"
            );
        }
        // Before the target and Host are looked at: CONNECT's target is an authority.
        let connect = Request::builder()
            .method(Method::CONNECT)
            .uri("upstream.test:443")
            .header("host", "proxy.test")
            .body(())
            .unwrap();
        assert_eq!(
            Reading::of(&connect).unwrap_err(),
            RequestError::MethodNotAllowed
        );
        assert_eq!(
            RequestError::MethodNotAllowed.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn overrides_add_the_methods_they_name() {
        let reading = read(
            "POST",
            "/api?_method=put",
            &[
                ("x-http-method-override", "delete"),
                ("X-HTTP-Method", "PATCH, post"),
                ("x-method-override", "GET"),
            ],
        )
        .unwrap();
        assert_eq!(methods(&reading), ["POST", "DELETE", "PATCH", "GET", "PUT"]);
        for query in [
            "_method=DELETE",
            "_METHOD=delete",
            "%5Fmethod=DELETE",
            "_method=%44ELETE",
            "_method[]=DELETE",
            "+_method=DELETE",
            ".method=DELETE",
            "a=1;_method=DELETE",
            "a=1&_method=&_method=DELETE",
        ] {
            let reading = read("POST", &format!("/api?{query}"), &[]).unwrap();
            assert_eq!(methods(&reading), ["POST", "DELETE"], "{query}");
        }
        for query in [
            "payment_method=card",
            "method=DELETE",
            "_methods=DELETE",
            "_method",
        ] {
            let reading = read("POST", &format!("/api?{query}"), &[]).unwrap();
            assert_eq!(methods(&reading), ["POST"], "{query}");
        }
    }

    #[test]
    fn overrides_that_are_not_method_names_are_refused() {
        for value in ["DE LETE", "DEL\"ETE", "po\u{17F}t"] {
            let headers = [("x-http-method-override", value)];
            assert_eq!(
                read("POST", "/api", &headers).unwrap_err(),
                RequestError::MethodOverride,
                "{value}"
            );
        }
        for query in ["_method=DE+LETE", "_method=po%C5%BFt", "_method=%00"] {
            assert_eq!(
                read("POST", &format!("/api?{query}"), &[]).unwrap_err(),
                RequestError::MethodOverride,
                "{query}"
            );
        }
    }

    #[test]
    fn a_format_suffix_adds_the_path_without_it() {
        let reading = read("GET", "/api/Admin.tar.gz", &[]).unwrap();
        let paths: Vec<String> = reading.paths.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["/api/admin.tar.gz", "/api/admin", "/api/admin.tar"]);
        let reading = read("GET", "/api/.well-known", &[]).unwrap();
        assert_eq!(reading.paths.len(), 1);
        let reading = read("GET", "/api.v1/admin", &[]).unwrap();
        assert_eq!(reading.paths.len(), 1);
    }

    #[test]
    fn the_strictest_reading_decides() {
        let mut rules = RouteRules::new();
        rules.add_public("/api/public").unwrap();
        rules.add_public("GET /api/docs").unwrap();
        rules.add_required_scopes("/api/messages=read").unwrap();
        rules
            .add_required_scopes("POST /api/messages=write")
            .unwrap();
        rules.add_required_permissions("/api/admin=admin").unwrap();
        let requirements = |method: &str, target: &str, headers: &[(&str, &str)]| match read(
            method, target, headers,
        )
        .unwrap()
        .access(&rules)
        {
            Access::Public => None,
            Access::Token(requirements) => {
                Some(requirements.into_iter().cloned().collect::<Vec<_>>())
            }
        };
        let read_scope = Requirement::all_scopes(["read"]);
        let write_scope = Requirement::all_scopes(["write"]);
        let admin = Requirement::all_permissions(["admin"]);
        assert_eq!(requirements("GET", "/api/docs", &[]), None);
        assert_eq!(
            requirements("GET", "/api/docs?_method=POST", &[]),
            Some(vec![])
        );
        let override_post = [("x-http-method-override", "post")];
        assert_eq!(
            requirements("GET", "/api/messages", &override_post),
            Some(vec![read_scope.clone(), write_scope])
        );
        assert_eq!(
            requirements("GET", "/api/admin.json", &[]),
            Some(vec![admin.clone()])
        );
        assert_eq!(
            requirements("GET", "/api/public.json", &[]),
            Some(vec![]),
            "a suffix only ever adds rules: /api/public.json is not under /api/public"
        );
        assert_eq!(
            requirements("GET", "/api/public/x.json", &override_post),
            None,
            "a public prefix stays public whatever the method"
        );
        let preflight = [("access-control-request-method", "DELETE")];
        assert_eq!(requirements("OPTIONS", "/api/admin", &preflight), None);
        let overridden = [
            ("access-control-request-method", "DELETE"),
            ("x-http-method-override", "DELETE"),
        ];
        assert_eq!(
            requirements("OPTIONS", "/api/admin", &overridden),
            Some(vec![admin.clone()]),
            "an overridden OPTIONS is no preflight"
        );
    }

    #[test]
    fn framing_other_than_plain_chunked_is_refused() {
        assert!(read("POST", "/api", &[("transfer-encoding", "Chunked")]).is_ok());
        for coding in ["gzip, chunked", "chunked, chunked", "identity", "gzip"] {
            assert_eq!(
                read("POST", "/api", &[("transfer-encoding", coding)]).unwrap_err(),
                RequestError::TransferCoding,
                "{coding}"
            );
        }
        let mut request = request("POST", "/api", &[("transfer-encoding", "chunked")]);
        request
            .headers_mut()
            .append("transfer-encoding", "chunked".parse().unwrap());
        assert_eq!(
            Reading::of(&request).unwrap_err(),
            RequestError::TransferCoding
        );
    }

    #[test]
    fn host_must_be_one_valid_authority() {
        let mut request = request("GET", "/api", &[]);
        assert!(Reading::of(&request).is_ok());
        request.headers_mut().remove("host");
        assert_eq!(Reading::of(&request).unwrap_err(), RequestError::Host);
        *request.version_mut() = Version::HTTP_10;
        assert!(Reading::of(&request).is_ok(), "HTTP/1.0 may leave it out");
        for host in ["", "a b", "user@proxy.test", "proxy.test/x"] {
            assert_eq!(
                read("GET", "/api", &[("host", host)]).unwrap_err(),
                RequestError::Host,
                "{host:?}"
            );
        }
        let mut twice = self::request("GET", "/api", &[]);
        twice
            .headers_mut()
            .append("host", "other.test".parse().unwrap());
        assert_eq!(Reading::of(&twice).unwrap_err(), RequestError::Host);
        assert!(read("GET", "http://PROXY.test/api", &[]).is_ok());
        assert_eq!(
            read("GET", "http://other.test/api", &[]).unwrap_err(),
            RequestError::Host
        );
    }
}
