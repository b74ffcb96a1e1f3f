//! Administering Actions and Rules with hostile input: code over 100 kB, secrets too long
//! or named twice, npm dependencies, triggers Tessera does not run, binding undeployed,
//! unknown or another trigger's actions, names that clash (on create and on rename),
//! SQL-ish and control-character names, bodies with extra members — each refused with a
//! clear 4xx, never echoing a secret, and the tenant's actions, bindings and rules read
//! back unchanged.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::{TestServer, spawn};

use crate::harness::Tally;

const SECRET: &str = "adversarial-secret-value-9d1f";

const SCOPES: &[&str] = &[
    "read:actions",
    "create:actions",
    "update:actions",
    "delete:actions",
    "read:rules",
    "create:rules",
    "update:rules",
    "delete:rules",
    "read:rules_configs",
    "update:rules_configs",
    "delete:rules_configs",
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

fn action(name: &str) -> Value {
    json!({
        "name": name,
        "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": "exports.onExecutePostLogin = async (event, api) => {};",
        "secrets": [{"name": "KEY", "value": SECRET}],
    })
}

/// Everything an attack could have changed, as the API shows it.
async fn snapshot(server: &TestServer, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/actions/actions?per_page=100",
        "/actions/triggers/post-login/bindings",
        "/actions/triggers/credentials-exchange/bindings",
        "/rules?per_page=100",
        "/rules-configs",
    ] {
        out.push(call(server, token, Method::GET, path, None).await.1);
    }
    out
}

