//! Actions and Rules in the flows they belong to: post-login shapes the tokens of a
//! sign-in and of every refresh, credentials-exchange those of client credentials,
//! pre-user-registration decides a sign-up; a denial or a failure stops the flow, and a
//! claim an action may not set never reaches a token.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::*;

const SCOPES: &[&str] = &[
    "read:actions",
    "create:actions",
    "update:actions",
    "read:rules",
    "create:rules",
    "update:rules",
    "update:rules_configs",
];

pub(crate) async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    server.management_call(token, method, path, body).await
}

/// Creates, deploys and binds (alone) the action `name` on `trigger`. Returns a Management API
/// token taken before the binding, so a credentials-exchange action cannot stand in its way.
pub(crate) async fn bind(server: &TestServer, trigger: &str, name: &str, code: &str) -> String {
    let token = server.management_token(SCOPES).await;
    let secrets = [("GREETING", "hello from a secret")];
    let id = server
        .deploy_action(&token, (trigger, name), code, &secrets)
        .await;
    server.bind_actions(&token, trigger, &[id]).await;
    token
}

/// An /authorize URL for a code with PKCE, as the SPA sends it.
fn code_url(server: &TestServer) -> String {
    let pkce = pkce();
    server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
}

pub(crate) fn payload(token: &str) -> Value {
    use base64::Engine;
    let middle = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(middle)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

const SHAPING: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  api.accessToken.setCustomClaim('https://example.com/email', event.user.email);
  api.accessToken.setCustomClaim('https://example.com/client', event.client.client_id);
  api.accessToken.setCustomClaim('https://example.com/greeting', event.secrets.GREETING);
  api.accessToken.setCustomClaim('https://example.com/protocol', event.transaction.protocol);
  api.idToken.setCustomClaim('https://example.com/plan', 'gold');
  // Claims Tessera decides are not an action's to set.
  api.accessToken.setCustomClaim('sub', 'someone-else');
  api.accessToken.setCustomClaim('aud', 'https://elsewhere/');
  api.idToken.setCustomClaim('iss', 'https://evil.example/');
  api.accessToken.removeScope('write:messages');
  api.user.setAppMetadata('logins_seen', true);
};
"#;

#[tokio::test]
async fn post_login_shapes_the_tokens_and_runs_again_on_refresh() {
    let server = spawn().await;
    bind(&server, "post-login", "shaping", SHAPING).await;
    let tokens = server
        .code_flow(
            &browser(),
            "openid profile offline_access read:messages write:messages",
            Some(API),
        )
        .await;
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(
        access["https://example.com/email"],
        json!(server.user_email)
    );
    assert_eq!(
        access["https://example.com/client"],
        json!(server.spa_client_id)
    );
    assert_eq!(
        access["https://example.com/greeting"],
        "hello from a secret"
    );
    assert_eq!(access["https://example.com/protocol"], "oidc-basic-profile");
    assert_eq!(access["sub"], json!(server.user_id), "sub stays the user's");
    let audiences = access["aud"].to_string();
    assert!(
        audiences.contains(API) && !audiences.contains("elsewhere"),
        "{audiences}"
    );
    let scope = access["scope"].as_str().unwrap();
    assert!(
        scope.contains("read:messages") && !scope.contains("write:messages"),
        "{scope}"
    );
    assert!(!tokens["scope"].as_str().unwrap().contains("write:messages"));

    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    assert_eq!(id["https://example.com/plan"], "gold");
    assert_eq!(id["iss"], json!(server.issuer));
    assert!(id.get("https://example.com/email").is_none(), "{id}");

    let user = server
        .store
        .find_user(&server.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.app_metadata["logins_seen"], true);

    // A refresh runs post-login again, with the refresh's protocol.
    let (status, refreshed) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let access = payload(refreshed["access_token"].as_str().unwrap());
    assert_eq!(
        access["https://example.com/protocol"],
        "oauth2-refresh-token"
    );
    assert_eq!(
        access["https://example.com/email"],
        json!(server.user_email)
    );
    assert!(!access["scope"].as_str().unwrap().contains("write:messages"));
}

