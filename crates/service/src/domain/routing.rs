//! Which destinations an event goes to, as the team's workflows say.

use super::events::EVENT_TYPES;
use crate::model::{DestinationId, EventRecord, Workflow};

/// The wildcard of `Workflow::app_ids` and `Workflow::event_types`.
pub const ALL: &str = "*";

/// `true` for the event types of `docs/events.md`. Workflows accept these or `"*"`.
pub fn is_known_event_type(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

/// Every event type a workflow may name.
pub fn known_event_types() -> &'static [&'static str] {
    &EVENT_TYPES
}

/// The destinations `event` is delivered to: those of every workflow whose event types match
/// (`"*"` or the event's type) and whose apps match (`"*"` or the event's app id). Events that
/// concern no single app (account, key) match every app filter, since they concern all the
/// team's apps. Each destination appears once, in the order of the first matching workflow.
pub fn destinations_for(event: &EventRecord, workflows: &[Workflow]) -> Vec<DestinationId> {
    let mut destinations: Vec<DestinationId> = Vec::new();
    for workflow in workflows {
        if workflow.team_id != event.team_id
            || !matches_event_type(workflow, &event.event_type)
            || !matches_app(workflow, event.app_id.as_deref())
        {
            continue;
        }
        if !destinations.contains(&workflow.destination_id) {
            destinations.push(workflow.destination_id.clone());
        }
    }
    destinations
}

fn matches_event_type(workflow: &Workflow, event_type: &str) -> bool {
    workflow
        .event_types
        .iter()
        .any(|wanted| wanted == ALL || wanted == event_type)
}

fn matches_app(workflow: &Workflow, app_id: Option<&str>) -> bool {
    match app_id {
        None => true,
        Some(app_id) => workflow
            .app_ids
            .iter()
            .any(|wanted| wanted == ALL || wanted == app_id),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::domain::event_data::EventData;
    use crate::model::{EventId, TeamId, WorkflowId};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn event(event_type: &str, app_id: Option<&str>) -> EventRecord {
        EventRecord {
            id: EventId("e1".into()),
            team_id: TeamId("team1".into()),
            key_record_id: None,
            app_id: app_id.map(str::to_owned),
            event_type: event_type.into(),
            time: now(),
            data: EventData::Other(json!({})),
            summary: String::new(),
        }
    }

    fn workflow(destination: &str, app_ids: &[&str], event_types: &[&str]) -> Workflow {
        Workflow {
            id: WorkflowId::generate(),
            team_id: TeamId("team1".into()),
            name: "w".into(),
            destination_id: DestinationId(destination.into()),
            app_ids: app_ids.iter().map(|s| (*s).to_owned()).collect(),
            event_types: event_types.iter().map(|s| (*s).to_owned()).collect(),
            created_at: now(),
        }
    }

    fn ids(destinations: Vec<DestinationId>) -> Vec<String> {
        destinations.into_iter().map(|d| d.0).collect()
    }

    const VERSION: &str = "shipwatch.app_version.state_changed";
    const BUILD: &str = "shipwatch.build.processing_state_changed";
    const KEY: &str = "shipwatch.key.status_changed";

    #[test]
    fn app_and_type_filters_and_wildcards() {
        let workflows = [
            workflow("all", &["*"], &["*"]),
            workflow("app1-versions", &["app1"], &[VERSION]),
            workflow("app2-any", &["app2"], &["*"]),
            workflow("any-builds", &["*"], &[BUILD]),
        ];
        assert_eq!(
            ids(destinations_for(&event(VERSION, Some("app1")), &workflows)),
            ["all", "app1-versions"]
        );
        assert_eq!(
            ids(destinations_for(&event(BUILD, Some("app1")), &workflows)),
            ["all", "any-builds"]
        );
        assert_eq!(
            ids(destinations_for(&event(VERSION, Some("app2")), &workflows)),
            ["all", "app2-any"]
        );
        assert_eq!(
            ids(destinations_for(&event(VERSION, Some("app3")), &workflows)),
            ["all"]
        );
    }

    #[test]
    fn events_without_an_app_go_to_every_workflow_whose_types_match() {
        let workflows = [
            workflow("app1-any", &["app1"], &["*"]),
            workflow("app2-keys", &["app2"], &[KEY]),
            workflow("app2-versions", &["app2"], &[VERSION]),
        ];
        assert_eq!(
            ids(destinations_for(&event(KEY, None), &workflows)),
            ["app1-any", "app2-keys"]
        );
    }

    #[test]
    fn one_delivery_per_destination_even_when_several_workflows_match() {
        let workflows = [
            workflow("d1", &["*"], &["*"]),
            workflow("d1", &["app1"], &[VERSION]),
            workflow("d2", &["app1"], &["*"]),
        ];
        assert_eq!(
            ids(destinations_for(&event(VERSION, Some("app1")), &workflows)),
            ["d1", "d2"]
        );
    }

    #[test]
    fn no_workflows_or_other_teams_workflows_route_nowhere() {
        assert!(destinations_for(&event(VERSION, Some("app1")), &[]).is_empty());
        let mut foreign = workflow("d1", &["*"], &["*"]);
        foreign.team_id = TeamId("team2".into());
        assert!(destinations_for(&event(VERSION, Some("app1")), &[foreign]).is_empty());
    }

    #[test]
    fn known_event_types_are_recognised() {
        assert!(is_known_event_type(VERSION));
        assert!(is_known_event_type(
            "shipwatch.phased_release.state_changed"
        ));
        assert!(is_known_event_type("shipwatch.account.action_required"));
        assert!(!is_known_event_type("shipwatch.app_version"));
        assert!(!is_known_event_type("*"));
        assert!(!is_known_event_type(""));
        assert!(is_known_event_type("shipwatch.play_release.state_changed"));
        assert!(is_known_event_type("shipwatch.key.push_degraded"));
        assert!(is_known_event_type(
            "shipwatch.testflight.feedback_received"
        ));
        assert_eq!(known_event_types().len(), 10);
    }
}
