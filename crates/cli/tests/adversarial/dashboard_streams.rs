//! Monitoring → Streams in the dashboard, attacked by a signed-in administrator's hostile
//! input: endpoints of other schemes, with credentials, off the machine over plain http;
//! header injection through the custom headers' textarea, the authorization and the
//! content type; reserved headers; an eleventh stream; markup in a name. Each is refused
//! by the same rules as `/api/v2/log-streams` (the form is shown again, 400) and nothing
//! changes; the authorization typed never appears in a page.

use reqwest::redirect::Policy;
use tessera_core::system::ADMIN_ROLE;
use tessera_testkit::{
    PASSWORD, TestServer, create_user, hidden_field, location, sign_in_at, spawn,
};

use crate::harness::Tally;

async fn signed_in_admin(server: &TestServer) -> reqwest::Client {
    let user_id = create_user(&server.store, "admin@example.com", PASSWORD).await;
    server
        .store
        .assign_user_role(&user_id, ADMIN_ROLE.id)
        .await
        .unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let response = browser
        .get(server.url("/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = browser.get(&authorize).send().await.unwrap();
    let login = location(&response);
    let callback = sign_in_at(
        &browser,
        &server.base,
        &login,
        "admin@example.com",
        PASSWORD,
    )
    .await;
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302);
    browser
}

/// Posts `fields` (with the CSRF token) to `path`: the status and the page.
async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, String)],
) -> (u16, String) {
    let html = browser
        .get(server.url("/admin/log-streams/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = vec![("csrf", hidden_field(&html, "csrf"))];
    form.extend(fields.iter().cloned());
    let response = browser
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn form(name: &str, endpoint: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("name", name.to_string()),
        ("endpoint", endpoint.to_string()),
        ("content_type", "application/json".to_string()),
        ("format", "JSONLINES".to_string()),
    ];
    for (key, value) in extra {
        fields.retain(|(k, _)| k != key);
        fields.push((key, value.to_string()));
    }
    fields
}

#[tokio::test]
async fn hostile_stream_forms_are_refused_by_the_apis_rules_and_change_nothing() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard/log streams");
    let admin = signed_in_admin(&server).await;
    let long = "x".repeat(3000);
    let too_long = "x".repeat(4097);
    let good = "http://127.0.0.1:1/in";
    let long_endpoint = format!("https://127.0.0.1/{long}");
    let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        ("an ftp endpoint", form("h", "ftp://127.0.0.1/in", &[])),
        ("a file endpoint", form("h", "file:///etc/passwd", &[])),
        (
            "a javascript endpoint",
            form("h", "javascript:alert(1)", &[]),
        ),
        (
            "a gopher endpoint",
            form("h", "gopher://127.0.0.1:25/", &[]),
        ),
        ("a data endpoint", form("h", "data:text/plain,x", &[])),
        (
            "plain http off the machine",
            form("h", "http://collector.example/in", &[]),
        ),
        (
            "credentials in the URL",
            form("h", "https://user:pass@127.0.0.1/in", &[]),
        ),
        (
            "a user name in the URL",
            form("h", "https://user@127.0.0.1/in", &[]),
        ),
        ("a fragment", form("h", "https://127.0.0.1/in#x", &[])),
        (
            "an endpoint of 3000 characters",
            form("h", &long_endpoint, &[]),
        ),
        ("no endpoint", form("h", "", &[])),
        ("no name", form("", good, &[])),
        ("a name with a newline", form("a\nb", good, &[])),
        (
            "CR in a header value",
            form("h", good, &[("headers", "X-A: 1\rX-Injected: 1")]),
        ),
        (
            "a Host header",
            form("h", good, &[("headers", "Host: evil.example")]),
        ),
        (
            "a Content-Length header",
            form("h", good, &[("headers", "Content-Length: 0")]),
        ),
        (
            "a Transfer-Encoding header",
            form("h", good, &[("headers", "Transfer-Encoding: chunked")]),
        ),
        (
            "an Authorization header",
            form("h", good, &[("headers", "Authorization: Bearer x")]),
        ),
        (
            "a space in a header name",
            form("h", good, &[("headers", "X A: 1")]),
        ),
        (
            "a header line without a colon",
            form("h", good, &[("headers", "X-A 1")]),
        ),
        (
            "a header twice",
            form("h", good, &[("headers", "X-A: 1\nx-a: 2")]),
        ),
        (
            "eleven headers",
            form(
                "h",
                good,
                &[(
                    "headers",
                    &(0..11)
                        .map(|n| format!("X-{n}: 1"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )],
            ),
        ),
        (
            "CR in the authorization",
            form("h", good, &[("authorization", "Bearer a\rHost: evil")]),
        ),
        (
            "an authorization of 4097 characters",
            form("h", good, &[("authorization", &too_long)]),
        ),
        (
            "CR in the content type",
            form("h", good, &[("content_type", "text/plain\rX: 1")]),
        ),
        (
            "a content type without a slash",
            form("h", good, &[("content_type", "json")]),
        ),
        (
            "a content format of XML",
            form("h", good, &[("format", "XML")]),
        ),
    ];
    for (case, fields) in &cases {
        let (status, html) = post(&server, &admin, "/admin/log-streams", fields).await;
        tally.status(format!("create with {case}"), status, 400);
        tally.case(
            format!("create with {case}: the API's message"),
            html.contains("Payload validation error")
                || html.contains("Write each header")
                || html.contains("Invalid form"),
            html.chars().take(300).collect::<String>(),
        );
    }
    let streams = server.store.list_log_streams().await.unwrap();
    tally.case("nothing was created", streams.is_empty(), streams.len());

    // The same against an existing stream: nothing changes, no secret shown.
    let (status, _) = post(
        &server,
        &admin,
        "/admin/log-streams",
        &form(
            "kept",
            good,
            &[("authorization", "Bearer dash-adversarial-s3cret")],
        ),
    )
    .await;
    tally.status("create a good stream", status, 302);
    let kept = server.store.list_log_streams().await.unwrap();
    let id = kept.first().map(|s| s.id.clone()).unwrap_or_default();
    let path = format!("/admin/log-streams/{id}");
    for (case, fields) in &cases {
        if ["no name", "a name with a newline"].contains(case) {
            continue;
        }
        let (status, html) = post(&server, &admin, &path, fields).await;
        tally.status(format!("save with {case}"), status, 400);
        tally.case(
            format!("save with {case}: the authorization not shown"),
            !html.contains("dash-adversarial-s3cret"),
            "",
        );
    }
    let (status, _) = post(
        &server,
        &admin,
        &format!("{path}/status"),
        &[("status", "suspended".into())],
    )
    .await;
    tally.status("set suspended by hand", status, 400);
    let after = server.store.list_log_streams().await.unwrap();
    tally.case("the stream did not change", after == kept, after.len());
    let html = admin
        .get(server.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tally.case(
        "the stream's page never holds the authorization",
        !html.contains("dash-adversarial-s3cret"),
        "",
    );

    // Markup in a name is shown as text.
    let (status, _) = post(
        &server,
        &admin,
        "/admin/log-streams",
        &form("<script>alert(1)</script>", good, &[]),
    )
    .await;
    tally.status("a name with markup is a name", status, 302);
    let list = admin
        .get(server.url("/admin/log-streams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tally.case(
        "the name's markup is escaped",
        !list.contains("<script>alert(1)")
            && (list.contains("&lt;script&gt;") || list.contains("&#60;script&#62;")),
        "",
    );

    // The tenant's limit: ten, the eleventh refused on the form.
    for n in 2..10 {
        let (status, _) = post(
            &server,
            &admin,
            "/admin/log-streams",
            &form(&format!("s{n}"), good, &[]),
        )
        .await;
        tally.status(format!("stream {}", n + 1), status, 302);
    }
    let (status, html) = post(
        &server,
        &admin,
        "/admin/log-streams",
        &form("eleventh", good, &[]),
    )
    .await;
    tally.status("an eleventh stream", status, 400);
    tally.case(
        "an eleventh stream: the limit said",
        html.contains("at most 10 log streams"),
        html.chars().take(300).collect::<String>(),
    );
    let count = server.store.list_log_streams().await.unwrap().len();
    tally.case("ten streams, no more", count == 10, count);
    tally.finish();
}
