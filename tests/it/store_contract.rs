//! The store contract: one set of checks, run against the embedded store and against the AWS
//! store (DynamoDB + Secrets Manager on moto). Each check gets a fresh bundle (a new data folder,
//! or a new table) and makes its own team ids, so they run in parallel.

use std::collections::HashSet;

use shipwatch_service::domain::event_data::EventData;
use shipwatch_service::model::*;
use shipwatch_service::ports::*;
use shipwatch_tests::store_contract::*;

const BUILD_CHANGED: &str = "shipwatch.build.processing_state_changed";
const VERSION_CHANGED: &str = "shipwatch.app_version.state_changed";

/// Emits `embedded::<check>` and `aws::<check>` tests for every check.
macro_rules! contract {
    ($($check:ident),* $(,)?) => {
        mod embedded {
            use shipwatch_tests::store_contract::TempDir;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let dir = TempDir::new(stringify!($check));
                    let stores = shipwatch_adapters::embedded::stores(dir.path())
                        .unwrap_or_else(|e| panic!("open embedded store: {e}"));
                    super::$check(stores).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let moto = shipwatch_tests::moto::moto().await;
                    let stores = moto.fresh_stores(stringify!($check)).await;
                    super::$check(stores).await;
                }
            )*
        }
    };
}

contract!(
    teams_are_found_by_id_and_token_hash,
    keys_are_listed_and_isolated_by_team,
    every_key_is_listed_once_across_small_pages,
    key_id_is_unique_per_team,
    key_updates_are_conditional_on_revision,
    a_key_update_and_its_announcement_are_stored_together_or_not_at_all,
    deleting_a_key_frees_its_key_id_and_drops_its_snapshot,
    secrets_are_created_replaced_and_deleted,
    destinations_are_isolated_by_team,
    workflows_are_isolated_by_team,
    first_sweep_commit_expects_version_zero,
    stale_sweep_commit_conflicts_and_writes_nothing,
    sweep_commit_needs_its_key,
    big_snapshots_round_trip,
    snapshots_of_many_keys_come_in_one_call,
    snapshots_of_more_keys_than_one_batch_holds,
    history_is_newest_first_with_deliveries,
    history_filters_by_app_type_and_text,
    history_pages_cover_everything_once,
    history_rejects_foreign_cursors,
    large_commits_are_stored_whole,
    due_deliveries_respect_next_attempt_and_lease,
    delivery_updates_are_conditional_on_revision,
    concurrent_sweep_commits_store_one_set_of_events,
    invites_are_used_once_and_members_are_unique_by_email,
    sessions_are_touched_and_deleted,
    api_tokens_are_found_by_hash_listed_by_team_and_revoked,
    a_destinations_last_outcome_is_kept_newest_and_only_while_it_exists,
    push_notifications_are_remembered_once_until_they_expire,
    sign_in_failures_are_counted_per_name_within_the_window,
);

fn ok<T>(what: &str, result: StoreResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn assert_conflict<T: std::fmt::Debug>(what: &str, result: StoreResult<T>) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

fn ids<'a>(events: impl IntoIterator<Item = &'a EventWithDeliveries>) -> Vec<EventId> {
    events.into_iter().map(|e| e.event.id.clone()).collect()
}

async fn all_events(stores: &Stores, team: &TeamId) -> Vec<EventWithDeliveries> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let query = EventQuery {
            limit: 100,
            cursor: cursor.take(),
            ..EventQuery::default()
        };
        let page = ok("list events", stores.sweeps.list_events(team, &query).await);
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

/// A team with one key, stored.
async fn team_with_key(stores: &Stores) -> (Team, ApiKeyRecord) {
    let team = team("acme");
    ok("insert team", stores.teams.insert_team(&team).await);
    let key = api_key(&team.id, "ABCDE12345", 1);
    ok("insert key", stores.keys.insert_key(&key).await);
    (team, key)
}

async fn teams_are_found_by_id_and_token_hash(stores: Stores) {
    let acme = team("acme");
    let other = team("other");
    ok("insert", stores.teams.insert_team(&acme).await);
    ok("insert", stores.teams.insert_team(&other).await);

    assert_eq!(
        ok("get", stores.teams.get_team(&acme.id).await),
        Some(acme.clone())
    );
    assert_eq!(
        ok(
            "find",
            stores
                .teams
                .find_team_by_token_hash(&other.token_hash)
                .await
        ),
        Some(other.clone())
    );
    assert_eq!(
        ok("find", stores.teams.find_team_by_token_hash("0000").await),
        None
    );
    assert_eq!(
        ok("get", stores.teams.get_team(&TeamId::generate()).await),
        None
    );

    let same_token = Team {
        id: TeamId::generate(),
        ..acme.clone()
    };
    assert_conflict(
        "same token hash",
        stores.teams.insert_team(&same_token).await,
    );
    assert_eq!(ok("get", stores.teams.get_team(&same_token.id).await), None);
}

async fn keys_are_listed_and_isolated_by_team(stores: Stores) {
    let a = team("a");
    let b = team("b");
    let a_late = api_key(&a.id, "AAAAA00002", 20);
    let a_early = api_key(&a.id, "AAAAA00001", 10);
    let b_key = api_key(&b.id, "BBBBB00001", 15);
    for key in [&a_late, &a_early, &b_key] {
        ok("insert key", stores.keys.insert_key(key).await);
    }

    assert_eq!(
        ok("get", stores.keys.get_key(&a.id, &a_early.id).await),
        Some(a_early.clone())
    );
    assert_eq!(
        ok("get", stores.keys.get_key(&b.id, &a_early.id).await),
        None,
        "team B sees A's key"
    );
    assert_eq!(
        ok("get by id", stores.keys.get_key_by_id(&b_key.id).await),
        Some(b_key.clone())
    );
    assert_eq!(
        ok(
            "get by id",
            stores.keys.get_key_by_id(&KeyRecordId::generate()).await
        ),
        None
    );

    let listed = ok("list", stores.keys.list_keys(&a.id).await);
    assert_eq!(
        listed,
        vec![a_early.clone(), a_late.clone()],
        "oldest first, team A only"
    );
    assert_eq!(
        ok("list", stores.keys.list_keys(&b.id).await),
        vec![b_key.clone()]
    );

    let all: HashSet<KeyRecordId> = list_every_key(stores.keys.as_ref(), 1000)
        .await
        .into_iter()
        .map(|k| k.id)
        .collect();
    let expected: HashSet<KeyRecordId> =
        [a_late.id.clone(), a_early.id.clone(), b_key.id.clone()].into();
    assert_eq!(all, expected);
}

async fn every_key_is_listed_once_across_small_pages(stores: Stores) {
    let teams = [team("paging-a"), team("paging-b")];
    for t in &teams {
        ok("team", stores.teams.insert_team(t).await);
    }
    let mut expected = HashSet::new();
    for n in 0..23 {
        let key = api_key(&teams[n % 2].id, &format!("PAGE{n:06}"), n as i64);
        ok("insert", stores.keys.insert_key(&key).await);
        expected.insert(key.id);
    }
    for page_size in [1, 2, 5, 23, 100] {
        let listed = list_every_key(stores.keys.as_ref(), page_size).await;
        let ids: Vec<KeyRecordId> = listed.into_iter().map(|k| k.id).collect();
        let unique: HashSet<KeyRecordId> = ids.iter().cloned().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "a key listed twice at page size {page_size}"
        );
        assert_eq!(unique, expected, "page size {page_size}");
    }
    let garbage = stores.keys.list_keys_page(Some("not a cursor"), 5).await;
    assert!(
        matches!(garbage, Err(StoreError::Corrupt(_))),
        "{garbage:?}"
    );
}

