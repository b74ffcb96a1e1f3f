//! The guard: configuration, key source and the verification pipeline.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use tessera_jose::dpop::{DpopError, NonceSource, ProofContext, ReplayCache, verify_proof};
use tessera_jose::{JoseError, Jwks};

use crate::bearer::{Presented, bearer_token, presented_token};
use crate::claims::{Claims, Policy};
use crate::error::{ConfigError, DEFAULT_REALM, GuardError, JwksError, TokenError};
use crate::keys::{KeySet, RemoteKeys, Snapshot, Timing, is_http_url};
use crate::layer::{GuardLayer, Requirement};

/// The largest clock leeway [`GuardBuilder::leeway`] accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// Verifies access tokens of one issuer for one API (or a few audiences).
///
/// Cheap to clone: everything lives behind one `Arc`, including the key cache, so clones
/// share keys and refreshes.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policy: Policy,
    keys: KeySource,
    realm: String,
    dpop: DpopSettings,
    /// The jtis of DPoP proofs accepted in their minute: per process, the norm for a
    /// resource server (RFC 9449 §11.1).
    replay: ReplayCache,
}

#[derive(Debug, Clone, Default)]
struct DpopSettings {
    required: bool,
    /// `scheme://authority` clients address this API by, for `htu`.
    origin: Option<String>,
    /// Where required nonces come from (RFC 9449 §9), when the API requires them.
    nonces: Option<Arc<NonceSource>>,
}

/// At most this many DPoP proofs a minute per guard (about 20 MB when full, ~17 000
/// requests a second — more than one core verifies); beyond, proofs are refused rather
/// than a replayable one forgotten.
const DPOP_PROOFS_REMEMBERED: usize = 1_000_000;

#[derive(Debug)]
enum KeySource {
    Fixed(KeySet),
    Remote(Arc<RemoteKeys>),
}

/// Marks, in the request extensions, which guard verified the `Claims` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VerifiedBy(usize);

/// The outcome of verifying with the keys at hand.
enum Attempt<'g> {
    Done(Result<Claims, TokenError>),
    /// The keys in this snapshot lacked the token's key: refetch, then try once more.
    Refetch(&'g Arc<RemoteKeys>, Arc<Snapshot>),
}

/// Why the first verification attempt did not succeed.
enum Failure {
    /// The token names a key we do not have (or we have none yet): worth a refetch.
    Miss,
    Token(TokenError),
}

impl Guard {
    /// Starts a configuration. `issuer` and at least one `audience` are required.
    pub fn builder() -> GuardBuilder {
        GuardBuilder::default()
    }

    /// The issuer tokens must carry in `iss`.
    pub fn issuer(&self) -> &str {
        &self.inner.policy.issuer
    }

    /// The audiences of which a token's `aud` must contain one.
    pub fn audiences(&self) -> &[String] {
        &self.inner.policy.audiences
    }

    /// Verifies a token: signature with a key from the issuer's JWKS (the algorithm comes
    /// from the key), `typ`, `iss`, `aud`, `exp`/`nbf`/`iat` with the leeway, and that it is
    /// not an ID token. An unknown `kid` triggers at most one JWKS refetch per cooldown.
    pub async fn verify(&self, token: &str) -> Result<Claims, GuardError> {
        self.verify_token(token)
            .await
            .map_err(GuardError::InvalidToken)
    }

