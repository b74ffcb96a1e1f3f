//! Connections and the applications each is enabled for, on both backends.

use serde_json::{Map, Value, json};
use tessera_core::{AppType, Client, DATABASE_CONNECTION};
use tessera_store::*;

on_both_backends!(
    the_database_connection_is_there_from_the_start,
    connections_are_saved_listed_and_changed,
    enabled_applications_follow_their_application,
    a_connection_with_users_is_not_deleted,
    database_connections_keep_their_own_users,
    a_third_party_application_signs_in_through_domain_connections,
);

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(members) => members,
        _ => unreachable!("an object literal"),
    }
}

fn connection(id: &str, name: &str, strategy: &str) -> ConnectionRecord {
    ConnectionRecord {
        id: id.into(),
        name: name.into(),
        display_name: name.to_uppercase(),
        strategy: strategy.into(),
        options: object(json!({"client_id": format!("client-of-{name}")})),
        sealed_secret: Some(b"sealed".to_vec()),
        show_as_button: true,
        is_domain_connection: false,
        metadata: object(json!({"team": "identity"})),
        created_at: 5,
        updated_at: 5,
    }
}

fn app(id: &str) -> Client {
    Client {
        client_id: id.into(),
        name: format!("App {id}"),
        app_type: AppType::Spa,
        secret_hash: None,
        token_endpoint_auth_method: "none".into(),
        callbacks: vec!["http://localhost:3000/".into()],
        web_origins: vec![],
        allowed_logout_urls: vec![],
        grant_types: vec!["authorization_code".into()],
        is_first_party: true,
        allowed_apis: None,
        refresh: tessera_core::RefreshPolicy::default(),
        profile: Default::default(),
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: 1,
        updated_at: 1,
        oidc_logout: None,
    }
}

const ALL: Checkpoint = Checkpoint {
    from: None,
    take: 50,
};

async fn the_database_connection_is_there_from_the_start(store: &Store) {
    let database = store
        .find_connection(tessera_core::DATABASE_CONNECTION_ID)
        .await
        .unwrap()
        .expect("seeded by the migration");
    assert_eq!(database.name, tessera_core::DATABASE_CONNECTION);
    assert_eq!(database.strategy, "auth0");
    assert_eq!(database.sealed_secret, None);
    let by_name = store
        .find_connection_by_name(tessera_core::DATABASE_CONNECTION)
        .await
        .unwrap();
    assert_eq!(by_name.as_ref(), Some(&database));
}

