//! [`SignInFailureStore`] on SQLite: one row per failure and throttle name; rows past their
//! `forget_key` are deleted as new failures come in, so the table stays small.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use shipwatch_service::ports::{SignInFailureStore, StoreError, StoreResult};

use super::{EmbeddedStore, sql_error};
use crate::store_support::time_key;

#[async_trait]
impl SignInFailureStore for EmbeddedStore {
    async fn record_sign_in_failure(
        &self,
        names: &[String],
        at: DateTime<Utc>,
        forget_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let names = names.to_vec();
        let (at_key, forget_key) = (time_key(at), time_key(forget_at));
        self.run(move |c| {
            let operation = "record sign-in failure";
            let transaction = c.transaction().map_err(sql_error(operation))?;
            transaction
                .execute(
                    "DELETE FROM sign_in_failures WHERE forget_key <= ?1",
                    params![at_key],
                )
                .map_err(sql_error(operation))?;
            for name in &names {
                transaction
                    .execute(
                        "INSERT INTO sign_in_failures (name, at_key, forget_key) VALUES (?1, ?2, ?3)",
                        params![name, at_key, forget_key],
                    )
                    .map_err(sql_error(operation))?;
            }
            transaction.commit().map_err(sql_error(operation))
        })
        .await
    }

    async fn sign_in_failures_since(
        &self,
        name: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>> {
        let (name, since) = (name.to_owned(), time_key(since));
        self.run(move |c| {
            let operation = "read sign-in failures";
            let mut statement = c
                .prepare_cached(
                    "SELECT at_key FROM sign_in_failures WHERE name = ?1 AND at_key > ?2",
                )
                .map_err(sql_error(operation))?;
            let keys = statement
                .query_map(params![name, since], |row| row.get::<_, String>(0))
                .map_err(sql_error(operation))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error(operation))?;
            keys.iter()
                .map(|key| {
                    DateTime::parse_from_rfc3339(key)
                        .map(|at| at.with_timezone(&Utc))
                        .map_err(|_| StoreError::Corrupt(format!("{operation}: bad time {key}")))
                })
                .collect()
        })
        .await
    }
}
