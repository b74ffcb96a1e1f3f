//! Linking identities with hostile requests: without the scope, a user to itself, a
//! password account as the secondary (its sign-in would not follow the link), accounts that
//! do not exist, malformed providers and ids, mass assignment, `link_with` tokens that are
//! not an unexpired ID token of this tenant (an access token, another issuer's ID token, a
//! payload swapped under a valid signature, `alg: none`, garbage), a connection that is not
//! the secondary's, a secondary with identities of its own; unlinking the main identity, an
//! identity that is not linked or is another user's. Each refused with a clear 4xx, and the
//! users and their identities read back unchanged.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_store::FederatedProfile;
use tessera_testkit::{TestServer, browser, spawn};

use crate::harness::Tally;

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A user id as a path segment: its `|` separators percent-encoded.
fn encoded(text: &str) -> String {
    text.replace('|', "%7C")
}

async fn federated(server: &TestServer, user_id: &str, connection: &str, email: &str) {
    let profile = FederatedProfile {
        email: Some(email.into()),
        email_verified: true,
        ..Default::default()
    };
    server
        .store
        .upsert_federated_user(user_id, connection, &profile, 1)
        .await
        .unwrap();
}

/// The token with its payload replaced, the header and signature kept.
fn with_payload(token: &str, payload: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    parts.join(".")
}

fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn hostile_linking_is_refused_and_changes_nothing() {
    let mut tally = Tally::new("linking/hostile_requests");
    let server = spawn().await;
    let other = spawn().await;
    let token = server
        .management_token(&["read:users", "update:users", "read:connections"])
        .await;
    let reader = server.management_token(&["read:users"]).await;
    let t = token.as_str();
    // The primary is the seeded password account; the others are upstream accounts, one
    // with the primary's email (linking by email is what must never happen on its own).
    let primary = server.user_id.clone();
    federated(&server, "github|1", "github", &server.user_email).await;
    federated(&server, "github|2", "github", "two@example.com").await;
    federated(&server, "oidc|acme|3", "acme", "three@example.com").await;
    federated(&server, "oidc|acme|4", "acme", "four@example.com").await;
    federated(&server, "oidc|acme|5", "acme", "five@example.com").await;
    // oidc|acme|4 is the primary of oidc|acme|5: it cannot become a secondary itself.
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/users/oidc%7Cacme%7C4/identities",
        Some(json!({"provider": "oidc", "user_id": "acme|5"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let ours = server.code_flow(&browser(), "openid email", None).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = other.code_flow(&browser(), "openid email", None).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut swapped = payload_of(&ours);
    swapped["sub"] = json!("github|2");
    let swapped = with_payload(&ours, &swapped);
    let kid = payload_of(&format!("x.{}", ours.split('.').next().unwrap()))["kid"].clone();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(
            json!({"iss": server.issuer, "aud": server.spa_client_id, "sub": "github|2",
                   "exp": 4_000_000_000_i64, "iat": 1})
            .to_string()
        ),
    );

    let snapshot = || async {
        call(
            &server,
            t,
            Method::GET,
            "/users?per_page=100&sort=user_id:1",
            None,
        )
        .await
        .1
    };
    let before = snapshot().await;
    assert!(before.contains("\"profileData\""), "{before}");

    let link = format!("/users/{}/identities", encoded(&primary));
    let attacks: Vec<(&str, String, Value, u16)> = vec![
        (
            "the user to itself",
            link.clone(),
            json!({"provider": "auth0", "user_id": primary.trim_start_matches("auth0|")}),
            400,
        ),
        (
            "a password account as the secondary",
            "/users/github%7C2/identities".into(),
            json!({"provider": "auth0", "user_id": primary.trim_start_matches("auth0|")}),
            400,
        ),
        (
            "an account that does not exist",
            link.clone(),
            json!({"provider": "github", "user_id": "404"}),
            400,
        ),
        (
            "a primary that does not exist",
            "/users/github%7C404/identities".into(),
            json!({"provider": "github", "user_id": "2"}),
            404,
        ),
        (
            "a primary that is a linked identity",
            "/users/oidc%7Cacme%7C5/identities".into(),
            json!({"provider": "github", "user_id": "2"}),
            404,
        ),
        (
            "a secondary with identities of its own",
            link.clone(),
            json!({"provider": "oidc", "user_id": "acme|4"}),
            400,
        ),
        (
            "a provider holding the separator",
            link.clone(),
            json!({"provider": "oidc|acme", "user_id": "3"}),
            400,
        ),
        (
            "an empty provider",
            link.clone(),
            json!({"provider": "", "user_id": "2"}),
            400,
        ),
        (
            "an oversized id",
            link.clone(),
            json!({"provider": "github", "user_id": "9".repeat(600)}),
            400,
        ),
        (
            "an id that is an object",
            link.clone(),
            json!({"provider": "github", "user_id": {"$ne": null}}),
            400,
        ),
        (
            "a negative numeric id",
            link.clone(),
            json!({"provider": "github", "user_id": -2}),
            400,
        ),
        ("no provider", link.clone(), json!({"user_id": "2"}), 400),
        (
            "mass assignment of the primary",
            link.clone(),
            json!({"provider": "github", "user_id": "2", "primary_user_id": "github|1"}),
            400,
        ),
        (
            "link_with beside provider and id",
            link.clone(),
            json!({"link_with": ours, "provider": "github", "user_id": "2"}),
            400,
        ),
        (
            "link_with an access token",
            link.clone(),
            json!({"link_with": token}),
            400,
        ),
        (
            "link_with another issuer's ID token",
            link.clone(),
            json!({"link_with": theirs}),
            400,
        ),
        (
            "link_with a swapped payload",
            link.clone(),
            json!({"link_with": swapped}),
            400,
        ),
        (
            "link_with alg none",
            link.clone(),
            json!({"link_with": unsigned}),
            400,
        ),
        (
            "link_with garbage",
            link.clone(),
            json!({"link_with": "a.b.c"}),
            400,
        ),
        (
            "link_with an empty string",
            link.clone(),
            json!({"link_with": ""}),
            400,
        ),
        (
            "a connection that is not the secondary's",
            link.clone(),
            json!({"provider": "github", "user_id": "2", "connection_id": "con_TesseraDatabase1"}),
            400,
        ),
    ];
    for (case, path, body, expected) in attacks {
        let (status, answer) = call(&server, t, Method::POST, &path, Some(body)).await;
        tally.case(
            case,
            status == expected && answer.contains("\"message\""),
            format_args!("{status} {answer}"),
        );
    }
    let (status, _) = call(
        &server,
        &reader,
        Method::POST,
        &link,
        Some(json!({"provider": "github", "user_id": "2"})),
    )
    .await;
    tally.status("linking with read:users only", status, 403);

    let unlinks: [(&str, String, u16); 5] = [
        (
            "unlinking the main identity",
            format!(
                "/users/{}/identities/auth0/{}",
                encoded(&primary),
                primary.trim_start_matches("auth0|")
            ),
            400,
        ),
        (
            "unlinking what is not linked",
            format!("/users/{}/identities/github/2", encoded(&primary)),
            404,
        ),
        (
            "unlinking another user's identity",
            format!("/users/{}/identities/oidc/acme%7C5", encoded(&primary)),
            404,
        ),
        (
            "unlinking through a traversal",
            format!(
                "/users/{}/identities/oidc/..%2F..%2Fusers",
                encoded(&primary)
            ),
            404,
        ),
        (
            "unlinking from a user that does not exist",
            "/users/github%7C404/identities/oidc/acme%7C5".into(),
            404,
        ),
    ];
    for (case, path, expected) in unlinks {
        let (status, answer) = call(&server, t, Method::DELETE, &path, None).await;
        tally.status(format_args!("{case} ({answer})"), status, expected);
    }
    let (status, _) = call(
        &server,
        &reader,
        Method::DELETE,
        "/users/oidc%7Cacme%7C4/identities/oidc/acme%7C5",
        None,
    )
    .await;
    tally.status("unlinking with read:users only", status, 403);

    let after = snapshot().await;
    tally.case(
        "the users and their identities are unchanged",
        after == before,
        &after,
    );
    // No linking by email: the upstream account with the primary's email is its own.
    tally.case(
        "an upstream account with the same email stays apart",
        server.store.find_user("github|1").await.unwrap().is_some()
            && server
                .store
                .linked_identities(&primary)
                .await
                .unwrap()
                .is_empty(),
        "github|1 was linked or removed",
    );
    tally.finish();
}