async fn key_id_is_unique_per_team(stores: Stores) {
    let a = team("a");
    let b = team("b");
    let first = api_key(&a.id, "KEYID00001", 1);
    ok("insert", stores.keys.insert_key(&first).await);

    let again = api_key(&a.id, "KEYID00001", 2);
    assert_conflict(
        "same Key ID, same team",
        stores.keys.insert_key(&again).await,
    );
    assert_eq!(
        ok("get", stores.keys.get_key_by_id(&again.id).await),
        None,
        "nothing stored"
    );
    assert_eq!(ok("list", stores.keys.list_keys(&a.id).await), vec![first]);

    let other_team = api_key(&b.id, "KEYID00001", 3);
    ok(
        "same Key ID in another team",
        stores.keys.insert_key(&other_team).await,
    );
}

async fn key_updates_are_conditional_on_revision(stores: Stores) {
    let (_team, key) = team_with_key(&stores).await;

    let valid = ApiKeyRecord {
        status: KeyStatus::Valid,
        apps_count: Some(3),
        validation_attempts: 1,
        revision: 1,
        ..key.clone()
    };
    ok(
        "update at revision 0",
        stores.keys.update_key(&valid, 0).await,
    );

    let stale = ApiKeyRecord {
        status: KeyStatus::Invalid,
        revision: 1,
        ..key.clone()
    };
    assert_conflict("stale revision", stores.keys.update_key(&stale, 0).await);
    let skipping = ApiKeyRecord {
        revision: 5,
        ..valid.clone()
    };
    assert_conflict(
        "revision not bumped by one",
        stores.keys.update_key(&skipping, 1).await,
    );
    assert_eq!(
        ok("get", stores.keys.get_key_by_id(&key.id).await),
        Some(valid.clone())
    );

    let missing = ApiKeyRecord {
        id: KeyRecordId::generate(),
        revision: 1,
        ..key
    };
    assert_conflict("absent key", stores.keys.update_key(&missing, 0).await);
}

async fn a_key_update_and_its_announcement_are_stored_together_or_not_at_all(stores: Stores) {
    let (team, key) = team_with_key(&stores).await;
    let target = destination(&team.id, "ops", 0);
    ok(
        "insert destination",
        stores.destinations.insert_destination(&target).await,
    );
    let invalid = ApiKeyRecord {
        status: KeyStatus::Invalid,
        revision: 1,
        ..key.clone()
    };
    let announcement = event(&team.id, "app-1", "shipwatch.key.status_changed", "k", 10);
    let announced_delivery = delivery(&announcement, &target.id, 10);
    ok(
        "update and announce",
        stores
            .keys
            .update_key_announcing(
                &invalid,
                0,
                std::slice::from_ref(&announcement),
                std::slice::from_ref(&announced_delivery),
            )
            .await,
    );
    assert_eq!(
        ok("get", stores.keys.get_key_by_id(&key.id).await),
        Some(invalid.clone())
    );
    let stored = ok("get event", stores.sweeps.get_event(&announcement.id).await);
    assert_eq!(stored.map(|e| e.summary), Some("k".to_owned()));
    let due = ok("due", stores.sweeps.due_deliveries(at(20), 10).await);
    assert_eq!(
        due.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        vec![announced_delivery.id.clone()]
    );

    // A writer that read the old revision: neither its key change nor its event is stored.
    let late = ApiKeyRecord {
        status: KeyStatus::Valid,
        revision: 1,
        ..key.clone()
    };
    let late_event = event(
        &team.id,
        "app-1",
        "shipwatch.key.status_changed",
        "late",
        11,
    );
    let late_delivery = delivery(&late_event, &target.id, 11);
    assert_conflict(
        "stale revision",
        stores
            .keys
            .update_key_announcing(
                &late,
                0,
                std::slice::from_ref(&late_event),
                std::slice::from_ref(&late_delivery),
            )
            .await,
    );
    assert_eq!(
        ok("get", stores.keys.get_key_by_id(&key.id).await),
        Some(invalid)
    );
    assert_eq!(
        ok(
            "get late event",
            stores.sweeps.get_event(&late_event.id).await
        ),
        None
    );
    let due = ok("due", stores.sweeps.due_deliveries(at(20), 10).await);
    assert_eq!(due.len(), 1, "{due:?}");
}

async fn deleting_a_key_frees_its_key_id_and_drops_its_snapshot(stores: Stores) {
    let (team, key) = team_with_key(&stores).await;
    let commit = SweepCommit {
        snapshot: snapshot(&key, 1, "baseline"),
        expected_version: 0,
        events: Vec::new(),
        deliveries: Vec::new(),
    };
    ok("commit", stores.sweeps.commit_sweep(&commit).await);

    let intruder = shipwatch_tests::store_contract::team("intruder");
    assert!(!ok(
        "delete",
        stores.keys.delete_key(&intruder.id, &key.id).await
    ));
    assert!(ok("get", stores.keys.get_key(&team.id, &key.id).await).is_some());

    assert!(ok(
        "delete",
        stores.keys.delete_key(&team.id, &key.id).await
    ));
    assert_eq!(ok("get", stores.keys.get_key_by_id(&key.id).await), None);
    assert_eq!(
        ok("snapshot", stores.sweeps.get_snapshot(&key.id).await),
        None
    );
    assert!(ok("list", stores.keys.list_keys(&team.id).await).is_empty());
    assert!(!ok(
        "delete again",
        stores.keys.delete_key(&team.id, &key.id).await
    ));

    let again = api_key(&team.id, key.account.identity(), 5);
    ok(
        "same Key ID after delete",
        stores.keys.insert_key(&again).await,
    );
    assert_eq!(
        ok("list", stores.keys.list_keys(&team.id).await),
        vec![again]
    );
}

async fn secrets_are_created_replaced_and_deleted(stores: Stores) {
    let name = SecretName::for_key(&TeamId::generate(), &KeyRecordId::generate());
    let other = SecretName::for_destination(&TeamId::generate(), &DestinationId::generate());
    assert_eq!(ok("absent", stores.secrets.get_secret(&name).await), None);

    let first = SecretValue::new("-----BEGIN PRIVATE KEY-----\nfirst\n".to_owned());
    ok("put", stores.secrets.put_secret(&name, &first).await);
    assert_eq!(
        ok("get", stores.secrets.get_secret(&name).await),
        Some(first)
    );

    let second = SecretValue::new("{\"url\":\"https://hooks.example.com/x\"}".to_owned());
    ok("overwrite", stores.secrets.put_secret(&name, &second).await);
    assert_eq!(
        ok("get", stores.secrets.get_secret(&name).await),
        Some(second)
    );
    assert_eq!(ok("other", stores.secrets.get_secret(&other).await), None);

    ok("delete", stores.secrets.delete_secret(&name).await);
    assert_eq!(ok("deleted", stores.secrets.get_secret(&name).await), None);
    ok("delete absent", stores.secrets.delete_secret(&name).await);

    let third = SecretValue::new("recreated".to_owned());
    ok(
        "put after delete",
        stores.secrets.put_secret(&name, &third).await,
    );
    assert_eq!(
        ok("get", stores.secrets.get_secret(&name).await),
        Some(third)
    );
}

