//! The grants and response types, end to end over real HTTP.

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_testkit::*;

#[tokio::test]
async fn discovery_documents_describe_the_server() {
    let server = spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], json!(server.issuer));
        assert!(server.issuer.ends_with('/'));
        assert_eq!(
            doc["jwks_uri"],
            json!(format!("{}.well-known/jwks.json", server.issuer))
        );
        assert_eq!(
            doc["token_endpoint"],
            json!(format!("{}oauth/token", server.issuer))
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert!(
            doc["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("RS256"))
        );
        assert!(
            doc["response_modes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("web_message"))
        );
        assert_eq!(
            doc["authorization_response_iss_parameter_supported"],
            json!(true)
        );
    }
}

/// What Auth0 publishes by default: the RS256 keys (current first, then next), each with
/// a self-signed certificate holding it (`x5c`) and that certificate's SHA-1 thumbprint
/// (`x5t`); no key of an algorithm no API uses.
#[tokio::test]
async fn jwks_publishes_the_rs256_keys_with_their_certificates() {
    let server = spawn().await;
    let response = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "current + next RS256: {jwks}");
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private members"
        );
        let jwk: tessera_jose::Jwk = serde_json::from_value(key.clone()).unwrap();
        assert_eq!(key["kid"], json!(tessera_jose::thumbprint(&jwk)));

        let chain = key["x5c"].as_array().unwrap();
        assert_eq!(chain.len(), 1, "one self-signed certificate");
        let der = base64::engine::general_purpose::STANDARD
            .decode(chain[0].as_str().unwrap())
            .unwrap();
        let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(certificate.subject(), certificate.issuer(), "self-signed");
        let x509_parser::public_key::PublicKey::RSA(rsa) =
            certificate.public_key().parsed().unwrap()
        else {
            panic!("an RSA certificate");
        };
        let unsigned = |b64: &Value| {
            let bytes = tessera_jose::b64_decode(b64.as_str().unwrap()).unwrap();
            bytes
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect::<Vec<u8>>()
        };
        let strip = |bytes: &[u8]| {
            bytes
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect::<Vec<u8>>()
        };
        assert_eq!(strip(rsa.modulus), unsigned(&key["n"]), "the JWK's modulus");
        assert_eq!(
            strip(rsa.exponent),
            unsigned(&key["e"]),
            "the JWK's exponent"
        );
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        assert_eq!(
            key["x5t"],
            json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1.as_ref()))
        );
    }
    // The same bytes on every read: the certificate is derived, not random.
    let again: Value = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, jwks);
}

