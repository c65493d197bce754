//! The embedded store: SQLite (`shipwatch.db`) and owner-only secret files in one data folder, for
//! `shipwatch-local` and self-hosting without AWS.
//!
//! Records are kept as JSON in a `body` column, next to the few columns that lookups, uniqueness
//! and ordering need. SQLite is blocking, so every call runs under `spawn_blocking` on one
//! connection behind a mutex (one writer is all SQLite allows anyway).

mod members;
mod secrets;
mod sign_in_failures;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension as _, Transaction, params};
use shipwatch_service::model::*;
use shipwatch_service::ports::*;

pub use secrets::EmbeddedSecretStore;

use crate::store_support::{
    EventPosition, KeyListPosition, check_next_revision, due_key, due_upper_bound, effective_limit,
    event_position, from_json, key_list_sort_key, search_needle, search_text, time_key, to_json,
};

/// File name of the database inside the data folder.
pub const DATABASE_FILE: &str = "shipwatch.db";

/// Bound parameters per statement: 999 is the lowest default any SQLite build has had.
const MAX_SQL_PARAMETERS: usize = 999;

/// Why the embedded store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot prepare data folder {path}: {source}")]
    DataFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this build knows ({known})")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// Schema steps; `PRAGMA user_version` is how many have been applied. Only ever append.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (team_id, key_id)
) STRICT;
CREATE INDEX api_keys_by_team ON api_keys (team_id, created_key, id);
CREATE INDEX api_keys_by_age ON api_keys (created_key, id);

-- A snapshot belongs to its key: deleting the key deletes it, and a sweep of a key deleted
-- meanwhile cannot leave one behind.
CREATE TABLE snapshots (
    key_record_id TEXT PRIMARY KEY NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
) STRICT;

CREATE TABLE destinations (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    created_key TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX destinations_by_team ON destinations (team_id, created_key, id);

CREATE TABLE workflows (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    created_key TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX workflows_by_team ON workflows (team_id, created_key, id);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    app_id TEXT,
    event_type TEXT NOT NULL,
    time_key TEXT NOT NULL,
    search_text TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX events_history ON events (team_id, time_key DESC, id DESC);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    created_key TEXT NOT NULL,
    -- Set only while pending: when it may be sent (see store_support::due_key).
    due_key TEXT,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX deliveries_by_event ON deliveries (event_id, created_key, id);
CREATE INDEX deliveries_due ON deliveries (due_key) WHERE due_key IS NOT NULL;
"#,
    r#"
CREATE TABLE members (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    created_key TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX members_by_team ON members (team_id, created_key, id);
CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    expires_key TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
"#,
    r#"
-- App Store Connect notification ids already handled (push receiver dedupe), until expires_key.
CREATE TABLE push_notifications (
    webhook TEXT NOT NULL,
    data_id TEXT NOT NULL,
    expires_key TEXT NOT NULL,
    PRIMARY KEY (webhook, data_id)
) STRICT;
CREATE INDEX push_notifications_expiry ON push_notifications (expires_key);
"#,
    r#"
-- Named API tokens members create on /team; looked up by hash on every API request.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    team_id TEXT NOT NULL,
    created_key TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX api_tokens_by_team ON api_tokens (team_id, created_key, id);
"#,
    // 5: failed dashboard sign-ins per hashed throttle name, forgotten after the window.
    r#"
CREATE TABLE sign_in_failures (
    name TEXT NOT NULL,
    at_key TEXT NOT NULL,
    forget_key TEXT NOT NULL
);
CREATE INDEX sign_in_failures_by_name ON sign_in_failures (name, at_key);
CREATE INDEX sign_in_failures_expiry ON sign_in_failures (forget_key);
"#,
];

/// SQLite-backed [`TeamStore`], [`KeyStore`], [`DestinationStore`], [`WorkflowStore`] and
/// [`SweepStore`]. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct EmbeddedStore {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

/// The whole bundle on one data folder: the database and the secret files.
pub fn stores(dir: &Path) -> Result<Stores, EmbeddedError> {
    let store = Arc::new(EmbeddedStore::open(dir)?);
    let secrets = Arc::new(EmbeddedSecretStore::open(dir)?);
    Ok(Stores {
        teams: store.clone(),
        keys: store.clone(),
        secrets,
        destinations: store.clone(),
        workflows: store.clone(),
        sweeps: store.clone(),
        members: store.clone(),
        push: store.clone(),
        sign_in_failures: store,
    })
}

/// Creates `dir` if needed and makes it owner-only (0700), tightening an existing folder.
pub(crate) fn prepare_private_dir(dir: &Path) -> Result<(), EmbeddedError> {
    let failed = |source| EmbeddedError::DataFolder {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    set_mode(dir, 0o700).map_err(failed)
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

impl EmbeddedStore {
    /// Opens (creating if needed) `<dir>/shipwatch.db` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Self, EmbeddedError> {
        prepare_private_dir(dir)?;
        let path = dir.join(DATABASE_FILE);
        let failed = |source| EmbeddedError::Database {
            path: path.clone(),
            source,
        };
        let mut connection = Connection::open(&path).map_err(failed)?;
        // The folder is already private; the file is too, should it ever be copied out.
        set_mode(&path, 0o600).map_err(|source| EmbeddedError::DataFolder {
            path: path.clone(),
            source,
        })?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(failed)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(failed)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(failed)?;
        migrate(&mut connection, &path)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `operation` on the connection off the async runtime.
    async fn run<T, F>(&self, operation: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| StoreError::Unavailable("embedded store lock poisoned".to_owned()))?;
            operation(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("embedded store task failed: {e}")))?
    }
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), EmbeddedError> {
    let failed = |source| EmbeddedError::Database {
        path: path.to_path_buf(),
        source,
    };
    let known = MIGRATIONS.len() as i64;
    let found: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(failed)?;
    if found > known {
        return Err(EmbeddedError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(failed)?;
        transaction.execute_batch(step).map_err(failed)?;
        transaction
            .pragma_update(None, "user_version", index as i64 + 1)
            .map_err(failed)?;
        transaction.commit().map_err(failed)?;
    }
    Ok(())
}

/// SQLite failure as a port error: constraint violations are conflicts, the rest is retryable.
fn sql_error(operation: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |error| match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("{operation}: already exists or refers to nothing"))
        }
        _ => StoreError::Unavailable(format!("{operation}: {error}")),
    }
}

