//! Push provisioning against the fake App Store Connect (webhook bodies validated against the
//! spec, roles simulated), on both stores: one webhook per app for Admin and App Manager keys,
//! reused on the next run, others' webhooks untouched; `unavailable` for a Developer key; `off`
//! without a public URL; repair of a webhook deleted, disabled or repointed behind our back;
//! `degraded` when an app is full; webhooks and secrets removed with the key.

use std::sync::Arc;

use chrono::Utc;
use shipwatch_adapters::app_store_connect::AppStoreConnectAccounts;
use shipwatch_adapters::app_store_connect_webhooks::AscWebhookAdmin;
use shipwatch_service::model::{ApiKeyRecord, PushStatus, SecretName, TeamId};
use shipwatch_service::ports::Stores;
use shipwatch_service::push::{EVENT_TYPES, MESSAGE_UNAVAILABLE, PushService, key_prefix};
use shipwatch_shared::asc::{AscClient, AscConfig};
use shipwatch_shared::clock::ManualClock;
use shipwatch_tests::app::{Backend, fresh_stores};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeRole, MAX_WEBHOOKS_PER_APP};
use shipwatch_tests::store_contract::TempDir;
use shipwatch_tests::test_keys::TestKey;

shipwatch_tests::on_both_stores!(
    admin_and_app_manager_keys_get_one_webhook_per_app_and_reuse_it,
    a_developer_key_gets_push_unavailable_naming_the_roles_that_enable_it,
    without_a_public_url_push_is_off_and_nothing_is_created,
    webhooks_deleted_disabled_or_repointed_behind_our_back_are_repaired,
    a_full_app_makes_push_degraded_and_foreign_webhooks_stay,
    removing_the_key_deletes_its_webhooks_and_their_secrets,
    the_hourly_health_check_re_enables_what_apple_disabled_and_skips_fresh_keys,
    push_turning_degraded_is_announced_once_and_routed_by_workflows,
);

const PUBLIC_URL: &str = "https://shipwatch.example.com";
const APPS: [&str; 2] = ["6450000001", "6450000002"];

struct Setup {
    fake: FakeAsc,
    key: TestKey,
    stores: Stores,
    record: ApiKeyRecord,
    push: PushService,
    clock: Arc<ManualClock>,
    _dir: TempDir,
}

async fn setup(backend: Backend, role: FakeRole, public_url: Option<&str>) -> Setup {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    fake.register_key(&key);
    fake.set_role(&key.key_id, role);
    for (i, app) in APPS.iter().enumerate() {
        fake.add_app(
            &key.issuer_id,
            FakeApp::new(app, &format!("App {i}"), &format!("com.example.app{i}")),
        );
    }
    let dir = TempDir::new("push");
    let stores = fresh_stores(backend, dir.path()).await;
    let team = TeamId::generate();
    let record = key.seed_valid(&stores, &team, "key", Utc::now()).await;
    let client = AscClient::new(AscConfig::new(&fake.base_url()).unwrap()).unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let push = PushService::new(
        stores.clone(),
        AppStoreConnectAccounts::port(client.clone()),
        Arc::new(AscWebhookAdmin::new(client)),
        clock.clone(),
        public_url.map(str::to_owned),
    );
    Setup {
        fake,
        key,
        stores,
        record,
        push,
        clock,
        _dir: dir,
    }
}

async fn stored(setup: &Setup) -> ApiKeyRecord {
    setup
        .stores
        .keys
        .get_key_by_id(&setup.record.id)
        .await
        .unwrap()
        .unwrap()
}

