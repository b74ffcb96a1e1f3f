//! How a trigger's actions combine, and what each one sees.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tessera_actions::{Engine, Limits, Trigger};

#[tokio::test]
async fn metadata_is_gathered_across_actions_and_null_removes() {
    let engine = engine();
    let first = r#"exports.onExecutePostLogin = async (event, api) => {
        // Methods return `api`, as Auth0's do.
        api.user.setAppMetadata('plan', 'silver').user.setAppMetadata('seen', 1);
        api.user.setUserMetadata('color', 'red');
    };"#;
    let second = r#"exports.onExecutePostLogin = async (event, api) => {
        api.user.setAppMetadata('plan', 'platinum');
        api.user.setAppMetadata('emp_id', null);
        api.user.setUserMetadata('theme', {dark: true});
    };"#;
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[first, second],
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        outcome.app_metadata,
        json!({"plan": "platinum", "seen": 1, "emp_id": null})
            .as_object()
            .unwrap()
            .clone()
    );
    assert_eq!(
        outcome.user_metadata,
        json!({"color": "red", "theme": {"dark": true}})
            .as_object()
            .unwrap()
            .clone()
    );
}

#[tokio::test]
async fn a_deny_stops_later_actions_but_keeps_its_own_changes() {
    let engine = engine();
    let denying = r#"exports.onExecutePostLogin = async (event, api) => {
        api.access.deny('not today');
        api.user.setAppMetadata('denied_at', 'now');
        console.log('still running after deny');
    };"#;
    let later = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/later', true); };";
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[denying, later],
    )
    .await;
    let denial = outcome.denied.clone().expect("denied");
    assert_eq!(
        (
            denial.code.as_str(),
            denial.reason.as_str(),
            denial.by.as_str()
        ),
        ("access_denied", "not today", "action-0")
    );
    assert_eq!(outcome.app_metadata["denied_at"], "now");
    assert!(outcome.id_token_claims.is_empty());
    assert_eq!(outcome.logs.len(), 1);
    assert_eq!(outcome.logs[0].stdout, "still running after deny\n");
}

#[tokio::test]
async fn refresh_token_revoke_denies_and_asks_for_the_revocation() {
    let engine = engine();
    let mut event = post_login_event();
    event["transaction"]["protocol"] = json!("oauth2-refresh-token");
    event["refresh_token"] =
        json!({"id": "rt_1", "client_id": "c", "created_at": "2026-12-01T00:00:00.000Z"});
    let revoking = r#"exports.onExecutePostLogin = async (event, api) => {
        if (event.refresh_token && event.refresh_token.id === 'rt_1') {
            api.refreshToken.revoke('Invalid IP change');
        }
        api.user.setAppMetadata('revoked', true);
    };"#;
    let later = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/later', true); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, event, &[revoking, later]).await;
    let denial = outcome.denied.clone().expect("denied");
    assert_eq!(
        (
            denial.code.as_str(),
            denial.reason.as_str(),
            denial.revoke_refresh_token
        ),
        ("access_denied", "Invalid IP change", true)
    );
    assert_eq!(
        outcome.app_metadata["revoked"], true,
        "the action ran to its end"
    );
    assert!(
        outcome.id_token_claims.is_empty(),
        "later actions did not run"
    );
    // A plain deny revokes nothing.
    let denying = "exports.onExecutePostLogin = async (event, api) => { api.access.deny('no'); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[denying]).await;
    assert!(!outcome.denied.expect("denied").revoke_refresh_token);
}

#[tokio::test]
async fn refresh_token_revoke_fails_where_no_refresh_token_is_exchanged() {
    let engine = engine();
    let revoking =
        "exports.onExecutePostLogin = async (event, api) => { api.refreshToken.revoke('x'); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[revoking]).await;
    assert!(outcome.denied.is_none(), "{outcome:?}");
    assert!(
        failure_message(&outcome)
            .starts_with("api.refreshToken.revoke: this transaction has no refresh token"),
        "{}",
        failure_message(&outcome)
    );
    assert_eq!(
        outcome.logs[0].error.as_deref(),
        Some(failure_message(&outcome).as_str()),
        "the execution's log says why"
    );
}

