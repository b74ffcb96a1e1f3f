//! Test harness: the real server on an ephemeral port with a fresh SQLite file (or a given
//! database: `spawn_on`), a browser-like HTTP client (cookies, no automatic redirects), and
//! an independent JWT verifier (jsonwebtoken) fed from the published JWKS.

use std::net::SocketAddr;

use reqwest::redirect::Policy;
use serde_json::Value;
use tessera_core::{AppType, Client, ClientGrant, ResourceServer, Scope, TokenDialect, ids};
use tessera_jose::MasterKey;
use tessera_server::{Application, MailConfig, ServerConfig};
use tessera_store::{NewUser, Store};

use crate::smtp::SmtpReceiver;

pub const API: &str = "https://quickstarts/api";
pub const SPA_ORIGIN: &str = "http://localhost:3000";
pub const CALLBACK: &str = "http://localhost:3000/callback";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestServer {
    pub base: String,
    pub issuer: String,
    pub store: Store,
    pub spa_client_id: String,
    pub m2m_client_id: String,
    pub m2m_secret: String,
    pub user_email: String,
    pub user_id: String,
    pub master_key: MasterKey,
    /// `http://ADDR` of the metrics listener, when the configuration asked for one.
    pub metrics_base: Option<String>,
    /// Where the dashboard's `/admin/` hangs from, without a trailing slash: `base`, or the
    /// admin listener's URL when the configuration gave it one (`admin_listen`).
    pub dashboard_base: String,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn api(identifier: &str, scopes: &[&str]) -> ResourceServer {
    ResourceServer {
        id: ids::hex_id(12),
        name: "Quickstart API".into(),
        identifier: identifier.into(),
        signing_alg: "RS256".into(),
        token_lifetime: 86_400,
        token_lifetime_for_web: 86_400,
        allow_offline_access: true,
        token_dialect: TokenDialect::AccessToken,
        enforce_policies: false,
        scopes: scopes
            .iter()
            .map(|s| Scope {
                value: s.to_string(),
                description: format!("{s} scope"),
            })
            .collect(),
        proof_of_possession: None,
        created_at: now(),
        updated_at: now(),
    }
}

pub fn client(name: &str, app_type: AppType, secret: Option<&str>) -> Client {
    let origins = vec![SPA_ORIGIN.to_string()];
    Client {
        client_id: ids::alphanumeric(32),
        name: name.into(),
        app_type,
        secret_hash: secret.map(ids::secret_hash),
        token_endpoint_auth_method: app_type.default_auth_method().into(),
        callbacks: vec![CALLBACK.into(), SPA_ORIGIN.into()],
        web_origins: origins.clone(),
        allowed_logout_urls: vec![SPA_ORIGIN.into(), format!("{SPA_ORIGIN}/logged-out")],
        grant_types: app_type.default_grant_types(),
        is_first_party: true,
        allowed_apis: None,
        refresh: tessera_core::RefreshPolicy::default(),
        profile: Default::default(),
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: now(),
        updated_at: now(),
        oidc_logout: None,
    }
}

/// A live login session of `user_id` (an hour long, signed in with a password now),
/// stored as the hosted pages store one from `origin`; its cookie hashes to `[hash; 32]`.
pub async fn seed_session(
    store: &Store,
    (hash, sid): (u8, &str),
    user_id: &str,
    origin: tessera_store::SessionOrigin,
) {
    let now = now();
    let session = tessera_store::SessionRecord {
        sid: sid.into(),
        user_id: user_id.into(),
        connection: None,
        amr: vec!["pwd".into()],
        auth_time: now,
        expires_at: now + 3600,
        last_interacted_at: None,
        upstream_sid: None,
        ends_by: None,
    };
    store
        .create_session(&[hash; 32], &session, &origin, now)
        .await
        .expect("a session");
}

/// A live refresh-token family `family_id` of `user_id` for `client_id` (an hour long,
/// issued in session `sid` if any, its stored grant `{}`); its token hashes to `[hash; 32]`.
pub async fn seed_refresh_family(
    store: &Store,
    (hash, family_id): (u8, &str),
    (user_id, client_id): (&str, &str),
    sid: Option<&str>,
) {
    let now = now();
    let family = tessera_store::NewRefreshFamily {
        family_id: family_id.into(),
        client_id: client_id.into(),
        user_id: user_id.into(),
        grant: "{}".into(),
        code_hash: None,
        sid: sid.map(str::to_string),
        created_at: now,
        expires_at: now + 3600,
        metadata: Default::default(),
    };
    store
        .create_refresh_family(&family, &[hash; 32], now + 3600)
        .await
        .expect("a refresh family");
}

pub async fn create_user(store: &Store, email: &str, password: &str) -> String {
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || {
        tessera_server::passwords::hash_password_blocking(&password)
    })
    .await
    .unwrap();
    let user_id = format!("auth0|{}", ids::hex_id(12));
    let new = NewUser {
        email: email.into(),
        password_hash: hash,
        email_verified: true,
        name: None,
        nickname: None,
        picture: None,
        ..Default::default()
    };
    store.create_user(&new, &user_id, now()).await.unwrap();
    user_id
}