async fn destinations_are_isolated_by_team(stores: Stores) {
    let a = team("a");
    let b = team("b");
    let late = destination(&a.id, "late", 20);
    let early = destination(&a.id, "early", 10);
    let b_dest = destination(&b.id, "b", 5);
    for d in [&late, &early, &b_dest] {
        ok("insert", stores.destinations.insert_destination(d).await);
    }
    assert_conflict(
        "same id",
        stores.destinations.insert_destination(&early).await,
    );

    assert_eq!(
        ok(
            "get",
            stores.destinations.get_destination(&a.id, &early.id).await
        ),
        Some(early.clone())
    );
    assert_eq!(
        ok(
            "get",
            stores.destinations.get_destination(&b.id, &early.id).await
        ),
        None
    );
    assert_eq!(
        ok("list", stores.destinations.list_destinations(&a.id).await),
        vec![early.clone(), late.clone()]
    );
    assert!(!ok(
        "delete",
        stores
            .destinations
            .delete_destination(&b.id, &early.id)
            .await
    ));
    assert!(ok(
        "delete",
        stores
            .destinations
            .delete_destination(&a.id, &early.id)
            .await
    ));
    assert!(!ok(
        "delete",
        stores
            .destinations
            .delete_destination(&a.id, &early.id)
            .await
    ));
    assert_eq!(
        ok("list", stores.destinations.list_destinations(&a.id).await),
        vec![late]
    );
    assert_eq!(
        ok("list", stores.destinations.list_destinations(&b.id).await),
        vec![b_dest]
    );
}

async fn workflows_are_isolated_by_team(stores: Stores) {
    let a = team("a");
    let b = team("b");
    let target = DestinationId::generate();
    let late = workflow(&a.id, &target, "late", 20);
    let early = workflow(&a.id, &target, "early", 10);
    let b_flow = workflow(&b.id, &target, "b", 5);
    for w in [&late, &early, &b_flow] {
        ok("insert", stores.workflows.insert_workflow(w).await);
    }
    assert_eq!(
        ok("get", stores.workflows.get_workflow(&a.id, &late.id).await),
        Some(late.clone())
    );
    assert_eq!(
        ok("get", stores.workflows.get_workflow(&b.id, &late.id).await),
        None
    );
    assert_eq!(
        ok("list", stores.workflows.list_workflows(&a.id).await),
        vec![early.clone(), late.clone()]
    );
    assert!(!ok(
        "delete",
        stores.workflows.delete_workflow(&b.id, &late.id).await
    ));
    assert!(ok(
        "delete",
        stores.workflows.delete_workflow(&a.id, &late.id).await
    ));
    assert_eq!(
        ok("list", stores.workflows.list_workflows(&a.id).await),
        vec![early]
    );
    assert_eq!(
        ok("list", stores.workflows.list_workflows(&b.id).await),
        vec![b_flow]
    );
}

async fn first_sweep_commit_expects_version_zero(stores: Stores) {
    let (team, key) = team_with_key(&stores).await;
    assert_eq!(
        ok("no snapshot", stores.sweeps.get_snapshot(&key.id).await),
        None
    );

    let baseline = snapshot(&key, 1, "baseline");
    let first = SweepCommit {
        snapshot: baseline.clone(),
        expected_version: 0,
        events: Vec::new(),
        deliveries: Vec::new(),
    };
    ok("first commit", stores.sweeps.commit_sweep(&first).await);
    assert_eq!(
        ok("snapshot", stores.sweeps.get_snapshot(&key.id).await),
        Some(baseline)
    );

    let target = DestinationId::generate();
    let change = event(&team.id, "111", BUILD_CHANGED, "Build 12 is VALID", 30);
    let second = SweepCommit {
        snapshot: snapshot(&key, 2, "second"),
        expected_version: 1,
        events: vec![change.clone()],
        deliveries: vec![delivery(&change, &target, 30)],
    };
    ok("second commit", stores.sweeps.commit_sweep(&second).await);
    assert_eq!(
        ok("snapshot", stores.sweeps.get_snapshot(&key.id).await).map(|s| s.version),
        Some(2)
    );
    assert_eq!(
        ok("event", stores.sweeps.get_event(&change.id).await),
        Some(change)
    );
}

async fn stale_sweep_commit_conflicts_and_writes_nothing(stores: Stores) {
    let (team, key) = team_with_key(&stores).await;
    let target = DestinationId::generate();
    let winner_event = event(&team.id, "111", BUILD_CHANGED, "winner", 10);
    let winner = SweepCommit {
        snapshot: snapshot(&key, 1, "winner"),
        expected_version: 0,
        events: vec![winner_event.clone()],
        deliveries: vec![delivery(&winner_event, &target, 10)],
    };
    ok("first commit", stores.sweeps.commit_sweep(&winner).await);

    let loser_event = event(&team.id, "111", BUILD_CHANGED, "loser", 11);
    let loser = SweepCommit {
        snapshot: snapshot(&key, 1, "loser"),
        expected_version: 0,
        events: vec![loser_event.clone()],
        deliveries: vec![delivery(&loser_event, &target, 11)],
    };
    assert_conflict(
        "stale expected version",
        stores.sweeps.commit_sweep(&loser).await,
    );
    let not_bumped = SweepCommit {
        snapshot: snapshot(&key, 1, "not bumped"),
        expected_version: 1,
        ..loser.clone()
    };
    assert_conflict(
        "version not expected + 1",
        stores.sweeps.commit_sweep(&not_bumped).await,
    );

    assert_eq!(
        ok("snapshot", stores.sweeps.get_snapshot(&key.id).await),
        Some(winner.snapshot.clone())
    );
    assert_eq!(
        ok(
            "loser event",
            stores.sweeps.get_event(&loser_event.id).await
        ),
        None
    );
    let history = all_events(&stores, &team.id).await;
    assert_eq!(ids(&history), vec![winner_event.id.clone()]);
    let due = ok("due", stores.sweeps.due_deliveries(at(1000), 100).await);
    assert_eq!(due.len(), 1, "only the winner's delivery");
}

async fn sweep_commit_needs_its_key(stores: Stores) {
    let (team, _key) = team_with_key(&stores).await;
    let unknown = api_key(&team.id, "ZZZZZ99999", 2);
    let orphan = SweepCommit {
        snapshot: snapshot(&unknown, 1, "orphan"),
        expected_version: 0,
        events: vec![event(&team.id, "1", BUILD_CHANGED, "orphan", 1)],
        deliveries: Vec::new(),
    };
    assert_conflict(
        "snapshot of an absent key",
        stores.sweeps.commit_sweep(&orphan).await,
    );
    assert_eq!(
        ok("snapshot", stores.sweeps.get_snapshot(&unknown.id).await),
        None
    );
    assert!(all_events(&stores, &team.id).await.is_empty());
}

async fn big_snapshots_round_trip(stores: Stores) {
    let (_team, key) = team_with_key(&stores).await;
    let big = big_snapshot(&key, 1, 150);
    let size = serde_json::to_vec(&big.state).map(|v| v.len()).unwrap_or(0);
    assert!(
        size > 400_000,
        "the test snapshot is over DynamoDB's item size ({size} bytes)"
    );
    let commit = SweepCommit {
        snapshot: big.clone(),
        expected_version: 0,
        events: Vec::new(),
        deliveries: Vec::new(),
    };
    ok(
        "commit big snapshot",
        stores.sweeps.commit_sweep(&commit).await,
    );
    assert_eq!(
        ok("snapshot", stores.sweeps.get_snapshot(&key.id).await),
        Some(big)
    );
}

