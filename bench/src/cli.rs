//! Command line of `shipwatch-bench` (no argument parser dependency: a handful of `--name value`
//! flags).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use shipwatch_service::config::DEFAULT_SWEEP_CONCURRENCY;

use crate::BenchError;
use crate::apps_endpoint::AppsEndpointOptions;
use crate::planner::PlannerMode;
use crate::push_latency::PushLatencyOptions;
use crate::sweep::SweepBenchOptions;

pub const USAGE: &str = "shipwatch-bench <command> [--flag value ...]

commands (each prints Markdown tables on stdout, progress on stderr):
  sweep         [--keys 100,1000,10000] [--apps 10] [--latency-ms 100] [--concurrency N]
                [--widths 64,128,256,512] [--width-keys 10000]
                one baseline and one steady sweep per key count, embedded store, fake ASC with latency
  requests      [--apps 1,20,200,1000]
                App Store Connect requests per key per sweep, by apps per key
  store-writes  [--keys 100] [--apps 10]
                DynamoDB / Secrets Manager requests and units per sweep, 0 %, 1 %, 100 % changed (moto)
  cold-start    [--runs 20] BINARY...
                Lambda cold start against a runtime API stand-in, and binary size
  apps-endpoint [--apps 100,400,1000] [--clients 50] [--listings 10] [--limit 0]
                GET /v1/apps latency under concurrent clients, embedded store
  dashboard     [--apps 200] [--events 10000] [--requests 50]
                server time to render the overview and the history pages, embedded store
  planner       [--keys 10000,100000,1000000]
                scheduled sweep shard planning: time and peak memory, paged vs one list
  push-latency  [--keys 10] [--apps 10] [--changes 100] [--interval-s 60] [--intervals 2] [--seed 11]
                detection latency, push + polling versus polling only, and ASC requests per change
  push-feedback [--submissions 100] [--gap-ms 50]
                TestFlight feedback: notification to destination latency, ASC requests, exactly once
  criterion-table --dir TARGET/criterion [--since UNIX_SECONDS]
                the criterion micro-benchmarks saved since then, as one table
internal (spawned by `sweep`):
  fake-asc      --apps N --latency-ms L
  sweep-run     --keys N --apps A --concurrency C --asc-url URL
internal (spawned by `planner`):
  planner-run   --keys N --mode paged|one-list";

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Sweep(SweepBenchOptions),
    Requests {
        apps: Vec<usize>,
    },
    StoreWrites {
        keys: u64,
        apps: usize,
    },
    ColdStart {
        runs: usize,
        binaries: Vec<PathBuf>,
    },
    CriterionTable {
        dir: PathBuf,
        since_unix_seconds: u64,
    },
    FakeAsc {
        apps: usize,
        latency: Duration,
    },
    SweepRun {
        keys: u64,
        apps: usize,
        concurrency: usize,
        asc_url: String,
    },
    Planner {
        keys: Vec<u64>,
    },
    AppsEndpoint(AppsEndpointOptions),
    PushLatency(PushLatencyOptions),
    PushFeedback {
        submissions: usize,
        gap_ms: u64,
    },
    Dashboard {
        apps: usize,
        events: usize,
        requests: usize,
    },
    PlannerRun {
        keys: u64,
        mode: PlannerMode,
    },
}

struct Flags {
    values: HashMap<String, String>,
    positional: Vec<String>,
}

