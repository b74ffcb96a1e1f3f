//! Test kit: keys, token minting and forging, an HTTP app behind the guard, and a tiny
//! local identity provider that serves discovery + JWKS and counts its hits.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tessera_guard::{Claims, Guard, GuardBuilder, GuardError, Requirement, TokenError};
use tessera_jose::{Algorithm, Jwk, Jwks, SigningKey, b64};
use tower::ServiceExt;

pub(crate) const ISSUER: &str = "https://issuer.test/";
pub(crate) const AUDIENCE: &str = "https://api.test";
pub(crate) const CLIENT_ID: &str = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0";

/// A signing key and its PKCS#8, so tests can also sign arbitrary bytes with it.
pub(crate) struct Key {
    pub(crate) signing: SigningKey,
    pub(crate) pkcs8: Vec<u8>,
}

impl Key {
    pub(crate) fn generate(alg: Algorithm) -> Key {
        let (signing, pkcs8) = SigningKey::generate(alg).unwrap();
        Key { signing, pkcs8 }
    }

    pub(crate) fn kid(&self) -> &str {
        self.signing.kid()
    }

    pub(crate) fn jwk(&self) -> Jwk {
        self.signing.public_jwk().clone()
    }

    /// Signs `header` and `payload` exactly as given (duplicate members, odd headers…).
    pub(crate) fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature = match self.signing.alg() {
            Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            Algorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &self.pkcs8,
                )
                .unwrap();
                pair.sign(&SystemRandom::new(), input.as_bytes())
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDsa => {
                let pair = signature::Ed25519KeyPair::from_pkcs8(&self.pkcs8).unwrap();
                pair.sign(input.as_bytes()).as_ref().to_vec()
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    /// The standard header for this key with extra members appended.
    pub(crate) fn header(&self, extra: &str) -> String {
        format!(
            r#"{{"alg":"{}","typ":"JWT","kid":"{}"{extra}}}"#,
            self.signing.alg(),
            self.kid()
        )
    }
}

/// The issuer's keys, shared by all tests (RSA key generation is not free).
pub(crate) static RSA: LazyLock<Key> = LazyLock::new(|| Key::generate(Algorithm::Rs256));
pub(crate) static EC: LazyLock<Key> = LazyLock::new(|| Key::generate(Algorithm::Es256));
/// A second issuer key, published only in rotation tests.
pub(crate) static NEXT: LazyLock<Key> = LazyLock::new(|| Key::generate(Algorithm::EdDsa));
/// A key the issuer never published.
pub(crate) static ATTACKER: LazyLock<Key> = LazyLock::new(|| Key::generate(Algorithm::Rs256));

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a good access token, in Auth0's shape.
pub(crate) fn access_claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
        "aud": [AUDIENCE, format!("{ISSUER}userinfo")],
        "iat": now,
        "exp": now + 3600,
        "azp": CLIENT_ID,
        "scope": "openid profile read:messages",
    })
}

/// `access_claims()` with `changes` merged in (`null` removes a claim).
pub(crate) fn claims_with(changes: Value) -> Value {
    let mut claims = access_claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

pub(crate) fn mint(key: &Key, claims: &Value) -> String {
    key.signing.sign_jwt("JWT", claims).unwrap()
}

pub(crate) fn good_token() -> String {
    mint(&RSA, &access_claims())
}

/// A token assembled from raw header and payload JSON and raw signature bytes.
pub(crate) fn forge(header: &str, payload: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(signature)
    )
}

pub(crate) fn jwks(keys: &[&Key]) -> Jwks {
    Jwks {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
}

/// A guard with the issuer's RSA and EC keys as a fixed set: no HTTP.
pub(crate) fn fixed_guard() -> Guard {
    Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&RSA, &EC]))
        .build()
        .unwrap()
}

/// Asserts that `token` is refused by `guard.verify` (with `reason`, when given) and, over
/// HTTP, with 401 `invalid_token` before the handler.
pub(crate) async fn assert_rejected_by(guard: &Guard, token: &str, reason: Option<TokenError>) {
    let error = guard.verify(token).await.unwrap_err();
    match reason {
        Some(reason) => assert_eq!(error, GuardError::InvalidToken(reason), "{token:.120}"),
        None => assert!(matches!(error, GuardError::InvalidToken(_)), "{error:?}"),
    }
    let app = TestApp::new(guard);
    let reply = app
        .get("/api/private", Some(&format!("Bearer {token}")))
        .await;
    reply.assert_invalid_token();
    assert_eq!(app.calls(), 0, "the handler must not be reached");
}

pub(crate) async fn assert_rejected(token: &str, reason: TokenError) {
    assert_rejected_by(&fixed_guard(), token, Some(reason)).await;
}

