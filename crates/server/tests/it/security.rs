//! SECURITY.md, the authorization-server half, as tests over real HTTP.

use std::sync::Arc;

use serde_json::Value;
use tessera_testkit::*;

async fn authorize_status(server: &TestServer, query: &str) -> reqwest::Response {
    browser()
        .get(format!("{}/authorize?{query}", server.base))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_uri_gets_a_page_never_a_redirect() {
    let server = spawn().await;
    let challenge = pkce().challenge;
    let cid = server.spa_client_id.clone();
    let cases = [
        "client_id=nobody&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&response_type=code"
            .to_string(),
        "redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&response_type=code".to_string(),
        format!("client_id={cid}&response_type=code"),
        format!(
            "client_id={cid}&redirect_uri=https%3A%2F%2Fevil.example%2Fcallback&response_type=code"
        ),
        format!(
            "client_id={cid}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback%2F&response_type=code"
        ),
        format!(
            "client_id={cid}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback%3Fx%3D1&response_type=code"
        ),
        format!(
            "client_id={cid}&redirect_uri=http%3A%2F%2Flocalhost%3A3000.evil.example%2Fcallback&response_type=code"
        ),
        format!(
            "client_id={cid}&client_id={cid}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&response_type=code&code_challenge={challenge}&code_challenge_method=S256"
        ),
    ];
    for query in cases {
        let response = authorize_status(&server, &query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.headers().get("location").is_none(), "{query}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_to_it() {
    let server = spawn().await;
    let challenge = pkce().challenge;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code"), ("code_challenge", &challenge)],
            "invalid_request",
        ),
        (vec![("response_type", "code")], "invalid_request"), // a public client without PKCE
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code code")],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", "banana")],
            "unsupported_response_type",
        ),
        (vec![], "invalid_request"),
        (
            vec![
                ("response_type", "token"),
                ("audience", "https://not-registered/"),
            ],
            "access_denied",
        ),
        (
            vec![("response_type", "token"), ("prompt", "none login")],
            "invalid_request",
        ),
        (
            vec![("response_type", "token"), ("max_age", "-1")],
            "invalid_request",
        ),
        (
            vec![("response_type", "token"), ("request", "eyJ...")],
            "request_not_supported",
        ),
        (
            vec![
                ("response_type", "token"),
                ("response_mode", "carrier_pigeon"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, expected) in cases {
        let mut with_state = extra.clone();
        with_state.push(("state", "s+/="));
        let response = browser()
            .get(server.authorize_url(&with_state))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{extra:?}");
        let back = location(&response);
        assert!(back.starts_with(CALLBACK), "{back}");
        let params = params_of(&back);
        assert_eq!(params["error"], expected, "{extra:?}");
        assert_eq!(params["state"], "s+/=");
        assert_eq!(params["iss"], server.issuer);
    }
}

/// Every response_type × response_mode: a token (access or ID) is never in a query; a
/// token-bearing response type with `response_mode=query` gets its error in the fragment.
#[tokio::test]
async fn no_response_type_and_mode_puts_a_token_in_a_query() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    let challenge = pkce().challenge;
    let response_types = [
        "code",
        "token",
        "id_token",
        "token id_token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
        "none",
    ];
    let modes = [
        None,
        Some("query"),
        Some("fragment"),
        Some("form_post"),
        Some("web_message"),
        Some("query.jwt"),
    ];
    for response_type in response_types {
        let carries_tokens = response_type.split(' ').any(|t| t != "code" && t != "none");
        for mode in modes {
            let case = format!("{response_type} / {mode:?}");
            let mut query = form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("client_id", &server.spa_client_id)
                .append_pair("redirect_uri", SPA_ORIGIN)
                .append_pair("response_type", response_type)
                .append_pair("scope", "openid")
                .append_pair("nonce", "n")
                .append_pair("state", "st");
            if response_type.contains("code") {
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if let Some(mode) = mode {
                query.append_pair("response_mode", mode);
            }
            let url = format!("{}/authorize?{}", server.base, query.finish());
            let response = browser.get(&url).send().await.unwrap();
            let status = response.status().as_u16();
            let back = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string());
            let body = response.text().await.unwrap();
            if let Some(back) = &back {
                let before_fragment = back.split('#').next().unwrap();
                assert!(
                    !before_fragment.contains("token="),
                    "{case}: a token in the query: {back}"
                );
            }
            match mode {
                Some("query") if carries_tokens => {
                    assert_eq!(status, 302, "{case}");
                    let back = back.unwrap();
                    assert!(
                        back.starts_with(&format!("{SPA_ORIGIN}#")),
                        "{case}: {back}"
                    );
                    let params = params_of(&back);
                    assert_eq!(params["error"], "invalid_request", "{case}");
                    assert_eq!(params["state"], "st", "{case}");
                }
                Some("form_post" | "web_message") => {
                    assert_eq!(status, 200, "{case}");
                    assert!(back.is_none(), "{case}");
                    let state_field = if mode == Some("form_post") {
                        "name=\"state\" value=\"st\""
                    } else {
                        "&#34;state&#34;:&#34;st&#34;"
                    };
                    assert!(body.contains(state_field), "{case}: {body}");
                }
                _ => assert_eq!(status, 302, "{case}"),
            }
        }
    }
}

