//! Validating an authorization request (RFC 6749 §4.1.2.1 order): the client and its
//! redirect_uri first — a failure there is a page, never a redirect — then everything
//! else, whose failures go back to the verified redirect_uri. One small check per concern.

use tessera_core::request::{
    AuthRequest, ResponseMode, ResponseType, SUPPORTED_RESPONSE_TYPES, response_mode,
};
use tessera_core::{Client, ResourceServer, pkce, redirect, scope};

use super::response::{Rejection, Target};
use crate::AppState;
use crate::clock::now;
use crate::edge::params::Params;
use crate::error::PageError;
use crate::grant;
use crate::oauth::issue;

/// A failure after the redirect_uri is trusted: the OAuth error code and its description,
/// sent back to the application.
type Failure = (&'static str, String);

fn invalid_request(description: impl Into<String>) -> Failure {
    ("invalid_request", description.into())
}

/// How the request's parameters arrived.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Pushed to `/oauth/par` (being checked there, or taken back by its request_uri).
    Pushed,
    /// In the browser's query or form.
    FrontChannel,
}

/// Checks the client and redirect_uri (page on failure), then everything else (redirect
/// with an error on failure).
pub(crate) async fn validate(
    state: &AppState,
    params: &Params,
    how: Arrival,
) -> Result<(Client, AuthRequest, Option<ResourceServer>), Rejection> {
    let client = client(state, params).await?;
    let redirect_uri = callback(params, &client)?;
    let response_type = params.get("response_type").map(ResponseType::parse);
    let mode = response_mode(params.get("response_mode"), response_type.flatten());
    let (Ok(delivery) | Err((delivery, _))) = mode;
    deliverable_in(delivery, redirect_uri, &client)?;
    let target = Target {
        redirect_uri: redirect_uri.to_string(),
        mode: delivery,
        state: params.get("state").map(str::to_string),
    };
    let back = |(error, description): Failure| {
        Rejection::Redirect(Box::new(target.clone()), error, description)
    };

    unsupported_features(params, mode).map_err(back)?;
    pushed_if_required(&client, how).map_err(back)?;
    let response_type = allowed_response_type(response_type, &client).map_err(back)?;
    let requested_scope = scope::parse(params.get("scope").unwrap_or(""));
    let nonce = openid_parameters(params, response_type, &requested_scope).map_err(back)?;
    let code_challenge = pkce_parameters(params, response_type, &client).map_err(back)?;
    let dpop_jkt = dpop_binding(params, response_type).map_err(back)?;
    let (prompt, max_age) = login_parameters(params).map_err(back)?;
    let hinted_sub = hinted_subject(state, params).map_err(back)?;
    let audience = grant::requested_audience(state, params.get("audience"))
        .await
        .map_err(|denied| Rejection::denied(&target, denied))?;
    let api = grant::audience(state, &client, audience.as_deref())
        .await
        .map_err(|denied| Rejection::denied(&target, denied))?;
    let request = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: target.redirect_uri,
        response_type,
        response_mode: delivery,
        scope: requested_scope,
        audience,
        state: target.state,
        nonce,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        hinted_sub,
        screen_hint: params.get("screen_hint").map(str::to_string),
        connection: params.get("connection").map(str::to_string),
        acr_values: scope::parse(params.get("acr_values").unwrap_or("")),
        code_challenge,
        dpop_jkt,
        started_at: now(),
        parameters: crate::actions::kept_parameters(params.iter()),
    };
    Ok((client, request, api))
}

/// The registered application named by `client_id`.
async fn client(state: &AppState, params: &Params) -> Result<Client, Rejection> {
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request("Invalid request", "The client_id parameter is missing.")
    })?;
    Ok(state
        .config_reads()
        .client(state.store(), client_id)
        .await?
        .ok_or_else(|| {
            PageError::bad_request(
                "Unknown application",
                "No application with this client_id is registered.",
            )
        })?)
}

