//! Actions, their versions and trigger bindings, Rules and rules-configs, on both
//! backends: what the Management API writes and what every login reads back.

use serde_json::json;
use tessera_store::*;

on_both_backends!(
    actions_are_saved_listed_and_renamed_without_clashes,
    deploys_snapshot_the_draft_and_rollback_makes_a_new_version,
    bindings_replace_in_order_and_accept_only_deployed_actions_of_the_trigger,
    a_bound_action_is_deleted_only_by_force,
    rules_run_in_order_and_configs_stay_sealed,
);

fn new_action(id: &str, name: &str, trigger: &str, secrets: &[(&str, &[u8])]) -> NewAction {
    NewAction {
        id: id.into(),
        name: name.into(),
        trigger_id: trigger.into(),
        trigger_version: "v3".into(),
        code: format!("exports.onExecutePostLogin = async () => {{ /* {name} */ }};"),
        dependencies: json!([]),
        runtime: "node22".into(),
        secrets: secrets
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
        now: 10,
    }
}

fn counter() -> impl FnMut() -> String + Send {
    let mut n = 0;
    move || {
        n += 1;
        format!("bnd_{n}")
    }
}

async fn actions_are_saved_listed_and_renamed_without_clashes(store: &Store) {
    store
        .create_action(&new_action(
            "act_a",
            "a",
            "post-login",
            &[("K", b"sealed-k")],
        ))
        .await
        .unwrap();
    store
        .create_action(&new_action("act_b", "b", "credentials-exchange", &[]))
        .await
        .unwrap();
    let clash = store
        .create_action(&new_action("act_c", "a", "post-login", &[]))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");

    let a = store.find_action("act_a").await.unwrap().unwrap();
    assert_eq!(
        a.secrets,
        vec![SecretInfo {
            name: "K".into(),
            updated_at: 10
        }]
    );
    assert!(a.deployed_version.is_none());
    assert_eq!(
        store.find_action_by_name("b").await.unwrap().unwrap().id,
        "act_b"
    );
    assert!(store.find_action("act_zz").await.unwrap().is_none());

    let all = store
        .list_actions(
            &ActionFilter::default(),
            Slice {
                offset: 0,
                limit: 1,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!((all.items.len(), all.total), (1, Some(2)));
    let post_login = store
        .list_actions(
            &ActionFilter {
                trigger_id: Some("post-login".into()),
                ..Default::default()
            },
            Slice::first(10),
        )
        .await
        .unwrap();
    assert_eq!(
        post_login
            .items
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["act_a"]
    );

    // Renaming onto another's name is refused and changes nothing.
    let renamed = store
        .update_action(
            "act_b",
            &ActionUpdate {
                name: Some("a".into()),
                ..Default::default()
            },
            11,
        )
        .await;
    assert!(
        matches!(renamed, Err(StoreError::Conflict(_))),
        "{renamed:?}"
    );
    assert_eq!(store.find_action("act_b").await.unwrap().unwrap().name, "b");

    // Secrets: a name without a value keeps it, names left out go, new ones come.
    let update = ActionUpdate {
        code: Some("exports.onExecutePostLogin = async () => {};".into()),
        secrets: Some(vec![
            ("K".into(), None),
            ("NEW".into(), Some(b"sealed-new".to_vec())),
        ]),
        ..Default::default()
    };
    let a = store.update_action("act_a", &update, 12).await.unwrap();
    let names: Vec<&str> = a.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["K", "NEW"]);
    assert_eq!(a.secrets[0].updated_at, 10, "kept as it was");
    let sealed = store.action_draft_secrets("act_a").await.unwrap();
    assert_eq!(sealed[0], ("K".to_string(), b"sealed-k".to_vec()));
    let a = store
        .update_action(
            "act_a",
            &ActionUpdate {
                secrets: Some(vec![]),
                ..Default::default()
            },
            13,
        )
        .await
        .unwrap();
    assert!(a.secrets.is_empty());
    let missing = store
        .update_action("act_zz", &ActionUpdate::default(), 13)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

async fn deploys_snapshot_the_draft_and_rollback_makes_a_new_version(store: &Store) {
    store
        .create_action(&new_action("act_a", "a", "post-login", &[("K", b"v1")]))
        .await
        .unwrap();
    let v1 = store.deploy_action("act_a", "actv_1", 20).await.unwrap();
    assert_eq!((v1.number, v1.deployed), (1, true));
    let a = store.find_action("act_a").await.unwrap().unwrap();
    assert!(a.all_changes_deployed);
    assert_eq!(a.deployed_version.as_ref().unwrap().id, "actv_1");

    let update = ActionUpdate {
        code: Some("exports.onExecutePostLogin = async () => { /* two */ };".into()),
        secrets: Some(vec![("K".into(), Some(b"v2".to_vec()))]),
        ..Default::default()
    };
    let a = store.update_action("act_a", &update, 21).await.unwrap();
    assert!(!a.all_changes_deployed);
    assert_eq!(
        a.deployed_version.as_ref().unwrap().code,
        v1.code,
        "the deployed code stays"
    );
    store
        .replace_trigger_bindings(
            "post-login",
            &[NewBinding {
                action_id: "act_a".into(),
                display_name: "a".into(),
            }],
            &mut counter(),
            21,
        )
        .await
        .unwrap();
    let program = store.trigger_program("post-login").await.unwrap();
    assert_eq!(program[0].secrets, vec![("K".to_string(), b"v1".to_vec())]);

    let v2 = store.deploy_action("act_a", "actv_2", 22).await.unwrap();
    assert_eq!(v2.number, 2);
    let program = store.trigger_program("post-login").await.unwrap();
    assert!(program[0].code.contains("two"));
    assert_eq!(program[0].secrets, vec![("K".to_string(), b"v2".to_vec())]);

    // Rollback to 1: a version 3 with version 1's code and secrets, the only deployed one.
    let v3 = store
        .redeploy_action_version("act_a", "actv_1", "actv_3", 23)
        .await
        .unwrap();
    assert_eq!((v3.number, v3.code.as_str()), (3, v1.code.as_str()));
    let versions = store
        .list_action_versions(
            "act_a",
            Slice {
                offset: 0,
                limit: 10,
                count: true,
            },
        )
        .await
        .unwrap();
    let shown: Vec<(i64, bool)> = versions
        .items
        .iter()
        .map(|v| (v.number, v.deployed))
        .collect();
    assert_eq!(shown, [(3, true), (2, false), (1, false)]);
    assert_eq!(versions.total, Some(3));
    let program = store.trigger_program("post-login").await.unwrap();
    assert_eq!(program[0].code, v1.code);
    assert_eq!(program[0].secrets, vec![("K".to_string(), b"v1".to_vec())]);
    let a = store.find_action("act_a").await.unwrap().unwrap();
    assert!(!a.all_changes_deployed, "the draft is not what runs");
    assert!(
        store
            .find_action_version("act_a", "actv_2")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_action_version("act_b", "actv_2")
            .await
            .unwrap()
            .is_none()
    );
    let unknown = store
        .redeploy_action_version("act_a", "actv_9", "actv_4", 24)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound("action version"))),
        "{unknown:?}"
    );
}

