//! The common policies, written as Auth0's docs show them, run unmodified.

mod common;

use common::*;
use serde_json::json;
use tessera_actions::Trigger;

const ROLES_INTO_TOKENS: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://my-app.example.com';
  if (event.authorization) {
    api.idToken.setCustomClaim(`${namespace}/roles`, event.authorization.roles);
    api.accessToken.setCustomClaim(`${namespace}/roles`, event.authorization.roles);
  }
}
"#;

const VERIFIED_EMAIL_DOMAINS: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  if (!event.user.email || !event.user.email_verified) {
    return api.access.deny('Access denied.');
  }
  const whitelist = ['example.com', 'example.org']; // authorized domains
  const userHasAccess = whitelist.some(function (domain) {
    const emailSplit = event.user.email.split('@');
    return emailSplit[emailSplit.length - 1].toLowerCase() === domain;
  });
  if (!userHasAccess) {
    return api.access.deny('Access denied.');
  }
};
"#;

const METADATA_CLAIM: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://myapp.example.com';
  const { emp_id } = event.user.app_metadata;
  if (emp_id) {
    api.idToken.setCustomClaim(`${namespace}/emp_id`, emp_id);
  }
};
"#;

const DENY_AUDIENCE_FOR_CLIENTS: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const blockedClients = ['client-1', 'client-2'];
  if (
    blockedClients.includes(event.client.client_id) &&
    event.resource_server &&
    event.resource_server.identifier === 'https://api.example.com'
  ) {
    api.access.deny(`Access to ${event.resource_server.identifier} is not allowed for this application`);
  }
};
"#;

const CREDENTIALS_EXCHANGE_DENY_BY_METADATA: &str = r#"
/**
 * @param {Event} event - Details about client credentials grant request.
 * @param {CredentialsExchangeAPI} api - Interface whose methods can be used to change the behavior of client credentials grant.
 */
exports.onExecuteCredentialsExchange = async (event, api) => {
  if (event.client.metadata.disabled === 'true') {
    api.access.deny('invalid_request', 'This client has been disabled');
    return;
  }
  api.accessToken.setCustomClaim('https://example.com/tier', event.client.metadata.tier);
};
"#;

const RULE_ROLES_INTO_TOKENS: &str = r#"function (user, context, callback) {
  const namespace = 'https://myapp.example.com/';
  const assignedRoles = (context.authorization || {}).roles;

  let idTokenClaims = context.idToken || {};
  let accessTokenClaims = context.accessToken || {};

  idTokenClaims[`${namespace}roles`] = assignedRoles;
  accessTokenClaims[`${namespace}roles`] = assignedRoles;

  context.idToken = idTokenClaims;
  context.accessToken = accessTokenClaims;

  callback(null, user, context);
}"#;

const RULE_EMAIL_DOMAIN_WHITELIST: &str = r#"function emailDomainWhitelist(user, context, callback) {
  // Access should only be granted to verified users.
  if (!user.email || !user.email_verified) {
    return callback(new UnauthorizedError('Access denied.'));
  }

  const whitelist = ['example.com', 'example.org']; //authorized domains
  const userHasAccess = whitelist.some(function (domain) {
    const emailSplit = user.email.split('@');
    return emailSplit[emailSplit.length - 1].toLowerCase() === domain;
  });

  if (!userHasAccess) {
    return callback(new UnauthorizedError('Access denied.'));
  }

  return callback(null, user, context);
}"#;

const RULE_METADATA_CLAIM: &str = r#"function (user, context, callback) {
  const namespace = 'https://myapp.example.com/';
  context.idToken[namespace + 'emp_id'] = user.app_metadata.emp_id;
  context.accessToken[namespace + 'plan'] = user.app_metadata.plan;
  callback(null, user, context);
}"#;

#[tokio::test]
async fn roles_go_into_both_tokens_under_a_namespace() {
    let engine = engine();
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[ROLES_INTO_TOKENS],
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    let roles = json!(["admin", "editor"]);
    assert_eq!(
        outcome.id_token_claims["https://my-app.example.com/roles"],
        roles
    );
    assert_eq!(
        outcome.access_token_claims["https://my-app.example.com/roles"],
        roles
    );
}

#[tokio::test]
async fn only_verified_emails_of_listed_domains_get_in() {
    let engine = engine();
    let allowed = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[VERIFIED_EMAIL_DOMAINS],
    )
    .await;
    assert!(allowed.allowed(), "{allowed:?}");

    let mut unverified = post_login_event();
    unverified["user"]["email_verified"] = json!(false);
    let denied = run_actions(
        &engine,
        Trigger::PostLogin,
        unverified,
        &[VERIFIED_EMAIL_DOMAINS],
    )
    .await;
    let denial = denied.denied.expect("denied");
    assert_eq!(denial.code, "access_denied");
    assert_eq!(denial.reason, "Access denied.");
    assert_eq!(denial.by, "action-0");

    let mut other_domain = post_login_event();
    other_domain["user"]["email"] = json!("eve@evil.test");
    let denied = run_actions(
        &engine,
        Trigger::PostLogin,
        other_domain,
        &[VERIFIED_EMAIL_DOMAINS],
    )
    .await;
    assert_eq!(denied.denied.expect("denied").reason, "Access denied.");
}

