//! `shipwatch-bench criterion-table`: the criterion micro-benchmarks (`cargo bench`) as one
//! Markdown table, read from criterion's saved estimates (`<target>/criterion/**/new/`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::BenchError;
use crate::table::Table;

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// One row per benchmark whose estimates were written at or after `since`, sorted by id.
pub fn table(criterion_dir: &Path, since: SystemTime) -> Result<Table, BenchError> {
    let mut found = Vec::new();
    collect_estimates(criterion_dir, &mut found)?;
    let mut rows = Vec::new();
    for new_dir in found {
        let estimates_path = new_dir.join("estimates.json");
        let written = std::fs::metadata(&estimates_path)
            .and_then(|meta| meta.modified())
            .map_err(BenchError::io(format!(
                "reading {}",
                estimates_path.display()
            )))?;
        if written < since {
            continue;
        }
        let benchmark: Benchmark = read_json(&new_dir.join("benchmark.json"))?;
        let estimates: Estimates = read_json(&estimates_path)?;
        rows.push((benchmark.full_id, estimates));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut table = Table::new(
        "Micro-benchmarks (criterion; time per call)",
        &["benchmark", "median", "mean", "mean 95 % CI"],
    );
    for (id, estimates) in rows {
        table.row(vec![
            id,
            duration_words(estimates.median.point_estimate),
            duration_words(estimates.mean.point_estimate),
            format!(
                "{} .. {}",
                duration_words(estimates.mean.confidence_interval.lower_bound),
                duration_words(estimates.mean.confidence_interval.upper_bound)
            ),
        ]);
    }
    Ok(table)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, BenchError> {
    let raw = std::fs::read(path).map_err(BenchError::io(format!("reading {}", path.display())))?;
    serde_json::from_slice(&raw).map_err(|err| BenchError::setup(&path.display().to_string(), err))
}

/// Every `new/` folder holding criterion estimates under `dir`.
fn collect_estimates(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), BenchError> {
    let entries =
        std::fs::read_dir(dir).map_err(BenchError::io(format!("listing {}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(BenchError::io(format!("listing {}", dir.display())))?
            .path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new")
            && path.join("estimates.json").is_file()
        {
            found.push(path);
        } else {
            collect_estimates(&path, found)?;
        }
    }
    Ok(())
}

/// Nanoseconds in the unit that keeps 3 significant digits readable.
pub fn duration_words(nanoseconds: f64) -> String {
    if nanoseconds < 1_000.0 {
        format!("{nanoseconds:.1} ns")
    } else if nanoseconds < 1_000_000.0 {
        format!("{:.2} µs", nanoseconds / 1_000.0)
    } else if nanoseconds < 1_000_000_000.0 {
        format!("{:.2} ms", nanoseconds / 1_000_000.0)
    } else {
        format!("{:.2} s", nanoseconds / 1_000_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_units() {
        assert_eq!(duration_words(12.34), "12.3 ns");
        assert_eq!(duration_words(45_600.0), "45.60 µs");
        assert_eq!(duration_words(7_890_000.0), "7.89 ms");
        assert_eq!(duration_words(2_500_000_000.0), "2.50 s");
    }

    #[test]
    fn reads_fresh_estimates_only() {
        let root = tempfile::tempdir().unwrap();
        let new_dir = root.path().join("diff/unchanged/20/new");
        std::fs::create_dir_all(&new_dir).unwrap();
        std::fs::write(
            new_dir.join("benchmark.json"),
            r#"{"full_id":"diff/unchanged/20","group_id":"diff"}"#,
        )
        .unwrap();
        let interval = r#"{"confidence_level":0.95,"lower_bound":900.0,"upper_bound":1100.0}"#;
        std::fs::write(
            new_dir.join("estimates.json"),
            format!(r#"{{"mean":{{"point_estimate":1000.0,"standard_error":1.0,"confidence_interval":{interval}}},"median":{{"point_estimate":990.0,"standard_error":1.0,"confidence_interval":{interval}}}}}"#),
        )
        .unwrap();
        let rendered = table(root.path(), SystemTime::UNIX_EPOCH).unwrap().render();
        assert!(
            rendered.contains("| diff/unchanged/20 | 990.0 ns | 1.00 µs | 900.0 ns .. 1.10 µs |"),
            "{rendered}"
        );
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(
            !table(root.path(), later)
                .unwrap()
                .render()
                .contains("diff/unchanged")
        );
    }
}
