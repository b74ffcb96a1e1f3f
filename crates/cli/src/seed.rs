//! The development tenant `tessera dev` seeds: the quickstart's API, its single-page
//! application and a demo user. Idempotent: a second run with the same options finds
//! everything in place and changes nothing; it only adds what is missing.

use tessera_core::{
    AppType, Client, DEFAULT_ACCESS_TOKEN_LIFETIME, ResourceServer, Role, Scope, TokenDialect,
    User, ids,
};
use tessera_store::{ClientUpdate, NewUser, ResourceServerUpdate, Store};

use crate::commands::{check_password, hash_password, now};
use crate::error::{CliError, CliResult};

pub const QUICKSTART_API_NAME: &str = "Quickstart API";
pub const QUICKSTART_API_IDENTIFIER: &str = "https://quickstarts/api";
pub const QUICKSTART_SPA_NAME: &str = "Quickstart SPA";
pub const DEMO_EMAIL: &str = "demo@example.com";
/// The second demo user: a reader, without the admin role.
pub const READER_EMAIL: &str = "reader@example.com";
pub const ADMIN_ROLE: &str = "admin";
pub const READER_ROLE: &str = "reader";
/// Length of a generated demo password (alphanumeric: ~119 bits).
pub const GENERATED_PASSWORD_LENGTH: usize = 20;

