//! private_key_jwt against a hostile client: `alg: none`, HS256 keyed with the registered
//! public key, another application's key and kid, keys offered in the header (`jwk`,
//! `jku`, `x5u`, `x5c`), oversize and malformed assertions, a secret beside an assertion,
//! replays raced from ten connections; and against the Management API: malformed and weak
//! PEM, private keys, another application's credential in `client_authentication_methods`,
//! a public application, mass assignment — each refused with the right status and nothing
//! stored or changed.

use serde_json::{Value, json};
use tessera_testkit::client_key::*;
use tessera_testkit::*;

use crate::harness::Tally;

async fn client_credentials(server: &TestServer, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials"), ("audience", API)];
    form.extend_from_slice(extra);
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn with_assertion(server: &TestServer, client_id: &str, assertion: &str) -> (u16, Value) {
    client_credentials(
        server,
        &[
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

fn refused(body: &Value) -> bool {
    body["error"] == "invalid_client"
        && body["error_description"] == "Client authentication failed"
        && body.get("access_token").is_none()
}

#[tokio::test]
async fn forged_and_borrowed_assertions_are_refused() {
    let mut tally = Tally::new("private_key_jwt/assertions");
    let server = spawn().await;
    let token = server.management_token(CREDENTIAL_SCOPES).await;
    let m2m = server.m2m_client_id.clone();
    let (other, _) = server.management_client(&["read:clients"]).await;
    let key = ClientKey::rsa();
    let theirs = ClientKey::rsa();
    enable_private_key_jwt(&server, &token, &m2m, &key).await;
    enable_private_key_jwt(&server, &token, &other, &theirs).await;
    let claims = || ClientKey::claims(&m2m, &server.issuer);
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };

    let mut cases: Vec<(&str, String)> = Vec::new();
    for alg in ["none", "None", "NONE"] {
        cases.push((
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": alg, "kid": key.kid})),
                b64(&claims())
            ),
        ));
    }
    // HS256 keyed with the public key (PEM text and its DER): key confusion.
    let der = {
        use base64::Engine;
        let body: String = key
            .public_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    for secret in [key.public_pem.as_bytes(), der.as_slice()] {
        cases.push((
            "HS256 keyed with the registered public key",
            hs256_assertion(&json!({"alg": "HS256", "kid": key.kid}), &claims(), secret),
        ));
    }
    cases.push((
        "another application's key under its own kid",
        theirs.assertion(&m2m, &server.issuer),
    ));
    cases.push((
        "another application's key under our kid",
        theirs.sign(&json!({"alg": "RS256", "kid": key.kid}), &claims()),
    ));
    // Keys offered in the header are never read: an attacker's key with each.
    let attacker = ClientKey::rsa();
    let jwk: Value = {
        let parsed = tessera_jose::PublicKey::from_pem(&attacker.public_pem).unwrap();
        serde_json::to_value(&parsed.jwk).unwrap()
    };
    for header in [
        json!({"alg": "RS256", "jwk": jwk}),
        json!({"alg": "RS256", "kid": key.kid, "jwk": jwk}),
        json!({"alg": "RS256", "jku": "https://attacker.example/jwks.json"}),
        json!({"alg": "RS256", "x5u": "https://attacker.example/cert.pem"}),
        json!({"alg": "RS256", "x5c": [attacker.certificate_pem().lines().filter(|l| !l.starts_with("-----")).collect::<String>()]}),
    ] {
        cases.push((
            "a key offered in the header",
            attacker.sign(&header, &claims()),
        ));
    }
    cases.push((
        "our key with crit",
        key.sign(
            &json!({"alg": "RS256", "crit": ["exp"], "exp": 1}),
            &claims(),
        ),
    ));
    let good = key.assertion(&m2m, &server.issuer);
    let (h, p, s) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        )
    };
    let mut tampered_claims = claims();
    tampered_claims["sub"] = json!(other);
    cases.push((
        "tampered claims",
        format!("{h}.{}.{s}", b64(&tampered_claims)),
    ));
    cases.push(("no signature", format!("{h}.{p}.")));
    cases.push(("five segments", format!("{good}.x.y")));
    cases.push(("padded base64", format!("{h}=.{p}.{s}")));
    cases.push(("garbage", "not.a.jwt".to_string()));
    cases.push((
        "one megabyte",
        format!("{h}.{}.{s}", "A".repeat(1024 * 1024)),
    ));
    let mut unicode = claims();
    unicode["jti"] = json!("😀".repeat(300));
    cases.push((
        "a 1,200-byte jti",
        key.sign(&json!({"alg": "RS256"}), &unicode),
    ));
    let mut numeric = claims();
    numeric["exp"] = json!("9999999999");
    cases.push((
        "exp as a string",
        key.sign(&json!({"alg": "RS256"}), &numeric),
    ));
    for (case, assertion) in cases {
        let (status, body) = with_assertion(&server, &m2m, &assertion).await;
        tally.case(
            case,
            (status == 401 && refused(&body)) || (status == 413 && case == "one megabyte"),
            format_args!("{status} {body}"),
        );
    }

    // The assertion of one application presented for another (client_id swapped).
    let (status, body) = with_assertion(&server, &other, &good).await;
    tally.case(
        "our assertion under another client_id",
        status == 401 && refused(&body),
        format_args!("{status} {body}"),
    );
    // A secret beside the assertion; Basic beside it; a wrong assertion type.
    let (status, body) = client_credentials(
        &server,
        &[
            ("client_id", &m2m),
            ("client_secret", &server.m2m_secret),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &key.assertion(&m2m, &server.issuer)),
        ],
    )
    .await;
    tally.case(
        "a client secret beside the assertion",
        status == 400 && body["error"] == "invalid_request",
        format_args!("{status} {body}"),
    );
    let (status, body) = client_credentials(
        &server,
        &[
            ("client_id", &m2m),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &key.assertion(&m2m, &server.issuer)),
        ],
    )
    .await;
    tally.case(
        "a SAML assertion type",
        status == 401 && body["error"] == "invalid_client",
        format_args!("{status} {body}"),
    );
    let (status, body) = client_credentials(
        &server,
        &[("client_id", &m2m), ("client_assertion_type", JWT_BEARER)],
    )
    .await;
    tally.case(
        "an assertion type without an assertion",
        status == 400 && body["error"] == "invalid_request",
        format_args!("{status} {body}"),
    );
    let basic = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth(&m2m, Some(&server.m2m_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", API),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &key.assertion(&m2m, &server.issuer)),
        ])
        .send()
        .await
        .unwrap();
    tally.status("Basic beside an assertion", basic.status().as_u16(), 400);
    // The secret of an application configured for private_key_jwt.
    let (status, body) = client_credentials(
        &server,
        &[("client_id", &m2m), ("client_secret", &server.m2m_secret)],
    )
    .await;
    tally.case(
        "the client secret of a private_key_jwt application",
        status == 401 && refused(&body),
        format_args!("{status} {body}"),
    );

    // One assertion raced from ten connections: one token.
    let assertion = key.assertion(&m2m, &server.issuer);
    let mut racers = Vec::new();
    for _ in 0..10 {
        let url = server.url("/oauth/token");
        let form = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("audience".to_string(), API.to_string()),
            ("client_id".to_string(), m2m.clone()),
            ("client_assertion_type".to_string(), JWT_BEARER.to_string()),
            ("client_assertion".to_string(), assertion.clone()),
        ];
        racers.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    let issued = statuses.iter().filter(|s| **s == 200).count();
    tally.case(
        "one assertion raced from ten connections",
        issued == 1 && statuses.iter().filter(|s| **s == 401).count() == 9,
        format_args!("{statuses:?}"),
    );
    tally.finish();
}

