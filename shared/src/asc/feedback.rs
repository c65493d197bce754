//! TestFlight feedback submissions (`GET /v1/betaFeedbackCrashSubmissions/{id}`,
//! `GET /v1/betaFeedbackScreenshotSubmissions/{id}`): what a feedback notification points at.
//! Only the fields an event shows are asked for (`fields[...]`), so the tester's email, name and
//! the screenshots never leave App Store Connect. Paths, parameters and attributes follow the
//! 4.4.1 OpenAPI spec (`betaFeedbackCrashSubmissions_getInstance`,
//! `betaFeedbackScreenshotSubmissions_getInstance`).

use serde::Deserialize;

use super::client::AscSession;
use super::error::AscError;
use super::jsonapi::{Document, PrimaryData};

/// Which kind of submission a feedback notification announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedbackKind {
    Crash,
    Screenshot,
}

impl FeedbackKind {
    /// The resource type (and path segment) of the submission.
    pub fn resource_type(self) -> &'static str {
        match self {
            Self::Crash => "betaFeedbackCrashSubmissions",
            Self::Screenshot => "betaFeedbackScreenshotSubmissions",
        }
    }
}

/// The attributes read: nothing that names the tester.
const SUBMISSION_FIELDS: &str = "createdDate,comment,deviceModel,osVersion,build";

/// One submission, as much of it as shipwatch shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackSubmission {
    pub id: String,
    pub kind: FeedbackKind,
    /// `createdDate`, as Apple wrote it (RFC 3339).
    pub created_date: Option<String>,
    pub comment: Option<String>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
    /// The build the tester ran (id, and its `version`, the build number, when included).
    pub build: Option<FeedbackBuild>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackBuild {
    pub id: String,
    pub version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubmissionAttributes {
    created_date: Option<String>,
    comment: Option<String>,
    device_model: Option<String>,
    os_version: Option<String>,
}

#[derive(Deserialize)]
struct BuildAttributes {
    version: Option<String>,
}

impl AscSession {
    /// The submission `id` of `kind`, with its build; `None` when Apple has no such submission
    /// (404: deleted, or not this key's).
    pub async fn get_feedback_submission(
        &self,
        kind: FeedbackKind,
        id: &str,
    ) -> Result<Option<FeedbackSubmission>, AscError> {
        let mut url = self.endpoint_with_segments(&["v1", kind.resource_type(), id]);
        url.query_pairs_mut()
            .append_pair(
                &format!("fields[{}]", kind.resource_type()),
                SUBMISSION_FIELDS,
            )
            .append_pair("include", "build")
            .append_pair("fields[builds]", "version");
        let document = match self.send_document(reqwest::Method::GET, &url, None).await {
            Ok(Some(document)) => document,
            Ok(None) => return Err(AscError::Decode("the answer has no body".into())),
            Err(AscError::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        submission_from(document, kind).map(Some)
    }
}

fn submission_from(document: Document, kind: FeedbackKind) -> Result<FeedbackSubmission, AscError> {
    let PrimaryData::One(resource) = document.data else {
        return Err(AscError::Decode(format!(
            "expected one {} in `data`",
            kind.resource_type()
        )));
    };
    let attributes: SubmissionAttributes = resource.attributes()?;
    let build = match resource.to_one("build") {
        Some(link) => {
            let version = document
                .included
                .iter()
                .find(|r| r.kind == link.kind && r.id == link.id)
                .map(|r| r.attributes::<BuildAttributes>())
                .transpose()?
                .and_then(|a| a.version);
            Some(FeedbackBuild {
                id: link.id.clone(),
                version,
            })
        }
        None => None,
    };
    Ok(FeedbackSubmission {
        id: resource.id.clone(),
        kind,
        created_date: attributes.created_date,
        comment: attributes.comment,
        device_model: attributes.device_model,
        os_version: attributes.os_version,
        build,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_is_read_with_its_included_build() {
        let body = br#"{
            "data": {
                "type": "betaFeedbackScreenshotSubmissions", "id": "s1",
                "attributes": {"createdDate": "2026-12-03T09:00:00Z", "comment": "Button is cut off",
                               "deviceModel": "iPhone16,1", "osVersion": "26.1"},
                "relationships": {"build": {"data": {"type": "builds", "id": "b1"}}}
            },
            "included": [{"type": "builds", "id": "b1", "attributes": {"version": "412"}}],
            "links": {"self": "https://api.appstoreconnect.apple.com/v1/betaFeedbackScreenshotSubmissions/s1"}
        }"#;
        let submission =
            submission_from(Document::parse(body).unwrap(), FeedbackKind::Screenshot).unwrap();
        assert_eq!(submission.comment.as_deref(), Some("Button is cut off"));
        assert_eq!(submission.device_model.as_deref(), Some("iPhone16,1"));
        assert_eq!(
            submission.build,
            Some(FeedbackBuild {
                id: "b1".into(),
                version: Some("412".into())
            })
        );
    }

    #[test]
    fn a_submission_without_build_or_comment_is_still_read() {
        let body = br#"{"data": {"type": "betaFeedbackCrashSubmissions", "id": "c1",
                        "attributes": {"createdDate": "2026-12-03T09:00:00Z"}}}"#;
        let submission =
            submission_from(Document::parse(body).unwrap(), FeedbackKind::Crash).unwrap();
        assert_eq!(submission.build, None);
        assert_eq!(submission.comment, None);
        assert!(
            submission_from(
                Document::parse(br#"{"data": []}"#).unwrap(),
                FeedbackKind::Crash
            )
            .is_err()
        );
    }
}
