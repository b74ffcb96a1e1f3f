//! Upstream connections through `/api/v2/connections`: Auth0's shapes, the client secret
//! sealed and never shown, immutable names and strategies, enabled applications by both
//! of Auth0's ways, and every refusal changing nothing.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::spawn;

use super::{assert_error, call};

const SCOPES: &[&str] = &[
    "read:connections",
    "create:connections",
    "update:connections",
    "delete:connections",
];
const SECRET: &str = "upstream-secret-4d1c";

fn oidc(name: &str) -> Value {
    json!({
        "name": name,
        "strategy": "oidc",
        "display_name": "Acme SSO",
        "options": {
            "type": "back_channel",
            "discovery_url": "https://login.acme.example/.well-known/openid-configuration",
            "client_id": "tessera-at-acme",
            "client_secret": SECRET,
            "scopes": "openid profile email",
        },
        "metadata": {"owner": "identity-team"},
    })
}

#[tokio::test]
async fn an_upstream_connection_is_created_read_changed_and_deleted() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = Some(token.as_str());

    let (status, created) =
        call(&server, t, Method::POST, "/connections", Some(oidc("acme"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("con_") && id.len() == 20, "{id}");
    assert_eq!(created["name"], "acme");
    assert_eq!(created["strategy"], "oidc");
    assert_eq!(created["display_name"], "Acme SSO");
    assert_eq!(created["realms"], json!(["acme"]));
    assert_eq!(created["show_as_button"], true);
    assert_eq!(created["metadata"], json!({"owner": "identity-team"}));
    assert_eq!(created["options"]["client_id"], "tessera-at-acme");
    assert!(
        created["options"].get("client_secret").is_none(),
        "{created}"
    );
    assert!(!created.to_string().contains(SECRET));

    // Sealed at rest: the row holds no copy of the secret.
    let stored = server.store.find_connection(&id).await.unwrap().unwrap();
    let sealed = stored.sealed_secret.clone().expect("a sealed secret");
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    assert!(
        !serde_json::to_string(&stored.options)
            .unwrap()
            .contains(SECRET)
    );

    let (status, read) = call(&server, t, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!((status, &read), (200, &created));
    let (_, oidc_only) = call(&server, t, Method::GET, "/connections?strategy=oidc", None).await;
    assert_eq!(oidc_only, json!([created]));
    let (_, both) = call(
        &server,
        t,
        Method::GET,
        "/connections?strategy=oidc,auth0&fields=name",
        None,
    )
    .await;
    let names: Vec<&str> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"acme") && names.contains(&"Username-Password-Authentication"));
    let (_, by_name) = call(
        &server,
        t,
        Method::GET,
        "/connections?name=acme&take=10&include_totals=true",
        None,
    )
    .await;
    assert_eq!(by_name["connections"][0]["id"], id.as_str(), "{by_name}");
    let (_, paged) = call(
        &server,
        t,
        Method::GET,
        "/connections?per_page=1&page=0&include_totals=true",
        None,
    )
    .await;
    assert_eq!(paged["total"], 2, "{paged}");
    assert_eq!(paged["connections"].as_array().unwrap().len(), 1);

    // A change without the secret keeps it; the options are replaced whole.
    let change = json!({
        "display_name": "Acme",
        "show_as_button": false,
        "options": {
            "discovery_url": "https://login.acme.example/.well-known/openid-configuration",
            "client_id": "tessera-2",
        },
    });
    let (status, changed) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}"),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["display_name"], "Acme");
    assert_eq!(changed["show_as_button"], false);
    assert_eq!(changed["options"]["client_id"], "tessera-2");
    assert!(
        changed["options"].get("scopes").is_none(),
        "replaced whole: {changed}"
    );
    let kept = server.store.find_connection(&id).await.unwrap().unwrap();
    assert_eq!(
        kept.sealed_secret,
        Some(sealed.clone()),
        "the secret is kept"
    );
    // A new secret is sealed anew.
    let mut options = changed["options"].clone();
    options["client_secret"] = json!("rotated-secret");
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}"),
        Some(json!({"options": options})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("rotated-secret"));
    let rotated = server.store.find_connection(&id).await.unwrap().unwrap();
    assert_ne!(rotated.sealed_secret, Some(sealed));
    // Repeating the name and strategy is fine.
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}"),
        Some(json!({"name": "acme", "strategy": "oidc"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/connections/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = call(&server, t, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_connection"));
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/connections/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn each_strategy_takes_its_own_options() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = Some(token.as_str());
    for body in [
        json!({"name": "github", "strategy": "github",
               "options": {"client_id": "gh", "client_secret": "s", "scope": ["user:email"]}}),
        json!({"name": "google-oauth2", "strategy": "google-oauth2",
               "options": {"client_id": "g", "client_secret": "s"}}),
        json!({"name": "corp-oauth", "strategy": "oauth2",
               "options": {"client_id": "c", "client_secret": "s",
                           "authorizationURL": "https://corp.example/authorize",
                           "tokenURL": "https://corp.example/token",
                           "userinfo_url": "https://corp.example/me",
                           "profile_map": {"user_id": "/id", "email": "/mail"}}}),
    ] {
        let (status, created) =
            call(&server, t, Method::POST, "/connections", Some(body.clone())).await;
        assert_eq!(status, 201, "{body} → {created}");
        assert_eq!(created["strategy"], body["strategy"]);
        assert!(created["options"].get("client_secret").is_none());
    }
    let (_, social) = call(
        &server,
        t,
        Method::GET,
        "/connections?strategy=github&strategy=google-oauth2",
        None,
    )
    .await;
    assert_eq!(social.as_array().unwrap().len(), 2, "{social}");
}

#[tokio::test]
async fn bad_connections_are_refused_and_change_nothing() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let with = |member: &str, value: Value| {
        let mut body = oidc("acme");
        body[member] = value;
        body
    };
    let with_option = |member: &str, value: Value| {
        let mut body = oidc("acme");
        body["options"][member] = value;
        body
    };
    let refused = [
        (with("name", json!("acme corp")), "name"),
        (with("name", json!("-acme")), "name"),
        (with("strategy", json!("samlp")), "strategy"),
        (
            with("strategy", json!("auth0")),
            "not an option of a database connection",
        ),
        (with("metadata", json!({"n": 1})), "metadata"),
        (with("realms", json!(["other"])), "realms"),
        (with("enabled_clients", json!(["nobody"])), "client"),
        (
            with_option("discovery_url", json!("http://idp.example/")),
            "options",
        ),
        (
            with_option("discovery_url", json!("https://user:pw@idp.example/")),
            "options",
        ),
        (with_option("scopes", json!("profile email")), "options"),
        (with_option("type", json!("front_channel")), "options"),
        (with_option("client_secret", Value::Null), "options"),
        (json!({"name": "x", "strategy": "oidc"}), "options"),
        (
            json!({"name": "x", "strategy": "oidc", "options": {}, "surprise": 1}),
            "Additional",
        ),
    ];
    for (body, about) in refused {
        let (status, error) =
            call(&server, t, Method::POST, "/connections", Some(body.clone())).await;
        assert!(status == 400 || status == 404, "{body} → {status} {error}");
        assert!(
            error["message"].as_str().unwrap().contains(about) || error.to_string().contains(about),
            "{body} → {error}"
        );
        assert!(!error.to_string().contains(SECRET), "{error}");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }
    let (_, list) = call(&server, t, Method::GET, "/connections", None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the database: {list}"
    );

    let (status, created) =
        call(&server, t, Method::POST, "/connections", Some(oidc("acme"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, error) = call(&server, t, Method::POST, "/connections", Some(oidc("acme"))).await;
    assert_eq!(status, 409, "{error}");
    assert_error(&error, 409, Some("connection_conflict"));
    for change in [
        json!({"name": "renamed"}),
        json!({"strategy": "oauth2"}),
        json!({"options": {"client_id": "c"}}),
        json!({"enabled_clients": ["nobody"]}),
        json!({"display_name": ""}),
    ] {
        let (status, error) = call(
            &server,
            t,
            Method::PATCH,
            &format!("/connections/{id}"),
            Some(change.clone()),
        )
        .await;
        assert!(
            status == 400 || status == 404,
            "{change} → {status} {error}"
        );
    }
    let (_, after) = call(&server, t, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(after, created, "nothing changed");

    // The database connection stays.
    let (status, error) = call(
        &server,
        t,
        Method::DELETE,
        "/connections/con_TesseraDatabase1",
        None,
    )
    .await;
    assert_eq!(status, 400, "{error}");

    // Scopes: reading does not let one create, change or delete.
    let reader = server.management_token(&["read:connections"]).await;
    let r = Some(reader.as_str());
    for (method, path, body) in [
        (
            Method::POST,
            "/connections".to_string(),
            Some(oidc("other")),
        ),
        (
            Method::PATCH,
            format!("/connections/{id}"),
            Some(json!({"display_name": "x"})),
        ),
        (Method::DELETE, format!("/connections/{id}"), None),
        (
            Method::PATCH,
            format!("/connections/{id}/clients"),
            Some(json!([])),
        ),
    ] {
        let (status, error) = call(&server, r, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path} → {error}");
        assert_error(&error, 403, Some("insufficient_scope"));
    }
    let (_, after) = call(&server, t, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(after, created, "nothing changed");
}

#[tokio::test]
async fn enabled_applications_are_read_and_changed_both_ways() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let mut body = oidc("acme");
    body["enabled_clients"] = json!([server.spa_client_id]);
    let (status, created) = call(&server, t, Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        enabled(&server, &token, id).await,
        json!({"clients": [{"client_id": server.spa_client_id}]})
    );

    let changes = json!([
        {"client_id": server.m2m_client_id, "status": true},
        {"client_id": server.spa_client_id, "status": false},
    ]);
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}/clients"),
        Some(changes),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        enabled(&server, &token, id).await,
        json!({"clients": [{"client_id": server.m2m_client_id}]})
    );

    // All or nothing: an unknown application refuses the whole request.
    let changes = json!([
        {"client_id": server.spa_client_id, "status": true},
        {"client_id": "nobody", "status": true},
    ]);
    let (status, error) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}/clients"),
        Some(changes),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    assert_error(&error, 404, Some("inexistent_client"));
    assert_eq!(
        enabled(&server, &token, id).await,
        json!({"clients": [{"client_id": server.m2m_client_id}]})
    );
    let too_many: Vec<Value> = (0..51)
        .map(|_| json!({"client_id": server.spa_client_id, "status": true}))
        .collect();
    let (status, _) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}/clients"),
        Some(json!(too_many)),
    )
    .await;
    assert_eq!(status, 400);
    for bad in [
        json!({}),
        json!([{"client_id": server.spa_client_id}]),
        json!([{"client_id": server.spa_client_id, "status": "yes"}]),
    ] {
        let (status, error) = call(
            &server,
            t,
            Method::PATCH,
            &format!("/connections/{id}/clients"),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad} → {error}");
    }

    // The deprecated member replaces the list whole.
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}"),
        Some(json!({"enabled_clients": [server.spa_client_id]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        enabled(&server, &token, id).await,
        json!({"clients": [{"client_id": server.spa_client_id}]})
    );

    // Checkpoints page the list.
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/connections/{id}/clients"),
        Some(json!([{"client_id": server.m2m_client_id, "status": true}])),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, first) = call(
        &server,
        t,
        Method::GET,
        &format!("/connections/{id}/clients?take=1"),
        None,
    )
    .await;
    assert_eq!(first["clients"].as_array().unwrap().len(), 1, "{first}");
    let next = first["next"].as_str().expect("more follow").to_string();
    let (_, rest) = call(
        &server,
        t,
        Method::GET,
        &format!("/connections/{id}/clients?take=1&from={next}"),
        None,
    )
    .await;
    assert_eq!(rest["clients"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest.get("next").is_none(), "{rest}");
    assert_ne!(first["clients"][0], rest["clients"][0]);

    let (status, _) = call(
        &server,
        t,
        Method::GET,
        "/connections/con_nope/clients",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

/// A connection's enabled applications as `GET …/clients` lists them.
async fn enabled(server: &tessera_testkit::TestServer, token: &str, id: &str) -> Value {
    let path = format!("/connections/{id}/clients");
    let (status, body) = call(server, Some(token), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body
}
