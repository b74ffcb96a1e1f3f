//! The dashboard (`/admin/`), attacked by a hostile site, a hostile link and a signed-in
//! user who should not change anything: forms without the session's CSRF token, with
//! another session's, sent cross-site (by `Sec-Fetch-Site` or `Origin`); sign-in callbacks
//! replayed or finished by another browser, or with a forged `state`; `return_to` values
//! that would send the browser to another site after signing in; a session cookie that is
//! forged, too long or of a signed-out session; a viewer's and a role-less user's forms.
//! Each refusal is checked, and that nothing changed (no API created).

use reqwest::redirect::Policy;
use tessera_core::system::{ADMIN_ROLE, VIEWER_ROLE};
use tessera_testkit::{
    PASSWORD, TestServer, create_user, hidden_field, location, sign_in_at, spawn,
};

use crate::harness::Tally;

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("a client")
}

/// A user holding `role`'s permissions (none: no role).
async fn user(server: &TestServer, email: &str, role: Option<&str>) {
    let user_id = create_user(&server.store, email, PASSWORD).await;
    if let Some(role) = role {
        server.store.assign_user_role(&user_id, role).await.unwrap();
    }
}

/// Starts a sign-in in `browser`: the callback URL the login ends at (not followed).
async fn callback_of(server: &TestServer, browser: &reqwest::Client, email: &str) -> String {
    let response = browser
        .get(server.url("/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = browser.get(&authorize).send().await.unwrap();
    let login = location(&response);
    sign_in_at(browser, &server.base, &login, email, PASSWORD).await
}

async fn signed_in(server: &TestServer, email: &str) -> reqwest::Client {
    let browser = browser();
    let callback = callback_of(server, &browser, email).await;
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302, "{email} signs in");
    browser
}

async fn csrf_of(server: &TestServer, browser: &reqwest::Client) -> String {
    let html = browser
        .get(server.url("/admin/apis/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden_field(&html, "csrf")
}

async fn api_created(server: &TestServer, identifier: &str) -> bool {
    server
        .store
        .find_resource_server(identifier)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn dashboard_forms_sign_ins_and_sessions_refuse_what_they_should() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    user(&server, "plain@example.com", None).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let other = signed_in(&server, "admin@example.com").await;
    let other_csrf = csrf_of(&server, &other).await;
    assert_ne!(csrf, other_csrf, "each session has its own token");

    // Forms: the token missing, empty, wrong, another session's; sent cross-site.
    let fields = |n: u32, token: Option<&str>| {
        let mut form = vec![
            ("name".to_string(), format!("Forged {n}")),
            (
                "identifier".to_string(),
                format!("https://forged-{n}.example.com/"),
            ),
            ("signing_alg".to_string(), "RS256".to_string()),
        ];
        if let Some(token) = token {
            form.push(("csrf".to_string(), token.to_string()));
        }
        form
    };
    // (case, the token sent, headers beside it)
    type Case<'a> = (&'a str, Option<String>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("no token", None, vec![]),
        ("an empty token", Some(String::new()), vec![]),
        ("a wrong token", Some("x".repeat(43)), vec![]),
        ("another session's token", Some(other_csrf.clone()), vec![]),
        (
            "Sec-Fetch-Site: cross-site",
            Some(csrf.clone()),
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site: same-site",
            Some(csrf.clone()),
            vec![("sec-fetch-site", "same-site")],
        ),
        (
            "Origin of another site",
            Some(csrf.clone()),
            vec![("origin", "https://evil.example")],
        ),
        (
            "Origin: null without Sec-Fetch-Site",
            Some(csrf.clone()),
            vec![("origin", "null")],
        ),
    ];
    for (n, (case, token, headers)) in cases.into_iter().enumerate() {
        let n = n as u32;
        let mut request = admin
            .post(server.url("/admin/apis"))
            .form(&fields(n, token.as_deref()));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        tally.status(format!("a form with {case}"), status, 403);
        tally.case(
            format!("a form with {case} changes nothing"),
            !api_created(&server, &format!("https://forged-{n}.example.com/")).await,
            "the API was created",
        );
    }

    // A viewer's form with its own right token: the operation's permission refuses it.
    let viewer = signed_in(&server, "viewer@example.com").await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    for (path, form) in [
        ("/admin/apis", fields(100, Some(&viewer_csrf))),
        (
            "/admin/settings/keys/rotate",
            vec![
                ("csrf".to_string(), viewer_csrf.clone()),
                ("alg".to_string(), "RS256".to_string()),
            ],
        ),
        (
            "/admin/users",
            vec![
                ("csrf".to_string(), viewer_csrf.clone()),
                ("email".to_string(), "made@example.com".to_string()),
                ("password".to_string(), PASSWORD.to_string()),
            ],
        ),
    ] {
        let status = viewer
            .post(server.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        tally.status(format!("a viewer's POST {path}"), status, 403);
    }
    tally.case(
        "a viewer's forms change nothing",
        !api_created(&server, "https://forged-100.example.com/").await
            && server
                .store
                .find_user_by_email("made@example.com")
                .await
                .unwrap()
                .is_none(),
        "something was created",
    );

    // A signed-in user without a role: 403 on every page, no data.
    let plain = signed_in(&server, "plain@example.com").await;
    for path in [
        "/admin/",
        "/admin/users",
        "/admin/settings",
        "/admin/apis/new",
    ] {
        let response = plain.get(server.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let html = response.text().await.unwrap();
        tally.case(
            format!("a user without a role at {path}"),
            status == 403 && !html.contains("admin@example.com") && !html.contains("csrf"),
            format_args!("status {status}"),
        );
    }

    // Sign-in callbacks: another browser, a forged state, a replay, an error injected.
    let victim = browser();
    let callback = callback_of(&server, &victim, "admin@example.com").await;
    let stranger = browser();
    let status = stranger
        .get(&callback)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("the callback in another browser", status, 400);
    let forged_state = {
        let mut url = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "forged".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    };
    let status = victim
        .get(&forged_state)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("the callback with a forged state", status, 400);
    let status = victim
        .get(&callback)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("the callback in its own browser", status, 302);
    let status = victim
        .get(&callback)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("the same callback again", status, 400);

    // return_to: never another site.
    for hostile in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/admin//evil.example",
        "/admin/\\\\evil.example",
        "javascript:alert(1)",
        "/admin/\r\nSet-Cookie:x=y",
        "/admin/%0d%0aSet-Cookie:x=y",
        "/elsewhere",
    ] {
        let url = format!(
            "/admin/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", hostile)
                .finish()
        );
        let browser = browser();
        let response = browser.get(server.url(&url)).send().await.unwrap();
        let authorize = location(&response);
        let response = browser.get(&authorize).send().await.unwrap();
        let login = location(&response);
        let callback = sign_in_at(
            &browser,
            &server.base,
            &login,
            "admin@example.com",
            PASSWORD,
        )
        .await;
        let response = browser.get(&callback).send().await.unwrap();
        let to = location(&response);
        // Back to the dashboard's home, or at most to a path of the dashboard itself.
        let stays = to.starts_with("/admin/")
            && !to.contains("//")
            && !to.contains('\\')
            && to.chars().all(|c| c.is_ascii_graphic());
        tally.case(
            format!("return_to {hostile:?}"),
            stays,
            format_args!("redirected to {to:?}"),
        );
    }

    // Session cookies: forged, oversized, signed out.
    for (case, value) in [
        ("a forged session cookie", "A".repeat(43)),
        ("an oversized session cookie", "A".repeat(5000)),
    ] {
        let response = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap()
            .get(server.url("/admin/apis"))
            .header("cookie", format!("tessera_admin={value}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        tally.case(
            case,
            status == 302 && location(&response).starts_with("/admin/login"),
            format_args!("status {status}"),
        );
    }
    let response = admin
        .post(server.url("/admin/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    tally.status("signing out", response.status().as_u16(), 302);
    let status = admin
        .post(server.url("/admin/apis"))
        .form(&fields(200, Some(&csrf)))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.case(
        "a signed-out session's form",
        status == 302 && !api_created(&server, "https://forged-200.example.com/").await,
        format_args!("status {status}"),
    );
    tally.finish();
}
