//! The audit log attacked: secrets handed to the flows and the Management API (a wrong
//! password at the login page and in a password grant, a client secret created, rotated
//! and in the state a change was read before, a user's password set and changed, a rules-config value, an SMTP password)
//! looked for in every event `GET /api/v2/logs` returns; hostile log queries (SQL and
//! Lucene in `q`, NUL, 10 kB, checkpoints that are not ids, ranges that are not dates)
//! refused with Auth0's 400 or read literally; writes nobody authenticated for leaving no
//! event, however many; a user agent of 10 kB kept short; what users type into sign-up,
//! email verification and the second factor (passwords, forged tickets, hostile codes)
//! in no event, while each attempt is recorded.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::*;

use crate::harness::Tally;

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

/// Every event, by checkpoint (bounded).
async fn every_event(server: &TestServer, token: &str) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    for _ in 0..200 {
        let from = events.last().map_or("0".to_string(), |e| {
            e["log_id"].as_str().unwrap().to_string()
        });
        let (status, page) = call(
            server,
            Some(token),
            Method::GET,
            &format!("/logs?from={from}&take=100"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
    panic!("the log did not end");
}

#[tokio::test]
async fn no_secret_reaches_the_audit_log() {
    let mut tally = Tally::new("audit_log/secrets");
    let server = spawn().await;
    let token = server
        .management_token(&[
            "read:logs",
            "create:clients",
            "read:clients",
            "read:client_keys",
            "update:clients",
            "update:client_keys",
            "create:users",
            "update:users",
            "update:rules_configs",
            "create:email_provider",
        ])
        .await;
    let mut secrets: Vec<(&str, String)> = Vec::new();

    let wrong_password = "Wrong-Password-For-The-Audit-7";
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let response = server
        .submit_login(&browser(), &url, &server.user_email, wrong_password)
        .await;
    tally.status(
        "a wrong password at the login page",
        response.status().as_u16(),
        401,
    );
    secrets.push((
        "the wrong password typed at the login page",
        wrong_password.into(),
    ));

    let (status, created) = call(
        &server,
        Some(&token),
        Method::POST,
        "/clients",
        Some(json!({"name": "Secretive", "app_type": "regular_web",
                    "grant_types": ["password", "client_credentials"]})),
    )
    .await;
    tally.status("creating a client", status, 201);
    let client_id = created["client_id"].as_str().unwrap().to_string();
    secrets.push((
        "the created client's secret",
        created["client_secret"].as_str().unwrap().into(),
    ));
    let (status, rotated) = call(
        &server,
        Some(&token),
        Method::POST,
        &format!("/clients/{client_id}/rotate-secret"),
        None,
    )
    .await;
    tally.status("rotating its secret", status, 200);
    let rotated_secret = rotated["client_secret"].as_str().unwrap().to_string();
    secrets.push(("the rotated secret", rotated_secret.clone()));
    let (status, _) = server
        .token(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("client_secret", &rotated_secret),
            ("username", &server.user_email),
            ("password", "Grant-Wrong-Password-8"),
        ])
        .await;
    tally.status_in(
        "a wrong password in a password grant",
        status,
        &[400, 401, 403],
    );
    secrets.push((
        "the wrong password of a password grant",
        "Grant-Wrong-Password-8".into(),
    ));
    // A change read before by a caller who may read the client's keys: the state before
    // is kept, its secret is not.
    let (status, _) = call(
        &server,
        Some(&token),
        Method::PATCH,
        &format!("/clients/{client_id}"),
        Some(json!({"name": "Secretive, renamed"})),
    )
    .await;
    tally.status("renaming the client", status, 200);

    let (status, user) = call(
        &server,
        Some(&token),
        Method::POST,
        "/users",
        Some(
            json!({"email": "audited@example.com", "password": "Created-Password-9",
                    "connection": "Username-Password-Authentication"}),
        ),
    )
    .await;
    tally.status("creating a user with a password", status, 201);
    secrets.push(("a created user's password", "Created-Password-9".into()));
    let user_id = user["user_id"].as_str().unwrap().replace('|', "%7C");
    let (status, _) = call(
        &server,
        Some(&token),
        Method::PATCH,
        &format!("/users/{user_id}"),
        Some(json!({"password": "Changed-Password-10"})),
    )
    .await;
    tally.status("changing the user's password", status, 200);
    secrets.push(("a changed password", "Changed-Password-10".into()));
    let (status, _) = call(
        &server,
        Some(&token),
        Method::PUT,
        "/rules-configs/API_KEY",
        Some(json!({"value": "Rules-Config-Secret-11"})),
    )
    .await;
    tally.status("setting a rules-config", status, 200);
    secrets.push(("a rules-config value", "Rules-Config-Secret-11".into()));
    let (status, provider) = call(
        &server,
        Some(&token),
        Method::POST,
        "/emails/provider",
        Some(
            json!({"name": "smtp", "enabled": true, "default_from_address": "id@example.com",
                    "credentials": {"smtp_host": "127.0.0.1", "smtp_port": 2525,
                                    "smtp_user": "mailer", "smtp_pass": "Smtp-Password-12"}}),
        ),
    )
    .await;
    tally.status_in("configuring an SMTP provider", status, &[200, 201]);
    let _ = provider;
    secrets.push(("an SMTP password", "Smtp-Password-12".into()));

    let events = every_event(&server, &token).await;
    tally.case(
        "the writes were recorded",
        events.iter().filter(|e| e["type"] == "sapi").count() >= 6,
        format!("{} events", events.len()),
    );
    tally.case(
        "the rename kept the client's state before it",
        events.iter().any(|e| {
            e["type"] == "sapi"
                && e["details"]["request"]["method"] == "PATCH"
                && e["details"]["before"]["name"] == "Secretive"
        }),
        "no before",
    );
    tally.case(
        "the wrong passwords were recorded",
        events.iter().any(|e| e["type"] == "fp") && events.iter().any(|e| e["type"] == "fepft"),
        "fp and fepft",
    );
    let everything = serde_json::to_string(&events).unwrap();
    for (what, secret) in &secrets {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        tally.case(
            format!("{what} is in no event"),
            !everything.contains(secret.as_str()) && !everything.contains(&encoded),
            "found in the log",
        );
    }
    tally.finish();
}

#[tokio::test]
async fn hostile_log_queries_are_refused_or_read_literally() {
    let mut tally = Tally::new("audit_log/queries");
    let server = spawn().await;
    let token = server
        .management_token(&["read:logs", "read:logs_users"])
        .await;
    let long = format!("/logs?q=type:{}", "a".repeat(10_000));
    for path in [
        "/logs?q=type:s%00",
        long.as_str(),
        "/logs?q=type:s;DROP%20TABLE%20logs",
        "/logs?q=(type:s)",
        "/logs?q=type:s%20OR%201=1",
        "/logs?q=type:s*",
        "/logs?q=user_id:%22a%22%20AND%20user_id:%22b%22",
        "/logs?q=date:%5B1%20TO%202%5D",
        "/logs?q=date:%5B2026-02-30%20TO%20*%5D",
        "/logs?q=date:%5B*%20TO%20*%5D%20AND%20date:%5B*%20TO%20*%5D",
        "/logs?from=-1",
        "/logs?from=99999999999999999999999",
        "/logs?from=1e3",
        "/logs?take=-1",
        "/logs?take=1000000",
        "/logs?take=1&take=2",
        "/logs?from=1&page=1",
        "/logs?sort=date:0",
        "/logs?page=-1",
        "/logs?page=10&per_page=100",
        "/users/auth0%7C1/logs?q=type:s",
    ] {
        let (status, body) = call(&server, Some(&token), Method::GET, path, None).await;
        tally.case(
            format!("GET {path}"),
            status == 400 && body["statusCode"] == 400 && body["errorCode"].is_string(),
            format!("{status} {body}"),
        );
    }
    // Quoted, SQL and markup are values, matched literally: nothing found, nothing broken.
    for q in [
        "user_id:%22'%20OR%20'1'='1%22",
        "client_id:%22%3Cscript%3E%22",
        "type:%22s%5C%22%20OR%20type:f%22",
    ] {
        let (status, body) = call(
            &server,
            Some(&token),
            Method::GET,
            &format!("/logs?q={q}"),
            None,
        )
        .await;
        tally.case(
            format!("q={q} read literally"),
            status == 200 && body.as_array().is_some_and(Vec::is_empty),
            format!("{status} {body}"),
        );
    }
    tally.finish();
}

#[tokio::test]
async fn writes_nobody_authenticated_for_leave_no_event() {
    let mut tally = Tally::new("audit_log/unauthenticated");
    let server = spawn().await;
    let token = server.management_token(&["read:logs"]).await;
    let before = every_event(&server, &token).await.len();
    for attempt in 0..50 {
        let (status, _) = call(
            &server,
            if attempt % 2 == 0 {
                None
            } else {
                Some("forged.token.here")
            },
            Method::POST,
            "/clients",
            Some(json!({"name": format!("flood {attempt}")})),
        )
        .await;
        if attempt < 2 {
            tally.status(format!("an unauthenticated write #{attempt}"), status, 401);
        }
    }
    let after = every_event(&server, &token).await;
    tally.case(
        "50 refused writes without a caller add no event",
        after.len() == before,
        format!("{before} → {}", after.len()),
    );

    // A huge user agent on a recorded failure is kept short.
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("user-agent", "U".repeat(10_000))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", server.m2m_client_id.as_str()),
            ("client_secret", "wrong-secret-for-the-audit"),
            ("audience", API),
        ])
        .send()
        .await
        .unwrap();
    tally.status(
        "client credentials with a wrong secret",
        response.status().as_u16(),
        401,
    );
    let events = every_event(&server, &token).await;
    let failed = events.iter().find(|e| e["type"] == "feccft");
    tally.case(
        "the failure is recorded with a user agent of at most 256 characters",
        failed.is_some_and(|e| e["user_agent"].as_str().is_some_and(|ua| ua.len() <= 256)),
        format!("{failed:?}"),
    );
    let everything = serde_json::to_string(&events).unwrap();
    tally.case(
        "the wrong secret is in no event",
        !everything.contains("wrong-secret-for-the-audit"),
        "found",
    );
    tally.finish();
}