fn decode_rows<T: serde::de::DeserializeOwned>(
    what: &str,
    bodies: Vec<String>,
) -> StoreResult<Vec<T>> {
    bodies.iter().map(|body| from_json(what, body)).collect()
}

fn query_bodies(
    connection: &Connection,
    operation: &str,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare_cached(sql)
        .map_err(sql_error(operation))?;
    let rows = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(sql_error(operation))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(sql_error(operation))
}

fn query_body(
    connection: &Connection,
    operation: &str,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<String>> {
    connection
        .query_row(sql, params, |row| row.get::<_, String>(0))
        .optional()
        .map_err(sql_error(operation))
}

#[async_trait]
impl TeamStore for EmbeddedStore {
    async fn insert_team(&self, team: &Team) -> StoreResult<()> {
        let body = to_json("team", team)?;
        let (id, token_hash) = (team.id.0.clone(), team.token_hash.clone());
        self.run(move |c| {
            c.execute(
                "INSERT INTO teams (id, token_hash, body) VALUES (?1, ?2, ?3)",
                params![id, token_hash, body],
            )
            .map_err(sql_error("insert team"))?;
            Ok(())
        })
        .await
    }

    async fn get_team(&self, id: &TeamId) -> StoreResult<Option<Team>> {
        let id = id.0.clone();
        let body = self
            .run(move |c| query_body(c, "get team", "SELECT body FROM teams WHERE id = ?1", [id]))
            .await?;
        body.map(|b| from_json("team", &b)).transpose()
    }

    async fn find_team_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Team>> {
        let token_hash = token_hash.to_owned();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "find team",
                    "SELECT body FROM teams WHERE token_hash = ?1",
                    [token_hash],
                )
            })
            .await?;
        body.map(|b| from_json("team", &b)).transpose()
    }
}

