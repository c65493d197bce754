//! Typed models of what a monitor reads from App Store Connect.
//!
//! Every enum keeps values it does not know (Apple adds states over time) as `Unknown(String)`,
//! and serializes back to Apple's exact string, so new states flow through instead of failing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! apple_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version of shipwatch does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every value the App Store Connect OpenAPI spec lists.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// Apple's exact string for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(raw) => raw,
                }
            }

            pub fn from_apple(raw: &str) -> Self {
                match raw {
                    $($text => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(raw: &str) -> Self {
                Self::from_apple(raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Ok(Self::from_apple(&raw))
            }
        }
    };
}

apple_enum!(
    /// `Platform`.
    Platform {
        Ios => "IOS",
        MacOs => "MAC_OS",
        TvOs => "TV_OS",
        VisionOs => "VISION_OS",
    }
);

apple_enum!(
    /// `AppVersionState`: the current state of an App Store version.
    AppVersionState {
        Accepted => "ACCEPTED",
        DeveloperRejected => "DEVELOPER_REJECTED",
        InReview => "IN_REVIEW",
        InvalidBinary => "INVALID_BINARY",
        MetadataRejected => "METADATA_REJECTED",
        PendingAppleRelease => "PENDING_APPLE_RELEASE",
        PendingDeveloperRelease => "PENDING_DEVELOPER_RELEASE",
        PrepareForSubmission => "PREPARE_FOR_SUBMISSION",
        ProcessingForDistribution => "PROCESSING_FOR_DISTRIBUTION",
        ReadyForDistribution => "READY_FOR_DISTRIBUTION",
        ReadyForReview => "READY_FOR_REVIEW",
        Rejected => "REJECTED",
        ReplacedWithNewVersion => "REPLACED_WITH_NEW_VERSION",
        WaitingForExportCompliance => "WAITING_FOR_EXPORT_COMPLIANCE",
        WaitingForReview => "WAITING_FOR_REVIEW",
    }
);

apple_enum!(
    /// `AppStoreVersionState`: the deprecated `appStoreState`, read only as a fallback.
    AppStoreState {
        Accepted => "ACCEPTED",
        DeveloperRemovedFromSale => "DEVELOPER_REMOVED_FROM_SALE",
        DeveloperRejected => "DEVELOPER_REJECTED",
        InReview => "IN_REVIEW",
        InvalidBinary => "INVALID_BINARY",
        MetadataRejected => "METADATA_REJECTED",
        PendingAppleRelease => "PENDING_APPLE_RELEASE",
        PendingContract => "PENDING_CONTRACT",
        PendingDeveloperRelease => "PENDING_DEVELOPER_RELEASE",
        PrepareForSubmission => "PREPARE_FOR_SUBMISSION",
        PreorderReadyForSale => "PREORDER_READY_FOR_SALE",
        ProcessingForAppStore => "PROCESSING_FOR_APP_STORE",
        ReadyForReview => "READY_FOR_REVIEW",
        ReadyForSale => "READY_FOR_SALE",
        Rejected => "REJECTED",
        RemovedFromSale => "REMOVED_FROM_SALE",
        WaitingForExportCompliance => "WAITING_FOR_EXPORT_COMPLIANCE",
        WaitingForReview => "WAITING_FOR_REVIEW",
        ReplacedWithNewVersion => "REPLACED_WITH_NEW_VERSION",
        NotApplicable => "NOT_APPLICABLE",
    }
);

impl AppStoreState {
    /// The `appVersionState` this deprecated state corresponds to. States with no counterpart
    /// (sale availability, contracts) pass through verbatim as `Unknown`, so nothing is invented.
    pub fn to_app_version_state(&self) -> AppVersionState {
        match self {
            Self::ReadyForSale | Self::PreorderReadyForSale => {
                AppVersionState::ReadyForDistribution
            }
            Self::ProcessingForAppStore => AppVersionState::ProcessingForDistribution,
            other => AppVersionState::from_apple(other.as_str()),
        }
    }
}

apple_enum!(
    /// `releaseType` of an App Store version.
    ReleaseType {
        Manual => "MANUAL",
        AfterApproval => "AFTER_APPROVAL",
        Scheduled => "SCHEDULED",
    }
);

apple_enum!(
    /// A build's `processingState`.
    BuildProcessingState {
        Processing => "PROCESSING",
        Failed => "FAILED",
        Invalid => "INVALID",
        Valid => "VALID",
    }
);

apple_enum!(
    /// `ExternalBetaState` (`buildBetaDetails.externalBuildState`).
    ExternalBetaState {
        Processing => "PROCESSING",
        ProcessingException => "PROCESSING_EXCEPTION",
        MissingExportCompliance => "MISSING_EXPORT_COMPLIANCE",
        ReadyForBetaTesting => "READY_FOR_BETA_TESTING",
        InBetaTesting => "IN_BETA_TESTING",
        Expired => "EXPIRED",
        ReadyForBetaSubmission => "READY_FOR_BETA_SUBMISSION",
        InExportComplianceReview => "IN_EXPORT_COMPLIANCE_REVIEW",
        WaitingForBetaReview => "WAITING_FOR_BETA_REVIEW",
        InBetaReview => "IN_BETA_REVIEW",
        BetaRejected => "BETA_REJECTED",
        BetaApproved => "BETA_APPROVED",
        NotApplicable => "NOT_APPLICABLE",
    }
);

apple_enum!(
    /// `InternalBetaState` (`buildBetaDetails.internalBuildState`).
    InternalBetaState {
        Processing => "PROCESSING",
        ProcessingException => "PROCESSING_EXCEPTION",
        MissingExportCompliance => "MISSING_EXPORT_COMPLIANCE",
        ReadyForBetaTesting => "READY_FOR_BETA_TESTING",
        InBetaTesting => "IN_BETA_TESTING",
        Expired => "EXPIRED",
        InExportComplianceReview => "IN_EXPORT_COMPLIANCE_REVIEW",
    }
);

apple_enum!(
    /// `BetaReviewState` (`betaAppReviewSubmissions.betaReviewState`).
    BetaReviewState {
        WaitingForReview => "WAITING_FOR_REVIEW",
        InReview => "IN_REVIEW",
        Rejected => "REJECTED",
        Approved => "APPROVED",
    }
);

apple_enum!(
    /// `PhasedReleaseState`.
    PhasedReleaseState {
        Inactive => "INACTIVE",
        Active => "ACTIVE",
        Paused => "PAUSED",
        Complete => "COMPLETE",
    }
);

apple_enum!(
    /// `reviewSubmissions.state`.
    ReviewSubmissionState {
        ReadyForReview => "READY_FOR_REVIEW",
        WaitingForReview => "WAITING_FOR_REVIEW",
        InReview => "IN_REVIEW",
        UnresolvedIssues => "UNRESOLVED_ISSUES",
        Canceling => "CANCELING",
        Completing => "COMPLETING",
        Complete => "COMPLETE",
    }
);

/// An app (`apps` resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub bundle_id: String,
}

