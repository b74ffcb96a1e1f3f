//! A user's second factors from the CLI (`tessera users factors`, `users reset-factors`):
//! what the hosted page's enrollment stored is listed as the Management API lists it, and
//! a reset removes every factor and the count of wrong codes.

use serde_json::Value;
use tessera_store::Store;
use tessera_testkit::process::Env;

use crate::TESSERA;

const EMAIL: &str = "ada@example.com";

#[tokio::test]
async fn a_users_factors_are_listed_and_reset() {
    let env = Env::new(TESSERA);
    env.ok_with_stdin(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        "an unusual passphrase\n",
    );
    let user_id = env.json(&["users", "show", EMAIL])["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(env.json(&["users", "factors", EMAIL]), Value::Array(vec![]));
    assert!(
        env.ok(&["users", "factors", EMAIL])
            .contains("has no second factor"),
    );

    // What the hosted page stores for an enrollment: begun, then confirmed by its first
    // code with a recovery code; and a wrong code counted since.
    let store = Store::connect(&env.database_url()).await.unwrap();
    store
        .begin_totp_enrollment(&user_id, "totp|dev_one", b"sealed", 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(
        env.json(&["users", "factors", &user_id]),
        Value::Array(vec![]),
        "an enrollment not confirmed is no factor yet"
    );
    assert!(
        store
            .confirm_totp(
                &user_id,
                "totp|dev_one",
                56_666_666,
                ("recovery-code|dev_two", b"hash"),
                1_700_000_000,
            )
            .await
            .unwrap()
    );
    store
        .record_mfa_failure(&user_id, 1_700_000_100)
        .await
        .unwrap();

    // By email or by id; the Management API's authentication-methods shape.
    let listed = env.json(&["users", "factors", EMAIL]);
    assert_eq!(listed, env.json(&["users", "factors", &user_id]));
    let mut kinds: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["recovery-code", "totp"], "{listed}");
    let app = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "totp")
        .unwrap();
    assert_eq!(app["id"], "totp|dev_one");
    assert_eq!(app["name"], "Authenticator app");
    assert_eq!(app["confirmed"], true);
    assert!(
        app["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T"),
        "{app}"
    );
    assert!(
        !listed.to_string().contains("sealed") && !listed.to_string().contains("hash"),
        "no secret shown: {listed}"
    );
    let text = env.ok(&["users", "factors", EMAIL]);
    assert!(text.contains("TYPE") && text.contains("totp"), "{text}");
    assert!(text.contains("Authenticator app"), "{text}");

    let reset = env.json(&["users", "reset-factors", EMAIL]);
    assert_eq!(reset["user_id"], user_id.as_str());
    assert_eq!(reset["removed"], 2);
    assert_eq!(env.json(&["users", "factors", EMAIL]), Value::Array(vec![]));
    assert!(store.authenticators_of(&user_id).await.unwrap().is_empty());
    assert_eq!(
        store.mfa_failures(&user_id).await.unwrap().0,
        0,
        "the wrong codes are forgotten with them"
    );
    let again = env.ok(&["users", "reset-factors", EMAIL]);
    assert!(again.contains("0 removed"), "{again}");

    // Someone who does not exist: an error, nothing else.
    for command in ["factors", "reset-factors"] {
        let (code, stderr) = env.fails(&["users", command, "nobody@example.com"]);
        assert_ne!(code, 0);
        assert!(stderr.contains("no user with id or email"), "{stderr}");
    }
}
