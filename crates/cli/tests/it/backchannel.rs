//! An application's OIDC Back-Channel Logout from the CLI (`apps create|update
//! --backchannel-logout-url --backchannel-logout-initiators`): checked as the Management
//! API checks it, shown as it answers it, and cleared with an empty URL.

use serde_json::json;
use tessera_testkit::process::Env;

use crate::TESSERA;

#[test]
fn an_applications_back_channel_logout_is_set_changed_and_cleared() {
    let env = Env::new(TESSERA);
    let created = env.json(&[
        "apps",
        "create",
        "--name",
        "Web",
        "--type",
        "regular",
        "--callbacks",
        "https://web.example/cb",
        "--backchannel-logout-url",
        "https://web.example/backchannel",
    ]);
    let id = created["client_id"].as_str().unwrap().to_string();
    // Auth0's default initiators, in the Management API's shape.
    assert_eq!(
        created["oidc_logout"],
        json!({
            "backchannel_logout_urls": ["https://web.example/backchannel"],
            "backchannel_logout_initiators": {
                "mode": "custom", "selected_initiators": ["rp-logout", "idp-logout"]
            }
        })
    );
    // Initiators alone keep the URL.
    let changed = env.json(&[
        "apps",
        "update",
        &id,
        "--backchannel-logout-initiators",
        "session-revoked,account-deleted",
    ]);
    assert_eq!(
        changed["oidc_logout"]["backchannel_logout_initiators"],
        json!({"mode": "custom", "selected_initiators": ["session-revoked", "account-deleted"]})
    );
    assert_eq!(
        changed["oidc_logout"]["backchannel_logout_urls"],
        json!(["https://web.example/backchannel"])
    );
    let all = env.json(&[
        "apps",
        "update",
        &id,
        "--backchannel-logout-initiators",
        "all",
    ]);
    assert_eq!(
        all["oidc_logout"]["backchannel_logout_initiators"],
        json!({"mode": "all"})
    );
    assert!(
        env.ok(&["apps", "show", &id])
            .contains("https://web.example/backchannel (every session end)")
    );
    // Logout tokens carrying the session's metadata: set alone, kept by a later change.
    let with_metadata = env.json(&[
        "apps",
        "update",
        &id,
        "--backchannel-logout-session-metadata",
        "true",
    ]);
    assert_eq!(
        with_metadata["oidc_logout"]["backchannel_logout_session_metadata"],
        json!({"include": true})
    );
    let moved = env.json(&[
        "apps",
        "update",
        &id,
        "--backchannel-logout-url",
        "https://web.example/backchannel",
    ]);
    assert_eq!(
        moved["oidc_logout"]["backchannel_logout_session_metadata"],
        json!({"include": true}),
        "{moved}"
    );
    assert_eq!(
        moved["oidc_logout"]["backchannel_logout_initiators"],
        json!({"mode": "all"})
    );
    assert!(env.ok(&["apps", "show", &id]).contains(
        "https://web.example/backchannel (every session end), with the session's metadata"
    ));

    // Refused, and nothing changes: plain http off loopback, credentials, unknown names.
    for (flag, value) in [
        ("--backchannel-logout-url", "http://web.example/backchannel"),
        (
            "--backchannel-logout-url",
            "https://user:hunter2@web.example/x",
        ),
        ("--backchannel-logout-url", "javascript:alert(1)"),
        ("--backchannel-logout-initiators", "rp-logout,everything"),
    ] {
        let (code, message) = env.fails(&["apps", "update", &id, flag, value]);
        assert_ne!(code, 0);
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert_eq!(
        env.json(&["apps", "show", &id])["oidc_logout"],
        moved["oidc_logout"]
    );

    // An empty URL clears it; initiators then have nothing to apply to.
    let cleared = env.json(&["apps", "update", &id, "--backchannel-logout-url", ""]);
    assert!(cleared.get("oidc_logout").is_none(), "{cleared}");
    let (_, message) = env.fails(&[
        "apps",
        "update",
        &id,
        "--backchannel-logout-initiators",
        "all",
    ]);
    assert!(message.contains("--backchannel-logout-url"), "{message}");
}