    /// Reads the bearer token from `headers` (see [`bearer_token`]) and verifies it. A
    /// DPoP-bound token is refused here (it needs [`Guard::authenticate_request`]), and so
    /// is every token when the guard requires DPoP.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, GuardError> {
        let token = bearer_token(headers)?;
        let claims = self.verify(token).await?;
        self.bind(
            claims,
            Presented::Bearer(token),
            &Method::GET,
            &Uri::default(),
            headers,
        )
    }

    /// Verifies the request's access token under the `Bearer` or `DPoP` scheme. With
    /// `DPoP`, the request's one `DPoP` header must be a proof (RFC 9449 §4.3, §7.1) for
    /// `method` and `uri` (the request's; its origin is replaced by
    /// [`GuardBuilder::public_origin`] when set, else taken from `uri` if absolute, else
    /// `http://` and the `Host` header), fresh, not seen before, with `ath` the token's
    /// hash and signed by the key the token's `cnf.jkt` names.
    pub async fn authenticate_request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Claims, GuardError> {
        let presented = presented_token(headers)?;
        let claims = self.verify(presented.token()).await?;
        self.bind(claims, presented, method, uri, headers)
    }

    /// The sender constraint: a bound token only with its proof, any token only with a
    /// proof when DPoP is required.
    pub(crate) fn bind(
        &self,
        claims: Claims,
        presented: Presented<'_>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Claims, GuardError> {
        let token = match presented {
            Presented::Bearer(_) if claims.is_bound() => {
                return Err(TokenError::BoundTokenAsBearer.into());
            }
            Presented::Bearer(_) if self.inner.dpop.required => {
                return Err(TokenError::DpopRequired.into());
            }
            Presented::Bearer(_) => return Ok(claims),
            Presented::Dpop(token) => token,
        };
        let mut proofs = headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(GuardError::InvalidDpopProof(DpopError::Malformed(
                "exactly one DPoP header is needed",
            )));
        };
        let proof = proof
            .to_str()
            .map_err(|_| GuardError::InvalidDpopProof(DpopError::Malformed("header")))?;
        let target = self.htu(uri, headers);
        let now = unix_now() as i64;
        let context = ProofContext {
            method: method.as_str(),
            uri: &target,
            access_token: Some(token),
            now,
        };
        let verified = verify_proof(proof, &context).map_err(GuardError::InvalidDpopProof)?;
        match claims.dpop_jkt() {
            None => return Err(TokenError::NotDpopBound.into()),
            Some(jkt) if jkt != verified.jkt => return Err(TokenError::KeyMismatch.into()),
            Some(_) => {}
        }
        // After the proof is known good, before its jti is kept: the client retries with a
        // new proof carrying the nonce it is handed.
        if let Some(nonces) = &self.inner.dpop.nonces
            && !nonces.accepts(verified.nonce.as_deref(), now)
        {
            return Err(GuardError::UseDpopNonce(nonces.current(now)));
        }
        self.inner
            .replay
            .check(&verified, now)
            .map_err(GuardError::InvalidDpopProof)?;
        Ok(claims)
    }

    /// The URI a proof's `htu` must name for this request.
    fn htu(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let path = uri.path();
        if let Some(origin) = &self.inner.dpop.origin {
            return format!("{origin}{path}");
        }
        if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
            return format!("{scheme}://{authority}{path}");
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        format!("http://{host}{path}")
    }

    /// Whether the guard refuses tokens not presented with a DPoP proof.
    pub fn dpop_required(&self) -> bool {
        self.inner.dpop.required
    }

    /// A layer requiring a valid token; it inserts [`Claims`] into the request extensions.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone(), None)
    }

    /// A layer requiring a valid token that meets `requirement` (else 403).
    pub fn require(&self, requirement: Requirement) -> GuardLayer {
        GuardLayer::new(self.clone(), Some(requirement))
    }

    /// Shorthand for `require(Requirement::scope(scope))`.
    pub fn require_scope(&self, scope: impl Into<String>) -> GuardLayer {
        self.require(Requirement::scope(scope))
    }

    /// Shorthand for `require(Requirement::permission(permission))`.
    pub fn require_permission(&self, permission: impl Into<String>) -> GuardLayer {
        self.require(Requirement::permission(permission))
    }

    /// The RFC 6750 response for `error`, in this guard's realm.
    pub fn error_response(&self, error: &GuardError) -> Response {
        error.to_response_in(&self.inner.realm, self.inner.dpop.required)
    }

    /// Fetches the JWKS now (ignoring the cooldown; joining a fetch already running) and
    /// returns how many usable keys it has. Call it at startup to fail fast on a wrong
    /// issuer. On failure the previous keys stay in use. With a fixed key set this only
    /// counts the keys.
    pub async fn refresh_keys(&self) -> Result<usize, JwksError> {
        match &self.inner.keys {
            KeySource::Fixed(keys) => Ok(keys.len()),
            KeySource::Remote(remote) => remote.refresh().await,
        }
    }

    pub(crate) fn id(&self) -> VerifiedBy {
        VerifiedBy(Arc::as_ptr(&self.inner).addr())
    }

    async fn verify_token(&self, token: &str) -> Result<Claims, TokenError> {
        let (remote, missed) = match self.attempt(token) {
            Attempt::Done(result) => return result,
            Attempt::Refetch(remote, missed) => (remote, missed),
        };
        let fresh = remote.refetch_after_miss(&missed).await;
        let empty = KeySet::default();
        let keys = remote.usable(&fresh).unwrap_or(&empty);
        self.check(keys, token, unix_now()).map_err(settle)
    }

    /// Verifies with the keys at hand, without waiting; `None` when the token names a key
    /// we do not have (or no keys are usable yet), so a refetch must be awaited.
    pub(crate) fn verify_now(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        match self.attempt(token) {
            Attempt::Done(result) => Some(result),
            Attempt::Refetch(..) => None,
        }
    }

    fn attempt(&self, token: &str) -> Attempt<'_> {
        let now = unix_now();
        let remote = match &self.inner.keys {
            KeySource::Fixed(keys) => {
                return Attempt::Done(self.check(keys, token, now).map_err(settle));
            }
            KeySource::Remote(remote) => remote,
        };
        let empty = KeySet::default();
        let snapshot = remote.current();
        let keys = remote.usable(&snapshot).unwrap_or(&empty);
        match self.check(keys, token, now) {
            Err(Failure::Miss) => Attempt::Refetch(remote, snapshot),
            other => Attempt::Done(other.map_err(settle)),
        }
    }

    fn check(&self, keys: &KeySet, token: &str, now: f64) -> Result<Claims, Failure> {
        #[derive(PartialEq)]
        enum Lookup {
            NotAsked,
            Found,
            Missing,
        }
        let mut lookup = Lookup::NotAsked;
        let result = tessera_jose::verify_payload_with(token, |kid| {
            let key = keys.get(kid);
            lookup = if key.is_some() {
                Lookup::Found
            } else {
                Lookup::Missing
            };
            key
        });
        let verified = match result {
            Ok(verified) => verified,
            Err(JoseError::UnknownKey) if lookup == Lookup::Missing => return Err(Failure::Miss),
            // No `kid` in the header: acceptable only when there is a single key to try.
            Err(JoseError::UnknownKey) if lookup == Lookup::NotAsked => match keys.only() {
                Some(key) => key
                    .verify_payload(token)
                    .map_err(|e| Failure::Token(e.into()))?,
                None if keys.is_empty() => return Err(Failure::Miss),
                None => return Err(Failure::Token(TokenError::UnknownKey)),
            },
            Err(error) => return Err(Failure::Token(error.into())),
        };
        self.inner
            .policy
            .validate(verified, now, self.id())
            .map_err(Failure::Token)
    }
}

