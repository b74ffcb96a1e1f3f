//! `POST /oauth/introspect` (RFC 7662): an API's machine-to-machine application asks about
//! the access tokens for its API — its own and users' — and learns their claims; another
//! application, a public one, a forged, foreign or expired token learn nothing.

use serde_json::{Value, json};
use tessera_core::AppType;
use tessera_testkit::*;

async fn introspect(server: &TestServer, auth: Option<(&str, &str)>, token: &str) -> (u16, Value) {
    let mut form = vec![("token", token.to_string())];
    if let Some((client_id, secret)) = auth {
        form.push(("client_id", client_id.to_string()));
        form.push(("client_secret", secret.to_string()));
    }
    let response = reqwest::Client::new()
        .post(server.url("/oauth/introspect"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_apis_application_introspects_the_apis_access_tokens() {
    let server = spawn().await;
    let m2m = (server.m2m_client_id.as_str(), server.m2m_secret.as_str());
    let (status, issued) =
        client_credentials(&reqwest::Client::new(), &server.base, m2m.0, m2m.1, API).await;
    assert_eq!(status, 200, "{issued}");
    let own = issued["access_token"].as_str().unwrap();
    let (status, answer) = introspect(&server, Some(m2m), own).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], m2m.0);
    assert_eq!(answer["aud"], API);
    assert_eq!(answer["iss"], server.issuer);
    assert!(answer["exp"].as_i64().unwrap() > answer["iat"].as_i64().unwrap());

    // A user's token for the same API, issued to the SPA: the API's application may know it.
    let tokens = server
        .code_flow(&browser(), "openid read:messages", Some(API))
        .await;
    let users = tokens["access_token"].as_str().unwrap();
    let (_, answer) = introspect(&server, Some(m2m), users).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], server.user_id);
    assert_eq!(answer["client_id"], server.spa_client_id);
    assert!(answer["scope"].as_str().unwrap().contains("read:messages"));

    // Another confidential application, with no grant for the API: nothing.
    let secret = tessera_core::ids::client_secret();
    let other = client("Other backend", AppType::RegularWeb, Some(&secret));
    server.store.create_client(&other).await.unwrap();
    let (status, answer) = introspect(&server, Some((&other.client_id, &secret)), users).await;
    assert_eq!((status, &answer), (200, &json!({"active": false})));

    // Discovery names the endpoint.
    let discovery: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["introspection_endpoint"],
        format!("{}oauth/introspect", server.issuer)
    );
}

#[tokio::test]
async fn introspection_tells_nothing_to_the_wrong_caller_or_of_a_bad_token() {
    let server = spawn().await;
    let m2m = (server.m2m_client_id.as_str(), server.m2m_secret.as_str());
    let (_, issued) =
        client_credentials(&reqwest::Client::new(), &server.base, m2m.0, m2m.1, API).await;
    let token = issued["access_token"].as_str().unwrap().to_string();

    // No client named: 400, as at the token endpoint; a wrong secret, a public application: 401.
    assert_eq!(introspect(&server, None, &token).await.0, 400);
    assert_eq!(
        introspect(&server, Some((m2m.0, "wrong")), &token).await.0,
        401
    );
    let (status, body) = introspect(&server, Some((&server.spa_client_id, "")), &token).await;
    assert_eq!(status, 401, "{body}");

    // A changed signature, a changed payload, garbage, a refresh-token-like string: inactive.
    // The changed character is always a different one: a fixed replacement would leave
    // one token in 64 unchanged (and valid).
    let other = |c: &str| if c == "A" { "B" } else { "A" };
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut forged_signature = parts.clone();
    forged_signature[2] = format!("{}{}", other(&parts[2][..1]), &parts[2][1..]);
    let last = parts[1].len() - 1;
    parts[1] = format!("{}{}", &parts[1][..last], other(&parts[1][last..]));
    for bad in [
        forged_signature.join("."),
        parts.join("."),
        "not-a-token".to_string(),
        "a.b.c".to_string(),
    ] {
        let (status, answer) = introspect(&server, Some(m2m), &bad).await;
        assert_eq!(
            (status, &answer),
            (200, &json!({"active": false})),
            "{bad:.40}"
        );
    }
}

/// A refresh token is introspected by the application it was issued to, while it can be
/// used: rotated, revoked or another application's, it is inactive.
#[tokio::test]
async fn an_application_introspects_its_own_live_refresh_tokens() {
    use tessera_core::{PASSWORD_GRANT, ids};
    let server = spawn().await;
    let backend = |name: &str| {
        let secret = ids::client_secret();
        let mut app = client(name, AppType::RegularWeb, Some(&secret));
        app.grant_types
            .extend([PASSWORD_GRANT.to_string(), "refresh_token".to_string()]);
        (app, secret)
    };
    let (app, secret) = backend("Backend");
    let (other, other_secret) = backend("Other backend");
    server.store.create_client(&app).await.unwrap();
    server.store.create_client(&other).await.unwrap();
    let mine = (app.client_id.as_str(), secret.as_str());
    let email = server.user_email.clone();
    let (status, tokens) = server
        .token(&[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", mine.0),
            ("client_secret", mine.1),
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid offline_access"),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap().to_string();

    let (status, answer) = introspect(&server, Some(mine), &first).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], app.client_id);
    assert_eq!(answer["sub"], server.user_id);
    assert!(
        answer["scope"].as_str().unwrap().contains("offline_access"),
        "{answer}"
    );
    assert!(answer["exp"].as_i64().unwrap() > crate::mfa::now());
    let (_, answer) = introspect(&server, Some((&other.client_id, &other_secret)), &first).await;
    assert_eq!(answer, json!({"active": false}), "another application's");

    // Rotated: the old one is no longer live, the new one is.
    let (status, rotated) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", mine.0),
            ("client_secret", mine.1),
            ("refresh_token", &first),
        ])
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    let (_, answer) = introspect(&server, Some(mine), &first).await;
    assert_eq!(answer, json!({"active": false}), "rotated");
    let (_, answer) = introspect(&server, Some(mine), &second).await;
    assert_eq!(answer["active"], true, "{answer}");

    // Revoked: inactive.
    let revoked = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .form(&[
            ("client_id", mine.0),
            ("client_secret", mine.1),
            ("token", &second),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (_, answer) = introspect(&server, Some(mine), &second).await;
    assert_eq!(answer, json!({"active": false}), "revoked");
}
