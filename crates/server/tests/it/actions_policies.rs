//! The policies teams run on Auth0, written as Auth0's documentation writes them — as
//! Actions and as the Rules they replace — run unmodified: roles into both tokens under a
//! namespace, only verified emails of allowed domains, app_metadata into claims, an
//! audience denied to one application, a machine denied by its metadata.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::*;

use crate::actions::{bind, call};

const NAMESPACE: &str = "https://my-app.example.com";

const ROLES_ACTION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://my-app.example.com';
  if (event.authorization) {
    api.idToken.setCustomClaim(`${namespace}/roles`, event.authorization.roles);
    api.accessToken.setCustomClaim(`${namespace}/roles`, event.authorization.roles);
  }
};
"#;

const VERIFIED_DOMAINS_ACTION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  if (!event.user.email_verified) {
    api.access.deny('Please verify your email before logging in.');
    return;
  }
  const whitelist = ['example.com', 'example.org'];
  const userHasAccess = whitelist.some(function (domain) {
    const emailSplit = event.user.email.split('@');
    return emailSplit[emailSplit.length - 1].toLowerCase() === domain;
  });
  if (!userHasAccess) {
    api.access.deny('Access denied.');
  }
};
"#;

const METADATA_ACTION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://my-app.example.com';
  const { plan, support_tier } = event.user.app_metadata;
  if (plan) {
    api.idToken.setCustomClaim(`${namespace}/plan`, plan);
    api.accessToken.setCustomClaim(`${namespace}/plan`, plan);
  }
  if (support_tier) api.idToken.setCustomClaim(`${namespace}/support_tier`, support_tier);
};
"#;

const AUDIENCE_ACTION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  if (event.client.metadata.restricted === 'true' &&
      event.resource_server && event.resource_server.identifier === 'https://quickstarts/api') {
    api.access.deny(`Access to ${event.resource_server.identifier} is not allowed for ${event.client.name}`);
  }
};
"#;

const MACHINE_ACTION: &str = r#"
exports.onExecuteCredentialsExchange = async (event, api) => {
  if (event.client.metadata.blocked === 'true') {
    api.access.deny('invalid_request', `Client ${event.client.client_id} is blocked.`);
  }
};
"#;

const ROLES_RULE: &str = r#"function (user, context, callback) {
  const namespace = 'https://my-app.example.com';
  const assignedRoles = (context.authorization || {}).roles;
  let idTokenClaims = context.idToken || {};
  let accessTokenClaims = context.accessToken || {};
  idTokenClaims[`${namespace}/roles`] = assignedRoles;
  accessTokenClaims[`${namespace}/roles`] = assignedRoles;
  context.idToken = idTokenClaims;
  context.accessToken = accessTokenClaims;
  callback(null, user, context);
}"#;

const VERIFIED_RULE: &str = r#"function emailVerified(user, context, callback) {
  if (!user.email_verified) {
    return callback(new UnauthorizedError('Please verify your email before logging in.'));
  } else {
    return callback(null, user, context);
  }
}"#;

const METADATA_RULE: &str = r#"function (user, context, callback) {
  const namespace = 'https://my-app.example.com/';
  user.app_metadata = user.app_metadata || {};
  context.idToken[namespace + 'plan'] = user.app_metadata.plan;
  callback(null, user, context);
}"#;

const AUDIENCE_RULE: &str = r#"function (user, context, callback) {
  const audience = context.request.query.audience || '';
  if (context.clientMetadata.restricted === 'true' && audience === 'https://quickstarts/api') {
    return callback(new UnauthorizedError('Access to this API is not allowed for ' + context.clientName));
  }
  callback(null, user, context);
}"#;

const MANAGEMENT_SCOPES: &[&str] = &[
    "create:roles",
    "update:roles",
    "update:users",
    "update:users_app_metadata",
    "update:clients",
    "create:rules",
    "update:rules",
];

/// Gives the quickstart user the role "editor" and app_metadata, and adds an unverified user
/// and one of another domain. Returns a Management API token.
async fn tenant(server: &TestServer) -> String {
    let token = server.management_token(MANAGEMENT_SCOPES).await;
    let role = call(
        server,
        &token,
        Method::POST,
        "/roles",
        json!({"name": "editor"}),
    )
    .await;
    call(
        server,
        &token,
        Method::POST,
        &format!("/roles/{}/users", role["id"].as_str().unwrap()),
        json!({"users": [server.user_id]}),
    )
    .await;
    call(
        server,
        &token,
        Method::PATCH,
        &format!("/users/{}", encoded(&server.user_id)),
        json!({"app_metadata": {"plan": "gold", "support_tier": 2}}),
    )
    .await;
    let unverified = create_user(&server.store, "new@example.com", PASSWORD).await;
    call(
        server,
        &token,
        Method::PATCH,
        &format!("/users/{}", encoded(&unverified)),
        json!({"email_verified": false}),
    )
    .await;
    create_user(&server.store, "someone@elsewhere.test", PASSWORD).await;
    token
}

fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `email` signs in to the SPA for the quickstart API: Ok(the verified access and ID
/// tokens' claims) or Err(error_description).
async fn sign_in_as(server: &TestServer, email: &str) -> Result<(Value, Value), String> {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("audience", API),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let browser = browser();
    let login = location(&browser.get(&url).send().await.unwrap());
    let back = sign_in_at(&browser, &server.base, &login, email, PASSWORD).await;
    let params = params_of(&back);
    if let Some(error) = params.get("error") {
        assert_eq!(error, "access_denied", "{back}");
        return Err(params["error_description"].clone());
    }
    let (status, tokens) = server.redeem(&params["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    Ok((access, id))
}

async fn restrict_the_spa(server: &TestServer, token: &str, restricted: bool) {
    call(
        server,
        token,
        Method::PATCH,
        &format!("/clients/{}", server.spa_client_id),
        json!({"client_metadata": {"restricted": restricted.to_string()}}),
    )
    .await;
}

#[tokio::test]
async fn auth0s_documented_actions_run_unmodified() {
    let server = spawn().await;
    let token = tenant(&server).await;
    bind(&server, "post-login", "roles", ROLES_ACTION).await;
    let (access, id) = sign_in_as(&server, &server.user_email).await.unwrap();
    assert_eq!(access[format!("{NAMESPACE}/roles")], json!(["editor"]));
    assert_eq!(id[format!("{NAMESPACE}/roles")], json!(["editor"]));

    bind(
        &server,
        "post-login",
        "verified domains",
        VERIFIED_DOMAINS_ACTION,
    )
    .await;
    assert!(sign_in_as(&server, &server.user_email).await.is_ok());
    assert_eq!(
        sign_in_as(&server, "new@example.com").await.unwrap_err(),
        "Please verify your email before logging in."
    );
    assert_eq!(
        sign_in_as(&server, "someone@elsewhere.test")
            .await
            .unwrap_err(),
        "Access denied."
    );

    bind(&server, "post-login", "metadata", METADATA_ACTION).await;
    let (access, id) = sign_in_as(&server, &server.user_email).await.unwrap();
    assert_eq!(access[format!("{NAMESPACE}/plan")], "gold");
    assert_eq!(id[format!("{NAMESPACE}/plan")], "gold");
    assert_eq!(id[format!("{NAMESPACE}/support_tier")], 2);
    assert!(access.get(format!("{NAMESPACE}/support_tier")).is_none());

    bind(&server, "post-login", "audience", AUDIENCE_ACTION).await;
    assert!(sign_in_as(&server, &server.user_email).await.is_ok());
    restrict_the_spa(&server, &token, true).await;
    assert_eq!(
        sign_in_as(&server, &server.user_email).await.unwrap_err(),
        "Access to https://quickstarts/api is not allowed for Quickstart SPA"
    );
}

#[tokio::test]
async fn a_machine_is_denied_by_its_metadata() {
    let server = spawn().await;
    bind(&server, "credentials-exchange", "blocked", MACHINE_ACTION).await;
    let http = reqwest::Client::new();
    let issue = || {
        client_credentials(
            &http,
            &server.base,
            &server.m2m_client_id,
            &server.m2m_secret,
            API,
        )
    };
    let (status, body) = issue().await;
    assert_eq!(status, 200, "{body}");
    let admin = server.management_token(&["update:clients"]).await;
    call(
        &server,
        &admin,
        Method::PATCH,
        &format!("/clients/{}", server.m2m_client_id),
        json!({"client_metadata": {"blocked": "true"}}),
    )
    .await;
    let (status, body) = issue().await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_request")),
        "{body}"
    );
    assert_eq!(
        body["error_description"],
        format!("Client {} is blocked.", server.m2m_client_id)
    );
}

#[tokio::test]
async fn the_same_policies_as_rules_run_unmodified() {
    let server = spawn().await;
    let token = tenant(&server).await;
    let mut rule_ids = Vec::new();
    for (name, script) in [
        ("roles", ROLES_RULE),
        ("email verified", VERIFIED_RULE),
        ("plan", METADATA_RULE),
        ("audience", AUDIENCE_RULE),
    ] {
        let rule = call(
            &server,
            &token,
            Method::POST,
            "/rules",
            json!({"name": name, "script": script}),
        )
        .await;
        rule_ids.push(rule["id"].as_str().unwrap().to_string());
    }
    let (access, id) = sign_in_as(&server, &server.user_email).await.unwrap();
    assert_eq!(access[format!("{NAMESPACE}/roles")], json!(["editor"]));
    assert_eq!(id[format!("{NAMESPACE}/roles")], json!(["editor"]));
    assert_eq!(id[format!("{NAMESPACE}/plan")], "gold");
    assert_eq!(
        sign_in_as(&server, "new@example.com").await.unwrap_err(),
        "Please verify your email before logging in."
    );
    restrict_the_spa(&server, &token, true).await;
    assert_eq!(
        sign_in_as(&server, &server.user_email).await.unwrap_err(),
        "Access to this API is not allowed for Quickstart SPA"
    );

    // A disabled rule no longer runs.
    call(
        &server,
        &token,
        Method::PATCH,
        &format!("/rules/{}", rule_ids[3]),
        json!({"enabled": false}),
    )
    .await;
    assert!(sign_in_as(&server, &server.user_email).await.is_ok());
}
