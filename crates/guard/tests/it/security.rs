//! One test per line of SECURITY.md's "Verifying a JWT" table, with the forged tokens
//! built here. Every rejection is checked twice: `Guard::verify` returns the expected
//! reason, and over HTTP the answer is 401 `invalid_token` (or 400 for a malformed header)
//! without the handler being called.

use aws_lc_rs::hmac;
use axum::http::StatusCode;
use serde_json::json;
use tessera_guard::{Guard, GuardError, TokenError};
use tessera_jose::{b64, b64_decode, rsa_public_key_der};

use crate::common::*;

#[tokio::test]
async fn alg_none_in_any_spelling_is_rejected() {
    let payload = access_claims().to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let with_kid = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, RSA.kid());
        // Unsigned, as RFC 7519 writes it: an empty third part.
        let unsigned = format!("{}.", forge(&with_kid, &payload, b"").trim_end_matches('.'));
        assert_rejected(&unsigned, TokenError::Malformed).await;
        // With some bytes in the signature so it gets past the structural checks.
        assert_rejected(
            &forge(&with_kid, &payload, b"sig"),
            TokenError::WrongAlgorithm,
        )
        .await;
        // Without kid against a single-key guard: that key decides the algorithm.
        let single = Guard::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks(jwks(&[&RSA]))
            .build()
            .unwrap();
        let no_kid = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        assert_rejected_by(
            &single,
            &forge(&no_kid, &payload, b"sig"),
            Some(TokenError::WrongAlgorithm),
        )
        .await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let jwk = RSA.jwk();
    let n = b64_decode(jwk.n.as_deref().unwrap()).unwrap();
    let e = b64_decode(jwk.e.as_deref().unwrap()).unwrap();
    let pkcs1 = rsa_public_key_der(&n, &e);
    let pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        tessera_jose::b64(&pkcs1)
    );
    let jwk_json = serde_json::to_vec(&jwk).unwrap();
    let payload = access_claims().to_string();
    // Every form an HMAC library might be handed "the public key" in.
    for secret in [&pkcs1[..], pem.as_bytes(), &jwk_json, &n] {
        for alg in ["HS256", "RS256"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, RSA.kid());
            let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let token = format!("{input}.{}", b64(tag.as_ref()));
            let reason = if alg == "HS256" {
                TokenError::WrongAlgorithm
            } else {
                TokenError::BadSignature
            };
            assert_rejected(&token, reason).await;
        }
    }
}

#[tokio::test]
async fn empty_truncated_or_null_signature_is_rejected() {
    let good = good_token();
    let (input, signature) = good.rsplit_once('.').unwrap();
    let raw_signature = b64_decode(signature).unwrap();
    let zeros = b64(&vec![0u8; raw_signature.len()]);
    let truncated = b64(&raw_signature[..raw_signature.len() - 8]);
    let cases = [
        (format!("{input}."), TokenError::Malformed),
        (input.to_owned(), TokenError::Malformed),
        (format!("{input}.{truncated}"), TokenError::BadSignature),
        (
            format!("{input}.{}", &signature[..signature.len() - 1]),
            TokenError::Malformed,
        ),
        (
            format!("{input}.{}", &signature[..1]),
            TokenError::Malformed,
        ),
        (format!("{input}.{zeros}"), TokenError::BadSignature),
        (format!("{input}.AA"), TokenError::BadSignature),
        (format!("{input}.null"), TokenError::BadSignature),
    ];
    for (token, reason) in cases {
        assert_rejected(&token, reason).await;
    }
    // And the untouched token is fine, so the cases above fail for their signature alone.
    assert_accepted(&fixed_guard(), &good).await;
}

