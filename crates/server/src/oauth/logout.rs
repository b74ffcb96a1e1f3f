//! Logout: Auth0's `/v2/logout` and OpenID Connect RP-initiated logout (`/oidc/logout`).
//! Both end the Tessera session. A return URL is followed only when it is one of the
//! application's allowed logout URLs, exactly; otherwise a page, never a redirect. With
//! Auth0's `federated`, a session signed in through an upstream OpenID Connect provider
//! that has an end-session endpoint goes on to end there too, the provider sending the
//! browser to that same return URL.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Client;
use tessera_store::SessionRecord;

use crate::AppState;
use crate::edge::params::Params;
use crate::error::PageError;
use crate::hosted::session;
use crate::oauth::issue;
use crate::pages;

fn logged_out_page() -> Response {
    pages::message_page(
        "You are logged out",
        "You have been logged out. You can close this window.",
    )
}

fn with_cleared_session(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

async fn find_client(
    state: &AppState,
    client_id: Option<&str>,
) -> Result<Option<Client>, PageError> {
    match client_id {
        None => Ok(None),
        Some(id) => match state.store().find_client(id).await? {
            Some(client) => Ok(Some(client)),
            None => Err(PageError::bad_request(
                "Unknown application",
                "No application with this client_id is registered.",
            )),
        },
    }
}

/// Where the browser goes once Tessera's session has ended: with `federated`, through the
/// end-session endpoint of the provider the session was signed in with, when there is one
/// (then on to `destination`, which the provider must know); else to `destination` or the
/// logged-out page.
async fn onward(
    state: &AppState,
    (federated, ended): (bool, Option<&SessionRecord>),
    destination: Option<String>,
) -> Result<Response, PageError> {
    let connection = match ended.and_then(|session| session.connection.as_deref()) {
        Some(name) if federated => {
            state
                .config_reads()
                .connection_named(state.store(), name)
                .await?
        }
        _ => None,
    };
    if let Some(connection) = connection
        && let Some(url) = state
            .upstreams()
            .end_session_url(&connection, destination.as_deref())
            .await
    {
        return Ok(pages::redirect(&url));
    }
    Ok(match destination {
        Some(url) => pages::redirect(&url),
        None => logged_out_page(),
    })
}

fn not_allowed(parameter: &str) -> PageError {
    PageError::bad_request(
        "Logout URL not allowed",
        format!(
            "You have been logged out, but the {parameter} is not one of the application's allowed logout URLs, \
             so you were not sent back."
        ),
    )
}

pub(crate) async fn v2_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (cookie, ended) = match session::end(&state, &headers).await {
        Ok(ended) => ended,
        Err(error) => return PageError::from(error).into_response(),
    };
    let result = async {
        let params = Params::from_urlencoded(query.unwrap_or_default().as_bytes())
            .map_err(|e| PageError::bad_request("Invalid request", e.to_string()))?;
        let federated = params.has("federated");
        let client = find_client(&state, params.get("client_id")).await?;
        let destination = match (params.get("returnTo"), &client) {
            (Some(return_to), Some(client))
                if client.allowed_logout_urls.iter().any(|u| u == return_to) =>
            {
                Some(return_to.to_string())
            }
            (Some(_), _) => return Err(not_allowed("returnTo URL")),
            (None, Some(client)) => client.allowed_logout_urls.first().cloned(),
            (None, None) => None,
        };
        onward(&state, (federated, ended.as_ref()), destination).await
    }
    .await;
    with_cleared_session(result.unwrap_or_else(IntoResponse::into_response), cookie)
}

pub(crate) async fn oidc_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_urlencoded(query.unwrap_or_default().as_bytes());
    oidc_logout_with(&state, &headers, params).await
}

pub(crate) async fn oidc_logout_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::from_body(&headers, &body, false);
    oidc_logout_with(&state, &headers, params).await
}

async fn oidc_logout_with(
    state: &AppState,
    headers: &HeaderMap,
    params: Result<Params, crate::edge::params::ParamsError>,
) -> Response {
    let (cookie, ended) = match session::end(state, headers).await {
        Ok(ended) => ended,
        Err(error) => return PageError::from(error).into_response(),
    };
    let result = async {
        let params =
            params.map_err(|e| PageError::bad_request("Invalid request", e.to_string()))?;
        let federated = params.has("federated");
        // The hint names the client; an expired hint is still a valid hint.
        let hinted_client = match params.get("id_token_hint") {
            None => None,
            Some(hint) => Some(
                issue::read_id_token_hint(state, hint)
                    .ok_or_else(|| {
                        PageError::bad_request(
                            "Invalid request",
                            "The id_token_hint is not an ID token issued here.",
                        )
                    })?
                    .client_id,
            ),
        };
        let client_id = match (params.get("client_id"), hinted_client.as_deref()) {
            (Some(given), Some(hinted)) if given != hinted => {
                return Err(PageError::bad_request(
                    "Invalid request",
                    "client_id does not match the id_token_hint.",
                ));
            }
            (Some(given), _) => Some(given),
            (None, hinted) => hinted,
        };
        let client = find_client(state, client_id).await?;
        match (params.get("post_logout_redirect_uri"), client) {
            (Some(uri), Some(client)) if client.allowed_logout_urls.iter().any(|u| u == uri) => {
                let location = match params.get("state") {
                    Some(value) => {
                        let separator = if uri.contains('?') { '&' } else { '?' };
                        let encoded: String = form_urlencoded::Serializer::new(String::new())
                            .append_pair("state", value)
                            .finish();
                        format!("{uri}{separator}{encoded}")
                    }
                    None => uri.to_string(),
                };
                onward(state, (federated, ended.as_ref()), Some(location)).await
            }
            (Some(_), _) => Err(not_allowed("post_logout_redirect_uri")),
            (None, _) => onward(state, (federated, ended.as_ref()), None).await,
        }
    }
    .await;
    with_cleared_session(result.unwrap_or_else(IntoResponse::into_response), cookie)
}
