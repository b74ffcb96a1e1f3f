//! Administering Actions and Rules through the Management API (`/api/v2/actions/…`,
//! `/rules`, `/rules-configs`): Auth0's shapes, deploys and rollbacks, bindings by name
//! and by id, deleting a bound action, scopes, and secrets that never come back.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::actions_admin;
use tessera_testkit::{TestServer, spawn};

const ACTION_SCOPES: &[&str] = &[
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

const SECRET: &str = "s3cret-value-never-shown";
const CONFIG_VALUE: &str = "config-value-never-shown";

const CODE: &str = "exports.onExecutePostLogin = async (event, api) => {\n  api.idToken.setCustomClaim('https://example.com/v', 1);\n};";

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(SECRET) && !text.contains(CONFIG_VALUE),
        "a secret came back: {text}"
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post_login(name: &str) -> Value {
    json!({
        "name": name,
        "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": CODE,
        "runtime": "node22",
        "dependencies": [],
        "secrets": [{"name": "API_KEY", "value": SECRET}],
    })
}

#[tokio::test]
async fn an_action_is_created_deployed_rolled_back_bound_and_deleted() {
    let server = spawn().await;
    let token = server.management_token(ACTION_SCOPES).await;
    let t = token.as_str();

    let (status, action) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(post_login("roles")),
    )
    .await;
    assert_eq!(status, 201, "{action}");
    let id = action["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("act_"), "{id}");
    assert_eq!(
        action["status"], "built",
        "no build step: Terraform polls for it"
    );
    assert_eq!(action["all_changes_deployed"], false);
    assert!(action.get("deployed_version").is_none(), "{action}");
    assert_eq!(
        action["supported_triggers"],
        json!([{"id": "post-login", "version": "v3"}])
    );
    assert_eq!(action["secrets"][0]["name"], "API_KEY");
    assert!(action["secrets"][0].get("value").is_none());

    // Stored sealed, bound to the action and the name: the master key opens it.
    let sealed = server.store.action_draft_secrets(&id).await.unwrap();
    assert!(
        !sealed[0]
            .1
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes())
    );
    let opened = actions_admin::open_secrets_with(&server.master_key, &id, &sealed);
    assert_eq!(opened["API_KEY"], SECRET);

    let (status, got) = call(
        &server,
        t,
        Method::GET,
        &format!("/actions/actions/{id}"),
        None,
    )
    .await;
    assert_eq!((status, &got), (200, &action));

    // Deploy → version 1.
    let (status, v1) = call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{id}/deploy"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(
        (
            v1["number"].clone(),
            v1["deployed"].clone(),
            v1["status"].clone()
        ),
        (json!(1), json!(true), json!("built"))
    );
    assert_eq!(v1["action"]["id"], id.as_str());

    // Patch: new code, the secret kept without its value, a new one added.
    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/actions/actions/{id}"),
        Some(json!({
            "code": "exports.onExecutePostLogin = async () => { /* v2 */ };",
            "secrets": [{"name": "API_KEY"}, {"name": "OTHER", "value": "other-secret"}],
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["all_changes_deployed"], false);
    assert_eq!(patched["deployed_version"]["number"], 1);
    let names: Vec<&str> = patched["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API_KEY", "OTHER"]);
    let sealed = server.store.action_draft_secrets(&id).await.unwrap();
    assert_eq!(
        actions_admin::open_secrets_with(&server.master_key, &id, &sealed)["API_KEY"],
        SECRET
    );
    // A new secret without a value is refused.
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/actions/actions/{id}"),
        Some(json!({"secrets": [{"name": "NEW"}]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (_, v2) = call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{id}/deploy"),
        None,
    )
    .await;
    assert_eq!(v2["number"], 2);
    let (status, versions) = call(
        &server,
        t,
        Method::GET,
        &format!("/actions/actions/{id}/versions"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions["total"], 2);
    assert_eq!(versions["versions"][0]["number"], 2);
    assert_eq!(versions["versions"][1]["deployed"], false);
    let v1_id = v1["id"].as_str().unwrap();
    let (status, one) = call(
        &server,
        t,
        Method::GET,
        &format!("/actions/actions/{id}/versions/{v1_id}"),
        None,
    )
    .await;
    assert_eq!((status, one["code"].as_str()), (200, Some(CODE)));

    // Rollback to 1: a version 3 with 1's code, deployed.
    let (status, v3) = call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{id}/versions/{v1_id}/deploy"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{v3}");
    assert_eq!(
        (v3["number"].clone(), v3["code"].as_str()),
        (json!(3), Some(CODE))
    );
    let program = server.store.trigger_program("post-login").await.unwrap();
    assert!(program.is_empty(), "not bound yet");

    // A second, credentials-exchange action; a third never deployed.
    let (_, machine) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(json!({"name": "machines", "supported_triggers": [{"id": "credentials-exchange", "version": "v2"}], "code": "exports.onExecuteCredentialsExchange = async () => {};"})),
    )
    .await;
    let machine_id = machine["id"].as_str().unwrap().to_string();
    call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{machine_id}/deploy"),
        None,
    )
    .await;
    let (_, draft) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(post_login("draft")),
    )
    .await;

    // Bind by name and by id, in order.
    let (status, bound) = call(
        &server,
        t,
        Method::PATCH,
        "/actions/triggers/post-login/bindings",
        Some(json!({"bindings": [{"ref": {"type": "action_name", "value": "roles"}, "display_name": "Roles"}]})),
    )
    .await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["bindings"][0]["display_name"], "Roles");
    assert_eq!(bound["bindings"][0]["action"]["id"], id.as_str());
    assert_eq!(bound["bindings"][0]["trigger_id"], "post-login");
    let (status, bound) = call(
        &server,
        t,
        Method::PATCH,
        "/actions/triggers/credentials-exchange/bindings",
        Some(json!({"bindings": [{"ref": {"type": "action_id", "value": machine_id}}]})),
    )
    .await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["bindings"][0]["display_name"], "machines");
    let program = server.store.trigger_program("post-login").await.unwrap();
    assert_eq!(program.len(), 1);
    assert_eq!(
        program[0].code, CODE,
        "the deployed (rolled back) code runs"
    );
    assert_eq!(
        actions_admin::open_secrets_with(&server.master_key, &id, &program[0].secrets)["API_KEY"],
        SECRET
    );

    // Refused bindings name the action and change nothing.
    for (bindings, says) in [
        (
            json!([{"ref": {"type": "action_name", "value": "draft"}}]),
            "not deployed",
        ),
        (
            json!([{"ref": {"type": "action_name", "value": "machines"}}]),
            "supports credentials-exchange",
        ),
        (
            json!([{"ref": {"type": "action_id", "value": "act_nope"}}]),
            "no action",
        ),
    ] {
        let (status, body) = call(
            &server,
            t,
            Method::PATCH,
            "/actions/triggers/post-login/bindings",
            Some(json!({ "bindings": bindings })),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (_, listed) = call(
        &server,
        t,
        Method::GET,
        "/actions/triggers/post-login/bindings",
        None,
    )
    .await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["bindings"][0]["display_name"], "Roles");

    // Lists: by trigger, by name, deployed or not.
    let (_, list) = call(
        &server,
        t,
        Method::GET,
        "/actions/actions?triggerId=post-login&include_totals=true",
        None,
    )
    .await;
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["per_page"], 50);
    let (_, list) = call(
        &server,
        t,
        Method::GET,
        "/actions/actions?actionName=machines",
        None,
    )
    .await;
    assert_eq!(list["actions"][0]["id"], machine_id.as_str());
    let (_, list) = call(
        &server,
        t,
        Method::GET,
        "/actions/actions?deployed=false",
        None,
    )
    .await;
    assert_eq!(list["actions"][0]["id"], draft["id"]);
    let (_, list) = call(
        &server,
        t,
        Method::GET,
        "/actions/actions?per_page=1&page=1",
        None,
    )
    .await;
    assert_eq!(
        (
            list["total"].clone(),
            list["actions"].as_array().unwrap().len()
        ),
        (json!(3), 1)
    );

    // A bound action is deleted only with force=true, which unbinds it.
    let (status, body) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/actions/actions/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("roles"),
        "{body}"
    );
    let (status, _) = call(
        &server,
        t,
        Method::DELETE,
        &format!("/actions/actions/{id}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &server,
        t,
        Method::GET,
        &format!("/actions/actions/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, listed) = call(
        &server,
        t,
        Method::GET,
        "/actions/triggers/post-login/bindings",
        None,
    )
    .await;
    assert_eq!(listed["total"], 0);

    // An empty list unbinds everything.
    let (status, bound) = call(
        &server,
        t,
        Method::PATCH,
        "/actions/triggers/credentials-exchange/bindings",
        Some(json!({"bindings": []})),
    )
    .await;
    assert_eq!((status, bound), (200, json!({"bindings": []})));
}

#[tokio::test]
async fn triggers_are_tesseras_five() {
    let server = spawn().await;
    let token = server.management_token(&["read:actions"]).await;
    let (status, body) = call(&server, &token, Method::GET, "/actions/triggers", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "post-login",
            "credentials-exchange",
            "pre-user-registration",
            "post-user-registration",
            "post-change-password"
        ]
    );
    assert_eq!(body["triggers"][0]["version"], "v3");
    assert_eq!(body["triggers"][0]["status"], "CURRENT");
    let (status, _) = call(
        &server,
        &token,
        Method::GET,
        "/actions/triggers/send-phone-message/bindings",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_actions_are_refused_with_a_clear_message() {
    let server = spawn().await;
    let token = server.management_token(ACTION_SCOPES).await;
    let t = token.as_str();
    let mut deps = post_login("deps");
    deps["dependencies"] = json!([{"name": "lodash", "version": "4.17.21"}]);
    let mut phone = post_login("phone");
    phone["supported_triggers"] = json!([{"id": "send-phone-message", "version": "v2"}]);
    let mut two = post_login("two");
    two["supported_triggers"] = json!([{"id": "post-login", "version": "v3"}, {"id": "credentials-exchange", "version": "v2"}]);
    let mut huge = post_login("huge");
    huge["code"] = json!("x".repeat(100 * 1024 + 1));
    let mut long_secret = post_login("long");
    long_secret["secrets"] =
        json!([{"name": "K", "value": format!("{SECRET}{}", "y".repeat(5000))}]);
    let mut runtime = post_login("runtime");
    runtime["runtime"] = json!("python3");
    for (body, says) in [
        (deps, "bundle your dependencies"),
        (phone, "send-phone-message"),
        (two, "exactly one trigger"),
        (huge, "at most 102400"),
        (long_secret, "too long"),
        (runtime, "runtime"),
    ] {
        let (status, answer) = call(&server, t, Method::POST, "/actions/actions", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{says}: {answer}"
        );
    }
    let (_, list) = call(&server, t, Method::GET, "/actions/actions", None).await;
    assert_eq!(list["total"], 0, "nothing was saved");

    let (status, _) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(post_login("one")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, answer) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions",
        Some(post_login("one")),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
}

#[tokio::test]
async fn scopes_are_checked_for_every_call() {
    let server = spawn().await;
    let reader = server
        .management_token(&["read:actions", "read:rules", "read:rules_configs"])
        .await;
    let nobody = server.management_token(&["read:users"]).await;
    for (token, method, path, body) in [
        (
            &reader,
            Method::POST,
            "/actions/actions",
            Some(post_login("x")),
        ),
        (
            &reader,
            Method::PATCH,
            "/actions/triggers/post-login/bindings",
            Some(json!({"bindings": []})),
        ),
        (&reader, Method::DELETE, "/actions/actions/act_x", None),
        (&reader, Method::POST, "/actions/actions/act_x/deploy", None),
        (
            &reader,
            Method::POST,
            "/actions/actions/act_x/test",
            Some(json!({"payload": {}})),
        ),
        (
            &reader,
            Method::POST,
            "/rules",
            Some(json!({"name": "r", "script": "function (u, c, cb) {}"})),
        ),
        (
            &reader,
            Method::PUT,
            "/rules-configs/KEY",
            Some(json!({"value": "v"})),
        ),
        (&reader, Method::DELETE, "/rules-configs/KEY", None),
        (&nobody, Method::GET, "/actions/actions", None),
        (&nobody, Method::GET, "/actions/triggers", None),
        (&nobody, Method::GET, "/rules", None),
        (&nobody, Method::GET, "/rules-configs", None),
    ] {
        let (status, answer) = call(&server, token, method.clone(), path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["errorCode"], "insufficient_scope");
    }
}

#[tokio::test]
async fn rules_and_their_configuration() {
    let server = spawn().await;
    let token = server.management_token(ACTION_SCOPES).await;
    let t = token.as_str();
    let script = "function (user, context, callback) { callback(null, user, context); }";
    let (status, first) = call(
        &server,
        t,
        Method::POST,
        "/rules",
        Some(json!({"name": "first rule", "script": script})),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (
            first["order"].clone(),
            first["enabled"].clone(),
            first["stage"].clone()
        ),
        (json!(1), json!(true), json!("login_success"))
    );
    let (_, second) = call(
        &server,
        t,
        Method::POST,
        "/rules",
        Some(json!({"name": "second", "script": script, "enabled": false})),
    )
    .await;
    assert_eq!(second["order"], 2);
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/rules",
        Some(json!({"name": "third", "script": script, "order": 1})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/rules",
        Some(json!({"name": "first rule", "script": script})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/rules",
        Some(json!({"name": "x", "script": script, "stage": "pre_authorize"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (_, list) = call(&server, t, Method::GET, "/rules?enabled=true", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let id = second["id"].as_str().unwrap();
    let (status, enabled) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/rules/{id}"),
        Some(json!({"enabled": true, "order": 0})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    let running: Vec<String> = server
        .store
        .enabled_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(running, ["second", "first rule"]);
    let (_, list) = call(
        &server,
        t,
        Method::GET,
        "/rules?include_totals=true&per_page=1",
        None,
    )
    .await;
    assert_eq!(
        (list["total"].clone(), list["rules"][0]["name"].clone()),
        (json!(2), json!("second"))
    );
    let (status, _) = call(&server, t, Method::DELETE, &format!("/rules/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&server, t, Method::GET, &format!("/rules/{id}"), None).await;
    assert_eq!(status, 404);

    // Configuration: keys listed, values sealed, never shown.
    let (status, body) = call(
        &server,
        t,
        Method::PUT,
        "/rules-configs/API_KEY",
        Some(json!({"value": CONFIG_VALUE})),
    )
    .await;
    assert_eq!((status, body), (200, json!({"key": "API_KEY"})));
    let (_, keys) = call(&server, t, Method::GET, "/rules-configs", None).await;
    assert_eq!(keys, json!([{"key": "API_KEY"}]));
    let sealed = server.store.rules_configs_sealed().await.unwrap();
    assert_eq!(
        actions_admin::open_configs_with(&server.master_key, &sealed)["API_KEY"],
        CONFIG_VALUE
    );
    let (status, _) = call(
        &server,
        t,
        Method::PUT,
        "/rules-configs/bad%20key",
        Some(json!({"value": "v"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(&server, t, Method::DELETE, "/rules-configs/API_KEY", None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&server, t, Method::DELETE, "/rules-configs/API_KEY", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_test_endpoint_runs_the_draft_and_refuses_bad_input() {
    let server = spawn().await;
    let token = server.management_token(ACTION_SCOPES).await;
    let t = token.as_str();
    let mut body = post_login("tested");
    body["code"] = json!(
        "exports.onExecutePostLogin = async (event, api) => {\n  console.log('hello ' + event.user.email);\n  api.idToken.setCustomClaim('https://example.com/k', event.secrets.API_KEY.length);\n};"
    );
    let (_, action) = call(&server, t, Method::POST, "/actions/actions", Some(body)).await;
    let id = action["id"].as_str().unwrap();

    let (status, _) = call(
        &server,
        t,
        Method::POST,
        "/actions/actions/act_nope/test",
        Some(json!({"payload": {}})),
    )
    .await;
    assert_eq!(status, 404);
    for bad in [
        json!({}),
        json!({"payload": "x"}),
        json!({"payload": {}, "extra": 1}),
    ] {
        let (status, answer) = call(
            &server,
            t,
            Method::POST,
            &format!("/actions/actions/{id}/test"),
            Some(bad),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
    }

    let event = json!({"user": {"user_id": "auth0|1", "email": "a@example.com"}, "secrets": {"API_KEY": "forged"}});
    let (status, answer) = call(
        &server,
        t,
        Method::POST,
        &format!("/actions/actions/{id}/test"),
        Some(json!({"payload": event})),
    )
    .await;
    if status == 503 {
        // The engine is still the placeholder that fails closed.
        assert!(
            answer["message"].as_str().unwrap().contains("not running"),
            "{answer}"
        );
    } else {
        assert_eq!(status, 200, "{answer}");
        assert!(
            answer["payload"]["logs"]
                .as_str()
                .unwrap()
                .contains("hello a@example.com"),
            "{answer}"
        );
        // The action's own secret, not the payload's forged one.
        assert_eq!(
            answer["payload"]["commands"]["id_token_claims"]["https://example.com/k"],
            SECRET.len(),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn the_test_endpoint_shows_what_an_action_asks_of_the_session() {
    let server = spawn().await;
    let token = server.management_token(ACTION_SCOPES).await;
    let t = token.as_str();
    let mut body = post_login("session-asking");
    body["code"] = json!(
        "exports.onExecutePostLogin = async (event, api) => {\n  api.session.setMetadata('device', 'laptop').session.deleteMetadata('old');\n  api.session.setExpiresAt(1800000000000);\n  api.refreshToken.setMetadata('app', 'mobile');\n};"
    );
    let (_, action) = call(&server, t, Method::POST, "/actions/actions", Some(body)).await;
    let test = format!("/actions/actions/{}/test", action["id"].as_str().unwrap());
    let user = json!({"user_id": "auth0|1", "email": "a@example.com"});
    let event =
        json!({"user": user, "session": {"id": "s1", "metadata": {"old": "x", "kept": "y"}}});
    let (status, answer) = call(
        &server,
        t,
        Method::POST,
        &test,
        Some(json!({"payload": event})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["payload"]["commands"]["session"],
        json!({"metadata": {"device": "laptop", "kept": "y"}, "expires_at": 1_800_000_000_000_i64}),
        "{answer}"
    );
    assert_eq!(
        answer["payload"]["commands"]["refresh_token"],
        json!({"metadata": {"app": "mobile"}}),
        "the token a login issues: {answer}"
    );
    // Without a session in the event, only the end asked is shown.
    let (status, answer) = call(
        &server,
        t,
        Method::POST,
        &test,
        Some(json!({"payload": {"user": user}})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["payload"]["commands"]["session"],
        json!({"expires_at": 1_800_000_000_000_i64}),
        "{answer}"
    );
}

#[tokio::test]
async fn the_test_endpoint_shows_a_refresh_token_revocation() {
    let server = spawn().await;
    let token = server.management_token(ACTION_SCOPES).await;
    let t = token.as_str();
    let mut body = post_login("revoking");
    body["code"] = json!(
        "exports.onExecutePostLogin = async (event, api) => { api.refreshToken.revoke('stolen device'); };"
    );
    let (_, action) = call(&server, t, Method::POST, "/actions/actions", Some(body)).await;
    let test = format!("/actions/actions/{}/test", action["id"].as_str().unwrap());
    let user = json!({"user_id": "auth0|1", "email": "a@example.com"});

    let exchange = json!({"user": user, "refresh_token": {"id": "rt_1", "client_id": "c"}});
    let (status, answer) = call(
        &server,
        t,
        Method::POST,
        &test,
        Some(json!({"payload": exchange})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let commands = &answer["payload"]["commands"];
    assert_eq!(
        commands["refresh_token"],
        json!({"revoked": true, "reason": "stolen device"}),
        "{answer}"
    );
    assert_eq!(
        commands["access_denied"]["reason"], "stolen device",
        "{answer}"
    );
    assert!(answer["payload"].get("error").is_none(), "{answer}");

    // A sign-in's event has no refresh token: the revocation is the action's error.
    let (status, answer) = call(
        &server,
        t,
        Method::POST,
        &test,
        Some(json!({"payload": {"user": user}})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["payload"]["error"]["message"]
            .as_str()
            .is_some_and(|message| message
                .starts_with("api.refreshToken.revoke: this transaction has no refresh token")),
        "{answer}"
    );
    assert!(
        answer["payload"]["commands"].get("refresh_token").is_none(),
        "{answer}"
    );
}
