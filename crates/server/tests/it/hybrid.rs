//! The hybrid flow (OpenID Connect Core §3.3): `code id_token`, `code token` and
//! `code id_token token` at `/authorize`, end to end over real HTTP. The front-channel ID
//! token is verified against the published JWKS with an independent library, its `c_hash`
//! and `at_hash` computed here (`left_half_hash`), and the code redeemed at `/oauth/token`.

use std::collections::HashMap;

use serde_json::{Value, json};
use tessera_core::AppType;
use tessera_testkit::*;

const SCOPE: &str = "openid profile read:messages";
const NONCE: &str = "hybrid-n+/=";
const STATE: &str = "hybrid-st";

/// A hybrid request of `client_id` (PKCE included: the SPA is public) with `extra` added or
/// replacing the defaults; an empty value leaves the parameter out. Returns the URL and the
/// PKCE verifier.
fn hybrid_request(
    server: &TestServer,
    client_id: &str,
    response_type: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let pkce = pkce();
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", response_type),
        ("scope", SCOPE),
        ("audience", API),
        ("state", STATE),
        ("nonce", NONCE),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(key, _)| key != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    (
        format!("{}/authorize?{}", server.base, query.finish()),
        pkce.verifier,
    )
}

/// The parameters of a redirect to the callback, which must be in its fragment.
fn fragment_of(back: &str) -> HashMap<String, String> {
    assert!(
        back.starts_with(&format!("{CALLBACK}#")),
        "the response goes in the fragment: {back}"
    );
    params_of(back)
}

/// Checks a successful hybrid response (what it carries, each ID token bound to the code
/// and token beside it), redeems its code and checks the second ID token against the first.
async fn check_response(
    server: &TestServer,
    response_type: &str,
    params: &HashMap<String, String>,
    verifier: &str,
) {
    let words: Vec<&str> = response_type.split(' ').collect();
    let (wants_token, wants_id_token) = (words.contains(&"token"), words.contains(&"id_token"));
    assert!(params.get("error").is_none(), "{response_type}: {params:?}");
    assert_eq!(params["state"], STATE, "{response_type}");
    assert_eq!(params["iss"], server.issuer, "{response_type}");
    let code = &params["code"];
    assert_eq!(
        params.contains_key("access_token"),
        wants_token,
        "{response_type}"
    );
    assert_eq!(
        params.contains_key("id_token"),
        wants_id_token,
        "{response_type}"
    );
    if wants_token {
        assert_eq!(params["token_type"], "Bearer");
        let access = server.verify(&params["access_token"], API).await;
        assert_eq!(access["sub"], json!(server.user_id));
    }
    let front_sub = if wants_id_token {
        let id_token = &params["id_token"];
        let id = server.verify(id_token, &server.spa_client_id).await;
        assert_eq!(
            id["nonce"], NONCE,
            "{response_type}: the nonce, byte for byte"
        );
        assert_eq!(
            id["c_hash"],
            json!(left_half_hash(id_token, code)),
            "{response_type}: c_hash binds the ID token to its code"
        );
        if wants_token {
            assert_eq!(
                id["at_hash"],
                json!(left_half_hash(id_token, &params["access_token"])),
                "{response_type}: at_hash binds the ID token to its access token"
            );
        } else {
            assert!(
                id.get("at_hash").is_none(),
                "{response_type}: no token, no at_hash"
            );
        }
        assert_eq!(id["sub"], json!(server.user_id));
        Some(id["sub"].clone())
    } else {
        None
    };

    let (status, tokens) = server.redeem(code, verifier).await;
    assert_eq!(status, 200, "{response_type}: the code redeems: {tokens}");
    assert_eq!(tokens["scope"], SCOPE);
    server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    assert_eq!(id["sub"], json!(server.user_id));
    if let Some(front_sub) = front_sub {
        assert_eq!(id["sub"], front_sub, "the same sub front and back");
    }
    assert_eq!(
        id["nonce"], NONCE,
        "{response_type}: the code keeps the nonce"
    );
    assert!(
        id.get("c_hash").is_none(),
        "{response_type}: no c_hash at the token endpoint"
    );
}

