//! A hostile upstream identity provider. An OIDC connection trusts the provider an
//! administrator named, not everything that answers in its name: this provider, started
//! here, serves one defect per path prefix — ID tokens with the wrong `iss`, `aud`, `azp`,
//! `nonce`, an expired or future one, an unknown `kid`, no `kid` among several keys,
//! `alg: none`, HS256 keyed with the
//! client secret, a signature by another key; userinfo about another subject; discovery
//! that redirects, is oversized or names another issuer; a token endpoint that errors,
//! redirects or sends no ID token; and an unverified email equal to a password
//! account's. Each sign-in must end at the application with `access_denied` (or, for a
//! provider that cannot be used, a 502 page before the browser leaves), create no user,
//! and never sign anyone in as the password account. A `good` prefix, the control, must
//! succeed: it shows the harness can tell the difference.
//!
//! No email, or an `email` that is no address (text, an object, a number, 10 KB), signs
//! the user in without one, as Auth0 does — never with the malformed value; and such a
//! user cannot be reached through an empty address (users-by-email, password reset,
//! verification).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera_jose::{Algorithm, SigningKey, b64};
use tessera_testkit::{
    CALLBACK, TestServer, browser, location, meta_refresh_target, params_of, pkce, spawn,
};

use crate::harness::Tally;

pub(crate) const CLIENT_ID: &str = "tessera-downstream";
pub(crate) const CLIENT_SECRET: &str = "hostile-test-secret";
pub(crate) const SUB: &str = "hostile-sub";
/// The provider's session id in every ID token (its back-channel logout names it).
pub(crate) const SID: &str = "hostile-sid";
/// What a careless provider echoes in its error: a token's look.
const ECHOED_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJob3N0aWxlIn0.c2lnbmVk";

#[derive(Clone)]
pub(crate) struct Provider {
    pub(crate) base: String,
    pub(crate) key: std::sync::Arc<SigningKey>,
    /// `key` as PKCS#8, to sign a token whose header names no key.
    key_pkcs8: std::sync::Arc<Vec<u8>>,
    pub(crate) other: std::sync::Arc<SigningKey>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Provider {
    pub(crate) fn issuer(&self, defect: &str) -> String {
        format!("{}/{defect}/", self.base)
    }

    fn claims(&self, defect: &str, nonce: &str) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer(defect),
            "aud": CLIENT_ID,
            "sub": SUB,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "sid": SID,
            "email": format!("{defect}@hostile.example"),
            "email_verified": true,
        });
        match defect {
            "wrong-iss" => claims["iss"] = json!("https://elsewhere.example/"),
            "wrong-aud" => claims["aud"] = json!("another-client"),
            "azp-other" => {
                claims["aud"] = json!([CLIENT_ID, "another-client"]);
                claims["azp"] = json!("another-client");
            }
            "wrong-nonce" => claims["nonce"] = json!("not-the-nonce"),
            "no-nonce" => {
                claims.as_object_mut().unwrap().remove("nonce");
            }
            "expired" => {
                claims["iat"] = json!(now - 7200);
                claims["exp"] = json!(now - 3600);
            }
            "future-iat" => claims["iat"] = json!(now + 3600),
            "no-email" => {
                claims.as_object_mut().unwrap().remove("email");
            }
            "email-not-an-email" => claims["email"] = json!("not an email"),
            "email-empty" => claims["email"] = json!(""),
            "email-object" => claims["email"] = json!({"address": "x@hostile.example"}),
            "email-number" => claims["email"] = json!(42),
            // 10 KB: from userinfo (an ID token that large is refused whole, see below).
            "email-huge" => {
                claims.as_object_mut().unwrap().remove("email");
            }
            "email-huge-in-id-token" => claims["email"] = json!(huge_email()),
            "email-markup" => claims["email"] = json!("<script>@hostile.example"),
            "unverified-email" => {
                claims["email"] = json!("demo@example.com");
                claims["email_verified"] = json!(false);
            }
            _ => {}
        }
        claims
    }

    pub(crate) fn id_token(&self, defect: &str, nonce: &str) -> String {
        let claims = self.claims(defect, nonce);
        let payload = b64(claims.to_string().as_bytes());
        let header = |alg: &str| {
            b64(json!({"alg": alg, "typ": "JWT", "kid": self.key.kid()})
                .to_string()
                .as_bytes())
        };
        match defect {
            "unknown-kid" => self.other.sign_jwt("JWT", &claims).unwrap(),
            "bad-signature" => {
                let other = self.other.sign_jwt("JWT", &claims).unwrap();
                let signature = other.rsplit('.').next().unwrap();
                format!("{}.{payload}.{signature}", header("ES256"))
            }
            "alg-none" => format!("{}.{payload}.", header("none")),
            // No `kid`: the control with one key in the set, refused with two.
            "no-kid" | "no-kid-two-keys" => {
                let input = format!(
                    "{}.{payload}",
                    b64(json!({"alg": "ES256", "typ": "JWT"}).to_string().as_bytes())
                );
                let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &self.key_pkcs8,
                )
                .unwrap();
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let signature = pair.sign(&rng, input.as_bytes()).unwrap();
                format!("{input}.{}", b64(signature.as_ref()))
            }
            "hs256" => {
                let input = format!("{}.{payload}", header("HS256"));
                let key = hmac::Key::new(hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
                let tag = hmac::sign(&key, input.as_bytes());
                format!("{input}.{}", b64(tag.as_ref()))
            }
            _ => self.key.sign_jwt("JWT", &claims).unwrap(),
        }
    }
}