fn settle(failure: Failure) -> TokenError {
    match failure {
        Failure::Miss => TokenError::UnknownKey,
        Failure::Token(error) => error,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Configuration of a [`Guard`]. Defaults: leeway 30 s, refetch cooldown 10 s, refresh
/// interval 10 min, max-stale 24 h, HTTP timeout 5 s, realm `api`.
#[derive(Debug, Clone)]
pub struct GuardBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    leeway: Duration,
    jwks: Option<Jwks>,
    jwks_uri: Option<String>,
    http_client: Option<reqwest::Client>,
    timing: Timing,
    realm: String,
    dpop: DpopSettings,
}

impl Default for GuardBuilder {
    fn default() -> Self {
        GuardBuilder {
            issuer: None,
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
            jwks: None,
            jwks_uri: None,
            http_client: None,
            timing: Timing {
                cooldown: Duration::from_secs(10),
                refresh_interval: Duration::from_secs(600),
                max_stale: Duration::from_secs(24 * 3600),
                http_timeout: Duration::from_secs(5),
            },
            realm: DEFAULT_REALM.to_owned(),
            dpop: DpopSettings::default(),
        }
    }
}

impl GuardBuilder {
    /// The issuer, compared byte for byte with `iss`: Tessera's and Auth0's is the base URL
    /// with a trailing slash (`https://auth.example.com/`). A bare origin without a path
    /// gets the slash added; any other URL is kept as given. Keys are discovered from
    /// `<issuer>.well-known/openid-configuration`, whose `issuer` must match too.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An accepted audience (the API identifier). May be called several times: a token's
    /// `aud` must contain at least one of them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Several accepted audiences at once.
    pub fn audiences<I: IntoIterator<Item: Into<String>>>(mut self, audiences: I) -> Self {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`: default 30 s, at most 60 s
    /// ([`MAX_LEEWAY`]; more makes `build` fail).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Verify with this fixed key set instead of fetching one: no HTTP at all. For tests,
    /// and for embedding the guard in the process that owns the keys.
    pub fn jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Fetch keys from this URL instead of discovering `jwks_uri`.
    pub fn jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(jwks_uri.into());
        self
    }

    /// At most one refetch for an unknown `kid` per `cooldown` (default 10 s). The same
    /// bound applies, each on its own clock, to retrying the first load while the JWKS
    /// endpoint is unreachable and to retrying a failed scheduled refresh; a scheduled
    /// refresh or the first load never delays the refetch an unknown `kid` asks for.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.timing.cooldown = cooldown;
        self
    }

    /// Keys older than this are refreshed in the background (default 10 min), so removed
    /// keys stop being accepted.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.timing.refresh_interval = interval;
        self
    }

    /// While the JWKS endpoint is unreachable the last good keys keep being used for this
    /// long after they were fetched (default 24 h); after that every token is refused
    /// until a fetch succeeds.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.timing.max_stale = max_stale;
        self
    }

    /// Bound of each discovery or JWKS request, connection included (default 5 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.timing.http_timeout = timeout;
        self
    }

    /// The HTTP client to fetch keys with. The default one speaks https (rustls on aws-lc-rs)
    /// and trusts the system's roots (the OS store; `SSL_CERT_FILE` / `SSL_CERT_DIR` on
    /// Linux). To trust another CA, pass a client built with
    /// `reqwest::ClientBuilder::tls_certs_merge` or `tls_certs_only` (the per-request timeout
    /// still applies).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The `realm` of the `WWW-Authenticate` challenges (default `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Accept only DPoP-bound tokens with their proofs (RFC 9449), as express-oauth2-jwt-bearer's
    /// `dpop: {required: true}`. Default: both schemes; a DPoP-bound token is refused as a
    /// bearer token either way.
    pub fn dpop_required(mut self, required: bool) -> Self {
        self.dpop.required = required;
        self
    }

    /// The `scheme://host[:port]` clients reach this API at, which DPoP proofs name in
    /// `htu` — needed behind a proxy that terminates TLS or rewrites `Host`. Default: the
    /// request's own URI if absolute (HTTP/2), else `http://` and its `Host` header.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.dpop.origin = Some(origin.into());
        self
    }

    /// Require server-provided nonces in DPoP proofs (RFC 9449 §9): a proof without a
    /// current one is answered 401 `use_dpop_nonce` with the nonce to use in `DPoP-Nonce`
    /// (auth0-spa-js's fetcher retries with it by itself). A nonce is a MAC of the time
    /// under `secret`, good for one to two minutes: guards given the same secret accept
    /// each other's, and nothing is stored. Default: no nonces.
    pub fn dpop_nonces(mut self, secret: [u8; 32]) -> Self {
        self.dpop.nonces = Some(Arc::new(NonceSource::new(&secret)));
        self
    }

    /// Checks the configuration. Does no IO: keys are fetched on first use, or by
    /// [`Guard::refresh_keys`].
    pub fn build(mut self) -> Result<Guard, ConfigError> {
        let issuer = normalize_issuer(self.issuer.as_deref().ok_or(ConfigError::MissingIssuer)?)?;
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::MissingAudience);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge);
        }
        if let Some(origin) = &mut self.dpop.origin {
            let bare = origin.trim_end_matches('/');
            let rest = bare
                .strip_prefix("https://")
                .or_else(|| bare.strip_prefix("http://"))
                .ok_or(ConfigError::InvalidPublicOrigin)?;
            if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
                return Err(ConfigError::InvalidPublicOrigin);
            }
            *origin = bare.to_owned();
        }
        let keys = match self.jwks {
            Some(jwks) => {
                let keys = KeySet::from_jwks(&jwks.keys);
                if keys.is_empty() {
                    return Err(ConfigError::NoUsableKeys);
                }
                KeySource::Fixed(keys)
            }
            None => {
                if self
                    .jwks_uri
                    .as_deref()
                    .is_some_and(|uri| !is_http_url(uri))
                {
                    return Err(ConfigError::InvalidJwksUri);
                }
                let client = match self.http_client {
                    Some(client) => client,
                    None => reqwest::Client::builder()
                        .connect_timeout(self.timing.http_timeout)
                        .timeout(self.timing.http_timeout)
                        .redirect(reqwest::redirect::Policy::limited(3))
                        .build()
                        .map_err(|_| ConfigError::HttpClient)?,
                };
                KeySource::Remote(Arc::new(RemoteKeys::new(
                    client,
                    &issuer,
                    self.jwks_uri,
                    self.timing,
                )))
            }
        };
        Ok(Guard {
            inner: Arc::new(Inner {
                policy: Policy {
                    issuer,
                    audiences: self.audiences,
                    leeway_secs: self.leeway.as_secs_f64(),
                },
                keys,
                realm: self.realm,
                dpop: self.dpop,
                replay: ReplayCache::new(DPOP_PROOFS_REMEMBERED),
            }),
        })
    }
}