async fn connections_are_saved_listed_and_changed(store: &Store) {
    store
        .create_connection(&connection("con_b", "acme", "oidc"), &[])
        .await
        .unwrap();
    store
        .create_connection(&connection("con_c", "github", "github"), &[])
        .await
        .unwrap();
    let clash = store
        .create_connection(&connection("con_d", "acme", "oauth2"), &[])
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");

    let everything = store
        .list_connections(
            &ConnectionFilter::default(),
            Slice {
                offset: 0,
                limit: 10,
                count: true,
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = everything.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["con_TesseraDatabase1", "con_b", "con_c"]);
    assert_eq!(everything.total, Some(3));

    let social = ConnectionFilter {
        strategies: vec!["github".into(), "oauth2".into()],
        name: None,
    };
    let page = store.connections_from(&social, ALL).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].name, "github");
    let named = ConnectionFilter {
        strategies: vec![],
        name: Some("acme".into()),
    };
    let first = store
        .connections_from(
            &named,
            Checkpoint {
                from: None,
                take: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items[0].options["client_id"], "client-of-acme");
    assert_eq!(first.next, None);
    let two = store
        .connections_from(
            &ConnectionFilter::default(),
            Checkpoint {
                from: None,
                take: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(two.next.as_deref(), Some("con_c"));

    let changed = store
        .update_connection(
            "con_b",
            &ConnectionUpdate {
                display_name: Some("Acme SSO".into()),
                options: Some(object(json!({"client_id": "new"}))),
                show_as_button: Some(false),
                ..Default::default()
            },
            9,
        )
        .await
        .unwrap();
    assert_eq!(changed.display_name, "Acme SSO");
    assert_eq!(changed.options["client_id"], "new");
    assert_eq!(
        changed.sealed_secret.as_deref(),
        Some(&b"sealed"[..]),
        "kept"
    );
    assert!(!changed.show_as_button);
    assert_eq!((changed.created_at, changed.updated_at), (5, 9));
    assert_eq!(
        store.find_connection("con_b").await.unwrap().as_ref(),
        Some(&changed)
    );
    let missing = store
        .update_connection("con_x", &ConnectionUpdate::default(), 9)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    store.delete_connection("con_b").await.unwrap();
    assert_eq!(store.find_connection("con_b").await.unwrap(), None);
    let again = store.delete_connection("con_b").await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}

async fn enabled_applications_follow_their_application(store: &Store) {
    for id in ["app_1", "app_2", "app_3"] {
        store.create_client(&app(id)).await.unwrap();
    }
    store
        .create_connection(&connection("con_a", "acme", "oidc"), &["app_2".into()])
        .await
        .unwrap();
    store
        .create_connection(&connection("con_g", "github", "github"), &[])
        .await
        .unwrap();
    let unknown = store
        .create_connection(&connection("con_z", "zeta", "oidc"), &["app_9".into()])
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(
        store.find_connection("con_z").await.unwrap(),
        None,
        "nothing kept"
    );

    store
        .set_connection_clients(
            "con_a",
            &[
                ("app_1".into(), true),
                ("app_2".into(), false),
                ("app_3".into(), true),
            ],
        )
        .await
        .unwrap();
    let page = store.connection_clients_from("con_a", ALL).await.unwrap();
    assert_eq!(page.items, ["app_1", "app_3"]);
    let first = store
        .connection_clients_from(
            "con_a",
            Checkpoint {
                from: None,
                take: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (first.items.as_slice(), first.next.as_deref()),
        (&["app_1".to_string()][..], Some("app_3"))
    );
    let rest = store
        .connection_clients_from(
            "con_a",
            Checkpoint {
                from: Some("app_3"),
                take: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, ["app_3"]);

    let refused = store
        .set_connection_clients("con_a", &[("app_1".into(), false), ("app_9".into(), true)])
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    assert_eq!(
        store
            .connection_clients_from("con_a", ALL)
            .await
            .unwrap()
            .items,
        ["app_1", "app_3"],
        "all or nothing"
    );
    let no_connection = store.set_connection_clients("con_x", &[]).await;
    assert!(matches!(no_connection, Err(StoreError::NotFound(_))));

    store
        .update_connection(
            "con_g",
            &ConnectionUpdate {
                enabled_clients: Some(vec!["app_1".into()]),
                ..Default::default()
            },
            7,
        )
        .await
        .unwrap();
    let names: Vec<String> = store
        .connections_of_client("app_1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    // A new application is enabled for the default database connection too.
    assert_eq!(names, [DATABASE_CONNECTION, "acme", "github"]);

    store.delete_client("app_1").await.unwrap();
    assert_eq!(
        store
            .connection_clients_from("con_a", ALL)
            .await
            .unwrap()
            .items,
        ["app_3"]
    );
    assert!(
        store
            .connections_of_client("app_1")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_connection_with_users_is_not_deleted(store: &Store) {
    store
        .create_user(
            &NewUser {
                email: "kept@x.io".into(),
                password_hash: "h".into(),
                ..Default::default()
            },
            "auth0|kept",
            1,
        )
        .await
        .unwrap();
    let refused = store
        .delete_connection(tessera_core::DATABASE_CONNECTION_ID)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert!(
        store
            .find_connection(tessera_core::DATABASE_CONNECTION_ID)
            .await
            .unwrap()
            .is_some()
    );
    // Nor one whose only account is an identity linked to a user of another connection.
    store
        .create_connection(&connection("con_gh", "gh", "github"), &[])
        .await
        .unwrap();
    let profile = FederatedProfile {
        email: Some("kept@x.io".into()),
        ..Default::default()
    };
    store
        .upsert_federated_user("github|7", "gh", &profile, 2)
        .await
        .unwrap();
    store
        .link_identity("auth0|kept", "github|7", 3)
        .await
        .unwrap();
    let refused = store.delete_connection("con_gh").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    store
        .unlink_identity("auth0|kept", "github|7", 4)
        .await
        .unwrap();
    store.delete_user("github|7", 0).await.unwrap();
    store.delete_connection("con_gh").await.unwrap();
}

async fn database_connections_keep_their_own_users(store: &Store) {
    let mut staff = connection("con_staff", "staff", "auth0");
    staff.options = Map::new();
    staff.sealed_secret = None;
    store.create_connection(&staff, &[]).await.unwrap();
    let new = |email: &str| NewUser {
        email: email.into(),
        password_hash: format!("hash of {email}"),
        ..Default::default()
    };
    // The same address is one user per database connection.
    let default_user = store
        .create_user(&new("Same@x.io"), "auth0|default", 1)
        .await
        .unwrap();
    let staff_user = store
        .create_user_in("staff", &new("same@x.io"), "auth0|staff", 2)
        .await
        .unwrap();
    assert_eq!(default_user.connection, DATABASE_CONNECTION);
    assert_eq!(staff_user.connection, "staff");
    let taken = store
        .create_user_in("staff", &new("SAME@x.io"), "auth0|staff2", 3)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    // Only a database connection that exists takes users: not an upstream, not a name
    // nobody made.
    store
        .create_connection(&connection("con_gh", "gh", "github"), &[])
        .await
        .unwrap();
    for name in ["gh", "nobody"] {
        let refused = store
            .create_user_in(name, &new("x@x.io"), "auth0|x", 4)
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound(_))),
            "{name}: {refused:?}"
        );
    }
    assert!(store.find_user("auth0|x").await.unwrap().is_none());

    // Each connection finds its own user and password; by-email sees both.
    let (found, hash) = store
        .find_user_with_password_in("staff", "same@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, "auth0|staff");
    assert_eq!(hash.as_deref(), Some("hash of same@x.io"));
    assert_eq!(
        store
            .find_user_by_email("same@x.io")
            .await
            .unwrap()
            .map(|u| u.user_id),
        Some("auth0|default".to_string())
    );
    let both: Vec<String> = store
        .users_with_email("SAME@x.io")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(both, ["auth0|default", "auth0|staff"]);

    // An import writes into its connection; an export reads one connection's users.
    let imported = ImportedUser {
        user_id: "auth0|imported".into(),
        email: "same@x.io".into(),
        email_verified: None,
        password_hash: None,
        name: None,
        nickname: None,
        picture: None,
        blocked: false,
        user_metadata: None,
        app_metadata: None,
    };
    let outcomes = store
        .import_users_into("staff", std::slice::from_ref(&imported), false, 5)
        .await
        .unwrap();
    assert_eq!(outcomes, [ImportOutcome::DuplicateEmail]);
    let fresh = ImportedUser {
        email: "fresh@x.io".into(),
        ..imported.clone()
    };
    let outcomes = store
        .import_users_into("staff", &[fresh], false, 5)
        .await
        .unwrap();
    assert_eq!(outcomes, [ImportOutcome::Inserted]);
    let refused = store.import_users_into("gh", &[imported], false, 5).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let of_staff: Vec<String> = store
        .users_after(Some("staff"), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(of_staff, ["auth0|imported", "auth0|staff"]);
    let page = store
        .users_after(Some("staff"), Some("auth0|imported"), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(store.users_after(None, None, 10).await.unwrap().len(), 3);

    // Deleted only once its users are gone.
    let refused = store.delete_connection("con_staff").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    store.delete_user("auth0|staff", 0).await.unwrap();
    store.delete_user("auth0|imported", 0).await.unwrap();
    store.delete_connection("con_staff").await.unwrap();
    let gone = store
        .create_user_in("staff", &new("late@x.io"), "auth0|late", 6)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

async fn a_third_party_application_signs_in_through_domain_connections(store: &Store) {
    let mut partner = app("partner");
    partner.is_first_party = false;
    store.create_client(&app("own")).await.unwrap();
    store.create_client(&partner).await.unwrap();
    let mut domain = connection("con_domain", "domain", "oidc");
    domain.is_domain_connection = true;
    store.create_connection(&domain, &[]).await.unwrap();
    let enabled = vec!["own".to_string(), "partner".to_string()];
    let plain = connection("con_plain", "plain", "oidc");
    store.create_connection(&plain, &enabled).await.unwrap();
    let names = |client: &'static str| async move {
        let connections = store.connections_for_sign_in(client).await.unwrap();
        connections.into_iter().map(|c| c.name).collect::<Vec<_>>()
    };
    // The default database connection starts as a domain connection (migration 0020).
    assert_eq!(names("own").await, [DATABASE_CONNECTION, "plain"]);
    assert_eq!(names("partner").await, [DATABASE_CONNECTION, "domain"]);
    assert!(names("nobody").await.is_empty(), "an unknown application");
    let closed = ConnectionUpdate {
        is_domain_connection: Some(false),
        ..ConnectionUpdate::default()
    };
    let id = tessera_core::DATABASE_CONNECTION_ID;
    store.update_connection(id, &closed, 6).await.unwrap();
    assert_eq!(names("partner").await, ["domain"]);
    assert_eq!(names("own").await, [DATABASE_CONNECTION, "plain"]);
}
