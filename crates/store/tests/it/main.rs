//! The store's integration tests through its public API, on SQLite and on a throwaway
//! PostgreSQL server (`tessera_testkit::pg`). One test binary, one module per area.

mod actions;
mod connections;
mod postgres_tls;
mod store;
