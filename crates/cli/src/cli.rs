//! The command line, as clap sees it. Names mirror the Auth0 CLI (`apis`, `apps`, …).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: a self-hosted, Auth0-compatible authorization server",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server (configuration: tessera.toml < TESSERA_* variables < flags)
    Serve(ServeArgs),
    /// Run Tessera for local development, with a seeded quickstart API, SPA and demo user
    Dev(DevArgs),
    /// Protect any HTTP API with access tokens: a reverse proxy that verifies them first
    Proxy(ProxyArgs),
    /// Manage APIs (resource servers): the audiences of access tokens
    Apis {
        #[command(subcommand)]
        action: ApisAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage applications (OAuth clients)
    Apps {
        #[command(subcommand)]
        action: AppsAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage client grants: machine-to-machine access of an application to an API
    Grants {
        #[command(subcommand)]
        action: GrantsAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage users of the database connection
    Users {
        #[command(subcommand)]
        action: UsersAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage roles: named sets of an API's permissions, given to users (RBAC)
    Roles {
        #[command(subcommand)]
        action: RolesAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage connections: the database connection and upstream identity providers
    Connections {
        #[command(subcommand)]
        action: ConnectionsAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage who may use the dashboard (the system roles Tessera Admin and Tessera Viewer)
    Admins {
        #[command(subcommand)]
        action: AdminsAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Move a tenant from another provider: `tessera import auth0 --tenant tenant.yaml --users users.json`
    Import {
        #[command(subcommand)]
        action: ImportAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Manage Actions: JavaScript bound to a trigger (post-login, credentials-exchange, …)
    Actions {
        #[command(subcommand)]
        action: ActionsAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Read the audit log (Auth0's log events): `tessera logs tail` follows it
    Logs {
        #[command(subcommand)]
        action: LogsAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// List and rotate signing keys
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Copy the SQLite database while Tessera serves, checked page by page (PostgreSQL:
    /// pg_dump). The master key is not in the copy: keep it apart.
    Backup {
        /// The backup file to write (must not exist)
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Restore a backup into the configured SQLite database, which must not exist yet
    Restore {
        /// The backup file (made by `tessera backup`)
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        #[command(flatten)]
        common: AdminArgs,
    },
}

/// Where the configuration and the database are.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Configuration file [default: ./tessera.toml when it exists]
    #[arg(long, global = true, value_name = "PATH", env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL, e.g. sqlite://./tessera.db [env: TESSERA_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
}

/// Options every admin command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print JSON in the Auth0 Management API v2 shape
    #[arg(long, global = true)]
    pub json: bool,
}

/// Which page of a list to print. Lists are read a page at a time, never whole: a
/// million users print one page at a time.
#[derive(Debug, Clone, Copy, Args)]
pub struct PageArgs {
    /// Page to print, from 0
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub page: u64,
    /// Items per page (at most 1000)
    #[arg(long, default_value_t = 50, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub per_page: u32,
}

impl PageArgs {
    /// What to ask the store for; the total only for the human table's footer.
    pub fn slice(&self, with_total: bool) -> tessera_store::Slice {
        tessera_store::Slice {
            offset: self.page.saturating_mul(u64::from(self.per_page)),
            limit: self.per_page,
            count: with_total,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to listen on, e.g. 0.0.0.0:4000 [env: TESSERA_LISTEN] [default: 127.0.0.1:4000]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Public base URL; tokens carry it as `iss` [env: TESSERA_ISSUER] [default: http://localhost:PORT/]
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// File holding the master key that encrypts signing keys [env: TESSERA_MASTER_KEY_FILE,
    /// or the key itself in TESSERA_MASTER_KEY] [default: master.key beside the SQLite database]
    #[arg(long, value_name = "PATH")]
    pub master_key_file: Option<PathBuf>,
    /// SMTP server for password reset mail: smtp://USER:PASS@HOST:587 (STARTTLS) or
    /// smtps://…:465; prefer the variable, flags show in `ps` [env: TESSERA_SMTP_URL] [default: no mail, no password reset]
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of Tessera's mail, e.g. "Tessera <no-reply@example.com>" [env: TESSERA_EMAIL_FROM]
    #[arg(long, value_name = "ADDRESS")]
    pub email_from: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics, on a port of their own (keep it
    /// private) [env: TESSERA_METRICS_LISTEN] [default: off]
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Serve the dashboard at <issuer>admin/ [env: TESSERA_ADMIN] [default: true]
    #[arg(long, value_name = "BOOL")]
    pub admin: Option<bool>,
    /// Serve the dashboard on this address instead, a listener of its own (keep it private)
    /// [env: TESSERA_ADMIN_LISTEN] [default: under the issuer]
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Public base URL of --admin-listen, e.g. https://admin.example.com/
    /// [env: TESSERA_ADMIN_URL] [default: http://<admin-listen>/]
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// Require server-provided nonces in DPoP proofs at the token endpoint (RFC 9449 §8)
    /// [env: TESSERA_DPOP_NONCES] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub dpop_nonces: Option<bool>,
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Where the development database and master key live
    #[arg(long, value_name = "DIR", default_value = "./.tessera-dev")]
    pub data_dir: PathBuf,
    /// Port of Tessera [default: 4000, or 4443 with --tls]
    #[arg(long)]
    pub port: Option<u16>,
    /// Port of the sample SPA; its origin is registered on the seeded application
    #[arg(long, default_value_t = 3000)]
    pub spa_port: u16,
    /// Port of the sample API
    #[arg(long, default_value_t = 3001)]
    pub api_port: u16,
    /// Serve Tessera (https://localhost:4443), the SPA and the API over HTTPS, with a
    /// certificate from a local CA kept in DIR/tls; prints how to trust it
    #[arg(long)]
    pub tls: bool,
    /// Directory of the jQuery sample SPA (default: ./examples/jquery-spa)
    #[arg(long, value_name = "DIR")]
    pub spa_dir: Option<PathBuf>,
    /// Require server-provided nonces in DPoP proofs at the token endpoint, as
    /// `serve --dpop-nonces true` does
    #[arg(long)]
    pub dpop_nonces: bool,
}

/// `tessera proxy`: every path needs a valid token unless a rule says otherwise; the most
/// specific rule decides alone.
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Rules are [METHOD ]PREFIX[=VALUE,VALUE]. A prefix matches whole path segments (/api/public
covers /api/public/x, not /api/publicity), ignoring case. The longest matching prefix wins;
at equal length a rule naming the method wins (a GET rule covers HEAD). Rules do not add up:
with /api=read and /api/admin=write, /api/admin/x needs write only. A path no rule matches
needs a valid token. Paths with ., .., //, ;, encoded / \\ or %, or bad %-escapes are refused
with 400, so no spelling of a path reaches the upstream under a weaker rule.

Example:
  tessera proxy --issuer http://localhost:4000/ --audience https://api.example.com \\
    --upstream http://127.0.0.1:3000 --public /health --public 'GET /api/docs' \\
    --require 'POST /api/messages=write:messages' --require-permission /api/admin=admin")]
pub struct ProxyArgs {
    /// Settings file (TOML): issuer, audience (a string or a list), upstream, listen,
    /// upstream_timeout, strip_authorization, trusted_proxies (a list), tls_cert, tls_key,
    /// require_dpop, public_origin, dpop_nonce_key_file,
    /// and lists public, require, require_permission; flags and TESSERA_PROXY_* variables
    /// override its settings, and flags add to its rules
    #[arg(long, value_name = "PATH", env = "TESSERA_PROXY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The token issuer (Tessera's or an Auth0 tenant's URL), e.g. http://localhost:4000/
    #[arg(long, value_name = "URL", env = "TESSERA_PROXY_ISSUER")]
    pub issuer: Option<String>,
    /// The API's identifier: the `aud` tokens must carry (repeat to accept several; the
    /// environment variable takes a comma-separated list)
    #[arg(
        long,
        value_name = "ID",
        env = "TESSERA_PROXY_AUDIENCE",
        value_delimiter = ','
    )]
    pub audience: Vec<String>,
    /// The protected API: http(s)://HOST:PORT, e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL", env = "TESSERA_PROXY_UPSTREAM")]
    pub upstream: Option<String>,
    /// Address to listen on; port 0 picks a free port, printed when ready [default: 127.0.0.1:8081]
    #[arg(long, value_name = "ADDR", env = "TESSERA_PROXY_LISTEN")]
    pub listen: Option<String>,
    /// Served without a token (repeatable), e.g. /health or 'GET /api/docs'
    #[arg(long, value_name = "[METHOD ]PREFIX")]
    pub public: Vec<String>,
    /// Needs a token with all these scopes (repeatable), e.g. 'POST /api/admin=write:messages';
    /// '/api/me=' asks for a valid token only
    #[arg(long, value_name = "[METHOD ]PREFIX=SCOPES")]
    pub require: Vec<String>,
    /// Needs a token with all these RBAC permissions (the `permissions` claim); a
    /// --require for the same target adds to it
    #[arg(long, value_name = "[METHOD ]PREFIX=PERMISSIONS")]
    pub require_permission: Vec<String>,
    /// Seconds the upstream has to send its response headers before the client gets 504 [default: 30]
    #[arg(long, value_name = "SECS", env = "TESSERA_PROXY_UPSTREAM_TIMEOUT")]
    pub upstream_timeout: Option<u64>,
    /// Remove the Authorization header before forwarding (by default it is kept, so the
    /// upstream can verify the token again)
    #[arg(
        long,
        env = "TESSERA_PROXY_STRIP_AUTHORIZATION",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub strip_authorization: bool,
    /// A proxy in front (load balancer, TLS terminator) whose X-Forwarded-* and Forwarded
    /// are kept and continued: an address or CIDR range (repeatable; the environment
    /// variable takes a comma-separated list) [default: none: this proxy is the edge]
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "TESSERA_PROXY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key
    #[arg(long, value_name = "PATH", env = "TESSERA_PROXY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PATH", env = "TESSERA_PROXY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Admit only DPoP-bound tokens with their proofs (RFC 9449); by default bearer tokens
    /// too (a DPoP-bound token is never admitted as a bearer token)
    #[arg(
        long,
        env = "TESSERA_PROXY_REQUIRE_DPOP",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub require_dpop: bool,
    /// The scheme://host[:port] clients reach the API at, which DPoP proofs name: set it
    /// behind a TLS terminator or a proxy that changes Host [default: this proxy's scheme
    /// and the request's Host]
    #[arg(long, value_name = "URL", env = "TESSERA_PROXY_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,
    /// Require server-provided nonces in DPoP proofs (RFC 9449 §9), made with the key in
    /// this file (43 base64url characters or 64 hex digits, e.g. `openssl rand -hex 32`):
    /// proxies given the same file accept each other's nonces [default: no nonces]
    #[arg(long, value_name = "PATH", env = "TESSERA_PROXY_DPOP_NONCE_KEY_FILE")]
    pub dpop_nonce_key_file: Option<PathBuf>,
}

// ---- import -----------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ImportAction {
    /// Import an Auth0 tenant: a0deploy's YAML export and an Auth0 user export. Everything
    /// is checked first; if anything is invalid, nothing is written
    Auth0(ImportAuth0),
}

#[derive(Debug, Args)]
pub struct ImportAuth0 {
    /// The Auth0 Deploy CLI's export (`a0deploy export --format yaml`): APIs, applications,
    /// client grants, roles with permissions, tenant settings
    #[arg(long, value_name = "tenant.yaml")]
    pub tenant: Option<PathBuf>,
    /// Users: an Auth0 user export (NDJSON) or a bulk-import file (JSON array, with
    /// password_hash / custom_password_hash)
    #[arg(long, value_name = "users.json")]
    pub users: Option<PathBuf>,
    /// Update users whose email exists (profile and metadata; never a password)
    #[arg(long)]
    pub upsert: bool,
    /// Check everything and print what would be created, writing nothing
    #[arg(long)]
    pub dry_run: bool,
}

// ---- admins -----------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum AdminsAction {
    /// Make a user an administrator (role Tessera Admin), or with --viewer a read-only one
    /// (Tessera Viewer); the user then holds that one of the two
    Add {
        /// The user's email (or user_id)
        email: String,
        /// Read-only: may see every page of the dashboard and change nothing
        #[arg(long)]
        viewer: bool,
    },
    /// Take both roles (Tessera Admin, Tessera Viewer) from a user
    #[command(visible_alias = "rm")]
    Remove {
        /// The user's email (or user_id)
        email: String,
    },
    /// List who holds each role, a page at a time
    #[command(visible_alias = "ls")]
    List(PageArgs),
    /// Whether administrators pass a second factor to sign in to the dashboard; with
    /// `--required`, change it (requiring it turns authenticator apps on)
    Mfa {
        #[arg(long, value_name = "true|false")]
        required: Option<bool>,
    },
}

// ---- roles ------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum RolesAction {
    /// Create a role
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List roles, by name, a page at a time
    #[command(visible_alias = "ls")]
    List(PageArgs),
    /// Show one role and its permissions
    Show {
        /// Role id (rol_…) or name
        role: String,
    },
    /// Delete a role (users lose what it gave them)
    #[command(visible_alias = "rm")]
    Delete {
        /// Role id (rol_…) or name
        role: String,
    },
    /// Add or remove a role's permissions
    Permissions {
        #[command(subcommand)]
        action: RolePermissionsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolePermissionsAction {
    /// Give the role some of an API's scopes
    Add(RolePermissionsArgs),
    /// Take scopes away from the role
    Remove(RolePermissionsArgs),
    /// List the role's permissions
    #[command(visible_alias = "ls")]
    List {
        /// Role id (rol_…) or name
        role: String,
    },
}

#[derive(Debug, Args)]
pub struct RolePermissionsArgs {
    /// Role id (rol_…) or name
    pub role: String,
    /// The API's identifier (audience) or id
    #[arg(long)]
    pub api: String,
    /// Scopes of that API, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "SCOPES", required = true)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserRolesAction {
    /// Give a user a role
    Assign {
        /// user_id (auth0|…) or email
        user: String,
        /// Role id (rol_…) or name
        role: String,
    },
    /// Take a role away from a user
    Remove {
        /// user_id (auth0|…) or email
        user: String,
        /// Role id (rol_…) or name
        role: String,
    },
    /// List a user's roles
    #[command(visible_alias = "ls")]
    List {
        /// user_id (auth0|…) or email
        user: String,
    },
}

// ---- apis -------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ActionsAction {
    /// Create an action (a draft: deploy it, then bind it to its trigger)
    Create(ActionCreate),
    /// Change an action's draft: its code, name or secrets
    Update(ActionUpdateArgs),
    /// Deploy the draft as a new version (what bound triggers run)
    Deploy {
        /// The action's id (act_…) or name
        action: String,
    },
    /// List actions, oldest first, a page at a time
    #[command(visible_alias = "ls")]
    List {
        /// Only the actions of this trigger (post-login, credentials-exchange, …)
        #[arg(long)]
        trigger: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show an action and its code (secrets by name only)
    Show {
        /// The action's id (act_…) or name
        action: String,
    },
    /// Delete an action; a bound one only with --force, which unbinds it
    #[command(visible_alias = "rm")]
    Delete {
        /// The action's id (act_…) or name
        action: String,
        #[arg(long)]
        force: bool,
    },
    /// Make TRIGGER run these deployed actions, in this order (none: unbind all)
    Bind {
        /// post-login, credentials-exchange, pre-user-registration, post-user-registration or post-change-password
        trigger: String,
        /// Actions' ids or names
        actions: Vec<String>,
    },
    /// Run an action's draft on an event read from a JSON file; nothing is changed
    Test {
        /// The action's id (act_…) or name
        action: String,
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ActionCreate {
    pub name: String,
    /// The trigger it runs in: post-login, credentials-exchange, pre-user-registration,
    /// post-user-registration or post-change-password
    #[arg(long)]
    pub trigger: String,
    /// A file with the action's code (exports.onExecutePostLogin = async (event, api) => …)
    #[arg(long, value_name = "FILE")]
    pub code: PathBuf,
    /// A secret the code reads as event.secrets.NAME (repeatable)
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,
    /// The Node.js runtime Auth0 would use (stored; Tessera runs every action alike)
    #[arg(long, default_value = "node22")]
    pub runtime: String,
}

#[derive(Debug, Args)]
pub struct ActionUpdateArgs {
    /// The action's id (act_…) or name
    pub action: String,
    /// A new name
    #[arg(long)]
    pub name: Option<String>,
    /// A file with the new code
    #[arg(long, value_name = "FILE")]
    pub code: Option<PathBuf>,
    /// Set a secret (repeatable); the others are kept
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,
    /// Remove a secret (repeatable)
    #[arg(long = "remove-secret", value_name = "NAME")]
    pub remove_secrets: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApisAction {
    /// Register an API
    Create(ApiCreate),
    /// List APIs, oldest first, a page at a time
    #[command(visible_alias = "ls")]
    List(PageArgs),
    /// Show one API
    Show {
        /// The API's id or identifier (audience)
        id: String,
    },
    /// Change an API
    Update(ApiUpdate),
    /// Delete an API (and the client grants for it)
    #[command(visible_alias = "rm")]
    Delete {
        /// The API's id or identifier (audience)
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ApiCreate {
    /// Display name
    #[arg(long)]
    pub name: String,
    /// The audience of its access tokens, e.g. https://api.example.com
    #[arg(long)]
    pub identifier: String,
    /// Scopes it defines, comma-separated (read:messages,write:messages)
    #[arg(long, value_delimiter = ',', value_name = "SCOPES")]
    pub scopes: Vec<String>,
    /// A scope's description, shown on the consent page; repeat for more scopes
    #[arg(long = "scope-description", value_name = "SCOPE=TEXT")]
    pub scope_descriptions: Vec<String>,
    /// Scopes and their descriptions from a JSON file in Auth0's shape ("-": stdin)
    #[arg(long, value_name = "FILE", conflicts_with = "scopes")]
    pub scopes_file: Option<PathBuf>,
    /// Algorithm of its access tokens: RS256, ES256 or EdDSA
    #[arg(long, default_value = "RS256", value_name = "ALG")]
    pub signing_alg: String,
    /// Lifetime of its access tokens in seconds (1..=2592000)
    #[arg(long, value_name = "SECS")]
    pub token_lifetime: Option<i64>,
    /// Allow refresh tokens (offline_access) for this API
    #[arg(long)]
    pub allow_offline_access: bool,
    /// RBAC: grant users only the scopes they hold as permissions (Auth0's enforce_policies)
    #[arg(long)]
    pub enforce_policies: bool,
    /// Issue tokens for this API only to requests with a DPoP proof (Auth0's
    /// proof_of_possession {"mechanism": "dpop", "required": true})
    #[arg(long)]
    pub require_dpop: bool,
    /// access_token, access_token_authz, rfc9068_profile or rfc9068_profile_authz
    #[arg(long, default_value = "access_token", value_name = "DIALECT")]
    pub token_dialect: String,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("changes").required(true).multiple(true).args([
    "name", "scopes", "scope_descriptions", "scopes_file", "signing_alg", "token_lifetime",
    "allow_offline_access", "token_dialect", "enforce_policies", "require_dpop"
])))]
pub struct ApiUpdate {
    /// The API's id or identifier (audience)
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Replaces the scopes, comma-separated ("" for none); kept scopes keep their descriptions
    #[arg(long, value_delimiter = ',', value_name = "SCOPES")]
    pub scopes: Option<Vec<String>>,
    /// Sets a scope's description (shown on the consent page); repeat for more scopes
    #[arg(long = "scope-description", value_name = "SCOPE=TEXT")]
    pub scope_descriptions: Vec<String>,
    /// Replaces the scopes and their descriptions with a JSON file in Auth0's shape ("-": stdin)
    #[arg(long, value_name = "FILE", conflicts_with = "scopes")]
    pub scopes_file: Option<PathBuf>,
    #[arg(long, value_name = "ALG")]
    pub signing_alg: Option<String>,
    #[arg(long, value_name = "SECS")]
    pub token_lifetime: Option<i64>,
    #[arg(long, value_name = "true|false")]
    pub allow_offline_access: Option<bool>,
    #[arg(long, value_name = "DIALECT")]
    pub token_dialect: Option<String>,
    /// RBAC on or off for this API
    #[arg(long, value_name = "true|false")]
    pub enforce_policies: Option<bool>,
    /// Require DPoP-bound tokens for this API, or stop requiring them
    #[arg(long, value_name = "true|false")]
    pub require_dpop: Option<bool>,
}

// ---- connections -------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ConnectionsAction {
    /// List connections in id order, a page at a time
    #[command(visible_alias = "ls")]
    List {
        /// Only connections of this strategy (repeatable: auth0, oidc, oauth2, google-oauth2, github)
        #[arg(long = "strategy", value_name = "STRATEGY")]
        strategies: Vec<String>,
        /// Only the connection with this exact name
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one connection (never its client secret)
    #[command(visible_alias = "show")]
    Get {
        /// The connection's id (con_…) or name
        connection: String,
    },
    /// Create a connection: a database connection (strategy auth0) or an upstream
    /// provider, whose client secret is read from stdin
    Create(ConnectionCreate),
    /// Change a connection; options given are merged into its current options
    Update(ConnectionUpdateArgs),
    /// Let an application sign users in with the connection
    Enable {
        /// The connection's id (con_…) or name
        connection: String,
        /// The application's client_id
        #[arg(long = "app", value_name = "CLIENT_ID")]
        app: String,
    },
    /// Stop an application from signing users in with the connection
    Disable {
        /// The connection's id (con_…) or name
        connection: String,
        /// The application's client_id
        #[arg(long = "app", value_name = "CLIENT_ID")]
        app: String,
    },
    /// Delete an upstream connection (refused while users of it remain)
    #[command(visible_alias = "rm")]
    Delete {
        /// The connection's id (con_…) or name
        connection: String,
    },
}

/// The options common to every upstream strategy, as flags; the rest with `--options-json`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionOptionArgs {
    /// Options as a JSON object (e.g. oauth2's authorizationURL, tokenURL, userinfo_url and
    /// profile_map); the flags below are set on top. Never put the secret here
    #[arg(long, value_name = "JSON")]
    pub options_json: Option<String>,
    /// The client id Tessera has at the provider
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the client secret from stdin (one line)
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// oidc: the provider's discovery document (…/.well-known/openid-configuration)
    #[arg(long, value_name = "URL")]
    pub discovery_url: Option<String>,
    /// oidc: the provider's issuer (with its endpoints in --options-json)
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Scopes to ask the provider for, separated by commas or spaces
    #[arg(long, value_name = "SCOPES")]
    pub scopes: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConnectionCreate {
    /// Unique, unchangeable: letters, digits and '-'
    #[arg(long)]
    pub name: String,
    /// auth0 (a database connection), oidc, oauth2, google-oauth2 or github
    #[arg(long)]
    pub strategy: String,
    /// The name on the login page's button [default: the name]
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub options: ConnectionOptionArgs,
    /// Offer the connection as a button on the login page [default: true for an upstream
    /// connection]
    #[arg(long, value_name = "true|false")]
    pub show_as_button: Option<bool>,
    /// A domain connection: every third-party application may sign users in with it
    /// [default: false]
    #[arg(long, value_name = "true|false")]
    pub domain_connection: Option<bool>,
    /// Enable the connection for this application (repeatable)
    #[arg(long = "enable-for", value_name = "CLIENT_ID")]
    pub enable_for: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConnectionUpdateArgs {
    /// The connection's id (con_…) or name
    pub connection: String,
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub options: ConnectionOptionArgs,
    #[arg(long, value_name = "true|false")]
    pub show_as_button: Option<bool>,
    /// A domain connection: every third-party application may sign users in with it
    #[arg(long, value_name = "true|false")]
    pub domain_connection: Option<bool>,
}

// ---- apps -------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum AppsAction {
    /// Register an application; confidential ones get a client secret, shown this once
    Create(AppCreate),
    /// List applications, oldest first, a page at a time
    #[command(visible_alias = "ls")]
    List(PageArgs),
    /// Show one application (never its secret)
    Show {
        /// client_id (or the exact name, when unique)
        app: String,
    },
    /// Change an application
    Update(AppUpdate),
    /// Delete an application (and its client grants)
    #[command(visible_alias = "rm")]
    Delete {
        /// client_id (or the exact name, when unique)
        app: String,
    },
    /// Replace the client secret of a confidential application; the new one is shown once
    RotateSecret {
        /// client_id (or the exact name, when unique)
        app: String,
    },
    /// Public keys the application authenticates with (private_key_jwt)
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsAction {
    /// Register a public key (PEM: SPKI, PKCS#1 or a certificate) and authenticate the
    /// application with it: from then on, private_key_jwt and not its secret
    Add {
        /// client_id (or the exact name, when unique)
        app: String,
        /// The PEM file
        #[arg(long, value_name = "FILE")]
        pem: std::path::PathBuf,
        #[arg(long)]
        name: Option<String>,
        /// Take the expiry from the certificate in the PEM
        #[arg(long)]
        expiry_from_cert: bool,
    },
    /// List the application's credentials
    #[command(visible_alias = "ls")]
    List {
        /// client_id (or the exact name, when unique)
        app: String,
    },
    /// Delete a credential; without any left, the application uses its secret again
    #[command(visible_alias = "rm")]
    Remove {
        /// client_id (or the exact name, when unique)
        app: String,
        /// The credential's id (cred_…)
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct AppCreate {
    #[arg(long)]
    pub name: String,
    /// spa, regular, native or m2m
    #[arg(long = "type", value_name = "TYPE")]
    pub app_type: String,
    /// Allowed callback URLs, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub callbacks: Vec<String>,
    /// Allowed web origins (scheme://host[:port]), comma-separated
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub origins: Vec<String>,
    /// Allowed logout URLs, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub logout_urls: Vec<String>,
    /// Grant types [default: the type's defaults, as Auth0 sets them]
    #[arg(long, value_delimiter = ',', value_name = "GRANTS")]
    pub grant_types: Option<Vec<String>>,
    /// A third-party application: users see a consent page listing what it asks for
    /// [default: first party, no consent page]
    #[arg(long)]
    pub third_party: bool,
    /// Only these APIs (identifiers or ids, comma-separated) may be authorized for this
    /// application's users [default: every API]
    #[arg(long, value_delimiter = ',', value_name = "APIS")]
    pub allowed_apis: Option<Vec<String>>,
    #[command(flatten)]
    pub backchannel: BackchannelArgs,
}

/// OIDC Back-Channel Logout: where the application is told that a session it was used
/// with ended, and for which ends.
#[derive(Debug, Args)]
pub struct BackchannelArgs {
    /// Where logout tokens are posted when a session the application was used with ends
    /// (https, or http to localhost; "" for none)
    #[arg(long, value_name = "URL")]
    pub backchannel_logout_url: Option<String>,
    /// Which session ends: "all", or Auth0's initiator names, comma-separated
    /// (rp-logout — a logout at Tessera — is always one) [default: rp-logout,idp-logout]
    #[arg(long, value_delimiter = ',', value_name = "INITIATORS")]
    pub backchannel_logout_initiators: Option<Vec<String>>,
    /// Whether logout tokens carry the ended session's metadata (`session_metadata`)
    /// [default: false]
    #[arg(long, value_name = "true|false")]
    pub backchannel_logout_session_metadata: Option<bool>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("changes").required(true).multiple(true).args([
    "name", "callbacks", "origins", "logout_urls", "grant_types",
    "refresh_token_lifetime", "refresh_idle_lifetime", "refresh_reuse_interval",
    "first_party", "allowed_apis", "allow_all_apis", "require_par",
    "backchannel_logout_url", "backchannel_logout_initiators",
    "backchannel_logout_session_metadata"
])))]
pub struct AppUpdate {
    /// client_id (or the exact name, when unique)
    pub app: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Replaces the callback URLs ("" for none)
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub callbacks: Option<Vec<String>>,
    /// Replaces the web origins ("" for none)
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub origins: Option<Vec<String>>,
    /// Replaces the logout URLs ("" for none)
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub logout_urls: Option<Vec<String>>,
    /// Replaces the grant types
    #[arg(long, value_delimiter = ',', value_name = "GRANTS")]
    pub grant_types: Option<Vec<String>>,
    /// Absolute lifetime of refresh tokens, in seconds (default 2592000: 30 days)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..=31_536_000))]
    pub refresh_token_lifetime: Option<i64>,
    /// Refresh tokens unused this long expire, in seconds (default 1296000: 15 days)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..=31_536_000))]
    pub refresh_idle_lifetime: Option<i64>,
    /// A rotated refresh token may be retried within this many seconds (default 0)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(0..=60))]
    pub refresh_reuse_interval: Option<i64>,
    /// First party (no consent page) or third party (users consent to what it asks for)
    #[arg(long, value_name = "true|false")]
    pub first_party: Option<bool>,
    /// Restricts the application to these APIs (identifiers or ids, comma-separated; ""
    /// for none): other audiences get access_denied
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "APIS",
        conflicts_with = "allow_all_apis"
    )]
    pub allowed_apis: Option<Vec<String>>,
    /// Lifts the restriction: every API (the default)
    #[arg(long)]
    pub allow_all_apis: bool,
    /// Whether /authorize takes this application's requests only through a request_uri
    /// from /oauth/par (pushed authorization requests)
    #[arg(long, value_name = "true|false")]
    pub require_par: Option<bool>,
    #[command(flatten)]
    pub backchannel: BackchannelArgs,
}

// ---- grants -----------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum GrantsAction {
    /// Allow an application to get tokens for an API with client credentials
    Create {
        /// client_id of a machine-to-machine or regular web application
        #[arg(long)]
        app: String,
        /// The API's identifier (audience) or id
        #[arg(long)]
        api: String,
        /// Scopes granted, comma-separated; each must be defined by the API
        #[arg(long, value_delimiter = ',', value_name = "SCOPES", required = true)]
        scopes: Vec<String>,
    },
    /// List client grants, oldest first, a page at a time
    #[command(visible_alias = "ls")]
    List {
        /// Only the grants of this application (client_id)
        #[arg(long)]
        app: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Replace the scopes of a grant
    Update {
        /// The grant id (cgr_…)
        id: String,
        #[arg(long, value_delimiter = ',', value_name = "SCOPES", required = true)]
        scopes: Vec<String>,
    },
    /// Delete a grant
    #[command(visible_alias = "rm")]
    Delete {
        /// The grant id (cgr_…)
        id: String,
    },
}

// ---- users ------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Create a user; the password is read from stdin (one line)
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords are never arguments)
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Full name [default: the email]
        #[arg(long)]
        name: Option<String>,
        /// Mark the email as verified
        #[arg(long)]
        email_verified: bool,
    },
    /// List users, oldest first, a page at a time
    #[command(visible_alias = "ls")]
    List(PageArgs),
    /// Show one user
    Show {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// Delete a user
    #[command(visible_alias = "rm")]
    Delete {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// Block a user: no more logins, and their sessions end
    Block {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// Unblock a user, including lockouts after too many failed logins
    Unblock {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// List the networks a user is locked out from after too many failed logins in a row
    /// (brute-force protection), or lift those lockouts
    Blocks {
        /// user_id (auth0|…) or email
        user: String,
        /// Lift them (a block set with `users block` stays)
        #[arg(long)]
        lift: bool,
    },
    /// Set a user's password, read from stdin (one line)
    SetPassword {
        /// user_id (auth0|…) or email
        user: String,
        /// Read the password from standard input (required: passwords are never arguments)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Give, take away or list a user's roles
    Roles {
        #[command(subcommand)]
        action: UserRolesAction,
    },
    /// What a user may do: permissions through roles and direct ones
    Permissions {
        /// user_id (auth0|…) or email
        user: String,
        /// Only this API's (identifier or id)
        #[arg(long)]
        api: Option<String>,
    },
    /// List or revoke what a user allowed third-party applications (consent)
    Consents {
        #[command(subcommand)]
        action: UserConsentsAction,
    },
    /// List a user's second factors (authenticator app, recovery code)
    Factors {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// Reset a user's second factors: they enroll again at their next login that needs one
    ResetFactors {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// List the browsers a user is signed in with at the login page, by session id
    Sessions {
        /// user_id (auth0|…) or email
        user: String,
        /// Start after this session id (the `next` a previous page printed)
        #[arg(long, value_name = "SESSION_ID")]
        from: Option<String>,
        /// How many to list (1–100)
        #[arg(long, default_value_t = 50, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=100))]
        take: u32,
    },
    /// Sign a user out everywhere: every login session ends and every refresh token is
    /// revoked (access tokens already issued live until they expire)
    SignOut {
        /// user_id (auth0|…) or email
        user: String,
        /// Only this session (an id from `users sessions`) and the refresh tokens issued in it
        #[arg(long, value_name = "SESSION_ID")]
        session: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserConsentsAction {
    /// List a user's consents: application, API, allowed scopes
    #[command(visible_alias = "ls")]
    List {
        /// user_id (auth0|…) or email
        user: String,
    },
    /// Revoke a user's consent to an application (the consent page shows again), and end
    /// the refresh tokens that application holds for the user
    Revoke {
        /// user_id (auth0|…) or email
        user: String,
        /// The application's client_id (or exact name)
        #[arg(long)]
        app: String,
        /// Only the consent for this API (identifier or id; for consent given without an
        /// API, the `<issuer>userinfo` audience shown by `list`) [default: every API]
        #[arg(long)]
        api: Option<String>,
    },
}

// ---- logs -------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum LogsAction {
    /// Print the latest events, then each new one as it is written (like `tail -f`)
    Tail {
        /// Only events of this type (Auth0's code: s, fp, fu, seacft, sapi, …)
        #[arg(long = "type", value_name = "TYPE")]
        log_type: Option<String>,
        /// How many of the latest events to print first
        #[arg(long, default_value_t = 10, value_name = "N",
              value_parser = clap::value_parser!(u32).range(0..=1000))]
        lines: u32,
        /// Start after this log_id instead (a checkpoint printed before)
        #[arg(long, value_name = "LOG_ID")]
        from: Option<String>,
        /// Print what is there and stop instead of waiting for new events
        #[arg(long)]
        no_follow: bool,
        /// Milliseconds between two reads of the log while following
        #[arg(long, default_value_t = 1000, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(50..=60_000))]
        interval: u64,
    },
}

// ---- keys -------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List signing keys (kid, algorithm, state, creation time)
    #[command(visible_alias = "ls")]
    List,
    /// Rotate: next becomes current, current becomes previous, a new next is published
    Rotate {
        /// RS256, ES256 or EdDSA
        #[arg(long, default_value = "RS256", value_name = "ALG")]
        alg: String,
    },
}