#[tokio::test]
async fn a_post_login_denial_reaches_the_application_and_issues_nothing() {
    let server = spawn().await;
    bind(
        &server,
        "post-login",
        "audit",
        "exports.onExecutePostLogin = async (event, api) => {\n  if (event.user.email.endsWith('@example.com')) api.access.deny('Not during the audit');\n};",
    )
    .await;
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st8"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let back = server.sign_in(&browser(), &url).await;
    assert!(back.starts_with(CALLBACK), "{back}");
    let params = params_of(&back);
    assert_eq!(params["error"], "access_denied", "{back}");
    assert_eq!(params["error_description"], "Not during the audit");
    assert_eq!(params["state"], "st8");
    assert!(!params.contains_key("code"), "{back}");
}

#[tokio::test]
async fn an_action_that_throws_fails_the_login_closed_without_saying_why() {
    let server = spawn().await;
    bind(
        &server,
        "post-login",
        "broken",
        "exports.onExecutePostLogin = async () => { throw new Error('db password is hunter2'); };",
    )
    .await;
    let back = server.sign_in(&browser(), &code_url(&server)).await;
    let params = params_of(&back);
    assert_eq!(params["error"], "access_denied", "{back}");
    assert!(!back.contains("hunter2"), "{back}");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn credentials_exchange_adds_claims_and_may_refuse() {
    let server = spawn().await;
    // The action looks for the client's secret anywhere in what it is given.
    let code = format!(
        "exports.onExecuteCredentialsExchange = async (event, api) => {{\n  if (JSON.stringify(event).includes('{}')) api.accessToken.setCustomClaim('https://example.com/leak', 'secret seen');\n  api.accessToken.setCustomClaim('https://example.com/aud', event.resource_server.identifier);\n  api.accessToken.setCustomClaim('scope', 'everything');\n}};",
        server.m2m_secret
    );
    bind(&server, "credentials-exchange", "machines", &code).await;
    let http = reqwest::Client::new();
    let (status, body) = client_credentials(
        &http,
        &server.base,
        &server.m2m_client_id,
        &server.m2m_secret,
        API,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["https://example.com/aud"], API);
    assert!(
        claims.get("https://example.com/leak").is_none(),
        "the secret reached the action: {claims}"
    );
    assert_ne!(claims["scope"], "everything");

    // A refusal with one of Auth0's codes reaches the client with its status.
    bind(
        &server,
        "credentials-exchange",
        "machines-closed",
        "exports.onExecuteCredentialsExchange = async (event, api) => { api.access.deny('invalid_scope', 'Not this one'); };",
    )
    .await;
    let (status, body) = client_credentials(
        &http,
        &server.base,
        &server.m2m_client_id,
        &server.m2m_secret,
        API,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    assert_eq!(body["error_description"], "Not this one");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn pre_user_registration_may_refuse_a_sign_up_or_add_metadata() {
    let server = spawn().await;
    bind(
        &server,
        "pre-user-registration",
        "registration",
        "exports.onExecutePreUserRegistration = async (event, api) => {\n  if (event.user.email.endsWith('@blocked.test')) api.access.deny('blocked domain', 'Sign-ups from this domain are closed.');\n  api.user.setUserMetadata('source', 'signup-' + event.client.client_id);\n};",
    )
    .await;
    let sign_up = |email: &'static str| {
        let server = &server;
        async move {
            let response = reqwest::Client::new()
                .post(server.url("/dbconnections/signup"))
                .json(&json!({
                    "client_id": server.spa_client_id,
                    "connection": "Username-Password-Authentication",
                    "email": email,
                    "password": "a long new passphrase 4",
                }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (status, body) = sign_up("someone@blocked.test").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("extensibility_error")
            && body.contains("Sign-ups from this domain are closed."),
        "{body}"
    );
    assert!(
        !body.contains("blocked domain"),
        "the reason is for the log: {body}"
    );
    assert!(
        server
            .store
            .find_user_by_email("someone@blocked.test")
            .await
            .unwrap()
            .is_none()
    );

    let (status, body) = sign_up("someone@welcome.test").await;
    assert_eq!(status, 200, "{body}");
    let user = server
        .store
        .find_user_by_email("someone@welcome.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        user.user_metadata["source"],
        json!(format!("signup-{}", server.spa_client_id))
    );
}

#[tokio::test]
async fn rules_run_before_actions_with_their_configuration() {
    let server = spawn().await;
    let token = bind(
        &server,
        "post-login",
        "after-rules",
        "exports.onExecutePostLogin = async (event, api) => { api.accessToken.setCustomClaim('https://example.com/after', 'action'); };",
    )
    .await;
    call(
        &server,
        &token,
        Method::PUT,
        "/rules-configs/TIER",
        json!({"value": "platinum"}),
    )
    .await;
    call(
        &server,
        &token,
        Method::POST,
        "/rules",
        json!({
            "name": "tier",
            "script": "function (user, context, callback) {\n  context.accessToken['https://example.com/tier'] = configuration.TIER;\n  if (user.email === 'nobody@example.com') return callback(new UnauthorizedError('no'));\n  callback(null, user, context);\n}",
        }),
    )
    .await;
    let tokens = server.code_flow(&browser(), "openid", Some(API)).await;
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(access["https://example.com/tier"], "platinum");
    assert_eq!(access["https://example.com/after"], "action");

    // A Rule's UnauthorizedError denies like api.access.deny.
    call(
        &server,
        &token,
        Method::POST,
        "/rules",
        json!({
            "name": "audit",
            "script": "function (user, context, callback) { callback(new UnauthorizedError('Closed for the audit')); }",
        }),
    )
    .await;
    let params = params_of(&server.sign_in(&browser(), &code_url(&server)).await);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["error_description"], "Closed for the audit");
}

#[tokio::test]
async fn a_hundred_logins_are_served_while_one_is_held_by_an_endless_action() {
    // The hundred sign in as one user from one address, at once: neither throttle is tested here.
    let server = spawn_with(|config| {
        config.login_attempts_per_minute = 1_000;
        config.max_login_failures = 1_000;
    })
    .await;
    create_user(&server.store, "stuck@example.com", PASSWORD).await;
    bind(
        &server,
        "post-login",
        "stuck for one user",
        "exports.onExecutePostLogin = async (event, api) => {\n  if (event.user.email === 'stuck@example.com') { while (true) {} }\n  api.accessToken.setCustomClaim('https://example.com/served', true);\n};",
    )
    .await;
    let sign_in_as = |email: String| {
        let server = &server;
        async move {
            let browser = browser();
            let login = location(&browser.get(code_url(server)).send().await.unwrap());
            params_of(&sign_in_at(&browser, &server.base, &login, &email, PASSWORD).await)
        }
    };
    let stuck = sign_in_as("stuck@example.com".into());
    let others =
        futures_util::future::join_all((0..100).map(|_| sign_in_as(server.user_email.clone())));
    let (stuck, others) = tokio::join!(stuck, others);
    assert_eq!(
        stuck.get("error").map(String::as_str),
        Some("access_denied"),
        "{stuck:?}"
    );
    let served = others.iter().filter(|p| p.contains_key("code")).count();
    assert_eq!(
        served,
        100,
        "{:?}",
        others.iter().find(|p| !p.contains_key("code"))
    );
}

#[tokio::test]
async fn post_login_sees_the_users_second_factors() {
    let server = spawn().await;
    bind(
        &server,
        "post-login",
        "factors",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.idToken.setCustomClaim('https://example.com/factors', event.user.enrolledFactors);\n  api.idToken.setCustomClaim('https://example.com/providers', event.user.multifactor);\n};",
    )
    .await;
    let seen = |tokens: Value| {
        let id_token = payload(tokens["id_token"].as_str().unwrap());
        (
            id_token["https://example.com/factors"].clone(),
            id_token["https://example.com/providers"].clone(),
        )
    };
    let none = seen(server.code_flow(&browser(), "openid", None).await);
    assert_eq!(none, (json!([]), json!([])));

    // An enrollment not yet confirmed is no factor.
    let store = &server.store;
    let user = server.user_id.as_str();
    store
        .begin_totp_enrollment(user, "totp|dev_actions", b"sealed seed", now())
        .await
        .unwrap();
    let unconfirmed = seen(server.code_flow(&browser(), "openid", None).await);
    assert_eq!(unconfirmed, (json!([]), json!([])));

    let recovery = ("recovery-code|dev_actions", &b"a recovery code's hash"[..]);
    assert!(
        store
            .confirm_totp(user, "totp|dev_actions", 1, recovery, now())
            .await
            .unwrap()
    );
    let (factors, providers) = seen(server.code_flow(&browser(), "openid", None).await);
    let mut types: Vec<&str> = factors
        .as_array()
        .unwrap()
        .iter()
        .map(|factor| factor["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["otp", "recovery-code"], "Auth0's names: {factors}");
    assert_eq!(providers, json!(["guardian"]));
}

/// Revokes the refresh token of an exchange whose body says it is risky (the parameter
/// stands in for a real signal, such as the address changing); tells what it saw.
const REVOKING: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  if (!event.refresh_token) {
    api.idToken.setCustomClaim('https://example.com/had_refresh_token', false);
    return;
  }
  if (event.request.body.risk === 'high') {
    api.refreshToken.revoke('Risky refresh from ' + event.request.ip);
    return;
  }
  api.accessToken.setCustomClaim('https://example.com/refresh_token', event.refresh_token);
  api.accessToken.setCustomClaim('https://example.com/request', {
    query: event.request.query,
    body: event.request.body,
  });
};
"#;

#[tokio::test]
async fn post_login_sees_the_refresh_token_and_may_revoke_it() {
    let server = spawn().await;
    bind(&server, "post-login", "revoking", REVOKING).await;
    let tokens = server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id["https://example.com/had_refresh_token"], false,
        "a sign-in has no event.refresh_token"
    );
    let first = tokens["refresh_token"].as_str().unwrap();

    // A plain refresh: the action sees the token's family.
    let (status, refreshed) = server.refresh(first).await;
    assert_eq!(status, 200, "{refreshed}");
    let seen =
        payload(refreshed["access_token"].as_str().unwrap())["https://example.com/refresh_token"]
            .clone();
    assert_eq!(seen["client_id"], json!(server.spa_client_id), "{seen}");
    assert_eq!(seen["user_id"], json!(server.user_id), "{seen}");
    assert_eq!(seen["rotating"], true, "{seen}");
    assert_eq!(
        seen["resource_servers"],
        json!([{"audience": API, "scopes": "openid offline_access read:messages"}]),
        "{seen}"
    );
    assert!(
        seen["id"].as_str().is_some_and(|id| !id.is_empty()) && seen["session_id"].is_string(),
        "{seen}"
    );
    for field in ["created_at", "expires_at"] {
        let at = seen[field].as_str().unwrap_or_default();
        assert!(at.ends_with('Z') && at.len() == 24, "{field}: {seen}");
    }
    assert!(seen["created_at"].as_str() < seen["expires_at"].as_str());
    // The form, without the token, is the request's body — and its query, as before.
    let request =
        payload(refreshed["access_token"].as_str().unwrap())["https://example.com/request"].clone();
    assert_eq!(request["body"]["grant_type"], "refresh_token", "{request}");
    assert!(request["body"].get("refresh_token").is_none(), "{request}");
    assert_eq!(request["query"], request["body"], "{request}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_string();

    // The next exchange is risky: refused, and the token is revoked with its family.
    let (status, refused) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", &second),
            ("risk", "high"),
        ])
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "access_denied");
    assert_eq!(refused["error_description"], "Risky refresh from 127.0.0.1");
    assert!(refused.get("access_token").is_none());
    for token in [second.as_str(), first] {
        let (status, body) = server.refresh(token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }

    // The audit log has the revocation, with its reason.
    let logs_token = server.management_token(&["read:logs"]).await;
    let logs = call(
        &server,
        &logs_token,
        Method::GET,
        "/logs?q=type:srrt",
        Value::Null,
    )
    .await;
    let events = logs.as_array().expect("a list of events");
    assert_eq!(events.len(), 1, "{logs}");
    assert_eq!(events[0]["client_id"], json!(server.spa_client_id));
    assert_eq!(events[0]["user_id"], json!(server.user_id));
    assert_eq!(
        events[0]["details"]["reason"],
        "Risky refresh from 127.0.0.1"
    );
    assert_eq!(events[0]["details"]["refresh_token_id"], seen["id"]);
}

/// Shortens the refresh token's life: an hour for the family and ten minutes idle at
/// sign-in; at a refresh that asks it, half an hour for the family and an idle end already
/// past for the new token.
const SHORTENING: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  if (!event.refresh_token) {
    api.refreshToken.setExpiresAt(Date.now() + 3600 * 1000);
    api.refreshToken.setIdleExpiresAt(Date.now() + 600 * 1000);
  } else if (event.request.body.shorten === 'yes') {
    api.refreshToken.setExpiresAt(Date.now() + 1800 * 1000);
    api.refreshToken.setIdleExpiresAt(Date.now() - 1000);
  }
};
"#;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn post_login_may_shorten_the_refresh_tokens_life() {
    let server = spawn().await;
    bind(&server, "post-login", "shortening", SHORTENING).await;
    let tokens = server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let now = unix_now();
    let (family, ends) = server
        .store
        .live_refresh_token(&tessera_core::ids::secret_hash(first), now)
        .await
        .unwrap()
        .expect("a live token");
    assert!(
        (now + 3600 - 60..=now + 3600).contains(&family.expires_at),
        "the family ends in an hour, not the settings' days: {} (now {now})",
        family.expires_at
    );
    assert!(
        (now + 600 - 60..=now + 600).contains(&ends),
        "idle in ten minutes: {ends} (now {now})"
    );

    // A plain refresh: the settings' idle time again, the family's end kept.
    let (status, refreshed) = server.refresh(first).await;
    assert_eq!(status, 200, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_string();
    let (family, _) = server
        .store
        .live_refresh_token(&tessera_core::ids::secret_hash(&second), unix_now())
        .await
        .unwrap()
        .expect("a live token");
    assert!(family.expires_at <= now + 3600, "{}", family.expires_at);

    // A refresh that shortens: the family ends in half an hour, the new token is idle at once.
    let (status, shortened) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", &second),
            ("shorten", "yes"),
        ])
        .await;
    assert_eq!(status, 200, "{shortened}");
    let third = shortened["refresh_token"].as_str().unwrap();
    let family = server
        .store
        .find_refresh_family(&tessera_core::ids::secret_hash(third), unix_now())
        .await
        .unwrap()
        .expect("the family");
    assert!(
        (now + 1800 - 60..=now + 1800 + 60).contains(&family.expires_at),
        "{} (now {now})",
        family.expires_at
    );
    let (status, body) = server.refresh(third).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the new token went idle at once: {body}"
    );
}

