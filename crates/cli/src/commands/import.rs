//! `tessera import auth0 --tenant tenant.yaml --users users.json`: moves a tenant from
//! Auth0. `tenant.yaml` is what the Auth0 Deploy CLI (a0deploy) exports in YAML —
//! `tenant`, `resourceServers`, `clients`, `clientGrants`, `roles`, `attackProtection`'s
//! brute-force protection; other sections are
//! reported as skipped — and `users.json` an Auth0 user export (NDJSON, one user per
//! line) or a bulk-import file (a JSON array).
//!
//! Everything is checked before anything is written, with the rules the admin commands
//! and the Management API use (`tessera_core::validate`, `tessera_server::user_import`):
//! one invalid value anywhere and the command prints every refusal and changes nothing.
//! Then it creates what is new, skips what exists (by API identifier, application and
//! role name, grant's application and audience, user email) and prints the report.
//!
//! YAML is read with `serde-saphyr`: serde_yaml is archived and serde_yml has had
//! soundness advisories; serde-saphyr is pure safe Rust, maintained, and bounds alias
//! expansion and nesting by default, which a file from elsewhere needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};
use tessera_core::validate::{self as rules, UrlKind};
use tessera_core::{
    AppType, Client, ClientGrant, DEFAULT_ACCESS_TOKEN_LIFETIME, RefreshPolicy, ResourceServer,
    Role, Scope, ids,
};
use tessera_server::{user_blocks_admin, user_import};
use tessera_store::{ClientGrantFilter, Slice, Store};

use crate::cli::ImportAuth0;
use crate::commands::{Context, now};
use crate::error::{CliError, CliResult};

/// The largest tenant file read.
const MAX_TENANT_FILE: u64 = 16 * 1024 * 1024;
/// a0deploy sections Tessera imports; any other is reported as skipped.
const SECTIONS: &[&str] = &[
    "tenant",
    "resourceServers",
    "clients",
    "clientGrants",
    "roles",
    "attackProtection",
];
/// Sections of the export Tessera has but this command does not carry over: set them
/// through the Management API (or a0deploy) once the tenant is imported.
const NOT_CARRIED: &[(&str, &str)] = &[
    (
        "emailTemplates",
        "set them with a0deploy or /api/v2/email-templates",
    ),
    (
        "emailProvider",
        "set it with /api/v2/emails/provider (its password is not in an export)",
    ),
    ("databases", "Tessera has its own database connection"),
];
/// Members of an Auth0 user export that describe the account's history at Auth0, not
/// the user: dropped before the user is checked against the import schema.
const EXPORT_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "last_login",
    "last_ip",
    "logins_count",
    "identities",
    "last_password_reset",
];