/// Starts a server with the quickstart tenant: an API, a SPA, an M2M app with a grant, a user.
pub async fn spawn() -> TestServer {
    spawn_with(|_| {}).await
}

/// Like `spawn`, with a chance to adjust the server's configuration first.
pub async fn spawn_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
    spawn_on_with(None, adjust).await
}

/// Like `spawn`, on the database at `database_url` (e.g. a PostgreSQL one) instead of a
/// fresh SQLite file.
pub async fn spawn_on(database_url: &str) -> TestServer {
    spawn_on_with(Some(database_url), |_| {}).await
}

/// Like `spawn_with`, sending mail (password reset codes) to a new SMTP receiver.
pub async fn spawn_with_mail(adjust: impl FnOnce(&mut ServerConfig)) -> (TestServer, SmtpReceiver) {
    let smtp = SmtpReceiver::start().await;
    let url = smtp.url();
    let server = spawn_with(move |config| {
        config.mail = Some(MailConfig::smtp(&url, "Tessera <no-reply@example.com>").unwrap());
        adjust(config);
    })
    .await;
    (server, smtp)
}

/// Like `spawn_on` (`None`: a fresh SQLite file), with a chance to adjust the configuration.
pub async fn spawn_on_with(
    database_url: Option<&str>,
    adjust: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url.map_or_else(
        || format!("sqlite://{}", dir.path().join("tessera.db").display()),
        str::to_string,
    );
    let store = Store::connect(&url).await.unwrap();
    store
        .create_resource_server(&api(API, &["read:messages", "write:messages"]))
        .await
        .unwrap();
    let spa = client("Quickstart SPA", AppType::Spa, None);
    store.create_client(&spa).await.unwrap();
    let m2m_secret = ids::client_secret();
    let m2m = client("Backend", AppType::NonInteractive, Some(&m2m_secret));
    store.create_client(&m2m).await.unwrap();
    store
        .create_client_grant(&ClientGrant {
            id: format!("cgr_{}", ids::alphanumeric(16)),
            client_id: m2m.client_id.clone(),
            audience: API.into(),
            scope: vec!["read:messages".into()],
            created_at: now(),
        })
        .await
        .unwrap();
    let user_email = "demo@example.com".to_string();
    let user_id = create_user(&store, &user_email, PASSWORD).await;

    let master_key = MasterKey::generate();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        master_key.clone(),
    );
    config.key_poll_interval = std::time::Duration::from_millis(100);
    adjust(&mut config);
    let app = Application::build(config, store.clone()).await.unwrap();
    let base = app.issuer().trim_end_matches('/').to_string();
    let issuer = app.issuer().to_string();
    let metrics_base = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let dashboard_base = app
        .dashboard_url()
        .trim_end_matches("admin/")
        .trim_end_matches('/')
        .to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestServer {
        base,
        issuer,
        store,
        spa_client_id: spa.client_id,
        m2m_client_id: m2m.client_id,
        m2m_secret,
        user_email,
        user_id,
        master_key,
        metrics_base,
        dashboard_base,
        _dir: dir,
        shutdown: Some(tx),
    }
}