#[tokio::test]
async fn each_hybrid_response_type_end_to_end_in_any_word_order() {
    let server = spawn().await;
    let browser = browser();
    for response_type in [
        "code id_token",
        "code token",
        "code id_token token",
        "id_token code",
        "token code",
        "token id_token code",
    ] {
        let (url, verifier) = hybrid_request(&server, &server.spa_client_id, response_type, &[]);
        // The first one signs in; the others are answered from the session.
        let back = server.sign_in(&browser, &url).await;
        check_response(&server, response_type, &fragment_of(&back), &verifier).await;
    }
}

#[tokio::test]
async fn form_post_and_web_message_carry_a_hybrid_response() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    let (url, verifier) = hybrid_request(
        &server,
        &server.spa_client_id,
        "code id_token token",
        &[("response_mode", "form_post")],
    );
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")), "{html}");
    let params: HashMap<String, String> = [
        "code",
        "access_token",
        "token_type",
        "id_token",
        "state",
        "iss",
    ]
    .iter()
    .map(|name| (name.to_string(), hidden_field(&html, name)))
    .collect();
    check_response(&server, "code id_token token", &params, &verifier).await;

    let (url, _) = hybrid_request(
        &server,
        &server.spa_client_id,
        "code id_token",
        &[
            ("response_mode", "web_message"),
            ("redirect_uri", SPA_ORIGIN),
        ],
    );
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("data-origin=\"{SPA_ORIGIN}\"")),
        "{html}"
    );
    assert!(html.contains("id_token") && html.contains("code"), "{html}");
}

#[tokio::test]
async fn nonce_is_required_when_an_id_token_comes_from_authorize() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    for response_type in ["code id_token", "code id_token token"] {
        let (url, _) = hybrid_request(
            &server,
            &server.spa_client_id,
            response_type,
            &[("nonce", "")],
        );
        let response = browser.get(&url).send().await.unwrap();
        let params = fragment_of(&location(&response));
        assert_eq!(params["error"], "invalid_request", "{response_type}");
        assert!(
            params["error_description"].contains("nonce"),
            "{response_type}: {params:?}"
        );
        assert_eq!(params["state"], STATE);
        assert!(!params.contains_key("code"), "{response_type}: no code");
    }
    // No ID token from /authorize: no nonce needed (the code's ID token simply has none).
    let (url, verifier) = hybrid_request(
        &server,
        &server.spa_client_id,
        "code token",
        &[("nonce", "")],
    );
    let response = browser.get(&url).send().await.unwrap();
    let params = fragment_of(&location(&response));
    assert!(params.contains_key("code") && params.contains_key("access_token"));
    let (status, tokens) = server.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    assert!(id.get("nonce").is_none());
}

#[tokio::test]
async fn a_hybrid_response_never_goes_in_a_query() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    for response_type in ["code id_token", "code token", "code id_token token"] {
        let (url, _) = hybrid_request(
            &server,
            &server.spa_client_id,
            response_type,
            &[("response_mode", "query")],
        );
        let response = browser.get(&url).send().await.unwrap();
        let back = location(&response);
        let params = fragment_of(&back);
        assert_eq!(params["error"], "invalid_request", "{response_type}");
        assert!(
            !back.contains("code="),
            "{response_type}: nothing issued: {back}"
        );
    }
}

#[tokio::test]
async fn only_applications_with_the_implicit_and_code_grants_may_use_it() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    let mut code_only = client("Code only", AppType::Spa, None);
    code_only.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    server.store.create_client(&code_only).await.unwrap();
    let mut implicit_only = client("Implicit only", AppType::Spa, None);
    implicit_only.grant_types = vec!["implicit".into()];
    server.store.create_client(&implicit_only).await.unwrap();
    for (app, missing) in [
        (&code_only, "implicit"),
        (&implicit_only, "authorization code"),
    ] {
        for response_type in ["code id_token", "code token", "code id_token token"] {
            let (url, _) = hybrid_request(&server, &app.client_id, response_type, &[]);
            let response = browser.get(&url).send().await.unwrap();
            let params = fragment_of(&location(&response));
            assert_eq!(
                params["error"], "unauthorized_client",
                "{} {response_type}",
                app.name
            );
            assert!(params["error_description"].contains(missing), "{params:?}");
            assert!(!params.contains_key("code"));
        }
    }
    // What each may use still works.
    let (url, _) = hybrid_request(&server, &code_only.client_id, "code", &[]);
    let params = params_of(&location(&browser.get(&url).send().await.unwrap()));
    assert!(params.contains_key("code"), "{params:?}");
    let (url, _) = hybrid_request(
        &server,
        &implicit_only.client_id,
        "id_token token",
        &[("code_challenge", ""), ("code_challenge_method", "")],
    );
    let params = fragment_of(&location(&browser.get(&url).send().await.unwrap()));
    assert!(params.contains_key("id_token"), "{params:?}");
}

