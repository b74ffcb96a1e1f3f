//! Tessera as a relying party of an upstream OpenID Connect provider (`oidc` and
//! `google-oauth2` connections): the provider's metadata (discovery, or the endpoints the
//! connection names), the authorization request — PKCE S256, `state`, `nonce` —, the code
//! exchanged at its token endpoint, the ID token verified against its JWKS (`iss`, `aud`,
//! `azp`, `exp`, `iat`, `nonce`, the signature with an algorithm the key decides), and
//! userinfo, whose `sub` must be the ID token's.
//!
//! Every fetch goes to a URL an administrator configured, never follows a redirect (a
//! redirect is how an attacker would turn the server into a proxy), has a timeout, and
//! reads at most [`MAX_DOCUMENT_BYTES`]. Metadata and keys are kept a few minutes per
//! connection; an unknown `kid` fetches the keys again, at most once per
//! [`KEYS_REFETCH_AFTER`]. Knows no pages, cookies or transactions: `hosted::upstream` does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::connection::{
    GITHUB_API_URL, GITHUB_URL, GOOGLE_DISCOVERY_URL, Strategy, upstream_url,
};
use tessera_jose::{Jwks, MasterKey, VerifyingKey, verify_with};
use tessera_store::{ConnectionRecord, FederatedProfile};

fn seal_context(connection_id: &str) -> Vec<u8> {
    format!("tessera connection secret\0{connection_id}").into_bytes()
}

/// Seals a connection's client secret, bound to the connection's id: a sealed value
/// copied to another connection does not open.
pub(crate) fn seal_secret(master_key: &MasterKey, connection_id: &str, secret: &str) -> Vec<u8> {
    master_key.seal(secret.as_bytes(), &seal_context(connection_id))
}

/// A connection's client secret, opened; `None` if it has none or it does not open
/// (sealed under another master key).
pub(crate) fn client_secret(
    master_key: &MasterKey,
    connection: &ConnectionRecord,
) -> Option<String> {
    let sealed = connection.sealed_secret.as_deref()?;
    let opened = master_key
        .open(sealed, &seal_context(&connection.id))
        .ok()?;
    String::from_utf8(opened).ok()
}

/// The largest discovery document, JWKS, token or userinfo answer read (Auth0 caps
/// discovery at 128 KB).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 128 * 1024;
/// How long one upstream call may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long metadata and keys are kept before they are read again.
const KEEP_FOR: Duration = Duration::from_secs(600);
/// The least time between two fetches of a provider's keys for an unknown `kid`.
const KEYS_REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Clock difference tolerated on `exp` and `iat`.
const LEEWAY: i64 = 60;

/// Why a sign-in through a provider failed. The message is for the log and the
/// application's `error_description`; it names what was wrong, never a token or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamError(pub(crate) String);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn failed(message: impl Into<String>) -> UpstreamError {
    UpstreamError(message.into())
}

/// A provider's endpoints, as discovery or the connection's options give them.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Provider {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    pub(crate) jwks_uri: String,
    #[serde(default)]
    pub(crate) userinfo_endpoint: Option<String>,
    /// OpenID Connect RP-Initiated Logout: where the browser ends its session at the
    /// provider (a federated logout). Read as any JSON: what is not a usable URL only
    /// leaves federated logouts out, never sign-ins.
    #[serde(default)]
    end_session_endpoint: Option<Value>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207: whether the provider puts `iss` in every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<Value>,
}

impl Provider {
    /// `client_secret_basic` unless the provider lists only `client_secret_post`.
    fn uses_basic(&self) -> bool {
        self.token_endpoint_auth_methods_supported
            .as_ref()
            .is_none_or(|methods| {
                methods.iter().any(|m| m == "client_secret_basic")
                    || !methods.iter().any(|m| m == "client_secret_post")
            })
    }

    /// RFC 9207 §2.4: the authorization response's `iss`, when there is one (and there must
    /// be when the provider says it always sends it), is the provider's issuer. Every
    /// connection shares one callback, so this is what tells a mix-up with another
    /// provider apart before the code is sent anywhere.
    fn check_response_issuer(&self, iss: Option<&str>) -> Result<(), UpstreamError> {
        match iss {
            Some(iss) if iss == self.issuer => Ok(()),
            Some(_) => Err(failed(
                "the authorization response names another issuer (iss)",
            )),
            None if self.authorization_response_iss_parameter_supported
                == Some(Value::Bool(true)) =>
            {
                Err(failed(
                    "the authorization response lacks the issuer (iss) the provider promises",
                ))
            }
            None => Ok(()),
        }
    }

