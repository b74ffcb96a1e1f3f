//! Signing in through plain OAuth 2.0 providers: the `github` strategy against a server
//! with GitHub's quirks — a token answer form-encoded unless JSON is asked for, errors
//! with status 200, the user's numeric `id` from `/user` and the verified email only from
//! `/user/emails` — and the `oauth2` strategy, whose profile comes from a userinfo URL
//! through the connection's `profile_map`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::{
    CALLBACK, TestServer, browser, location, meta_refresh_target, params_of, pkce, spawn,
};

const CLIENT_ID: &str = "gh-client";
const CLIENT_SECRET: &str = "gh-secret";
const TOKEN: &str = "gho_fake_access_token";

/// The fake GitHub: codes it issued (code → the PKCE challenge it was asked with),
/// whether the primary email is verified, and whether it shares any email at all (when
/// not, `/user/emails` is refused, as without the `user:email` scope, and `/user` has
/// `"email": null`, a private address).
#[derive(Clone, Default)]
struct Fake {
    codes: Arc<Mutex<HashMap<String, String>>>,
    primary_verified: Arc<Mutex<bool>>,
    shares_no_email: Arc<Mutex<bool>>,
}

/// `GET /login/oauth/authorize`: the user is signed in at the provider and agrees at
/// once; back to `redirect_uri` with a code.
async fn authorize(State(fake): State<Fake>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let code = format!("code-{}", fake.codes.lock().unwrap().len());
    fake.codes.lock().unwrap().insert(
        code.clone(),
        q.get("code_challenge").cloned().unwrap_or_default(),
    );
    let to = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
    (StatusCode::FOUND, [("location", to)]).into_response()
}

