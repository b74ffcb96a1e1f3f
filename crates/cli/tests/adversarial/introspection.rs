//! Token introspection attacked: a confidential application asking about tokens of an API
//! it holds no grant for, about another application's ID token, with a token re-signed by
//! a key of its own (`alg: none`, HS256 with the public key as secret), or expired; and a
//! public application or a wrong secret asking at all. Each answer is `{"active": false}`
//! or a 401, and never a claim of the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_core::AppType;
use tessera_testkit::*;

use crate::harness::Tally;

async fn introspect(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    token: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/introspect"))
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("token", token),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn introspection_tells_an_outsider_nothing() {
    let mut tally = Tally::new("introspection/outsiders");
    let server = spawn().await;
    // An application with a grant for another API only.
    let other_api = "https://other.example/api";
    server
        .store
        .create_resource_server(&api(other_api, &["read:other"]))
        .await
        .unwrap();
    let secret = tessera_core::ids::client_secret();
    let outsider = client("Outsider", AppType::NonInteractive, Some(&secret));
    server.store.create_client(&outsider).await.unwrap();
    server
        .store
        .create_client_grant(&tessera_core::ClientGrant {
            id: format!("cgr_{}", tessera_core::ids::alphanumeric(16)),
            client_id: outsider.client_id.clone(),
            audience: other_api.into(),
            scope: vec!["read:other".into()],
            created_at: now(),
        })
        .await
        .unwrap();
    let inactive = json!({"active": false});

    let (_, issued) = client_credentials(
        &reqwest::Client::new(),
        &server.base,
        &server.m2m_client_id,
        &server.m2m_secret,
        API,
    )
    .await;
    let quickstart_token = issued["access_token"].as_str().unwrap().to_string();
    let (status, answer) =
        introspect(&server, &outsider.client_id, &secret, &quickstart_token).await;
    tally.case(
        "a token for an API the asker holds no grant for: inactive",
        status == 200 && answer == inactive,
        format_args!("{status} {answer}"),
    );

    // A web application's own ID token is not an access token.
    let web_secret = tessera_core::ids::client_secret();
    let web = client("Web", AppType::RegularWeb, Some(&web_secret));
    server.store.create_client(&web).await.unwrap();
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&response_type=code&scope=openid&nonce=n",
        server.base, web.client_id
    );
    let code = params_of(&server.sign_in(&browser(), &url).await)["code"].clone();
    let (_, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &web.client_id),
            ("client_secret", &web_secret),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let (status, answer) = introspect(&server, &web.client_id, &web_secret, id_token).await;
    tally.case(
        "the asker's own ID token: inactive",
        status == 200 && answer == inactive,
        format_args!("{status} {answer}"),
    );

    // Tokens the asker made itself, claiming the grant's API or its own client.
    let claims = json!({"iss": server.issuer, "aud": other_api, "azp": outsider.client_id,
        "sub": "auth0|victim", "scope": "read:other", "iat": now(), "exp": now() + 600});
    let kid = server.jwks().await.keys[0]
        .common
        .key_id
        .clone()
        .unwrap_or_default();
    for (case, header) in [
        ("alg none", json!({"alg": "none", "typ": "JWT", "kid": kid})),
        (
            "HS256 with a guessed secret",
            json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        ),
    ] {
        let forged = format!(
            "{}.{}.{}",
            b64(&header),
            b64(&claims),
            URL_SAFE_NO_PAD.encode(b"sig")
        );
        let (status, answer) = introspect(&server, &outsider.client_id, &secret, &forged).await;
        tally.case(
            format!("a self-made token ({case}): inactive"),
            status == 200 && answer == inactive,
            format_args!("{status} {answer}"),
        );
    }

    // The web application's refresh token, asked about by someone else or altered.
    let (_, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &web.client_id),
            ("client_secret", &web_secret),
            (
                "code",
                &params_of(
                    &server
                        .sign_in(
                            &browser(),
                            &url.replace("scope=openid", "scope=openid%20offline_access"),
                        )
                        .await,
                )["code"],
            ),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let (_, own) = introspect(&server, &web.client_id, &web_secret, &refresh).await;
    assert_eq!(own["active"], true, "the owner sees it live: {own}");
    let mut altered = refresh.clone();
    altered.pop();
    for (case, asker, asker_secret, token) in [
        (
            "another application's refresh token",
            outsider.client_id.as_str(),
            secret.as_str(),
            refresh.clone(),
        ),
        (
            "a refresh token cut short",
            web.client_id.as_str(),
            web_secret.as_str(),
            altered,
        ),
        (
            "a refresh token with a dot",
            web.client_id.as_str(),
            web_secret.as_str(),
            format!("{refresh}."),
        ),
        (
            "a long opaque token",
            web.client_id.as_str(),
            web_secret.as_str(),
            "A".repeat(300),
        ),
    ] {
        let (status, answer) = introspect(&server, asker, asker_secret, &token).await;
        tally.case(
            format!("{case}: inactive"),
            status == 200 && answer == inactive,
            format_args!("{status} {answer}"),
        );
    }

    // Asking without being a confidential application.
    for (case, client_id, secret) in [
        ("the public SPA", server.spa_client_id.as_str(), ""),
        ("a wrong secret", server.m2m_client_id.as_str(), "wrong"),
        ("an unknown application", "nobody", "x"),
    ] {
        let (status, answer) = introspect(&server, client_id, secret, &quickstart_token).await;
        tally.case(
            format!("{case} asks: 401 and no claim"),
            status == 401 && answer.get("active").is_none() && answer.get("sub").is_none(),
            format_args!("{status} {answer}"),
        );
    }
    tally.finish();
}