/// Stores a baseline snapshot (version 1) of `key` and returns it.
async fn baseline(stores: &Stores, key: &ApiKeyRecord, marker: &str) -> StoredSnapshot {
    let commit = SweepCommit {
        snapshot: snapshot(key, 1, marker),
        expected_version: 0,
        events: Vec::new(),
        deliveries: Vec::new(),
    };
    ok("commit", stores.sweeps.commit_sweep(&commit).await);
    commit.snapshot
}

/// `get_snapshots`, sorted by key so answers in any order compare.
async fn snapshots_of(stores: &Stores, ids: &[KeyRecordId]) -> Vec<StoredSnapshot> {
    let mut found = ok("get snapshots", stores.sweeps.get_snapshots(ids).await);
    found.sort_by(|a, b| a.key_record_id.0.cmp(&b.key_record_id.0));
    found
}

fn sorted_by_key(mut snapshots: Vec<StoredSnapshot>) -> Vec<StoredSnapshot> {
    snapshots.sort_by(|a, b| a.key_record_id.0.cmp(&b.key_record_id.0));
    snapshots
}

async fn snapshots_of_many_keys_come_in_one_call(stores: Stores) {
    let (team, first) = team_with_key(&stores).await;
    let second = api_key(&team.id, "BBBBB22222", 2);
    let unswept = api_key(&team.id, "CCCCC33333", 3);
    ok("insert key", stores.keys.insert_key(&second).await);
    ok("insert key", stores.keys.insert_key(&unswept).await);
    let first_snapshot = baseline(&stores, &first, "first").await;
    let second_snapshot = baseline(&stores, &second, "second").await;

    let other = shipwatch_tests::store_contract::team("other");
    ok("insert team", stores.teams.insert_team(&other).await);
    let foreign = api_key(&other.id, "DDDDD44444", 4);
    ok("insert key", stores.keys.insert_key(&foreign).await);
    let foreign_snapshot = baseline(&stores, &foreign, "foreign").await;

    let own_ids = [first.id.clone(), second.id.clone(), unswept.id.clone()];
    assert_eq!(
        snapshots_of(&stores, &own_ids).await,
        sorted_by_key(vec![first_snapshot.clone(), second_snapshot.clone()]),
        "a key without a snapshot is missing; another team's snapshot is not there"
    );
    assert!(
        ok("no keys", stores.sweeps.get_snapshots(&[]).await).is_empty(),
        "no keys, no snapshots"
    );
    assert_eq!(
        snapshots_of(&stores, &[first.id.clone(), first.id.clone()]).await,
        vec![first_snapshot.clone()],
        "a key named twice answers once"
    );
    assert_eq!(
        snapshots_of(&stores, &[KeyRecordId::generate()]).await,
        Vec::new(),
        "an unknown key answers nothing"
    );
    assert_eq!(
        snapshots_of(&stores, std::slice::from_ref(&foreign.id)).await,
        vec![foreign_snapshot],
        "the other team reads its own"
    );

    // What `get_snapshots` answers is what `get_snapshot` answers, key by key.
    for id in &own_ids {
        let single = ok("get snapshot", stores.sweeps.get_snapshot(id).await);
        let batch = snapshots_of(&stores, std::slice::from_ref(id)).await;
        assert_eq!(single.into_iter().collect::<Vec<_>>(), batch);
    }
}

/// 150 keys: more than one DynamoDB `BatchGetItem` (100 keys) names.
async fn snapshots_of_more_keys_than_one_batch_holds(stores: Stores) {
    let (team, _) = team_with_key(&stores).await;
    snapshots_of_keys(&stores, &team, 150).await;
}

/// Stores `count` keys of `team`, a snapshot of every other one, and reads them back in one call.
async fn snapshots_of_keys(stores: &Stores, team: &Team, count: usize) {
    let mut ids = Vec::with_capacity(count);
    let mut expected = Vec::new();
    for number in 0..count {
        let key = api_key(&team.id, &format!("K{number:09}"), number as i64);
        ok("insert key", stores.keys.insert_key(&key).await);
        if number % 2 == 0 {
            expected.push(baseline(stores, &key, &format!("snapshot {number}")).await);
        }
        ids.push(key.id);
    }
    assert_eq!(snapshots_of(stores, &ids).await, sorted_by_key(expected));
}

async fn history_is_newest_first_with_deliveries(stores: Stores) {
    let a = team("a");
    let b = team("b");
    let target = DestinationId::generate();
    let other_target = DestinationId::generate();
    let old = event(&a.id, "111", BUILD_CHANGED, "old", 10);
    let new = event(&a.id, "111", VERSION_CHANGED, "new", 30);
    let middle = event(&a.id, "222", BUILD_CHANGED, "middle", 20);
    let foreign = event(&b.id, "111", BUILD_CHANGED, "foreign", 40);
    let to_target = delivery(&new, &target, 30);
    let to_other = delivery(&new, &other_target, 31);
    ok(
        "append",
        stores
            .sweeps
            .append_events(
                &[old.clone(), new.clone(), middle.clone(), foreign.clone()],
                &[to_other.clone(), to_target.clone()],
            )
            .await,
    );

    let page = ok(
        "list",
        stores
            .sweeps
            .list_events(&a.id, &EventQuery::default())
            .await,
    );
    assert_eq!(page.next_cursor, None);
    assert_eq!(
        ids(&page.items),
        vec![new.id.clone(), middle.id.clone(), old.id.clone()]
    );
    assert_eq!(page.items[0].event, new);
    assert_eq!(page.items[0].deliveries, vec![to_target, to_other]);
    assert!(page.items[1].deliveries.is_empty());

    let foreign_page = ok(
        "list",
        stores
            .sweeps
            .list_events(&b.id, &EventQuery::default())
            .await,
    );
    assert_eq!(ids(&foreign_page.items), vec![foreign.id.clone()]);
    assert_eq!(
        ok("get", stores.sweeps.get_event(&foreign.id).await),
        Some(foreign)
    );
    assert_eq!(
        ok("get", stores.sweeps.get_event(&EventId::generate()).await),
        None
    );
}

