//! `/api/v2/jobs`: a bulk import of Auth0 users runs as a job, reports per-user failures
//! in Auth0's shape, and the imported users sign in with the passwords they had — their
//! foreign hash replaced by Tessera's Argon2id at that first login. A request or file that
//! is wrong as a whole is refused before any job exists, and changes nothing.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::{TestServer, browser, pkce, spawn};

use super::call;

const BOUNDARY: &str = "tessera-test-boundary-7d1f";
const CONNECTION_ID: &str = "con_TesseraDatabase1";

/// A multipart/form-data body with these parts; `users` goes as a file.
fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        if *name == "users" {
            body.extend_from_slice(
                b"Content-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\n\
                  Content-Type: application/json\r\n\r\n",
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_import(server: &TestServer, token: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/jobs/users-imports"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn import(server: &TestServer, token: &str, users: &Value, upsert: bool) -> Value {
    let file = users.to_string();
    let upsert = upsert.to_string();
    let body = multipart(&[
        ("users", file.as_bytes()),
        ("connection_id", CONNECTION_ID.as_bytes()),
        ("upsert", upsert.as_bytes()),
        ("external_id", b"migration-1"),
        ("send_completion_email", b"false"),
    ]);
    let (status, job) = post_import(server, token, body).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["type"], "users_import");
    assert_eq!(job["connection_id"], CONNECTION_ID);
    assert_eq!(job["external_id"], "migration-1");
    assert!(job["id"].as_str().unwrap().starts_with("job_"), "{job}");
    finished(server, token, job["id"].as_str().unwrap()).await
}

/// Polls the job until it is done (a bound on the number of polls, not a time limit on
/// the import).
async fn finished(server: &TestServer, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = call(
            server,
            Some(token),
            Method::GET,
            &format!("/jobs/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{job}");
        if job["status"] == "completed" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never finished");
}

async fn errors_of(server: &TestServer, token: &str, id: &str) -> Vec<Value> {
    let (status, errors) = call(
        server,
        Some(token),
        Method::GET,
        &format!("/jobs/{id}/errors"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{errors}");
    errors.as_array().unwrap().clone()
}

/// Signs in through the hosted login page: whether the password was accepted.
async fn signs_in(server: &TestServer, email: &str, password: &str) -> bool {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = server.submit_login(&browser, &url, email, password).await;
    response.status() == 303
}

fn sha256_hex(input: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn auth0_users_are_imported_and_sign_in_with_their_old_passwords() {
    let server = spawn().await;
    let token = server
        .management_token(&["create:users", "read:users"])
        .await;
    let bcrypt_hash = bcrypt::hash("bcrypt password 1", 4).unwrap();
    let users = json!([
        {"email": "Ada@Example.com", "email_verified": true, "user_id": "ada",
         "name": "Ada", "app_metadata": {"plan": "pro"}, "password_hash": bcrypt_hash},
        {"email": "bob@example.com", "user_id": "auth0|bob",
         "custom_password_hash": {"algorithm": "sha256",
            "hash": {"value": sha256_hex(b"pepperbob's password"), "encoding": "hex"},
            "salt": {"value": "pepper", "position": "prefix"}}},
        {"email": "carol@example.com", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "zz"}}},
        {"email": server.user_email, "name": "Someone else"},
        {"email": "dave@example.com", "given_name": "Dave"},
        {"email": "ada@example.com", "user_id": "ada2"},
    ]);
    let job = import(&server, &token, &users, false).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["summary"],
        json!({"failed": 4, "updated": 0, "inserted": 2, "total": 6})
    );

    let errors = errors_of(&server, &token, job["id"].as_str().unwrap()).await;
    let codes: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["user"]["email"].as_str().unwrap(),
                e["errors"][0]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("carol@example.com", "INVALID_FORMAT"),
            (server.user_email.as_str(), "DUPLICATED_USER"),
            ("dave@example.com", "UNSUPPORTED_PROPERTY"),
            ("ada@example.com", "DUPLICATED_USER"),
        ]
    );
    assert_eq!(
        errors[0]["errors"][0]["path"],
        "custom_password_hash.hash.value"
    );
    // The echoed user never shows a hash.
    assert!(
        errors[0]["user"].get("custom_password_hash").is_none(),
        "{}",
        errors[0]
    );
    // The existing user was not touched.
    let (_, existing) = call(
        &server,
        Some(&token),
        Method::GET,
        &format!("/users/{}", server.user_id.replace('|', "%7C")),
        None,
    )
    .await;
    assert_ne!(existing["name"], "Someone else");

    let (status, ada) = call(
        &server,
        Some(&token),
        Method::GET,
        "/users/auth0%7Cada",
        None,
    )
    .await;
    assert_eq!(status, 200, "{ada}");
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["email_verified"], true);
    assert_eq!(ada["app_metadata"], json!({"plan": "pro"}));

    // Wrong passwords are wrong and change nothing; the right one signs in and the
    // bcrypt hash becomes Tessera's own.
    assert!(!signs_in(&server, "ada@example.com", "bcrypt password 2").await);
    assert_eq!(
        server.password_hash("ada@example.com").await,
        Some(bcrypt_hash.clone())
    );
    assert!(signs_in(&server, "ada@example.com", "bcrypt password 1").await);
    let upgraded = server.password_hash("ada@example.com").await.unwrap();
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert!(signs_in(&server, "ada@example.com", "bcrypt password 1").await);
    assert_eq!(
        server.password_hash("ada@example.com").await.unwrap(),
        upgraded
    );

    assert!(signs_in(&server, "bob@example.com", "bob's password").await);
    assert!(
        server
            .password_hash("bob@example.com")
            .await
            .unwrap()
            .starts_with("$argon2id$")
    );
}

