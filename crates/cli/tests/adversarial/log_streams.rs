//! Log streams attacked: endpoints that are not http(s), carry credentials or leave the
//! machine over plain http; a name, a header or an authorization of every wrong size and
//! type; CR/LF smuggled into a header; headers that would reframe the request — each
//! refused with Auth0's 400 and nothing created or changed. The authorization never comes
//! back (list, get, patch, the audit log). A token without the log_streams scopes gets
//! 403. Receivers that never answer, or answer an endless body, cost a timeout and a
//! short status line — never the server's health, never the body kept.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use tessera_testkit::*;

use crate::harness::Tally;

const ALL: &[&str] = &[
    "read:log_streams",
    "create:log_streams",
    "update:log_streams",
    "delete:log_streams",
    "read:logs",
];

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

fn stream(sink: Value) -> Value {
    json!({"name": "hostile", "sink": sink})
}

#[tokio::test]
async fn hostile_streams_are_refused_and_change_nothing() {
    let mut tally = Tally::new("log_streams/validation");
    let server = spawn().await;
    let token = server.management_token(ALL).await;
    let t = Some(token.as_str());
    let long = "x".repeat(5000);
    let hostile = [
        (
            "ftp endpoint",
            stream(json!({"httpEndpoint": "ftp://127.0.0.1/in"})),
        ),
        (
            "file endpoint",
            stream(json!({"httpEndpoint": "file:///etc/passwd"})),
        ),
        (
            "javascript endpoint",
            stream(json!({"httpEndpoint": "javascript:alert(1)"})),
        ),
        (
            "gopher endpoint",
            stream(json!({"httpEndpoint": "gopher://127.0.0.1:25/"})),
        ),
        (
            "plain http off the machine",
            stream(json!({"httpEndpoint": "http://collector.example/in"})),
        ),
        (
            "credentials in the URL",
            stream(json!({"httpEndpoint": "https://user:pass@127.0.0.1/in"})),
        ),
        (
            "a fragment",
            stream(json!({"httpEndpoint": "https://127.0.0.1/in#x"})),
        ),
        (
            "an endpoint of 5000 characters",
            stream(json!({"httpEndpoint": format!("https://127.0.0.1/{long}")})),
        ),
        (
            "an endpoint that is a number",
            stream(json!({"httpEndpoint": 443})),
        ),
        ("no endpoint", stream(json!({}))),
        (
            "a name of 5000 characters",
            json!({"name": long, "sink": {"httpEndpoint": "https://127.0.0.1:1/"}}),
        ),
        (
            "a name with a newline",
            json!({"name": "a\nb", "sink": {"httpEndpoint": "https://127.0.0.1:1/"}}),
        ),
        (
            "a name that is an object",
            json!({"name": {"a": 1}, "sink": {"httpEndpoint": "https://127.0.0.1:1/"}}),
        ),
        (
            "another type",
            json!({"name": "x", "type": "datadog", "sink": {"httpEndpoint": "https://127.0.0.1:1/"}}),
        ),
        (
            "a header value that is a number",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X-A", "value": 1}]}),
            ),
        ),
        (
            "a header value that is null",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X-A", "value": null}]}),
            ),
        ),
        (
            "headers as an object",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": {"X-A": "1"}}),
            ),
        ),
        (
            "a header with an extra member",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X-A", "value": "1", "x": 1}]}),
            ),
        ),
        (
            "a header value of 5000 characters",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X-A", "value": long}]}),
            ),
        ),
        (
            "a header name of 5000 characters",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": long, "value": "1"}]}),
            ),
        ),
        (
            "CR/LF in a header value",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X-A", "value": "1\r\nX-Injected: 1"}]}),
            ),
        ),
        (
            "a space in a header name",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X A", "value": "1"}]}),
            ),
        ),
        (
            "a Host header",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "Host", "value": "evil"}]}),
            ),
        ),
        (
            "a Content-Length header",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "content-length", "value": "0"}]}),
            ),
        ),
        (
            "a Transfer-Encoding header",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "Transfer-Encoding", "value": "chunked"}]}),
            ),
        ),
        (
            "an Authorization custom header",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "Authorization", "value": "x"}]}),
            ),
        ),
        (
            "a header twice",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": [{"header": "X-A", "value": "1"}, {"header": "x-a", "value": "2"}]}),
            ),
        ),
        (
            "eleven headers",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpCustomHeaders": (0..11).map(|n| json!({"header": format!("X-{n}"), "value": "1"})).collect::<Vec<_>>()}),
            ),
        ),
        (
            "CR/LF in the authorization",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpAuthorization": "Bearer a\r\nHost: evil"}),
            ),
        ),
        (
            "an authorization of 5000 characters",
            stream(json!({"httpEndpoint": "https://127.0.0.1:1/", "httpAuthorization": long})),
        ),
        (
            "an authorization that is an array",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpAuthorization": ["Bearer a"]}),
            ),
        ),
        (
            "a content type with CR/LF",
            stream(
                json!({"httpEndpoint": "https://127.0.0.1:1/", "httpContentType": "text/plain\r\nX: 1"}),
            ),
        ),
        (
            "a content format of XML",
            stream(json!({"httpEndpoint": "https://127.0.0.1:1/", "httpContentFormat": "XML"})),
        ),
        (
            "an unknown sink member",
            stream(json!({"httpEndpoint": "https://127.0.0.1:1/", "awsAccountId": "1"})),
        ),
        (
            "an unknown filter",
            json!({"name": "x", "sink": {"httpEndpoint": "https://127.0.0.1:1/"}, "filters": [{"type": "category", "name": "*"}]}),
        ),
        (
            "a filter that is a string",
            json!({"name": "x", "sink": {"httpEndpoint": "https://127.0.0.1:1/"}, "filters": ["auth.login.fail"]}),
        ),
        (
            "a status at creation",
            json!({"name": "x", "status": "active", "sink": {"httpEndpoint": "https://127.0.0.1:1/"}}),
        ),
    ];
    for (case, body) in &hostile {
        let (status, answer) =
            call(&server, t, Method::POST, "/log-streams", Some(body.clone())).await;
        tally.status(format!("POST {case}"), status, 400);
        tally.case(
            format!("POST {case}: Auth0's error shape"),
            answer["statusCode"] == 400 && answer["message"].is_string(),
            &answer,
        );
    }
    let (status, huge) = call(
        &server,
        t,
        Method::POST,
        "/log-streams",
        Some(
            json!({"name": "x".repeat(200_000), "sink": {"httpEndpoint": "https://127.0.0.1:1/"}}),
        ),
    )
    .await;
    tally.status_in(
        format!("POST a name of 200 kB: {huge}"),
        status,
        &[400, 413],
    );
    let (_, list) = call(&server, t, Method::GET, "/log-streams", None).await;
    tally.case("nothing was created", list == json!([]), &list);

    // The same against an existing stream: nothing changes.
    let (status, created) = call(
        &server,
        t,
        Method::POST,
        "/log-streams",
        Some(json!({"name": "kept", "sink": {"httpEndpoint": "https://127.0.0.1:1/in", "httpAuthorization": "Bearer adversarial-s3cret",
            "httpCustomHeaders": [{"header": "X-Api-Key", "value": "adversarial-header-key"}]}})),
    )
    .await;
    tally.status("POST a good stream", status, 201);
    let path = format!("/log-streams/{}", created["id"].as_str().unwrap_or("none"));
    for (case, body) in &hostile {
        // Hostile in the sink, the filters or the type: the rest is a valid change.
        if case.starts_with("a name") || ["a status at creation", "no endpoint"].contains(case) {
            continue;
        }
        let mut patch = body.clone();
        let patch = patch.as_object_mut().unwrap();
        patch.remove("name");
        let (status, _) = call(
            &server,
            t,
            Method::PATCH,
            &path,
            Some(Value::Object(patch.clone())),
        )
        .await;
        tally.status(format!("PATCH {case}"), status, 400);
    }
    let (_, after) = call(&server, t, Method::GET, &path, None).await;
    tally.case("the stream did not change", after == created, &after);

    // The authorization never comes back.
    let (_, patched) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"name": "renamed"})),
    )
    .await;
    let (_, list) = call(&server, t, Method::GET, "/log-streams", None).await;
    let (_, logs) = call(&server, t, Method::GET, "/logs?from=0&take=100", None).await;
    for (what, answer) in [
        ("POST", &created),
        ("GET", &after),
        ("PATCH", &patched),
        ("list", &list),
        ("the audit log", &logs),
    ] {
        let text = answer.to_string();
        tally.case(
            format!("{what} never shows the authorization"),
            !text.contains("adversarial-s3cret") && !text.contains("httpAuthorization\":\"B"),
            &text,
        );
    }

    // A custom header's value (an API key, shown to the stream's readers as Auth0 does)
    // stays out of the audit log's record of the change.
    tally.case(
        "the audit log never shows a custom header's value",
        !logs.to_string().contains("adversarial-header-key"),
        &logs,
    );

    // Scopes: a token without them.
    let other = server.management_token(&["read:logs", "read:users"]).await;
    for (method, path, body) in [
        (Method::GET, "/log-streams".to_string(), None),
        (Method::GET, path.clone(), None),
        (
            Method::POST,
            "/log-streams".to_string(),
            Some(stream(json!({"httpEndpoint": "https://127.0.0.1:1/"}))),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"status": "paused"})),
        ),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, _) = call(&server, Some(other.as_str()), method.clone(), &path, body).await;
        tally.status(
            format!("{method} {path} without log_streams scopes"),
            status,
            403,
        );
    }
    let (status, _) = call(&server, None, Method::GET, "/log-streams", None).await;
    tally.status("GET without a token", status, 401);
    let (_, still) = call(&server, t, Method::GET, &path, None).await;
    tally.case(
        "the stream is still there, unchanged",
        still == patched,
        &still,
    );
    tally.finish();
}