async fn discovery(State(p): State<Provider>, Path(defect): Path<String>) -> Response {
    match defect.as_str() {
        "discovery-redirect" => {
            return (
                StatusCode::FOUND,
                [(
                    "location",
                    format!("{}/good/.well-known/openid-configuration", p.base),
                )],
            )
                .into_response();
        }
        "discovery-huge" => {
            let padding = "x".repeat(200 * 1024);
            return axum::Json(json!({"issuer": p.issuer(&defect), "padding": padding}))
                .into_response();
        }
        _ => {}
    }
    let issuer = if defect == "discovery-other-issuer" {
        "https://elsewhere.example/".to_string()
    } else {
        p.issuer(&defect)
    };
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/{defect}/authorize", p.base),
        "token_endpoint": format!("{}/{defect}/token", p.base),
        "jwks_uri": format!("{}/{defect}/jwks", p.base),
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    });
    if defect == "userinfo-other-sub" || defect == "good" {
        document["userinfo_endpoint"] = json!(format!("{}/{defect}/userinfo", p.base));
    }
    // Where a federated logout would send the browser (`upstream_logout`).
    document["end_session_endpoint"] = match defect.as_str() {
        "end-session-javascript" => json!("javascript:alert(document.cookie)"),
        "end-session-network" => json!("http://10.0.0.1/logout"),
        "end-session-huge" => json!(format!("{}/{defect}/logout?{}", p.base, "x".repeat(3000))),
        "end-session-number" => json!(7),
        _ => json!(format!("{}/{defect}/logout", p.base)),
    };
    axum::Json(document).into_response()
}

async fn jwks(State(p): State<Provider>, Path(defect): Path<String>) -> Response {
    let mut key = serde_json::to_value(p.key.public_jwk()).unwrap();
    match defect.as_str() {
        "no-kid" => {
            key.as_object_mut().unwrap().remove("kid");
            axum::Json(json!({"keys": [key]})).into_response()
        }
        "no-kid-two-keys" => {
            axum::Json(json!({"keys": [key, p.other.public_jwk()]})).into_response()
        }
        _ => axum::Json(json!({"keys": [key]})).into_response(),
    }
}

/// The code is the nonce the authorization request carried (the test sends it back),
/// so the token endpoint can put it in the ID token.
async fn token(
    State(p): State<Provider>,
    Path(defect): Path<String>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> Response {
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let nonce = form.get("code").cloned().unwrap_or_default();
    match defect.as_str() {
        "token-error" => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response(),
        // An error that echoes what it was sent, the way a careless provider might: the
        // code as the error's "name", a token in its description.
        "token-error-echo" => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": format!("{ECHOED_TOKEN}{nonce}"),
                "error_description": format!("bad code {nonce}, token {ECHOED_TOKEN}"),
            })),
        )
            .into_response(),
        "token-redirect" => (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", format!("{}/good/token", p.base))],
        )
            .into_response(),
        "no-id-token" => {
            axum::Json(json!({"access_token": "at", "token_type": "Bearer"})).into_response()
        }
        _ => axum::Json(json!({
            "access_token": format!("at-{defect}"),
            "token_type": "Bearer",
            "id_token": p.id_token(&defect, &nonce),
        }))
        .into_response(),
    }
}

