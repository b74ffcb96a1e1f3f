//! Serving the jQuery sample SPA for `tessera dev`: its files from `examples/jquery-spa`,
//! the two vendor scripts from its `node_modules` (installed with npm when missing), and
//! `/auth_config.json` describing the running tenant.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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

/// What `/auth_config.json` tells the page.
#[derive(Debug, Clone)]
pub struct SpaConfig {
    /// Tessera's base URL, e.g. `http://localhost:4000` (auth0-js's `domain`).
    pub domain: String,
    pub client_id: String,
    pub audience: String,
    pub api_url: String,
    /// The issuer with its trailing slash (auth0-js `overrides.__token_issuer` on http).
    pub token_issuer: String,
}

#[derive(Clone)]
struct SpaState {
    dir: PathBuf,
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

/// Installs the sample's npm dependencies when they are missing.
pub fn ensure_dependencies(dir: &Path) -> CliResult<()> {
    let ready = [
        "node_modules/jquery/dist/jquery.min.js",
        "node_modules/auth0-js/dist/auth0.min.js",
    ]
    .iter()
    .all(|file| dir.join(file).is_file());
    if ready {
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

pub fn router(dir: PathBuf, config: &SpaConfig) -> Router {
    let config = json!({
        "domain": config.domain,
        "clientId": config.client_id,
        "audience": config.audience,
        "apiUrl": config.api_url,
        "tokenIssuer": config.token_issuer,
    });
    Router::new()
        .route(
            "/",
            get(|state: State<SpaState>| serve(state, "index.html")),
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
        .with_state(SpaState { dir, config })
}

async fn serve(State(state): State<SpaState>, path: &str) -> Response {
    let Some((_, file, content_type)) = FILES.iter().find(|(url, _, _)| *url == path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    match tokio::fs::read(state.dir.join(file)).await {
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