/// Another node on `first`'s database (`database_url`, PostgreSQL) and master key, as a
/// cluster runs several: configured by `adjust`. Its base URL, and what stops it.
pub async fn another_node(
    first: &TestServer,
    database_url: &str,
    adjust: impl FnOnce(&mut ServerConfig),
) -> (String, Node) {
    let store = Store::connect(database_url).await.unwrap();
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        first.master_key.clone(),
    );
    adjust(&mut config);
    let app = Application::build(config, store).await.unwrap();
    let base = app.issuer().trim_end_matches('/').to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (base, Node { stop, running })
}

/// A node started by [`another_node`].
pub struct Node {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), tessera_server::ServerError>>,
}

impl Node {
    /// Stops the node and waits until it has (its background jobs end with it).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.running.await;
    }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header (status {})", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// POSTs `form` to `{base}/oauth/token` with `http`: (status, JSON body or null).
pub async fn oauth_token(
    http: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = http
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client-credentials request for `audience` at `base`: (status, JSON body or null).
pub async fn client_credentials(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    secret: &str,
    audience: &str,
) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("audience", audience),
    ];
    oauth_token(http, base, &form).await
}

/// Fills in the hosted login form of the server at `base` and submits it: `login_path` is
/// where /authorize sent `browser` (`/u/login?state=…`). The response of the login POST
/// (303 on success).
pub async fn submit_login_form(
    browser: &reqwest::Client,
    base: &str,
    login_path: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser
        .get(format!("{base}{login_path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("state", hidden_field(&page, "state")),
        ("csrf", hidden_field(&page, "csrf")),
        ("username", email.to_string()),
        ("password", password.to_string()),
    ];
    browser
        .post(format!("{base}/u/login"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Signs in on the hosted login page at `login_path` of the server at `base` (where
/// /authorize sent `browser`) and follows the resumed authorization: where it sends the
/// browser next (the application's callback, or the consent page).
pub async fn sign_in_at(
    browser: &reqwest::Client,
    base: &str,
    login_path: &str,
    email: &str,
    password: &str,
) -> String {
    let response = submit_login_form(browser, base, login_path, email, password).await;
    resume_after_login(browser, base, &response).await
}

/// After a successful login POST (`login`), follows the resumed authorization: where it
/// sends the browser next.
async fn resume_after_login(
    browser: &reqwest::Client,
    base: &str,
    login: &reqwest::Response,
) -> String {
    assert_eq!(login.status(), 303, "the sign-in succeeds");
    let response = browser
        .get(format!("{base}{}", location(login)))
        .send()
        .await
        .unwrap();
    if response.status() == 200 {
        // A page that goes on by itself: a redirect action sending the user to its site.
        return meta_refresh_target(&response.text().await.unwrap());
    }
    assert_eq!(response.status(), 302);
    location(&response)
}

/// Value of a hidden input in an HTML page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in page"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&#43;", "+")
        .replace("&#x2b;", "+")
        .replace("&amp;", "&")
        .replace("&#61;", "=")
}

/// Where a page that goes on by itself (the meta refresh of the page that ends an upstream
/// sign-in) leads.
pub fn meta_refresh_target(html: &str) -> String {
    let start = html.find("url=").expect("a meta refresh") + 4;
    let end = start + html[start..].find('"').expect("its end");
    // The attribute is HTML: `&` comes escaped, by name or by number (askama's).
    html[start..end].replace("&amp;", "&").replace("&#38;", "&")
}

/// Query or fragment parameters of a URL.
pub fn params_of(url: &str) -> std::collections::HashMap<String, String> {
    let part = url
        .split_once('#')
        .map(|(_, f)| f)
        .or_else(|| url.split_once('?').map(|(_, q)| q))
        .unwrap_or("");
    form_urlencoded::parse(part.as_bytes())
        .into_owned()
        .collect()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

/// A fresh PKCE verifier and its S256 challenge.
pub fn pkce() -> Pkce {
    let verifier = ids::secret_token();
    let challenge = pkce_challenge(&verifier);
    Pkce {
        verifier,
        challenge,
    }
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The `at_hash` or `c_hash` that `id_token` must carry for `value` (its access token or
/// code), computed here, apart from the server's code (OIDC Core §3.3.2.11): base64url of
/// the left half of the hash that the token's own `alg` uses.
pub fn left_half_hash(id_token: &str, value: &str) -> String {
    use aws_lc_rs::digest;
    use base64::Engine;
    use jsonwebtoken::Algorithm;
    let alg = jsonwebtoken::decode_header(id_token).unwrap().alg;
    let hash = match alg {
        Algorithm::RS256 | Algorithm::ES256 => &digest::SHA256,
        // Ed25519 hashes with SHA-512 (the OpenID Foundation's reading for EdDSA).
        Algorithm::EdDSA => &digest::SHA512,
        other => panic!("an ID token signed with {other:?}: not an algorithm Tessera signs with"),
    };
    let digest = digest::digest(hash, value.as_bytes());
    let half = &digest.as_ref()[..digest.as_ref().len() / 2];
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An /authorize URL for the SPA with the given extra parameters.
    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        serializer.append_pair("client_id", &self.spa_client_id);
        serializer.append_pair("redirect_uri", CALLBACK);
        for (k, v) in extra {
            serializer.append_pair(k, v);
        }
        format!("{}/authorize?{}", self.base, serializer.finish())
    }

    /// Follows /authorize → login page, submits the form. Returns the response of the
    /// login POST (303 on success).
    pub async fn submit_login(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let response = browser.get(authorize_url).send().await.unwrap();
        assert_eq!(
            response.status(),
            302,
            "authorize should redirect to the login page"
        );
        let login_path = location(&response);
        assert!(login_path.contains("/u/login?state="), "{login_path}");
        submit_login_form(browser, &self.base, &login_path, email, password).await
    }

    /// Full sign-in: returns the final redirect to the application (its Location).
    /// A browser that already has a session goes straight back to the application.
    pub async fn sign_in(&self, browser: &reqwest::Client, authorize_url: &str) -> String {
        let response = browser.get(authorize_url).send().await.unwrap();
        let to = location(&response);
        if !to.starts_with("/u/login") {
            return to;
        }
        let response = self
            .submit_login(browser, authorize_url, &self.user_email.clone(), PASSWORD)
            .await;
        resume_after_login(browser, &self.base, &response).await
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        reqwest::get(self.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Verifies a JWT with jsonwebtoken against our JWKS; checks iss and the audience.
    pub async fn verify(&self, token: &str, audience: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwks = self.jwks().await;
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid is published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims
    }

    /// POSTs `form` to the token endpoint: (status, JSON body or null).
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        oauth_token(&reqwest::Client::new(), &self.base, form).await
    }

    /// The Management API's audience on this server.
    pub fn management_audience(&self) -> String {
        format!("{}api/v2/", self.issuer)
    }

    /// A new machine-to-machine application granted `scopes` on the Management API:
    /// (its client_id, an access token of its).
    pub async fn management_client(&self, scopes: &[&str]) -> (String, String) {
        let audience = self.management_audience();
        let secret = ids::client_secret();
        let automation = client("Automation", AppType::NonInteractive, Some(&secret));
        self.store.create_client(&automation).await.unwrap();
        self.store
            .create_client_grant(&ClientGrant {
                id: format!("cgr_{}", ids::alphanumeric(16)),
                client_id: automation.client_id.clone(),
                audience: audience.clone(),
                scope: scopes.iter().map(|scope| scope.to_string()).collect(),
                created_at: now(),
            })
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let (status, body) =
            client_credentials(&http, &self.base, &automation.client_id, &secret, &audience).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_string();
        (automation.client_id, token)
    }

    /// A Management API token of a new machine-to-machine application granted `scopes`.
    pub async fn management_token(&self, scopes: &[&str]) -> String {
        self.management_client(scopes).await.1
    }

    /// Creates the action `name` for `trigger` with `code` and `secrets` through the
    /// Management API and deploys it; returns its id. `token` needs `create:actions` and
    /// `update:actions`.
    pub async fn deploy_action(
        &self,
        token: &str,
        (trigger, name): (&str, &str),
        code: &str,
        secrets: &[(&str, &str)],
    ) -> String {
        let secrets: Vec<Value> = secrets
            .iter()
            .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
            .collect();
        let created = self
            .management_call(
                token,
                reqwest::Method::POST,
                "/actions/actions",
                serde_json::json!({
                    "name": name,
                    "supported_triggers": [{"id": trigger}],
                    "code": code,
                    "secrets": secrets,
                }),
            )
            .await;
        let id = created["id"].as_str().expect("an action id").to_string();
        let path = format!("/actions/actions/{id}/deploy");
        self.management_call(token, reqwest::Method::POST, &path, serde_json::json!({}))
            .await;
        id
    }

    /// Makes the actions `ids` `trigger`'s bindings, in this order. `token` needs
    /// `update:actions`.
    pub async fn bind_actions(&self, token: &str, trigger: &str, ids: &[String]) {
        let bindings: Vec<Value> = ids
            .iter()
            .map(|id| serde_json::json!({"ref": {"type": "action_id", "value": id}}))
            .collect();
        let path = format!("/actions/triggers/{trigger}/bindings");
        self.management_call(
            token,
            reqwest::Method::PATCH,
            &path,
            serde_json::json!({ "bindings": bindings }),
        )
        .await;
    }

    /// A Management API call (`path` under `/api/v2`) that must succeed; its JSON answer.
    pub async fn management_call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Value {
        let response = reqwest::Client::new()
            .request(method, self.url(&format!("/api/v2{path}")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    /// A Management API call that may be refused: its status and body (`null` when it has
    /// none). `token` empty: no `Authorization` header.
    pub async fn management_request(&self, token: &str, method: &str, path: &str) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(
            method.parse().expect("an HTTP method"),
            self.url(&format!("/api/v2{path}")),
        );
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The SPA's `/authorize` for a code with `prompt=none` (state `s`, a fresh PKCE
    /// challenge): a session signs the browser in without a page, or it hears why not.
    pub fn silent_authorize_url(&self) -> String {
        let pkce = pkce();
        self.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "s"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
    }

    /// Whether `browser`'s login session still signs it in without a page: `/authorize`
    /// with `prompt=none` answers a code (true) or `login_required` (false).
    pub async fn signs_in_silently(&self, browser: &reqwest::Client) -> bool {
        let url = self.silent_authorize_url();
        let response = browser.get(&url).send().await.unwrap();
        let params = params_of(&location(&response));
        match (params.get("code"), params.get("error")) {
            (Some(_), None) => true,
            (None, Some(error)) if error == "login_required" => false,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// Waits (at most 30 s) until every logout notice is settled — delivered, dropped or
    /// given up (OIDC Back-Channel Logout). Whether it was.
    pub async fn logout_notices_settled(&self) -> bool {
        for _ in 0..1500 {
            if self
                .store
                .due_logout_notices(i64::MAX, &[])
                .await
                .unwrap()
                .is_empty()
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }

    /// The stored password hash of the user with this email (`None`: no password).
    pub async fn password_hash(&self, email: &str) -> Option<String> {
        let (_, hash) = self
            .store
            .find_user_with_password(email)
            .await
            .unwrap()
            .expect("the user exists");
        hash
    }

    /// Signs in (or reuses the browser's session) and returns a fresh authorization code
    /// for the SPA with its PKCE verifier, not yet redeemed.
    pub async fn authorization_code(
        &self,
        browser: &reqwest::Client,
        scope: &str,
        audience: Option<&str>,
    ) -> (String, String) {
        let pkce = pkce();
        let mut extra = vec![
            ("response_type", "code"),
            ("scope", scope),
            ("state", "st"),
            ("nonce", "n0nce"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(audience) = audience {
            extra.push(("audience", audience));
        }
        let back = self.sign_in(browser, &self.authorize_url(&extra)).await;
        (params_of(&back)["code"].clone(), pkce.verifier)
    }

    /// Redeems a code of the SPA's: (status, body) of the token endpoint.
    pub async fn redeem(&self, code: &str, verifier: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &self.spa_client_id),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Uses a refresh token of the SPA's: (status, body) of the token endpoint.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.spa_client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Code + PKCE flow to the end; returns the token response.
    pub async fn code_flow(
        &self,
        browser: &reqwest::Client,
        scope: &str,
        audience: Option<&str>,
    ) -> Value {
        let (code, verifier) = self.authorization_code(browser, scope, audience).await;
        let (status, body) = self.redeem(&code, &verifier).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}
