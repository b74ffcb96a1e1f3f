//! The audit log end to end: sign-ins, token exchanges and their failures, lockouts and
//! Management API writes become Auth0's events; `GET /api/v2/logs` pages them by
//! checkpoint (following `Link`) and searches them; `/logs/{id}` and `/users/{id}/logs`;
//! scopes and bad queries refused in Auth0's error shape.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::*;

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token)
        .header("user-agent", "audit-test/1.0");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        link,
    )
}

/// Every event, by checkpoint, following `Link` until a page comes back empty.
async fn every_event(server: &TestServer, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/logs?take=3&from=0".to_string();
    for _ in 0..1000 {
        let (status, page, link) = call(server, token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        let link = link.expect("a checkpoint page links to the next");
        let next = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(url, rel)| {
                assert_eq!(rel, "; rel=\"next\"");
                url.to_string()
            })
            .unwrap();
        assert!(next.starts_with(&server.issuer), "{next}");
        path = next[server.issuer.len() - 1..]
            .trim_start_matches("/api/v2")
            .to_string();
        if page.is_empty() {
            return events;
        }
        assert!(page.len() <= 3);
        events.extend(page);
    }
    panic!("the log did not end");
}

fn of_type<'a>(events: &'a [Value], log_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == log_type).collect()
}

