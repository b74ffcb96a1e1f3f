//! The lists' queries use an index for their filter and their order, on both backends:
//! the exact SQL the store runs (built by the same functions) is explained, and no plan
//! may read a whole table or sort every matching row. What holds on an empty database
//! holds at a million rows: with SQLite the plan does not depend on the data without
//! `ANALYZE`; PostgreSQL is told to avoid sequential scans and sorts at any cost, so a
//! plan that still has one has no index to use instead.

use tessera_testkit::pg::PgServer;

use super::actions::{
    ACTION_ORDER, ACTION_SELECT, BINDING_ORDER, BINDING_SELECT, VERSION_ORDER, VERSION_SELECT,
};
use super::clients::{
    CLIENT_KEY, CLIENT_ORDER, CLIENT_SELECT, GRANT_KEY, GRANT_ORDER, GRANT_SELECT,
};
use super::connections::{CONNECTION_KEY, CONNECTION_ORDER, CONNECTION_SELECT};
use super::logs::{LOG_SELECT, log_order};
use super::purge::{PURGE_BATCH, SIGNED_IN_BY};
use super::roles::{MEMBER_KEY, MEMBER_ORDER, ROLE_MEMBER_COLUMNS};
use super::rules::{RULE_ORDER, RULE_SELECT};
use super::sessions::{SESSION_DETAILS_KEY, SESSION_DETAILS_SELECT};
use super::tokens::{REFRESH_RECORD_KEY, REFRESH_RECORD_SELECT};
use super::users::{USER_SELECT, user_order};
use super::{Backend, Store, checkpoint_sql, count_sql, page_sql};
use crate::lists::{
    Bind, Checkpoint, ClientFilter, ClientGrantFilter, Match, Slice, Sql, UserField, UserOrder,
    UserSearch, UserSort, UserTerm, bound_query,
};
use crate::records::{ActionFilter, ConnectionFilter, LogSearch, UpstreamLogout};

/// Every list query worth a plan: users by each order and each search, their counts,
/// and the keyed lists that can grow (applications, client grants, a role's members).
/// A query, and what its index must be searched on (beyond `tenant_id`): a column of
/// SQLite's `SEARCH … (…)` and of PostgreSQL's `Index Cond`.
struct Query {
    label: String,
    sql: Sql,
    searched: Option<(&'static str, &'static str)>,
}

