//! "Forgot password?" end to end: the real server, real HTTP, and a real SMTP conversation
//! with an in-test receiver (`tessera_testkit::smtp`) that hands over the mails.

use std::time::Duration;

use tessera_server::MailConfig;
use tessera_testkit::logs::LogCapture;
use tessera_testkit::*;

const NEW_PASSWORD: &str = "a brand new passphrase 42";
const SENT: &str = "If an account exists for that address, we sent a code to it.";
const WRONG_CODE: &str = "That code is wrong or has expired.";

/// The login page of a new transaction: (its URL, its HTML).
async fn login_page(server: &TestServer, browser: &reqwest::Client) -> (String, String) {
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", &pkce().challenge),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let url = server.url(&location(&response));
    let page = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (url, page)
}

/// From the login page: "Forgot password?" → the email form → submitted. Returns the
/// transaction id and the page that asks for the code.
async fn ask_for_code(
    server: &TestServer,
    browser: &reqwest::Client,
    email: &str,
) -> (String, String) {
    let (_, login) = login_page(server, browser).await;
    let transaction = hidden_field(&login, "state");
    let link = format!("/u/reset-password?state={transaction}");
    assert!(
        login.contains(&format!("href=\"{link}\"")),
        "the login page links to the reset"
    );
    assert!(login.contains("Forgot password?"));
    let page = browser.get(server.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let response = browser
        .post(server.url("/u/reset-password"))
        .form(&[
            ("state", transaction.as_str()),
            ("csrf", &hidden_field(&page, "csrf")),
            ("email", email),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains(SENT), "{page}");
    (transaction, page)
}

async fn submit_code(
    server: &TestServer,
    browser: &reqwest::Client,
    code_page: &str,
    email: &str,
    code: &str,
    password: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("csrf", hidden_field(code_page, "csrf")),
        ("email", email.to_string()),
        ("code", code.to_string()),
        ("password", password.to_string()),
    ];
    for hidden in ["state", "connection"] {
        if code_page.contains(&format!("name=\"{hidden}\"")) {
            form.push((hidden, hidden_field(code_page, hidden)));
        }
    }
    browser
        .post(server.url("/u/reset-password/code"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn login_status(server: &TestServer, email: &str, password: &str) -> u16 {
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid"),
        ("nonce", "n"),
    ]);
    server
        .submit_login(&browser(), &url, email, password)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_reset_changes_the_password_and_ends_every_session_and_refresh_token() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    // Before: a signed-in browser and a refresh token.
    let before = browser();
    let tokens = server
        .code_flow(&before, "openid offline_access", Some(API))
        .await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let reset = browser();
    let (transaction, code_page) = ask_for_code(&server, &reset, &server.user_email).await;
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec![server.user_email.clone()]);
    assert!(mail.data.contains("Subject: Your password reset code"));
    assert!(
        mail.data
            .contains(&format!("{}u/reset-password/code", server.issuer))
    );
    let code = mail.code();

    let response = submit_code(
        &server,
        &reset,
        &code_page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 303);
    let back = location(&response);
    assert_eq!(
        back,
        format!("/u/login?state={transaction}&password_changed=1")
    );
    let page = reset
        .get(server.url(&back))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your password has been changed."), "{page}");

    // The same login transaction goes on, with the new password.
    let response = reset
        .post(server.url("/u/login"))
        .form(&[
            ("state", transaction.as_str()),
            ("csrf", &hidden_field(&page, "csrf")),
            ("username", &server.user_email),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("/authorize/resume?state={transaction}")
    );
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        401
    );
    assert_eq!(
        login_status(&server, &server.user_email, NEW_PASSWORD).await,
        303
    );

    // What was issued before is dead: the refresh token, the other browser's session.
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", &refresh_token),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let response = before
        .get(server.authorize_url(&[
            ("response_type", "token"),
            ("scope", "openid"),
            ("nonce", "n"),
        ]))
        .send()
        .await
        .unwrap();
    assert!(
        location(&response).starts_with("/u/login?state="),
        "the old session ended"
    );

    // The code worked once.
    let response = submit_code(
        &server,
        &reset,
        &code_page,
        &server.user_email,
        &code,
        "yet another passphrase 7",
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains(WRONG_CODE));
    assert_eq!(
        login_status(&server, &server.user_email, NEW_PASSWORD).await,
        303
    );

    // The audit log: the change (`scp`) and the used code refused (`fcp`), for the user,
    // without the code or either password.
    let changed = crate::audit_log::events_of(&server, "scp").await;
    assert_eq!(changed.len(), 1, "{changed:#?}");
    let refused = crate::audit_log::events_of(&server, "fcp").await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    for event in changed.iter().chain(&refused) {
        assert_eq!(event["user_id"], server.user_id.as_str());
        assert_eq!(event["user_name"], server.user_email.as_str());
        assert_eq!(event["connection"], "Username-Password-Authentication");
        let kept = format!("{} {}", event["description"], event["details"]);
        assert!(!kept.contains(&code), "{kept}");
    }
    // The request (`scpr`) is recorded by the mail worker once the mail is sent: bounded
    // wait for it.
    let mut requested = Vec::new();
    for _ in 0..100 {
        requested = crate::audit_log::events_of(&server, "scpr").await;
        if !requested.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(requested.len(), 1, "{requested:#?}");
    assert_eq!(requested[0]["user_id"], server.user_id.as_str());
    assert!(requested[0]["ip"].as_str().unwrap().starts_with("127."));
    let kept = format!(
        "{} {}",
        requested[0]["description"], requested[0]["details"]
    );
    assert!(!kept.contains(&code), "{kept}");
    let log = crate::audit_log::whole_log(&server).await;
    for secret in [NEW_PASSWORD, "yet another passphrase 7"] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_page_and_no_mail() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let stranger = browser();
    let (_, unknown) = ask_for_code(&server, &stranger, "nobody@example.com").await;
    let (_, known) = ask_for_code(&server, &browser(), &server.user_email).await;
    let strip = |page: &str, email: &str| {
        page.replace(email, "EMAIL")
            .replace(&hidden_field(page, "csrf"), "CSRF")
            .replace(&hidden_field(page, "state"), "STATE")
    };
    assert_eq!(
        strip(&unknown, "nobody@example.com"),
        strip(&known, &server.user_email)
    );
    // One worker sends in request order: the first mail is the known user's, so the
    // unknown address got none.
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec![server.user_email.clone()]);
    assert!(smtp.try_next().is_none());
    // Checking a code for an unknown address answers as a wrong code does.
    let response = submit_code(
        &server,
        &stranger,
        &unknown,
        "nobody@example.com",
        "12345678",
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains(WRONG_CODE));
    let refused = crate::audit_log::events_of(&server, "fcp").await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["user_name"], "nobody@example.com");
    assert!(refused[0].get("user_id").is_none(), "no account, no user");
    // The worker took the unknown address first: once the known one's `scpr` is there,
    // the unknown one would be too. It is not: no account, no request recorded.
    let mut requested = Vec::new();
    for _ in 0..100 {
        requested = crate::audit_log::events_of(&server, "scpr").await;
        if !requested.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(requested.len(), 1, "{requested:#?}");
    assert_eq!(requested[0]["user_id"], server.user_id.as_str());
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    let (_, page) = ask_for_code(&server, &browser, &server.user_email).await;
    let code = smtp.next().await.code();
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for _ in 0..5 {
        let response = submit_code(
            &server,
            &browser,
            &page,
            &server.user_email,
            wrong,
            NEW_PASSWORD,
        )
        .await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains(WRONG_CODE));
    }
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(
        response.status(),
        400,
        "the right code is dead after five wrong ones"
    );
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        303
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    // Codes that expire the second they are made: no waiting in the test.
    let (server, mut smtp) =
        spawn_with_mail(|config| config.reset_code_lifetime = Duration::ZERO).await;
    let browser = browser();
    let (_, page) = ask_for_code(&server, &browser, &server.user_email).await;
    let code = smtp.next().await.code();
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains(WRONG_CODE));
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        303
    );
}