fn normalize_issuer(issuer: &str) -> Result<String, ConfigError> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or(ConfigError::InvalidIssuer)?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
        return Err(ConfigError::InvalidIssuer);
    }
    if rest.contains('/') {
        Ok(issuer.to_owned())
    } else {
        Ok(format!("{issuer}/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_origin_issuers_get_their_trailing_slash_and_others_stay_exact() {
        assert_eq!(
            normalize_issuer("https://a.example").unwrap(),
            "https://a.example/"
        );
        assert_eq!(
            normalize_issuer("https://a.example/").unwrap(),
            "https://a.example/"
        );
        assert_eq!(
            normalize_issuer("http://127.0.0.1:9/realms/x").unwrap(),
            "http://127.0.0.1:9/realms/x"
        );
        for bad in [
            "a.example",
            "ftp://a.example/",
            "https://",
            "https:///x",
            "https://a/?q",
            "https://a/#f",
        ] {
            assert_eq!(
                normalize_issuer(bad),
                Err(ConfigError::InvalidIssuer),
                "{bad}"
            );
        }
    }

    #[test]
    fn builder_refuses_incomplete_or_lax_configuration() {
        let base = || {
            Guard::builder()
                .issuer("https://a.example/")
                .audience("api")
        };
        assert_eq!(
            Guard::builder().audience("x").build().unwrap_err(),
            ConfigError::MissingIssuer
        );
        assert_eq!(
            Guard::builder()
                .issuer("https://a.example/")
                .build()
                .unwrap_err(),
            ConfigError::MissingAudience
        );
        assert_eq!(
            base().leeway(Duration::from_secs(61)).build().unwrap_err(),
            ConfigError::LeewayTooLarge
        );
        assert!(base().leeway(MAX_LEEWAY).build().is_ok());
        assert_eq!(
            base().jwks_uri("file:///etc/passwd").build().unwrap_err(),
            ConfigError::InvalidJwksUri
        );
        assert_eq!(
            base().jwks(Jwks { keys: vec![] }).build().unwrap_err(),
            ConfigError::NoUsableKeys
        );
    }
}