#[tokio::test]
async fn refresh_token_metadata_starts_from_the_exchanged_token_and_is_bounded() {
    let engine = engine();
    let first = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/first', event.refresh_token ? event.refresh_token.metadata : null);
        api.refreshToken.setMetadata('device', 'phone').refreshToken.deleteMetadata('old');
    };"#;
    let second = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/second', event.refresh_token ? event.refresh_token.metadata : null);
        api.refreshToken.setMetadata('step', '2');
    };"#;
    // At a refresh: the exchanged token's metadata, changed, shown to the next action.
    let mut exchange = post_login_event();
    exchange["refresh_token"] = json!({"id": "rt_1", "metadata": {"old": "x", "kept": "y"}});
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        exchange.clone(),
        &[first, second],
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        outcome.id_token_claims["https://x/first"],
        json!({"old": "x", "kept": "y"})
    );
    assert_eq!(
        outcome.id_token_claims["https://x/second"],
        json!({"device": "phone", "kept": "y"})
    );
    assert_eq!(
        json!(outcome.refresh_token_metadata),
        json!({"device": "phone", "kept": "y", "step": "2"})
    );
    assert_eq!(outcome.session_metadata, None, "the session's is apart");

    // At a login: what the token it issues will carry, from nothing (no event shows it).
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[first, second],
    )
    .await;
    assert_eq!(outcome.id_token_claims["https://x/second"], json!(null));
    assert_eq!(
        json!(outcome.refresh_token_metadata),
        json!({"device": "phone", "step": "2"})
    );

    // The same bounds as a session's.
    for (call, refused) in [
        (
            "setMetadata('k', 1)",
            "TypeError: api.refreshToken.setMetadata: the value must be a string of at most 255",
        ),
        (
            "setMetadata('', 'v')",
            "TypeError: api.refreshToken.setMetadata: the key must be a string of 1 to 255",
        ),
        (
            "deleteMetadata(7)",
            "TypeError: api.refreshToken.deleteMetadata: the key must be a string of 1 to 255",
        ),
        (
            "setMetadata('k', 'v'.repeat(256))",
            "TypeError: api.refreshToken.setMetadata: the value must be a string of at most 255",
        ),
        (
            "evictMetadata(); for (let i = 0; i < 26; i++) api.refreshToken.setMetadata('k' + i, 'v')",
            "api.refreshToken.setMetadata: metadata holds at most 25 keys (26 asked)",
        ),
    ] {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.refreshToken.{call}; }};"
        );
        let outcome = run_actions(
            &engine,
            Trigger::PostLogin,
            exchange.clone(),
            &[code.as_str()],
        )
        .await;
        assert!(
            failure_message(&outcome).starts_with(refused),
            "{call}: {}",
            failure_message(&outcome)
        );
        assert_eq!(outcome.refresh_token_metadata, None, "{call}");
    }
}

#[tokio::test]
async fn refresh_token_ends_keep_the_earliest_asked() {
    let engine = engine();
    let first = r#"exports.onExecutePostLogin = async (event, api) => {
        api.refreshToken.setExpiresAt(1900000000000).refreshToken.setExpiresAt(1800000000000);
        api.refreshToken.setIdleExpiresAt(1800000500000);
    };"#;
    let second = r#"exports.onExecutePostLogin = async (event, api) => {
        api.refreshToken.setExpiresAt(1850000000000);
        api.refreshToken.setIdleExpiresAt(1700000000000.9);
    };"#;
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[first, second],
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(outcome.refresh_token_expires_at, Some(1_800_000_000_000));
    assert_eq!(
        outcome.refresh_token_idle_expires_at,
        Some(1_700_000_000_000)
    );
    let untouched = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &["exports.onExecutePostLogin = async () => {};"],
    )
    .await;
    assert_eq!(
        (
            untouched.refresh_token_expires_at,
            untouched.refresh_token_idle_expires_at
        ),
        (None, None)
    );
    for bad in ["'tomorrow'", "NaN", "Infinity", "new Date()", "undefined"] {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.refreshToken.setExpiresAt({bad}); }};"
        );
        let outcome = run_actions(
            &engine,
            Trigger::PostLogin,
            post_login_event(),
            &[code.as_str()],
        )
        .await;
        assert!(
            failure_message(&outcome).starts_with("TypeError: api.refreshToken.setExpiresAt: the time must be a number of milliseconds"),
            "{bad}: {}",
            failure_message(&outcome)
        );
        assert_eq!(outcome.refresh_token_expires_at, None, "{bad}");
    }
}

