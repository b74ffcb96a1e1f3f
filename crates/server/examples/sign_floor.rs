//! The floor under a token endpoint, for `bench/writes.sh`: an HTTP server that does nothing
//! but what no implementation of a refresh can skip — read the form, sign an access token
//! and an ID token with Tessera's signer, mint a random refresh token and answer JSON. No
//! database, no lookups, no policy. Its CPU per answer, next to Tessera's per rotation,
//! shows how much of a rotation is HTTP, crypto and kernel that any server pays here.
//!
//! Usage: sign_floor ADDRESS   (e.g. 127.0.0.1:9999); it serves until killed.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use serde::Serialize;
use tessera_jose::{Algorithm, SigningKey, b64};

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    scope: &'a str,
    jti: String,
}

async fn token(State(key): State<Arc<SigningKey>>, body: String) -> impl IntoResponse {
    let client_id = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "client_id")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let random = || {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random source");
        b64(&bytes)
    };
    let claims = |aud: &'static str, scope: &'static str| Claims {
        iss: "http://127.0.0.1/",
        sub: "auth0|0123456789abcdef01234567",
        aud,
        iat: now,
        exp: now + 3600,
        scope,
        jti: random(),
    };
    let access = key
        .sign_jwt(
            "at+jwt",
            &claims("https://bench.writes/", "openid offline_access"),
        )
        .expect("signing");
    let mut id_claims = claims("bench", "openid");
    id_claims.aud = &client_id;
    let id = key.sign_jwt("JWT", &id_claims).expect("signing");
    let answer = serde_json::json!({
        "access_token": access,
        "id_token": id,
        "refresh_token": random(),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid offline_access",
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(answer))
}

fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: sign_floor ADDRESS");
        std::process::exit(2)
    });
    let (key, _) = SigningKey::generate(Algorithm::Rs256).expect("a key");
    let app = Router::new()
        .route("/oauth/token", post(token))
        .with_state(Arc::new(key));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .expect("the address");
            axum::serve(listener, app).await.expect("serving");
        });
}