#[tokio::test]
async fn jwk_jku_x5u_x5c_headers_are_ignored() {
    // The attacker hosts their own key set and points the token at it.
    let attacker_idp = TestIdp::start(&[&ATTACKER]).await;
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp.guard().build().unwrap();
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    let baseline = idp.jwks_hits();

    let attacker_jwk = serde_json::to_string(&ATTACKER.jwk()).unwrap();
    let attacker_jwks = format!("{}.well-known/jwks.json", attacker_idp.issuer);
    let injections = [
        format!(r#","jwk":{attacker_jwk}"#),
        format!(r#","jku":"{attacker_jwks}""#),
        format!(r#","x5u":"{attacker_jwks}""#),
        r#","x5c":["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]"#.to_owned(),
        format!(r#","jwk":{attacker_jwk},"jku":"{attacker_jwks}","x5u":"{attacker_jwks}""#),
    ];
    let payload = claims_with(json!({"iss": idp.issuer})).to_string();
    for injection in &injections {
        // Claiming the issuer's kid: the issuer's key does not verify the attacker's signature.
        let header = format!(
            r#"{{"alg":"RS256","typ":"JWT","kid":"{}"{injection}}}"#,
            RSA.kid()
        );
        let token = ATTACKER.sign_raw(&header, &payload);
        assert_rejected_by(&guard, &token, Some(TokenError::BadSignature)).await;
        // With the attacker's own kid: unknown to the issuer's JWKS.
        let token = ATTACKER.sign_raw(&ATTACKER.header(injection), &payload);
        assert_rejected_by(&guard, &token, Some(TokenError::UnknownKey)).await;
    }
    assert_eq!(attacker_idp.jwks_hits() + attacker_idp.discovery_hits(), 0);
    // The unknown attacker kid cost one refetch from the real issuer, then the cooldown.
    assert_eq!(idp.jwks_hits(), baseline + 1);
}

#[tokio::test]
async fn hostile_kid_is_only_a_map_key_and_costs_at_most_one_refetch() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp.guard().build().unwrap();
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    assert_eq!(idp.jwks_hits(), 1);

    let payload = claims_with(json!({"iss": idp.issuer})).to_string();
    let hostile = [
        "../../../../etc/passwd".to_owned(),
        "..\\..\\windows\\win.ini".to_owned(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_owned(),
        "' OR '1'='1' --".to_owned(),
        "1; DROP TABLE keys;".to_owned(),
        "ключ-🔑-鍵".to_owned(),
        "\u{0}\u{202e}\u{feff}".to_owned(),
        "http://127.0.0.1:1/jwks.json".to_owned(),
        String::new(),
    ];
    for kid in &hostile {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string();
        let token = RSA.sign_raw(&header, &payload);
        assert_rejected_by(&guard, &token, Some(TokenError::UnknownKey)).await;
    }
    // 10 KB of kid: refused for its size before anything looks at it.
    let header = json!({"alg": "RS256", "kid": "k".repeat(10 * 1024)}).to_string();
    let token = RSA.sign_raw(&header, &payload);
    assert_rejected_by(&guard, &token, Some(TokenError::TooLarge)).await;

    assert_eq!(idp.jwks_hits(), 2, "one refetch for all hostile kids");
    // The real key still works.
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
}

#[tokio::test]
async fn psychic_es256_signatures_are_rejected() {
    // The order n of P-256: r = n or s = n is as invalid as zero.
    let order: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    let zero = [0u8; 32];
    let concat = |r: &[u8; 32], s: &[u8; 32]| [&r[..], &s[..]].concat();
    let signatures = [
        concat(&zero, &zero),
        concat(&order, &order),
        concat(&zero, &order),
        concat(&order, &zero),
        // The DER form of r = s = 0 used against CVE-2022-21449 ("MAYCAQACAQA").
        b64_decode("MAYCAQACAQA").unwrap(),
    ];
    let header = EC.header("");
    let payload = access_claims().to_string();
    for signature in signatures {
        assert_rejected(
            &forge(&header, &payload, &signature),
            TokenError::BadSignature,
        )
        .await;
    }
    assert_accepted(&fixed_guard(), &mint(&EC, &access_claims())).await;
}

#[tokio::test]
async fn tampered_claims_are_rejected() {
    let good = good_token();
    let parts: Vec<&str> = good.split('.').collect();
    let tamperings = [
        json!({"sub": "auth0|admin"}),
        json!({"scope": "openid read:messages write:messages delete:everything"}),
        json!({"aud": "https://other-api.test"}),
        json!({"exp": now() + 10 * 365 * 86400}),
        json!({"permissions": ["admin"]}),
    ];
    for change in tamperings {
        let payload = b64(claims_with(change).to_string().as_bytes());
        let token = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_rejected(&token, TokenError::BadSignature).await;
    }
    // Tampered header (same kid and alg, different typ) and a flipped signature bit.
    let header =
        b64(format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, RSA.kid()).as_bytes());
    assert_rejected(
        &format!("{header}.{}.{}", parts[1], parts[2]),
        TokenError::BadSignature,
    )
    .await;
    let mut signature = b64_decode(parts[2]).unwrap();
    signature[17] ^= 0x01;
    let token = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
    assert_rejected(&token, TokenError::BadSignature).await;
}

#[tokio::test]
async fn expired_token_is_rejected_beyond_the_leeway() {
    let now = now();
    let expired = mint(
        &RSA,
        &claims_with(json!({"iat": now - 600, "exp": now - 45})),
    );
    assert_rejected(&expired, TokenError::Expired).await;
    // Within the default 30 s leeway it is still accepted…
    let just_expired = mint(
        &RSA,
        &claims_with(json!({"iat": now - 600, "exp": now - 10})),
    );
    assert_accepted(&fixed_guard(), &just_expired).await;
    // …but not with no leeway at all.
    let strict = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .leeway(std::time::Duration::ZERO)
        .jwks(jwks(&[&RSA]))
        .build()
        .unwrap();
    assert_rejected_by(&strict, &just_expired, Some(TokenError::Expired)).await;
    // exp is required, and must be a number.
    assert_rejected(
        &mint(&RSA, &claims_with(json!({"exp": null}))),
        TokenError::MissingClaim("exp"),
    )
    .await;
    let text_exp = claims_with(json!({"exp": (now + 3600).to_string()}));
    assert_rejected(&mint(&RSA, &text_exp), TokenError::InvalidClaim("exp")).await;
}

#[tokio::test]
async fn nbf_in_the_future_is_rejected_beyond_the_leeway() {
    let now = now();
    assert_rejected(
        &mint(&RSA, &claims_with(json!({"nbf": now + 45}))),
        TokenError::NotYetValid,
    )
    .await;
    assert_accepted(
        &fixed_guard(),
        &mint(&RSA, &claims_with(json!({"nbf": now + 10}))),
    )
    .await;
    assert_rejected(
        &mint(&RSA, &claims_with(json!({"nbf": "soon"}))),
        TokenError::InvalidClaim("nbf"),
    )
    .await;
}

#[tokio::test]
async fn iat_in_the_future_is_rejected_beyond_the_leeway() {
    let now = now();
    assert_rejected(
        &mint(&RSA, &claims_with(json!({"iat": now + 45}))),
        TokenError::IssuedInFuture,
    )
    .await;
    assert_accepted(
        &fixed_guard(),
        &mint(&RSA, &claims_with(json!({"iat": now + 10}))),
    )
    .await;
}

#[tokio::test]
async fn leeway_is_capped_at_sixty_seconds() {
    let builder = || {
        Guard::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks(jwks(&[&RSA]))
    };
    assert!(
        builder()
            .leeway(std::time::Duration::from_secs(60))
            .build()
            .is_ok()
    );
    assert_eq!(
        builder()
            .leeway(std::time::Duration::from_secs(61))
            .build()
            .unwrap_err(),
        tessera_guard::ConfigError::LeewayTooLarge
    );
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let wrong = [
        json!("https://issuer.test"),
        json!("https://issuer.test/tenant/"),
        json!("https://ISSUER.test/"),
        json!("http://issuer.test/"),
        json!("https://issuer.test.evil.test/"),
        json!(""),
        json!([ISSUER]),
        json!(1),
    ];
    for iss in wrong {
        assert_rejected(
            &mint(&RSA, &claims_with(json!({"iss": iss}))),
            TokenError::WrongIssuer,
        )
        .await;
    }
    assert_rejected(
        &mint(&RSA, &claims_with(json!({"iss": null}))),
        TokenError::MissingClaim("iss"),
    )
    .await;
}

#[tokio::test]
async fn claims_of_the_wrong_json_type_are_rejected() {
    let cases = [
        (json!({"sub": 42}), TokenError::InvalidClaim("sub")),
        (json!({"sub": ""}), TokenError::InvalidClaim("sub")),
        (json!({"sub": ["auth0|1"]}), TokenError::InvalidClaim("sub")),
        (
            json!({"scope": ["read:messages"]}),
            TokenError::InvalidClaim("scope"),
        ),
        (json!({"scope": true}), TokenError::InvalidClaim("scope")),
        (
            json!({"permissions": "read:messages"}),
            TokenError::InvalidClaim("permissions"),
        ),
        (
            json!({"permissions": ["read:messages", null]}),
            TokenError::InvalidClaim("permissions"),
        ),
        (
            json!({"permissions": [["read:messages"]]}),
            TokenError::InvalidClaim("permissions"),
        ),
        (
            json!({"iat": "1700000000"}),
            TokenError::InvalidClaim("iat"),
        ),
        (json!({"iss": 1}), TokenError::WrongIssuer),
        (
            json!({"aud": [[AUDIENCE]]}),
            TokenError::InvalidClaim("aud"),
        ),
    ];
    for (changes, reason) in cases {
        assert_rejected(&mint(&RSA, &claims_with(changes)), reason).await;
    }
    // Members the policy does not read may hold anything.
    let claims = assert_accepted(
        &fixed_guard(),
        &mint(
            &RSA,
            &claims_with(json!({"https://example.com/roles": [{"a": [1, null]}], "flag": false})),
        ),
    )
    .await;
    assert_eq!(claims.get("flag"), Some(&json!(false)));
}

#[tokio::test]
async fn missing_or_foreign_audience_is_rejected() {
    let cases = [
        (json!(null), TokenError::MissingClaim("aud")),
        (json!("https://other-api.test"), TokenError::WrongAudience),
        (json!("https://api.test/"), TokenError::WrongAudience),
        (
            json!(["https://other-api.test", format!("{ISSUER}userinfo")]),
            TokenError::WrongAudience,
        ),
        (json!([]), TokenError::WrongAudience),
        (json!([AUDIENCE, 5]), TokenError::InvalidClaim("aud")),
        (json!({"aud": AUDIENCE}), TokenError::InvalidClaim("aud")),
    ];
    for (aud, reason) in cases {
        assert_rejected(&mint(&RSA, &claims_with(json!({"aud": aud}))), reason).await;
    }
    // A string audience, and any configured audience, are accepted.
    assert_accepted(
        &fixed_guard(),
        &mint(&RSA, &claims_with(json!({"aud": AUDIENCE}))),
    )
    .await;
    let two = Guard::builder()
        .issuer(ISSUER)
        .audiences([AUDIENCE, "urn:second-api"])
        .jwks(jwks(&[&RSA]))
        .build()
        .unwrap();
    assert_accepted(
        &two,
        &mint(&RSA, &claims_with(json!({"aud": ["urn:second-api"]}))),
    )
    .await;
}

#[tokio::test]
async fn id_token_presented_as_access_token_is_rejected() {
    let now = now();
    // An ID token as Tessera issues it: aud is the client_id.
    let id_token = json!({
        "iss": ISSUER, "sub": "auth0|5f7c8ec7c33c6c004bbafe82", "aud": CLIENT_ID,
        "iat": now, "exp": now + 36000, "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "sid": "s1", "name": "Jane", "email": "jane@example.com",
    });
    assert_rejected(&mint(&RSA, &id_token), TokenError::WrongAudience).await;
    // Even with our audience, the ID-token members give it away.
    for marker in [
        json!({"nonce": "abc"}),
        json!({"at_hash": "x"}),
        json!({"c_hash": "y"}),
    ] {
        assert_rejected(
            &mint(&RSA, &claims_with(marker)),
            TokenError::NotAnAccessToken,
        )
        .await;
    }
    // And so does a typ that is not an access token's.
    for typ in ["id_token", "logout+jwt", "dpop+jwt", "JWE", ""] {
        let token = RSA.signing.sign_jwt(typ, &access_claims()).unwrap();
        assert_rejected(&token, TokenError::WrongType).await;
    }
    for typ in ["JWT", "at+jwt", "application/at+jwt"] {
        let token = RSA.signing.sign_jwt(typ, &access_claims()).unwrap();
        assert_accepted(&fixed_guard(), &token).await;
    }
    let no_typ = RSA.sign_raw(
        &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, RSA.kid()),
        &access_claims().to_string(),
    );
    assert_accepted(&fixed_guard(), &no_typ).await;
}

#[tokio::test]
async fn refresh_token_or_code_presented_as_bearer_is_rejected() {
    let opaque = [
        // A refresh token and an authorization code in the shapes the server hands out.
        "v1.MRrT-pwXXjBx0a_tXQcIpUVeHmLpCmGqcR7nIqHtIeFcSzMpE-ItFqXwx0rLqMK29gQW7a3iaw2BnQVb1-nXnGA",
        "nvr1Nq0c3oBMBzbuHHu8ACOgLk2HJaSuBaFCeKfyd6Q",
        "3f2b8d1e-9c4a-4f6b-8e2d-7a1c5b9e0f34",
        "abc.def",
        "a.b.c",
    ];
    for token in opaque {
        assert_rejected(token, TokenError::Malformed).await;
    }
}

#[tokio::test]
async fn unknown_crit_header_is_rejected() {
    let payload = access_claims().to_string();
    for crit in [
        r#"["exp"]"#,
        r#"["b64"]"#,
        r#"["urn:example:unknown"]"#,
        "[]",
        r#""exp""#,
    ] {
        let token = RSA.sign_raw(&RSA.header(&format!(r#","crit":{crit}"#)), &payload);
        assert_rejected(&token, TokenError::UnsupportedCritical).await;
    }
}

#[tokio::test]
async fn bad_base64_is_rejected() {
    let good = good_token();
    let parts: Vec<&str> = good.split('.').collect();
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    // The signature in standard base64 (`+`, `/`, `=` padding): 256 bytes always pad.
    let standard = format!("{}==", parts[2].replace('-', "+").replace('_', "/"));
    let standard_alphabet = format!("{}.{}.{standard}", parts[0], parts[1]);
    let with_plus = format!("{}+.{}.{}", parts[0], parts[1], parts[2]);
    let header_not_json = format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]);
    let payload_not_json = format!("{}.{}.{}", parts[0], b64(b"[1,2]"), parts[2]);
    for token in [&with_plus, &header_not_json, &standard_alphabet] {
        assert_rejected(token, TokenError::Malformed).await;
    }
    // A payload that is not a JSON object fails after the signature check.
    assert_rejected(&payload_not_json, TokenError::BadSignature).await;
    let signed_array = RSA.sign_raw(&RSA.header(""), "[1,2]");
    assert_rejected(&signed_array, TokenError::Malformed).await;

    // Characters outside b64token (`=` is only allowed at the end) never get as far as
    // the verifier over HTTP: 400 invalid_request. `verify` itself calls them malformed.
    let app = TestApp::new(&fixed_guard());
    let bang = format!("{}!.{}.{}", parts[0], parts[1], parts[2]);
    for token in [padded, bang, format!("{good}\"")] {
        assert_eq!(
            fixed_guard().verify(&token).await.unwrap_err(),
            GuardError::InvalidToken(TokenError::Malformed)
        );
        let reply = app
            .get("/api/private", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(
            reply
                .challenge
                .unwrap()
                .contains(r#"error="invalid_request""#)
        );
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn duplicate_json_members_are_rejected_even_when_signed() {
    let claims = access_claims();
    let body = claims.to_string();
    let inner = body.trim_start_matches('{');
    let payload_dup_sub = format!(r#"{{"sub":"auth0|admin",{inner}"#);
    let payload_dup_aud = format!(r#"{{"aud":"https://other-api.test",{inner}"#);
    for payload in [&payload_dup_sub, &payload_dup_aud] {
        assert_rejected(
            &RSA.sign_raw(&RSA.header(""), payload),
            TokenError::Malformed,
        )
        .await;
    }
    let dup_alg = RSA.sign_raw(&RSA.header(r#","alg":"none""#), &body);
    let dup_kid = RSA.sign_raw(&RSA.header(&format!(r#","kid":"{}""#, EC.kid())), &body);
    for token in [&dup_alg, &dup_kid] {
        assert_rejected(token, TokenError::Malformed).await;
    }
}

#[tokio::test]
async fn duplicate_members_the_guard_does_not_read_are_rejected_too() {
    let body = access_claims().to_string();
    let inner = body.trim_start_matches('{');
    let many = format!(
        r#"{{{}{inner}"#,
        (0..20)
            .map(|i| format!(r#""c{i}":{i},"#))
            .collect::<String>()
    );
    assert_accepted(&fixed_guard(), &RSA.sign_raw(&RSA.header(""), &many)).await;
    for payload in [
        format!(r#"{{"role":"user","role":"admin",{inner}"#),
        format!(r#"{{"nonce":"a","n\u006fnce":"b",{inner}"#),
        // Past the first sixteen names the guard keeps inline.
        format!(
            r#"{{{}"c18":0,{inner}"#,
            (0..20)
                .map(|i| format!(r#""c{i}":{i},"#))
                .collect::<String>()
        ),
    ] {
        assert_rejected(
            &RSA.sign_raw(&RSA.header(""), &payload),
            TokenError::Malformed,
        )
        .await;
    }
}

#[tokio::test]
async fn escaped_json_strings_mean_what_they_decode_to() {
    // `\/` and `\u` escapes are legal JSON (PHP escapes slashes by default).
    let claims = access_claims();
    let payload = format!(
        r#"{{"iss":"https:\/\/issuer.test\/","sub":"auth0|\u0031","aud":"https:\/\/api.test","exp":{},"scope":"read\u003amessages"}}"#,
        claims["exp"]
    );
    let header = format!(
        r#"{{"alg":"RS\u0032\u0035\u0036","typ":"at\u002bjwt","kid":"{}"}}"#,
        RSA.kid()
    );
    let accepted = assert_accepted(&fixed_guard(), &RSA.sign_raw(&header, &payload)).await;
    assert_eq!(accepted.sub(), "auth0|1");
    assert!(accepted.has_scope("read:messages"));
    assert_eq!(accepted.audiences(), ["https://api.test"]);

    // An escaped issuer that decodes to another issuer is still the wrong issuer.
    let wrong = payload.replace(r#"issuer.test\/"#, r#"issuer.tes\u0074x\/"#);
    assert_rejected(&RSA.sign_raw(&header, &wrong), TokenError::WrongIssuer).await;
}

#[tokio::test]
async fn large_headers_and_signatures_take_the_heap_path_with_the_same_checks() {
    // A header far beyond the stack buffer (certificate chains are ignored, not trusted).
    let chain = format!(r#","x5c":["{}"]"#, "A".repeat(2000));
    let token = RSA.sign_raw(&RSA.header(&chain), &access_claims().to_string());
    assert_accepted(&fixed_guard(), &token).await;
    // An 8192-bit-sized signature that is not a signature.
    let (input, _) = good_token()
        .rsplit_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let forged = format!("{input}.{}", b64(&[7u8; 1024]));
    assert_rejected(&forged, TokenError::BadSignature).await;
}

#[tokio::test]
async fn five_segment_jwe_is_rejected() {
    let header = b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"x"}"#);
    let jwe = format!(
        "{header}.{}.{}.{}.{}",
        b64(&[7; 256]),
        b64(&[1; 12]),
        b64(b"ciphertext"),
        b64(&[2; 16])
    );
    assert_rejected(&jwe, TokenError::Malformed).await;
    assert_rejected(&format!("{}.extra", good_token()), TokenError::Malformed).await;
}

#[tokio::test]
async fn token_over_8kb_is_rejected() {
    let big = mint(&RSA, &claims_with(json!({"padding": "p".repeat(8 * 1024)})));
    assert!(big.len() > 8 * 1024);
    assert_rejected(&big, TokenError::TooLarge).await;
    // A large but legal token is fine.
    let large = mint(&RSA, &claims_with(json!({"padding": "p".repeat(4 * 1024)})));
    assert_accepted(&fixed_guard(), &large).await;
}

#[tokio::test]
async fn every_forgery_gets_401_invalid_token_and_never_reaches_the_handler() {
    let good = good_token();
    let (input, _) = good.rsplit_once('.').unwrap();
    let payload = access_claims().to_string();
    let forgeries = vec![
        forge(r#"{"alg":"none"}"#, &payload, b"x"),
        format!("{input}."),
        format!("{input}.AAAA"),
        ATTACKER.sign_raw(&ATTACKER.header(""), &payload),
        ATTACKER.sign_raw(&RSA.header(""), &payload),
        mint(&RSA, &claims_with(json!({"exp": now() - 3600}))),
        mint(&RSA, &claims_with(json!({"iss": "https://evil.test/"}))),
        mint(&RSA, &claims_with(json!({"aud": CLIENT_ID}))),
        mint(&RSA, &claims_with(json!({"nonce": "n"}))),
        mint(&RSA, &claims_with(json!({"sub": null}))),
        mint(&RSA, &claims_with(json!({"sub": 42}))),
        mint(&RSA, &claims_with(json!({"scope": ["read:messages"]}))),
        mint(&RSA, &claims_with(json!({"permissions": "read:messages"}))),
        RSA.sign_raw(&RSA.header(r#","crit":["exp"]"#), &payload),
        "x".repeat(9000),
        "eyJ".to_owned(),
    ];
    let app = TestApp::new(&fixed_guard());
    for token in &forgeries {
        for path in ["/api/private", "/api/private-scoped", "/api/rbac"] {
            app.get(path, Some(&format!("Bearer {token}")))
                .await
                .assert_invalid_token();
        }
        assert!(matches!(
            fixed_guard().verify(token).await,
            Err(GuardError::InvalidToken(_))
        ));
    }
    assert_eq!(app.calls(), 0);
}