async fn history_filters_by_app_type_and_text(stores: Stores) {
    let team = team("a");
    let mut build_a = event(
        &team.id,
        "111",
        BUILD_CHANGED,
        "Build 12 of Alpha is VALID",
        10,
    );
    let EventData::BuildProcessingStateChanged(build_a_data) = &mut build_a.data else {
        panic!("a build event: {:?}", build_a.data);
    };
    build_a_data.build.version = "12".to_owned();
    build_a_data.build.short_version = Some("1.4".to_owned());
    let version_a = event(
        &team.id,
        "111",
        VERSION_CHANGED,
        "Alpha 1.4 is WAITING_FOR_REVIEW",
        20,
    );
    let mut build_b = event(
        &team.id,
        "222",
        BUILD_CHANGED,
        "Build 3 of Beta is VALID",
        30,
    );
    let EventData::BuildProcessingStateChanged(build_b_data) = &mut build_b.data else {
        panic!("a build event: {:?}", build_b.data);
    };
    build_b_data.app.name = "Zebra Tracker".to_owned();
    ok(
        "append",
        stores
            .sweeps
            .append_events(&[build_a.clone(), version_a.clone(), build_b.clone()], &[])
            .await,
    );
    let list = |query: EventQuery| {
        let stores = stores.clone();
        let team = team.id.clone();
        async move { ids(&ok("list", stores.sweeps.list_events(&team, &query).await).items) }
    };

    let by_app = list(EventQuery {
        app_id: Some("111".to_owned()),
        ..EventQuery::default()
    });
    assert_eq!(by_app.await, vec![version_a.id.clone(), build_a.id.clone()]);
    let by_type = list(EventQuery {
        event_type: Some(BUILD_CHANGED.to_owned()),
        ..EventQuery::default()
    });
    assert_eq!(by_type.await, vec![build_b.id.clone(), build_a.id.clone()]);
    let both = list(EventQuery {
        app_id: Some("222".to_owned()),
        event_type: Some(VERSION_CHANGED.to_owned()),
        ..EventQuery::default()
    });
    assert!(both.await.is_empty());

    let summary_text = list(EventQuery {
        text: Some("waiting_FOR".to_owned()),
        ..EventQuery::default()
    });
    assert_eq!(
        summary_text.await,
        vec![version_a.id.clone()],
        "summary, any case"
    );
    let data_text = list(EventQuery {
        text: Some("zebra".to_owned()),
        ..EventQuery::default()
    });
    assert_eq!(data_text.await, vec![build_b.id.clone()], "data, any case");
    let nested_data = list(EventQuery {
        text: Some("1.4".to_owned()),
        app_id: Some("111".to_owned()),
        event_type: Some(BUILD_CHANGED.to_owned()),
        ..EventQuery::default()
    });
    assert_eq!(nested_data.await, vec![build_a.id.clone()]);
    let nothing = list(EventQuery {
        text: Some("no such words".to_owned()),
        ..EventQuery::default()
    });
    assert!(nothing.await.is_empty());
}

async fn history_pages_cover_everything_once(stores: Stores) {
    let team = team("a");
    // Pairs of events share a time, so the order needs the id as tie-break.
    let events: Vec<EventRecord> = (0..23)
        .map(|i| {
            event(
                &team.id,
                &format!("{}", i % 3),
                BUILD_CHANGED,
                &format!("event {i}"),
                i / 2,
            )
        })
        .collect();
    ok("append", stores.sweeps.append_events(&events, &[]).await);
    let full = ids(&ok(
        "list",
        stores
            .sweeps
            .list_events(
                &team.id,
                &EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                },
            )
            .await,
    )
    .items);
    assert_eq!(full.len(), 23);

    let mut paged = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let query = EventQuery {
            limit: 5,
            cursor: cursor.take(),
            ..EventQuery::default()
        };
        let page = ok("page", stores.sweeps.list_events(&team.id, &query).await);
        pages += 1;
        assert!(page.items.len() <= 5);
        paged.extend(ids(&page.items));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(paged, full, "every event once, in order");

    // Paging a filtered history too.
    let mut filtered = Vec::new();
    let mut cursor = None;
    loop {
        let query = EventQuery {
            app_id: Some("1".to_owned()),
            limit: 2,
            cursor: cursor.take(),
            ..EventQuery::default()
        };
        let page = ok(
            "filtered page",
            stores.sweeps.list_events(&team.id, &query).await,
        );
        filtered.extend(page.items.into_iter().map(|e| e.event));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<EventId> = full
        .iter()
        .filter(|id| {
            events
                .iter()
                .any(|e| &e.id == *id && e.app_id.as_deref() == Some("1"))
        })
        .cloned()
        .collect();
    assert_eq!(
        filtered.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        expected
    );
}

async fn history_rejects_foreign_cursors(stores: Stores) {
    let team = team("a");
    let query = EventQuery {
        cursor: Some("definitely-not-a-cursor".to_owned()),
        ..EventQuery::default()
    };
    match stores.sweeps.list_events(&team.id, &query).await {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("expected a rejected cursor, got {other:?}"),
    }
}

async fn large_commits_are_stored_whole(stores: Stores) {
    let (team, key) = team_with_key(&stores).await;
    let target = DestinationId::generate();
    // More than one DynamoDB transaction holds (100 items).
    let events: Vec<EventRecord> = (0..130)
        .map(|i| event(&team.id, "111", BUILD_CHANGED, &format!("change {i}"), i))
        .collect();
    let deliveries: Vec<DeliveryRecord> = events.iter().map(|e| delivery(e, &target, 0)).collect();
    let commit = SweepCommit {
        snapshot: snapshot(&key, 1, "large"),
        expected_version: 0,
        events: events.clone(),
        deliveries: deliveries.clone(),
    };
    ok("large commit", stores.sweeps.commit_sweep(&commit).await);

    let duplicate = SweepCommit {
        snapshot: snapshot(&key, 1, "duplicate"),
        ..commit.clone()
    };
    assert_conflict(
        "same large commit again",
        stores.sweeps.commit_sweep(&duplicate).await,
    );

    let history = all_events(&stores, &team.id).await;
    assert_eq!(history.len(), 130);
    assert!(history.iter().all(|e| e.deliveries.len() == 1));
    let unique: HashSet<EventId> = ids(&history).into_iter().collect();
    assert_eq!(unique.len(), 130);

    let default_page = ok(
        "default limit",
        stores
            .sweeps
            .list_events(&team.id, &EventQuery::default())
            .await,
    );
    assert_eq!(default_page.items.len(), 50);
    let capped = EventQuery {
        limit: 1000,
        ..EventQuery::default()
    };
    let capped_page = ok(
        "capped limit",
        stores.sweeps.list_events(&team.id, &capped).await,
    );
    assert_eq!(capped_page.items.len(), 100);
    assert!(capped_page.next_cursor.is_some());

    let due = ok("due", stores.sweeps.due_deliveries(at(0), 500).await);
    assert_eq!(due.len(), 130);
}

async fn due_deliveries_respect_next_attempt_and_lease(stores: Stores) {
    let team = team("a");
    let target = DestinationId::generate();
    let now = 100;
    let carrier = event(&team.id, "111", BUILD_CHANGED, "carrier", 0);
    let due_past = delivery(&carrier, &target, now - 10);
    let due_now = delivery(&carrier, &target, now);
    let later = delivery(&carrier, &target, now + 10);
    let leased = DeliveryRecord {
        lease_until: Some(at(now + 10)),
        ..delivery(&carrier, &target, now - 20)
    };
    let lease_expired = DeliveryRecord {
        lease_until: Some(at(now - 5)),
        ..delivery(&carrier, &target, now - 30)
    };
    let delivered = DeliveryRecord {
        status: DeliveryStatus::Delivered,
        ..delivery(&carrier, &target, now - 40)
    };
    let failed = DeliveryRecord {
        status: DeliveryStatus::Failed,
        ..delivery(&carrier, &target, now - 50)
    };
    let all = [
        &due_past,
        &due_now,
        &later,
        &leased,
        &lease_expired,
        &delivered,
        &failed,
    ]
    .map(Clone::clone);
    ok(
        "append",
        stores.sweeps.append_events(&[carrier], &all).await,
    );

    let due: HashSet<DeliveryId> = ok("due", stores.sweeps.due_deliveries(at(now), 100).await)
        .into_iter()
        .map(|d| d.id)
        .collect();
    let expected: HashSet<DeliveryId> = [
        due_past.id.clone(),
        due_now.id.clone(),
        lease_expired.id.clone(),
    ]
    .into();
    assert_eq!(due, expected);

    let first = ok(
        "due, limit 1",
        stores.sweeps.due_deliveries(at(now), 1).await,
    );
    assert_eq!(first.len(), 1);
    assert!(expected.contains(&first[0].id));

    // Claiming with a lease hides it until the lease ends.
    let claimed = DeliveryRecord {
        lease_until: Some(at(now + 60)),
        revision: 1,
        ..due_past.clone()
    };
    ok("claim", stores.sweeps.update_delivery(&claimed, 0).await);
    let due_after_claim: HashSet<DeliveryId> =
        ok("due", stores.sweeps.due_deliveries(at(now), 100).await)
            .into_iter()
            .map(|d| d.id)
            .collect();
    assert!(!due_after_claim.contains(&due_past.id));
    let due_after_lease: Vec<DeliveryRecord> =
        ok("due", stores.sweeps.due_deliveries(at(now + 60), 100).await);
    assert!(due_after_lease.contains(&claimed));
    assert!(due_after_lease.iter().any(|d| d.id == later.id));
}

