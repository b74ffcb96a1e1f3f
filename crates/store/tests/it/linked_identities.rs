//! Linked identities (account linking), on both backends: linking moves the secondary
//! account into its primary, a sign-in through it finds the primary, unlinking gives the
//! account back.

use tessera_core::DATABASE_CONNECTION;
use tessera_store::*;

on_both_backends!(
    linking_moves_the_account_and_unlinking_gives_it_back,
    a_sign_in_through_a_linked_identity_finds_its_primary,
    what_cannot_be_linked_is_refused_and_changes_nothing,
    a_page_of_users_reads_its_identities_at_once,
);

async fn database_user(store: &Store, id: &str, email: &str) {
    let new = NewUser {
        email: email.into(),
        password_hash: "h".into(),
        email_verified: true,
        ..Default::default()
    };
    store.create_user(&new, id, 1).await.unwrap();
}

async fn github_user(store: &Store, id: &str, email: &str, name: &str) {
    let profile = FederatedProfile {
        email: Some(email.into()),
        email_verified: false,
        name: Some(name.into()),
        nickname: None,
        picture: Some("https://avatars.example/1".into()),
    };
    store
        .upsert_federated_user(id, "github", &profile, 2)
        .await
        .unwrap();
}

async fn linking_moves_the_account_and_unlinking_gives_it_back(store: &Store) {
    database_user(store, "auth0|ada", "ada@example.com").await;
    github_user(store, "github|42", "Ada@Example.com", "Ada L.").await;
    let role = tessera_core::Role {
        id: "rol_1".into(),
        name: "reader".into(),
        description: String::new(),
        created_at: 1,
        updated_at: 1,
    };
    store.create_role(&role).await.unwrap();
    store.assign_user_role("github|42", "rol_1").await.unwrap();

    store
        .link_identity("auth0|ada", "github|42", 7)
        .await
        .unwrap();
    assert!(
        store.find_user("github|42").await.unwrap().is_none(),
        "the account went"
    );
    assert!(store.find_user("auth0|ada").await.unwrap().is_some());
    let linked = store.linked_identities("auth0|ada").await.unwrap();
    assert_eq!(linked.len(), 1);
    let identity = &linked[0];
    assert_eq!(identity.user_id, "github|42");
    assert_eq!(identity.primary_user_id, "auth0|ada");
    assert_eq!(identity.connection, "github");
    assert_eq!(identity.linked_at, 7);
    assert_eq!(
        identity.profile.email.as_deref(),
        Some("ada@example.com"),
        "normalized when stored"
    );
    assert_eq!(identity.profile.name, "Ada L.");
    assert!(!identity.profile.email_verified, "as the upstream said");

    store
        .unlink_identity("auth0|ada", "github|42", 9)
        .await
        .unwrap();
    assert!(
        store
            .linked_identities("auth0|ada")
            .await
            .unwrap()
            .is_empty()
    );
    let back = store
        .find_user("github|42")
        .await
        .unwrap()
        .expect("a user again");
    assert_eq!(back.connection, "github");
    assert_eq!(back.name, "Ada L.");
    assert_eq!(back.created_at, 9, "a new account");
    assert!(!back.email_verified);
    assert!(
        store.user_roles("github|42").await.unwrap().is_empty(),
        "what the account held went with it at linking"
    );
    assert!(matches!(
        store.unlink_identity("auth0|ada", "github|42", 9).await,
        Err(StoreError::NotFound("identity"))
    ));
}

