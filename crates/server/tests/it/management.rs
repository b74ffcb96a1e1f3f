//! The Management API v2 (`/api/v2/…`): tokens and scopes, each endpoint's happy path
//! and its 400/404/409, pagination, the system API, and that what it creates works
//! (a user signs in, a client gets a client-credentials token).

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::{TokenDialect, ids};
use tessera_testkit::{TestServer, spawn};

mod connections;
mod jobs;
mod lists;
mod round_trip;
mod tenant_settings;
mod tenant_wide;

const ALL_SCOPES: &[&str] = &[
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "delete:resource_servers",
    "read:clients",
    "create:clients",
    "update:clients",
    "delete:clients",
    "update:client_keys",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
    "delete:client_grants",
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "read:roles",
    "create:roles",
    "update:roles",
    "delete:roles",
];

async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/api/v2{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_error(body: &Value, status: u16, error_code: Option<&str>) {
    assert_eq!(body["statusCode"], json!(status), "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    if let Some(code) = error_code {
        assert_eq!(body["errorCode"], json!(code), "{body}");
    }
}

#[tokio::test]
async fn tokens_are_required_and_scopes_checked_in_auth0s_error_shape() {
    let server = spawn().await;
    let (status, body) = call(&server, None, Method::GET, "/clients", None).await;
    assert_eq!(status, 401);
    assert_error(&body, 401, None);
    assert_eq!(body["error"], "Unauthorized");
    assert_eq!(body["message"], "Missing authentication");

    let (status, body) = call(&server, Some("not.a.jwt"), Method::GET, "/clients", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Invalid token");

    // A token of another API is not a Management API token.
    let (status, token) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", tessera_testkit::API),
        ])
        .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &server,
        token["access_token"].as_str(),
        Method::GET,
        "/clients",
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");

    let token = server.management_token(&["read:users"]).await;
    let (status, body) = call(&server, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(status, 403);
    assert_error(&body, 403, Some("insufficient_scope"));
    assert_eq!(body["error"], "Forbidden");
    assert_eq!(
        body["message"],
        "Insufficient scope, expected any of: read:clients"
    );
    let (status, _) = call(&server, Some(&token), Method::GET, "/users", None).await;
    assert_eq!(status, 200);
}

/// Every scope a token grants: its `scope` claim and its `permissions`.
fn granted_in(claims: &Value) -> Vec<String> {
    let mut out: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    out.extend(
        claims["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string)),
    );
    out
}

fn assert_no_management_scope(granted: &[String], context: &str) {
    for (scope, _) in tessera_core::system::MANAGEMENT_SCOPES {
        assert!(
            !granted.iter().any(|g| g == scope),
            "{context}: a user was granted {scope}: {granted:?}"
        );
    }
}

const ADMIN_REQUEST: &str = "openid profile read:current_user update:current_user_metadata \
    delete:users create:client_grants read:clients update:users create:users";

#[tokio::test]
async fn user_flows_are_never_granted_management_scopes() {
    let server = spawn().await;
    let audience = server.management_audience();
    let browser = tessera_testkit::browser();

    // Code flow: the admin scopes are dropped, the rest is granted.
    let tokens = server
        .code_flow(&browser, ADMIN_REQUEST, Some(&audience))
        .await;
    assert_eq!(tokens["scope"], "openid profile", "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let claims = server.verify(token, &audience).await;
    assert_no_management_scope(&granted_in(&claims), "code flow");
    let (status, body) = call(&server, Some(token), Method::GET, "/users", None).await;
    assert_eq!(status, 401, "{body}");

    // Implicit flow, with the session of the code flow.
    let back = server
        .sign_in(
            &browser,
            &server.authorize_url(&[
                ("response_type", "token id_token"),
                ("scope", ADMIN_REQUEST),
                ("audience", &audience),
                ("nonce", "n"),
                ("state", "s"),
            ]),
        )
        .await;
    let params = tessera_testkit::params_of(&back);
    assert_eq!(params["scope"], "openid profile", "{back}");
    let claims = server.verify(&params["access_token"], &audience).await;
    assert_no_management_scope(&granted_in(&claims), "implicit flow");

    // Only refused scopes: nothing is left, so nothing is issued.
    let pkce = tessera_testkit::pkce();
    for response_type in ["code", "token"] {
        let mut params = vec![
            ("response_type", response_type),
            ("scope", "delete:users create:client_grants"),
            ("audience", audience.as_str()),
            ("nonce", "n"),
            ("state", "s"),
        ];
        if response_type == "code" {
            params.push(("code_challenge", &pkce.challenge));
            params.push(("code_challenge_method", "S256"));
        }
        let url = server.authorize_url(&params);
        let back = server.sign_in(&browser, &url).await;
        let params = tessera_testkit::params_of(&back);
        assert_eq!(params["error"], "access_denied", "{response_type}: {back}");
        assert_eq!(params["state"], "s");
        assert!(!params.contains_key("code") && !params.contains_key("access_token"));
    }
}

/// Codes and refresh tokens recorded before users were refused Management scopes: what
/// they recorded is narrowed again when they are used.
#[tokio::test]
async fn stored_grants_with_management_scopes_are_narrowed_when_used() {
    use tessera_store::{NewCode, NewRefreshFamily};
    let server = spawn().await;
    let audience = server.management_audience();
    let now = tessera_testkit::now();
    let pkce = tessera_testkit::pkce();
    let grant = |scopes: &[&str]| {
        json!({
            "scope": scopes,
            "audience": audience,
            "nonce": null,
            "code_challenge": pkce.challenge,
            "sid": "sid-before-the-fix",
            "auth_time": now,
        })
        .to_string()
    };
    let redeem = |code: String| {
        let server = &server;
        let verifier = pkce.verifier.clone();
        async move {
            server
                .token(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", &server.spa_client_id),
                    ("code", &code),
                    ("redirect_uri", tessera_testkit::CALLBACK),
                    ("code_verifier", &verifier),
                ])
                .await
        }
    };
    let stored_code = |scopes: &[&str]| {
        let code = ids::secret_token();
        let record = NewCode {
            session_client: None,
            code_hash: ids::secret_hash(&code),
            client_id: server.spa_client_id.clone(),
            user_id: server.user_id.clone(),
            redirect_uri: tessera_testkit::CALLBACK.into(),
            grant: grant(scopes),
            created_at: now,
            expires_at: now + 60,
        };
        (code, record)
    };
    let (code, record) = stored_code(&["openid", "delete:users", "read:clients"]);
    server.store.create_code(&record).await.unwrap();
    let (status, tokens) = redeem(code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid");
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), &audience)
        .await;
    assert_no_management_scope(&granted_in(&claims), "code from before");

    let refresh = ids::secret_token();
    server
        .store
        .create_refresh_family(
            &NewRefreshFamily {
                family_id: ids::alphanumeric(24),
                client_id: server.spa_client_id.clone(),
                user_id: server.user_id.clone(),
                grant: grant(&["openid", "offline_access", "delete:users", "update:users"]),
                code_hash: None,
                sid: None,
                created_at: now,
                expires_at: now + 3600,
                metadata: Default::default(),
            },
            &ids::secret_hash(&refresh),
            now + 3600,
        )
        .await
        .unwrap();
    let (status, tokens) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", &refresh),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid offline_access");
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), &audience)
        .await;
    assert_no_management_scope(&granted_in(&claims), "refresh token from before");

    // A code that recorded nothing but refused scopes yields nothing.
    let (code, record) = stored_code(&["delete:users"]);
    server.store.create_code(&record).await.unwrap();
    let (status, body) = redeem(code).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test]