async fn delivery_updates_are_conditional_on_revision(stores: Stores) {
    let team = team("a");
    let target = DestinationId::generate();
    let carrier = event(&team.id, "111", BUILD_CHANGED, "carrier", 0);
    let pending = delivery(&carrier, &target, 0);
    ok(
        "append",
        stores
            .sweeps
            .append_events(
                std::slice::from_ref(&carrier),
                std::slice::from_ref(&pending),
            )
            .await,
    );

    let attempt = DeliveryAttempt {
        at: at(1),
        status_code: Some(200),
        error: None,
        duration_ms: 12,
    };
    let delivered = DeliveryRecord {
        status: DeliveryStatus::Delivered,
        attempts: vec![attempt],
        next_attempt_at: None,
        revision: 1,
        ..pending.clone()
    };
    ok(
        "deliver",
        stores.sweeps.update_delivery(&delivered, 0).await,
    );
    let racing = DeliveryRecord {
        lease_until: Some(at(500)),
        revision: 1,
        ..pending.clone()
    };
    assert_conflict(
        "stale revision",
        stores.sweeps.update_delivery(&racing, 0).await,
    );
    assert!(ok("due", stores.sweeps.due_deliveries(at(1000), 100).await).is_empty());

    let page = ok(
        "list",
        stores
            .sweeps
            .list_events(&team.id, &EventQuery::default())
            .await,
    );
    assert_eq!(page.items[0].deliveries, vec![delivered]);

    let unknown = DeliveryRecord {
        id: DeliveryId::generate(),
        revision: 1,
        ..pending
    };
    assert_conflict(
        "absent delivery",
        stores.sweeps.update_delivery(&unknown, 0).await,
    );
}

async fn concurrent_sweep_commits_store_one_set_of_events(stores: Stores) {
    let (team, key) = team_with_key(&stores).await;
    let target = DestinationId::generate();
    let mut sweeps = tokio::task::JoinSet::new();
    for attempt in 0..10 {
        let stores = stores.clone();
        let team = team.id.clone();
        let key = key.clone();
        let target = target.clone();
        sweeps.spawn(async move {
            let events: Vec<EventRecord> = (0..3)
                .map(|i| {
                    event(
                        &team,
                        "111",
                        BUILD_CHANGED,
                        &format!("sweep {attempt} change {i}"),
                        i,
                    )
                })
                .collect();
            let deliveries = events.iter().map(|e| delivery(e, &target, 0)).collect();
            let commit = SweepCommit {
                snapshot: snapshot(&key, 1, &format!("sweep {attempt}")),
                expected_version: 0,
                events: events.clone(),
                deliveries,
            };
            (events, stores.sweeps.commit_sweep(&commit).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = sweeps.join_next().await {
        let (events, result) = joined.unwrap_or_else(|e| panic!("sweep task: {e}"));
        match result {
            Ok(()) => winners.push(events),
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("a losing sweep must see a conflict, got {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one sweep commits");
    let mut stored: Vec<EventId> = ids(&all_events(&stores, &team.id).await);
    let mut expected: Vec<EventId> = winners[0].iter().map(|e| e.id.clone()).collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected, "exactly the winner's events");
    assert_eq!(
        ok("due", stores.sweeps.due_deliveries(at(0), 100).await).len(),
        3
    );
}

/// More keys than SQLite binds in one statement, on the embedded store only (on moto this many
/// writes would take minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_snapshots_of_more_keys_than_one_statement_binds() {
    let dir = TempDir::new("many-snapshots");
    let stores = shipwatch_adapters::embedded::stores(dir.path())
        .unwrap_or_else(|e| panic!("open embedded store: {e}"));
    let (team, _) = team_with_key(&stores).await;
    snapshots_of_keys(&stores, &team, 2_100).await;
}

/// DynamoDB spreads the key index over several partitions, and still lists key items written
/// before that (all in the one `KEYS` partition) until they are rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_key_index_is_spread_and_still_lists_keys_of_the_single_partition() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let moto = shipwatch_tests::moto::moto().await;
    let table = moto.fresh_table("key-index").await;
    let stores = shipwatch_adapters::aws::aws_stores(&moto.sdk_config(), &table).await;
    let owner = team("key-index");
    ok("team", stores.teams.insert_team(&owner).await);
    let keys: Vec<ApiKeyRecord> = (0..12)
        .map(|n| api_key(&owner.id, &format!("IDX{n:07}"), n))
        .collect();
    for key in &keys {
        ok("insert", stores.keys.insert_key(key).await);
    }
    let dynamo = moto.dynamodb();
    let partition_of = |id: &KeyRecordId| {
        let dynamo = dynamo.clone();
        let table = table.clone();
        let pk = format!("KEY#{id}");
        async move {
            let item = dynamo
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S("KEY".into()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("get item: {e}"))
                .item
                .unwrap_or_else(|| panic!("key item missing"));
            item.get("gsi1pk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        }
    };
    let mut partitions = HashSet::new();
    for key in &keys {
        partitions.insert(partition_of(&key.id).await);
    }
    assert!(
        partitions.len() > 1,
        "12 keys in one index partition: {partitions:?}"
    );
    // Move three items back into the partition every key item had before.
    for key in &keys[..3] {
        dynamo
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(format!("KEY#{}", key.id)))
            .key("sk", AttributeValue::S("KEY".into()))
            .update_expression("SET gsi1pk = :legacy")
            .expression_attribute_values(":legacy", AttributeValue::S("KEYS".into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("update item: {e}"));
    }
    let listed: HashSet<KeyRecordId> = list_every_key(stores.keys.as_ref(), 4)
        .await
        .into_iter()
        .map(|k| k.id)
        .collect();
    let expected: HashSet<KeyRecordId> = keys.iter().map(|k| k.id.clone()).collect();
    assert_eq!(listed, expected);
    // Rewriting a key puts it back into its own partition.
    let mut moved = keys[0].clone();
    moved.revision += 1;
    ok(
        "update",
        stores.keys.update_key(&moved, keys[0].revision).await,
    );
    assert_ne!(partition_of(&moved.id).await, "KEYS");
}

/// Folder and file modes of the embedded store, and secrets kept out of the database.
#[cfg(unix)]
#[tokio::test]
async fn embedded_data_is_owner_only_and_secrets_stay_out_of_the_database() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("modes");
    std::fs::create_dir_all(dir.path()).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod: {e}"));

    let stores = shipwatch_adapters::embedded::stores(dir.path())
        .unwrap_or_else(|e| panic!("open embedded store: {e}"));
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        mode(dir.path()),
        0o700,
        "an existing data folder is tightened"
    );
    assert_eq!(mode(&dir.path().join("secrets")), 0o700);

    let (team, key) = team_with_key(&stores).await;
    let marker = format!("PRIVATE-KEY-MATERIAL-{}", uuid::Uuid::new_v4().simple());
    let value = SecretValue::new(format!(
        "-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"
    ));
    ok(
        "put",
        stores.secrets.put_secret(&key.secret_name(), &value).await,
    );
    let destination_secret = SecretName::for_destination(&team.id, &DestinationId::generate());
    ok(
        "put",
        stores.secrets.put_secret(&destination_secret, &value).await,
    );

    let secret_files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path().join("secrets"))
        .unwrap_or_else(|e| panic!("list secrets: {e}"))
        .map(|entry| {
            entry
                .map(|e| e.path())
                .unwrap_or_else(|e| panic!("entry: {e}"))
        })
        .collect();
    assert_eq!(
        secret_files.len(),
        2,
        "one file per secret, no temp files left"
    );
    for file in &secret_files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
        assert!(file.starts_with(dir.path().join("secrets")));
    }

    // The database (and its write-ahead log) never holds the secret.
    for entry in std::fs::read_dir(dir.path()).unwrap_or_else(|e| panic!("list: {e}")) {
        let path = entry.unwrap_or_else(|e| panic!("entry: {e}")).path();
        let is_database = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("shipwatch.db"));
        if is_database {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let found = bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
            assert!(!found, "secret found in {}", path.display());
        }
    }
    assert!(dir.path().join("shipwatch.db").is_file());

    ok(
        "delete",
        stores.secrets.delete_secret(&key.secret_name()).await,
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("secrets"))
            .map(|d| d.count())
            .unwrap_or(0),
        1
    );
}

