//! Security headers on every response: HTML pages get a strict CSP, framing denial and
//! no referrer; handlers that need a different CSP (web_message, form_post) set their own.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

pub(crate) const DEFAULT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Marks a response that carries a secret or a one-time state (tokens, codes, keys) as
/// never to be stored by a cache or the browser.
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The CSP of a page whose form ends, through redirects, at `redirect_uri`: browsers apply
/// `form-action` to every redirect after a form submission, so the login form must be
/// allowed to lead to the application's origin.
pub(crate) fn form_page_csp(redirect_uri: &str) -> Option<HeaderValue> {
    let destination = tessera_core::redirect::form_action_source(redirect_uri)?;
    let csp = DEFAULT_CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {destination}"),
    );
    HeaderValue::from_str(&csp).ok()
}

pub(crate) async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    // Only the path is logged: query strings may carry state, codes or hints.
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");

    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DEFAULT_CSP),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if state.hsts() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
