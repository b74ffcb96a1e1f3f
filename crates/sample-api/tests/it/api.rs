//! The sample API's routes with real tokens, verified by the guard against a fixed key set.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tessera_guard::Guard;
use tessera_jose::{Algorithm, Jwks, SigningKey};
use tower::ServiceExt;

const ISSUER: &str = "https://tessera.test/";
const AUDIENCE: &str = "https://quickstarts/api";
const SPA: &str = "http://localhost:3000";

fn setup() -> (axum::Router, SigningKey) {
    let (key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(Jwks {
            keys: vec![key.public_jwk().clone()],
        })
        .build()
        .unwrap();
    (tessera_sample_api::router(&guard, SPA), key)
}

fn token(key: &SigningKey, scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign_jwt(
        "JWT",
        &json!({"iss": ISSUER, "sub": "auth0|demo", "aud": [AUDIENCE, format!("{ISSUER}userinfo")], "iat": now, "exp": now + 600, "scope": scope}),
    )
    .unwrap()
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("origin", SPA);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn each_route_needs_what_the_quickstart_says() {
    let (app, key) = setup();
    let reader = token(&key, "openid profile read:messages");
    let writer = token(&key, "openid write:messages");
    let (status, _, body) = call(&app, "GET", "/api/public", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Hello from a public endpoint")
    );

    let cases = [
        ("GET", "/api/private", None, StatusCode::UNAUTHORIZED),
        ("GET", "/api/private", Some(&reader), StatusCode::OK),
        (
            "GET",
            "/api/private",
            Some(&"x.y.z".to_string()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/api/private-scoped",
            Some(&writer),
            StatusCode::FORBIDDEN,
        ),
        ("GET", "/api/private-scoped", Some(&reader), StatusCode::OK),
        ("POST", "/api/admin", Some(&reader), StatusCode::FORBIDDEN),
        ("POST", "/api/admin", Some(&writer), StatusCode::OK),
    ];
    for (method, path, bearer, expected) in cases {
        let (status, headers, body) = call(&app, method, path, bearer.map(String::as_str)).await;
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(
            headers["access-control-allow-origin"], SPA,
            "CORS on {status} too"
        );
        assert!(varies_by_origin(&headers), "{method} {path}");
        if status == StatusCode::OK {
            assert!(body["message"].as_str().unwrap().starts_with("Hello from"));
        } else {
            assert!(
                headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            // The SPA may read why it was refused.
            assert!(
                headers["access-control-expose-headers"]
                    .to_str()
                    .unwrap()
                    .split(',')
                    .any(|name| name.trim().eq_ignore_ascii_case("www-authenticate")),
                "{headers:?}"
            );
        }
    }
}

#[tokio::test]
async fn preflight_allows_the_spa_origin_only() {
    let (app, _) = setup();
    let request = Request::builder()
        .method("OPTIONS")
        .uri("/api/private")
        .header("origin", SPA)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    // A preflight needs an ok status (Fetch: 200–299), nothing more.
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], SPA);
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("authorization")
    );
    assert!(varies_by_origin(headers));
    let evil = Request::builder()
        .method("OPTIONS")
        .uri("/api/private")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(evil).await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(varies_by_origin(response.headers()));
    // Nor on its requests, whatever their answer.
    for path in ["/api/public", "/api/private"] {
        let evil = Request::builder()
            .uri(path)
            .header("origin", "https://evil.example")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(evil).await.unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
        assert!(varies_by_origin(response.headers()), "{path}");
    }
}

/// `Vary` names `Origin`: a cache must not give one origin's answer to another.
fn varies_by_origin(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all("vary").iter().any(|value| {
        value
            .to_str()
            .unwrap()
            .split(',')
            .any(|name| name.trim().eq_ignore_ascii_case("origin"))
    })
}
