//! Serving the sample SPAs for `tessera dev` on one origin: the jQuery sample at `/` (its
//! files from `examples/jquery-spa`, the two vendor scripts from its `node_modules`), the
//! `@auth0/auth0-spa-js` sample at `/spa-js/` (from `examples/spa-js`, next to it), their npm
//! dependencies installed when missing, and `/auth_config.json` describing the running tenant
//! (read by both).

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::{CliError, CliResult};

/// The files the page may load, and their content types. Nothing else is served.
const FILES: [(&str, &str, &str); 7] = [
    ("index.html", "index.html", "text/html; charset=utf-8"),
    ("app.js", "app.js", "text/javascript; charset=utf-8"),
    ("style.css", "style.css", "text/css; charset=utf-8"),
    (
        "node_modules/jquery/dist/jquery.min.js",
        "node_modules/jquery/dist/jquery.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "node_modules/jquery/dist/jquery.min.map",
        "node_modules/jquery/dist/jquery.min.map",
        "application/json",
    ),
    (
        "node_modules/auth0-js/dist/auth0.min.js",
        "node_modules/auth0-js/dist/auth0.min.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "node_modules/auth0-js/dist/auth0.min.js.map",
        "node_modules/auth0-js/dist/auth0.min.js.map",
        "application/json",
    ),
];

/// The files of the spa-js sample (URL under `/spa-js/`, file in its directory, content type).
const SPA_JS_FILES: [(&str, &str, &str); 5] = [
    ("index.html", "index.html", "text/html; charset=utf-8"),
    ("app.js", "app.js", "text/javascript; charset=utf-8"),
    ("style.css", "style.css", "text/css; charset=utf-8"),
    (
        "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js",
        "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js.map",
        "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js.map",
        "application/json",
    ),
];

/// The jQuery sample's vendor files: present when its dependencies are installed.
const JQUERY_VENDOR: [&str; 2] = [
    "node_modules/jquery/dist/jquery.min.js",
    "node_modules/auth0-js/dist/auth0.min.js",
];

/// The spa-js sample's vendor file.
const SPA_JS_VENDOR: [&str; 1] =
    ["node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js"];

/// Where the spa-js sample lives: `examples/spa-js`, next to the jQuery sample's directory.
pub const SPA_JS_DIR_NAME: &str = "spa-js";

/// What `/auth_config.json` tells the page.
#[derive(Debug, Clone)]
pub struct SpaConfig {
    /// auth0-js's and spa-js's `domain`: Tessera's base URL on http
    /// (`http://localhost:4000`), the host and port alone on https (`localhost:4443`).
    pub domain: String,
    pub client_id: String,
    pub audience: String,
    pub api_url: String,
    /// The issuer with its trailing slash, on http only (auth0-js then needs
    /// `overrides.__token_issuer`); absent on https, where the SDKs derive it from `domain`.
    pub token_issuer: Option<String>,
}

#[derive(Clone)]
struct SpaState {
    dir: PathBuf,
    /// The spa-js sample's directory, when it exists next to the jQuery sample.
    spa_js_dir: Option<PathBuf>,
    config: serde_json::Value,
}

/// The sample's directory: `--spa-dir`, else `./examples/jquery-spa`, else the copy in the
/// source tree this binary was built from.
pub fn locate(explicit: Option<&Path>) -> CliResult<PathBuf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(dir) => vec![dir.to_path_buf()],
        None => vec![
            PathBuf::from("examples/jquery-spa"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jquery-spa"),
        ],
    };
    candidates
        .into_iter()
        .find(|dir| dir.join("index.html").is_file())
        .ok_or_else(|| CliError::Invalid("the sample SPA (examples/jquery-spa) was not found: run from the repository or pass --spa-dir".into()))
}

/// The spa-js sample's directory: `spa-js` next to the jQuery sample's, if it is there.
pub fn spa_js_dir(jquery_dir: &Path) -> Option<PathBuf> {
    let dir = jquery_dir.parent()?.join(SPA_JS_DIR_NAME);
    dir.join("index.html").is_file().then_some(dir)
}

/// Installs the samples' npm dependencies when they are missing: the jQuery sample's in
/// `dir`, and the spa-js sample's next to it (if that sample is there).
pub fn ensure_dependencies(dir: &Path) -> CliResult<()> {
    npm_ci_unless_present(dir, &JQUERY_VENDOR)?;
    if let Some(spa_js) = spa_js_dir(dir) {
        npm_ci_unless_present(&spa_js, &SPA_JS_VENDOR)?;
    }
    Ok(())
}

fn npm_ci_unless_present(dir: &Path, vendor: &[&str]) -> CliResult<()> {
    let present = || vendor.iter().all(|file| dir.join(file).is_file());
    if present() {
        return Ok(());
    }
    // Two `tessera dev` starting at once (the tests do) must not run npm ci in one directory
    // together (npm fails with ENOENT): the second waits, then finds the files.
    let _lock = install_lock(dir);
    if present() {
        return Ok(());
    }
    eprintln!(
        "Installing the sample SPA's dependencies (npm ci in {}) ...",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .map_err(|e| {
            CliError::io(
                "cannot run npm (install Node.js and npm to use the sample SPA)",
                e,
            )
        })?;
    if !status.success() {
        return Err(CliError::Invalid(format!(
            "npm ci failed in {} ({status})",
            dir.display()
        )));
    }
    Ok(())
}

/// An exclusive lock, held until dropped, on installing into `dir`: a file in the temporary
/// directory named after `dir`. `None` if it cannot be had (then nothing is serialized).
fn install_lock(dir: &Path) -> Option<std::fs::File> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    // FNV-1a of the path: one lock file per directory.
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    let path = std::env::temp_dir().join(format!("tessera-npm-ci-{hash:016x}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

pub fn router(dir: PathBuf, config: &SpaConfig) -> Router {
    let mut config_json = json!({
        "domain": config.domain,
        "clientId": config.client_id,
        "audience": config.audience,
        "apiUrl": config.api_url,
    });
    if let Some(issuer) = &config.token_issuer {
        config_json["tokenIssuer"] = json!(issuer);
    }
    let config = config_json;
    Router::new()
        .route(
            "/",
            get(|state: State<SpaState>| serve(state, "index.html")),
        )
        .route("/spa-js", get(|| async { Redirect::permanent("/spa-js/") }))
        .route(
            "/spa-js/",
            get(|state: State<SpaState>| serve(state, "spa-js/index.html")),
        )
        .route(
            "/auth_config.json",
            get(|State(state): State<SpaState>| async move { axum::Json(state.config) }),
        )
        .route(
            "/{*path}",
            get(
                |state: State<SpaState>, UrlPath(path): UrlPath<String>| async move {
                    serve(state, &path).await
                },
            ),
        )
        .with_state(SpaState {
            spa_js_dir: spa_js_dir(&dir),
            dir,
            config,
        })
}

/// The file behind a URL path (without its leading slash), if it is one the pages may load.
fn resolve(state: &SpaState, path: &str) -> Option<(PathBuf, &'static str)> {
    let (dir, files, path) = match path.strip_prefix("spa-js/") {
        Some(rest) => (state.spa_js_dir.as_ref()?, SPA_JS_FILES.as_slice(), rest),
        None => (&state.dir, FILES.as_slice(), path),
    };
    files
        .iter()
        .find(|(url, _, _)| *url == path)
        .map(|(_, file, content_type)| (dir.join(file), *content_type))
}

async fn serve(State(state): State<SpaState>, path: &str) -> Response {
    let Some((file, content_type)) = resolve(&state, path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    match tokio::fs::read(file).await {
        Ok(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