/// What the command did or would do, per type of object; with `--json`, printed as
/// `{created, skipped, refused, ignored}` maps of type → items.
#[derive(Default, serde::Serialize)]
struct Report {
    created: BTreeMap<&'static str, Vec<String>>,
    skipped: BTreeMap<&'static str, Vec<String>>,
    refused: BTreeMap<&'static str, Vec<String>>,
    /// Members Tessera has no place for, per type: ignored, and said so.
    ignored: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Report {
    fn created(&mut self, kind: &'static str, what: impl Into<String>) {
        self.created.entry(kind).or_default().push(what.into());
    }
    fn skipped(&mut self, kind: &'static str, what: impl Into<String>) {
        self.skipped.entry(kind).or_default().push(what.into());
    }
    fn refused(&mut self, kind: &'static str, what: impl Into<String>) {
        self.refused.entry(kind).or_default().push(what.into());
    }
    fn ignored(&mut self, kind: &'static str, member: &str) {
        self.ignored
            .entry(kind)
            .or_default()
            .insert(member.to_string());
    }

    fn print(&self, json: bool) {
        if json {
            crate::output::print_json(self);
            return;
        }
        for (title, lists) in [
            ("created", &self.created),
            ("skipped", &self.skipped),
            ("refused", &self.refused),
        ] {
            for (kind, items) in lists {
                println!("{title} {kind}: {}", items.len());
                for item in items.iter().take(50) {
                    println!("  {item}");
                }
                if items.len() > 50 {
                    println!("  … and {} more", items.len() - 50);
                }
            }
        }
        for (kind, members) in &self.ignored {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            println!(
                "ignored members of {kind} (Tessera has no such setting): {}",
                members.join(", ")
            );
        }
    }

    fn refusals(&self) -> usize {
        self.refused.values().map(Vec::len).sum()
    }
}

fn read_file(path: &Path, limit: u64, what: &str) -> CliResult<Vec<u8>> {
    let size = std::fs::metadata(path)
        .map_err(|e| CliError::io(format!("cannot read the {what} file {}", path.display()), e))?
        .len();
    if size > limit {
        return Err(CliError::invalid(format!(
            "the {what} file {} is larger than {limit} bytes",
            path.display()
        )));
    }
    std::fs::read(path)
        .map_err(|e| CliError::io(format!("cannot read the {what} file {}", path.display()), e))
}

/// The tenant file as JSON values: a0deploy's YAML (a `.json` export is read as JSON).
fn read_tenant(path: &Path) -> CliResult<Map<String, Value>> {
    let bytes = read_file(path, MAX_TENANT_FILE, "tenant")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", path.display())))?;
    let value: Value = serde_saphyr::from_str(&text).map_err(|error| {
        CliError::invalid(format!(
            "{} is not a YAML document a0deploy writes: {error}",
            path.display()
        ))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(CliError::invalid(format!(
            "{}: expected a mapping of sections (tenant, resourceServers, clients, …)",
            path.display()
        ))),
    }
}

/// Users from a bulk-import file (a JSON array) or an Auth0 export (NDJSON).
fn read_users(path: &Path) -> CliResult<Vec<Value>> {
    let bytes = read_file(path, user_import::MAX_FILE_BYTES as u64, "users")?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return user_import::parse_file(&bytes)
            .map_err(|error| CliError::invalid(format!("{}: {error}", path.display())));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", path.display())))?;
    let mut users = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // One line is one small file: the same reader refuses repeats and depth.
        let mut parsed =
            user_import::parse_file(format!("[{line}]").as_bytes()).map_err(|error| {
                CliError::invalid(format!("{} line {}: {error}", path.display(), number + 1))
            })?;
        users.append(&mut parsed);
    }
    if users.is_empty() {
        return Err(CliError::invalid(format!(
            "{} holds no user",
            path.display()
        )));
    }
    Ok(users)
}

fn items<'a>(tenant: &'a Map<String, Value>, section: &str) -> Vec<&'a Map<String, Value>> {
    match tenant.get(section) {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    }
}

fn text<'a>(item: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str)
}

fn strings(item: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match item.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key} must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

/// What will be written, decided before anything is.
#[derive(Default)]
struct Plan {
    apis: Vec<ResourceServer>,
    clients: Vec<(Client, Option<String>)>,
    grants: Vec<ClientGrant>,
    roles: Vec<(Role, Vec<(String, String)>)>,
    settings: Option<Map<String, Value>>,
    brute_force: Option<Map<String, Value>>,
}

const API_MEMBERS: &[&str] = &[
    "name",
    "identifier",
    "scopes",
    "signing_alg",
    "token_lifetime",
    "token_lifetime_for_web",
    "allow_offline_access",
    "token_dialect",
    "enforce_policies",
];

fn plan_api(item: &Map<String, Value>, now: i64) -> Result<ResourceServer, String> {
    let name = rules::api_name(text(item, "name").ok_or("no name")?)?;
    let identifier = rules::api_identifier(text(item, "identifier").ok_or("no identifier")?)?;
    let mut scopes = Vec::new();
    if let Some(list) = item.get("scopes") {
        let list = list.as_array().ok_or("scopes must be a list")?;
        for scope in list {
            let value = scope
                .get("value")
                .and_then(Value::as_str)
                .ok_or("a scope has no value")?;
            rules::scope_value(value)?;
            let description = match scope.get("description").and_then(Value::as_str) {
                Some(text) => rules::scope_description(value, text)?,
                None => String::new(),
            };
            scopes.push(Scope {
                value: value.to_string(),
                description,
            });
        }
    }
    let alg = text(item, "signing_alg").unwrap_or("RS256");
    tessera_jose::Algorithm::parse(alg).map_err(|_| format!("unsupported signing_alg {alg:?}"))?;
    let lifetime = rules::token_lifetime(
        item.get("token_lifetime")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME),
    )?;
    let lifetime_for_web = match item.get("token_lifetime_for_web").and_then(Value::as_i64) {
        Some(seconds) => rules::token_lifetime(seconds)?,
        None => lifetime,
    };
    let dialect = rules::token_dialect(text(item, "token_dialect").unwrap_or("access_token"))?;
    let flag = |key: &str| item.get(key).and_then(Value::as_bool).unwrap_or(false);
    Ok(ResourceServer {
        id: ids::hex_id(12),
        name,
        identifier,
        signing_alg: alg.to_string(),
        token_lifetime: lifetime,
        token_lifetime_for_web: lifetime_for_web,
        allow_offline_access: flag("allow_offline_access"),
        token_dialect: dialect,
        enforce_policies: flag("enforce_policies"),
        scopes,
        proof_of_possession: None,
        created_at: now,
        updated_at: now,
    })
}