async fn removing_the_grant_takes_effect_for_issued_tokens() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let (status, grants) = call(
        &server,
        Some(&token),
        Method::GET,
        &format!(
            "/client-grants?audience={}",
            urlencode(&server.management_audience())
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let grant = grants.as_array().unwrap().last().unwrap().clone();
    let id = grant["id"].as_str().unwrap();
    let (status, _) = call(
        &server,
        Some(&token),
        Method::PATCH,
        &format!("/client-grants/{id}"),
        Some(json!({"scope": ["read:clients"]})),
    )
    .await;
    assert_eq!(status, 200);
    // The token still says read:users, but the grant no longer does.
    let (status, body) = call(&server, Some(&token), Method::GET, "/users", None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(&server, Some(&token), Method::GET, "/clients", None).await;
    assert_eq!(status, 200);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn resource_servers_crud_and_the_system_api() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());

    let (status, list) = call(&server, t, Method::GET, "/resource-servers", None).await;
    assert_eq!(status, 200);
    let system = list
        .as_array()
        .unwrap()
        .iter()
        .find(|api| api["identifier"] == json!(server.management_audience()))
        .expect("the Management API is listed")
        .clone();
    assert_eq!(system["is_system"], json!(true));
    assert_eq!(system["name"], "Auth0 Management API");

    let created = json!({
        "name": "Orders API",
        "identifier": "https://orders.example.com",
        "scopes": [{"value": "read:orders", "description": "Read orders"}],
        "token_lifetime": 3600,
        "allow_offline_access": true
    });
    let (status, api) = call(
        &server,
        t,
        Method::POST,
        "/resource-servers",
        Some(created.clone()),
    )
    .await;
    assert_eq!(status, 201, "{api}");
    assert_eq!(api["identifier"], "https://orders.example.com");
    assert_eq!(api["signing_alg"], "RS256");
    assert_eq!(api["token_dialect"], "access_token");
    assert_eq!(api["is_system"], json!(false));
    assert_eq!(api["scopes"][0]["value"], "read:orders");
    let id = api["id"].as_str().unwrap().to_string();

    let (status, body) = call(&server, t, Method::POST, "/resource-servers", Some(created)).await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, 409, Some("resource_server_conflict"));

    // By id and by URL-encoded identifier.
    let (status, by_id) = call(
        &server,
        t,
        Method::GET,
        &format!("/resource-servers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, by_identifier) = call(
        &server,
        t,
        Method::GET,
        &format!(
            "/resource-servers/{}",
            urlencode("https://orders.example.com")
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_id, by_identifier);

    let (status, api) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/resource-servers/{id}"),
        Some(json!({"name": "Orders", "token_dialect": "access_token_authz", "enforce_policies": true})),
    )
    .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["name"], "Orders");
    assert_eq!(api["enforce_policies"], json!(true));

    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/resource-servers/{id}"),
        Some(json!({"identifier": "https://other"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_error(&body, 400, Some("invalid_body"));
    assert_eq!(
        body["message"],
        "Payload validation error: 'Additional properties not allowed: identifier'."
    );
    for bad in [
        json!({"identifier": "has space"}),
        json!({"identifier": "https://x.example", "token_lifetime": 0}),
        json!({"identifier": "https://x.example", "signing_alg": "HS256"}),
        json!({"identifier": "https://x.example", "scopes": [{"value": "bad scope"}]}),
        json!({"identifier": 42}),
        json!({"name": "no identifier"}),
        json!([]),
    ] {
        let (status, body) = call(
            &server,
            t,
            Method::POST,
            "/resource-servers",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_error(&body, 400, None);
    }

    // The system API can be read, not changed or deleted.
    let system_id = system["id"].as_str().unwrap();
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/resource-servers/{system_id}"),
        Some(json!({"name": "Mine now"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!(
            "/resource-servers/{}",
            urlencode(&server.management_audience())
        ),
        None,
    )
    .await;
    assert_eq!(status, 403);

    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/resource-servers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/resource-servers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_resource_server"));
}

#[tokio::test]
async fn clients_and_client_grants_work_end_to_end() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());

    let (status, app) = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(json!({"name": "Billing worker", "app_type": "non_interactive"})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["grant_types"], json!(["client_credentials"]));
    assert_eq!(app["token_endpoint_auth_method"], "client_secret_post");
    let client_id = app["client_id"].as_str().unwrap().to_string();
    let secret = app["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);

    // Read back: never the secret.
    let (status, read) = call(
        &server,
        t,
        Method::GET,
        &format!("/clients/{client_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(read.get("client_secret").is_none(), "{read}");
    assert_eq!(read["name"], "Billing worker");

    let (status, grant) = call(
        &server,
        t,
        Method::POST,
        "/client-grants",
        Some(json!({"client_id": client_id, "audience": tessera_testkit::API, "scope": ["read:messages"]})),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    assert_eq!(grant["audience"], tessera_testkit::API);
    let grant_id = grant["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/client-grants",
        Some(json!({"client_id": client_id, "audience": tessera_testkit::API, "scope": []})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/client-grants",
        Some(json!({"client_id": client_id, "audience": "https://nope", "scope": []})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/client-grants",
        Some(json!({"client_id": "nope", "audience": tessera_testkit::API, "scope": []})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, 404, Some("inexistent_client"));
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/client-grants/{grant_id}"),
        Some(json!({"scope": ["delete:everything"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, grants) = call(
        &server,
        t,
        Method::GET,
        &format!("/client-grants?client_id={client_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(grants.as_array().unwrap().len(), 1);

    // The new client gets a token with the grant made through the API.
    let form = |secret: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id.clone()),
            ("client_secret", secret.to_string()),
            ("audience", tessera_testkit::API.to_string()),
        ]
    };
    let token_with = |secret: String| {
        let form = form(&secret);
        let server = &server;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server.token(&pairs).await
        }
    };
    let (status, body) = token_with(secret.clone()).await;
    assert_eq!(status, 200, "{body}");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), tessera_testkit::API)
        .await;
    assert_eq!(claims["scope"], "read:messages");

    // Update, rotate: the old secret stops working at once.
    let (status, app) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/clients/{client_id}"),
        Some(json!({"name": "Billing", "refresh_token": {"leeway": 10}})),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["name"], "Billing");
    assert_eq!(app["refresh_token"]["leeway"], json!(10));
    let (status, rotated) = call(
        &server,
        t,
        Method::POST,
        &format!("/clients/{client_id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let (status, _) = token_with(secret.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = token_with(new_secret.clone()).await;
    assert_eq!(status, 200);

    // Bad bodies.
    for bad in [
        json!({"name": "x", "foo": 1}),
        json!({"name": "x", "app_type": "desktop"}),
        json!({"name": "x", "app_type": "spa", "grant_types": ["client_credentials"]}),
        json!({"name": "x", "callbacks": ["not a url"]}),
        json!({"name": "x", "web_origins": ["https://app.example/path"]}),
        json!({"app_type": "spa"}),
        json!({"name": "x", "is_first_party": "yes"}),
    ] {
        let (status, body) = call(&server, t, Method::POST, "/clients", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_error(&body, 400, Some("invalid_body"));
    }
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(json!({"name": "x", "foo": 1})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "Payload validation error: 'Additional properties not allowed: foo'."
    );

    // Delete the grant, then the client: 404 afterwards, and no more tokens.
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/client-grants/{grant_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = token_with(new_secret.clone()).await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/clients/{client_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/clients/{client_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_client"));
    assert_eq!(body["message"], "The client does not exist");
    let (status, _) = token_with(new_secret).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn lists_page_with_include_totals() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    for n in 0..5 {
        let (status, _) = call(
            &server,
            t,
            Method::POST,
            "/clients",
            Some(json!({"name": format!("App {n}"), "app_type": "spa"})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, all) = call(&server, t, Method::GET, "/clients", None).await;
    assert_eq!(status, 200);
    let total = all.as_array().unwrap().len();
    assert!(total >= 7, "{total}");
    let (status, page) = call(
        &server,
        t,
        Method::GET,
        "/clients?page=1&per_page=2&include_totals=true",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["start"], json!(2));
    assert_eq!(page["limit"], json!(2));
    assert_eq!(page["length"], json!(2));
    assert_eq!(page["total"], json!(total));
    assert_eq!(page["clients"].as_array().unwrap()[0], all[2]);
    let (status, page) = call(
        &server,
        t,
        Method::GET,
        "/clients?page=100&per_page=2",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page, json!([]));
    let (status, spas) = call(&server, t, Method::GET, "/clients?app_type=spa", None).await;
    assert_eq!(status, 200);
    assert!(
        spas.as_array()
            .unwrap()
            .iter()
            .all(|c| c["app_type"] == "spa")
    );
    for bad in [
        "per_page=101",
        "page=-1",
        "include_totals=maybe",
        "color=blue",
    ] {
        let (status, body) = call(&server, t, Method::GET, &format!("/clients?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}");
        assert_error(&body, 400, Some("invalid_query_string"));
    }
    let (status, page) = call(
        &server,
        t,
        Method::GET,
        "/resource-servers?include_totals=true&per_page=1",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["resource_servers"].as_array().unwrap().len(), 1);
    assert_eq!(page["total"], json!(2));

    // Client grants also page by checkpoint (`from`, `take`), as the v5+ SDKs ask.
    let (status, first) = call(
        &server,
        t,
        Method::GET,
        "/client-grants?take=1&include_totals=true",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["client_grants"].as_array().unwrap().len(), 1);
    let next = first["next"]
        .as_str()
        .expect("a second grant follows")
        .to_string();
    let (status, second) = call(
        &server,
        t,
        Method::GET,
        &format!("/client-grants?take=1&include_totals=true&from={next}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(second["client_grants"][0]["id"], json!(next));
    assert!(second.get("next").is_none(), "{second}");
}

#[tokio::test]
async fn users_created_through_the_api_sign_in() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let password = "a long enough passphrase 7";
    let (status, user) = call(
        &server,
        t,
        Method::POST,
        "/users",
        Some(json!({
            "connection": "Username-Password-Authentication",
            "email": "New.Person@Example.com",
            "password": password,
            "email_verified": true,
            "name": "New Person"
        })),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["email"], "new.person@example.com");
    assert_eq!(user["name"], "New Person");
    assert_eq!(user["nickname"], "new.person");
    assert_eq!(user["identities"][0]["provider"], "auth0");
    assert_eq!(
        user["identities"][0]["connection"],
        "Username-Password-Authentication"
    );
    assert!(user["created_at"].as_str().unwrap().contains('T'));
    assert!(!user.to_string().contains(password));
    let user_id = user["user_id"].as_str().unwrap().to_string();
    assert!(user_id.starts_with("auth0|"));

    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/users",
        Some(json!({"connection": "Username-Password-Authentication", "email": "new.person@example.com", "password": password})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["message"], "The user already exists.");
    for bad in [
        json!({"connection": "Username-Password-Authentication", "email": "x@example.com", "password": "password"}),
        json!({"connection": "Username-Password-Authentication", "email": "not-an-email", "password": password}),
        json!({"connection": "google-oauth2", "email": "x@example.com", "password": password}),
        json!({"email": "x@example.com", "password": password}),
        json!({"connection": "Username-Password-Authentication", "email": "x@example.com", "password": password, "username": "xuser"}),
    ] {
        let (status, body) = call(&server, t, Method::POST, "/users", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert!(!body.to_string().contains("\"password\":"), "{body}");
    }

    let (status, found) = call(
        &server,
        t,
        Method::GET,
        "/users?q=email:%22new.person%40example.com%22&search_engine=v3",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, found) = call(
        &server,
        t,
        Method::GET,
        "/users-by-email?email=NEW.person%40example.com",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found[0]["user_id"], json!(user_id));
    let (status, found) = call(
        &server,
        t,
        Method::GET,
        &format!("/users/{}", urlencode(&user_id)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["email"], "new.person@example.com");

    // Sign in through the hosted login.
    let browser = tessera_testkit::browser();
    let response = server
        .submit_login(
            &browser,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", &tessera_testkit::pkce().challenge),
                ("code_challenge_method", "S256"),
            ]),
            "new.person@example.com",
            password,
        )
        .await;
    assert_eq!(response.status(), 303);

    // Block, change the password, unblock.
    let (status, blocked) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/users/{}", urlencode(&user_id)),
        Some(json!({"blocked": true})),
    )
    .await;
    assert_eq!(status, 200, "{blocked}");
    assert_eq!(blocked["blocked"], json!(true));
    let new_password = "another long passphrase 8";
    let (status, body) = call(&server, t, Method::PATCH, &format!("/users/{}", urlencode(&user_id)), Some(json!({"password": new_password, "blocked": false, "connection": "Username-Password-Authentication"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["blocked"], json!(false));
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/users/{}", urlencode(&user_id)),
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("short\""), "{body}");
    // Profile edits: only the given fields change.
    let path = format!("/users/{}", urlencode(&user_id));
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"name": "Renamed", "nickname": "renamed", "picture": "https://pics.example/r.png"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["name"], &body["nickname"], &body["picture"]),
        (
            &json!("Renamed"),
            &json!("renamed"),
            &json!("https://pics.example/r.png")
        )
    );
    assert_eq!(body["email"], "new.person@example.com");
    assert_eq!(body["email_verified"], json!(true));
    let (status, body) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!((status, &body["nickname"]), (200, &json!("renamed")));
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"email_verified": false})),
    )
    .await;
    assert_eq!((status, &body["email_verified"]), (200, &json!(false)));
    // Bad values and unknown members change nothing.
    for bad in [
        json!({"email": "not-an-email"}),
        json!({"picture": "javascript:alert(1)"}),
        json!({"name": ""}),
        json!({"name": 5}),
        json!({"given_name": "Unsupported"}),
        json!({"name": "Half", "user_metadata": {"bad.name": 1}}),
        json!({"name": "Half", "connection": "google-oauth2"}),
    ] {
        let (status, body) = call(&server, t, Method::PATCH, &path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_error(&body, 400, None);
    }
    let (_, body) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(body["name"], "Renamed");
    // An email of another user: 409; a new email is unverified unless said otherwise.
    tessera_testkit::create_user(&server.store, "taken@example.com", password).await;
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"email": "Taken@Example.com", "name": "Not applied"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, 409, None);
    let (_, body) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(body["name"], "Renamed");
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"email": "Moved@Example.com", "email_verified": true, "connection": "Username-Password-Authentication"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["email"], &body["email_verified"]),
        (&json!("moved@example.com"), &json!(true))
    );
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"email": "new.person@example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["email"], &body["email_verified"]),
        (&json!("new.person@example.com"), &json!(false))
    );
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        "/users/auth0%7Cnobody",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_user"));
    let browser = tessera_testkit::browser();
    let response = server
        .submit_login(
            &browser,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", &tessera_testkit::pkce().challenge),
                ("code_challenge_method", "S256"),
            ]),
            "new.person@example.com",
            new_password,
        )
        .await;
    assert_eq!(response.status(), 303);

    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/users/{}", urlencode(&user_id)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/users/{}", urlencode(&user_id)),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_user"));
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/users/{}", urlencode(&user_id)),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bodies_must_be_json_and_small() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/clients"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/clients"))
        .bearer_auth(&token)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/clients"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["statusCode"], json!(413));
    let (status, body) = call(&server, Some(&token), Method::GET, "/nothing-here", None).await;
    assert_eq!(status, 404);
    assert_error(&body, 404, None);
}

/// The permissions of a user's access token for `audience`, from a fresh login.
async fn permissions_in_a_new_token(server: &TestServer, audience: &str) -> Vec<String> {
    let tokens = server
        .code_flow(
            &tessera_testkit::browser(),
            "openid read:orders",
            Some(audience),
        )
        .await;
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), audience)
        .await;
    serde_json::from_value(claims["permissions"].clone()).unwrap()
}

#[tokio::test]
async fn roles_their_permissions_and_members_reach_new_tokens() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let orders = "https://orders.example";
    let mut api = tessera_testkit::api(orders, &["read:orders", "write:orders"]);
    api.name = "Orders".into();
    api.enforce_policies = true;
    api.token_dialect = TokenDialect::AccessTokenAuthz;
    server.store.create_resource_server(&api).await.unwrap();

    // Roles: create, list, filter, read, rename.
    let (status, role) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(json!({"name": "Reader", "description": "Reads"})),
    )
    .await;
    assert_eq!(status, 200, "{role}");
    let id = role["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("rol_"));
    assert_eq!(
        role,
        json!({"id": id, "name": "Reader", "description": "Reads"})
    );
    let (status, other) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(json!({"name": "Writer"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(other["description"], "");
    let other_id = other["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(json!({"name": "Reader"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, 409, None);
    for bad in [
        json!({"description": "no name"}),
        json!({"name": ""}),
        json!({"name": "X", "color": "red"}),
        json!({"name": "X", "description": "x".repeat(141)}),
        json!({"name": 3}),
    ] {
        let (status, body) = call(&server, t, Method::POST, "/roles", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_error(&body, 400, Some("invalid_body"));
    }
    let (status, list) = call(&server, t, Method::GET, "/roles", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, list) = call(
        &server,
        t,
        Method::GET,
        "/roles?name_filter=READ&include_totals=true&per_page=10",
        None,
    )
    .await;
    assert_eq!(list["total"], json!(1), "{list}");
    assert_eq!(list["roles"][0]["id"], json!(id));
    let (_, list) = call(&server, t, Method::GET, "/roles?page=1&per_page=1", None).await;
    assert_eq!(list[0]["name"], "Writer");
    let (status, body) = call(&server, t, Method::GET, "/roles?color=red", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&server, t, Method::GET, &format!("/roles/{id}"), None).await;
    assert_eq!((status, &body["name"]), (200, &json!("Reader")));
    let (status, body) = call(&server, t, Method::GET, "/roles/rol_nope", None).await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_role"));
    let (status, body) = call(&server, t, Method::GET, "/roles/Reader", None).await;
    assert_eq!(status, 404, "names are not ids: {body}");
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/roles/{id}"),
        Some(json!({"description": "Reads orders"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["name"], &body["description"]),
        (&json!("Reader"), &json!("Reads orders"))
    );
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/roles/{id}"),
        Some(json!({"name": "Writer"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = call(
        &server,
        t,
        Method::PATCH,
        "/roles/rol_nope",
        Some(json!({"name": "Z"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/roles/{id}"),
        Some(json!({"id": "x"})),
    )
    .await;
    assert_eq!(status, 400);

    // Permissions of a role.
    let permission = |api: &str, name: &str| json!({"permissions": [{"resource_server_identifier": api, "permission_name": name}]});
    let perms_path = format!("/roles/{id}/permissions");
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &perms_path,
        Some(permission(orders, "read:orders")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&server, t, Method::GET, &perms_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{
            "permission_name": "read:orders",
            "description": "read:orders scope",
            "resource_server_name": "Orders",
            "resource_server_identifier": orders,
        }])
    );
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &perms_path,
        Some(permission("https://nope", "read:orders")),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, 404, Some("inexistent_resource_server"));
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &perms_path,
        Some(permission(orders, "delete:orders")),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, 404, None);
    let (status, _) = call(
        &server,
        t,
        Method::POST,
        "/roles/rol_nope/permissions",
        Some(permission(orders, "read:orders")),
    )
    .await;
    assert_eq!(status, 404);
    for bad in [
        json!({"permissions": []}),
        json!({}),
        json!({"permissions": [{"resource_server_identifier": orders}]}),
        json!({"permissions": [{"resource_server_identifier": orders, "permission_name": "read:orders", "x": 1}]}),
        json!({"permissions": "read:orders"}),
    ] {
        let (status, body) = call(&server, t, Method::POST, &perms_path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_error(&body, 400, Some("invalid_body"));
    }

    // Members: before the role, a new token carries no permission; after it, it does.
    let user_id = server.user_id.clone();
    let user_roles = format!("/users/{}/roles", urlencode(&user_id));
    assert!(permissions_in_a_new_token(&server, orders).await.is_empty());
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &user_roles,
        Some(json!({"roles": [id]})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        permissions_in_a_new_token(&server, orders).await,
        ["read:orders"]
    );
    let (status, body) = call(&server, t, Method::GET, &user_roles, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"id": id, "name": "Reader", "description": "Reads orders"}])
    );
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/roles/{id}/users?include_totals=true"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], json!(1));
    assert_eq!(body["users"][0]["user_id"], json!(user_id));
    assert_eq!(body["users"][0]["email"], json!(server.user_email));
    // The v7 SDK pages role members by checkpoint.
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/roles/{id}/users?include_totals=true&take=50"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"][0]["user_id"], json!(user_id));
    assert!(body.get("next").is_none(), "{body}");
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/users/{}/permissions", urlencode(&user_id)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["permission_name"], "read:orders");
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &user_roles,
        Some(json!({"roles": ["rol_nope"]})),
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_role"));
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/users/auth0%7Cnobody/roles",
        Some(json!({"roles": [id]})),
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_user"));
    let (status, _) = call(
        &server,
        t,
        Method::POST,
        &user_roles,
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(&server, t, Method::GET, "/users/auth0%7Cnobody/roles", None).await;
    assert_eq!(status, 404);

    // Removing the role from the user, then the permission from the role.
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &user_roles,
        Some(json!({"roles": [id]})),
    )
    .await;
    assert_eq!(status, 204);
    assert!(permissions_in_a_new_token(&server, orders).await.is_empty());
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &format!("/roles/{id}/users"),
        Some(json!({"users": [user_id]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        permissions_in_a_new_token(&server, orders).await,
        ["read:orders"]
    );
    let (status, _) = call(
        &server,
        t,
        Method::POST,
        &format!("/roles/{id}/users"),
        Some(json!({"users": ["auth0|nobody"]})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &perms_path,
        Some(permission(orders, "read:orders")),
    )
    .await;
    assert_eq!(status, 204);
    let (_, body) = call(&server, t, Method::GET, &perms_path, None).await;
    assert_eq!(body, json!([]));
    assert!(permissions_in_a_new_token(&server, orders).await.is_empty());

    // Scopes: reading roles is not changing them.
    let reader = server.management_token(&["read:roles"]).await;
    let (status, _) = call(&server, Some(&reader), Method::GET, "/roles", None).await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &server,
        Some(&reader),
        Method::POST,
        "/roles",
        Some(json!({"name": "Nope"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_error(&body, 403, Some("insufficient_scope"));
    let (status, _) = call(
        &server,
        Some(&reader),
        Method::POST,
        &user_roles,
        Some(json!({"roles": [id]})),
    )
    .await;
    assert_eq!(status, 403);

    // Deleting.
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/roles/{other_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/roles/{other_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(&server, t, Method::GET, &format!("/roles/{other_id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_management_api_lists_the_role_scopes() {
    let server = spawn().await;
    let token = server.management_token(&["read:resource_servers"]).await;
    let (status, api) = call(
        &server,
        Some(&token),
        Method::GET,
        &format!(
            "/resource-servers/{}",
            urlencode(&server.management_audience())
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{api}");
    let scopes: Vec<&str> = api["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    for scope in [
        "read:roles",
        "create:roles",
        "update:roles",
        "delete:roles",
        "delete:role_members",
    ] {
        assert!(scopes.contains(&scope), "{scope} in {scopes:?}");
    }
}

#[tokio::test]
async fn direct_user_permissions_reach_new_tokens() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let orders = "https://orders.example";
    let mut api = tessera_testkit::api(orders, &["read:orders", "write:orders"]);
    api.enforce_policies = true;
    api.token_dialect = TokenDialect::AccessTokenAuthz;
    server.store.create_resource_server(&api).await.unwrap();
    let path = format!("/users/{}/permissions", urlencode(&server.user_id));
    let read_orders = json!({"permissions": [
        {"resource_server_identifier": orders, "permission_name": "read:orders"}
    ]});
    assert!(permissions_in_a_new_token(&server, orders).await.is_empty());

    let (status, body) = call(&server, t, Method::POST, &path, Some(read_orders.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["permission_name"], "read:orders");
    assert_eq!(body[0]["resource_server_identifier"], orders);
    assert_eq!(
        permissions_in_a_new_token(&server, orders).await,
        ["read:orders"]
    );

    // Errors: a scope the API does not define, an unknown API, an unknown user, a token
    // without update:users.
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &path,
        Some(json!({"permissions": [
            {"resource_server_identifier": orders, "permission_name": "delete:orders"}
        ]})),
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_permission"));
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &path,
        Some(json!({"permissions": [
            {"resource_server_identifier": "https://nowhere", "permission_name": "x"}
        ]})),
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_resource_server"));
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/users/auth0%7Cnobody/permissions",
        Some(read_orders.clone()),
    )
    .await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_user"));
    let reader = server.management_token(&["read:users"]).await;
    let (status, body) = call(
        &server,
        Some(&reader),
        Method::POST,
        &path,
        Some(read_orders.clone()),
    )
    .await;
    assert_eq!(status, 403);
    assert_error(&body, 403, Some("insufficient_scope"));

    // Taken back: the next token has none.
    let (status, _) = call(&server, t, Method::DELETE, &path, Some(read_orders)).await;
    assert_eq!(status, 204);
    let (_, body) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(body, json!([]));
    assert!(permissions_in_a_new_token(&server, orders).await.is_empty());
}

/// `fields` keeps only the listed members; with `include_fields=false` it drops them.
#[tokio::test]
async fn fields_and_include_fields_choose_the_members_returned() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let (status, user) = call(
        &server,
        t,
        Method::POST,
        "/users",
        Some(json!({
            "connection": "Username-Password-Authentication",
            "email": "fields@example.com",
            "password": "a long enough passphrase",
            "name": "Field Test",
        })),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let id = user["user_id"].as_str().unwrap();
    let keys = |value: &Value| {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };

    let (status, only) = call(
        &server,
        t,
        Method::GET,
        &format!("/users/{}?fields=user_id,email", urlencode(id)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{only}");
    assert_eq!(keys(&only), ["email", "user_id"]);
    assert_eq!(only["email"], json!("fields@example.com"));

    let (status, without) = call(
        &server,
        t,
        Method::GET,
        &format!(
            "/users/{}?fields=name,nickname&include_fields=false",
            urlencode(id)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{without}");
    assert!(without.get("name").is_none() && without.get("nickname").is_none());
    assert_eq!(without["user_id"], json!(id));
    assert!(without.get("email_verified").is_some(), "{without}");

    let (status, listed) = call(
        &server,
        t,
        Method::GET,
        "/users?fields=email&include_totals=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    for user in listed["users"].as_array().unwrap() {
        assert_eq!(keys(user), ["email"]);
    }
    let (status, by_email) = call(
        &server,
        t,
        Method::GET,
        "/users-by-email?email=fields%40example.com&fields=user_id",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_email, json!([{"user_id": id}]));

    let (status, clients) = call(
        &server,
        t,
        Method::GET,
        "/clients?fields=client_id,name",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!clients.as_array().unwrap().is_empty());
    for client in clients.as_array().unwrap() {
        assert_eq!(keys(client), ["client_id", "name"]);
    }
    let id = clients[0]["client_id"].as_str().unwrap();
    let (status, client) = call(
        &server,
        t,
        Method::GET,
        &format!("/clients/{id}?fields=callbacks&include_fields=false"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(client.get("callbacks").is_none(), "{client}");
    assert_eq!(client["client_id"], json!(id));

    let (status, body) = call(
        &server,
        t,
        Method::GET,
        "/clients?fields=name&include_fields=maybe",
        None,
    )
    .await;
    assert_error(&body, 400, Some("invalid_query_string"));
    assert_eq!(status, 400);
}

/// `user_metadata` / `app_metadata`: set at creation, shown once set, merged at the first
/// level by PATCH (`null` removes a member, `{}` clears), names and types checked.
#[tokio::test]
async fn user_and_app_metadata_are_kept_and_merged_as_auth0_does() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let (status, user) = call(
        &server,
        t,
        Method::POST,
        "/users",
        Some(json!({
            "connection": "Username-Password-Authentication",
            "email": "meta@example.com",
            "password": "a long enough passphrase",
            "user_metadata": {"hobby": "surfing"},
            "app_metadata": {"plan": "full", "limits": {"apis": 3}},
        })),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["user_metadata"], json!({"hobby": "surfing"}));
    assert_eq!(
        user["app_metadata"],
        json!({"plan": "full", "limits": {"apis": 3}})
    );
    let path = format!("/users/{}", urlencode(user["user_id"].as_str().unwrap()));

    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({
            "user_metadata": {"addresses": {"home": "123 Main Street"}},
            "app_metadata": {"limits": {"users": 10}, "plan": null},
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["user_metadata"],
        json!({"hobby": "surfing", "addresses": {"home": "123 Main Street"}})
    );
    // First level only: `limits` is replaced whole, not merged.
    assert_eq!(patched["app_metadata"], json!({"limits": {"users": 10}}));
    let (_, read) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(read["user_metadata"], patched["user_metadata"]);
    assert_eq!(read["app_metadata"], patched["app_metadata"]);

    let (status, cleared) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"user_metadata": {}})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(cleared.get("user_metadata").is_none(), "{cleared}");
    assert_eq!(cleared["app_metadata"], json!({"limits": {"users": 10}}));

    for (body, what) in [
        (json!({"user_metadata": {"a.b": 1}}), "user_metadata"),
        (json!({"app_metadata": {"deep": {"$x": 1}}}), "app_metadata"),
        (json!({"user_metadata": "text"}), "user_metadata"),
        (json!({"app_metadata": null}), "app_metadata"),
    ] {
        let (status, error) = call(&server, t, Method::PATCH, &path, Some(body)).await;
        assert_eq!(status, 400, "{error}");
        assert_error(&error, 400, Some("invalid_body"));
        assert!(error["message"].as_str().unwrap().contains(what), "{error}");
    }
    let (_, unchanged) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(unchanged["app_metadata"], json!({"limits": {"users": 10}}));
}

const MARKUP_EMAILS: [&str; 6] = [
    "<script>alert(1)</script>@test.example",
    "Jane <jane@example.com>",
    "\"a b\"@example.com",
    "a@[192.0.2.1]",
    "a\u{0}b@example.com",
    "a\"onmouseover=\"alert(1)@example.com",
];

#[tokio::test]
async fn emails_names_and_pictures_with_markup_are_refused_and_change_nothing() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let password = "a long enough passphrase 7";
    let (_, before) = call(&server, t, Method::GET, "/users", None).await;
    let user_path = format!("/users/{}", urlencode(&server.user_id));
    let (_, user_before) = call(&server, t, Method::GET, &user_path, None).await;

    let mut bodies: Vec<(Value, &str)> = Vec::new();
    for email in MARKUP_EMAILS {
        bodies.push((json!({"email": email}), "format email"));
    }
    for (member, value, says) in [
        ("name", "<script>alert(1)</script>", "< or >"),
        ("nickname", "<img src=x onerror=alert(1)>", "< or >"),
        ("picture", "javascript:alert(1)", "http(s) URL"),
        (
            "picture",
            "https://example.com/\"><script>alert(1)</script>",
            "http(s) URL",
        ),
        (
            "picture",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "http(s) URL",
        ),
    ] {
        bodies.push((json!({member: value}), says));
    }
    for (body, says) in &bodies {
        let mut created = json!({
            "connection": "Username-Password-Authentication",
            "email": "fine@example.com",
            "password": password,
        });
        for (member, value) in body.as_object().unwrap() {
            created[member] = value.clone();
        }
        let (status, error) = call(&server, t, Method::POST, "/users", Some(created)).await;
        assert_eq!(status, 400, "POST {body} → {error}");
        assert_error(&error, 400, Some("invalid_body"));
        assert!(error["message"].as_str().unwrap().contains(says), "{error}");

        let (status, error) = call(&server, t, Method::PATCH, &user_path, Some(body.clone())).await;
        assert_eq!(status, 400, "PATCH {body} → {error}");
    }
    let (_, after) = call(&server, t, Method::GET, "/users", None).await;
    assert_eq!(after, before, "nothing was created");
    let (_, user_after) = call(&server, t, Method::GET, &user_path, None).await;
    assert_eq!(user_after, user_before, "nothing was changed");
}

/// Addresses are checked when they are written, not when someone signs in: a user stored
/// with an address the rules now refuse still signs in.
#[tokio::test]
async fn a_stored_user_with_an_address_now_refused_still_signs_in() {
    let server = spawn().await;
    let odd = "<b>legacy</b>@old.example";
    tessera_testkit::create_user(&server.store, odd, tessera_testkit::PASSWORD).await;
    let browser = tessera_testkit::browser();
    let response = server
        .submit_login(
            &browser,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s"),
                ("code_challenge", &tessera_testkit::pkce().challenge),
                ("code_challenge_method", "S256"),
            ]),
            odd,
            tessera_testkit::PASSWORD,
        )
        .await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn an_api_cannot_take_an_identifier_shaped_like_a_system_api_id() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let system = tessera_core::system::management_api(&server.issuer, 0);
    let (_, before) = call(&server, t, Method::GET, "/resource-servers", None).await;
    for identifier in [system.id.as_str(), "sys_0123456789abcdef0123", "SYS_x"] {
        let (status, error) = call(
            &server,
            t,
            Method::POST,
            "/resource-servers",
            Some(json!({"name": "Shadow", "identifier": identifier})),
        )
        .await;
        assert_eq!(status, 400, "{identifier}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("reserved"),
            "{error}"
        );
    }
    let (_, after) = call(&server, t, Method::GET, "/resource-servers", None).await;
    assert_eq!(after, before);
    let (status, found) = call(
        &server,
        t,
        Method::GET,
        &format!("/resource-servers/{}", system.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["is_system"], json!(true));
}

#[tokio::test]
async fn json_bodies_with_a_duplicated_member_are_refused() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let raw = |method: Method, path: &str, body: &'static str| {
        reqwest::Client::new()
            .request(method, server.url(&format!("/api/v2{path}")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (_, before) = call(&server, t, Method::GET, "/resource-servers", None).await;
    for body in [
        r#"{"name": "First", "identifier": "https://one.example", "identifier": "https://two.example"}"#,
        r#"{"name": "A", "identifier": "https://one.example", "scopes": [{"value": "a", "value": "b"}]}"#,
    ] {
        let response = raw(Method::POST, "/resource-servers", body).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_error(&error, 400, Some("invalid_body"));
        assert!(
            error["message"].as_str().unwrap().contains("duplicate"),
            "{error}"
        );
    }
    let (_, after) = call(&server, t, Method::GET, "/resource-servers", None).await;
    assert_eq!(after, before, "nothing was created");

    let user_path = format!("/users/{}", urlencode(&server.user_id));
    let (_, user_before) = call(&server, t, Method::GET, &user_path, None).await;
    let response = raw(
        Method::PATCH,
        &user_path,
        r#"{"user_metadata": {"plan": "free", "plan": "enterprise"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let (_, user_after) = call(&server, t, Method::GET, &user_path, None).await;
    assert_eq!(user_after, user_before);

    // The token endpoint: a repeated parameter is refused in JSON as in a form.
    let client = reqwest::Client::new();
    let body = format!(
        r#"{{"grant_type": "client_credentials", "client_id": "{id}", "client_secret": "{secret}", "audience": "{api}", "audience": "{management}"}}"#,
        id = server.m2m_client_id,
        secret = server.m2m_secret,
        api = tessera_testkit::API,
        management = server.management_audience(),
    );
    let response = client
        .post(server.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("audience"),
        "{error}"
    );
}
