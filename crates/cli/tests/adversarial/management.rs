//! The Management API (`/api/v2`) under attack: every route with tokens that must not open
//! it (users', other audiences', forged ones), every route with a token lacking its scope,
//! mass assignment and malformed bodies, ids shaped like the system API's, markup in
//! emails and profiles, user flows asking the Management API's audience for admin
//! scopes, and hostile list queries (search, sorts, pages, checkpoints). Each write that is refused is checked to have changed nothing: the whole tenant
//! as the API shows it is read before and after.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tessera_core::system::MANAGEMENT_SCOPES;
use tessera_jose::{Algorithm, SigningKey};
use tessera_store::{ClientUpdate, KeyState};
use tessera_testkit::process::Env;
use tessera_testkit::{
    API, CALLBACK, TestServer, browser, hidden_field, location, params_of, pkce, spawn,
};

use crate::TESSERA;
use crate::harness::Tally;

/// The database connection's id in the Management API.
const CONNECTION: &str = tessera_core::DATABASE_CONNECTION_ID;

fn all_scopes() -> Vec<&'static str> {
    MANAGEMENT_SCOPES.iter().map(|(scope, _)| *scope).collect()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One request to `/api/v2{path}`: (status, JSON body or null).
async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(b).expect("JSON"));
    send(server, token, method, path, "application/json", body).await
}