/// A receiver that accepts connections and never answers.
async fn silent_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// A receiver that answers 500 with a body of 100 MB, written until the client leaves.
async fn endless_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                            content-length: 104857600\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'A'; 64 * 1024];
                for _ in 0..1600 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn receivers_that_hang_or_flood_cost_a_short_failure_only() {
    let mut tally = Tally::new("log_streams/receivers");
    let server = spawn_with(|config| {
        config.log_streams.poll_interval = Duration::from_millis(20);
        config.log_streams.retry_base = Duration::from_millis(10);
    })
    .await;
    let token = server.management_token(ALL).await;
    let t = Some(token.as_str());
    let mut ids = Vec::new();
    for (name, url) in [
        ("silent", silent_receiver().await),
        ("endless", endless_receiver().await),
    ] {
        let (status, created) = call(
            &server,
            t,
            Method::POST,
            "/log-streams",
            Some(json!({"name": name, "sink": {"httpEndpoint": url}})),
        )
        .await;
        tally.status(format!("POST the {name} receiver"), status, 201);
        ids.push((name, created["id"].as_str().unwrap_or("none").to_string()));
    }
    // An event for both to deliver.
    server
        .store
        .append_logs(&[tessera_store::LogEvent {
            date: now() * 1000,
            log_type: "s".into(),
            details: json!({}),
            ..Default::default()
        }])
        .await
        .unwrap();

    // While the silent one hangs, the server answers.
    let (status, _) = call(&server, t, Method::GET, "/log-streams", None).await;
    tally.status("the Management API answers meanwhile", status, 200);
    let health = reqwest::get(server.url("/healthz")).await.unwrap().status();
    tally.status("healthz answers meanwhile", health.as_u16(), 200);

    // Each fails (the silent one after the timeout), keeping a short line only.
    for (name, id) in &ids {
        let mut failed = None;
        for _ in 0..1500 {
            let stream = server.store.find_log_stream(id).await.unwrap().unwrap();
            if stream.failures > 0 {
                failed = Some(stream);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(stream) = failed else {
            tally.case(
                format!("the {name} receiver's delivery failed"),
                false,
                "never",
            );
            continue;
        };
        let error = stream.last_error.unwrap_or_default();
        tally.case(
            format!("the {name} receiver's failure is a short line"),
            error.len() < 80 && !error.contains("AAAA") && !error.contains("127.0.0.1"),
            &error,
        );
        tally.case(
            format!("the {name} stream kept its cursor"),
            stream.status == "active",
            &stream.status,
        );
    }
    let health = reqwest::get(server.url("/healthz")).await.unwrap().status();
    tally.status("healthz answers after", health.as_u16(), 200);
    tally.finish();
}
