//! Brute force and lockout, with Auth0's defaults (SECURITY.md): after
//! `ServerConfig::max_login_failures` (10, or the tenant's `max_attempts`) consecutive
//! failures for one account from one address, that pair is refused even with the right
//! password until a reset or an unblock;
//! every address gets `login_attempts_per_minute` posts of the login, sign-up and reset forms
//! (and `/dbconnections/change_password`) before 429 with `Retry-After` — on all the nodes of
//! a PostgreSQL cluster together; a reset address gets
//! 5 codes an hour and a code dies after 5 wrong tries. Unknown and known accounts answer
//! alike. `X-Forwarded-For` moves none of this unless the peer is a trusted proxy. Blocked
//! users can neither log in, refresh, redeem a code nor use a session. No timing is asserted
//! here (enumeration by timing is another category's).

use serde_json::{Value, json};
use std::sync::Arc;
use tessera_server::{MailConfig, TrustedProxies};
use tessera_testkit::{
    API, PASSWORD, TestServer, browser, create_user, hidden_field, location, now, params_of, pkce,
    spawn_with, spawn_with_mail,
};

use crate::harness::Tally;
use crate::html::decode;

const WRONG_CREDENTIALS: &str = "Wrong email or password.";
const LOCKED: &str = "Your account has been blocked after multiple consecutive login attempts.";
const USER_BLOCKED: &str = "Your account is blocked.";
const TOO_MANY: &str = "Too many login attempts from your network.";
const WRONG_CODE: &str = "That code is wrong or has expired.";
const TOO_MANY_CODES: &str = "Too many codes were requested for this address.";
const NEW_PASSWORD: &str = "a brand new passphrase 42";
/// What an attacker writes to look like another client.
const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-for", "203.0.113.9"),
    ("x-forwarded-for", "203.0.113.9, 198.51.100.1"),
    ("x-real-ip", "203.0.113.10"),
    ("forwarded", "for=203.0.113.11"),
];

/// What one post of a form got.
struct Answer {
    status: u16,
    /// The page's error message (the login form's, or the error page's), decoded.
    message: String,
    retry_after: Option<u64>,
    session: bool,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        let headers = response.headers();
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let session = headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().is_ok_and(|c| c.contains("tessera_session=")));
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Answer {
            status,
            message: error_message(&body),
            retry_after,
            session,
        }
    }

    /// The refusal `status` with `message`, no session started.
    fn is(&self, status: u16, message: &str) -> bool {
        self.status == status && self.message.starts_with(message) && !self.session
    }

    /// A 429 whose `Retry-After` is within `max` seconds.
    fn is_throttled(&self, message: &str, max: u64) -> bool {
        self.is(429, message) && self.retry_after.is_some_and(|s| (1..=max).contains(&s))
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} retry-after {:?}{}",
            self.status,
            self.message,
            self.retry_after,
            if self.session { ", a session" } else { "" }
        )
    }
}

/// The text of the page's `<p class="error">`, or the JSON error's description.
fn error_message(body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        return json["error_description"].as_str().unwrap_or("").to_string();
    }
    let Some(start) = body.find("<p class=\"error\"") else {
        return String::new();
    };
    let text = &body[start..];
    let text = &text[text.find('>').map_or(0, |i| i + 1)..];
    decode(&text[..text.find("</p>").unwrap_or(text.len())])
}

/// A login transaction of a fresh browser, posted to as often as a case needs.
struct LoginForm {
    browser: reqwest::Client,
    transaction: String,
    csrf: String,
}

impl LoginForm {
    async fn open(server: &TestServer) -> LoginForm {
        let browser = browser();
        let pkce = pkce();
        let url = server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let response = browser.get(url).send().await.expect("the server answers");
        let page = browser
            .get(server.url(&location(&response)))
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a page");
        LoginForm {
            transaction: hidden_field(&page, "state"),
            csrf: hidden_field(&page, "csrf"),
            browser,
        }
    }

