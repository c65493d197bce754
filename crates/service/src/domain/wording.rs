//! Words for people: Apple's enum strings, platforms and durations as a message should say them.

/// States whose words differ from the plain title-casing rule in [`state_words`].
const STATE_WORDING_EXCEPTIONS: &[(&str, &str)] = &[
    ("PREORDER_READY_FOR_SALE", "Pre-Order Ready for Sale"),
    ("PROCESSING_FOR_APP_STORE", "Processing for App Store"),
    ("NOT_APPLICABLE", "Not Applicable"),
];

/// Short words that stay lowercase inside a title ("Waiting for Review").
const LOWERCASE_JOINERS: &[&str] = &[
    "a", "an", "and", "for", "from", "of", "or", "the", "to", "with",
];

/// An App Store Connect state (or one of shipwatch's own key statuses) as people say it:
/// `WAITING_FOR_REVIEW` -> "Waiting for Review", `action_required` -> "Action Required".
/// Values Apple adds later are title-cased the same way, so they still read well.
pub fn state_words(state: &str) -> String {
    let normalized = state.trim().to_ascii_uppercase();
    if let Some((_, words)) = STATE_WORDING_EXCEPTIONS
        .iter()
        .find(|(known, _)| *known == normalized)
    {
        return (*words).to_owned();
    }
    title_case_snake(&normalized)
}

fn title_case_snake(snake: &str) -> String {
    let words: Vec<String> = snake
        .split(['_', ' ', '-'])
        .filter(|word| !word.is_empty())
        .enumerate()
        .map(|(position, word)| {
            let lower = word.to_ascii_lowercase();
            if position > 0 && LOWERCASE_JOINERS.contains(&lower.as_str()) {
                lower
            } else {
                capitalize(&lower)
            }
        })
        .collect();
    if words.is_empty() {
        return snake.to_owned();
    }
    words.join(" ")
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Apple's `Platform` values as Apple writes them (`IOS` -> "iOS"); unknown values title-cased.
pub fn platform_words(platform: &str) -> String {
    match platform.trim().to_ascii_uppercase().as_str() {
        "IOS" => "iOS".to_owned(),
        "MAC_OS" => "macOS".to_owned(),
        "TV_OS" => "tvOS".to_owned(),
        "VISION_OS" => "visionOS".to_owned(),
        "WATCH_OS" => "watchOS".to_owned(),
        other => title_case_snake(other),
    }
}

/// A duration at the precision a notification needs: "45 s", "12 min", "2 h 15 min", "3 d 4 h".
pub fn duration_words(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    if seconds < MINUTE {
        format!("{seconds} s")
    } else if seconds < HOUR {
        format!("{} min", seconds / MINUTE)
    } else if seconds < DAY {
        let (hours, minutes) = (seconds / HOUR, (seconds % HOUR) / MINUTE);
        if minutes == 0 {
            format!("{hours} h")
        } else {
            format!("{hours} h {minutes} min")
        }
    } else {
        let (days, hours) = (seconds / DAY, (seconds % DAY) / HOUR);
        if hours == 0 {
            format!("{days} d")
        } else {
            format!("{days} d {hours} h")
        }
    }
}

/// How a state reads for the people waiting on it; messages pick their colour from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Approved, ready, live, valid: good news.
    Good,
    /// Rejected, failed, invalid, revoked: someone has to act.
    Bad,
    /// Everything in between (waiting, in review, processing, paused).
    Neutral,
}

