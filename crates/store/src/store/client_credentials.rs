//! Applications' public keys for private_key_jwt (migration 0028), and the `jti` of every
//! client assertion accepted: recorded by an insert that only one of any number of nodes
//! can make, kept until the assertion expires (then purged), so an assertion works once.

use super::Store;
use crate::backend::Fetch;
use crate::records::ClientCredential;
use crate::{StoreError, StoreResult};

/// The most credentials an application has (Auth0's limit).
pub const MAX_CLIENT_CREDENTIALS: i64 = 2;

macro_rules! columns {
    () => {
        "SELECT id, client_id, name, kid, alg, public_key, created_at, updated_at, expires_at \
         FROM client_credentials WHERE tenant_id = $1 AND client_id = $2 "
    };
}

fn credential_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<ClientCredential> {
    Ok(ClientCredential {
        id: row.text("id")?,
        client_id: row.text("client_id")?,
        name: row.text("name")?,
        kid: row.text("kid")?,
        alg: row.text("alg")?,
        public_key: row.col("public_key")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        expires_at: row.col("expires_at")?,
    })
}

impl Store {
    /// Stores a new credential. `Conflict` when the application has
    /// [`MAX_CLIENT_CREDENTIALS`] already; `NotFound` when it does not exist.
    pub async fn add_client_credential(&self, credential: &ClientCredential) -> StoreResult<()> {
        each!(self, |pool| {
            let inserted = sqlx::query(
                "INSERT INTO client_credentials (tenant_id, id, client_id, name, kid, alg, \
                 public_key, created_at, updated_at, expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE (SELECT COUNT(*) \
                 FROM client_credentials WHERE tenant_id = $1 AND client_id = $3) < $11",
            )
            .bind(self.tenant)
            .bind(&credential.id)
            .bind(&credential.client_id)
            .bind(&credential.name)
            .bind(&credential.kid)
            .bind(&credential.alg)
            .bind(&credential.public_key)
            .bind(credential.created_at)
            .bind(credential.updated_at)
            .bind(credential.expires_at)
            .bind(MAX_CLIENT_CREDENTIALS)
            .execute(pool)
            .await
            .map_err(|e| {
                StoreError::from(e)
                    .conflict_is("a credential")
                    .not_found_is("application")
            })?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict("a credential"));
            }
            Ok(())
        })
    }

    /// An application's credentials, oldest first (at most [`MAX_CLIENT_CREDENTIALS`]).
    pub async fn client_credentials_of(
        &self,
        client_id: &str,
    ) -> StoreResult<Vec<ClientCredential>> {
        each!(self, |pool| {
            sqlx::query(concat!(columns!(), "ORDER BY created_at, id LIMIT $3"))
                .bind(self.tenant)
                .bind(client_id)
                .bind(MAX_CLIENT_CREDENTIALS)
                .fetch_all(pool)
                .await?
                .iter()
                .map(credential_from_row)
                .collect()
        })
    }

    /// The application's credential with this id (another application's is not found).
    pub async fn client_credential(
        &self,
        client_id: &str,
        id: &str,
    ) -> StoreResult<Option<ClientCredential>> {
        each!(self, |pool| {
            sqlx::query(concat!(columns!(), "AND id = $3"))
                .bind(self.tenant)
                .bind(client_id)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(credential_from_row)
                .transpose()
        })
    }

    /// Sets when the application's credential stops working (`None`: never).
    pub async fn set_client_credential_expiry(
        &self,
        client_id: &str,
        id: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<ClientCredential> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE client_credentials SET expires_at = $1, updated_at = $2 \
                 WHERE tenant_id = $3 AND client_id = $4 AND id = $5",
            )
            .bind(expires_at)
            .bind(now)
            .bind(self.tenant)
            .bind(client_id)
            .bind(id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("credential"));
            }
            Ok(())
        })?;
        self.client_credential(client_id, id)
            .await?
            .ok_or(StoreError::NotFound("credential"))
    }

    /// Deletes the application's credential. It stops authenticating at once: the
    /// application's list of private_key_jwt credentials names only ids, read against
    /// this table.
    pub async fn delete_client_credential(&self, client_id: &str, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query(
                "DELETE FROM client_credentials WHERE tenant_id = $1 AND client_id = $2 \
                 AND id = $3",
            )
            .bind(self.tenant)
            .bind(client_id)
            .bind(id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("credential"));
            }
            Ok(())
        })
    }

    /// Records that the application used an assertion with this `jti`, valid until
    /// `expires_at`: `false` when it was used already (on any node).
    pub async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<bool> {
        self.take_jti(
            "INSERT INTO client_assertion_jtis (tenant_id, client_id, jti, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            client_id,
            jti,
            expires_at,
        )
        .await
    }
}