#[tokio::test]
async fn session_ends_keep_the_earliest_asked_apart_from_the_refresh_tokens() {
    let engine = engine();
    let first = r#"exports.onExecutePostLogin = async (event, api) => {
        api.session.setExpiresAt(1900000000000).session.setIdleExpiresAt(1800000500000);
    };"#;
    let second = r#"exports.onExecutePostLogin = async (event, api) => {
        api.session.setExpiresAt(1850000000000);
        api.session.setIdleExpiresAt(1800000600000);
    };"#;
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[first, second],
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        (outcome.session_expires_at, outcome.session_idle_expires_at),
        (Some(1_850_000_000_000), Some(1_800_000_500_000))
    );
    assert_eq!(
        (
            outcome.refresh_token_expires_at,
            outcome.refresh_token_idle_expires_at
        ),
        (None, None)
    );
    for bad in ["'tomorrow'", "NaN", "-Infinity", "{ valueOf: () => 0 }"] {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.session.setIdleExpiresAt({bad}); }};"
        );
        let outcome = run_actions(
            &engine,
            Trigger::PostLogin,
            post_login_event(),
            &[code.as_str()],
        )
        .await;
        assert!(
            failure_message(&outcome).starts_with(
                "TypeError: api.session.setIdleExpiresAt: the time must be a number of milliseconds"
            ),
            "{bad}: {}",
            failure_message(&outcome)
        );
        assert_eq!(outcome.session_idle_expires_at, None, "{bad}");
    }
}

#[tokio::test]
async fn session_metadata_is_shown_to_later_actions_and_bounded() {
    let engine = engine();
    let mut event = post_login_event();
    event["session"] = json!({"id": "s1", "metadata": {"device": "laptop", "old": "x"}});
    let first = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/first', event.session.metadata);
        api.session.setMetadata('org', 'acme').session.deleteMetadata('old');
        api.session.deleteMetadata('never-there');
    };"#;
    let second = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/second', event.session.metadata);
        api.session.setMetadata('device', 'phone');
    };"#;
    let outcome = run_actions(&engine, Trigger::PostLogin, event.clone(), &[first, second]).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        outcome.id_token_claims["https://x/first"],
        json!({"device": "laptop", "old": "x"})
    );
    assert_eq!(
        outcome.id_token_claims["https://x/second"],
        json!({"device": "laptop", "org": "acme"}),
        "the second action sees the first one's changes"
    );
    let written = outcome.session_metadata.expect("changed");
    assert_eq!(json!(written), json!({"device": "phone", "org": "acme"}));

    // Evicting clears what was there; a later set stays.
    let evicting = "exports.onExecutePostLogin = async (event, api) => { api.session.evictMetadata().session.setMetadata('only', 'one'); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, event.clone(), &[evicting]).await;
    assert_eq!(json!(outcome.session_metadata), json!({"only": "one"}));

    // Characters are code points: 255 emoji fit, 256 do not.
    let emoji = |count: usize| {
        format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.session.setMetadata('e', '😀'.repeat({count})); }};"
        )
    };
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        event.clone(),
        &[emoji(255).as_str()],
    )
    .await;
    assert_eq!(
        outcome.session_metadata.expect("fits")["e"].chars().count(),
        255
    );
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        event.clone(),
        &[emoji(256).as_str()],
    )
    .await;
    assert!(
        failure_message(&outcome).starts_with(
            "TypeError: api.session.setMetadata: the value must be a string of at most 255"
        ),
        "{}",
        failure_message(&outcome)
    );

    for (call, refused) in [
        (
            "setMetadata(1, 'v')",
            "the key must be a string of 1 to 255",
        ),
        (
            "setMetadata('', 'v')",
            "the key must be a string of 1 to 255",
        ),
        (
            "setMetadata('k'.repeat(256), 'v')",
            "the key must be a string of 1 to 255",
        ),
        (
            "setMetadata('k', 5)",
            "the value must be a string of at most 255",
        ),
        (
            "setMetadata('k', null)",
            "the value must be a string of at most 255",
        ),
        (
            "setMetadata('k', {toString: () => 'v'})",
            "the value must be a string of at most 255",
        ),
        (
            "setMetadata('k', 'v'.repeat(256))",
            "the value must be a string of at most 255",
        ),
        (
            "deleteMetadata(undefined)",
            "the key must be a string of 1 to 255",
        ),
    ] {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.session.{call}; }};"
        );
        let outcome =
            run_actions(&engine, Trigger::PostLogin, event.clone(), &[code.as_str()]).await;
        let method = call.split('(').next().unwrap();
        assert!(
            failure_message(&outcome)
                .starts_with(&format!("TypeError: api.session.{method}: {refused}")),
            "{call}: {}",
            failure_message(&outcome)
        );
        assert_eq!(outcome.session_metadata, None, "{call}");
    }

    // At most 25 keys: the action that passes it fails; what an earlier one wrote stays.
    let earlier = "exports.onExecutePostLogin = async (event, api) => { api.session.setMetadata('kept', 'yes'); };";
    let many = "exports.onExecutePostLogin = async (event, api) => { for (let i = 0; i < 24; i++) api.session.setMetadata('k' + i, 'v'); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, event.clone(), &[earlier, many]).await;
    assert_eq!(
        failure_message(&outcome),
        "api.session.setMetadata: metadata holds at most 25 keys (27 asked)"
    );
    assert_eq!(
        json!(outcome.session_metadata),
        json!({"device": "laptop", "kept": "yes", "old": "x"})
    );
    assert_eq!(
        outcome.logs[1].error.as_deref(),
        Some(failure_message(&outcome).as_str())
    );

    // Without a session (a refresh, the password grant) there is nothing to write on.
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[earlier]).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(outcome.session_metadata, None);
}

