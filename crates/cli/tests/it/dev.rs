//! `tessera dev`: the seeded quickstart tenant, idempotently.

use std::time::Duration;

use serde_json::Value;
use tessera::seed::{DEMO_EMAIL, DevSeedOptions, QUICKSTART_API_IDENTIFIER, seed_dev_tenant};
use tessera_store::Store;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

async fn store(env: &Env) -> Store {
    Store::connect(&env.database_url()).await.unwrap()
}

async fn password_works(store: &Store, password: &str) -> bool {
    let (_, hash) = store
        .find_user_with_password(DEMO_EMAIL)
        .await
        .unwrap()
        .expect("the demo user exists");
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        tessera_server::passwords::verify_password_blocking(&password, &hash.unwrap())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn seeding_twice_changes_nothing() {
    let env = Env::new(TESSERA);
    let store = store(&env).await;
    let options = DevSeedOptions {
        spa_port: 3000,
        https: false,
        demo_password: Some("quickstart demo pass".into()),
    };

    let first = seed_dev_tenant(&store, &options).await.unwrap();
    assert_eq!(
        first.changes,
        [
            "created API Quickstart API (https://quickstarts/api)",
            "created application Quickstart SPA",
            "created demo user demo@example.com",
            "created demo user reader@example.com",
            "created role admin",
            "gave role admin read:messages, write:messages",
            "gave demo@example.com the role admin",
            "created role reader",
            "gave role reader read:messages",
            "gave reader@example.com the role reader",
        ]
    );
    assert!(
        first.api.enforce_policies,
        "RBAC is on for the quickstart API"
    );
    let permissions = |user_id: String| {
        let store = store.clone();
        async move {
            store
                .user_permissions(&user_id, Some(QUICKSTART_API_IDENTIFIER))
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.permission)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        permissions(first.demo_user.user_id.clone()).await,
        ["read:messages", "write:messages"]
    );
    assert_eq!(
        permissions(first.reader_user.user_id.clone()).await,
        ["read:messages"]
    );
    assert!(
        first.generated_password.is_none(),
        "the password came from the options"
    );
    assert_eq!(first.api.identifier, QUICKSTART_API_IDENTIFIER);
    assert_eq!(first.api.name, "Quickstart API");
    assert!(first.api.allow_offline_access);
    let scopes: Vec<(&str, &str)> = first
        .api
        .scopes
        .iter()
        .map(|s| (s.value.as_str(), s.description.as_str()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("read:messages", "Read messages"),
            ("write:messages", "Write messages")
        ]
    );
    let urls = [
        "http://localhost:3000".to_string(),
        "http://localhost:3000/".to_string(),
    ];
    // The spa-js sample at /spa-js/ on the same origin: a callback and logout URL of its own.
    let redirect_urls = [
        "http://localhost:3000",
        "http://localhost:3000/",
        "http://localhost:3000/spa-js/",
    ];
    assert_eq!(first.spa.name, "Quickstart SPA");
    assert_eq!(first.spa.token_endpoint_auth_method, "none");
    assert!(first.spa.secret_hash.is_none());
    assert_eq!(first.spa.callbacks, redirect_urls);
    assert_eq!(first.spa.web_origins, urls);
    assert_eq!(first.spa.allowed_logout_urls, redirect_urls);
    assert_eq!(
        first.spa.grant_types,
        ["authorization_code", "implicit", "refresh_token"]
    );
    assert_eq!(first.demo_user.email.as_deref(), Some(DEMO_EMAIL));
    assert!(first.demo_user.email_verified);
    assert!(password_works(&store, "quickstart demo pass").await);

    let second = seed_dev_tenant(&store, &options).await.unwrap();
    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert_eq!(second.api, first.api);
    assert_eq!(second.spa, first.spa);
    assert_eq!(second.demo_user, first.demo_user);
    assert_eq!(
        store
            .list_resource_servers(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        store
            .list_clients(
                &tessera_store::ClientFilter::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        store
            .list_users(
                &tessera_store::UserSearch::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .len(),
        2,
        "demo and reader"
    );
    assert_eq!(
        store
            .list_roles(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .len(),
        2,
        "admin and reader"
    );

    // A new TESSERA_DEMO_PASSWORD replaces the old one; nothing else changes.
    let changed = DevSeedOptions {
        demo_password: Some("another demo passphrase".into()),
        ..options.clone()
    };
    let third = seed_dev_tenant(&store, &changed).await.unwrap();
    assert_eq!(
        third.changes.len(),
        2,
        "both demo users: {:?}",
        third.changes
    );
    assert!(password_works(&store, "another demo passphrase").await);
    assert!(!password_works(&store, "quickstart demo pass").await);

    // A weak TESSERA_DEMO_PASSWORD is refused before anything is written.
    let weak = DevSeedOptions {
        demo_password: Some("demo".into()),
        ..options
    };
    let error = seed_dev_tenant(&store, &weak).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("TESSERA_DEMO_PASSWORD: password refused"),
        "{error}"
    );
}

#[tokio::test]
async fn a_generated_demo_password_is_returned_once() {
    let env = Env::new(TESSERA);
    let store = store(&env).await;
    let options = DevSeedOptions {
        spa_port: 3000,
        https: false,
        demo_password: None,
    };
    let first = seed_dev_tenant(&store, &options).await.unwrap();
    let password = first.generated_password.expect("a password was generated");
    assert_eq!(password.len(), 20);
    assert!(password_works(&store, &password).await);
    let second = seed_dev_tenant(&store, &options).await.unwrap();
    assert!(second.generated_password.is_none());
    assert!(second.changes.is_empty());
    assert!(password_works(&store, &password).await);
}

#[tokio::test]
async fn another_spa_port_is_added_to_the_existing_app() {
    let env = Env::new(TESSERA);
    let store = store(&env).await;
    let first = seed_dev_tenant(
        &store,
        &DevSeedOptions {
            spa_port: 3000,
            https: false,
            demo_password: None,
        },
    )
    .await
    .unwrap();
    let second = seed_dev_tenant(
        &store,
        &DevSeedOptions {
            spa_port: 8080,
            https: false,
            demo_password: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(second.spa.client_id, first.spa.client_id);
    assert_eq!(
        second.spa.callbacks,
        [
            "http://localhost:3000",
            "http://localhost:3000/",
            "http://localhost:3000/spa-js/",
            "http://localhost:8080",
            "http://localhost:8080/",
            "http://localhost:8080/spa-js/"
        ]
    );
    assert_eq!(
        second.spa.web_origins,
        [
            "http://localhost:3000",
            "http://localhost:3000/",
            "http://localhost:8080",
            "http://localhost:8080/"
        ]
    );
    assert_eq!(
        store
            .list_clients(
                &tessera_store::ClientFilter::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn an_app_seeded_before_the_spa_js_sample_gets_its_url_once() {
    let env = Env::new(TESSERA);
    let store = store(&env).await;
    let options = DevSeedOptions {
        spa_port: 3000,
        https: false,
        demo_password: None,
    };
    let first = seed_dev_tenant(&store, &options).await.unwrap();
    // As an older `tessera dev` seeded it: the origin only.
    let origin_only = vec![
        "http://localhost:3000".to_string(),
        "http://localhost:3000/".to_string(),
    ];
    let update = tessera_store::ClientUpdate {
        callbacks: Some(origin_only.clone()),
        allowed_logout_urls: Some(origin_only),
        ..Default::default()
    };
    store
        .update_client(&first.spa.client_id, &update, first.spa.updated_at)
        .await
        .unwrap();
    let second = seed_dev_tenant(&store, &options).await.unwrap();
    assert_eq!(second.changes.len(), 1, "{:?}", second.changes);
    let expected = [
        "http://localhost:3000",
        "http://localhost:3000/",
        "http://localhost:3000/spa-js/",
    ];
    assert_eq!(second.spa.callbacks, expected);
    assert_eq!(second.spa.allowed_logout_urls, expected);
    let third = seed_dev_tenant(&store, &options).await.unwrap();
    assert!(third.changes.is_empty(), "{:?}", third.changes);
    assert_eq!(third.spa, second.spa);
}

fn dev(env: &Env, ports: [u16; 3]) -> (Running, Vec<String>) {
    let [port, spa_port, api_port] = ports.map(|p| p.to_string());
    let mut command = env.command();
    command
        .args([
            "dev",
            "--port",
            &port,
            "--spa-port",
            &spa_port,
            "--api-port",
            &api_port,
            "--data-dir",
        ])
        .arg(env.path().join("dev"))
        .arg("--spa-dir")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/jquery-spa"
        ))
        .env("TESSERA_DEMO_PASSWORD", "quickstart demo pass");
    let mut running = Running::spawn(command);
    let banner = running.wait_for("tessera dev ready:", Duration::from_secs(120));
    (running, banner)
}

fn banner_value(banner: &[String], label: &str) -> String {
    let line = banner
        .iter()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} in {banner:?}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `server=… spa=… api=…` from the readiness line.
fn ready_urls(banner: &[String]) -> (String, String, String) {
    let line = banner
        .iter()
        .find(|l| l.starts_with("tessera dev ready:"))
        .unwrap();
    let url = |key: &str| {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    (url("server"), url("spa"), url("api"))
}

#[tokio::test]
async fn tessera_dev_runs_server_spa_and_api_and_reseeds_nothing() {
    let env = Env::new(TESSERA);
    let (running, banner) = dev(&env, [0, 0, 0]);
    let text = banner.join("\n");
    let (server, spa, api) = ready_urls(&banner);
    assert!(
        server.starts_with("http://localhost:") && spa.starts_with("http://localhost:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Open {spa} and log in as demo@example.com")),
        "{text}"
    );
    assert!(
        text.contains("Audience         https://quickstarts/api"),
        "{text}"
    );
    assert!(
        !text.contains("quickstart demo pass"),
        "a password from the environment is not echoed"
    );
    let client_id = banner_value(&banner, "SPA client_id");
    assert_eq!(client_id.len(), 32);
    // The dashboard, and the demo user as its administrator.
    assert_eq!(
        banner_value(&banner, "Dashboard"),
        format!("{server}/admin/")
    );
    assert!(
        text.contains("Administrator    demo@example.com  (role Tessera Admin"),
        "{text}"
    );
    let dev_store = Store::connect(&format!(
        "sqlite://{}",
        env.path().join("dev").join("tessera.db").display()
    ))
    .await
    .unwrap();
    let demo = dev_store
        .find_user_by_email(DEMO_EMAIL)
        .await
        .unwrap()
        .unwrap();
    let roles = dev_store.user_roles(&demo.user_id).await.unwrap();
    assert!(
        roles
            .iter()
            .any(|r| r.id == tessera_core::system::ADMIN_ROLE.id),
        "{roles:?}"
    );

    // The authorization server, with the issuer on localhost.
    let discovery: Value = reqwest::get(format!("{server}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], serde_json::json!(format!("{server}/")));

    // The SPA: its page, the vendor scripts from npm, and its configuration.
    let page = reqwest::get(format!("{spa}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/node_modules/auth0-js/dist/auth0.min.js") && page.contains("/app.js"));
    let script = reqwest::get(format!("{spa}/node_modules/auth0-js/dist/auth0.min.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let config: Value = reqwest::get(format!("{spa}/auth_config.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["clientId"], serde_json::json!(client_id));
    assert_eq!(config["domain"], serde_json::json!(server));
    assert_eq!(
        config["tokenIssuer"],
        serde_json::json!(format!("{server}/"))
    );
    assert_eq!(config["apiUrl"], serde_json::json!(api));
    // The spa-js sample at /spa-js/: its page, the SDK's UMD bundle from its node_modules.
    let bundle = "/spa-js/node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js";
    let page = reqwest::get(format!("{spa}/spa-js/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains(bundle) && page.contains("/spa-js/app.js"),
        "{page}"
    );
    let script = reqwest::get(format!("{spa}{bundle}")).await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().await.unwrap().contains("createAuth0Client"));
    for (path, status) in [
        ("/spa-js/app.js", 200),
        ("/spa-js/style.css", 200),
        ("/spa-js/package.json", 404),
        ("/spa-js/node_modules/@auth0/auth0-spa-js/package.json", 404),
        ("/spa-js/../jquery-spa/app.js", 404),
        ("/spa-js/node_modules/jquery/dist/jquery.min.js", 404),
    ] {
        assert_eq!(
            reqwest::get(format!("{spa}{path}")).await.unwrap().status(),
            status,
            "{path}"
        );
    }
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{spa}/spa-js"))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection());
    assert_eq!(redirect.headers()["location"], "/spa-js/");
    assert_eq!(
        reqwest::get(format!("{spa}/../Cargo.toml"))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{spa}/node_modules/auth0-js/package.json"))
            .await
            .unwrap()
            .status(),
        404
    );

    // The sample API: public answers, private needs a token.
    let public: Value = reqwest::get(format!("{api}/api/public"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        public["message"]
            .as_str()
            .unwrap()
            .starts_with("Hello from a public endpoint")
    );
    let private = reqwest::get(format!("{api}/api/private")).await.unwrap();
    assert_eq!(private.status(), 401);
    assert!(
        private.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert!(env.path().join("dev/master.key").exists());
    drop(running);

    // Again on the same ports: the tenant is already in place.
    let port_of = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let (running, banner) = dev(&env, [port_of(&server), port_of(&spa), port_of(&api)]);
    assert_eq!(
        banner_value(&banner, "SPA client_id"),
        client_id,
        "the same application, not a new one"
    );
    assert!(
        banner
            .join("\n")
            .contains("already seeded; nothing changed"),
        "{banner:?}"
    );
    drop(running);
}
