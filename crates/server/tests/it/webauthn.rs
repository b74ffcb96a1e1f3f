//! Security keys as a second factor over HTTP, with a software authenticator (an aws-lc-rs
//! P-256 key pair) answering the page's options as a browser would: registration, login,
//! the ID token's `amr`, and the refusals — a replayed challenge, a counter that does not
//! rise, a wrong origin, a credential removed through the Management API.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::webauthn::b64;
use tessera_core::webauthn::testing::{SoftKey, UP, UP_UV};
use tessera_testkit::*;

use crate::actions::payload;
use crate::mfa::{api, finish, hidden_field_or_link, html, password_then_mfa, urlencode};

/// Security keys on (UV required), and the policy asking every login for a second factor.
async fn require_keys(server: &TestServer) {
    let (status, body) = api(
        server,
        Method::PUT,
        "/guardian/factors/webauthn-roaming",
        Some(json!({"enabled": true, "user_verification": "required"})),
    )
    .await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"enabled": true, "user_verification": "required"})
        )
    );
    let (status, _) = api(
        server,
        Method::PUT,
        "/guardian/policies",
        Some(json!(["all-applications"])),
    )
    .await;
    assert_eq!(status, 200);
}

/// The options in the page's `data-options` attribute.
pub(crate) fn options(page: &str) -> Value {
    let marker = "data-options=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no options: {page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    let text = page[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#43;", "+")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

pub(crate) fn challenge(options: &Value) -> Vec<u8> {
    tessera_core::webauthn::unb64(options["challenge"].as_str().unwrap()).unwrap()
}

