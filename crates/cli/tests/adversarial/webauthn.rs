//! Security keys against a hostile browser that holds the password: responses from
//! another origin or for another relying party, a replayed challenge, another user's
//! credential, malformed CBOR, the user-present flag missing, a counter rolled back, and
//! oversize bodies and fields. Each is refused with 401 (or 413), never a server error, and
//! the user's credentials read back as they were.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::webauthn::testing::{SoftKey, UP, UP_UV};
use tessera_core::webauthn::{b64, unb64};
use tessera_testkit::*;

use crate::harness::Tally;

const OTHER: &str = "key-holder@example.com";

/// A hostile answer made for a challenge.
type Answer<'a> = dyn Fn(&[u8]) -> Vec<(&'static str, String)> + 'a;

async fn call(server: &TestServer, method: Method, path: &str, body: Value) -> u16 {
    let token = server
        .management_token(&[
            "update:guardian_factors",
            "update:mfa_policies",
            "create:users",
        ])
        .await;
    reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The second-factor page after the password, in a fresh browser: (browser, html).
async fn at_key_page(server: &TestServer, email: &str) -> (reqwest::Client, String) {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = server.submit_login(&browser, &url, email, PASSWORD).await;
    let path = location(&response);
    assert!(path.starts_with("/u/mfa?state="), "{path}");
    let html = browser
        .get(server.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (browser, html)
}

fn options(html: &str) -> Value {
    let marker = "data-options=\"";
    let start = html.find(marker).expect("key options") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    let text = html[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#43;", "+")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap()
}

fn challenge(html: &str) -> Vec<u8> {
    unb64(options(html)["challenge"].as_str().unwrap()).unwrap()
}

async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    html: &str,
    action: &str,
    fields: Vec<(&'static str, String)>,
) -> (u16, String) {
    let mut form = vec![
        ("state", hidden_field(html, "state")),
        ("csrf", hidden_field(html, "csrf")),
        ("method", "key".to_string()),
        ("action", action.to_string()),
    ];
    form.extend(fields);
    let response = browser
        .post(server.url("/u/mfa"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn assertion(
    key: &SoftKey,
    challenge: &[u8],
    origin: &str,
    rp_id: &str,
    flags: u8,
    count: u32,
) -> Vec<(&'static str, String)> {
    let client = SoftKey::client_data("webauthn.get", challenge, origin);
    let data = SoftKey::auth_data(rp_id, flags, count);
    vec![
        ("credential_id", b64(&key.credential_id)),
        ("client_data_json", b64(&client)),
        ("authenticator_data", b64(&data)),
        ("signature", b64(&key.sign(&data, &client))),
    ]
}

/// Registers `key` for the user of `email`; the key page's relying party id.
async fn register(server: &TestServer, email: &str, key: &SoftKey) -> String {
    let (browser, html) = at_key_page(server, email).await;
    let created = options(&html);
    let rp_id = created["rp"]["id"].as_str().unwrap().to_string();
    let client = SoftKey::client_data("webauthn.create", &challenge(&html), &server.base);
    let fields = vec![
        ("client_data_json", b64(&client)),
        (
            "attestation_object",
            b64(&key.attestation(&rp_id, UP_UV, 3)),
        ),
    ];
    let (status, _) = post(server, &browser, &html, "key-enroll", fields).await;
    assert_eq!(status, 200);
    rp_id
}

#[tokio::test]
async fn hostile_security_key_responses_are_refused() {
    let mut tally = Tally::new("mfa/webauthn");
    let server = spawn().await;
    let origin = server.base.clone();
    assert_eq!(
        call(
            &server,
            Method::PUT,
            "/guardian/factors/webauthn-roaming",
            json!({"enabled": true})
        )
        .await,
        200
    );
    assert_eq!(
        call(
            &server,
            Method::PUT,
            "/guardian/policies",
            json!(["all-applications"])
        )
        .await,
        200
    );
    assert_eq!(
        call(&server, Method::POST, "/users", json!({"connection": "Username-Password-Authentication", "email": OTHER, "password": PASSWORD})).await,
        201
    );
    let mine = SoftKey::new();
    let theirs = SoftKey::new();
    let rp_id = register(&server, &server.user_email.clone(), &mine).await;
    register(&server, OTHER, &theirs).await;
    let before = server
        .store
        .webauthn_credentials_of(&server.user_id)
        .await
        .unwrap();
    assert_eq!(before.len(), 1);

    // Registration: malformed CBOR, and the same credential registered a second time.
    let stranger_browser = {
        // A user who has no key yet: the other one's second login still asks for theirs,
        // so enrollment is tried on a third account.
        let third = "third@example.com";
        assert_eq!(call(&server, Method::POST, "/users", json!({"connection": "Username-Password-Authentication", "email": third, "password": PASSWORD})).await, 201);
        at_key_page(&server, third).await
    };
    let (browser, html) = stranger_browser;
    let client = SoftKey::client_data("webauthn.create", &challenge(&html), &origin);
    let (status, html) = post(
        &server,
        &browser,
        &html,
        "key-enroll",
        vec![
            ("client_data_json", b64(&client)),
            ("attestation_object", b64(&[0xa3, 0x63, 0x66, 0x6d])),
        ],
    )
    .await;
    tally.status(
        "registration: a truncated CBOR attestation object",
        status,
        401,
    );
    let client = SoftKey::client_data("webauthn.create", &challenge(&html), &origin);
    let (status, html) = post(
        &server,
        &browser,
        &html,
        "key-enroll",
        vec![
            ("client_data_json", b64(&client)),
            (
                "attestation_object",
                b64(&mine.attestation(&rp_id, UP_UV, 0)),
            ),
        ],
    )
    .await;
    tally.status(
        "registration: another user's credential id again",
        status,
        401,
    );
    let client = SoftKey::client_data("webauthn.create", &challenge(&html), "http://evil.example");
    let (status, _) = post(
        &server,
        &browser,
        &html,
        "key-enroll",
        vec![
            ("client_data_json", b64(&client)),
            (
                "attestation_object",
                b64(&SoftKey::new().attestation(&rp_id, UP_UV, 0)),
            ),
        ],
    )
    .await;
    tally.status("registration: from another origin", status, 401);

    // Login: each hostile assertion on a fresh challenge (the page after a refusal).
    let (browser, mut html) = at_key_page(&server, &server.user_email.clone()).await;
    let first_challenge = challenge(&html);
    let cases: Vec<(&str, Box<Answer<'_>>)> = vec![
        (
            "another origin",
            Box::new(|c| assertion(&mine, c, "http://evil.example", &rp_id, UP_UV, 10)),
        ),
        (
            "another relying party id hash",
            Box::new(|c| assertion(&mine, c, &origin, "evil.example", UP_UV, 10)),
        ),
        (
            "the user-present flag missing",
            Box::new(|c| assertion(&mine, c, &origin, &rp_id, UP_UV & !UP, 10)),
        ),
        (
            "the counter rolled back",
            Box::new(|c| assertion(&mine, c, &origin, &rp_id, UP_UV, 2)),
        ),
        (
            "the counter repeated",
            Box::new(|c| assertion(&mine, c, &origin, &rp_id, UP_UV, 3)),
        ),
    ];
    for (case, make) in &cases {
        let (status, next) = post(&server, &browser, &html, "key", make(&challenge(&html))).await;
        tally.status(format_args!("assertion: {case}"), status, 401);
        html = next;
        // Five wrong answers lock the user for a while: clear the count between cases.
        server
            .store
            .clear_mfa_failures(&server.user_id)
            .await
            .unwrap();
    }
    let hostile: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        (
            "a replayed (spent) challenge",
            assertion(&mine, &first_challenge, &origin, &rp_id, UP_UV, 10),
        ),
        (
            "another user's credential",
            assertion(&theirs, &challenge(&html), &origin, &rp_id, UP_UV, 10),
        ),
        (
            "malformed authenticator data",
            vec![
                ("credential_id", b64(&mine.credential_id)),
                ("client_data_json", b64(b"{\"type\":1}")),
                ("authenticator_data", b64(&[0xff; 3])),
                ("signature", b64(&[0; 2])),
            ],
        ),
        (
            "a field over the size limit (the form's: a 400 before any check)",
            vec![
                ("credential_id", "A".repeat(20_000)),
                ("client_data_json", "A".repeat(20_000)),
                ("authenticator_data", "A".into()),
                ("signature", "A".into()),
            ],
        ),
        (
            "fields that are not base64url",
            vec![
                ("credential_id", "!!".into()),
                ("client_data_json", "%%".into()),
                ("authenticator_data", "..".into()),
                ("signature", "**".into()),
            ],
        ),
    ];
    for (case, fields) in hostile {
        let (status, next) = post(&server, &browser, &html, "key", fields).await;
        let expected = if case.contains("size limit") {
            400
        } else {
            401
        };
        tally.status(format_args!("assertion: {case}"), status, expected);
        if status == 401 {
            html = next;
        }
        server
            .store
            .clear_mfa_failures(&server.user_id)
            .await
            .unwrap();
    }
    let huge = format!(
        "state={}&csrf=x&action=key&signature={}",
        hidden_field(&html, "state"),
        "A".repeat(3 * 1024 * 1024)
    );
    let status = browser
        .post(server.url("/u/mfa"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("a 3 MiB body", status, 413);
    let after = server
        .store
        .webauthn_credentials_of(&server.user_id)
        .await
        .unwrap();
    tally.case(
        "the credential is unchanged",
        after == before,
        format_args!("{after:?}"),
    );

    // The right key still works after all that (the refusals were refusals, not damage).
    let (browser, html) = at_key_page(&server, &server.user_email.clone()).await;
    let (status, _) = post(
        &server,
        &browser,
        &html,
        "key",
        assertion(&mine, &challenge(&html), &origin, &rp_id, UP_UV, 4),
    )
    .await;
    tally.status("the holder's key, counter risen", status, 303);
    tally.finish();
}
