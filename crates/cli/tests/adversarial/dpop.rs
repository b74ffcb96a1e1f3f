//! DPoP (RFC 9449) against a hostile client at the token endpoint: proofs with `alg: none`
//! and HS256, a private key in `jwk`, signed by another key than the one carried, for
//! another method or URL, stale or from the future, replayed, two at once, 100 KB; a bound
//! refresh token used without a proof or with another key. Each is refused with
//! `invalid_dpop_proof` and the code or refresh token is still good afterwards.

use serde_json::{Value, json};
use tessera_jose::{Algorithm, b64};
use tessera_testkit::dpop::DpopKey;
use tessera_testkit::*;

use crate::harness::Tally;

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

fn refused(tally: &mut Tally, case: &str, (status, body): (u16, Value)) {
    tally.case(
        case,
        status == 400 && body["error"] == "invalid_dpop_proof",
        format_args!("{status} {body}"),
    );
}

#[tokio::test]
async fn hostile_proofs_at_the_token_endpoint_change_nothing() {
    let mut tally = Tally::new("dpop/token");
    let server = spawn().await;
    let endpoint = format!("{}oauth/token", server.issuer);
    let key = DpopKey::new(Algorithm::Es256);
    let other = DpopKey::new(Algorithm::Es256);
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
    let claims = || key.claims("POST", &endpoint, None);
    let jwk = serde_json::to_value(key.key.public_jwk()).unwrap();

    for alg in ["none", "HS256"] {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let unsigned = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes()),
            b64(b"signature")
        );
        refused(
            &mut tally,
            &format!("alg {alg}"),
            token_with(&server, &[unsigned], &form).await,
        );
    }
    let mut private = jwk.clone();
    private["d"] = json!(b64(&[7u8; 32]));
    let leaked = key.sign(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
        &claims(),
    );
    refused(
        &mut tally,
        "a private key in jwk",
        token_with(&server, &[leaked], &form).await,
    );
    let carried = serde_json::to_value(other.key.public_jwk()).unwrap();
    let swapped = key.sign(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": carried}),
        &claims(),
    );
    refused(
        &mut tally,
        "signed by another key than the jwk it carries",
        token_with(&server, &[swapped], &form).await,
    );
    let untyped = key.sign(
        &json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}),
        &claims(),
    );
    refused(
        &mut tally,
        "typ JWT",
        token_with(&server, &[untyped], &form).await,
    );
    refused(
        &mut tally,
        "htm GET",
        token_with(&server, &[key.proof("GET", &endpoint, None)], &form).await,
    );
    refused(
        &mut tally,
        "htu of another endpoint",
        token_with(
            &server,
            &[key.proof("POST", &server.url("/userinfo"), None)],
            &form,
        )
        .await,
    );
    refused(
        &mut tally,
        "htu of another host",
        token_with(
            &server,
            &[key.proof("POST", "https://evil.example/oauth/token", None)],
            &form,
        )
        .await,
    );
    for (case, iat) in [
        ("iat 5 minutes old", now() - 300),
        ("iat 5 minutes ahead", now() + 300),
    ] {
        let mut c = claims();
        c["iat"] = json!(iat);
        refused(
            &mut tally,
            case,
            token_with(&server, &[key.sign(&key.header(), &c)], &form).await,
        );
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("jti");
    refused(
        &mut tally,
        "no jti",
        token_with(&server, &[key.sign(&key.header(), &c)], &form).await,
    );
    let two = [
        key.proof("POST", &endpoint, None),
        key.proof("POST", &endpoint, None),
    ];
    refused(
        &mut tally,
        "two DPoP headers",
        token_with(&server, &two, &form).await,
    );
    let mut c = claims();
    c["pad"] = json!("A".repeat(100 * 1024));
    refused(
        &mut tally,
        "a 100 KB proof",
        token_with(&server, &[key.sign(&key.header(), &c)], &form).await,
    );

    // The code survived every refusal; its proof cannot be used twice.
    let good = key.proof("POST", &endpoint, None);
    let (status, tokens) = token_with(&server, std::slice::from_ref(&good), &form).await;
    tally.case(
        "the code still redeems with a good proof, bound",
        status == 200 && tokens["token_type"] == "DPoP",
        format_args!("{status} {tokens}"),
    );
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("client_id", server.spa_client_id.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    refused(
        &mut tally,
        "a replayed proof (jti seen)",
        token_with(&server, &[good], &refresh_form).await,
    );
    refused(
        &mut tally,
        "the bound refresh token without a proof",
        token_with(&server, &[], &refresh_form).await,
    );
    refused(
        &mut tally,
        "the bound refresh token with another key",
        token_with(
            &server,
            &[other.proof("POST", &endpoint, None)],
            &refresh_form,
        )
        .await,
    );
    let (status, body) = token_with(
        &server,
        &[key.proof("POST", &endpoint, None)],
        &refresh_form,
    )
    .await;
    tally.case(
        "the refresh token still works with its key",
        status == 200 && body["token_type"] == "DPoP",
        format_args!("{status} {body}"),
    );
    tally.finish();
}

/// Counts the requests that got through.
async fn counting_app(calls: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> axum::Router {
    axum::Router::new().fallback(move || {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "reached"
        }
    })
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn hostile_proofs_at_resource_servers_reach_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut tally = Tally::new("dpop/resource");
    let server = spawn().await;
    let key = DpopKey::new(Algorithm::Es256);
    let thief = DpopKey::new(Algorithm::Es256);
    let endpoint = format!("{}oauth/token", server.issuer);
    let m2m = [
        ("grant_type", "client_credentials"),
        ("client_id", server.m2m_client_id.as_str()),
        ("client_secret", server.m2m_secret.as_str()),
        ("audience", API),
    ];
    let (_, body) = token_with(&server, &[key.proof("POST", &endpoint, None)], &m2m).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let (_, body) = token_with(&server, &[], &m2m).await;
    let bearer = body["access_token"].as_str().unwrap().to_string();
    let guard = tessera_guard::Guard::builder()
        .issuer(&server.issuer)
        .audience(API)
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap();

    // The guard's layer in front of an app, and `tessera proxy` in front of another.
    let app_calls = Arc::new(AtomicUsize::new(0));
    let guarded = serve(counting_app(app_calls.clone()).await.layer(guard.layer())).await;
    let upstream_calls = Arc::new(AtomicUsize::new(0));
    let upstream = serve(counting_app(upstream_calls.clone()).await).await;
    let config = tessera_proxy::ProxyConfig {
        guard: guard.clone(),
        upstream: tessera_proxy::Upstream::parse(&upstream).unwrap(),
        rules: tessera_proxy::RouteRules::new(),
        upstream_timeout: tessera_proxy::DEFAULT_UPSTREAM_TIMEOUT,
        strip_authorization: false,
        trusted_proxies: tessera_proxy::TrustedProxies::default(),
        tls: None,
    };
    let proxy = tessera_proxy::Proxy::bind(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let proxied = format!("http://{}", proxy.local_addr());
    tokio::spawn(proxy.run_until_stopped(std::future::pending()));

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (name, base, calls) in [
        ("guard", guarded, app_calls),
        ("proxy", proxied, upstream_calls),
    ] {
        let url = format!("{base}/api/private");
        let send = |scheme: &'static str, token: String, proofs: Vec<String>| {
            let mut request = http
                .get(&url)
                .header("Authorization", format!("{scheme} {token}"));
            for proof in proofs {
                request = request.header("DPoP", proof);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap_or("").to_string())
                    .unwrap_or_default();
                (status, challenge)
            }
        };
        let good = key.proof("GET", &url, Some(&token));
        let (status, _) = send("DPoP", token.clone(), vec![good.clone()]).await;
        tally.status(
            format_args!("{name}: the bound token with its proof"),
            status,
            200,
        );
        let mut huge = key.claims("GET", &url, Some(&token));
        huge["pad"] = json!("A".repeat(100 * 1024));
        let (status, _) = send("DPoP", token.clone(), vec![key.sign(&key.header(), &huge)]).await;
        tally.case(
            format_args!("{name}: a 100 KB proof"),
            matches!(status, 401 | 431),
            status,
        );
        let mut refused = |case: &str, (status, challenge): (u16, String), error: &str| {
            tally.case(
                format_args!("{name}: {case}"),
                status == 401 && challenge.contains(&format!("error=\"{error}\"")),
                format_args!("{status} {challenge}"),
            );
        };
        refused(
            "a replayed proof",
            send("DPoP", token.clone(), vec![good]).await,
            "invalid_dpop_proof",
        );
        refused(
            "the bound token as Bearer",
            send("Bearer", token.clone(), vec![]).await,
            "invalid_token",
        );
        refused(
            "a proof for another access token (ath)",
            send(
                "DPoP",
                token.clone(),
                vec![key.proof("GET", &url, Some(&bearer))],
            )
            .await,
            "invalid_dpop_proof",
        );
        refused(
            "a proof by another key",
            send(
                "DPoP",
                token.clone(),
                vec![thief.proof("GET", &url, Some(&token))],
            )
            .await,
            "invalid_token",
        );
        refused(
            "a proof for POST",
            send(
                "DPoP",
                token.clone(),
                vec![key.proof("POST", &url, Some(&token))],
            )
            .await,
            "invalid_dpop_proof",
        );
        refused(
            "a proof for another host",
            send(
                "DPoP",
                token.clone(),
                vec![key.proof("GET", "http://evil.example/api/private", Some(&token))],
            )
            .await,
            "invalid_dpop_proof",
        );
        refused(
            "no proof",
            send("DPoP", token.clone(), vec![]).await,
            "invalid_dpop_proof",
        );
        refused(
            "two proofs",
            send(
                "DPoP",
                token.clone(),
                vec![
                    key.proof("GET", &url, Some(&token)),
                    key.proof("GET", &url, Some(&token)),
                ],
            )
            .await,
            "invalid_dpop_proof",
        );
        refused(
            "an unbound token under DPoP",
            send(
                "DPoP",
                bearer.clone(),
                vec![key.proof("GET", &url, Some(&bearer))],
            )
            .await,
            "invalid_token",
        );
        tally.case(
            format_args!("{name}: only the good request got through"),
            calls.load(Ordering::SeqCst) == 1,
            calls.load(Ordering::SeqCst),
        );
    }
    tally.finish();
}

