//! Pushed authorization requests (RFC 9126) over HTTP: the SPA pushes its request, the
//! browser brings only `client_id` and `request_uri`, and the login ends at the pushed
//! redirect_uri whatever else the front channel adds; a request_uri works once and for
//! its application only; a request `/authorize` would refuse is refused when pushed, and
//! the machine-to-machine application must authenticate as at the token endpoint.

use serde_json::Value;
use tessera_testkit::*;

use crate::actions::payload;

async fn push(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/par"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_pushed_request_is_brought_by_its_uri_once() {
    let server = spawn().await;
    let pkce = pkce();
    let spa = server.spa_client_id.clone();
    let request = [
        ("client_id", spa.as_str()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        ("state", "pushed-state"),
        ("nonce", "pushed-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (status, pushed) = push(&server, &request).await;
    assert_eq!(status, 201, "{pushed}");
    assert_eq!(pushed["expires_in"], 60);
    let uri = pushed["request_uri"].as_str().unwrap().to_string();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );

    // The front channel adds its own redirect_uri and scope: the pushed ones hold.
    let authorize = |extra: &[(&str, &str)]| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &spa)
            .append_pair("request_uri", &uri);
        for (name, value) in extra {
            query.append_pair(name, value);
        }
        format!("{}/authorize?{}", server.base, query.finish())
    };
    let url = authorize(&[
        ("redirect_uri", "https://evil.example/cb"),
        ("scope", "openid email"),
    ]);
    let browser = browser();
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let login = location(&response);
    let email = server.user_email.clone();
    let signed_in = submit_login_form(&browser, &server.base, &login, &email, PASSWORD).await;
    let resumed = browser
        .get(server.url(&location(&signed_in)))
        .send()
        .await
        .unwrap();
    let to = location(&resumed);
    assert!(to.starts_with(CALLBACK), "{to}");
    let params = params_of(&to);
    assert_eq!(params["state"], "pushed-state");
    let (status, tokens) = server.redeem(&params["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "pushed-nonce");
    assert!(
        claims.get("email").is_none(),
        "the pushed scope, not the front channel's"
    );

    // Once only.
    let again = browser.get(authorize(&[])).send().await.unwrap();
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn pushed_requests_are_checked_as_authorize_checks_them() {
    let server = spawn().await;
    let pkce = pkce();
    let spa = server.spa_client_id.clone();
    let good = vec![
        ("client_id", spa.as_str()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let with = |name: &'static str, value: &'static str| {
        let mut form: Vec<(&str, &str)> =
            good.iter().filter(|(n, _)| *n != name).copied().collect();
        form.push((name, value));
        form
    };
    for (form, error) in [
        (
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        (with("response_type", "token"), "unauthorized_client"),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            "invalid_request",
        ),
        (with("code_challenge_method", "plain"), "invalid_request"),
    ] {
        let (status, body) = push(&server, &form).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert!(body["error"].is_string(), "{body}");
        if error != "unauthorized_client" {
            assert_eq!(body["error"], error, "{form:?}: {body}");
        }
    }
    let (status, body) = push(&server, &with("client_id", "no-such-app")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let m2m = server.m2m_client_id.clone();
    let (status, _) = push(
        &server,
        &[("client_id", m2m.as_str()), ("response_type", "code")],
    )
    .await;
    assert_eq!(status, 401, "a confidential application without its secret");

    // Another application's client_id with the uri: refused; the uri stays its own
    // application's.
    let (status, pushed) = push(&server, &good).await;
    assert_eq!(status, 201);
    let uri = pushed["request_uri"].as_str().unwrap();
    let url = |client_id: &str| {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("request_uri", uri)
            .finish();
        format!("{}/authorize?{query}", server.base)
    };
    let browser = browser();
    assert_eq!(browser.get(url(&m2m)).send().await.unwrap().status(), 400);
    let own = browser.get(url(&spa)).send().await.unwrap();
    assert_eq!(own.status(), 302);
    assert!(location(&own).contains("/u/login"), "{}", location(&own));
}

/// Turns `require_pushed_authorization_requests` on or off through the Management API.
async fn require_par(server: &TestServer, token: &str, client_id: &str, on: bool) -> Value {
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{client_id}")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "require_pushed_authorization_requests": on }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_application_that_requires_par_takes_only_pushed_requests() {
    let server = spawn().await;
    let token = server
        .management_token(&["read:clients", "update:clients"])
        .await;
    let spa = server.spa_client_id.clone();
    let shown: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v2/clients/{spa}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["require_pushed_authorization_requests"], false);
    let updated = require_par(&server, &token, &spa, true).await;
    assert_eq!(updated["require_pushed_authorization_requests"], true);

    // From the front channel: refused, back at the registered redirect_uri (RFC 9126 §6).
    let pkce = pkce();
    let browser = browser();
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "front"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert!(to.starts_with(CALLBACK), "{to}");
    let params = params_of(&to);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(
        params["error_description"],
        "This application must use pushed authorization requests."
    );
    assert_eq!(params["state"], "front");
    assert!(!params.contains_key("code"));

    // With an unregistered redirect_uri: a page, never a redirect.
    let page = browser
        .get(format!(
            "{}/authorize?client_id={spa}&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);

    // Pushed: the login goes through and a code comes back.
    let (status, pushed) = push(
        &server,
        &[
            ("client_id", spa.as_str()),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "pushed"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{pushed}");
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &spa)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap())
        .finish();
    let response = browser
        .get(format!("{}/authorize?{query}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let login = location(&response);
    let email = server.user_email.clone();
    let signed_in = submit_login_form(&browser, &server.base, &login, &email, PASSWORD).await;
    let resumed = browser
        .get(server.url(&location(&signed_in)))
        .send()
        .await
        .unwrap();
    let params = params_of(&location(&resumed));
    assert_eq!(params["state"], "pushed");
    let (status, tokens) = server.redeem(&params["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");

    // Off again: the front channel works as before (the session answers at once).
    require_par(&server, &token, &spa, false).await;
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap();
    let params = params_of(&location(&response));
    assert!(params.contains_key("code"), "{params:?}");
}