async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, String)],
) -> reqwest::Response {
    let mut form = vec![
        ("state".to_string(), hidden_field(page, "state")),
        ("csrf".to_string(), hidden_field(page, "csrf")),
        ("method".to_string(), "key".to_string()),
        ("action".to_string(), action.to_string()),
    ];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
    browser
        .post(server.url("/u/mfa"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// An assertion's form fields, signed by `key`.
pub(crate) fn assertion(
    key: &SoftKey,
    options: &Value,
    origin: &str,
    flags: u8,
    count: u32,
) -> Vec<(&'static str, String)> {
    let rp_id = options["rpId"].as_str().unwrap();
    let client = SoftKey::client_data("webauthn.get", &challenge(options), origin);
    let data = SoftKey::auth_data(rp_id, flags, count);
    let signature = key.sign(&data, &client);
    vec![
        ("credential_id", b64(&key.credential_id)),
        ("client_data_json", b64(&client)),
        ("authenticator_data", b64(&data)),
        ("signature", b64(&signature)),
    ]
}

#[tokio::test]
async fn a_security_key_is_registered_then_asked_and_its_counter_kept() {
    let server = spawn().await;
    require_keys(&server).await;
    let origin = server.base.clone();
    let key = SoftKey::new();

    // Registration: the page asks `navigator.credentials.create` for this relying party.
    let browser = browser();
    let (mfa_path, verifier) = password_then_mfa(&server, &browser, &[]).await;
    let page = html(&server, &browser, &mfa_path).await;
    assert!(page.contains("data-webauthn=\"create\""), "{page}");
    let created = options(&page);
    let rp_id = created["rp"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["attestation"], "none");
    assert_eq!(
        created["authenticatorSelection"]["userVerification"],
        "required"
    );
    let client = SoftKey::client_data("webauthn.create", &challenge(&created), &origin);
    let enroll = |client: &[u8], object: &[u8]| {
        vec![
            ("client_data_json", b64(client)),
            ("attestation_object", b64(object)),
            ("transports", "usb".to_string()),
        ]
    };
    // Without user verification: refused (the factor requires it); the challenge is spent.
    let unverified = enroll(&client, &key.attestation(&rp_id, UP, 0));
    let refused = post(&server, &browser, &page, "key-enroll", &unverified).await;
    assert_eq!(refused.status(), 401);
    let page = refused.text().await.unwrap();
    let good = enroll(&client, &key.attestation(&rp_id, UP_UV, 0));
    let replayed = post(&server, &browser, &page, "key-enroll", &good).await;
    assert_eq!(replayed.status(), 401, "the first challenge was used up");
    let page = replayed.text().await.unwrap();
    let client = SoftKey::client_data("webauthn.create", &challenge(&options(&page)), &origin);
    let registered = post(
        &server,
        &browser,
        &page,
        "key-enroll",
        &enroll(&client, &key.attestation(&rp_id, UP_UV, 0)),
    )
    .await;
    assert_eq!(registered.status(), 200);
    let saved = registered.text().await.unwrap();
    assert!(saved.contains("recovery-code"), "{saved}");
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    let tokens = finish(&server, &browser, &resume, &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa", "hwk"]), "{claims}");

    // A login: the key is asked for (`navigator.credentials.get` with it allowed).
    let other = tessera_testkit::browser();
    let (mfa_path, verifier) = password_then_mfa(&server, &other, &[]).await;
    let page = html(&server, &other, &mfa_path).await;
    assert!(page.contains("data-webauthn=\"get\""), "{page}");
    let asked = options(&page);
    assert_eq!(asked["allowCredentials"][0]["id"], b64(&key.credential_id));
    // From another origin, or another relying party: refused.
    let wrong_origin = assertion(&key, &asked, "http://evil.example", UP_UV, 1);
    let refused = post(&server, &other, &page, "key", &wrong_origin).await;
    assert_eq!(refused.status(), 401);
    let page = refused.text().await.unwrap();
    let asked = options(&page);
    let good = assertion(&key, &asked, &origin, UP_UV, 5);
    let accepted = post(&server, &other, &page, "key", &good).await;
    assert_eq!(accepted.status(), 303);
    let tokens = finish(&server, &other, &location(&accepted), &verifier).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "hwk"])
    );

    // A clone: its counter does not rise over 5 — refused, even with a good signature on a
    // fresh challenge. The old assertion replayed on a new login: refused too.
    let third = tessera_testkit::browser();
    let (mfa_path, _) = password_then_mfa(&server, &third, &[]).await;
    let page = html(&server, &third, &mfa_path).await;
    let replay = post(&server, &third, &page, "key", &good).await;
    assert_eq!(replay.status(), 401, "an assertion of another challenge");
    let page = replay.text().await.unwrap();
    let cloned = assertion(&key, &options(&page), &origin, UP_UV, 5);
    let refused = post(&server, &third, &page, "key", &cloned).await;
    assert_eq!(refused.status(), 401, "the counter did not rise");
    let page = refused.text().await.unwrap();
    let next = assertion(&key, &options(&page), &origin, UP_UV, 6);
    assert_eq!(
        post(&server, &third, &page, "key", &next).await.status(),
        303
    );

    // The Management API lists the key in Auth0's shape; deleting it ends its use.
    let user = urlencode(&server.user_id);
    let (status, methods) = api(
        &server,
        Method::GET,
        &format!("/users/{user}/authentication-methods"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let method = methods
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "webauthn-roaming")
        .unwrap_or_else(|| panic!("{methods}"));
    assert_eq!(method["key_id"], b64(&key.credential_id));
    // A user whose only factor is a key may be given a new recovery code.
    let (status, regenerated) = api(
        &server,
        Method::POST,
        &format!("/users/{user}/recovery-code-regeneration"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{regenerated}");
    assert_eq!(regenerated["recovery_code"].as_str().unwrap().len(), 24);
    let fourth = tessera_testkit::browser();
    let (mfa_path, _) = password_then_mfa(&server, &fourth, &[]).await;
    let page = html(&server, &fourth, &mfa_path).await;
    let path = format!(
        "/users/{user}/authentication-methods/{}",
        urlencode(method["id"].as_str().unwrap())
    );
    let (status, _) = api(&server, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let removed = assertion(&key, &options(&page), &origin, UP_UV, 7);
    let refused = post(&server, &fourth, &page, "key", &removed).await;
    assert_eq!(refused.status(), 401, "a removed credential");
    let page = refused.text().await.unwrap();
    assert!(page.contains("data-webauthn=\"create\""), "enrolls again");
}

#[tokio::test]
async fn unknown_keys_and_malformed_responses_are_refused() {
    let server = spawn().await;
    require_keys(&server).await;
    let origin = server.base.clone();
    // The test user registers a key.
    let key = SoftKey::new();
    let browser = browser();
    let (mfa_path, _) = password_then_mfa(&server, &browser, &[]).await;
    let page = html(&server, &browser, &mfa_path).await;
    let created = options(&page);
    let rp_id = created["rp"]["id"].as_str().unwrap().to_string();
    let client = SoftKey::client_data("webauthn.create", &challenge(&created), &origin);
    let fields = vec![
        ("client_data_json", b64(&client)),
        (
            "attestation_object",
            b64(&key.attestation(&rp_id, UP_UV, 0)),
        ),
    ];
    assert_eq!(
        post(&server, &browser, &page, "key-enroll", &fields)
            .await
            .status(),
        200
    );

    // Listed with the recovery code that came with it.
    let again = tessera_testkit::browser();
    let user = urlencode(&server.user_id);
    let (_, methods) = api(
        &server,
        Method::GET,
        &format!("/users/{user}/authentication-methods"),
        None,
    )
    .await;
    assert_eq!(methods.as_array().unwrap().len(), 2, "{methods}");

    // At a login, a key the user does not hold, malformed data and a missing UP flag are
    // refused without a server error.
    let (mfa_path, _) = password_then_mfa(&server, &again, &[]).await;
    let mut page = html(&server, &again, &mfa_path).await;
    let stranger = SoftKey::new();
    let cases: Vec<Vec<(&str, String)>> = vec![
        assertion(&stranger, &options(&page), &origin, UP_UV, 1),
        vec![
            ("credential_id", b64(&key.credential_id)),
            ("client_data_json", b64(b"{}")),
            ("authenticator_data", b64(&[0xa1])),
            ("signature", b64(&[0x30])),
        ],
    ];
    for case in cases {
        let refused = post(&server, &again, &page, "key", &case).await;
        assert_eq!(refused.status(), 401);
        page = refused.text().await.unwrap();
    }
    let absent = assertion(&key, &options(&page), &origin, UP_UV & !UP, 1);
    let refused = post(&server, &again, &page, "key", &absent).await;
    assert_eq!(refused.status(), 401, "user presence missing");
    let page = refused.text().await.unwrap();
    let good = assertion(&key, &options(&page), &origin, UP_UV, 1);
    assert_eq!(
        post(&server, &again, &page, "key", &good).await.status(),
        303
    );
}

/// Wrong keys count toward the same lockout as wrong codes: after five, even the right key
/// waits, and the page says attempts failed (not codes).
#[tokio::test]
async fn failed_key_attempts_lock_the_second_factor_for_a_while() {
    let server = spawn().await;
    require_keys(&server).await;
    let origin = server.base.clone();
    let key = SoftKey::new();
    let browser = browser();
    let (mfa_path, _) = password_then_mfa(&server, &browser, &[]).await;
    let page = html(&server, &browser, &mfa_path).await;
    let created = options(&page);
    let rp_id = created["rp"]["id"].as_str().unwrap().to_string();
    let client = SoftKey::client_data("webauthn.create", &challenge(&created), &origin);
    let fields = vec![
        ("client_data_json", b64(&client)),
        (
            "attestation_object",
            b64(&key.attestation(&rp_id, UP_UV, 0)),
        ),
        ("transports", "usb".to_string()),
    ];
    let registered = post(&server, &browser, &page, "key-enroll", &fields).await;
    assert_eq!(registered.status(), 200);

    let other = tessera_testkit::browser();
    let (mfa_path, _) = password_then_mfa(&server, &other, &[]).await;
    let mut page = html(&server, &other, &mfa_path).await;
    for attempt in 1..=5 {
        let wrong = assertion(&key, &options(&page), "http://evil.example", UP_UV, attempt);
        let refused = post(&server, &other, &page, "key", &wrong).await;
        assert_eq!(refused.status(), 401, "attempt {attempt}");
        page = refused.text().await.unwrap();
    }
    let right = assertion(&key, &options(&page), &origin, UP_UV, 10);
    let locked = post(&server, &other, &page, "key", &right).await;
    assert_eq!(locked.status(), 429, "even the right key waits");
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );
}
