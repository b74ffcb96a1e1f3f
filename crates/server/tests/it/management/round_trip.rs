//! A read-modify-write of what `GET` returns goes through, as auth0-deploy-cli and
//! Terraform do it: every member `GET /clients/{id}` and `GET /resource-servers/{id}` show
//! is accepted back by `PATCH` (and by `POST`) — the ones Tessera holds fixed when they keep
//! their value — except those Auth0 refuses too (ids, `tenant`, `identifier`, `is_system`).
//! A fixed member given another value is a 400 naming it, and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::spawn;

use super::{ALL_SCOPES, call, urlencode};

/// `GET`'s body without the members Auth0's `PATCH` refuses as well.
fn writable(mut shown: Value, read_only: &[&str]) -> Value {
    for key in read_only {
        shown.as_object_mut().unwrap().remove(*key);
    }
    shown
}

#[tokio::test]
async fn clients_take_back_what_get_returned() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    for (app_type, extra) in [
        (
            "spa",
            json!({"callbacks": ["https://app.example/cb"], "web_origins": ["https://app.example"]}),
        ),
        (
            "regular_web",
            json!({"token_endpoint_auth_method": "client_secret_basic",
                "description": "The billing site", "logo_uri": "https://cdn.example/logo.png",
                "client_metadata": {"team": "billing", "tier": "1"},
                "initiate_login_uri": "https://billing.example/login",
                "allowed_origins": ["https://billing.example"]}),
        ),
        ("non_interactive", json!({})),
    ] {
        let mut body = json!({"name": format!("Round trip {app_type}"), "app_type": app_type});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let (status, created) = call(&server, t, Method::POST, "/clients", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let path = format!("/clients/{}", created["client_id"].as_str().unwrap());
        let (_, shown) = call(&server, t, Method::GET, &path, None).await;

        let back = writable(shown.clone(), &["client_id", "tenant"]);
        let (status, patched) = call(&server, t, Method::PATCH, &path, Some(back.clone())).await;
        assert_eq!(status, 200, "{app_type}: {patched}");
        let (_, again) = call(&server, t, Method::GET, &path, None).await;
        assert_eq!(again, shown, "{app_type}: the round trip changed nothing");

        // The same members create an equal application (a tenant file applied elsewhere).
        let mut copy = back.clone();
        copy["name"] = json!(format!("Copy of {app_type}"));
        let (status, made) = call(&server, t, Method::POST, "/clients", Some(copy)).await;
        assert_eq!(status, 201, "{app_type}: {made}");
        for key in [
            "app_type",
            "callbacks",
            "grant_types",
            "jwt_configuration",
            "token_endpoint_auth_method",
            "description",
            "logo_uri",
            "client_metadata",
            "initiate_login_uri",
            "allowed_origins",
        ] {
            assert_eq!(made[key], shown[key], "{app_type}: {key}");
        }
    }
}

#[tokio::test]
async fn fixed_members_with_another_value_are_refused_by_name() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let (_, created) = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(json!({"name": "Fixed", "app_type": "regular_web"})),
    )
    .await;
    let path = format!("/clients/{}", created["client_id"].as_str().unwrap());
    let (_, before) = call(&server, t, Method::GET, &path, None).await;
    for (member, value) in [
        ("cross_origin_authentication", json!(true)),
        ("cross_origin_auth", json!(true)),
        ("custom_login_page_on", json!(false)),
        ("is_token_endpoint_ip_header_trusted", json!(true)),
        ("sso_disabled", json!(true)),
        ("jwt_configuration", json!({"alg": "HS256"})),
        ("jwt_configuration", json!({"lifetime_in_seconds": 60})),
        ("jwt_configuration", json!({"secret_encoded": true})),
        ("jwt_configuration", json!("RS256")),
        ("app_type", json!("spa")),
        ("token_endpoint_auth_method", json!("none")),
    ] {
        let body = json!({member: value, "name": "Changed"});
        let (status, answer) = call(&server, t, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(member),
            "{answer}"
        );
        let (status, answer) = call(
            &server,
            t,
            Method::POST,
            "/clients",
            Some(json!({member: value, "name": "New", "app_type": "regular_web"})),
        )
        .await;
        if member != "app_type" {
            assert_eq!(status, 400, "POST {member}: {value}: {answer}");
        }
    }
    let (_, after) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(after, before, "no refused PATCH changed the application");

    // What does change: the secret method of a confidential application.
    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"token_endpoint_auth_method": "client_secret_basic"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["token_endpoint_auth_method"], "client_secret_basic");
}

