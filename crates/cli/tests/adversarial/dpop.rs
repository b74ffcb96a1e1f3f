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