/// ES256 keys are published while an API signs with ES256: at once on the node that
/// changed the API, by the next poll elsewhere (here: an API written straight to the
/// store, as the CLI or another node would).
#[tokio::test]
async fn an_algorithm_is_published_while_an_api_signs_with_it() {
    let server = spawn().await;
    let algorithms = |jwks: &Value| -> Vec<String> {
        let mut seen: Vec<String> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["alg"].as_str().unwrap().to_string())
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    let jwks = || async {
        reqwest::get(server.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let admin = server
        .management_token(&[
            "create:resource_servers",
            "update:resource_servers",
            "delete:resource_servers",
        ])
        .await;
    let http = reqwest::Client::new();
    let response = http
        .post(server.url("/api/v2/resource-servers"))
        .bearer_auth(&admin)
        .json(&json!({"identifier": "https://es256.example/", "signing_alg": "ES256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        algorithms(&jwks().await),
        ["ES256", "RS256"],
        "published at once"
    );
    // Discovery names it too: verifiers such as express-oauth2-jwt-bearer accept on access
    // tokens the algorithms it lists.
    let discovery = || async {
        reqwest::get(server.url("/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["id_token_signing_alg_values_supported"]
            .clone()
    };
    assert_eq!(discovery().await, json!(["RS256", "ES256"]));

    // A token of that API verifies against what is published.
    server
        .store
        .create_client_grant(&tessera_core::ClientGrant {
            id: "cgr_es256".into(),
            client_id: server.m2m_client_id.clone(),
            audience: "https://es256.example/".into(),
            scope: vec![],
            created_at: now(),
        })
        .await
        .unwrap();
    let (status, body) = client_credentials(
        &http,
        &server.base,
        &server.m2m_client_id,
        &server.m2m_secret,
        "https://es256.example/",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    server.verify(token, "https://es256.example/").await;

    let response = http
        .patch(server.url(&format!(
            "/api/v2/resource-servers/{}",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(&admin)
        .json(&json!({"signing_alg": "RS256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        algorithms(&jwks().await),
        ["RS256"],
        "no API signs with ES256 now"
    );
    assert_eq!(discovery().await, json!(["RS256"]));

    // Written where this node does not see it: published by the next poll.
    let mut eddsa = api("https://eddsa.example/", &[]);
    eddsa.signing_alg = "EdDSA".into();
    server.store.create_resource_server(&eddsa).await.unwrap();
    let mut polls = 0;
    while algorithms(&jwks().await) != ["EdDSA", "RS256"] {
        polls += 1;
        assert!(polls < 100, "EdDSA keys never published: {}", jwks().await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_issues_verifiable_tokens() {
    let server = spawn().await;
    let browser = browser();
    let tokens = server
        .code_flow(
            &browser,
            "openid profile email read:messages delete:all",
            Some(API),
        )
        .await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email read:messages");
    assert_eq!(tokens["expires_in"], 86_400);

    let access = tokens["access_token"].as_str().unwrap();
    let claims = server.verify(access, API).await;
    assert_eq!(claims["sub"], json!(server.user_id));
    assert_eq!(
        claims["aud"],
        json!([API, format!("{}userinfo", server.issuer)])
    );
    assert_eq!(claims["azp"], json!(server.spa_client_id));
    assert_eq!(claims["scope"], "openid profile email read:messages");
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));

    let id_token = tokens["id_token"].as_str().unwrap();
    let id = server.verify(id_token, &server.spa_client_id).await;
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["sub"], json!(server.user_id));
    assert_eq!(id["email"], "demo@example.com");
    assert_eq!(id["nickname"], "demo");
    assert_eq!(id["at_hash"], json!(tessera_core::claims::at_hash(access)));
    assert!(id["auth_time"].as_i64().unwrap() <= now());
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));

    let info: Value = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], json!(server.user_id));
    assert_eq!(info["nickname"], "demo");
    assert_eq!(info["email_verified"], true);
}

#[tokio::test]
async fn without_audience_the_access_token_is_opaque_and_good_at_userinfo() {
    let server = spawn().await;
    let tokens = server.code_flow(&browser(), "openid profile", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(access.matches('.').count(), 0, "opaque");
    let response = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["sub"], json!(server.user_id));
    assert!(info.get("email").is_none(), "email scope was not granted");
}

#[tokio::test]
async fn implicit_token_id_token_in_the_fragment() {
    let server = spawn().await;
    let state = "a+b/c=d".repeat(3);
    let url = server.authorize_url(&[
        ("response_type", "token id_token"),
        ("scope", "openid profile read:messages"),
        ("audience", API),
        ("state", &state),
        ("nonce", "abc"),
        ("auth0Client", "eyJuYW1lIjoiYXV0aDAuanMifQ=="),
    ]);
    let back = server.sign_in(&browser(), &url).await;
    assert!(back.starts_with(&format!("{CALLBACK}#")), "{back}");
    let params = params_of(&back);
    assert_eq!(params["state"], state, "state is echoed byte for byte");
    assert_eq!(params["token_type"], "Bearer");
    assert_eq!(params["scope"], "openid profile read:messages");
    assert_eq!(params["iss"], server.issuer);
    let access = &params["access_token"];
    server.verify(access, API).await;
    let id = server
        .verify(&params["id_token"], &server.spa_client_id)
        .await;
    assert_eq!(id["nonce"], "abc");
    assert_eq!(id["at_hash"], json!(tessera_core::claims::at_hash(access)));
}

#[tokio::test]
async fn id_token_only_and_nonce_is_required() {
    let server = spawn().await;
    let browser = browser();
    let back = server
        .sign_in(
            &browser,
            &server.authorize_url(&[
                ("response_type", "id_token"),
                ("scope", "openid"),
                ("nonce", "n"),
            ]),
        )
        .await;
    let params = params_of(&back);
    assert!(params.contains_key("id_token") && !params.contains_key("access_token"));
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "id_token"),
            ("scope", "openid"),
            ("state", "s"),
        ]))
        .send()
        .await
        .unwrap();
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "s");
}

#[tokio::test]
async fn a_second_authorize_signs_in_silently_and_prompt_none_without_session_fails() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", Some(API)).await;
    let pkce = pkce();
    let silent = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "none"),
        ("state", "x"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&silent).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let params = params_of(&location(&response));
    assert!(
        params.contains_key("code"),
        "silent authentication returns a code: {params:?}"
    );

    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = stranger.get(&silent).send().await.unwrap();
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "x");

    // prompt=login forces the login page even with a session.
    let forced = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "login"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&forced).send().await.unwrap();
    assert!(location(&response).starts_with("/u/login"));
}