#[tokio::test]
async fn an_app_metadata_field_becomes_a_claim() {
    let engine = engine();
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[METADATA_CLAIM],
    )
    .await;
    assert_eq!(
        outcome.id_token_claims["https://myapp.example.com/emp_id"],
        json!("E-42")
    );
    assert!(outcome.access_token_claims.is_empty());
}

#[tokio::test]
async fn an_audience_is_denied_to_some_clients() {
    let engine = engine();
    let denied = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[DENY_AUDIENCE_FOR_CLIENTS],
    )
    .await;
    assert_eq!(
        denied.denied.expect("denied").reason,
        "Access to https://api.example.com is not allowed for this application"
    );
    let mut other_client = post_login_event();
    other_client["client"]["client_id"] = json!("client-9");
    let allowed = run_actions(
        &engine,
        Trigger::PostLogin,
        other_client,
        &[DENY_AUDIENCE_FOR_CLIENTS],
    )
    .await;
    assert!(allowed.allowed(), "{allowed:?}");
}

#[tokio::test]
async fn credentials_exchange_denies_a_client_by_its_metadata() {
    let engine = engine();
    let event = |disabled: &str| {
        json!({
            "client": {"client_id": "m2m-1", "name": "Batch", "metadata": {"disabled": disabled, "tier": "gold"}},
            "resource_server": {"identifier": "https://api.example.com"},
            "request": {"ip": "192.0.2.9"},
            "transaction": {"requested_scopes": ["read:items"]},
        })
    };
    let denied = run_actions(
        &engine,
        Trigger::CredentialsExchange,
        event("true"),
        &[CREDENTIALS_EXCHANGE_DENY_BY_METADATA],
    )
    .await;
    let denial = denied.denied.expect("denied");
    assert_eq!(denial.code, "invalid_request");
    assert_eq!(denial.reason, "This client has been disabled");

    let allowed = run_actions(
        &engine,
        Trigger::CredentialsExchange,
        event("false"),
        &[CREDENTIALS_EXCHANGE_DENY_BY_METADATA],
    )
    .await;
    assert!(allowed.allowed(), "{allowed:?}");
    assert_eq!(
        allowed.access_token_claims["https://example.com/tier"],
        json!("gold")
    );
}

#[tokio::test]
async fn credentials_exchange_refuses_an_unknown_deny_code() {
    let engine = engine();
    let outcome = run_actions(
        &engine,
        Trigger::CredentialsExchange,
        json!({"client": {"client_id": "m"}}),
        &["exports.onExecuteCredentialsExchange = async (event, api) => { api.access.deny('access_denied', 'no'); };"],
    )
    .await;
    assert!(outcome.denied.is_none());
    let message = failure_message(&outcome);
    assert!(
        message.contains("invalid_scope, invalid_request, server_error"),
        "{message}"
    );
}

#[tokio::test]
async fn rules_put_roles_into_tokens() {
    let engine = engine();
    let mut job = job(Trigger::PostLogin, post_login_event(), Vec::new());
    job.rules = vec![rule("roles", RULE_ROLES_INTO_TOKENS)];
    let outcome = run(&engine, job).await;
    assert!(outcome.allowed(), "{outcome:?}");
    let roles = json!(["admin", "editor"]);
    assert_eq!(
        outcome.id_token_claims["https://myapp.example.com/roles"],
        roles
    );
    assert_eq!(
        outcome.access_token_claims["https://myapp.example.com/roles"],
        roles
    );
}

#[tokio::test]
async fn rules_whitelist_email_domains_with_unauthorized_error() {
    let engine = engine();
    let mut allowed_job = job(Trigger::PostLogin, post_login_event(), Vec::new());
    allowed_job.rules = vec![rule("whitelist", RULE_EMAIL_DOMAIN_WHITELIST)];
    let allowed = run(&engine, allowed_job).await;
    assert!(allowed.allowed(), "{allowed:?}");

    let mut event = post_login_event();
    event["user"]["email"] = json!("eve@evil.test");
    let mut denied_job = job(
        Trigger::PostLogin,
        event,
        vec![action("later", ROLES_INTO_TOKENS)],
    );
    denied_job.rules = vec![rule("whitelist", RULE_EMAIL_DOMAIN_WHITELIST)];
    let denied = run(&engine, denied_job).await;
    let denial = denied.denied.clone().expect("denied");
    assert_eq!(denial.code, "access_denied");
    assert_eq!(denial.reason, "Access denied.");
    assert_eq!(denial.by, "whitelist");
    // The rule's denial stops the post-login actions.
    assert!(denied.id_token_claims.is_empty());
    assert_eq!(denied.logs.len(), 1);
}