    fn check(&self) -> Result<(), UpstreamError> {
        for (what, url) in [
            ("authorization_endpoint", Some(&self.authorization_endpoint)),
            ("token_endpoint", Some(&self.token_endpoint)),
            ("jwks_uri", Some(&self.jwks_uri)),
            ("userinfo_endpoint", self.userinfo_endpoint.as_ref()),
        ] {
            if let Some(url) = url {
                upstream_url(url).map_err(|why| failed(format!("the provider's {what} {why}")))?;
            }
        }
        Ok(())
    }
}

/// What the provider says about the user who signed in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Identity {
    pub(crate) sub: String,
    pub(crate) profile: FederatedProfile,
    /// The provider's session id (an OpenID Connect ID token's `sid`), which its
    /// back-channel logout names; `None` when it sent none (or none usable).
    pub(crate) sid: Option<String>,
}

/// What the authorization request sends, kept to check the answer.
pub(crate) struct Leg<'a> {
    pub(crate) state: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) login_hint: Option<&'a str>,
}

/// The provider's answer at the callback, and what the authorization request kept.
#[derive(Clone, Copy)]
pub(crate) struct Answer<'a> {
    pub(crate) code: &'a str,
    pub(crate) code_verifier: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) redirect_uri: &'a str,
    /// The `iss` of the authorization response (RFC 9207), if it had one.
    pub(crate) iss: Option<&'a str>,
}

struct Keys {
    keys: HashMap<String, VerifyingKey>,
    /// The set's only key, which may have no `kid`: OIDC Core §10.1 lets an ID token name
    /// no key when its provider has just one.
    sole: Option<VerifyingKey>,
    fetched: Instant,
}

/// The upstream client and what it keeps per connection.
pub(crate) struct Upstreams {
    http: reqwest::Client,
    /// By connection id: when it was read, the connection's `updated_at` it was read
    /// for (a change made elsewhere, e.g. by the CLI, is a miss), the provider.
    providers: Mutex<HashMap<String, (Instant, i64, Provider)>>,
    keys: Mutex<HashMap<String, Keys>>,
}

impl Default for Upstreams {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent("Tessera")
            .build()
            .expect("a client without custom roots builds");
        Upstreams {
            http,
            providers: Mutex::default(),
            keys: Mutex::default(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn text<'a>(options: &'a Map<String, Value>, member: &str) -> Option<&'a str> {
    options.get(member).and_then(Value::as_str)
}

/// A provider's identifier (a `sub`, `sid` or `jti`) Tessera keeps or looks up: not
/// empty, at most 255 bytes, no control characters.
fn usable_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 255 && !id.chars().any(char::is_control)).then_some(id)
}

/// A JWT's audiences (`aud`, one or a list).
fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The event a logout token carries (OIDC Back-Channel Logout 1.0 §2.4).
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long after it was issued a provider's logout token is taken: a delivery retried
/// later than that is refused (its sessions have long been looked for).
const LOGOUT_TOKEN_MAX_AGE: i64 = 600;

/// What a provider's verified logout token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogoutToken {
    /// The provider's subject, when the token names one.
    pub(crate) sub: Option<String>,
    /// The provider's session id, when the token names one (at least one of the two).
    pub(crate) sid: Option<String>,
    pub(crate) jti: String,
    /// Until when this token would be taken: its `jti` is kept that long.
    pub(crate) taken_until: i64,
}

impl Upstreams {
    /// Forgets what was kept for a connection (it changed or was deleted).
    pub(crate) fn forget(&self, connection_id: &str) {
        lock(&self.providers).remove(connection_id);
        lock(&self.keys).remove(connection_id);
    }

    /// Forgets what was kept for every connection.
    pub(crate) fn forget_all(&self) {
        lock(&self.providers).clear();
        lock(&self.keys).clear();
    }