#[tokio::test]
async fn post_login_sees_the_browsers_session_and_a_refresh_none() {
    let server = spawn().await;
    let code = r#"
exports.onExecutePostLogin = async (event, api) => {
  const session = event.session;
  api.idToken.setCustomClaim('https://example.com/session', session ? {
    id: session.id,
    user_id: session.user_id,
    authenticated_at: session.authenticated_at,
    methods: session.authentication.methods.map((m) => m.name),
    initial_ip: session.device.initial_ip,
  } : null);
  api.accessToken.setCustomClaim('https://example.com/has_session', Boolean(session));
};
"#;
    bind(&server, "post-login", "session", code).await;
    let tokens = server
        .code_flow(&browser(), "openid offline_access", Some(API))
        .await;
    let id = payload(tokens["id_token"].as_str().unwrap());
    let seen = &id["https://example.com/session"];
    assert_eq!(seen["id"], id["sid"], "{seen}");
    assert_eq!(seen["user_id"], json!(server.user_id));
    assert_eq!(seen["methods"], json!(["pwd"]));
    assert_eq!(seen["initial_ip"], "127.0.0.1");
    let authenticated = seen["authenticated_at"].as_str().unwrap();
    assert!(
        authenticated.ends_with('Z') && authenticated.contains('T'),
        "{seen}"
    );
    // A refresh is no browser's sign-in: no session there, as on Auth0.
    let (status, refreshed) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let access = payload(refreshed["access_token"].as_str().unwrap());
    assert_eq!(access["https://example.com/has_session"], false);
}

