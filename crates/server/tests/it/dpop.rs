//! DPoP at the token endpoint (RFC 9449 §5): a proof binds the access token (`cnf.jkt`,
//! `token_type: DPoP`) and a public client's refresh tokens, which then need a proof with
//! the same key; a bad proof is refused before the grant is touched.

use serde_json::Value;
use tessera_jose::Algorithm;
use tessera_testkit::dpop::DpopKey;
use tessera_testkit::*;

/// POSTs `form` to the token endpoint with these `DPoP` headers.
async fn token_with(server: &TestServer, proofs: &[String], form: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(form);
    for proof in proofs {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn endpoint(server: &TestServer) -> String {
    format!("{}oauth/token", server.issuer)
}

async fn refresh_with(server: &TestServer, proofs: &[String], token: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", server.spa_client_id.as_str()),
        ("refresh_token", token),
    ];
    token_with(server, proofs, &form).await
}

#[tokio::test]
async fn a_proof_binds_the_access_token_and_the_public_clients_refresh_token() {
    let server = spawn().await;
    let key = DpopKey::new(Algorithm::Es256);
    let (code, verifier) = server
        .authorization_code(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let proof = key.proof("POST", &endpoint(&server), None);
    let (status, tokens) = token_with(&server, &[proof], &form).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // The bound refresh token needs a proof with the same key; refusals consume nothing.
    let (status, body) = refresh_with(&server, &[], &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let thief = DpopKey::new(Algorithm::Es256);
    let (status, body) = refresh_with(
        &server,
        &[thief.proof("POST", &endpoint(&server), None)],
        &refresh,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, body) = refresh_with(
        &server,
        &[key.proof("POST", &endpoint(&server), None)],
        &refresh,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());

    // The rotated token stays bound.
    let next = body["refresh_token"].as_str().unwrap();
    let (status, body) = refresh_with(&server, &[], next).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
}

#[tokio::test]
async fn without_a_proof_tokens_stay_bearer_and_unbound() {
    let server = spawn().await;
    let tokens = server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert!(claims.get("cnf").is_none());
    // An unbound refresh token may be used with a proof: the new access token is bound.
    let key = DpopKey::new(Algorithm::EdDsa);
    let (status, body) = refresh_with(
        &server,
        &[key.proof("POST", &endpoint(&server), None)],
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn client_credentials_tokens_are_bound_with_a_proof() {
    let server = spawn().await;
    let key = DpopKey::new(Algorithm::Rs256);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", server.m2m_client_id.as_str()),
        ("client_secret", server.m2m_secret.as_str()),
        ("audience", API),
    ];
    let (status, body) = token_with(
        &server,
        &[key.proof("POST", &endpoint(&server), None)],
        &form,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());
}

#[tokio::test]
async fn a_bad_proof_is_refused_before_the_code_is_spent() {
    let server = spawn().await;
    let key = DpopKey::new(Algorithm::Es256);
    let (code, verifier) = server
        .authorization_code(&browser(), "openid", Some(API))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let good = key.proof("POST", &endpoint(&server), None);
    let other_place = key.proof("POST", &server.url("/oauth/revoke"), None);
    let wrong_method = key.proof("GET", &endpoint(&server), None);
    let two = [good.clone(), key.proof("POST", &endpoint(&server), None)];
    for proofs in [vec![other_place], vec![wrong_method], two.to_vec()] {
        let (status, body) = token_with(&server, &proofs, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{body}"
        );
    }
    let (status, body) = token_with(&server, std::slice::from_ref(&good), &form).await;
    assert_eq!(status, 200, "the refusals left the code unspent: {body}");
    // The same proof again is a replay, whatever the grant.
    let m2m = [
        ("grant_type", "client_credentials"),
        ("client_id", server.m2m_client_id.as_str()),
        ("client_secret", server.m2m_secret.as_str()),
        ("audience", API),
    ];
    let (status, body) = token_with(&server, &[good], &m2m).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
}

#[tokio::test]
async fn discovery_and_cors_announce_dpop() {
    let server = spawn().await;
    let http = reqwest::Client::new();
    let document: Value = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = document["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.iter().any(|a| a == "ES256"), "{document}");
    assert!(!algs.iter().any(|a| a == "HS256" || a == "none"));
    let preflight = http
        .request(reqwest::Method::OPTIONS, server.url("/oauth/token"))
        .header("Origin", SPA_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "dpop, content-type")
        .send()
        .await
        .unwrap();
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("dpop"), "{allowed}");
    let response = http
        .post(server.url("/oauth/token"))
        .header("Origin", SPA_ORIGIN)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "x"),
            ("refresh_token", "y"),
        ])
        .send()
        .await
        .unwrap();
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("DPoP-Nonce"), "{exposed}");
}