#[tokio::test]
async fn a_failure_stops_later_actions() {
    let engine = engine();
    let throwing =
        "exports.onExecutePostLogin = async () => { throw new TypeError('bad input'); };";
    let later = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/later', true); };";
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[throwing, later],
    )
    .await;
    assert_eq!(failure_message(&outcome), "TypeError: bad input");
    assert!(outcome.id_token_claims.is_empty());
    assert_eq!(
        outcome.logs[0].error.as_deref(),
        Some("TypeError: bad input")
    );
}

#[tokio::test]
async fn changes_to_event_and_globals_are_not_seen_by_the_next_action() {
    let engine = engine();
    let mutating = r#"exports.onExecutePostLogin = async (event, api) => {
        event.user.email = 'changed@evil.test';
        event.user.app_metadata.plan = 'free';
        globalThis.leaked = 'yes';
        Object.prototype.polluted = 'yes';
    };"#;
    let reading = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/seen', [event.user.email, event.user.app_metadata.plan,
            typeof globalThis.leaked, typeof ({}).polluted]);
    };"#;
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[mutating, reading],
    )
    .await;
    assert_eq!(
        outcome.id_token_claims["https://x/seen"],
        json!(["ada@example.com", "gold", "undefined", "undefined"])
    );
}

#[tokio::test]
async fn claims_merge_with_the_later_action_winning_and_scopes_follow_call_order() {
    let engine = engine();
    let first = r#"exports.onExecutePostLogin = async (event, api) => {
        api.accessToken.setCustomClaim('https://x/a', 1).accessToken.setCustomClaim('https://x/b', 1);
        api.accessToken.addScope('write:items').accessToken.removeScope('profile');
        api.accessToken.addScope('admin');
    };"#;
    let second = r#"exports.onExecutePostLogin = async (event, api) => {
        api.accessToken.setCustomClaim('https://x/b', 2);
        api.accessToken.removeScope('admin');
        api.accessToken.addScope('profile');
    };"#;
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[first, second],
    )
    .await;
    assert_eq!(outcome.access_token_claims["https://x/a"], 1);
    assert_eq!(outcome.access_token_claims["https://x/b"], 2);
    assert_eq!(
        outcome.added_scopes,
        vec!["write:items".to_string(), "profile".to_string()]
    );
    assert_eq!(outcome.removed_scopes, vec!["admin".to_string()]);
}

#[tokio::test]
async fn handlers_may_be_sync_or_async_and_module_exports_may_be_replaced() {
    let engine = engine();
    let sync = "exports.onExecutePostLogin = (event, api) => { api.idToken.setCustomClaim('https://x/sync', true); };";
    let awaiting = r#"
        const later = (value) => new Promise((resolve) => Promise.resolve().then(() => resolve(value)));
        module.exports = { onExecutePostLogin: async function (event, api) {
            const value = await later(event.stats.logins_count + 1);
            api.idToken.setCustomClaim('https://x/async', value);
        } };"#;
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[sync, awaiting],
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(outcome.id_token_claims["https://x/sync"], true);
    assert_eq!(outcome.id_token_claims["https://x/async"], 8);
}