#[tokio::test]
async fn a_new_request_replaces_the_code_and_a_weak_password_keeps_it() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    ask_for_code(&server, &browser, &server.user_email).await;
    let first = smtp.next().await.code();
    let (_, page) = ask_for_code(&server, &browser, &server.user_email).await;
    let second = smtp.next().await.code();
    if first != second {
        let response = submit_code(
            &server,
            &browser,
            &page,
            &server.user_email,
            &first,
            NEW_PASSWORD,
        )
        .await;
        assert_eq!(response.status(), 400, "the first code was replaced");
    }
    // The sign-up policy, with its message; the code is not used up by it.
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &second,
        "short",
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Your password must be at least 8 characters long.")
    );
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &second,
        "password123",
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("This password is too common.")
    );
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &second,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        login_status(&server, &server.user_email, NEW_PASSWORD).await,
        303
    );
}

#[tokio::test]
async fn a_reset_lifts_the_login_lockout() {
    let (server, mut smtp) = spawn_with_mail(|config| config.max_login_failures = 2).await;
    for _ in 0..2 {
        assert_eq!(
            login_status(&server, &server.user_email, "wrong guess 1").await,
            401
        );
    }
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        429,
        "locked"
    );
    let browser = browser();
    let (_, page) = ask_for_code(&server, &browser, &server.user_email).await;
    let code = smtp.next().await.code();
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        login_status(&server, &server.user_email, NEW_PASSWORD).await,
        303
    );
}