/// `/authorize` with `prompt=none` in `browser`: the application's answer.
async fn silently(
    server: &TestServer,
    browser: &reqwest::Client,
) -> std::collections::HashMap<String, String> {
    let response = browser
        .get(code_url(server) + "&prompt=none&state=s")
        .send()
        .await
        .unwrap();
    params_of(&location(&response))
}

#[tokio::test]
async fn post_login_may_end_the_browsers_session_with_or_without_its_refresh_tokens() {
    let server = spawn().await;
    // Two browsers signed in before the action, each with a refresh token of its session.
    let (keeping, ending) = (browser(), browser());
    let mut refresh = Vec::new();
    for browser in [&keeping, &ending] {
        let tokens = server
            .code_flow(browser, "openid offline_access", Some(API))
            .await;
        refresh.push(tokens["refresh_token"].as_str().unwrap().to_string());
    }
    let revoking = |keep: bool| {
        format!(
            "exports.onExecutePostLogin = async (event, api) => {{\n\
             if (event.transaction.protocol !== 'oauth2-refresh-token')\n\
             api.session.revoke('risky sign-in', {{ preserveRefreshTokens: {keep} }});\n}};"
        )
    };
    for (n, (browser, keep)) in [(&keeping, true), (&ending, false)].into_iter().enumerate() {
        bind(
            &server,
            "post-login",
            &format!("revoking-{n}"),
            &revoking(keep),
        )
        .await;
        let answer = silently(&server, browser).await;
        assert_eq!(
            answer.get("error").map(String::as_str),
            Some("access_denied"),
            "{answer:?}"
        );
        assert_eq!(answer["error_description"], "risky sign-in");
        assert!(!answer.contains_key("code"));
        // The session is over: the browser signs in again.
        assert!(!server.signs_in_silently(browser).await);
        let (status, body) = server.refresh(&refresh[n]).await;
        assert_eq!(
            status == 200,
            keep,
            "preserveRefreshTokens {keep}: {status} {body}"
        );
    }
}

