//! What to do with one app's webhooks (pure): keep ours, repair it, create one, or give up
//! because the app is full. Ours is the webhook whose Apple id we recorded or whose URL is under
//! this key's receiver prefix; every other webhook is someone else's and is never touched.

use crate::model::PushWebhook;

/// The event types shipwatch subscribes to (contract section 7; `WebhookEventType` in the spec).
pub const EVENT_TYPES: [&str; 5] = [
    "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED",
    "BUILD_UPLOAD_STATE_UPDATED",
    "BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED",
    "BETA_FEEDBACK_CRASH_SUBMISSION_CREATED",
    "BETA_FEEDBACK_SCREENSHOT_SUBMISSION_CREATED",
];

/// Apple's limit of webhooks per app.
pub const MAX_WEBHOOKS_PER_APP: usize = 10;

/// The path of the receiver under `SHIPWATCH_PUBLIC_URL`.
pub const RECEIVER_PATH: &str = "/v1/push/apple";

/// A webhook as App Store Connect shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteWebhook {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    pub event_types: Vec<String>,
}

/// `{public_url}/v1/push/apple/{key}/`: every webhook of the key has a URL under it.
pub fn key_prefix(public_url: &str, key: &str) -> String {
    format!("{}{RECEIVER_PATH}/{key}/", public_url.trim_end_matches('/'))
}

/// What one app needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppAction {
    /// Ours exists, enabled, at its URL, with our event types.
    Keep(PushWebhook),
    /// Ours exists at its known URL but is disabled or lost event types: patch those.
    Restore(PushWebhook),
    /// Ours exists but its URL is not one we hold the secret of (repointed, or our record of
    /// it was lost): patch it with a new reference and a new secret.
    Rekey { webhook_id: String },
    /// None of ours: create one.
    Create,
    /// None of ours and the app already has Apple's maximum.
    Full,
}

/// Plans one app. `known` is what the key record holds for the app; the second value lists
/// further webhooks of ours on the app (duplicates) to delete.
pub fn plan_app(
    prefix: &str,
    known: Option<&PushWebhook>,
    remote: &[RemoteWebhook],
) -> (AppAction, Vec<String>) {
    let ours: Vec<&RemoteWebhook> = remote
        .iter()
        .filter(|w| known.is_some_and(|k| k.webhook_id == w.id) || w.url.starts_with(prefix))
        .collect();
    // Prefer the recorded one; the others are duplicates.
    let chosen = ours
        .iter()
        .find(|w| known.is_some_and(|k| k.webhook_id == w.id))
        .or_else(|| ours.first())
        .copied();
    let extras = ours
        .iter()
        .filter(|w| chosen.is_some_and(|c| c.id != w.id))
        .map(|w| w.id.clone())
        .collect();
    let action = match chosen {
        None if remote.len() >= MAX_WEBHOOKS_PER_APP => AppAction::Full,
        None => AppAction::Create,
        Some(webhook) => match known {
            Some(k)
                if k.webhook_id == webhook.id
                    && webhook.url == format!("{prefix}{}", k.reference) =>
            {
                if webhook.enabled && has_event_types(webhook) {
                    AppAction::Keep(k.clone())
                } else {
                    AppAction::Restore(k.clone())
                }
            }
            _ => AppAction::Rekey {
                webhook_id: webhook.id.clone(),
            },
        },
    };
    (action, extras)
}

fn has_event_types(webhook: &RemoteWebhook) -> bool {
    EVENT_TYPES
        .iter()
        .all(|wanted| webhook.event_types.iter().any(|t| t == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "https://sw.example.com/v1/push/apple/k1/";

    fn known(reference: &str, id: &str) -> PushWebhook {
        PushWebhook {
            reference: reference.into(),
            app_id: "app".into(),
            webhook_id: id.into(),
        }
    }

    fn remote(id: &str, url: &str, enabled: bool) -> RemoteWebhook {
        RemoteWebhook {
            id: id.into(),
            url: url.into(),
            enabled,
            event_types: EVENT_TYPES.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn prefix_ignores_a_trailing_slash() {
        assert_eq!(key_prefix("https://sw.example.com/", "k1"), PREFIX);
        assert_eq!(key_prefix("https://sw.example.com", "k1"), PREFIX);
    }

    #[test]
    fn no_webhook_of_ours_is_created_and_others_are_left_alone() {
        let others = vec![remote("x", "https://other.example.com/hook", true)];
        assert_eq!(plan_app(PREFIX, None, &others), (AppAction::Create, vec![]));
    }

    #[test]
    fn a_full_app_is_not_given_an_eleventh() {
        let others: Vec<_> = (0..10)
            .map(|i| remote(&format!("x{i}"), "https://other.example.com/hook", true))
            .collect();
        assert_eq!(plan_app(PREFIX, None, &others), (AppAction::Full, vec![]));
    }

    #[test]
    fn a_healthy_webhook_is_kept() {
        let k = known("r1", "w1");
        let list = vec![remote("w1", &format!("{PREFIX}r1"), true)];
        assert_eq!(
            plan_app(PREFIX, Some(&k), &list),
            (AppAction::Keep(k), vec![])
        );
    }

    #[test]
    fn a_disabled_or_narrowed_webhook_is_restored() {
        let k = known("r1", "w1");
        let list = vec![remote("w1", &format!("{PREFIX}r1"), false)];
        assert_eq!(
            plan_app(PREFIX, Some(&k), &list).0,
            AppAction::Restore(k.clone())
        );
        let mut narrowed = remote("w1", &format!("{PREFIX}r1"), true);
        narrowed.event_types.truncate(1);
        assert_eq!(
            plan_app(PREFIX, Some(&k), &[narrowed]).0,
            AppAction::Restore(k)
        );
    }

    #[test]
    fn a_repointed_webhook_of_ours_is_rekeyed() {
        let k = known("r1", "w1");
        let list = vec![remote("w1", "https://elsewhere.example.com/", true)];
        assert_eq!(
            plan_app(PREFIX, Some(&k), &list).0,
            AppAction::Rekey {
                webhook_id: "w1".into()
            }
        );
    }

    #[test]
    fn ours_found_by_url_without_a_record_is_reused_not_duplicated() {
        let list = vec![
            remote("w1", &format!("{PREFIX}lost"), true),
            remote("w2", &format!("{PREFIX}lost2"), true),
        ];
        assert_eq!(
            plan_app(PREFIX, None, &list),
            (
                AppAction::Rekey {
                    webhook_id: "w1".into()
                },
                vec!["w2".to_owned()]
            )
        );
    }

    #[test]
    fn a_deleted_webhook_is_created_again() {
        let k = known("r1", "w1");
        assert_eq!(plan_app(PREFIX, Some(&k), &[]).0, AppAction::Create);
    }
}
