//! The request generator: a seeded xorshift64*, the routes with their parameter names,
//! hostile values, and requests built from them — most starting from a valid parameter set
//! of the route (a `Baseline`) with a few values changed, so that they get past the first
//! check, the rest from scratch.

use std::fmt;

use serde_json::Value;
use tessera_testkit::PASSWORD;

/// A header name a CRLF in a value would inject if it reached a response header.
pub(super) const INJECTED: &str = "x-injected";
/// The server's body limit (`DefaultBodyLimit` in `tessera_server::router`).
const BODY_LIMIT: usize = 64 * 1024;
/// Longest query string sent (`http::Uri` takes at most 64 KiB).
const MAX_QUERY: usize = 60_000;

/// xorshift64* (Vigna): tiny, deterministic, good enough to pick cases.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        // splitmix64 once, so that small or zero seeds start well mixed.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn copied<T: Copy>(&mut self, items: &[T]) -> T {
        *self.pick(items)
    }
}

/// How an endpoint answers errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// `{"error": "…", "error_description": "…"}`.
    OAuth,
    /// `{"statusCode": N, "error": "…", "message": "…"}`.
    Management,
    /// Auth0's sign-up errors: `{"name": "…", "code": "…", "description": …, "statusCode": N}`.
    Signup,
    /// An HTML page.
    Page,
}

pub(super) struct Route {
    pub(super) path: &'static str,
    methods: &'static [&'static str],
    params: &'static [&'static str],
    pub(super) shape: Shape,
}

const AUTHORIZE: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "audience",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "connection",
    "screen_hint",
    "request",
    "request_uri",
];
const LOGIN: &[&str] = &["state", "csrf", "username", "password", "password_changed"];
const SIGNUP: &[&str] = &["state", "csrf", "email", "password"];
const RESET: &[&str] = &["state", "csrf", "email", "code", "password", "connection"];
const TOKEN: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "audience",
    "scope",
    "device_code",
    "mfa_token",
    "otp",
    "recovery_code",
    "client_assertion",
    "client_assertion_type",
];
const CREDENTIALS: &[&str] = &[
    "credential_type",
    "name",
    "pem",
    "alg",
    "parse_expiry_from_cert",
    "expires_at",
];
const PAGING: &[&str] = &["page", "per_page", "include_totals", "from", "take"];
const LOGS: &[&str] = &[
    "from",
    "take",
    "q",
    "page",
    "per_page",
    "sort",
    "include_totals",
    "fields",
    "include_fields",
];
const RESOURCE_SERVERS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "name",
    "identifier",
    "scopes",
    "signing_alg",
    "token_lifetime",
    "allow_offline_access",
    "token_dialect",
    "enforce_policies",
];
const CLIENTS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "fields",
    "include_fields",
    "app_type",
    "name",
    "callbacks",
    "web_origins",
    "allowed_logout_urls",
    "grant_types",
    "is_first_party",
    "token_endpoint_auth_method",
    "refresh_token",
    "oidc_conformant",
    "allowed_apis",
    "require_pushed_authorization_requests",
    "client_authentication_methods",
    "oidc_logout",
];
const GRANTS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "from",
    "take",
    "client_id",
    "audience",
    "scope",
];
const USERS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "q",
    "search_engine",
    "fields",
    "include_fields",
    "connection",
    "client_id",
    "email",
    "password",
    "verify_password",
    "email_verified",
    "verify_email",
    "name",
    "nickname",
    "picture",
    "blocked",
    "user_metadata",
    "app_metadata",
];
const ROLES: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "name_filter",
    "name",
    "description",
    "permissions",
    "users",
    "roles",
    "from",
    "take",
];
const USER_GRANTS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "user_id",
    "client_id",
    "audience",
];
const PERMISSIONS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "permissions",
    "resource_server_identifier",
    "permission_name",
];

const ACTIONS: &[&str] = &[
    "name",
    "supported_triggers",
    "code",
    "dependencies",
    "runtime",
    "secrets",
    "triggerId",
    "actionName",
    "deployed",
    "force",
    "page",
    "per_page",
];
const RULES: &[&str] = &[
    "name", "script", "order", "enabled", "stage", "page", "per_page",
];
const GET: &[&str] = &["GET"];
const GET_OPTIONS: &[&str] = &["GET", "OPTIONS"];
const GET_POST: &[&str] = &["GET", "POST"];
const POST_OPTIONS: &[&str] = &["POST", "OPTIONS"];
const POST: &[&str] = &["POST"];
/// What dashboard forms carry (`crates/server/src/admin/`).
const DASHBOARD: &[&str] = &[
    "csrf",
    "session",
    "refresh_token",
    "everywhere",
    "sessions_from",
    "tokens_from",
    "type",
    "user",
    "return_to",
    "fresh",
    "code",
    "state",
    "error",
    "page",
    "notice",
    "name",
    "identifier",
    "signing_alg",
    "token_lifetime",
    "token_dialect",
    "value",
    "description",
    "client_id",
    "authorized",
    "confirm",
    "app_type",
    "callbacks",
    "allowed_logout_urls",
    "web_origins",
    "audience",
    "term",
    "field",
    "email",
    "password",
    "nickname",
    "user_metadata",
    "app_metadata",
    "blocked",
    "role",
    "remove",
    "permission",
    "grant",
    "user_id",
    "identity",
    "trigger",
    "secret_name",
    "secret_value",
    "event",
    "op",
    "position",
    "action",
    "strategy",
    "display_name",
    "client_secret",
    "discovery_url",
    "scopes",
    "options_json",
    "show_as_button",
    "is_domain_connection",
    "status",
    "connection_id",
    "connection",
    "is_first_party",
    "require_pushed_authorization_requests",
    "oidc_logout",
];
const GET_PATCH: &[&str] = &["GET", "PATCH"];
const PUT_DELETE: &[&str] = &["PUT", "DELETE"];
const GET_PATCH_DELETE: &[&str] = &["GET", "PATCH", "DELETE"];
const GET_POST_DELETE: &[&str] = &["GET", "POST", "DELETE"];
const GET_DELETE: &[&str] = &["GET", "DELETE"];
const DELETE: &[&str] = &["DELETE"];
/// The Auth0 features Tessera does not have answer every method (`management/absent.rs`).
const ABSENT_METHODS: &[&str] = &["GET", "POST", "PATCH", "PUT", "DELETE"];