const CLIENT_MEMBERS: &[&str] = &[
    "name",
    "app_type",
    "callbacks",
    "web_origins",
    "allowed_logout_urls",
    "grant_types",
    "is_first_party",
    "description",
    "logo_uri",
];

fn plan_client(item: &Map<String, Value>, now: i64) -> Result<(Client, Option<String>), String> {
    let name = rules::name(text(item, "name").ok_or("no name")?, "application")?;
    let app_type: AppType = rules::app_type(text(item, "app_type").unwrap_or("regular_web"))?;
    let callbacks = strings(item, "callbacks")?;
    rules::urls(&callbacks, UrlKind::Callback, app_type)?;
    let web_origins = strings(item, "web_origins")?;
    rules::urls(&web_origins, UrlKind::WebOrigin, app_type)?;
    let logout_urls = strings(item, "allowed_logout_urls")?;
    rules::urls(&logout_urls, UrlKind::LogoutUrl, app_type)?;
    let grant_types = match item.get("grant_types") {
        Some(_) => {
            let list = strings(item, "grant_types")?;
            rules::grant_types(&list, app_type)?;
            list
        }
        None => app_type.default_grant_types(),
    };
    let mut profile = tessera_core::ClientProfile::default();
    if let Some(description) = text(item, "description") {
        profile.description = Some(rules::client_description(description)?);
    }
    if let Some(logo) = text(item, "logo_uri") {
        profile.logo_uri = Some(rules::logo_uri(logo)?);
    }
    let secret = (!app_type.is_public()).then(ids::client_secret);
    let client = Client {
        client_id: ids::alphanumeric(32),
        name,
        app_type,
        secret_hash: secret.as_deref().map(ids::secret_hash),
        token_endpoint_auth_method: app_type.default_auth_method().to_string(),
        callbacks,
        web_origins,
        allowed_logout_urls: logout_urls,
        grant_types,
        is_first_party: item
            .get("is_first_party")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        allowed_apis: None,
        refresh: RefreshPolicy::default(),
        profile,
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: now,
        updated_at: now,
        oidc_logout: None,
    };
    Ok((client, secret))
}

