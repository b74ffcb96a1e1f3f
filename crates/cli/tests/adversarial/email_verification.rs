//! Email verification: the hosted page a mailed link opens and the templates the mail is
//! made from. Tickets reused, expired, forged, altered, empty, huge, repeated, of a deleted
//! user or of an address since changed; posted without the page's CSRF token or from
//! another site; raced by parallel posts. Templates that try to read what they are not
//! given (`{{ user.password_hash }}`, secrets), run tags or loops, or put a line break
//! into the subject or sender. Each refusal is checked against the user's or the
//! template's state read again. The email provider's SMTP password through every `GET`
//! and error. (That a ticket or that password never reaches logs, URLs or files is
//! `secrets`'s.)

use serde_json::{Value, json};
use tessera_core::ids;
use tessera_store::NewVerificationTicket;
use tessera_testkit::{TestServer, browser, hidden_field, spawn};

use crate::harness::Tally;

const INVALID: &str = "This link is not valid";
const SCOPES: &[&str] = &[
    "create:user_tickets",
    "create:email_templates",
    "read:email_templates",
    "update:email_templates",
    "create:users",
    "update:users",
    "delete:users",
];

async fn api(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            server.url(&format!("/api/v2{path}")),
        )
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A new user and a ticket for it: (user id, ticket).
async fn ticket(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let (status, user) = api(
        server,
        admin,
        "POST",
        "/users",
        json!({"connection": "Username-Password-Authentication", "email": email,
               "password": "a long new passphrase 4"}),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["user_id"].as_str().unwrap().to_string();
    let (status, answer) = api(
        server,
        admin,
        "POST",
        "/tickets/email-verification",
        json!({"user_id": user_id}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let link = answer["ticket"].as_str().unwrap();
    let ticket = link.split_once("ticket=").unwrap().1.to_string();
    (user_id, ticket)
}

async fn verified(server: &TestServer, user_id: &str) -> bool {
    server
        .store
        .find_user(user_id)
        .await
        .unwrap()
        .is_some_and(|user| user.email_verified)
}

/// Opens the page for `ticket` in a fresh browser and posts its form with `ticket` in
/// place of the page's (the page itself needs a live ticket, `page_ticket`): (status,
/// page text).
async fn post_ticket(server: &TestServer, page_ticket: &str, ticket: &str) -> (u16, String) {
    let browser = browser();
    let page = browser
        .get(server.url(&format!("/u/email-verification?ticket={page_ticket}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(server.url("/u/email-verification"))
        .form(&[("ticket", ticket), ("csrf", &hidden_field(&page, "csrf"))])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn tickets_that_are_not_live_verify_nothing() {
    let mut tally = Tally::new("email_verification/tickets");
    let server = spawn().await;
    let admin = server.management_token(SCOPES).await;
    let (user_id, live) = ticket(&server, &admin, "victim@example.com").await;
    // Opens the page whose form the cases post (never posted itself).
    let (_, page) = ticket(&server, &admin, "page@example.com").await;

    // Forged, altered, empty, huge, odd: the page and the form refuse them alike.
    let mut altered = live.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for (what, forged) in [
        ("a forged ticket", ids::secret_token()),
        ("the live ticket with its last character changed", altered),
        ("the live ticket cut short", live[..20].to_string()),
        ("the live ticket in upper case", live.to_uppercase()),
        ("an empty ticket", String::new()),
        ("a 10 kB ticket", "A".repeat(10_000)),
        ("a ticket with a NUL", format!("{live}\0")),
        ("SQL in the ticket", "' OR 1=1 --".into()),
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(forged.as_bytes()).collect();
        let opened = browser()
            .get(server.url(&format!("/u/email-verification?ticket={encoded}")))
            .send()
            .await
            .unwrap();
        let status = opened.status().as_u16();
        let text = opened.text().await.unwrap();
        // A 10 kB value is refused by the parameter reader before the ticket is looked at.
        tally.case(
            format_args!("{what}: the link's page"),
            status == 400 && !text.contains("Verify my email address"),
            format_args!("status {status}"),
        );
        let (status, text) = post_ticket(&server, &page, &forged).await;
        tally.case(
            format_args!("{what}: posted"),
            status == 400 && !text.contains("is verified"),
            format_args!("status {status}"),
        );
    }
    let twice = browser()
        .get(server.url(&format!(
            "/u/email-verification?ticket={live}&ticket={}",
            ids::secret_token()
        )))
        .send()
        .await
        .unwrap();
    tally.status(
        "the ticket named twice in the query",
        twice.status().as_u16(),
        400,
    );
    tally.case(
        "after every forged ticket the user is not verified",
        !verified(&server, &user_id).await,
        "verified",
    );

    // Expired: stored with its end in the past.
    let expired = ids::secret_token();
    server
        .store
        .put_email_verification_ticket(&NewVerificationTicket {
            ticket_hash: &ids::secret_hash(&expired),
            user_id: &user_id,
            result_url: None,
            now: tessera_testkit::now() - 100,
            expires_at: tessera_testkit::now() - 1,
        })
        .await
        .unwrap();
    let (status, _) = post_ticket(&server, &page, &expired).await;
    tally.status("an expired ticket", status, 400);
    tally.case(
        "an expired ticket verifies nothing",
        !verified(&server, &user_id).await,
        "verified",
    );

    // Used: once.
    let (status, _) = post_ticket(&server, &page, &live).await;
    tally.status("the live ticket, first use", status, 200);
    let (status, text) = post_ticket(&server, &page, &live).await;
    tally.case(
        "the live ticket, reused",
        status == 400 && text.contains(INVALID),
        format_args!("status {status}"),
    );

    // An address changed after the ticket was issued: the old link verifies nothing.
    let (moved, stale) = ticket(&server, &admin, "mover@example.com").await;
    let (status, _) = api(
        &server,
        &admin,
        "PATCH",
        &format!("/users/{moved}"),
        json!({"email": "moved@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post_ticket(&server, &page, &stale).await;
    tally.status("a ticket for the address the user had before", status, 400);
    tally.case(
        "the new address stays unverified",
        !verified(&server, &moved).await,
        "verified",
    );

    // A deleted user's ticket.
    let (gone, orphan) = ticket(&server, &admin, "gone@example.com").await;
    let (status, _) = api(
        &server,
        &admin,
        "DELETE",
        &format!("/users/{gone}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = post_ticket(&server, &page, &orphan).await;
    tally.status("a deleted user's ticket", status, 400);

    // Twenty parallel posts of one ticket: one verifies.
    let (racer, raced) = ticket(&server, &admin, "racer@example.com").await;
    let posts: Vec<_> = (0..20)
        .map(|_| {
            let base = server.url("");
            let raced = raced.clone();
            tokio::spawn(async move {
                let browser = browser();
                let page = browser
                    .get(format!("{base}/u/email-verification?ticket={raced}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                if !page.contains("name=\"csrf\"") {
                    // Another post won before this page opened.
                    return 400;
                }
                browser
                    .post(format!("{base}/u/email-verification"))
                    .form(&[
                        ("ticket", raced.as_str()),
                        ("csrf", &hidden_field(&page, "csrf")),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut wins = 0;
    for post in posts {
        if post.await.unwrap() == 200 {
            wins += 1;
        }
    }
    tally.case(
        "20 parallel posts of one ticket: one wins",
        wins == 1,
        format_args!("{wins} won"),
    );
    tally.case(
        "and the racer is verified",
        verified(&server, &racer).await,
        "not verified",
    );
    tally.finish();
}

#[tokio::test]
async fn the_page_refuses_posts_without_its_token() {
    let mut tally = Tally::new("email_verification/csrf");
    let server = spawn().await;
    let admin = server.management_token(SCOPES).await;
    let (user_id, live) = ticket(&server, &admin, "target@example.com").await;
    let victim = browser();
    let page = victim
        .get(server.url(&format!("/u/email-verification?ticket={live}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = hidden_field(&page, "csrf");
    let other = browser();
    let other_page = other
        .get(server.url(&format!("/u/email-verification?ticket={live}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let other_token = hidden_field(&other_page, "csrf");
    for (what, client, csrf) in [
        ("no token", &victim, None),
        ("an empty token", &victim, Some(String::new())),
        ("a wrong token", &victim, Some(ids::secret_token())),
        (
            "another browser's token",
            &victim,
            Some(other_token.clone()),
        ),
        (
            "a cross-site post without the cookie",
            &browser(),
            Some(token.clone()),
        ),
    ] {
        let mut form = vec![("ticket", live.clone())];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let status = client
            .post(server.url("/u/email-verification"))
            .header("origin", "https://evil.example")
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        tally.status(format_args!("{what}"), status, 403);
    }
    tally.case(
        "after every refused post the user is not verified",
        !verified(&server, &user_id).await,
        "verified",
    );
    tally.finish();
}

#[tokio::test]
async fn templates_cannot_read_more_than_they_are_given_or_break_headers() {
    let mut tally = Tally::new("email_verification/templates");
    let server = spawn().await;
    let admin = server.management_token(SCOPES).await;
    let good = json!({
        "template": "verify_email", "body": "<a href=\"{{ url }}\">verify</a>",
        "subject": "Verify", "syntax": "liquid", "enabled": true,
    });
    let (status, _) = api(&server, &admin, "POST", "/email-templates", good.clone()).await;
    assert_eq!(status, 200);
    let stored = |server: &TestServer| {
        let store = server.store.clone();
        async move { store.email_template("verify_email").await.unwrap() }
    };
    let before = stored(&server).await;
    for (what, patch) in [
        (
            "a user's password hash",
            json!({"body": "{{ user.password_hash }}"}),
        ),
        ("a client secret", json!({"body": "{{ client_secret }}"})),
        ("the master key", json!({"body": "{{ master_key }}"})),
        (
            "an Actions-style secret",
            json!({"subject": "{{ secrets.api_key }}"}),
        ),
        (
            "the user's metadata",
            json!({"body": "{{ user.app_metadata }}"}),
        ),
        (
            "a loop of 10^9",
            json!({"body": "{% for i in (1..1000000000) %}x{% endfor %}"}),
        ),
        (
            "nested loops",
            json!({"body": "{% for a in (1..9999) %}{% for b in (1..9999) %}x{% endfor %}{% endfor %}"}),
        ),
        ("an include", json!({"body": "{% include '/etc/passwd' %}"})),
        ("an assign", json!({"body": "{% assign x = url %}{{ x }}"})),
        (
            "a filter",
            json!({"body": "{{ url | replace: 'https', 'http' }}"}),
        ),
        (
            "a raw block",
            json!({"body": "{% raw %}{{ url }}{% endraw %}"}),
        ),
        ("an unclosed output", json!({"body": "{{ url "})),
        (
            "CRLF and a Bcc in the subject",
            json!({"subject": "Hi\r\nBcc: all@example.com"}),
        ),
        ("a bare LF in the subject", json!({"subject": "Hi\nthere"})),
        (
            "CRLF in the sender",
            json!({"from": "a@example.com\r\nBcc: all@example.com"}),
        ),
        (
            "two senders",
            json!({"from": "a@example.com, b@example.com"}),
        ),
        (
            "a quoted display name",
            json!({"from": "\"Evil\" <a@example.com>"}),
        ),
        (
            "a javascript: result URL",
            json!({"resultUrl": "javascript:alert(1)"}),
        ),
        ("another syntax", json!({"syntax": "handlebars"})),
        (
            "a lifetime of a year",
            json!({"urlLifetimeInSeconds": 31_536_000}),
        ),
        (
            "an unknown member",
            json!({"__proto__": {"enabled": false}}),
        ),
        (
            "another template's name",
            json!({"template": "reset_email"}),
        ),
    ] {
        let (status, answer) = api(
            &server,
            &admin,
            "PATCH",
            "/email-templates/verify_email",
            patch,
        )
        .await;
        tally.case(
            format_args!("{what}"),
            status == 400 && answer["errorCode"] == "invalid_body",
            format_args!("status {status}: {answer}"),
        );
    }
    tally.case(
        "after every refused patch the template is unchanged",
        stored(&server).await == before,
        "changed",
    );
    for name in [
        "..%2Fverify_email",
        "VERIFY_EMAIL",
        "verify_email%00",
        "bogus",
    ] {
        let (status, _) = api(
            &server,
            &admin,
            "PUT",
            &format!("/email-templates/{name}"),
            good.clone(),
        )
        .await;
        tally.status_in(
            format_args!("the template name {name:?}"),
            status,
            &[400, 404],
        );
    }
    let reader = server.management_token(&["read:email_templates"]).await;
    let (status, _) = api(
        &server,
        &reader,
        "PATCH",
        "/email-templates/verify_email",
        json!({"enabled": false}),
    )
    .await;
    tally.status("a patch without update:email_templates", status, 403);
    let (status, _) = api(&server, &reader, "POST", "/email-templates", json!({})).await;
    tally.status("a create without create:email_templates", status, 403);
    tally.case(
        "the template is still unchanged",
        stored(&server).await == before,
        "changed",
    );
    tally.finish();
}

#[tokio::test]
async fn the_email_provider_never_shows_its_password() {
    let mut tally = Tally::new("email_verification/provider");
    let server = spawn().await;
    let scopes = [
        "read:email_provider",
        "create:email_provider",
        "update:email_provider",
        "delete:email_provider",
    ];
    let admin = server.management_token(&scopes).await;
    let secret = format!("pw-{}", ids::alphanumeric(16));
    let text = |value: &Value| value.to_string();
    let (status, created) = api(
        &server,
        &admin,
        "POST",
        "/emails/provider",
        json!({"name": "smtp", "enabled": false, "default_from_address": "a@example.com",
               "credentials": {"smtp_host": "mail.example.com", "smtp_port": 587,
                               "smtp_user": "u", "smtp_pass": secret}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    tally.case(
        "the created provider as answered",
        !text(&created).contains(&secret),
        &created,
    );
    for query in [
        "",
        "?fields=credentials&include_fields=true",
        "?fields=name&include_fields=false",
        "?fields=credentials.smtp_pass&include_fields=true",
        "?fields=smtp_pass",
    ] {
        let response = reqwest::Client::new()
            .get(server.url(&format!("/api/v2/emails/provider{query}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let body = response.text().await.unwrap();
        tally.case(
            format_args!("GET /emails/provider{query}"),
            !body.contains(&secret) && !body.contains("smtp_pass"),
            &body,
        );
    }
    let before = server.store.email_provider().await.unwrap();
    for (what, patch) in [
        (
            "a port of 0",
            json!({"credentials": {"smtp_port": 0, "smtp_pass": secret}}),
        ),
        (
            "a host with a space",
            json!({"credentials": {"smtp_host": "a b", "smtp_pass": secret}}),
        ),
        (
            "a password with CRLF",
            json!({"credentials": {"smtp_host": "h", "smtp_port": 25, "smtp_pass": format!("{secret}\r\nRSET")}}),
        ),
        (
            "a password of 10 kB",
            json!({"credentials": {"smtp_host": "h", "smtp_port": 25, "smtp_pass": secret.repeat(500)}}),
        ),
        (
            "an unknown credential",
            json!({"credentials": {"api_key": secret}}),
        ),
        (
            "another provider",
            json!({"name": "ses", "credentials": {"secretAccessKey": secret}}),
        ),
        (
            "a sender with CRLF",
            json!({"default_from_address": "a@example.com\r\nBcc: b@example.com"}),
        ),
        ("an unknown member", json!({"password": secret})),
        ("a wrong type", json!({"enabled": "true"})),
    ] {
        let (status, answer) = api(&server, &admin, "PATCH", "/emails/provider", patch).await;
        tally.case(
            format_args!("{what}"),
            status == 400 && !text(&answer).contains(&secret),
            format_args!("status {status}: {answer}"),
        );
    }
    tally.case(
        "after every refused patch the provider is unchanged",
        server.store.email_provider().await.unwrap() == before,
        "changed",
    );
    let reader = server.management_token(&["read:email_provider"]).await;
    for (method, body) in [
        ("POST", json!({"name": "smtp"})),
        ("PATCH", json!({"enabled": true})),
        ("DELETE", json!({})),
    ] {
        let (status, _) = api(&server, &reader, method, "/emails/provider", body).await;
        tally.status(format_args!("{method} without its scope"), status, 403);
    }
    let none = server.management_token(&["read:users"]).await;
    let (status, _) = api(&server, &none, "GET", "/emails/provider", json!({})).await;
    tally.status("GET without read:email_provider", status, 403);
    tally.finish();
}
