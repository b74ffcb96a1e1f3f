//! The dashboard's static files, embedded in the binary and served at content-hashed
//! URLs (`/admin/assets/dashboard.<hash>.css`) that caches may keep for a year: a new
//! version has a new URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const STYLESHEET: &str = include_str!("../../static/dashboard.css");

static STYLESHEET_PATH: LazyLock<String> = LazyLock::new(|| {
    let digest = tessera_core::ids::secret_hash(STYLESHEET);
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("/admin/assets/dashboard.{hex}.css")
});

/// Where the stylesheet is served.
pub(crate) fn stylesheet_path() -> &'static str {
    STYLESHEET_PATH.as_str()
}

/// `GET /admin/assets/{file}`: only the current name of each file.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    if format!("/admin/assets/{file}") != stylesheet_path() {
        return crate::pages::not_found().await;
    }
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