/// The outcome a state stands for. Unknown states are neutral.
pub fn state_outcome(state: &str) -> Outcome {
    match state.trim().to_ascii_uppercase().as_str() {
        // App Store versions
        "ACCEPTED"
        | "PENDING_APPLE_RELEASE"
        | "PENDING_DEVELOPER_RELEASE"
        | "READY_FOR_DISTRIBUTION"
        | "READY_FOR_SALE"
        | "PREORDER_READY_FOR_SALE"
        // builds and TestFlight
        | "VALID"
        | "READY_FOR_BETA_TESTING"
        | "IN_BETA_TESTING"
        | "BETA_APPROVED"
        | "APPROVED"
        // phased release
        | "COMPLETE" => Outcome::Good,
        "REJECTED"
        | "METADATA_REJECTED"
        | "INVALID_BINARY"
        | "FAILED"
        | "INVALID"
        | "PROCESSING_EXCEPTION"
        | "BETA_REJECTED"
        | "MISSING_EXPORT_COMPLIANCE" => Outcome::Bad,
        _ => Outcome::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of the state enums in Apple's OpenAPI spec 4.4.1 (`AppVersionState`,
    /// `AppStoreVersionState`, `Build.processingState`, `ExternalBetaState`, `InternalBetaState`,
    /// `BetaReviewState`, `PhasedReleaseState`) with the words people should read.
    const SPEC_STATES: &[(&str, &str)] = &[
        ("ACCEPTED", "Accepted"),
        ("DEVELOPER_REJECTED", "Developer Rejected"),
        ("DEVELOPER_REMOVED_FROM_SALE", "Developer Removed from Sale"),
        ("IN_REVIEW", "In Review"),
        ("INVALID_BINARY", "Invalid Binary"),
        ("METADATA_REJECTED", "Metadata Rejected"),
        ("NOT_APPLICABLE", "Not Applicable"),
        ("PENDING_APPLE_RELEASE", "Pending Apple Release"),
        ("PENDING_CONTRACT", "Pending Contract"),
        ("PENDING_DEVELOPER_RELEASE", "Pending Developer Release"),
        ("PREORDER_READY_FOR_SALE", "Pre-Order Ready for Sale"),
        ("PREPARE_FOR_SUBMISSION", "Prepare for Submission"),
        ("PROCESSING_FOR_APP_STORE", "Processing for App Store"),
        ("PROCESSING_FOR_DISTRIBUTION", "Processing for Distribution"),
        ("READY_FOR_DISTRIBUTION", "Ready for Distribution"),
        ("READY_FOR_REVIEW", "Ready for Review"),
        ("READY_FOR_SALE", "Ready for Sale"),
        ("REJECTED", "Rejected"),
        ("REMOVED_FROM_SALE", "Removed from Sale"),
        ("REPLACED_WITH_NEW_VERSION", "Replaced with New Version"),
        (
            "WAITING_FOR_EXPORT_COMPLIANCE",
            "Waiting for Export Compliance",
        ),
        ("WAITING_FOR_REVIEW", "Waiting for Review"),
        ("PROCESSING", "Processing"),
        ("FAILED", "Failed"),
        ("INVALID", "Invalid"),
        ("VALID", "Valid"),
        ("PROCESSING_EXCEPTION", "Processing Exception"),
        ("MISSING_EXPORT_COMPLIANCE", "Missing Export Compliance"),
        ("READY_FOR_BETA_TESTING", "Ready for Beta Testing"),
        ("IN_BETA_TESTING", "In Beta Testing"),
        ("EXPIRED", "Expired"),
        ("READY_FOR_BETA_SUBMISSION", "Ready for Beta Submission"),
        ("IN_EXPORT_COMPLIANCE_REVIEW", "In Export Compliance Review"),
        ("WAITING_FOR_BETA_REVIEW", "Waiting for Beta Review"),
        ("IN_BETA_REVIEW", "In Beta Review"),
        ("BETA_REJECTED", "Beta Rejected"),
        ("BETA_APPROVED", "Beta Approved"),
        ("APPROVED", "Approved"),
        ("INACTIVE", "Inactive"),
        ("ACTIVE", "Active"),
        ("PAUSED", "Paused"),
        ("COMPLETE", "Complete"),
    ];

    #[test]
    fn every_spec_state_reads_as_people_say_it() {
        for (state, words) in SPEC_STATES {
            assert_eq!(state_words(state), *words, "{state}");
        }
    }

    #[test]
    fn unknown_future_states_are_title_cased() {
        assert_eq!(
            state_words("WAITING_FOR_SOMETHING_NEW"),
            "Waiting for Something New"
        );
        assert_eq!(state_words("action_required"), "Action Required");
        assert_eq!(state_words("X"), "X");
        assert_eq!(state_words(""), "");
    }

    #[test]
    fn platforms_read_as_apple_writes_them() {
        assert_eq!(platform_words("IOS"), "iOS");
        assert_eq!(platform_words("MAC_OS"), "macOS");
        assert_eq!(platform_words("TV_OS"), "tvOS");
        assert_eq!(platform_words("VISION_OS"), "visionOS");
        assert_eq!(platform_words("CAR_OS"), "Car Os");
    }

    #[test]
    fn durations_keep_the_two_largest_units() {
        assert_eq!(duration_words(0), "0 s");
        assert_eq!(duration_words(59), "59 s");
        assert_eq!(duration_words(60), "1 min");
        assert_eq!(duration_words(12 * 60 + 30), "12 min");
        assert_eq!(duration_words(2 * 3600), "2 h");
        assert_eq!(duration_words(2 * 3600 + 15 * 60 + 9), "2 h 15 min");
        assert_eq!(duration_words(3 * 86400 + 4 * 3600 + 59), "3 d 4 h");
        assert_eq!(duration_words(86400), "1 d");
    }

    #[test]
    fn outcomes_follow_the_news() {
        assert_eq!(state_outcome("READY_FOR_DISTRIBUTION"), Outcome::Good);
        assert_eq!(state_outcome("BETA_APPROVED"), Outcome::Good);
        assert_eq!(state_outcome("REJECTED"), Outcome::Bad);
        assert_eq!(state_outcome("INVALID"), Outcome::Bad);
        assert_eq!(state_outcome("WAITING_FOR_REVIEW"), Outcome::Neutral);
        assert_eq!(state_outcome("SOMETHING_NEW"), Outcome::Neutral);
    }
}
