//! The dashboard (`/admin/`), attacked by a hostile site, a hostile link and a signed-in
//! user who should not change anything: forms without the session's CSRF token, with
//! another session's, sent cross-site (by `Sec-Fetch-Site` or `Origin`); sign-in callbacks
//! replayed or finished by another browser, or with a forged `state`; `return_to` values
//! that would send the browser to another site after signing in; a session cookie that is
//! forged, too long or of a signed-out session; a viewer's and a role-less user's forms.
//! The connections pages too: hostile names and options, markup in a display name.
//! Each refusal is checked, and that nothing changed (no API or connection created).

use reqwest::redirect::Policy;
use tessera_core::system::{ADMIN_ROLE, DASHBOARD_CLIENT_ID, VIEWER_ROLE};
use tessera_testkit::{
    PASSWORD, TestServer, create_user, hidden_field, location, seed_refresh_family, seed_session,
    sign_in_at, spawn,
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
            "/admin/settings/mfa",
            vec![
                ("csrf".to_string(), viewer_csrf.clone()),
                ("required".to_string(), "true".to_string()),
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
                .is_none()
            && !tessera_server::admin_identities::mfa_required(&server.store)
                .await
                .unwrap(),
        "something was created or changed",
    );

    // A signed-in user without a role: 403 on every page, no data.
    let plain = signed_in(&server, "plain@example.com").await;
    for path in [
        "/admin/",
        "/admin/users",
        "/admin/settings",
        "/admin/apis/new",
        "/admin/logs",
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

/// Creates and deploys an action on the store, as another administrator would have.
async fn deployed_action(server: &TestServer, name: &str, trigger: &str, version: &str) -> String {
    let id = tessera_server::actions_admin::new_action_id();
    server
        .store
        .create_action(&tessera_store::NewAction {
            id: id.clone(),
            name: name.into(),
            trigger_id: trigger.into(),
            trigger_version: version.into(),
            code: "exports.onExecutePostLogin = async () => {};".into(),
            dependencies: serde_json::json!([]),
            runtime: "node22".into(),
            secrets: Vec::new(),
            now: 1,
        })
        .await
        .unwrap();
    server
        .store
        .deploy_action(&id, &tessera_server::actions_admin::new_version_id(), 2)
        .await
        .unwrap();
    id
}

/// What an attack on the Actions pages could have changed: each action's draft and
/// secrets' names, and post-login's bindings.
async fn actions_state(server: &TestServer, ids: &[&str]) -> String {
    let mut out = String::new();
    for id in ids {
        let action = server.store.find_action(id).await.unwrap().unwrap();
        let secrets: Vec<&str> = action.secrets.iter().map(|s| s.name.as_str()).collect();
        out.push_str(&format!(
            "{} {} {:?} {}\n",
            action.name, action.code, secrets, action.all_changes_deployed
        ));
    }
    let bindings = server
        .store
        .list_trigger_bindings("post-login", tessera_store::Slice::first(50))
        .await
        .unwrap();
    for binding in bindings.items {
        out.push_str(&format!("bound {}\n", binding.action.id));
    }
    out
}

#[tokio::test]
async fn the_actions_pages_refuse_hostile_forms_and_change_nothing() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard/actions");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    let login = deployed_action(&server, "login policy", "post-login", "v3").await;
    let machines = deployed_action(&server, "machines", "credentials-exchange", "v2").await;
    let ids = [login.as_str(), machines.as_str()];
    let admin = signed_in(&server, "admin@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let before = actions_state(&server, &ids).await;
    let code_path = format!("/admin/actions/{login}");

    let post = |client: &reqwest::Client, path: &str, form: Vec<(String, String)>| {
        client.post(server.url(path)).form(&form).send()
    };
    let with_csrf = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf".to_string(), csrf.clone())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        form
    };

    // The code form reads larger bodies: its checks must hold all the same.
    let response = post(
        &admin,
        &code_path,
        vec![("code".into(), "while(true){}".into())],
    )
    .await
    .unwrap();
    tally.status(
        "the code form without its CSRF token",
        response.status().as_u16(),
        403,
    );
    let response = admin
        .post(server.url(&code_path))
        .header("sec-fetch-site", "cross-site")
        .form(&with_csrf(&[("code", "while(true){}")]))
        .send()
        .await
        .unwrap();
    tally.status(
        "the code form sent cross-site",
        response.status().as_u16(),
        403,
    );
    let huge = "x".repeat(700 * 1024);
    let response = post(&admin, &code_path, with_csrf(&[("code", &huge)]))
        .await
        .unwrap();
    tally.status("a 700 kB code form", response.status().as_u16(), 413);
    let response = post(&admin, &code_path, with_csrf(&[("code", &huge[..150_000])]))
        .await
        .unwrap();
    tally.status(
        "150 kB of code (over Auth0's 100 kB)",
        response.status().as_u16(),
        400,
    );
    let response = admin
        .post(server.url(&code_path))
        .header("content-type", "application/json")
        .body(format!("{{\"csrf\":\"{csrf}\",\"code\":\"x\"}}"))
        .send()
        .await
        .unwrap();
    tally.status("the code form as JSON", response.status().as_u16(), 415);
    let long_name = "K".repeat(300);
    let response = post(
        &admin,
        &code_path,
        with_csrf(&[
            ("code", "exports.onExecutePostLogin = async () => {};"),
            ("secret_name", &long_name),
            ("secret_value", "v"),
        ]),
    )
    .await
    .unwrap();
    tally.status(
        "a secret named with 300 characters",
        response.status().as_u16(),
        400,
    );

    tally.case(
        "the refused code forms changed nothing",
        actions_state(&server, &ids).await == before,
        "the draft or its secrets changed",
    );

    // Markup in code is shown as text in the editor.
    let response = post(
        &admin,
        &code_path,
        with_csrf(&[
            (
                "code",
                "// </textarea><script>alert(1)</script>\nexports.onExecutePostLogin = async () => {};",
            ),
            ("secret_name", "<script>alert(2)</script>"),
            ("secret_value", "v"),
        ]),
    )
    .await
    .unwrap();
    tally.status(
        "code with markup is saved as a draft",
        response.status().as_u16(),
        302,
    );
    let html = admin
        .get(server.url(&code_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tally.case(
        "the editor escapes code that closes the textarea, and a secret's name",
        !html.contains("<script>alert(")
            && html.contains("&#60;/textarea&#62;")
            && html.contains("&#60;script&#62;alert(2)"),
        "raw markup in the page",
    );
    // A draft that shows what secrets it is given, for the Test tab below.
    let response = post(
        &admin,
        &code_path,
        with_csrf(&[(
            "code",
            "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://example.com/s', JSON.stringify(event.secrets)); };",
        )]),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 302);
    let before = actions_state(&server, &ids).await;

    // The trigger's order, attacked.
    for (case, fields) in [
        (
            "another trigger's action bound to post-login",
            vec![("op", "add"), ("action", machines.as_str())],
        ),
        (
            "an unknown action",
            vec![("op", "add"), ("action", "act_doesnotexist0000000000")],
        ),
        (
            "a position past the end",
            vec![("op", "remove"), ("position", "5")],
        ),
        (
            "a negative position",
            vec![("op", "up"), ("position", "-1")],
        ),
        (
            "an unknown operation",
            vec![("op", "truncate"), ("position", "0")],
        ),
    ] {
        let response = post(&admin, "/admin/triggers/post-login", with_csrf(&fields))
            .await
            .unwrap();
        tally.status_in(case, response.status().as_u16(), &[400, 404]);
    }
    let response = post(
        &admin,
        "/admin/triggers/not-a-trigger",
        with_csrf(&[("op", "add"), ("action", login.as_str())]),
    )
    .await
    .unwrap();
    tally.status("an unknown trigger", response.status().as_u16(), 404);

    // A viewer's forms, with a valid token of their own.
    let viewer = signed_in(&server, "viewer@example.com").await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    for (path, fields) in [
        (code_path.clone(), vec![("code", "while(true){}")]),
        (format!("{code_path}/deploy"), vec![]),
        (format!("{code_path}/test"), vec![("event", "{}")]),
        (
            "/admin/triggers/post-login".to_string(),
            vec![("op", "add"), ("action", login.as_str())],
        ),
        (
            "/admin/actions".to_string(),
            vec![("name", "viewer's"), ("trigger", "post-login")],
        ),
    ] {
        let mut form = vec![("csrf".to_string(), viewer_csrf.clone())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = post(&viewer, &path, form).await.unwrap();
        tally.status(
            format!("a viewer posting {path}"),
            response.status().as_u16(),
            403,
        );
    }
    // The Test tab never hands an action another action's secrets through the event.
    let response = post(
        &admin,
        &format!("{code_path}/test"),
        with_csrf(&[("event", r#"{"secrets": {"OTHER": "smuggled"}}"#)]),
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    let html = response.text().await.unwrap();
    // The page shows the event sent back in its form: only the result counts.
    let result = &html[html.find("<pre").unwrap_or(html.len())..];
    tally.case(
        "secrets in a test event never reach the action",
        status == 200 && result.contains("https://example.com/s") && !result.contains("smuggled"),
        format_args!("status {status} {result}"),
    );

    let after = actions_state(&server, &ids).await;
    tally.case(
        "no action, secret or binding changed",
        after == before,
        format_args!("{before} → {after}"),
    );
    tally.finish();
}

/// Every connection with its enabled applications and options, to compare before and
/// after refused forms.
async fn connections_state(server: &TestServer) -> String {
    let page = server
        .store
        .list_connections(&Default::default(), tessera_store::Slice::first(100))
        .await
        .unwrap();
    let mut state = String::new();
    for c in page.items {
        let clients = server
            .store
            .connection_clients_from(
                &c.id,
                tessera_store::Checkpoint {
                    from: None,
                    take: 100,
                },
            )
            .await
            .unwrap();
        state.push_str(&format!(
            "{} {} {} {} {:?} {:?} {:?}\n",
            c.id,
            c.name,
            c.display_name,
            c.show_as_button,
            c.options,
            c.sealed_secret,
            clients.items
        ));
    }
    state
}

#[tokio::test]
async fn the_connections_pages_refuse_hostile_forms_and_change_nothing() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard/connections");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    let post = |client: &reqwest::Client, path: &str, form: Vec<(String, String)>| {
        client.post(server.url(path)).form(&form).send()
    };
    let with = |csrf: &str, fields: &[(&str, &str)]| {
        let mut form = vec![("csrf".to_string(), csrf.to_string())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        form
    };
    const SECRET: &str = "upstream-secret-71c0e2";
    let good = [
        ("strategy", "github"),
        ("name", "gh"),
        ("display_name", "GitHub"),
        ("client_id", "abc"),
        ("client_secret", SECRET),
        ("show_as_button", "on"),
    ];
    let response = post(&admin, "/admin/connections", with(&csrf, &good))
        .await
        .unwrap();
    tally.status(
        "a good connection is created",
        response.status().as_u16(),
        302,
    );
    let gh = server
        .store
        .find_connection_by_name("gh")
        .await
        .unwrap()
        .expect("created");
    let settings = format!("/admin/connections/{}", gh.id);
    let apps = format!("{settings}/applications");
    let before = connections_state(&server).await;

    // CSRF: missing, another session's, cross-site.
    let mut without = with(&csrf, &good);
    without.remove(0);
    without[1].1 = "gh-nocsrf".into();
    let response = post(&admin, "/admin/connections", without).await.unwrap();
    tally.status(
        "create without its CSRF token",
        response.status().as_u16(),
        403,
    );
    let response = post(
        &admin,
        &settings,
        with(
            &viewer_csrf,
            &[("display_name", "x"), ("options_json", "{}")],
        ),
    )
    .await
    .unwrap();
    tally.status(
        "settings with another session's token",
        response.status().as_u16(),
        403,
    );
    let response = admin
        .post(server.url(&apps))
        .header("sec-fetch-site", "cross-site")
        .form(&with(
            &csrf,
            &[("client_id", &server.spa_client_id), ("status", "enable")],
        ))
        .send()
        .await
        .unwrap();
    tally.status("enabling sent cross-site", response.status().as_u16(), 403);

    // The viewer: every form refused by its scope.
    for (path, fields) in [
        ("/admin/connections", good.to_vec()),
        (
            settings.as_str(),
            vec![("display_name", "Viewer was here"), ("options_json", "{}")],
        ),
        (
            apps.as_str(),
            vec![
                ("client_id", server.spa_client_id.as_str()),
                ("status", "enable"),
            ],
        ),
        (&format!("{settings}/delete"), vec![("confirm", "gh")]),
    ] {
        let response = post(&viewer, path, with(&viewer_csrf, &fields))
            .await
            .unwrap();
        tally.status(
            format_args!("the viewer posting to {path}"),
            response.status().as_u16(),
            403,
        );
    }

    // Hostile names and options, each refused with a 400 that repeats no secret.
    let hostile: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("a name with markup", vec![("name", "<script>")]),
        ("a name with |", vec![("name", "a|b")]),
        ("a name with /", vec![("name", "../x")]),
        (
            "the database connection's name",
            vec![("name", "Username-Password-Authentication")],
        ),
        ("a taken name", vec![("name", "gh")]),
        (
            "a second database connection",
            vec![("strategy", "auth0"), ("name", "db2")],
        ),
        (
            "an unknown strategy",
            vec![("strategy", "saml"), ("name", "s")],
        ),
        (
            "options that are not JSON",
            vec![("name", "o1"), ("options_json", "{\"a\":")],
        ),
        (
            "options that are an array",
            vec![("name", "o2"), ("options_json", "[1]")],
        ),
        (
            "a GitHub at plain http",
            vec![
                ("name", "o3"),
                (
                    "options_json",
                    r#"{"github_url": "http://evil.example.com"}"#,
                ),
            ],
        ),
        (
            "a metadata address",
            vec![
                ("strategy", "oidc"),
                ("name", "o4"),
                ("discovery_url", "http://169.254.169.254/latest/meta-data"),
            ],
        ),
        (
            "a secret with a newline",
            vec![("name", "o5"), ("client_secret", "a\nb")],
        ),
        (
            "a prototype-polluting member",
            vec![
                ("name", "o6"),
                ("options_json", r#"{"__proto__": {"x": 1}, "scope": 5}"#),
            ],
        ),
    ];
    for (case, overrides) in hostile {
        let mut fields: Vec<(&str, &str)> = good.to_vec();
        for (name, value) in overrides {
            match fields.iter_mut().find(|(k, _)| *k == name) {
                Some(field) => field.1 = value,
                None => fields.push((name, value)),
            }
        }
        let response = post(&admin, "/admin/connections", with(&csrf, &fields))
            .await
            .unwrap();
        let status = response.status().as_u16();
        let html = response.text().await.unwrap();
        tally.status_in(case, status, &[400, 409]);
        tally.case(
            format_args!("{case}: the answer repeats no secret"),
            !html.contains(SECRET),
            "the secret was echoed",
        );
    }
    let response = post(
        &admin,
        &settings,
        with(&csrf, &[("display_name", ""), ("options_json", "{}")]),
    )
    .await
    .unwrap();
    tally.status("an empty display name", response.status().as_u16(), 400);
    let response = post(
        &admin,
        &apps,
        with(
            &csrf,
            &[("client_id", &server.spa_client_id), ("status", "maybe")],
        ),
    )
    .await
    .unwrap();
    tally.status(
        "a status neither enable nor disable",
        response.status().as_u16(),
        400,
    );
    let database = format!(
        "/admin/connections/{}",
        tessera_core::DATABASE_CONNECTION_ID
    );
    let response = post(
        &admin,
        &format!("{database}/delete"),
        with(&csrf, &[("confirm", "Username-Password-Authentication")]),
    )
    .await
    .unwrap();
    tally.status(
        "deleting the database connection",
        response.status().as_u16(),
        400,
    );
    let response = post(
        &admin,
        &format!("{database}/applications"),
        with(
            &csrf,
            &[("client_id", DASHBOARD_CLIENT_ID), ("status", "disable")],
        ),
    )
    .await
    .unwrap();
    tally.status(
        "disabling Tessera's dashboard for the default database connection",
        response.status().as_u16(),
        400,
    );
    tally.case(
        "the refused forms changed nothing",
        connections_state(&server).await == before,
        "a connection or its applications changed",
    );

    // Markup in a display name is rendered as text.
    let response = post(
        &admin,
        &settings,
        with(
            &csrf,
            &[
                ("display_name", "<img src=x onerror=alert(1)>"),
                ("options_json", r#"{"client_id": "abc"}"#),
            ],
        ),
    )
    .await
    .unwrap();
    tally.status(
        "a display name with markup is saved",
        response.status().as_u16(),
        302,
    );
    for path in [settings.as_str(), "/admin/connections"] {
        let html = admin
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        tally.case(
            format_args!("{path} shows the display name escaped"),
            !html.contains("<img")
                && (html.contains("&#60;img src") || html.contains("&lt;img src")),
            "the markup is live",
        );
        tally.case(
            format_args!("{path} shows no secret"),
            !html.contains(SECRET),
            "the secret is on the page",
        );
    }
    tally.finish();
}

/// A user with an authenticator app and a recovery code, as the hosted page stores them.
async fn enrolled_user(server: &TestServer, email: &str) -> String {
    let user_id = create_user(&server.store, email, PASSWORD).await;
    let totp_id = format!("totp|dev_{}", email.len());
    server
        .store
        .begin_totp_enrollment(&user_id, &totp_id, b"sealed", 1_700_000_000)
        .await
        .unwrap();
    let recovery_id = format!("recovery-code|dev_{}", email.len());
    assert!(
        server
            .store
            .confirm_totp(
                &user_id,
                &totp_id,
                1,
                (&recovery_id, b"hash"),
                1_700_000_000
            )
            .await
            .unwrap()
    );
    user_id
}

async fn factor_count(server: &TestServer, user_id: &str) -> usize {
    server.store.authenticators_of(user_id).await.unwrap().len()
}

#[tokio::test]
async fn a_users_second_factors_are_reset_only_by_a_confirmed_administrators_form() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard second factors");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    let victim = enrolled_user(&server, "victim@example.com").await;
    let bystander = enrolled_user(&server, "bystander@example.com").await;
    let admin = signed_in(&server, "admin@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let encode = |id: &str| url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let reset_path = format!("/admin/users/{}/mfa/reset", encode(&victim));

    // The tab lists the factors.
    let response = admin
        .get(server.url(&format!("/admin/users/{}/mfa", encode(&victim))))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let html = response.text().await.unwrap();
    tally.case(
        "the Multi-factor tab lists the app and the recovery code",
        status == 200 && html.contains(">totp<") && html.contains(">recovery-code<"),
        format_args!("status {status}"),
    );

    // Forms that must not reset anything: (case, form, extra header).
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, String)>,
        Option<(&'a str, &'a str)>,
        u16,
    );
    let confirm = || ("confirm", "victim@example.com".to_string());
    let cases: Vec<Case> = vec![
        ("no CSRF token", vec![confirm()], None, 403),
        (
            "a wrong CSRF token",
            vec![("csrf", "x".repeat(43)), confirm()],
            None,
            403,
        ),
        (
            "a cross-site form",
            vec![("csrf", csrf.clone()), confirm()],
            Some(("origin", "https://evil.example")),
            403,
        ),
        ("no confirmation", vec![("csrf", csrf.clone())], None, 400),
        (
            "another user's email as confirmation",
            vec![
                ("csrf", csrf.clone()),
                ("confirm", "bystander@example.com".into()),
            ],
            None,
            400,
        ),
        (
            "the email in other case",
            vec![
                ("csrf", csrf.clone()),
                ("confirm", "VICTIM@example.com".into()),
            ],
            None,
            400,
        ),
        (
            "the email with markup",
            vec![
                ("csrf", csrf.clone()),
                ("confirm", "victim@example.com<script>".into()),
            ],
            None,
            400,
        ),
    ];
    for (case, form, header, expected) in cases {
        let mut request = admin.post(server.url(&reset_path)).form(&form);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let html = response.text().await.unwrap();
        tally.status(format!("a reset with {case}"), status, expected);
        tally.case(
            format!("a reset with {case} echoes no markup"),
            !html.contains("<script>"),
            "markup in the page",
        );
        tally.case(
            format!("a reset with {case} changes nothing"),
            factor_count(&server, &victim).await == 2,
            "factors removed",
        );
    }

    // A viewer, with its own right token and the right confirmation.
    let viewer = signed_in(&server, "viewer@example.com").await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    let status = viewer
        .post(server.url(&reset_path))
        .form(&[
            ("csrf", viewer_csrf.as_str()),
            ("confirm", "victim@example.com"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("a viewer's reset", status, 403);
    let html = viewer
        .get(server.url(&format!("/admin/users/{}/mfa", encode(&victim))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tally.case(
        "a viewer sees no reset link",
        !html.contains("/mfa/reset"),
        "a reset link",
    );

    // Users that do not exist, or ids that are not ids.
    for id in [
        "auth0|nobody",
        "../../admin/apis",
        "<script>alert(1)</script>",
    ] {
        let path = format!("/admin/users/{}/mfa/reset", encode(id));
        let status = admin
            .post(server.url(&path))
            .form(&[("csrf", csrf.as_str()), ("confirm", id)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        tally.status(format!("a reset of {id:?}"), status, 404);
    }
    tally.case(
        "nothing reset by any of them",
        factor_count(&server, &victim).await == 2 && factor_count(&server, &bystander).await == 2,
        "factors removed",
    );

    // The administrator's confirmed form resets the victim's, and only theirs.
    let response = admin
        .post(server.url(&reset_path))
        .form(&[("csrf", csrf.as_str()), ("confirm", "victim@example.com")])
        .send()
        .await
        .unwrap();
    tally.case(
        "the confirmed reset",
        response.status() == 303 || response.status() == 302,
        format_args!("status {}", response.status()),
    );
    tally.case(
        "the confirmed reset removes the victim's factors, not another's",
        factor_count(&server, &victim).await == 0 && factor_count(&server, &bystander).await == 2,
        "wrong factors removed",
    );
    tally.finish();
}

/// The Credentials tab against forms that should change nothing: without the CSRF token,
/// from a viewer, a private key or a certificate chain of garbage pasted as the key, a
/// third key, a key for a single page application, and deleting through one application's
/// path a credential of another or one that does not exist.
#[tokio::test]
async fn the_credentials_tab_refuses_hostile_forms_and_changes_nothing() {
    let mut tally = Tally::new("dashboard/credentials");
    let server = spawn().await;
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    let m2m = server.m2m_client_id.clone();
    let add_url = server.url(&format!("/admin/applications/{m2m}/credentials"));
    let key = tessera_testkit::client_key::ClientKey::es256();
    let count = |client_id: String| {
        let store = server.store.clone();
        async move { store.client_credentials_of(&client_id).await.unwrap().len() }
    };
    let post = |browser: &reqwest::Client, url: String, form: Vec<(&'static str, String)>| {
        let request = browser.post(url).form(&form);
        async move { request.send().await.unwrap().status().as_u16() }
    };

    let status = post(
        &admin,
        add_url.clone(),
        vec![("pem", key.public_pem.clone())],
    )
    .await;
    tally.case(
        "no CSRF token",
        status == 403 || status == 400,
        format_args!("{status}"),
    );
    let status = post(
        &viewer,
        add_url.clone(),
        vec![
            ("csrf", viewer_csrf.clone()),
            ("pem", key.public_pem.clone()),
        ],
    )
    .await;
    tally.case(
        "a viewer adds a key",
        status == 403,
        format_args!("{status}"),
    );
    for (case, pem) in [
        ("a private key pasted as the key", key.private_pem()),
        (
            "a certificate of garbage",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_string(),
        ),
        ("a name of 10 000 characters", key.public_pem.clone()),
    ] {
        let mut form = vec![("csrf", csrf.clone()), ("pem", pem)];
        if case.starts_with("a name") {
            form.push(("name", "n".repeat(10_000)));
        }
        let status = post(&admin, add_url.clone(), form).await;
        tally.case(case, status == 400, format_args!("{status}"));
    }
    tally.case(
        "nothing was added so far",
        count(m2m.clone()).await == 0,
        format_args!("{}", count(m2m.clone()).await),
    );
    for _ in 0..2 {
        let fresh = tessera_testkit::client_key::ClientKey::es256();
        post(
            &admin,
            add_url.clone(),
            vec![("csrf", csrf.clone()), ("pem", fresh.public_pem)],
        )
        .await;
    }
    let third = admin
        .post(add_url.clone())
        .form(&[("csrf", csrf.clone()), ("pem", key.public_pem.clone())])
        .send()
        .await
        .unwrap();
    let status = third.status().as_u16();
    let text = third.text().await.unwrap();
    let alert = text
        .split(r#"role="alert">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("")
        .to_string();
    tally.case(
        "a third key",
        status == 400 && alert.contains("at most 2") && count(m2m.clone()).await == 2,
        format_args!("{status} {alert}, {} keys", count(m2m.clone()).await),
    );
    let spa = server.spa_client_id.clone();
    let status = post(
        &admin,
        server.url(&format!("/admin/applications/{spa}/credentials")),
        vec![("csrf", csrf.clone()), ("pem", key.public_pem.clone())],
    )
    .await;
    tally.case(
        "a key for a single page application",
        status == 400 && count(spa.clone()).await == 0,
        format_args!("{status}"),
    );
    let credential = server
        .store
        .client_credentials_of(&m2m)
        .await
        .unwrap()
        .remove(0);
    for (case, path) in [
        (
            "another application's credential through this one's path",
            format!(
                "/admin/applications/{spa}/credentials/{}/delete",
                credential.id
            ),
        ),
        (
            "a credential that does not exist",
            format!("/admin/applications/{m2m}/credentials/cred_nothing/delete"),
        ),
    ] {
        let status = post(&admin, server.url(&path), vec![("csrf", csrf.clone())]).await;
        tally.case(
            case,
            status == 404 && count(m2m.clone()).await == 2,
            format_args!("{status}"),
        );
    }
    let status = post(
        &viewer,
        server.url(&format!(
            "/admin/applications/{m2m}/credentials/{}/delete",
            credential.id
        )),
        vec![("csrf", viewer_csrf)],
    )
    .await;
    tally.case(
        "a viewer deletes a key",
        status == 403 && count(m2m.clone()).await == 2,
        format_args!("{status}"),
    );
    tally.finish();
}

/// `?page=` as a signed-in administrator would never type it, on every paged list: a
/// negative number, an exponent, a number past `u64`, 10 kB of digits, markup, a page far
/// past the end. Each answers 200 without an error page; a value that is not a page number
/// shows the first page; one past the end shows no rows and offers no "Next"; the value is
/// never echoed into the page.
#[tokio::test]
async fn hostile_page_numbers_on_the_dashboards_lists_show_a_page_or_nothing() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    for n in 0..3 {
        user(&server, &format!("paged-{n}@example.com"), None).await;
    }
    let admin = signed_in(&server, "admin@example.com").await;
    let lists = [
        "/admin/users",
        "/admin/logs",
        "/admin/apis",
        "/admin/applications",
        "/admin/roles",
        "/admin/connections",
        "/admin/actions",
    ];
    let ten_kb = "9".repeat(10_240);
    let not_pages = [
        "-1",
        "1e99",
        "0x10",
        "18446744073709551616",
        ten_kb.as_str(),
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "1%00",
        "",
    ];
    let past_the_end = ["10000", "9999", "18446744073709551615"];
    for list in lists {
        let page = |value: &str| {
            let admin = admin.clone();
            let url = server.url(&format!("{list}?page={value}"));
            async move {
                let response = admin.get(url).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap())
            }
        };
        let (status, first) = page("0").await;
        tally.status(format!("{list}?page=0"), status, 200);
        for value in not_pages {
            let (status, html) = page(value).await;
            let case = format!("{list}?page={}", value.chars().take(24).collect::<String>());
            tally.status(&case, status, 200);
            tally.case(
                format!("{case}: the first page, the value not echoed"),
                !html.contains("<script>alert(1)") && !html.contains(&ten_kb[..64]),
                format!("{} bytes", html.len()),
            );
            if list == "/admin/users" {
                tally.case(
                    format!("{case}: shows the first page's users"),
                    html.contains("paged-0@example.com"),
                    "the users were missing",
                );
            }
        }
        for value in past_the_end {
            let (status, html) = page(value).await;
            let case = format!("{list}?page={value}");
            tally.status(&case, status, 200);
            tally.case(
                format!("{case}: no Next past the end"),
                !html.contains("rel=\"next\""),
                "a Next link",
            );
            if list == "/admin/users" {
                tally.case(
                    format!("{case}: no rows past the end"),
                    !html.contains("paged-") && first.contains("paged-0@example.com"),
                    "rows past the end",
                );
            }
        }
    }
    tally.finish();
}

/// The Sessions tab's form: a victim's session and refresh token are not ended through
/// another user's page, nor by a form without the CSRF token, sent cross-site, by a viewer,
/// or naming a pattern or a doctored id; what the page shows is escaped (a user agent is
/// whatever the browser said).
#[tokio::test]
async fn the_sessions_tab_ends_only_the_users_own_sessions() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard sessions");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    let victim = create_user(&server.store, "victim@example.com", PASSWORD).await;
    let bystander = create_user(&server.store, "bystander@example.com", PASSWORD).await;
    let origin = tessera_store::SessionOrigin {
        ip: Some("198.51.100.7".into()),
        user_agent: Some("<img src=x onerror=alert(1)>".into()),
    };
    seed_session(&server.store, (7, "victims-session"), &victim, origin).await;
    seed_refresh_family(
        &server.store,
        (8, "victims-family"),
        (&victim, &server.spa_client_id),
        Some("victims-session"),
    )
    .await;
    let intact = || async {
        let session = server
            .store
            .find_session(&[7; 32], tessera_testkit::now())
            .await;
        let family = server
            .store
            .find_refresh_family(&[8; 32], tessera_testkit::now())
            .await;
        matches!(session, Ok(Some(_))) && matches!(family, Ok(Some(_)))
    };
    let admin = signed_in(&server, "admin@example.com").await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    let encode = |id: &str| url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let victims_page = format!("/admin/users/{}/sessions", encode(&victim));
    let bystanders_page = format!("/admin/users/{}/sessions", encode(&bystander));

    let html = admin
        .get(server.url(&victims_page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tally.case(
        "the tab shows the browser's user agent as text",
        html.contains("img src=x onerror=alert(1)") && !html.contains("<img src=x"),
        format_args!("{} bytes", html.len()),
    );

    // (case, who posts, to which page, the form, an extra header)
    type Case<'a> = (
        &'a str,
        &'a reqwest::Client,
        &'a str,
        Vec<(&'a str, String)>,
        Option<(&'a str, &'a str)>,
    );
    let with = |token: &str, field: &'static str, value: &str| {
        vec![("csrf", token.to_string()), (field, value.to_string())]
    };
    let cases: Vec<Case> = vec![
        (
            "the victim's session through another user's page",
            &admin,
            &bystanders_page,
            with(&csrf, "session", "victims-session"),
            None,
        ),
        (
            "the victim's refresh token through another user's page",
            &admin,
            &bystanders_page,
            with(&csrf, "refresh_token", "victims-family"),
            None,
        ),
        (
            "sign out everywhere on another user's page",
            &admin,
            &bystanders_page,
            with(&csrf, "everywhere", "1"),
            None,
        ),
        (
            "no CSRF token",
            &admin,
            &victims_page,
            vec![("session", "victims-session".into())],
            None,
        ),
        (
            "a cross-site form",
            &admin,
            &victims_page,
            with(&csrf, "session", "victims-session"),
            Some(("origin", "https://evil.example")),
        ),
        (
            "a viewer's form",
            &viewer,
            &victims_page,
            with(&viewer_csrf, "everywhere", "1"),
            None,
        ),
        (
            "a pattern for a session",
            &admin,
            &victims_page,
            with(&csrf, "session", "%"),
            None,
        ),
        (
            "a pattern for a refresh token",
            &admin,
            &victims_page,
            with(&csrf, "refresh_token", "*"),
            None,
        ),
        (
            "the session id in other case",
            &admin,
            &victims_page,
            with(&csrf, "session", "VICTIMS-SESSION"),
            None,
        ),
        (
            "a 5 kB session id",
            &admin,
            &victims_page,
            with(&csrf, "session", &"x".repeat(5_000)),
            None,
        ),
    ];
    for (case, browser, page, form, header) in cases {
        let mut request = browser.post(server.url(page)).form(&form);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        // "Everywhere" on the bystander's page is allowed: it ends the bystander's only.
        let refused = (400..500).contains(&status) || case.starts_with("sign out everywhere");
        tally.case(
            format_args!("{case} ends nothing of the victim's"),
            refused && intact().await,
            format_args!("status {status}"),
        );
    }
    // The victim's own page ends them.
    let status = admin
        .post(server.url(&victims_page))
        .form(&with(&csrf, "session", "victims-session"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.case(
        "the victim's page ends the victim's session and its refresh token",
        status == 302 && !intact().await,
        format_args!("status {status}"),
    );
    tally.finish();
}

/// The dashboard's brute-force forms (Settings' section, a user's Unblock), pushed: no or a
/// wrong CSRF token, sent cross-site, a viewer's, out-of-bounds and malformed fields, an
/// Unblock aimed at an unknown or doctored user. Every one is refused; the settings stay as
/// they were and the lockout holds.
#[tokio::test]
async fn the_brute_force_forms_refuse_hostile_posts_and_change_nothing() {
    let server = spawn().await;
    let mut tally = Tally::new("dashboard/brute_force");
    user(&server, "admin@example.com", Some(ADMIN_ROLE.id)).await;
    user(&server, "viewer@example.com", Some(VIEWER_ROLE.id)).await;
    let locked = create_user(&server.store, "locked@example.com", PASSWORD).await;
    for _ in 0..10 {
        server
            .store
            .record_login_failure("locked@example.com", "203.0.113.9", 1)
            .await
            .unwrap();
    }
    let admin = signed_in(&server, "admin@example.com").await;
    let csrf = csrf_of(&server, &admin).await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let viewer_csrf = csrf_of(&server, &viewer).await;
    let settings = "/admin/settings/brute-force";
    let id: String = url::form_urlencoded::byte_serialize(locked.as_bytes()).collect();
    let lift = format!("/admin/users/{id}/brute-force/lift");
    let good = |token: &str| {
        vec![
            ("csrf", token.to_string()),
            ("enabled", "on".to_string()),
            ("block", "on".to_string()),
            ("mode", "count_per_identifier_and_ip".to_string()),
            ("max_attempts", "1".to_string()),
            ("allowlist", "0.0.0.0/0".to_string()),
        ]
    };
    let with = |token: &str, field: &'static str, value: String| {
        let mut form: Vec<(&str, String)> = good(token)
            .into_iter()
            .filter(|(name, _)| *name != field)
            .collect();
        form.push((field, value));
        form
    };
    let huge_allowlist = (0..200)
        .map(|i| format!("10.0.{i}.0/24"))
        .collect::<Vec<_>>()
        .join("\n");
    // (case, who posts, where, the form, headers beside it)
    type Post<'a> = (
        String,
        &'a reqwest::Client,
        String,
        Vec<(&'a str, String)>,
        Vec<(&'a str, &'a str)>,
    );
    let mut posts: Vec<Post> = vec![
        (
            "no token".into(),
            &admin,
            settings.into(),
            good("").into_iter().skip(1).collect(),
            vec![],
        ),
        (
            "a wrong token".into(),
            &admin,
            settings.into(),
            good(&"x".repeat(43)),
            vec![],
        ),
        (
            "a cross-site post".into(),
            &admin,
            settings.into(),
            good(&csrf),
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "a viewer's post".into(),
            &viewer,
            settings.into(),
            good(&viewer_csrf),
            vec![],
        ),
        (
            "no attempts".into(),
            &admin,
            settings.into(),
            with(&csrf, "max_attempts", "0".into()),
            vec![],
        ),
        (
            "a huge threshold".into(),
            &admin,
            settings.into(),
            with(&csrf, "max_attempts", "1e309".into()),
            vec![],
        ),
        (
            "a threshold in words".into(),
            &admin,
            settings.into(),
            with(&csrf, "max_attempts", "ten".into()),
            vec![],
        ),
        (
            "a made-up mode".into(),
            &admin,
            settings.into(),
            with(&csrf, "mode", "count_per_nothing".into()),
            vec![],
        ),
        (
            "a host name allowlisted".into(),
            &admin,
            settings.into(),
            with(&csrf, "allowlist", "attacker.example".into()),
            vec![],
        ),
        (
            "200 allowlisted networks".into(),
            &admin,
            settings.into(),
            with(&csrf, "allowlist", huge_allowlist),
            vec![],
        ),
        (
            "a NUL in the allowlist".into(),
            &admin,
            settings.into(),
            with(&csrf, "allowlist", "1.2.3.4\u{0}".into()),
            vec![],
        ),
        (
            "notify without block".into(),
            &admin,
            settings.into(),
            {
                let mut form: Vec<(&str, String)> = with(&csrf, "notify", "on".into())
                    .into_iter()
                    .filter(|(name, _)| *name != "block")
                    .collect();
                form.push(("max_attempts", "5".into()));
                form
            },
            vec![],
        ),
        (
            "Unblock without a token".into(),
            &admin,
            lift.clone(),
            vec![],
            vec![],
        ),
        (
            "Unblock cross-site".into(),
            &admin,
            lift.clone(),
            vec![("csrf", csrf.clone())],
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "a viewer's Unblock".into(),
            &viewer,
            lift.clone(),
            vec![("csrf", viewer_csrf.clone())],
            vec![],
        ),
    ];
    for target in ["auth0%7Cnobody", "..%2F..%2Fsettings", &"a".repeat(5_000)] {
        posts.push((
            format!("Unblock of {}", &target[..target.len().min(20)]),
            &admin,
            format!("/admin/users/{target}/brute-force/lift"),
            vec![("csrf", csrf.clone())],
            vec![],
        ));
    }
    for (case, browser, path, form, headers) in posts {
        let mut request = browser.post(server.url(&path)).form(&form);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        tally.status_in(format!("{case}: refused"), status, &[400, 403, 404, 414]);
    }
    let stored = server.store.brute_force_settings().await.unwrap();
    tally.case(
        "the brute-force settings are as they were",
        stored.is_empty(),
        serde_json::Value::Object(stored),
    );
    let failures = server
        .store
        .login_failures("locked@example.com", "203.0.113.9")
        .await
        .unwrap();
    tally.case("the lockout holds", failures == 10, failures);
    // Control: the same forms, sent as the pages send them, do change things.
    let status = admin
        .post(server.url(settings))
        .form(&good(&csrf))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("the administrator's own settings form", status, 302);
    let stored = server.store.brute_force_settings().await.unwrap();
    tally.case(
        "… sets the threshold",
        stored.get("max_attempts") == Some(&serde_json::json!(1)),
        serde_json::Value::Object(stored),
    );
    let status = admin
        .post(server.url(&lift))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("the administrator's own Unblock", status, 302);
    let failures = server
        .store
        .login_failures("locked@example.com", "203.0.113.9")
        .await
        .unwrap();
    tally.case("… lifts the lockout", failures == 0, failures);
    tally.finish();
}