    async fn post(
        &self,
        server: &TestServer,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut form = vec![("state", self.transaction.as_str()), ("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        let mut request = self.browser.post(server.url(path)).form(&form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::of(request.send().await.expect("the server answers")).await
    }

    async fn login(&self, server: &TestServer, username: &str, password: &str) -> Answer {
        self.login_from(server, username, password, &[]).await
    }

    async fn login_from(
        &self,
        server: &TestServer,
        username: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let fields = [("username", username), ("password", password)];
        self.post(server, "/u/login", &fields, headers).await
    }
}

async fn logins_count(server: &TestServer, user_id: &str) -> i64 {
    let user = server.store.find_user(user_id).await.expect("reads");
    user.expect("the user exists").logins_count
}

/// `PATCH /api/v2/users/{id}` with `{"blocked": blocked}`: the status.
async fn set_blocked(server: &TestServer, token: &str, user_id: &str, blocked: bool) -> u16 {
    let id: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
    reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/users/{id}")))
        .bearer_auth(token)
        .json(&json!({ "blocked": blocked }))
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_of_an_account_and_address() {
    let mut tally = Tally::new("brute_force/lockout");
    let server = spawn_with(|config| config.login_attempts_per_minute = 1_000).await;
    let limit = 10;
    let other = "other@example.com";
    let other_id = create_user(&server.store, other, PASSWORD).await;
    let form = LoginForm::open(&server).await;
    let demo = server.user_email.clone();
    let logins_before = logins_count(&server, &server.user_id).await;

    // Ten wrong passwords for a known account, ten for an unknown one: one answer for both.
    for attempt in 1..=limit {
        for (who, username) in [("known", demo.as_str()), ("unknown", "ghost@example.com")] {
            let answer = form.login(&server, username, "not the password").await;
            tally.case(
                format_args!("wrong password {attempt} of {limit} for the {who} account: 401"),
                answer.is(401, WRONG_CREDENTIALS),
                &answer,
            );
        }
    }
    // Locked, with the right password too, however the address is spelled or forwarded.
    let answer = form.login(&server, &demo, PASSWORD).await;
    tally.case(
        "the right password after 10 failures: 429, locked",
        answer.is(429, LOCKED),
        &answer,
    );
    let answer = form.login(&server, "ghost@example.com", PASSWORD).await;
    tally.case(
        "the unknown account after 10 failures: the same 429",
        answer.is(429, LOCKED),
        &answer,
    );
    for spelling in [
        "DEMO@EXAMPLE.COM",
        "  demo@example.com  ",
        "Demo@Example.com",
    ] {
        let answer = form.login(&server, spelling, PASSWORD).await;
        tally.case(
            format_args!("the right password as {spelling:?}: 429, locked"),
            answer.is(429, LOCKED),
            &answer,
        );
    }
    for (name, value) in SPOOFED {
        let answer = form
            .login_from(&server, &demo, PASSWORD, &[(name, value)])
            .await;
        tally.case(
            format_args!("the right password with {name}: {value} (no trusted proxy): 429"),
            answer.is(429, LOCKED),
            &answer,
        );
    }
    let logins = logins_count(&server, &server.user_id).await;
    tally.case(
        "the locked attempts counted no login",
        logins == logins_before,
        format_args!("{logins_before} → {logins}"),
    );
    // The lock is the pair's: another account from the same address signs in.
    let answer = form.login(&server, other, PASSWORD).await;
    tally.status("another account from the same address", answer.status, 303);
    // An administrator's unblock lifts it.
    let token = server
        .management_token(&["read:users", "update:users"])
        .await;
    let status = set_blocked(&server, &token, &server.user_id, false).await;
    tally.status("the Management API unblocks", status, 200);
    let answer = form.login(&server, &demo, PASSWORD).await;
    tally.status("the right password after the unblock", answer.status, 303);

    // Consecutive: a success starts the count again; the tenth failure in a row locks.
    for _ in 1..limit {
        form.login(&server, other, "not the password").await;
    }
    let answer = form.login(&server, other, PASSWORD).await;
    tally.status(
        "the right password after 9 failures (not locked)",
        answer.status,
        303,
    );
    for _ in 1..limit {
        form.login(&server, other, "not the password").await;
    }
    let answer = form.login(&server, other, PASSWORD).await;
    tally.status("9 failures after a success: not locked", answer.status, 303);
    for _ in 0..limit {
        form.login(&server, other, "not the password").await;
    }
    let answer = form.login(&server, other, PASSWORD).await;
    tally.case(
        "10 failures in a row after a success: 429, locked",
        answer.is(429, LOCKED),
        &answer,
    );
    let logins = logins_count(&server, &other_id).await;
    tally.case("only the three genuine logins counted", logins == 3, logins);
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_per_address() {
    let mut tally = Tally::new("brute_force/throttle");
    let outbox = tempfile::tempdir().expect("a temporary outbox");
    let dir = outbox.path().to_path_buf();
    let limit = 5;
    let server = spawn_with(move |config| {
        config.login_attempts_per_minute = limit;
        config.mail = Some(MailConfig::outbox(dir, "Tessera <no-reply@example.com>").unwrap());
    })
    .await;
    let form = LoginForm::open(&server).await;
    // Up to the limit, any post of a form is answered (here: no such transaction).
    for attempt in 1..=limit {
        let response = form
            .browser
            .post(server.url("/u/login"))
            .form(&[("state", "none")])
            .send()
            .await
            .expect("answers");
        tally.status(
            format_args!("post {attempt} of {limit} in the minute: answered"),
            response.status().as_u16(),
            400,
        );
    }
    // Then every form of the address is refused, with the right password too.
    let logins_before = logins_count(&server, &server.user_id).await;
    let answer = form.login(&server, &server.user_email, PASSWORD).await;
    tally.case(
        "the right password over the limit: 429 with Retry-After",
        answer.is_throttled(TOO_MANY, 60),
        &answer,
    );
    let forms: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "/u/signup",
            vec![("email", "new@example.com"), ("password", PASSWORD)],
        ),
        ("/u/reset-password", vec![("email", "demo@example.com")]),
        (
            "/u/reset-password/code",
            vec![
                ("email", "demo@example.com"),
                ("code", "12345678"),
                ("password", NEW_PASSWORD),
            ],
        ),
    ];
    for (path, fields) in &forms {
        let answer = form.post(&server, path, fields, &[]).await;
        tally.case(
            format_args!("POST {path} over the limit: 429 with Retry-After"),
            answer.status == 429 && answer.retry_after.is_some_and(|s| (1..=60).contains(&s)),
            &answer,
        );
    }
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "email": server.user_email,
            "connection": "Username-Password-Authentication",
        }))
        .send()
        .await
        .expect("answers");
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    tally.case(
        "POST /dbconnections/change_password over the limit: 429 too_many_attempts",
        body["error"] == "too_many_attempts" && retry_after.is_some(),
        &body,
    );
    // Each sign-up costs a password hash: the API is throttled with the forms.
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "email": "flood@example.com",
            "password": NEW_PASSWORD,
            "connection": "Username-Password-Authentication",
        }))
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let created = server
        .store
        .find_user_by_email("flood@example.com")
        .await
        .expect("the store answers")
        .is_some();
    tally.case(
        "POST /dbconnections/signup over the limit: 429 too_many_attempts, nobody created",
        status == 429 && body["code"] == "too_many_attempts" && retry_after.is_some() && !created,
        &body,
    );
    for (name, value) in SPOOFED {
        let answer = form
            .login_from(&server, &server.user_email, PASSWORD, &[(name, value)])
            .await;
        tally.case(
            format_args!("{name}: {value} (no trusted proxy) over the limit: 429"),
            answer.is_throttled(TOO_MANY, 60),
            &answer,
        );
    }
    // The refused posts changed nothing.
    let logins = logins_count(&server, &server.user_id).await;
    tally.case(
        "the throttled logins counted none",
        logins == logins_before,
        format_args!("{logins_before} → {logins}"),
    );
    let created = server
        .store
        .find_user_by_email("new@example.com")
        .await
        .expect("reads");
    tally.case(
        "the throttled sign-up created no account",
        created.is_none(),
        format_args!("{created:?}"),
    );
    let mails = std::fs::read_dir(outbox.path()).map_or(0, |dir| dir.count());
    tally.case(
        "the throttled reset request sent no mail",
        mails == 0,
        mails,
    );
    tally.finish();
}