async fn invites_are_used_once_and_members_are_unique_by_email(stores: Stores) {
    let members = &stores.members;
    let (team, other) = (TeamId::generate(), TeamId::generate());
    let first = invite(&team);
    ok("insert invite", members.insert_invite(&first).await);
    assert_eq!(
        ok("get invite", members.get_invite(&first.token_hash).await),
        Some(first.clone())
    );
    assert_eq!(ok("unknown invite", members.get_invite("nope").await), None);
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let ana = member(&team, &email, 1);
    ok(
        "accept",
        members.accept_invite(&first.token_hash, &ana).await,
    );
    assert_eq!(
        ok("used invite", members.get_invite(&first.token_hash).await),
        None
    );
    // Used once: a second acceptance conflicts and stores nobody.
    let late = member(&team, &format!("late-{email}"), 2);
    assert_conflict(
        "reuse",
        members.accept_invite(&first.token_hash, &late).await,
    );
    assert_eq!(ok("late member", members.get_member(&late.id).await), None);
    // The same email through another invite conflicts and leaves that invite usable.
    let second = invite(&other);
    ok("insert invite", members.insert_invite(&second).await);
    let twin = member(&other, &email, 3);
    assert_conflict(
        "email taken",
        members.accept_invite(&second.token_hash, &twin).await,
    );
    assert_eq!(ok("twin", members.get_member(&twin.id).await), None);
    assert!(
        ok(
            "second invite kept",
            members.get_invite(&second.token_hash).await
        )
        .is_some()
    );
    let bob = member(&other, &format!("bob-{email}"), 4);
    ok(
        "accept",
        members.accept_invite(&second.token_hash, &bob).await,
    );

    assert_eq!(
        ok("by id", members.get_member(&ana.id).await),
        Some(ana.clone())
    );
    assert_eq!(
        ok("by email", members.find_member_by_email(&email).await),
        Some(ana.clone())
    );
    assert_eq!(
        ok(
            "unknown email",
            members.find_member_by_email("x@example.com").await
        ),
        None
    );
    let third = invite(&team);
    ok("insert invite", members.insert_invite(&third).await);
    let cleo = member(&team, &format!("cleo-{email}"), 5);
    ok(
        "accept",
        members.accept_invite(&third.token_hash, &cleo).await,
    );
    assert_eq!(
        ok("list", members.list_members(&team).await),
        vec![ana, cleo]
    );
    assert_eq!(
        ok("list other", members.list_members(&other).await),
        vec![bob]
    );
}

async fn sessions_are_touched_and_deleted(stores: Stores) {
    let members = &stores.members;
    let team = TeamId::generate();
    let ana = member(
        &team,
        &format!("{}@example.com", uuid::Uuid::new_v4().simple()),
        0,
    );
    let mut started = session(&ana, 10);
    ok(
        "insert session",
        members.insert_session(&started, at(3600)).await,
    );
    assert_eq!(
        ok("get", members.get_session(&started.id_hash).await),
        Some(started.clone())
    );
    assert!(ok(
        "touch",
        members
            .touch_session(&started.id_hash, at(600), at(4200))
            .await
    ));
    started.last_seen_at = at(600);
    assert_eq!(
        ok("touched", members.get_session(&started.id_hash).await),
        Some(started.clone())
    );
    assert!(ok("delete", members.delete_session(&started.id_hash).await));
    assert_eq!(
        ok("gone", members.get_session(&started.id_hash).await),
        None
    );
    assert!(!ok(
        "delete again",
        members.delete_session(&started.id_hash).await
    ));
    // A sign-out in between: touching does not bring the session back.
    assert!(!ok(
        "touch gone",
        members
            .touch_session(&started.id_hash, at(700), at(4300))
            .await
    ));
    assert_eq!(
        ok("still gone", members.get_session(&started.id_hash).await),
        None
    );
}