fn queries(store: &Store) -> Vec<Query> {
    let slice = Slice {
        offset: 950,
        limit: 50,
        count: true,
    };
    let mut queries = Vec::new();
    let mut user_query = |label: String, search: UserSearch| {
        let filter = store.user_filter(&search);
        let searched = search.terms.first().and_then(|term| match term.field {
            UserField::Email => Some(("email", "email")),
            UserField::Name => Some(("<expr>", "lower(name)")),
            UserField::UserId => Some(("user_id", "user_id")),
            UserField::Connection => None,
        });
        queries.push(Query {
            label: format!("users {label}"),
            sql: page_sql(USER_SELECT, &filter, &user_order(search.order()), slice),
            searched,
        });
        queries.push(Query {
            label: format!("users {label} count"),
            sql: count_sql(&filter),
            searched,
        });
    };
    for by in [
        UserOrder::CreatedAt,
        UserOrder::UpdatedAt,
        UserOrder::LastLogin,
        UserOrder::Email,
        UserOrder::Name,
        UserOrder::UserId,
    ] {
        for descending in [false, true] {
            user_query(
                format!("sorted by {by:?} descending {descending}"),
                UserSearch {
                    terms: Vec::new(),
                    sort: Some(UserSort { by, descending }),
                },
            );
        }
    }
    for field in [UserField::Email, UserField::Name, UserField::UserId] {
        for matches in [Match::Exact("jo".into()), Match::Prefix("jo".into())] {
            user_query(
                format!("where {field:?} {matches:?}"),
                UserSearch {
                    terms: vec![UserTerm { field, matches }],
                    sort: None,
                },
            );
        }
    }
    user_query(
        "where connection".into(),
        UserSearch {
            terms: vec![UserTerm {
                field: UserField::Connection,
                matches: Match::Exact("db".into()),
            }],
            sort: None,
        },
    );

    let clients = store.client_filter(&ClientFilter::default());
    queries.push(Query {
        label: "clients".into(),
        sql: page_sql(CLIENT_SELECT, &clients, CLIENT_ORDER, slice),
        searched: None,
    });
    let from = Checkpoint {
        from: Some("x"),
        take: 50,
    };
    queries.push(Query {
        label: "clients from".into(),
        sql: checkpoint_sql(CLIENT_SELECT, clients, CLIENT_KEY, from),
        searched: None,
    });
    for filter in [
        ClientGrantFilter::default(),
        ClientGrantFilter {
            client_id: Some("c"),
            audience: None,
        },
        ClientGrantFilter {
            client_id: None,
            audience: Some("https://a"),
        },
    ] {
        let grants = store.grant_filter(filter);
        let searched = match (filter.client_id, filter.audience) {
            (Some(_), _) => Some(("client_id", "client_id")),
            (None, Some(_)) => Some(("audience", "audience")),
            (None, None) => None,
        };
        queries.push(Query {
            label: format!("client grants {filter:?}"),
            sql: page_sql(GRANT_SELECT, &grants, GRANT_ORDER, slice),
            searched,
        });
        queries.push(Query {
            label: format!("client grants {filter:?} from"),
            sql: checkpoint_sql(GRANT_SELECT, grants, GRANT_KEY, from),
            searched,
        });
    }
    let members = store.role_members("rol_x");
    queries.push(Query {
        label: "role members".into(),
        sql: page_sql(ROLE_MEMBER_COLUMNS, &members, MEMBER_ORDER, slice),
        searched: Some(("role_id", "role_id")),
    });
    queries.push(Query {
        label: "role members count".into(),
        sql: count_sql(&members),
        searched: Some(("role_id", "role_id")),
    });
    queries.push(Query {
        label: "role members from".into(),
        sql: checkpoint_sql(ROLE_MEMBER_COLUMNS, members, MEMBER_KEY, from),
        searched: Some(("role_id", "role_id")),
    });
    queries.push(Query {
        label: "a user's refresh tokens from".into(),
        sql: checkpoint_sql(
            REFRESH_RECORD_SELECT,
            store.user_refresh_families("auth0|x", 1),
            REFRESH_RECORD_KEY,
            from,
        ),
        searched: Some(("user_id", "user_id")),
    });
    queries.push(Query {
        label: "a user's sessions from".into(),
        sql: checkpoint_sql(
            SESSION_DETAILS_SELECT,
            store.user_sessions("auth0|x", (1, 0)),
            SESSION_DETAILS_KEY,
            from,
        ),
        searched: Some(("user_id", "user_id")),
    });
    // Not a list, but read by an id that is not its table's key.
    let mut by_sid = Sql::new(SESSION_DETAILS_SELECT);
    by_sid.push(
        " FROM sessions s WHERE s.tenant_id = ? AND s.sid = ? AND s.expires_at > ? \
         AND s.auth_time > ?",
        [
            Bind::Text("default".into()),
            Bind::Text("x".into()),
            Bind::Int(1),
            Bind::Int(0),
        ],
    );
    queries.push(Query {
        label: "a session by its id".into(),
        sql: by_sid,
        searched: Some(("sid", "sid")),
    });
    // Not a list either: the purge's batch of sessions past a lowered lifetime.
    let mut signed_in_by = Sql::new("SELECT sid FROM sessions WHERE ");
    signed_in_by.push(SIGNED_IN_BY, [Bind::Int(1)]);
    signed_in_by.push(" LIMIT ?", [Bind::Int(PURGE_BATCH)]);
    queries.push(Query {
        label: "sessions signed in by an instant".into(),
        sql: signed_in_by,
        searched: Some(("auth_time", "auth_time")),
    });
    // Not lists: the sessions an upstream provider's logout token names.
    for (label, named, searched) in [
        (
            "sessions of an upstream session",
            UpstreamLogout::Session {
                sid: "up",
                identity: Some("oidc|acme|1"),
            },
            ("upstream_sid", "upstream_sid"),
        ),
        (
            "sessions of an upstream subject",
            UpstreamLogout::User {
                identity: "oidc|acme|1",
            },
            ("user_id", "user_id"),
        ),
    ] {
        let (condition, binds) = store.upstream_sessions("acme", &named);
        let mut sql = Sql::new("SELECT s.sid FROM sessions s WHERE ");
        sql.push(&condition, binds);
        queries.push(Query {
            label: label.into(),
            sql,
            searched: Some(searched),
        });
    }
    for (label, filter, searched) in [
        ("actions", ActionFilter::default(), None),
        (
            "actions of a trigger",
            ActionFilter {
                trigger_id: Some("post-login".into()),
                ..Default::default()
            },
            Some(("trigger_id", "trigger_id")),
        ),
        (
            "deployed actions",
            ActionFilter {
                deployed: Some(true),
                ..Default::default()
            },
            None,
        ),
    ] {
        let filter = store.action_filter(&filter);
        queries.push(Query {
            label: label.into(),
            sql: page_sql(ACTION_SELECT, &filter, ACTION_ORDER, slice),
            searched,
        });
        queries.push(Query {
            label: format!("{label} count"),
            sql: count_sql(&filter),
            searched,
        });
    }
    let versions = store.version_filter("act_x");
    queries.push(Query {
        label: "action versions".into(),
        sql: page_sql(VERSION_SELECT, &versions, VERSION_ORDER, slice),
        searched: Some(("action_id", "action_id")),
    });
    let bindings = store.binding_filter("post-login");
    queries.push(Query {
        label: "trigger bindings".into(),
        sql: page_sql(BINDING_SELECT, &bindings, BINDING_ORDER, slice),
        searched: Some(("trigger_id", "trigger_id")),
    });
    for (label, enabled, searched) in [
        ("rules", None, None),
        ("enabled rules", Some(true), Some(("enabled", "enabled"))),
    ] {
        let filter = store.rule_filter(enabled);
        queries.push(Query {
            label: label.into(),
            sql: page_sql(RULE_SELECT, &filter, RULE_ORDER, slice),
            searched,
        });
    }
    for (label, filter, searched) in [
        ("connections", ConnectionFilter::default(), None),
        (
            "connections of a strategy",
            ConnectionFilter {
                strategies: vec!["oidc".into()],
                name: None,
            },
            Some(("strategy", "strategy")),
        ),
    ] {
        let filter = store.connection_filter(&filter);
        queries.push(Query {
            label: label.into(),
            sql: page_sql(CONNECTION_SELECT, &filter, CONNECTION_ORDER, slice),
            searched,
        });
        queries.push(Query {
            label: format!("{label} from"),
            sql: checkpoint_sql(CONNECTION_SELECT, filter, CONNECTION_KEY, from),
            searched,
        });
    }
    queries.push(Query {
        label: "a connection's applications from".into(),
        sql: checkpoint_sql(
            "SELECT client_id",
            store.enabled_clients_filter("con_x"),
            "client_id",
            from,
        ),
        searched: Some(("connection_id", "connection_id")),
    });
    queries.push(Query {
        label: "the identities linked to a user".into(),
        sql: store.linked_of_sql(&["auth0|1".into()]),
        searched: Some(("primary_user_id", "primary_user_id")),
    });
    // A page's ids: SQLite searches the index per id. PostgreSQL, costing an empty table,
    // may walk the tenant's range of an index instead of 100 descents; with rows and
    // statistics the IN list is the selective condition. Neither reads the table whole.
    let page_of_users: Vec<String> = (0..100).map(|n| format!("auth0|{n}")).collect();
    queries.push(Query {
        label: "the identities linked to a page of users".into(),
        sql: store.linked_of_sql(&page_of_users),
        searched: None,
    });
    for (label, search, searched) in [
        ("logs", LogSearch::default(), None),
        (
            "logs oldest first",
            LogSearch {
                oldest_first: true,
                ..Default::default()
            },
            None,
        ),
        (
            "logs of a type",
            LogSearch {
                log_type: Some("s".into()),
                ..Default::default()
            },
            Some(("type", "type")),
        ),
        (
            "logs of a user",
            LogSearch {
                user_id: Some("auth0|1".into()),
                ..Default::default()
            },
            Some(("user_id", "user_id")),
        ),
        (
            "logs of an application between dates",
            LogSearch {
                client_id: Some("c".into()),
                from_date: Some(1),
                to_date: Some(2),
                ..Default::default()
            },
            Some(("client_id", "client_id")),
        ),
        (
            "logs between dates",
            LogSearch {
                from_date: Some(1),
                to_date: Some(2),
                ..Default::default()
            },
            Some(("logged_at", "logged_at")),
        ),
    ] {
        let filter = store.log_filter(&search);
        queries.push(Query {
            label: label.into(),
            sql: page_sql(LOG_SELECT, &filter, log_order(&search), slice),
            searched,
        });
        queries.push(Query {
            label: format!("{label} count"),
            sql: count_sql(&filter),
            searched,
        });
    }
    queries.push(Query {
        label: "logout notices due".into(),
        sql: store.due_notices_sql(1, &["busy".to_string()]),
        searched: Some(("next_attempt_at", "next_attempt_at")),
    });
    for (label, log_type) in [("logs from", None), ("logs of a type from", Some("s"))] {
        queries.push(Query {
            label: label.into(),
            sql: store.logs_after_sql(Some(42), 50, log_type),
            searched: Some(("log_id", "log_id")),
        });
    }
    queries
}