/// Behind a trusted proxy (the peer, 127.0.0.1) the forwarded client is who is counted and
/// locked; what the client writes before the proxy's entry changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_behind_a_trusted_proxy() {
    let mut tally = Tally::new("brute_force/trusted_proxy");
    let limit = 12;
    let server = spawn_with(move |config| {
        config.login_attempts_per_minute = limit;
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1"]).expect("a range");
    })
    .await;
    let form = LoginForm::open(&server).await;
    let demo = server.user_email.clone();
    let attacker = [("x-forwarded-for", "198.51.100.7")];
    let victim = [("x-forwarded-for", "198.51.100.8")];
    for _ in 0..10 {
        form.login_from(&server, &demo, "not the password", &attacker)
            .await;
    }
    // Post 11 of the attacker's address.
    let answer = form.login_from(&server, &demo, PASSWORD, &attacker).await;
    tally.case(
        "the attacker's address is locked out of the account",
        answer.is(429, LOCKED),
        &answer,
    );
    let answer = form.login_from(&server, &demo, PASSWORD, &victim).await;
    tally.status(
        "the account from another client behind the proxy",
        answer.status,
        303,
    );
    // Post 12: the attacker prepends the victim's address; the proxy appended the real one.
    let prepended = [("x-forwarded-for", "198.51.100.8, 198.51.100.7")];
    let answer = form.login_from(&server, &demo, PASSWORD, &prepended).await;
    tally.case(
        "the attacker prepending another address to X-Forwarded-For: still locked",
        answer.is(429, LOCKED),
        &answer,
    );
    // Over the attacker's limit, whatever they prepend or append.
    for (label, forwarded) in [
        ("no change", "198.51.100.7"),
        ("another address prepended", "198.51.100.9, 198.51.100.7"),
        ("garbage prepended", "not-an-address, 198.51.100.7"),
        (
            "the proxy's own address appended",
            "198.51.100.7, 127.0.0.1",
        ),
        ("the attacker's address with a port", "198.51.100.7:4444"),
    ] {
        let answer = form
            .login_from(&server, &demo, PASSWORD, &[("x-forwarded-for", forwarded)])
            .await;
        tally.case(
            format_args!("over the limit, X-Forwarded-For with {label}: 429"),
            answer.is_throttled(TOO_MANY, 60),
            &answer,
        );
    }
    let answer = form.login_from(&server, &demo, PASSWORD, &victim).await;
    tally.status(
        "the other client is neither locked nor throttled",
        answer.status,
        303,
    );
    tally.finish();
}

/// An attacker holding an IPv6 /64 (what one subscriber usually gets) rotates addresses
/// inside it: the throttle and the lockout count the /64, not each address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_ipv6_addresses_inside_one_64() {
    let mut tally = Tally::new("brute_force/ipv6_rotation");
    let limit = 12;
    let server = spawn_with(move |config| {
        config.login_attempts_per_minute = limit;
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1"]).expect("a range");
    })
    .await;
    let form = LoginForm::open(&server).await;
    let demo = server.user_email.clone();
    let in_the_64 = |n: u32| format!("2001:db8:7:7:{:x}::{:x}", n % 0xffff, n + 1);
    for n in 0..10 {
        let address = in_the_64(n);
        form.login_from(
            &server,
            &demo,
            "not the password",
            &[("x-forwarded-for", &address)],
        )
        .await;
    }
    let fresh = in_the_64(10);
    let answer = form
        .login_from(&server, &demo, PASSWORD, &[("x-forwarded-for", &fresh)])
        .await;
    tally.case(
        "the right password from an unused address of the same /64: locked",
        answer.is(429, LOCKED),
        &answer,
    );
    // Post 12 is the last of the /64's budget (still locked); every further address in it
    // is throttled.
    let address = in_the_64(11 * 977);
    let answer = form
        .login_from(&server, &demo, PASSWORD, &[("x-forwarded-for", &address)])
        .await;
    tally.case(
        format_args!("the last post of the /64's budget from {address}: locked"),
        answer.is(429, LOCKED),
        &answer,
    );
    for n in 12..16 {
        let address = in_the_64(n * 977);
        let answer = form
            .login_from(&server, &demo, PASSWORD, &[("x-forwarded-for", &address)])
            .await;
        tally.case(
            format_args!("over the /64's limit from {address}: 429"),
            answer.is_throttled(TOO_MANY, 60),
            &answer,
        );
    }
    let answer = form
        .login_from(
            &server,
            &demo,
            PASSWORD,
            &[("x-forwarded-for", "2001:db8:7:8::1")],
        )
        .await;
    tally.status("a client of the next /64 signs in", answer.status, 303);
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_throttles_and_codes() {
    let mut tally = Tally::new("brute_force/password_reset");
    let (server, mut smtp) =
        spawn_with_mail(|config| config.login_attempts_per_minute = 1_000).await;
    let form = LoginForm::open(&server).await;
    let demo = server.user_email.clone();
    // Five codes an hour per address, known or not; the sixth request is refused alike.
    for (who, email) in [("known", demo.as_str()), ("unknown", "ghost@example.com")] {
        for request in 1..=5 {
            let answer = form
                .post(&server, "/u/reset-password", &[("email", email)], &[])
                .await;
            let sent = answer.status == 200;
            tally.case(
                format_args!("reset request {request} of 5 for the {who} address: 200"),
                sent,
                &answer,
            );
        }
        for spelling in [email.to_string(), email.to_uppercase()] {
            let answer = form
                .post(&server, "/u/reset-password", &[("email", &spelling)], &[])
                .await;
            tally.case(
                format_args!("a sixth reset request for the {who} address as {spelling:?}: 429"),
                answer.is_throttled(TOO_MANY_CODES, 3600),
                &answer,
            );
        }
        let response = reqwest::Client::new()
            .post(server.url("/dbconnections/change_password"))
            .json(&json!({
                "client_id": server.spa_client_id,
                "email": email,
                "connection": "Username-Password-Authentication",
            }))
            .send()
            .await
            .expect("answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        tally.case(
            format_args!(
                "/dbconnections/change_password for the {who} address over its limit: 429"
            ),
            status == 429 && body["error"] == "too_many_attempts",
            format_args!("{status} {body}"),
        );
    }
    for _ in 0..5 {
        let mail = smtp.next().await;
        assert_eq!(mail.to, vec![demo.clone()]);
    }

    // Five wrong codes kill the code: the right one is refused after them.
    let target = "target@example.com";
    create_user(&server.store, target, PASSWORD).await;
    let answer = form
        .post(&server, "/u/reset-password", &[("email", target)], &[])
        .await;
    assert!(answer.status == 200, "{answer}");
    let code = smtp.next().await.code();
    let before = server.password_hash(target).await;
    let wrong: Vec<String> = (1..=5u32)
        .map(|n| {
            format!(
                "{:08}",
                (code.parse::<u32>().expect("digits") + n) % 100_000_000
            )
        })
        .collect();
    let submit = async |email: &str, code: &str| {
        let fields = [("email", email), ("code", code), ("password", NEW_PASSWORD)];
        form.post(&server, "/u/reset-password/code", &fields, &[])
            .await
    };
    for (attempt, wrong_code) in wrong.iter().enumerate() {
        let answer = submit(target, wrong_code).await;
        tally.case(
            format_args!("wrong code {} of 5: 400", attempt + 1),
            answer.is(400, WRONG_CODE),
            &answer,
        );
    }
    let answer = submit(target, &code).await;
    tally.case(
        "the right code after 5 wrong ones: dead, 400",
        answer.is(400, WRONG_CODE),
        &answer,
    );
    let after = server.password_hash(target).await;
    tally.case(
        "the dead code changed no password",
        after == before,
        "the hash changed",
    );
    let answer = submit("ghost@example.com", &code).await;
    tally.case(
        "a code for an unknown address: the same 400",
        answer.is(400, WRONG_CODE),
        &answer,
    );

    // A reset lifts a lockout (as an administrator's unblock does).
    let locked = "locked@example.com";
    create_user(&server.store, locked, PASSWORD).await;
    for _ in 0..10 {
        form.login(&server, locked, "not the password").await;
    }
    let answer = form.login(&server, locked, PASSWORD).await;
    tally.case(
        "the account is locked before the reset",
        answer.is(429, LOCKED),
        &answer,
    );
    let answer = form
        .post(&server, "/u/reset-password", &[("email", locked)], &[])
        .await;
    assert!(answer.status == 200, "{answer}");
    let code = smtp.next().await.code();
    let answer = submit(locked, &code).await;
    tally.status("the reset with its code", answer.status, 303);
    let answer = form.login(&server, locked, NEW_PASSWORD).await;
    tally.status(
        "the new password after the reset: the lock is lifted",
        answer.status,
        303,
    );
    tally.finish();
}