/// Like `call`, with the body's bytes and content type as given.
async fn send(
    server: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/api/v2{path}")));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.header("content-type", content_type).body(body);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A tenant to attack: an API with a scope, a regular web application with a grant on it,
/// a role with a permission and a member, the seeded user, and an administrator's token.
struct Fixture {
    server: TestServer,
    admin: String,
    api_id: String,
    client_id: String,
    client_secret: String,
    grant_id: String,
    /// The seeded user's consent to the application (a user grant, `/grants`).
    consent_id: String,
    role_id: String,
    user_path: String,
}

const ORDERS: &str = "https://orders.example";

async fn fixture() -> Fixture {
    let server = spawn().await;
    let (_, admin) = server.management_client(&all_scopes()).await;
    let a = Some(admin.as_str());
    let (status, api) = call(
        &server,
        a,
        Method::POST,
        "/resource-servers",
        Some(
            &json!({"name": "Orders", "identifier": ORDERS, "scopes": [{"value": "read:orders"}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{api}");
    let (status, app) = call(
        &server,
        a,
        Method::POST,
        "/clients",
        Some(&json!({"name": "Orders backend", "app_type": "regular_web"})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let client_id = app["client_id"].as_str().expect("an id").to_string();
    let (status, grant) = call(
        &server,
        a,
        Method::POST,
        "/client-grants",
        Some(&json!({"client_id": client_id, "audience": ORDERS, "scope": ["read:orders"]})),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    let (status, role) = call(
        &server,
        a,
        Method::POST,
        "/roles",
        Some(&json!({"name": "clerks"})),
    )
    .await;
    assert_eq!(status, 200, "{role}");
    let role_id = role["id"].as_str().expect("an id").to_string();
    let permission = json!({"permissions": [{"resource_server_identifier": ORDERS, "permission_name": "read:orders"}]});
    let (status, _) = call(
        &server,
        a,
        Method::POST,
        &format!("/roles/{role_id}/permissions"),
        Some(&permission),
    )
    .await;
    assert_eq!(status, 201);
    let user_path = format!("/users/{}", encode(&server.user_id));
    let (status, _) = call(
        &server,
        a,
        Method::POST,
        &format!("{user_path}/roles"),
        Some(&json!({"roles": [role_id]})),
    )
    .await;
    assert_eq!(status, 204);
    let consent = server
        .store
        .grant_consent(
            &server.user_id,
            &client_id,
            ORDERS,
            &["read:orders".to_string()],
            tessera_testkit::now(),
        )
        .await
        .expect("a consent");
    Fixture {
        admin,
        consent_id: consent.id,
        api_id: api["id"].as_str().expect("an id").to_string(),
        client_id,
        client_secret: app["client_secret"].as_str().expect("a secret").to_string(),
        grant_id: grant["id"].as_str().expect("an id").to_string(),
        role_id,
        user_path,
        server,
    }
}

impl Fixture {
    fn admin(&self) -> Option<&str> {
        Some(&self.admin)
    }

    /// The id of the one grant of `client_id`.
    async fn grant_of(&self, client_id: &str) -> String {
        let path = format!("/client-grants?client_id={client_id}");
        let (_, grants) = call(&self.server, self.admin(), Method::GET, &path, None).await;
        grants[0]["id"].as_str().unwrap_or_default().to_string()
    }

    /// Everything the API shows of the tenant, to compare before and after attacks.
    async fn snapshot(&self) -> Value {
        let mut out = Map::new();
        for path in [
            "/resource-servers".to_string(),
            "/clients".to_string(),
            "/client-grants".to_string(),
            "/users".to_string(),
            "/roles".to_string(),
            format!("/roles/{}/permissions", self.role_id),
            format!("/roles/{}/users", self.role_id),
            format!("{}/roles", self.user_path),
            format!("{}/permissions", self.user_path),
            "/grants".to_string(),
        ] {
            let (status, body) = call(&self.server, self.admin(), Method::GET, &path, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            out.insert(path, body);
        }
        Value::Object(out)
    }

    /// Records one case: the tenant is as it was, and the fixture application's secret
    /// still works (a rotation would not show in the lists).
    async fn unchanged(&self, tally: &mut Tally, before: &Value, what: &str) {
        let after = self.snapshot().await;
        tally.case(
            format_args!("{what}: nothing in the tenant changed"),
            after == *before,
            format_args!("before {before}\nafter {after}"),
        );
        let (status, body) = self
            .server
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("audience", ORDERS),
            ])
            .await;
        tally.case(
            format_args!("{what}: the application's secret was not rotated"),
            status == 200,
            format_args!("{status} {body}"),
        );
    }

    /// Every route of the API with a body it would accept from an administrator, and the
    /// scopes of which it wants one.
    fn routes(&self) -> Vec<Route> {
        let (api, app, grant, role, user) = (
            &self.api_id,
            &self.client_id,
            &self.grant_id,
            &self.role_id,
            &self.user_path,
        );
        let users_grants = format!("/grants?user_id={}", encode(&self.server.user_id));
        let permission = json!({"permissions": [{"resource_server_identifier": ORDERS, "permission_name": "read:orders"}]});
        let route = |method: Method, path: String, body: Option<Value>, any_of| Route {
            method,
            path,
            body,
            any_of,
        };
        vec![
            route(
                Method::GET,
                "/resource-servers".into(),
                None,
                &["read:resource_servers"],
            ),
            route(
                Method::POST,
                "/resource-servers".into(),
                Some(json!({"name": "Attacker API", "identifier": "https://attacker.example"})),
                &["create:resource_servers"],
            ),
            route(
                Method::GET,
                format!("/resource-servers/{api}"),
                None,
                &["read:resource_servers"],
            ),
            route(
                Method::PATCH,
                format!("/resource-servers/{api}"),
                Some(json!({"name": "Renamed"})),
                &["update:resource_servers"],
            ),
            route(
                Method::DELETE,
                format!("/resource-servers/{api}"),
                None,
                &["delete:resource_servers"],
            ),
            route(Method::GET, "/clients".into(), None, &["read:clients"]),
            route(
                Method::POST,
                "/clients".into(),
                Some(json!({"name": "Attacker app", "app_type": "non_interactive"})),
                &["create:clients"],
            ),
            route(
                Method::GET,
                format!("/clients/{app}"),
                None,
                &["read:clients"],
            ),
            route(
                Method::PATCH,
                format!("/clients/{app}"),
                Some(json!({"callbacks": ["https://attacker.example/cb"]})),
                &["update:clients"],
            ),
            route(
                Method::DELETE,
                format!("/clients/{app}"),
                None,
                &["delete:clients"],
            ),
            route(
                Method::POST,
                format!("/clients/{app}/rotate-secret"),
                None,
                &["update:client_keys"],
            ),
            route(
                Method::GET,
                "/client-grants".into(),
                None,
                &["read:client_grants"],
            ),
            route(
                Method::POST,
                "/client-grants".into(),
                Some(
                    json!({"client_id": app, "audience": self.server.management_audience(), "scope": ["delete:users"]}),
                ),
                &["create:client_grants"],
            ),
            route(
                Method::GET,
                format!("/client-grants/{grant}"),
                None,
                &["read:client_grants"],
            ),
            route(
                Method::PATCH,
                format!("/client-grants/{grant}"),
                Some(json!({"scope": []})),
                &["update:client_grants"],
            ),
            route(
                Method::DELETE,
                format!("/client-grants/{grant}"),
                None,
                &["delete:client_grants"],
            ),
            route(
                Method::GET,
                "/connections".into(),
                None,
                &["read:connections"],
            ),
            route(
                Method::POST,
                "/connections".into(),
                Some(json!({"name": "x", "strategy": "auth0", "options": {}})),
                &["create:connections"],
            ),
            route(
                Method::GET,
                format!("/connections/{CONNECTION}"),
                None,
                &["read:connections"],
            ),
            route(
                Method::DELETE,
                format!("/connections/{CONNECTION}"),
                None,
                &["delete:connections"],
            ),
            route(
                Method::PATCH,
                format!("/connections/{CONNECTION}"),
                Some(json!({"options": {"disable_signup": false}})),
                &["update:connections"],
            ),
            route(
                Method::GET,
                format!("/connections/{CONNECTION}/clients"),
                None,
                &["read:connections"],
            ),
            route(
                Method::PATCH,
                format!("/connections/{CONNECTION}/clients"),
                Some(json!([{"client_id": app, "status": true}])),
                &["update:connections"],
            ),
            route(Method::GET, "/users".into(), None, &["read:users"]),
            route(
                Method::POST,
                "/users".into(),
                Some(
                    json!({"connection": "Username-Password-Authentication", "email": "attacker@example.com", "password": "a long enough passphrase 9"}),
                ),
                &["create:users"],
            ),
            route(Method::GET, user.clone(), None, &["read:users"]),
            route(
                Method::PATCH,
                user.clone(),
                Some(json!({"email": "attacker@example.com", "email_verified": true})),
                &["update:users"],
            ),
            route(Method::DELETE, user.clone(), None, &["delete:users"]),
            route(
                Method::GET,
                "/users-by-email?email=demo%40example.com".into(),
                None,
                &["read:users"],
            ),
            route(
                Method::GET,
                format!("{user}/roles"),
                None,
                &["read:users", "read:roles", "read:role_members"],
            ),
            route(
                Method::POST,
                format!("{user}/roles"),
                Some(json!({"roles": [role]})),
                &["update:roles", "create:role_members"],
            ),
            route(
                Method::DELETE,
                format!("{user}/roles"),
                Some(json!({"roles": [role]})),
                &["update:roles", "delete:role_members"],
            ),
            route(
                Method::GET,
                format!("{user}/permissions"),
                None,
                &["read:users"],
            ),
            route(
                Method::POST,
                format!("{user}/permissions"),
                Some(permission.clone()),
                &["update:users"],
            ),
            route(
                Method::DELETE,
                format!("{user}/permissions"),
                Some(permission.clone()),
                &["update:users"],
            ),
            route(Method::GET, "/roles".into(), None, &["read:roles"]),
            route(
                Method::POST,
                "/roles".into(),
                Some(json!({"name": "attackers"})),
                &["create:roles"],
            ),
            route(Method::GET, format!("/roles/{role}"), None, &["read:roles"]),
            route(
                Method::PATCH,
                format!("/roles/{role}"),
                Some(json!({"name": "owned"})),
                &["update:roles"],
            ),
            route(
                Method::DELETE,
                format!("/roles/{role}"),
                None,
                &["delete:roles"],
            ),
            route(
                Method::GET,
                format!("/roles/{role}/permissions"),
                None,
                &["read:roles"],
            ),
            route(
                Method::POST,
                format!("/roles/{role}/permissions"),
                Some(permission.clone()),
                &["update:roles"],
            ),
            route(
                Method::DELETE,
                format!("/roles/{role}/permissions"),
                Some(permission),
                &["update:roles"],
            ),
            route(
                Method::GET,
                format!("/roles/{role}/users"),
                None,
                &["read:roles", "read:role_members"],
            ),
            route(
                Method::POST,
                format!("/roles/{role}/users"),
                Some(json!({"users": ["auth0|000000000000000000000000"]})),
                &["update:roles", "create:role_members"],
            ),
            route(Method::GET, users_grants.clone(), None, &["read:grants"]),
            route(
                Method::DELETE,
                format!("/grants/{}", self.consent_id),
                None,
                &["delete:grants"],
            ),
            route(Method::DELETE, users_grants, None, &["delete:grants"]),
            route(
                Method::GET,
                format!("{user}/refresh-tokens"),
                None,
                &["read:refresh_tokens"],
            ),
            route(
                Method::DELETE,
                format!("{user}/refresh-tokens"),
                None,
                &["delete:refresh_tokens"],
            ),
            route(
                Method::GET,
                "/refresh-tokens/no-such-family".into(),
                None,
                &["read:refresh_tokens"],
            ),
            route(
                Method::DELETE,
                "/refresh-tokens/no-such-family".into(),
                None,
                &["delete:refresh_tokens"],
            ),
            route(
                Method::GET,
                format!("{user}/sessions"),
                None,
                &["read:sessions"],
            ),
            route(
                Method::DELETE,
                format!("{user}/sessions"),
                None,
                &["delete:sessions"],
            ),
            route(
                Method::GET,
                "/sessions/no-such-session".into(),
                None,
                &["read:sessions"],
            ),
            route(
                Method::DELETE,
                "/sessions/no-such-session".into(),
                None,
                &["delete:sessions"],
            ),
            route(
                Method::POST,
                "/sessions/no-such-session/revoke".into(),
                None,
                &["delete:sessions"],
            ),
        ]
    }
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    any_of: &'static [&'static str],
}

impl Route {
    async fn send(&self, server: &TestServer, token: Option<&str>) -> (u16, Value) {
        call(
            server,
            token,
            self.method.clone(),
            &self.path,
            self.body.as_ref(),
        )
        .await
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} /api/v2{}", self.method, self.path)
    }
}

/// The scopes a token grants: its `scope` claim and its `permissions`.
fn granted(token: &str) -> Vec<String> {
    let claims = Value::Object(claims_of(token));
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

fn claims_of(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn holds_admin_scope(token: &str) -> bool {
    let granted = granted(token);
    all_scopes()
        .iter()
        .any(|scope| granted.iter().any(|g| g == scope))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_not_management_tokens_open_no_route() {
    let mut tally = Tally::new("management/foreign-tokens");
    let f = fixture().await;
    let server = &f.server;
    let browser = browser();
    let admin_request = format!("openid profile email {}", all_scopes().join(" "));
    let users_token = server
        .code_flow(
            &browser,
            &admin_request,
            Some(&server.management_audience()),
        )
        .await;
    let user_token = users_token["access_token"].as_str().unwrap_or_default();
    tally.case(
        "a user asking the Management API for every admin scope gets none",
        !holds_admin_scope(user_token),
        format_args!("{:?}", granted(user_token)),
    );
    let api_token = server
        .code_flow(&browser, "openid read:messages", Some(API))
        .await;
    let (_, machine_for_api) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .await;
    let opaque = server.code_flow(&browser, "openid profile", None).await;
    let tokens = [
        (
            "a user's token for the Management API",
            user_token.to_string(),
        ),
        (
            "a user's token for another API",
            api_token["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        (
            "a machine token for another API",
            machine_for_api["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        (
            "an ID token",
            users_token["id_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        (
            "an opaque /userinfo token",
            opaque["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
    ];
    let before = f.snapshot().await;
    for (what, token) in &tokens {
        for route in f.routes() {
            let (status, body) = route.send(server, Some(token)).await;
            tally.case(
                format_args!("{what} on {route} is 401"),
                status == 401 && body["statusCode"] == 401,
                format_args!("{status} {body}"),
            );
        }
    }
    for route in f.routes() {
        let (status, _) = route.send(server, None).await;
        tally.status(format_args!("no token on {route}"), status, 401);
    }
    f.unchanged(&mut tally, &before, "foreign tokens on every route")
        .await;
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_wants_its_own_scope() {
    let mut tally = Tally::new("management/scopes");
    let f = fixture().await;
    let server = &f.server;
    let mut tokens = Vec::new();
    for route in f.routes() {
        let others: Vec<&str> = all_scopes()
            .into_iter()
            .filter(|scope| !route.any_of.contains(scope))
            .collect();
        let (_, token) = server.management_client(&others).await;
        tokens.push((route, token));
    }
    // A grant removed, narrowed, or an application deleted after its token was issued.
    let (removed, removed_token) = server.management_client(&all_scopes()).await;
    let (narrowed, narrowed_token) = server.management_client(&all_scopes()).await;
    let (deleted, deleted_token) = server.management_client(&all_scopes()).await;
    let removed_grant = f.grant_of(&removed).await;
    let narrowed_grant = f.grant_of(&narrowed).await;
    let a = f.admin();
    let (status, _) = call(
        server,
        a,
        Method::DELETE,
        &format!("/client-grants/{removed_grant}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        server,
        a,
        Method::PATCH,
        &format!("/client-grants/{narrowed_grant}"),
        Some(&json!({"scope": ["read:clients"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        server,
        a,
        Method::DELETE,
        &format!("/clients/{deleted}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    let before = f.snapshot().await;
    for (route, token) in &tokens {
        let (status, body) = route.send(server, Some(token)).await;
        tally.case(
            format_args!("{route} without {}", route.any_of.join(" / ")),
            status == 403 && body["errorCode"] == "insufficient_scope",
            format_args!("{status} {body}"),
        );
    }
    for route in f.routes() {
        let (status, _) = route.send(server, Some(&removed_token)).await;
        tally.status_in(
            format_args!("{route} with the token of an application whose grant was removed"),
            status,
            &[401, 403],
        );
        let (status, _) = route.send(server, Some(&deleted_token)).await;
        tally.status(
            format_args!("{route} with the token of a deleted application"),
            status,
            401,
        );
        if !route.any_of.contains(&"read:clients") {
            let (status, _) = route.send(server, Some(&narrowed_token)).await;
            tally.status(
                format_args!("{route} with a token whose grant was narrowed to read:clients"),
                status,
                403,
            );
        }
    }
    f.unchanged(&mut tally, &before, "tokens without the route's scope")
        .await;
    tally.finish();
}

/// The server's current signing key, unsealed with the master key as the server does, and
/// its PKCS#8 bytes.
async fn real_key(server: &TestServer) -> (SigningKey, Vec<u8>) {
    let record = server
        .store
        .all_keys()
        .await
        .expect("keys")
        .into_iter()
        .find(|k| k.state == KeyState::Current && k.alg == "RS256")
        .expect("a current RS256 key");
    let pkcs8 = server
        .master_key
        .open(&record.sealed_private_key, record.kid.as_bytes())
        .expect("the master key opens it");
    let key = SigningKey::from_pkcs8(Algorithm::parse(&record.alg).expect("RS256"), &pkcs8)
        .expect("a key");
    (key, pkcs8)
}

/// A compact JWS with this header and these claims, signed by `sign` over the input.
fn compact(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn rsa_signer(pkcs8: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8).expect("an RSA key");
    move |message: &[u8]| {
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut signature,
        )
        .expect("signed");
        signature
    }
}

fn hmac_signer(secret: Vec<u8>) -> impl Fn(&[u8]) -> Vec<u8> {
    move |message: &[u8]| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
    }
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// SubjectPublicKeyInfo DER around a PKCS#1 RSA public key.
fn spki(pkcs1: &[u8]) -> Vec<u8> {
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend(body);
        out
    }
    let algorithm = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend(pkcs1);
    let mut body = algorithm.to_vec();
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_doctored_tokens_are_refused() {
    let mut tally = Tally::new("management/forged-tokens");
    let f = fixture().await;
    let server = &f.server;
    let (key, pkcs8) = real_key(server).await;
    let kid = key.kid().to_string();
    let jwk = key.public_jwk().clone();
    let real = rsa_signer(&pkcs8);
    let claims = Value::Object(claims_of(&f.admin));
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let now = tessera_testkit::now();
    let with = |changes: &[(&str, Value)]| {
        let mut claims = claims.clone();
        for (name, value) in changes {
            if value.is_null() {
                claims.as_object_mut().expect("an object").remove(*name);
            } else {
                claims[*name] = value.clone();
            }
        }
        claims
    };

    // Control: the same claims signed again with the real key open the API, so every
    // refusal below is the forgery's doing.
    let control = compact(&header, &claims, &real);
    let (status, _) = call(server, Some(&control), Method::GET, "/clients", None).await;
    tally.status(
        "control: the admin's claims re-signed with the server's key",
        status,
        200,
    );

    // (what, token, the statuses that refuse it)
    let mut forged: Vec<(String, String, &[u16])> = Vec::new();
    let mut add = |what: &str, token: String| forged.push((what.to_string(), token, &[401]));
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        add(
            &format!("alg {alg}, no signature"),
            compact(&header, &claims, |_| Vec::new()),
        );
        let without_kid = json!({"alg": alg, "typ": "JWT"});
        add(
            &format!("alg {alg} without kid"),
            compact(&without_kid, &claims, |_| Vec::new()),
        );
    }
    let signature = control.rsplit('.').next().unwrap_or_default().to_string();
    let none_header = b64(json!({"alg": "none", "kid": kid}).to_string().as_bytes());
    let payload = control.split('.').nth(1).unwrap_or_default();
    add(
        "alg none with the real signature kept",
        format!("{none_header}.{payload}.{signature}"),
    );
    let n = URL_SAFE_NO_PAD
        .decode(jwk.n.as_deref().unwrap_or_default())
        .unwrap_or_default();
    let e = URL_SAFE_NO_PAD
        .decode(jwk.e.as_deref().unwrap_or_default())
        .unwrap_or_default();
    let pkcs1 = tessera_jose::rsa_public_key_der(&n, &e);
    let jwks = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .expect("JWKS")
        .text()
        .await
        .unwrap_or_default();
    let published = serde_json::to_vec(&jwk).expect("JSON");
    for (what, secret) in [
        (
            "the public key as SPKI PEM",
            pem("PUBLIC KEY", &spki(&pkcs1)),
        ),
        (
            "the public key as PKCS#1 PEM",
            pem("RSA PUBLIC KEY", &pkcs1),
        ),
        ("the public key's DER", spki(&pkcs1)),
        ("the public JWK's JSON", published),
        ("the JWKS document", jwks.into_bytes()),
        ("the modulus bytes", n.clone()),
    ] {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        add(
            &format!("HS256 keyed with {what}"),
            compact(&header, &claims, hmac_signer(secret)),
        );
    }
    let (attacker, attacker_pkcs8) = SigningKey::generate(Algorithm::Rs256).expect("a key");
    let forger = rsa_signer(&attacker_pkcs8);
    add(
        "another RSA key under the server's kid",
        compact(&header, &claims, &forger),
    );
    let own = json!({"alg": "RS256", "typ": "JWT", "kid": attacker.kid()});
    add(
        "another RSA key under its own kid",
        compact(&own, &claims, &forger),
    );
    for (member, value) in [
        ("jku", json!("http://127.0.0.1:9/jwks.json")),
        ("x5u", json!("http://127.0.0.1:9/cert.pem")),
        (
            "jwk",
            serde_json::to_value(attacker.public_jwk()).expect("JSON"),
        ),
    ] {
        for kid in [attacker.kid(), kid.as_str()] {
            let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
            header[member] = value.clone();
            add(
                &format!("{member} header pointing at the attacker's key, kid {kid}"),
                compact(&header, &claims, &forger),
            );
        }
    }
    let mut crit = header.clone();
    crit["crit"] = json!(["exp"]);
    add(
        "crit header, signed by the server's key",
        compact(&crit, &claims, &real),
    );
    for (what, changes) in [
        ("expired an hour ago", vec![("exp", json!(now - 3600))]),
        ("without exp", vec![("exp", Value::Null)]),
        (
            "exp as a string",
            vec![("exp", json!((now + 3600).to_string()))],
        ),
        ("nbf an hour ahead", vec![("nbf", json!(now + 3600))]),
        (
            "another issuer",
            vec![("iss", json!("https://evil.example/"))],
        ),
        ("without iss", vec![("iss", Value::Null)]),
        (
            "the issuer without its slash",
            vec![("iss", json!(server.issuer.trim_end_matches('/')))],
        ),
        ("another audience", vec![("aud", json!(API))]),
        ("without aud", vec![("aud", Value::Null)]),
        ("an empty audience list", vec![("aud", json!([]))]),
        (
            "the audience without its slash",
            vec![(
                "aud",
                json!(server.management_audience().trim_end_matches('/')),
            )],
        ),
        ("without gty", vec![("gty", Value::Null)]),
        ("gty password", vec![("gty", json!("password"))]),
        ("a user as subject", vec![("sub", json!(server.user_id))]),
        (
            "an unknown application as subject",
            vec![("sub", json!("nobody@clients"))],
        ),
    ] {
        add(
            &format!("server-signed, {what}"),
            compact(&header, &with(&changes), &real),
        );
    }
    // Applications that exist but hold no Management API grant: 401 or 403, never in.
    let mut without_grant: Vec<(String, String, &[u16])> = Vec::new();
    for client_id in [&server.m2m_client_id, &f.client_id] {
        let changes = [
            ("sub", json!(format!("{client_id}@clients"))),
            ("azp", json!(client_id)),
        ];
        without_grant.push((
            format!("server-signed for {client_id}, which has no Management API grant"),
            compact(&header, &with(&changes), &real),
            &[401, 403],
        ));
    }
    // The payload changed after signing (a scope added).
    let (_, reader) = server.management_client(&["read:users"]).await;
    let mut parts: Vec<String> = reader.split('.').map(str::to_string).collect();
    let mut inflated = claims_of(&reader);
    inflated.insert("scope".into(), json!(all_scopes().join(" ")));
    parts[1] = b64(Value::Object(inflated.clone()).to_string().as_bytes());
    add("a read:users token with its scope edited", parts.join("."));
    // Duplicate claims: the last `scope` would grant everything to a lenient parser.
    let reader_claims = claims_of(&reader);
    let duplicate_payload = format!(
        "{},\"scope\":\"{}\"}}",
        Value::Object(reader_claims)
            .to_string()
            .trim_end_matches('}'),
        all_scopes().join(" ")
    );
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(duplicate_payload.as_bytes())
    );
    let duplicate = format!("{input}.{}", b64(&real(input.as_bytes())));
    add("server-signed with scope given twice", duplicate);
    let padded = with(&[("pad", json!("x".repeat(9000)))]);
    add(
        "a server-signed token over 8 KiB",
        compact(&header, &padded, &real),
    );
    add("not a JWT", "not.a.jwt".to_string());
    add("two segments", format!("{none_header}.{payload}"));

    forged.extend(without_grant);
    let before = f.snapshot().await;
    for (what, token, refused) in &forged {
        let (status, body) = call(server, Some(token), Method::GET, "/clients", None).await;
        tally.case(
            format_args!("{what}: GET /clients is {refused:?}"),
            refused.contains(&status),
            format_args!("{status} {body}"),
        );
        let (status, body) = call(
            server,
            Some(token),
            Method::POST,
            "/users",
            Some(&json!({"connection": "Username-Password-Authentication", "email": "forged@example.com", "password": "a long enough passphrase 9"})),
        )
        .await;
        tally.case(
            format_args!("{what}: POST /users is {refused:?}"),
            refused.contains(&status),
            format_args!("{status} {body}"),
        );
    }
    // A token signed with the real key whose claims ask for more than the grant holds.
    let inflated_signed = compact(&header, &Value::Object(inflated), &real);
    let (status, body) = call(
        server,
        Some(&inflated_signed),
        Method::GET,
        "/clients",
        None,
    )
    .await;
    tally.case(
        "server-signed read:users token claiming every scope: the grant as it is decides",
        status == 403 && body["errorCode"] == "insufficient_scope",
        format_args!("{status} {body}"),
    );
    for (what, value) in [
        (
            "Basic credentials",
            format!("Basic {}", b64(b"admin:admin")),
        ),
        (
            "a bearer token with a space",
            format!("Bearer {} x", f.admin),
        ),
        ("an empty bearer token", "Bearer ".to_string()),
        ("the token without a scheme", f.admin.clone()),
    ] {
        let response = reqwest::Client::new()
            .get(server.url("/api/v2/clients"))
            .header("authorization", value)
            .send()
            .await
            .expect("an answer");
        tally.status_in(
            format_args!("Authorization with {what}"),
            response.status().as_u16(),
            &[400, 401],
        );
    }
    f.unchanged(&mut tally, &before, "forged tokens").await;
    tally.finish();
}

/// A body sent as bytes: (what it is, method, path, content type, bytes, expected status).
type RawCase = (&'static str, Method, String, &'static str, Vec<u8>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_assignment_and_malformed_bodies_change_nothing() {
    let mut tally = Tally::new("management/bodies");
    let f = fixture().await;
    let server = &f.server;
    let a = f.admin();
    let user = f.user_path.clone();
    let new_user = |extra: Value| {
        let mut body = json!({"connection": "Username-Password-Authentication", "email": "mass@example.com", "password": "a long enough passphrase 9"});
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        body
    };
    let mut cases: Vec<(Method, String, Value, u16)> = Vec::new();
    for extra in [
        json!({"user_id": "auth0|000000000000000000000001"}),
        json!({"identities": [{"provider": "google-oauth2", "user_id": "1", "connection": "google-oauth2"}]}),
        json!({"created_at": "2000-01-01T00:00:00.000Z"}),
        json!({"updated_at": "2000-01-01T00:00:00.000Z"}),
        json!({"tenant": "other"}),
        json!({"tenant_id": "other"}),
        json!({"logins_count": 1000}),
        json!({"last_login": "2000-01-01T00:00:00.000Z"}),
        json!({"password_hash": "$argon2id$v=19$m=19456,t=2,p=1$x$y"}),
        json!({"username": "admin"}),
        json!({"email_verified": "true"}),
        json!({"blocked": 0}),
        json!({"user_metadata": []}),
        json!({"app_metadata": {"$where": 1}}),
        json!({"connection": "google-oauth2"}),
        json!({"email": ["a@example.com"]}),
        json!({"password": 12345678}),
    ] {
        cases.push((Method::POST, "/users".into(), new_user(extra), 400));
    }
    for body in [
        json!({"user_id": "auth0|000000000000000000000001"}),
        json!({"identities": []}),
        json!({"created_at": "2000-01-01T00:00:00.000Z"}),
        json!({"tenant": "other"}),
        json!({"connection": "google-oauth2"}),
        json!({"email_verified": "yes"}),
        json!({"blocked": null}),
        json!({"password": "password"}),
        json!({"name": ""}),
    ] {
        cases.push((Method::PATCH, user.clone(), body, 400));
    }
    for body in [
        json!({"name": "x", "client_id": "chosen-id"}),
        json!({"name": "x", "client_secret": "chosen-secret"}),
        json!({"name": "x", "created_at": 0}),
        json!({"name": "x", "tenant": "other"}),
        json!({"name": 123}),
        json!({"name": "x", "app_type": 1}),
        json!({"name": "x", "app_type": "spa", "grant_types": ["client_credentials"]}),
        json!({"name": "x", "app_type": "spa", "grant_types": ["password"]}),
        json!({"name": "x", "grant_types": ["urn:example:made-up"]}),
        json!({"name": "x", "callbacks": ["javascript:alert(1)"]}),
    ] {
        cases.push((Method::POST, "/clients".into(), body, 400));
    }
    for body in [
        json!({"client_id": "chosen-id"}),
        json!({"client_secret": "chosen-secret"}),
        json!({"app_type": "spa"}),
        json!({"token_endpoint_auth_method": "none"}),
        json!({"callbacks": "https://attacker.example/cb"}),
        // Members a read-modify-write may carry: only with the value Tessera holds.
        json!({"cross_origin_authentication": true}),
        json!({"jwt_configuration": {"alg": "HS256", "secret_encoded": true}}),
        json!({"jwt_configuration": {"alg": "none"}}),
        json!({"jwt_configuration": {"lifetime_in_seconds": 31_536_000}}),
        json!({"sso_disabled": true}),
        json!({"is_token_endpoint_ip_header_trusted": true}),
        // What the application says about itself: shown by admin tools, so no markup.
        json!({"description": "<script>alert(1)</script>\u{0}"}),
        json!({"logo_uri": "javascript:alert(document.cookie)"}),
        json!({"logo_uri": "https://cdn.example/x.png\"><script>alert(1)</script>"}),
        json!({"initiate_login_uri": "http://attacker.example/login"}),
        json!({"initiate_login_uri": "https://user:pass@attacker.example/"}),
        json!({"client_metadata": {"__proto__": {"admin": true}}}),
        json!({"client_metadata": {"constructor.prototype": "x"}}),
        json!({"allowed_origins": ["*"]}),
        json!({"allowed_origins": ["null"]}),
    ] {
        cases.push((
            Method::PATCH,
            format!("/clients/{}", f.client_id),
            body,
            400,
        ));
    }
    for body in [
        json!({"client_id": f.client_id, "audience": server.management_audience(), "scope": ["read:users"], "id": "cgr_chosen"}),
        json!({"client_id": f.client_id, "audience": server.management_audience(), "scope": "read:users"}),
        json!({"client_id": f.client_id, "audience": server.management_audience(), "scope": ["delete:everything"]}),
        json!({"client_id": server.spa_client_id, "audience": server.management_audience(), "scope": ["read:users"]}),
    ] {
        cases.push((Method::POST, "/client-grants".into(), body, 400));
    }
    for body in [
        json!({"client_id": server.m2m_client_id}),
        json!({"audience": server.management_audience()}),
        json!({"scope": ["read:orders"], "created_at": 0}),
    ] {
        cases.push((
            Method::PATCH,
            format!("/client-grants/{}", f.grant_id),
            body,
            400,
        ));
    }
    for body in [
        json!({"identifier": "https://x.example", "id": "chosen"}),
        json!({"identifier": "https://x.example", "is_system": true}),
        json!({"identifier": "https://x.example", "created_at": 0}),
        json!({"identifier": "https://x.example", "token_lifetime": "60"}),
        json!({"identifier": "https://x.example", "token_lifetime": 99_999_999}),
        json!({"identifier": "https://x.example", "signing_alg": "HS256"}),
        json!({"identifier": "https://x.example", "signing_alg": "none"}),
        json!({"identifier": "https://x.example", "scopes": [{"value": "a b"}]}),
    ] {
        cases.push((Method::POST, "/resource-servers".into(), body, 400));
    }
    for body in [
        json!({"identifier": "https://renamed.example"}),
        json!({"is_system": true}),
        json!({"id": "chosen"}),
        json!({"skip_consent_for_verifiable_first_party_clients": false}),
        json!({"token_lifetime_for_web": 99_999_999}),
        json!({"token_lifetime_for_web": "7200"}),
    ] {
        cases.push((
            Method::PATCH,
            format!("/resource-servers/{}", f.api_id),
            body,
            400,
        ));
    }
    cases.push((
        Method::POST,
        "/roles".into(),
        json!({"name": "x", "id": "rol_chosen"}),
        400,
    ));
    cases.push((
        Method::POST,
        format!("/roles/{}/users", f.role_id),
        json!({"users": "auth0|x"}),
        400,
    ));
    cases.push((
        Method::POST,
        format!("{user}/roles"),
        json!({"roles": [f.role_id], "user_id": "auth0|x"}),
        400,
    ));

    let before = f.snapshot().await;
    for (method, path, body, expected) in &cases {
        let (status, answer) = call(server, a, method.clone(), path, Some(body)).await;
        tally.case(
            format_args!("{method} {path} with {body}"),
            status == *expected,
            format_args!("{status} {answer}"),
        );
    }
    let raw: Vec<RawCase> = vec![
        (
            "email twice",
            Method::POST,
            "/users".into(),
            "application/json",
            br#"{"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "a long enough passphrase 9", "email": "b@example.com"}"#.to_vec(),
            400,
        ),
        (
            "email twice, once escaped",
            Method::POST,
            "/users".into(),
            "application/json",
            br#"{"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "a long enough passphrase 9", "\u0065mail": "b@example.com"}"#.to_vec(),
            400,
        ),
        (
            "blocked twice",
            Method::PATCH,
            user.clone(),
            "application/json",
            br#"{"blocked": false, "blocked": true}"#.to_vec(),
            400,
        ),
        (
            "a nested member twice",
            Method::PATCH,
            user.clone(),
            "application/json",
            br#"{"app_metadata": {"plan": "free", "plan": "enterprise"}}"#.to_vec(),
            400,
        ),
        (
            "scope twice in a grant",
            Method::PATCH,
            format!("/client-grants/{}", f.grant_id),
            "application/json",
            br#"{"scope": ["read:orders"], "scope": []}"#.to_vec(),
            400,
        ),
        (
            "a scope's value twice",
            Method::PATCH,
            format!("/resource-servers/{}", f.api_id),
            "application/json",
            br#"{"scopes": [{"value": "read:orders", "value": "admin"}]}"#.to_vec(),
            400,
        ),
        (
            "10,000 nested arrays",
            Method::PATCH,
            user.clone(),
            "application/json",
            format!(
                "{{\"user_metadata\": {{\"a\": {}{}}}}}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            )
            .into_bytes(),
            400,
        ),
        (
            "200 nested objects",
            Method::PATCH,
            user.clone(),
            "application/json",
            format!(
                "{{\"user_metadata\": {}1{}}}",
                "{\"a\": ".repeat(200),
                "}".repeat(200)
            )
            .into_bytes(),
            400,
        ),
        (
            "a 100 KB body",
            Method::POST,
            "/roles".into(),
            "application/json",
            format!("{{\"name\": \"{}\"}}", "x".repeat(100_000)).into_bytes(),
            413,
        ),
        (
            "an array",
            Method::POST,
            "/roles".into(),
            "application/json",
            br#"[{"name": "x"}]"#.to_vec(),
            400,
        ),
        (
            "null",
            Method::POST,
            "/roles".into(),
            "application/json",
            b"null".to_vec(),
            400,
        ),
        (
            "a string",
            Method::POST,
            "/roles".into(),
            "application/json",
            br#""name""#.to_vec(),
            400,
        ),
        (
            "an empty body",
            Method::POST,
            "/roles".into(),
            "application/json",
            Vec::new(),
            400,
        ),
        (
            "invalid UTF-8",
            Method::POST,
            "/roles".into(),
            "application/json",
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            400,
        ),
        (
            "trailing garbage",
            Method::POST,
            "/roles".into(),
            "application/json",
            br#"{"name": "x"} {"name": "y"}"#.to_vec(),
            400,
        ),
        (
            "a form body",
            Method::POST,
            "/roles".into(),
            "application/x-www-form-urlencoded",
            b"name=x".to_vec(),
            415,
        ),
        (
            "JSON as text/plain",
            Method::POST,
            "/roles".into(),
            "text/plain",
            br#"{"name": "x"}"#.to_vec(),
            415,
        ),
    ];
    for (what, method, path, content_type, body, expected) in raw {
        let (status, answer) =
            send(server, a, method.clone(), &path, content_type, Some(body)).await;
        tally.case(
            format_args!("{method} {path} with {what}"),
            status == expected,
            format_args!("{status} {answer}"),
        );
    }
    f.unchanged(&mut tally, &before, "mass assignment and malformed bodies")
        .await;

    // The token endpoint reads JSON the same way: a parameter twice is refused.
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"grant_type": "client_credentials", "client_id": "{}", "client_secret": "{}", "audience": "{API}", "audience": "{}"}}"#,
            server.m2m_client_id,
            server.m2m_secret,
            server.management_audience()
        ))
        .send()
        .await
        .expect("an answer");
    tally.status(
        "/oauth/token with audience twice in JSON",
        response.status().as_u16(),
        400,
    );
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_api_cannot_be_shadowed_changed_or_granted_to_users() {
    let mut tally = Tally::new("management/system-api");
    let f = fixture().await;
    let server = &f.server;
    let a = f.admin();
    let system = tessera_core::system::management_api(&server.issuer, 0);
    let before = f.snapshot().await;
    for identifier in [
        system.id.clone(),
        system.id.to_uppercase(),
        "sys_".to_string(),
        "sys_0123456789abcdef0123".to_string(),
        "Sys_shadow".to_string(),
    ] {
        let (status, body) = call(
            server,
            a,
            Method::POST,
            "/resource-servers",
            Some(&json!({"name": "Shadow", "identifier": identifier})),
        )
        .await;
        tally.status(
            format_args!("an API with the identifier {identifier} ({body})"),
            status,
            400,
        );
    }
    // Auth0's tools skip an API by this name: another one would vanish from their exports.
    for name in [
        "Auth0 Management API",
        "auth0 management api",
        " Auth0 Management API ",
    ] {
        let (status, body) = call(
            server,
            a,
            Method::POST,
            "/resource-servers",
            Some(&json!({"name": name, "identifier": "https://impostor.test/"})),
        )
        .await;
        tally.status(format_args!("an API named {name:?} ({body})"), status, 400);
        let (status, body) = call(
            server,
            a,
            Method::PATCH,
            &format!("/resource-servers/{}", encode(tessera_testkit::API)),
            Some(&json!({"name": name})),
        )
        .await;
        tally.status(
            format_args!("an API renamed {name:?} ({body})"),
            status,
            400,
        );
    }
    let (status, body) = call(
        server,
        a,
        Method::POST,
        "/resource-servers",
        Some(&json!({"name": "Copy", "identifier": server.management_audience()})),
    )
    .await;
    tally.status(
        format_args!("an API with the Management API's identifier ({body})"),
        status,
        409,
    );
    for key in [system.id.clone(), encode(&server.management_audience())] {
        let path = format!("/resource-servers/{key}");
        let (status, _) = call(
            server,
            a,
            Method::PATCH,
            &path,
            Some(&json!({"name": "Mine"})),
        )
        .await;
        tally.status(format_args!("PATCH {path}"), status, 403);
        let (status, _) = call(
            server,
            a,
            Method::PATCH,
            &path,
            Some(&json!({"scopes": [{"value": "read:current_user"}]})),
        )
        .await;
        tally.status(
            format_args!("PATCH {path} adding a current-user scope"),
            status,
            403,
        );
        let (status, _) = call(server, a, Method::DELETE, &path, None).await;
        tally.status(format_args!("DELETE {path}"), status, 403);
    }
    let (status, found) = call(
        server,
        a,
        Method::GET,
        &format!("/resource-servers/{}", system.id),
        None,
    )
    .await;
    tally.case(
        "the system API is still what its id finds",
        status == 200 && found["is_system"] == true,
        format_args!("{status} {found}"),
    );
    let (status, body) = call(
        server,
        a,
        Method::POST,
        "/client-grants",
        Some(&json!({"client_id": server.spa_client_id, "audience": server.management_audience(), "scope": ["read:users"]})),
    )
    .await;
    tally.status(
        format_args!("a SPA granted Management scopes ({body})"),
        status,
        400,
    );
    f.unchanged(&mut tally, &before, "the system API").await;
    tally.finish();
}

const MARKUP_EMAILS: [&str; 10] = [
    "<script>alert(1)</script>@test.example",
    "<img src=x onerror=alert(1)>@test.example",
    "Jane <jane@example.com>",
    "\"<b>\"@example.com",
    "\"a b\"@example.com",
    "a@[127.0.0.1]",
    "a\"onmouseover=\"alert(1)@example.com",
    "a@example.com\r\nBcc: victim@example.com",
    "a\u{0}@example.com",
    "a\u{202e}moc.elpmaxe@example.com",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_emails_and_profiles_is_refused_everywhere() {
    let mut tally = Tally::new("management/markup");
    let f = fixture().await;
    let server = &f.server;
    let a = f.admin();
    let before = f.snapshot().await;
    for email in MARKUP_EMAILS {
        let (status, _) = call(
            server,
            a,
            Method::POST,
            "/users",
            Some(&json!({"connection": "Username-Password-Authentication", "email": email, "password": "a long enough passphrase 9"})),
        )
        .await;
        tally.status(
            format_args!("POST /users with email {email:?}"),
            status,
            400,
        );
        let (status, _) = call(
            server,
            a,
            Method::PATCH,
            &f.user_path,
            Some(&json!({"email": email})),
        )
        .await;
        tally.status(
            format_args!("PATCH a user's email to {email:?}"),
            status,
            400,
        );
    }
    for (member, value) in [
        ("name", "<script>alert(1)</script>"),
        ("nickname", "<svg onload=alert(1)>"),
        ("picture", "javascript:alert(1)"),
        ("picture", "data:text/html,<script>alert(1)</script>"),
        (
            "picture",
            "https://cdn.example/a.png\"><script>alert(1)</script>",
        ),
        ("picture", "https://cdn.example/a.png' onerror='alert(1)"),
        ("picture", "https://user:pass@cdn.example/a.png"),
    ] {
        let (status, _) = call(
            server,
            a,
            Method::PATCH,
            &f.user_path,
            Some(&json!({member: value})),
        )
        .await;
        tally.status(
            format_args!("PATCH a user's {member} to {value:?}"),
            status,
            400,
        );
    }
    f.unchanged(&mut tally, &before, "markup through the API")
        .await;

    // The hosted sign-up and both password-reset entries.
    let browser = browser();
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("screen_hint", "signup"),
            ("code_challenge", &pkce().challenge),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .expect("an answer");
    let page = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .expect("the sign-up page")
        .text()
        .await
        .unwrap_or_default();
    let (state, csrf) = (hidden_field(&page, "state"), hidden_field(&page, "csrf"));
    let users_before = server
        .store
        .list_users(
            &tessera_store::UserSearch::default(),
            tessera_store::Slice::first(1000),
        )
        .await
        .expect("users")
        .items
        .len();
    for email in &MARKUP_EMAILS[..4] {
        let response = browser
            .post(server.url("/u/signup"))
            .form(&[
                ("state", state.as_str()),
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", "a long and unusual passphrase"),
            ])
            .send()
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        tally.case(
            format_args!("sign-up with {email:?}"),
            status == 400 && !text.contains("<script>alert") && !text.contains("<img src=x"),
            format_args!("{status}"),
        );
    }
    let users_after = server
        .store
        .list_users(
            &tessera_store::UserSearch::default(),
            tessera_store::Slice::first(1000),
        )
        .await
        .expect("users")
        .items
        .len();
    tally.case(
        "sign-up created nobody",
        users_after == users_before,
        format_args!("{users_before} users before, {users_after} after"),
    );
    // Mass assignment through the sign-up form: only email and password are read.
    let response = browser
        .post(server.url("/u/signup"))
        .form(&[
            ("state", state.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "fresh@example.com"),
            ("password", "a long and unusual passphrase"),
            ("email_verified", "true"),
            ("user_id", "auth0|000000000000000000000001"),
            ("blocked", "false"),
            ("app_metadata", r#"{"role": "admin"}"#),
        ])
        .send()
        .await
        .expect("an answer");
    let created = server
        .store
        .find_user_by_email("fresh@example.com")
        .await
        .expect("read");
    tally.case(
        "sign-up with email_verified, user_id and app_metadata in the form",
        response.status() == 303
            && created.as_ref().is_some_and(|user| {
                !user.email_verified
                    && user.user_id != "auth0|000000000000000000000001"
                    && user.app_metadata.is_empty()
            }),
        format_args!("{} {created:?}", response.status()),
    );
    // The address is checked before anything else (this server sends no mail).
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&json!({"client_id": server.spa_client_id, "email": MARKUP_EMAILS[0], "connection": "Username-Password-Authentication"}))
        .send()
        .await
        .expect("an answer");
    tally.status(
        "/dbconnections/change_password with markup",
        response.status().as_u16(),
        400,
    );

    // The CLI, through the real binary.
    let env = Env::new(TESSERA);
    let (code, stderr) = env.fails_with_stdin(
        &[
            "users",
            "create",
            "--email",
            MARKUP_EMAILS[0],
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    tally.case(
        "tessera users create with markup",
        code == 1 && stderr.contains("invalid email address"),
        format_args!("exit {code}: {stderr}"),
    );
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_flows_asking_the_management_api_for_admin_scopes_get_none() {
    let mut tally = Tally::new("management/user-flows");
    let f = fixture().await;
    let server = &f.server;
    let audience = server.management_audience();
    let browser = browser();
    // Sign in once; every request below is answered from the session.
    server.code_flow(&browser, "openid", None).await;
    let pkce = pkce();
    let authorize = |response_type: &str, scope: &str| {
        let mut params = vec![
            ("response_type", response_type.to_string()),
            ("scope", scope.to_string()),
            ("audience", audience.clone()),
            ("state", "st".to_string()),
            ("nonce", "n".to_string()),
        ];
        if response_type == "code" {
            params.push(("code_challenge", pkce.challenge.clone()));
            params.push(("code_challenge_method", "S256".to_string()));
        }
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.authorize_url(&params)
    };
    for scope in all_scopes() {
        for response_type in ["code", "token"] {
            let back = server
                .sign_in(&browser, &authorize(response_type, scope))
                .await;
            let params = params_of(&back);
            tally.case(
                format_args!("{response_type} flow asking only {scope}"),
                params.get("error").map(String::as_str) == Some("access_denied")
                    && !params.contains_key("code")
                    && !params.contains_key("access_token"),
                &back,
            );
        }
    }
    let everything = format!("openid profile offline_access {}", all_scopes().join(" "));
    let back = server
        .sign_in(&browser, &authorize("token", &everything))
        .await;
    let token = params_of(&back).remove("access_token").unwrap_or_default();
    tally.case(
        "implicit flow asking for everything: the token holds no admin scope",
        !token.is_empty() && !holds_admin_scope(&token),
        format_args!("{:?}", granted(&token)),
    );
    let back = server
        .sign_in(&browser, &authorize("code", &everything))
        .await;
    let code = params_of(&back).remove("code").unwrap_or_default();
    let (status, tokens) = server.redeem(&code, &pkce.verifier).await;
    let token = tokens["access_token"].as_str().unwrap_or_default();
    tally.case(
        "code flow asking for everything: the token holds no admin scope",
        status == 200 && !holds_admin_scope(token),
        format_args!("{status} {:?}", granted(token)),
    );
    tally.case(
        "code flow asking for everything: no refresh token (the Management API allows no offline access)",
        tokens.get("refresh_token").is_none(),
        &tokens,
    );
    let (status, _) = call(server, Some(token), Method::GET, "/users", None).await;
    tally.status("that token on GET /users", status, 401);

    // A third-party application: the consent page never offers an admin scope, and a
    // request for admin scopes only is refused before any page.
    server
        .store
        .update_client(
            &server.spa_client_id,
            &ClientUpdate {
                is_first_party: Some(false),
                ..Default::default()
            },
            tessera_testkit::now(),
        )
        .await
        .expect("updated");
    let to = server
        .sign_in(
            &browser,
            &authorize("code", "openid delete:users create:client_grants"),
        )
        .await;
    let page = if to.starts_with("/u/consent") {
        browser
            .get(server.url(&to))
            .send()
            .await
            .expect("the consent page")
            .text()
            .await
            .unwrap_or_default()
    } else {
        String::new()
    };
    tally.case(
        "the consent page for openid + admin scopes asks for none of them",
        !page.is_empty()
            && !page.contains("delete:users")
            && !page.contains("Delete Users")
            && !page.contains("create:client_grants"),
        &to,
    );
    let back = server
        .sign_in(&browser, &authorize("code", "delete:users update:users"))
        .await;
    tally.case(
        "a third-party request for admin scopes only: access_denied, no consent page",
        params_of(&back).get("error").map(String::as_str) == Some("access_denied")
            && back.starts_with(CALLBACK),
        &back,
    );
    tally.finish();
}

/// Hostile list queries: Lucene and SQL injection in `q`, LIKE wildcards, escapes, NUL,
/// huge and deeply nested queries, hostile sorts, checkpoints and page numbers. Each is
/// refused with Auth0's 400 or answered literally (an empty list); none is a 500, none
/// changes the tenant, and the users are all still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_list_queries_are_refused_or_read_literally() {
    let mut tally = Tally::new("management/lists");
    let f = fixture().await;
    let server = &f.server;
    let a = f.admin();
    let before = f.snapshot().await;
    let users = |q: &str| format!("/users?q={}", encode(q));
    let nested = format!("{}email:a{}", "(".repeat(500), ")".repeat(500));
    let long = format!("email:{}", "a".repeat(10_000));
    let many = ["name:a"; 100].join(" AND ");
    let role_users = format!("/roles/{}/users", f.role_id);
    let cases: Vec<(&str, String, u16)> = vec![
        // Lucene operators and SQL, unquoted: not Tessera's syntax.
        (
            "q: OR 1=1 after a quoted email",
            users(r#"email:"x" OR 1=1"#),
            400,
        ),
        ("q: OR with a bare word", users("email:x OR name:y"), 400),
        ("q: NOT", users("NOT email:x"), 400),
        ("q: || and &&", users("email:x || email:y && name:z"), 400),
        ("q: a term without a field", users("1=1"), 400),
        ("q: an unknown field", users("password_hash:x*"), 400),
        (
            "q: a metadata field",
            users(r#"app_metadata.role:"admin""#),
            400,
        ),
        ("q: 500 levels of parentheses", users(&nested), 400),
        ("q: 10 kB", users(&long), 400),
        ("q: 100 terms", users(&many), 400),
        (
            "q: a suffix wildcard (a scan)",
            users("email:*@example.com"),
            400,
        ),
        ("q: an infix wildcard", users("email:a*b"), 400),
        ("q: a single-character wildcard", users("email:a?"), 400),
        ("q: a range", users("email:[a TO z]"), 400),
        ("q: fuzzy", users("name:jane~2"), 400),
        ("q: a regular expression", users("name:/j.*/"), 400),
        ("q: a lone trailing backslash", users("name:a\\"), 400),
        ("q: an unclosed quote", users(r#"email:"a"#), 400),
        ("q: NUL", users("email:a\0*"), 400),
        ("q: a newline", users("email:a\nOR email:b"), 400),
        (
            "q: repeated",
            format!("{}&q=email:b", users("email:a")),
            400,
        ),
        // Quoted or escaped, SQL and LIKE text is a literal value: nothing matches.
        ("q: quoted SQL", users(r#"email:"x' OR '1'='1""#), 200),
        (
            "q: quoted DROP TABLE",
            users(r#"name:"x'); DROP TABLE users; --""#),
            200,
        ),
        ("q: bare quote and semicolon", users("email:x';--"), 200),
        ("q: % as a prefix", users("email:%*"), 200),
        ("q: _ as a prefix", users("email:_*"), 200),
        ("q: an escaped star", users(r"email:\*"), 200),
        ("q: an escaped backslash", users(r#"name:"a\\b""#), 200),
        // Sorts: one indexed field, 1 or -1.
        (
            "sort: SQL",
            "/users?sort=email%3BDROP%20TABLE%20users%3A1".into(),
            400,
        ),
        ("sort: two fields", "/users?sort=email:1,name:1".into(), 400),
        (
            "sort: an unindexed field",
            "/users?sort=logins_count:-1".into(),
            400,
        ),
        (
            "sort: a metadata field",
            "/users?sort=app_metadata.x:1".into(),
            400,
        ),
        (
            "search_engine v2",
            "/users?search_engine=v2&q=email:a*".into(),
            400,
        ),
        // Pages: numbers, signs, the 1000-result cap.
        ("per_page: a million", "/users?per_page=1000000".into(), 400),
        (
            "per_page: beyond u64",
            "/users?per_page=18446744073709551616".into(),
            400,
        ),
        ("per_page: negative", "/clients?per_page=-5".into(), 400),
        ("page: negative", "/clients?page=-1".into(), 400),
        ("page: a float", "/roles?page=0.5".into(), 400),
        ("page: hex", "/roles?page=0x10".into(), 400),
        ("users past 1000", "/users?page=10&per_page=100".into(), 400),
        (
            "users: the largest page",
            "/users?page=18446744073709551615&per_page=100".into(),
            400,
        ),
        (
            "role members past 1000",
            format!("{role_users}?page=20&per_page=50"),
            400,
        ),
        (
            "clients: the largest page",
            "/clients?page=18446744073709551615&per_page=100".into(),
            200,
        ),
        ("take: 0", format!("{role_users}?take=0"), 400),
        ("take: negative", "/client-grants?take=-1".into(), 400),
        ("take: a million", "/client-grants?take=1000000".into(), 400),
        // Checkpoints and filters are bound values.
        (
            "from: SQL",
            format!("/client-grants?take=5&from={}", encode("' OR 1=1 --")),
            200,
        ),
        ("from: NUL", "/client-grants?take=5&from=%00".into(), 400),
        (
            "name_filter: LIKE wildcards",
            "/roles?name_filter=%25_%25".into(),
            200,
        ),
        (
            "name_filter: SQL",
            format!("/roles?name_filter={}", encode("' OR ''='")),
            200,
        ),
        ("name_filter: NUL", "/roles?name_filter=%00".into(), 400),
        (
            "audience: SQL",
            format!("/client-grants?audience={}", encode("x' OR '1'='1")),
            200,
        ),
        (
            "app_type: SQL",
            format!("/clients?app_type={}", encode("spa') OR ('1'='1")),
            200,
        ),
        (
            "identifiers: 11",
            format!("/resource-servers?{}", "identifiers=x&".repeat(11)),
            400,
        ),
        ("client q: another query", "/clients?q=name:*".into(), 400),
        ("type: unknown", "/roles?type=admin".into(), 400),
    ];
    for (what, path, expected) in &cases {
        let (status, body) = call(server, a, Method::GET, path, None).await;
        tally.status(what, status, *expected);
        if *expected == 400 {
            tally.case(
                format_args!("{what}: Auth0's error shape"),
                body["statusCode"] == json!(400)
                    && body["error"] == json!("Bad Request")
                    && body["message"].is_string()
                    && body["errorCode"].is_string(),
                &body,
            );
        } else {
            // Read literally: nothing matches the SQL, and no row outside the filter shows.
            let listed = body.as_array().map_or(0, Vec::len);
            let literal = !what.starts_with("from") && !what.starts_with("clients");
            tally.case(
                format_args!("{what}: an answer that matches nothing injected"),
                body.is_array() && (!literal || listed == 0),
                &body,
            );
        }
    }
    // A checkpoint from anywhere lists only real grants, once each.
    let (_, all) = call(server, a, Method::GET, "/client-grants?take=100", None).await;
    let (_, from) = call(
        server,
        a,
        Method::GET,
        &format!("/client-grants?take=100&from={}", encode("' OR 1=1 --")),
        None,
    )
    .await;
    tally.case(
        "from: SQL pages the same grants as from the start",
        from == all,
        format_args!("{from} vs {all}"),
    );
    f.unchanged(&mut tally, &before, "hostile list queries")
        .await;
    tally.finish();
}

/// `/tenants/settings` keeps the members Tessera knows, of Auth0's types: what a hostile
/// or careless tenant file sends is refused whole (400) and changes nothing, and only the
/// settings scopes open it. `default_audience` must name an API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_settings_keep_known_members_only() {
    let mut tally = Tally::new("management/tenant-settings");
    let f = fixture().await;
    let server = &f.server;
    let a = f.admin();
    let (status, _) = call(
        server,
        a,
        Method::PATCH,
        "/tenants/settings",
        Some(&json!({"friendly_name": "Before", "flags": {"a": true}})),
    )
    .await;
    assert_eq!(status, 200, "the fixture's admin sets the settings");
    let (_, before) = call(server, a, Method::GET, "/tenants/settings", None).await;
    let deep = (0..200).fold(json!("x"), |inner, _| json!({"html": inner}));
    for body in [
        json!({"__proto__": {"admin": true}}),
        json!({"constructor": {"prototype": {"admin": true}}}),
        json!({"tenant_id": "other"}),
        json!({"flags": {"__proto__": true}}),
        json!({"flags": {"a": 1}}),
        json!({"flags": (0..101).map(|i| (format!("f{i}"), json!(true))).collect::<serde_json::Map<_, _>>()}),
        json!({"friendly_name": "x".repeat(256)}),
        json!({"friendly_name": "<script>alert(1)</script>\u{0}"}),
        json!({"picture_url": "data:image/svg+xml,<svg onload=alert(1)>"}),
        json!({"support_url": "javascript:alert(1)"}),
        json!({"support_email": "a@b.example\r\nBcc: victim@example.com"}),
        json!({"default_redirection_uri": "http://attacker.example/"}),
        json!({"default_audience": "https://no-such-api.example/"}),
        json!({"default_audience": ["https://orders.example/"]}),
        json!({"default_directory": "attacker-connection"}),
        json!({"session_lifetime": 1e308}),
        json!({"session_lifetime": -1}),
        json!({"enabled_locales": ["en", "<x>"]}),
        json!({"error_page": {"url": "javascript:alert(1)"}}),
        json!({"error_page": deep}),
        json!({"session_cookie": {"mode": "persistent", "domain": ".attacker.example"}}),
        json!({"allowed_logout_urls": ["javascript:alert(1)"]}),
        json!([{"friendly_name": "array body"}]),
    ] {
        let (status, _) = call(server, a, Method::PATCH, "/tenants/settings", Some(&body)).await;
        let shown: String = body.to_string().chars().take(80).collect();
        tally.status(format_args!("PATCH {shown}"), status, 400);
    }
    let (_, after) = call(server, a, Method::GET, "/tenants/settings", None).await;
    tally.case(
        "the refused patches changed nothing",
        after == before,
        format_args!("{after}"),
    );
    let (_, reader) = server.management_client(&["read:tenant_settings"]).await;
    let (status, _) = call(
        server,
        Some(reader.as_str()),
        Method::PATCH,
        "/tenants/settings",
        Some(&json!({"friendly_name": "Reader"})),
    )
    .await;
    tally.status("PATCH with read:tenant_settings only", status, 403);
    let (_, other) = server.management_client(&["read:users"]).await;
    let (status, _) = call(
        server,
        Some(other.as_str()),
        Method::GET,
        "/tenants/settings",
        None,
    )
    .await;
    tally.status("GET without read:tenant_settings", status, 403);
    let (status, _) = call(server, None, Method::GET, "/tenants/settings", None).await;
    tally.status("GET without a token", status, 401);
    tally.finish();
}

/// The answers for what Tessera does not have (`management/absent.rs`), the database
/// connection and the global client, pushed to change something: brute-force settings it
/// cannot hold, allow every address, turn sign-up off, run a custom script, take over the login
/// page, send MFA policies Tessera does not have, smuggle bodies. Every attempt is refused and the settings read
/// the same afterwards; the brute-force block still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_tessera_does_not_have_cannot_be_switched_on_or_weakened() {
    let mut tally = Tally::new("management/absent-features");
    let f = fixture().await;
    let server = &f.server;
    let a = f.admin();
    let settings = [
        "/attack-protection/brute-force-protection",
        "/attack-protection/suspicious-ip-throttling",
        "/attack-protection/breached-password-detection",
        "/guardian/policies",
        "/prompts",
        "/risk-assessments/settings",
    ];
    let mut before_settings = Vec::new();
    for path in settings {
        before_settings.push(call(server, a, Method::GET, path, None).await);
    }
    let before = f.snapshot().await;
    let connection = format!("/connections/{CONNECTION}");
    let connection_clients = format!("{connection}/clients");
    let global = "/clients/tessera_global_client";
    let deep = (0..200).fold(json!(1), |inner, _| json!({"a": inner}));
    let attempts: Vec<(Method, &str, Value)> = vec![
        (
            Method::PATCH,
            "/attack-protection/brute-force-protection",
            json!({"max_attempts": 1_000_000}),
        ),
        // The brute-force settings are real (`brute_force.rs` attacks them); what they
        // cannot hold is refused here with the rest.
        (
            Method::PATCH,
            "/attack-protection/brute-force-protection",
            json!({"enabled": "false"}),
        ),
        (
            Method::PATCH,
            "/attack-protection/brute-force-protection",
            json!({"allowlist": ["0.0.0.0/-1", "attacker.example"]}),
        ),
        (
            Method::PATCH,
            "/attack-protection/brute-force-protection",
            json!({"shields": ["user_notification"]}),
        ),
        (
            Method::PATCH,
            "/attack-protection/brute-force-protection",
            json!({"mode": "count_per_nothing", "max_attempts": 0}),
        ),
        (
            Method::PATCH,
            "/attack-protection/suspicious-ip-throttling",
            json!({"enabled": false}),
        ),
        (
            Method::PATCH,
            "/attack-protection/suspicious-ip-throttling",
            json!({"allowlist": ["0.0.0.0/0"]}),
        ),
        (
            Method::PATCH,
            "/attack-protection/breached-password-detection",
            json!({"enabled": true}),
        ),
        // (Guardian policies are real now: `["all-applications"]` is accepted; see mfa.rs.)
        (Method::PUT, "/guardian/policies", json!({"policies": []})),
        (Method::PATCH, "/prompts", json!({"identifier_first": true})),
        (
            Method::PATCH,
            "/prompts",
            json!({"universal_login_experience": "classic"}),
        ),
        (Method::PATCH, "/prompts", deep.clone()),
        (
            Method::PUT,
            "/prompts/login/custom-text/en",
            json!({"login": {"title": "<script>alert(1)</script>"}}),
        ),
        (
            Method::PUT,
            "/prompts/login/partials",
            json!({"form-content-start": "<script>alert(1)</script>"}),
        ),
        (
            Method::PATCH,
            "/risk-assessments/settings",
            json!({"enabled": true}),
        ),
        (
            Method::POST,
            "/hooks",
            json!({"name": "x", "script": "module.exports = () => {}", "triggerId": "credentials-exchange"}),
        ),
        (
            Method::POST,
            "/custom-domains",
            json!({"domain": "login.attacker.example", "type": "self_managed_certs"}),
        ),
        (Method::POST, "/organizations", json!({"name": "attacker"})),
        (
            Method::POST,
            "/event-streams",
            json!({"destination": {"type": "webhook", "configuration": {"webhook_endpoint": "https://attacker.example"}}}),
        ),
        (Method::DELETE, "/guardian/policies", json!({})),
        (
            Method::PATCH,
            &connection,
            json!({"options": {"disable_signup": "true"}}),
        ),
        (
            Method::PATCH,
            &connection,
            json!({"options": {"brute_force_protection": false}}),
        ),
        (
            Method::PATCH,
            &connection,
            json!({"options": {"password_complexity_options": {"min_length": 1}}}),
        ),
        (
            Method::PATCH,
            &connection,
            json!({"options": {"customScripts": {"login": "function login(e, p, cb) { cb(null, {user_id: 'admin'}); }"}, "enabledDatabaseCustomization": true}}),
        ),
        (
            Method::PATCH,
            &connection,
            json!({"options": {"import_mode": true}}),
        ),
        (
            Method::PATCH,
            &connection,
            json!({"name": "Renamed", "strategy": "google-oauth2"}),
        ),
        (Method::PATCH, &connection, json!({"options": deep.clone()})),
        (
            Method::PATCH,
            &connection,
            json!({"enabled_clients": [1, 2]}),
        ),
        (
            Method::PATCH,
            &connection_clients,
            json!([{"client_id": "tessera_dashboard", "status": false}]),
        ),
        (
            Method::PATCH,
            &connection_clients,
            json!([{"client_id": f.client_id, "status": "false"}]),
        ),
        (
            Method::PATCH,
            &connection_clients,
            json!([{"client_id": f.client_id, "status": true, "extra": 1}]),
        ),
        (
            Method::PATCH,
            &connection_clients,
            json!({"client_id": f.client_id}),
        ),
        (
            Method::PATCH,
            global,
            json!({"custom_login_page_on": true, "custom_login_page": "<script>alert(1)</script>"}),
        ),
        (
            Method::PATCH,
            global,
            json!({"callbacks": ["https://attacker.example/cb"]}),
        ),
        (Method::DELETE, global, json!({})),
        (
            Method::POST,
            "/clients/tessera_global_client/rotate-secret",
            json!({}),
        ),
    ];
    for (method, path, body) in &attempts {
        let (status, answer) = call(server, a, method.clone(), path, Some(body)).await;
        let shown: String = body.to_string().chars().take(70).collect();
        tally.case(
            format_args!("{method} {path} {shown} is refused"),
            (400..=405).contains(&status),
            format_args!("{status} {answer}"),
        );
        let message = answer["message"].as_str().unwrap_or_default();
        tally.case(
            format_args!("{method} {path}: the refusal does not echo the body"),
            !message.contains("<script>")
                && !message.contains("attacker.example")
                && !message.contains("cb(null"),
            message,
        );
    }
    // Duplicated members and wrong media types are read as elsewhere.
    let (status, _) = send(
        server,
        a,
        Method::PATCH,
        "/attack-protection/brute-force-protection",
        "application/json",
        Some(br#"{"enabled": true, "enabled": false}"#.to_vec()),
    )
    .await;
    tally.status("a settings body naming a member twice", status, 400);
    let (status, _) = send(
        server,
        a,
        Method::PUT,
        "/guardian/policies",
        "text/plain",
        Some(b"[]".to_vec()),
    )
    .await;
    tally.status("a settings body that is not JSON", status, 415);
    for (path, (status, body)) in settings.iter().zip(&before_settings) {
        let after = call(server, a, Method::GET, path, None).await;
        tally.case(
            format_args!("{path} reads as before"),
            *status == 200 && after == (*status, body.clone()),
            format_args!("{after:?}"),
        );
    }
    f.unchanged(
        &mut tally,
        &before,
        "switching on what Tessera does not have",
    )
    .await;
    // The limit shown is the one the login enforces (`brute_force.rs` attacks the block
    // itself); the test server runs with the default of `ServerConfig::new`, 10.
    let (_, brute_force) = call(
        server,
        a,
        Method::GET,
        "/attack-protection/brute-force-protection",
        None,
    )
    .await;
    let limit = brute_force["max_attempts"].as_i64().unwrap_or(0);
    tally.case(
        "the brute-force limit shown is the server's",
        limit == 10,
        format_args!("{brute_force}"),
    );
    tally.finish();
}

impl Fixture {
    /// Another user, `victim@example.com`, holding a live refresh family `victims-family`
    /// of the fixture's application whose token hash is `[7; 32]` and whose stored grant
    /// is `{}`.
    async fn victim_with_refresh_family(&self) -> String {
        let store = &self.server.store;
        let victim =
            tessera_testkit::create_user(store, "victim@example.com", "a long enough passphrase 9")
                .await;
        tessera_testkit::seed_refresh_family(
            store,
            (7, "victims-family"),
            (&victim, &self.client_id),
            None,
        )
        .await;
        victim
    }
}

/// User ids that must not reach `victim`'s rows: patterns, SQL, and near misses of its id.
fn hostile_user_ids(victim: &str) -> Vec<String> {
    let mut ids: Vec<String> = [
        "*",
        "%",
        "auth0|*",
        "auth0|%",
        "auth0",
        "' OR '1'='1",
        "\" OR 1=1 --",
    ]
    .map(String::from)
    .into();
    ids.push(victim.to_uppercase());
    ids.push(format!("{victim} "));
    ids.push(victim[..victim.len() - 1].to_string());
    ids
}

/// Callers that must not change a user's rows: a user's own token (even one asking for
/// the resource's scopes), no token, and a machine's token that may only read.
struct Outsiders {
    user: String,
    reader: String,
}

impl Outsiders {
    /// Each caller, its token and the status its change gets.
    fn each(&self) -> [(&'static str, Option<&str>, u16); 3] {
        [
            ("a user's token", Some(&self.user), 401),
            ("no token", None, 401),
            ("a token that may only read", Some(&self.reader), 403),
        ]
    }
}

impl Fixture {
    /// The [`Outsiders`] of a resource read with scope `read` and changed with `change`.
    async fn outsiders(&self, read: &str, change: &str) -> Outsiders {
        let users = self
            .server
            .code_flow(
                &browser(),
                &format!("openid {read} {change}"),
                Some(&self.server.management_audience()),
            )
            .await;
        let (_, reader) = self.server.management_client(&[read]).await;
        Outsiders {
            user: users["access_token"].as_str().unwrap_or_default().into(),
            reader,
        }
    }
}

/// `/grants` (users' consents): one user's grants cannot be listed or revoked through
/// another's id, a pattern or a foreign token; what is revoked takes that application's
/// refresh tokens for the user with it, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_reached_by_their_own_id_and_user_only() {
    let mut tally = Tally::new("management/grants");
    let f = fixture().await;
    let server = &f.server;
    let store = &server.store;
    let now = tessera_testkit::now();
    let victim = f.victim_with_refresh_family().await;
    let victims = store
        .grant_consent(
            &victim,
            &f.client_id,
            ORDERS,
            &["read:orders".to_string()],
            now,
        )
        .await
        .expect("a consent");
    let (victim_id, client_id) = (victim.as_str(), f.client_id.as_str());
    let victim_intact = move || async move {
        let consent = store
            .find_consent(victim_id, client_id, ORDERS)
            .await
            .ok()
            .flatten();
        let family = store
            .find_refresh_family(&[7; 32], tessera_testkit::now())
            .await
            .ok()
            .flatten();
        consent.is_some() && family.is_some()
    };
    let a = f.admin();

    for user_id in &hostile_user_ids(&victim) {
        let path = format!("/grants?user_id={}", encode(user_id));
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        let leaks = body
            .as_array()
            .is_some_and(|grants| grants.iter().any(|g| g["user_id"] == victim.as_str()));
        tally.case(
            format_args!("GET /grants?user_id={user_id:?} shows no other user's grant"),
            (status == 200 && !leaks) || status == 400,
            format_args!("{status} {body}"),
        );
        let (status, body) = call(server, a, Method::DELETE, &path, None).await;
        tally.case(
            format_args!("DELETE /grants?user_id={user_id:?} revokes no other user's grant"),
            matches!(status, 204 | 400) && victim_intact().await,
            format_args!("{status} {body}"),
        );
    }
    let (status, body) = call(server, a, Method::DELETE, "/grants?user_id=", None).await;
    tally.case(
        "DELETE /grants with an empty user_id is not \"every user\"",
        status == 400 && victim_intact().await,
        format_args!("{status} {body}"),
    );
    let twice = format!(
        "/grants?user_id={}&user_id={}",
        encode(&server.user_id),
        encode(&victim)
    );
    let (status, body) = call(server, a, Method::DELETE, &twice, None).await;
    tally.case(
        "DELETE /grants with user_id twice is refused",
        status == 400 && victim_intact().await,
        format_args!("{status} {body}"),
    );
    for id in [
        "*".to_string(),
        "%25".to_string(),
        "..%2F..%2Fgrants".to_string(),
        "x".repeat(5_000),
        format!("{}%20", victims.id),
    ] {
        let (status, body) = call(server, a, Method::DELETE, &format!("/grants/{id}"), None).await;
        let shown: String = id.chars().take(30).collect();
        tally.case(
            format_args!("DELETE /grants/{shown} revokes nothing"),
            (400..=414).contains(&status) && victim_intact().await,
            format_args!("{status} {body}"),
        );
    }

    let outsiders = f.outsiders("read:grants", "delete:grants").await;
    let reader = &outsiders.reader;
    let victims_path = format!("/grants/{}", victims.id);
    for (what, token, expected) in outsiders.each() {
        let (status, body) = call(server, token, Method::DELETE, &victims_path, None).await;
        tally.case(
            format_args!("{what} cannot revoke another user's grant"),
            status == expected && victim_intact().await,
            format_args!("{status} {body}"),
        );
        let path = format!("/grants?user_id={}", encode(&victim));
        let (status, _) = call(server, token, Method::GET, &path, None).await;
        let expected = if token == Some(reader.as_str()) {
            200
        } else {
            expected
        };
        tally.status(
            format_args!("{what} listing a user's grants"),
            status,
            expected,
        );
    }

    // The seeded user's grants go, with their application's refresh tokens; the victim's stay.
    let mine = format!("/grants?user_id={}", encode(&server.user_id));
    let (status, _) = call(server, a, Method::DELETE, &mine, None).await;
    let (_, left) = call(server, a, Method::GET, &mine, None).await;
    tally.case(
        "revoking one user's grants revokes theirs only",
        status == 204 && left == json!([]) && victim_intact().await,
        format_args!("{status} {left}"),
    );
    // And an administrator revoking the victim's grant by id does end its refresh tokens.
    let (status, _) = call(server, a, Method::DELETE, &victims_path, None).await;
    tally.case(
        "revoking a grant by id ends the user's refresh tokens for that application",
        status == 204
            && store
                .find_refresh_family(&[7; 32], tessera_testkit::now())
                .await
                .ok()
                .flatten()
                .is_none(),
        format_args!("{status}"),
    );
    tally.finish();
}

/// `/refresh-tokens` and `/users/{id}/refresh-tokens`: one user's refresh tokens cannot be
/// listed or revoked through another user's id, a pattern, a doctored token id or a
/// checkpoint; the answers never carry a token's value; and only `delete:refresh_tokens`
/// revokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_reached_by_their_own_id_and_user_only() {
    let mut tally = Tally::new("management/refresh-tokens");
    let f = fixture().await;
    let server = &f.server;
    let store = &server.store;
    // Its family's stored grant does not read (none is written so): it is still shown.
    let victim = f.victim_with_refresh_family().await;
    let victim_intact = || async {
        store
            .find_refresh_family(&[7; 32], tessera_testkit::now())
            .await
            .ok()
            .flatten()
            .is_some()
    };
    let a = f.admin();
    let shows_victim = |body: &Value| body.to_string().contains("victims-family");

    for user_id in &hostile_user_ids(&victim) {
        let path = format!("/users/{}/refresh-tokens", encode(user_id));
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        tally.case(
            format_args!("GET {path} shows no other user's refresh token"),
            matches!(status, 200 | 404) && !shows_victim(&body),
            format_args!("{status} {body}"),
        );
        let (status, body) = call(server, a, Method::DELETE, &path, None).await;
        tally.case(
            format_args!("DELETE {path} revokes no other user's refresh token"),
            matches!(status, 202 | 404) && victim_intact().await,
            format_args!("{status} {body}"),
        );
    }
    let mine = format!("{}/refresh-tokens", f.user_path);
    for from in ["victims-family", "", "%", "' OR '1'='1", "\u{0}"] {
        let path = format!("{mine}?from={}", encode(from));
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        tally.case(
            format_args!("a checkpoint of {from:?} stays within the user's own tokens"),
            matches!(status, 200 | 400) && !shows_victim(&body),
            format_args!("{status} {body}"),
        );
    }
    for id in [
        "*".to_string(),
        "%25".to_string(),
        "victims-family%20".to_string(),
        "VICTIMS-FAMILY".to_string(),
        "..%2F..%2Fusers".to_string(),
        "x".repeat(5_000),
        encode(&b64(&[7; 32])),
    ] {
        let path = format!("/refresh-tokens/{id}");
        let shown: String = id.chars().take(30).collect();
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        tally.case(
            format_args!("GET /refresh-tokens/{shown} finds nothing"),
            (400..=414).contains(&status) && !shows_victim(&body),
            format_args!("{status} {body}"),
        );
        let (status, body) = call(server, a, Method::DELETE, &path, None).await;
        tally.case(
            format_args!("DELETE /refresh-tokens/{shown} revokes nothing"),
            (400..=414).contains(&status) && victim_intact().await,
            format_args!("{status} {body}"),
        );
    }

    let outsiders = f
        .outsiders("read:refresh_tokens", "delete:refresh_tokens")
        .await;
    let reader = &outsiders.reader;
    let victims_path = "/refresh-tokens/victims-family";
    for (what, token, expected) in outsiders.each() {
        let (status, body) = call(server, token, Method::DELETE, victims_path, None).await;
        tally.case(
            format_args!("{what} cannot revoke a refresh token"),
            status == expected && victim_intact().await,
            format_args!("{status} {body}"),
        );
    }
    // Read as it is: the family's own fields, no value or hash of a token, and none of
    // what its unreadable grant would hold.
    let (status, shown) = call(
        server,
        Some(reader.as_str()),
        Method::GET,
        victims_path,
        None,
    )
    .await;
    let text = shown.to_string();
    tally.case(
        "a refresh token is shown without its value or hash",
        status == 200
            && shown["user_id"] == victim.as_str()
            && shown["client_id"] == f.client_id.as_str()
            && !text.contains(&b64(&[7; 32]))
            && !text.contains("0707070707")
            && shown.get("resource_servers").is_none(),
        format_args!("{status} {shown}"),
    );
    // An administrator's revocation of the seeded user's tokens leaves the victim's; the
    // victim's by id ends it.
    let (status, _) = call(server, a, Method::DELETE, &mine, None).await;
    tally.case(
        "revoking one user's refresh tokens revokes theirs only",
        status == 202 && victim_intact().await,
        format_args!("{status}"),
    );
    let (status, _) = call(server, a, Method::DELETE, victims_path, None).await;
    tally.case(
        "revoking a refresh token by id ends it",
        status == 202 && !victim_intact().await,
        format_args!("{status}"),
    );
    tally.finish();
}

/// Where a resource keeps metadata an administrator may replace: its path under
/// `/api/v2`, the collection part of a doctored path, the member of the body, the scopes
/// that read and change it, and how to read what is kept (from the store).
struct MetadataResource<'a, F> {
    path: &'a str,
    collection: &'a str,
    key: &'a str,
    scopes: (&'a str, &'a str),
    kept: F,
}

/// `PATCH` of a resource's metadata (`session_metadata`, `refresh_token_metadata`): what
/// an administrator's client sends is kept as data within Auth0's bounds (25 string keys
/// and values of at most 255 characters) or refused whole; only the update scope writes;
/// a doctored id reaches nothing; and refusals change nothing.
async fn metadata_stays_bounded_data<F, Fut>(
    tally: &mut Tally,
    f: &Fixture,
    resource: MetadataResource<'_, F>,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<std::collections::BTreeMap<String, String>>>,
{
    let server = &f.server;
    let MetadataResource {
        path,
        collection,
        key,
        scopes,
        kept,
    } = resource;
    let a = f.admin();
    let body = |metadata: Value| json!({ key: metadata });
    let (status, answer) = call(
        server,
        a,
        Method::PATCH,
        path,
        Some(&body(json!({"plan": "gold"}))),
    )
    .await;
    let written = kept().await;
    tally.case(
        format_args!("an administrator writes {key}"),
        status == 200
            && answer[key] == json!({"plan": "gold"})
            && written
                .as_ref()
                .is_some_and(|m| m.len() == 1 && m["plan"] == "gold"),
        format_args!("{status} {answer}"),
    );
    let unchanged = || async { kept().await == written };

    let many = |count: usize| -> Value {
        let members: Map<String, Value> =
            (0..count).map(|i| (format!("k{i}"), json!("v"))).collect();
        body(Value::Object(members))
    };
    let mut deep = json!("v");
    for _ in 0..500 {
        deep = json!({ "d": deep });
    }
    for (what, sent) in [
        ("26 keys", many(26)),
        ("3,000 keys", many(3_000)),
        ("a number", body(json!({"plan": 1}))),
        ("a boolean", body(json!({"plan": true}))),
        ("null as a value", body(json!({"plan": null}))),
        ("an array", body(json!({"plan": ["gold"]}))),
        ("500 levels of objects", body(json!({"plan": deep}))),
        ("an empty key", body(json!({"": "v"}))),
        ("a 256-character key", body(json!({"k".repeat(256): "v"}))),
        ("a 256-character value", body(json!({"k": "é".repeat(256)}))),
        ("the object as a string", body(json!("plan=platinum"))),
        ("the object as a list", body(json!([["plan", "platinum"]]))),
        (
            "the resource's own members",
            json!({ key: {}, "expires_at": "2099-01-01T00:00:00Z", "user_id": "auth0|x" }),
        ),
        (
            "a prototype key beside it",
            json!({"__proto__": { key: {} }}),
        ),
        ("a body that is a list", json!([{ key: {} }])),
    ] {
        let (status, answer) = call(server, a, Method::PATCH, path, Some(&sent)).await;
        tally.case(
            format_args!("{key}: {what} is refused and changes nothing"),
            matches!(status, 400 | 413) && unchanged().await,
            format_args!("{status} {answer}"),
        );
    }
    for (what, content_type, bytes) in [
        (
            "a member named twice",
            "application/json",
            format!(r#"{{"{key}":{{"plan":"a"}},"{key}":{{"plan":"b"}}}}"#).into_bytes(),
        ),
        (
            "a form",
            "application/x-www-form-urlencoded",
            format!("{key}[plan]=platinum").into_bytes(),
        ),
        (
            "half a body",
            "application/json",
            format!(r#"{{"{key}":{{"plan":"#).into_bytes(),
        ),
    ] {
        let (status, answer) =
            send(server, a, Method::PATCH, path, content_type, Some(bytes)).await;
        tally.case(
            format_args!("{key}: {what} is refused and changes nothing"),
            (400..=415).contains(&status) && unchanged().await,
            format_args!("{status} {answer}"),
        );
    }
    // Doctored ids reach nothing.
    let write = body(json!({"plan": "platinum"}));
    let id = path.rsplit('/').next().unwrap_or_default();
    for doctored in [
        "*".to_string(),
        "%25".to_string(),
        id.to_uppercase(),
        format!("{id}%20"),
        format!("{id}'--"),
        format!("..%2F{id}"),
        format!("{id}%00"),
    ] {
        let (status, answer) = call(
            server,
            a,
            Method::PATCH,
            &format!("{collection}/{doctored}"),
            Some(&write),
        )
        .await;
        tally.case(
            format_args!("PATCH {collection}/{doctored} writes nothing"),
            (400..=414).contains(&status) && unchanged().await,
            format_args!("{status} {answer}"),
        );
    }
    let outsiders = f.outsiders(scopes.0, scopes.1).await;
    for (what, token, expected) in outsiders.each() {
        let (status, answer) = call(server, token, Method::PATCH, path, Some(&write)).await;
        tally.case(
            format_args!("{what} cannot write {key}"),
            status == expected && unchanged().await,
            format_args!("{status} {answer}"),
        );
    }
    // What fits is data: markup and prototype names kept as text, nothing else added.
    let odd = body(json!({
        "__proto__": "polluted",
        "constructor": "<script>alert(1)</script>",
        "nul": "a\u{0}b",
    }));
    let (status, answer) = call(server, a, Method::PATCH, path, Some(&odd)).await;
    let now = kept().await.unwrap_or_default();
    tally.case(
        format_args!("{key}: prototype names and markup are kept as plain strings"),
        status == 200
            && now.len() == 3
            && now["__proto__"] == "polluted"
            && now["constructor"] == "<script>alert(1)</script>"
            && now["nul"] == "a\u{0}b"
            && answer[key]["constructor"] == "<script>alert(1)</script>",
        format_args!("{status} {answer}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_refresh_token_metadata_stay_bounded_data_written_by_their_scope_only() {
    let mut tally = Tally::new("management/metadata");
    let f = fixture().await;
    let store = &f.server.store;
    let victim = tessera_testkit::create_user(
        store,
        "meta-victim@example.com",
        "a long enough passphrase 9",
    )
    .await;
    tessera_testkit::seed_session(store, (9, "metadata-session"), &victim, Default::default())
        .await;
    let session = || async {
        let now = tessera_testkit::now();
        store
            .find_session_by_sid("metadata-session", (now, 0))
            .await
            .ok()
            .flatten()
            .map(|details| details.metadata)
    };
    let sessions = MetadataResource {
        path: "/sessions/metadata-session",
        collection: "/sessions",
        key: "session_metadata",
        scopes: ("read:sessions", "update:sessions"),
        kept: session,
    };
    metadata_stays_bounded_data(&mut tally, &f, sessions).await;

    tessera_testkit::seed_refresh_family(
        store,
        (39, "metadatafamily"),
        (&victim, &f.server.spa_client_id),
        None,
    )
    .await;
    let family = || async {
        store
            .find_refresh_token("metadatafamily", tessera_testkit::now())
            .await
            .ok()
            .flatten()
            .map(|record| record.family.metadata)
    };
    let refresh_tokens = MetadataResource {
        path: "/refresh-tokens/metadatafamily",
        collection: "/refresh-tokens",
        key: "refresh_token_metadata",
        scopes: ("read:refresh_tokens", "update:refresh_tokens"),
        kept: family,
    };
    metadata_stays_bounded_data(&mut tally, &f, refresh_tokens).await;
    tally.finish();
}

/// `/sessions` and `/users/{id}/sessions`: one user's login sessions cannot be listed or
/// ended through another user's id, a pattern, a doctored session id or a checkpoint; the
/// answers never carry the cookie's value or hash; only `delete:sessions` ends one; and
/// what a browser claims about itself at sign-in is recorded as data, not trusted: a
/// forged `X-Forwarded-For` is not taken for its address (no proxy is trusted here), and
/// an outsize user agent is cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_reached_by_their_own_id_and_user_only() {
    let mut tally = Tally::new("management/sessions");
    let f = fixture().await;
    let server = &f.server;
    let store = &server.store;
    let victim =
        tessera_testkit::create_user(store, "victim@example.com", "a long enough passphrase 9")
            .await;
    let origin = tessera_store::SessionOrigin {
        ip: Some("198.51.100.7".into()),
        user_agent: Some("Victim's browser".into()),
    };
    tessera_testkit::seed_session(store, (7, "victims-session"), &victim, origin).await;
    let victim_intact = || async {
        store
            .find_session(&[7; 32], tessera_testkit::now())
            .await
            .ok()
            .flatten()
            .is_some()
    };
    let a = f.admin();
    let shows_victim = |body: &Value| body.to_string().contains("victims-session");

    for user_id in &hostile_user_ids(&victim) {
        let path = format!("/users/{}/sessions", encode(user_id));
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        tally.case(
            format_args!("GET {path} shows no other user's session"),
            matches!(status, 200 | 404) && !shows_victim(&body),
            format_args!("{status} {body}"),
        );
        let (status, body) = call(server, a, Method::DELETE, &path, None).await;
        tally.case(
            format_args!("DELETE {path} ends no other user's session"),
            matches!(status, 202 | 404) && victim_intact().await,
            format_args!("{status} {body}"),
        );
    }
    let mine = format!("{}/sessions", f.user_path);
    for from in ["victims-session", "", "%", "' OR '1'='1", "\u{0}"] {
        let path = format!("{mine}?from={}", encode(from));
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        tally.case(
            format_args!("a checkpoint of {from:?} stays within the user's own sessions"),
            matches!(status, 200 | 400) && !shows_victim(&body),
            format_args!("{status} {body}"),
        );
    }
    for id in [
        "*".to_string(),
        "%25".to_string(),
        "victims-session%20".to_string(),
        "VICTIMS-SESSION".to_string(),
        "..%2F..%2Fusers".to_string(),
        "x".repeat(5_000),
        encode(&b64(&[7; 32])),
    ] {
        let shown: String = id.chars().take(30).collect();
        let path = format!("/sessions/{id}");
        let (status, body) = call(server, a, Method::GET, &path, None).await;
        tally.case(
            format_args!("GET /sessions/{shown} finds nothing"),
            (400..=414).contains(&status) && !shows_victim(&body),
            format_args!("{status} {body}"),
        );
        for (method, path) in [
            (Method::DELETE, path.clone()),
            (Method::POST, format!("{path}/revoke")),
        ] {
            let (status, body) = call(server, a, method.clone(), &path, None).await;
            tally.case(
                format_args!("{method} /sessions/{shown}… ends nothing"),
                (400..=414).contains(&status) && victim_intact().await,
                format_args!("{status} {body}"),
            );
        }
    }

    let outsiders = f.outsiders("read:sessions", "delete:sessions").await;
    let victims_path = "/sessions/victims-session";
    for (what, token, expected) in outsiders.each() {
        for (method, path) in [
            (Method::DELETE, victims_path.to_string()),
            (Method::POST, format!("{victims_path}/revoke")),
        ] {
            let (status, body) = call(server, token, method.clone(), &path, None).await;
            tally.case(
                format_args!("{what} cannot {method} a session"),
                status == expected && victim_intact().await,
                format_args!("{status} {body}"),
            );
        }
    }
    let reader = outsiders.reader.as_str();
    let (status, shown) = call(server, Some(reader), Method::GET, victims_path, None).await;
    let text = shown.to_string();
    tally.case(
        "a session is shown without its cookie's value or hash",
        status == 200
            && shown["user_id"] == victim.as_str()
            && shown["device"]["initial_ip"] == "198.51.100.7"
            && !text.contains(&b64(&[7; 32]))
            && !text.contains("0707070707"),
        format_args!("{status} {shown}"),
    );

    // A browser that lies about itself at sign-in.
    let mut forged = reqwest::header::HeaderMap::new();
    forged.insert("x-forwarded-for", "203.0.113.66".parse().unwrap());
    forged.insert("forwarded", "for=203.0.113.67".parse().unwrap());
    let liar = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(forged)
        .user_agent(format!("<script>alert(1)</script>{}", "A".repeat(10_000)))
        .build()
        .unwrap();
    server.code_flow(&liar, "openid", None).await;
    let (status, listed) = call(server, a, Method::GET, &mine, None).await;
    let sessions = listed["sessions"].as_array().cloned().unwrap_or_default();
    // The user's other sessions (the outsiders' sign-in) say no user agent.
    let agent = sessions
        .iter()
        .find_map(|session| session["device"]["initial_user_agent"].as_str())
        .unwrap_or_default();
    tally.case(
        "a forged forwarding header is not taken for the browser's address",
        status == 200
            && !sessions.is_empty()
            && sessions
                .iter()
                .all(|session| session["device"]["initial_ip"] == "127.0.0.1")
            && !listed.to_string().contains("203.0.113."),
        format_args!("{status} {listed}"),
    );
    tally.case(
        "an outsize user agent is recorded cut short, as text",
        agent.starts_with("<script>") && agent.chars().count() <= 256,
        format_args!("{} characters", agent.chars().count()),
    );

    // Ending the seeded user's sessions leaves the victim's; the victim's by id ends it.
    let (status, _) = call(server, a, Method::DELETE, &mine, None).await;
    tally.case(
        "ending one user's sessions ends theirs only",
        status == 202 && victim_intact().await,
        format_args!("{status}"),
    );
    let (status, _) = call(
        server,
        a,
        Method::POST,
        &format!("{victims_path}/revoke"),
        None,
    )
    .await;
    tally.case(
        "revoking a session by id ends it",
        status == 202 && !victim_intact().await,
        format_args!("{status}"),
    );
    tally.finish();
}
