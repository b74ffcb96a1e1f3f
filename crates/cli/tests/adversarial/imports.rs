//! Bulk user imports (`POST /api/v2/jobs/users-imports`): hostile files refused whole,
//! hostile users refused one by one with Auth0's error codes — hashes that would make a
//! login cost minutes, hashes that are not what they claim, ids and emails of existing
//! users, an upsert reaching for a password — and in every case nothing else changed:
//! the tenant's users and the existing user's hash are read back after each attempt.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera_testkit::{TestServer, spawn};

use crate::harness::Tally;

const BOUNDARY: &str = "adversarial-import-boundary";
const CONNECTION: &str = "con_TesseraDatabase1";

fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let file = if *name == "users" {
            "; filename=\"users.json\""
        } else {
            ""
        };
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn send(server: &TestServer, token: &str, body: Vec<u8>) -> (u16, Value) {
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
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(server: &TestServer, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(server.url(&format!("/api/v2{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every user of the tenant with their stored hash: what must not change.
async fn tenant(server: &TestServer) -> Vec<(String, String, Option<String>, String)> {
    let page = server
        .store
        .list_users(&Default::default(), tessera_store::Slice::first(1000))
        .await
        .unwrap();
    let mut users = Vec::new();
    for user in page.items {
        // Imported users always have an email.
        let email = user.email.expect("an imported user's email");
        let hash = server.password_hash(&email).await;
        users.push((user.user_id, email, hash, user.name));
    }
    users
}

/// Imports one file to the end; its job and errors.
async fn import(
    server: &TestServer,
    token: &str,
    users: &Value,
    upsert: bool,
) -> (Value, Vec<Value>) {
    let file = users.to_string();
    let upsert = upsert.to_string();
    let (status, job) = send(
        server,
        token,
        multipart(&[
            ("users", file.as_bytes()),
            ("connection_id", CONNECTION.as_bytes()),
            ("upsert", upsert.as_bytes()),
        ]),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let job = get(server, token, &format!("/jobs/{id}")).await;
        if job["status"] == "completed" || job["status"] == "failed" {
            let errors = get(server, token, &format!("/jobs/{id}/errors")).await;
            return (job, errors.as_array().cloned().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import job {id} never finished");
}

#[tokio::test]
async fn hostile_files_are_refused_whole() {
    let mut tally = Tally::new("imports/files");
    let server = spawn().await;
    let token = server
        .management_token(&["create:users", "read:users"])
        .await;
    // An upstream connection: its users come from their provider, never from a file.
    let admin = server.management_token(&["create:connections"]).await;
    let github = reqwest::Client::new()
        .post(server.url("/api/v2/connections"))
        .bearer_auth(admin)
        .json(&serde_json::json!({
            "name": "gh",
            "strategy": "github",
            "options": {"client_id": "id", "client_secret": "adversarial-secret"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(github.status(), 201);
    let github: Value = github.json().await.unwrap();
    let github_id = github["id"].as_str().unwrap().to_string();
    let before = tenant(&server).await;
    let deep = format!("[{}{}]", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!(
        "[{{\"email\": \"a@x.io\", \"user_metadata\": {}1{}}}]",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let huge = vec![b'['; 16 * 1024 * 1024 + 10];
    let duplicate = br#"[{"email": "a@x.io", "email": "b@x.io"}]"#;
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "a file over the limit",
            multipart(&[("users", &huge), ("connection_id", CONNECTION.as_bytes())]),
            &[413],
        ),
        (
            "CSV instead of JSON",
            multipart(&[
                ("users", b"email,password\na@x.io,x"),
                ("connection_id", CONNECTION.as_bytes()),
            ]),
            &[400],
        ),
        (
            "10,000 nested arrays",
            multipart(&[
                ("users", deep.as_bytes()),
                ("connection_id", CONNECTION.as_bytes()),
            ]),
            &[400],
        ),
        (
            "10,000 nested objects in metadata",
            multipart(&[
                ("users", deep_object.as_bytes()),
                ("connection_id", CONNECTION.as_bytes()),
            ]),
            &[400],
        ),
        (
            "a member named twice",
            multipart(&[
                ("users", duplicate),
                ("connection_id", CONNECTION.as_bytes()),
            ]),
            &[400],
        ),
        (
            "an object, not an array",
            multipart(&[
                ("users", br#"{"0": {"email": "a@x.io"}}"#),
                ("connection_id", CONNECTION.as_bytes()),
            ]),
            &[400],
        ),
        (
            "an empty array",
            multipart(&[("users", b"[]"), ("connection_id", CONNECTION.as_bytes())]),
            &[400],
        ),
        (
            "invalid UTF-8",
            multipart(&[
                ("users", b"[{\"email\": \"\xff@x.io\"}]"),
                ("connection_id", CONNECTION.as_bytes()),
            ]),
            &[400],
        ),
        (
            "an unknown connection",
            multipart(&[
                ("users", br#"[{"email": "a@x.io"}]"#),
                ("connection_id", b"con_0000000000000000"),
            ]),
            &[400],
        ),
        (
            "another connection's name",
            multipart(&[
                ("users", br#"[{"email": "a@x.io"}]"#),
                ("connection_id", b"google-oauth2"),
            ]),
            &[400],
        ),
        (
            "an upstream connection, by id",
            multipart(&[
                ("users", br#"[{"email": "a@x.io"}]"#),
                ("connection_id", github_id.as_bytes()),
            ]),
            &[400],
        ),
        (
            "an upstream connection, by name",
            multipart(&[
                ("users", br#"[{"email": "a@x.io"}]"#),
                ("connection_id", b"gh"),
            ]),
            &[400],
        ),
        (
            "connection_id twice",
            multipart(&[
                ("users", br#"[{"email": "a@x.io"}]"#),
                ("connection_id", CONNECTION.as_bytes()),
                ("connection_id", b"con_x"),
            ]),
            &[400],
        ),
        (
            "a mass-assigned field",
            multipart(&[
                ("users", br#"[{"email": "a@x.io"}]"#),
                ("connection_id", CONNECTION.as_bytes()),
                ("tenant", b"other"),
            ]),
            &[400],
        ),
        (
            "no closing boundary",
            multipart(&[("users", br#"[{"email": "a@x.io"}]"#)])[..60].to_vec(),
            &[400],
        ),
    ];
    for (case, body, expected) in cases {
        let (status, _) = send(&server, &token, body).await;
        tally.status_in(case, status, expected);
    }
    // Without create:users, even a good file is refused.
    let reader = server.management_token(&["read:users"]).await;
    let (status, _) = send(
        &server,
        &reader,
        multipart(&[
            ("users", br#"[{"email": "a@x.io"}]"#),
            ("connection_id", CONNECTION.as_bytes()),
        ]),
    )
    .await;
    tally.status("an import with read:users only", status, 403);
    let (status, _) = send(
        &server,
        "not.a.token",
        multipart(&[
            ("users", br#"[{"email": "a@x.io"}]"#),
            ("connection_id", CONNECTION.as_bytes()),
        ]),
    )
    .await;
    tally.status("an import without a valid token", status, 401);
    let after = tenant(&server).await;
    tally.case(
        "no refused file changed the tenant's users",
        after == before,
        format_args!("{} users before, {} after", before.len(), after.len()),
    );
    tally.finish();
}

#[tokio::test]
async fn hostile_users_are_refused_one_by_one() {
    let mut tally = Tally::new("imports/users");
    let server = spawn().await;
    let token = server
        .management_token(&["create:users", "read:users"])
        .await;
    let before = tenant(&server).await;
    let existing = server.user_email.clone();
    let md5_hex = "5f4dcc3b5aa765d61d8327deb882cf99";
    let md5_b64 = STANDARD.encode([0x5fu8; 16]);
    let slow_bcrypt = "$2b$31$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "bcrypt cost 31 (hours per login)",
            json!({"email": "u1@x.io", "password_hash": slow_bcrypt}),
            "INVALID_FORMAT",
        ),
        (
            "bcrypt cost 15",
            json!({"email": "u2@x.io", "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": slow_bcrypt.replace("$31$", "$15$")}}}),
            "INVALID_FORMAT",
        ),
        (
            "an Argon2 hash as password_hash",
            json!({"email": "u3@x.io", "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"}),
            "INVALID_FORMAT",
        ),
        (
            "md5crypt as password_hash",
            json!({"email": "u4@x.io", "password_hash": "$1$salt$qJH7.N4xYta3aEG/dfqo/0"}),
            "INVALID_FORMAT",
        ),
        (
            "a password_hash that is a number",
            json!({"email": "u5@x.io", "password_hash": 10}),
            "INVALID_TYPE",
        ),
        (
            "Argon2 with 4 GiB of memory",
            json!({"email": "u6@x.io", "custom_password_hash": {"algorithm": "argon2", "hash": {"value": "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}}),
            "INVALID_FORMAT",
        ),
        (
            "Argon2 with 1000 passes",
            json!({"email": "u7@x.io", "custom_password_hash": {"algorithm": "argon2", "hash": {"value": "$argon2id$v=19$m=1024,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}}),
            "INVALID_FORMAT",
        ),
        (
            "PBKDF2 with a billion iterations",
            json!({"email": "u8@x.io", "custom_password_hash": {"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha256$i=1000000000,l=32$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGg"}}}),
            "INVALID_FORMAT",
        ),
        (
            "MD5 in base64 declared hex",
            json!({"email": "u9@x.io", "custom_password_hash": {"algorithm": "md5", "hash": {"value": md5_b64, "encoding": "hex"}}}),
            "INVALID_FORMAT",
        ),
        (
            "MD5 in hex declared base64",
            json!({"email": "u10@x.io", "custom_password_hash": {"algorithm": "md5", "hash": {"value": md5_hex, "encoding": "base64"}}}),
            "INVALID_FORMAT",
        ),
        (
            "an MD5 digest called SHA-256",
            json!({"email": "u11@x.io", "custom_password_hash": {"algorithm": "sha256", "hash": {"value": md5_hex}}}),
            "INVALID_FORMAT",
        ),
        (
            "a salt in bad hex",
            json!({"email": "u12@x.io", "custom_password_hash": {"algorithm": "md5", "hash": {"value": md5_hex}, "salt": {"value": "xyz", "encoding": "hex"}}}),
            "INVALID_FORMAT",
        ),
        (
            "an unknown algorithm",
            json!({"email": "u13@x.io", "custom_password_hash": {"algorithm": "crc32", "hash": {"value": "00"}}}),
            "ENUM_MISMATCH",
        ),
        (
            "an LDAP {CRYPT} value",
            json!({"email": "u14@x.io", "custom_password_hash": {"algorithm": "ldap", "hash": {"value": "{CRYPT}$1$salt$x"}}}),
            "INVALID_FORMAT",
        ),
        (
            "both password_hash and custom_password_hash",
            json!({"email": "u15@x.io", "password_hash": "x", "custom_password_hash": {"algorithm": "md5", "hash": {"value": md5_hex}}}),
            "INVALID_FORMAT",
        ),
        (
            "an existing user's email, no upsert",
            json!({"email": existing, "name": "Hijacked"}),
            "DUPLICATED_USER",
        ),
        (
            "an existing user's id with another email",
            json!({"email": "u16@x.io", "user_id": server.user_id}),
            "DUPLICATED_USER",
        ),
        (
            "a user_id with a connection prefix of its own",
            json!({"email": "u17@x.io", "user_id": "google-oauth2|123"}),
            "INVALID_FORMAT",
        ),
        (
            "markup in a name",
            json!({"email": "u18@x.io", "name": "<script>alert(1)</script>"}),
            "INVALID_FORMAT",
        ),
        (
            "a javascript: picture",
            json!({"email": "u19@x.io", "picture": "javascript:alert(1)"}),
            "INVALID_FORMAT",
        ),
        (
            "a quoted local part",
            json!({"email": "\"a b\"@x.io"}),
            "INVALID_FORMAT",
        ),
        (
            "a $-named metadata member",
            json!({"email": "u20@x.io", "app_metadata": {"$where": "1"}}),
            "INVALID_FORMAT",
        ),
        (
            "metadata that is a string",
            json!({"email": "u21@x.io", "app_metadata": "{\"roles\": [\"admin\"]}"}),
            "INVALID_TYPE",
        ),
        (
            "a tenant member smuggled in",
            json!({"email": "u22@x.io", "tenant_id": "other"}),
            "OBJECT_ADDITIONAL_PROPERTIES",
        ),
        ("a user that is a string", json!("u23@x.io"), "INVALID_TYPE"),
        (
            "mfa factors Tessera cannot keep",
            json!({"email": "u24@x.io", "mfa_factors": [{"totp": {"secret": "JBSWY3DPEHPK3PXP"}}]}),
            "UNSUPPORTED_PROPERTY",
        ),
    ];
    let file: Vec<Value> = cases.iter().map(|(_, user, _)| user.clone()).collect();
    let (job, errors) = import(&server, &token, &Value::Array(file), false).await;
    tally.case(
        "the job reports every user failed",
        job["summary"]
            == json!({"failed": cases.len(), "updated": 0, "inserted": 0, "total": cases.len()}),
        &job,
    );
    for ((case, _, code), error) in cases
        .iter()
        .zip(errors.iter().chain(std::iter::repeat(&Value::Null)))
    {
        let codes: Vec<&str> = error["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["code"].as_str())
            .collect();
        tally.case(
            case,
            codes.contains(code),
            format_args!("{codes:?}, expected {code}"),
        );
        let shown = error["user"].to_string();
        tally.case(
            format_args!("{case}: no hash in the error"),
            !shown.contains("password_hash"),
            &shown,
        );
    }

    // Duplicates inside one file: the first is imported, the repeats are refused.
    let hash = bcrypt::hash("first password", 4).unwrap();
    let other = bcrypt::hash("second password", 4).unwrap();
    let (job, errors) = import(
        &server,
        &token,
        &json!([
            {"email": "twice@x.io", "user_id": "twice", "password_hash": hash},
            {"email": "TWICE@x.io", "user_id": "twice-2", "password_hash": other},
            {"email": "twice-3@x.io", "user_id": "twice", "password_hash": other},
        ]),
        false,
    )
    .await;
    tally.case(
        "a file's repeated email and id are refused",
        job["summary"]["inserted"] == 1 && errors.len() == 2,
        &job,
    );
    tally.case(
        "the first of the repeats keeps its hash",
        server.password_hash("twice@x.io").await == Some(hash.clone()),
        "another hash",
    );

    // Upsert reaching for the existing user's password, block state and id.
    let stored = server.password_hash(&existing).await;
    let (job, _) = import(&server, &token, &json!([
        {"email": existing, "password_hash": other, "blocked": true, "user_id": "attacker", "name": "Upserted"},
    ]), true).await;
    let user = server
        .store
        .find_user_by_email(&existing)
        .await
        .unwrap()
        .unwrap();
    tally.case(
        "an upsert updates the profile",
        job["summary"]["updated"] == 1 && user.name == "Upserted",
        &job,
    );
    tally.case(
        "an upsert never replaces a password",
        server.password_hash(&existing).await == stored,
        "the hash changed",
    );
    tally.case("an upsert never blocks", !user.blocked, "blocked");
    tally.case(
        "an upsert never moves a user to another id",
        user.user_id == server.user_id,
        &user.user_id,
    );
    tally.case(
        "an upsert creates no user under the file's id",
        server
            .store
            .find_user("auth0|attacker")
            .await
            .unwrap()
            .is_none(),
        "created",
    );

    // Apart from the two accepted users and the one upsert, nothing changed.
    let after: Vec<_> = tenant(&server)
        .await
        .into_iter()
        .filter(|(_, email, _, _)| email != "twice@x.io")
        .map(|(id, email, hash, name)| {
            if email == existing {
                (
                    id,
                    email,
                    hash,
                    before.iter().find(|u| u.1 == existing).unwrap().3.clone(),
                )
            } else {
                (id, email, hash, name)
            }
        })
        .collect();
    tally.case(
        "no refused user reached the tenant",
        after == before,
        format_args!("{after:?}"),
    );
    tally.finish();
}
