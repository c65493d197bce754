//! The README's "run it" command as a user runs it: the real `shipwatch-local` binary, a fake App
//! Store Connect and a real webhook receiver. First start prints the admin token once; a key upload
//! is validated; the timed sweep notices a change and delivers it; SIGTERM exits cleanly; no key
//! material ever reaches the logs; a restart keeps the admin token. SIGTERM during a delivery to a
//! slow receiver finishes and records it before the process exits.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use shipwatch_tests::fake_asc::{FakeApp, FakeAsc, FakeVersion};
use shipwatch_tests::receiver::{Receiver, ScriptedAnswer};
use shipwatch_tests::test_keys::TestKey;

struct LocalProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    base_url: String,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl LocalProcess {
    fn start(data_dir: &std::path::Path, asc_url: &str) -> Self {
        Self::start_sweeping_every(data_dir, asc_url, 1)
    }

    fn start_sweeping_every(data_dir: &std::path::Path, asc_url: &str, seconds: u64) -> Self {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_shipwatch-local"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SHIPWATCH_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("SHIPWATCH_DATA_DIR", data_dir)
            .env("ASC_API_BASE_URL", asc_url)
            .env("SWEEP_INTERVAL_SECONDS", seconds.to_string())
            .env("SHIPWATCH_ALLOW_PRIVATE_DESTINATIONS", "1")
            .env("RUST_LOG", "debug,hyper=info,h2=info,rustls=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shipwatch-local starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self {
            child,
            stderr,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn wait_until_healthy(&self, http: &reqwest::Client) {
        for _ in 0..400 {
            if let Ok(response) = http.get(format!("{}/health", self.base_url)).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "shipwatch-local never answered /health; logs:\n{}",
            self.logs()
        );
    }

    /// SIGKILL: the process dies wherever it is, with nothing flushed or recorded.
    fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        for _ in 0..400 {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50));
                return (exit, self.logs());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        panic!(
            "shipwatch-local did not exit after SIGTERM; logs:\n{}",
            self.logs()
        );
    }
}

fn admin_token_in(logs: &str) -> Option<String> {
    logs.split_whitespace()
        .find(|word| word.starts_with("swa_") && word.len() > 40)
        .map(|word| word.trim_end_matches(['\'', '"']).to_owned())
}

