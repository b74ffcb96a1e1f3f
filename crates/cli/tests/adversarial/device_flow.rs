//! The device flow (RFC 8628) attacked: user codes guessed at `/activate` (throttled per
//! network, the right code too once over the limit, and device codes asked for without end
//! from one network), a device code replayed after its tokens, polled by another
//! application, forged or expired; the confirm form without its token, with another
//! browser's, cross-site; a user code approved twice or by a second
//! person; huge, garbage and markup user codes; the grant given to a single-page
//! application or a public client posing with a secret. Each is refused, no token issued,
//! and the device code read back (polled) unchanged.

use serde_json::{Value, json};
use tessera_core::{AppType, DEVICE_CODE_GRANT, ids};
use tessera_store::NewDeviceCode;
use tessera_testkit::*;

use crate::harness::Tally;

async fn device_app(server: &TestServer) -> String {
    let mut app = client("Hostile TV", AppType::Native, None);
    app.grant_types.push(DEVICE_CODE_GRANT.to_string());
    server.store.create_client(&app).await.unwrap();
    app.client_id
}

async fn start(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/device/code"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A device code and its user code for `app`.
async fn started(server: &TestServer, app: &str) -> (String, String) {
    let (status, body) = start(server, &[("client_id", app), ("scope", "openid")]).await;
    assert_eq!(status, 200, "{body}");
    (
        body["device_code"].as_str().unwrap().to_string(),
        body["user_code"].as_str().unwrap().to_string(),
    )
}

async fn poll(server: &TestServer, app: &str, code: &str) -> (u16, Value) {
    server
        .token(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", app),
            ("device_code", code),
        ])
        .await
}

fn issued(body: &Value) -> bool {
    body.get("access_token").is_some() || body.get("id_token").is_some()
}

/// Whether the device still hears `authorization_pending` (its code unanswered).
async fn still_pending(server: &TestServer, app: &str, code: &str) -> bool {
    // Polls in the same second slow the device down; either answer means "pending".
    let (status, body) = poll(server, app, code).await;
    status == 400
        && matches!(
            body["error"].as_str(),
            Some("authorization_pending" | "slow_down")
        )
}

/// A browser signed in as `email`.
async fn signed_in(server: &TestServer, email: &str) -> reqwest::Client {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = server.submit_login(&browser, &url, email, PASSWORD).await;
    assert_eq!(response.status(), 303);
    browser
}

/// The page's CSRF token in `browser` (the activation form sets the cookie).
async fn csrf_of(server: &TestServer, browser: &reqwest::Client) -> String {
    let page = browser.get(server.url("/activate")).send().await.unwrap();
    hidden_field(&page.text().await.unwrap(), "csrf")
}

async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let response = browser
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn guessing_user_codes_is_throttled() {
    let mut tally = Tally::new("device_flow/guessing");
    // Six a minute: the device code asked for, then five guesses.
    let server = spawn_with(|config| config.login_attempts_per_minute = 6).await;
    let app = device_app(&server).await;
    let (code, user_code) = started(&server, &app).await;
    let browser = browser();
    let csrf = csrf_of(&server, &browser).await;
    let guesses = [
        "BBBB-BBBB",
        "BBBB-BBBC",
        "BBBB-BBBD",
        "BBBB-BBBF",
        "BBBB-BBBG",
    ];
    for guess in guesses {
        let (status, _) = post(
            &server,
            &browser,
            "/activate",
            &[("csrf", &csrf), ("user_code", guess)],
        )
        .await;
        tally.status(
            format!("guess {guess} within the limit: not a code"),
            status,
            400,
        );
    }
    let over = browser
        .post(server.url("/activate"))
        .form(&[("csrf", csrf.as_str()), ("user_code", "BBBB-BBBH")])
        .send()
        .await
        .unwrap();
    tally.case(
        "the guess over the limit: 429 with Retry-After",
        over.status() == 429 && over.headers().contains_key("retry-after"),
        over.status(),
    );
    // The right code, once over the limit, is refused too: guessing learns nothing.
    let (status, body) = post(
        &server,
        &browser,
        "/activate",
        &[("csrf", &csrf), ("user_code", &user_code)],
    )
    .await;
    tally.case(
        "the right code from a throttled network: 429, no login begun",
        status == 429 && !body.contains("/u/login"),
        status,
    );
    let (status, _) = post(
        &server,
        &browser,
        "/activate/confirm",
        &[
            ("csrf", &csrf),
            ("user_code", &user_code),
            ("action", "confirm"),
        ],
    )
    .await;
    tally.status(
        "a confirm with the code from a throttled network",
        status,
        429,
    );
    let query = browser
        .get(server.url(&format!("/activate?user_code={user_code}")))
        .send()
        .await
        .unwrap();
    tally.case(
        "the page's GET with a code is no way around it",
        matches!(query.status().as_u16(), 200 | 429)
            && !query.text().await.unwrap().contains("Confirm your device"),
        "",
    );
    // Nor can the network ask for device codes without end (each is a row until it expires).
    let (status, body) = start(&server, &[("client_id", &app)]).await;
    tally.case(
        "a device code asked for from the throttled network: 429, none issued",
        status == 429 && body["error"] == "too_many_requests" && body.get("device_code").is_none(),
        format_args!("{status} {body}"),
    );
    tally.case(
        "the device code is still unanswered",
        still_pending(&server, &app, &code).await,
        "",
    );
    tally.finish();
}