#[async_trait]
impl KeyStore for EmbeddedStore {
    async fn insert_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let body = to_json("key", key)?;
        let row = (
            key.id.0.clone(),
            key.team_id.0.clone(),
            key.account.identity().to_owned(),
            time_key(key.created_at),
            key.revision as i64,
        );
        self.run(move |c| {
            let inserted = c.execute(
                "INSERT INTO api_keys (id, team_id, key_id, created_key, revision, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.0, row.1, row.2, row.3, row.4, body],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => Err(
                    StoreError::Conflict("the team already has a key with this Key ID".to_owned()),
                ),
                Err(e) => Err(sql_error("insert key")(e)),
            }
        })
        .await
    }

    async fn get_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        let (team, id) = (team.0.clone(), id.0.clone());
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get key",
                    "SELECT body FROM api_keys WHERE id = ?1 AND team_id = ?2",
                    [id, team],
                )
            })
            .await?;
        body.map(|b| from_json("key", &b)).transpose()
    }

    async fn get_key_by_id(&self, id: &KeyRecordId) -> StoreResult<Option<ApiKeyRecord>> {
        let id = id.0.clone();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get key",
                    "SELECT body FROM api_keys WHERE id = ?1",
                    [id],
                )
            })
            .await?;
        body.map(|b| from_json("key", &b)).transpose()
    }

    async fn list_keys(&self, team: &TeamId) -> StoreResult<Vec<ApiKeyRecord>> {
        let team = team.0.clone();
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "list keys",
                    "SELECT body FROM api_keys WHERE team_id = ?1 ORDER BY created_key, id",
                    [team],
                )
            })
            .await?;
        decode_rows("key", bodies)
    }

    async fn list_keys_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ApiKeyRecord>> {
        let after = match cursor {
            Some(cursor) => KeyListPosition::from_cursor(cursor)?.after,
            None => None,
        };
        // Keyset paging on the (created_key, id) index; one row more than asked tells whether
        // another page follows.
        let (created_after, id_after) = match after.as_deref().and_then(|a| a.split_once('#')) {
            Some((created, id)) => (created.to_owned(), id.to_owned()),
            None => (String::new(), String::new()),
        };
        let fetch = i64::try_from(limit.max(1).saturating_add(1)).unwrap_or(i64::MAX);
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "list keys",
                    "SELECT body FROM api_keys WHERE (created_key, id) > (?1, ?2)
                     ORDER BY created_key, id LIMIT ?3",
                    params![created_after, id_after, fetch],
                )
            })
            .await?;
        let mut items: Vec<ApiKeyRecord> = decode_rows("key", bodies)?;
        let more = items.len() > limit.max(1);
        items.truncate(limit.max(1));
        let next_cursor = match items.last() {
            Some(last) if more => Some(
                KeyListPosition {
                    partition: 0,
                    after: Some(key_list_sort_key(last)),
                }
                .to_cursor(),
            ),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn update_key(&self, key: &ApiKeyRecord, expected_revision: u64) -> StoreResult<()> {
        let update = KeyUpdate::new(key, expected_revision)?;
        self.run(move |c| update.apply(c)).await
    }

    async fn update_key_announcing(
        &self,
        key: &ApiKeyRecord,
        expected_revision: u64,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()> {
        let update = KeyUpdate::new(key, expected_revision)?;
        let (events, deliveries) = history_rows(events, deliveries)?;
        self.run(move |c| {
            let transaction = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error("update key"))?;
            update.apply(&transaction)?;
            insert_history(&transaction, &events, &deliveries)?;
            transaction.commit().map_err(sql_error("update key"))
        })
        .await
    }

    async fn delete_key(&self, team: &TeamId, id: &KeyRecordId) -> StoreResult<bool> {
        let (team, id) = (team.0.clone(), id.0.clone());
        // The snapshot goes with it (ON DELETE CASCADE); the Key ID is free again with the row.
        self.run(move |c| {
            let deleted = c
                .execute(
                    "DELETE FROM api_keys WHERE id = ?1 AND team_id = ?2",
                    [id, team],
                )
                .map_err(sql_error("delete key"))?;
            Ok(deleted == 1)
        })
        .await
    }
}

