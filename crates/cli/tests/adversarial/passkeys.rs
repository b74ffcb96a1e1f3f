//! Passkey sign-in against a hostile browser: answers naming another user, a security key
//! (a second factor) passed off as a passkey, no user verification, another origin, a spent
//! challenge, a counter that did not rise, a blocked account, a stolen transaction, fields
//! out of shape, a flood from one network, and offers forged onto logins that made none.
//! Each is refused — never a session, never a server error — and the credentials read
//! back as they were.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::DATABASE_CONNECTION_ID;
use tessera_core::webauthn::testing::{SoftKey, UP, UP_UV};
use tessera_core::webauthn::{b64, unb64};
use tessera_store::{WEBAUTHN_ROAMING, WebauthnCredential};
use tessera_testkit::*;

use crate::harness::Tally;

const OTHER: &str = "passkey-holder@example.com";

async fn call(server: &TestServer, method: Method, path: &str, body: Value) -> (u16, Value) {
    let token = server
        .management_token(&["update:connections", "create:users", "update:users"])
        .await;
    let response = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn enable_passkeys(server: &TestServer) {
    let body = json!({"options": {"authentication_methods": {"passkey": {"enabled": true}}}});
    let path = format!("/connections/{DATABASE_CONNECTION_ID}");
    assert_eq!(call(server, Method::PATCH, &path, body).await.0, 200);
}

fn options(html: &str) -> Value {
    let marker = "data-options=\"";
    let start = html.find(marker).expect("passkey options") + marker.len();
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

/// A new login's page in a fresh browser: (browser, html).
async fn login_page(server: &TestServer) -> (reqwest::Client, String) {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(url).send().await.unwrap();
    let html = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (browser, html)
}

/// Posts `fields` with the page's state and CSRF token to `path`: (status, body, whether
/// a session cookie came).
async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    (html, path): (&str, &str),
    fields: Vec<(&'static str, String)>,
) -> (u16, String, bool) {
    let mut form = vec![
        ("state", hidden_field(html, "state")),
        ("csrf", hidden_field(html, "csrf")),
    ];
    form.extend(fields);
    let response = browser
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").contains("session"));
    (status, response.text().await.unwrap_or_default(), session)
}

/// A passkey's answer: the assertion of `key` for `challenge`, naming `handle`.
fn answer(
    key: &SoftKey,
    (challenge, origin, rp_id): (&[u8], &str, &str),
    flags: u8,
    count: u32,
    handle: &str,
) -> Vec<(&'static str, String)> {
    let client = SoftKey::client_data("webauthn.get", challenge, origin);
    let data = SoftKey::auth_data(rp_id, flags, count);
    vec![
        ("credential_id", b64(&key.credential_id)),
        ("client_data_json", b64(&client)),
        ("authenticator_data", b64(&data)),
        ("signature", b64(&key.sign(&data, &client))),
        ("user_handle", b64(handle.as_bytes())),
    ]
}

/// The user of `email` signs in with the password and creates `key` on the offer. Returns
/// the relying party id.
async fn create_passkey(server: &TestServer, email: &str, key: &SoftKey) -> String {
    let (browser, html) = login_page(server).await;
    let login = format!("/u/login?state={}", hidden_field(&html, "state"));
    let response = submit_login_form(&browser, &server.base, &login, email, PASSWORD).await;
    let offer = location(&response);
    assert!(offer.starts_with("/u/passkey"), "{offer}");
    let html = browser
        .get(server.url(&offer))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rp_id = options(&html)["rp"]["id"].as_str().unwrap().to_string();
    let client = SoftKey::client_data("webauthn.create", &challenge(&html), &server.base);
    let fields = vec![
        ("action", "create".to_string()),
        ("client_data_json", b64(&client)),
        (
            "attestation_object",
            b64(&key.attestation(&rp_id, UP_UV, 3)),
        ),
    ];
    let (status, _, _) = post(server, &browser, (&html, "/u/passkey"), fields).await;
    assert_eq!(status, 303);
    rp_id
}

#[tokio::test]
async fn hostile_passkey_answers_are_refused() {
    let mut tally = Tally::new("mfa/passkeys");
    let server = spawn().await;
    let origin = server.base.clone();
    enable_passkeys(&server).await;
    let body = json!({"connection": "Username-Password-Authentication", "email": OTHER, "password": PASSWORD});
    let (status, other) = call(&server, Method::POST, "/users", body).await;
    assert_eq!(status, 201);
    let other_id = other["user_id"].as_str().unwrap().to_string();
    let mine = SoftKey::new();
    let theirs = SoftKey::new();
    let rp_id = create_passkey(&server, &server.user_email.clone(), &mine).await;
    create_passkey(&server, OTHER, &theirs).await;
    // A security key registered as the user's second factor, not as a passkey.
    let second_factor = SoftKey::new();
    server
        .store
        .add_webauthn_credential(&WebauthnCredential {
            id: "wr_adversarial".into(),
            user_id: server.user_id.clone(),
            credential_id: second_factor.credential_id.clone(),
            public_key: second_factor.cose_key(),
            sign_count: 0,
            transports: "[]".into(),
            kind: WEBAUTHN_ROAMING.into(),
            name: "Security key".into(),
            created_at: 1,
            last_used_at: None,
        })
        .await
        .unwrap();
    let before = server
        .store
        .webauthn_credentials_of(&server.user_id)
        .await
        .unwrap();

    let me = server.user_id.clone();
    let (browser, mut html) = login_page(&server).await;
    let first_challenge = challenge(&html);
    type Make<'a> = Box<dyn Fn(&[u8]) -> Vec<(&'static str, String)> + 'a>;
    let cases: Vec<(&str, Make<'_>)> = vec![
        (
            "my passkey naming another user",
            Box::new(|c| answer(&mine, (c, &origin, &rp_id), UP_UV, 10, &other_id)),
        ),
        (
            "another user's passkey naming me",
            Box::new(|c| answer(&theirs, (c, &origin, &rp_id), UP_UV, 10, &me)),
        ),
        (
            "a second-factor security key as a passkey",
            Box::new(|c| answer(&second_factor, (c, &origin, &rp_id), UP_UV, 10, &me)),
        ),
        (
            "no user verification",
            Box::new(|c| answer(&mine, (c, &origin, &rp_id), UP, 10, &me)),
        ),
        (
            "another origin",
            Box::new(|c| answer(&mine, (c, "http://evil.example", &rp_id), UP_UV, 10, &me)),
        ),
        (
            "another relying party",
            Box::new(|c| answer(&mine, (c, &origin, "evil.example"), UP_UV, 10, &me)),
        ),
        (
            "the counter not risen",
            Box::new(|c| answer(&mine, (c, &origin, &rp_id), UP_UV, 3, &me)),
        ),
        (
            "a spent challenge",
            Box::new(|_| answer(&mine, (&first_challenge, &origin, &rp_id), UP_UV, 10, &me)),
        ),
        (
            "no user handle",
            Box::new(|c| {
                let mut fields = answer(&mine, (c, &origin, &rp_id), UP_UV, 10, &me);
                fields.retain(|(name, _)| *name != "user_handle");
                fields
            }),
        ),
        (
            "fields that are not base64url",
            Box::new(|_| {
                [
                    "credential_id",
                    "client_data_json",
                    "authenticator_data",
                    "signature",
                    "user_handle",
                ]
                .map(|name| (name, "!!".to_string()))
                .to_vec()
            }),
        ),
    ];
    // The first page's challenge is spent by the first case; each later case answers the
    // page the refusal before it rendered.
    for (case, make) in &cases {
        let (status, next, session) = post(
            &server,
            &browser,
            (&html, "/u/login/passkey"),
            make(&challenge(&html)),
        )
        .await;
        tally.case(
            format_args!("passkey login: {case}"),
            status == 401 && !session,
            format_args!("status {status}, session {session}"),
        );
        if status == 401 {
            html = next;
        }
    }
    let (status, _, _) = post(
        &server,
        &browser,
        (&html, "/u/login/passkey"),
        vec![("credential_id", "A".repeat(20_000))],
    )
    .await;
    tally.status("passkey login: a field over the size limit", status, 400);

    // The transaction is bound to the browser that started it, and the form to its token.
    let (_, html) = login_page(&server).await;
    let good = answer(&mine, (&challenge(&html), &origin, &rp_id), UP_UV, 11, &me);
    let stranger = tessera_testkit::browser();
    let (status, _, session) = post(&server, &stranger, (&html, "/u/login/passkey"), good).await;
    tally.case(
        "passkey login: another browser's login",
        status == 403 && !session,
        format_args!("status {status}"),
    );
    let (owner, html) = login_page(&server).await;
    let mut form = answer(&mine, (&challenge(&html), &origin, &rp_id), UP_UV, 11, &me);
    form.push(("state", hidden_field(&html, "state")));
    form.push(("csrf", "forged".into()));
    let status = owner
        .post(server.url("/u/login/passkey"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("passkey login: a forged CSRF token", status, 403);

    // An offer nobody made: a plain login's transaction, or an offer already answered.
    let (browser, html) = login_page(&server).await;
    let client = SoftKey::client_data("webauthn.create", &challenge(&html), &origin);
    let intruder = SoftKey::new();
    let fields = vec![
        ("action", "create".to_string()),
        ("client_data_json", b64(&client)),
        (
            "attestation_object",
            b64(&intruder.attestation(&rp_id, UP_UV, 0)),
        ),
    ];
    let (status, _, _) = post(&server, &browser, (&html, "/u/passkey"), fields).await;
    tally.status("offer: created on a login that offered none", status, 400);

    // Blocked: a good answer signs nobody in, and says so only after the signature.
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("/users/{}", urlencode(&other_id)),
        json!({"blocked": true}),
    )
    .await;
    assert_eq!(status, 200);
    let (browser, html) = login_page(&server).await;
    let blocked = answer(
        &theirs,
        (&challenge(&html), &origin, &rp_id),
        UP_UV,
        20,
        &other_id,
    );
    let (status, _, session) = post(&server, &browser, (&html, "/u/login/passkey"), blocked).await;
    tally.case(
        "passkey login: a blocked user's passkey",
        status == 403 && !session,
        format_args!("status {status}, session {session}"),
    );

    let after = server
        .store
        .webauthn_credentials_of(&server.user_id)
        .await
        .unwrap();
    tally.case(
        "the credentials are unchanged",
        after == before,
        format_args!("{after:?}"),
    );
    // The holder's passkey still signs in after all that.
    let (browser, html) = login_page(&server).await;
    let good = answer(&mine, (&challenge(&html), &origin, &rp_id), UP_UV, 12, &me);
    let (status, _, session) = post(&server, &browser, (&html, "/u/login/passkey"), good).await;
    tally.case(
        "the holder's passkey, counter risen",
        status == 303 && session,
        format_args!("status {status}, session {session}"),
    );
    tally.finish();
}

#[tokio::test]
async fn passkey_answers_from_one_network_are_throttled() {
    let mut tally = Tally::new("mfa/passkeys");
    let server = spawn_with(|config| config.login_attempts_per_minute = 3).await;
    enable_passkeys(&server).await;
    let (browser, mut html) = login_page(&server).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let key = SoftKey::new();
        let fields = answer(
            &key,
            (&challenge(&html), &server.base, "localhost"),
            UP_UV,
            1,
            &server.user_id,
        );
        let (status, next, _) = post(&server, &browser, (&html, "/u/login/passkey"), fields).await;
        statuses.push(status);
        if status == 401 {
            html = next;
        }
    }
    tally.case(
        "passkey login: guesses past the network's budget",
        statuses.ends_with(&[429, 429]) && statuses.starts_with(&[401]),
        format_args!("{statuses:?}"),
    );
    tally.finish();
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn hostile_passkey_options_change_nothing() {
    let mut tally = Tally::new("mfa/passkey-options");
    let server = spawn().await;
    let path = format!("/connections/{DATABASE_CONNECTION_ID}");
    let read = || async {
        let token = server.management_token(&["read:connections"]).await;
        reqwest::Client::new()
            .get(server.url(&format!("/api/v2{path}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = read().await;
    for (case, options) in [
        (
            "passwords turned off",
            json!({"authentication_methods": {"password": {"enabled": false}}}),
        ),
        (
            "a method Tessera lacks",
            json!({"authentication_methods": {"sms": {"enabled": true}}}),
        ),
        (
            "enabled as text",
            json!({"authentication_methods": {"passkey": {"enabled": "true"}}}),
        ),
        (
            "an extra member",
            json!({"authentication_methods": {"passkey": {"enabled": true, "x": 1}}}),
        ),
        (
            "autofill asked",
            json!({"passkey_options": {"challenge_ui": "both"}}),
        ),
        (
            "cross-device prompt asked",
            json!({"passkey_options": {"local_enrollment_enabled": true}}),
        ),
        (
            "an unknown passkey option",
            json!({"passkey_options": {"rp_id": "evil.example"}}),
        ),
        ("options as an array", json!({"passkey_options": []})),
        (
            "a 10 000-character name",
            json!({"authentication_methods": {"x".repeat(10_000): {"enabled": true}}}),
        ),
    ] {
        let (status, _) = call(&server, Method::PATCH, &path, json!({ "options": options })).await;
        tally.status(format_args!("connection options: {case}"), status, 400);
    }
    let after = read().await;
    tally.case("the connection is unchanged", after == before, &after);
    tally.finish();
}
