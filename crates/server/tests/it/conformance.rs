//! The OpenID Foundation conformance suite's oidcc-basic, oidcc-implicit and oidcc-config
//! plan modules, ported as black-box tests (one per module, named after it), plus the
//! generic OAuth checks. `tests/CONFORMANCE.md` maps each module to its test.

use serde_json::{Value, json};
use tessera_testkit::*;

/// Code flow with PKCE for the signed-in browser (signing in if needed) and redemption.
async fn code_tokens(
    server: &TestServer,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
) -> (Value, String) {
    let pkce = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "conformance-state"),
        ("nonce", "conformance-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(key, _)| key != k);
        params.push((k, v));
    }
    let back = server
        .sign_in(browser, &server.authorize_url(&params))
        .await;
    let query = params_of(&back);
    assert_eq!(query["state"], "conformance-state");
    assert_eq!(query["iss"], server.issuer, "RFC 9207 iss");
    let (status, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.spa_client_id),
            ("code", &query["code"]),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    (tokens, query["code"].clone())
}

async fn id_claims(server: &TestServer, tokens: &Value) -> Value {
    server
        .verify(
            tokens["id_token"].as_str().expect("an id_token"),
            &server.spa_client_id,
        )
        .await
}

async fn userinfo_get(server: &TestServer, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

// ---- oidcc-config ----------------------------------------------------------------------

#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let server = spawn().await;
    let doc: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], json!(server.issuer));
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        let url = doc[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing"));
        assert!(url.starts_with(&server.issuer), "{field}: {url}");
    }
    for (field, must_contain) in [
        ("response_types_supported", "code"),
        ("response_types_supported", "id_token"),
        ("response_types_supported", "token id_token"),
        ("subject_types_supported", "public"),
        ("id_token_signing_alg_values_supported", "RS256"),
        ("scopes_supported", "openid"),
        ("grant_types_supported", "authorization_code"),
        ("grant_types_supported", "implicit"),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_basic",
        ),
        ("claims_supported", "sub"),
    ] {
        assert!(
            doc[field]
                .as_array()
                .unwrap()
                .contains(&json!(must_contain)),
            "{field} lacks {must_contain}"
        );
    }
    assert!(
        !doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );
    let jwks: Value = reqwest::get(doc["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key["kid"].is_string() && key["kty"].is_string() && key["use"] == "sig");
    }
}

// ---- oidcc-basic ------------------------------------------------------------------------

#[tokio::test]
async fn oidcc_server() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    let id = id_claims(&server, &tokens).await;
    assert_eq!(id["iss"], json!(server.issuer));
    assert_eq!(id["aud"], json!(server.spa_client_id));
    assert_eq!(id["nonce"], "conformance-nonce");
    assert!(id["exp"].as_i64().unwrap() > now() && id["iat"].as_i64().unwrap() <= now() + 1);
    assert_eq!(tokens["token_type"], "Bearer");
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let server = spawn().await;
    let response = browser()
        .get(server.authorize_url(&[("scope", "openid"), ("state", "s")]))
        .send()
        .await
        .unwrap();
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "s");
}

#[tokio::test]
async fn oidcc_userinfo_get() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    let (status, info) = userinfo_get(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], json!(server.user_id));
}

#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    let response = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["sub"],
        json!(server.user_id)
    );
}

#[tokio::test]
async fn oidcc_userinfo_post_body() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    let response = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .form(&[("access_token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["sub"],
        json!(server.user_id)
    );
}

/// RFC 6750 §2.3: the `access_token` query parameter (passport-auth0 sends it so), one
/// way of sending the token at a time.
#[tokio::test]
async fn userinfo_takes_the_token_as_a_query_parameter_once() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    let token = tokens["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let query = |extra: &str| server.url(&format!("/userinfo?access_token={token}{extra}"));

    let response = http.get(query("")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["sub"], json!(server.user_id));

    let refusals = [
        (http.get(query("")).bearer_auth(token), "query and header"),
        (
            http.post(query("")).form(&[("access_token", token)]),
            "query and body",
        ),
        (
            http.get(query(&format!("&access_token={token}"))),
            "twice in the query",
        ),
    ];
    for (request, what) in refusals {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        assert!(
            !body.to_string().contains(token),
            "{what}: the token echoed"
        );
    }

    let response = http
        .get(server.url("/userinfo?access_token=not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let server = spawn().await;
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let back = server.sign_in(&browser(), &url).await;
    let code = params_of(&back)["code"].clone();
    let (status, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.spa_client_id),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(status, 200);
    assert!(id_claims(&server, &tokens).await.get("nonce").is_none());
}

#[tokio::test]
async fn oidcc_scope_profile() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[("scope", "openid profile")]).await;
    let (_, info) = userinfo_get(&server, tokens["access_token"].as_str().unwrap()).await;
    for claim in ["name", "nickname", "picture", "updated_at"] {
        assert!(info.get(claim).is_some(), "{claim}");
    }
    assert!(info.get("email").is_none());
}

#[tokio::test]
async fn oidcc_scope_email() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[("scope", "openid email")]).await;
    let (_, info) = userinfo_get(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["email"], json!(server.user_email));
    assert_eq!(info["email_verified"], true);
    assert!(info.get("nickname").is_none());
}