/// The redirect_uri, when it is one of the application's callbacks and can take a response.
fn callback<'a>(params: &'a Params, client: &Client) -> Result<&'a str, PageError> {
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        PageError::bad_request("Invalid request", "The redirect_uri parameter is missing.")
    })?;
    if !redirect::redirect_uri_allowed(redirect_uri, &client.callbacks, client.app_type) {
        return Err(PageError::bad_request(
            "Callback URL mismatch",
            format!(
                "The redirect_uri is not in the allowed callback URLs of the application \"{}\". \
                 Add it to the application's callbacks (tessera apps update --callbacks).",
                client.name
            ),
        ));
    }
    if !redirect::deliverable(redirect_uri, client.app_type) {
        return Err(PageError::bad_request(
            "Callback URL not allowed",
            "This callback URL uses a scheme that responses are never sent to. Register an \
             https callback, or for a native application a private-use scheme such as \
             com.example.app:/callback.",
        ));
    }
    Ok(redirect_uri)
}

/// form_post and web_message answer with a page that posts to the redirect_uri's origin:
/// it must have one, and for web_message be an allowed web origin.
fn deliverable_in(
    delivery: ResponseMode,
    redirect_uri: &str,
    client: &Client,
) -> Result<(), PageError> {
    if !matches!(delivery, ResponseMode::FormPost | ResponseMode::WebMessage) {
        return Ok(());
    }
    let origin = redirect::origin_of(redirect_uri).ok_or_else(|| {
        PageError::bad_request(
            "Invalid request",
            "response_mode=form_post and web_message need an http(s) redirect_uri; \
             a native application's callback takes query or fragment.",
        )
    })?;
    if delivery == ResponseMode::WebMessage
        && !redirect::origin_allowed(&origin, &client.web_origins)
    {
        return Err(PageError::bad_request(
            "Origin not allowed",
            "web_message responses go only to the application's allowed web origins; this \
             redirect_uri's origin is not one of them.",
        ));
    }
    Ok(())
}

