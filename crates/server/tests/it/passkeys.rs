//! Passkeys as the first factor over HTTP, with a software authenticator answering the
//! pages' options as a browser would: the administrator turns them on for the database
//! connection, a user is offered one after a password login and creates it, then signs in
//! with it alone; the refusals — no user verification, a replayed answer, another user's
//! handle, a removed passkey, passkeys turned off — and the second-factor policy still
//! asked after a passkey.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::DATABASE_CONNECTION_ID;
use tessera_core::webauthn::b64;
use tessera_core::webauthn::testing::{SoftKey, UP, UP_UV};
use tessera_testkit::*;

use crate::actions::payload;
use crate::mfa::{api, finish, html, urlencode};
use crate::webauthn::{assertion, challenge, options};

/// A Management API call with the connection scopes.
async fn connections_api(server: &TestServer, method: Method, body: Option<Value>) -> (u16, Value) {
    let token = server
        .management_token(&["read:connections", "update:connections"])
        .await;
    let mut request = reqwest::Client::new()
        .request(
            method,
            server.url(&format!("/api/v2/connections/{DATABASE_CONNECTION_ID}")),
        )
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Passkeys on (or off) for the default database connection.
async fn passkeys(server: &TestServer, enabled: bool) {
    let body = json!({"options": {"authentication_methods": {"passkey": {"enabled": enabled}}}});
    let (status, connection) = connections_api(server, Method::PATCH, Some(body)).await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(
        connection["options"]["authentication_methods"],
        json!({"password": {"enabled": true}, "passkey": {"enabled": enabled}})
    );
}

/// The login page of a new login: (its HTML, the PKCE verifier).
async fn login_page(server: &TestServer, browser: &reqwest::Client) -> (String, String) {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("nonce", "n-1"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    (
        html(server, browser, &location(&response)).await,
        pkce.verifier,
    )
}

/// Posts a form of the page (its `state` and `csrf`) with `fields` to `path`.
async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    (page, path): (&str, &str),
    fields: &[(&str, String)],
) -> reqwest::Response {
    let mut form = vec![
        ("state".to_string(), hidden_field(page, "state")),
        ("csrf".to_string(), hidden_field(page, "csrf")),
    ];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
    browser
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A passkey's answer to the login page: the assertion with the user handle `handle`.
fn passkey_answer(
    key: &SoftKey,
    page: &str,
    origin: &str,
    count: u32,
    handle: &str,
) -> Vec<(&'static str, String)> {
    let mut fields = assertion(key, &options(page), origin, UP_UV, count);
    fields.push(("user_handle", b64(handle.as_bytes())));
    fields
}

#[tokio::test]
async fn a_passkey_is_offered_after_a_password_then_signs_in_alone() {
    let server = spawn().await;
    let origin = server.base.clone();
    let (page, _) = login_page(&server, &browser()).await;
    assert!(!page.contains("passkey"), "off until enabled: {page}");
    passkeys(&server, true).await;

    // A password login ends on the offer: a discoverable credential, verified user.
    let first = browser();
    let (page, verifier) = login_page(&server, &first).await;
    assert!(page.contains("Continue with a passkey"), "{page}");
    let response = submit_login_form(
        &first,
        &server.base,
        &format!("/u/login?state={}", hidden_field(&page, "state")),
        &server.user_email,
        PASSWORD,
    )
    .await;
    assert_eq!(response.status(), 303);
    let offer = location(&response);
    assert!(offer.starts_with("/u/passkey?state="), "{offer}");
    let page = html(&server, &first, &offer).await;
    let created = options(&page);
    assert_eq!(created["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(created["user"]["id"], b64(server.user_id.as_bytes()));
    let rp_id = created["rp"]["id"].as_str().unwrap().to_string();
    let key = SoftKey::new();
    let enroll = |page: &str, flags: u8| {
        let client = SoftKey::client_data("webauthn.create", &challenge(&options(page)), &origin);
        vec![
            ("action", "create".to_string()),
            ("client_data_json", b64(&client)),
            (
                "attestation_object",
                b64(&key.attestation(&rp_id, flags, 0)),
            ),
        ]
    };
    // Without user verification: refused, and offered again with a new challenge.
    let refused = post(&server, &first, (&page, "/u/passkey"), &enroll(&page, UP)).await;
    assert_eq!(refused.status(), 401);
    let page = refused.text().await.unwrap();
    let created = post(
        &server,
        &first,
        (&page, "/u/passkey"),
        &enroll(&page, UP_UV),
    )
    .await;
    assert_eq!(created.status(), 303);
    let tokens = finish(&server, &first, &location(&created), &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd"]), "{claims}");

    // The passkey alone signs in, in another browser.
    let second = browser();
    let (page, verifier) = login_page(&server, &second).await;
    let asked = options(&page);
    assert_eq!(asked["allowCredentials"], json!([]));
    assert_eq!(asked["userVerification"], "required");
    let answer = passkey_answer(&key, &page, &origin, 1, &server.user_id);
    let signed_in = post(&server, &second, (&page, "/u/login/passkey"), &answer).await;
    assert_eq!(signed_in.status(), 303);
    let resume = location(&signed_in);
    assert!(
        resume.starts_with("/authorize/resume"),
        "no offer now: {resume}"
    );
    let tokens = finish(&server, &second, &resume, &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], server.user_id.as_str());
    assert_eq!(claims["amr"], json!(["hwk", "user"]), "{claims}");

    // The same answer on a new login: another challenge, refused. So is another user's
    // handle with a good signature, and an answer without one.
    let third = browser();
    let (page, _) = login_page(&server, &third).await;
    let replayed = post(&server, &third, (&page, "/u/login/passkey"), &answer).await;
    assert_eq!(replayed.status(), 401);
    let page = replayed.text().await.unwrap();
    assert!(
        page.contains("could not sign you in with that passkey"),
        "{page}"
    );
    let other = passkey_answer(&key, &page, &origin, 2, "auth0|someone-else");
    let refused = post(&server, &third, (&page, "/u/login/passkey"), &other).await;
    assert_eq!(refused.status(), 401);
    let page = refused.text().await.unwrap();
    let bare = assertion(&key, &options(&page), &origin, UP_UV, 3);
    let refused = post(&server, &third, (&page, "/u/login/passkey"), &bare).await;
    assert_eq!(refused.status(), 401);
    let page = refused.text().await.unwrap();

    // The Management API lists it as a passkey; removed, it signs nobody in.
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
        .find(|m| m["type"] == "passkey")
        .unwrap_or_else(|| panic!("{methods}"));
    assert_eq!(method["key_id"], b64(&key.credential_id));
    let path = format!(
        "/users/{user}/authentication-methods/{}",
        urlencode(method["id"].as_str().unwrap())
    );
    assert_eq!(api(&server, Method::DELETE, &path, None).await.0, 204);
    let page = refused_page(&server, &third, &page, &key, &origin).await;

    // Passkeys off: no button, and an answer is refused outright.
    passkeys(&server, false).await;
    let (page_off, _) = login_page(&server, &third).await;
    assert!(!page_off.contains("passkey-login"), "{page_off}");
    let answer = passkey_answer(&key, &page, &origin, 9, &server.user_id);
    let off = post(&server, &third, (&page_off, "/u/login/passkey"), &answer).await;
    assert_eq!(off.status(), 400);
}

/// A good answer of a removed passkey: refused. The new page.
async fn refused_page(
    server: &TestServer,
    browser: &reqwest::Client,
    page: &str,
    key: &SoftKey,
    origin: &str,
) -> String {
    let answer = passkey_answer(key, page, origin, 8, &server.user_id);
    let refused = post(server, browser, (page, "/u/login/passkey"), &answer).await;
    assert_eq!(refused.status(), 401, "a removed passkey");
    refused.text().await.unwrap()
}

#[tokio::test]
async fn not_now_goes_on_and_a_passkey_login_still_meets_the_second_factor_policy() {
    let server = spawn().await;
    let origin = server.base.clone();
    passkeys(&server, true).await;

    // "Not now": on to the application, without a passkey.
    let first = browser();
    let (page, verifier) = login_page(&server, &first).await;
    let response = submit_login_form(
        &first,
        &server.base,
        &format!("/u/login?state={}", hidden_field(&page, "state")),
        &server.user_email,
        PASSWORD,
    )
    .await;
    let offer = html(&server, &first, &location(&response)).await;
    let skipped = post(
        &server,
        &first,
        (&offer, "/u/passkey"),
        &[("action", "skip".into())],
    )
    .await;
    assert_eq!(skipped.status(), 303);
    finish(&server, &first, &location(&skipped), &verifier).await;
    let again = post(
        &server,
        &first,
        (&offer, "/u/passkey"),
        &[("action", "skip".into())],
    )
    .await;
    assert_eq!(again.status(), 400, "the offer is answered once");

    // Created on the next login's offer; then with a second factor required of every
    // login, a passkey login goes on to it.
    let second = browser();
    let (page, _) = login_page(&server, &second).await;
    let response = submit_login_form(
        &second,
        &server.base,
        &format!("/u/login?state={}", hidden_field(&page, "state")),
        &server.user_email,
        PASSWORD,
    )
    .await;
    let offer = html(&server, &second, &location(&response)).await;
    let created = options(&offer);
    let rp_id = created["rp"]["id"].as_str().unwrap();
    let key = SoftKey::new();
    let client = SoftKey::client_data("webauthn.create", &challenge(&created), &origin);
    let fields = vec![
        ("action", "create".to_string()),
        ("client_data_json", b64(&client)),
        ("attestation_object", b64(&key.attestation(rp_id, UP_UV, 0))),
    ];
    assert_eq!(
        post(&server, &second, (&offer, "/u/passkey"), &fields)
            .await
            .status(),
        303
    );
    for (path, body) in [
        ("/guardian/factors/otp", json!({"enabled": true})),
        ("/guardian/policies", json!(["all-applications"])),
    ] {
        assert_eq!(api(&server, Method::PUT, path, Some(body)).await.0, 200);
    }
    let third = browser();
    let (page, _) = login_page(&server, &third).await;
    let answer = passkey_answer(&key, &page, &origin, 1, &server.user_id);
    let response = post(&server, &third, (&page, "/u/login/passkey"), &answer).await;
    assert_eq!(response.status(), 303);
    assert!(
        location(&response).starts_with("/u/mfa?state="),
        "{}",
        location(&response)
    );
}

#[tokio::test]
async fn passkey_options_of_a_database_connection_are_checked() {
    let server = spawn().await;
    let (status, connection) = connections_api(&server, Method::GET, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        connection["options"]["passkey_options"],
        json!({"challenge_ui": "button", "progressive_enrollment_enabled": true, "local_enrollment_enabled": false})
    );
    for options in [
        json!({"authentication_methods": {"password": {"enabled": false}}}),
        json!({"authentication_methods": {"passkey": {"enabled": "yes"}}}),
        json!({"authentication_methods": {"webauthn": {"enabled": true}}}),
        json!({"passkey_options": {"challenge_ui": "autofill"}}),
        json!({"passkey_options": {"progressive_enrollment_enabled": 1}}),
    ] {
        let (status, body) =
            connections_api(&server, Method::PATCH, Some(json!({ "options": options }))).await;
        assert_eq!(status, 400, "{options}: {body}");
    }
    let (_, unchanged) = connections_api(&server, Method::GET, None).await;
    assert_eq!(
        unchanged["options"], connection["options"],
        "nothing changed"
    );

    // The offer turned off: a password login goes straight back.
    let body = json!({"options": {
        "authentication_methods": {"passkey": {"enabled": true}},
        "passkey_options": {"progressive_enrollment_enabled": false},
    }});
    let (status, changed) = connections_api(&server, Method::PATCH, Some(body)).await;
    assert_eq!(status, 200, "{changed}");
    let browser = browser();
    let (page, _) = login_page(&server, &browser).await;
    assert!(page.contains("passkey-login"), "passkeys are on: {page}");
    let response = submit_login_form(
        &browser,
        &server.base,
        &format!("/u/login?state={}", hidden_field(&page, "state")),
        &server.user_email,
        PASSWORD,
    )
    .await;
    assert!(
        location(&response).starts_with("/authorize/resume"),
        "no offer"
    );
}

#[tokio::test]
async fn a_new_user_is_offered_a_passkey_at_sign_up_and_signs_in_with_it() {
    let server = spawn().await;
    let origin = server.base.clone();
    passkeys(&server, true).await;
    let browser = browser();
    let (page, _) = login_page(&server, &browser).await;
    let signup = format!("/u/signup?state={}", hidden_field(&page, "state"));
    let page = html(&server, &browser, &signup).await;
    let signed_up = post(
        &server,
        &browser,
        (&page, "/u/signup"),
        &[
            ("email", "new-passkey@example.com".to_string()),
            ("password", "a fresh long password 1".to_string()),
        ],
    )
    .await;
    assert_eq!(signed_up.status(), 303);
    let offer = location(&signed_up);
    assert!(offer.starts_with("/u/passkey?state="), "{offer}");
    let page = html(&server, &browser, &offer).await;
    let created = options(&page);
    let user_id = String::from_utf8(
        tessera_core::webauthn::unb64(created["user"]["id"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_ne!(user_id, server.user_id, "the new user's handle");
    let key = SoftKey::new();
    let rp_id = created["rp"]["id"].as_str().unwrap();
    let client = SoftKey::client_data("webauthn.create", &challenge(&created), &origin);
    let fields = vec![
        ("action", "create".to_string()),
        ("client_data_json", b64(&client)),
        ("attestation_object", b64(&key.attestation(rp_id, UP_UV, 0))),
    ];
    let response = post(&server, &browser, (&page, "/u/passkey"), &fields).await;
    assert_eq!(response.status(), 303);

    let other = tessera_testkit::browser();
    let (page, verifier) = login_page(&server, &other).await;
    let answer = passkey_answer(&key, &page, &origin, 1, &user_id);
    let signed_in = post(&server, &other, (&page, "/u/login/passkey"), &answer).await;
    assert_eq!(signed_in.status(), 303);
    let tokens = finish(&server, &other, &location(&signed_in), &verifier).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["sub"],
        user_id.as_str()
    );
}