#[tokio::test]
async fn a_missing_handler_and_a_syntax_error_fail_clearly() {
    let engine = engine();
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &["exports.onExecuteCredentialsExchange = async () => {};"],
    )
    .await;
    assert_eq!(
        failure_message(&outcome),
        "Error: the action does not export onExecutePostLogin"
    );
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &["exports.onExecutePostLogin = async (event, api) => {"],
    )
    .await;
    assert!(
        failure_message(&outcome).starts_with("SyntaxError"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_rejected_promise_fails_with_its_reason() {
    let engine = engine();
    let code = "exports.onExecutePostLogin = async () => { await null; return Promise.reject(new RangeError('nope')); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(failure_message(&outcome), "RangeError: nope");
}

#[tokio::test]
async fn multifactor_enable_asks_for_a_second_factor_and_the_last_call_wins() {
    let engine = engine();
    let asks = "exports.onExecutePostLogin = async (event, api) => { api.multifactor.enable('any', { allowRememberBrowser: true }); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[asks]).await;
    assert!(outcome.allowed());
    assert_eq!(
        outcome.multifactor,
        Some(tessera_actions::Multifactor {
            provider: "any".into(),
            allow_remember_browser: true,
        })
    );
    let withdrawn =
        "exports.onExecutePostLogin = async (event, api) => { api.multifactor.enable('none'); };";
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[asks, withdrawn],
    )
    .await;
    assert_eq!(outcome.multifactor, None, "a later 'none' withdraws it");
    let unknown =
        "exports.onExecutePostLogin = async (event, api) => { api.multifactor.enable('sms'); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[unknown]).await;
    assert!(
        failure_message(&outcome).starts_with(
            "TypeError: api.multifactor.enable: the provider must be one of any, guardian"
        ),
        "{}",
        failure_message(&outcome)
    );
}

#[tokio::test]
async fn unsupported_apis_throw_a_clear_message() {
    let engine = engine();
    let enrolled = "exports.onExecutePostLogin = async (event, api) => { api.multifactor.getEnrolledFactors(); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[enrolled]).await;
    assert_eq!(
        failure_message(&outcome),
        "Error: api.multifactor.getEnrolledFactors is not supported yet"
    );
    // Without a redirect context (tests/redirect.rs has the rest), nobody can be sent away.
    let redirect = r#"exports.onExecutePostLogin = async (event, api) => {
        if (api.redirect.canRedirect()) { api.redirect.sendUserTo('https://example.com'); }
        api.redirect.sendUserTo('https://example.com');
    };"#;
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[redirect]).await;
    assert!(
        failure_message(&outcome)
            .starts_with("Error: api.redirect.sendUserTo: this login cannot redirect"),
        "{outcome:?}"
    );
    // credentials-exchange has no addScope, as on Auth0.
    let add_scope = "exports.onExecuteCredentialsExchange = async (event, api) => { api.accessToken.addScope('x'); };";
    let outcome = run_actions(
        &engine,
        Trigger::CredentialsExchange,
        json!({"client": {}}),
        &[add_scope],
    )
    .await;
    assert!(
        failure_message(&outcome).starts_with("TypeError"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn values_that_json_cannot_carry_fail_the_call() {
    let engine = engine();
    let cyclic = "exports.onExecutePostLogin = async (event, api) => { const a = {}; a.self = a; api.idToken.setCustomClaim('https://x/c', a); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[cyclic]).await;
    let message = failure_message(&outcome);
    assert!(
        message.starts_with(
            "TypeError: api.idToken.setCustomClaim: the value cannot be serialised to JSON"
        ),
        "{message}"
    );
    let bigint = "exports.onExecutePostLogin = async (event, api) => { api.user.setAppMetadata('n', 10n); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[bigint]).await;
    assert!(
        failure_message(&outcome)
            .contains("api.user.setAppMetadata: the value cannot be serialised to JSON")
    );
}

#[tokio::test]
async fn console_is_captured_and_truncated_on_a_character_boundary() {
    let engine = Engine::start(Limits {
        log_bytes: 20,
        ..Limits::default()
    });
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        console.log('user', event.user.user_id, {n: 1});
        console.error('ééééééééééééé');
    };"#;
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert!(outcome.allowed(), "{outcome:?}");
    // "user auth0|u1 {"n":1}\n" is 22 bytes: cut at 20.
    assert_eq!(outcome.logs[0].stdout, "user auth0|u1 {\"n\":1…[truncated]");
    let code = "exports.onExecutePostLogin = async () => { console.log('é'.repeat(30)); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(
        outcome.logs[0].stdout,
        format!("{}…[truncated]", "é".repeat(10))
    );
}

