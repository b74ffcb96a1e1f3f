//! Lists over real HTTP: paging and totals from SQL, Auth0's 1000-result cap, checkpoints,
//! the user search syntax and its refusals, and every query parameter Auth0 documents for
//! the lists Tessera serves (applied, or accepted where Tessera has nothing to filter).

use reqwest::Method;
use serde_json::{Value, json};
use tessera_store::NewUser;
use tessera_testkit::{TestServer, spawn};

use super::{ALL_SCOPES, assert_error, call, urlencode};

async fn get(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    call(server, Some(token), Method::GET, path, None).await
}

/// `GET path` must answer 200; its body.
async fn ok(server: &TestServer, token: &str, path: &str) -> Value {
    let (status, body) = get(server, token, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// `GET path` must answer 400 in Auth0's shape with this error code.
async fn refused(server: &TestServer, token: &str, path: &str, code: &str) -> String {
    let (status, body) = get(server, token, path).await;
    assert_eq!(status, 400, "{path}: {body}");
    assert_error(&body, 400, Some(code));
    body["message"].as_str().unwrap().to_string()
}

fn field<'a>(list: &'a Value, name: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[name].as_str().unwrap())
        .collect()
}

/// Users straight into the store (hashing passwords through the API would take
/// seconds): `auth0|lNN`, `Person NN <personNN@lists.example>`, created in order.
async fn seed_users(server: &TestServer, count: i64) {
    for n in 0..count {
        let new = NewUser {
            email: format!("Person{n:02}@Lists.Example"),
            password_hash: "x".into(),
            name: Some(if n % 2 == 0 {
                format!("Jane {n:02}")
            } else {
                format!("JOHN {n:02}")
            }),
            ..NewUser::default()
        };
        server
            .store
            .create_user(&new, &format!("auth0|l{n:02}"), 2_000_000_000 + n)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn users_are_paged_in_sql_with_totals_and_auth0s_1000_cap() {
    let server = spawn().await;
    let token = server.management_token(&["read:users"]).await;
    seed_users(&server, 25).await;
    let everyone = ok(&server, &token, "/users?per_page=100&include_totals=true").await;
    let total = everyone["total"].as_u64().unwrap();
    assert_eq!(everyone["users"].as_array().unwrap().len() as u64, total);
    assert!(total >= 25, "{everyone}");

    // Oldest first: the seeded users were created last, in order.
    let page = ok(
        &server,
        &token,
        "/users?page=2&per_page=5&include_totals=true&fields=user_id",
    )
    .await;
    assert_eq!(page["start"], json!(10));
    assert_eq!(page["limit"], json!(5));
    assert_eq!(page["length"], json!(5));
    assert_eq!(page["total"], json!(total));
    assert_eq!(
        page["users"],
        everyone["users"].as_array().unwrap()[10..15]
            .iter()
            .map(|u| json!({"user_id": u["user_id"]}))
            .collect::<Value>()
    );
    let last = ok(&server, &token, "/users?sort=created_at:-1&per_page=1").await;
    assert_eq!(field(&last, "user_id"), ["auth0|l24"]);

    // The 1000th result is the last one served by page; beyond, a 400 as Auth0 answers.
    assert_eq!(
        ok(&server, &token, "/users?page=19&per_page=50").await,
        json!([])
    );
    assert_eq!(
        ok(&server, &token, "/users?page=9&per_page=100").await,
        json!([])
    );
    for past in [
        "page=20&per_page=50",
        "page=10&per_page=100",
        "page=1000000&per_page=1",
    ] {
        let message = refused(&server, &token, &format!("/users?{past}"), "invalid_paging").await;
        assert!(message.contains("first 1000 records"), "{message}");
    }
    for bad in [
        "per_page=101",
        "per_page=-1",
        "page=-1",
        "page=1.5",
        "page=99999999999999999999999",
        "include_totals=yes",
        "primary_order=maybe",
    ] {
        refused(
            &server,
            &token,
            &format!("/users?{bad}"),
            "invalid_query_string",
        )
        .await;
    }
}

#[tokio::test]
async fn users_are_searched_with_auth0s_v3_syntax() {
    let server = spawn().await;
    let token = server.management_token(&["read:users"]).await;
    seed_users(&server, 12).await;
    let search = |q: &str| format!("/users?search_engine=v3&q={}", urlencode(q));

    // Exact email, quoted or not, in any case.
    let found = ok(
        &server,
        &token,
        &search(r#"email:"PERSON03@lists.example""#),
    )
    .await;
    assert_eq!(field(&found, "user_id"), ["auth0|l03"]);
    let found = ok(&server, &token, &search("email:person03@lists.example")).await;
    assert_eq!(field(&found, "user_id"), ["auth0|l03"]);
    // Prefixes, in the searched column's order, with totals.
    let found = ok(
        &server,
        &token,
        &format!("{}&include_totals=true", search("email:person1*")),
    )
    .await;
    assert_eq!(
        field(&found["users"], "user_id"),
        ["auth0|l10", "auth0|l11"]
    );
    assert_eq!(found["total"], json!(2));
    let found = ok(&server, &token, &search("name:john*")).await;
    assert_eq!(found.as_array().unwrap().len(), 6);
    assert!(field(&found, "name").iter().all(|n| n.starts_with("JOHN")));
    let found = ok(&server, &token, &search(r#"name:"jane 04""#)).await;
    assert_eq!(field(&found, "user_id"), ["auth0|l04"]);
    // user_id is case-sensitive; terms join with AND; identities.connection is exact.
    assert_eq!(
        ok(&server, &token, &search("user_id:AUTH0|l*")).await,
        json!([])
    );
    let found = ok(
        &server,
        &token,
        &search(
            "user_id:auth0|l0* AND name:jane* AND \
             identities.connection:\"Username-Password-Authentication\"",
        ),
    )
    .await;
    assert_eq!(
        field(&found, "user_id"),
        [
            "auth0|l00",
            "auth0|l02",
            "auth0|l04",
            "auth0|l06",
            "auth0|l08"
        ]
    );
    let found = ok(
        &server,
        &token,
        &format!("{}&sort=email:-1&per_page=2", search("email:person*")),
    )
    .await;
    assert_eq!(field(&found, "user_id"), ["auth0|l11", "auth0|l10"]);
    // The v1 `connection` parameter filters the same way.
    let none = ok(
        &server,
        &token,
        &format!("{}&connection=other", search("email:person*")),
    )
    .await;
    assert_eq!(none, json!([]));
    // `primary_order=false` lets Auth0 skip ordering; Tessera always orders.
    ok(&server, &token, "/users?primary_order=false").await;

    // What Tessera cannot answer from an index: a 400 naming what it supports.
    for q in [
        "jane",
        "email:a OR email:b",
        "NOT email:a",
        "(email:a)",
        "name:*ohn",
        "name:j?hn",
        "logins_count:[1 TO 5]",
        "app_metadata.plan:\"gold\"",
        "email:\"open",
    ] {
        let message = refused(&server, &token, &search(q), "invalid_query_string").await;
        assert!(
            message.contains("Tessera's user search supports"),
            "{q}: {message}"
        );
        assert!(message.ends_with("on property q."), "{message}");
    }
    for sort in ["logins_count:1", "email:up", "email"] {
        refused(
            &server,
            &token,
            &format!("/users?sort={sort}"),
            "invalid_query_string",
        )
        .await;
    }
    for engine in ["v1", "v2"] {
        let message = refused(
            &server,
            &token,
            &format!("/users?search_engine={engine}&q=email:a*"),
            "operation_not_supported",
        )
        .await;
        assert!(message.contains("search_engine=v3"), "{message}");
    }
    refused(
        &server,
        &token,
        "/users?search_engine=v4",
        "invalid_query_string",
    )
    .await;
}

#[tokio::test]
async fn every_documented_parameter_of_the_configuration_lists_is_accepted() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    let mut ids = Vec::new();
    for (name, app_type) in [("Lists SPA", "spa"), ("Lists M2M", "non_interactive")] {
        let (status, created) = call(
            &server,
            t,
            Method::POST,
            "/clients",
            Some(json!({"name": name, "app_type": app_type})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["client_id"].as_str().unwrap().to_string());
    }

    // Clients: what a0deploy and the SDKs send.
    let listed = ok(
        &server,
        &token,
        &format!(
            "/clients?is_global=false&is_first_party=true&app_type=spa,non_interactive&\
             client_ids={},{}&fields=client_id,name&include_fields=true",
            ids[0], ids[1]
        ),
    )
    .await;
    // Created in the same second: in client_id order.
    let mut names = field(&listed, "name");
    names.sort();
    assert_eq!(names, ["Lists M2M", "Lists SPA"]);
    let spa = ok(
        &server,
        &token,
        &format!("/clients?app_type=spa&client_ids={}", ids.join(",")),
    )
    .await;
    assert_eq!(field(&spa, "name"), ["Lists SPA"]);
    // The global client alone (`tenant_wide.rs` tests it); no organizations.
    assert_eq!(
        field(
            &ok(&server, &token, "/clients?is_global=true").await,
            "name"
        ),
        ["All Applications"]
    );
    let cimd = urlencode("https://app.example/client.json");
    let none = ok(
        &server,
        &token,
        &format!("/clients?external_client_id={cimd}"),
    )
    .await;
    assert_eq!(none, json!([]));
    let page = ok(
        &server,
        &token,
        "/clients?is_global=true&include_totals=true&page=1",
    )
    .await;
    assert_eq!(
        (page["total"].clone(), page["clients"].clone()),
        (json!(1), json!([]))
    );
    for q in [
        "client_grant.allow_any_organization:true",
        "client_grant.organization_id:org_123",
    ] {
        let found = ok(
            &server,
            &token,
            &format!("/clients?q={}&take=10", urlencode(q)),
        )
        .await;
        assert_eq!(found, json!([]), "{q}");
    }
    refused(&server, &token, "/clients?q=name:x", "invalid_query_string").await;
    // Checkpoints over every client, in client_id order, with `next` until the end.
    let mut seen: Vec<String> = Vec::new();
    let mut from = String::new();
    for _ in 0..20 {
        let page = ok(
            &server,
            &token,
            &format!("/clients?take=1&include_totals=true&from={from}&fields=client_id"),
        )
        .await;
        seen.extend(
            field(&page["clients"], "client_id")
                .into_iter()
                .map(str::to_string),
        );
        match page["next"].as_str() {
            Some(next) => from = next.to_string(),
            None => break,
        }
    }
    let mut expected = field(&ok(&server, &token, "/clients").await, "client_id")
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    expected.sort();
    assert_eq!(seen, expected);

    // Resource servers: `identifiers`, repeated (at most 10), and fields.
    let api = tessera_testkit::API;
    let management = format!("{}api/v2/", server.issuer);
    let found = ok(
        &server,
        &token,
        &format!(
            "/resource-servers?identifiers={}&identifiers={}&identifiers=https%3A%2F%2Fnone&\
             include_totals=true&fields=identifier&include_fields=true",
            urlencode(api),
            urlencode(&management)
        ),
    )
    .await;
    assert_eq!(found["total"], json!(2));
    for item in found["resource_servers"].as_array().unwrap() {
        assert_eq!(item.as_object().unwrap().len(), 1, "{item}");
    }
    let eleven: String = (0..11)
        .map(|n| format!("identifiers=https%3A%2F%2F{n}&"))
        .collect();
    refused(
        &server,
        &token,
        &format!("/resource-servers?{eleven}"),
        "invalid_query_string",
    )
    .await;
    refused(
        &server,
        &token,
        "/resource-servers?page=1&page=2",
        "invalid_query_string",
    )
    .await;

    // Client grants: the filters Auth0 documents; organizations and user grants are none.
    let grants = ok(
        &server,
        &token,
        &format!(
            "/client-grants?audience={}&client_id={}&allow_any_organization=false&subject_type=client",
            urlencode(api),
            server.m2m_client_id
        ),
    )
    .await;
    assert_eq!(field(&grants, "client_id"), [server.m2m_client_id.as_str()]);
    for none in [
        "allow_any_organization=true",
        "subject_type=user",
        "default_for=third_party_clients",
        "allow_any_organization=true&take=5",
    ] {
        assert_eq!(
            ok(&server, &token, &format!("/client-grants?{none}")).await,
            json!([]),
            "{none}"
        );
    }
    for bad in [
        "subject_type=robot",
        "default_for=everyone",
        "allow_any_organization=1",
        "organization_id=x",
    ] {
        refused(
            &server,
            &token,
            &format!("/client-grants?{bad}"),
            "invalid_query_string",
        )
        .await;
    }

    // Roles: a0deploy sends `type`; Tessera's roles are tenant roles.
    let (status, _) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(json!({"name": "Lists_Reader"})),
    )
    .await;
    assert_eq!(status, 200);
    let roles = ok(
        &server,
        &token,
        "/roles?type=tenant&name_filter=lists_r&include_totals=true",
    )
    .await;
    assert_eq!(field(&roles["roles"], "name"), ["Lists_Reader"]);
    assert_eq!(roles["total"], json!(1));
    assert_eq!(
        ok(&server, &token, "/roles?name_filter=_%25").await,
        json!([])
    );
    assert_eq!(
        ok(&server, &token, "/roles?type=organization").await,
        json!([])
    );
    assert_eq!(
        ok(&server, &token, "/roles?type=tenant&owner_id=org_1").await,
        json!([])
    );
    refused(&server, &token, "/roles?type=team", "invalid_query_string").await;

    // A control character (PostgreSQL refuses NUL in text) never reaches the store.
    for path in [
        "/roles?name_filter=a%00b",
        "/client-grants?audience=%07",
        "/users?q=email:%00*",
    ] {
        refused(&server, &token, path, "invalid_query_string").await;
    }
}

#[tokio::test]
async fn a_roles_members_page_to_1000_then_by_checkpoint_and_permissions_page() {
    let server = spawn().await;
    let token = server.management_token(ALL_SCOPES).await;
    let t = Some(token.as_str());
    seed_users(&server, 7).await;
    let (status, role) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(json!({"name": "members"})),
    )
    .await;
    assert_eq!(status, 200);
    let id = role["id"].as_str().unwrap();
    let members: Vec<String> = (0..7).rev().map(|n| format!("auth0|l{n:02}")).collect();
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &format!("/roles/{id}/users"),
        Some(json!({ "users": members })),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let page = ok(
        &server,
        &token,
        &format!("/roles/{id}/users?page=1&per_page=3&include_totals=true"),
    )
    .await;
    assert_eq!(
        field(&page["users"], "user_id"),
        ["auth0|l03", "auth0|l04", "auth0|l05"]
    );
    assert_eq!(page["total"], json!(7));
    refused(
        &server,
        &token,
        &format!("/roles/{id}/users?page=10&per_page=100"),
        "invalid_paging",
    )
    .await;
    let mut seen = Vec::new();
    let mut from = String::new();
    for _ in 0..10 {
        let page = ok(
            &server,
            &token,
            &format!(
                "/roles/{id}/users?take=3&include_totals=true&from={}",
                urlencode(&from)
            ),
        )
        .await;
        seen.extend(
            field(&page["users"], "user_id")
                .into_iter()
                .map(str::to_string),
        );
        match page["next"].as_str() {
            Some(next) => from = next.to_string(),
            None => break,
        }
    }
    let mut sorted = members.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    refused(
        &server,
        &token,
        &format!("/roles/{id}/users?take=0"),
        "invalid_query_string",
    )
    .await;
    refused(
        &server,
        &token,
        &format!("/roles/{id}/users?take=101"),
        "invalid_query_string",
    )
    .await;

    // Permissions and a user's roles page too, named by their API.
    let api = tessera_testkit::API;
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &format!("/roles/{id}/permissions"),
        Some(json!({"permissions": [
            {"resource_server_identifier": api, "permission_name": "read:messages"},
            {"resource_server_identifier": api, "permission_name": "write:messages"},
        ]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let page = ok(
        &server,
        &token,
        &format!("/roles/{id}/permissions?per_page=1&page=1&include_totals=true"),
    )
    .await;
    assert_eq!(page["total"], json!(2));
    assert_eq!(
        page["permissions"][0]["permission_name"],
        json!("write:messages")
    );
    assert!(
        page["permissions"][0]["resource_server_name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{page}"
    );
    let user = urlencode("auth0|l00");
    let page = ok(
        &server,
        &token,
        &format!("/users/{user}/permissions?per_page=1&include_totals=true"),
    )
    .await;
    assert_eq!(page["total"], json!(2));
    assert_eq!(
        page["permissions"][0]["permission_name"],
        json!("read:messages")
    );
    let page = ok(
        &server,
        &token,
        &format!("/users/{user}/roles?include_totals=true"),
    )
    .await;
    assert_eq!(field(&page["roles"], "name"), ["members"]);
    assert_eq!(page["total"], json!(1));
}
