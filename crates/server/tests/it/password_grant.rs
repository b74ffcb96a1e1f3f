//! The password grants at the token endpoint, as an application's backend uses them:
//! `password` and Auth0's `password-realm`, only for an application that enables them;
//! tokens like a login's (an ID token with `amr`, a refresh token), post-login Actions with
//! protocol `oauth2-password`, the login page's lockout shared, `mfa_required` when the
//! tenant asks a second factor, and `auth0-forwarded-for` believed from a trusted proxy.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::{AppType, PASSWORD_GRANT, PASSWORD_REALM_GRANT};
use tessera_testkit::*;

use crate::actions::payload;

/// A regular web application (with its secret) that may use the password grants.
async fn backend(server: &TestServer) -> (String, String) {
    let secret = tessera_core::ids::client_secret();
    let mut web = client("Backend for frontend", AppType::RegularWeb, Some(&secret));
    web.grant_types
        .extend([PASSWORD_GRANT.to_string(), PASSWORD_REALM_GRANT.to_string()]);
    server.store.create_client(&web).await.unwrap();
    (web.client_id, secret)
}

async fn password_grant(
    server: &TestServer,
    (client_id, secret): (&str, &str),
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", PASSWORD_GRANT),
        ("client_id", client_id),
        ("client_secret", secret),
    ];
    form.extend_from_slice(extra);
    server.token(&form).await
}