async fn bindings_replace_in_order_and_accept_only_deployed_actions_of_the_trigger(store: &Store) {
    for (id, trigger) in [
        ("act_a", "post-login"),
        ("act_b", "post-login"),
        ("act_c", "credentials-exchange"),
    ] {
        store
            .create_action(&new_action(id, id, trigger, &[]))
            .await
            .unwrap();
    }
    store
        .create_action(&new_action("act_d", "act_d", "post-login", &[]))
        .await
        .unwrap();
    for id in ["act_a", "act_b", "act_c"] {
        store
            .deploy_action(id, &format!("v_{id}"), 30)
            .await
            .unwrap();
    }
    let mut ids = counter();
    let bind = |ids: &[&str]| -> Vec<NewBinding> {
        ids.iter()
            .map(|id| NewBinding {
                action_id: id.to_string(),
                display_name: format!("shown {id}"),
            })
            .collect()
    };
    store
        .replace_trigger_bindings("post-login", &bind(&["act_b", "act_a"]), &mut ids, 31)
        .await
        .unwrap();
    let program = store.trigger_program("post-login").await.unwrap();
    assert_eq!(
        program
            .iter()
            .map(|p| p.action_id.as_str())
            .collect::<Vec<_>>(),
        ["act_b", "act_a"]
    );
    let listed = store
        .list_trigger_bindings(
            "post-login",
            Slice {
                offset: 0,
                limit: 10,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.total, Some(2));
    assert_eq!(listed.items[0].display_name, "shown act_b");
    let first_id = listed.items[1].id.clone();

    // Undeployed, of another trigger, unknown: refused, and the list is as it was.
    for wrong in [["act_a", "act_d"], ["act_a", "act_c"], ["act_a", "act_zz"]] {
        let refused = store
            .replace_trigger_bindings("post-login", &bind(&wrong), &mut ids, 32)
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound(_))),
            "{wrong:?}: {refused:?}"
        );
    }
    assert_eq!(store.trigger_program("post-login").await.unwrap().len(), 2);

    // A kept action keeps its binding's id; an empty list unbinds everything.
    store
        .replace_trigger_bindings("post-login", &bind(&["act_a"]), &mut ids, 33)
        .await
        .unwrap();
    let listed = store
        .list_trigger_bindings("post-login", Slice::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items[0].id, first_id);
    assert_eq!(
        listed.items[0].action.deployed_version.as_ref().unwrap().id,
        "v_act_a"
    );
    store
        .replace_trigger_bindings("post-login", &[], &mut ids, 34)
        .await
        .unwrap();
    assert!(
        store
            .trigger_program("post-login")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .trigger_program("credentials-exchange")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_bound_action_is_deleted_only_by_force(store: &Store) {
    store
        .create_action(&new_action("act_a", "a", "post-login", &[("K", b"x")]))
        .await
        .unwrap();
    store.deploy_action("act_a", "actv_1", 40).await.unwrap();
    store
        .replace_trigger_bindings(
            "post-login",
            &[NewBinding {
                action_id: "act_a".into(),
                display_name: "a".into(),
            }],
            &mut counter(),
            41,
        )
        .await
        .unwrap();
    let refused = store.delete_action("act_a", false).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert!(store.find_action("act_a").await.unwrap().is_some());
    store.delete_action("act_a", true).await.unwrap();
    assert!(store.find_action("act_a").await.unwrap().is_none());
    assert!(
        store
            .trigger_program("post-login")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .find_action_version("act_a", "actv_1")
            .await
            .unwrap()
            .is_none()
    );
    let again = store.delete_action("act_a", true).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))));
    // The name is free again.
    store
        .create_action(&new_action("act_b", "a", "post-login", &[]))
        .await
        .unwrap();
}