#[tokio::test]
async fn silent_authentication_answers_in_the_fragment() {
    let server = spawn().await;
    let (silent, _) = hybrid_request(
        &server,
        &server.spa_client_id,
        "code id_token",
        &[("prompt", "none")],
    );
    // No session: login_required, in the fragment.
    let stranger = browser();
    let params = fragment_of(&location(&stranger.get(&silent).send().await.unwrap()));
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], STATE);
    // …or in the form, with form_post.
    let (silent_form, _) = hybrid_request(
        &server,
        &server.spa_client_id,
        "code id_token",
        &[("prompt", "none"), ("response_mode", "form_post")],
    );
    let html = stranger
        .get(&silent_form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden_field(&html, "error"), "login_required");

    // With a session: the response, without a page.
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    let (silent, verifier) = hybrid_request(
        &server,
        &server.spa_client_id,
        "code id_token",
        &[("prompt", "none")],
    );
    let response = browser.get(&silent).send().await.unwrap();
    assert_eq!(response.status(), 302);
    check_response(
        &server,
        "code id_token",
        &fragment_of(&location(&response)),
        &verifier,
    )
    .await;
}

#[tokio::test]
async fn consent_then_resume_answers_a_hybrid_request() {
    let server = spawn().await;
    let mut partner = client("Partner", AppType::Spa, None);
    partner.is_first_party = false;
    server.store.create_client(&partner).await.unwrap();
    let browser = browser();
    let answer = |url: String, action: &'static str| {
        let browser = browser.clone();
        let server = &server;
        async move {
            let consent = server.sign_in(&browser, &url).await;
            assert!(consent.starts_with("/u/consent?state="), "{consent}");
            let page = browser
                .get(server.url(&consent))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let response = browser
                .post(server.url("/u/consent"))
                .form(&[
                    ("state", hidden_field(&page, "state")),
                    ("csrf", hidden_field(&page, "csrf")),
                    ("action", action.to_string()),
                ])
                .send()
                .await
                .unwrap();
            let resume = location(&response);
            assert!(resume.starts_with("/authorize/resume?state="), "{resume}");
            location(&browser.get(server.url(&resume)).send().await.unwrap())
        }
    };

    // Decline: access_denied, in the fragment.
    let (url, _) = hybrid_request(&server, &partner.client_id, "code id_token", &[]);
    let params = fragment_of(&answer(url, "deny").await);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], STATE);
    assert!(!params.contains_key("code") && !params.contains_key("id_token"));

    // Accept: the hybrid response, its ID token bound to its code.
    let (url, verifier) = hybrid_request(&server, &partner.client_id, "code id_token", &[]);
    let params = fragment_of(&answer(url, "accept").await);
    let id_token = &params["id_token"];
    let id = server.verify(id_token, &partner.client_id).await;
    assert_eq!(
        id["c_hash"],
        json!(left_half_hash(id_token, &params["code"]))
    );
    let (status, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &partner.client_id),
            ("code", &params["code"]),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], SCOPE);

    // Remembered: the next one is answered at once, silently too.
    let (url, _) = hybrid_request(
        &server,
        &partner.client_id,
        "code id_token token",
        &[("prompt", "none")],
    );
    let params = fragment_of(&location(&browser.get(&url).send().await.unwrap()));
    let id_token = &params["id_token"];
    let id: Value = server.verify(id_token, &partner.client_id).await;
    assert_eq!(
        id["c_hash"],
        json!(left_half_hash(id_token, &params["code"]))
    );
    assert_eq!(
        id["at_hash"],
        json!(left_half_hash(id_token, &params["access_token"]))
    );
}

#[tokio::test]
async fn discovery_lists_the_hybrid_response_types() {
    let server = spawn().await;
    let doc: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = doc["response_types_supported"].as_array().unwrap();
    for response_type in ["code id_token", "code token", "code id_token token"] {
        assert!(listed.contains(&json!(response_type)), "{listed:?}");
    }
    assert!(
        doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("c_hash"))
    );
}