#[tokio::test]
async fn a_password_grant_issues_a_logins_tokens_to_an_application_that_enables_it() {
    let server = spawn().await;
    let email = server.user_email.clone();

    // An application that did not enable the grant is refused.
    let secret = tessera_core::ids::client_secret();
    let plain = client("Plain web app", AppType::RegularWeb, Some(&secret));
    server.store.create_client(&plain).await.unwrap();
    let (status, body) = password_grant(
        &server,
        (&plain.client_id, &secret),
        &[("username", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("unauthorized_client")),
        "{body}"
    );

    let (client_id, secret) = backend(&server).await;
    let app = (client_id.as_str(), secret.as_str());
    let (status, tokens) = password_grant(
        &server,
        app,
        &[
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid profile offline_access read:messages"),
            ("audience", API),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(access["sub"], server.user_id);
    assert!(
        access["scope"].as_str().unwrap().contains("read:messages"),
        "{access}"
    );
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        (&id["sub"], &id["amr"]),
        (&json!(server.user_id), &json!(["pwd"]))
    );
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("offline_access gives one");
    let (status, refreshed) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("refresh_token", refresh),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        payload(refreshed["id_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );

    // Auth0's password-realm names the database connection.
    let mut realm_form = vec![
        ("grant_type", PASSWORD_REALM_GRANT),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("username", email.as_str()),
        ("password", PASSWORD),
        ("scope", "openid"),
    ];
    let (status, body) = server
        .token(
            &[
                realm_form.clone(),
                vec![("realm", "Username-Password-Authentication")],
            ]
            .concat(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    realm_form.push(("realm", "no-such-connection"));
    let (status, body) = server.token(&realm_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // A wrong password: Auth0's answer; nothing issued.
    let (status, body) = password_grant(
        &server,
        app,
        &[("username", &email), ("password", "not the password")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        (body["error"].as_str(), body["error_description"].as_str()),
        (Some("invalid_grant"), Some("Wrong email or password."))
    );

    // Discovery says so.
    let discovery: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = discovery["grant_types_supported"].as_array().unwrap();
    assert!(
        grants.contains(&json!(PASSWORD_GRANT)) && grants.contains(&json!(PASSWORD_REALM_GRANT))
    );

    // Post-login runs, with the password grant's protocol.
    crate::actions::bind(
        &server,
        "post-login",
        "protocol",
        "exports.onExecutePostLogin = async (event, api) => { \
             api.idToken.setCustomClaim('https://example.com/protocol', event.transaction.protocol); };",
    )
    .await;
    let (status, tokens) = password_grant(
        &server,
        app,
        &[
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["https://example.com/protocol"],
        "oauth2-password"
    );

    // A tenant that asks every login for a second factor: mfa_required, no tokens.
    let admin = server
        .management_token(&["update:guardian_factors", "update:mfa_policies"])
        .await;
    for (path, body) in [
        ("/guardian/factors/otp", json!({"enabled": true})),
        ("/guardian/policies", json!(["all-applications"])),
    ] {
        let response = reqwest::Client::new()
            .request(Method::PUT, server.url(&format!("/api/v2{path}")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let (status, body) = password_grant(
        &server,
        app,
        &[
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("mfa_required")),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn the_password_grant_and_the_login_page_share_one_lockout() {
    let server = spawn_with(|config| config.max_login_failures = 3).await;
    let email = server.user_email.clone();
    let (client_id, secret) = backend(&server).await;
    let app = (client_id.as_str(), secret.as_str());
    for _ in 0..3 {
        let (status, _) =
            password_grant(&server, app, &[("username", &email), ("password", "wrong")]).await;
        assert_eq!(status, 403);
    }
    let (status, body) = password_grant(
        &server,
        app,
        &[("username", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_attempts")),
        "{body}"
    );
    // The login page, from the same address, counts the same failures.
    let response = server
        .submit_login(
            &browser(),
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", pkce().challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]),
            &email,
            PASSWORD,
        )
        .await;
    assert_eq!(response.status(), 429, "locked at the login page too");
}

#[tokio::test]
async fn a_trusted_proxy_names_the_end_user_with_auth0_forwarded_for() {
    let server = spawn_with(|config| {
        config.max_login_failures = 2;
        config.trusted_proxies =
            tessera_server::TrustedProxies::parse(["127.0.0.1", "::1"]).unwrap();
    })
    .await;
    let email = server.user_email.clone();
    let (client_id, secret) = backend(&server).await;
    let app = (client_id.as_str(), secret.as_str());
    let attacker = "203.0.113.66";
    for _ in 0..2 {
        assert_eq!(
            forwarded(&server, app, &email, attacker, "wrong").await,
            403
        );
    }
    assert_eq!(
        forwarded(&server, app, &email, attacker, PASSWORD).await,
        429,
        "the guessing end user is locked out"
    );
    assert_eq!(
        forwarded(&server, app, &email, "198.51.100.7", PASSWORD).await,
        200,
        "another end user behind the same backend is not"
    );
}

/// A password grant sent by a backend on behalf of the end user at `address`: the status.
async fn forwarded(
    server: &TestServer,
    (client_id, secret): (&str, &str),
    email: &str,
    address: &str,
    password: &str,
) -> u16 {
    reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("auth0-forwarded-for", address)
        .form(&[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", client_id),
            ("client_secret", secret),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The tenant's brute-force protection (`/attack-protection/brute-force-protection`) is
/// what the password entrances enforce, at once; its blocks are listed and lifted through
/// `/user-blocks`.
#[tokio::test]
async fn brute_force_protection_is_the_administrators_and_its_blocks_are_lifted() {
    let server = spawn_with(|config| {
        config.max_login_failures = 5;
        config.trusted_proxies = tessera_server::TrustedProxies::parse(["127.0.0.1"]).unwrap();
    })
    .await;
    let email = server.user_email.clone();
    let user_id: String = url::form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let (client_id, secret) = backend(&server).await;
    let app = (client_id.as_str(), secret.as_str());
    let token = server
        .management_token(&[
            "read:attack_protection",
            "update:attack_protection",
            "read:users",
            "update:users",
        ])
        .await;
    let settings = "/attack-protection/brute-force-protection";
    let set = |change: Value| {
        let (server, token) = (&server, &token);
        async move {
            server
                .management_call(token, Method::PATCH, settings, change)
                .await
        }
    };
    let (status, defaults) = server.management_request(&token, "GET", settings).await;
    assert_eq!(
        (status, defaults),
        (
            200,
            json!({"enabled": true, "shields": ["block"], "allowlist": [],
                   "mode": "count_per_identifier_and_ip", "max_attempts": 5})
        ),
        "the server's threshold until the tenant sets one"
    );

    let now = set(json!({"max_attempts": 2, "allowlist": ["198.51.100.0/24", "192.0.2.1"]})).await;
    assert_eq!(now["max_attempts"], 2, "{now}");
    assert_eq!(now["allowlist"], json!(["198.51.100.0/24", "192.0.2.1"]));
    let attacker = "203.0.113.66";
    for _ in 0..2 {
        assert_eq!(
            forwarded(&server, app, &email, attacker, "wrong").await,
            403
        );
    }
    assert_eq!(
        forwarded(&server, app, &email, attacker, PASSWORD).await,
        429,
        "the lowered threshold holds at once"
    );
    for _ in 0..4 {
        assert_eq!(
            forwarded(&server, app, &email, "198.51.100.7", "wrong").await,
            403
        );
    }
    assert_eq!(
        forwarded(&server, app, &email, "198.51.100.7", PASSWORD).await,
        200,
        "an allowlisted network is not counted"
    );

    let blocked = json!({"blocked_for": [{"identifier": email, "ip": attacker}]});
    let by_identifier = format!("/user-blocks?identifier={}", email.to_uppercase());
    for path in [
        by_identifier.clone(),
        format!("/user-blocks/{user_id}"),
        format!("/user-blocks/{user_id}?consider_brute_force_enablement=true"),
    ] {
        let (status, body) = server.management_request(&token, "GET", &path).await;
        assert_eq!((status, &body), (200, &blocked), "{path}");
    }
    // Without the block shield the count stays but refuses nobody.
    set(json!({"shields": []})).await;
    let in_force = format!("{by_identifier}&consider_brute_force_enablement=true");
    let (_, none) = server.management_request(&token, "GET", &in_force).await;
    assert_eq!(none, json!({"blocked_for": []}));
    let (_, recorded) = server
        .management_request(&token, "GET", &by_identifier)
        .await;
    assert_eq!(recorded, blocked, "still recorded");
    set(json!({"shields": ["block"]})).await;
    let (status, _) = server
        .management_request(&token, "DELETE", &format!("/user-blocks/{user_id}"))
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        forwarded(&server, app, &email, attacker, PASSWORD).await,
        200,
        "lifted"
    );

    // Counted per account alone: failures from different networks add up.
    set(json!({"mode": "count_per_identifier"})).await;
    for network in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(forwarded(&server, app, &email, network, "wrong").await, 403);
    }
    assert_eq!(
        forwarded(&server, app, &email, "203.0.113.3", PASSWORD).await,
        429
    );
    let (_, account) = server
        .management_request(&token, "GET", &by_identifier)
        .await;
    assert_eq!(account, json!({"blocked_for": [{"identifier": email}]}));
    let (status, _) = server
        .management_request(&token, "DELETE", &by_identifier)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        forwarded(&server, app, &email, "203.0.113.3", PASSWORD).await,
        200
    );

    // Off: nothing counted; `null` puts a member back to the default.
    let off = set(json!({"enabled": false, "mode": null, "max_attempts": null})).await;
    assert_eq!(
        (&off["enabled"], &off["mode"], &off["max_attempts"]),
        (
            &json!(false),
            &json!("count_per_identifier_and_ip"),
            &json!(5)
        )
    );
    for _ in 0..6 {
        assert_eq!(
            forwarded(&server, app, &email, attacker, "wrong").await,
            403
        );
    }
    assert_eq!(
        forwarded(&server, app, &email, attacker, PASSWORD).await,
        200
    );
}