#[derive(Debug, Clone)]
pub struct DevSeedOptions {
    /// Port of the sample SPAs: their origin becomes the app's callback, web origin and logout
    /// URL, and `<origin>/spa-js/` a callback and logout URL too.
    pub spa_port: u16,
    /// The SPAs are served over https (`tessera dev --tls`): `https://localhost:PORT` is
    /// registered instead of `http://localhost:PORT`.
    pub https: bool,
    /// `$TESSERA_DEMO_PASSWORD`: the demo user's password. `None`: generated at creation.
    pub demo_password: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DevSeed {
    pub api: ResourceServer,
    pub spa: Client,
    pub demo_user: User,
    /// The password generated for a newly created demo user. Print it once; it is stored
    /// nowhere in clear.
    pub generated_password: Option<String>,
    pub reader_user: User,
    /// Likewise for the second demo user.
    pub reader_generated_password: Option<String>,
    /// What this run created or changed; empty when everything was in place.
    pub changes: Vec<String>,
}

fn quickstart_scopes() -> Vec<Scope> {
    vec![
        Scope {
            value: "read:messages".into(),
            description: "Read messages".into(),
        },
        Scope {
            value: "write:messages".into(),
            description: "Write messages".into(),
        },
    ]
}

const SPA_GRANT_TYPES: [&str; 3] = ["authorization_code", "implicit", "refresh_token"];

/// The SPA's origin, with and without the trailing slash (auth0-js sends either): the
/// jQuery sample's callback, web origin and logout URL.
fn spa_urls(origin: &str) -> Vec<String> {
    vec![origin.to_string(), format!("{origin}/")]
}

/// The spa-js sample's callback and logout URL (it is served at `/spa-js/` on the same
/// origin, so it needs no web origin of its own).
fn spa_js_url(origin: &str) -> String {
    format!("{origin}/spa-js/")
}

/// `list` plus whatever of `wanted` it lacks; `None` when nothing is missing.
fn with_missing(list: &[String], wanted: &[String]) -> Option<Vec<String>> {
    let missing: Vec<&String> = wanted.iter().filter(|w| !list.contains(w)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut out = list.to_vec();
    out.extend(missing.into_iter().cloned());
    Some(out)
}

pub async fn seed_dev_tenant(store: &Store, options: &DevSeedOptions) -> CliResult<DevSeed> {
    if let Some(password) = &options.demo_password {
        check_password(password)
            .map_err(|e| CliError::invalid(format!("TESSERA_DEMO_PASSWORD: {e}")))?;
    }
    let mut changes = Vec::new();
    let api = seed_api(store, &mut changes).await?;
    let scheme = if options.https { "https" } else { "http" };
    let origin = format!("{scheme}://localhost:{}", options.spa_port);
    let spa = seed_spa(store, &origin, &mut changes).await?;
    let (demo_user, generated_password) = seed_demo_user(
        store,
        DEMO_EMAIL,
        options.demo_password.as_deref(),
        &mut changes,
    )
    .await?;
    let (reader_user, reader_generated_password) = seed_demo_user(
        store,
        READER_EMAIL,
        options.demo_password.as_deref(),
        &mut changes,
    )
    .await?;
    let api = seed_rbac(store, api, &demo_user, &reader_user, &mut changes).await?;
    Ok(DevSeed {
        api,
        spa,
        demo_user,
        generated_password,
        reader_user,
        reader_generated_password,
        changes,
    })
}

async fn seed_api(store: &Store, changes: &mut Vec<String>) -> CliResult<ResourceServer> {
    let Some(api) = store
        .find_resource_server(QUICKSTART_API_IDENTIFIER)
        .await?
    else {
        let now = now();
        let api = ResourceServer {
            id: ids::hex_id(12),
            name: QUICKSTART_API_NAME.into(),
            identifier: QUICKSTART_API_IDENTIFIER.into(),
            signing_alg: "RS256".into(),
            token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            token_lifetime_for_web: DEFAULT_ACCESS_TOKEN_LIFETIME,
            allow_offline_access: true,
            token_dialect: TokenDialect::AccessToken,
            // The quickstart's "Authorization" step: users get only the scopes they hold.
            enforce_policies: true,
            scopes: quickstart_scopes(),
            proof_of_possession: None,
            created_at: now,
            updated_at: now,
        };
        store.create_resource_server(&api).await?;
        changes.push(format!(
            "created API {QUICKSTART_API_NAME} ({QUICKSTART_API_IDENTIFIER})"
        ));
        return Ok(api);
    };
    let missing: Vec<Scope> = quickstart_scopes()
        .into_iter()
        .filter(|s| !api.defines_scope(&s.value))
        .collect();
    if missing.is_empty() && api.allow_offline_access {
        return Ok(api);
    }
    let mut scopes = api.scopes.clone();
    scopes.extend(missing);
    let update = ResourceServerUpdate {
        scopes: Some(scopes),
        allow_offline_access: Some(true),
        ..Default::default()
    };
    let api = store
        .update_resource_server(&api.id, &update, now())
        .await?;
    changes.push(format!(
        "restored the scopes and offline access of API {QUICKSTART_API_NAME}"
    ));
    Ok(api)
}

async fn seed_spa(store: &Store, origin: &str, changes: &mut Vec<String>) -> CliResult<Client> {
    let urls = spa_urls(origin);
    let mut redirect_urls = urls.clone();
    redirect_urls.push(spa_js_url(origin));
    let grant_types: Vec<String> = SPA_GRANT_TYPES.iter().map(|g| g.to_string()).collect();
    let Some(spa) = store.find_client_by_name(QUICKSTART_SPA_NAME).await? else {
        let now = now();
        let spa = Client {
            client_id: ids::alphanumeric(32),
            name: QUICKSTART_SPA_NAME.into(),
            app_type: AppType::Spa,
            secret_hash: None,
            token_endpoint_auth_method: AppType::Spa.default_auth_method().into(),
            callbacks: redirect_urls.clone(),
            web_origins: urls,
            allowed_logout_urls: redirect_urls,
            grant_types,
            is_first_party: true,
            allowed_apis: None,
            refresh: tessera_core::RefreshPolicy::default(),
            profile: Default::default(),
            require_pushed_authorization_requests: false,
            private_key_jwt_credentials: None,
            created_at: now,
            updated_at: now,
            oidc_logout: None,
        };
        store.create_client(&spa).await?;
        changes.push(format!("created application {QUICKSTART_SPA_NAME}"));
        return Ok(spa);
    };
    let update = ClientUpdate {
        callbacks: with_missing(&spa.callbacks, &redirect_urls),
        web_origins: with_missing(&spa.web_origins, &urls),
        allowed_logout_urls: with_missing(&spa.allowed_logout_urls, &redirect_urls),
        grant_types: with_missing(&spa.grant_types, &grant_types),
        ..Default::default()
    };
    if update.callbacks.is_none()
        && update.web_origins.is_none()
        && update.allowed_logout_urls.is_none()
        && update.grant_types.is_none()
    {
        return Ok(spa);
    }
    let spa = store.update_client(&spa.client_id, &update, now()).await?;
    changes.push(format!("added {origin} (and its /spa-js/) and the quickstart's grant types to {QUICKSTART_SPA_NAME}"));
    Ok(spa)
}

async fn seed_demo_user(
    store: &Store,
    email: &str,
    wanted_password: Option<&str>,
    changes: &mut Vec<String>,
) -> CliResult<(User, Option<String>)> {
    match store.find_user_with_password(email).await? {
        None => {
            let generated = wanted_password
                .is_none()
                .then(|| ids::alphanumeric(GENERATED_PASSWORD_LENGTH));
            let password = wanted_password
                .map(str::to_string)
                .or_else(|| generated.clone())
                .unwrap_or_default();
            let new = NewUser {
                email: email.into(),
                password_hash: hash_password(password).await,
                email_verified: true,
                name: None,
                nickname: None,
                picture: None,
                ..Default::default()
            };
            let user = store
                .create_user(&new, &format!("auth0|{}", ids::hex_id(12)), now())
                .await?;
            changes.push(format!("created demo user {email}"));
            Ok((user, generated))
        }
        Some((user, stored_hash)) => {
            let Some(password) = wanted_password else {
                return Ok((user, None));
            };
            // Only rehash when TESSERA_DEMO_PASSWORD differs from the stored password.
            let matches = match stored_hash {
                Some(hash) => {
                    let password = password.to_string();
                    tokio::task::spawn_blocking(move || {
                        tessera_server::passwords::verify_password_blocking(&password, &hash)
                    })
                    .await
                    .expect("password verification does not panic")
                }
                None => false,
            };
            if matches {
                return Ok((user, None));
            }
            let hash = hash_password(password.to_string()).await;
            store.set_user_password(&user.user_id, &hash, now()).await?;
            changes.push(format!(
                "set the password of {email} from TESSERA_DEMO_PASSWORD"
            ));
            let user = store.find_user(&user.user_id).await?.unwrap_or(user);
            Ok((user, None))
        }
    }
}

/// The quickstart's "Authorization" step: RBAC on for the API, an `admin` role holding
/// both permissions (given to the demo user) and a `reader` role holding `read:messages`
/// (given to the second user).
async fn seed_rbac(
    store: &Store,
    api: ResourceServer,
    demo: &User,
    reader: &User,
    changes: &mut Vec<String>,
) -> CliResult<ResourceServer> {
    let api = if api.enforce_policies {
        api
    } else {
        let update = ResourceServerUpdate {
            enforce_policies: Some(true),
            ..Default::default()
        };
        changes.push(format!("turned on RBAC for {QUICKSTART_API_IDENTIFIER}"));
        store
            .update_resource_server(&api.id, &update, now())
            .await?
    };
    let roles: [(&str, &str, &[&str], &User); 2] = [
        (
            ADMIN_ROLE,
            "Reads and writes messages",
            &["read:messages", "write:messages"],
            demo,
        ),
        (READER_ROLE, "Reads messages", &["read:messages"], reader),
    ];
    for (name, description, permissions, user) in roles {
        let role = match store.find_role(name).await? {
            Some(role) => role,
            None => {
                let now = now();
                let role = Role {
                    id: format!("rol_{}", ids::alphanumeric(16)),
                    name: name.into(),
                    description: description.into(),
                    created_at: now,
                    updated_at: now,
                };
                store.create_role(&role).await?;
                changes.push(format!("created role {name}"));
                role
            }
        };
        let held = store.role_permissions(&role.id).await?;
        let missing: Vec<String> = permissions
            .iter()
            .filter(|p| {
                !held
                    .iter()
                    .any(|h| h.audience == QUICKSTART_API_IDENTIFIER && h.permission == **p)
            })
            .map(|p| p.to_string())
            .collect();
        if !missing.is_empty() {
            store
                .add_role_permissions(&role.id, QUICKSTART_API_IDENTIFIER, &missing)
                .await?;
            changes.push(format!("gave role {name} {}", missing.join(", ")));
        }
        if !store
            .user_roles(&user.user_id)
            .await?
            .iter()
            .any(|r| r.id == role.id)
        {
            store.assign_user_role(&user.user_id, &role.id).await?;
            changes.push(format!("gave {} the role {name}", user.email_or_id()));
        }
    }
    Ok(api)
}