/// Shortens the browser's session: over in an hour however it is used, and in ten minutes
/// unless used before; asked with `login_hint=past`, an end already past.
const SHORTENING_THE_SESSION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  if (event.request.query.login_hint === 'past') {
    api.session.setExpiresAt(Date.now() - 1000);
  } else {
    api.session.setExpiresAt(Date.now() + 3600 * 1000);
    api.session.setIdleExpiresAt(Date.now() + 600 * 1000);
  }
};
"#;

#[tokio::test]
async fn post_login_may_shorten_the_browsers_session() {
    let server = spawn().await;
    bind(
        &server,
        "post-login",
        "short-session",
        SHORTENING_THE_SESSION,
    )
    .await;
    let (shortened, untouched) = (browser(), browser());
    let tokens = server
        .code_flow(&shortened, "openid offline_access", Some(API))
        .await;
    let sid = payload(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let now = unix_now();
    let session = |sid: String| {
        let store = server.store.clone();
        async move {
            let now = unix_now();
            store
                .find_session_by_sid(&sid, (now, now - 365 * 86_400))
                .await
                .unwrap()
                .map(|details| details.session)
        }
    };
    let found = session(sid.clone()).await.expect("a live session");
    let ends_by = found.ends_by.expect("an end the action allowed");
    assert!(
        (now + 3600 - 60..=now + 3600).contains(&ends_by),
        "over in an hour, not the settings' days: {ends_by} (now {now})"
    );
    assert!(
        (now + 600 - 60..=now + 600).contains(&found.expires_at),
        "idle in ten minutes: {} (now {now})",
        found.expires_at
    );
    // The Management API shows both ends.
    let admin = server.management_token(&["read:sessions"]).await;
    let (status, shown) = server
        .management_request(&admin, "GET", &format!("/sessions/{sid}"))
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["expires_at"],
        json!(tessera_core::claims::rfc3339(ends_by))
    );
    assert_eq!(
        shown["idle_expires_at"],
        json!(tessera_core::claims::rfc3339(found.expires_at))
    );

    // Used again (the action asks the same ends a little later): never past the first.
    assert!(server.signs_in_silently(&shortened).await);
    let used = session(sid.clone()).await.expect("still live");
    assert_eq!(used.ends_by, Some(ends_by), "the earliest end holds");
    assert!(used.expires_at <= ends_by);
    // A refresh has no session: the action's session calls change nothing there.
    let (status, body) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(session(sid.clone()).await.unwrap().ends_by, Some(ends_by));

    // An end already past: the login completes, and the session is over.
    let answer = shortened
        .get(code_url(&server) + "&prompt=none&state=s&login_hint=past")
        .send()
        .await
        .unwrap();
    assert!(params_of(&location(&answer)).contains_key("code"));
    assert!(session(sid.clone()).await.is_none());
    assert!(!server.signs_in_silently(&shortened).await);
    // Another browser's session of the same user lives on as the settings say.
    server.code_flow(&untouched, "openid", Some(API)).await;
    assert!(server.signs_in_silently(&untouched).await);
}

