//! `/api/v2/tenants/settings`: what auth0-deploy-cli's `tenant` reads and writes. Members
//! are kept as given and merged by `PATCH` (`null` removes one); bad ones are refused by
//! name and change nothing; `default_audience` names an API and becomes the audience of a
//! request that names none — at `/authorize` and for client credentials, as at Auth0.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::{API, spawn};

use super::call;

const SCOPES: &[&str] = &["read:tenant_settings", "update:tenant_settings"];

#[tokio::test]
async fn settings_are_kept_merged_and_refused_by_name() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let (status, empty) = call(&server, t, Method::GET, "/tenants/settings", None).await;
    assert_eq!((status, empty), (200, json!({})));

    let tenant = json!({
        "friendly_name": "Acme", "picture_url": "https://acme.example/logo.png",
        "support_email": "help@acme.example", "support_url": "https://acme.example/help",
        "session_lifetime": 168, "idle_session_lifetime": 72, "enabled_locales": ["en"],
        "flags": {"enable_client_connections": false, "revoke_refresh_token_grant": false},
        "sandbox_version": "18", "default_redirection_uri": "https://acme.example/",
        "error_page": {"html": "", "show_log_link": false, "url": "https://acme.example/error"},
        "allowed_logout_urls": ["https://acme.example/bye"],
        "session_cookie": {"mode": "non-persistent"},
    });
    let (status, set) = call(
        &server,
        t,
        Method::PATCH,
        "/tenants/settings",
        Some(tenant.clone()),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set, tenant);
    let (_, read) = call(&server, t, Method::GET, "/tenants/settings", None).await;
    assert_eq!(
        read, tenant,
        "what was set is what GET returns: a re-export equals the file"
    );

    // A patch keeps the members it does not name; null removes one.
    let (status, merged) = call(
        &server,
        t,
        Method::PATCH,
        "/tenants/settings",
        Some(json!({"friendly_name": "Acme Corp", "sandbox_version": null})),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["friendly_name"], "Acme Corp");
    assert_eq!(merged["support_email"], "help@acme.example");
    assert!(merged.get("sandbox_version").is_none(), "{merged}");
    let (_, filtered) = call(
        &server,
        t,
        Method::GET,
        "/tenants/settings?fields=friendly_name,flags",
        None,
    )
    .await;
    assert_eq!(
        filtered.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["flags", "friendly_name"]
    );

    let (_, before) = call(&server, t, Method::GET, "/tenants/settings", None).await;
    for (member, value) in [
        ("friendly_name", json!("<b>bold</b>\n")),
        ("support_email", json!("not an address")),
        ("support_url", json!("javascript:alert(1)")),
        ("session_lifetime", json!(0)),
        ("session_lifetime", json!("168")),
        ("flags", json!({"x": "yes"})),
        ("enabled_locales", json!([])),
        ("default_audience", json!("https://no.such.api/")),
        ("default_directory", json!("google-oauth2")),
        ("tenant_id", json!("other")),
        ("customize_mfa_in_postlogin_action", json!(true)),
    ] {
        let (status, answer) = call(
            &server,
            t,
            Method::PATCH,
            "/tenants/settings",
            // A good member beside the bad one: the whole patch is refused.
            Some(json!({member: value, "picture_url": "https://changed.example/x.png"})),
        )
        .await;
        assert_eq!(status, 400, "{member}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(member),
            "{member}: {answer}"
        );
    }
    let (_, after) = call(&server, t, Method::GET, "/tenants/settings", None).await;
    assert_eq!(after, before, "no refused patch changed anything");

    // Each scope guards its method.
    let reader = server.management_token(&["read:tenant_settings"]).await;
    let (status, _) = call(
        &server,
        Some(reader.as_str()),
        Method::PATCH,
        "/tenants/settings",
        Some(json!({"friendly_name": "x"})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_default_audience_serves_requests_that_name_none() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let t = Some(token.as_str());
    let http = reqwest::Client::new();
    let machine = |audience: Option<&str>| {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", server.m2m_client_id.clone()),
            ("client_secret", server.m2m_secret.clone()),
        ];
        if let Some(audience) = audience {
            form.push(("audience", audience.to_string()));
        }
        let http = http.clone();
        let url = server.url("/oauth/token");
        async move {
            let response = http.post(url).form(&form).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, refused) = machine(None).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "access_denied");

    let (status, set) = call(
        &server,
        t,
        Method::PATCH,
        "/tenants/settings",
        Some(json!({"default_audience": API})),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    let (status, issued) = machine(None).await;
    assert_eq!(status, 200, "{issued}");
    let claims = server
        .verify(issued["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["aud"], API);

    // At /authorize too: a login without an audience gets a token for the default API.
    let browser = tessera_testkit::browser();
    let tokens = server
        .code_flow(&browser, "openid read:messages", None)
        .await;
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert!(
        claims["scope"].as_str().unwrap().contains("read:messages"),
        "{claims}"
    );

    // Removed: back to no audience.
    let (status, _) = call(
        &server,
        t,
        Method::PATCH,
        "/tenants/settings",
        Some(json!({"default_audience": null})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = machine(None).await;
    assert_eq!(status, 403);
}