#[tokio::test]
async fn resource_servers_take_back_what_get_returned() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let (status, created) = call(
        &server,
        t,
        Method::POST,
        "/resource-servers",
        Some(
            json!({"name": "Round trip", "identifier": "https://round.trip/",
            "scopes": [{"value": "read:x", "description": "Read x"}], "token_lifetime": 3600}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/resource-servers/{}", created["id"].as_str().unwrap());
    let (_, shown) = call(&server, t, Method::GET, &path, None).await;
    let back = writable(shown.clone(), &["id", "identifier", "is_system"]);
    let (status, patched) = call(&server, t, Method::PATCH, &path, Some(back.clone())).await;
    assert_eq!(status, 200, "{patched}");
    let (_, again) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(again, shown);

    let mut copy = back.clone();
    copy["identifier"] = json!("https://round.trip/copy");
    let (status, made) = call(&server, t, Method::POST, "/resource-servers", Some(copy)).await;
    assert_eq!(status, 201, "{made}");

    // token_lifetime_for_web is the API's own, at most token_lifetime.
    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"token_lifetime": 7200, "token_lifetime_for_web": 600})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["token_lifetime_for_web"], 600);
    for (member, value) in [
        (
            "skip_consent_for_verifiable_first_party_clients",
            json!(false),
        ),
        ("token_lifetime_for_web", json!(7201)),
        ("token_lifetime_for_web", json!(0)),
        ("token_lifetime_for_web", json!("600")),
    ] {
        let (status, answer) = call(
            &server,
            t,
            Method::PATCH,
            &path,
            Some(json!({member: value})),
        )
        .await;
        assert_eq!(status, 400, "{member}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(member),
            "{answer}"
        );
    }
    // A shorter token_lifetime takes the browser's lifetime down with it.
    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"token_lifetime": 300})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let (_, after) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(after["token_lifetime"], 300);
    assert_eq!(after["token_lifetime_for_web"], 300);
}

/// Tokens handed over in the browser live `token_lifetime_for_web`; those from the token
/// endpoint `token_lifetime`, as at Auth0.
#[tokio::test]
async fn browser_tokens_live_token_lifetime_for_web() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &format!("/resource-servers/{}", urlencode(tessera_testkit::API)),
        Some(json!({"token_lifetime": 7200, "token_lifetime_for_web": 900})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");

    let browser = tessera_testkit::browser();
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid read:messages"),
        ("audience", tessera_testkit::API),
    ]);
    let back = server.sign_in(&browser, &url).await;
    let fragment = back.split_once('#').map(|(_, f)| f).unwrap_or_default();
    let answer = tessera_testkit::params_of(&format!("x?{fragment}"));
    assert_eq!(answer["expires_in"], "900", "{back}");
    let claims = server
        .verify(&answer["access_token"], tessera_testkit::API)
        .await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    let tokens = server
        .code_flow(&browser, "openid read:messages", Some(tessera_testkit::API))
        .await;
    assert_eq!(tokens["expires_in"], 7200, "{tokens}");
}

/// What an application says about itself is stored as given, changed member by member,
/// cleared by `null`, and checked by Auth0's limits.
#[tokio::test]
async fn profile_members_are_kept_changed_and_cleared() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let (status, created) = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(json!({"name": "Profiled", "app_type": "spa",
            "description": "A SPA", "client_metadata": {"owner": "web-team"}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["description"], "A SPA");
    let path = format!("/clients/{}", created["client_id"].as_str().unwrap());

    let (status, patched) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"logo_uri": "https://cdn.example/spa.png", "client_metadata": {"owner": "platform"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["description"], "A SPA", "untouched members stay");
    assert_eq!(patched["logo_uri"], "https://cdn.example/spa.png");
    assert_eq!(
        patched["client_metadata"],
        json!({"owner": "platform"}),
        "replaced whole"
    );

    let (status, cleared) = call(
        &server,
        t,
        Method::PATCH,
        &path,
        Some(json!({"description": null, "client_metadata": null})),
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(
        cleared.get("description").is_none() && cleared.get("client_metadata").is_none(),
        "{cleared}"
    );

    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (_, before) = call(&server, t, Method::GET, &path, None).await;
    for (member, value) in [
        ("description", json!("x".repeat(141))),
        ("description", json!(42)),
        ("logo_uri", json!("javascript:alert(1)")),
        ("logo_uri", json!("https://cdn.example/\"onerror=\"x")),
        ("initiate_login_uri", json!("http://app.example/login")),
        ("client_metadata", json!({"a.b": "x"})),
        ("client_metadata", json!({"n": 1})),
        ("client_metadata", Value::Object(eleven)),
        ("client_metadata", json!(["not", "an", "object"])),
        ("allowed_origins", json!(["https://app.example/path"])),
    ] {
        let (status, answer) = call(
            &server,
            t,
            Method::PATCH,
            &path,
            Some(json!({member: value})),
        )
        .await;
        assert_eq!(status, 400, "{member}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(member),
            "{member}: {answer}"
        );
    }
    let (_, after) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(after, before, "no refused PATCH changed the application");
}