const fn route(
    path: &'static str,
    methods: &'static [&'static str],
    params: &'static [&'static str],
    shape: Shape,
) -> Route {
    Route {
        path,
        methods,
        params,
        shape,
    }
}

/// Every route of `tessera_server::router` and of the Management API (checked against
/// `tessera_server::route_templates` by `every_route_is_fuzzed`). `{id}`, `{name}`,
/// `{file}` and the other placeholders are filled per request.
pub(super) const ROUTES: &[Route] = &[
    route("/healthz", GET, &[], Shape::Page),
    route("/favicon.ico", GET, &[], Shape::Page),
    route(
        "/.well-known/openid-configuration",
        GET_OPTIONS,
        &[],
        Shape::Page,
    ),
    route(
        "/.well-known/oauth-authorization-server",
        GET_OPTIONS,
        &[],
        Shape::Page,
    ),
    route("/.well-known/jwks.json", GET_OPTIONS, &[], Shape::Page),
    route("/authorize", GET_POST, AUTHORIZE, Shape::Page),
    route("/authorize/resume", GET, &["state"], Shape::Page),
    route(
        "/continue",
        GET_POST,
        &["state", "session_token"],
        Shape::Page,
    ),
    route("/u/login", GET_POST, LOGIN, Shape::Page),
    route(
        "/u/login/upstream",
        GET,
        &["state", "connection"],
        Shape::Page,
    ),
    route(
        "/login/callback",
        GET,
        &["state", "code", "error", "error_description"],
        Shape::Page,
    ),
    route(
        "/login/backchannel-logout/{connection}",
        POST,
        &["logout_token"],
        Shape::OAuth,
    ),
    route("/u/signup", GET_POST, SIGNUP, Shape::Page),
    route("/u/reset-password", GET_POST, RESET, Shape::Page),
    route("/u/reset-password/code", GET_POST, RESET, Shape::Page),
    route(
        "/u/email-verification",
        GET_POST,
        &["ticket", "csrf"],
        Shape::Page,
    ),
    route("/u/unblock", GET_POST, &["ticket", "csrf"], Shape::Page),
    route(
        "/dbconnections/signup",
        POST_OPTIONS,
        &[
            "client_id",
            "connection",
            "email",
            "password",
            "name",
            "nickname",
            "picture",
            "user_metadata",
        ],
        Shape::Signup,
    ),
    route(
        "/dbconnections/change_password",
        POST_OPTIONS,
        &["client_id", "connection", "email"],
        Shape::OAuth,
    ),
    route(
        "/u/consent",
        GET_POST,
        &["state", "csrf", "action"],
        Shape::Page,
    ),
    route(
        "/u/mfa",
        GET_POST,
        &[
            "state",
            "csrf",
            "action",
            "code",
            "recovery_code",
            "recovery",
            "method",
            "credential_id",
            "client_data_json",
            "authenticator_data",
            "signature",
            "user_handle",
            "attestation_object",
            "transports",
            "attachment",
        ],
        Shape::Page,
    ),
    route(
        "/u/login/passkey",
        POST,
        &[
            "state",
            "csrf",
            "credential_id",
            "client_data_json",
            "authenticator_data",
            "signature",
            "user_handle",
        ],
        Shape::Page,
    ),
    route(
        "/u/passkey",
        GET_POST,
        &[
            "state",
            "csrf",
            "action",
            "client_data_json",
            "attestation_object",
            "transports",
        ],
        Shape::Page,
    ),
    route("/oauth/token", POST_OPTIONS, TOKEN, Shape::OAuth),
    route(
        "/oauth/device/code",
        POST,
        &["client_id", "client_secret", "scope", "audience"],
        Shape::OAuth,
    ),
    route("/activate", GET_POST, &["user_code", "csrf"], Shape::Page),
    route(
        "/activate/confirm",
        POST,
        &["user_code", "csrf", "action"],
        Shape::Page,
    ),
    route("/mfa/authenticators", GET_OPTIONS, &[], Shape::OAuth),
    route(
        "/mfa/challenge",
        POST_OPTIONS,
        &[
            "client_id",
            "client_secret",
            "mfa_token",
            "challenge_type",
            "authenticator_id",
        ],
        Shape::OAuth,
    ),
    route(
        "/mfa/associate",
        POST_OPTIONS,
        &["authenticator_types"],
        Shape::OAuth,
    ),
    route(
        "/oauth/introspect",
        POST,
        &["client_id", "client_secret", "token", "token_type_hint"],
        Shape::OAuth,
    ),
    route(
        "/oauth/par",
        POST,
        &[
            "client_id",
            "client_secret",
            "response_type",
            "redirect_uri",
            "scope",
            "state",
            "audience",
            "code_challenge",
            "code_challenge_method",
            "request_uri",
        ],
        Shape::OAuth,
    ),
    route(
        "/oauth/revoke",
        POST_OPTIONS,
        &["client_id", "client_secret", "token", "token_type_hint"],
        Shape::OAuth,
    ),
    route(
        "/userinfo",
        &["GET", "POST", "OPTIONS"],
        &["access_token"],
        Shape::OAuth,
    ),
    route(
        "/v2/logout",
        GET,
        &["client_id", "returnTo", "federated"],
        Shape::Page,
    ),
    route(
        "/oidc/logout",
        GET_POST,
        &[
            "id_token_hint",
            "client_id",
            "post_logout_redirect_uri",
            "state",
            "logout_hint",
        ],
        Shape::Page,
    ),
    route("/static/{file}", GET, &[], Shape::Page),
    route("/admin", GET, &[], Shape::Page),
    route("/admin/", GET, DASHBOARD, Shape::Page),
    route("/admin/login", GET, DASHBOARD, Shape::Page),
    route("/admin/callback", GET, DASHBOARD, Shape::Page),
    route("/admin/logout", POST, DASHBOARD, Shape::Page),
    route("/admin/signed-out", GET, &[], Shape::Page),
    route("/admin/assets/{file}", GET, &[], Shape::Page),
    route("/admin/apis", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/apis/new", GET, DASHBOARD, Shape::Page),
    route("/admin/apis/{id}", GET, DASHBOARD, Shape::Page),
    route(
        "/admin/apis/{id}/settings",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/apis/{id}/permissions",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/apis/{id}/permissions/remove",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/apis/{id}/m2m", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/apis/{id}/test", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/apis/{id}/delete", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/applications", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/applications/new", GET, DASHBOARD, Shape::Page),
    route("/admin/users", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/users/new", GET, DASHBOARD, Shape::Page),
    route("/admin/users/{id}", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/users/{id}/block", POST, DASHBOARD, Shape::Page),
    route(
        "/admin/users/{id}/brute-force/lift",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/users/{id}/password", POST, DASHBOARD, Shape::Page),
    route(
        "/admin/users/{id}/identities/unlink",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/users/{id}/delete", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/users/{id}/roles", GET_POST, DASHBOARD, Shape::Page),
    route(
        "/admin/users/{id}/permissions",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/users/{id}/authorized-applications",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/users/{id}/mfa", GET, DASHBOARD, Shape::Page),
    route(
        "/admin/users/{id}/mfa/reset",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/users/{id}/sessions",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/users/{id}/json", GET, DASHBOARD, Shape::Page),
    route("/admin/logs", GET, DASHBOARD, Shape::Page),
    route("/admin/logs/{id}", GET, DASHBOARD, Shape::Page),
    route("/admin/log-streams", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/log-streams/new", GET, DASHBOARD, Shape::Page),
    route("/admin/log-streams/{id}", GET_POST, DASHBOARD, Shape::Page),
    route(
        "/admin/log-streams/{id}/status",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/log-streams/{id}/delete",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/settings", GET, DASHBOARD, Shape::Page),
    route(
        "/admin/settings/keys/rotate",
        POST,
        &["csrf", "alg"],
        Shape::Page,
    ),
    route(
        "/admin/settings/mfa",
        POST,
        &["csrf", "required"],
        Shape::Page,
    ),
    route(
        "/admin/settings/brute-force",
        POST,
        &[
            "csrf",
            "enabled",
            "block",
            "notify",
            "mode",
            "max_attempts",
            "allowlist",
        ],
        Shape::Page,
    ),
    route("/admin/actions", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/actions/new", GET, DASHBOARD, Shape::Page),
    route("/admin/actions/{id}", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/actions/{id}/deploy", POST, DASHBOARD, Shape::Page),
    route("/admin/actions/{id}/delete", POST, DASHBOARD, Shape::Page),
    route("/admin/actions/{id}/test", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/actions/{id}/versions", GET, DASHBOARD, Shape::Page),
    route(
        "/admin/actions/{id}/versions/{version_id}/deploy",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/triggers", GET, DASHBOARD, Shape::Page),
    route(
        "/admin/triggers/{trigger_id}",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/roles", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/roles/new", GET, DASHBOARD, Shape::Page),
    route("/admin/roles/{id}", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/roles/{id}/delete", POST, DASHBOARD, Shape::Page),
    route(
        "/admin/roles/{id}/permissions",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/roles/{id}/users", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/applications/{id}", GET_POST, DASHBOARD, Shape::Page),
    route(
        "/admin/applications/{id}/rotate-secret",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/applications/{id}/apis",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/applications/{id}/delete",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/applications/{id}/connections",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/applications/{id}/credentials",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/applications/{id}/credentials/{credential_id}/delete",
        POST,
        DASHBOARD,
        Shape::Page,
    ),
    route("/admin/connections", GET_POST, DASHBOARD, Shape::Page),
    route("/admin/connections/new", GET, DASHBOARD, Shape::Page),
    route("/admin/connections/{id}", GET_POST, DASHBOARD, Shape::Page),
    route(
        "/admin/connections/{id}/applications",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/admin/connections/{id}/delete",
        GET_POST,
        DASHBOARD,
        Shape::Page,
    ),
    route(
        "/api/v2/resource-servers",
        GET_POST,
        RESOURCE_SERVERS,
        Shape::Management,
    ),
    route(
        "/api/v2/resource-servers/{id}",
        GET_PATCH_DELETE,
        RESOURCE_SERVERS,
        Shape::Management,
    ),
    route("/api/v2/clients", GET_POST, CLIENTS, Shape::Management),
    route(
        "/api/v2/clients/{id}",
        GET_PATCH_DELETE,
        CLIENTS,
        Shape::Management,
    ),
    route(
        "/api/v2/clients/{id}/rotate-secret",
        &["POST"],
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/clients/{id}/credentials",
        GET_POST,
        CREDENTIALS,
        Shape::Management,
    ),
    route(
        "/api/v2/clients/{id}/credentials/{credential_id}",
        GET_PATCH_DELETE,
        CREDENTIALS,
        Shape::Management,
    ),
    route("/api/v2/client-grants", GET_POST, GRANTS, Shape::Management),
    route(
        "/api/v2/client-grants/{id}",
        GET_PATCH_DELETE,
        GRANTS,
        Shape::Management,
    ),
    route("/api/v2/grants", GET_DELETE, USER_GRANTS, Shape::Management),
    route("/api/v2/grants/{id}", DELETE, &[], Shape::Management),
    route("/api/v2/users", GET_POST, USERS, Shape::Management),
    route(
        "/api/v2/users/{id}",
        GET_PATCH_DELETE,
        USERS,
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/identities",
        POST,
        &["provider", "user_id", "connection_id", "link_with"],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/identities/{provider}/{user_id}",
        DELETE,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/users-by-email",
        GET,
        &["email", "fields", "include_fields"],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/roles",
        GET_POST_DELETE,
        ROLES,
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/permissions",
        GET_POST_DELETE,
        PERMISSIONS,
        Shape::Management,
    ),
    route("/api/v2/roles", GET_POST, ROLES, Shape::Management),
    route(
        "/api/v2/roles/{id}",
        GET_PATCH_DELETE,
        ROLES,
        Shape::Management,
    ),
    route(
        "/api/v2/roles/{id}/permissions",
        GET_POST_DELETE,
        PERMISSIONS,
        Shape::Management,
    ),
    route(
        "/api/v2/roles/{id}/users",
        GET_POST,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/connections",
        GET,
        &[
            "strategy",
            "name",
            "page",
            "per_page",
            "include_totals",
            "from",
            "take",
            "fields",
        ],
        Shape::Management,
    ),
    route(
        "/api/v2/connections/{id}",
        GET_PATCH,
        &["options", "display_name", "enabled_clients", "fields"],
        Shape::Management,
    ),
    route(
        "/api/v2/connections/{id}/clients",
        GET_PATCH,
        &["client_id", "status", "from", "take"],
        Shape::Management,
    ),
    route("/api/v2/rules", GET_POST, RULES, Shape::Management),
    route(
        "/api/v2/rules/{id}",
        GET_PATCH_DELETE,
        RULES,
        Shape::Management,
    ),
    route("/api/v2/rules-configs", GET, &[], Shape::Management),
    route(
        "/api/v2/rules-configs/{key}",
        PUT_DELETE,
        &["value"],
        Shape::Management,
    ),
    route("/api/v2/hooks", ABSENT_METHODS, PAGING, Shape::Management),
    route(
        "/api/v2/prompts/{prompt}/partials",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/attack-protection/bot-detection",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/attack-protection/captcha",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/supplemental-signals",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions",
        GET_POST,
        ACTIONS,
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions/{id}",
        GET_PATCH_DELETE,
        ACTIONS,
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions/{id}/deploy",
        POST,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions/{id}/test",
        POST,
        &["payload"],
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions/{id}/versions",
        GET,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions/{id}/versions/{version_id}",
        GET,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/actions/actions/{id}/versions/{version_id}/deploy",
        POST,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/actions/modules",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route("/api/v2/actions/triggers", GET, &[], Shape::Management),
    route(
        "/api/v2/actions/triggers/{trigger_id}/bindings",
        GET_PATCH,
        &["bindings", "page", "per_page"],
        Shape::Management,
    ),
    route(
        "/api/v2/organizations",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/custom-domains",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route("/api/v2/forms", ABSENT_METHODS, PAGING, Shape::Management),
    route("/api/v2/flows", ABSENT_METHODS, PAGING, Shape::Management),
    route(
        "/api/v2/flows/vault/connections",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/self-service-profiles",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/network-acls",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/user-attribute-profiles",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/connection-profiles",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/token-exchange-profiles",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/rate-limit-policies",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/event-streams",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/connections-directory-provisionings",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/branding/phone/providers",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/branding/phone/templates",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/guardian/policies",
        &["GET", "PUT"],
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/guardian/settings",
        &["GET", "PUT"],
        &[
            "display_remember_me_checkbox",
            "remember_me_default_value",
            "mfa_session_inactivity_timeout",
            "mfa_session_overall_timeout",
        ],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/multifactor/actions/invalidate-remember-browser",
        POST,
        &[],
        Shape::Management,
    ),
    route("/api/v2/guardian/factors", GET, &[], Shape::Management),
    route(
        "/api/v2/guardian/factors/{name}",
        &["PUT"],
        &["enabled"],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/authentication-methods",
        GET_DELETE,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/authentication-methods/{method_id}",
        GET_DELETE,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/authenticators",
        DELETE,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/recovery-code-regeneration",
        POST,
        &[],
        Shape::Management,
    ),
    route("/api/v2/prompts", ABSENT_METHODS, PAGING, Shape::Management),
    route(
        "/api/v2/prompts/{prompt}/custom-text/{language}",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/attack-protection/brute-force-protection",
        GET_PATCH,
        &[
            "enabled",
            "shields",
            "allowlist",
            "mode",
            "max_attempts",
            "fields",
        ],
        Shape::Management,
    ),
    route(
        "/api/v2/user-blocks",
        GET_DELETE,
        &["identifier", "consider_brute_force_enablement"],
        Shape::Management,
    ),
    route(
        "/api/v2/user-blocks/{id}",
        GET_DELETE,
        &["consider_brute_force_enablement"],
        Shape::Management,
    ),
    route(
        "/api/v2/attack-protection/suspicious-ip-throttling",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/attack-protection/breached-password-detection",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/risk-assessments/settings",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/risk-assessments/settings/new-device",
        ABSENT_METHODS,
        PAGING,
        Shape::Management,
    ),
    route(
        "/api/v2/jobs/verification-email",
        &["POST"],
        &["user_id", "client_id", "identity", "organization_id"],
        Shape::Management,
    ),
    route(
        "/api/v2/tenants/settings",
        GET_PATCH,
        &tessera_core::validate::TENANT_SETTINGS,
        Shape::Management,
    ),
    route(
        "/api/v2/email-templates",
        &["POST"],
        &tessera_core::validate::EMAIL_TEMPLATE_MEMBERS,
        Shape::Management,
    ),
    route(
        "/api/v2/email-templates/{name}",
        &["GET", "PUT", "PATCH"],
        &tessera_core::validate::EMAIL_TEMPLATE_MEMBERS,
        Shape::Management,
    ),
    route(
        "/api/v2/tickets/email-verification",
        &["POST"],
        &[
            "user_id",
            "result_url",
            "ttl_sec",
            "client_id",
            "includeEmailInRedirect",
            "organization_id",
        ],
        Shape::Management,
    ),
    route(
        "/api/v2/emails/provider",
        &["GET", "POST", "PATCH", "DELETE"],
        &tessera_core::validate::EMAIL_PROVIDER_MEMBERS,
        Shape::Management,
    ),
    // Multipart: the fuzzer's JSON and form bodies are refused as not multipart; the
    // hostile files themselves are the `imports` category's.
    route(
        "/api/v2/jobs/users-imports",
        POST_OPTIONS,
        &[
            "users",
            "connection_id",
            "upsert",
            "external_id",
            "send_completion_email",
        ],
        Shape::Management,
    ),
    route(
        "/api/v2/jobs/users-exports",
        POST_OPTIONS,
        &["connection_id", "format", "limit", "fields"],
        Shape::Management,
    ),
    route("/api/v2/jobs/{id}", GET, &[], Shape::Management),
    route("/api/v2/jobs/{id}/file", GET, &[], Shape::Management),
    route("/api/v2/jobs/{id}/errors", GET, &[], Shape::Management),
    route("/api/v2/logs", GET, LOGS, Shape::Management),
    route("/api/v2/logs/{id}", GET, &[], Shape::Management),
    route("/api/v2/log-streams", GET_POST, &[], Shape::Management),
    route(
        "/api/v2/log-streams/{id}",
        GET_PATCH_DELETE,
        &[],
        Shape::Management,
    ),
    route("/api/v2/users/{id}/logs", GET, LOGS, Shape::Management),
    route(
        "/api/v2/users/{id}/refresh-tokens",
        GET_DELETE,
        &["from", "take", "include_totals"],
        Shape::Management,
    ),
    route(
        "/api/v2/refresh-tokens/{id}",
        GET_PATCH_DELETE,
        &[],
        Shape::Management,
    ),
    route(
        "/api/v2/users/{id}/sessions",
        GET_DELETE,
        &["from", "take", "include_totals"],
        Shape::Management,
    ),
    route(
        "/api/v2/sessions/{id}",
        GET_PATCH_DELETE,
        &[],
        Shape::Management,
    ),
    route("/api/v2/sessions/{id}/revoke", POST, &[], Shape::Management),
];

/// Methods no route (or, for PUT, one) has, or spellings the server must not confuse.
const ODD_METHODS: &[&str] = &[
    "PUT",
    "HEAD",
    "TRACE",
    "PROPFIND",
    "FOO",
    "get",
    "Post",
    "M-SEARCH",
    "X",
    "GETGETGETGETGETGETGETGETGETGETGETGETGETGETGETGETGETGETGETGET",
];

/// Values every parameter may get: empty, huge-ish, NUL, Unicode, numbers, markup with
/// the marker, CRLF, URLs, and the vocabulary the endpoints understand.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "\t",
    "x",
    "0",
    "-1",
    "1e309",
    "18446744073709551616",
    "NaN",
    "true",
    "null",
    "{}",
    "[]",
    "a\0b",
    "\0",
    "\u{202e}evil",
    "\u{feff}",
    "ü",
    "𝕏𝕐",
    "e\u{301}",
    "\u{fffd}",
    "<tz9>",
    "\"tz9'><tz9 onerror=1>",
    "'tz9",
    "</script><tz9>",
    "javascript:alert('tz9')",
    "a\r\nX-Injected: tz9",
    "\r\n\r\n<tz9>",
    "' OR '1'='1",
    "\\",
    "../../../../etc/passwd",
    "%s%n%x{}{0}",
    "http://evil.example/",
    "//evil.example",
    "https://localhost:3000@evil.example/",
    "http://localhost:3000/callback/../x",
    "http://localhost:3000/callback#frag",
    "http://localhost:3000/callback?x=1",
    "openid",
    "openid profile email offline_access",
    "read:messages write:messages",
    "code",
    "token",
    "id_token",
    "code id_token token",
    "none",
    "login consent",
    "S256",
    "plain",
    "query",
    "fragment",
    "form_post",
    "web_message",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "Username-Password-Authentication",
    "accept",
    "deny",
    "1",
    "demo@example.com",
    PASSWORD,
    "spa",
    "non_interactive",
    "regular_web",
    "RS256",
    "HS256",
    "client_secret_post",
    "auth0|000000000000",
    "rol_0000000000000000",
];

/// Query and form values sent as they are, not percent-encoded by us.
const RAW: &[&str] = &[
    "%",
    "%Z",
    "%ZZ",
    "%FF",
    "%FF%FE",
    "%C0%80",
    "%ED%A0%80",
    "%00",
    "a%00b",
    "%0D%0A",
    "%0d%0aX-Injected:%20tz9",
    "a%26b%3Dc",
    "+",
    "%2B",
    "a&b",
    "=",
    "==",
    ";",
    "a=b=c",
    "%E2%80%AE",
    "%3Ctz9%3E",
    "%22tz9",
    "%27tz9",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "text/html",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded;charset=iso-8859-1",
    "",
    "*/*",
    "application/jsonx",
    "application/json, application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded\t",
    "application/x-www-form-urlencoded; charset=\"\u{e9}\"",
];
/// A valid parameter set of a route, and the cookie that goes with it (the login pages'
/// CSRF cookie).
pub(super) struct Baseline {
    pub(super) route: &'static str,
    pub(super) params: Vec<(&'static str, String)>,
    pub(super) cookie: Option<String>,
}

/// A valid JSON body of a Management API route for `method`.
pub(super) struct JsonBaseline {
    pub(super) route: &'static str,
    pub(super) method: &'static str,
    pub(super) body: Value,
}

/// What the fuzzer knows of the tenant: real values to mix with hostile ones.
pub(super) struct Pools {
    /// Values that mean something to some endpoint: ids, secrets, tokens, codes, URLs.
    pub(super) real: Vec<String>,
    /// Values for `{id}` in Management API paths.
    pub(super) ids: Vec<String>,
    /// `Authorization` values that are not a valid Management API token.
    pub(super) authorizations: Vec<String>,
    /// A valid Management API token (with every scope).
    pub(super) management_token: String,
    pub(super) cookies: Vec<String>,
    pub(super) baselines: Vec<Baseline>,
    pub(super) json_baselines: Vec<JsonBaseline>,
}

/// One parameter's value: text we percent-encode, bytes that go on the wire as they are
/// (broken escapes, separators), or JSON of another type than a string.
enum Val {
    Text(String),
    Raw(&'static str),
    Json(String),
}

struct Param {
    name: String,
    value: Val,
}

/// One planned request, generated from the seed.
pub(super) struct Planned {
    pub(super) index: usize,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Option<Vec<u8>>,
    pub(super) body_kind: &'static str,
    /// The error shape of what answers the path.
    pub(super) shape: Shape,
    /// A Management API request without a valid token.
    pub(super) unauthenticated: bool,
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut target = self.path.clone();
        if let Some(query) = &self.query {
            target.push('?');
            target.push_str(query);
        }
        let target: String = target.chars().take(240).collect();
        write!(
            f,
            "#{} {} {target:?} ({} body",
            self.index, self.method, self.body_kind
        )?;
        if let Some(body) = &self.body {
            write!(f, ", {} bytes", body.len())?;
        }
        write!(f, ")")?;
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value);
            let value: String = value.chars().take(60).collect();
            write!(f, " [{name}: {value:?}]")?;
        }
        Ok(())
    }
}

pub(super) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A string value: hostile, real (perhaps altered), long, or random characters.
fn text_value(rng: &mut Rng, pools: &Pools) -> String {
    match rng.below(10) {
        0..=3 => rng.pick(HOSTILE).to_string(),
        4..=6 => {
            let real = rng.pick(&pools.real).clone();
            match rng.below(6) {
                0 => format!("{real}x"),
                1 => real[..real.len() / 2].to_string(),
                2 => real.to_uppercase(),
                3 => format!(" {real} "),
                _ => real,
            }
        }
        7 => {
            let unit = *rng.pick(&["A", "<tz9>", "é", "%", "\0"]);
            let len = *rng.pick(&[4095usize, 4096, 4097, 9000, 33_000]);
            unit.repeat(len / unit.len())
        }
        _ => (0..rng.below(40))
            .map(|_| match rng.below(4) {
                0 => char::from(rng.below(32) as u8),
                1 => char::from(32 + rng.below(95) as u8),
                2 => char::from_u32(0x80 + rng.below(0x700) as u32).unwrap_or('?'),
                _ => char::from_u32(0x1F600 + rng.below(80) as u32).unwrap_or('?'),
            })
            .collect(),
    }
}

/// A JSON value of any type, as text; sometimes nested far deeper than a parser allows.
fn json_value(rng: &mut Rng, pools: &Pools, depth: usize) -> String {
    match rng.below(20) {
        0..=10 => Value::String(text_value(rng, pools)).to_string(),
        11 => rng
            .pick(&[
                "0",
                "-1",
                "1.5",
                "1e400",
                "123456789012345678901234567890",
                "-0",
            ])
            .to_string(),
        12 => rng.pick(&["true", "false"]).to_string(),
        13 => "null".to_string(),
        14 | 15 if depth < 3 => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| json_value(rng, pools, depth + 1))
                .collect();
            format!("[{}]", items.join(","))
        }
        16 | 17 if depth < 3 => {
            let names = ["value", "description", "id", "x", "rotation_type", "name"];
            let members: Vec<String> = (0..rng.below(4))
                .map(|_| {
                    let name = Value::String(rng.pick(&names).to_string());
                    format!("{name}:{}", json_value(rng, pools, depth + 1))
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        18 => {
            let depth = *rng.pick(&[64usize, 200, 5000]);
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        }
        _ => Value::String(rng.pick(HOSTILE).to_string()).to_string(),
    }
}

fn value(rng: &mut Rng, pools: &Pools) -> Val {
    match rng.below(20) {
        0..=2 => Val::Raw(rng.copied(RAW)),
        3 | 4 => Val::Json(json_value(rng, pools, 0)),
        _ => Val::Text(text_value(rng, pools)),
    }
}

fn param_name(rng: &mut Rng, names: &[&str]) -> String {
    if names.is_empty() || rng.percent(10) {
        let odd = ["x", "", "a b", "%00", "\u{202e}", "__proto__", "STATE"];
        rng.pick(&odd).to_string()
    } else {
        rng.pick(names).to_string()
    }
}

/// Parameters from scratch: the route's names (and a few others), any values, some twice.
fn random_params(rng: &mut Rng, pools: &Pools, names: &[&str]) -> Vec<Param> {
    let mut params = Vec::new();
    for _ in 0..rng.below(names.len().min(8) + 3) {
        let name = param_name(rng, names);
        if rng.percent(8) {
            let value = value(rng, pools);
            params.push(Param {
                name: name.clone(),
                value,
            });
        }
        let value = value(rng, pools);
        params.push(Param { name, value });
    }
    params
}

/// A valid parameter set with one or two values changed, dropped, emptied or repeated.
fn mutated_params(rng: &mut Rng, pools: &Pools, baseline: &Baseline, names: &[&str]) -> Vec<Param> {
    let mut params: Vec<Param> = baseline
        .params
        .iter()
        .map(|(name, real)| Param {
            name: name.to_string(),
            value: Val::Text(real.clone()),
        })
        .collect();
    for _ in 0..rng.below(3) {
        let at = rng.below(params.len());
        match rng.below(6) {
            0 | 1 => params[at].value = value(rng, pools),
            2 => {
                params.remove(at);
            }
            3 => {
                let name = params[at].name.clone();
                let value = value(rng, pools);
                params.push(Param { name, value });
            }
            4 => params[at].value = Val::Text(String::new()),
            _ => params[at].name = params[at].name.to_uppercase(),
        }
        if params.is_empty() {
            break;
        }
    }
    if rng.percent(20) {
        params.extend(random_params(rng, pools, names).into_iter().take(2));
    }
    params
}

/// A query string or form body.
fn urlencoded(rng: &mut Rng, params: &[Param]) -> String {
    let pairs: Vec<String> = params
        .iter()
        .map(|param| {
            let value = match &param.value {
                Val::Text(text) | Val::Json(text) => encode(text),
                Val::Raw(raw) => raw.to_string(),
            };
            match rng.below(25) {
                0 => encode(&param.name),
                1 => format!("{}[]={value}", encode(&param.name)),
                _ => format!("{}={value}", encode(&param.name)),
            }
        })
        .collect();
    let separator = if rng.percent(4) { ";" } else { "&" };
    let mut text = pairs.join(separator);
    if rng.percent(4) {
        text.push('&');
    }
    text
}

/// A JSON object of the parameters, written by hand so that members may repeat.
fn json_object(params: &[Param]) -> String {
    let members: Vec<String> = params
        .iter()
        .map(|param| {
            let value = match &param.value {
                Val::Text(text) => Value::String(text.clone()).to_string(),
                Val::Raw(raw) => Value::String(raw.to_string()).to_string(),
                Val::Json(json) => json.clone(),
            };
            format!("{}:{value}", Value::String(param.name.clone()))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A valid JSON value with some members replaced, dropped, repeated, or grown.
fn mutated_json(rng: &mut Rng, pools: &Pools, body: &Value) -> String {
    match body {
        Value::Object(map) => {
            let mut members = Vec::new();
            for (name, real) in map {
                let key = Value::String(name.clone()).to_string();
                match rng.below(20) {
                    0..=12 => members.push(format!("{key}:{real}")),
                    13..=15 => members.push(format!("{key}:{}", json_value(rng, pools, 0))),
                    16 => {}
                    17 => {
                        members.push(format!("{key}:{real}"));
                        members.push(format!("{key}:{}", json_value(rng, pools, 0)));
                    }
                    _ => members.push(format!("{key}:{}", mutated_json(rng, pools, real))),
                }
            }
            if rng.percent(15) {
                let name = Value::String(param_name(rng, &[]));
                members.push(format!("{name}:{}", json_value(rng, pools, 0)));
            }
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let mut items: Vec<String> = items
                .iter()
                .map(|item| mutated_json(rng, pools, item))
                .collect();
            if rng.percent(50) {
                items.push(json_value(rng, pools, 1));
            }
            format!("[{}]", items.join(","))
        }
        _ if rng.percent(50) => json_value(rng, pools, 0),
        real => real.to_string(),
    }
}

fn garbage(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(600)).map(|_| rng.next() as u8).collect()
}

fn fill_path(rng: &mut Rng, pools: &Pools, template: &str) -> String {
    let mut path = template.to_string();
    if path.contains("{file}") {
        let files = [
            "tessera.css",
            "form_post.js",
            "web_message.js",
            "..%2Fmain.rs",
            "%00",
            "x.css",
            "%3Ctz9%3E",
        ];
        path = path.replace("{file}", rng.copied(&files));
    }
    if path.contains("{name}") {
        let names = [
            "verify_email",
            "reset_email",
            "welcome_email",
            "VERIFY_EMAIL",
            "bogus",
            "%00",
            "verify_email%2F..",
            "%3Ctz9%3E",
        ];
        path = path.replace("{name}", rng.copied(&names));
    }
    if path.contains("{trigger_id}") {
        let triggers = [
            "post-login",
            "credentials-exchange",
            "send-phone-message",
            "POST-LOGIN",
            "%00",
            "..%2Fx",
            "%3Ctz9%3E",
        ];
        path = path.replace("{trigger_id}", rng.copied(&triggers));
    }
    if path.contains("{key}") {
        let keys = ["API_KEY", "a b", "%00", "..%2Fx", "%3Ctz9%3E", "k@*+:-_"];
        path = path.replace("{key}", rng.copied(&keys));
    }
    if path.contains("{version_id}") {
        let versions = ["actv_x", "%00", "..%2Fx", "%3Ctz9%3E"];
        path = path.replace("{version_id}", rng.copied(&versions));
    }
    if path.contains("{provider}") {
        let providers = [
            "oidc",
            "github",
            "auth0",
            "%7C",
            "%00",
            "..%2Fx",
            "%3Ctz9%3E",
        ];
        path = path.replace("{provider}", rng.copied(&providers));
    }
    if path.contains("{user_id}") {
        let ids = ["acme%7Csub", "42", "%7C%7C", "%00", "..%2Fx", "%3Ctz9%3E"];
        path = path.replace("{user_id}", rng.copied(&ids));
    }
    if path.contains("{id}") {
        let id = if rng.percent(75) {
            encode(&rng.pick(&pools.ids).clone()).replace('+', "%20")
        } else {
            rng.pick(RAW).replace(['&', '=', ';', '+'], "%2F")
        };
        path = path.replace("{id}", &id);
    }
    match rng.below(60) {
        0 => path.push('/'),
        1 => path = format!("/{path}"),
        2 => path.push_str("%00"),
        3 => path.push_str("/%2e%2e/x"),
        4 => path = path.to_uppercase(),
        5 => path = format!("{path}/{}", "a".repeat(5000)),
        _ => {}
    }
    path
}

fn authorization(rng: &mut Rng, pools: &Pools, shape: Shape) -> Option<Vec<u8>> {
    match rng.below(10) {
        0..=3 => None,
        4..=6 => Some(rng.pick(&pools.authorizations).clone().into_bytes()),
        7 => {
            let token = text_value(rng, pools);
            let scheme = rng.pick(&["Bearer", "bearer", "BEARER", "Basic", "Digest", ""]);
            Some(header_safe(&format!("{scheme} {token}")))
        }
        8 if shape != Shape::Management => {
            // The Management API's token where it means nothing.
            Some(format!("Bearer {}", pools.management_token).into_bytes())
        }
        _ => {
            let mut value = b"Bearer ".to_vec();
            value.extend((0..rng.below(64)).map(|_| 0x80 | rng.next() as u8));
            Some(value)
        }
    }
}

/// The path as the client sends it (dot segments resolved, as `url` does).
fn normalized(path: &str) -> String {
    url::Url::parse(&format!("http://x{path}"))
        .map(|url| url.path().to_string())
        .unwrap_or_else(|_| path.to_string())
}

/// Whether `path` is an instance of the route `template` (`{…}` matches one segment).
fn matches(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t == p || (t.starts_with('{') && !p.is_empty()) => {}
            _ => return false,
        }
    }
}

/// The error shape of whatever answers `path`: a route, the Management API's own
/// fallback, or the server's (an HTML page).
fn shape_of(path: &str) -> Shape {
    let path = normalized(path);
    if path == "/api/v2" || path.starts_with("/api/v2/") {
        return Shape::Management;
    }
    ROUTES
        .iter()
        .find(|route| matches(route.path, &path))
        .map_or(Shape::Page, |route| route.shape)
}

/// A header value the HTTP client can send: no control characters (raw TCP sends those).
fn header_safe(text: &str) -> Vec<u8> {
    text.bytes()
        .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
        .collect()
}

/// The `index`th request: any route, or only the Management API's with (mostly) a valid
/// token when `management_with_token`.
pub(super) fn plan(
    rng: &mut Rng,
    pools: &Pools,
    index: usize,
    management_with_token: bool,
) -> Planned {
    // Weighted: endpoints with parameters over static ones; in the first phase the
    // Management API (half the routes, all refusing without a token) less often.
    let route = loop {
        let route = rng.pick(ROUTES);
        let keep = match (management_with_token, route.shape) {
            (true, shape) => shape == Shape::Management,
            (false, Shape::Management) => rng.percent(35),
            (false, _) => !route.params.is_empty() || rng.percent(40),
        };
        if keep {
            break route;
        }
    };
    let method = match rng.below(20) {
        0 | 1 => rng.pick(ODD_METHODS).to_string(),
        2 | 3 => rng
            .pick(&["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
            .to_string(),
        4 => rng.pick(route.methods).to_string(),
        // Mostly a method that does something (OPTIONS is only a CORS preflight).
        _ => loop {
            let method = *rng.pick(route.methods);
            if method != "OPTIONS" {
                break method.to_string();
            }
        },
    };
    let path = fill_path(rng, pools, route.path);
    let shape = shape_of(&path);
    let baselines: Vec<&Baseline> = pools
        .baselines
        .iter()
        .filter(|b| b.route == route.path)
        .collect();
    let baseline = (!baselines.is_empty() && rng.percent(65)).then(|| *rng.pick(&baselines));
    let params = match baseline {
        Some(baseline) => mutated_params(rng, pools, baseline, route.params),
        None => random_params(rng, pools, route.params),
    };
    let json_baselines: Vec<&JsonBaseline> = pools
        .json_baselines
        .iter()
        .filter(|b| b.route == route.path && b.method == method)
        .collect();

    let sends_body = !matches!(method.as_str(), "GET" | "HEAD") || rng.percent(5);
    let params_in_body = sends_body && rng.percent(85);
    let query = if params_in_body {
        rng.percent(10).then(|| {
            let extra = random_params(rng, pools, route.params);
            urlencoded(rng, &extra)
        })
    } else {
        (!params.is_empty()).then(|| urlencoded(rng, &params))
    };
    let query = query.map(|mut query| {
        query.truncate(MAX_QUERY);
        query
    });
    let (body_kind, body, matching_type): (&'static str, Option<Vec<u8>>, &str) = if !sends_body {
        ("no", None, "")
    } else {
        let form = "application/x-www-form-urlencoded";
        let json = "application/json";
        // Mostly the body each kind of endpoint reads: forms for pages, JSON for the
        // Management API, either for OAuth.
        let (forms, jsons) = match shape {
            Shape::Page => (12, 3),
            Shape::OAuth => (9, 6),
            Shape::Management | Shape::Signup => (2, 13),
        };
        match rng.below(20) {
            n if n < forms => ("form", Some(urlencoded(rng, &params).into_bytes()), form),
            n if n < forms + jsons => {
                let body = if !json_baselines.is_empty() && rng.percent(70) {
                    let baseline = *rng.pick(&json_baselines);
                    mutated_json(rng, pools, &baseline.body)
                } else if rng.percent(10) {
                    json_value(rng, pools, 0)
                } else {
                    json_object(&params)
                };
                ("JSON", Some(body.into_bytes()), json)
            }
            16 => ("garbage", Some(garbage(rng)), json),
            17 => {
                let size = *rng.pick(&[BODY_LIMIT + 1, BODY_LIMIT + 4096, 1 << 20]);
                let mut body = b"grant_type=".to_vec();
                body.resize(size, b'A');
                ("oversize", Some(body), form)
            }
            18 => ("empty", Some(Vec::new()), json),
            _ => ("no", None, ""),
        }
    };

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut unauthenticated = shape == Shape::Management;
    if management_with_token && rng.percent(85) {
        let token = format!("Bearer {}", pools.management_token);
        headers.push(("authorization".into(), token.into_bytes()));
        unauthenticated = false;
    } else if let Some(value) = authorization(rng, pools, shape)
        // A valid parameter set mostly comes without a stray Authorization header.
        && (baseline.is_none() || rng.percent(20))
    {
        headers.push(("authorization".into(), value));
        if rng.percent(5) {
            headers.push(("authorization".into(), b"Bearer second".to_vec()));
        }
    }
    let baseline_cookie = baseline.and_then(|b| b.cookie.clone());
    if baseline_cookie.is_some() && rng.percent(85) {
        headers.push((
            "cookie".into(),
            baseline_cookie.unwrap_or_default().into_bytes(),
        ));
    } else if rng.percent(30) {
        let cookie = if rng.percent(60) {
            rng.pick(&pools.cookies).clone()
        } else {
            let name = rng.pick(&["tessera_session", "tessera_csrf", "x", ""]);
            format!("{name}={}", text_value(rng, pools))
        };
        headers.push(("cookie".into(), header_safe(&cookie)));
    }
    if rng.percent(15) {
        let origins = [
            "http://localhost:3000",
            "null",
            "http://evil.example",
            "<tz9>",
            "",
        ];
        headers.push(("origin".into(), rng.pick(&origins).as_bytes().to_vec()));
    }
    if rng.percent(5) {
        let forwarded = rng.pick(&["1.2.3.4", "garbage", "::1, 10.0.0.1", "<tz9>"]);
        headers.push(("x-forwarded-for".into(), forwarded.as_bytes().to_vec()));
    }
    if body.is_some() || rng.percent(5) {
        let content_type = if rng.percent(75) && !matching_type.is_empty() {
            matching_type
        } else {
            rng.pick(CONTENT_TYPES)
        };
        if !content_type.is_empty() || rng.percent(50) {
            headers.push(("content-type".into(), header_safe(content_type)));
        }
    }
    Planned {
        index,
        method,
        path,
        query,
        headers,
        body,
        body_kind,
        shape,
        unauthenticated,
    }
}
