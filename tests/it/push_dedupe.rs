//! Push notification dedupe is durable, on both stores: a `data.id` handled by one receiver is a
//! duplicate for another one over the same store (another Lambda instance, or the local server
//! after a restart) for 7 days, and handled again after; a bad signature writes nothing, so the
//! genuine notification with that id is still handled; a notification whose sweep could not be
//! asked for is forgotten, so Apple's retry is handled. Pings are recorded the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hmac::Mac as _;
use shipwatch_service::model::*;
use shipwatch_service::ports::Stores;
use shipwatch_service::push::receiver::{KeySweepTrigger, PushReceiver, Received};
use shipwatch_shared::clock::{Clock, ManualClock};
use shipwatch_tests::app::{Backend, fresh_stores};
use shipwatch_tests::store_contract::{api_key, team};

shipwatch_tests::on_both_stores!(
    a_data_id_is_handled_once_across_receivers_for_seven_days,
    a_failed_sweep_request_lets_the_redelivery_through,
);

const REFERENCE: &str = "00112233445566778899aabbccddeeff";
const SECRET: &str = "webhook-secret-for-the-dedupe-test";

/// Counts the sweeps asked for; fails the first `failures` of them.
#[derive(Default)]
struct CountingTrigger {
    asked: AtomicUsize,
    failures: AtomicUsize,
}

#[async_trait]
impl KeySweepTrigger for CountingTrigger {
    async fn sweep_key(&self, _key: &KeyRecordId) -> Result<(), String> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("queue unavailable".into());
        }
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn read_feedback(
        &self,
        key: &KeyRecordId,
        _feedback: &shipwatch_service::push::feedback::FeedbackRef,
    ) -> Result<(), String> {
        self.sweep_key(key).await
    }
}

/// A valid key with one webhook of ours and its secret, as provisioning leaves it.
async fn provisioned_key(stores: &Stores, clock: &ManualClock) -> KeyRecordId {
    let team = team("Dedupe");
    stores.teams.insert_team(&team).await.unwrap();
    let mut key = api_key(&team.id, "DEDUPE0001", 0);
    key.status = KeyStatus::Valid;
    key.push = Some(PushState {
        status: PushStatus::Active,
        message: None,
        webhooks: vec![PushWebhook {
            reference: REFERENCE.into(),
            app_id: "6450000001".into(),
            webhook_id: "w-1".into(),
        }],
        checked_at: clock.now(),
    });
    stores.keys.insert_key(&key).await.unwrap();
    stores
        .secrets
        .put_secret(
            &SecretName::for_webhook(&team.id, REFERENCE),
            &SecretValue::new(SECRET.into()),
        )
        .await
        .unwrap();
    key.id
}

fn signed(body: &serde_json::Value) -> (Vec<u8>, String) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&bytes);
    let signature = format!("hmacsha256={}", hex::encode(mac.finalize().into_bytes()));
    (bytes, signature)
}

fn state_notification(data_id: &str) -> serde_json::Value {
    shipwatch_tests::fake_asc::notification_body(
        "appStoreVersionAppVersionStateUpdated",
        data_id,
        ("appStoreVersions", "v-1"),
    )
}

async fn a_data_id_is_handled_once_across_receivers_for_seven_days(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stores = fresh_stores(backend, dir.path()).await;
    let clock = Arc::new(ManualClock::starting_now());
    let key = provisioned_key(&stores, &clock).await;
    let trigger = Arc::new(CountingTrigger::default());
    // Two receivers over one store: two Lambda instances, or one server before and after a restart.
    let first = PushReceiver::new(stores.clone(), clock.clone(), trigger.clone());
    let second = PushReceiver::new(stores.clone(), clock.clone(), trigger.clone());

    let (body, signature) = signed(&state_notification("n-1"));
    // A forged delivery of that id first: refused, and it must not spoil the genuine one.
    assert!(
        first
            .receive(&key, REFERENCE, Some("hmacsha256=00"), &body)
            .await
            .is_err()
    );
    let outcome = first
        .receive(&key, REFERENCE, Some(&signature), &body)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Received::SweepRequested { .. }),
        "{outcome:?}"
    );
    clock.advance(Duration::from_secs(2 * 24 * 3600));
    let outcome = second
        .receive(&key, REFERENCE, Some(&signature), &body)
        .await
        .unwrap();
    assert_eq!(outcome, Received::Duplicate, "redelivered two days later");
    assert_eq!(trigger.asked.load(Ordering::SeqCst), 1);

    // Pings are recorded too: the second receiver sees the first one's ping as handled.
    let ping = serde_json::json!({"data": {"type": "webhookPingCreated", "id": "p-1", "version": 1, "attributes": {}}});
    let (ping_body, ping_signature) = signed(&ping);
    assert_eq!(
        first
            .receive(&key, REFERENCE, Some(&ping_signature), &ping_body)
            .await
            .unwrap(),
        Received::Ping
    );
    assert_eq!(
        second
            .receive(&key, REFERENCE, Some(&ping_signature), &ping_body)
            .await
            .unwrap(),
        Received::Duplicate
    );

    // After the 7 days the id is forgotten (Apple no longer redelivers it by then).
    clock.advance(Duration::from_secs(5 * 24 * 3600 + 1));
    let fresh = PushReceiver::new(stores.clone(), clock.clone(), trigger.clone());
    let outcome = fresh
        .receive(&key, REFERENCE, Some(&signature), &body)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Received::SweepRequested { .. }),
        "{outcome:?}"
    );
    assert_eq!(trigger.asked.load(Ordering::SeqCst), 2);
}

async fn a_failed_sweep_request_lets_the_redelivery_through(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stores = fresh_stores(backend, dir.path()).await;
    let clock = Arc::new(ManualClock::starting_now());
    let key = provisioned_key(&stores, &clock).await;
    let trigger = Arc::new(CountingTrigger {
        asked: AtomicUsize::new(0),
        failures: AtomicUsize::new(1),
    });
    let (body, signature) = signed(&state_notification("n-2"));
    let receiver = PushReceiver::new(stores.clone(), clock.clone(), trigger.clone());
    assert!(
        receiver
            .receive(&key, REFERENCE, Some(&signature), &body)
            .await
            .is_err(),
        "the sweep could not be asked for"
    );
    // Apple's retry reaches another instance: handled.
    let other = PushReceiver::new(stores.clone(), clock.clone(), trigger.clone());
    let outcome = other
        .receive(&key, REFERENCE, Some(&signature), &body)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Received::SweepRequested { .. }),
        "{outcome:?}"
    );
    assert_eq!(trigger.asked.load(Ordering::SeqCst), 1);
}
