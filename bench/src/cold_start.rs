//! `shipwatch-bench cold-start`: how long each Lambda binary takes from process spawn until it
//! asks a local stand-in of the Lambda runtime API for its first event, and how big it is.
//!
//! Each run starts the binary as Lambda would (runtime API address, function name, memory,
//! version and log names in the environment; nothing inherited), with `SHIPWATCH_STORE=aws`,
//! `AWS_ENDPOINT_URL` pointing at moto (so the SDK configuration is really built and the key API
//! really reads its admin token from Secrets Manager) and an App Store Connect URL that is never
//! called at start. The stand-in records when `GET /2018-06-01/runtime/invocation/next` arrives
//! and never answers; the process is then killed.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shipwatch_service::model::{SecretName, SecretValue};

use crate::BenchError;
use crate::table::{Table, mib, thousands};

/// The first request every Lambda runtime client makes.
pub const NEXT_INVOCATION_PATH: &str = "/2018-06-01/runtime/invocation/next";
/// The targets.
pub const COLD_START_TARGET: Duration = Duration::from_millis(30);
pub const SIZE_TARGET_BYTES: u64 = 10 * 1000 * 1000;
/// Longest wait for a binary to ask for its first event.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// One binary measured in one environment.
#[derive(Debug, Clone)]
struct Subject {
    label: String,
    binary: PathBuf,
    extra_environment: Vec<(String, String)>,
}

pub async fn run(binaries: &[PathBuf], runs: usize) -> Result<Table, BenchError> {
    let moto = shipwatch_tests::moto::moto().await;
    let table_name = moto.fresh_table("shipwatch-cold-start").await;
    let stores = shipwatch_adapters::aws::aws_stores(&moto.sdk_config(), &table_name).await;
    // The key API reads this at start when SHIPWATCH_ADMIN_TOKEN is not set, as in template.yaml.
    stores
        .secrets
        .put_secret(
            &SecretName::admin_token(),
            &SecretValue::new("swa_bench_admin_token_for_moto_only".to_owned()),
        )
        .await
        .map_err(|err| BenchError::setup("storing the admin token in moto", err))?;
    let home = tempfile::Builder::new()
        .prefix("shipwatch-cold-start-")
        .tempdir()
        .map_err(BenchError::io("creating an empty HOME"))?;
    let base_environment: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/shipwatch-bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2025/06/02/[$LATEST]bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("SHIPWATCH_STORE", "aws"),
        ("ADMIN_TOKEN_SECRET_ID", "shipwatch/admin-token"),
        ("ASC_API_BASE_URL", "http://127.0.0.1:9"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .chain([
        ("AWS_ENDPOINT_URL".to_owned(), moto.url.clone()),
        ("TABLE_NAME".to_owned(), table_name.clone()),
        ("HOME".to_owned(), home.path().display().to_string()),
    ])
    .collect();

    let mut subjects = Vec::new();
    for binary in binaries {
        let name = binary
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| binary.display().to_string());
        subjects.push(Subject {
            label: name.clone(),
            binary: binary.clone(),
            extra_environment: Vec::new(),
        });
        if name == "key-api" {
            subjects.push(Subject {
                label: "key-api (SHIPWATCH_ADMIN_TOKEN set: no secret read)".into(),
                binary: binary.clone(),
                extra_environment: vec![(
                    "SHIPWATCH_ADMIN_TOKEN".into(),
                    "swa_bench_direct".into(),
                )],
            });
        }
    }

    let mut table = Table::new(
        &format!(
            "Lambda cold start (spawn until the first `GET .../invocation/next`, {runs} runs) and release binary size"
        ),
        &[
            "function",
            "median ms",
            "min ms",
            "max ms",
            "cold start <= 30 ms",
            "size bytes",
            "size MiB",
            "size <= 10 MB",
        ],
    );
    for subject in &subjects {
        let size = std::fs::metadata(&subject.binary)
            .map_err(BenchError::io(format!(
                "reading the size of {}",
                subject.binary.display()
            )))?
            .len();
        let mut timings = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let environment: Vec<(String, String)> = base_environment
                .iter()
                .cloned()
                .chain([("AWS_LAMBDA_FUNCTION_NAME".to_owned(), subject.label.clone())])
                .chain(subject.extra_environment.iter().cloned())
                .collect();
            let binary = subject.binary.clone();
            let timing =
                tokio::task::spawn_blocking(move || time_to_first_poll(&binary, &environment))
                    .await
                    .map_err(|err| BenchError::setup("cold start run", err))??;
            timings.push(timing);
        }
        timings.sort();
        let median = median(&timings);
        eprintln!(
            "cold-start: {}: median {:.1} ms",
            subject.label,
            millis(median)
        );
        table.row(vec![
            subject.label.clone(),
            format!("{:.1}", millis(median)),
            format!("{:.1}", millis(timings[0])),
            format!("{:.1}", millis(timings[timings.len() - 1])),
            if median <= COLD_START_TARGET {
                "met".into()
            } else {
                "OVER".into()
            },
            thousands(size),
            mib(size),
            if size <= SIZE_TARGET_BYTES {
                "met".into()
            } else {
                "OVER".into()
            },
        ]);
    }
    Ok(table)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The middle of sorted timings (the mean of the two middle ones for an even count).