#[tokio::test]
async fn upsert_updates_profiles_but_never_passwords() {
    let server = spawn().await;
    let token = server
        .management_token(&["create:users", "read:users"])
        .await;
    let hostile = bcrypt::hash("attacker's password", 4).unwrap();
    let users = json!([{"email": server.user_email, "name": "Renamed", "blocked": true,
        "user_metadata": {"lang": "fr"}, "password_hash": hostile}]);
    let job = import(&server, &token, &users, true).await;
    assert_eq!(
        job["summary"],
        json!({"failed": 0, "updated": 1, "inserted": 0, "total": 1})
    );
    let (_, user) = call(
        &server,
        Some(&token),
        Method::GET,
        &format!("/users/{}", server.user_id.replace('|', "%7C")),
        None,
    )
    .await;
    assert_eq!(user["name"], "Renamed");
    assert_eq!(user["blocked"], false);
    assert_eq!(user["user_metadata"], json!({"lang": "fr"}));
    assert!(!signs_in(&server, &server.user_email, "attacker's password").await);
    assert!(signs_in(&server, &server.user_email, tessera_testkit::PASSWORD).await);
}

#[tokio::test]
async fn bad_requests_and_files_are_refused_before_any_job() {
    let server = spawn().await;
    let token = server
        .management_token(&["create:users", "read:users"])
        .await;
    let good = br#"[{"email": "new@example.com"}]"#.as_slice();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "no users part",
            multipart(&[("connection_id", CONNECTION_ID.as_bytes())]),
            400,
        ),
        ("no connection", multipart(&[("users", good)]), 400),
        (
            "unknown connection",
            multipart(&[("users", good), ("connection_id", b"con_unknown")]),
            400,
        ),
        (
            "unknown field",
            multipart(&[
                ("users", good),
                ("connection_id", CONNECTION_ID.as_bytes()),
                ("role", b"admin"),
            ]),
            400,
        ),
        (
            "users twice",
            multipart(&[
                ("users", good),
                ("users", good),
                ("connection_id", CONNECTION_ID.as_bytes()),
            ]),
            400,
        ),
        (
            "upsert not a boolean",
            multipart(&[
                ("users", good),
                ("connection_id", CONNECTION_ID.as_bytes()),
                ("upsert", b"yes"),
            ]),
            400,
        ),
        (
            "not JSON",
            multipart(&[
                ("users", b"email\nnew@example.com"),
                ("connection_id", CONNECTION_ID.as_bytes()),
            ]),
            400,
        ),
        (
            "not an array",
            multipart(&[
                ("users", br#"{"email": "new@example.com"}"#),
                ("connection_id", CONNECTION_ID.as_bytes()),
            ]),
            400,
        ),
        (
            "a member twice",
            multipart(&[
                (
                    "users",
                    br#"[{"email": "new@example.com", "email": "b@example.com"}]"#,
                ),
                ("connection_id", CONNECTION_ID.as_bytes()),
            ]),
            400,
        ),
        (
            "10,000 levels deep",
            multipart(&[
                (
                    "users",
                    format!("[{}{}]", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
                ),
                ("connection_id", CONNECTION_ID.as_bytes()),
            ]),
            400,
        ),
        (
            "over the file limit",
            multipart(&[
                ("users", &vec![b' '; 16 * 1024 * 1024 + 1]),
                ("connection_id", CONNECTION_ID.as_bytes()),
            ]),
            413,
        ),
        (
            "a truncated body",
            multipart(&[("users", good)])[..40].to_vec(),
            400,
        ),
    ];
    for (case, body, expected) in cases {
        let (status, error) = post_import(&server, &token, body).await;
        assert_eq!(status, expected, "{case}: {error}");
        assert!(error["message"].is_string(), "{case}: {error}");
    }
    // Not multipart at all.
    let (status, _) = call(
        &server,
        Some(&token),
        Method::POST,
        "/jobs/users-imports",
        Some(json!({"users": []})),
    )
    .await;
    assert_eq!(status, 400);
    // Importing takes create:users; reading jobs read:users (or create:users).
    let reader = server.management_token(&["read:users"]).await;
    let (status, _) = post_import(
        &server,
        &reader,
        multipart(&[("users", good), ("connection_id", CONNECTION_ID.as_bytes())]),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        Some(&reader),
        Method::GET,
        "/jobs/job_doesnotexist",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        Some(&reader),
        Method::GET,
        "/jobs/job_doesnotexist/errors",
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Nothing was imported.
    let (_, found) = call(
        &server,
        Some(&token),
        Method::GET,
        "/users-by-email?email=new%40example.com",
        None,
    )
    .await;
    assert_eq!(found, json!([]));
}

async fn download(
    server: &TestServer,
    token: Option<&str>,
    location: &str,
) -> (u16, String, String) {
    let mut request = reqwest::Client::new().get(location);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let _ = server;
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn users_are_exported_as_ndjson_or_csv_from_an_authenticated_location() {
    let server = spawn().await;
    let token = server
        .management_token(&["create:users", "read:users"])
        .await;
    let users: Vec<Value> = (0..1203)
        .map(|i| json!({"email": format!("user{i:04}@example.com"), "user_id": format!("u{i:04}"), "name": if i == 7 { "=cmd|' /C calc'!A0".to_string() } else { format!("User, {i}") }}))
        .collect();
    let imported = import(&server, &token, &Value::Array(users), false).await;
    assert_eq!(imported["summary"]["inserted"], 1203, "{imported}");

    let (status, export) = call(&server, Some(&token), Method::POST, "/jobs/users-exports",
        Some(json!({"connection_id": CONNECTION_ID, "format": "json",
            "fields": [{"name": "email"}, {"name": "user_id", "export_as": "id"}, {"name": "app_metadata"}]}))).await;
    assert_eq!(status, 201, "{export}");
    assert_eq!(export["type"], "users_export");
    assert_eq!(export["format"], "json");
    let (_, job) = call(
        &server,
        Some(&token),
        Method::GET,
        &format!("/jobs/{}", export["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(job["status"], "completed");
    let location = job["location"].as_str().unwrap().to_string();
    assert_eq!(
        location,
        format!(
            "{}api/v2/jobs/{}/file",
            server.issuer,
            export["id"].as_str().unwrap()
        )
    );

    // The file takes the same token; without one, or with another scope, it is refused.
    assert_eq!(download(&server, None, &location).await.0, 401);
    let creator = server.management_token(&["create:users"]).await;
    assert_eq!(download(&server, Some(&creator), &location).await.0, 403);
    let (status, content_type, body) = download(&server, Some(&token), &location).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // Every user once (the quickstart's too), across the store's pages, in id order.
    assert_eq!(lines.len(), 1204);
    // The quickstart's user (a hex id) sorts first.
    assert_eq!(
        lines[1],
        json!({"email": "user0000@example.com", "id": "auth0|u0000"})
    );
    assert!(
        lines
            .iter()
            .all(|line| line.as_object().unwrap().len() <= 3)
    );

    let (status, export) = call(&server, Some(&token), Method::POST, "/jobs/users-exports",
        Some(json!({"format": "csv", "limit": 10, "fields": [{"name": "user_id"}, {"name": "name", "export_as": "Full name"}]}))).await;
    assert_eq!(status, 201, "{export}");
    let location = server.url(&format!(
        "/api/v2/jobs/{}/file",
        export["id"].as_str().unwrap()
    ));
    let (status, content_type, body) = download(&server, Some(&token), &location).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[0], "user_id,Full name");
    assert_eq!(lines[2], "auth0|u0000,\"User, 0\"");
    // A name a spreadsheet would run is written as text.
    assert_eq!(lines[9], "auth0|u0007,'=cmd|' /C calc'!A0");

    for (case, request) in [
        ("a format Auth0 does not have", json!({"format": "xml"})),
        (
            "an unknown field",
            json!({"fields": [{"name": "password_hash"}]}),
        ),
        ("a limit of zero", json!({"limit": 0})),
        (
            "an unknown connection",
            json!({"connection_id": "con_other"}),
        ),
        ("an unknown member", json!({"query": "*"})),
        (
            "an empty export_as",
            json!({"fields": [{"name": "email", "export_as": ""}]}),
        ),
    ] {
        let (status, error) = call(
            &server,
            Some(&token),
            Method::POST,
            "/jobs/users-exports",
            Some(request),
        )
        .await;
        assert_eq!(status, 400, "{case}: {error}");
    }
    // An import job has no file.
    let (status, _) = call(
        &server,
        Some(&token),
        Method::GET,
        &format!("/jobs/{}/file", imported["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_export_omits_the_email_of_a_user_without_one() {
    let server = spawn().await;
    let token = server.management_token(&["read:users"]).await;
    let profile = tessera_store::FederatedProfile::default();
    server
        .store
        .upsert_federated_user("github|4242", "github", &profile, 1)
        .await
        .unwrap();
    let fields = json!([{"name": "user_id"}, {"name": "email"}, {"name": "email_verified"}]);
    let mut files = Vec::new();
    for format in ["json", "csv"] {
        let (status, export) = call(
            &server,
            Some(&token),
            Method::POST,
            "/jobs/users-exports",
            Some(json!({"format": format, "fields": fields})),
        )
        .await;
        assert_eq!(status, 201, "{export}");
        let location = server.url(&format!(
            "/api/v2/jobs/{}/file",
            export["id"].as_str().unwrap()
        ));
        let (status, _, body) = download(&server, Some(&token), &location).await;
        assert_eq!(status, 200);
        files.push(body);
    }
    let line = files[0]
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["user_id"] == "github|4242")
        .unwrap_or_else(|| panic!("{}", files[0]));
    assert_eq!(line, json!({"user_id": "github|4242"}), "no email members");
    assert!(
        files[1].lines().any(|line| line == "github|4242,,"),
        "empty cells: {}",
        files[1]
    );
}
