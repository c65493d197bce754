//! [`SignInFailureStore`] on the single table: one item per failure and throttle name,
//! `SIGNIN#<hashed name>` / `<time>#<uuid>`, with the table's TTL attribute so DynamoDB forgets
//! it after the window. A check is one strongly consistent query of the name's partition.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shipwatch_service::ports::{SignInFailureStore, StoreError, StoreResult};

use super::AwsStore;
use super::TTL;
use super::codec::*;
use crate::store_support::time_key;

fn failure_pk(name: &str) -> String {
    format!("SIGNIN#{name}")
}

#[async_trait]
impl SignInFailureStore for AwsStore {
    async fn record_sign_in_failure(
        &self,
        names: &[String],
        at: DateTime<Utc>,
        forget_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let operation = "record sign-in failure";
        for name in names {
            // The uuid keeps two failures in the same instant apart.
            let sk = format!("{}#{}", time_key(at), uuid::Uuid::new_v4());
            let mut item = primary_key(failure_pk(name), sk);
            item.insert(ENTITY.to_owned(), s("sign_in_failure"));
            item.insert(TTL.to_owned(), n(forget_at.timestamp().max(0) as u64));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| dynamo_error(operation, e))?;
        }
        Ok(())
    }

    async fn sign_in_failures_since(
        &self,
        name: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>> {
        let operation = "read sign-in failures";
        // Sort keys start with the failure's time, so "after since" is a key condition.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk > :since")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(failure_pk(name)))
            .expression_attribute_values(":since", s(format!("{}#~", time_key(since))))
            .consistent_read(true);
        let items = self.query_all(operation, query).await?;
        items
            .iter()
            .map(|item| {
                let sk = item.get(SK).and_then(|v| v.as_s().ok());
                sk.and_then(|sk| sk.split('#').next())
                    .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
                    .map(|at| at.with_timezone(&Utc))
                    .ok_or_else(|| StoreError::Corrupt(format!("{operation}: bad sort key")))
            })
            .collect()
    }
}