/// Counts a session's logins in its metadata and notes which keys it saw; asked with
/// `login_hint=forget`, clears it all.
const COUNTING_IN_THE_SESSION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const seen = (event.session && event.session.metadata) || {};
  api.session.setMetadata('logins', String(Number(seen.logins || '0') + 1));
  api.session.setMetadata('seen', Object.keys(seen).sort().join(','));
  if (event.request.query.login_hint === 'forget') api.session.evictMetadata();
};
"#;

#[tokio::test]
async fn post_login_keeps_metadata_on_the_browsers_session() {
    let server = spawn().await;
    bind(&server, "post-login", "counting", COUNTING_IN_THE_SESSION).await;
    let browser = browser();
    let tokens = server
        .code_flow(&browser, "openid offline_access", Some(API))
        .await;
    let sid = payload(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = server
        .management_token(&["read:sessions", "update:sessions"])
        .await;
    let metadata = || {
        let (server, admin, sid) = (&server, admin.clone(), sid.clone());
        async move {
            let (status, shown) = server
                .management_request(&admin, "GET", &format!("/sessions/{sid}"))
                .await;
            assert_eq!(status, 200, "{shown}");
            shown["session_metadata"].clone()
        }
    };
    assert_eq!(metadata().await, json!({"logins": "1", "seen": ""}));
    // The next login of the same browser sees what the last one left.
    assert!(server.signs_in_silently(&browser).await);
    assert_eq!(
        metadata().await,
        json!({"logins": "2", "seen": "logins,seen"})
    );
    // An administrator replaces it; the next login sees theirs.
    server
        .management_call(
            &admin,
            Method::PATCH,
            &format!("/sessions/{sid}"),
            json!({"session_metadata": {"org": "acme"}}),
        )
        .await;
    assert!(server.signs_in_silently(&browser).await);
    assert_eq!(
        metadata().await,
        json!({"logins": "1", "org": "acme", "seen": "org"})
    );
    // A refresh has no session: nothing written.
    let (status, body) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        metadata().await,
        json!({"logins": "1", "org": "acme", "seen": "org"})
    );
    // Evicted: nothing left.
    let answer = browser
        .get(code_url(&server) + "&prompt=none&state=s&login_hint=forget")
        .send()
        .await
        .unwrap();
    assert!(params_of(&location(&answer)).contains_key("code"));
    assert_eq!(metadata().await, json!({}));
}