#[tokio::test]
async fn pkce_is_enforced_at_the_token_endpoint() {
    let server = spawn().await;
    let browser = browser();
    for (verifier, expected) in [
        (Some("x".repeat(43)), "invalid_grant"), // wrong verifier
        (None, "invalid_grant"),                 // missing verifier
        (Some("short".to_string()), "invalid_grant"), // malformed verifier
    ] {
        let (code, _right_verifier) = fresh_code(&server, &browser, None).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", server.spa_client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
        ];
        if let Some(verifier) = &verifier {
            form.push(("code_verifier", verifier));
        }
        let (status, body) = server.token(&form).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, expected),
            "{verifier:?}"
        );
    }
}

/// Gets a fresh code for the signed-in browser (code + PKCE), without redeeming it.
async fn fresh_code(
    server: &TestServer,
    browser: &reqwest::Client,
    audience: Option<&str>,
) -> (String, String) {
    let pkce = pkce();
    let mut extra = vec![
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(audience) = audience {
        extra.push(("audience", audience));
    }
    let url = server.authorize_url(&extra);
    let response = browser.get(&url).send().await.unwrap();
    let to = location(&response);
    let back = if to.starts_with("/u/login") {
        server.sign_in(browser, &url).await
    } else {
        to
    };
    (params_of(&back)["code"].clone(), pkce.verifier)
}

#[tokio::test]
async fn fifty_parallel_redemptions_of_one_code_exactly_one_succeeds() {
    let server = Arc::new(spawn().await);
    let (code, verifier) = fresh_code(&server, &browser(), Some(API)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let server = server.clone();
        let (code, verifier) = (code.clone(), verifier.clone());
        tasks.push(tokio::spawn(async move {
            server
                .token(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", &server.spa_client_id),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &verifier),
                ])
                .await
        }));
    }
    let mut successes = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => successes += 1,
            400 => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(successes, 1);
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_the_first_redemption_issued() {
    let server = spawn().await;
    let browser = browser();
    let (code, verifier) = fresh_code(&server, &browser, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, tokens) = server.token(&form).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = |token: String| {
        let url = server.url("/userinfo");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(userinfo(access.to_string()).await, 200);
    let (status, body) = server.token(&form).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert_eq!(
        userinfo(access.to_string()).await,
        401,
        "the opaque token of the first redemption is revoked"
    );
}

#[tokio::test]
async fn codes_are_bound_to_client_and_redirect_uri() {
    let server = spawn().await;
    let browser = browser();
    let other = client("Other SPA", tessera_core::AppType::Spa, None);
    server.store.create_client(&other).await.unwrap();
    let (code, verifier) = fresh_code(&server, &browser, None).await;
    let (status, body) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &other.client_id),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    let (code, verifier) = fresh_code(&server, &browser, None).await;
    let (status, body) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.spa_client_id),
            ("code", &code),
            ("redirect_uri", SPA_ORIGIN),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn login_form_requires_the_csrf_token_of_this_browser() {
    let server = spawn().await;
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    let page = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let state = hidden_field(&page, "state");
    let csrf = hidden_field(&page, "csrf");
    let attempts = [
        (browser.clone(), String::new()),
        (browser.clone(), "A".repeat(43)),
        (tessera_testkit::browser(), csrf.clone()), // the attacker's browser: right token, no cookie
    ];
    for (client, token) in attempts {
        let response = client
            .post(server.url("/u/login"))
            .form(&[
                ("state", state.as_str()),
                ("csrf", token.as_str()),
                ("username", "demo@example.com"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.headers().get("location").is_none());
        assert!(
            response
                .headers()
                .get("set-cookie")
                .is_none_or(|c| !c.to_str().unwrap().contains("tessera_session="))
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same() {
    let server = spawn().await;
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let known = server
        .submit_login(&browser(), &url, "demo@example.com", "wrong password!")
        .await;
    let unknown = server
        .submit_login(&browser(), &url, "nobody@example.com", "wrong password!")
        .await;
    assert_eq!(known.status(), 401);
    assert_eq!(unknown.status(), 401);
    let strip = |html: String| {
        let start = html.find("<p class=\"error\"").unwrap();
        html[start..start + html[start..].find("</p>").unwrap()].to_string()
    };
    assert_eq!(
        strip(known.text().await.unwrap()),
        strip(unknown.text().await.unwrap())
    );
}

#[tokio::test]
async fn ten_failures_block_the_account_and_ip_even_with_the_right_password() {
    let server = spawn().await;
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let browser = browser();
    for _ in 0..10 {
        let response = server
            .submit_login(&browser, &url, "demo@example.com", "not the password")
            .await;
        assert_eq!(response.status(), 401);
    }
    let response = server
        .submit_login(&browser, &url, "demo@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.text().await.unwrap().contains("blocked"));
    // An administrator unblocks (what `tessera users unblock` does).
    server
        .store
        .clear_login_failures("demo@example.com", None)
        .await
        .unwrap();
    let response = server
        .submit_login(&browser, &url, "demo@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn a_blocked_user_cannot_sign_in_and_loses_silent_authentication() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    server
        .store
        .set_user_blocked(&server.user_id, true, now())
        .await
        .unwrap();
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid"),
        ("prompt", "none"),
    ]);
    let params = params_of(&location(&browser.get(&url).send().await.unwrap()));
    assert_eq!(params["error"], "login_required");
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let response = server
        .submit_login(&browser, &url, "demo@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("blocked"));
}

#[tokio::test]
async fn pages_carry_security_headers_and_token_responses_are_not_cached() {
    let server = spawn().await;
    let browser = browser();
    let url = server.authorize_url(&[
        ("response_type", "token"),
        ("scope", "openid"),
        ("login_hint", "\"><script>x</script>"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS on /authorize"
    );
    let login = browser
        .get(server.url(&location(&response)))
        .header("Origin", SPA_ORIGIN)
        .send()
        .await
        .unwrap();
    let headers = login.headers().clone();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&format!("form-action 'self' {SPA_ORIGIN}")),
        "browsers apply form-action to the redirects after the login POST"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "no CORS on the login page"
    );
    let cookies: Vec<String> = headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies
            .iter()
            .all(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    let html = login.text().await.unwrap();
    assert!(
        !html.contains("<script>x</script>"),
        "login_hint is escaped"
    );

    let (_, _) = server.token(&[("grant_type", "client_credentials")]).await;
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("Origin", SPA_ORIGIN)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        SPA_ORIGIN,
        "registered origin"
    );
    let evil = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("Origin", "https://evil.example")
        .form(&[("grant_type", "x")])
        .send()
        .await
        .unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/userinfo"))
        .header("Origin", SPA_ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "authorization, auth0-client",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        SPA_ORIGIN
    );
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Auth0-Client")
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_never_a_5xx() {
    let server = spawn().await;
    let client = reqwest::Client::new();
    let token_url = server.url("/oauth/token");
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (
            Some("application/json"),
            "{not json".into(),
            400,
            "invalid_request",
        ),
        (
            Some("text/plain"),
            "grant_type=client_credentials".into(),
            400,
            "invalid_request",
        ),
        (
            None,
            "grant_type=client_credentials".into(),
            400,
            "invalid_request",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "grant_type=urn:example:made-up&client_id=x".into(),
            400,
            "unsupported_grant_type",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "grant_type=password&client_id=x".into(),
            401,
            "invalid_client",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "client_id=x".into(),
            400,
            "invalid_request",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "grant_type=a&grant_type=b&client_id=x".into(),
            400,
            "invalid_request",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}",
                "x".repeat(5000)
            ),
            400,
            "invalid_request",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "grant_type=authorization_code&client_id=x".into(),
            400,
            "invalid_request",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "grant_type=authorization_code&client_id=nobody&code=x&redirect_uri=y".into(),
            401,
            "invalid_client",
        ),
        // No audience and no default one: said only to an application that authenticated.
        (
            Some("application/x-www-form-urlencoded"),
            "grant_type=client_credentials&client_id=nobody&client_secret=x".into(),
            401,
            "invalid_client",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret=wrong",
                server.m2m_client_id
            ),
            401,
            "invalid_client",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                server.m2m_client_id, server.m2m_secret
            ),
            403,
            "access_denied",
        ),
    ];
    for (content_type, body, status, error) in cases {
        let mut request = client.post(&token_url).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let json: Value = response.json().await.unwrap();
        assert_eq!(
            (got, json["error"].as_str().unwrap()),
            (status, error),
            "{content_type:?} {}",
            &body[..body.len().min(80)]
        );
    }
    // A body over the limit.
    let response = client
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=".to_string() + &"x".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());

    // Long state and nonce (600 characters) work; absurd ones are refused with 400.
    let long = "s".repeat(600);
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "token"),
            ("scope", "openid"),
            ("state", &long),
            ("nonce", &long),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(location(&response).starts_with("/u/login"));
    let absurd = "s".repeat(20_000);
    let response = browser()
        .get(server.authorize_url(&[("response_type", "token"), ("state", &absurd)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Userinfo: malformed header 400, bad token 401 with a challenge, missing 401 bare.
    for (header, status) in [
        (Some("Bearer"), 400),
        (Some("Bearer a b"), 400),
        (Some("Basic abc"), 400),
        (Some("Bearer not.a.jwt"), 401),
        (Some("bearer zzz"), 401),
        (None, 401),
    ] {
        let mut request = client.get(server.url("/userinfo"));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{header:?}");
        if status == 401 {
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    // Expired or unknown login transactions get a page.
    let response = browser()
        .get(server.url("/u/login?state=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = browser()
        .post(server.url("/u/login"))
        .form(&[("state", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_id_token_or_code_is_not_an_access_token_at_userinfo() {
    let server = spawn().await;
    let browser = browser();
    let tokens = server
        .code_flow(&browser, "openid profile", Some(API))
        .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (code, _) = fresh_code(&server, &browser, None).await;
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&code)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A token for an API without openid has no userinfo audience.
    let (_, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .await;
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn secrets_are_stored_hashed_or_sealed() {
    let server = spawn().await;
    let browser = browser();
    let (code, _) = fresh_code(&server, &browser, None).await;
    let file = server.store.path().expect("the test server runs on SQLite");
    let db = std::fs::read(file).unwrap();
    let wal = std::fs::read(file.with_extension("db-wal")).unwrap_or_default();
    for haystack in [&db, &wal] {
        for needle in [
            code.as_bytes(),
            server.m2m_secret.as_bytes(),
            PASSWORD.as_bytes(),
            b"PRIVATE KEY",
        ] {
            assert!(
                !haystack.windows(needle.len()).any(|w| w == needle),
                "a secret is stored in clear"
            );
        }
    }
}

#[tokio::test]
async fn login_attempts_are_throttled_per_ip_with_retry_after() {
    let server = spawn_with(|config| config.login_attempts_per_minute = 3).await;
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let browser = browser();
    for _ in 0..3 {
        let response = server
            .submit_login(&browser, &url, "someone@example.com", "not the password")
            .await;
        assert_eq!(response.status(), 401);
    }
    let response = server
        .submit_login(&browser, &url, "demo@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no session while throttled"
    );
}

/// Reads until the server closes the connection (10 s at most); `None` if it stays open.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_all)
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

/// A client that opens a connection and never finishes its request header (slowloris) is
/// disconnected after the header read timeout, and the server keeps answering others.
#[tokio::test]
async fn a_client_that_never_finishes_its_header_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let server = spawn_with(|config| {
        config.header_read_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let address = server.base.trim_start_matches("http://");
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let answered = read_until_closed(&mut slow)
        .await
        .expect("the connection stayed open");
    assert!(
        !answered.contains("200 OK"),
        "an incomplete request was answered"
    );
    let status = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// A browser whose requests arrive through a reverse proxy that says the client is `client`.
fn browser_behind_proxy(client: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Behind a trusted reverse proxy, lockout and throttling follow the client's address from
/// `X-Forwarded-For`: failures from one client neither lock the account for the others nor
/// use up their attempts.
#[tokio::test]
async fn behind_a_trusted_proxy_lockout_and_throttling_follow_the_forwarded_client() {
    let server = spawn_with(|config| {
        config.trusted_proxies = tessera_server::TrustedProxies::parse(["127.0.0.1"]).unwrap();
        config.login_attempts_per_minute = 11;
    })
    .await;
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let attacker = browser_behind_proxy("203.0.113.66");
    for _ in 0..10 {
        let response = server
            .submit_login(&attacker, &url, "demo@example.com", "not the password")
            .await;
        assert_eq!(response.status(), 401);
    }
    let response = server
        .submit_login(&attacker, &url, "demo@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 429, "the attacker's address is blocked");
    // The same account from another client: neither locked nor throttled.
    let user = browser_behind_proxy("198.51.100.7");
    let response = server
        .submit_login(&user, &url, "demo@example.com", PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    // The attacker has used up its own throttle window (11 attempts), not the user's.
    let response = server
        .submit_login(&attacker, &url, "someone@example.com", "x")
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

/// Without trusted proxies, `X-Forwarded-For` is the client's own claim and is ignored:
/// changing it does not escape a lockout.
#[tokio::test]
async fn an_untrusted_forwarded_for_header_does_not_escape_a_lockout() {
    let server = spawn().await;
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    for attempt in 0..10 {
        let claimed = browser_behind_proxy(&format!("203.0.113.{attempt}"));
        let response = server
            .submit_login(&claimed, &url, "demo@example.com", "not the password")
            .await;
        assert_eq!(response.status(), 401);
    }
    let response = server
        .submit_login(
            &browser_behind_proxy("198.51.100.7"),
            &url,
            "demo@example.com",
            PASSWORD,
        )
        .await;
    assert_eq!(response.status(), 429);
}

/// A client that sends its header but dribbles its body (here: stops after 10 of 100 bytes)
/// gets 408 within the request timeout and loses the connection.
#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_408() {
    use tokio::io::AsyncWriteExt;
    let server = spawn_with(|config| {
        config.request_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let address = server.base.trim_start_matches("http://");
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
          grant_type",
    )
    .await
    .unwrap();
    let answered = read_until_closed(&mut slow)
        .await
        .expect("the connection stayed open");
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(answered.contains("not received in time"), "{answered}");
}

/// Login CSRF: a transaction started in browser A cannot be finished in browser B (signed
/// in as the attacker): not at the login page, not at resume, not at the consent page. A
/// refusal is a page, never a redirect with a code, and leaves A's transaction usable.
#[tokio::test]
async fn every_step_of_a_login_transaction_is_bound_to_the_browser_that_started_it() {
    let server = spawn().await;
    let attacker_email = "attacker@example.com";
    create_user(&server.store, attacker_email, PASSWORD).await;
    let attacker = browser();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("code_challenge", &pkce().challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = server
        .submit_login(&attacker, &url, attacker_email, PASSWORD)
        .await;
    assert_eq!(
        response.status(),
        303,
        "the attacker has a session of their own"
    );

    let victim = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("state", "victims-state"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let login = location(&victim.get(&url).send().await.unwrap());
    let transaction = login.split_once("state=").unwrap().1.to_string();
    for path in [
        format!("/authorize/resume?state={transaction}"),
        format!("/u/login?state={transaction}"),
        format!("/u/signup?state={transaction}"),
    ] {
        let response = attacker.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert!(response.headers().get("location").is_none(), "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("could not be verified"), "{path}: {page}");
    }
    // The victim's own transaction still works.
    let response = server
        .submit_login(&victim, &url, &server.user_email, PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    let back = location(
        &victim
            .get(server.url(&location(&response)))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(params_of(&back)["state"], "victims-state");

    // The consent page of a third-party application: the same user in another browser
    // cannot open or answer it.
    let mut partner = client("Partner", tessera_core::AppType::Spa, None);
    partner.is_first_party = false;
    server.store.create_client(&partner).await.unwrap();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &partner.client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let partner_url = format!("{}/authorize?{}", server.base, query.finish());
    let consent = location(&victim.get(&partner_url).send().await.unwrap());
    assert!(consent.starts_with("/u/consent?state="), "{consent}");
    let consent_transaction = consent.split_once("state=").unwrap().1.to_string();
    let other_browser = browser();
    server
        .sign_in(
            &other_browser,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await;
    let response = other_browser
        .get(server.url(&consent))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = other_browser
        .post(server.url("/u/consent"))
        .form(&[
            ("state", consent_transaction.as_str()),
            ("csrf", "A".repeat(43).as_str()),
            ("action", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    let page = victim.get(server.url(&consent)).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the victim's consent page is still there"
    );
}