#[async_trait]
impl DestinationStore for EmbeddedStore {
    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()> {
        let body = to_json("destination", destination)?;
        let row = (
            destination.id.0.clone(),
            destination.team_id.0.clone(),
            time_key(destination.created_at),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO destinations (id, team_id, created_key, body) VALUES (?1, ?2, ?3, ?4)",
                params![row.0, row.1, row.2, body],
            )
            .map_err(sql_error("insert destination"))?;
            Ok(())
        })
        .await
    }

    async fn get_destination(
        &self,
        team: &TeamId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        let (team, id) = (team.0.clone(), id.0.clone());
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get destination",
                    "SELECT body FROM destinations WHERE id = ?1 AND team_id = ?2",
                    [id, team],
                )
            })
            .await?;
        body.map(|b| from_json("destination", &b)).transpose()
    }

    async fn list_destinations(&self, team: &TeamId) -> StoreResult<Vec<Destination>> {
        let team = team.0.clone();
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "list destinations",
                    "SELECT body FROM destinations WHERE team_id = ?1 ORDER BY created_key, id",
                    [team],
                )
            })
            .await?;
        decode_rows("destination", bodies)
    }

    async fn delete_destination(&self, team: &TeamId, id: &DestinationId) -> StoreResult<bool> {
        let (team, id) = (team.0.clone(), id.0.clone());
        self.run(move |c| {
            let deleted = c
                .execute(
                    "DELETE FROM destinations WHERE id = ?1 AND team_id = ?2",
                    [id, team],
                )
                .map_err(sql_error("delete destination"))?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn record_destination_outcome(
        &self,
        team: &TeamId,
        id: &DestinationId,
        outcome: &LastOutcome,
    ) -> StoreResult<bool> {
        let (team, id, outcome) = (team.0.clone(), id.0.clone(), outcome.clone());
        self.run(move |c| {
            let operation = "record destination outcome";
            // Read and write in one transaction, so two sends finishing together keep the later.
            let transaction = c.transaction().map_err(sql_error(operation))?;
            let Some(body) = query_body(
                &transaction,
                operation,
                "SELECT body FROM destinations WHERE id = ?1 AND team_id = ?2",
                [id.clone(), team],
            )?
            else {
                return Ok(false);
            };
            let mut destination: Destination = from_json("destination", &body)?;
            if outcome.replaces(destination.last_outcome.as_ref()) {
                destination.last_outcome = Some(outcome);
                let body = to_json("destination", &destination)?;
                transaction
                    .execute(
                        "UPDATE destinations SET body = ?2 WHERE id = ?1",
                        params![id, body],
                    )
                    .map_err(sql_error(operation))?;
            }
            transaction.commit().map_err(sql_error(operation))?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl WorkflowStore for EmbeddedStore {
    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        let body = to_json("workflow", workflow)?;
        let row = (
            workflow.id.0.clone(),
            workflow.team_id.0.clone(),
            time_key(workflow.created_at),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO workflows (id, team_id, created_key, body) VALUES (?1, ?2, ?3, ?4)",
                params![row.0, row.1, row.2, body],
            )
            .map_err(sql_error("insert workflow"))?;
            Ok(())
        })
        .await
    }

    async fn get_workflow(&self, team: &TeamId, id: &WorkflowId) -> StoreResult<Option<Workflow>> {
        let (team, id) = (team.0.clone(), id.0.clone());
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get workflow",
                    "SELECT body FROM workflows WHERE id = ?1 AND team_id = ?2",
                    [id, team],
                )
            })
            .await?;
        body.map(|b| from_json("workflow", &b)).transpose()
    }

    async fn list_workflows(&self, team: &TeamId) -> StoreResult<Vec<Workflow>> {
        let team = team.0.clone();
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "list workflows",
                    "SELECT body FROM workflows WHERE team_id = ?1 ORDER BY created_key, id",
                    [team],
                )
            })
            .await?;
        decode_rows("workflow", bodies)
    }

    async fn delete_workflow(&self, team: &TeamId, id: &WorkflowId) -> StoreResult<bool> {
        let (team, id) = (team.0.clone(), id.0.clone());
        self.run(move |c| {
            let deleted = c
                .execute(
                    "DELETE FROM workflows WHERE id = ?1 AND team_id = ?2",
                    [id, team],
                )
                .map_err(sql_error("delete workflow"))?;
            Ok(deleted == 1)
        })
        .await
    }
}

/// An event or delivery ready to insert: the JSON body and the indexed columns.
struct EventRow {
    id: String,
    team_id: String,
    app_id: Option<String>,
    event_type: String,
    time_key: String,
    search_text: String,
    body: String,
}