#[tokio::test]
async fn hostile_proof_of_possession_settings_change_nothing() {
    let mut tally = Tally::new("dpop/proof_of_possession");
    let server = spawn().await;
    let token = server
        .management_token(&["read:resource_servers", "update:resource_servers"])
        .await;
    let id: String = form_urlencoded::byte_serialize(API.as_bytes()).collect();
    let url = server.url(&format!("/api/v2/resource-servers/{id}"));
    let http = reqwest::Client::new();
    let read = || async {
        http.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = read().await;
    for (case, value) in [
        ("mtls", json!({"mechanism": "mtls", "required": true})),
        ("no required", json!({"mechanism": "dpop"})),
        (
            "required as a string",
            json!({"mechanism": "dpop", "required": "true"}),
        ),
        (
            "an extra member",
            json!({"mechanism": "dpop", "required": true, "__proto__": {}}),
        ),
        (
            "DPoP in capitals",
            json!({"mechanism": "DPoP", "required": true}),
        ),
        ("a boolean", json!(true)),
        ("an array", json!([{"mechanism": "dpop", "required": true}])),
        (
            "10 kB mechanism",
            json!({"mechanism": "d".repeat(10_000), "required": true}),
        ),
    ] {
        let response = http
            .patch(&url)
            .bearer_auth(&token)
            .json(&json!({"proof_of_possession": value}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        tally.case(
            format_args!("proof_of_possession: {case}"),
            status == 400 && body.len() < 2_000,
            format_args!("{status} {:.200}", body),
        );
    }
    tally.case(
        "the API read back unchanged",
        read().await == before,
        "changed",
    );
    tally.finish();
}

/// With nonces required: a nonce from another installation, one that expired, one for a
/// future window, one altered, one that is not a string or is huge, and a good nonce in a
/// proof signed by another key. Each is refused; the code still redeems afterwards.
#[tokio::test]
async fn hostile_nonces_change_nothing() {
    let mut tally = Tally::new("dpop/nonces");
    let master = tessera_jose::MasterKey::from_bytes([5u8; 32]);
    let ours = tessera_jose::dpop::NonceSource::new(&tessera_server::dpop_nonce_secret(&master));
    let theirs = tessera_jose::dpop::NonceSource::new(&tessera_server::dpop_nonce_secret(
        &tessera_jose::MasterKey::from_bytes([6u8; 32]),
    ));
    let server = spawn_with(|config| {
        config.master_key = master.clone();
        config.dpop_nonces = true;
    })
    .await;
    let endpoint = format!("{}oauth/token", server.issuer);
    let key = DpopKey::new(Algorithm::Es256);
    let (code, verifier) = server
        .authorization_code(&browser(), "openid read:messages", Some(API))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", server.spa_client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let with_nonce = |nonce: Value| {
        let mut claims = key.claims("POST", &endpoint, None);
        claims["nonce"] = nonce;
        key.sign(&key.header(), &claims)
    };
    let now = now();
    let window = tessera_jose::dpop::NONCE_WINDOW;
    let mut altered = tessera_jose::b64_decode(&ours.current(now)).unwrap();
    altered[7] ^= 1;
    for (case, nonce) in [
        ("no nonce", Value::Null),
        ("another installation's nonce", json!(theirs.current(now))),
        ("an expired nonce", json!(ours.current(now - 3 * window))),
        (
            "a nonce for a later window",
            json!(ours.current(now + 2 * window)),
        ),
        ("an altered window", json!(b64(&altered))),
    ] {
        let proof = if nonce.is_null() {
            key.proof("POST", &endpoint, None)
        } else {
            with_nonce(nonce)
        };
        let (status, body) = token_with(&server, &[proof], &form).await;
        tally.case(
            case,
            status == 400 && body["error"] == "use_dpop_nonce",
            format_args!("{status} {body}"),
        );
    }
    for (case, nonce) in [
        ("a nonce that is a number", json!(12345)),
        ("a 1 KB nonce", json!("n".repeat(1024))),
    ] {
        refused(
            &mut tally,
            case,
            token_with(&server, &[with_nonce(nonce)], &form).await,
        );
    }
    let other = DpopKey::new(Algorithm::Es256);
    let mut claims = key.claims("POST", &endpoint, None);
    claims["nonce"] = json!(ours.current(now));
    let forged = other.sign(&key.header(), &claims);
    refused(
        &mut tally,
        "a good nonce in a proof signed by another key",
        token_with(&server, &[forged], &form).await,
    );
    let (status, tokens) =
        token_with(&server, &[with_nonce(json!(ours.current(now)))], &form).await;
    tally.case(
        "the code still redeems with a current nonce",
        status == 200 && tokens["token_type"] == "DPoP",
        format_args!("{status} {tokens}"),
    );
    tally.finish();
}

/// `dpop_jkt` (RFC 9449 §10) against a thief of the code: the code bound to the client's
/// key, redeemed by someone without a proof, or with a proof of their own key; a
/// `dpop_jkt` that is not a thumbprint, or on a response without a code; a pushed request
/// whose `dpop_jkt` names another key than its proof. Each refused; none issues a token.
#[tokio::test]
async fn a_code_bound_to_a_key_goes_to_no_other() {
    let mut tally = Tally::new("dpop/dpop_jkt");
    let server = spawn().await;
    let browser = browser();
    let endpoint = format!("{}oauth/token", server.issuer);
    let key = DpopKey::new(Algorithm::Es256);
    let thief = DpopKey::new(Algorithm::Es256);
    let jkt = key.jkt();
    for (case, proof) in [
        ("the bound code without a proof", None),
        (
            "the bound code with the thief's key",
            Some(thief.proof("POST", &endpoint, None)),
        ),
    ] {
        let pkce = pkce();
        let url = server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("dpop_jkt", jkt.as_str()),
        ]);
        let back = server.sign_in(&browser, &url).await;
        let code = params_of(&back).get("code").cloned().unwrap_or_default();
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", server.spa_client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", pkce.verifier.as_str()),
        ];
        let proofs: Vec<String> = proof.into_iter().collect();
        let (status, body) = token_with(&server, &proofs, &form).await;
        tally.case(
            case,
            status == 400 && body["error"] == "invalid_grant" && body.get("access_token").is_none(),
            format_args!("{status} {body}"),
        );
    }
    for (case, response_type, value) in [
        ("a dpop_jkt of 42 characters", "code", "A".repeat(42)),
        (
            "a dpop_jkt with padding",
            "code",
            format!("{}=", "A".repeat(42)),
        ),
        ("a dpop_jkt on an implicit request", "id_token", jkt.clone()),
    ] {
        let pkce = pkce();
        let url = server.authorize_url(&[
            ("response_type", response_type),
            ("scope", "openid"),
            ("nonce", "n"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("dpop_jkt", value.as_str()),
        ]);
        let back = server.sign_in(&browser, &url).await;
        let params = params_of(&back);
        tally.case(
            case,
            params.get("error").map(String::as_str) == Some("invalid_request")
                && !params.contains_key("code"),
            format_args!("{back}"),
        );
    }
    let par = format!("{}oauth/par", server.issuer);
    let pkce = pkce();
    let response = reqwest::Client::new()
        .post(server.url("/oauth/par"))
        .header("DPoP", key.proof("POST", &par, None))
        .form(&[
            ("client_id", server.spa_client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("dpop_jkt", thief.jkt().as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    tally.case(
        "a pushed request whose dpop_jkt names another key than its proof",
        status == 400 && body["error"] == "invalid_dpop_proof",
        format_args!("{status} {body}"),
    );
    tally.finish();
}

/// A guard that requires nonces, against proofs without one, with another guard's, an
/// expired one, one for a later window, and a good nonce in a replayed proof: each refused
/// before the app, which is reached once, by the proof with a current nonce.
#[tokio::test]
async fn hostile_nonces_at_a_resource_server_reach_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut tally = Tally::new("dpop/resource-nonces");
    let server = spawn().await;
    let key = DpopKey::new(Algorithm::Es256);
    let endpoint = format!("{}oauth/token", server.issuer);
    let m2m = [
        ("grant_type", "client_credentials"),
        ("client_id", server.m2m_client_id.as_str()),
        ("client_secret", server.m2m_secret.as_str()),
        ("audience", API),
    ];
    let (_, body) = token_with(&server, &[key.proof("POST", &endpoint, None)], &m2m).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let secret = [3u8; 32];
    let guard = tessera_guard::Guard::builder()
        .issuer(&server.issuer)
        .audience(API)
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .dpop_nonces(secret)
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let base = serve(counting_app(calls.clone()).await.layer(guard.layer())).await;
    let url = format!("{base}/api/private");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let send = |proof: String| {
        let request = http
            .get(&url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap_or("").to_string())
                .unwrap_or_default();
            (status, challenge)
        }
    };
    let with_nonce = |nonce: &str| {
        let mut claims = key.claims("GET", &url, Some(&token));
        claims["nonce"] = json!(nonce);
        key.sign(&key.header(), &claims)
    };
    let ours = tessera_jose::dpop::NonceSource::new(&secret);
    let theirs = tessera_jose::dpop::NonceSource::new(&[4u8; 32]);
    let now = now();
    let window = tessera_jose::dpop::NONCE_WINDOW;
    for (case, proof) in [
        ("no nonce", key.proof("GET", &url, Some(&token))),
        ("another guard's nonce", with_nonce(&theirs.current(now))),
        (
            "an expired nonce",
            with_nonce(&ours.current(now - 3 * window)),
        ),
        (
            "a nonce for a later window",
            with_nonce(&ours.current(now + 2 * window)),
        ),
    ] {
        let (status, challenge) = send(proof).await;
        tally.case(
            case,
            status == 401 && challenge.contains(r#"error="use_dpop_nonce""#),
            format_args!("{status} {challenge}"),
        );
    }
    let good = with_nonce(&ours.current(now));
    let (status, _) = send(good.clone()).await;
    tally.case(
        "a current nonce is admitted",
        status == 200,
        format_args!("{status}"),
    );
    let (status, challenge) = send(good).await;
    tally.case(
        "the same proof again",
        status == 401 && challenge.contains(r#"error="invalid_dpop_proof""#),
        format_args!("{status} {challenge}"),
    );
    tally.case(
        "the app was reached once",
        calls.load(Ordering::SeqCst) == 1,
        format_args!("{}", calls.load(Ordering::SeqCst)),
    );
    tally.finish();
}