/// What users type into sign-up, email verification and the second factor, hostile or not,
/// looked for in every event: a sign-up's password (accepted, refused as weak, refused for
/// a taken address), tickets that are forged, huge or markup, and one-time codes that are
/// wrong, markup or a token's look. Each attempt is still recorded (`ss`, `fs`, `fv`,
/// `gd_auth_failed`), naming the factor, never what was typed.
#[tokio::test]
async fn nothing_typed_into_sign_up_verification_or_a_second_factor_is_logged() {
    let mut tally = Tally::new("audit_log/typed");
    let server = spawn().await;
    let token = server
        .management_token(&[
            "read:logs",
            "update:guardian_factors",
            "update:mfa_policies",
            "update:connections",
        ])
        .await;
    let mut secrets: Vec<String> = Vec::new();

    // Sign-ups: one accepted, one weak, one for a taken address.
    for (email, password, expected) in [
        ("signed.up@example.com", "Signup-Password-13-long", 200),
        ("weak@example.com", "Weak-14", 400),
        (server.user_email.as_str(), "Taken-Address-Password-15", 400),
    ] {
        let response = reqwest::Client::new()
            .post(server.url("/dbconnections/signup"))
            .json(&json!({"client_id": server.spa_client_id, "email": email,
                          "password": password,
                          "connection": "Username-Password-Authentication"}))
            .send()
            .await
            .unwrap();
        tally.status(
            format!("a sign-up of {email}"),
            response.status().as_u16(),
            expected,
        );
        secrets.push(password.to_string());
    }

    // Sign-up disabled on the connection, then a hostile attempt: refused before any
    // account is made, still recorded (`fs`), with the address cut short and no password.
    let (status, _) = call(
        &server,
        Some(&token),
        Method::PATCH,
        &format!("/connections/{}", tessera_core::DATABASE_CONNECTION_ID),
        Some(json!({"options": {"disable_signup": true}})),
    )
    .await;
    tally.status("disabling sign-up", status, 200);
    let hostile_email = format!("<script>x</script>{}@example.com", "h".repeat(10_000));
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/signup"))
        .json(
            &json!({"client_id": server.spa_client_id, "email": hostile_email,
                      "password": "Disabled-Signup-Password-21",
                      "connection": "Username-Password-Authentication"}),
        )
        .send()
        .await
        .unwrap();
    tally.status(
        "a sign-up where sign-up is disabled",
        response.status().as_u16(),
        400,
    );
    secrets.push("Disabled-Signup-Password-21".to_string());

    // Verification tickets: forged, huge, markup; each refused with the same page. The
    // browser has its CSRF cookie from a login page, so only the ticket is wrong.
    let mail_client = browser();
    let response = mail_client
        .get(server.authorize_url(&[("response_type", "token"), ("scope", "openid")]))
        .send()
        .await
        .unwrap();
    let login = mail_client
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&login, "csrf");
    for ticket in [
        "Forged-Ticket-16-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(),
        format!("Huge-Ticket-17-{}", "b".repeat(10_000)),
        "<script>Markup-Ticket-18</script>".to_string(),
    ] {
        let response = mail_client
            .post(server.url("/u/email-verification"))
            .form(&[("ticket", ticket.as_str()), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        tally.status("a forged ticket posted", response.status().as_u16(), 400);
        secrets.push(ticket);
    }

    // The second factor required; the login's enrollment page given wrong codes.
    for (path, body) in [
        ("/guardian/factors/otp", json!({"enabled": true})),
        ("/guardian/policies", json!(["all-applications"])),
    ] {
        let (status, _) = call(&server, Some(&token), Method::PUT, path, Some(body)).await;
        tally.status(format!("PUT {path}"), status, 200);
    }
    let user = browser();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &pkce().challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = server
        .submit_login(&user, &url, &server.user_email, PASSWORD)
        .await;
    let to = location(&response);
    tally.case(
        "the password leads to the second factor",
        to.starts_with("/u/mfa?state="),
        &to,
    );
    let page = user
        .get(server.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let typed = [
        "<img src=x onerror=alert(1)>OTP-19",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.OTP-20",
        "9876543210987654",
    ];
    for code in typed {
        let response = user
            .post(server.url("/u/mfa"))
            .form(&[
                ("state", hidden_field(&page, "state")),
                ("csrf", hidden_field(&page, "csrf")),
                ("action", hidden_field(&page, "action")),
                ("code", code.to_string()),
            ])
            .send()
            .await
            .unwrap();
        tally.status("a wrong one-time code", response.status().as_u16(), 401);
        secrets.push(code.to_string());
    }

    let events = every_event(&server, &token).await;
    let count = |log_type: &str| events.iter().filter(|e| e["type"] == log_type).count();
    tally.case("the sign-up is recorded", count("ss") == 1, count("ss"));
    tally.case(
        "the three refusals are recorded",
        count("fs") == 3,
        count("fs"),
    );
    let disabled = events
        .iter()
        .find(|e| e["type"] == "fs" && e["description"] == "Public signup is disabled");
    tally.case(
        "the refusal by the connection names a shortened address",
        disabled.is_some_and(|e| {
            e["user_name"]
                .as_str()
                .is_some_and(|name| name.chars().count() <= 256)
        }),
        format!("{disabled:?}")
            .chars()
            .take(300)
            .collect::<String>(),
    );
    tally.case(
        "the forged tickets are recorded",
        count("fv") >= 1,
        count("fv"),
    );
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "gd_auth_failed")
        .collect();
    tally.case(
        "every wrong code is recorded, naming the factor only",
        failed.len() == typed.len()
            && failed
                .iter()
                .all(|e| e["details"] == json!({"authenticator": "otp"})),
        format!("{failed:?}"),
    );
    let everything = serde_json::to_string(&events).unwrap();
    for secret in &secrets {
        let shown: String = secret.chars().take(40).collect();
        tally.case(
            format!("{shown} is in no event"),
            !everything.contains(secret.as_str()),
            "found in the log",
        );
    }
    tally.case(
        "no event holds a piece of a typed token or markup",
        !everything.contains("eyJ") && !everything.contains("onerror"),
        "found in the log",
    );
    tally.finish();
}