#[tokio::test]
async fn hostile_actions_and_rules_are_refused_and_change_nothing() {
    let mut tally = Tally::new("actions_admin/hostile_input");
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = token.as_str();

    // The tenant attacked: a deployed, bound action; a draft; one of another trigger; a rule.
    let (_, kept) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(action("kept")),
    )
    .await;
    let kept: Value = serde_json::from_str(&kept).unwrap();
    let kept_id = kept["id"].as_str().unwrap().to_string();
    call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{kept_id}/deploy"),
        None,
    )
    .await;
    let (status, _) = call(
        &server,
        t,
        Method::PATCH,
        "/actions/triggers/post-login/bindings",
        Some(json!({"bindings": [{"ref": {"type": "action_id", "value": kept_id}}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, draft) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(action("draft")),
    )
    .await;
    let draft: Value = serde_json::from_str(&draft).unwrap();
    let draft_id = draft["id"].as_str().unwrap().to_string();
    let mut machine = action("machine");
    machine["supported_triggers"] = json!([{"id": "credentials-exchange", "version": "v2"}]);
    let (_, machine) = call(&server, t, Method::POST, "/actions/actions", Some(machine)).await;
    let machine: Value = serde_json::from_str(&machine).unwrap();
    let machine_id = machine["id"].as_str().unwrap().to_string();
    call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{machine_id}/deploy"),
        None,
    )
    .await;
    call(
        &server,
        t,
        Method::POST,
        "/rules",
        Some(json!({"name": "kept rule", "script": "function (u, c, cb) { cb(null, u, c); }"})),
    )
    .await;
    let before = snapshot(&server, t).await;

    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = action("new one");
        change(&mut body);
        body
    };
    let huge = "/*".to_string() + &"x".repeat(100 * 1024) + "*/";
    let attempts: Vec<(&str, Method, String, Value, u16)> = vec![
        (
            "code over 100 kB",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| b["code"] = json!(huge)),
            400,
        ),
        (
            "a secret value over 4096 bytes",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| {
                b["secrets"] =
                    json!([{"name": "K", "value": format!("{SECRET}{}", "v".repeat(4096))}])
            }),
            400,
        ),
        (
            "a secret name over 128 characters",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| b["secrets"] = json!([{"name": "N".repeat(129), "value": SECRET}])),
            400,
        ),
        (
            "a secret named twice",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| {
                b["secrets"] =
                    json!([{"name": "K", "value": SECRET}, {"name": "K", "value": "other-value"}])
            }),
            400,
        ),
        (
            "a secret with NUL in its name",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| b["secrets"] = json!([{"name": "K\u{0}X", "value": SECRET}])),
            400,
        ),
        (
            "npm dependencies",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| b["dependencies"] = json!([{"name": "axios", "version": "1.6.0"}])),
            400,
        ),
        (
            "a trigger Tessera does not run",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| {
                b["supported_triggers"] = json!([{"id": "custom-token-exchange", "version": "v1"}])
            }),
            400,
        ),
        (
            "two triggers",
            Method::POST,
            "/actions/actions".into(),
            with(
                &|b| b["supported_triggers"] = json!([{"id": "post-login", "version": "v3"}, {"id": "post-login", "version": "v3"}]),
            ),
            400,
        ),
        (
            "no trigger",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| b["supported_triggers"] = json!([])),
            400,
        ),
        (
            "a duplicate name",
            Method::POST,
            "/actions/actions".into(),
            action("kept"),
            409,
        ),
        (
            "an SQL-ish name with control characters",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| b["name"] = json!("x'); DELETE FROM actions; --\u{7}")),
            400,
        ),
        (
            "mass assignment (id, deployed_version, status)",
            Method::POST,
            "/actions/actions".into(),
            with(&|b| {
                b["id"] = json!("act_mine");
                b["status"] = json!("failed");
            }),
            400,
        ),
        (
            "a rename onto an existing name",
            Method::PATCH,
            format!("/actions/actions/{draft_id}"),
            json!({"name": "kept"}),
            409,
        ),
        (
            "an update adding a secret without a value",
            Method::PATCH,
            format!("/actions/actions/{draft_id}"),
            json!({"secrets": [{"name": "KEY"}, {"name": "GUESS"}]}),
            400,
        ),
        (
            "binding an undeployed action",
            Method::PATCH,
            "/actions/triggers/post-login/bindings".into(),
            json!({"bindings": [{"ref": {"type": "action_id", "value": draft_id}}]}),
            400,
        ),
        (
            "binding another trigger's action",
            Method::PATCH,
            "/actions/triggers/post-login/bindings".into(),
            json!({"bindings": [{"ref": {"type": "action_id", "value": machine_id}}]}),
            400,
        ),
        (
            "binding an unknown id (another tenant's)",
            Method::PATCH,
            "/actions/triggers/post-login/bindings".into(),
            json!({"bindings": [{"ref": {"type": "action_id", "value": "act_OtherTenant0001"}}]}),
            400,
        ),
        (
            "binding by an SQL-ish name",
            Method::PATCH,
            "/actions/triggers/post-login/bindings".into(),
            json!({"bindings": [{"ref": {"type": "action_name", "value": "kept' OR '1'='1"}}]}),
            400,
        ),
        (
            "binding one action twice",
            Method::PATCH,
            "/actions/triggers/post-login/bindings".into(),
            json!({"bindings": [{"ref": {"type": "action_id", "value": kept_id}}, {"ref": {"type": "action_name", "value": "kept"}}]}),
            400,
        ),
        (
            "a ref of an unknown type",
            Method::PATCH,
            "/actions/triggers/post-login/bindings".into(),
            json!({"bindings": [{"ref": {"type": "code", "value": "exports.x = 1"}}]}),
            400,
        ),
        (
            "bindings of a trigger that does not exist",
            Method::PATCH,
            "/actions/triggers/..%2Fpost-login/bindings".into(),
            json!({"bindings": []}),
            404,
        ),
        (
            "deleting a bound action without force",
            Method::DELETE,
            format!("/actions/actions/{kept_id}"),
            Value::Null,
            409,
        ),
        (
            "rolling back to another action's version",
            Method::POST,
            format!(
                "/actions/actions/{draft_id}/versions/{}/deploy",
                kept["id"].as_str().unwrap()
            ),
            json!({}),
            404,
        ),
        (
            "a rule with an SQL-ish name",
            Method::POST,
            "/rules".into(),
            json!({"name": "r'; DROP TABLE rules; --", "script": "function (u, c, cb) {}"}),
            400,
        ),
        (
            "a rule at another stage",
            Method::POST,
            "/rules".into(),
            json!({"name": "pre", "script": "function (u, c, cb) {}", "stage": "pre_authorize"}),
            400,
        ),
        (
            "a rule taking an existing order",
            Method::POST,
            "/rules".into(),
            json!({"name": "second", "script": "function (u, c, cb) {}", "order": 1}),
            409,
        ),
        (
            "a rule with a negative order",
            Method::POST,
            "/rules".into(),
            json!({"name": "negative", "script": "function (u, c, cb) {}", "order": -5}),
            400,
        ),
        (
            "a rules-config key with a path in it",
            Method::PUT,
            "/rules-configs/..%2F..%2Fetc".into(),
            json!({"value": SECRET}),
            400,
        ),
        (
            "a rules-config value over 4096 bytes",
            Method::PUT,
            "/rules-configs/BIG".into(),
            json!({"value": format!("{SECRET}{}", "v".repeat(4096))}),
            400,
        ),
    ];
    for (what, method, path, body, expected) in attempts {
        let body = (!body.is_null()).then_some(body);
        let (status, text) = call(&server, t, method.clone(), &path, body).await;
        tally.status(
            format_args!("{what}: {method} {path} → {text}"),
            status,
            expected,
        );
        tally.case(
            format_args!("{what}: the answer does not repeat the secret"),
            !text.contains(SECRET) && !text.contains("adversarial-secret"),
            &text,
        );
    }
    let after = snapshot(&server, t).await;
    for (index, (was, is)) in before.iter().zip(&after).enumerate() {
        tally.case(
            format_args!("list {index} is unchanged"),
            was == is,
            format_args!("{was}\n→ {is}"),
        );
    }
    for text in &after {
        tally.case(
            "no list shows a secret's value",
            !text.contains(SECRET),
            text,
        );
    }
    tally.finish();
}
