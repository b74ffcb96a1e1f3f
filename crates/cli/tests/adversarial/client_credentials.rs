//! The client-credentials grant attacked by a stranger and by applications that may not use
//! it: an unknown client, a wrong secret, a public application, an application without the
//! grant — with no audience (which would reveal whether the tenant has a default one), an
//! unknown audience and an API the application holds no grant for — and scopes beyond the
//! grant. Each is refused with the status a client that proved nothing may see first (401
//! before any word on audiences, then 403) and no token is issued; a scope beyond the grant
//! is never in a token.

use serde_json::Value;
use tessera_core::AppType;
use tessera_testkit::*;

use crate::harness::Tally;

async fn token(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    oauth_token(&reqwest::Client::new(), &server.base, form).await
}

/// A refusal as expected: the status, the OAuth error, and no token.
fn refused(answer: &(u16, Value), status: u16, error: &str) -> bool {
    answer.0 == status && answer.1["error"] == error && answer.1.get("access_token").is_none()
}

#[tokio::test]
async fn the_client_credentials_grant_refuses_strangers_before_saying_anything() {
    let mut tally = Tally::new("client_credentials/refusals");
    let server = spawn().await;
    let m2m = server.m2m_client_id.as_str();
    let secret = server.m2m_secret.as_str();
    // A confidential application that never enabled the grant.
    let mut web = client("Web", AppType::RegularWeb, Some("web-secret-1234567890"));
    web.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    server.store.create_client(&web).await.unwrap();
    let other_api = "https://elsewhere.example/api";
    server
        .store
        .create_resource_server(&api(other_api, &["read:things"]))
        .await
        .unwrap();

    let strangers: [(&str, &str, &str); 3] = [
        ("an unknown client", "nobody-at-all", "x"),
        ("the M2M app with a wrong secret", m2m, "wrong-secret"),
        ("the M2M app with an empty secret", m2m, ""),
    ];
    for (who, client_id, client_secret) in strangers {
        for audience in [None, Some(API), Some("https://unknown.example/")] {
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ];
            if let Some(audience) = audience {
                form.push(("audience", audience));
            }
            let answer = token(&server, &form).await;
            tally.case(
                format!("{who}, audience {audience:?}: 401 invalid_client, no token"),
                refused(&answer, 401, "invalid_client"),
                format!("{} {}", answer.0, answer.1),
            );
        }
    }

    // Applications that authenticate but may not use the grant: unauthorized_client, with
    // an audience or without.
    let unfit: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "the SPA (public)",
            vec![("client_id", server.spa_client_id.as_str())],
        ),
        (
            "a web app without the grant",
            vec![
                ("client_id", web.client_id.as_str()),
                ("client_secret", "web-secret-1234567890"),
            ],
        ),
    ];
    for (who, credentials) in &unfit {
        for audience in [None, Some(API)] {
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend(credentials.iter().copied());
            if let Some(audience) = audience {
                form.push(("audience", audience));
            }
            let answer = token(&server, &form).await;
            tally.case(
                format!("{who}, audience {audience:?}: 403 unauthorized_client, no token"),
                refused(&answer, 403, "unauthorized_client"),
                format!("{} {}", answer.0, answer.1),
            );
        }
    }

    // The M2M app, authenticated: what it may not have.
    let authenticated = [("grant_type", "client_credentials"), ("client_id", m2m)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut form = authenticated.to_vec();
        form.push(("client_secret", secret));
        form.extend_from_slice(extra);
        form
    };
    for (what, extra) in [
        ("no audience and no default one", vec![]),
        (
            "an unknown audience",
            vec![("audience", "https://unknown.example/")],
        ),
        (
            "an API it holds no grant for",
            vec![("audience", other_api)],
        ),
    ] {
        let answer = token(&server, &with(&extra)).await;
        tally.case(
            format!("the M2M app asking with {what}: 403 access_denied, no token"),
            refused(&answer, 403, "access_denied"),
            format!("{} {}", answer.0, answer.1),
        );
    }
    // Scopes beyond its grant: never in a token (the granted ones may be).
    let answer = token(
        &server,
        &with(&[
            ("audience", API),
            ("scope", "read:messages delete:everything"),
        ]),
    )
    .await;
    let scope = answer.1["scope"].as_str().unwrap_or("").to_string();
    tally.case(
        "a scope beyond the grant is not granted",
        answer.0 == 200 && scope == "read:messages",
        format!("{} scope {scope:?}", answer.0),
    );
    tally.finish();
}