/// Notes the device a refresh token was issued to and counts its exchanges in its
/// metadata.
const COUNTING_ON_THE_REFRESH_TOKEN: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const shown = event.refresh_token ? event.refresh_token.metadata : null;
  if (shown) {
    api.refreshToken.setMetadata('exchanges', String(Number(shown.exchanges || '0') + 1));
  } else {
    api.refreshToken.setMetadata('device', event.request.user_agent || 'none').refreshToken.setMetadata('exchanges', '0');
  }
};
"#;

#[tokio::test]
async fn post_login_keeps_metadata_on_the_refresh_token() {
    let server = spawn().await;
    bind(
        &server,
        "post-login",
        "counting",
        COUNTING_ON_THE_REFRESH_TOKEN,
    )
    .await;
    let agent = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Phone/1.0")
        .build()
        .unwrap();
    let tokens = server
        .code_flow(&agent, "openid offline_access", Some(API))
        .await;
    let admin = server
        .management_token(&[
            "read:refresh_tokens",
            "update:refresh_tokens",
            "delete:refresh_tokens",
        ])
        .await;
    let user: String = form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let (status, listed) = server
        .management_request(&admin, "GET", &format!("/users/{user}/refresh-tokens"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let id = listed["tokens"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/refresh-tokens/{id}");
    let metadata = || {
        let (server, admin, path) = (&server, admin.clone(), path.clone());
        async move {
            let (status, shown) = server.management_request(&admin, "GET", &path).await;
            assert_eq!(status, 200, "{shown}");
            assert!(shown.get("metadata").is_none(), "{shown}");
            shown["refresh_token_metadata"].clone()
        }
    };
    assert_eq!(
        listed["tokens"][0]["refresh_token_metadata"],
        json!({"device": "Phone/1.0", "exchanges": "0"}),
        "written on the token the login issued"
    );
    // Each exchange sees what the last one left.
    let mut token = tokens["refresh_token"].as_str().unwrap().to_string();
    for exchanges in ["1", "2"] {
        let (status, body) = server.refresh(&token).await;
        assert_eq!(status, 200, "{body}");
        token = body["refresh_token"].as_str().unwrap().to_string();
        assert_eq!(
            metadata().await,
            json!({"device": "Phone/1.0", "exchanges": exchanges})
        );
    }
    // An administrator replaces it; the next exchange sees theirs.
    let replaced = server
        .management_call(
            &admin,
            Method::PATCH,
            &path,
            json!({"refresh_token_metadata": {"device": "Laptop"}}),
        )
        .await;
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(
        replaced["refresh_token_metadata"],
        json!({"device": "Laptop"})
    );
    let (status, body) = server.refresh(&token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        metadata().await,
        json!({"device": "Laptop", "exchanges": "1"})
    );
    // Revoked: nothing more is written.
    let (status, _) = server.management_request(&admin, "DELETE", &path).await;
    assert_eq!(status, 202);
    let (status, body) = server.management_request(&admin, "PATCH", &path).await;
    assert!(matches!(status, 404 | 415), "{status} {body}");
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2{path}")))
        .bearer_auth(&admin)
        .json(&json!({"refresh_token_metadata": {"device": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn post_login_sees_the_applications_own_authorize_parameters() {
    let server = spawn().await;
    bind(
        &server,
        "post-login",
        "query",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.idToken.setCustomClaim('https://example.com/query', event.request.query);\n};",
    )
    .await;
    let pkce = pkce();
    let url = |invitation: &str| {
        server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("ext-campaign", "spring"),
            ("invitation", invitation),
            ("client_secret", "never-shown"),
            ("ui_locales", "fr"),
        ])
    };
    // Through the login page (the request kept in the login's transaction), then silently
    // with the session (the request read at once): the same parameters either way.
    let browser = browser();
    for invitation in ["first", "second"] {
        let back = server.sign_in(&browser, &url(invitation)).await;
        let code = params_of(&back)["code"].clone();
        let (status, tokens) = server.redeem(&code, &pkce.verifier).await;
        assert_eq!(status, 200, "{tokens}");
        let query = &payload(tokens["id_token"].as_str().unwrap())["https://example.com/query"];
        assert_eq!(query["ext-campaign"], "spring", "{query}");
        assert_eq!(query["invitation"], invitation, "{query}");
        assert_eq!(query["ui_locales"], "fr", "{query}");
        assert_eq!(query["code_challenge_method"], "S256", "{query}");
        assert_eq!(query["client_id"], json!(server.spa_client_id), "{query}");
        assert!(query.get("client_secret").is_none(), "{query}");
        assert!(!query.to_string().contains("never-shown"), "{query}");
    }
}

#[tokio::test]
async fn session_revoke_where_there_is_no_session_fails_the_refresh_closed() {
    let server = spawn().await;
    let tokens = server
        .code_flow(&browser(), "openid offline_access", Some(API))
        .await;
    let code =
        "exports.onExecutePostLogin = async (event, api) => { api.session.revoke('no session'); };";
    bind(&server, "post-login", "revoking", code).await;
    let (status, body) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.to_string().contains("no session"), "{body}");
}