#[tokio::test]
async fn sign_ins_exchanges_and_changes_are_logged_in_auth0s_shapes() {
    let server = spawn().await;
    let browser = browser();
    // A hosted login and its code exchange; a refresh.
    let tokens = server
        .code_flow(&browser, "openid offline_access", None)
        .await;
    let (status, _) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    // A wrong password and an unknown account.
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid"),
        ("prompt", "login"),
    ]);
    let wrong = server
        .submit_login(
            &tessera_testkit::browser(),
            &url,
            &server.user_email,
            "not the password",
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let unknown = server
        .submit_login(
            &tessera_testkit::browser(),
            &url,
            "nobody@example.com",
            "whatever it is",
        )
        .await;
    assert_eq!(unknown.status(), 401);
    // A code exchange that fails, client credentials that fail.
    let (status, _) = server
        .redeem("not-a-code", "verifier-verifier-verifier-verifier-verifier")
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", "wrong"),
            ("audience", API),
        ])
        .await;
    assert_eq!(status, 401);

    // A Management API change, and one refused.
    let (manager, token) = server
        .management_client(&[
            "read:logs",
            "read:logs_users",
            "create:clients",
            "update:clients",
        ])
        .await;
    let (status, created, _) = call(
        &server,
        &token,
        Method::POST,
        "/clients",
        Some(json!({"name": "Audited", "app_type": "regular_web", "callbacks": ["https://app.example/cb"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let client_path = format!("/clients/{}", created["client_id"].as_str().unwrap());
    let (status, _, _) = call(
        &server,
        &token,
        Method::PATCH,
        &client_path,
        Some(json!({"app_type": "nonsense"})),
    )
    .await;
    assert_eq!(status, 400);

    let events = every_event(&server, &token).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["log_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, ids growing: {ids:?}"
    );

    let login = of_type(&events, "s");
    assert_eq!(login.len(), 1, "{events:#?}");
    assert_eq!(login[0]["user_id"], server.user_id.as_str());
    assert_eq!(login[0]["client_id"], server.spa_client_id.as_str());
    assert!(login[0]["date"].as_str().unwrap().ends_with('Z'));
    assert!(login[0]["ip"].as_str().unwrap().starts_with("127."));
    let exchange = of_type(&events, "seacft");
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0]["user_id"], server.user_id.as_str());
    assert_eq!(of_type(&events, "sertft").len(), 1);
    let wrong = of_type(&events, "fp");
    assert_eq!(wrong.len(), 1);
    assert_eq!(wrong[0]["user_id"], server.user_id.as_str());
    let unknown = of_type(&events, "fu");
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["user_name"], "nobody@example.com");
    assert!(unknown[0].get("user_id").is_none());
    assert_eq!(of_type(&events, "feacft").len(), 1);
    let failed_machine = of_type(&events, "feccft");
    assert_eq!(failed_machine.len(), 1);
    assert_eq!(
        failed_machine[0]["client_id"],
        server.m2m_client_id.as_str()
    );
    // The management client's own token is a client-credentials exchange too.
    assert!(!of_type(&events, "seccft").is_empty());

    let change = of_type(&events, "sapi");
    assert_eq!(change.len(), 1, "{change:#?}");
    let request = &change[0]["details"]["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/api/v2/clients");
    assert_eq!(request["auth"]["client_id"], manager.as_str());
    assert_eq!(request["body"]["name"], "Audited");
    assert_eq!(change[0]["details"]["response"]["statusCode"], 201);
    assert_eq!(change[0]["details"]["response"]["body"]["name"], "Audited");
    assert!(
        change[0]["details"]["response"]["body"]
            .get("client_secret")
            .is_none()
    );
    assert_eq!(change[0]["user_agent"], "audit-test/1.0");
    let refused = of_type(&events, "fapi");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["details"]["response"]["statusCode"], 400);
    assert_eq!(refused[0]["details"]["request"]["method"], "PATCH");

    // Neither the password typed nor the secret given out is anywhere.
    let everything = serde_json::to_string(&events).unwrap();
    for secret in [
        secret.as_str(),
        "not the password",
        "whatever it is",
        PASSWORD,
    ] {
        assert!(!everything.contains(secret), "{secret} is in the log");
    }

    // One event by id; a search by type and by user; a user's events.
    let (status, one, _) = call(
        &server,
        &token,
        Method::GET,
        &format!("/logs/{}", wrong[0]["log_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(&one, wrong[0]);
    let (status, found, _) = call(
        &server,
        &token,
        Method::GET,
        "/logs?q=type:fp&include_totals=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1);
    assert_eq!(found["logs"][0]["log_id"], wrong[0]["log_id"]);
    let q = format!(
        "/logs?q=user_id:%22{}%22%20AND%20type:s&sort=date:1",
        server.user_id.replace('|', "%7C")
    );
    let (status, found, _) = call(&server, &token, Method::GET, &q, None).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, mine, _) = call(
        &server,
        &token,
        Method::GET,
        &format!("/users/{}/logs", server.user_id),
        None,
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    let mine = mine.as_array().unwrap();
    assert!(mine.len() >= 4, "{mine:#?}");
    assert!(mine.iter().all(|e| e["user_id"] == server.user_id.as_str()));
    let dates: Vec<&str> = mine.iter().map(|e| e["date"].as_str().unwrap()).collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {dates:?}"
    );
}

#[tokio::test]
async fn bad_queries_unknown_ids_and_missing_scopes_are_refused() {
    let server = spawn().await;
    let token = server.management_token(&["read:logs"]).await;
    for path in [
        "/logs?take=0",
        "/logs?take=101",
        "/logs?from=abc",
        "/logs?from=1&q=type:s",
        "/logs?q=ip:1.2.3.4",
        "/logs?q=type:s%20OR%20type:f",
        "/logs?q=date:%5Bnope%20TO%20*%5D",
        "/logs?sort=user_id:1",
        "/logs?per_page=101",
        "/logs?page=20&per_page=100",
        "/logs?unknown=1",
    ] {
        let (status, body, _) = call(&server, &token, Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["statusCode"], 400, "{path}");
        assert!(
            body["message"].is_string() && body["errorCode"].is_string(),
            "{path}: {body}"
        );
    }
    for id in ["00000000000000099999", "x", "-1"] {
        let (status, body, _) =
            call(&server, &token, Method::GET, &format!("/logs/{id}"), None).await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["errorCode"], "inexistent_log");
    }
    let other = server.management_token(&["read:users"]).await;
    for path in ["/logs", "/logs/1", "/users/auth0%7C1/logs"] {
        let (status, body, _) = call(&server, &other, Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["errorCode"], "insufficient_scope");
    }
    let users_only = server.management_token(&["read:logs_users"]).await;
    let (status, _, _) = call(
        &server,
        &users_only,
        Method::GET,
        "/users/auth0%7C1/logs",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(&server, &users_only, Method::GET, "/logs", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_purge_keeps_events_for_the_tenants_retention() {
    let server = spawn_with(|config| {
        config.purge_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let token = server
        .management_token(&[
            "read:logs",
            "update:tenant_settings",
            "read:tenant_settings",
        ])
        .await;
    for days in [json!(0), json!(3651), json!(1.5), json!("7")] {
        let (status, body, _) = call(
            &server,
            &token,
            Method::PATCH,
            "/tenants/settings",
            Some(json!({ "log_retention_days": days })),
        )
        .await;
        assert_eq!(status, 400, "{days}: {body}");
    }
    let (status, body, _) = call(
        &server,
        &token,
        Method::PATCH,
        "/tenants/settings",
        Some(json!({ "log_retention_days": 2 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["log_retention_days"], 2);

    let day = 86_400_000;
    let now = now() * 1000;
    let event = |age: i64, description: &str| tessera_store::LogEvent {
        date: now - age,
        log_type: "s".into(),
        description: Some(description.into()),
        details: json!({}),
        ..Default::default()
    };
    server
        .store
        .append_logs(&[
            event(3 * day, "three days old"),
            event(2 * day + 60_000, "just past two days"),
            event(2 * day - 3_600_000, "within two days"),
            event(day, "a day old"),
        ])
        .await
        .unwrap();
    // The purge runs every 50 ms; bounded wait for the old events to go.
    let mut kept = Vec::new();
    for _ in 0..400 {
        kept = server
            .store
            .logs_after(None, 100, Some("s"))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| e.event.description)
            .collect();
        if kept.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(kept, ["within two days", "a day old"]);
}

/// The events of `log_type`, newest first, as `GET /api/v2/logs?q=type:…` answers them
/// (the read waits for what this node queued before it).
pub(crate) async fn events_of(server: &TestServer, log_type: &str) -> Vec<Value> {
    let token = server.management_token(&["read:logs"]).await;
    let (status, found, _) = call(
        server,
        &token,
        Method::GET,
        &format!("/logs?q=type:{log_type}&per_page=100"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    found.as_array().unwrap().clone()
}

/// The whole log as text, to look for what must not be in it.
pub(crate) async fn whole_log(server: &TestServer) -> String {
    let token = server.management_token(&["read:logs"]).await;
    serde_json::to_string(&every_event(server, &token).await).unwrap()
}

#[tokio::test]
async fn a_change_records_the_objects_state_before_it_as_the_caller_reads_it() {
    let server = spawn().await;
    let (_, token) = server
        .management_client(&[
            "read:logs",
            "create:clients",
            "read:clients",
            "update:clients",
            "delete:clients",
        ])
        .await;
    let (status, created, _) = call(
        &server,
        &token,
        Method::POST,
        "/clients",
        Some(json!({"name": "Before", "app_type": "regular_web"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let path = format!("/clients/{}", created["client_id"].as_str().unwrap());
    let (status, _, _) = call(
        &server,
        &token,
        Method::PATCH,
        &path,
        Some(json!({"name": "After"})),
    )
    .await;
    assert_eq!(status, 200);
    // A refused change keeps the state it was refused on.
    let (status, _, _) = call(
        &server,
        &token,
        Method::PATCH,
        &path,
        Some(json!({"app_type": "nonsense"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, answer, _) = call(&server, &token, Method::DELETE, &path, None).await;
    assert_eq!(status, 204, "{answer}");
    // A caller that may change but not read the object: the state is not read for it.
    let writer = server
        .management_token(&["update:clients", "read:logs"])
        .await;
    let (status, _, _) = call(
        &server,
        &writer,
        Method::PATCH,
        &format!("/clients/{}", server.m2m_client_id),
        Some(json!({"description": "changed blind"})),
    )
    .await;
    assert_eq!(status, 200);

    let changes = events_of(&server, "sapi").await;
    let find = |method: &str, path: &str| {
        changes
            .iter()
            .find(|e| {
                e["details"]["request"]["method"] == method
                    && e["details"]["request"]["path"] == format!("/api/v2{path}")
            })
            .unwrap_or_else(|| panic!("no {method} {path}: {changes:#?}"))
            .clone()
    };
    let created_event = find("POST", "/clients");
    assert!(
        created_event["details"].get("before").is_none(),
        "a creation has no before"
    );
    let renamed = find("PATCH", &path);
    assert_eq!(
        renamed["details"]["before"]["name"], "Before",
        "{renamed:#}"
    );
    assert_eq!(renamed["details"]["response"]["body"]["name"], "After");
    let deleted = find("DELETE", &path);
    assert_eq!(deleted["details"]["before"]["name"], "After");
    let refused = events_of(&server, "fapi").await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["details"]["before"]["name"], "After");
    let blind = find("PATCH", &format!("/clients/{}", server.m2m_client_id));
    assert_eq!(
        blind["details"]["before"],
        json!({"omitted": "not read: GET answered 403"})
    );
    let everything = serde_json::to_string(&changes).unwrap();
    assert!(
        !everything.contains(&secret),
        "the client secret is in the log"
    );
}