async fn admin_and_app_manager_keys_get_one_webhook_per_app_and_reuse_it(backend: Backend) {
    for role in [FakeRole::Admin, FakeRole::AppManager] {
        let setup = setup(backend, role, Some(PUBLIC_URL)).await;
        let state = setup
            .push
            .reconcile(&setup.record.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.status, PushStatus::Active, "{role:?}: {state:?}");
        assert_eq!(state.webhooks.len(), APPS.len());
        let prefix = key_prefix(PUBLIC_URL, setup.record.id.as_str());
        for app in APPS {
            let hooks = setup.fake.webhooks_of(app);
            assert_eq!(hooks.len(), 1, "{role:?} app {app}");
            let hook = &hooks[0];
            assert!(hook.enabled);
            assert!(hook.url.starts_with(&prefix), "{}", hook.url);
            assert!(!hook.url.contains(&hook.secret), "no secret in the URL");
            let mut types = hook.event_types.clone();
            types.sort();
            let mut wanted: Vec<String> = EVENT_TYPES.iter().map(|t| t.to_string()).collect();
            wanted.sort();
            assert_eq!(types, wanted);
            // The secret Apple signs with is the one in our secret store.
            let ours = state.webhooks.iter().find(|w| w.app_id == app).unwrap();
            assert_eq!(ours.webhook_id, hook.id);
            let secret = setup
                .stores
                .secrets
                .get_secret(&SecretName::for_webhook(
                    &setup.record.team_id,
                    &ours.reference,
                ))
                .await
                .unwrap()
                .expect("webhook secret stored");
            assert_eq!(secret.expose(), hook.secret);
        }
        assert_eq!(stored(&setup).await.push, Some(state.clone()));

        // The next run (an hourly check, a sweep) reuses them.
        let again = setup
            .push
            .reconcile(&setup.record.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.status, PushStatus::Active);
        assert_eq!(again.webhooks, state.webhooks);
        for app in APPS {
            assert_eq!(setup.fake.webhooks_of(app).len(), 1);
        }
    }
}

async fn a_developer_key_gets_push_unavailable_naming_the_roles_that_enable_it(backend: Backend) {
    let setup = setup(backend, FakeRole::Developer, Some(PUBLIC_URL)).await;
    let state = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, PushStatus::Unavailable);
    let message = state.message.clone().unwrap();
    assert_eq!(message, MESSAGE_UNAVAILABLE);
    assert!(message.contains("Admin") && message.contains("App Manager"));
    for app in APPS {
        assert!(setup.fake.webhooks_of(app).is_empty());
    }
    assert_eq!(stored(&setup).await.push, Some(state));
    // The key itself stays valid: polling goes on.
    assert_eq!(
        stored(&setup).await.status,
        shipwatch_service::model::KeyStatus::Valid
    );
}

async fn without_a_public_url_push_is_off_and_nothing_is_created(backend: Backend) {
    let setup = setup(backend, FakeRole::Admin, None).await;
    let state = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, PushStatus::Off);
    assert!(state.webhooks.is_empty());
    for app in APPS {
        assert!(setup.fake.webhooks_of(app).is_empty());
    }
    assert_eq!(
        setup.fake.total_requests(),
        0,
        "off costs no App Store Connect request"
    );
}

async fn webhooks_deleted_disabled_or_repointed_behind_our_back_are_repaired(backend: Backend) {
    let setup = setup(backend, FakeRole::Admin, Some(PUBLIC_URL)).await;
    let first = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    let hook0 = setup.fake.webhooks_of(APPS[0])[0].clone();
    let hook1 = setup.fake.webhooks_of(APPS[1])[0].clone();
    setup.fake.remove_webhook(&hook0.id);
    setup.fake.change_webhook(&hook1.id, |w| w.enabled = false);

    let repaired = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repaired.status, PushStatus::Active);
    let now0 = setup.fake.webhooks_of(APPS[0]);
    assert_eq!(now0.len(), 1, "re-created");
    assert_ne!(now0[0].id, hook0.id);
    let now1 = setup.fake.webhooks_of(APPS[1]);
    assert_eq!(now1.len(), 1);
    assert_eq!(now1[0].id, hook1.id, "the same webhook, re-enabled");
    assert!(now1[0].enabled);
    // The old secret of the re-created webhook is gone; the kept one's is unchanged.
    let old0 = first.webhooks.iter().find(|w| w.app_id == APPS[0]).unwrap();
    assert!(
        setup
            .stores
            .secrets
            .get_secret(&SecretName::for_webhook(
                &setup.record.team_id,
                &old0.reference
            ))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(now1[0].secret, hook1.secret);

    // Repointed elsewhere: ours (by id) gets a URL and a secret we hold again.
    setup.fake.change_webhook(&hook1.id, |w| {
        w.url = "https://elsewhere.example.com/x".into()
    });
    let rekeyed = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rekeyed.status, PushStatus::Active);
    let hook = &setup.fake.webhooks_of(APPS[1])[0];
    assert_eq!(hook.id, hook1.id);
    let ours = rekeyed
        .webhooks
        .iter()
        .find(|w| w.app_id == APPS[1])
        .unwrap();
    assert!(hook.url.ends_with(&ours.reference));
    let secret = setup
        .stores
        .secrets
        .get_secret(&SecretName::for_webhook(
            &setup.record.team_id,
            &ours.reference,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose(), hook.secret);
}