/// The plan's lines, one string per node.
async fn plan(store: &Store, sql: &Sql) -> Vec<String> {
    use sqlx::Row as _;
    match &store.backend {
        Backend::Sqlite(pool) => {
            let explain = Sql {
                text: format!("EXPLAIN QUERY PLAN {}", sql.text),
                binds: sql.binds.clone(),
            };
            bound_query!(&explain)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect()
        }
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            for knob in ["enable_seqscan", "enable_sort", "enable_bitmapscan"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL {knob} = off")))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            let explain = Sql {
                text: format!("EXPLAIN {}", sql.text),
                binds: sql.binds.clone(),
            };
            bound_query!(&explain)
                .fetch_all(&mut *tx)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>(0))
                .collect()
        }
    }
}

async fn every_list_reads_an_index(store: &Store) {
    let mut failures = Vec::new();
    let pg = matches!(store.backend, Backend::Postgres(_));
    for Query {
        label,
        sql,
        searched,
    } in queries(store)
    {
        let plan = plan(store, &sql).await;
        // The index is searched on the term's column, not merely walked in its order.
        let on_column = searched.is_none_or(|(sqlite, postgres)| {
            plan.iter().any(|line| {
                if pg {
                    line.contains("Index Cond") && line.contains(postgres)
                } else {
                    line.starts_with("SEARCH ")
                        && line
                            .split_once('(')
                            .is_some_and(|(_, c)| c.contains(sqlite))
                }
            })
        });
        let whole = plan.iter().any(|line| {
            // SQLite: `SCAN t` alone reads the table; `SCAN t USING … INDEX` walks an index
            // in order and stops at the LIMIT. A temporary B-tree sorts every match.
            let sqlite_scan = line.starts_with("SCAN ") && !line.contains(" USING ");
            sqlite_scan
                || line.contains("USE TEMP B-TREE")
                || line.contains("Seq Scan")
                || line.contains("Sort")
        });
        if whole || !on_column || plan.is_empty() {
            failures.push(format!("{label}:\n  {}\n  {}", sql.text, plan.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} queries read a whole table or sort every match:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn sqlite_lists_read_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    every_list_reads_an_index(&Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_lists_read_indexes() {
    let server = PgServer::start();
    let store = Store::connect(&server.database()).await.unwrap();
    // Statistics of an empty table leave every index at the same cost, and PostgreSQL
    // picks any; with a few thousand analyzed users it picks as it would at a million.
    let Backend::Postgres(pool) = &store.backend else {
        unreachable!()
    };
    sqlx::query(
        "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, name, \
         nickname, picture, created_at, updated_at) \
         SELECT 'default', 'auth0|' || n, 'db', 'user' || n || '@example.com', TRUE, \
         'Name ' || n, 'n', '', n, n FROM generate_series(1, 5000) AS n",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE users").execute(pool).await.unwrap();
    sqlx::query(
        "INSERT INTO logs (tenant_id, logged_at, type, client_id, user_id, details) \
         SELECT 'default', n, 't' || (n % 40), 'c' || (n % 50), 'auth0|' || (n % 1000), '{}' \
         FROM generate_series(1, 5000) AS n",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE logs").execute(pool).await.unwrap();
    every_list_reads_an_index(&store).await;
}