async fn push_notifications_are_remembered_once_until_they_expire(stores: Stores) {
    let webhook = format!("hook-{}", uuid::Uuid::new_v4().simple());
    let other = format!("hook-{}", uuid::Uuid::new_v4().simple());
    let push = &stores.push;
    let (now, expires) = (at(0), at(7 * 24 * 3600));
    assert!(ok(
        "first",
        push.remember_notification(&webhook, "n-1", now, expires)
            .await
    ));
    assert!(!ok(
        "again",
        push.remember_notification(&webhook, "n-1", at(60), at(60 + 7 * 24 * 3600))
            .await
    ));
    // Ids are per webhook.
    assert!(ok(
        "other webhook",
        push.remember_notification(&other, "n-1", now, expires)
            .await
    ));
    assert!(ok(
        "other id",
        push.remember_notification(&webhook, "n-2", now, expires)
            .await
    ));
    // Just before expiry it is still remembered; at expiry it counts as absent (even while the
    // record may still be stored) and is remembered anew.
    assert!(!ok(
        "before expiry",
        push.remember_notification(&webhook, "n-1", at(7 * 24 * 3600 - 1), at(20 * 24 * 3600))
            .await
    ));
    assert!(ok(
        "at expiry",
        push.remember_notification(&webhook, "n-2", expires, at(14 * 24 * 3600))
            .await
    ));
    assert!(!ok(
        "renewed",
        push.remember_notification(&webhook, "n-2", at(8 * 24 * 3600), at(30 * 24 * 3600))
            .await
    ));
    // Forgotten ids are handled again; forgetting an unknown id is not an error.
    ok("forget", push.forget_notification(&other, "n-1").await);
    ok(
        "forget unknown",
        push.forget_notification(&other, "never").await,
    );
    assert!(ok(
        "after forget",
        push.remember_notification(&other, "n-1", now, expires)
            .await
    ));
    // Of concurrent first deliveries exactly one is first.
    let tries = (0..8).map(|_| {
        let push = push.clone();
        let webhook = webhook.clone();
        tokio::spawn(async move {
            push.remember_notification(&webhook, "n-3", at(0), at(100))
                .await
        })
    });
    let mut firsts = 0;
    for t in tries {
        if ok(
            "concurrent",
            t.await.unwrap_or_else(|e| panic!("task: {e}")),
        ) {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);
}

async fn sign_in_failures_are_counted_per_name_within_the_window(stores: Stores) {
    let account = format!("account-{}", uuid::Uuid::new_v4().simple());
    let client = format!("client-{}", uuid::Uuid::new_v4().simple());
    let failures = &stores.sign_in_failures;
    let window = 15 * 60;
    // Two failures in the same instant are two failures.
    for second in [0, 0, 10] {
        ok(
            "record",
            failures
                .record_sign_in_failure(
                    &[account.clone(), client.clone()],
                    at(second),
                    at(second + window),
                )
                .await,
        );
    }
    ok(
        "record client only",
        failures
            .record_sign_in_failure(std::slice::from_ref(&client), at(20), at(20 + window))
            .await,
    );
    let mut seen = ok(
        "account since before",
        failures.sign_in_failures_since(&account, at(-1)).await,
    );
    seen.sort();
    assert_eq!(seen, vec![at(0), at(0), at(10)]);
    assert_eq!(
        ok(
            "client since before",
            failures.sign_in_failures_since(&client, at(-1)).await
        )
        .len(),
        4
    );
    // `since` is exclusive: failures at or before it are not returned.
    assert_eq!(
        ok(
            "account since 0",
            failures.sign_in_failures_since(&account, at(0)).await
        ),
        vec![at(10)]
    );
    assert!(
        ok(
            "other name",
            failures
                .sign_in_failures_since(&format!("{account}-other"), at(-1))
                .await
        )
        .is_empty()
    );
    // A failure recorded long after the window still counts on its own.
    ok(
        "record later",
        failures
            .record_sign_in_failure(std::slice::from_ref(&account), at(4000), at(4000 + window))
            .await,
    );
    assert_eq!(
        ok(
            "account in the later window",
            failures
                .sign_in_failures_since(&account, at(4000 - window))
                .await
        ),
        vec![at(4000)]
    );
}

async fn api_tokens_are_found_by_hash_listed_by_team_and_revoked(stores: Stores) {
    let members = &stores.members;
    let (team, other) = (TeamId::generate(), TeamId::generate());
    let (ci, deploy) = (api_token(&team, "ci", 2), api_token(&team, "deploy", 1));
    let foreign = api_token(&other, "theirs", 3);
    for token in [&ci, &deploy, &foreign] {
        ok("insert api token", members.insert_api_token(token).await);
    }
    assert_conflict("same hash again", members.insert_api_token(&ci).await);
    assert_eq!(
        ok("find", members.find_api_token(&ci.token_hash).await),
        Some(ci.clone())
    );
    assert_eq!(ok("unknown", members.find_api_token("nope").await), None);
    assert_eq!(
        ok("list", members.list_api_tokens(&team).await),
        vec![deploy.clone(), ci.clone()]
    );

    // The last use is kept, and shows in the team's list too.
    assert!(ok(
        "touch",
        members.touch_api_token(&ci.token_hash, at(90)).await
    ));
    let used = ok("find used", members.find_api_token(&ci.token_hash).await);
    assert_eq!(used.and_then(|t| t.last_used_at), Some(at(90)));
    let listed = ok("list used", members.list_api_tokens(&team).await);
    assert_eq!(listed.get(1).and_then(|t| t.last_used_at), Some(at(90)));

    // Another team cannot revoke it; its own team can, once, and then it is found nowhere.
    assert!(!ok(
        "foreign revoke",
        members.delete_api_token(&other, &ci.id).await
    ));
    assert!(ok("find kept", members.find_api_token(&ci.token_hash).await).is_some());
    assert!(ok("revoke", members.delete_api_token(&team, &ci.id).await));
    assert!(!ok(
        "revoke again",
        members.delete_api_token(&team, &ci.id).await
    ));
    assert_eq!(
        ok("find revoked", members.find_api_token(&ci.token_hash).await),
        None
    );
    assert_eq!(
        ok("list after", members.list_api_tokens(&team).await),
        vec![deploy]
    );
    // Touching a revoked token does not bring it back.
    assert!(!ok(
        "touch revoked",
        members.touch_api_token(&ci.token_hash, at(200)).await
    ));
    assert_eq!(
        ok("still gone", members.find_api_token(&ci.token_hash).await),
        None
    );
    assert_eq!(
        ok("other team", members.list_api_tokens(&other).await),
        vec![foreign]
    );
}

async fn a_destinations_last_outcome_is_kept_newest_and_only_while_it_exists(stores: Stores) {
    let destinations = &stores.destinations;
    let (team, other) = (TeamId::generate(), TeamId::generate());
    let hook = destination(&team, "hook", 1);
    ok("insert", destinations.insert_destination(&hook).await);
    let outcome = |seconds, delivered: bool| LastOutcome {
        at: at(seconds),
        delivered,
        http_status: Some(if delivered { 200 } else { 500 }),
        error: (!delivered).then(|| "the destination answered HTTP 500".to_owned()),
    };
    let stored = |d: Option<Destination>| d.and_then(|d| d.last_outcome);
    assert_eq!(
        stored(ok(
            "get",
            destinations.get_destination(&team, &hook.id).await
        )),
        None
    );
    let failed = outcome(20, false);
    assert!(ok(
        "record",
        destinations
            .record_destination_outcome(&team, &hook.id, &failed)
            .await
    ));
    // An older outcome finishing late does not replace the newer one.
    assert!(ok(
        "record older",
        destinations
            .record_destination_outcome(&team, &hook.id, &outcome(10, true))
            .await
    ));
    assert_eq!(
        stored(ok(
            "get",
            destinations.get_destination(&team, &hook.id).await
        )),
        Some(failed)
    );
    let delivered = outcome(30, true);
    ok(
        "record newer",
        destinations
            .record_destination_outcome(&team, &hook.id, &delivered)
            .await,
    );
    let listed = ok("list", destinations.list_destinations(&team).await);
    assert_eq!(
        listed.first().and_then(|d| d.last_outcome.clone()),
        Some(delivered.clone())
    );
    // Another team's id changes nothing; a deleted destination is not brought back.
    assert!(!ok(
        "foreign",
        destinations
            .record_destination_outcome(&other, &hook.id, &outcome(40, false))
            .await
    ));
    assert_eq!(
        stored(ok(
            "get",
            destinations.get_destination(&team, &hook.id).await
        )),
        Some(delivered)
    );
    assert!(ok(
        "delete",
        destinations.delete_destination(&team, &hook.id).await
    ));
    assert!(!ok(
        "gone",
        destinations
            .record_destination_outcome(&team, &hook.id, &outcome(50, true))
            .await
    ));
    assert_eq!(
        ok(
            "get gone",
            destinations.get_destination(&team, &hook.id).await
        ),
        None
    );
}