fn setup_link_in(logs: &str) -> Option<String> {
    logs.split_whitespace()
        .find(|word| word.starts_with("http://") && word.contains("/invite/swi_"))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_process_runs_the_whole_system() {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000001", "Hello", "com.example.hello"),
    );
    asc.add_version(FakeVersion::new(
        "v-1",
        "1000000001",
        "1.0",
        "IOS",
        "PREPARE_FOR_SUBMISSION",
    ));
    let receiver = Receiver::start().await.expect("receiver");
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().join("state");
    let http = reqwest::Client::new();

    let process = LocalProcess::start(&data_path, &asc.base_url());
    process.wait_until_healthy(&http).await;
    let admin = admin_token_in(&process.logs()).expect("first start prints the admin token");
    // ... and a one-time setup link to the dashboard's join page of a default team.
    let setup_link = setup_link_in(&process.logs()).expect("first start prints a setup link");
    let join = http.get(&setup_link).send().await.unwrap();
    assert_eq!(join.status(), 200);
    assert!(join.text().await.unwrap().contains("Join your team"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data folder is private to its owner");
    }

    let team: Value = http
        .post(format!("{}/v1/teams", process.base_url))
        .bearer_auth(&admin)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = team["token"].as_str().unwrap().to_owned();

    let form = reqwest::multipart::Form::new()
        .part(
            "private_key",
            reqwest::multipart::Part::bytes(key.pem.clone().into_bytes())
                .file_name(format!("AuthKey_{}.p8", key.key_id)),
        )
        .text("issuer_id", key.issuer_id.to_string())
        .text("name", "Local key");
    let created: Value = http
        .post(format!("{}/v1/keys", process.base_url))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_path = format!(
        "{}/v1/keys/{}",
        process.base_url,
        created["id"].as_str().unwrap()
    );

    let destination: Value = http
        .post(format!("{}/v1/destinations", process.base_url))
        .bearer_auth(&token)
        .json(&json!({"type": "webhook", "name": "Receiver", "url": receiver.url()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let workflow = http
        .post(format!("{}/v1/workflows", process.base_url))
        .bearer_auth(&token)
        .json(&json!({"name": "All", "destination_id": destination["id"], "app_ids": ["*"], "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(workflow.status(), 201);

    // Validation follows the upload; then the timed sweep takes the baseline.
    let mut swept = Value::Null;
    for _ in 0..400 {
        swept = http
            .get(&key_path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if swept["status"] == "valid" && swept["last_swept_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(swept["status"], "valid", "{swept}\n{}", process.logs());
    assert!(swept["last_swept_at"].is_string(), "{swept}");

    // Apple moves the version forward: a later timed sweep delivers exactly that change.
    asc.set_version_state("v-1", "WAITING_FOR_REVIEW");
    let delivered = receiver
        .wait_for(1, Duration::from_secs(20))
        .await
        .expect("a delivery");
    let event: Value = serde_json::from_slice(&delivered[0].body).unwrap();
    assert_eq!(event["type"], "shipwatch.app_version.state_changed");
    assert_eq!(event["data"]["old_state"], "PREPARE_FOR_SUBMISSION");
    assert_eq!(event["data"]["new_state"], "WAITING_FOR_REVIEW");

    let (exit, logs) = process.terminate();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}\n{logs}");
    for line in key.pem_body_lines() {
        assert!(!logs.contains(&line), "key material in the logs");
    }
    assert!(!logs.contains(&token), "team token in the logs");

    // A restart keeps the admin token (only its hash was stored) and prints no new one.
    let again = LocalProcess::start(&data_path, &asc.base_url());
    again.wait_until_healthy(&http).await;
    assert_eq!(admin_token_in(&again.logs()), None);
    assert_eq!(setup_link_in(&again.logs()), None);
    let teams = http
        .post(format!("{}/v1/teams", again.base_url))
        .bearer_auth(&admin)
        .json(&json!({"name": "Second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(teams.status(), 201);
    let (exit, _) = again.terminate();
    assert!(exit.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_delivery_finishes_and_records_it() {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000002", "Slow", "com.example.slow"),
    );
    asc.add_version(FakeVersion::new(
        "v-2",
        "1000000002",
        "1.0",
        "IOS",
        "PREPARE_FOR_SUBMISSION",
    ));
    let receiver = Receiver::start().await.expect("receiver");
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().join("state");
    let http = reqwest::Client::new();
    let process = LocalProcess::start(&data_path, &asc.base_url());
    process.wait_until_healthy(&http).await;
    let admin = admin_token_in(&process.logs()).expect("admin token");
    let team: Value = http
        .post(format!("{}/v1/teams", process.base_url))
        .bearer_auth(&admin)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = team["token"].as_str().unwrap().to_owned();
    let created: Value = http
        .post(format!("{}/v1/keys", process.base_url))
        .bearer_auth(&token)
        .json(
            &json!({"private_key": key.pem, "key_id": key.key_id.as_str(),
            "issuer_id": key.issuer_id.as_str(), "name": "Local key"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_path = format!(
        "{}/v1/keys/{}",
        process.base_url,
        created["id"].as_str().unwrap()
    );
    let destination: Value = http
        .post(format!("{}/v1/destinations", process.base_url))
        .bearer_auth(&token)
        .json(&json!({"type": "webhook", "name": "Slow", "url": receiver.url()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{}/v1/workflows", process.base_url))
        .bearer_auth(&token)
        .json(&json!({"name": "All", "destination_id": destination["id"], "app_ids": ["*"], "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    for _ in 0..400 {
        let swept: Value = http
            .get(&key_path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if swept["last_swept_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The receiver takes 3 s to answer; SIGTERM arrives while the delivery is in flight.
    receiver.respond_next(ScriptedAnswer::status(200).after(Duration::from_secs(3)));
    asc.set_version_state("v-2", "WAITING_FOR_REVIEW");
    receiver
        .wait_for(1, Duration::from_secs(20))
        .await
        .expect("the delivery started");
    let (exit, logs) = process.terminate();
    assert!(
        exit.success(),
        "clean exit after draining: {exit:?}\n{logs}"
    );

    // After a restart the history shows the one attempt, delivered: nothing is left to resend.
    let again = LocalProcess::start(&data_path, &asc.base_url());
    again.wait_until_healthy(&http).await;
    let history: Value = http
        .get(format!("{}/v1/events", again.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deliveries = &history["events"][0]["deliveries"];
    assert_eq!(deliveries[0]["outcome"], "delivered", "{history}");
    assert_eq!(
        deliveries[0]["attempts"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.requests().len(), 1, "sent once");
    let (exit, _) = again.terminate();
    assert!(exit.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_their_headers_are_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let asc = FakeAsc::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let process = LocalProcess::start(&data_dir.path().join("state"), &asc.base_url());
    process.wait_until_healthy(&http).await;
    let address = process.base_url.trim_start_matches("http://").to_owned();

    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: shipwatch\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    let answered = tokio::time::timeout(
        Duration::from_secs(2),
        http.get(format!("{}/health", process.base_url)).send(),
    )
    .await;
    assert!(
        answered.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)),
        "others are served meanwhile"
    );

    // Past the header deadline (10 s) the server has closed every one of them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for mut stream in slow {
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "a half-open client is disconnected, not kept forever"
        );
    }
    let (exit, logs) = process.terminate();
    assert!(exit.success(), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_within_seconds_without_waiting_for_a_sweep() {
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000003", "Retry", "com.example.retry"),
    );
    asc.add_version(FakeVersion::new(
        "v-3",
        "1000000003",
        "1.0",
        "IOS",
        "PREPARE_FOR_SUBMISSION",
    ));
    let receiver = Receiver::start().await.expect("receiver");
    let data_dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    // No timed sweep during the test: sweeps run only when asked for.
    let process =
        LocalProcess::start_sweeping_every(&data_dir.path().join("state"), &asc.base_url(), 3600);
    process.wait_until_healthy(&http).await;
    let admin = admin_token_in(&process.logs()).expect("admin token");
    let post = |path: &str, token: &str, body: Value| {
        http.post(format!("{}{path}", process.base_url))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let team: Value = post("/v1/teams", &admin, json!({"name": "Acme"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = team["token"].as_str().unwrap().to_owned();
    let created: Value = post(
        "/v1/keys",
        &token,
        json!({"private_key": key.pem, "key_id": key.key_id.as_str(),
            "issuer_id": key.issuer_id.as_str(), "name": "Local key"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key_path = format!(
        "{}/v1/keys/{}",
        process.base_url,
        created["id"].as_str().unwrap()
    );
    let destination: Value = post(
        "/v1/destinations",
        &token,
        json!({"type": "webhook", "name": "Flaky", "url": receiver.url()}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    post(
        "/v1/workflows",
        &token,
        json!({"name": "All", "destination_id": destination["id"], "app_ids": ["*"], "event_types": ["*"]}),
    )
    .await
    .unwrap();
    for _ in 0..400 {
        let current: Value = http
            .get(&key_path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if current["status"] == "valid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        post("/v1/sweeps", &admin, json!({}))
            .await
            .unwrap()
            .status(),
        200
    );

    receiver.fail_next(1, 503);
    asc.set_version_state("v-3", "WAITING_FOR_REVIEW");
    let swept: Value = post("/v1/sweeps", &admin, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(swept["events"], 1, "{swept}");
    let requests = receiver
        .wait_for(2, Duration::from_secs(15))
        .await
        .expect("the retry comes within seconds, with no sweep in between");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id"),
        "the same event"
    );
    let (exit, logs) = process.terminate();
    assert!(exit.success(), "{logs}");
}

/// kill -9 at random moments of sweeps whose deliveries go to a slow receiver, restarting on the
/// same data folder each time: every transition the snapshots record is in the history once, each
/// event reaches the receiver under its own webhook id, and the receiver never gets an event more
/// often than its recorded attempts plus the kills that could have cut an attempt short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_no_event_and_records_none_twice() {
    use rand::Rng;
    let asc = FakeAsc::start().await;
    let key = TestKey::generate();
    asc.register_key(&key);
    asc.add_app(
        &key.issuer_id,
        FakeApp::new("1000000004", "Crashy", "com.example.crashy"),
    );
    let states = [
        "PREPARE_FOR_SUBMISSION",
        "WAITING_FOR_REVIEW",
        "IN_REVIEW",
        "REJECTED",
    ];
    asc.add_version(FakeVersion::new(
        "v-4",
        "1000000004",
        "1.0",
        "IOS",
        states[0],
    ));
    let receiver = Receiver::start().await.expect("receiver");
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().join("state");
    let http = reqwest::Client::new();
    let mut process = LocalProcess::start(&data_path, &asc.base_url());
    process.wait_until_healthy(&http).await;
    let admin = admin_token_in(&process.logs()).expect("admin token");
    let team: Value = http
        .post(format!("{}/v1/teams", process.base_url))
        .bearer_auth(&admin)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = team["token"].as_str().unwrap().to_owned();
    let created: Value = http
        .post(format!("{}/v1/keys", process.base_url))
        .bearer_auth(&token)
        .json(
            &json!({"private_key": key.pem, "key_id": key.key_id.as_str(),
            "issuer_id": key.issuer_id.as_str(), "name": "Local key"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = created["id"].as_str().unwrap().to_owned();
    let destination: Value = http
        .post(format!("{}/v1/destinations", process.base_url))
        .bearer_auth(&token)
        .json(&json!({"type": "webhook", "name": "Slow", "url": receiver.url()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{}/v1/workflows", process.base_url))
        .bearer_auth(&token)
        .json(&json!({"name": "All", "destination_id": destination["id"], "app_ids": ["*"], "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    for _ in 0..400 {
        let current: Value = http
            .get(format!("{}/v1/keys/{key_id}", process.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if current["last_swept_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let rounds = 8;
    for round in 0..rounds {
        for _ in 0..4 {
            receiver.respond_next(ScriptedAnswer::status(200).after(Duration::from_millis(400)));
        }
        asc.set_version_state("v-4", states[1 + round % (states.len() - 1)]);
        let pause = rand::rng().random_range(200..1800);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        process.kill_hard();
        process = LocalProcess::start(&data_path, &asc.base_url());
        process.wait_until_healthy(&http).await;
    }

    // Everything recorded is delivered in the end (a cut-off attempt waits for its 30 s lease).
    let mut history = Value::Null;
    for _ in 0..120 {
        history = http
            .get(format!("{}/v1/events?limit=100", process.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let settled = history["events"].as_array().is_some_and(|events| {
            events
                .iter()
                .all(|event| event["deliveries"][0]["outcome"] == "delivered")
        });
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut events: Vec<Value> = history["events"].as_array().cloned().unwrap_or_default();
    events.reverse();
    assert!(!events.is_empty(), "{history}");
    // One chain of transitions: each event starts where the previous one ended (no duplicate,
    // no gap), and it ends in the state Apple shows last.
    let mut state = states[0].to_owned();
    for event in &events {
        assert_eq!(event["data"]["old_state"], state.as_str(), "{history}");
        state = event["data"]["new_state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(event["deliveries"][0]["outcome"], "delivered", "{history}");
    }
    assert_eq!(
        state,
        states[1 + (rounds - 1) % (states.len() - 1)],
        "{history}"
    );

    let received = receiver.requests();
    for event in &events {
        let id = event["id"].as_str().unwrap_or_default();
        let receipts = received
            .iter()
            .filter(|request| request.header("webhook-id") == Some(id))
            .count();
        let attempts = event["deliveries"][0]["attempts"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(receipts >= 1, "event {id} reached the receiver");
        assert!(
            receipts <= attempts + rounds,
            "event {id}: {receipts} receipts for {attempts} recorded attempts"
        );
    }
    assert!(
        received.iter().all(|request| events
            .iter()
            .any(|event| request.header("webhook-id") == event["id"].as_str())),
        "nothing was sent that the history does not hold"
    );
    let (exit, _) = process.terminate();
    assert!(exit.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_the_api_error_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let asc = FakeAsc::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let process = LocalProcess::start(&data_dir.path().join("state"), &asc.base_url());
    process.wait_until_healthy(&http).await;
    let admin = admin_token_in(&process.logs()).expect("admin token");
    let address = process.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/teams HTTP/1.1\r\nHost: shipwatch\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"na"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered within the body deadline");
    assert!(
        started.elapsed() >= Duration::from_secs(15),
        "the server waited for the body first"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400"),
        "a 400 answer, not a hang: {text}"
    );
    assert!(text.contains("\"error\""), "the API's error JSON: {text}");
    let (exit, logs) = process.terminate();
    assert!(exit.success(), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_uris_and_header_sections_get_the_api_error_json() {
    let asc = FakeAsc::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let process = LocalProcess::start(&data_dir.path().join("state"), &asc.base_url());
    process.wait_until_healthy(&http).await;
    let base = &process.base_url;

    let long_uri = http
        .get(format!("{base}/v1/events?q={}", "a".repeat(9 * 1024)))
        .send();
    let large_header = http
        .get(format!("{base}/health"))
        .header("x-large", "v".repeat(40 * 1024))
        .send();
    let mut many = http.get(format!("{base}/health"));
    for n in 0..150 {
        many = many.header(format!("x-h{n}"), "1");
    }
    for (what, request, status, code) in [
        ("a 9 KiB URI", long_uri.await, 414, "uri_too_long"),
        (
            "a 40 KiB header",
            large_header.await,
            431,
            "headers_too_large",
        ),
        ("150 headers", many.send().await, 431, "headers_too_large"),
    ] {
        let answer = request.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(answer.status().as_u16(), status, "{what}");
        let body: serde_json::Value = answer
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    }
    let (exit, logs) = process.terminate();
    assert!(exit.success(), "{logs}");
}
