//! Protect an axum (or any tower) API with access tokens from Tessera — or Auth0, or any
//! issuer of RFC 9068-style JWT access tokens.
//!
//! A [`Guard`] is configured with the issuer URL and the API's audience. It discovers the
//! issuer's `jwks_uri` from `<issuer>.well-known/openid-configuration`, caches the parsed
//! keys, and verifies each bearer token: the signature with the key its `kid` names (the
//! algorithm comes from the key, never from the token), then `typ`, `iss`, `aud`, `exp`,
//! `nbf` and `iat` with a small leeway, and that it is not an ID token.
//!
//! - [`Guard::layer`] admits requests with a valid token and puts the [`Claims`] into the
//!   request extensions; handlers take `Claims` as an extractor.
//! - [`Guard::require_scope`], [`Guard::require_permission`] and [`Guard::require`] add a
//!   per-route [`Requirement`] (scopes or RBAC `permissions`, all-of or any-of).
//! - Failures are answered per RFC 6750, the way express-oauth2-jwt-bearer does, and the
//!   handler is never called: no token → 401 `WWW-Authenticate: Bearer realm="api"`;
//!   malformed `Authorization` header → 400 `invalid_request`; bad token → 401
//!   `invalid_token`; missing scope → 403 `insufficient_scope` with `scope="..."`. Each
//!   with a JSON body `{"error", "error_description"}`.
//!
//! ```no_run
//! use axum::{Json, Router, routing::get};
//! use tessera_guard::{Claims, Guard, Requirement};
//!
//! async fn private(claims: Claims) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "message": format!("Hello, {}", claims.sub()) }))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::builder()
//!     .issuer("https://auth.example.com/")
//!     .audience("https://api.example.com")
//!     .build()?;
//! guard.refresh_keys().await?; // optional: fail fast at startup
//!
//! let app = Router::new()
//!     .route("/api/public", get(|| async { "no token needed" }))
//!     .route("/api/private", get(private).layer(guard.layer()))
//!     .route(
//!         "/api/private-scoped",
//!         get(private).layer(guard.require_scope("read:messages")),
//!     )
//!     .route(
//!         "/api/admin",
//!         get(private).layer(guard.require(Requirement::all_permissions(["read:users", "write:users"]))),
//!     );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3010").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Keys
//!
//! Keys are fetched on first use (or by [`Guard::refresh_keys`]) and swapped atomically;
//! no lock is held across a fetch. A token whose `kid` is unknown triggers one refetch —
//! at most one per cooldown (10 s by default), shared by all concurrent requests — so a
//! key added to the JWKS is picked up at once and hostile `kid`s cannot flood the issuer.
//! Keys older than the refresh interval (10 min) are refreshed in the background. While
//! the JWKS endpoint is down the last good keys stay in use up to max-stale (24 h); a
//! failed fetch never discards them. Every HTTP request is bounded by a timeout (5 s).
//!
//! For tests, or when embedding the guard next to the keys, give it a fixed key set with
//! [`GuardBuilder::jwks`]: no HTTP at all.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use tessera_guard::{Guard, GuardError, TokenError};
//! use tessera_jose::{Algorithm, Jwks, SigningKey};
//!
//! let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
//! let guard = Guard::builder()
//!     .issuer("https://auth.example.com/")
//!     .audience("https://api.example.com")
//!     .jwks(Jwks { keys: vec![key.public_jwk().clone()] })
//!     .build()
//!     .unwrap();
//!
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! let token = key.sign_jwt("at+jwt", &serde_json::json!({
//!     "iss": "https://auth.example.com/", "sub": "auth0|42", "aud": "https://api.example.com",
//!     "iat": now, "exp": now + 60, "scope": "read:messages",
//! })).unwrap();
//! let claims = guard.verify(&token).await.unwrap();
//! assert_eq!(claims.sub(), "auth0|42");
//! assert!(claims.has_scope("read:messages"));
//!
//! let error = guard.verify("not-a-jwt").await.unwrap_err();
//! assert_eq!(error, GuardError::InvalidToken(TokenError::Malformed));
//! assert_eq!(error.status(), 401);
//! # });
//! ```
//!
//! # HTTPS issuers
//!
//! The default HTTP client comes from the workspace's `reqwest`, built without a TLS
//! backend. For an `https` issuer enable a TLS feature of `reqwest` in your application
//! (Cargo unifies features) or pass your own client with [`GuardBuilder::http_client`].

mod bearer;
mod claims;
mod error;
mod guard;
mod keys;
mod layer;

pub use bearer::{Presented, bearer_token, presented_token};
pub use claims::Claims;
pub use error::{ConfigError, GuardError, JwksError, RequestError, TokenError};
pub use guard::{Guard, GuardBuilder, MAX_LEEWAY};
pub use layer::{GuardFuture, GuardLayer, GuardService, Requirement};
