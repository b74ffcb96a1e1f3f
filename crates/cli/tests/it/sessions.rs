//! A user's login sessions from the CLI (`tessera users sessions`, `users sign-out`): the
//! sessions the hosted pages stored are listed as the Management API lists them, a page at a
//! time, and signing out ends one session with its refresh tokens, or everything. And what
//! keeps a user from signing in from a network (`tessera users blocks`).

use tessera_store::{NewRefreshFamily, SessionOrigin, SessionRecord, Store};
use tessera_testkit::process::Env;

use crate::TESSERA;

const EMAIL: &str = "ada@example.com";

#[tokio::test]
async fn a_users_sessions_are_listed_and_ended() {
    let env = Env::new(TESSERA);
    env.ok_with_stdin(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        "an unusual passphrase\n",
    );
    let user_id = env.json(&["users", "show", EMAIL])["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        env.ok(&["users", "sessions", EMAIL])
            .contains("is not signed in at the login page anywhere")
    );

    // What the hosted pages store at two sign-ins, each with a refresh token.
    let store = Store::connect(&env.database_url()).await.unwrap();
    let now = tessera_testkit::now();
    for (n, sid, agent) in [
        (1u8, "sid-laptop", "Laptop/1.0"),
        (2, "sid-phone", "Phone/2.0"),
    ] {
        let session = SessionRecord {
            sid: sid.into(),
            user_id: user_id.clone(),
            connection: Some("Username-Password-Authentication".into()),
            amr: vec!["pwd".into()],
            auth_time: now,
            expires_at: now + 3600,
            last_interacted_at: None,
            upstream_sid: None,
            ends_by: None,
        };
        let origin = SessionOrigin {
            ip: Some("192.0.2.1".into()),
            user_agent: Some(agent.into()),
        };
        store
            .create_session(&[n; 32], &session, &origin, now)
            .await
            .unwrap();
        let family = NewRefreshFamily {
            family_id: format!("family-{sid}"),
            client_id: "app".into(),
            user_id: user_id.clone(),
            grant: "{}".into(),
            code_hash: None,
            sid: Some(sid.into()),
            created_at: now,
            expires_at: now + 3600,
            metadata: Default::default(),
        };
        store
            .create_refresh_family(&family, &[n + 10; 32], now + 3600)
            .await
            .unwrap();
    }
    let alive = |hash: u8| {
        let store = store.clone();
        async move {
            store
                .find_refresh_family(&[hash; 32], tessera_testkit::now())
                .await
                .unwrap()
                .is_some()
        }
    };

    // A page at a time, by id; the Management API's shape.
    let first = env.json(&["users", "sessions", EMAIL, "--take", "1"]);
    assert_eq!(first["sessions"][0]["id"], "sid-laptop", "{first}");
    assert_eq!(
        first["sessions"][0]["device"]["initial_user_agent"],
        "Laptop/1.0"
    );
    assert_eq!(first["next"], "sid-phone", "{first}");
    let second = env.json(&["users", "sessions", &user_id, "--from", "sid-phone"]);
    assert_eq!(
        second["sessions"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    assert!(second.get("next").is_none(), "{second}");
    // Metadata an action wrote, one value trying to redraw the administrator's terminal.
    let metadata = std::collections::BTreeMap::from([
        ("device".to_string(), "kitchen tablet".to_string()),
        ("note".to_string(), "\u{1b}[2J\u{1b}[31mred".to_string()),
    ]);
    assert!(
        store
            .set_session_metadata("sid-phone", &metadata, (now, 0))
            .await
            .unwrap()
    );
    let text = env.ok(&["users", "sessions", EMAIL]);
    assert!(
        text.contains("SESSION") && text.contains("Phone/2.0"),
        "{text}"
    );
    assert!(
        text.contains("METADATA") && text.contains("device=kitchen tablet, note=\u{FFFD}[2J"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no escape reaches the terminal: {text:?}"
    );
    // When each ends: unused, in the hour it was stored with; at the latest, as the tenant's
    // absolute lifetime says.
    let idle_end = tessera_core::claims::rfc3339(now + 3600);
    assert!(
        text.contains("ENDS IF IDLE") && text.contains("ENDS BY") && text.contains(&idle_end),
        "{text}"
    );

    // One session, with the refresh token issued in it; the other stays.
    let ended = env.json(&["users", "sign-out", EMAIL, "--session", "sid-laptop"]);
    assert_eq!(ended["signed_out"], "sid-laptop");
    assert!(!alive(11).await && alive(12).await);
    let left = env.json(&["users", "sessions", EMAIL]);
    assert_eq!(left["sessions"][0]["id"], "sid-phone", "{left}");
    // A session that is not the user's, or no longer live: an error, nothing else.
    env.ok_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "bo@example.com",
            "--password-stdin",
        ],
        "another unusual passphrase\n",
    );
    for (user, sid) in [("bo@example.com", "sid-phone"), (EMAIL, "sid-laptop")] {
        let (code, stderr) = env.fails(&["users", "sign-out", user, "--session", sid]);
        assert_ne!(code, 0);
        assert!(stderr.contains("no live session"), "{stderr}");
    }
    assert!(alive(12).await, "still there");

    // Everywhere.
    let text = env.ok(&["users", "sign-out", EMAIL]);
    assert!(text.contains("every session and refresh token"), "{text}");
    assert!(!alive(12).await);
    assert_eq!(
        env.json(&["users", "sessions", EMAIL]),
        serde_json::json!({"sessions": []})
    );
    let (code, stderr) = env.fails(&["users", "sessions", "nobody@example.com"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no user with id or email"), "{stderr}");
    let (code, _) = env.fails(&["users", "sessions", EMAIL, "--take", "101"]);
    assert_ne!(code, 0);
}

/// `tessera users blocks`: the networks an account is locked out from after the threshold
/// (the tenant's, once set), in the Management API's shape with `--json`; `--lift` forgets
/// them and leaves the user's own `blocked` flag alone.
#[tokio::test]
async fn a_users_brute_force_blocks_are_listed_and_lifted() {
    let env = Env::new(TESSERA);
    env.ok_with_stdin(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        "an unusual passphrase\n",
    );
    assert!(
        env.ok(&["users", "blocks", EMAIL])
            .contains("is not locked out from any network")
    );
    // What the password check records: failures per account and network.
    let store = Store::connect(&env.database_url()).await.unwrap();
    for (network, failures) in [("203.0.113.9", 10), ("198.51.100.1", 4)] {
        for _ in 0..failures {
            store.record_login_failure(EMAIL, network, 1).await.unwrap();
        }
    }
    let listed = env.ok(&["users", "blocks", EMAIL]);
    assert!(listed.contains("  203.0.113.9\n"), "{listed}");
    assert!(
        !listed.contains("198.51.100.1"),
        "under the threshold: {listed}"
    );
    // The tenant's own threshold counts once set.
    let four = serde_json::json!({"max_attempts": 4});
    store
        .patch_brute_force_settings(four.as_object().unwrap())
        .await
        .unwrap();
    assert_eq!(
        env.json(&["users", "blocks", EMAIL]),
        serde_json::json!({"blocked_for": [
            {"identifier": EMAIL, "ip": "198.51.100.1"},
            {"identifier": EMAIL, "ip": "203.0.113.9"},
        ]})
    );
    env.ok(&["users", "block", EMAIL]);
    assert!(
        env.ok(&["users", "blocks", EMAIL, "--lift"])
            .contains("Lifted")
    );
    assert_eq!(
        env.json(&["users", "blocks", EMAIL]),
        serde_json::json!({"blocked_for": []})
    );
    assert_eq!(store.login_failures(EMAIL, "203.0.113.9").await.unwrap(), 0);
    assert_eq!(
        env.json(&["users", "show", EMAIL])["blocked"],
        true,
        "still blocked"
    );
    let (code, message) = env.fails(&["users", "blocks", "nobody@example.com"]);
    assert!(
        code != 0 && message.contains("nobody@example.com"),
        "{message}"
    );
}
