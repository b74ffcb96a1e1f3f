//! The store's integration tests through its public API, on SQLite and on a throwaway
//! PostgreSQL server (`tessera_testkit::pg`). One test binary, one module per area.

/// `on_both_backends!(a, b)`: tests `sqlite::a`, `postgres::a`, … each calling the `async
/// fn a(&Store)` of the module it is used in with a fresh store of that backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let fresh = crate::store::sqlite().await;
                    assert_eq!(fresh.store.backend_name(), "sqlite");
                    super::$name(&fresh.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let fresh = crate::store::postgres().await;
                    assert_eq!(fresh.store.backend_name(), "postgres");
                    super::$name(&fresh.store).await;
                }
            )*
        }
    };
}

mod actions;
mod authenticators;
mod client_credentials;
mod connections;
mod device_codes;
mod emailless;
mod invalidation;
mod linked_identities;
mod log_streams;
mod logs;
mod mfa_tokens;
mod postgres_tls;
mod pushed_requests;
mod remembered_browsers;
mod store;
mod throttles;
mod upgrades;
mod webauthn;
