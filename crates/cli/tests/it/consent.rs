//! Third-party applications, APIs an application is restricted to, and a user's consents
//! (`tessera apps create --third-party`, `apps update --first-party|--allowed-apis|
//! --allow-all-apis`, `users consents list|revoke`).

use serde_json::{Value, json};
use tessera_store::{NewRefreshFamily, Store};
use tessera_testkit::process::Env;

use crate::TESSERA;

const API: &str = "https://quickstarts/api";
const OTHER: &str = "https://other/api";

fn setup(env: &Env) -> (Value, String) {
    let api = env.json(&[
        "apis",
        "create",
        "--name",
        "Quickstart API",
        "--identifier",
        API,
        "--scopes",
        "read:messages,write:messages",
    ]);
    env.json(&["apis", "create", "--name", "Other", "--identifier", OTHER]);
    let app = env.json(&[
        "apps",
        "create",
        "--name",
        "Partner",
        "--type",
        "spa",
        "--callbacks",
        "http://localhost:3000/callback",
        "--third-party",
    ]);
    (app, api["id"].as_str().unwrap().to_string())
}

#[test]
fn applications_are_first_or_third_party_and_may_be_restricted_to_apis() {
    let env = Env::new(TESSERA);
    let (app, api_id) = setup(&env);
    let client_id = app["client_id"].as_str().unwrap();
    assert_eq!(app["is_first_party"], false);
    assert_eq!(app["allowed_apis"], Value::Null, "every API by default");

    let plain = env.json(&["apps", "create", "--name", "Own", "--type", "spa"]);
    assert_eq!(plain["is_first_party"], true);

    let updated = env.json(&["apps", "update", client_id, "--first-party", "true"]);
    assert_eq!(updated["is_first_party"], true);
    let updated = env.json(&["apps", "update", client_id, "--first-party", "false"]);
    assert_eq!(updated["is_first_party"], false);

    // By identifier or id; stored as identifiers.
    let updated = env.json(&[
        "apps",
        "update",
        client_id,
        "--allowed-apis",
        &format!("{api_id},{OTHER}"),
    ]);
    assert_eq!(updated["allowed_apis"], json!([API, OTHER]));
    assert_eq!(updated["is_first_party"], false, "untouched");
    assert_eq!(
        env.json(&["apps", "show", client_id])["allowed_apis"],
        json!([API, OTHER])
    );
    let text = env.ok(&["apps", "show", client_id]);
    assert!(
        text.contains(&format!("allowed APIs: {API}, {OTHER}")),
        "{text}"
    );
    assert!(text.contains("third (users consent)"), "{text}");

    let (code, stderr) = env.fails(&[
        "apps",
        "update",
        client_id,
        "--allowed-apis",
        "https://nope",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no API with id or identifier https://nope"),
        "{stderr}"
    );
    let (code, _) = env.fails(&[
        "apps",
        "update",
        client_id,
        "--allowed-apis",
        API,
        "--allow-all-apis",
    ]);
    assert_eq!(code, 2, "the two flags contradict each other");

    let none = env.json(&["apps", "update", client_id, "--allowed-apis", ""]);
    assert_eq!(none["allowed_apis"], json!([]), "\"\": no API at all");
    let all = env.json(&["apps", "update", client_id, "--allow-all-apis"]);
    assert_eq!(all["allowed_apis"], Value::Null);
    assert!(
        env.ok(&["apps", "show", client_id])
            .contains("allowed APIs: all")
    );

    let restricted = env.json(&[
        "apps",
        "create",
        "--name",
        "Restricted",
        "--type",
        "regular",
        "--allowed-apis",
        API,
    ]);
    assert_eq!(restricted["allowed_apis"], json!([API]));
}

#[tokio::test]
async fn consents_are_listed_in_auth0_grant_shape_and_revoked_with_their_refresh_tokens() {
    let env = Env::new(TESSERA);
    let (app, _) = setup(&env);
    let client_id = app["client_id"].as_str().unwrap().to_string();
    env.ok_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "demo@example.com",
            "--password-stdin",
        ],
        "an unusual passphrase\n",
    );
    let user_id = env.json(&["users", "show", "demo@example.com"])["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.json(&["users", "consents", "list", "demo@example.com"]),
        json!([])
    );
    assert!(
        env.ok(&["users", "consents", "ls", "demo@example.com"])
            .contains("has not consented")
    );

    // What the consent page and a code redemption would have stored.
    let store = Store::connect(&env.database_url()).await.unwrap();
    let scopes = vec!["openid".to_string(), "read:messages".to_string()];
    let consent = store
        .grant_consent(&user_id, &client_id, API, &scopes, 1_700_000_000)
        .await
        .unwrap();
    store
        .grant_consent(
            &user_id,
            &client_id,
            "http://localhost:4000/userinfo",
            &scopes[..1],
            1_700_000_000,
        )
        .await
        .unwrap();
    let family = NewRefreshFamily {
        family_id: "family".into(),
        client_id: client_id.clone(),
        user_id: user_id.clone(),
        grant: "{}".into(),
        code_hash: None,
        sid: None,
        created_at: 1,
        expires_at: i64::MAX / 2,
        metadata: Default::default(),
    };
    store
        .create_refresh_family(&family, &[7; 32], i64::MAX / 2)
        .await
        .unwrap();

    let listed = env.json(&["users", "consents", "list", &user_id]);
    // By application, then audience.
    assert_eq!(listed[0]["audience"], "http://localhost:4000/userinfo");
    assert_eq!(
        listed[1],
        json!({
            "id": consent.id,
            "clientID": client_id,
            "user_id": user_id,
            "audience": API,
            "scope": ["openid", "read:messages"],
            "created_at": "2023-11-14T22:13:20.000Z",
            "updated_at": "2023-11-14T22:13:20.000Z",
        })
    );
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let table = env.ok(&["users", "consents", "list", "demo@example.com"]);
    assert!(table.contains("openid read:messages"), "{table}");

    // One API: the page will show again for it, and the app's refresh tokens end.
    let left = env.json(&[
        "users",
        "consents",
        "revoke",
        "demo@example.com",
        "--app",
        &client_id,
        "--api",
        API,
    ]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["audience"], "http://localhost:4000/userinfo");
    assert!(
        store
            .find_refresh_family(&[7; 32], 2)
            .await
            .unwrap()
            .is_none(),
        "the refresh tokens of the application ended with the consent"
    );

    let (code, stderr) = env.fails(&[
        "users",
        "consents",
        "revoke",
        "demo@example.com",
        "--app",
        &client_id,
        "--api",
        API,
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("has no consent to Partner"), "{stderr}");

    // The userinfo audience, as listed; the text form says what happened.
    let text = env.ok(&[
        "users",
        "consents",
        "revoke",
        "demo@example.com",
        "--app",
        "Partner",
        "--api",
        "http://localhost:4000/userinfo",
    ]);
    assert!(text.contains("Revoked 1 consent(s)"), "{text}");
    assert_eq!(
        env.json(&["users", "consents", "list", "demo@example.com"]),
        json!([])
    );
    store.close().await;
}