#[tokio::test]
async fn rules_copy_metadata_into_claims_and_run_before_actions() {
    let engine = engine();
    let overriding = r#"exports.onExecutePostLogin = async (event, api) => {
        api.accessToken.setCustomClaim('https://myapp.example.com/plan', 'platinum');
        api.idToken.setCustomClaim('https://x/rule-ran', api.rules.wasExecuted('rul_metadata'));
    };"#;
    let mut job = job(
        Trigger::PostLogin,
        post_login_event(),
        vec![action("after", overriding)],
    );
    job.rules = vec![rule("metadata", RULE_METADATA_CLAIM)];
    let outcome = run(&engine, job).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        outcome.id_token_claims["https://myapp.example.com/emp_id"],
        json!("E-42")
    );
    // The action runs after the rule, so its claim wins.
    assert_eq!(
        outcome.access_token_claims["https://myapp.example.com/plan"],
        json!("platinum")
    );
    assert_eq!(outcome.id_token_claims["https://x/rule-ran"], json!(true));
}

#[tokio::test]
async fn rules_see_context_configuration_and_earlier_rules_changes() {
    let engine = engine();
    let first = r#"function (user, context, callback) {
        if (context.clientID !== 'client-1' || context.connectionStrategy !== 'auth0' ||
            context.request.userAgent !== 'Tests/1.0' || context.stats.loginsCount !== 7 ||
            context.protocol !== 'oidc-basic-profile' || context.clientMetadata.tier !== 'internal') {
          return callback(new Error('unexpected context: ' + JSON.stringify(context)));
        }
        context.idToken['https://x/key'] = configuration.API_KEY.length;
        user.nickname = 'from-rule-1';
        callback(null, user, context);
    }"#;
    let second = r#"function (user, context, callback) {
        context.idToken['https://x/seen'] = user.nickname + ':' + context.idToken['https://x/key'];
        context.accessToken.scope = ['openid', 'write:items'];
        callback(null, user, context);
    };"#;
    let mut job = job(Trigger::PostLogin, post_login_event(), Vec::new());
    job.rules = vec![rule("first", first), rule("second", second)];
    job.configuration
        .insert("API_KEY".into(), "s3cr3t-value".into());
    let outcome = run(&engine, job).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        outcome.id_token_claims["https://x/seen"],
        json!("from-rule-1:12")
    );
    // scope replaced: requested openid profile read:items → openid write:items
    assert_eq!(
        outcome.removed_scopes,
        vec!["profile".to_string(), "read:items".to_string()]
    );
    assert_eq!(outcome.added_scopes, vec!["write:items".to_string()]);
}

#[tokio::test]
async fn a_rule_error_fails_and_a_silent_rule_fails() {
    let engine = engine();
    let mut failing = job(Trigger::PostLogin, post_login_event(), Vec::new());
    failing.rules = vec![rule(
        "boom",
        "function (user, context, callback) { callback(new Error('database down')); }",
    )];
    let outcome = run(&engine, failing).await;
    assert!(outcome.denied.is_none());
    assert_eq!(failure_message(&outcome), "Error: database down");

    let mut silent = job(Trigger::PostLogin, post_login_event(), Vec::new());
    silent.rules = vec![rule("silent", "function (user, context, callback) { }")];
    let outcome = run(&engine, silent).await;
    assert_eq!(failure_message(&outcome), "the rule never called callback");

    let mut mfa = job(Trigger::PostLogin, post_login_event(), Vec::new());
    mfa.rules = vec![rule(
        "mfa",
        "function (user, context, callback) { context.multifactor = {provider: 'any'}; callback(null, user, context); }",
    )];
    let outcome = run(&engine, mfa).await;
    assert!(outcome.allowed());
    assert_eq!(
        outcome.multifactor.map(|asked| asked.provider),
        Some("any".to_string()),
        "a rule's context.multifactor asks for a second factor"
    );

    let mut requiring = job(Trigger::PostLogin, post_login_event(), Vec::new());
    requiring.rules = vec![rule(
        "req",
        "function (user, context, callback) { const x = require('request@2.88.0'); callback(null, user, context); }",
    )];
    let outcome = run(&engine, requiring).await;
    assert!(
        failure_message(&outcome).contains("require is not supported: bundle your dependencies")
    );
}