#[tokio::test]
async fn max_age_forces_a_fresh_login_and_auth_time_is_reported() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let url = server.authorize_url(&[
        ("response_type", "id_token"),
        ("scope", "openid"),
        ("nonce", "n"),
        ("max_age", "0"),
        ("prompt", "none"),
    ]);
    let params = params_of(&location(&browser.get(&url).send().await.unwrap()));
    assert_eq!(params["error"], "login_required");
    let url = server.authorize_url(&[
        ("response_type", "id_token"),
        ("scope", "openid"),
        ("nonce", "n"),
        ("max_age", "3600"),
    ]);
    let params = params_of(&location(&browser.get(&url).send().await.unwrap()));
    let id = server
        .verify(&params["id_token"], &server.spa_client_id)
        .await;
    assert!(now() - id["auth_time"].as_i64().unwrap() <= 3600);
}

#[tokio::test]
async fn form_post_and_web_message_response_modes() {
    let server = spawn().await;
    let browser = browser();
    server.code_flow(&browser, "openid", None).await;
    let url = server.authorize_url(&[
        ("response_type", "token id_token"),
        ("response_mode", "form_post"),
        ("scope", "openid"),
        ("nonce", "n"),
        ("state", "<script>alert(1)</script>"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")));
    assert!(html.contains("name=\"id_token\""));
    assert!(
        !html.contains("<script>alert(1)</script>"),
        "state is escaped"
    );

    let url = format!(
        "{}/authorize?{}",
        server.base,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &server.spa_client_id)
            .append_pair("redirect_uri", SPA_ORIGIN)
            .append_pair("response_type", "token id_token")
            .append_pair("response_mode", "web_message")
            .append_pair("prompt", "none")
            .append_pair("scope", "openid")
            .append_pair("nonce", "n")
            .append_pair("state", "s1")
            .finish()
    );
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("frame-ancestors {SPA_ORIGIN}")),
        "{csp}"
    );
    assert!(response.headers().get("x-frame-options").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("data-origin=\"{SPA_ORIGIN}\"")));
    assert!(html.contains("/static/web_message.js"));
    assert!(html.contains("id_token"));

    // Without a session: the error travels the same way.
    let stranger = reqwest::Client::new();
    let html = stranger
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("login_required"));
}

fn authorize_for(
    server: &TestServer,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri);
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    format!("{}/authorize?{}", server.base, query.finish())
}

