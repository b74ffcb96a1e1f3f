//! Validating an authorization request (RFC 6749 §4.1.2.1 order): the client and its
//! redirect_uri first — a failure there is a page, never a redirect — then everything
//! else, whose failures go back to the verified redirect_uri.

use tessera_core::request::{AuthRequest, ResponseMode, ResponseType, response_mode};
use tessera_core::{Client, ResourceServer, pkce, redirect, scope};

use super::response::{Rejection, Target};
use crate::AppState;
use crate::clock::now;
use crate::edge::params::Params;
use crate::error::PageError;
use crate::grant;
use crate::oauth::issue;

/// Checks the client and redirect_uri (page on failure), then everything else (redirect
/// with an error on failure).
pub(crate) async fn validate(
    state: &AppState,
    params: &Params,
) -> Result<(Client, AuthRequest, Option<ResourceServer>), Rejection> {
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request("Invalid request", "The client_id parameter is missing.")
    })?;
    let client = state.store().find_client(client_id).await?.ok_or_else(|| {
        PageError::bad_request(
            "Unknown application",
            "No application with this client_id is registered.",
        )
    })?;
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
        )
        .into());
    }
    if !redirect::deliverable(redirect_uri, client.app_type) {
        return Err(PageError::bad_request(
            "Callback URL not allowed",
            "This callback URL uses a scheme that responses are never sent to. Register an \
             https callback, or for a native application a private-use scheme such as \
             com.example.app:/callback.",
        )
        .into());
    }

    let response_type = params.get("response_type").map(ResponseType::parse);
    let mode = response_mode(params.get("response_mode"), response_type.flatten());
    let (Ok(delivery) | Err((delivery, _))) = mode;
    if matches!(delivery, ResponseMode::FormPost | ResponseMode::WebMessage) {
        // Both answer with a page that posts to the redirect_uri's origin.
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
                "web_message responses go only to the application's allowed web origins; this redirect_uri's origin is not one of them.",
            )
            .into());
        }
    }
    let target = Box::new(Target {
        redirect_uri: redirect_uri.to_string(),
        mode: delivery,
        state: params.get("state").map(str::to_string),
    });
    let fail = |error: &'static str, description: &str| {
        Rejection::Redirect(target.clone(), error, description.to_string())
    };

    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "Request objects are not supported.",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported.",
        ));
    }
    if let Err((_, description)) = mode {
        return Err(fail("invalid_request", description));
    }
    let response_type = match response_type {
        None => {
            return Err(fail(
                "invalid_request",
                "The response_type parameter is missing.",
            ));
        }
        Some(parsed) => parsed.filter(|rt| rt.is_supported()).ok_or_else(|| {
            fail(
                "unsupported_response_type",
                "Supported response types: code, token, id_token, token id_token.",
            )
        })?,
    };
    if response_type.code && !client.allows_grant("authorization_code") {
        return Err(fail(
            "unauthorized_client",
            "This application may not use the authorization code grant.",
        ));
    }
    if response_type.returns_tokens() && !client.allows_grant("implicit") {
        return Err(fail(
            "unauthorized_client",
            "This application may not use the implicit grant.",
        ));
    }
    let requested_scope = scope::parse(params.get("scope").unwrap_or(""));
    if response_type.id_token && !scope::contains(&requested_scope, "openid") {
        return Err(fail(
            "invalid_request",
            "The openid scope is required when an id_token is requested.",
        ));
    }
    let nonce = params.get("nonce").map(str::to_string);
    if response_type.id_token && nonce.is_none() {
        return Err(fail(
            "invalid_request",
            "The nonce parameter is required when an id_token is returned from the authorization endpoint.",
        ));
    }
    let code_challenge = params.get("code_challenge").map(str::to_string);
    if let Some(challenge) = &code_challenge {
        if !response_type.code {
            return Err(fail(
                "invalid_request",
                "code_challenge is only valid with response_type=code.",
            ));
        }
        if let Err(error) = pkce::check_challenge(challenge, params.get("code_challenge_method")) {
            return Err(fail("invalid_request", &error.to_string()));
        }
    } else if params.get("code_challenge_method").is_some() {
        return Err(fail(
            "invalid_request",
            "code_challenge_method was sent without code_challenge.",
        ));
    }
    if response_type.code && client.is_public() && code_challenge.is_none() {
        return Err(fail(
            "invalid_request",
            "Public applications must use PKCE: send code_challenge with code_challenge_method=S256.",
        ));
    }
    let prompt: Vec<String> = scope::parse(params.get("prompt").unwrap_or(""));
    for value in &prompt {
        if !matches!(
            value.as_str(),
            "none" | "login" | "consent" | "select_account"
        ) {
            return Err(fail("invalid_request", "Unsupported prompt value."));
        }
    }
    if prompt.len() > 1 && scope::contains(&prompt, "none") {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values.",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(value) if value >= 0 => Some(value),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative integer.",
                ));
            }
        },
    };
    let hinted_sub = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match issue::read_id_token_hint(state, hint) {
            Some(hint) => Some(hint.sub),
            None => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint is not an ID token issued here.",
                ));
            }
        },
    };
    let audience = params.get("audience").map(str::to_string);
    let api = grant::audience(state, &client, audience.as_deref())
        .await
        .map_err(|denied| Rejection::denied(&target, denied))?;
    let request = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: target.redirect_uri.clone(),
        response_type,
        response_mode: delivery,
        scope: requested_scope,
        audience,
        state: target.state.clone(),
        nonce,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        hinted_sub,
        screen_hint: params.get("screen_hint").map(str::to_string),
        code_challenge,
        started_at: now(),
    };
    Ok((client, request, api))
}
