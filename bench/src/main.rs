//! `shipwatch-bench`: the measurements of `docs/performance.md`. Run them all with `./scripts/bench`.

use std::process::ExitCode;

use shipwatch_bench::cli::{Command, USAGE, parse};
use shipwatch_bench::{
    BenchError, apps_endpoint, cold_start, dynamo, micro, planner, requests, sweep,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("{err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shipwatch-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), BenchError> {
    match command {
        Command::Sweep(options) => {
            for table in sweep::run(&options).await? {
                println!("{}", table.render());
            }
        }
        Command::Requests { apps } => {
            println!("{}", requests::run(&apps).await?.render());
            println!(
                "{}",
                shipwatch_bench::play_requests::run(&[1, 10, 50])
                    .await?
                    .render()
            );
        }
        Command::StoreWrites { keys, apps } => {
            for table in dynamo::run(keys, apps).await? {
                println!("{}", table.render());
            }
        }
        Command::ColdStart { runs, binaries } => {
            println!("{}", cold_start::run(&binaries, runs).await?.render());
        }
        Command::CriterionTable {
            dir,
            since_unix_seconds,
        } => {
            let since = std::time::UNIX_EPOCH + std::time::Duration::from_secs(since_unix_seconds);
            println!("{}", micro::table(&dir, since)?.render());
        }
        Command::FakeAsc { apps, latency } => sweep::serve_fake(apps, latency).await?,
        Command::SweepRun {
            keys,
            apps,
            concurrency,
            asc_url,
        } => {
            let result = sweep::sweep_run(keys, apps, concurrency, &asc_url).await?;
            let line = serde_json::to_string(&result)
                .map_err(|err| BenchError::setup("writing the result", err))?;
            println!("{line}");
        }
        Command::AppsEndpoint(options) => {
            println!("{}", apps_endpoint::run(&options).await?.render());
        }
        Command::Dashboard {
            apps,
            events,
            requests,
        } => println!(
            "{}",
            shipwatch_bench::dashboard::run(apps, events, requests)
                .await?
                .render()
        ),
        Command::PushLatency(options) => {
            println!(
                "{}",
                shipwatch_bench::push_latency::run(&options).await?.render()
            );
        }
        Command::PushFeedback {
            submissions,
            gap_ms,
        } => println!(
            "{}",
            shipwatch_bench::push_feedback::run(
                submissions,
                std::time::Duration::from_millis(gap_ms)
            )
            .await?
            .render()
        ),
        Command::Planner { keys } => println!("{}", planner::run(&keys)?.render()),
        Command::PlannerRun { keys, mode } => {
            let result = planner::planner_run(keys, mode).await?;
            let line = serde_json::to_string(&result)
                .map_err(|err| BenchError::setup("writing the result", err))?;
            println!("{line}");
        }
    }
    Ok(())
}