#[tokio::test]
async fn the_code_page_without_a_login_transaction_ends_on_a_message() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    // As from the link in the mail: no transaction, the email typed again.
    let page = browser
        .get(server.url("/u/reset-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(server.url("/u/reset-password"))
        .form(&[
            ("csrf", hidden_field(&page, "csrf").as_str()),
            ("email", &server.user_email),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains(SENT));
    let code = smtp.next().await.code();
    let page = browser
        .get(server.url("/u/reset-password/code"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("name=\"state\""));
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &format!(" {}-{} ", &code[..4], &code[4..]),
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Password changed"));
    // A form without the CSRF cookie's token is refused.
    let response = reqwest::Client::new()
        .post(server.url("/u/reset-password"))
        .form(&[("csrf", "forged"), ("email", server.user_email.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn without_mail_no_reset_is_offered() {
    let server = spawn().await;
    let browser = browser();
    let (_, login) = login_page(&server, &browser).await;
    assert!(!login.contains("Forgot password?"));
    let response = browser
        .get(server.url("/u/reset-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Password reset is not available")
    );
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&serde_json::json!({"client_id": server.spa_client_id, "email": server.user_email, "connection": "Username-Password-Authentication"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not available")
    );
}

#[tokio::test]
async fn dbconnections_change_password_answers_as_auth0_and_sends_the_code() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let post = |body: serde_json::Value| {
        reqwest::Client::new()
            .post(server.url("/dbconnections/change_password"))
            .header("Origin", SPA_ORIGIN)
            .json(&body)
            .send()
    };
    let connection = "Username-Password-Authentication";
    for email in ["nobody@example.com", server.user_email.as_str()] {
        let response = post(serde_json::json!({"client_id": server.spa_client_id, "email": email, "connection": connection})).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            SPA_ORIGIN
        );
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(
            response.text().await.unwrap(),
            "We've just sent you an email to reset your password."
        );
    }
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec![server.user_email.clone()]);
    let code = mail.code();

    let response = post(serde_json::json!({"client_id": "unknown", "email": server.user_email, "connection": connection})).await.unwrap();
    assert_eq!(response.status(), 400);
    let response = post(serde_json::json!({"client_id": server.spa_client_id, "email": server.user_email, "connection": "google-oauth2"})).await.unwrap();
    assert_eq!(response.status(), 400);

    // The mailed code works on the page the mail names.
    let browser = browser();
    let page = browser
        .get(server.url("/u/reset-password/code"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        login_status(&server, &server.user_email, NEW_PASSWORD).await,
        303
    );
}

#[tokio::test]
async fn codes_are_throttled_per_address() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    for _ in 0..5 {
        ask_for_code(&server, &browser, &server.user_email).await;
        smtp.next().await;
    }
    let page = browser
        .get(server.url("/u/reset-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(server.url("/u/reset-password"))
        .form(&[
            ("csrf", hidden_field(&page, "csrf").as_str()),
            ("email", "DEMO@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

// `#[tokio::test]` runs on one thread, so the thread-local subscriber sees the server and
// its mail worker too.
#[tokio::test]
async fn neither_the_code_nor_the_password_reaches_the_logs() {
    let capture = LogCapture::default();
    let subscriber = capture.subscriber(tracing::Level::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    let (_, page) = ask_for_code(&server, &browser, &server.user_email).await;
    let code = smtp.next().await.code();
    let response = submit_code(
        &server,
        &browser,
        &page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 303);

    let logs = capture.text();
    assert!(
        logs.contains("password reset code sent"),
        "the capture works"
    );
    assert!(logs.contains("password reset"));
    assert!(!logs.contains(&code), "the code leaked into the logs");
    assert!(
        !logs.contains(NEW_PASSWORD),
        "the password leaked into the logs"
    );
}

/// The statements the database ran on the `users` and `password_reset_codes` tables for a
/// request, in order, as sqlx logs them. Background work is left out: the key-ring poll
/// (other tables) and the purge of expired rows (not per tenant and user). A write that
/// joins the SQLite writer's batch (the audit log's, say) carries the batch's `BEGIN
/// IMMEDIATE;` or its own `SAVEPOINT writer;` ahead of it (`tessera_store`'s group commit):
/// those are left out, since whether a batch was open is timing, not the request's work.
fn account_statements(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|line| line.contains("sqlx::query"))
        .filter_map(|line| {
            let start = line.find("db.statement=")? + "db.statement=".len();
            let end = line[start..].find(" rows_affected=")? + start;
            Some(
                line[start..end]
                    .replace("BEGIN IMMEDIATE; ", "")
                    .replace("SAVEPOINT writer; ", ""),
            )
        })
        .filter(|statement| {
            (statement.contains("FROM users") || statement.contains("password_reset_codes"))
                && statement.contains("WHERE tenant_id = $1")
        })
        .collect()
}

// Checking a code for an address without an account does what checking one for an
// account does — it runs the code check's statements too — so the answer takes as long.
// SQLite runs statements on sqlx's worker threads, so the capture is the process's global
// subscriber: nextest runs each test in a process of its own. Under `cargo test` other
// tests' statements may land in the capture too; they can only add statements, so the
// comparison below (the account's statements are all in the unknown address's) cannot
// fail because of them.
#[tokio::test]
async fn a_code_for_an_unknown_address_runs_the_same_statements_as_for_an_account() {
    let capture = LogCapture::default();
    let subscriber = capture.subscriber(tracing::Level::DEBUG);
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test sets a global subscriber");

    let (server, _smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    let page = browser
        .get(server.url("/u/reset-password/code"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // sqlx logs a statement on its worker thread when the statement's logger drops, which
    // may be after the answer reached the test: each capture waits (bounded) until what it
    // looks for has landed, and the assertions below judge what is there then.
    let statements_once = async |email: &str, landed: &dyn Fn(&[String]) -> bool| {
        let from = capture.text().len();
        let response = submit_code(&server, &browser, &page, email, "12345678", NEW_PASSWORD).await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains(WRONG_CODE));
        for _ in 0..50 {
            if landed(&account_statements(&capture.text()[from..])) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        account_statements(&capture.text()[from..])
    };
    let checks_the_code = |statements: &[String]| {
        statements
            .iter()
            .any(|s| s.contains("password_reset_codes"))
    };
    let account = statements_once(server.user_email.as_str(), &checks_the_code).await;
    let all_of_the_accounts =
        |statements: &[String]| account.iter().all(|s| statements.contains(s));
    let unknown = statements_once("nobody@example.com", &all_of_the_accounts).await;
    let (account, unknown) = (&account, &unknown);
    assert!(
        account.iter().any(|s| s.contains("password_reset_codes")),
        "the capture sees the code check: {account:?}"
    );
    for statement in account {
        assert!(
            unknown.contains(statement),
            "an unknown address skips {statement}"
        );
    }
}

#[tokio::test]
async fn addresses_with_markup_are_refused_by_both_reset_forms() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let browser = browser();
    let page = browser
        .get(server.url("/u/reset-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let markup = "<script>alert(1)</script>@test.example";
    let response = browser
        .post(server.url("/u/reset-password"))
        .form(&[
            ("csrf", hidden_field(&page, "csrf").as_str()),
            ("email", markup),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("Enter a valid email address."), "{text}");
    assert!(!text.contains("<script>alert"), "the address is escaped");

    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&serde_json::json!({
            "client_id": server.spa_client_id,
            "email": markup,
            "connection": "Username-Password-Authentication",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request");
    assert_eq!(error["error_description"], "email is not a valid address.");

    // Nothing was queued: the next mail is the one asked for now.
    ask_for_code(&server, &browser, &server.user_email).await;
    assert_eq!(smtp.next().await.to, vec![server.user_email.clone()]);
    assert!(smtp.try_next().is_none());
}

#[tokio::test]
async fn without_smtp_mail_goes_to_an_outbox_file_and_the_log_says_where() {
    let capture = LogCapture::default();
    let subscriber = capture.subscriber(tracing::Level::INFO);
    let _guard = tracing::subscriber::set_default(subscriber);

    let outbox = tempfile::tempdir().unwrap();
    let dir = outbox.path().join("outbox");
    let config_dir = dir.clone();
    let server = spawn_with(move |config| {
        config.mail = Some(MailConfig::outbox(config_dir, "Tessera <no-reply@localhost>").unwrap());
    })
    .await;
    ask_for_code(&server, &browser(), &server.user_email).await;
    // Bounded wait for the worker to write the file and say so.
    let logged = || capture.text();
    for _ in 0..300 {
        if logged().contains("written to") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "one .eml in the outbox");
    let path = &files[0];
    assert_eq!(path.extension().unwrap(), "eml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let text = std::fs::read_to_string(path).unwrap();
    let code = smtp::Mail {
        from: String::new(),
        to: vec![],
        data: text,
    }
    .code();
    let logs = logged();
    assert!(
        logs.contains(&format!(
            "mail for {} written to {}",
            server.user_email,
            path.display()
        )),
        "{logs}"
    );
    assert!(!logs.contains(&code));
}

#[tokio::test]
async fn a_code_resets_the_password_of_its_own_database_connection_only() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    // A second database connection for the SPA, with a user of the same address.
    let token = server
        .management_token(&["create:connections", "create:users"])
        .await;
    let api = |path: &str, body: serde_json::Value| {
        reqwest::Client::new()
            .post(server.url(&format!("/api/v2{path}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let response = api(
        "/connections",
        serde_json::json!({"name": "staff", "strategy": "auth0", "enabled_clients": [server.spa_client_id]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let response = api(
        "/users",
        serde_json::json!({"connection": "staff", "email": server.user_email, "password": "a staff passphrase 42"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let default_hash = server.password_hash(&server.user_email).await;

    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&serde_json::json!({"client_id": server.spa_client_id, "email": server.user_email, "connection": "staff"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mail = smtp.next().await;
    // The body is quoted-printable: soft line breaks and `=3D` undone.
    let text = mail
        .data
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        text.contains("u/reset-password/code?connection=staff"),
        "the mail links the connection's page: {text}"
    );
    let code = mail.code();

    // On the default connection's page the code is somebody else's: refused.
    let browser = browser();
    let page = |path: &'static str| {
        let browser = browser.clone();
        let url = server.url(path);
        async move { browser.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let default_page = page("/u/reset-password/code").await;
    let response = submit_code(
        &server,
        &browser,
        &default_page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 400);
    // On the page the mail names, it resets the staff user's password, not the other's.
    let staff_page = page("/u/reset-password/code?connection=staff").await;
    assert_eq!(hidden_field(&staff_page, "connection"), "staff");
    let response = submit_code(
        &server,
        &browser,
        &staff_page,
        &server.user_email,
        &code,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 200);
    let (_, staff_hash) = server
        .store
        .find_user_with_password_in("staff", &server.user_email)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(staff_hash, None);
    assert_eq!(
        server.password_hash(&server.user_email).await,
        default_hash,
        "the default user's password stays"
    );
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        303
    );
}

/// Brute-force protection's `user_notification` shield: the account's owner is mailed once,
/// when the block starts, a link that lifts that block (a button on the page; only its
/// POST uses the link up). Guesses at an account that does not exist mail nobody.
#[tokio::test]
async fn a_blocked_account_is_mailed_a_link_that_lifts_the_block_once() {
    let (server, mut smtp) = spawn_with_mail(|config| config.max_login_failures = 2).await;
    let token = server.management_token(&["update:attack_protection"]).await;
    server
        .management_call(
            &token,
            reqwest::Method::PATCH,
            "/attack-protection/brute-force-protection",
            serde_json::json!({"shields": ["block", "user_notification"]}),
        )
        .await;
    for _ in 0..2 {
        for email in [server.user_email.as_str(), "nobody@example.com"] {
            assert_eq!(login_status(&server, email, "wrong guess").await, 401);
        }
    }
    for email in [server.user_email.as_str(), "nobody@example.com"] {
        for _ in 0..2 {
            assert_eq!(login_status(&server, email, PASSWORD).await, 429, "locked");
        }
    }
    let mail = smtp.next().await;
    assert_eq!(
        mail.header("To").as_deref(),
        Some(server.user_email.as_str()),
        "to the owner"
    );
    let body = mail.body();
    assert!(
        body.contains("blocked from the network 127.0.0.1 after 2 failed sign-in attempts"),
        "{body}"
    );
    let link = mail.link("/u/unblock?ticket=");
    // One mail for one block, none for the account that does not exist.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.try_next().is_none(), "one mail only");

    let browser = browser();
    let page = browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        429,
        "opening the link lifts nothing"
    );
    let press = || {
        browser
            .post(server.url("/u/unblock"))
            .form(&[
                ("ticket", hidden_field(&page, "ticket")),
                ("csrf", hidden_field(&page, "csrf")),
            ])
            .send()
    };
    let response = press().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Account unblocked"));
    assert_eq!(
        login_status(&server, &server.user_email, PASSWORD).await,
        303,
        "unblocked"
    );
    assert_eq!(press().await.unwrap().status(), 400, "once");
    assert_eq!(
        login_status(&server, "nobody@example.com", PASSWORD).await,
        429,
        "another account's block stays"
    );
}