#[tokio::test]
async fn each_action_sees_its_own_secrets_and_their_values_stay_out_of_logs() {
    let engine = engine();
    let mut first = action(
        "first",
        r#"exports.onExecutePostLogin = async (event, api) => {
        console.log('key is ' + event.secrets.API_KEY);
        api.idToken.setCustomClaim('https://x/len', event.secrets.API_KEY.length);
        throw new Error('failed with ' + event.secrets.API_KEY);
    };"#,
    );
    first
        .secrets
        .insert("API_KEY".into(), "sk_live_123456".into());
    let outcome = run(
        &engine,
        job(Trigger::PostLogin, post_login_event(), vec![first]),
    )
    .await;
    assert_eq!(outcome.logs[0].stdout, "key is [secret]\n");
    assert_eq!(failure_message(&outcome), "Error: failed with [secret]");

    let mut with_secret = action(
        "with",
        "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/a', event.secrets.A); };",
    );
    with_secret.secrets.insert("A".into(), "alpha".into());
    let without = action(
        "without",
        "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/b', Object.keys(event.secrets)); };",
    );
    let outcome = run(
        &engine,
        job(
            Trigger::PostLogin,
            post_login_event(),
            vec![with_secret, without],
        ),
    )
    .await;
    assert_eq!(outcome.id_token_claims["https://x/a"], "alpha");
    assert_eq!(outcome.id_token_claims["https://x/b"], json!([]));
}

#[tokio::test]
async fn metadata_objects_always_exist() {
    let engine = engine();
    let code = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/m', [typeof event.user.app_metadata, typeof event.user.user_metadata]); };";
    let event = json!({"user": {"user_id": "auth0|1", "app_metadata": null}});
    let outcome = run_actions(&engine, Trigger::PostLogin, event, &[code]).await;
    assert_eq!(
        outcome.id_token_claims["https://x/m"],
        json!(["object", "object"])
    );
}

#[tokio::test]
async fn the_cache_is_shared_per_trigger_across_executions() {
    let engine = engine();
    let writer = r#"exports.onExecutePostLogin = async (event, api) => {
        const result = api.cache.set('token', 'abc', {ttl: 60000});
        const tooBig = api.cache.set('big', 'x'.repeat(5000));
        api.idToken.setCustomClaim('https://x/set', [result.type, tooBig.type, tooBig.code,
            api.cache.get('token').value]);
    };"#;
    let reader = r#"exports.onExecutePostLogin = async (event, api) => {
        const entry = api.cache.get('token');
        api.idToken.setCustomClaim('https://x/got', entry && entry.value);
        api.idToken.setCustomClaim('https://x/fresh', entry.expires_at > Date.now());
        api.cache.delete('token');
        api.idToken.setCustomClaim('https://x/gone', api.cache.get('token') === undefined);
    };"#;
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[writer]).await;
    assert_eq!(
        outcome.id_token_claims["https://x/set"],
        json!(["success", "error", "value_too_large", "abc"])
    );
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[reader]).await;
    assert_eq!(outcome.id_token_claims["https://x/got"], "abc");
    assert_eq!(outcome.id_token_claims["https://x/fresh"], true);
    assert_eq!(outcome.id_token_claims["https://x/gone"], true);
    // Writes made before a failure still count.
    let failing = "exports.onExecutePostLogin = async (event, api) => { api.cache.set('kept', 'yes'); throw new Error('late'); };";
    run_actions(&engine, Trigger::PostLogin, post_login_event(), &[failing]).await;
    let read_kept = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/kept', api.cache.get('kept').value); };";
    let outcome = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[read_kept],
    )
    .await;
    assert_eq!(outcome.id_token_claims["https://x/kept"], "yes");
    // Another trigger has its own cache.
    run_actions(&engine, Trigger::PostLogin, post_login_event(), &[writer]).await;
    let other = "exports.onExecuteCredentialsExchange = async (event, api) => { api.accessToken.setCustomClaim('https://x/got', api.cache.get('token') === undefined); };";
    let outcome = run_actions(&engine, Trigger::CredentialsExchange, json!({}), &[other]).await;
    assert_eq!(outcome.access_token_claims["https://x/got"], true);
}

#[tokio::test]
async fn pre_user_registration_can_deny_validate_and_set_metadata() {
    let engine = engine();
    let event = json!({"user": {"email": "new@example.com"}, "connection": {"name": "db"}});
    let deny = "exports.onExecutePreUserRegistration = async (event, api) => { api.user.setAppMetadata('x', 1); api.access.deny('blocked domain', 'Sign-ups are closed.'); };";
    let outcome = run_actions(
        &engine,
        Trigger::PreUserRegistration,
        event.clone(),
        &[deny],
    )
    .await;
    let denial = outcome.denied.clone().expect("denied");
    assert_eq!(denial.reason, "blocked domain");
    assert_eq!(denial.user_message.as_deref(), Some("Sign-ups are closed."));
    assert_eq!(outcome.app_metadata["x"], 1);
    let validate = "exports.onExecutePreUserRegistration = async (event, api) => { api.validation.error('invalid_email', 'Use a work address'); };";
    let outcome = run_actions(
        &engine,
        Trigger::PreUserRegistration,
        event.clone(),
        &[validate],
    )
    .await;
    let denial = outcome.denied.expect("denied");
    assert_eq!(
        (denial.code.as_str(), denial.reason.as_str()),
        ("invalid_email", "Use a work address")
    );
    let post = "exports.onExecutePostUserRegistration = async (event, api) => { console.log(typeof api.cache.get, typeof api.user); };";
    let outcome = run_actions(&engine, Trigger::PostUserRegistration, event, &[post]).await;
    assert!(outcome.allowed());
    assert_eq!(outcome.logs[0].stdout, "function undefined\n");
}

