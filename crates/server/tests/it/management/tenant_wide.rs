//! What tools that read a whole tenant find: the database connection, the global client,
//! and the Auth0 features Tessera does not have (`management/absent.rs`) — each read as
//! "none", each write that would change something refused, nothing changed.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::spawn;

use super::{assert_error, call};

const CONNECTION: &str = "con_TesseraDatabase1";

#[tokio::test]
async fn the_database_connection_is_listed_and_only_its_settable_options_change() {
    let server = spawn().await;
    let token = server
        .management_token(&[
            "read:connections",
            "create:connections",
            "update:connections",
            "delete:connections",
        ])
        .await;
    let t = Some(token.as_str());

    let (status, list) = call(&server, t, Method::GET, "/connections", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let connection = list[0].clone();
    assert_eq!(connection["id"], CONNECTION);
    assert_eq!(connection["name"], "Username-Password-Authentication");
    assert_eq!(connection["strategy"], "auth0");
    assert_eq!(
        connection["options"]["password_complexity_options"]["min_length"],
        8
    );

    // Filters: another strategy or name finds nothing; checkpoint and page shapes.
    let (_, other) = call(
        &server,
        t,
        Method::GET,
        "/connections?strategy=google-oauth2",
        None,
    )
    .await;
    assert_eq!(other, json!([]));
    let (_, named) = call(&server, t, Method::GET, "/connections?name=Other", None).await;
    assert_eq!(named, json!([]));
    let (_, both) = call(
        &server,
        t,
        Method::GET,
        "/connections?strategy=waad&strategy=auth0",
        None,
    )
    .await;
    assert_eq!(both.as_array().unwrap().len(), 1, "{both}");
    let (_, checkpoint) = call(
        &server,
        t,
        Method::GET,
        "/connections?take=50&include_totals=true",
        None,
    )
    .await;
    assert_eq!(
        checkpoint["connections"][0]["id"], CONNECTION,
        "{checkpoint}"
    );
    assert!(checkpoint.get("next").is_none(), "{checkpoint}");
    let (_, totals) = call(
        &server,
        t,
        Method::GET,
        "/connections?include_totals=true&page=1",
        None,
    )
    .await;
    assert_eq!(totals["total"], 1, "{totals}");
    assert_eq!(totals["connections"], json!([]), "{totals}");
    let (_, fields) = call(
        &server,
        t,
        Method::GET,
        &format!("/connections/{CONNECTION}?fields=id,strategy"),
        None,
    )
    .await;
    assert_eq!(fields, json!({"id": CONNECTION, "strategy": "auth0"}));

    // A PATCH that repeats what the connection is succeeds; one that changes what
    // Tessera enforces does not; an option Tessera does not know is refused by name.
    let same = json!({
        "options": connection["options"],
        "is_domain_connection": connection["is_domain_connection"],
    });
    let path = format!("/connections/{CONNECTION}");
    let (status, body) = call(&server, t, Method::PATCH, &path, Some(same)).await;
    assert_eq!(status, 200, "{body}");
    let change = json!({"options": {"password_complexity_options": {"min_length": 12}}});
    let (status, body) = call(&server, t, Method::PATCH, &path, Some(change)).await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, 403, Some("feature_not_enabled"));
    let scripts = json!({"options": {"customScripts": {"login": "function login() {}"}}});
    let (status, body) = call(&server, t, Method::PATCH, &path, Some(scripts)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("customScripts"),
        "{body}"
    );
    assert!(!body.to_string().contains("function login"), "{body}");
    for refused in [
        json!({"options": {"disable_signup": "yes"}}),
        json!({"name": "Staff"}),
        json!({"strategy": "oidc"}),
    ] {
        let (status, body) = call(&server, t, Method::PATCH, &path, Some(refused.clone())).await;
        assert!(
            status == 400 || status == 403,
            "{refused} → {status} {body}"
        );
    }
    let (_, after) = call(&server, t, Method::GET, &path, None).await;
    assert_eq!(after, connection, "nothing changed");
    // What an administrator may set: the display name and the two sign-up options.
    let settable = json!({"display_name": "Staff", "options": {"disable_signup": true}});
    let (status, body) = call(&server, t, Method::PATCH, &path, Some(settable)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["display_name"], "Staff", "{body}");
    assert_eq!(body["options"]["disable_signup"], true, "{body}");
    assert_eq!(
        body["options"]["password_complexity_options"],
        connection["options"]["password_complexity_options"]
    );

    // Enabled clients: every application made so far (not Tessera's own dashboard).
    let clients_path = format!("/connections/{CONNECTION}/clients?take=50");
    let listed = |clients: &Value| -> Vec<String> {
        clients["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, clients) = call(&server, t, Method::GET, &clients_path, None).await;
    assert_eq!(status, 200, "{clients}");
    assert!(
        listed(&clients).contains(&server.spa_client_id),
        "{clients}"
    );
    assert!(
        !listed(&clients)
            .iter()
            .any(|id| id == tessera_core::system::DASHBOARD_CLIENT_ID),
        "{clients}"
    );
    let set = |client_id: &str, status: bool| json!([{"client_id": client_id, "status": status}]);
    let patch_path = format!("/connections/{CONNECTION}/clients");
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &patch_path,
        Some(set(&server.spa_client_id, false)),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, clients) = call(&server, t, Method::GET, &clients_path, None).await;
    assert!(
        !listed(&clients).contains(&server.spa_client_id),
        "{clients}"
    );
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &patch_path,
        Some(set(&server.spa_client_id, true)),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let dashboard = set(tessera_core::system::DASHBOARD_CLIENT_ID, false);
    let (status, body) = call(&server, t, Method::PATCH, &patch_path, Some(dashboard)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &patch_path,
        Some(set("nobody", true)),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    for (method, path) in [
        (Method::GET, "/connections/con_nope"),
        (Method::PATCH, "/connections/con_nope"),
        (Method::GET, "/connections/con_nope/clients"),
    ] {
        let (status, body) = call(&server, t, method.clone(), path, Some(json!({}))).await;
        assert_eq!(status, 404, "{method} {path} → {body}");
    }
    // More database connections may be made and deleted; the default is never deleted.
    let (status, made) = call(
        &server,
        t,
        Method::POST,
        "/connections",
        Some(json!({"name": "staff", "strategy": "auth0"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["options"]["disable_signup"], false, "{made}");
    assert_eq!(made["show_as_button"], false, "{made}");
    let (status, _) = call(&server, t, Method::DELETE, &path, None).await;
    assert_eq!(status, 400);
    let made_path = format!("/connections/{}", made["id"].as_str().unwrap());
    let (status, body) = call(&server, t, Method::DELETE, &made_path, None).await;
    assert_eq!(status, 202, "{body}");

    // The scopes are checked.
    let reader = server.management_token(&["read:clients"]).await;
    let (status, body) = call(&server, Some(&reader), Method::GET, "/connections", None).await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, 403, Some("insufficient_scope"));
}

#[tokio::test]
async fn the_global_client_is_found_with_is_global_and_cannot_change() {
    let server = spawn().await;
    let token = server
        .management_token(&[
            "read:clients",
            "update:clients",
            "delete:clients",
            "update:client_keys",
        ])
        .await;
    let t = Some(token.as_str());
    let (status, global) = call(
        &server,
        t,
        Method::GET,
        "/clients?is_global=true&include_totals=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{global}");
    assert_eq!(global["total"], 1, "{global}");
    let client = &global["clients"][0];
    assert_eq!(client["global"], true);
    assert_eq!(client["name"], "All Applications");
    let id = client["client_id"].as_str().unwrap().to_string();

    let (_, others) = call(&server, t, Method::GET, "/clients?is_global=false", None).await;
    assert!(
        others
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["client_id"] != id.as_str()),
        "{others}"
    );
    let (_, plain) = call(&server, t, Method::GET, "/clients", None).await;
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["client_id"] != id.as_str()),
        "{plain}"
    );
    let (_, spa_only) = call(
        &server,
        t,
        Method::GET,
        "/clients?is_global=true&app_type=spa",
        None,
    )
    .await;
    assert_eq!(spa_only, json!([]));
    let (status, read) = call(&server, t, Method::GET, &format!("/clients/{id}"), None).await;
    assert_eq!((status, &read), (200, client));

    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/clients/{id}"),
            Some(json!({"custom_login_page_on": true, "custom_login_page": "<script>x</script>"})),
        ),
        (Method::DELETE, format!("/clients/{id}"), None),
        (Method::POST, format!("/clients/{id}/rotate-secret"), None),
    ] {
        let (status, answer) = call(&server, t, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path} → {answer}");
        assert_error(&answer, 403, Some("operation_not_supported"));
    }
    let (_, again) = call(&server, t, Method::GET, &format!("/clients/{id}"), None).await;
    assert_eq!(&again, client);
}