/// `POST /login/oauth/access_token`: JSON only when asked; errors with 200.
async fn access_token(
    State(fake): State<Fake>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let json_wanted = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let known = form
        .get("code")
        .and_then(|code| fake.codes.lock().unwrap().remove(code));
    let secret_ok = form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    let pkce_ok = known.as_ref().is_some_and(|challenge| {
        form.get("code_verifier")
            .is_some_and(|verifier| tessera_core::pkce::verify(verifier, challenge).is_ok())
    });
    if !(secret_ok && pkce_ok) {
        let error = json!({"error": "bad_verification_code",
                           "error_description": "The code passed is incorrect or expired."});
        return (StatusCode::OK, axum::Json(error)).into_response();
    }
    if json_wanted {
        axum::Json(
            json!({"access_token": TOKEN, "token_type": "bearer", "scope": "read:user,user:email"}),
        )
        .into_response()
    } else {
        format!("access_token={TOKEN}&scope=read%3Auser&token_type=bearer").into_response()
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
        && headers.contains_key("user-agent")
}

async fn user(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    axum::Json(
        json!({"id": 4242, "login": "octocat", "name": "Mona Octocat", "email": null,
                      "avatar_url": "https://avatars.example/u/4242"}),
    )
    .into_response()
}

async fn emails(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if *fake.shares_no_email.lock().unwrap() {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    }
    let verified = *fake.primary_verified.lock().unwrap();
    axum::Json(json!([
        {"email": "other@octo.example", "primary": false, "verified": true, "visibility": null},
        {"email": "mona@octo.example", "primary": true, "verified": verified, "visibility": "private"},
    ]))
    .into_response()
}

/// A generic provider's profile, in a shape of its own.
async fn profile(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if *fake.shares_no_email.lock().unwrap() {
        return axum::Json(json!({"account": {"number": 77}, "display": "Pat Corp"}))
            .into_response();
    }
    axum::Json(
        json!({"account": {"number": 77}, "contact": {"mail": "pat@corp.example", "checked": true},
                      "display": "Pat Corp"}),
    )
    .into_response()
}

async fn start_fake() -> (String, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake::default();
    *fake.primary_verified.lock().unwrap() = true;
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/user", get(user))
        .route("/api/user/emails", get(emails))
        .route("/api/profile", get(profile))
        .with_state(fake.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, fake)
}

async fn create_connection(server: &TestServer, body: Value) {
    let token = server.management_token(&["create:connections"]).await;
    let response = reqwest::Client::new()
        .request(Method::POST, server.url("/api/v2/connections"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// Signs in through `connection` (the fake agrees at once); the application's answer.
async fn sign_in(server: &TestServer, connection: &str) -> (HashMap<String, String>, String) {
    let down = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "s1"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("connection", connection),
    ]);
    let response = down.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let at_provider = location(&response);
    let sent = params_of(&at_provider);
    assert_eq!(sent["code_challenge_method"], "S256", "{at_provider}");
    assert!(!sent.contains_key("nonce"), "no ID token, no nonce");
    let response = browser().get(&at_provider).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let callback = location(&response);
    let response = down.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let resume = meta_refresh_target(&response.text().await.unwrap());
    let response = down.get(server.url(&resume)).send().await.unwrap();
    let to = location(&response);
    assert!(to.starts_with(CALLBACK), "{to}");
    (params_of(&to), pkce.verifier)
}

fn github(base: &str) -> Value {
    json!({
        "name": "github",
        "strategy": "github",
        "options": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "github_url": base, "github_api_url": format!("{base}/api")},
    })
}

#[tokio::test]
async fn a_github_user_signs_in_with_the_verified_primary_email() {
    let (base, fake) = start_fake().await;
    let server = spawn().await;
    let mut body = github(&base);
    body["enabled_clients"] = json!([server.spa_client_id]);
    create_connection(&server, body).await;

    let (params, verifier) = sign_in(&server, "github").await;
    let (status, tokens) = server.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let user = server
        .store
        .find_user("github|4242")
        .await
        .unwrap()
        .expect("github|4242");
    assert_eq!(user.email.as_deref(), Some("mona@octo.example"));
    assert!(user.email_verified);
    assert_eq!(user.name, "Mona Octocat");
    assert_eq!(user.nickname, "octocat");
    assert_eq!(user.picture, "https://avatars.example/u/4242");
    assert_eq!(user.connection, "github");

    // GitHub says the primary email is not verified: neither is the user's.
    *fake.primary_verified.lock().unwrap() = false;
    let (params, _) = sign_in(&server, "github").await;
    assert!(params.contains_key("code"), "{params:?}");
    let user = server
        .store
        .find_user("github|4242")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.email_verified);
    assert_eq!(user.logins_count, 2);
}