#[tokio::test]
async fn check_reports_syntax_errors_with_their_line_and_runs_nothing() {
    let engine = engine();
    assert_eq!(
        engine
            .check(
                Trigger::PostLogin,
                "exports.onExecutePostLogin = async (event, api) => {};"
            )
            .await,
        Ok(())
    );
    let error = engine
        .check(
            Trigger::PostLogin,
            "exports.onExecutePostLogin = async (event, api) => {\n  if (x {\n};",
        )
        .await
        .unwrap_err();
    assert!(error.starts_with("SyntaxError"), "{error}");
    assert!(error.ends_with("(line 2)"), "{error}");
    // The top level is compiled, not run.
    assert_eq!(
        engine.check(Trigger::PostLogin, "while (true) {}").await,
        Ok(())
    );
    assert_eq!(
        engine
            .check_rule("function (user, context, callback) { callback(null, user, context); }")
            .await,
        Ok(())
    );
    assert!(
        engine
            .check_rule("function (user, context, callback) {")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_empty_job_allows_at_once() {
    let engine = engine();
    let outcome = run(
        &engine,
        job(Trigger::PostLogin, post_login_event(), Vec::new()),
    )
    .await;
    assert_eq!(outcome, tessera_actions::Outcome::default());
}

/// Informal: what an execution in an action's warm context costs (printed, not asserted).
#[tokio::test]
async fn an_execution_is_cheap() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let code = "exports.onExecutePostLogin = async (event, api) => { api.accessToken.setCustomClaim('https://x/c', event.client.client_id); };";
    run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    let runs = 200;
    let started = std::time::Instant::now();
    let mut in_worker = Duration::ZERO;
    for _ in 0..runs {
        let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
        assert!(outcome.allowed());
        in_worker += outcome.logs[0].duration;
    }
    let per_run = started.elapsed() / runs;
    eprintln!(
        "one post-login action: {per_run:?} per execution end to end, {:?} of it in the worker",
        in_worker / runs
    );
    assert!(per_run < Duration::from_secs(1));
}

/// As on Auth0, an action's module stays loaded between its executions: its top level
/// runs once and module scope keeps what handlers put there. New code starts over, and
/// another action never shares it.
#[tokio::test]
async fn module_scope_lasts_across_executions_of_the_same_code_only() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let counting = r#"let loads = (globalThis.loads || 0) + 1; globalThis.loads = loads;
        let count = 0;
        exports.onExecutePostLogin = async (event, api) => {
            count += 1;
            api.idToken.setCustomClaim('https://x/n', [loads, count]);
        };"#;
    let changed = format!("{counting}\n// version 2");
    let other = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/other', typeof globalThis.loads);
    };"#;
    let claim = |outcome: &tessera_actions::Outcome| outcome.id_token_claims["https://x/n"].clone();
    let first = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[counting]).await;
    assert_eq!(claim(&first), json!([1, 1]));
    let second = run_actions(
        &engine,
        Trigger::PostLogin,
        post_login_event(),
        &[counting, other],
    )
    .await;
    assert_eq!(claim(&second), json!([1, 2]));
    assert_eq!(second.id_token_claims["https://x/other"], "undefined");
    let new_code = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[&changed]).await;
    assert_eq!(claim(&new_code), json!([1, 1]));
    let again = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[counting]).await;
    assert_eq!(claim(&again), json!([1, 3]));
}

/// `api` kept in module scope records into the execution running now: nothing one
/// execution recorded shows in the next.
#[tokio::test]
async fn a_kept_api_records_each_execution_on_its_own() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let code = r#"let saved = null;
        let n = 0;
        exports.onExecutePostLogin = async (event, api) => {
            saved = saved || api;
            n += 1;
            saved.idToken.setCustomClaim('https://x/run-' + n, n);
        };"#;
    for run in 1..=3 {
        let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
        assert_eq!(
            json!(outcome.id_token_claims),
            json!({ format!("https://x/run-{run}"): run })
        );
    }
}