struct DeliveryRow {
    id: String,
    event_id: String,
    created_key: String,
    due_key: Option<String>,
    revision: i64,
    body: String,
}

fn event_row(event: &EventRecord) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: event.id.0.clone(),
        team_id: event.team_id.0.clone(),
        app_id: event.app_id.clone(),
        event_type: event.event_type.clone(),
        time_key: time_key(event.time),
        search_text: search_text(event),
        body: to_json("event", event)?,
    })
}

fn delivery_row(delivery: &DeliveryRecord) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: delivery.id.0.clone(),
        event_id: delivery.event_id.0.clone(),
        created_key: time_key(delivery.created_at),
        due_key: due_key(delivery),
        revision: delivery.revision as i64,
        body: to_json("delivery", delivery)?,
    })
}

/// A conditional write of a key row: applied only while its stored revision is `expected`.
struct KeyUpdate {
    id: String,
    team: String,
    key_id: String,
    revision: i64,
    body: String,
    expected: i64,
}

impl KeyUpdate {
    fn new(key: &ApiKeyRecord, expected_revision: u64) -> StoreResult<Self> {
        check_next_revision("key", key.revision, expected_revision)?;
        Ok(Self {
            id: key.id.0.clone(),
            team: key.team_id.0.clone(),
            key_id: key.account.identity().to_owned(),
            revision: key.revision as i64,
            body: to_json("key", key)?,
            expected: expected_revision as i64,
        })
    }

    fn apply(&self, c: &Connection) -> StoreResult<()> {
        let changed = c
            .execute(
                "UPDATE api_keys SET key_id = ?3, revision = ?4, body = ?5
                 WHERE id = ?1 AND team_id = ?2 AND revision = ?6",
                params![
                    self.id,
                    self.team,
                    self.key_id,
                    self.revision,
                    self.body,
                    self.expected
                ],
            )
            .map_err(sql_error("update key"))?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(
                "the key was changed or deleted meanwhile".to_owned(),
            ))
        }
    }
}