#[tokio::test]
async fn githubs_errors_with_status_200_refuse_the_sign_in() {
    let (base, _) = start_fake().await;
    let server = spawn().await;
    let mut body = github(&base);
    body["enabled_clients"] = json!([server.spa_client_id]);
    // A wrong secret: the fake answers bad_verification_code with 200.
    body["options"]["client_secret"] = json!("wrong-secret");
    create_connection(&server, body).await;
    let (params, _) = sign_in(&server, "github").await;
    assert_eq!(params["error"], "access_denied", "{params:?}");
    assert!(
        params["error_description"].contains("bad_verification_code"),
        "{params:?}"
    );
    assert!(
        server
            .store
            .find_user("github|4242")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_oauth2_provider_is_read_through_its_profile_map() {
    let (base, _) = start_fake().await;
    let server = spawn().await;
    create_connection(
        &server,
        json!({
            "name": "corp",
            "strategy": "oauth2",
            "options": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authorizationURL": format!("{base}/login/oauth/authorize"),
                "tokenURL": format!("{base}/login/oauth/access_token"),
                "userinfo_url": format!("{base}/api/profile"),
                "pkce_enabled": true,
                "scope": "profile",
                "profile_map": {"user_id": "/account/number", "email": "/contact/mail",
                                "email_verified": "/contact/checked", "name": "/display"},
            },
            "enabled_clients": [server.spa_client_id],
        }),
    )
    .await;
    let (params, verifier) = sign_in(&server, "corp").await;
    let (status, tokens) = server.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let user = server
        .store
        .find_user("oauth2|corp|77")
        .await
        .unwrap()
        .expect("oauth2|corp|77");
    assert_eq!(user.email.as_deref(), Some("pat@corp.example"));
    assert!(user.email_verified);
    assert_eq!(user.name, "Pat Corp");
}

/// The Management API's user `user_id` on `server`.
async fn management_user(server: &TestServer, user_id: &str) -> (u16, Value) {
    let token = server.management_token(&["read:users"]).await;
    let id: String = form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
    let response = reqwest::Client::new()
        .get(server.url(&format!("/api/v2/users/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_github_user_who_shares_no_email_signs_in_without_one() {
    let (base, fake) = start_fake().await;
    *fake.shares_no_email.lock().unwrap() = true;
    let server = spawn().await;
    let mut body = github(&base);
    body["enabled_clients"] = json!([server.spa_client_id]);
    create_connection(&server, body).await;

    for logins in 1..=2 {
        let (params, verifier) = sign_in(&server, "github").await;
        let (status, tokens) = server.redeem(&params["code"], &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        let id_token = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(id_token["sub"], "github|4242");
        assert!(id_token.get("email").is_none(), "{id_token}");
        assert!(id_token.get("email_verified").is_none(), "{id_token}");
        assert_eq!(id_token["nickname"], "octocat");

        let user = server
            .store
            .find_user("github|4242")
            .await
            .unwrap()
            .expect("github|4242");
        assert_eq!(user.email, None);
        assert!(!user.email_verified);
        assert_eq!(user.name, "Mona Octocat");
        assert_eq!(user.logins_count, logins, "the same user each time");
        let (status, shown) = management_user(&server, "github|4242").await;
        assert_eq!(status, 200, "{shown}");
        assert!(shown.get("email").is_none(), "{shown}");
        assert!(shown.get("email_verified").is_none(), "{shown}");
        assert_eq!(shown["nickname"], "octocat");
    }

    // Once GitHub shares the address, the next sign-in brings it.
    *fake.shares_no_email.lock().unwrap() = false;
    let (params, verifier) = sign_in(&server, "github").await;
    let (_, tokens) = server.redeem(&params["code"], &verifier).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["email"],
        "mona@octo.example"
    );
    let (_, shown) = management_user(&server, "github|4242").await;
    assert_eq!(shown["email"], "mona@octo.example");
    assert_eq!(shown["email_verified"], true);
}

#[tokio::test]
async fn an_oauth2_provider_without_an_email_where_profile_map_points_signs_in() {
    let (base, fake) = start_fake().await;
    *fake.shares_no_email.lock().unwrap() = true;
    let server = spawn().await;
    create_connection(
        &server,
        json!({
            "name": "corp",
            "strategy": "oauth2",
            "options": {
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "authorizationURL": format!("{base}/login/oauth/authorize"),
                "tokenURL": format!("{base}/login/oauth/access_token"),
                "userinfo_url": format!("{base}/api/profile"),
                "pkce_enabled": true,
                "scope": "profile",
                "profile_map": {"user_id": "/account/number", "email": "/contact/mail",
                                "email_verified": "/contact/checked", "name": "/display"},
            },
            "enabled_clients": [server.spa_client_id],
        }),
    )
    .await;
    let (params, verifier) = sign_in(&server, "corp").await;
    let (status, tokens) = server.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let user = server
        .store
        .find_user("oauth2|corp|77")
        .await
        .unwrap()
        .expect("oauth2|corp|77");
    assert_eq!((user.email, user.name.as_str()), (None, "Pat Corp"));
    assert_eq!(user.nickname, "Pat Corp", "no nickname: the name");
}