/// RFC 8252: a native app's private-use scheme callback (§7.1) and its loopback IP
/// callback on whatever port it listens (§7.3) both log in; the port varies for native
/// apps only, and only on an IP literal.
#[tokio::test]
async fn native_apps_log_in_with_private_use_schemes_and_any_loopback_port() {
    let server = spawn().await;
    let mut native = client("Native", tessera_core::AppType::Native, None);
    native.callbacks = vec![
        "com.example.app:/callback".into(),
        "http://127.0.0.1/callback".into(),
        "http://localhost/callback".into(),
    ];
    server.store.create_client(&native).await.unwrap();
    let browser = browser();
    for redirect_uri in [
        "com.example.app:/callback",
        "http://127.0.0.1:51004/callback",
        "http://127.0.0.1/callback",
    ] {
        let pkce = pkce();
        let url = authorize_for(
            &server,
            &native.client_id,
            redirect_uri,
            &[
                ("response_type", "code"),
                ("state", "st"),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let back = server.sign_in(&browser, &url).await;
        assert!(back.starts_with(&format!("{redirect_uri}?code=")), "{back}");
        let params = params_of(&back);
        assert_eq!(params["state"], "st");
        let (status, body) = server
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", &native.client_id),
                ("code", &params["code"]),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &pkce.verifier),
            ])
            .await;
        assert_eq!(status, 200, "{redirect_uri}: {body}");
    }

    // The login form may lead to the app's scheme (CSP form-action applies to redirects).
    let pkce = pkce();
    let url = authorize_for(
        &server,
        &native.client_id,
        "com.example.app:/callback",
        &[
            ("response_type", "code"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let stranger = tessera_testkit::browser();
    let login = location(&stranger.get(&url).send().await.unwrap());
    let page = stranger.get(server.url(&login)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' com.example.app:;"),
        "{csp}"
    );

    // form_post and web_message need an http(s) origin: a page, not a redirect.
    for mode in ["form_post", "web_message"] {
        let url = authorize_for(
            &server,
            &native.client_id,
            "com.example.app:/callback",
            &[("response_type", "code"), ("response_mode", mode)],
        );
        let response = browser.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{mode}");
        assert!(response.headers().get("location").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("need an http(s) redirect_uri"), "{page}");
    }

    // localhost is no IP literal: its port is compared. Other app types: every port is.
    let mut spa = client("Loopback SPA", tessera_core::AppType::Spa, None);
    spa.callbacks = vec!["http://127.0.0.1/callback".into()];
    server.store.create_client(&spa).await.unwrap();
    for (client_id, redirect_uri) in [
        (&native.client_id, "http://localhost:51004/callback"),
        (&native.client_id, "http://127.0.0.1:51004/callback/"),
        (&native.client_id, "com.example.app:/callback/"),
        (&spa.client_id, "http://127.0.0.1:51004/callback"),
    ] {
        let url = authorize_for(
            &server,
            client_id,
            redirect_uri,
            &[("response_type", "code")],
        );
        let response = browser.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{redirect_uri}");
        assert!(response.headers().get("location").is_none());
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Callback URL mismatch")
        );
    }
}

#[tokio::test]
async fn client_credentials_for_a_granted_api() {
    let server = spawn().await;
    let (status, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:messages");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(
        claims["sub"],
        json!(format!("{}@clients", server.m2m_client_id))
    );
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["aud"], API);

    // HTTP Basic and a JSON body work too.
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth(&server.m2m_client_id, Some(&server.m2m_secret))
        .json(
            &json!({"grant_type": "client_credentials", "audience": API, "scope": "read:messages"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn client_credentials_refusals() {
    let server = spawn().await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("client_secret", "wrong"), ("audience", API)],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("client_secret", &server.m2m_secret),
                ("audience", "https://unknown/api"),
            ],
            403,
            "access_denied",
        ),
        (
            vec![("client_secret", &server.m2m_secret)],
            403,
            "access_denied",
        ),
        (
            vec![
                ("client_secret", &server.m2m_secret),
                ("audience", API),
                ("scope", "write:messages"),
            ],
            403,
            "access_denied",
        ),
    ];
    for (extra, status, error) in cases {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", server.m2m_client_id.as_str()),
        ];
        form.extend(extra.iter().copied());
        let (got, body) = server.token(&form).await;
        assert_eq!(
            (got, body["error"].as_str().unwrap()),
            (status, error),
            "{form:?} → {body}"
        );
    }
    // An API without a grant for this client.
    server
        .store
        .create_resource_server(&api("https://other/api", &["x"]))
        .await
        .unwrap();
    let (status, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", "https://other/api"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "access_denied")
    );
    // A SPA cannot use client credentials.
    let (status, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.spa_client_id),
            ("audience", API),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "unauthorized_client")
    );
    // An unknown client.
    let (status, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", "x"),
            ("audience", API),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
}

