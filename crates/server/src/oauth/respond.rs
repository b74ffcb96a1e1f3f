//! Delivering an authorization response (or error) to the client's redirect_uri in the
//! requested response mode: query, fragment, form_post or web_message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tessera_core::redirect;
use tessera_core::request::ResponseMode;

use crate::pages;

fn encode(params: &[(&str, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// Sends `params` to `redirect_uri`. form_post and web_message need the redirect_uri's
/// origin (the form's target; the postMessage target and the allowed frame ancestor);
/// `/authorize` accepts them only for a redirect_uri that has one.
pub(crate) fn deliver(
    mode: ResponseMode,
    redirect_uri: &str,
    params: &[(&str, String)],
) -> Response {
    match mode {
        ResponseMode::Query => {
            let separator = if redirect_uri.contains('?') { '&' } else { '?' };
            pages::redirect(&format!("{redirect_uri}{separator}{}", encode(params)))
        }
        ResponseMode::Fragment => pages::redirect(&format!("{redirect_uri}#{}", encode(params))),
        ResponseMode::FormPost => {
            let Some(origin) = redirect::origin_of(redirect_uri) else {
                return pages::invalid_redirect();
            };
            let mut response = pages::html(
                StatusCode::OK,
                &pages::FormPostPage {
                    action: redirect_uri,
                    fields: params,
                },
            );
            let csp = format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
            );
            set_csp(&mut response, &csp, true);
            response
        }
        ResponseMode::WebMessage => {
            let Some(origin) = redirect::origin_of(redirect_uri) else {
                return pages::invalid_redirect();
            };
            let object: serde_json::Map<String, serde_json::Value> = params
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                .collect();
            let json = serde_json::to_string(&object).expect("strings serialize");
            let mut response = pages::html(
                StatusCode::OK,
                &pages::WebMessagePage {
                    origin: &origin,
                    response_json: &json,
                },
            );
            // This page exists to be framed by the app; only by the app.
            let csp = format!(
                "default-src 'none'; script-src 'self'; frame-ancestors {origin}; base-uri 'none'"
            );
            set_csp(&mut response, &csp, false);
            response
        }
    }
}

fn set_csp(response: &mut Response, csp: &str, deny_framing: bool) {
    if let Ok(value) = HeaderValue::from_str(csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    if deny_framing {
        response
            .headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}
