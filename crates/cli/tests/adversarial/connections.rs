//! Administering connections with hostile input: upstream URLs an attacker would like the
//! server to call (plain http to the network, credentials in the URL, other schemes,
//! oversized), presets pointed elsewhere, names that would break user ids or paths,
//! secrets in the wrong place, a database connection with an upstream's options, renames,
//! mass assignment,
//! enabling applications that do not exist or in bulk — each refused with a clear 4xx,
//! the client secret never echoed in any answer, and the tenant's connections and their
//! enabled applications read back unchanged.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::{TestServer, spawn};

use crate::harness::Tally;

const SECRET: &str = "adversarial-upstream-secret-71ab";

const SCOPES: &[&str] = &[
    "read:connections",
    "create:connections",
    "update:connections",
    "delete:connections",
];

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

fn oidc(name: &str) -> Value {
    json!({
        "name": name,
        "strategy": "oidc",
        "options": {
            "discovery_url": "https://idp.example/.well-known/openid-configuration",
            "client_id": "tessera",
            "client_secret": SECRET,
        },
    })
}

/// Everything an attack could have changed, as the API shows it.
async fn snapshot(server: &TestServer, token: &str, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/connections?per_page=100".to_string(),
        format!("/connections/{id}/clients"),
    ] {
        out.push(call(server, token, Method::GET, &path, None).await.1);
    }
    out
}