pub(crate) async fn assert_accepted(guard: &Guard, token: &str) -> Claims {
    let claims = guard.verify(token).await.unwrap();
    let app = TestApp::new(guard);
    let reply = app
        .get("/api/private", Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(app.calls(), 1);
    claims
}

/// An axum app with routes behind the guard; counts handler calls.
pub(crate) struct TestApp {
    pub(crate) router: Router,
    calls: Arc<AtomicUsize>,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) challenge: Option<String>,
    /// The `DPoP-Nonce` header, when the guard asked for a nonce.
    pub(crate) dpop_nonce: Option<String>,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn assert_invalid_token(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{:?}", self.body);
        let challenge = self.challenge.as_deref().unwrap();
        assert!(
            challenge
                .starts_with(r#"Bearer realm="api", error="invalid_token", error_description=""#),
            "{challenge}"
        );
        assert_eq!(self.body["error"], "invalid_token");
        assert!(self.body["error_description"].is_string());
    }
}

impl TestApp {
    pub(crate) fn new(guard: &Guard) -> TestApp {
        let calls = Arc::new(AtomicUsize::new(0));
        let handler = get(
            |State(calls): State<Arc<AtomicUsize>>, claims: Claims| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Json(json!({
                    "sub": claims.sub(),
                    "scopes": claims.scopes().collect::<Vec<_>>(),
                    "permissions": claims.permissions(),
                }))
            },
        );
        let router = Router::new()
            .route("/api/private", handler.clone().layer(guard.layer()))
            .route(
                "/api/private-scoped",
                handler.clone().layer(guard.require_scope("read:messages")),
            )
            .route(
                "/api/any-scope",
                handler
                    .clone()
                    .layer(guard.require(Requirement::any_scope(["read:messages", "read:all"]))),
            )
            .route(
                "/api/all-scopes",
                handler.clone().layer(
                    guard.require(Requirement::all_scopes(["read:messages", "write:messages"])),
                ),
            )
            .route(
                "/api/rbac",
                handler
                    .clone()
                    .layer(guard.require_permission("delete:messages")),
            )
            .route(
                "/api/rbac-any",
                handler.clone().layer(
                    guard.require(Requirement::any_permission(["read:users", "read:messages"])),
                ),
            )
            .route(
                "/api/rbac-all",
                handler.clone().layer(
                    guard.require(Requirement::all_permissions(["read:users", "write:users"])),
                ),
            )
            .route("/api/unguarded-claims", handler)
            .route(
                "/api/optional",
                get(|claims: Option<Claims>| async move {
                    Json(json!({ "sub": claims.map(|c| c.sub().to_owned()) }))
                }),
            )
            .with_state(Arc::clone(&calls));
        TestApp { router, calls }
    }

    /// Wraps the whole router in another layer (e.g. a router-wide `guard.layer()`).
    pub(crate) fn layered(mut self, layer: tessera_guard::GuardLayer) -> TestApp {
        self.router = self.router.layer(layer);
        self
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) async fn get(&self, path: &str, authorization: Option<&str>) -> Reply {
        let headers: Vec<(HeaderName, HeaderValue)> = authorization
            .map(|value| (header::AUTHORIZATION, HeaderValue::from_str(value).unwrap()))
            .into_iter()
            .collect();
        self.get_with(path, headers).await
    }

    pub(crate) async fn get_with(
        &self,
        path: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Reply {
        let mut request = Request::get(path).body(Body::empty()).unwrap();
        for (name, value) in headers {
            request.headers_mut().append(name, value);
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        assert!(!status.is_server_error(), "never a 5xx");
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let dpop_nonce = response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            challenge,
            dpop_nonce,
            body,
        }
    }
}

/// How the test identity provider answers JWKS requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    Serve = 0,
    Fail500 = 1,
    /// Answers after 1 s, five times the hanging-endpoint test's HTTP timeout.
    Hang = 2,
    /// A JWKS body of 1 MiB.
    Huge = 3,
    /// Answers after 150 ms (to let concurrent requests pile up).
    Slow = 4,
}

struct IdpState {
    issuer: String,
    discovery_issuer: Mutex<Option<String>>,
    keys: Mutex<Vec<Jwk>>,
    mode: AtomicU8,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

/// A local identity provider on 127.0.0.1:<random port>, serving
/// `/.well-known/openid-configuration` and `/.well-known/jwks.json`.
pub(crate) struct TestIdp {
    pub(crate) issuer: String,
    state: Arc<IdpState>,
}

impl TestIdp {
    pub(crate) async fn start(keys: &[&Key]) -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/", listener.local_addr().unwrap());
        let state = Arc::new(IdpState {
            issuer: issuer.clone(),
            discovery_issuer: Mutex::new(None),
            keys: Mutex::new(keys.iter().map(|k| k.jwk()).collect()),
            mode: AtomicU8::new(Mode::Serve as u8),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/jwks.json", get(jwks_document))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestIdp { issuer, state }
    }

    /// A guard builder for this issuer, with short test timings.
    pub(crate) fn guard(&self) -> GuardBuilder {
        Guard::builder()
            .issuer(&self.issuer)
            .audience(AUDIENCE)
            .http_timeout(Duration::from_millis(500))
            .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
    }

    pub(crate) fn set_keys(&self, keys: &[&Key]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    pub(crate) fn set_raw_keys(&self, keys: Vec<Jwk>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub(crate) fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    pub(crate) fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub(crate) fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    /// A token for this issuer signed by `key`.
    pub(crate) fn token(&self, key: &Key, changes: Value) -> String {
        let mut claims = claims_with(changes);
        if claims.get("iss") == Some(&json!(ISSUER)) {
            claims["iss"] = json!(self.issuer);
        }
        mint(key, &claims)
    }
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Json<Value> {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = state
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| state.issuer.clone());
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}.well-known/jwks.json", state.issuer),
    }))
}

async fn jwks_document(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.load(Ordering::SeqCst);
    if mode == Mode::Fail500 as u8 {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if mode == Mode::Hang as u8 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if mode == Mode::Slow as u8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    if mode == Mode::Huge as u8 {
        return "x".repeat(1 << 20).into_response();
    }
    let keys = state.keys.lock().unwrap().clone();
    Json(json!({ "keys": keys })).into_response()
}

/// Polls `condition` every 10 ms for up to one second.
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}