    /// Reads an answer of at most [`MAX_DOCUMENT_BYTES`] as JSON; a redirect or an
    /// error status fails with what it was.
    /// Sends `request` and reads its answer, at most [`MAX_DOCUMENT_BYTES`]; a redirect
    /// fails (it is never followed).
    async fn fetch(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), UpstreamError> {
        let mut response = request.send().await.map_err(|error| {
            failed(format!(
                "the provider's {what} could not be reached ({})",
                kind(&error)
            ))
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(failed(format!(
                "the provider's {what} answered with a redirect, which is not followed"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failed(format!("the provider's {what} failed ({})", kind(&error))))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(failed(format!(
                    "the provider's {what} is larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    /// [`Upstreams::fetch`] of a JSON answer. An error status, or an OAuth `error` member
    /// in any answer (GitHub answers errors with 200), fails with the error's name.
    async fn json(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Value, UpstreamError> {
        let (status, body) = self.fetch(request, what).await?;
        let value: Value = serde_json::from_slice(&body).map_err(|_| {
            failed(format!(
                "the provider's {what} is not JSON (status {status})"
            ))
        })?;
        check_answer(status, &value, what)?;
        Ok(value)
    }

    /// The provider of an OIDC connection: discovered (and its `issuer` checked against
    /// the URL it came from) or as the connection names it.
    pub(crate) async fn provider(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<Provider, UpstreamError> {
        if let Some((read, version, provider)) = lock(&self.providers).get(&connection.id)
            && read.elapsed() < KEEP_FOR
            && *version == connection.updated_at
        {
            return Ok(provider.clone());
        }
        let options = &connection.options;
        let discovery = match Strategy::parse(&connection.strategy) {
            Some(Strategy::Google) => Some(GOOGLE_DISCOVERY_URL),
            Some(Strategy::Oidc) => text(options, "discovery_url"),
            _ => {
                return Err(failed(
                    "the connection does not sign in with OpenID Connect",
                ));
            }
        };
        let provider = match discovery {
            Some(url) => {
                let url =
                    upstream_url(url).map_err(|why| failed(format!("the discovery URL {why}")))?;
                let document = self
                    .json(self.http.get(url.clone()), "discovery document")
                    .await?;
                let provider: Provider = serde_json::from_value(document)
                    .map_err(|_| failed("the provider's discovery document lacks an endpoint"))?;
                // OIDC Discovery §4.3: the issuer is the URL the document was found under.
                let expected = url
                    .as_str()
                    .trim_end_matches(".well-known/openid-configuration")
                    .trim_end_matches('/');
                if provider.issuer.trim_end_matches('/') != expected {
                    return Err(failed(
                        "the provider's discovery document names another issuer",
                    ));
                }
                provider
            }
            None => Provider {
                issuer: text(options, "issuer").unwrap_or_default().to_string(),
                authorization_endpoint: text(options, "authorization_endpoint")
                    .unwrap_or_default()
                    .to_string(),
                token_endpoint: text(options, "token_endpoint")
                    .unwrap_or_default()
                    .to_string(),
                jwks_uri: text(options, "jwks_uri").unwrap_or_default().to_string(),
                userinfo_endpoint: text(options, "userinfo_endpoint").map(str::to_string),
                end_session_endpoint: options.get("end_session_endpoint").cloned(),
                token_endpoint_auth_methods_supported: None,
                authorization_response_iss_parameter_supported: None,
            },
        };
        provider.check()?;
        lock(&self.providers).insert(
            connection.id.clone(),
            (Instant::now(), connection.updated_at, provider.clone()),
        );
        Ok(provider)
    }

    /// Where the browser ends its session at the connection's provider (OpenID Connect
    /// RP-Initiated Logout 1.0 §2: the provider's `end_session_endpoint` with the
    /// connection's `client_id` and, when given, where the provider sends the browser
    /// after — a URL it must have registered for that client). `None` when the provider
    /// has no such endpoint or cannot be read now: the logout here stands alone.
    pub(crate) async fn end_session_url(
        &self,
        connection: &ConnectionRecord,
        post_logout_redirect_uri: Option<&str>,
    ) -> Option<String> {
        if !matches!(strategy_of(connection), Ok(Strategy::Oidc)) {
            return None;
        }
        let provider = match self.provider(connection).await {
            Ok(provider) => provider,
            Err(error) => {
                tracing::warn!(connection = %connection.name, %error, "federated logout: the provider cannot be read");
                return None;
            }
        };
        // Checked here, not with the other endpoints: one a federated logout cannot use must
        // not stop sign-ins.
        let endpoint = provider
            .end_session_endpoint
            .as_ref()?
            .as_str()
            .unwrap_or_default();
        let mut url = match upstream_url(endpoint) {
            Ok(url) => url,
            Err(why) => {
                tracing::warn!(connection = %connection.name, "federated logout: the provider's end_session_endpoint {why}");
                return None;
            }
        };
        let client_id = text(&connection.options, "client_id").unwrap_or_default();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", client_id);
            if let Some(uri) = post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri);
            }
        }
        Some(url.into())
    }

    /// Where the browser goes to sign in at the connection's provider.
    pub(crate) async fn authorization_url(
        &self,
        connection: &ConnectionRecord,
        leg: &Leg<'_>,
    ) -> Result<String, UpstreamError> {
        match strategy_of(connection)? {
            Strategy::Oidc | Strategy::Google => {
                let provider = self.provider(connection).await?;
                oidc_authorization_url(&provider, connection, leg)
            }
            Strategy::GitHub | Strategy::OAuth2 => oauth2_authorization_url(connection, leg),
            Strategy::Database => Err(failed("the database connection has no provider")),
        }
    }

    /// Redeems `code` and returns who signed in, everything checked.
    pub(crate) async fn finish(
        &self,
        connection: &ConnectionRecord,
        client_secret: &str,
        answer: &Answer<'_>,
        now: i64,
    ) -> Result<Identity, UpstreamError> {
        match strategy_of(connection)? {
            Strategy::Oidc | Strategy::Google => {
                self.finish_oidc(connection, client_secret, answer, now)
                    .await
            }
            Strategy::GitHub => self.finish_github(connection, client_secret, answer).await,
            Strategy::OAuth2 => self.finish_oauth2(connection, client_secret, answer).await,
            Strategy::Database => Err(failed("the database connection has no provider")),
        }
    }

    /// Redeems a code at a plain OAuth 2.0 token endpoint (secret in the body, as GitHub
    /// and most such providers take it) and returns the access token. The answer may be
    /// JSON or, as GitHub sends it to clients that do not ask for JSON, form-encoded.
    async fn redeem_oauth2(
        &self,
        token_url: &str,
        connection: &ConnectionRecord,
        client_secret: &str,
        answer: &Answer<'_>,
    ) -> Result<String, UpstreamError> {
        let client_id = text(&connection.options, "client_id").unwrap_or_default();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", answer.code),
            ("redirect_uri", answer.redirect_uri),
            ("code_verifier", answer.code_verifier),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        let request = self
            .http
            .post(token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form);
        let (status, body) = self.fetch(request, "token endpoint").await?;
        let value = serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| {
            Value::Object(
                form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect(),
            )
        });
        check_answer(status, &value, "token endpoint")?;
        value
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_string)
            .ok_or_else(|| failed("the provider's token answer has no access_token"))
    }

    /// GitHub: the user from `/user`, the email from `/user/emails` — the primary one,
    /// verified as GitHub says — or, without that scope, `/user`'s public email unverified;
    /// none when GitHub shares neither (the user then has no email).
    async fn finish_github(
        &self,
        connection: &ConnectionRecord,
        client_secret: &str,
        answer: &Answer<'_>,
    ) -> Result<Identity, UpstreamError> {
        let site = text(&connection.options, "github_url").unwrap_or(GITHUB_URL);
        let api = text(&connection.options, "github_api_url").unwrap_or(GITHUB_API_URL);
        let token_url = format!("{}/login/oauth/access_token", site.trim_end_matches('/'));
        let access_token = self
            .redeem_oauth2(&token_url, connection, client_secret, answer)
            .await?;
        let api = api.trim_end_matches('/');
        let get = |path: &str| {
            self.http
                .get(format!("{api}{path}"))
                .bearer_auth(&access_token)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        };
        let user = self.json(get("/user"), "user API").await?;
        let id = match user.get("id") {
            Some(Value::Number(id)) if id.is_u64() => id.to_string(),
            _ => return Err(failed("the provider's user has no numeric id")),
        };
        let emails = self.json(get("/user/emails"), "emails API").await.ok();
        let primary = emails.as_ref().and_then(Value::as_array).and_then(|list| {
            list.iter()
                .find(|email| email.get("primary") == Some(&Value::Bool(true)))
        });
        let mut claims = Map::new();
        match primary {
            Some(primary) => {
                claims.insert(
                    "email".into(),
                    primary.get("email").cloned().unwrap_or_default(),
                );
                claims.insert(
                    "email_verified".into(),
                    primary.get("verified").cloned().unwrap_or_default(),
                );
            }
            None => {
                claims.insert(
                    "email".into(),
                    user.get("email").cloned().unwrap_or_default(),
                );
            }
        }
        for (claim, member) in [
            ("name", "name"),
            ("nickname", "login"),
            ("picture", "avatar_url"),
        ] {
            if let Some(value) = user.get(member) {
                claims.insert(claim.into(), value.clone());
            }
        }
        Ok(Identity {
            sub: id,
            profile: profile_of(&claims),
            sid: None,
        })
    }

    /// A plain OAuth 2.0 provider: the profile read from `userinfo_url` through the
    /// connection's `profile_map` (JSON pointers).
    async fn finish_oauth2(
        &self,
        connection: &ConnectionRecord,
        client_secret: &str,
        answer: &Answer<'_>,
    ) -> Result<Identity, UpstreamError> {
        let options = &connection.options;
        let token_url = text(options, "tokenURL").unwrap_or_default();
        upstream_url(token_url).map_err(|why| failed(format!("the tokenURL {why}")))?;
        let access_token = self
            .redeem_oauth2(token_url, connection, client_secret, answer)
            .await?;
        let userinfo_url = text(options, "userinfo_url").unwrap_or_default();
        upstream_url(userinfo_url).map_err(|why| failed(format!("the userinfo_url {why}")))?;
        let profile = self
            .json(
                self.http.get(userinfo_url).bearer_auth(&access_token),
                "userinfo",
            )
            .await?;
        let map = options
            .get("profile_map")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut claims = Map::new();
        for (member, pointer) in &map {
            if let Some(value) = pointer.as_str().and_then(|p| profile.pointer(p)) {
                claims.insert(member.clone(), value.clone());
            }
        }
        let sub = match claims.remove("user_id") {
            Some(Value::String(id)) => id,
            Some(Value::Number(id)) => id.to_string(),
            _ => {
                return Err(failed(
                    "the provider's profile has no user_id where profile_map points",
                ));
            }
        };
        if sub.is_empty() || sub.len() > 255 || sub.chars().any(char::is_control) {
            return Err(failed("the provider's user_id is not usable"));
        }
        Ok(Identity {
            sub,
            profile: profile_of(&claims),
            sid: None,
        })
    }

    /// Redeems `code` at an OpenID Connect provider and verifies its ID token.
    async fn finish_oidc(
        &self,
        connection: &ConnectionRecord,
        client_secret: &str,
        answer: &Answer<'_>,
        now: i64,
    ) -> Result<Identity, UpstreamError> {
        let Answer {
            code,
            code_verifier,
            nonce,
            redirect_uri,
            iss,
        } = *answer;
        let provider = self.provider(connection).await?;
        provider.check_response_issuer(iss)?;
        let client_id = text(&connection.options, "client_id").unwrap_or_default();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ];
        let mut request = self
            .http
            .post(&provider.token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json");
        request = if provider.uses_basic() {
            // RFC 6749 §2.3.1: each part form-encoded before Basic.
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request
                .basic_auth(encode(client_id), Some(encode(client_secret)))
                .form(&form)
        } else {
            let mut with_secret = form.to_vec();
            with_secret.push(("client_id", client_id));
            with_secret.push(("client_secret", client_secret));
            request.form(&with_secret)
        };
        let tokens = self.json(request, "token endpoint").await?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| failed("the provider's token answer has no id_token"))?;
        let claims = self
            .verify_id_token(connection, &provider, id_token, client_id, nonce, now)
            .await?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(usable_id)
            .ok_or_else(|| failed("the ID token has no usable sub"))?
            .to_string();
        let sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .and_then(usable_id)
            .map(str::to_string);
        let mut profile_claims = claims.clone();
        if let (Some(userinfo), Some(access_token)) = (
            &provider.userinfo_endpoint,
            tokens.get("access_token").and_then(Value::as_str),
        ) {
            let answer = self
                .json(
                    self.http.get(userinfo).bearer_auth(access_token),
                    "userinfo",
                )
                .await?;
            let Value::Object(userinfo) = answer else {
                return Err(failed("the provider's userinfo is not an object"));
            };
            // OIDC Core §5.3.2: a userinfo answer about someone else is not used.
            if userinfo.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
                return Err(failed("the provider's userinfo is about another subject"));
            }
            for (name, value) in userinfo {
                profile_claims.entry(name).or_insert(value);
            }
        }
        Ok(Identity {
            sub,
            profile: profile_of(&profile_claims),
            sid,
        })
    }

    /// The claims of a JWT the provider signed (`what` names it in errors), its issuer
    /// the provider and its audience this connection's client; everything else is the
    /// caller's to check.
    async fn provider_signed(
        &self,
        (connection, provider): (&ConnectionRecord, &Provider),
        token: &str,
        what: &str,
    ) -> Result<(Map<String, Value>, String), UpstreamError> {
        let header = tessera_jose::peek_header(token)
            .map_err(|_| failed(format!("the {what} is not a signed JWT")))?;
        let kid = header.kid;
        if !self.has_key(&connection.id, kid.as_deref()) {
            self.fetch_keys(connection, provider).await?;
        }
        let verified = {
            let keys = lock(&self.keys);
            let set = keys.get(&connection.id);
            match kid {
                Some(_) => verify_with(token, |kid| set.and_then(|set| set.keys.get(kid))),
                None => set
                    .and_then(|set| set.sole.as_ref())
                    .ok_or_else(|| {
                        failed(format!(
                            "the {what} names no key (kid) and the provider has several"
                        ))
                    })?
                    .verify(token),
            }
            .map_err(|error| failed(format!("the {what} was refused: {error}")))?
        };
        let claims = verified.claims;
        let issuer = claims.get("iss").and_then(Value::as_str);
        if issuer != Some(provider.issuer.as_str()) {
            return Err(failed(format!("the {what}'s issuer is not the provider's")));
        }
        let client_id = text(&connection.options, "client_id").unwrap_or_default();
        if !audiences(&claims).contains(&client_id) {
            return Err(failed(format!(
                "the {what} is not meant for this connection's client"
            )));
        }
        Ok((claims, header.typ.unwrap_or_default()))
    }

    async fn verify_id_token(
        &self,
        connection: &ConnectionRecord,
        provider: &Provider,
        id_token: &str,
        client_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let (claims, _) = self
            .provider_signed((connection, provider), id_token, "ID token")
            .await?;
        let audiences = audiences(&claims);
        let azp = claims.get("azp").and_then(Value::as_str);
        if (audiences.len() > 1 || azp.is_some()) && azp != Some(client_id) {
            return Err(failed("the ID token was issued to another party (azp)"));
        }
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        match time("exp") {
            Some(exp) if exp + LEEWAY > now => {}
            _ => return Err(failed("the ID token has expired")),
        }
        if time("iat").is_none_or(|iat| iat > now + LEEWAY) {
            return Err(failed(
                "the ID token has no issue time or one in the future",
            ));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(failed("the ID token's nonce is not the one sent"));
        }
        Ok(claims)
    }

    /// Verifies a logout token the connection's provider posted (OIDC Back-Channel Logout
    /// 1.0 §2.6): signed by the provider's key, its issuer the provider's, meant for this
    /// connection's client, typed as a logout token or plain JWT, the back-channel event,
    /// no `nonce` (so no ID token passes for one), issued within
    /// [`LOGOUT_TOKEN_MAX_AGE`] and not expired, a `jti`, and a `sub` or `sid`.
    pub(crate) async fn verify_logout_token(
        &self,
        connection: &ConnectionRecord,
        token: &str,
        now: i64,
    ) -> Result<LogoutToken, UpstreamError> {
        if !matches!(strategy_of(connection)?, Strategy::Oidc | Strategy::Google) {
            return Err(failed(
                "the connection does not sign in with OpenID Connect",
            ));
        }
        let provider = self.provider(connection).await?;
        let (claims, typ) = self
            .provider_signed((connection, &provider), token, "logout token")
            .await?;
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if !["", "jwt", "logout+jwt"].contains(&typ) {
            return Err(failed("the logout token is typed as another kind of token"));
        }
        let event = claims
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
        if !event.is_some_and(Value::is_object) {
            return Err(failed(
                "the logout token carries no back-channel logout event",
            ));
        }
        if claims.contains_key("nonce") {
            return Err(failed("the logout token has a nonce, as an ID token does"));
        }
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        let Some(iat) = time("iat").filter(|iat| *iat <= now + LEEWAY) else {
            return Err(failed(
                "the logout token has no issue time or one in the future",
            ));
        };
        if iat + LOGOUT_TOKEN_MAX_AGE + LEEWAY <= now {
            return Err(failed("the logout token was issued too long ago"));
        }
        let exp = time("exp");
        if exp.is_some_and(|exp| exp + LEEWAY <= now) {
            return Err(failed("the logout token has expired"));
        }
        let id = |name: &str| -> Result<Option<String>, UpstreamError> {
            match claims.get(name) {
                None => Ok(None),
                Some(value) => value
                    .as_str()
                    .and_then(usable_id)
                    .map(|id| Some(id.to_string()))
                    .ok_or_else(|| failed(format!("the logout token's {name} is not usable"))),
            }
        };
        let jti = id("jti")?.ok_or_else(|| failed("the logout token has no jti"))?;
        let (sub, sid) = (id("sub")?, id("sid")?);
        if sub.is_none() && sid.is_none() {
            return Err(failed(
                "the logout token names neither a subject nor a session",
            ));
        }
        let mut taken_until = iat + LOGOUT_TOKEN_MAX_AGE + LEEWAY;
        if let Some(exp) = exp {
            taken_until = taken_until.min(exp + LEEWAY);
        }
        Ok(LogoutToken {
            sub,
            sid,
            jti,
            taken_until,
        })
    }

    /// Whether the keys kept for the connection are fresh and have `kid` (the sole key
    /// when the token names none).
    fn has_key(&self, connection_id: &str, kid: Option<&str>) -> bool {
        lock(&self.keys).get(connection_id).is_some_and(|set| {
            let known = match kid {
                Some(kid) => set.keys.contains_key(kid),
                None => set.sole.is_some(),
            };
            known && set.fetched.elapsed() < KEEP_FOR
        })
    }

    /// Fetches the provider's keys, unless they were fetched moments ago.
    async fn fetch_keys(
        &self,
        connection: &ConnectionRecord,
        provider: &Provider,
    ) -> Result<(), UpstreamError> {
        if lock(&self.keys)
            .get(&connection.id)
            .is_some_and(|set| set.fetched.elapsed() < KEYS_REFETCH_AFTER)
        {
            return Ok(());
        }
        let document = self.json(self.http.get(&provider.jwks_uri), "JWKS").await?;
        let jwks: Jwks = serde_json::from_value(document)
            .map_err(|_| failed("the provider's JWKS is not a key set"))?;
        // Keys Tessera cannot use (encryption keys, other types) are skipped, not fatal.
        let signing: Vec<_> = jwks
            .keys
            .iter()
            .filter(|jwk| jwk.use_.as_deref().is_none_or(|u| u == "sig"))
            .collect();
        let keys = signing
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.kid.clone()?;
                VerifyingKey::from_jwk(jwk).ok().map(|key| (kid, key))
            })
            .collect();
        let sole = match signing.as_slice() {
            [only] => VerifyingKey::from_jwk(only).ok(),
            _ => None,
        };
        lock(&self.keys).insert(
            connection.id.clone(),
            Keys {
                keys,
                sole,
                fetched: Instant::now(),
            },
        );
        Ok(())
    }
}

/// The authorization URL of an OpenID Connect provider.
fn oidc_authorization_url(
    provider: &Provider,
    connection: &ConnectionRecord,
    leg: &Leg<'_>,
) -> Result<String, UpstreamError> {
    let mut url = upstream_url(&provider.authorization_endpoint)
        .map_err(|why| failed(format!("the provider's authorization_endpoint {why}")))?;
    let scope = text(&connection.options, "scopes")
        .or_else(|| text(&connection.options, "scope"))
        .unwrap_or("openid profile email");
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair(
                "client_id",
                text(&connection.options, "client_id").unwrap_or_default(),
            )
            .append_pair("redirect_uri", leg.redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", leg.state)
            .append_pair("nonce", leg.nonce)
            .append_pair("code_challenge", leg.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = leg.login_hint {
            query.append_pair("login_hint", hint);
        }
    }
    Ok(url.into())
}

/// The authorization URL of a plain OAuth 2.0 provider (GitHub's, or `authorizationURL`):
/// no nonce (there is no ID token); PKCE S256, which GitHub supports and RFC 6749 servers
/// ignore when they do not.
fn oauth2_authorization_url(
    connection: &ConnectionRecord,
    leg: &Leg<'_>,
) -> Result<String, UpstreamError> {
    let options = &connection.options;
    let (endpoint, default_scope) = match strategy_of(connection)? {
        Strategy::GitHub => (
            format!(
                "{}/login/oauth/authorize",
                text(options, "github_url")
                    .unwrap_or(GITHUB_URL)
                    .trim_end_matches('/')
            ),
            "read:user user:email",
        ),
        _ => (
            text(options, "authorizationURL")
                .unwrap_or_default()
                .to_string(),
            "",
        ),
    };
    let mut url = upstream_url(&endpoint)
        .map_err(|why| failed(format!("the provider's authorization URL {why}")))?;
    let scope = match options.get("scope") {
        Some(Value::String(scope)) => scope.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => default_scope.to_string(),
    };
    let pkce = strategy_of(connection)? == Strategy::GitHub
        || options.get("pkce_enabled") == Some(&Value::Bool(true));
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", text(options, "client_id").unwrap_or_default())
            .append_pair("redirect_uri", leg.redirect_uri)
            .append_pair("state", leg.state);
        if !scope.is_empty() {
            query.append_pair("scope", &scope);
        }
        if pkce {
            query
                .append_pair("code_challenge", leg.code_challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    Ok(url.into())
}

fn strategy_of(connection: &ConnectionRecord) -> Result<Strategy, UpstreamError> {
    Strategy::parse(&connection.strategy)
        .ok_or_else(|| failed("the connection's strategy is unknown"))
}

/// Fails on an error status, or an OAuth `error` member whatever the status.
fn check_answer(
    status: reqwest::StatusCode,
    value: &Value,
    what: &str,
) -> Result<(), UpstreamError> {
    let error = value.get("error").and_then(Value::as_str).map(error_name);
    if !status.is_success() || error.is_some() {
        return Err(failed(format!(
            "the provider's {what} answered {status} {}",
            error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// An OAuth error name a provider sent, as Tessera repeats it (in the application's
/// `error_description` and the audit log): an error name is lower-case words joined by
/// `_` (`access_denied`, `invalid_grant`); anything else — which could be a token, a code
/// or a secret the provider echoed — is not repeated.
pub(crate) fn error_name(error: &str) -> &str {
    let plain = !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if plain { error } else { "unrecognized_error" }
}

/// What a reqwest error was, without its URL (which may carry a query).
fn kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused or unreachable"
    } else {
        "transport error"
    }
}

/// The profile from the provider's claims. An email that is absent, not a string or not
/// a valid address is none: the user signs in without one, as on Auth0 (never with a
/// malformed one). `email_verified` is the provider's boolean as it says it — absent, or
/// anything but `true`, is `false` — and `false` without an email.
fn profile_of(claims: &Map<String, Value>) -> FederatedProfile {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let email = text("email").and_then(|email| tessera_core::validate::email(email).ok());
    let person = |name: &str| {
        text(name).and_then(|value| tessera_core::validate::person_name(value, name).ok())
    };
    FederatedProfile {
        email_verified: email.is_some() && claims.get("email_verified") == Some(&Value::Bool(true)),
        email,
        name: person("name"),
        nickname: person("nickname").or_else(|| person("preferred_username")),
        picture: text("picture").and_then(|url| tessera_core::validate::picture_url(url).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn email_verified_is_the_providers_boolean_only() {
        let base = json!({"email": "a@x.io", "name": "Ada"});
        for (value, expected) in [
            (json!(true), true),
            (json!(false), false),
            (json!("true"), false),
            (json!(1), false),
            (Value::Null, false),
        ] {
            let mut claims = object(base.clone());
            claims.insert("email_verified".into(), value.clone());
            assert_eq!(profile_of(&claims).email_verified, expected, "{value}");
        }
        assert!(!profile_of(&object(base)).email_verified);
    }

    #[test]
    fn a_profile_without_a_usable_email_has_none_and_markup_is_dropped() {
        let long = format!("{}@x.io", "a".repeat(10 * 1024));
        for email in [
            Value::Null,
            json!(""),
            json!("not an email"),
            json!({"address": "a@x.io"}),
            json!(["a@x.io"]),
            json!(42),
            json!(long),
        ] {
            let profile = profile_of(&object(
                json!({"email": email.clone(), "email_verified": true, "name": "Ada"}),
            ));
            assert_eq!(profile.email, None, "{email}");
            assert!(!profile.email_verified, "{email}");
            assert_eq!(profile.name.as_deref(), Some("Ada"));
        }
        assert_eq!(profile_of(&object(json!({"name": "Ada"}))).email, None);
        let profile = profile_of(&object(json!({
            "email": "Ada@X.io",
            "name": "<script>",
            "preferred_username": "ada",
            "picture": "javascript:alert(1)",
        })));
        assert_eq!(profile.email.as_deref(), Some("ada@x.io"));
        assert_eq!(profile.name, None);
        assert_eq!(profile.nickname.as_deref(), Some("ada"));
        assert_eq!(profile.picture, None);
    }

    #[test]
    fn basic_authentication_unless_only_post_is_offered() {
        let provider = |methods: Option<Vec<&str>>| Provider {
            issuer: "https://idp/".into(),
            authorization_endpoint: "https://idp/a".into(),
            token_endpoint: "https://idp/t".into(),
            jwks_uri: "https://idp/k".into(),
            userinfo_endpoint: None,
            end_session_endpoint: None,
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.into_iter().map(str::to_string).collect()),
            authorization_response_iss_parameter_supported: None,
        };
        assert!(provider(None).uses_basic());
        assert!(provider(Some(vec!["client_secret_basic", "client_secret_post"])).uses_basic());
        assert!(!provider(Some(vec!["client_secret_post"])).uses_basic());
    }

    #[test]
    fn the_authorization_responses_iss_is_the_providers_issuer() {
        // What npm oidc-provider's discovery says; it sends `iss` with every answer.
        let promising: Provider = serde_json::from_value(json!({
            "issuer": "http://127.0.0.1:4000",
            "authorization_endpoint": "http://127.0.0.1:4000/auth",
            "token_endpoint": "http://127.0.0.1:4000/token",
            "jwks_uri": "http://127.0.0.1:4000/jwks",
            "authorization_response_iss_parameter_supported": true,
        }))
        .unwrap();
        assert!(
            promising
                .check_response_issuer(Some("http://127.0.0.1:4000"))
                .is_ok()
        );
        for other in ["http://127.0.0.1:4000/", "http://127.0.0.1:4001", ""] {
            assert!(
                promising.check_response_issuer(Some(other)).is_err(),
                "{other:?}"
            );
        }
        assert!(promising.check_response_issuer(None).is_err());

        // A provider that does not promise it: none is fine, a wrong one is not.
        let mut silent = promising.clone();
        silent.authorization_response_iss_parameter_supported = None;
        assert!(silent.check_response_issuer(None).is_ok());
        assert!(
            silent
                .check_response_issuer(Some("https://evil.example"))
                .is_err()
        );
        // Only the boolean `true` is a promise.
        silent.authorization_response_iss_parameter_supported = Some(json!("true"));
        assert!(silent.check_response_issuer(None).is_ok());
    }
}