fn insert_history(
    transaction: &Transaction<'_>,
    events: &[EventRow],
    deliveries: &[DeliveryRow],
) -> StoreResult<()> {
    let duplicate = |what: &'static str| {
        move |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => {
                StoreError::Conflict(format!("{what} with this id is already stored"))
            }
            _ => sql_error("store history")(e),
        }
    };
    let mut insert_event = transaction
        .prepare_cached(
            "INSERT INTO events (id, team_id, app_id, event_type, time_key, search_text, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql_error("store events"))?;
    for e in events {
        insert_event
            .execute(params![
                e.id,
                e.team_id,
                e.app_id,
                e.event_type,
                e.time_key,
                e.search_text,
                e.body
            ])
            .map_err(duplicate("an event"))?;
    }
    let mut insert_delivery = transaction
        .prepare_cached(
            "INSERT INTO deliveries (id, event_id, created_key, due_key, revision, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(sql_error("store deliveries"))?;
    for d in deliveries {
        insert_delivery
            .execute(params![
                d.id,
                d.event_id,
                d.created_key,
                d.due_key,
                d.revision,
                d.body
            ])
            .map_err(duplicate("a delivery"))?;
    }
    Ok(())
}

fn history_rows(
    events: &[EventRecord],
    deliveries: &[DeliveryRecord],
) -> StoreResult<(Vec<EventRow>, Vec<DeliveryRow>)> {
    let events = events
        .iter()
        .map(event_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let deliveries = deliveries
        .iter()
        .map(delivery_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((events, deliveries))
}

/// One page of a team's history, before deliveries are joined.
fn query_event_page(
    connection: &Connection,
    team: &str,
    query: &EventQuery,
    after: Option<&EventPosition>,
    fetch: usize,
) -> StoreResult<Vec<String>> {
    let mut sql = String::from("SELECT body FROM events WHERE team_id = ?1");
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(team.to_owned())];
    let mut bind = |sql: &mut String, clause: &str, value: Box<dyn rusqlite::ToSql>| {
        values.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", values.len())));
    };
    if let Some(app_id) = &query.app_id {
        bind(&mut sql, " AND app_id = ?", Box::new(app_id.clone()));
    }
    if let Some(event_type) = &query.event_type {
        bind(
            &mut sql,
            " AND event_type = ?",
            Box::new(event_type.clone()),
        );
    }
    if let Some(needle) = search_needle(query.text.as_deref()) {
        bind(&mut sql, " AND instr(search_text, ?) > 0", Box::new(needle));
    }
    if let Some(after) = after {
        bind(
            &mut sql,
            " AND (time_key < ?",
            Box::new(after.time_key.clone()),
        );
        bind(
            &mut sql,
            " OR (time_key = ?",
            Box::new(after.time_key.clone()),
        );
        bind(&mut sql, " AND id < ?))", Box::new(after.event_id.clone()));
    }
    bind(
        &mut sql,
        " ORDER BY time_key DESC, id DESC LIMIT ?",
        Box::new(fetch as i64),
    );
    query_bodies(
        connection,
        "list events",
        &sql,
        rusqlite::params_from_iter(values.iter()),
    )
}

fn deliveries_of(connection: &Connection, event_id: &str) -> StoreResult<Vec<DeliveryRecord>> {
    let bodies = query_bodies(
        connection,
        "list deliveries",
        "SELECT body FROM deliveries WHERE event_id = ?1 ORDER BY created_key, id",
        [event_id],
    )?;
    decode_rows("delivery", bodies)
}

#[async_trait]
impl SweepStore for EmbeddedStore {
    async fn get_snapshot(&self, key: &KeyRecordId) -> StoreResult<Option<StoredSnapshot>> {
        let key = key.0.clone();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get snapshot",
                    "SELECT body FROM snapshots WHERE key_record_id = ?1",
                    [key],
                )
            })
            .await?;
        body.map(|b| from_json("snapshot", &b)).transpose()
    }

    async fn get_snapshots(&self, ids: &[KeyRecordId]) -> StoreResult<Vec<StoredSnapshot>> {
        let keys: Vec<String> = ids.iter().map(|id| id.0.clone()).collect();
        let bodies = self
            .run(move |c| {
                let mut bodies = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(MAX_SQL_PARAMETERS) {
                    let placeholders = vec!["?"; chunk.len()].join(", ");
                    let sql = format!(
                        "SELECT body FROM snapshots WHERE key_record_id IN ({placeholders})"
                    );
                    bodies.extend(query_bodies(
                        c,
                        "get snapshots",
                        &sql,
                        rusqlite::params_from_iter(chunk),
                    )?);
                }
                Ok(bodies)
            })
            .await?;
        decode_rows("snapshot", bodies)
    }

    async fn commit_sweep(&self, commit: &SweepCommit) -> StoreResult<()> {
        check_next_revision("snapshot", commit.snapshot.version, commit.expected_version)?;
        let snapshot_body = to_json("snapshot", &commit.snapshot)?;
        let key = commit.snapshot.key_record_id.0.clone();
        let (version, expected) = (
            commit.snapshot.version as i64,
            commit.expected_version as i64,
        );
        let (events, deliveries) = history_rows(&commit.events, &commit.deliveries)?;
        self.run(move |c| {
            let transaction = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error("commit sweep"))?;
            let stored: i64 = transaction
                .query_row(
                    "SELECT version FROM snapshots WHERE key_record_id = ?1",
                    [&key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_error("commit sweep"))?
                .unwrap_or(0);
            if stored != expected {
                return Err(StoreError::Conflict(format!(
                    "snapshot is at version {stored}, the sweep read {expected}"
                )));
            }
            transaction
                .execute(
                    "INSERT INTO snapshots (key_record_id, version, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key_record_id) DO UPDATE SET version = ?2, body = ?3",
                    params![key, version, snapshot_body],
                )
                .map_err(|e| match e.sqlite_error_code() {
                    Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(
                        "the key of this snapshot was deleted meanwhile".to_owned(),
                    ),
                    _ => sql_error("commit sweep")(e),
                })?;
            insert_history(&transaction, &events, &deliveries)?;
            transaction.commit().map_err(sql_error("commit sweep"))
        })
        .await
    }

    async fn append_events(
        &self,
        events: &[EventRecord],
        deliveries: &[DeliveryRecord],
    ) -> StoreResult<()> {
        let (events, deliveries) = history_rows(events, deliveries)?;
        self.run(move |c| {
            let transaction = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error("append events"))?;
            insert_history(&transaction, &events, &deliveries)?;
            transaction.commit().map_err(sql_error("append events"))
        })
        .await
    }

    async fn list_events(
        &self,
        team: &TeamId,
        query: &EventQuery,
    ) -> StoreResult<Page<EventWithDeliveries>> {
        let limit = effective_limit(query.limit);
        let after = query
            .cursor
            .as_deref()
            .map(EventPosition::from_cursor)
            .transpose()?;
        let (team, query) = (team.0.clone(), query.clone());
        let page = self
            .run(move |c| {
                // One more than asked tells whether another page follows.
                let bodies = query_event_page(c, &team, &query, after.as_ref(), limit + 1)?;
                let mut events: Vec<EventRecord> = decode_rows("event", bodies)?;
                let more = events.len() > limit;
                events.truncate(limit);
                let items = events
                    .into_iter()
                    .map(|event| {
                        let deliveries = deliveries_of(c, &event.id.0)?;
                        Ok(EventWithDeliveries { event, deliveries })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok((items, more))
            })
            .await?;
        let (items, more) = page;
        let next_cursor = match items.last() {
            Some(last) if more => Some(event_position(&last.event).to_cursor()),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<EventRecord>> {
        let id = id.0.clone();
        let body = self
            .run(move |c| {
                query_body(
                    c,
                    "get event",
                    "SELECT body FROM events WHERE id = ?1",
                    [id],
                )
            })
            .await?;
        body.map(|b| from_json("event", &b)).transpose()
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let upper = due_upper_bound(now);
        let bodies = self
            .run(move |c| {
                query_bodies(
                    c,
                    "due deliveries",
                    "SELECT body FROM deliveries WHERE due_key IS NOT NULL AND due_key < ?1
                     ORDER BY due_key LIMIT ?2",
                    params![upper, limit as i64],
                )
            })
            .await?;
        decode_rows("delivery", bodies)
    }

    async fn update_delivery(
        &self,
        delivery: &DeliveryRecord,
        expected_revision: u64,
    ) -> StoreResult<()> {
        check_next_revision("delivery", delivery.revision, expected_revision)?;
        let row = delivery_row(delivery)?;
        let expected = expected_revision as i64;
        self.run(move |c| {
            let changed = c
                .execute(
                    "UPDATE deliveries SET due_key = ?2, revision = ?3, body = ?4
                     WHERE id = ?1 AND event_id = ?5 AND revision = ?6",
                    params![
                        row.id,
                        row.due_key,
                        row.revision,
                        row.body,
                        row.event_id,
                        expected
                    ],
                )
                .map_err(sql_error("update delivery"))?;
            if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict(
                    "the delivery was changed meanwhile".to_owned(),
                ))
            }
        })
        .await
    }
}

#[async_trait]
impl PushStore for EmbeddedStore {
    async fn remember_notification(
        &self,
        webhook: &str,
        data_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (webhook, data_id) = (webhook.to_owned(), data_id.to_owned());
        let (now, expires) = (time_key(now), time_key(expires_at));
        self.run(move |c| {
            let transaction = c.transaction().map_err(sql_error("remember notification"))?;
            // Expired ids are purged as new ones arrive, so the table stays small.
            transaction
                .execute(
                    "DELETE FROM push_notifications WHERE expires_key <= ?1",
                    params![now],
                )
                .map_err(sql_error("remember notification"))?;
            let inserted = transaction
                .execute(
                    "INSERT INTO push_notifications (webhook, data_id, expires_key) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (webhook, data_id) DO NOTHING",
                    params![webhook, data_id, expires],
                )
                .map_err(sql_error("remember notification"))?;
            transaction
                .commit()
                .map_err(sql_error("remember notification"))?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn forget_notification(&self, webhook: &str, data_id: &str) -> StoreResult<()> {
        let (webhook, data_id) = (webhook.to_owned(), data_id.to_owned());
        self.run(move |c| {
            c.execute(
                "DELETE FROM push_notifications WHERE webhook = ?1 AND data_id = ?2",
                params![webhook, data_id],
            )
            .map_err(sql_error("forget notification"))?;
            Ok(())
        })
        .await
    }
}