#[tokio::test]
async fn hostile_connections_are_refused_and_change_nothing() {
    let mut tally = Tally::new("connections/hostile_input");
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = token.as_str();

    let mut kept = oidc("kept");
    kept["enabled_clients"] = json!([server.spa_client_id]);
    let (status, body) = call(&server, t, Method::POST, "/connections", Some(kept)).await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    tally.case(
        "the created connection's answer holds no secret",
        !body.contains(SECRET),
        &body,
    );
    let before = snapshot(&server, t, &id).await;
    tally.case(
        "no list shows the secret",
        before.iter().all(|text| !text.contains(SECRET)),
        before.join("\n"),
    );

    let option = |member: &str, value: Value| {
        let mut body = oidc("attack");
        body["options"][member] = value;
        body
    };
    let member = |name: &str, value: Value| {
        let mut body = oidc("attack");
        body[name] = value;
        body
    };
    let long_url = format!("https://idp.example/{}", "a".repeat(2100));
    let creates = [
        (
            "discovery over plain http to the network",
            option(
                "discovery_url",
                json!("http://10.0.0.1/.well-known/openid-configuration"),
            ),
        ),
        (
            "discovery at a metadata address over http",
            option(
                "discovery_url",
                json!("http://169.254.169.254/latest/meta-data/"),
            ),
        ),
        (
            "credentials in the discovery URL",
            option("discovery_url", json!("https://admin:hunter2@idp.example/")),
        ),
        (
            "a file: discovery URL",
            option("discovery_url", json!("file:///etc/passwd")),
        ),
        (
            "a javascript: URL",
            option("discovery_url", json!("javascript:alert(1)")),
        ),
        (
            "a fragment in the URL",
            option("discovery_url", json!("https://idp.example/#x")),
        ),
        ("an oversized URL", option("discovery_url", json!(long_url))),
        ("a token endpoint over http", {
            let mut body = oidc("attack");
            body["options"] = json!({
                "issuer": "https://idp.example/",
                "authorization_endpoint": "https://idp.example/auth",
                "token_endpoint": "http://idp.example/token",
                "jwks_uri": "https://idp.example/jwks",
                "client_id": "c", "client_secret": SECRET,
            });
            body
        }),
        (
            "google pointed at another discovery document",
            json!({
                "name": "attack", "strategy": "google-oauth2",
                "options": {"client_id": "c", "client_secret": SECRET, "discovery_url": "https://evil.example/"},
            }),
        ),
        (
            "github pointed at plain http",
            json!({
                "name": "attack", "strategy": "github",
                "options": {"client_id": "c", "client_secret": SECRET, "github_url": "http://evil.example"},
            }),
        ),
        (
            "an oauth2 fetchUserProfile script",
            json!({
                "name": "attack", "strategy": "oauth2",
                "options": {"client_id": "c", "client_secret": SECRET,
                            "authorizationURL": "https://idp.example/a", "tokenURL": "https://idp.example/t",
                            "userinfo_url": "https://idp.example/u", "profile_map": {"user_id": "/id"},
                            "scripts": {"fetchUserProfile": "function (t, c, cb) { require('child_process') }"}},
            }),
        ),
        (
            "a profile map filling app_metadata",
            json!({
                "name": "attack", "strategy": "oauth2",
                "options": {"client_id": "c", "client_secret": SECRET,
                            "authorizationURL": "https://idp.example/a", "tokenURL": "https://idp.example/t",
                            "userinfo_url": "https://idp.example/u",
                            "profile_map": {"user_id": "/id", "app_metadata": "/roles"}},
            }),
        ),
        (
            "the secret as an object",
            option("client_secret", json!({"value": SECRET})),
        ),
        (
            "a secret with a newline",
            option("client_secret", json!(format!("{SECRET}\nX-Injected: 1"))),
        ),
        (
            "an oversized options object",
            option("padding", json!("x".repeat(40_000))),
        ),
        (
            "a name with a pipe (user ids)",
            member("name", json!("acme|admin")),
        ),
        (
            "a name with a slash (paths)",
            member("name", json!("../acme")),
        ),
        ("a name with markup", member("name", json!("<script>"))),
        ("an empty name", member("name", json!(""))),
        (
            "the database connection's name",
            member("name", json!("Username-Password-Authentication")),
        ),
        (
            "the kept connection's name again",
            member("name", json!("kept")),
        ),
        (
            "a database connection with an upstream's options",
            member("strategy", json!("auth0")),
        ),
        (
            "a strategy Tessera does not speak",
            member("strategy", json!("samlp")),
        ),
        (
            "an id chosen by the caller",
            member("id", json!("con_TesseraDatabase1")),
        ),
        (
            "a display name with control characters",
            member("display_name", json!("Acme\u{0}SSO")),
        ),
        (
            "metadata holding an object",
            member("metadata", json!({"nested": {"a": 1}})),
        ),
        (
            "realms naming another connection",
            member("realms", json!(["Username-Password-Authentication"])),
        ),
        (
            "an application that does not exist",
            member("enabled_clients", json!(["app-nobody"])),
        ),
        (
            "options that are not an object",
            member("options", json!("client_id=c")),
        ),
    ];
    for (case, body) in creates {
        let (status, answer) = call(&server, t, Method::POST, "/connections", Some(body)).await;
        tally.case(
            format_args!("create with {case}: refused with a 4xx"),
            (400..500).contains(&status) && status != 401 && status != 403,
            format_args!("{status} {answer}"),
        );
        tally.case(
            format_args!("create with {case}: the answer repeats no secret"),
            !answer.contains(SECRET) && !answer.contains("hunter2"),
            &answer,
        );
    }

    let changes = [
        ("a rename", json!({"name": "renamed"})),
        ("a strategy change", json!({"strategy": "oauth2"})),
        (
            "options without the discovery document",
            json!({"options": {"client_id": "c"}}),
        ),
        (
            "options over plain http",
            json!({"options": {"discovery_url": "http://evil.example/", "client_id": "c"}}),
        ),
        ("an unknown member", json!({"id": "con_other"})),
        (
            "an unknown application",
            json!({"enabled_clients": ["app-nobody"]}),
        ),
        ("a null display name", json!({"display_name": null})),
    ];
    for (case, body) in changes {
        let (status, answer) = call(
            &server,
            t,
            Method::PATCH,
            &format!("/connections/{id}"),
            Some(body),
        )
        .await;
        tally.case(
            format_args!("update with {case}: refused with a 4xx"),
            (400..500).contains(&status) && status != 401 && status != 403,
            format_args!("{status} {answer}"),
        );
    }

    let fifty_one: Vec<Value> = (0..51)
        .map(|_| json!({"client_id": server.spa_client_id, "status": true}))
        .collect();
    let enablings = [
        ("more than fifty changes", json!(fifty_one)),
        (
            "an unknown application among known ones",
            json!([
                {"client_id": server.m2m_client_id, "status": true},
                {"client_id": "app-nobody", "status": true},
            ]),
        ),
        (
            "a status that is not a boolean",
            json!([{"client_id": server.m2m_client_id, "status": 1}]),
        ),
        (
            "an extra member",
            json!([{"client_id": server.m2m_client_id, "status": true, "connection_id": "x"}]),
        ),
        (
            "an object instead of a list",
            json!({"client_id": server.m2m_client_id, "status": true}),
        ),
    ];
    for (case, body) in enablings {
        let (status, answer) = call(
            &server,
            t,
            Method::PATCH,
            &format!("/connections/{id}/clients"),
            Some(body),
        )
        .await;
        tally.case(
            format_args!("enabled applications with {case}: refused with a 4xx"),
            (400..500).contains(&status),
            format_args!("{status} {answer}"),
        );
    }
    let (status, answer) = call(
        &server,
        t,
        Method::DELETE,
        "/connections/con_TesseraDatabase1",
        None,
    )
    .await;
    tally.case(
        "deleting the database connection is refused",
        status == 400,
        format_args!("{status} {answer}"),
    );
    for path in ["/connections/..%2Fcon_x", "/connections/con_x%00"] {
        let (status, _) = call(&server, t, Method::DELETE, path, None).await;
        tally.status_in(format_args!("delete {path}"), status, &[400, 404]);
    }

    let after = snapshot(&server, t, &id).await;
    tally.case(
        "connections and enabled applications unchanged",
        after == before,
        format_args!("before {before:?}\nafter {after:?}"),
    );
    let stored = server.store.find_connection(&id).await.unwrap().unwrap();
    tally.case(
        "the stored options hold no secret",
        !serde_json::to_string(&stored.options)
            .unwrap()
            .contains(SECRET),
        format_args!("{:?}", stored.options),
    );
    tally.finish();
}