async fn userinfo(Path(defect): Path<String>) -> Response {
    let sub = if defect == "userinfo-other-sub" {
        "someone-else"
    } else {
        SUB
    };
    let mut answer = json!({"sub": sub, "name": "From Userinfo"});
    if defect == "email-huge" {
        answer["email"] = json!(huge_email());
        answer["email_verified"] = json!(true);
    }
    axum::Json(answer).into_response()
}

/// A 10 KB `email`, shaped like an address.
fn huge_email() -> String {
    format!("{}@hostile.example", "a".repeat(10 * 1024))
}

pub(crate) async fn start_provider() -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (key, key_pkcs8) = SigningKey::generate(Algorithm::Es256).unwrap();
    let provider = Provider {
        base,
        key: std::sync::Arc::new(key),
        key_pkcs8: std::sync::Arc::new(key_pkcs8),
        other: std::sync::Arc::new(SigningKey::generate(Algorithm::Es256).unwrap().0),
    };
    let app = Router::new()
        .route("/{defect}/.well-known/openid-configuration", get(discovery))
        .route("/{defect}/jwks", get(jwks))
        .route("/{defect}/token", post(token))
        .route("/{defect}/userinfo", get(userinfo))
        .with_state(provider.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    provider
}

/// Creates the connection `h-DEFECT` on `server`, enabled for its SPA.
pub(crate) async fn connect(server: &TestServer, token: &str, provider: &Provider, defect: &str) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/connections"))
        .bearer_auth(token)
        .json(&json!({
            "name": format!("h-{defect}"),
            "strategy": "oidc",
            "options": {
                "discovery_url": format!("{}/{defect}/.well-known/openid-configuration", provider.base),
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            "enabled_clients": [server.spa_client_id],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// How a sign-in through `h-DEFECT` ended.
pub(crate) enum Ended {
    /// A page before the browser left for the provider (its status).
    Page(u16),
    /// Back at the application: its query.
    App(std::collections::HashMap<String, String>),
}

async fn sign_in(server: &TestServer, defect: &str) -> Ended {
    sign_in_with(server, defect, &browser()).await
}

/// [`sign_in`] in `down`, which keeps the session.
pub(crate) async fn sign_in_with(
    server: &TestServer,
    defect: &str,
    down: &reqwest::Client,
) -> Ended {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "app-state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("connection", &format!("h-{defect}")),
    ]);
    let response = down.get(&url).send().await.unwrap();
    if response.status() != 302 {
        return Ended::Page(response.status().as_u16());
    }
    let sent = params_of(&location(&response));
    let callback = server.url(&format!(
        "/login/callback?code={}&state={}",
        sent["nonce"], sent["state"]
    ));
    let response = down.get(&callback).send().await.unwrap();
    if response.status() != 200 {
        return Ended::Page(response.status().as_u16());
    }
    let response = down
        .get(server.url(&meta_refresh_target(&response.text().await.unwrap())))
        .send()
        .await
        .unwrap();
    let to = location(&response);
    assert!(to.starts_with(CALLBACK), "{to}");
    Ended::App(params_of(&to))
}

#[tokio::test]
async fn a_hostile_provider_signs_nobody_in() {
    let mut tally = Tally::new("upstream/hostile_provider");
    let provider = start_provider().await;
    let server = spawn().await;
    let token = server
        .management_token(&["create:connections", "read:connections"])
        .await;

    // The controls: a provider doing everything right is let in, and so is one whose only
    // key has no `kid` and whose ID token names none (OIDC Core §10.1).
    for control in ["good", "no-kid"] {
        connect(&server, &token, &provider, control).await;
        match sign_in(&server, control).await {
            Ended::App(params) => tally.case(
                format_args!("the control provider {control} signs its user in"),
                params.contains_key("code"),
                format_args!("{params:?}"),
            ),
            Ended::Page(status) => tally.case(
                format_args!("the control provider {control} signs its user in"),
                false,
                status,
            ),
        }
    }

    let at_the_callback = [
        "wrong-iss",
        "wrong-aud",
        "azp-other",
        "wrong-nonce",
        "no-nonce",
        "expired",
        "future-iat",
        "unknown-kid",
        "bad-signature",
        "alg-none",
        "no-kid-two-keys",
        "hs256",
        "userinfo-other-sub",
        "token-error",
        "token-redirect",
        "no-id-token",
        // Over the 8 KB a JWT may have: refused before its claims are read.
        "email-huge-in-id-token",
    ];
    for defect in at_the_callback {
        connect(&server, &token, &provider, defect).await;
        match sign_in(&server, defect).await {
            Ended::App(params) => tally.case(
                format_args!("{defect}: the application gets access_denied"),
                params.get("error").map(String::as_str) == Some("access_denied")
                    && !params.contains_key("code"),
                format_args!("{params:?}"),
            ),
            Ended::Page(status) => tally.case(
                format_args!("{defect}: the application gets access_denied"),
                false,
                status,
            ),
        }
        let user = server
            .store
            .find_user(&format!("oidc|h-{defect}|{SUB}"))
            .await
            .unwrap();
        tally.case(
            format_args!("{defect}: no user created"),
            user.is_none(),
            format_args!("{user:?}"),
        );
    }

    for defect in [
        "discovery-redirect",
        "discovery-huge",
        "discovery-other-issuer",
    ] {
        connect(&server, &token, &provider, defect).await;
        match sign_in(&server, defect).await {
            Ended::Page(status) => tally.status(
                format_args!("{defect}: a 502 page, the browser never leaves"),
                status,
                502,
            ),
            Ended::App(params) => tally.case(
                format_args!("{defect}: a 502 page, the browser never leaves"),
                false,
                format_args!("{params:?}"),
            ),
        }
    }

    // An unverified email equal to a password account's: a user of its own, never the
    // password account.
    connect(&server, &token, &provider, "unverified-email").await;
    let ended = sign_in(&server, "unverified-email").await;
    let federated = server
        .store
        .find_user(&format!("oidc|h-unverified-email|{SUB}"))
        .await
        .unwrap();
    let local = server
        .store
        .find_user(&server.user_id)
        .await
        .unwrap()
        .unwrap();
    tally.case(
        "an unverified email equal to a password account's: its own user, unverified",
        matches!(ended, Ended::App(ref p) if p.contains_key("code"))
            && federated.as_ref().is_some_and(|u| !u.email_verified)
            && local.logins_count == 0,
        format_args!("{federated:?}, local logins {}", local.logins_count),
    );
    tally.finish();
}

/// The upstream's answers that carry no usable email.
const NO_USABLE_EMAIL: [&str; 7] = [
    "no-email",
    "email-not-an-email",
    "email-empty",
    "email-object",
    "email-number",
    "email-huge",
    "email-markup",
];

#[tokio::test]
async fn an_upstream_without_a_usable_email_signs_in_without_one() {
    let mut tally = Tally::new("upstream/no_usable_email");
    let provider = start_provider().await;
    let server = spawn().await;
    let token = server
        .management_token(&[
            "create:connections",
            "read:users",
            "update:users",
            "create:user_tickets",
        ])
        .await;
    let http = reqwest::Client::new();
    for defect in NO_USABLE_EMAIL {
        connect(&server, &token, &provider, defect).await;
        let user_id = format!("oidc|h-{defect}|{SUB}");
        for attempt in ["first", "second"] {
            let ended = sign_in(&server, defect).await;
            tally.case(
                format_args!("{defect}: the {attempt} sign-in succeeds"),
                matches!(ended, Ended::App(ref p) if p.contains_key("code")),
                match ended {
                    Ended::App(p) => format!("{p:?}"),
                    Ended::Page(status) => status.to_string(),
                },
            );
        }
        let user = server.store.find_user(&user_id).await.unwrap();
        tally.case(
            format_args!("{defect}: one user, without an email, not verified"),
            user.as_ref()
                .is_some_and(|u| u.email.is_none() && !u.email_verified && u.logins_count == 2),
            format_args!(
                "{:?}",
                user.as_ref()
                    .map(|u| (&u.email, u.email_verified, u.logins_count))
            ),
        );
        let id = user_id.replace('|', "%7C");
        let shown: Value = http
            .get(server.url(&format!("/api/v2/users/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tally.case(
            format_args!("{defect}: the Management API shows no email members"),
            shown["user_id"] == user_id.as_str()
                && shown.get("email").is_none()
                && shown.get("email_verified").is_none(),
            &shown,
        );
    }

    // Such a user is never found through an empty (or blank) address.
    let emailless = format!("oidc|h-no-email|{SUB}");
    let before = server.store.find_user(&emailless).await.unwrap();
    for email in ["", "%20", "%00", "null"] {
        let response = http
            .get(server.url(&format!("/api/v2/users-by-email?email={email}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        tally.case(
            format_args!("users-by-email?email={email}: 400, nobody found"),
            status == 400 && !body.contains(&emailless),
            format_args!("{status} {body}"),
        );
    }
    let response = http
        .get(server.url("/api/v2/users?q=email%3A%22%22"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    tally.case(
        "users?q=email:\"\": never the users without an email",
        !body.contains(&emailless) && (status == 200 || status == 400),
        format_args!("{status} {body}"),
    );

    // Password reset with an empty address is refused and changes nothing; for the
    // upstream connection too (no passwords there).
    for (connection, email) in [
        ("Username-Password-Authentication", json!("")),
        ("Username-Password-Authentication", json!(" ")),
        ("Username-Password-Authentication", Value::Null),
        ("h-no-email", json!("")),
    ] {
        let response = http
            .post(server.url("/dbconnections/change_password"))
            .json(&json!({
                "client_id": server.spa_client_id,
                "email": email,
                "connection": connection,
            }))
            .send()
            .await
            .unwrap();
        tally.status(
            format_args!("change_password {connection} with email {email}: 400"),
            response.status().as_u16(),
            400,
        );
    }

    // No verification for an address the user does not have.
    for (path, body) in [
        (
            "/api/v2/tickets/email-verification",
            json!({"user_id": emailless}),
        ),
        (
            "/api/v2/jobs/verification-email",
            json!({"user_id": emailless}),
        ),
    ] {
        let response = http
            .post(server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        tally.status(
            format_args!("POST {path} for a user without an email: 400"),
            response.status().as_u16(),
            400,
        );
    }
    let response = http
        .patch(server.url(&format!("/api/v2/users/{}", emailless.replace('|', "%7C"))))
        .bearer_auth(&token)
        .json(&json!({"email_verified": true}))
        .send()
        .await
        .unwrap();
    tally.status(
        "PATCH email_verified: true on a user without an email: 400",
        response.status().as_u16(),
        400,
    );
    let after = server.store.find_user(&emailless).await.unwrap();
    tally.case(
        "the user without an email is unchanged by all of it",
        before.is_some() && before == after,
        format_args!("{before:?} → {after:?}"),
    );
    tally.finish();
}

/// A provider's error text that echoes a token and the code it was sent: the sign-in is
/// refused and recorded as a failed login (`f`) at the connection, but neither the token
/// nor the code reaches the audit log or the application's `error_description`.
#[tokio::test]
async fn a_providers_echoed_token_reaches_neither_the_log_nor_the_application() {
    let mut tally = Tally::new("upstream/echoed_error");
    let provider = start_provider().await;
    let server = spawn().await;
    let token = server
        .management_token(&["create:connections", "read:connections", "read:logs"])
        .await;
    connect(&server, &token, &provider, "token-error-echo").await;
    let params = match sign_in(&server, "token-error-echo").await {
        Ended::App(params) => params,
        Ended::Page(status) => panic!("ended on a page: {status}"),
    };
    tally.case(
        "the application gets access_denied",
        params.get("error").map(String::as_str) == Some("access_denied"),
        format_args!("{params:?}"),
    );
    let description = params.get("error_description").cloned().unwrap_or_default();
    tally.case(
        "the error_description does not repeat the token",
        !description.contains("eyJ") && description.contains("unrecognized_error"),
        &description,
    );
    let response = reqwest::Client::new()
        .get(server.url("/api/v2/logs?q=type:f&per_page=100"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    tally.status("reading the failed logins", response.status().as_u16(), 200);
    let events: Vec<Value> = response.json().await.unwrap();
    tally.case(
        "the refusal is a failed login at the connection",
        events.len() == 1 && events[0]["connection"] == "h-token-error-echo",
        format_args!("{events:?}"),
    );
    let everything = serde_json::to_string(&events).unwrap();
    tally.case(
        "no event holds the echoed token",
        !everything.contains("eyJ"),
        &everything,
    );
    tally.finish();
}
