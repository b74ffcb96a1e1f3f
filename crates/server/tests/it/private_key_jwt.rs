//! private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9) as Auth0 has it:
//! public keys registered through `/api/v2/clients/{id}/credentials`, enabled by
//! `client_authentication_methods`, then the only way the application authenticates —
//! at the token endpoint, PAR, revocation and introspection. An assertion works once, for
//! this server, for a few minutes, signed by one of the application's own keys.

use serde_json::{Value, json};
use tessera_testkit::client_key::*;
use tessera_testkit::*;

async fn token_with(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn client_credentials_with(
    server: &TestServer,
    client_id: Option<&str>,
    assertion: &str,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("audience", API),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    token_with(server, &form).await
}

#[tokio::test]
async fn a_machine_authenticates_with_a_signed_assertion_once() {
    let server = spawn().await;
    let token = server.management_token(CREDENTIAL_SCOPES).await;
    let m2m = server.m2m_client_id.clone();
    let key = ClientKey::rsa();
    let id = enable_private_key_jwt(&server, &token, &m2m, &key).await;
    assert!(id.starts_with("cred_"), "{id}");

    // Auth0's shapes: the credential, and the application naming it.
    let shown: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v2/clients/{m2m}/credentials/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["kid"], key.kid.as_str());
    assert_eq!(shown["alg"], "RS256");
    assert_eq!(shown["credential_type"], "public_key");
    assert!(shown.get("pem").is_none() && shown.get("expires_at").is_none());
    let app: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v2/clients/{m2m}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        app["client_authentication_methods"],
        json!({"private_key_jwt": {"credentials": [{"id": id}]}})
    );
    assert!(app.get("token_endpoint_auth_method").is_none(), "{app}");

    // The issuer and the token endpoint are both this server's audience; client_id is
    // optional (the assertion's sub names the application).
    let assertion = key.assertion(&m2m, &server.issuer);
    let (status, body) = client_credentials_with(&server, Some(&m2m), &assertion).await;
    assert_eq!(status, 200, "{body}");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["sub"], format!("{m2m}@clients"));
    let endpoint = format!("{}oauth/token", server.issuer);
    let (status, body) =
        client_credentials_with(&server, None, &key.assertion(&m2m, &endpoint)).await;
    assert_eq!(status, 200, "{body}");

    // Replayed: refused.
    let (status, body) = client_credentials_with(&server, Some(&m2m), &assertion).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(body["error_description"], "Client authentication failed");

    // The secret no longer authenticates it.
    let (status, body) = token_with(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("audience", API),
            ("client_id", &m2m),
            ("client_secret", &server.m2m_secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Back to the secret: the assertion is refused, the secret works.
    let (status, _) = patch_client(
        &server,
        &token,
        &m2m,
        &json!({"token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) =
        client_credentials_with(&server, Some(&m2m), &key.assertion(&m2m, &server.issuer)).await;
    assert_eq!(status, 401);
    let (status, body) = token_with(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("audience", API),
            ("client_id", &m2m),
            ("client_secret", &server.m2m_secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn assertions_for_elsewhere_expired_or_too_long_are_refused() {
    let server = spawn().await;
    let token = server.management_token(CREDENTIAL_SCOPES).await;
    let m2m = server.m2m_client_id.clone();
    let key = ClientKey::rsa();
    enable_private_key_jwt(&server, &token, &m2m, &key).await;
    let header = json!({"alg": "RS256", "kid": key.kid});
    let with = |name: &str, value: Value| {
        let mut claims = ClientKey::claims(&m2m, &server.issuer);
        claims[name] = value;
        key.sign(&header, &claims)
    };
    let without = |name: &str| {
        let mut claims = ClientKey::claims(&m2m, &server.issuer);
        claims.as_object_mut().unwrap().remove(name);
        key.sign(&header, &claims)
    };
    let cases = [
        (
            "another audience",
            with("aud", json!("https://elsewhere.example/")),
        ),
        (
            "an audience list with another",
            with("aud", json!([server.issuer, "https://elsewhere.example/"])),
        ),
        ("no audience", without("aud")),
        ("another iss", with("iss", json!(server.spa_client_id))),
        ("another sub", with("sub", json!(server.spa_client_id))),
        ("expired", with("exp", json!(now() - 120))),
        ("no exp", without("exp")),
        ("an hour long", with("exp", json!(now() + 3600))),
        ("not yet valid", with("nbf", json!(now() + 600))),
        ("issued in the future", with("iat", json!(now() + 600))),
        ("no jti", without("jti")),
        ("an empty jti", with("jti", json!(""))),
    ];
    for (case, assertion) in cases {
        let (status, body) = client_credentials_with(&server, Some(&m2m), &assertion).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{case}: {body}"
        );
        assert_eq!(
            body["error_description"], "Client authentication failed",
            "{case}"
        );
    }
    // The client_id parameter must be the assertion's.
    let (status, _) = client_credentials_with(
        &server,
        Some(&server.spa_client_id),
        &key.assertion(&m2m, &server.issuer),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn another_application_s_key_or_an_expired_or_deleted_one_does_not_authenticate() {
    let server = spawn().await;
    let token = server.management_token(CREDENTIAL_SCOPES).await;
    let m2m = server.m2m_client_id.clone();
    let (other, _) = server.management_client(&["read:clients"]).await;
    let mine = ClientKey::rsa();
    let theirs = ClientKey::rsa();
    let id = enable_private_key_jwt(&server, &token, &m2m, &mine).await;
    enable_private_key_jwt(&server, &token, &other, &theirs).await;
    // The other application's key, with its kid or none: not ours.
    let (status, _) =
        client_credentials_with(&server, Some(&m2m), &theirs.assertion(&m2m, &server.issuer)).await;
    assert_eq!(status, 401);
    let claims = ClientKey::claims(&m2m, &server.issuer);
    let (status, _) = client_credentials_with(
        &server,
        Some(&m2m),
        &theirs.sign(&json!({"alg": "RS256"}), &claims),
    )
    .await;
    assert_eq!(status, 401);
    // Without a kid, our key is found by trying.
    let (status, body) = client_credentials_with(
        &server,
        Some(&m2m),
        &mine.sign(
            &json!({"alg": "RS256"}),
            &ClientKey::claims(&m2m, &server.issuer),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // An ES256 key: registered and used alike.
    let ec = ClientKey::es256();
    let (status, created) = post_credential(
        &server,
        &token,
        &m2m,
        &json!({"credential_type": "public_key", "name": "ec", "pem": ec.public_pem, "alg": "ES256"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let ec_id = created["id"].as_str().unwrap().to_string();
    let (status, _) = patch_client(
        &server,
        &token,
        &m2m,
        &json!({"client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": id}, {"id": ec_id}]}}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) =
        client_credentials_with(&server, Some(&m2m), &ec.assertion(&m2m, &server.issuer)).await;
    assert_eq!(status, 200, "{body}");
    // A third credential: refused (two per application).
    let (status, _) = post_credential(
        &server,
        &token,
        &m2m,
        &json!({"credential_type": "public_key", "pem": ClientKey::rsa().public_pem}),
    )
    .await;
    assert_eq!(status, 409);
    // Expired: refused. Deleted: refused.
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{m2m}/credentials/{ec_id}")))
        .bearer_auth(&token)
        .json(&json!({"expires_at": "2020-01-01T00:00:00.000Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "an expiry in the past is refused");
    let in_a_year = tessera_core::claims::rfc3339(now() + 365 * 86_400);
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{m2m}/credentials/{ec_id}")))
        .bearer_auth(&token)
        .json(&json!({"expires_at": in_a_year}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = reqwest::Client::new()
        .delete(server.url(&format!("/api/v2/clients/{m2m}/credentials/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) =
        client_credentials_with(&server, Some(&m2m), &mine.assertion(&m2m, &server.issuer)).await;
    assert_eq!(status, 401, "a deleted key authenticates nothing");
    let (status, _) =
        client_credentials_with(&server, Some(&m2m), &ec.assertion(&m2m, &server.issuer)).await;
    assert_eq!(status, 200);
    let listed: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v2/clients/{m2m}/credentials")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["expires_at"], in_a_year.as_str());
}

#[tokio::test]
async fn a_regular_web_application_pushes_a_request_with_an_assertion() {
    let server = spawn().await;
    let token = server
        .management_token(&[&["create:clients"], CREDENTIAL_SCOPES].concat())
        .await;
    let created: Value = reqwest::Client::new()
        .post(server.url("/api/v2/clients"))
        .bearer_auth(&token)
        .json(&json!({"name": "Web", "app_type": "regular_web", "callbacks": [CALLBACK]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let key = ClientKey::rsa();
    enable_private_key_jwt(&server, &token, &web, &key).await;
    let push = |form: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let response = reqwest::Client::new()
                .post(server.url("/oauth/par"))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let request = |auth: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("client_id", web.clone()),
            ("response_type", "code".to_string()),
            ("redirect_uri", CALLBACK.to_string()),
            ("scope", "openid".to_string()),
        ];
        form.extend(auth);
        form
    };
    let (status, pushed) = push(request(vec![
        ("client_assertion_type", JWT_BEARER.to_string()),
        ("client_assertion", key.assertion(&web, &server.issuer)),
    ]))
    .await;
    assert_eq!(status, 201, "{pushed}");
    assert!(
        pushed["request_uri"]
            .as_str()
            .unwrap()
            .starts_with("urn:ietf:params:oauth:request_uri:")
    );
    let (status, refused) = push(request(vec![("client_secret", secret.clone())])).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A secret beside an assertion: one method, not several.
    let (status, refused) = push(request(vec![
        ("client_secret", secret),
        ("client_assertion_type", JWT_BEARER.to_string()),
        ("client_assertion", key.assertion(&web, &server.issuer)),
    ]))
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn discovery_offers_private_key_jwt() {
    let server = spawn().await;
    let doc: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
}