#[tokio::test]
async fn device_codes_and_confirmations_are_refused_when_forged_replayed_or_foreign() {
    let mut tally = Tally::new("device_flow/refusals");
    let server = spawn_with(|config| config.login_attempts_per_minute = 1_000).await;
    let app = device_app(&server).await;
    let other = device_app(&server).await;
    let eve_email = "eve@example.com";
    create_user(&server.store, eve_email, PASSWORD).await;

    // The grant on a single-page application, through the Management API.
    let token = server.management_token(&["update:clients"]).await;
    let spa: String =
        url::form_urlencoded::byte_serialize(server.spa_client_id.as_bytes()).collect();
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{spa}")))
        .bearer_auth(&token)
        .json(&json!({"grant_types": ["authorization_code", DEVICE_CODE_GRANT]}))
        .send()
        .await
        .unwrap();
    tally.status(
        "a SPA given the device code grant",
        response.status().as_u16(),
        400,
    );
    let (status, body) = start(&server, &[("client_id", &server.spa_client_id)]).await;
    tally.case(
        "a device code for the SPA: unauthorized_client",
        status == 403
            && body["error"] == "unauthorized_client"
            && body.get("device_code").is_none(),
        format_args!("{status} {body}"),
    );
    let (status, body) = start(
        &server,
        &[("client_id", &app), ("client_secret", "made-up")],
    )
    .await;
    tally.case(
        "a public client posing with a secret: invalid_client",
        status == 401 && body.get("device_code").is_none(),
        format_args!("{status} {body}"),
    );

    let (code, user_code) = started(&server, &app).await;

    // Another application polling with it: refused, and the code not consumed or slowed.
    let (status, body) = poll(&server, &other, &code).await;
    tally.case(
        "another application's device code: invalid_grant",
        status == 400 && body["error"] == "invalid_grant" && !issued(&body),
        format_args!("{status} {body}"),
    );
    for forged in [
        "",
        "x",
        &"A".repeat(43),
        &format!("{code}x"),
        &code.to_uppercase(),
    ] {
        let (status, body) = poll(&server, &app, forged).await;
        tally.case(
            format!("a forged device code ({} chars)", forged.len()),
            status == 400 && !issued(&body),
            format_args!("{status} {body}"),
        );
    }

    // Huge, garbage and markup user codes: 400, nothing echoed, nothing answered.
    let ada = signed_in(&server, &server.user_email).await;
    let csrf = csrf_of(&server, &ada).await;
    let huge = "B".repeat(100_000);
    for garbage in [
        huge.as_str(),
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "BBBB-BBB\u{0}",
        "AEIOU-AEI",
        "%42%42%42%42%42%42%42%42",
    ] {
        for path in ["/activate", "/activate/confirm"] {
            let (status, body) = post(
                &server,
                &ada,
                path,
                &[
                    ("csrf", &csrf),
                    ("user_code", garbage),
                    ("action", "confirm"),
                ],
            )
            .await;
            tally.case(
                format!("{path} with a garbage user code ({} bytes)", garbage.len()),
                matches!(status, 400 | 413)
                    && !body.contains("<script>alert")
                    && !body.contains("BBBBBBBBBB"),
                status,
            );
        }
    }
    tally.case(
        "garbage answered nothing",
        still_pending(&server, &app, &code).await,
        "",
    );

    // A code past its life: neither offered for approval nor good for tokens.
    let expired = ids::secret_token();
    let now = now();
    server
        .store
        .create_device_code(&NewDeviceCode {
            device_code_hash: ids::secret_hash(&expired),
            user_code: "ZZZZXXXX".into(),
            client_id: app.clone(),
            scope: r#"["openid"]"#.into(),
            audience: None,
            poll_interval: 5,
            created_at: now - 1000,
            expires_at: now - 1,
        })
        .await
        .unwrap();
    for path in ["/activate", "/activate/confirm"] {
        let (status, _) = post(
            &server,
            &ada,
            path,
            &[
                ("csrf", &csrf),
                ("user_code", "ZZZZ-XXXX"),
                ("action", "confirm"),
            ],
        )
        .await;
        tally.status(format!("{path} with an expired user code"), status, 400);
    }
    let (status, body) = poll(&server, &app, &expired).await;
    tally.case(
        "an expired device code: expired_token, nothing issued",
        status == 400 && body["error"] == "expired_token" && !issued(&body),
        format_args!("{status} {body}"),
    );

    // The confirm form without its token, with a wrong one, with another browser's, and
    // cross-site without the cookie.
    let stranger = browser();
    let strangers_csrf = csrf_of(&server, &stranger).await;
    for (case, token) in [
        ("no token", None),
        ("an empty token", Some(String::new())),
        ("a wrong token", Some("x".repeat(43))),
        ("another browser's token", Some(strangers_csrf.clone())),
    ] {
        let mut form = vec![
            ("user_code", user_code.clone()),
            ("action", "confirm".to_string()),
        ];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        let response = ada
            .post(server.url("/activate/confirm"))
            .form(&form)
            .send()
            .await
            .unwrap();
        tally.status(
            format!("confirm with {case}"),
            response.status().as_u16(),
            403,
        );
    }
    let cross_site = reqwest::Client::new()
        .post(server.url("/activate/confirm"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("user_code", &user_code),
            ("action", "confirm"),
        ])
        .send()
        .await
        .unwrap();
    tally.status(
        "confirm without the cookie (cross-site)",
        cross_site.status().as_u16(),
        403,
    );
    tally.case(
        "no refused confirm answered the code",
        still_pending(&server, &app, &code).await,
        "",
    );

    // Confirmed by Ada; a second confirmation (hers or Eve's) or a cancel changes nothing.
    let (status, _) = post(
        &server,
        &ada,
        "/activate/confirm",
        &[
            ("csrf", &csrf),
            ("user_code", &user_code),
            ("action", "confirm"),
        ],
    )
    .await;
    tally.status("Ada confirms", status, 200);
    let (status, _) = post(
        &server,
        &ada,
        "/activate/confirm",
        &[
            ("csrf", &csrf),
            ("user_code", &user_code),
            ("action", "confirm"),
        ],
    )
    .await;
    tally.status("the same user code approved twice", status, 400);
    let eve = signed_in(&server, eve_email).await;
    let eves_csrf = csrf_of(&server, &eve).await;
    for action in ["confirm", "cancel"] {
        let (status, _) = post(
            &server,
            &eve,
            "/activate/confirm",
            &[
                ("csrf", &eves_csrf),
                ("user_code", &user_code),
                ("action", action),
            ],
        )
        .await;
        tally.status(
            format!("Eve's {action} of Ada's answered code"),
            status,
            400,
        );
    }
    let (status, tokens) = poll(&server, &app, &code).await;
    let sub = match tokens["id_token"].as_str() {
        Some(token) => {
            use base64::Engine;
            let payload = token.split('.').nth(1).unwrap_or_default();
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .map(|claims| claims["sub"].clone())
        }
        None => None,
    };
    tally.case(
        "the tokens are Ada's, issued to the device's application",
        status == 200 && sub == Some(Value::from(server.user_id.clone())),
        format_args!("{status} {sub:?}"),
    );

    // Replays: the same code again, by its application and by another.
    for (case, client) in [("its application", &app), ("another application", &other)] {
        let (status, body) = poll(&server, client, &code).await;
        tally.case(
            format!("the redeemed device code replayed by {case}: invalid_grant"),
            status == 400 && body["error"] == "invalid_grant" && !issued(&body),
            format_args!("{status} {body}"),
        );
    }
    tally.finish();
}
