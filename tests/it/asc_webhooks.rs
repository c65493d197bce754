//! The App Store Connect client's webhook calls against the fake (bodies validated against the
//! spec's request schemas): create, list per app, patch, delete; a Developer key is refused.

use std::sync::Arc;

use shipwatch_shared::asc::*;
use shipwatch_tests::fake_asc::*;
use shipwatch_tests::test_keys::TestKey;

const APP: &str = "1000000001";

async fn setup(role: FakeRole) -> (FakeAsc, AscSession) {
    let fake = FakeAsc::start().await;
    let key = TestKey::generate();
    fake.register_key(&key);
    fake.set_role(&key.key_id, role);
    fake.add_app(&key.issuer_id, FakeApp::new(APP, "App", "com.example.app"));
    let client = AscClient::new(AscConfig::new(&fake.base_url()).unwrap()).unwrap();
    let session = client.session(Arc::new(key.credentials()));
    (fake, session)
}

fn new_webhook(url: &str) -> NewWebhook {
    NewWebhook {
        app_id: APP.to_owned(),
        name: "shipwatch".to_owned(),
        url: url.to_owned(),
        secret: "s3cr3t-value-for-signing".to_owned(),
        event_types: vec![
            "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED".to_owned(),
            "BUILD_UPLOAD_STATE_UPDATED".to_owned(),
        ],
    }
}

#[tokio::test]
async fn create_list_patch_delete_round_trip() {
    for role in [FakeRole::Admin, FakeRole::AppManager] {
        let (fake, session) = setup(role).await;
        let created = session
            .create_webhook(&new_webhook("https://push.example.com/v1/push/apple/w1"))
            .await
            .unwrap();
        assert!(created.enabled);
        assert_eq!(created.url, "https://push.example.com/v1/push/apple/w1");
        let stored = fake.webhooks_of(APP);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].secret, "s3cr3t-value-for-signing");

        let listed = session.list_app_webhooks(APP).await.unwrap();
        assert_eq!(listed, vec![created.clone()]);

        let patched = session
            .update_webhook(
                &created.id,
                &WebhookChange {
                    enabled: Some(false),
                    ..WebhookChange::default()
                },
            )
            .await
            .unwrap();
        assert!(!patched.enabled);
        assert!(!fake.webhooks_of(APP)[0].enabled);

        session.delete_webhook(&created.id).await.unwrap();
        assert!(fake.webhooks_of(APP).is_empty());
        // Deleting again: already gone counts as deleted.
        session.delete_webhook(&created.id).await.unwrap();
    }
}

#[tokio::test]
async fn a_developer_key_is_forbidden_to_manage_webhooks() {
    let (fake, session) = setup(FakeRole::Developer).await;
    let err = session
        .create_webhook(&new_webhook("https://push.example.com/v1/push/apple/w1"))
        .await
        .unwrap_err();
    assert!(matches!(err, AscError::Forbidden { .. }), "{err:?}");
    assert!(fake.webhooks_of(APP).is_empty());
}

#[tokio::test]
async fn the_fake_keeps_apples_limit_of_ten_per_app() {
    let (fake, session) = setup(FakeRole::Admin).await;
    for i in 0..MAX_WEBHOOKS_PER_APP {
        fake.add_foreign_webhook(APP, &format!("https://other.example.com/{i}"));
    }
    let err = session
        .create_webhook(&new_webhook("https://push.example.com/v1/push/apple/w1"))
        .await
        .unwrap_err();
    assert!(!matches!(err, AscError::Forbidden { .. }), "{err:?}");
    assert_eq!(fake.webhooks_of(APP).len(), MAX_WEBHOOKS_PER_APP);
}

#[test]
fn secrets_are_not_in_debug_output() {
    let new = new_webhook("https://push.example.com/x");
    assert!(!format!("{new:?}").contains("s3cr3t"));
    let change = WebhookChange {
        secret: Some("s3cr3t".into()),
        ..WebhookChange::default()
    };
    assert!(!format!("{change:?}").contains("s3cr3t"));
}
