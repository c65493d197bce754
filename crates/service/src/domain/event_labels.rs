//! Event types in words, for filters and forms (the raw type stays the value sent).

use std::borrow::Cow;

use super::events;

/// "App version state changed" for `shipwatch.app_version.state_changed`. Types without a
/// wording of their own (added later) are spelt out from their name, so none shows raw.
pub fn event_type_label(event_type: &str) -> Cow<'static, str> {
    let known = match event_type {
        events::APP_VERSION_STATE_CHANGED => "App version state changed",
        events::BUILD_PROCESSING_STATE_CHANGED => "Build processing state changed",
        events::BUILD_BETA_STATE_CHANGED => "TestFlight (beta) state of a build changed",
        events::PHASED_RELEASE_STATE_CHANGED => "Phased release state changed",
        events::ACCOUNT_ACTION_REQUIRED => "Account needs action",
        events::KEY_STATUS_CHANGED => "API key status changed",
        events::TEST => "Test message",
        events::PLAY_RELEASE_STATE_CHANGED => "Google Play release state changed",
        events::KEY_PUSH_DEGRADED => "Push notifications of a key degraded",
        events::TESTFLIGHT_FEEDBACK_RECEIVED => "TestFlight feedback received",
        other => return Cow::Owned(spelt_out(other)),
    };
    Cow::Borrowed(known)
}

/// `shipwatch.some_thing.happened` -> "Some thing happened".
fn spelt_out(event_type: &str) -> String {
    let words = event_type
        .strip_prefix("shipwatch.")
        .unwrap_or(event_type)
        .replace(['.', '_'], " ");
    let mut chars = words.trim().chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_else(|| event_type.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::known_event_types;

    #[test]
    fn every_known_type_has_words_and_unknown_ones_are_spelt_out() {
        assert_eq!(
            event_type_label(events::APP_VERSION_STATE_CHANGED),
            "App version state changed"
        );
        for event_type in known_event_types() {
            let label = event_type_label(event_type);
            assert!(
                !label.contains("shipwatch") && !label.contains('_'),
                "{label}"
            );
        }
        assert_eq!(
            event_type_label("shipwatch.review.submission_created"),
            "Review submission created"
        );
        assert_eq!(event_type_label(""), "");
    }
}
