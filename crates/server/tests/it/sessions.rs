//! Login sessions last as the tenant's settings say: `session_lifetime` (hours after the
//! sign-in) and `idle_session_lifetime` (hours after the last use), read when a session is
//! used, so a change applies to sessions already open. Lifetimes of a few seconds, set
//! through the Management API, keep the waits short.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tessera_testkit::{API, TestServer, browser, params_of, pkce, spawn};

async fn set_settings(server: &TestServer, settings: serde_json::Value) {
    let token = server.management_token(&["update:tenant_settings"]).await;
    let response = reqwest::Client::new()
        .request(Method::PATCH, server.url("/api/v2/tenants/settings"))
        .bearer_auth(token)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn sign_in(server: &TestServer) -> reqwest::Client {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let back = server.sign_in(&browser, &url).await;
    assert!(params_of(&back).contains_key("code"), "{back}");
    browser
}

#[tokio::test]
async fn a_session_ends_at_the_tenants_absolute_lifetime_even_when_used() {
    let server = spawn().await;
    // 0.001 h = 3.6 s after the sign-in, however often the session is used.
    set_settings(&server, json!({"session_lifetime": 0.001})).await;
    let browser = sign_in(&server).await;
    assert!(server.signs_in_silently(&browser).await);
    let mut alive_after_end = false;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        alive_after_end = server.signs_in_silently(&browser).await;
        if !alive_after_end {
            break;
        }
    }
    assert!(!alive_after_end, "the session outlived 3.6 s of use");
}

#[tokio::test]
async fn an_idle_session_ends_and_a_used_one_lives_on() {
    let server = spawn().await;
    // Idle: 0.002 h = 7.2 s; absolute: an hour.
    set_settings(
        &server,
        json!({"session_lifetime": 1, "idle_session_lifetime": 0.002}),
    )
    .await;
    let used = sign_in(&server).await;
    let idle = sign_in(&server).await;
    // Used every second for 10 s (past the idle lifetime), the session stays alive.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            server.signs_in_silently(&used).await,
            "used within its idle lifetime"
        );
    }
    // The other, left alone as long, has ended.
    assert!(
        !server.signs_in_silently(&idle).await,
        "idle past its lifetime"
    );
}

#[tokio::test]
async fn lowering_the_lifetime_ends_sessions_already_open() {
    let server = spawn().await;
    let browser = sign_in(&server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.signs_in_silently(&browser).await);
    // An hour's session, then the tenant allows only about a second.
    set_settings(&server, json!({"session_lifetime": 0.0003})).await;
    assert!(!server.signs_in_silently(&browser).await);
}

/// A browser whose requests say `agent`, signed in through the code flow with offline
/// access: the browser, its session's id (the ID token's `sid`) and its refresh token.
async fn device(server: &TestServer, agent: &str) -> (reqwest::Client, String, String) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap();
    let tokens = server
        .code_flow(&browser, "openid offline_access read:messages", Some(API))
        .await;
    let sid = crate::actions::payload(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .expect("the ID token names its session")
        .to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    (browser, sid, refresh)
}

async fn refreshes(server: &TestServer, token: &str) -> bool {
    let (status, body) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", server.spa_client_id.as_str()),
            ("refresh_token", token),
        ])
        .await;
    match status {
        200 => true,
        400 if body["error"] == "invalid_grant" => false,
        _ => panic!("unexpected answer {status}: {body}"),
    }
}