async fn a_full_app_makes_push_degraded_and_foreign_webhooks_stay(backend: Backend) {
    let setup = setup(backend, FakeRole::Admin, Some(PUBLIC_URL)).await;
    let foreign: Vec<String> = (0..MAX_WEBHOOKS_PER_APP)
        .map(|i| {
            setup
                .fake
                .add_foreign_webhook(APPS[0], &format!("https://other.example.com/{i}"))
        })
        .collect();
    let state = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, PushStatus::Degraded);
    assert!(state.message.as_deref().unwrap().contains(APPS[0]));
    let left: Vec<String> = setup
        .fake
        .webhooks_of(APPS[0])
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(left, foreign, "others' webhooks untouched, none added");
    assert_eq!(
        setup.fake.webhooks_of(APPS[1]).len(),
        1,
        "the other app still gets one"
    );
    // No orphan secret for the webhook that could not be created.
    assert_eq!(state.webhooks.len(), 1);
}

async fn removing_the_key_deletes_its_webhooks_and_their_secrets(backend: Backend) {
    let setup = setup(backend, FakeRole::Admin, Some(PUBLIC_URL)).await;
    let foreign = setup
        .fake
        .add_foreign_webhook(APPS[0], "https://other.example.com/keep");
    let state = setup
        .push
        .reconcile(&setup.record.id)
        .await
        .unwrap()
        .unwrap();
    setup.push.remove(&stored(&setup).await).await.unwrap();
    let left: Vec<String> = setup
        .fake
        .webhooks_of(APPS[0])
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(left, vec![foreign]);
    assert!(setup.fake.webhooks_of(APPS[1]).is_empty());
    for webhook in &state.webhooks {
        assert!(
            setup
                .stores
                .secrets
                .get_secret(&SecretName::for_webhook(
                    &setup.record.team_id,
                    &webhook.reference
                ))
                .await
                .unwrap()
                .is_none()
        );
    }
    let _ = &setup.key;
}

async fn the_hourly_health_check_re_enables_what_apple_disabled_and_skips_fresh_keys(
    backend: Backend,
) {
    let setup = setup(backend, FakeRole::Admin, Some(PUBLIC_URL)).await;
    // Never checked: the check provisions it.
    setup.push.check_due().await;
    assert_eq!(
        stored(&setup).await.push.unwrap().status,
        PushStatus::Active
    );
    let hook = setup.fake.webhooks_of(APPS[0])[0].clone();
    // Apple disables it after failed deliveries.
    setup.fake.change_webhook(&hook.id, |w| w.enabled = false);
    setup.fake.reset_counters();
    // Checked minutes ago: not due, nothing read.
    setup.clock.advance(std::time::Duration::from_secs(600));
    setup.push.check_due().await;
    assert_eq!(setup.fake.total_requests(), 0);
    assert!(!setup.fake.webhooks_of(APPS[0])[0].enabled);
    // An hour later: re-enabled, the same webhook.
    setup.clock.advance(std::time::Duration::from_secs(3600));
    setup.push.check_due().await;
    let now = setup.fake.webhooks_of(APPS[0]);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id, hook.id);
    assert!(now[0].enabled);
    assert_eq!(
        stored(&setup).await.push.unwrap().status,
        PushStatus::Active
    );
}