/// Checks the tenant file against the store as it is; writes nothing.
async fn plan_tenant(
    store: &Store,
    tenant: &Map<String, Value>,
    report: &mut Report,
) -> CliResult<Plan> {
    let now = now();
    let mut plan = Plan::default();
    for section in tenant.keys() {
        if SECTIONS.contains(&section.as_str()) {
            continue;
        }
        match NOT_CARRIED.iter().find(|(name, _)| name == section) {
            Some((_, how)) => report.skipped("sections", format!("{section}: not imported; {how}")),
            None => report.skipped("sections", format!("{section}: not something Tessera has")),
        }
    }
    let note_ignored =
        |report: &mut Report, kind: &'static str, item: &Map<String, Value>, known: &[&str]| {
            for key in item.keys().filter(|key| !known.contains(&key.as_str())) {
                report.ignored(kind, key);
            }
        };

    // APIs, by identifier.
    let mut api_scopes: BTreeMap<String, ResourceServer> = BTreeMap::new();
    for item in items(tenant, "resourceServers") {
        note_ignored(report, "resourceServers", item, API_MEMBERS);
        let label = text(item, "identifier")
            .or(text(item, "name"))
            .unwrap_or("(unnamed)")
            .to_string();
        if label.ends_with("/api/v2/") {
            report.skipped(
                "resourceServers",
                format!("{label}: Auth0's Management API (Tessera registers its own)"),
            );
            continue;
        }
        match plan_api(item, now) {
            Err(why) => report.refused("resourceServers", format!("{label}: {why}")),
            Ok(api) => match store.find_resource_server(&api.identifier).await? {
                Some(existing) => {
                    report.skipped("resourceServers", format!("{label}: exists"));
                    api_scopes.insert(existing.identifier.clone(), existing);
                }
                None if api_scopes.contains_key(&api.identifier) => {
                    report.refused("resourceServers", format!("{label}: listed twice"));
                }
                None => {
                    api_scopes.insert(api.identifier.clone(), api.clone());
                    plan.apis.push(api);
                }
            },
        }
    }

    // Applications, by name (a0deploy names them; grants refer to them by name).
    let mut client_ids: BTreeMap<String, Client> = BTreeMap::new();
    for item in items(tenant, "clients") {
        note_ignored(report, "clients", item, CLIENT_MEMBERS);
        let label = text(item, "name").unwrap_or("(unnamed)").to_string();
        match plan_client(item, now) {
            Err(why) => report.refused("clients", format!("{label}: {why}")),
            Ok((client, secret)) => match store.find_client_by_name(&client.name).await? {
                Some(existing) => {
                    report.skipped(
                        "clients",
                        format!("{label}: exists ({})", existing.client_id),
                    );
                    client_ids.insert(existing.name.clone(), existing);
                }
                None if client_ids.contains_key(&client.name) => {
                    report.refused("clients", format!("{label}: listed twice"));
                }
                None => {
                    client_ids.insert(client.name.clone(), client.clone());
                    plan.clients.push((client, secret));
                }
            },
        }
    }

    // Client grants: the application by name (or id), the API by identifier.
    for item in items(tenant, "clientGrants") {
        note_ignored(
            report,
            "clientGrants",
            item,
            &["client_id", "audience", "scope"],
        );
        let client_ref = text(item, "client_id").unwrap_or_default();
        let audience = text(item, "audience").unwrap_or_default();
        let label = format!("{client_ref} → {audience}");
        if audience.ends_with("/api/v2/") {
            report.skipped(
                "clientGrants",
                format!(
                    "{label}: Auth0's Management API (grant Tessera's with `tessera grants create`)"
                ),
            );
            continue;
        }
        let client = match client_ids.get(client_ref) {
            Some(client) => Some(client.clone()),
            None => store.find_client(client_ref).await?,
        };
        let Some(client) = client else {
            report.refused(
                "clientGrants",
                format!("{label}: no application named {client_ref}"),
            );
            continue;
        };
        let api = match api_scopes.get(audience) {
            Some(api) => Some(api.clone()),
            None => store.find_resource_server(audience).await?,
        };
        let Some(api) = api else {
            report.refused("clientGrants", format!("{label}: no API {audience}"));
            continue;
        };
        let scopes = match strings(item, "scope") {
            Ok(scopes) => scopes,
            Err(why) => {
                report.refused("clientGrants", format!("{label}: {why}"));
                continue;
            }
        };
        if let Err(why) = rules::client_grant_app_type(client.app_type)
            .and_then(|()| rules::granted_scopes(&scopes, &api))
        {
            report.refused("clientGrants", format!("{label}: {why}"));
            continue;
        }
        let filter = ClientGrantFilter {
            client_id: Some(&client.client_id),
            audience: Some(&api.identifier),
        };
        if !store
            .list_client_grants(filter, Slice::first(1))
            .await?
            .items
            .is_empty()
        {
            report.skipped("clientGrants", format!("{label}: exists"));
            continue;
        }
        plan.grants.push(ClientGrant {
            id: format!("cgr_{}", ids::alphanumeric(16)),
            client_id: client.client_id.clone(),
            audience: api.identifier.clone(),
            scope: scopes,
            created_at: now,
        });
    }

    // Roles, by name, with their permissions on known APIs.
    for item in items(tenant, "roles") {
        note_ignored(
            report,
            "roles",
            item,
            &["name", "description", "permissions"],
        );
        let label = text(item, "name").unwrap_or("(unnamed)").to_string();
        if tessera_core::system::is_system_role_name(label.trim()) {
            // Another Tessera's export: these are registered here at start, with this
            // server's permissions; `tessera admins` gives them.
            report.skipped("roles", format!("{label}: Tessera's own"));
            continue;
        }
        let checked = (|| -> Result<(Role, Vec<(String, String)>), String> {
            let name = rules::name(text(item, "name").ok_or("no name")?, "role")?;
            let mut permissions = Vec::new();
            for permission in item
                .get("permissions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let audience = permission
                    .get("resource_server_identifier")
                    .and_then(Value::as_str)
                    .ok_or("a permission has no resource_server_identifier")?;
                let scope = permission
                    .get("permission_name")
                    .and_then(Value::as_str)
                    .ok_or("a permission has no permission_name")?;
                let api = api_scopes
                    .get(audience)
                    .ok_or_else(|| format!("no API {audience} for permission {scope}"))?;
                rules::granted_scopes(&[scope.to_string()], api)?;
                permissions.push((audience.to_string(), scope.to_string()));
            }
            Ok((
                Role {
                    id: format!("rol_{}", ids::alphanumeric(16)),
                    name,
                    description: text(item, "description")
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    created_at: now,
                    updated_at: now,
                },
                permissions,
            ))
        })();
        match checked {
            Err(why) => report.refused("roles", format!("{label}: {why}")),
            Ok((role, permissions)) => {
                if store.find_role(&role.name).await?.is_some() {
                    report.skipped("roles", format!("{label}: exists"));
                } else if plan.roles.iter().any(|(r, _)| r.name == role.name) {
                    report.refused("roles", format!("{label}: listed twice"));
                } else {
                    plan.roles.push((role, permissions));
                }
            }
        }
    }

    // Tenant settings, merged like PATCH /api/v2/tenants/settings.
    if let Some(settings) = tenant.get("tenant") {
        match settings.as_object() {
            None => report.refused("tenant", "tenant must be a mapping of settings"),
            Some(settings) => match rules::tenant_settings(settings) {
                Ok(()) => plan.settings = Some(settings.clone()),
                Err(why) => report.refused("tenant", why),
            },
        }
    }
    // Attack protection: brute-force protection, merged like its PATCH; Auth0's other
    // shields are not Tessera's to set.
    if let Some(protection) = tenant.get("attackProtection") {
        match protection.as_object() {
            None => report.refused("attackProtection", "attackProtection must be a mapping"),
            Some(protection) => {
                for key in protection
                    .keys()
                    .filter(|key| *key != "bruteForceProtection")
                {
                    report.ignored("attackProtection", key);
                }
                match protection.get("bruteForceProtection").map(Value::as_object) {
                    None => {}
                    Some(None) => {
                        report.refused("attackProtection", "bruteForceProtection must be a mapping")
                    }
                    Some(Some(exported)) => match user_blocks_admin::from_export(exported) {
                        Ok((stored, left_out)) => {
                            for member in &left_out {
                                report.ignored("attackProtection.bruteForceProtection", member);
                            }
                            plan.brute_force = Some(stored);
                        }
                        Err(why) => report.refused("attackProtection", why),
                    },
                }
            }
        }
    }
    Ok(plan)
}