#[tokio::test]
async fn an_administrator_sees_a_users_sessions_and_ends_them() {
    let server = spawn().await;
    let admin = server
        .management_token(&["read:sessions", "delete:sessions"])
        .await;
    let user: String = form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let (laptop, laptop_sid, laptop_refresh) = device(&server, "Laptop/1.0").await;
    let (phone, phone_sid, phone_refresh) = device(&server, "Phone/2.0").await;

    let (status, listed) = server
        .management_request(&admin, "GET", &format!("/users/{user}/sessions"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert!(listed.get("next").is_none(), "{listed}");
    for (sid, agent) in [(&laptop_sid, "Laptop/1.0"), (&phone_sid, "Phone/2.0")] {
        let session = sessions
            .iter()
            .find(|session| session["id"] == sid.as_str())
            .unwrap_or_else(|| panic!("{sid} not listed: {listed}"));
        assert_eq!(session["user_id"], server.user_id.as_str(), "{session}");
        assert_eq!(session["device"]["initial_user_agent"], agent, "{session}");
        assert_eq!(session["device"]["initial_ip"], "127.0.0.1", "{session}");
        assert_eq!(session["device"]["last_user_agent"], agent, "{session}");
        assert_eq!(
            session["authentication"]["methods"][0]["name"], "pwd",
            "{session}"
        );
        for field in [
            "created_at",
            "updated_at",
            "authenticated_at",
            "last_interacted_at",
            "idle_expires_at",
            "expires_at",
        ] {
            let at = session[field].as_str().unwrap_or_default();
            assert!(at.ends_with('Z') && at.len() == 24, "{field}: {session}");
        }
        assert!(
            session["expires_at"].as_str() >= session["idle_expires_at"].as_str(),
            "{session}"
        );
    }

    // By checkpoint, one at a time.
    let (_, first) = server
        .management_request(&admin, "GET", &format!("/users/{user}/sessions?take=1"))
        .await;
    let next = first["next"].as_str().expect("more follow").to_string();
    let (_, second) = server
        .management_request(
            &admin,
            "GET",
            &format!("/users/{user}/sessions?take=1&from={next}"),
        )
        .await;
    assert_eq!(second["sessions"][0]["id"], next.as_str(), "{second}");
    assert_ne!(first["sessions"][0]["id"], second["sessions"][0]["id"]);
    assert!(second.get("next").is_none(), "{second}");

    // The laptop's session is revoked: the browser signs in afresh and the refresh token
    // issued in that session fails; the phone keeps both.
    let (status, one) = server
        .management_request(&admin, "GET", &format!("/sessions/{laptop_sid}"))
        .await;
    assert_eq!((status, &one["id"]), (200, &json!(laptop_sid)), "{one}");
    let (status, _) = server
        .management_request(&admin, "POST", &format!("/sessions/{laptop_sid}/revoke"))
        .await;
    assert_eq!(status, 202);
    assert!(!server.signs_in_silently(&laptop).await);
    assert!(!refreshes(&server, &laptop_refresh).await);
    assert!(server.signs_in_silently(&phone).await);
    for method in ["GET", "DELETE"] {
        let (status, _) = server
            .management_request(&admin, method, &format!("/sessions/{laptop_sid}"))
            .await;
        assert_eq!(status, 404, "{method} after revocation");
    }

    // Deleting the phone's session ends it alone: its refresh token lives on.
    let (status, _) = server
        .management_request(&admin, "DELETE", &format!("/sessions/{phone_sid}"))
        .await;
    assert_eq!(status, 202);
    assert!(!server.signs_in_silently(&phone).await);
    assert!(refreshes(&server, &phone_refresh).await);

    // Every session of the user at once.
    let (again, _, _) = device(&server, "Laptop/1.1").await;
    assert!(server.signs_in_silently(&again).await);
    let (status, _) = server
        .management_request(&admin, "DELETE", &format!("/users/{user}/sessions"))
        .await;
    assert_eq!(status, 202);
    assert!(!server.signs_in_silently(&again).await);
    let (_, left) = server
        .management_request(&admin, "GET", &format!("/users/{user}/sessions"))
        .await;
    assert_eq!(left, json!({"sessions": []}));
}

#[tokio::test]
async fn session_endpoints_refuse_what_they_should() {
    let server = spawn().await;
    let reader = server.management_token(&["read:sessions"]).await;
    let user: String = form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let (browser, sid, _) = device(&server, "Laptop/1.0").await;
    for (method, path, expected) in [
        // Reading is not ending.
        ("DELETE", format!("/sessions/{sid}"), 403),
        ("POST", format!("/sessions/{sid}/revoke"), 403),
        ("DELETE", format!("/users/{user}/sessions"), 403),
        ("GET", "/sessions/no-such-session".to_string(), 404),
        ("GET", format!("/sessions/{}", sid.to_uppercase()), 404),
        ("GET", "/users/auth0%7Cnobody/sessions".to_string(), 404),
        ("GET", format!("/users/{user}/sessions?take=0"), 400),
        ("GET", format!("/users/{user}/sessions?take=101"), 400),
        ("GET", format!("/users/{user}/sessions?page=1"), 400),
        (
            "GET",
            format!("/users/{user}/sessions?include_totals=maybe"),
            400,
        ),
        (
            "GET",
            format!("/users/{user}/sessions?include_totals=true"),
            200,
        ),
    ] {
        let (status, body) = server.management_request(&reader, method, &path).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
    // A token without the scope reads nothing; no token at all is 401.
    let other = server.management_token(&["read:users"]).await;
    let (status, _) = server
        .management_request(&other, "GET", &format!("/sessions/{sid}"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .management_request("", "GET", &format!("/sessions/{sid}"))
        .await;
    assert_eq!(status, 401);
    // An unknown session is not ended by a token that may end sessions.
    let ender = server.management_token(&["delete:sessions"]).await;
    let (status, body) = server
        .management_request(&ender, "POST", "/sessions/nope/revoke")
        .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (404, Some("inexistent_session")),
        "{body}"
    );
    // Nothing refused changed anything.
    assert!(server.signs_in_silently(&browser).await);
}

#[tokio::test]
async fn an_administrator_replaces_a_sessions_metadata() {
    let server = spawn().await;
    let (browser, sid, _) = device(&server, "Laptop/1.0").await;
    let writer = server
        .management_token(&["read:sessions", "update:sessions"])
        .await;
    let path = format!("/sessions/{sid}");
    let patch_at = |path: String, body: serde_json::Value| {
        let (server, writer) = (&server, writer.clone());
        async move {
            let response = reqwest::Client::new()
                .patch(server.url(&format!("/api/v2{path}")))
                .bearer_auth(writer)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let patch = |body: serde_json::Value| patch_at(path.clone(), body);
    let shown = || async {
        let (status, body) = server.management_request(&writer, "GET", &path).await;
        assert_eq!(status, 200, "{body}");
        body["session_metadata"].clone()
    };
    assert_eq!(shown().await, json!({}), "a new session has none");
    let (status, body) =
        patch(json!({"session_metadata": {"device": "laptop", "org": "acme"}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], sid.as_str());
    assert_eq!(
        body["session_metadata"],
        json!({"device": "laptop", "org": "acme"})
    );
    assert_eq!(shown().await, json!({"device": "laptop", "org": "acme"}));
    // The whole is replaced: a key left out is gone.
    let (status, _) = patch(json!({"session_metadata": {"device": "phone"}})).await;
    assert_eq!(status, 200);
    assert_eq!(shown().await, json!({"device": "phone"}));
    // Nothing asked: nothing changed, the session shown.
    let (status, body) = patch(json!({})).await;
    assert_eq!(
        (status, &body["session_metadata"]),
        (200, &json!({"device": "phone"}))
    );
    // 25 keys of 255 characters fit.
    let full: serde_json::Map<String, serde_json::Value> = (0..25)
        .map(|i| (format!("{i:0>255}"), json!("é".repeat(255))))
        .collect();
    let (status, body) = patch(json!({"session_metadata": full})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(shown().await.as_object().unwrap().len(), 25);
    let (status, _) = patch(json!({"session_metadata": {"device": "phone"}})).await;
    assert_eq!(status, 200);

    // Refused, each changing nothing.
    let many: serde_json::Map<String, serde_json::Value> =
        (0..26).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (body, expected) in [
        (json!({"session_metadata": many}), "at most 25 keys"),
        (json!({"session_metadata": {"k": 1}}), "must be a string"),
        (json!({"session_metadata": {"k": null}}), "must be a string"),
        (
            json!({"session_metadata": {"k": {"nested": "v"}}}),
            "must be a string",
        ),
        (
            json!({"session_metadata": {"": "v"}}),
            "1 to 255 characters",
        ),
        (
            json!({"session_metadata": {"k".repeat(256): "v"}}),
            "1 to 255 characters",
        ),
        (
            json!({"session_metadata": {"k": "v".repeat(256)}}),
            "1 to 255 characters",
        ),
        (
            json!({"session_metadata": ["k", "v"]}),
            "Expected type object",
        ),
        (json!({"session_metadata": "k=v"}), "Expected type object"),
        (
            json!({"session_metadata": {}, "expires_at": "2099-01-01T00:00:00Z"}),
            "Additional properties",
        ),
        (json!([]), "Expected type object"),
    ] {
        let (status, answer) = patch(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {answer}");
    }
    assert_eq!(shown().await, json!({"device": "phone"}));
    // Without the scope, 403; an unknown session, 404.
    let reader = server.management_token(&["read:sessions"]).await;
    let (status, _) = server.management_request(&reader, "PATCH", &path).await;
    assert_eq!(status, 403);
    let (status, body) = patch_at(
        "/sessions/no-such-session".to_string(),
        json!({"session_metadata": {"k": "v"}}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(shown().await, json!({"device": "phone"}));
    // `null` removes it all.
    let (status, body) = patch(json!({"session_metadata": null})).await;
    assert_eq!((status, &body["session_metadata"]), (200, &json!({})));
    // An ended session is not written.
    let ender = server.management_token(&["delete:sessions"]).await;
    let (status, _) = server.management_request(&ender, "DELETE", &path).await;
    assert_eq!(status, 202);
    let (status, body) = patch(json!({"session_metadata": {"k": "v"}})).await;
    assert_eq!(status, 404, "{body}");
    assert!(!server.signs_in_silently(&browser).await);
}