/// A console captured at the top level writes to the execution running now, and each
/// execution's log holds only its own lines.
#[tokio::test]
async fn a_kept_context_logs_each_execution_on_its_own() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let code = r#"const log = console.log;
        let n = 0;
        exports.onExecutePostLogin = async () => { n += 1; log('run', n); };"#;
    for run in 1..=3 {
        let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
        assert_eq!(outcome.logs[0].stdout, format!("run {run}\n"));
    }
}

/// A kept context's controller starts every execution afresh: a promise of an earlier
/// execution settled late does not settle this one, an earlier failure does not fail it,
/// and its event is its own even when an earlier handler changed the one it got.
#[tokio::test]
async fn a_kept_context_settles_and_fails_each_execution_on_its_own() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let code = r#"let n = 0;
        let pending = null;
        let earlier = null;
        exports.onExecutePostLogin = (event, api) => {
            n += 1;
            if (n === 1) {
                earlier = event;
                event.client.client_id = 'changed';
                return new Promise((resolve) => { pending = resolve; });
            }
            if (n === 2) {
                // Settles the first execution's promise; this one never settles.
                pending();
                return new Promise(() => {});
            }
            if (n === 3) throw new Error('third');
            api.idToken.setCustomClaim('https://x/seen', [event.client.client_id, event === earlier, typeof event.mine]);
            event.mine = true;
        };"#;
    let never = "the handler's promise never settled (it awaits something that never resolves)";
    let first = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(failure_message(&first), never);
    let second = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(failure_message(&second), never);
    let third = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(failure_message(&third), "Error: third");
    for _ in 0..2 {
        let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
        assert!(outcome.allowed(), "{outcome:?}");
        assert_eq!(
            outcome.id_token_claims["https://x/seen"],
            json!(["client-1", false, "undefined"])
        );
    }
}

/// An action that hits a limit takes the worker's runtime with it: every kept context
/// is gone, and the next executions load their modules again.
#[tokio::test]
async fn a_limit_hit_drops_every_kept_context() {
    let engine = Engine::start(Limits {
        workers: 1,
        per_action: Duration::from_millis(300),
        ..Limits::default()
    });
    let counting = r#"let count = 0;
        exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/n', ++count); };"#;
    let looping = "exports.onExecutePostLogin = async () => { while (true) {} };";
    for expected in [1, 2] {
        let outcome =
            run_actions(&engine, Trigger::PostLogin, post_login_event(), &[counting]).await;
        assert_eq!(outcome.id_token_claims["https://x/n"], expected);
    }
    let stuck = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[looping]).await;
    assert!(!stuck.allowed());
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[counting]).await;
    assert_eq!(outcome.id_token_claims["https://x/n"], 1);
}

/// A module whose top level throws fails its execution and is loaded again next time.
#[tokio::test]
async fn a_top_level_that_throws_runs_again_next_time() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let code = r#"globalThis.tries = (globalThis.tries || 0) + 1;
        if (globalThis.tries === 1) throw new Error('not yet');
        exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/tries', globalThis.tries); };"#;
    let failed = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(failure_message(&failed), "Error: not yet");
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
    assert_eq!(outcome.id_token_claims["https://x/tries"], 2);
}

#[tokio::test]
async fn nothing_outside_the_language_is_reachable() {
    let engine = engine();
    let globals = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/g', [typeof std, typeof os, typeof print, typeof auth0,
            typeof process, typeof fetch, typeof module, typeof exports]);
    };"#;
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[globals]).await;
    assert_eq!(
        outcome.id_token_claims["https://x/g"],
        json!([
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "object",
            "object"
        ])
    );
    let import = "exports.onExecutePostLogin = async () => { await import('os'); };";
    let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[import]).await;
    assert_eq!(
        failure_message(&outcome),
        "ReferenceError: could not load module 'os'"
    );
}

/// Each execution's heap is given back: twenty executions of 16 MiB each fit in a
/// 32 MiB limit only if nothing of the previous ones is kept.
#[tokio::test]
async fn memory_is_reclaimed_between_executions() {
    let engine = Engine::start(Limits {
        workers: 1,
        ..Limits::default()
    });
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        const keep = [];
        for (let i = 0; i < 16; i++) keep.push('x'.repeat(1024 * 1024 + i));
        globalThis.kept = keep;
        api.idToken.setCustomClaim('https://x/n', keep.length);
    };"#;
    for run in 0..20 {
        let outcome = run_actions(&engine, Trigger::PostLogin, post_login_event(), &[code]).await;
        assert!(outcome.allowed(), "run {run}: {outcome:?}");
    }
}