/// An app with its App Store versions, as `GET /v1/apps?include=appStoreVersions` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppWithVersions {
    pub app: App,
    pub versions: Vec<AppStoreVersion>,
}

/// An App Store version (`appStoreVersions` resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStoreVersion {
    pub id: String,
    pub version_string: String,
    pub platform: Platform,
    /// `appVersionState`, or the deprecated `appStoreState` mapped onto it when absent.
    pub state: AppVersionState,
    /// The deprecated `appStoreState` as Apple sent it, if it did.
    pub app_store_state: Option<AppStoreState>,
    pub release_type: Option<ReleaseType>,
    pub created_date: Option<DateTime<Utc>>,
}

/// A build's pre-release version (`preReleaseVersions` resource): the marketing version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreReleaseVersion {
    pub id: String,
    pub version: String,
    pub platform: Platform,
}

/// A build with the related resources a monitor needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildWithDetails {
    pub id: String,
    pub app_id: String,
    /// The build number (`CFBundleVersion`).
    pub version: String,
    pub uploaded_date: Option<DateTime<Utc>>,
    pub expired: bool,
    pub processing_state: BuildProcessingState,
    pub pre_release_version: Option<PreReleaseVersion>,
    pub external_build_state: Option<ExternalBetaState>,
    pub internal_build_state: Option<InternalBetaState>,
    pub beta_review_state: Option<BetaReviewState>,
    /// The app, when App Store Connect included it.
    pub app: Option<App>,
}

/// The phased release of an App Store version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasedRelease {
    pub id: String,
    pub state: PhasedReleaseState,
    pub current_day_number: Option<u32>,
    pub start_date: Option<DateTime<Utc>>,
}

/// A review submission (`reviewSubmissions` resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSubmission {
    pub id: String,
    pub app_id: String,
    pub platform: Option<Platform>,
    pub state: Option<ReviewSubmissionState>,
    pub submitted_date: Option<DateTime<Utc>>,
    /// The App Store version under review, if any.
    pub app_store_version_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip_through_serde() {
        for raw in AppVersionState::KNOWN {
            let parsed: AppVersionState = serde_json::from_value(serde_json::json!(raw)).unwrap();
            assert!(parsed.is_known(), "{raw}");
            assert_eq!(
                serde_json::to_value(&parsed).unwrap(),
                serde_json::json!(raw)
            );
        }
    }

    #[test]
    fn unknown_values_are_kept_verbatim() {
        let parsed: ExternalBetaState =
            serde_json::from_value(serde_json::json!("IN_SPACE_REVIEW")).unwrap();
        assert_eq!(parsed, ExternalBetaState::Unknown("IN_SPACE_REVIEW".into()));
        assert_eq!(parsed.as_str(), "IN_SPACE_REVIEW");
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            "\"IN_SPACE_REVIEW\""
        );
    }

    #[test]
    fn deprecated_store_state_maps_to_version_state() {
        assert_eq!(
            AppStoreState::ReadyForSale.to_app_version_state(),
            AppVersionState::ReadyForDistribution
        );
        assert_eq!(
            AppStoreState::WaitingForReview.to_app_version_state(),
            AppVersionState::WaitingForReview
        );
        assert_eq!(
            AppStoreState::PendingContract.to_app_version_state(),
            AppVersionState::Unknown("PENDING_CONTRACT".into())
        );
    }
}