#[tokio::test]
async fn signup_creates_the_account_and_signs_in() {
    let server = spawn().await;
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid email"),
        ("screen_hint", "signup"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    let signup = server.url(&location(&response));
    assert!(signup.contains("/u/signup"));
    let page = browser
        .get(&signup)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let state = hidden_field(&page, "state");
    let csrf = hidden_field(&page, "csrf");
    let weak = browser
        .post(server.url("/u/signup"))
        .form(&[
            ("state", state.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "new@example.com"),
            ("password", "password1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 400);
    assert!(weak.text().await.unwrap().contains("too common"));
    let response = browser
        .post(server.url("/u/signup"))
        .form(&[
            ("state", state.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "New@Example.com"),
            ("password", "a long and unusual passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let response = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap();
    let code = params_of(&location(&response))["code"].clone();
    let (status, tokens) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.spa_client_id),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(status, 200);
    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    assert_eq!(id["email"], "new@example.com");
    assert!(
        server
            .store
            .find_user_by_email("new@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn signup_refuses_addresses_with_markup_and_creates_nobody() {
    let server = spawn().await;
    let browser = browser();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid email"),
        ("screen_hint", "signup"),
        ("code_challenge", &pkce().challenge),
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
    let before = server
        .store
        .list_users(
            &tessera_store::UserSearch::default(),
            tessera_store::Slice::first(1000),
        )
        .await
        .unwrap()
        .items
        .len();
    for email in [
        "<script>alert(1)</script>@test.example",
        "\"<b>\"@example.com",
        "jane@[127.0.0.1]",
    ] {
        let response = browser
            .post(server.url("/u/signup"))
            .form(&[
                ("state", state.as_str()),
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", "a long and unusual passphrase"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{email}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Enter a valid email address."), "{email}");
        assert!(!page.contains("<script>alert"), "the address is escaped");
    }
    assert_eq!(
        server
            .store
            .list_users(
                &tessera_store::UserSearch::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .len(),
        before
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_returns_only_to_allowed_urls() {
    let server = spawn().await;
    let browser = browser();
    let tokens = server.code_flow(&browser, "openid", None).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();

    let disallowed = browser
        .get(server.url(&format!(
            "/v2/logout?client_id={}&returnTo=https%3A%2F%2Fevil.example%2F",
            server.spa_client_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(disallowed.status(), 400);
    assert!(
        disallowed.headers().get("location").is_none(),
        "no open redirect"
    );

    let _ = server.code_flow(&browser, "openid", None).await;
    let response = browser
        .get(server.url(&format!(
            "/v2/logout?client_id={}&returnTo=http%3A%2F%2Flocalhost%3A3000",
            server.spa_client_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), SPA_ORIGIN);
    let pkce = pkce();
    let silent = server.authorize_url(&[
        ("response_type", "code"),
        ("prompt", "none"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let params = params_of(&location(&browser.get(&silent).send().await.unwrap()));
    assert_eq!(params["error"], "login_required", "the session is gone");

    // RP-initiated logout with id_token_hint, state passed back.
    let _ = server.code_flow(&browser, "openid", None).await;
    let url = format!(
        "{}/oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=xyz",
        server.base, "http%3A%2F%2Flocalhost%3A3000%2Flogged-out"
    );
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(
        location(&response),
        "http://localhost:3000/logged-out?state=xyz"
    );
    let tampered = format!(
        "{}/oidc/logout?client_id={}&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Flogged-out%2Fx",
        server.base, server.spa_client_id
    );
    let response = browser.get(&tampered).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn changes_made_in_the_store_are_seen_at_once_and_rotations_within_a_second() {
    let server = spawn().await;
    // A new application registered while the server runs is usable immediately.
    let other = client("Later app", tessera_core::AppType::Spa, None);
    server.store.create_client(&other).await.unwrap();
    let response = browser()
        .get(format!(
            "{}/authorize?client_id={}&redirect_uri={}&response_type=code&code_challenge={}&code_challenge_method=S256",
            server.base,
            other.client_id,
            "http%3A%2F%2Flocalhost%3A3000%2Fcallback",
            pkce().challenge
        ))
        .send()
        .await
        .unwrap();
    assert!(location(&response).starts_with("/u/login"));

    // A rotation made by another process (the CLI): the old next key becomes current,
    // the server notices without a restart, and new tokens are signed with it.
    let before = server.jwks().await;
    // RS256 keys are listed current first, then next.
    let rsa_kids: Vec<String> = before
        .keys
        .iter()
        .filter(|k| {
            matches!(
                k.common.key_algorithm,
                Some(jsonwebtoken::jwk::KeyAlgorithm::RS256)
            )
        })
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(rsa_kids.len(), 2);
    let next_kid = rsa_kids[1].clone();
    let new_next = tessera_server::keys::rotate(
        &server.store,
        &server.master_key,
        tessera_jose::Algorithm::Rs256,
        now(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let jwks = server.jwks().await;
        let kids: Vec<String> = jwks
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        if kids.first() == Some(&next_kid) && kids.contains(&new_next) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not visible: {kids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, body) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().kid.as_deref(),
        Some(next_kid.as_str())
    );
    server.verify(token, API).await;
}

#[tokio::test]
async fn access_token_dialects_shape_the_token() {
    let server = spawn().await;
    for (dialect, typ, has_permissions, has_jti) in [
        (tessera_core::TokenDialect::AccessToken, "JWT", false, false),
        (
            tessera_core::TokenDialect::AccessTokenAuthz,
            "JWT",
            true,
            false,
        ),
        (
            tessera_core::TokenDialect::Rfc9068Profile,
            "at+jwt",
            false,
            true,
        ),
        (
            tessera_core::TokenDialect::Rfc9068ProfileAuthz,
            "at+jwt",
            true,
            true,
        ),
    ] {
        let update = tessera_store::ResourceServerUpdate {
            token_dialect: Some(dialect),
            ..Default::default()
        };
        let api = server
            .store
            .find_resource_server(API)
            .await
            .unwrap()
            .unwrap();
        server
            .store
            .update_resource_server(&api.id, &update, now())
            .await
            .unwrap();
        // The client-credentials cache holds API settings for half a second.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let (status, body) = server
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &server.m2m_client_id),
                ("client_secret", &server.m2m_secret),
                ("audience", API),
            ])
            .await;
        assert_eq!(status, 200);
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(token).unwrap().typ.as_deref(),
            Some(typ),
            "{dialect:?}"
        );
        let claims = server.verify(token, API).await;
        assert_eq!(
            claims.get("permissions").is_some(),
            has_permissions,
            "{dialect:?}"
        );
        if has_permissions {
            assert_eq!(claims["permissions"], json!(["read:messages"]));
        }
        assert_eq!(
            claims.get("jti").is_some() && claims.get("client_id").is_some(),
            has_jti,
            "{dialect:?}"
        );
    }
}

/// The API of a request deleted while the user signs in: the request is refused where it
/// is when that is noticed (`access_denied` at the resume, as at /authorize), never turned
/// into a token without an audience. Before the one audience policy, resume went on with
/// no API and the application got a code for an opaque token.
#[tokio::test]
async fn an_api_deleted_during_login_is_access_denied_at_the_resume() {
    let server = spawn().await;
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("state", "s-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let api = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .expect("the quickstart API");
    let response = server
        .submit_login(&browser, &url, &server.user_email.clone(), PASSWORD)
        .await;
    assert_eq!(response.status(), 303, "signed in");
    server.store.delete_resource_server(&api.id).await.unwrap();
    let resumed = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 302);
    let back = location(&resumed);
    assert!(back.starts_with(CALLBACK), "{back}");
    let params = params_of(&back);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert!(
        params["error_description"].contains(API),
        "{}",
        params["error_description"]
    );
    assert_eq!(params.get("state").map(String::as_str), Some("s-1"));
    assert!(!params.contains_key("code"), "no code: {back}");
}