fn rule(id: &str, name: &str, enabled: bool) -> RuleRecord {
    RuleRecord {
        id: id.into(),
        name: name.into(),
        script: "function (user, context, callback) { callback(null, user, context); }".into(),
        order: 0,
        enabled,
        stage: "login_success".into(),
        created_at: 1,
        updated_at: 1,
    }
}

async fn rules_run_in_order_and_configs_stay_sealed(store: &Store) {
    assert_eq!(
        store
            .create_rule(&rule("rul_a", "a", true), None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .create_rule(&rule("rul_b", "b", false), None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .create_rule(&rule("rul_c", "c", true), Some(0))
            .await
            .unwrap(),
        0
    );
    let taken = store.create_rule(&rule("rul_d", "d", true), Some(1)).await;
    assert!(
        matches!(taken, Err(StoreError::Conflict("a rule with this order"))),
        "{taken:?}"
    );
    let named = store.create_rule(&rule("rul_d", "a", true), Some(9)).await;
    assert!(
        matches!(named, Err(StoreError::Conflict("a rule with this name"))),
        "{named:?}"
    );

    let enabled: Vec<String> = store
        .enabled_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(enabled, ["rul_c", "rul_a"]);
    store
        .update_rule(
            "rul_b",
            &RuleUpdate {
                enabled: Some(true),
                order: Some(5),
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    let page = store
        .list_rules(
            Some(true),
            Slice {
                offset: 0,
                limit: 2,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, Some(3));
    assert_eq!(
        page.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rul_c", "rul_a"]
    );
    let clash = store
        .update_rule(
            "rul_b",
            &RuleUpdate {
                order: Some(0),
                ..Default::default()
            },
            3,
        )
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict("a rule with this order"))),
        "{clash:?}"
    );
    store.delete_rule("rul_b").await.unwrap();
    assert!(matches!(
        store.delete_rule("rul_b").await,
        Err(StoreError::NotFound(_))
    ));

    store.set_rules_config("B", b"sealed-b", 1).await.unwrap();
    store.set_rules_config("A", b"sealed-a", 1).await.unwrap();
    store.set_rules_config("A", b"sealed-a2", 2).await.unwrap();
    assert_eq!(store.rules_config_keys().await.unwrap(), ["A", "B"]);
    assert_eq!(
        store.rules_configs_sealed().await.unwrap(),
        vec![
            ("A".to_string(), b"sealed-a2".to_vec()),
            ("B".to_string(), b"sealed-b".to_vec())
        ]
    );
    store.delete_rules_config("A").await.unwrap();
    assert!(matches!(
        store.delete_rules_config("A").await,
        Err(StoreError::NotFound(_))
    ));
}