/// The team's `shipwatch.key.push_degraded` events, each with its deliveries.
async fn degraded_events(setup: &Setup) -> Vec<shipwatch_service::model::EventWithDeliveries> {
    let query = shipwatch_service::model::EventQuery {
        app_id: None,
        event_type: Some("shipwatch.key.push_degraded".into()),
        text: None,
        limit: 50,
        cursor: None,
    };
    setup
        .stores
        .sweeps
        .list_events(&setup.record.team_id, &query)
        .await
        .unwrap()
        .items
}

async fn push_turning_degraded_is_announced_once_and_routed_by_workflows(backend: Backend) {
    use shipwatch_tests::store_contract::{destination, workflow};
    let setup = setup(backend, FakeRole::Admin, Some(PUBLIC_URL)).await;
    let team = &setup.record.team_id;
    let target = destination(team, "ops", 0);
    setup
        .stores
        .destinations
        .insert_destination(&target)
        .await
        .unwrap();
    let mut route = workflow(team, &target.id, "push problems", 0);
    route.event_types = vec!["shipwatch.key.push_degraded".into()];
    setup
        .stores
        .workflows
        .insert_workflow(&route)
        .await
        .unwrap();

    setup.push.check_due().await;
    assert_eq!(
        stored(&setup).await.push.unwrap().status,
        PushStatus::Active
    );
    assert!(
        degraded_events(&setup).await.is_empty(),
        "active is not announced"
    );

    // Our webhook deleted behind our back and the app filled up: it cannot be repaired.
    let ours = setup.fake.webhooks_of(APPS[0])[0].id.clone();
    setup.fake.remove_webhook(&ours);
    let foreign: Vec<String> = (0..MAX_WEBHOOKS_PER_APP)
        .map(|i| {
            setup
                .fake
                .add_foreign_webhook(APPS[0], &format!("https://other.example.com/{i}"))
        })
        .collect();
    // Two hourly checks find it degraded; only the first announces it.
    for _ in 0..2 {
        setup.clock.advance(std::time::Duration::from_secs(3601));
        setup.push.check_due().await;
        assert_eq!(
            stored(&setup).await.push.unwrap().status,
            PushStatus::Degraded
        );
    }
    let events = degraded_events(&setup).await;
    assert_eq!(events.len(), 1, "announced once: {events:?}");
    let data = events[0].event.data.to_json();
    assert_eq!(data["key"]["id"], setup.record.id.as_str());
    assert_eq!(data["key"]["key_id"], setup.key.key_id.as_str());
    assert_eq!(
        (data["old_push"].as_str(), data["new_push"].as_str()),
        (Some("active"), Some("degraded"))
    );
    assert!(
        data["message"].as_str().unwrap().contains(APPS[0]),
        "{data}"
    );
    assert_eq!(
        events[0].deliveries.len(),
        1,
        "routed to the workflow's destination"
    );
    assert_eq!(events[0].deliveries[0].destination_id, target.id);

    // Room again: active; degraded once more later is a new transition, announced again.
    setup.fake.remove_webhook(&foreign[0]);
    setup.clock.advance(std::time::Duration::from_secs(3601));
    setup.push.check_due().await;
    assert_eq!(
        stored(&setup).await.push.unwrap().status,
        PushStatus::Active
    );
    let ours = setup
        .fake
        .webhooks_of(APPS[0])
        .into_iter()
        .find(|w| !foreign.contains(&w.id))
        .unwrap();
    setup.fake.remove_webhook(&ours.id);
    setup
        .fake
        .add_foreign_webhook(APPS[0], "https://other.example.com/again");
    setup.clock.advance(std::time::Duration::from_secs(3601));
    setup.push.check_due().await;
    assert_eq!(degraded_events(&setup).await.len(), 2);
}