/// `GET /userinfo` with an access token: the status.
async fn userinfo(server: &TestServer, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

/// Where `/authorize` sends `browser` (with `prompt=none` when `silent`).
async fn authorize_from_session(
    server: &TestServer,
    browser: &reqwest::Client,
    silent: bool,
) -> String {
    let pkce = pkce();
    let mut extra = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if silent {
        extra.push(("prompt", "none"));
    }
    let response = browser
        .get(server.authorize_url(&extra))
        .send()
        .await
        .expect("the server answers");
    location(&response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_users() {
    let mut tally = Tally::new("brute_force/blocked");
    let (server, mut smtp) =
        spawn_with_mail(|config| config.login_attempts_per_minute = 1_000).await;
    let token = server
        .management_token(&["read:users", "update:users"])
        .await;
    let demo = server.user_email.clone();
    // Before the block: a session, tokens, and a code not yet redeemed.
    let browser = browser();
    let tokens = server
        .code_flow(&browser, "openid offline_access read:messages", Some(API))
        .await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let access_token = tokens["access_token"].as_str().expect("an access token");
    let (code, verifier) = server.authorization_code(&browser, "openid", None).await;
    let id_token_tokens = server.code_flow(&browser, "openid", None).await;
    let userinfo_token = id_token_tokens["access_token"].as_str().expect("a token");
    tally.status(
        "userinfo before the block (control)",
        userinfo(&server, userinfo_token).await,
        200,
    );

    let status = set_blocked(&server, &token, &server.user_id, true).await;
    tally.status("the Management API blocks the user", status, 200);
    let (status, body) = server.refresh(refresh_token).await;
    tally.case(
        "the blocked user's refresh token: invalid_grant",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
    let (status, body) = server.redeem(&code, &verifier).await;
    tally.case(
        "the blocked user's pending code: invalid_grant",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
    tally.status_in(
        "the blocked user's access token at /userinfo",
        userinfo(&server, userinfo_token).await,
        &[401],
    );
    let _ = access_token;
    let to = authorize_from_session(&server, &browser, true).await;
    tally.case(
        "silent authentication with the blocked user's session: login_required",
        params_of(&to).get("error").map(String::as_str) == Some("login_required"),
        &to,
    );
    let to = authorize_from_session(&server, &browser, false).await;
    tally.case(
        "/authorize with the blocked user's session: the login page",
        to.starts_with("/u/login?"),
        &to,
    );
    let form = LoginForm::open(&server).await;
    let answer = form.login(&server, &demo, PASSWORD).await;
    tally.case(
        "the blocked user's right password: 403",
        answer.is(403, USER_BLOCKED),
        &answer,
    );
    let answer = form.login(&server, &demo, "not the password").await;
    tally.case(
        "a wrong password for the blocked user: the usual 401",
        answer.is(401, WRONG_CREDENTIALS),
        &answer,
    );
    // A reset for a blocked account sends nothing (the next mail is another account's).
    let other = "other@example.com";
    create_user(&server.store, other, PASSWORD).await;
    for email in [demo.as_str(), other] {
        let answer = form
            .post(&server, "/u/reset-password", &[("email", email)], &[])
            .await;
        assert!(answer.status == 200, "{answer}");
    }
    let mail = smtp.next().await;
    tally.case(
        "no reset code for the blocked user",
        mail.to == vec![other.to_string()],
        format_args!("{:?}", mail.to),
    );

    // Unblocked: the user signs in again, but what the block revoked stays revoked.
    let status = set_blocked(&server, &token, &server.user_id, false).await;
    tally.status("the Management API unblocks the user", status, 200);
    let answer = form.login(&server, &demo, PASSWORD).await;
    tally.status(
        "the unblocked user's right password (control)",
        answer.status,
        303,
    );
    let (status, body) = server.refresh(refresh_token).await;
    tally.case(
        "the refresh token revoked by the block stays revoked",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );

    // Blocked in the store directly (as `tessera users block` does), while signed in.
    let stored = LoginForm::open(&server).await;
    let answer = stored.login(&server, other, PASSWORD).await;
    tally.status("another user signs in (control)", answer.status, 303);
    let other_id = server
        .store
        .find_user_by_email(other)
        .await
        .expect("reads")
        .expect("exists")
        .user_id;
    server
        .store
        .set_user_blocked(&other_id, true, now())
        .await
        .expect("blocked");
    let to = authorize_from_session(&server, &stored.browser, true).await;
    tally.case(
        "silent authentication after a block in the store: login_required",
        params_of(&to).get("error").map(String::as_str) == Some("login_required"),
        &to,
    );
    let answer = stored.login(&server, other, PASSWORD).await;
    tally.case(
        "the right password after a block in the store: 403",
        answer.is(403, USER_BLOCKED),
        &answer,
    );
    tally.finish();
}

/// Guesses sent all at once must not all pass the lockout check before any is counted: of
/// 30 wrong passwords for one account from one address posted in parallel, exactly 10 are
/// checked (401); the others, and the right password after them, are refused as locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_stop_at_the_lockout() {
    let mut tally = Tally::new("brute_force/parallel_guesses");
    let server = Arc::new(spawn_with(|config| config.login_attempts_per_minute = 1_000).await);
    let form = Arc::new(LoginForm::open(&server).await);
    let guesses: Vec<_> = (0..30)
        .map(|guess| {
            let (server, form) = (server.clone(), form.clone());
            let password = format!("guess number {guess}");
            tokio::spawn(async move { form.login(&server, &server.user_email, &password).await })
        })
        .collect();
    let mut checked = 0;
    for (guess, task) in guesses.into_iter().enumerate() {
        let answer = task.await.expect("the guess task ends");
        checked += usize::from(answer.status == 401);
        tally.case(
            format_args!("parallel guess {guess}: 401 wrong or 429 locked"),
            answer.is(401, WRONG_CREDENTIALS) || answer.is(429, LOCKED),
            &answer,
        );
    }
    tally.case(
        "of 30 parallel guesses exactly 10 are checked",
        checked == 10,
        checked,
    );
    let answer = form.login(&server, &server.user_email, PASSWORD).await;
    tally.case(
        "the right password after them: 429, locked",
        answer.is(429, LOCKED),
        &answer,
    );
    tally.finish();
}

/// Password guesses spread over two nodes on one PostgreSQL database (as a round-robin
/// balancer spreads them), each with a made-up forwarding header from a peer that is no
/// trusted proxy: every guess counts against the peer's own network, on both nodes
/// together — the guess past the limit is refused on whichever node it reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_spread_over_nodes_count_together() {
    let mut tally = Tally::new("brute_force/nodes");
    let limit = 6;
    let database = tessera_testkit::pg::PgServer::start();
    let url = database.database();
    let limited = move |config: &mut tessera_server::ServerConfig| {
        config.login_attempts_per_minute = limit;
    };
    let first = tessera_testkit::spawn_on_with(Some(&url), limited).await;
    let (second_base, second) = tessera_testkit::another_node(&first, &url, limited).await;
    let secret = "a-web-application-secret-long-enough";
    let mut web = tessera_testkit::client("Web", tessera_core::AppType::RegularWeb, Some(secret));
    web.grant_types
        .push(tessera_core::PASSWORD_GRANT.to_string());
    first.store.create_client(&web).await.unwrap();
    let nodes = [first.base.clone(), second_base];
    let guess = |n: u32| {
        let node = nodes[n as usize % 2].clone();
        let client_id = web.client_id.clone();
        async move {
            let (header, value) = SPOOFED[n as usize % SPOOFED.len()];
            let response = reqwest::Client::new()
                .post(format!("{node}/oauth/token"))
                .header(header, value)
                .header("auth0-forwarded-for", format!("198.51.100.{n}"))
                .form(&[
                    ("grant_type", tessera_core::PASSWORD_GRANT),
                    ("client_id", &client_id),
                    ("client_secret", secret),
                    ("username", "demo@example.com"),
                    ("password", &format!("guess {n}")),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            (node, status, retry_after)
        }
    };
    for n in 0..limit {
        let (node, status, _) = guess(n).await;
        tally.status(
            format!("guess {n} at {node}: a wrong password"),
            status,
            403,
        );
    }
    for n in limit..limit + 4 {
        let (node, status, retry_after) = guess(n).await;
        tally.case(
            format!("guess {n} at {node}, past the limit both nodes counted together: 429"),
            status == 429 && retry_after.is_some_and(|s| (1..=60).contains(&s)),
            format!("{status} retry-after {retry_after:?}"),
        );
    }
    second.stop().await;
    tally.finish();
}

/// A Management API request with a raw body (`None`: no body): its status and JSON.
async fn management(
    server: &TestServer,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/api/v2{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some((content_type, bytes)) = body {
        request = request.header("content-type", content_type).body(bytes);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn json_body(value: &Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", value.to_string().into_bytes()))
}

/// Brute-force protection as an administrator sets it
/// (`/attack-protection/brute-force-protection`) and the blocks it puts in force
/// (`/user-blocks`), attacked: tokens without the scopes change the settings or lift
/// blocks; settings beyond their bounds; a guesser claiming an allowlisted address in a
/// forwarding header the proxy did not write; identifiers that are wildcards, SQL, control
/// characters or huge. Lifting a brute-force block never lifts an administrator's block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administered_protection_holds_against_its_own_controls() {
    use reqwest::Method;
    let mut tally = Tally::new("brute_force/administered");
    let server = spawn_with(|config| {
        config.login_attempts_per_minute = 1_000;
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1"]).expect("a range");
    })
    .await;
    let admin = server
        .management_token(&[
            "read:attack_protection",
            "update:attack_protection",
            "read:users",
            "update:users",
        ])
        .await;
    let reader = server
        .management_token(&["read:attack_protection", "read:users"])
        .await;
    let outsider = server.management_token(&["read:clients"]).await;
    let (admin, reader, outsider) = (
        Some(admin.as_str()),
        Some(reader.as_str()),
        Some(outsider.as_str()),
    );
    let settings = "/attack-protection/brute-force-protection";
    let (_, before) = management(&server, admin, Method::GET, settings, None).await;

    // Who may read and change the settings.
    for (who, token, method, expected) in [
        ("no token", None, Method::GET, 401),
        ("a token without the scope", outsider, Method::GET, 403),
        ("no token", None, Method::PATCH, 401),
        ("a token without the scope", outsider, Method::PATCH, 403),
        ("a reader", reader, Method::PATCH, 403),
    ] {
        let body = json_body(&json!({"enabled": false}));
        let (status, _) = management(&server, token, method.clone(), settings, body).await;
        tally.status(
            format_args!("{method} the settings with {who}"),
            status,
            expected,
        );
    }
    // Settings beyond their bounds or shapes, all refused before anything changes.
    let many: Vec<String> = (0..101).map(|i| format!("10.0.0.{i}")).collect();
    let deep = (0..100).fold(json!("1.2.3.4"), |inner, _| json!([inner]));
    let hostile: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "no threshold",
            "application/json",
            json!({"max_attempts": 0}).to_string().into_bytes(),
        ),
        (
            "a threshold over 100",
            "application/json",
            json!({"max_attempts": 101}).to_string().into_bytes(),
        ),
        (
            "a huge threshold",
            "application/json",
            br#"{"max_attempts": 1e300}"#.to_vec(),
        ),
        (
            "a negative threshold",
            "application/json",
            json!({"max_attempts": -5}).to_string().into_bytes(),
        ),
        (
            "a fractional threshold",
            "application/json",
            json!({"max_attempts": 3.5}).to_string().into_bytes(),
        ),
        (
            "a threshold as text",
            "application/json",
            json!({"max_attempts": "3"}).to_string().into_bytes(),
        ),
        (
            "an allowlist of everything, misspelled",
            "application/json",
            json!({"allowlist": ["0.0.0.0/0x"]})
                .to_string()
                .into_bytes(),
        ),
        (
            "an allowlist of host names",
            "application/json",
            json!({"allowlist": ["attacker.example"]})
                .to_string()
                .into_bytes(),
        ),
        (
            "an allowlist of 101 entries",
            "application/json",
            json!({"allowlist": many}).to_string().into_bytes(),
        ),
        (
            "an allowlist entry with a NUL",
            "application/json",
            json!({"allowlist": ["1.2.3.4\u{0}"]})
                .to_string()
                .into_bytes(),
        ),
        (
            "nested allowlists",
            "application/json",
            json!({"allowlist": deep}).to_string().into_bytes(),
        ),
        (
            "an allowlist as a string",
            "application/json",
            json!({"allowlist": "0.0.0.0/0"}).to_string().into_bytes(),
        ),
        (
            "the notification without the block",
            "application/json",
            json!({"shields": ["user_notification"]})
                .to_string()
                .into_bytes(),
        ),
        (
            "shields as a string",
            "application/json",
            json!({"shields": "block"}).to_string().into_bytes(),
        ),
        (
            "a mode in capitals",
            "application/json",
            json!({"mode": "COUNT_PER_IDENTIFIER"})
                .to_string()
                .into_bytes(),
        ),
        (
            "enabled as a number",
            "application/json",
            json!({"enabled": 0}).to_string().into_bytes(),
        ),
        (
            "an unknown member",
            "application/json",
            json!({"enabled": false, "backdoor": true})
                .to_string()
                .into_bytes(),
        ),
        (
            "a member named twice",
            "application/json",
            br#"{"max_attempts": 3, "max_attempts": 100}"#.to_vec(),
        ),
        ("an array", "application/json", b"[1]".to_vec()),
        (
            "a form",
            "application/x-www-form-urlencoded",
            b"enabled=false".to_vec(),
        ),
        (
            "half a body",
            "application/json",
            br#"{"enabled": fal"#.to_vec(),
        ),
    ];
    for (label, content_type, bytes) in hostile {
        let (status, answer) = management(
            &server,
            admin,
            Method::PATCH,
            settings,
            Some((content_type, bytes)),
        )
        .await;
        tally.status_in(format_args!("{label}: refused"), status, &[400, 415]);
        let message = answer["message"].as_str().unwrap_or_default();
        tally.case(
            format_args!("{label}: the refusal echoes no address list"),
            !message.contains("10.0.0.100") && message.len() < 400,
            message,
        );
    }
    let (_, after) = management(&server, admin, Method::GET, settings, None).await;
    tally.case("the settings read as before", after == before, &after);

    // An allowlisted network cannot be claimed in a header the proxy did not write.
    let changed = json_body(&json!({"max_attempts": 3, "allowlist": ["198.51.100.0/24"]}));
    let (status, _) = management(&server, admin, Method::PATCH, settings, changed).await;
    tally.status(
        "the administrator sets 3 attempts and an allowlist",
        status,
        200,
    );
    let form = LoginForm::open(&server).await;
    let demo = server.user_email.clone();
    let claimed = [("x-forwarded-for", "198.51.100.7, 203.0.113.9")];
    for attempt in 1..=3 {
        let answer = form
            .login_from(&server, &demo, "not the password", &claimed)
            .await;
        tally.case(
            format_args!("guess {attempt} claiming an allowlisted address: counted (401)"),
            answer.is(401, WRONG_CREDENTIALS),
            &answer,
        );
    }
    let answer = form.login_from(&server, &demo, PASSWORD, &claimed).await;
    tally.case(
        "the right password after 3 guesses claiming the allowlist: 429, locked",
        answer.is(429, LOCKED),
        &answer,
    );
    let allowlisted = [("x-forwarded-for", "198.51.100.7")];
    let answer = form
        .login_from(&server, &demo, PASSWORD, &allowlisted)
        .await;
    tally.status(
        "the account from the allowlisted network itself",
        answer.status,
        303,
    );

    // The block, as readers see it; lifting it takes update:users.
    let blocks = format!("/user-blocks?identifier={demo}");
    let expected = json!({"blocked_for": [{"identifier": demo, "ip": "203.0.113.9"}]});
    let (status, listed) = management(&server, reader, Method::GET, &blocks, None).await;
    tally.case(
        "a reader lists the block of the guessed network",
        status == 200 && listed == expected,
        format_args!("{status} {listed}"),
    );
    let user_blocks = format!(
        "/user-blocks/{}",
        url::form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect::<String>()
    );
    for (who, token, expected) in [
        ("no token", None, 401),
        ("a token without the scope", outsider, 403),
    ] {
        for path in [blocks.as_str(), user_blocks.as_str()] {
            let (status, _) = management(&server, token, Method::GET, path, None).await;
            tally.status(format_args!("{who} lists {path}"), status, expected);
        }
    }
    for (who, token, expected) in [
        ("no token", None, 401),
        ("a token without the scope", outsider, 403),
        ("a reader", reader, 403),
    ] {
        for path in [blocks.as_str(), user_blocks.as_str()] {
            let (status, _) = management(&server, token, Method::DELETE, path, None).await;
            tally.status(format_args!("{who} lifts {path}"), status, expected);
        }
    }
    // Identifiers an attacker would try; none lists or lifts another account's block.
    let long = "a".repeat(10_000);
    for (label, query, expected) in [
        ("an empty identifier", "identifier=".to_string(), 400),
        ("no identifier", String::new(), 400),
        (
            "a 10,000-character identifier",
            format!("identifier={long}"),
            400,
        ),
        (
            "a NUL in the identifier",
            "identifier=demo%00@example.com".into(),
            400,
        ),
        (
            "two identifiers",
            format!("identifier={demo}&identifier=x"),
            400,
        ),
        (
            "an unknown parameter",
            format!("identifier={demo}&ip=203.0.113.9"),
            400,
        ),
        (
            "a non-boolean consider flag",
            format!("identifier={demo}&consider_brute_force_enablement=yes"),
            400,
        ),
        ("a wildcard", "identifier=*".into(), 200),
        ("a SQL LIKE wildcard", "identifier=%25".into(), 200),
        ("SQL", "identifier=x%27%20OR%20%271%27%3D%271".into(), 200),
    ] {
        let path = format!("/user-blocks?{query}");
        let (status, listed) = management(&server, admin, Method::GET, &path, None).await;
        tally.case(
            format_args!("listing by {label}: {expected}, nothing of the account"),
            status == expected && (expected != 200 || listed == json!({"blocked_for": []})),
            format_args!("{status} {listed}"),
        );
        let (status, _) = management(&server, admin, Method::DELETE, &path, None).await;
        tally.case(
            format_args!("lifting by {label}: {expected} or 204, the block stays"),
            status == expected || (expected == 200 && status == 204),
            status,
        );
    }
    for path in ["/user-blocks/auth0%7Cnobody", "/user-blocks/..%2Fusers"] {
        let (status, _) = management(&server, admin, Method::DELETE, path, None).await;
        tally.status(format_args!("lifting {path}"), status, 404);
    }
    let answer = form.login_from(&server, &demo, PASSWORD, &claimed).await;
    tally.case(
        "after every refused or misdirected lift: still 429, locked",
        answer.is(429, LOCKED),
        &answer,
    );
    let (status, listed) = management(&server, reader, Method::GET, &user_blocks, None).await;
    tally.case(
        "the block is still listed",
        status == 200 && listed == expected,
        format_args!("{status} {listed}"),
    );

    // Lifting the brute-force block leaves an administrator's block in place.
    let token = admin.expect("the administrator's token");
    tally.status(
        "the user blocked",
        set_blocked(&server, token, &server.user_id, true).await,
        200,
    );
    let (status, _) = management(&server, admin, Method::DELETE, &user_blocks, None).await;
    tally.status("the brute-force blocks lifted", status, 204);
    let answer = form.login_from(&server, &demo, PASSWORD, &claimed).await;
    tally.case(
        "the right password after the lift: still the administrator's block (403)",
        answer.is(403, USER_BLOCKED),
        &answer,
    );
    let (_, listed) = management(&server, reader, Method::GET, &user_blocks, None).await;
    tally.case(
        "no brute-force block is listed",
        listed == json!({"blocked_for": []}),
        &listed,
    );
    tally.finish();
}

/// The links brute-force protection's `user_notification` shield mails (`/u/unblock`),
/// attacked: forged, empty and oversized tickets, a missing CSRF token, a mail scanner's
/// fetches, a replay, ten presses of one link at once, a link for one network presented to
/// lift another's block, thirty guesses at once across the threshold (one mail), guesses at
/// an account that does not exist (no mail, the same answer), a guesser with many networks
/// (five mails an hour), a deleted user's link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unblock_links_lift_their_own_block_once() {
    let mut tally = Tally::new("brute_force/unblock_links");
    let (server, mut smtp) = spawn_with_mail(|config| {
        config.login_attempts_per_minute = 1_000;
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1"]).expect("a range");
    })
    .await;
    let server = Arc::new(server);
    let token = server
        .management_token(&["update:attack_protection", "delete:users"])
        .await;
    let settings = json!({"max_attempts": 2, "shields": ["block", "user_notification"]});
    server
        .management_call(
            &token,
            reqwest::Method::PATCH,
            "/attack-protection/brute-force-protection",
            settings,
        )
        .await;
    let demo = server.user_email.clone();
    let form = Arc::new(LoginForm::open(&server).await);
    let from = |network: &'static str| [("x-forwarded-for", network)];
    // Two networks blocked in turn: a mail each.
    let mut links = Vec::new();
    for network in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            form.login_from(&server, &demo, "not the password", &from(network))
                .await;
        }
        let answer = form
            .login_from(&server, &demo, PASSWORD, &from(network))
            .await;
        tally.case(
            format_args!("{network} is locked out"),
            answer.is(429, LOCKED),
            &answer,
        );
        let mail = smtp.next().await;
        let body = mail.body();
        tally.case(
            format_args!("the mail names {network}"),
            body.contains(network),
            &body,
        );
        links.push(mail.link("/u/unblock?ticket="));
    }
    // The page, and what a press posts.
    let browser = browser();
    let open = |link: String| {
        let browser = browser.clone();
        async move {
            let response = browser.get(link).send().await.expect("the server answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    let press = |ticket: String, csrf: String| {
        let browser = browser.clone();
        let url = server.url("/u/unblock");
        async move {
            browser
                .post(url)
                .form(&[("ticket", ticket), ("csrf", csrf)])
                .send()
                .await
                .expect("the server answers")
                .status()
                .as_u16()
        }
    };
    let (status, page_a) = open(links[0].clone()).await;
    tally.status("the first link's page", status, 200);
    let csrf = hidden_field(&page_a, "csrf");
    for _ in 0..3 {
        open(links[0].clone()).await;
    }
    let answer = form
        .login_from(&server, &demo, PASSWORD, &from("198.51.100.1"))
        .await;
    tally.case(
        "a mail scanner fetching the link lifts nothing",
        answer.is(429, LOCKED),
        &answer,
    );
    let forged = "A".repeat(43);
    let long = "A".repeat(10_000);
    for (label, ticket) in [
        ("a forged ticket", forged.as_str()),
        ("an empty ticket", ""),
        ("a 10,000-character ticket", long.as_str()),
        ("a ticket with a NUL", "abc\u{0}def"),
    ] {
        let (status, _) = open(format!("{}?ticket={}", server.url("/u/unblock"), ticket)).await;
        tally.status(format_args!("the page of {label}"), status, 400);
        let status = press(ticket.to_string(), csrf.clone()).await;
        tally.status(format_args!("pressing with {label}"), status, 400);
    }
    let ticket_a = hidden_field(&page_a, "ticket");
    let status = press(ticket_a.clone(), "not the token".into()).await;
    tally.status("pressing without the CSRF token", status, 403);
    let answer = form
        .login_from(&server, &demo, PASSWORD, &from("198.51.100.1"))
        .await;
    tally.case(
        "after the refused presses: still locked",
        answer.is(429, LOCKED),
        &answer,
    );

    // The first network's link lifts the first network's block only, once.
    tally.status(
        "the first link pressed",
        press(ticket_a.clone(), csrf.clone()).await,
        200,
    );
    tally.status("pressed again", press(ticket_a, csrf.clone()).await, 400);
    let answer = form
        .login_from(&server, &demo, PASSWORD, &from("198.51.100.2"))
        .await;
    tally.case(
        "the second network is still locked out",
        answer.is(429, LOCKED),
        &answer,
    );
    let answer = form
        .login_from(&server, &demo, PASSWORD, &from("198.51.100.1"))
        .await;
    tally.status("the first network signs in", answer.status, 303);

    // Ten presses of the second link at once: one lifts it.
    let (_, page_b) = open(links[1].clone()).await;
    let ticket_b = hidden_field(&page_b, "ticket");
    let csrf_b = hidden_field(&page_b, "csrf");
    let presses: Vec<_> = (0..10)
        .map(|_| tokio::spawn(press(ticket_b.clone(), csrf_b.clone())))
        .collect();
    let mut lifted = 0;
    for pressing in presses {
        let status = pressing.await.expect("the press ends");
        lifted += usize::from(status == 200);
        tally.status_in("a parallel press", status, &[200, 400]);
    }
    tally.case("of ten parallel presses one lifted", lifted == 1, lifted);

    // Thirty guesses at once across the threshold from a third network: one mail.
    let guesses: Vec<_> = (0..30)
        .map(|n| {
            let (server, form) = (server.clone(), form.clone());
            tokio::spawn(async move {
                let password = format!("guess {n}");
                form.login_from(
                    &server,
                    &server.user_email,
                    &password,
                    &[("x-forwarded-for", "198.51.100.3")],
                )
                .await
            })
        })
        .collect();
    for guess in guesses {
        let answer = guess.await.expect("the guess ends");
        tally.case(
            "a parallel guess: 401 or 429",
            answer.is(401, WRONG_CREDENTIALS) || answer.is(429, LOCKED),
            &answer,
        );
    }
    let third = smtp.next().await;
    tally.case(
        "the third network's block: a mail",
        third.body().contains("198.51.100.3"),
        third.body(),
    );
    // Guesses at an account that does not exist: the same answers, no mail.
    for _ in 0..2 {
        form.login_from(&server, "ghost@example.com", "guess", &from("198.51.100.4"))
            .await;
    }
    let answer = form
        .login_from(
            &server,
            "ghost@example.com",
            PASSWORD,
            &from("198.51.100.4"),
        )
        .await;
    tally.case(
        "an unknown account is locked out alike",
        answer.is(429, LOCKED),
        &answer,
    );
    // A deleted user's link dies with the user; the mail it carries comes after the
    // ghost's guesses, so "no mail" for the ghost is checked by what arrives next.
    for _ in 0..2 {
        form.login_from(&server, &demo, "not the password", &from("198.51.100.5"))
            .await;
    }
    form.login_from(&server, &demo, PASSWORD, &from("198.51.100.5"))
        .await;
    let next = smtp.next().await;
    tally.case(
        "the next mail is the real account's, none for the unknown one nor a second for the third network",
        next.body().contains("198.51.100.5"),
        next.body(),
    );
    let link = next.link("/u/unblock?ticket=");
    // A guesser with many networks: five mails an hour for one account, then none.
    for network in ["198.51.100.6", "198.51.100.7"] {
        for _ in 0..2 {
            form.login_from(&server, &demo, "not the password", &from(network))
                .await;
        }
        let answer = form
            .login_from(&server, &demo, PASSWORD, &from(network))
            .await;
        tally.case(
            format_args!("{network} is locked out"),
            answer.is(429, LOCKED),
            &answer,
        );
    }
    let fifth = smtp.next().await;
    tally.case(
        "the fifth block's mail",
        fifth.body().contains("198.51.100.6"),
        fifth.body(),
    );
    // The worker sends in order and at once; give it a moment to show no sixth.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sixth = smtp.try_next().map(|mail| mail.body());
    tally.case(
        "no sixth mail within the hour",
        sixth.is_none(),
        format_args!("{sixth:?}"),
    );
    let id: String = url::form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let (status, _) = server
        .management_request(&token, "DELETE", &format!("/users/{id}"))
        .await;
    tally.status("the user deleted", status, 204);
    let (status, _) = open(link).await;
    tally.status("the deleted user's link", status, 400);
    tally.finish();
}
