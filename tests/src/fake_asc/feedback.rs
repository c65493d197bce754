//! The fake's TestFlight feedback (`GET /v1/betaFeedbackCrashSubmissions/{id}`,
//! `GET /v1/betaFeedbackScreenshotSubmissions/{id}`): submissions with every attribute Apple
//! has, the tester's email included, so a test can prove shipwatch never asks for it. Sparse
//! fieldsets and `include=build` are honoured as Apple does; queries are checked against the spec
//! by the read-only part that serves them.

use super::*;

/// One feedback submission as the fake stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeFeedback {
    pub id: String,
    pub app_id: String,
    /// `true`: a crash submission; `false`: a screenshot submission.
    pub crash: bool,
    pub build_id: Option<String>,
    pub comment: Option<String>,
    pub email: String,
    pub device_model: String,
    pub os_version: String,
    pub created_date: DateTime<Utc>,
}

impl FakeFeedback {
    pub fn screenshot(id: &str, app_id: &str, build_id: Option<&str>) -> Self {
        Self {
            id: id.to_owned(),
            app_id: app_id.to_owned(),
            crash: false,
            build_id: build_id.map(str::to_owned),
            comment: Some("The Save button is cut off on this screen".to_owned()),
            email: "tester.private@example.com".to_owned(),
            device_model: "iPhone16,1".to_owned(),
            os_version: "26.1".to_owned(),
            created_date: Utc::now(),
        }
    }

    pub fn crash(id: &str, app_id: &str, build_id: Option<&str>) -> Self {
        Self {
            crash: true,
            comment: None,
            ..Self::screenshot(id, app_id, build_id)
        }
    }

    fn kind(&self) -> &'static str {
        if self.crash {
            "betaFeedbackCrashSubmissions"
        } else {
            "betaFeedbackScreenshotSubmissions"
        }
    }
}

impl FakeAsc {
    /// Adds a submission to the account of its app (replacing one with the same id).
    pub fn add_feedback(&self, feedback: FakeFeedback) {
        let mut world = self.shared.world();
        let account = account_of_app(&mut world, &feedback.app_id);
        account.feedback.retain(|f| f.id != feedback.id);
        account.feedback.push(feedback);
    }

    /// Deletes a submission (a tester's feedback removed in App Store Connect).
    pub fn remove_feedback(&self, id: &str) {
        let mut world = self.shared.world();
        for account in world.accounts.values_mut() {
            account.feedback.retain(|f| f.id != id);
        }
    }
}

/// The document of one submission, or the detail of a 404.
pub(super) fn feedback_document(
    context: &Context<'_>,
    account: &Account,
    kind: &str,
) -> Result<Value, String> {
    let id = path_id(context.path, 3);
    let Some(feedback) = account
        .feedback
        .iter()
        .find(|f| f.id == id && f.kind() == kind)
    else {
        return Err(format!(
            "There is no resource of type '{kind}' with id '{id}'"
        ));
    };
    let request = context.request;
    let mut included = Vec::new();
    let build_link = context.relationship_links(kind, &feedback.id, "build");
    let build = match &feedback.build_id {
        Some(build_id) if request.include.contains("build") => {
            if let Some(build) = account.builds.iter().find(|b| &b.id == build_id) {
                included.push(resource(
                    request,
                    context,
                    "builds",
                    &build.id,
                    vec![
                        ("version", Some(json!(build.version))),
                        ("uploadedDate", Some(date(&build.uploaded_date))),
                        ("processingState", Some(json!(build.processing_state))),
                    ],
                    vec![],
                ));
            }
            json!({ "links": build_link, "data": { "type": "builds", "id": build_id } })
        }
        _ => json!({ "links": build_link }),
    };
    let tester = json!({ "links": context.relationship_links(kind, &feedback.id, "tester") });
    let data = resource(
        request,
        context,
        kind,
        &feedback.id,
        vec![
            ("createdDate", Some(date(&feedback.created_date))),
            ("comment", feedback.comment.as_ref().map(|c| json!(c))),
            ("email", Some(json!(feedback.email))),
            ("deviceModel", Some(json!(feedback.device_model))),
            ("osVersion", Some(json!(feedback.os_version))),
            ("locale", Some(json!("en-US"))),
            ("timeZone", Some(json!("Europe/Paris"))),
            ("connectionType", Some(json!("WIFI"))),
            ("batteryPercentage", Some(json!(81))),
            ("appPlatform", Some(json!("IOS"))),
            ("devicePlatform", Some(json!("IOS"))),
            ("deviceFamily", Some(json!("IPHONE"))),
        ],
        vec![("build", build), ("tester", tester)],
    );
    let mut document = json!({ "data": data, "links": { "self": context.self_link() } });
    if !included.is_empty() {
        document["included"] = Value::Array(included);
    }
    Ok(document)
}