/// Request objects, and a response mode that cannot be used (unknown, or a query for a
/// response carrying tokens).
fn unsupported_features(
    params: &Params,
    mode: Result<ResponseMode, (ResponseMode, &'static str)>,
) -> Result<(), Failure> {
    if params.get("request").is_some() {
        return Err((
            "request_not_supported",
            "Request objects are not supported.".into(),
        ));
    }
    if params.get("request_uri").is_some() {
        return Err((
            "request_uri_not_supported",
            "request_uri is not supported.".into(),
        ));
    }
    mode.map(|_| ())
        .map_err(|(_, description)| invalid_request(description))
}

/// An application that requires pushed authorization requests (RFC 9126 §6) takes none
/// from the front channel; the redirect_uri is registered, so the error goes back there.
fn pushed_if_required(client: &Client, how: Arrival) -> Result<(), Failure> {
    if client.require_pushed_authorization_requests && how != Arrival::Pushed {
        return Err(invalid_request(
            "This application must use pushed authorization requests.",
        ));
    }
    Ok(())
}

/// A supported response type that the application's grant types allow: a code needs the
/// authorization code grant, a token or ID token from `/authorize` the implicit grant — so
/// a hybrid response type needs both, as at Auth0.
fn allowed_response_type(
    parsed: Option<Option<ResponseType>>,
    client: &Client,
) -> Result<ResponseType, Failure> {
    let response_type = parsed
        .ok_or_else(|| invalid_request("The response_type parameter is missing."))?
        .ok_or_else(|| {
            (
                "unsupported_response_type",
                format!(
                    "Supported response types: {}.",
                    SUPPORTED_RESPONSE_TYPES.join(", ")
                ),
            )
        })?;
    if response_type.code && !client.allows_grant("authorization_code") {
        return Err((
            "unauthorized_client",
            "This application may not use the authorization code grant.".into(),
        ));
    }
    if response_type.returns_tokens() && !client.allows_grant("implicit") {
        return Err((
            "unauthorized_client",
            "This application may not use the implicit grant.".into(),
        ));
    }
    Ok(response_type)
}

/// An ID token from the authorization endpoint needs `openid` and a nonce; returns the nonce.
fn openid_parameters(
    params: &Params,
    response_type: ResponseType,
    requested_scope: &[String],
) -> Result<Option<String>, Failure> {
    if response_type.id_token && !scope::contains(requested_scope, "openid") {
        return Err(invalid_request(
            "The openid scope is required when an id_token is requested.",
        ));
    }
    let nonce = params.get("nonce").map(str::to_string);
    if response_type.id_token && nonce.is_none() {
        return Err(invalid_request(
            "The nonce parameter is required when an id_token is returned from the \
             authorization endpoint.",
        ));
    }
    Ok(nonce)
}

/// PKCE: S256 only, with the code flow only, mandatory for public applications; returns the
/// challenge.
fn pkce_parameters(
    params: &Params,
    response_type: ResponseType,
    client: &Client,
) -> Result<Option<String>, Failure> {
    let code_challenge = params.get("code_challenge").map(str::to_string);
    if let Some(challenge) = &code_challenge {
        if !response_type.code {
            return Err(invalid_request(
                "code_challenge is only valid with a response_type that includes code.",
            ));
        }
        pkce::check_challenge(challenge, params.get("code_challenge_method"))
            .map_err(|error| invalid_request(error.to_string()))?;
    } else if params.get("code_challenge_method").is_some() {
        return Err(invalid_request(
            "code_challenge_method was sent without code_challenge.",
        ));
    }
    if response_type.code && client.is_public() && code_challenge.is_none() {
        return Err(invalid_request(
            "Public applications must use PKCE: send code_challenge with \
             code_challenge_method=S256.",
        ));
    }
    Ok(code_challenge)
}

/// `dpop_jkt` (RFC 9449 §10): a JWK SHA-256 thumbprint (43 base64url characters), for a
/// response that includes a code — the one thing it binds.
fn dpop_binding(params: &Params, response_type: ResponseType) -> Result<Option<String>, Failure> {
    let Some(jkt) = params.get("dpop_jkt") else {
        return Ok(None);
    };
    if !response_type.code {
        return Err(invalid_request(
            "dpop_jkt is only valid with a response_type that includes code.",
        ));
    }
    let thumbprint = jkt.len() == 43
        && jkt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !thumbprint {
        return Err(invalid_request(
            "dpop_jkt must be the base64url SHA-256 JWK thumbprint of the DPoP key.",
        ));
    }
    Ok(Some(jkt.to_string()))
}

/// `prompt` (known values; `none` alone) and `max_age` (a non-negative integer).
fn login_parameters(params: &Params) -> Result<(Vec<String>, Option<i64>), Failure> {
    let prompt = scope::parse(params.get("prompt").unwrap_or(""));
    let known = |value: &String| {
        matches!(
            value.as_str(),
            "none" | "login" | "consent" | "select_account"
        )
    };
    if !prompt.iter().all(known) {
        return Err(invalid_request("Unsupported prompt value."));
    }
    if prompt.len() > 1 && scope::contains(&prompt, "none") {
        return Err(invalid_request(
            "prompt=none cannot be combined with other values.",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|value| *value >= 0)
                .ok_or_else(|| invalid_request("max_age must be a non-negative integer."))?,
        ),
    };
    Ok((prompt, max_age))
}

/// The user an `id_token_hint` names, when it is an ID token issued here.
fn hinted_subject(state: &AppState, params: &Params) -> Result<Option<String>, Failure> {
    let Some(hint) = params.get("id_token_hint") else {
        return Ok(None);
    };
    issue::read_id_token_hint(state, hint)
        .map(|hint| Some(hint.sub))
        .ok_or_else(|| invalid_request("id_token_hint is not an ID token issued here."))
}