/// Drops what an Auth0 export adds beside the user, and skips users of connections
/// Tessera does not have (social and enterprise logins).
fn export_to_import(values: Vec<Value>, report: &mut Report) -> Vec<Value> {
    let mut users = Vec::with_capacity(values.len());
    for mut value in values {
        if let Some(user) = value.as_object_mut() {
            if let Some(provider) = user
                .get("user_id")
                .and_then(Value::as_str)
                .and_then(|id| id.split_once('|'))
                .map(|(provider, _)| provider.to_string())
                && provider != "auth0"
            {
                let email = user
                    .get("email")
                    .and_then(Value::as_str)
                    .unwrap_or("(no email)");
                report.skipped(
                    "users",
                    format!(
                        "{email}: a {provider} user (Tessera has only the database connection)"
                    ),
                );
                continue;
            }
            for member in EXPORT_ONLY {
                user.remove(*member);
            }
        }
        users.push(value);
    }
    users
}

pub async fn auth0(ctx: &Context, args: ImportAuth0) -> CliResult<()> {
    if args.tenant.is_none() && args.users.is_none() {
        return Err(CliError::Usage(
            "give --tenant tenant.yaml, --users users.json, or both".into(),
        ));
    }
    let mut report = Report::default();
    // 1. Read and check everything; write nothing.
    let tenant = args.tenant.as_deref().map(read_tenant).transpose()?;
    let values = args.users.as_deref().map(read_users).transpose()?;
    let plan = match &tenant {
        Some(tenant) => plan_tenant(&ctx.store, tenant, &mut report).await?,
        None => Plan::default(),
    };
    let values = values
        .map(|values| export_to_import(values, &mut report))
        .unwrap_or_default();
    let checked = user_import::check_all(&values);
    for (position, failure) in &checked.failures {
        let email = failure["user"]["email"].as_str().unwrap_or("(no email)");
        let why: Vec<String> = failure["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} {}",
                    e["path"].as_str().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        report.refused("users", format!("#{position} {email}: {}", why.join("; ")));
    }
    if report.refusals() > 0 {
        report.print(ctx.json);
        return Err(CliError::invalid(format!(
            "{} refused; nothing was imported",
            report.refusals()
        )));
    }
    if args.dry_run {
        for api in &plan.apis {
            report.created("resourceServers", format!("{} (would be)", api.identifier));
        }
        for (client, _) in &plan.clients {
            report.created("clients", format!("{} (would be)", client.name));
        }
        for grant in &plan.grants {
            report.created(
                "clientGrants",
                format!("{} → {} (would be)", grant.client_id, grant.audience),
            );
        }
        for (role, _) in &plan.roles {
            report.created("roles", format!("{} (would be)", role.name));
        }
        if plan.brute_force.is_some() {
            report.created("attackProtection", "brute-force protection (would be)");
        }
        report.print(ctx.json);
        if ctx.json {
            eprintln!("dry run: nothing was written");
        } else {
            println!("dry run: nothing was written");
        }
        return Ok(());
    }

    // 2. Write, in dependency order.
    let store = &ctx.store;
    for api in &plan.apis {
        store.create_resource_server(api).await?;
        report.created("resourceServers", api.identifier.clone());
    }
    for (client, secret) in &plan.clients {
        store.create_client(client).await?;
        let secret = secret
            .as_deref()
            .map(|s| format!(", client secret {s}"))
            .unwrap_or_default();
        report.created(
            "clients",
            format!("{} (client_id {}{secret})", client.name, client.client_id),
        );
    }
    for grant in &plan.grants {
        store.create_client_grant(grant).await?;
        report.created(
            "clientGrants",
            format!(
                "{} → {} ({})",
                grant.client_id,
                grant.audience,
                grant.scope.join(" ")
            ),
        );
    }
    for (role, permissions) in &plan.roles {
        store.create_role(role).await?;
        let mut by_api: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (audience, scope) in permissions {
            by_api
                .entry(audience.as_str())
                .or_default()
                .push(scope.clone());
        }
        for (audience, scopes) in by_api {
            store
                .add_role_permissions(&role.id, audience, &scopes)
                .await?;
        }
        report.created(
            "roles",
            format!(
                "{} ({}, {} permissions)",
                role.name,
                role.id,
                permissions.len()
            ),
        );
    }
    if let Some(settings) = &plan.settings {
        store.patch_tenant_settings(settings).await?;
        report.created(
            "tenant",
            format!(
                "settings: {}",
                settings.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if let Some(stored) = &plan.brute_force {
        store.patch_brute_force_settings(stored).await?;
        report.created(
            "attackProtection",
            format!(
                "brute-force protection: {}",
                stored.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if !checked.users.is_empty() {
        let mut failures = Vec::new();
        let summary = user_import::write(
            store,
            tessera_core::DATABASE_CONNECTION,
            &values,
            &checked,
            args.upsert,
            now(),
            |batch| {
                failures.extend(batch);
                async { Ok(()) }
            },
        )
        .await?;
        for (position, failure) in failures {
            let email = failure["user"]["email"].as_str().unwrap_or("(no email)");
            let message = failure["errors"][0]["message"].as_str().unwrap_or_default();
            report.skipped("users", format!("#{position} {email}: {message}"));
        }
        report.created(
            "users",
            format!("{} inserted, {} updated", summary.inserted, summary.updated),
        );
        let without_password = checked
            .users
            .iter()
            .filter(|(_, u)| u.password_hash.is_none())
            .count();
        if without_password > 0 {
            let note = format!(
                "{without_password} users have no password hash (an Auth0 export carries none): they sign in after a password reset"
            );
            // On stderr with --json, so that stdout stays one JSON document.
            if ctx.json {
                eprintln!("{note}");
            } else {
                println!("{note}");
            }
        }
    }
    report.print(ctx.json);
    Ok(())
}