async fn a_sign_in_through_a_linked_identity_finds_its_primary(store: &Store) {
    database_user(store, "auth0|ada", "ada@example.com").await;
    github_user(store, "github|42", "ada@example.com", "Ada L.").await;
    let newer = FederatedProfile {
        email: Some("ada@analytical.example".into()),
        email_verified: true,
        name: Some("Ada Lovelace".into()),
        nickname: None,
        picture: None,
    };
    assert_eq!(
        store.sign_in_linked("github|42", &newer).await.unwrap(),
        None
    );
    store
        .link_identity("auth0|ada", "github|42", 7)
        .await
        .unwrap();
    assert_eq!(
        store.sign_in_linked("github|42", &newer).await.unwrap(),
        Some("auth0|ada".to_owned())
    );
    let identity = &store.linked_identities("auth0|ada").await.unwrap()[0];
    assert_eq!(
        identity.profile.email.as_deref(),
        Some("ada@analytical.example")
    );
    assert_eq!(identity.profile.name, "Ada Lovelace");
    assert!(identity.profile.email_verified);
    let primary = store.find_user("auth0|ada").await.unwrap().unwrap();
    assert_eq!(
        primary.email.as_deref(),
        Some("ada@example.com"),
        "the primary's profile is its own"
    );
    assert_eq!(primary.connection, DATABASE_CONNECTION);
}

async fn what_cannot_be_linked_is_refused_and_changes_nothing(store: &Store) {
    database_user(store, "auth0|ada", "ada@example.com").await;
    github_user(store, "github|42", "ada@example.com", "Ada").await;
    github_user(store, "github|43", "bob@example.com", "Bob").await;
    for (primary, secondary) in [
        ("auth0|ada", "github|nobody"),
        ("auth0|nobody", "github|42"),
        ("auth0|ada", "auth0|ada"),
    ] {
        assert!(
            matches!(
                store.link_identity(primary, secondary, 7).await,
                Err(StoreError::NotFound("user"))
            ),
            "{primary} ← {secondary}"
        );
    }
    // A secondary that has identities of its own would lose them with its row.
    store
        .link_identity("github|43", "github|42", 7)
        .await
        .unwrap();
    assert!(matches!(
        store.link_identity("auth0|ada", "github|43", 8).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.find_user("github|43").await.unwrap().is_some());
    assert_eq!(store.linked_identities("github|43").await.unwrap().len(), 1);
    assert!(
        store
            .linked_identities("auth0|ada")
            .await
            .unwrap()
            .is_empty()
    );

    // At most MAX_LINKED_IDENTITIES per user.
    for n in 0..MAX_LINKED_IDENTITIES {
        let id = format!("github|{}", 100 + n);
        github_user(store, &id, &format!("u{n}@example.com"), "U").await;
        store.link_identity("auth0|ada", &id, 9).await.unwrap();
    }
    github_user(store, "github|999", "last@example.com", "Last").await;
    assert!(matches!(
        store.link_identity("auth0|ada", "github|999", 9).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.find_user("github|999").await.unwrap().is_some());
    // Deleting a primary takes its identities along.
    store.delete_user("auth0|ada", 0).await.unwrap();
    assert!(
        store
            .linked_identities("auth0|ada")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .sign_in_linked("github|100", &FederatedProfile::default())
            .await
            .unwrap(),
        None
    );
}

async fn a_page_of_users_reads_its_identities_at_once(store: &Store) {
    database_user(store, "auth0|a", "a@example.com").await;
    database_user(store, "auth0|b", "b@example.com").await;
    database_user(store, "auth0|c", "c@example.com").await;
    for (primary, secondary) in [
        ("auth0|a", "github|2"),
        ("auth0|a", "github|1"),
        ("auth0|c", "github|3"),
    ] {
        github_user(store, secondary, &format!("{secondary}@example.com"), "G").await;
        store.link_identity(primary, secondary, 5).await.unwrap();
    }
    let page = store
        .linked_identities_of(&["auth0|c", "auth0|b", "auth0|a"])
        .await
        .unwrap();
    let pairs: Vec<_> = page
        .iter()
        .map(|i| (i.primary_user_id.as_str(), i.user_id.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("auth0|a", "github|1"),
            ("auth0|a", "github|2"),
            ("auth0|c", "github|3")
        ]
    );
    assert!(store.linked_identities_of(&[]).await.unwrap().is_empty());
    let too_many: Vec<String> = (0..501).map(|n| format!("auth0|{n}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    assert!(store.linked_identities_of(&too_many).await.is_err());
}
