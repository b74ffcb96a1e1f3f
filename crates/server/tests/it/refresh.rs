//! Refresh tokens: issued with `offline_access`, rotated on every use, reuse revokes the
//! family, revocation (RFC 7009), and the ways a family ends.

use std::sync::Arc;

use serde_json::Value;
use tessera_testkit::*;

async fn refresh(server: &TestServer, token: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", server.spa_client_id.as_str()),
        ("refresh_token", token),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    server.token(&form).await
}

async fn offline_tokens(server: &TestServer, browser: &reqwest::Client) -> Value {
    server
        .code_flow(
            browser,
            "openid profile offline_access read:messages",
            Some(API),
        )
        .await
}

#[tokio::test]
async fn offline_access_yields_a_refresh_token_that_rotates_on_every_use() {
    let server = spawn().await;
    let tokens = offline_tokens(&server, &browser()).await;
    assert_eq!(
        tokens["scope"],
        "openid profile offline_access read:messages"
    );
    let first = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();

    let (status, refreshed) = refresh(&server, &first, None).await;
    assert_eq!(status, 200, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second, "rotated");
    let id = server
        .verify(
            refreshed["id_token"]
                .as_str()
                .expect("every refresh carries an id_token"),
            &server.spa_client_id,
        )
        .await;
    assert_eq!(id["sub"], serde_json::json!(server.user_id));
    let claims = server
        .verify(refreshed["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(
        claims["scope"],
        "openid profile offline_access read:messages"
    );

    // Narrowing the scope is allowed; widening it is not, and costs the client nothing.
    let (status, body) = refresh(
        &server,
        &second,
        Some("openid read:messages write:messages"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, narrowed) = refresh(&server, &second, Some("openid")).await;
    assert_eq!(
        status, 200,
        "the refused request did not consume the token: {narrowed}"
    );
    let claims = server
        .verify(narrowed["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["scope"], "openid offline_access");
    let third = narrowed["refresh_token"].as_str().unwrap().to_string();

    // Reuse of a rotated token revokes the family: the newest token dies too.
    let (status, body) = refresh(&server, &first, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&server, &third, None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn twenty_parallel_uses_of_one_refresh_token_at_most_one_succeeds_then_the_family_is_revoked()
{
    let server = Arc::new(spawn().await);
    let tokens = offline_tokens(&server, &browser()).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (server, token) = (server.clone(), token.clone());
        tasks.push(tokio::spawn(
            async move { refresh(&server, &token, None).await },
        ));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => winners.push(body["refresh_token"].as_str().unwrap().to_string()),
            400 => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(winners.len() <= 1, "{} winners", winners.len());
    for winner in winners {
        assert_eq!(
            refresh(&server, &winner, None).await.0,
            400,
            "the family is revoked"
        );
    }
}

#[tokio::test]
async fn revocation_ends_the_family_and_says_nothing_about_unknown_tokens() {
    let server = spawn().await;
    let tokens = offline_tokens(&server, &browser()).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let revoke = |client_id: String, token: String| {
        let url = server.url("/oauth/revoke");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[("client_id", client_id.as_str()), ("token", token.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    // Another client cannot revoke it (and cannot tell).
    let other = client("Other SPA", tessera_core::AppType::Spa, None);
    server.store.create_client(&other).await.unwrap();
    assert_eq!(
        revoke(other.client_id.clone(), token.to_string())
            .await
            .status(),
        200
    );
    let (status, still) = refresh(&server, token, None).await;
    assert_eq!(status, 200);
    let token = still["refresh_token"].as_str().unwrap();
    let response = revoke(server.spa_client_id.clone(), token.to_string()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(refresh(&server, token, None).await.0, 400);
    assert_eq!(
        revoke(server.spa_client_id.clone(), "never-issued".into())
            .await
            .status(),
        200
    );
    let response = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .form(&[("client_id", server.spa_client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "token is required");
}

#[tokio::test]
async fn logout_replay_and_blocking_end_refresh_tokens() {
    let server = spawn().await;
    let browser = browser();
    // Logout revokes what the session obtained.
    let tokens = offline_tokens(&server, &browser).await;
    browser
        .get(server.url(&format!("/v2/logout?client_id={}", server.spa_client_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refresh(&server, tokens["refresh_token"].as_str().unwrap(), None)
            .await
            .0,
        400
    );

    // A blocked user's refresh tokens stop working.
    let tokens = offline_tokens(&server, &browser).await;
    server
        .store
        .set_user_blocked(&server.user_id, true, now())
        .await
        .unwrap();
    let (status, body) = refresh(&server, tokens["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_the_refresh_family_it_started() {
    let server = spawn().await;
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid offline_access"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let back = server.sign_in(&browser, &url).await;
    let code = params_of(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, tokens) = server.token(&form).await;
    assert_eq!(status, 200);
    assert_eq!(server.token(&form).await.0, 400);
    assert_eq!(
        refresh(&server, tokens["refresh_token"].as_str().unwrap(), None)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn no_refresh_token_without_offline_access_permission() {
    let server = spawn().await;
    let browser = browser();
    // Without offline_access.
    let tokens = server
        .code_flow(&browser, "openid read:messages", Some(API))
        .await;
    assert!(tokens.get("refresh_token").is_none());
    // An API that does not allow offline access.
    let mut strict = api("https://strict/api", &["read"]);
    strict.allow_offline_access = false;
    server.store.create_resource_server(&strict).await.unwrap();
    let tokens = server
        .code_flow(
            &browser,
            "openid offline_access read",
            Some("https://strict/api"),
        )
        .await;
    assert!(tokens.get("refresh_token").is_none());
    assert_eq!(tokens["scope"], "openid read");
    // The implicit flow never returns one.
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid offline_access"),
        ("audience", API),
    ]);
    let params = params_of(&location(&browser.get(&url).send().await.unwrap()));
    assert!(!params.contains_key("refresh_token"));
    assert_eq!(params["scope"], "openid");
    // An application not allowed the refresh_token grant.
    let update = tessera_store::ClientUpdate {
        grant_types: Some(vec!["authorization_code".into()]),
        ..Default::default()
    };
    server
        .store
        .update_client(&server.spa_client_id, &update, now())
        .await
        .unwrap();
    let tokens = server
        .code_flow(&browser, "openid offline_access", None)
        .await;
    assert!(tokens.get("refresh_token").is_none());
    assert_eq!(tokens["scope"], "openid");
}

#[tokio::test]
async fn an_administrator_lists_and_revokes_a_users_refresh_tokens() {
    let server = spawn().await;
    let admin = server
        .management_token(&["read:refresh_tokens", "delete:refresh_tokens"])
        .await;
    let user: String = form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let laptop = offline_tokens(&server, &browser()).await;
    let phone = offline_tokens(&server, &browser()).await;
    let laptop_token = laptop["refresh_token"].as_str().unwrap().to_string();
    let phone_token = phone["refresh_token"].as_str().unwrap().to_string();
    // The laptop's token is exchanged once: its family records the exchange.
    let (status, rotated) = refresh(&server, &laptop_token, None).await;
    assert_eq!(status, 200, "{rotated}");
    let laptop_token = rotated["refresh_token"].as_str().unwrap().to_string();

    let (status, listed) = server
        .management_request(&admin, "GET", &format!("/users/{user}/refresh-tokens"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{listed}");
    assert!(listed.get("next").is_none(), "{listed}");
    for token in tokens {
        assert_eq!(token["user_id"], server.user_id.as_str(), "{token}");
        assert_eq!(token["client_id"], server.spa_client_id.as_str(), "{token}");
        assert_eq!(token["rotating"], true, "{token}");
        assert_eq!(token["resource_servers"][0]["audience"], API, "{token}");
        for field in ["created_at", "expires_at", "idle_expires_at"] {
            let at = token[field].as_str().unwrap_or_default();
            assert!(at.ends_with('Z') && at.len() == 24, "{field}: {token}");
        }
        let text = token.to_string();
        for secret in [&laptop_token, &phone_token] {
            assert!(!text.contains(secret.as_str()), "no token value is shown");
        }
    }
    let exchanged: Vec<bool> = tokens
        .iter()
        .map(|token| token["last_exchanged_at"].is_string())
        .collect();
    assert_eq!(exchanged.iter().filter(|&&e| e).count(), 1, "{listed}");

    // By checkpoint, one at a time.
    let (status, first) = server
        .management_request(
            &admin,
            "GET",
            &format!("/users/{user}/refresh-tokens?take=1"),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let next = first["next"].as_str().expect("more follow").to_string();
    let (_, second) = server
        .management_request(
            &admin,
            "GET",
            &format!("/users/{user}/refresh-tokens?take=1&from={next}"),
        )
        .await;
    assert_eq!(second["tokens"][0]["id"], next.as_str());
    assert!(second.get("next").is_none(), "{second}");

    // The laptop's token is revoked by id: its exchange fails, the phone's still works.
    let laptop_id = tokens
        .iter()
        .find(|token| token["last_exchanged_at"].is_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, one) = server
        .management_request(&admin, "GET", &format!("/refresh-tokens/{laptop_id}"))
        .await;
    assert_eq!(
        (status, &one["id"]),
        (200, &Value::from(laptop_id.as_str())),
        "{one}"
    );
    let (status, _) = server
        .management_request(&admin, "DELETE", &format!("/refresh-tokens/{laptop_id}"))
        .await;
    assert_eq!(status, 202);
    let (status, body) = refresh(&server, &laptop_token, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, _) = server
        .management_request(&admin, "GET", &format!("/refresh-tokens/{laptop_id}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .management_request(&admin, "DELETE", &format!("/refresh-tokens/{laptop_id}"))
        .await;
    assert_eq!(status, 404, "revoked already");
    let (status, body) = refresh(&server, &phone_token, None).await;
    assert_eq!(status, 200, "{body}");
    let phone_token = body["refresh_token"].as_str().unwrap().to_string();

    // Every token of the user: the phone's goes too.
    let (status, _) = server
        .management_request(&admin, "DELETE", &format!("/users/{user}/refresh-tokens"))
        .await;
    assert_eq!(status, 202);
    let (status, body) = refresh(&server, &phone_token, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (_, left) = server
        .management_request(&admin, "GET", &format!("/users/{user}/refresh-tokens"))
        .await;
    assert_eq!(left, serde_json::json!({"tokens": []}));
}

#[tokio::test]
async fn refresh_token_endpoints_refuse_what_they_should() {
    let server = spawn().await;
    let reader = server.management_token(&["read:refresh_tokens"]).await;
    let user: String = form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let tokens = offline_tokens(&server, &browser()).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let (_, listed) = server
        .management_request(&reader, "GET", &format!("/users/{user}/refresh-tokens"))
        .await;
    let id = listed["tokens"][0]["id"].as_str().unwrap().to_string();
    for (method, path, expected) in [
        // Reading is not revoking.
        ("DELETE", format!("/refresh-tokens/{id}"), 403),
        ("DELETE", format!("/users/{user}/refresh-tokens"), 403),
        ("GET", "/refresh-tokens/no-such-token".to_string(), 404),
        (
            "GET",
            "/users/auth0%7Cnobody/refresh-tokens".to_string(),
            404,
        ),
        ("GET", format!("/users/{user}/refresh-tokens?take=0"), 400),
        ("GET", format!("/users/{user}/refresh-tokens?take=101"), 400),
        ("GET", format!("/users/{user}/refresh-tokens?page=1"), 400),
        (
            "GET",
            format!("/users/{user}/refresh-tokens?include_totals=maybe"),
            400,
        ),
        (
            "GET",
            format!("/users/{user}/refresh-tokens?include_totals=true"),
            200,
        ),
    ] {
        let (status, body) = server.management_request(&reader, method, &path).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
    // A token without the scope reads nothing; no token at all is 401.
    let other = server.management_token(&["read:users"]).await;
    let (status, _) = server
        .management_request(&other, "GET", &format!("/refresh-tokens/{id}"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .management_request("", "GET", &format!("/refresh-tokens/{id}"))
        .await;
    assert_eq!(status, 401);
    // Nothing refused changed anything.
    let (status, body) = refresh(&server, token, None).await;
    assert_eq!(status, 200, "{body}");
}
