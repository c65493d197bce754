//! Captures every log line of the test process (at `debug`), so tests can prove that no secret is
//! ever logged.
//!
//! Every area of the integration-test binary (`tests/it`) shares this one capture, so it holds
//! other tests' lines too: look for this test's own secrets (random per test, or strings no other
//! area uses), never for "nothing logged".

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static BUFFER: OnceLock<Buffer> = OnceLock::new();

/// Installs the capturing subscriber (once per test binary) for JSON lines at `debug`.
pub fn install() {
    BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,h2=info,aws=info,rustls=info",
            ))
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
}

/// Everything logged so far by this test binary.
pub fn captured() -> String {
    let Some(buffer) = BUFFER.get() else {
        return String::new();
    };
    let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