#[tokio::test]
async fn oidcc_scope_address() {
    // Unsupported scopes are ignored: the request succeeds without address claims.
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[("scope", "openid address")]).await;
    assert_eq!(tokens["scope"], "openid");
}

#[tokio::test]
async fn oidcc_scope_phone() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[("scope", "openid phone")]).await;
    assert_eq!(tokens["scope"], "openid");
}

#[tokio::test]
async fn oidcc_scope_all() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(
        &server,
        &browser(),
        &[("scope", "openid profile email address phone")],
    )
    .await;
    assert_eq!(tokens["scope"], "openid profile email");
    let id = id_claims(&server, &tokens).await;
    assert!(id.get("email").is_some() && id.get("name").is_some());
}

#[tokio::test]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[("scope", "email openid")]).await;
    assert_eq!(tokens["scope"], "email openid");
    assert!(id_claims(&server, &tokens).await.get("email").is_some());
}

#[tokio::test]
async fn oidcc_display_page() {
    let server = spawn().await;
    code_tokens(&server, &browser(), &[("display", "page")]).await;
}

#[tokio::test]
async fn oidcc_display_popup() {
    let server = spawn().await;
    code_tokens(&server, &browser(), &[("display", "popup")]).await;
}

#[tokio::test]
async fn oidcc_prompt_login() {
    let server = spawn().await;
    let browser = browser();
    let (first, _) = code_tokens(&server, &browser, &[]).await;
    let first_auth_time = id_claims(&server, &first).await["auth_time"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "login"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    assert!(
        location(&response).starts_with("/u/login"),
        "prompt=login shows the login page despite the session"
    );
    let (second, _) = code_tokens(&server, &browser, &[("prompt", "login")]).await;
    assert!(
        id_claims(&server, &second).await["auth_time"]
            .as_i64()
            .unwrap()
            > first_auth_time
    );
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let server = spawn().await;
    let pkce = pkce();
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "s"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap();
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "s");
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let server = spawn().await;
    let browser = browser();
    code_tokens(&server, &browser, &[]).await;
    let (tokens, _) = code_tokens(&server, &browser, &[("prompt", "none")]).await;
    assert!(tokens["id_token"].is_string());
}

#[tokio::test]
async fn oidcc_max_age_1() {
    let server = spawn().await;
    let browser = browser();
    let (first, _) = code_tokens(&server, &browser, &[]).await;
    let first_auth_time = id_claims(&server, &first).await["auth_time"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("max_age", "1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    assert!(
        location(&browser.get(&url).send().await.unwrap()).starts_with("/u/login"),
        "the session is too old"
    );
    let (second, _) = code_tokens(&server, &browser, &[("max_age", "1")]).await;
    let auth_time = id_claims(&server, &second).await["auth_time"]
        .as_i64()
        .unwrap();
    assert!(auth_time > first_auth_time && now() - auth_time <= 2);
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let server = spawn().await;
    let browser = browser();
    code_tokens(&server, &browser, &[]).await;
    let (tokens, _) = code_tokens(
        &server,
        &browser,
        &[("max_age", "10000"), ("prompt", "none")],
    )
    .await;
    assert!(id_claims(&server, &tokens).await["auth_time"].is_i64());
}

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let server = spawn().await;
    code_tokens(
        &server,
        &browser(),
        &[("extra_parameter", "ignored"), ("auth0Client", "eyJ9")],
    )
    .await;
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let server = spawn().await;
    let browser = browser();
    let (tokens, _) = code_tokens(&server, &browser, &[]).await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let (again, _) = code_tokens(
        &server,
        &browser,
        &[("prompt", "none"), ("id_token_hint", &hint)],
    )
    .await;
    assert_eq!(
        id_claims(&server, &again).await["sub"],
        json!(server.user_id)
    );
}