pub fn median(sorted: &[Duration]) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        len if len % 2 == 1 => sorted[len / 2],
        len => (sorted[len / 2 - 1] + sorted[len / 2]) / 2,
    }
}

/// Spawns `binary` with only `environment` and a fresh runtime API stand-in, and returns the time
/// from spawn until its first `next` request.
pub fn time_to_first_poll(
    binary: &Path,
    environment: &[(String, String)],
) -> Result<Duration, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(BenchError::io("binding the runtime API stand-in"))?;
    let address = listener
        .local_addr()
        .map_err(BenchError::io("reading the stand-in's address"))?;
    let (arrived, arrival) = mpsc::channel();
    std::thread::spawn(move || {
        // Only the first connection matters; the process is killed right after it.
        if let Ok((mut stream, _)) = listener.accept() {
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => head.extend_from_slice(&buffer[..read]),
                }
            }
            let at = Instant::now();
            let request_line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let _ = arrived.send((at, request_line));
        }
    });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(
            environment
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BenchError::io(format!("starting {}", binary.display())))?;
    let outcome = loop {
        match arrival.recv_timeout(Duration::from_millis(5)) {
            Ok((at, request_line)) => {
                break if request_line.starts_with(&format!("GET {NEXT_INVOCATION_PATH}")) {
                    Ok(at - started)
                } else {
                    Err(format!(
                        "its first runtime API request was {request_line:?}"
                    ))
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(format!("it exited ({status}) before asking for an event"));
                }
                if started.elapsed() > START_TIMEOUT {
                    break Err(format!(
                        "it did not ask for an event within {START_TIMEOUT:?}"
                    ));
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err("the runtime API stand-in stopped".into());
            }
        }
    };
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    outcome.map_err(|reason| {
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        BenchError::Invalid(format!(
            "{}: {reason}; its last log lines:\n{tail}",
            binary.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(1), ms(2), ms(9)]), ms(2));
        assert_eq!(median(&[ms(1), ms(2), ms(4), ms(9)]), ms(3));
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[test]
    fn a_process_that_never_polls_is_reported_with_its_log() {
        let shell = Path::new("/bin/sh");
        let err = time_to_first_poll(shell, &[("PATH".into(), "/usr/bin:/bin".into())]);
        // `sh` with no script reads stdin (null) and exits at once without polling.
        assert!(
            matches!(err, Err(BenchError::Invalid(ref message)) if message.contains("exited")),
            "{err:?}"
        );
    }
}