impl Flags {
    fn parse(args: &[String], known: &[&str]) -> Result<Self, BenchError> {
        let mut values = HashMap::new();
        let mut positional = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                if !known.contains(&name) {
                    return Err(BenchError::Usage(format!("unknown flag --{name}")));
                }
                let value = iter
                    .next()
                    .ok_or_else(|| BenchError::Usage(format!("--{name} needs a value")))?;
                values.insert(name.to_owned(), value.clone());
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Self { values, positional })
    }

    fn one<T: FromStr>(&self, name: &str, default: T) -> Result<T, BenchError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(raw) => {
                raw.trim().replace('_', "").parse().map_err(|_| {
                    BenchError::Usage(format!("--{name} {raw:?} is not a valid value"))
                })
            }
        }
    }

    fn required<T: FromStr>(&self, name: &str) -> Result<T, BenchError> {
        let raw = self
            .values
            .get(name)
            .ok_or_else(|| BenchError::Usage(format!("--{name} is required")))?;
        raw.trim()
            .parse()
            .map_err(|_| BenchError::Usage(format!("--{name} {raw:?} is not a valid value")))
    }

    fn list<T: FromStr + Clone>(&self, name: &str, default: &[T]) -> Result<Vec<T>, BenchError> {
        match self.values.get(name) {
            None => Ok(default.to_vec()),
            Some(raw) if raw.trim().is_empty() => Ok(Vec::new()),
            Some(raw) => raw
                .split(',')
                .map(|item| {
                    item.trim().replace('_', "").parse().map_err(|_| {
                        BenchError::Usage(format!("--{name}: {item:?} is not a valid value"))
                    })
                })
                .collect(),
        }
    }

    fn no_positional(&self) -> Result<(), BenchError> {
        match self.positional.first() {
            Some(extra) => Err(BenchError::Usage(format!("unexpected argument {extra:?}"))),
            None => Ok(()),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, BenchError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(BenchError::Usage("no command given".into()));
    };
    let command = match command.as_str() {
        "sweep" => {
            let flags = Flags::parse(
                rest,
                &[
                    "keys",
                    "apps",
                    "latency-ms",
                    "concurrency",
                    "widths",
                    "width-keys",
                ],
            )?;
            flags.no_positional()?;
            Command::Sweep(SweepBenchOptions {
                keys: flags.list("keys", &[100, 1_000, 10_000])?,
                apps_per_key: flags.one("apps", 10)?,
                latency: Duration::from_millis(flags.one("latency-ms", 100)?),
                concurrency: flags.one("concurrency", DEFAULT_SWEEP_CONCURRENCY)?,
                widths: flags.list("widths", &[64, 128, 256, 512])?,
                width_keys: flags.one("width-keys", 10_000)?,
            })
        }
        "requests" => {
            let flags = Flags::parse(rest, &["apps"])?;
            flags.no_positional()?;
            Command::Requests {
                apps: flags.list("apps", &[1, 20, 200, 1_000])?,
            }
        }
        "store-writes" => {
            let flags = Flags::parse(rest, &["keys", "apps"])?;
            flags.no_positional()?;
            Command::StoreWrites {
                keys: flags.one("keys", 100)?,
                apps: flags.one("apps", 10)?,
            }
        }
        "cold-start" => {
            let flags = Flags::parse(rest, &["runs"])?;
            if flags.positional.is_empty() {
                return Err(BenchError::Usage(
                    "cold-start needs the binaries to start".into(),
                ));
            }
            Command::ColdStart {
                runs: flags.one("runs", 20)?,
                binaries: flags.positional.iter().map(PathBuf::from).collect(),
            }
        }
        "criterion-table" => {
            let flags = Flags::parse(rest, &["dir", "since"])?;
            flags.no_positional()?;
            Command::CriterionTable {
                dir: flags.required::<String>("dir")?.into(),
                since_unix_seconds: flags.one("since", 0)?,
            }
        }
        "fake-asc" => {
            let flags = Flags::parse(rest, &["apps", "latency-ms"])?;
            flags.no_positional()?;
            Command::FakeAsc {
                apps: flags.required("apps")?,
                latency: Duration::from_millis(flags.required("latency-ms")?),
            }
        }
        "sweep-run" => {
            let flags = Flags::parse(rest, &["keys", "apps", "concurrency", "asc-url"])?;
            flags.no_positional()?;
            Command::SweepRun {
                keys: flags.required("keys")?,
                apps: flags.required("apps")?,
                concurrency: flags.required("concurrency")?,
                asc_url: flags.required("asc-url")?,
            }
        }
        "apps-endpoint" => {
            let flags = Flags::parse(rest, &["apps", "clients", "listings", "limit"])?;
            flags.no_positional()?;
            Command::AppsEndpoint(AppsEndpointOptions {
                apps: flags.list("apps", &[100, 400, 1_000])?,
                clients: flags.one("clients", 50)?,
                listings: flags.one("listings", 10)?,
                page_size: flags.one("limit", 0)?,
            })
        }
        "dashboard" => {
            let flags = Flags::parse(rest, &["apps", "events", "requests"])?;
            flags.no_positional()?;
            Command::Dashboard {
                apps: flags.one("apps", 200)?,
                events: flags.one("events", 10_000)?,
                requests: flags.one("requests", 50)?,
            }
        }
        "push-latency" => {
            let flags = Flags::parse(
                rest,
                &["keys", "apps", "changes", "interval-s", "intervals", "seed"],
            )?;
            flags.no_positional()?;
            Command::PushLatency(PushLatencyOptions {
                keys: flags.one("keys", 10)?,
                apps_per_key: flags.one("apps", 10)?,
                changes: flags.one("changes", 100)?,
                interval: Duration::from_secs(flags.one("interval-s", 60)?),
                intervals: flags.one("intervals", 2)?,
                seed: flags.one("seed", 11)?,
            })
        }
        "push-feedback" => {
            let flags = Flags::parse(rest, &["submissions", "gap-ms"])?;
            flags.no_positional()?;
            Command::PushFeedback {
                submissions: flags.one("submissions", 100)?,
                gap_ms: flags.one("gap-ms", 50)?,
            }
        }
        "planner" => {
            let flags = Flags::parse(rest, &["keys"])?;
            flags.no_positional()?;
            Command::Planner {
                keys: flags.list("keys", &[10_000, 100_000, 1_000_000])?,
            }
        }
        "planner-run" => {
            let flags = Flags::parse(rest, &["keys", "mode"])?;
            flags.no_positional()?;
            Command::PlannerRun {
                keys: flags.required("keys")?,
                mode: PlannerMode::parse(&flags.required::<String>("mode")?)?,
            }
        }
        other => return Err(BenchError::Usage(format!("unknown command {other:?}"))),
    };
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn sweep_defaults_and_overrides() {
        let Command::Sweep(options) = parse(&args("sweep")).unwrap() else {
            panic!("not a sweep");
        };
        assert_eq!(options.keys, vec![100, 1_000, 10_000]);
        assert_eq!(options.concurrency, DEFAULT_SWEEP_CONCURRENCY);
        let mut line = args("sweep --keys 10,20 --latency-ms 5 --apps 3 --widths");
        line.push(String::new());
        let Command::Sweep(options) = parse(&line).unwrap_or_else(|e| panic!("{e}")) else {
            panic!("not a sweep");
        };
        assert_eq!(options.keys, vec![10, 20]);
        assert_eq!(options.latency, Duration::from_millis(5));
        assert_eq!(options.apps_per_key, 3);
        assert!(options.widths.is_empty());
    }

    #[test]
    fn bad_input_is_named() {
        for line in [
            "",
            "sweep --keys ten",
            "sweep --nope 1",
            "cold-start",
            "fake-asc --apps 1",
            "walk",
        ] {
            assert!(
                matches!(parse(&args(line)), Err(BenchError::Usage(_))),
                "{line}"
            );
        }
        assert_eq!(
            parse(&args("cold-start --runs 3 a b")).unwrap(),
            Command::ColdStart {
                runs: 3,
                binaries: vec![PathBuf::from("a"), PathBuf::from("b")],
            }
        );
    }
}