#[tokio::test]
async fn oidcc_id_token_hint_of_another_user_is_not_answered_from_this_session() {
    let server = spawn().await;
    // The hint belongs to the test user; the second browser's session to someone else.
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    create_user(&server.store, "other@example.com", PASSWORD).await;
    let other = browser();
    let pkce = pkce();
    let challenge = [
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        challenge[0],
        challenge[1],
    ]);
    let response = server
        .submit_login(&other, &url, "other@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 303);

    let with_hint = |extra: &[(&str, &str)]| {
        let mut params = vec![
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("id_token_hint", hint.as_str()),
            challenge[0],
            challenge[1],
        ];
        params.extend_from_slice(extra);
        server.authorize_url(&params)
    };
    // prompt=none: login_required, not a code for the other user.
    let response = other
        .get(with_hint(&[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    let back = params_of(&location(&response));
    assert_eq!(back["error"], "login_required");
    assert_eq!(back["state"], "s");
    // Without prompt: the login page, not a silent answer.
    let response = other.get(with_hint(&[])).send().await.unwrap();
    assert!(location(&response).starts_with("/u/login"));
    // Signing in there as the other user again still does not answer for the hint.
    let response = server
        .submit_login(&other, &with_hint(&[]), "other@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    let response = other
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap();
    assert_eq!(params_of(&location(&response))["error"], "login_required");

    // A hint that is not an ID token of ours is refused.
    let response = other
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("id_token_hint", "eyJhbGciOiJub25lIn0.e30."),
            challenge[0],
            challenge[1],
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(params_of(&location(&response))["error"], "invalid_request");
}

#[tokio::test]
async fn oidcc_login_hint() {
    let server = spawn().await;
    let browser = browser();
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid"),
        ("login_hint", "hinted@example.com"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    let page = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("value=\"hinted@example.com\""),
        "the login page is prefilled"
    );
}

#[tokio::test]
async fn oidcc_ui_locales() {
    let server = spawn().await;
    code_tokens(&server, &browser(), &[("ui_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_claims_locales() {
    let server = spawn().await;
    code_tokens(&server, &browser(), &[("claims_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let server = spawn().await;
    code_tokens(&server, &browser(), &[("acr_values", "1 2")]).await;
}

#[tokio::test]
async fn oidcc_claims_essential() {
    // The claims parameter is not supported (claims_parameter_supported: false): the
    // request succeeds and the scope decides what is returned.
    let server = spawn().await;
    let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
    code_tokens(&server, &browser(), &[("claims", claims)]).await;
}

#[tokio::test]
async fn oidcc_codereuse() {
    let server = spawn().await;
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = params_of(&server.sign_in(&browser, &url).await)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    assert_eq!(server.token(&form).await.0, 200);
    let (status, body) = server.token(&form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let server = spawn().await;
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb&response_type=code&scope=openid",
        server.base, server.spa_client_id
    );
    let response = browser().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    // A confidential web application authenticating with client_secret_post.
    let server = spawn().await;
    let secret = tessera_core::ids::client_secret();
    let web = client("Web app", tessera_core::AppType::RegularWeb, Some(&secret));
    server.store.create_client(&web).await.unwrap();
    let browser = browser();
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&response_type=code&scope=openid&nonce=n",
        server.base, web.client_id
    );
    let code = params_of(&server.sign_in(&browser, &url).await)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", web.client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let (status, tokens) = server.token(&form).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        server
            .verify(tokens["id_token"].as_str().unwrap(), &web.client_id)
            .await["nonce"],
        "n"
    );
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let server = spawn().await;
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("request", "eyJhbGciOiJub25lIn0.eyJ9."),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        params_of(&location(&response))["error"],
        "request_not_supported"
    );
}

#[tokio::test]
async fn oidcc_request_uri_unsigned() {
    let server = spawn().await;
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("request_uri", "https://rp.example/req"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        params_of(&location(&response))["error"],
        "request_uri_not_supported"
    );
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[("scope", "openid offline_access")]).await;
    let first = id_claims(&server, &tokens).await;
    let (status, refreshed) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, 200);
    let second = id_claims(&server, &refreshed).await;
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(
            first[claim], second[claim],
            "{claim} is stable across refresh"
        );
    }
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let server = spawn().await;
    code_tokens(&server, &browser(), &[]).await;
}

#[tokio::test]
async fn oidcc_server_rotate_keys() {
    let server = spawn().await;
    let browser = browser();
    tessera_server::keys::rotate(
        &server.store,
        &server.master_key,
        tessera_jose::Algorithm::Rs256,
        now(),
    )
    .await
    .unwrap();
    // New ID tokens carry a kid published in the JWKS (verified through it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (tokens, _) = code_tokens(&server, &browser, &[]).await;
        let kid = jsonwebtoken::decode_header(tokens["id_token"].as_str().unwrap())
            .unwrap()
            .kid
            .unwrap();
        id_claims(&server, &tokens).await;
        let jwks = server.jwks().await;
        if jwks.keys.first().and_then(|k| k.common.key_id.clone()) == Some(kid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated key is not in use"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

// ---- oidcc-implicit ---------------------------------------------------------------------

async fn implicit(
    server: &TestServer,
    browser: &reqwest::Client,
    response_type: &str,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let mut params = vec![
        ("response_type", response_type),
        ("scope", "openid"),
        ("nonce", "implicit-nonce"),
        ("state", "st"),
    ];
    params.extend_from_slice(extra);
    let back = server
        .sign_in(browser, &server.authorize_url(&params))
        .await;
    assert!(
        back.contains('#'),
        "implicit responses use the fragment: {back}"
    );
    params_of(&back)
}

#[tokio::test]
async fn oidcc_implicit_server_id_token() {
    let server = spawn().await;
    let params = implicit(&server, &browser(), "id_token", &[]).await;
    let id = server
        .verify(&params["id_token"], &server.spa_client_id)
        .await;
    assert_eq!(id["nonce"], "implicit-nonce");
    assert!(id.get("at_hash").is_none());
}

#[tokio::test]
async fn oidcc_implicit_server_id_token_token() {
    let server = spawn().await;
    let params = implicit(&server, &browser(), "id_token token", &[]).await;
    let id = server
        .verify(&params["id_token"], &server.spa_client_id)
        .await;
    assert_eq!(
        id["at_hash"],
        json!(tessera_core::claims::at_hash(&params["access_token"]))
    );
    let (status, info) = userinfo_get(&server, &params["access_token"]).await;
    assert_eq!((status, info["sub"].clone()), (200, json!(server.user_id)));
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_fails_for_implicit() {
    let server = spawn().await;
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "id_token token"),
            ("scope", "openid"),
            ("state", "s"),
        ]))
        .send()
        .await
        .unwrap();
    let back = location(&response);
    assert!(back.contains('#'));
    assert_eq!(params_of(&back)["error"], "invalid_request");
}

#[tokio::test]
async fn oidcc_implicit_form_post() {
    let server = spawn().await;
    let browser = browser();
    implicit(&server, &browser, "id_token", &[]).await;
    let url = server.authorize_url(&[
        ("response_type", "id_token token"),
        ("response_mode", "form_post"),
        ("scope", "openid"),
        ("nonce", "n"),
    ]);
    let html = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"id_token\"") && html.contains("name=\"access_token\""));
}

// ---- generic OAuth checks ---------------------------------------------------------------

#[tokio::test]
async fn oauth_expired_code_is_rejected() {
    let server = spawn().await;
    let code = tessera_core::ids::secret_token();
    server
        .store
        .create_code(&tessera_store::NewCode {
            session_client: None,
            code_hash: tessera_core::ids::secret_hash(&code),
            client_id: server.spa_client_id.clone(),
            user_id: server.user_id.clone(),
            redirect_uri: CALLBACK.into(),
            grant: r#"{"scope":["openid"],"audience":null,"nonce":null,"code_challenge":null,"sid":"s","auth_time":0}"#.into(),
            created_at: now() - 120,
            expires_at: now() - 60,
        })
        .await
        .unwrap();
    let (status, body) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.spa_client_id),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn oauth_bearer_scheme_is_case_insensitive() {
    let server = spawn().await;
    let (tokens, _) = code_tokens(&server, &browser(), &[]).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = reqwest::Client::new()
            .get(server.url("/userinfo"))
            .header(
                "authorization",
                format!("{scheme} {}", tokens["access_token"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn oauth_user_rejects_is_access_denied() {
    let server = spawn().await;
    let mut app = client("Third party", tessera_core::AppType::Spa, None);
    app.is_first_party = false;
    server.store.create_client(&app).await.unwrap();
    let pkce = pkce();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("state", "conformance-state")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let url = format!("{}/authorize?{}", server.base, query.finish());
    let browser = browser();
    let consent = server.sign_in(&browser, &url).await;
    assert!(consent.starts_with("/u/consent?"), "{consent}");
    let page = browser
        .get(server.url(&consent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(server.url("/u/consent"))
        .form(&[
            ("state", hidden_field(&page, "state")),
            ("csrf", hidden_field(&page, "csrf")),
            ("action", "deny".to_string()),
        ])
        .send()
        .await
        .unwrap();
    // The consent page hands the answer back to /authorize/resume, which answers.
    assert_eq!(response.status(), 303);
    let resume = location(&response);
    assert!(resume.starts_with("/authorize/resume?state="), "{resume}");
    let response = browser.get(server.url(&resume)).send().await.unwrap();
    let back = location(&response);
    assert!(back.starts_with(CALLBACK), "{back}");
    let params = params_of(&back);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(
        params["error_description"],
        "User did not authorize the request"
    );
    assert_eq!(params["state"], "conformance-state");
    assert_eq!(params["iss"], server.issuer);
    assert!(!params.contains_key("code"));
}