#[tokio::test]
async fn hostile_credentials_are_not_registered() {
    let mut tally = Tally::new("private_key_jwt/credentials");
    let server = spawn().await;
    let token = server.management_token(CREDENTIAL_SCOPES).await;
    let m2m = server.m2m_client_id.clone();
    let (other, _) = server.management_client(&["read:clients"]).await;
    let key = ClientKey::rsa();
    let count = |client_id: String| {
        let store = server.store.clone();
        async move { store.client_credentials_of(&client_id).await.unwrap().len() }
    };
    let weak_pem = {
        // A 1024-bit RSA public key (PKCS#1), made by hand: n = 2^1023 + 1, e = 65537.
        let mut n = vec![0u8; 129];
        n[1] = 0x80;
        n[128] = 1;
        let mut body = vec![0x02, 0x81, 0x81];
        body.extend(&n);
        body.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut der = vec![0x30, 0x81, body.len() as u8];
        der.extend(body);
        use base64::Engine;
        format!(
            "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    };
    let private_pem = key.private_pem();
    let two_keys = format!("{}{}", key.public_pem, ClientKey::rsa().public_pem);
    let bodies = [
        (
            "a malformed PEM",
            json!({"credential_type": "public_key", "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}),
        ),
        (
            "text that is no PEM",
            json!({"credential_type": "public_key", "pem": "hello"}),
        ),
        (
            "a private key",
            json!({"credential_type": "public_key", "pem": private_pem}),
        ),
        (
            "a 1024-bit RSA key",
            json!({"credential_type": "public_key", "pem": weak_pem}),
        ),
        (
            "two keys in one PEM",
            json!({"credential_type": "public_key", "pem": two_keys}),
        ),
        (
            "a 40 kB PEM",
            json!({"credential_type": "public_key", "pem": format!("{}{}", key.public_pem, "A".repeat(40 * 1024))}),
        ),
        (
            "an alg the key does not have",
            json!({"credential_type": "public_key", "pem": key.public_pem, "alg": "HS256"}),
        ),
        (
            "an mTLS certificate type",
            json!({"credential_type": "x509_cert", "pem": key.public_pem}),
        ),
        ("no credential_type", json!({"pem": key.public_pem})),
        ("no pem", json!({"credential_type": "public_key"})),
        (
            "a pem that is an object",
            json!({"credential_type": "public_key", "pem": {"n": "x"}}),
        ),
        (
            "an expiry in the past",
            json!({"credential_type": "public_key", "pem": key.public_pem, "expires_at": "2001-01-01T00:00:00Z"}),
        ),
        (
            "an expiry that is no date",
            json!({"credential_type": "public_key", "pem": key.public_pem, "expires_at": "tomorrow"}),
        ),
        (
            "a certificate expiry of a bare key",
            json!({"credential_type": "public_key", "pem": key.public_pem, "parse_expiry_from_cert": true}),
        ),
        (
            "a name with markup and a newline",
            json!({"credential_type": "public_key", "pem": key.public_pem, "name": "a\n<script>"}),
        ),
        (
            "a chosen id (mass assignment)",
            json!({"credential_type": "public_key", "pem": key.public_pem, "id": "cred_mine"}),
        ),
        (
            "a chosen kid (mass assignment)",
            json!({"credential_type": "public_key", "pem": key.public_pem, "kid": "../../etc"}),
        ),
        (
            "a client_id (mass assignment)",
            json!({"credential_type": "public_key", "pem": key.public_pem, "client_id": other}),
        ),
    ];
    for (case, body) in bodies {
        let (status, answer) = post_credential(&server, &token, &m2m, &body).await;
        let stored = count(m2m.clone()).await;
        let echoed = answer.to_string().contains("BEGIN");
        tally.case(
            case,
            status == 400 && stored == 0 && !echoed,
            format_args!("status {status}, {stored} stored, {answer}"),
        );
    }
    let (status, _) = post_credential(
        &server,
        &token,
        &m2m,
        &json!({"credential_type": "public_key", "pem": "A".repeat(1024 * 1024)}),
    )
    .await;
    tally.case(
        "a 1 MB body",
        status == 413 && count(m2m.clone()).await == 0,
        format_args!("status {status}"),
    );
    // A public application has no credentials.
    let (status, _) = post_credential(
        &server,
        &token,
        &server.spa_client_id,
        &json!({"credential_type": "public_key", "pem": key.public_pem}),
    )
    .await;
    tally.case(
        "a credential for a single-page application",
        status == 400 && count(server.spa_client_id.clone()).await == 0,
        format_args!("status {status}"),
    );
    // Without the scope.
    let reader = server.management_token(&["read:client_credentials"]).await;
    let (status, _) = post_credential(
        &server,
        &reader,
        &m2m,
        &json!({"credential_type": "public_key", "pem": key.public_pem}),
    )
    .await;
    tally.case(
        "created without create:client_credentials",
        status == 403 && count(m2m.clone()).await == 0,
        format_args!("status {status}"),
    );

    // Another application's credential named in client_authentication_methods.
    let (status, theirs) = post_credential(
        &server,
        &token,
        &other,
        &json!({"credential_type": "public_key", "pem": ClientKey::rsa().public_pem}),
    )
    .await;
    assert_eq!(status, 201);
    let theirs = theirs["id"].as_str().unwrap().to_string();
    let before = server.store.find_client(&m2m).await.unwrap().unwrap();
    for (case, body) in [
        (
            "another application's credential",
            json!({"client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": theirs}]}}}),
        ),
        (
            "an unknown credential",
            json!({"client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": "cred_nope"}]}}}),
        ),
        (
            "no credential",
            json!({"client_authentication_methods": {"private_key_jwt": {"credentials": []}}}),
        ),
        (
            "three credentials",
            json!({"client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}}}),
        ),
        (
            "mTLS",
            json!({"client_authentication_methods": {"tls_client_auth": {"credentials": []}}}),
        ),
        (
            "a string",
            json!({"client_authentication_methods": "private_key_jwt"}),
        ),
        (
            "a secret method beside it",
            json!({"token_endpoint_auth_method": "client_secret_post", "client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": theirs}]}}}),
        ),
    ] {
        let (status, answer) = patch_client(&server, &token, &m2m, &body).await;
        let after = server.store.find_client(&m2m).await.unwrap().unwrap();
        tally.case(
            case,
            status == 400 && after == before,
            format_args!("status {status}, {answer}"),
        );
    }
    // Another application's credential read, changed or deleted through ours.
    let path = format!("/api/v2/clients/{m2m}/credentials/{theirs}");
    let http = reqwest::Client::new();
    let get = http
        .get(server.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    tally.status(
        "another application's credential read through ours",
        get.status().as_u16(),
        404,
    );
    let patch = http
        .patch(server.url(&path))
        .bearer_auth(&token)
        .json(&json!({"expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    tally.status(
        "another application's credential changed through ours",
        patch.status().as_u16(),
        404,
    );
    let delete = http
        .delete(server.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    tally.case(
        "another application's credential deleted through ours",
        delete.status() == 404 && count(other.clone()).await == 1,
        delete.status(),
    );
    let theirs_now = server
        .store
        .client_credential(&other, &theirs)
        .await
        .unwrap()
        .unwrap();
    tally.case(
        "their credential unchanged",
        theirs_now.expires_at.is_none(),
        format_args!("{theirs_now:?}"),
    );
    // A public application enabled for private_key_jwt.
    let spa_before = server
        .store
        .find_client(&server.spa_client_id)
        .await
        .unwrap();
    let (status, _) = patch_client(
        &server,
        &token,
        &server.spa_client_id,
        &json!({"client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": theirs}]}}}),
    )
    .await;
    tally.case(
        "a single-page application set to private_key_jwt",
        status == 400
            && server
                .store
                .find_client(&server.spa_client_id)
                .await
                .unwrap()
                == spa_before,
        format_args!("status {status}"),
    );
    // Credentials named at creation, before the application (and so its credentials)
    // exists: refused, nothing created.
    let admin = server
        .management_token(&["create:clients", "read:clients"])
        .await;
    let total = || async {
        let listed: Value = reqwest::Client::new()
            .get(server.url("/api/v2/clients?include_totals=true&per_page=1"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed["total"].as_i64().unwrap()
    };
    let before = total().await;
    let created = reqwest::Client::new()
        .post(server.url("/api/v2/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Named too early", "app_type": "non_interactive",
            "client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": theirs}]}}}))
        .send()
        .await
        .unwrap();
    let status = created.status().as_u16();
    tally.case(
        "client_authentication_methods at creation",
        status == 400 && total().await == before,
        format_args!("status {status}"),
    );
    tally.finish();
}
