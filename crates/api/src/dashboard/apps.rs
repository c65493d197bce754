//! `/apps/{id}`: an app's versions as a timeline of their states with how long each lasted
//! (server-rendered SVG, no script), and the median review time, from the team's history.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use shipwatch_service::queries::timeline::{
    VersionTimeline, human_duration, median_review_seconds, version_timelines,
};
use shipwatch_service::queries::{AppsFilter, HistoryFilter, MAX_APPS_LIMIT, MAX_EVENTS_LIMIT};

use super::Signed;
use super::page::{self, Nav};
use crate::ApiState;

/// History pages read for one app's timeline (most recent first), so a page stays quick.
const MAX_HISTORY_PAGES: usize = 10;
const WIDTH: f64 = 900.0;
const LABEL: f64 = 120.0;
const ROW: f64 = 34.0;

/// A CSS class per state family (colours live in the stylesheet: no inline styles under the CSP).
fn state_class(state: &str) -> &'static str {
    match state {
        "WAITING_FOR_REVIEW" | "IN_REVIEW" => "tl-review",
        "READY_FOR_SALE"
        | "READY_FOR_DISTRIBUTION"
        | "PENDING_DEVELOPER_RELEASE"
        | "PROCESSING_FOR_DISTRIBUTION" => "tl-ready",
        "REJECTED" | "METADATA_REJECTED" | "INVALID_BINARY" | "DEVELOPER_REJECTED" => "tl-rejected",
        _ => "tl-other",
    }
}

/// The timeline as SVG: one row per version, one bar per state, scaled from the first start to
/// `now`; each bar titled with its state and duration.
pub fn timeline_svg(timelines: &[VersionTimeline], now: DateTime<Utc>) -> Markup {
    let start = timelines
        .iter()
        .flat_map(|t| t.segments.iter().map(|s| s.start))
        .min()
        .unwrap_or(now);
    let span = ((now - start).num_seconds().max(1)) as f64;
    let x = |at: DateTime<Utc>| {
        LABEL + (at - start).num_seconds().max(0) as f64 / span * (WIDTH - LABEL)
    };
    let height = ROW * timelines.len() as f64 + 10.0;
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (height)}
            role="img" aria-label="Version states over time" {
            @for (row, timeline) in timelines.iter().enumerate() {
                @let y = row as f64 * ROW + 5.0;
                text x="0" y=(y + 20.0) class="tl-label" { (timeline.label) }
                @for segment in &timeline.segments {
                    @let (x0, x1) = (x(segment.start), x(segment.end));
                    @let w = (x1 - x0).max(2.0);
                    rect x=(format!("{x0:.1}")) y=(y) width=(format!("{w:.1}")) height=(ROW - 8.0)
                        class=(state_class(&segment.state)) {
                        title { (segment.state) ": " (human_duration(segment.seconds()))
                            @if segment.current { " (so far)" } }
                    }
                    @if w > 70.0 {
                        text x=(format!("{:.1}", x0 + 4.0)) y=(y + 17.0) class="tl-text" { (human_duration(segment.seconds())) }
                    }
                }
            }
        }
    }
}

pub async fn show(
    State(state): State<ApiState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let Ok(apps) = state
        .apps
        .page(
            &signed.team,
            AppsFilter {
                limit: Some(MAX_APPS_LIMIT),
                cursor: None,
            },
        )
        .await
    else {
        return page::unavailable();
    };
    let Some(app) = apps.apps.into_iter().find(|a| a.id == id) else {
        return page::not_found();
    };
    let mut events = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_HISTORY_PAGES {
        let filter = HistoryFilter {
            app_id: Some(app.id.clone()),
            event_type: Some("shipwatch.app_version.state_changed".to_owned()),
            text: None,
            limit: Some(MAX_EVENTS_LIMIT),
            cursor,
        };
        let Ok(found) = state.history.page(&signed.team, filter).await else {
            return page::unavailable();
        };
        events.extend(found.events.into_iter().map(|e| e.event));
        cursor = found.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let now = Utc::now();
    let timelines = version_timelines(&events, now);
    let median = median_review_seconds(&timelines);
    let body = html! {
        p.hint { (app.bundle_id) }
        div.card {
            p { "Median review time (waiting for review + in review): "
                strong id="median-review" { @if let Some(s) = median { (human_duration(s)) } @else { "no finished review yet" } } }
        }
        div.card {
            h2 { "Version states" }
            @if timelines.is_empty() {
                p { "No state changes recorded yet." }
            } @else {
                (timeline_svg(&timelines, now))
                p.hint.legend { span.tl-key.tl-review {} " review " span.tl-key.tl-ready {} " ready / released " span.tl-key.tl-rejected {} " rejected " span.tl-key.tl-other {} " other" }
            }
        }
    };
    page::signed_page(
        &app.name,
        Nav::Overview,
        &signed.team.name,
        &signed.session.csrf_token,
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipwatch_service::queries::timeline::Segment;

    #[test]
    fn bars_are_drawn_per_state_with_durations() {
        let at = |h: i64| DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap_or_default();
        let timelines = vec![VersionTimeline {
            version_id: "v".into(),
            label: "IOS 1.0".into(),
            segments: vec![
                Segment {
                    state: "WAITING_FOR_REVIEW".into(),
                    start: at(0),
                    end: at(5),
                    current: false,
                },
                Segment {
                    state: "IN_REVIEW".into(),
                    start: at(5),
                    end: at(6),
                    current: false,
                },
                Segment {
                    state: "READY_FOR_SALE".into(),
                    start: at(6),
                    end: at(10),
                    current: true,
                },
            ],
        }];
        let svg = timeline_svg(&timelines, at(10)).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("WAITING_FOR_REVIEW: 5 h 0 min"));
        assert!(svg.contains("READY_FOR_SALE: 4 h 0 min (so far)"));
        assert!(svg.contains(r#"class="tl-review""#) && svg.contains(r#"class="tl-ready""#));
        assert!(svg.contains(">IOS 1.0<"));
        // The first bar starts at the label column, the last ends at the right edge.
        assert!(svg.contains(r#"x="120.0""#));
        assert!(!svg.contains("style="), "no inline styles under the CSP");
    }
}