/// PATCHes the quickstart API through the Management API: (status, body).
async fn patch_api(server: &TestServer, body: Value) -> (u16, Value) {
    let token = server
        .management_token(&["read:resource_servers", "update:resource_servers"])
        .await;
    let id: String = form_urlencoded::byte_serialize(API.as_bytes()).collect();
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/resource-servers/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_api_may_require_dpop_as_auth0s_proof_of_possession() {
    let server = spawn().await;
    let required = serde_json::json!({"mechanism": "dpop", "required": true});
    let (status, api) = patch_api(
        &server,
        serde_json::json!({"proof_of_possession": required}),
    )
    .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["proof_of_possession"], required);

    let m2m = [
        ("grant_type", "client_credentials"),
        ("client_id", server.m2m_client_id.as_str()),
        ("client_secret", server.m2m_secret.as_str()),
        ("audience", API),
    ];
    let (status, body) = token_with(&server, &[], &m2m).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let key = DpopKey::new(Algorithm::Es256);
    let (status, body) = token_with(
        &server,
        &[key.proof("POST", &endpoint(&server), None)],
        &m2m,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");

    // A refresh for the API without a proof is refused before the token rotates.
    let (status, _) = patch_api(&server, serde_json::json!({"proof_of_possession": null})).await;
    assert_eq!(status, 200);
    let tokens = server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    patch_api(
        &server,
        serde_json::json!({"proof_of_possession": required}),
    )
    .await;
    let (status, body) = refresh_with(&server, &[], refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = refresh_with(
        &server,
        &[key.proof("POST", &endpoint(&server), None)],
        refresh,
    )
    .await;
    assert_eq!(
        status, 200,
        "the refusal left the refresh token good: {body}"
    );

    // Only Auth0's shape, with dpop.
    for bad in [
        serde_json::json!({"mechanism": "mtls", "required": true}),
        serde_json::json!({"mechanism": "dpop"}),
        serde_json::json!({"mechanism": "dpop", "required": "yes"}),
        serde_json::json!({"mechanism": "dpop", "required": true, "extra": 1}),
        serde_json::json!(true),
    ] {
        let (status, body) =
            patch_api(&server, serde_json::json!({"proof_of_possession": bad})).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// Like `token_with`, returning the `DPoP-Nonce` header too.
async fn token_with_nonce(
    server: &TestServer,
    proof: &str,
    form: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("DPoP", proof)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_string());
    (status, response.json().await.unwrap(), nonce)
}

#[tokio::test]
async fn required_nonces_are_handed_out_and_checked() {
    let server = spawn_with(|config| config.dpop_nonces = true).await;
    let key = DpopKey::new(Algorithm::Es256);
    let (code, verifier) = server
        .authorization_code(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    // Without a nonce: use_dpop_nonce, the nonce to use, and the code is not spent.
    let (status, body, nonce) =
        token_with_nonce(&server, &key.proof("POST", &endpoint(&server), None), &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let nonce = nonce.expect("a DPoP-Nonce header");

    // A nonce that is not ours, or an old one's shape with a forged MAC: refused alike.
    for forged in [
        "made-up",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let mut claims = key.claims("POST", &endpoint(&server), None);
        claims["nonce"] = forged.into();
        let (status, body, _) =
            token_with_nonce(&server, &key.sign(&key.header(), &claims), &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("use_dpop_nonce")),
            "{forged}"
        );
    }

    let mut claims = key.claims("POST", &endpoint(&server), None);
    claims["nonce"] = nonce.as_str().into();
    let (status, tokens, next) =
        token_with_nonce(&server, &key.sign(&key.header(), &claims), &form).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    assert!(next.is_some(), "a success carries the nonce to use next");

    // The refresh needs a nonce too; the same nonce serves several proofs in its window.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("client_id", server.spa_client_id.as_str()),
        ("refresh_token", refresh),
    ];
    let (status, body, _) = token_with_nonce(
        &server,
        &key.proof("POST", &endpoint(&server), None),
        &refresh_form,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let mut claims = key.claims("POST", &endpoint(&server), None);
    claims["nonce"] = nonce.as_str().into();
    let (status, body, _) =
        token_with_nonce(&server, &key.sign(&key.header(), &claims), &refresh_form).await;
    assert_eq!(status, 200, "{body}");

    // A request without DPoP is not asked for a nonce, and gets none.
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("dpop-nonce").is_none());
}

/// A code from `/authorize` with these extra parameters (signed in on `browser`), and its
/// PKCE verifier; or where the browser was sent instead.
async fn code_with(
    server: &TestServer,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
) -> (Option<String>, String, String) {
    let pkce = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let back = server
        .sign_in(browser, &server.authorize_url(&params))
        .await;
    (params_of(&back).get("code").cloned(), pkce.verifier, back)
}

fn exchange_form<'a>(
    server: &'a TestServer,
    code: &'a str,
    verifier: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_a_key() {
    let server = spawn().await;
    let browser = browser();
    let key = DpopKey::new(Algorithm::Es256);
    let other = DpopKey::new(Algorithm::Es256);
    let jkt = key.jkt();

    // Without a proof, or with another key: refused (the code is spent, as with PKCE).
    for proof in [None, Some(other.proof("POST", &endpoint(&server), None))] {
        let (code, verifier, back) = code_with(&server, &browser, &[("dpop_jkt", &jkt)]).await;
        let code = code.unwrap_or_else(|| panic!("a code: {back}"));
        let proofs: Vec<String> = proof.into_iter().collect();
        let (status, body) =
            token_with(&server, &proofs, &exchange_form(&server, &code, &verifier)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }
    let (code, verifier, _) = code_with(&server, &browser, &[("dpop_jkt", &jkt)]).await;
    let code = code.unwrap();
    let (status, tokens) = token_with(
        &server,
        &[key.proof("POST", &endpoint(&server), None)],
        &exchange_form(&server, &code, &verifier),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["cnf"]["jkt"], jkt.as_str());

    // Not a thumbprint, or for a response without a code: invalid_request at the callback.
    for (extra, why) in [
        (vec![("dpop_jkt", "short")], "length"),
        (vec![("dpop_jkt", &"+".repeat(43)[..])], "alphabet"),
    ] {
        let (code, _, back) = code_with(&server, &browser, &extra).await;
        assert!(code.is_none(), "{why}: {back}");
        assert_eq!(
            params_of(&back)["error"],
            "invalid_request",
            "{why}: {back}"
        );
    }
}

#[tokio::test]
async fn a_proof_at_the_pushed_request_endpoint_binds_the_code() {
    let server = spawn().await;
    let key = DpopKey::new(Algorithm::Es256);
    let other = DpopKey::new(Algorithm::Es256);
    let par = format!("{}oauth/par", server.issuer);
    let pkce = pkce();
    let spa = server.spa_client_id.clone();
    let request = [
        ("client_id", spa.as_str()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let push = |proof: String, extra: Option<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> =
            request.iter().map(|(k, v)| (*k, v.to_string())).collect();
        form.extend(extra);
        let url = server.url("/oauth/par");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("DPoP", proof)
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // dpop_jkt naming another key than the proof's: refused.
    let (status, body) = push(
        key.proof("POST", &par, None),
        Some(("dpop_jkt", other.jkt())),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // A proof for the token endpoint is not one for this endpoint.
    let (status, body) = push(key.proof("POST", &endpoint(&server), None), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );

    let (status, pushed) = push(key.proof("POST", &par, None), None).await;
    assert_eq!(status, 201, "{pushed}");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &spa)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    // A request_uri works once: the login page is followed by hand, not by a helper that
    // would open /authorize again.
    let browser = browser();
    let response = browser
        .get(format!("{}/authorize?{}", server.base, query.finish()))
        .send()
        .await
        .unwrap();
    let login = location(&response);
    let email = server.user_email.clone();
    let signed_in = submit_login_form(&browser, &server.base, &login, &email, PASSWORD).await;
    let resumed = browser
        .get(server.url(&location(&signed_in)))
        .send()
        .await
        .unwrap();
    let back = location(&resumed);
    let code = params_of(&back)["code"].clone();
    let form = exchange_form(&server, &code, &pkce.verifier);
    let (status, body) = token_with(
        &server,
        &[other.proof("POST", &endpoint(&server), None)],
        &form,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}
