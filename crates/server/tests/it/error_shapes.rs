//! What the framework answers before a handler runs — a method the route lacks, a body over
//! the 64 KiB limit, a path segment that is not UTF-8 — comes in the endpoint's own error
//! shape, like every other error: OAuth's JSON, the Management API's JSON, Auth0's sign-up
//! JSON, an HTML page.

use serde_json::Value;
use tessera_testkit::spawn;

enum Shape {
    OAuth,
    Management,
    Signup,
    Page,
}

/// Whether the body is an error in `shape` for `status`; `Err` says what it is instead.
fn in_shape(shape: &Shape, status: u16, content_type: &str, body: &str) -> Result<(), String> {
    let json = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    let shaped = match shape {
        Shape::OAuth => json["error"] == "invalid_request" && json["error_description"].is_string(),
        Shape::Management => {
            json["statusCode"] == status && json["error"].is_string() && json["message"].is_string()
        }
        Shape::Signup => {
            json["statusCode"] == status
                && json["name"].is_string()
                && json["code"] == "invalid_request"
                && json["description"].is_string()
        }
        Shape::Page => content_type.starts_with("text/html") && body.contains("<html"),
    };
    if shaped {
        Ok(())
    } else {
        Err(format!("{status} ({content_type:?}) {body:?}"))
    }
}

#[tokio::test]
async fn framework_rejections_keep_the_endpoint_shape() {
    let server = spawn().await;
    let http = reqwest::Client::new();
    // (method, path, with a body over the limit, shape, status)
    let cases = [
        ("GET", "/oauth/token", false, Shape::OAuth, 405),
        ("DELETE", "/userinfo", false, Shape::OAuth, 405),
        ("PUT", "/oauth/revoke", false, Shape::OAuth, 405),
        (
            "GET",
            "/dbconnections/change_password",
            false,
            Shape::OAuth,
            405,
        ),
        ("GET", "/dbconnections/signup", false, Shape::Signup, 405),
        ("POST", "/dbconnections/signup", true, Shape::Signup, 413),
        ("PATCH", "/u/login", false, Shape::Page, 405),
        ("DELETE", "/authorize", false, Shape::Page, 405),
        ("POST", "/healthz", false, Shape::Page, 405),
        ("POST", "/oauth/token", true, Shape::OAuth, 413),
        ("POST", "/oauth/revoke", true, Shape::OAuth, 413),
        ("POST", "/userinfo", true, Shape::OAuth, 413),
        ("POST", "/u/login", true, Shape::Page, 413),
        ("POST", "/authorize", true, Shape::Page, 413),
        ("GET", "/api/v2/clients/%FF", false, Shape::Management, 400),
        (
            "PATCH",
            "/api/v2/roles/%ED%A0%80",
            false,
            Shape::Management,
            400,
        ),
        (
            "DELETE",
            "/api/v2/users/%C0%80/roles",
            false,
            Shape::Management,
            400,
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, oversize, shape, expected) in cases {
        let mut request = http.request(method.parse().unwrap(), server.url(path));
        if oversize {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec![b'a'; 64 * 1024 + 1]);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let allow = response.headers().contains_key("allow");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        if status != expected {
            wrong.push(format!(
                "{method} {path}: status {status}, expected {expected}"
            ));
        } else if let Err(got) = in_shape(&shape, status, &content_type, &body) {
            wrong.push(format!(
                "{method} {path}: not in the endpoint's shape: {got}"
            ));
        } else if status == 405 && !allow {
            wrong.push(format!("{method} {path}: the 405 lost its Allow header"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
