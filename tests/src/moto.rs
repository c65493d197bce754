//! A moto server (local DynamoDB + Secrets Manager) for tests of the AWS adapters.
//!
//! CI sets `SHIPWATCH_TEST_MOTO_URL`. Without it, the first test of a binary starts
//! `moto_server` (from `$SHIPWATCH_MOTO_SERVER` or `<workspace>/.venv/bin/moto_server`) on a
//! free 127.0.0.1 port; it stops when the test binary exits. Tests isolate themselves with
//! unique table names and unique team ids, so they can share one server and run in parallel.
//!
//! moto's `TransactWriteItems` is not isolated between its request threads: it applies the puts
//! of a transaction that is being cancelled and rolls back by swapping in a deep copy of the
//! whole table, so two concurrent transactions on one table can resurrect each other's writes.
//! DynamoDB runs transactions serializably. To test our code rather than that race, the clients
//! made here send one request at a time per test process (callers still run concurrently; only
//! moto sees them in turn, as DynamoDB's isolation would order them).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient as _, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
    http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use shipwatch_service::ports::Stores;

/// Where CI says moto runs.
pub const MOTO_URL_VAR: &str = "SHIPWATCH_TEST_MOTO_URL";
/// Path of a `moto_server` executable to start.
pub const MOTO_SERVER_VAR: &str = "SHIPWATCH_MOTO_SERVER";

const HOW_TO_INSTALL: &str = "moto is needed for the AWS adapter tests: run ./scripts/test, or \
     python3 -m venv .venv && .venv/bin/pip install 'moto[server]' (or set \
     SHIPWATCH_TEST_MOTO_URL to a running moto server)";

/// A reachable moto server.
#[derive(Clone, Debug)]
pub struct MotoEndpoint {
    pub url: String,
}

static STARTED: OnceLock<Result<String, String>> = OnceLock::new();

/// The moto server of this test binary, starting it on first use.
pub async fn moto() -> MotoEndpoint {
    if let Ok(url) = std::env::var(MOTO_URL_VAR)
        && !url.trim().is_empty()
    {
        return MotoEndpoint {
            url: url.trim().trim_end_matches('/').to_owned(),
        };
    }
    let started = tokio::task::spawn_blocking(|| STARTED.get_or_init(start_moto).clone())
        .await
        .unwrap_or_else(|e| Err(format!("starting moto panicked: {e}")));
    match started {
        Ok(url) => MotoEndpoint { url },
        Err(message) => panic!("{message}"),
    }
}

fn workspace_root() -> PathBuf {
    let tests_crate = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests_crate
        .parent()
        .map(PathBuf::from)
        .unwrap_or(tests_crate)
}

fn moto_server_path() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var(MOTO_SERVER_VAR)
        && !path.trim().is_empty()
    {
        let path = PathBuf::from(path.trim());
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{MOTO_SERVER_VAR}={} does not exist. {HOW_TO_INSTALL}",
                path.display()
            ))
        };
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.is_file() {
        Ok(venv)
    } else {
        Err(format!(
            "no moto server: {MOTO_URL_VAR} is unset and {} does not exist. {HOW_TO_INSTALL}",
            venv.display()
        ))
    }
}

fn start_moto() -> Result<String, String> {
    let server = moto_server_path()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("no free port for moto: {e}"))?
        .port();
    // A small shell keeps moto alive only as long as this test process: Rust runs no destructor
    // for statics, so without it every test binary would leave a server behind.
    let watcher = r#"parent="$1"; shift; "$@" & child=$!
trap 'kill "$child" 2>/dev/null' EXIT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done"#;
    Command::new("sh")
        .arg("-c")
        .arg(watcher)
        .arg("moto-watcher")
        .arg(std::process::id().to_string())
        .arg(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}. {HOW_TO_INSTALL}", server.display()))?;
    let address = format!("127.0.0.1:{port}");
    // Startup takes a few seconds; give up after a minute rather than hang the suite.
    for _ in 0..600 {
        if TcpStream::connect(&address).is_ok() && answers_http(&address) {
            return Ok(format!("http://{address}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto ({}) did not answer on {address}",
        server.display()
    ))
}

fn answers_http(address: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: {address}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/")
}

/// A table name no other test uses (`[a-zA-Z0-9_.-]`, under DynamoDB's 255).
pub fn unique_table_name(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(100)
        .collect();
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Held while one request is with moto (see the module docs).
static MOTO_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sends each request only when no other request of this process is with moto.
#[derive(Debug)]
struct OneAtATime {
    inner: SharedHttpConnector,
}

impl HttpConnector for OneAtATime {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let _turn = MOTO_TURN.lock().await;
            // moto answers with a complete body, so the response head means it is done.
            inner.call(request).await
        })
    }
}

fn one_at_a_time_client() -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(OneAtATime {
            inner: inner.http_connector(settings, components),
        })
    })
}

impl MotoEndpoint {
    /// SDK configuration for moto: static test credentials, us-east-1, endpoint = moto.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "shipwatch-tests",
            )))
            .behavior_version(BehaviorVersion::latest())
            .http_client(one_at_a_time_client())
            .build()
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config())
    }

    /// Creates a new table named after `prefix` (as `template.yaml` would) and returns its name.
    pub async fn fresh_table(&self, prefix: &str) -> String {
        let table = unique_table_name(prefix);
        if let Err(error) = shipwatch_adapters::aws::create_table(&self.dynamodb(), &table).await {
            panic!(
                "cannot create table {table} in moto at {}: {error}",
                self.url
            );
        }
        table
    }

    /// The AWS store bundle on a fresh table of this moto server.
    pub async fn fresh_stores(&self, prefix: &str) -> Stores {
        let table = self.fresh_table(prefix).await;
        shipwatch_adapters::aws::aws_stores(&self.sdk_config(), &table).await
    }
}