#[tokio::test]
async fn absent_features_read_as_none_and_refuse_changes() {
    let server = spawn().await;
    // Any Management API caller may read them: they hold nothing of the tenant.
    let token = server.management_token(&["read:users"]).await;
    let t = Some(token.as_str());

    for (path, expected) in [
        ("/custom-domains", json!([])),
        ("/organizations", json!([])),
        ("/organizations?take=50", json!({"organizations": []})),
        (
            "/forms?include_totals=true",
            json!({"forms": [], "start": 0, "limit": 50, "length": 0, "total": 0}),
        ),
        (
            "/branding/phone/providers",
            json!({"providers": [], "total": 0}),
        ),
        ("/risk-assessments/settings", json!({"enabled": false})),
        ("/prompts/login/custom-text/en", json!({})),
        (
            "/prompts?fields=identifier_first",
            json!({"identifier_first": false}),
        ),
    ] {
        let (status, body) = call(&server, t, Method::GET, path, None).await;
        assert_eq!((status, &body), (200, &expected), "GET {path}");
    }
    let (_, throttling) = call(
        &server,
        t,
        Method::GET,
        "/attack-protection/suspicious-ip-throttling",
        None,
    )
    .await;
    assert_eq!(
        throttling["enabled"], true,
        "the address throttle: {throttling}"
    );

    for (method, path) in [
        (Method::GET, "/hooks"),
        (Method::GET, "/prompts/login/partials"),
        (Method::GET, "/attack-protection/captcha"),
        (Method::POST, "/organizations"),
    ] {
        let (status, body) =
            call(&server, t, method.clone(), path, Some(json!({"name": "x"}))).await;
        assert_eq!(status, 403, "{method} {path} → {body}");
        assert_error(&body, 403, Some("feature_not_enabled"));
    }

    // Settings: the same values are accepted, others refused and nothing changes.
    let same = json!({"enabled": true, "shields": ["block"]});
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        "/attack-protection/suspicious-ip-throttling",
        Some(same),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for change in [
        json!({"shields": []}),
        json!({"enabled": false}),
        json!({"allowlist": ["0.0.0.0/0"]}),
        json!({"unknown": true}),
        json!([1]),
    ] {
        let (status, body) = call(
            &server,
            t,
            Method::PATCH,
            "/attack-protection/suspicious-ip-throttling",
            Some(change.clone()),
        )
        .await;
        assert_eq!(status, 403, "{change} → {body}");
    }
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        "/prompts",
        Some(json!({"identifier_first": true})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (_, after) = call(
        &server,
        t,
        Method::GET,
        "/attack-protection/suspicious-ip-throttling",
        None,
    )
    .await;
    assert_eq!(after, throttling, "nothing changed");

    // Bad input is refused like elsewhere, before anything else.
    let (status, body) = call(&server, t, Method::GET, "/forms?per_page=1000", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&server, t, Method::GET, "/forms?color=red", None).await;
    assert_eq!(status, 400, "{body}");
    // A token is still required, and an unknown path is still a 404.
    let (status, _) = call(&server, None, Method::GET, "/hooks", None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&server, t, Method::GET, "/custom-domains/cd_1", None).await;
    assert_eq!(status, 404);
    let (status, _): (u16, Value) = call(&server, t, Method::GET, "/no-such-thing", None).await;
    assert_eq!(status, 404);
}
