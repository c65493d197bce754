//! Pure domain costs per key and sweep: snapshot diffing (1, 20 and 200 apps with one version and
//! one build each; unchanged and with one version changed), the snapshot's JSON codec, and
//! rendering one event for every destination kind.

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use shipwatch_service::domain::diff::diff;
use shipwatch_service::domain::events::{EventContext, event_for_change};
use shipwatch_service::domain::render::{cloud_event, discord, slack, teams};
use shipwatch_service::domain::snapshot::{
    AppSnapshot, BuildSnapshot, KeySnapshot, PhasedReleaseSeen, StateSince, VersionSnapshot,
};
use shipwatch_service::model::{EventRecord, KeyRecordId, TeamId};

const APP_COUNTS: [usize; 3] = [1, 20, 200];

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default() + TimeDelta::minutes(minutes)
}

/// A key's snapshot with `apps` apps, one App Store version and one TestFlight build each.
fn snapshot(apps: usize) -> KeySnapshot {
    let mut snapshot = KeySnapshot::default();
    for index in 0..apps {
        let app_id = (1_000_000_000 + index).to_string();
        let versions = BTreeMap::from([(
            format!("{app_id}-v1"),
            VersionSnapshot {
                version_string: "1.0".into(),
                platform: "IOS".into(),
                state: "WAITING_FOR_REVIEW".into(),
                release_type: Some("MANUAL".into()),
                state_since: StateSince {
                    at: at(0),
                    at_baseline: false,
                },
                phased_release: Some(PhasedReleaseSeen::Absent),
            },
        )]);
        snapshot.apps.insert(
            app_id.clone(),
            AppSnapshot {
                name: format!("Bench App {index}"),
                bundle_id: format!("com.example.bench.app{index}"),
                versions,
            },
        );
        snapshot.builds.insert(
            format!("{app_id}-b1"),
            BuildSnapshot {
                app_id,
                version: "1".into(),
                short_version: Some("1.0".into()),
                platform: Some("IOS".into()),
                processing_state: "VALID".into(),
                external_build_state: Some("IN_BETA_TESTING".into()),
                internal_build_state: Some("IN_BETA_TESTING".into()),
                beta_review_state: Some("APPROVED".into()),
                uploaded_date: Some(at(-(index as i64))),
            },
        );
    }
    snapshot
}

/// `prev` with the first app's version moved to `IN_REVIEW`.
fn with_one_change(prev: &KeySnapshot) -> KeySnapshot {
    let mut next = prev.clone();
    if let Some(version) = next
        .apps
        .values_mut()
        .next()
        .and_then(|app| app.versions.values_mut().next())
    {
        version.state = "IN_REVIEW".into();
        version.state_since = StateSince {
            at: at(30),
            at_baseline: false,
        };
    }
    next
}

fn diffing(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    for apps in APP_COUNTS {
        let prev = snapshot(apps);
        let same = prev.clone();
        let changed = with_one_change(&prev);
        assert!(diff(Some(&prev), &same).is_empty());
        assert_eq!(diff(Some(&prev), &changed).len(), 1);
        group.bench_with_input(BenchmarkId::new("unchanged", apps), &apps, |b, _| {
            b.iter(|| diff(black_box(Some(&prev)), black_box(&same)))
        });
        group.bench_with_input(BenchmarkId::new("1 change", apps), &apps, |b, _| {
            b.iter(|| diff(black_box(Some(&prev)), black_box(&changed)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("snapshot json");
    for apps in [20, 200] {
        let snapshot = snapshot(apps);
        let json = snapshot.to_json().expect("encodes");
        group.bench_with_input(BenchmarkId::new("encode", apps), &apps, |b, _| {
            b.iter(|| black_box(&snapshot).to_json().expect("encodes"))
        });
        group.bench_with_input(BenchmarkId::new("decode", apps), &apps, |b, _| {
            b.iter(|| KeySnapshot::from_json(black_box(&json)).expect("decodes"))
        });
    }
    group.finish();
}

/// The event of a version entering review, as the sweep records it.
fn event() -> EventRecord {
    let prev = snapshot(1);
    let next = with_one_change(&prev);
    let changes = diff(Some(&prev), &next);
    let context = EventContext {
        team_id: TeamId("bench-team".into()),
        key_record_id: KeyRecordId("bench-key".into()),
        time: at(30),
    };
    event_for_change(&changes[0], &context)
}

fn rendering(c: &mut Criterion) {
    let event = event();
    let mut group = c.benchmark_group("render");
    group.bench_function("slack", |b| b.iter(|| slack(black_box(&event))));
    group.bench_function("discord", |b| b.iter(|| discord(black_box(&event))));
    group.bench_function("teams", |b| b.iter(|| teams(black_box(&event))));
    group.bench_function("cloud_event", |b| b.iter(|| cloud_event(black_box(&event))));
    group.finish();
}

criterion_group!(benches, diffing, rendering);
criterion_main!(benches);
