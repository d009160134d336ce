use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{TestkitError, paths::workspace_root};

/// How long moto may take to import and bind (it imports every AWS service on start).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The bound on each request to moto's own API.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs moto's WSGI application in-process.
///
/// Two differences from the stock `moto_server` script:
/// - requests are served one at a time. Real DynamoDB applies each write and each transaction
///   atomically; moto's in-memory backends do not lock (a cancelled transaction restores a
///   snapshot of the whole table, erasing writes that other threads made meanwhile), so a
///   threaded moto would lose writes under the concurrency tests that real AWS never loses;
/// - the server exits as soon as its stdin closes, which happens when the test process ends
///   however it ends, so a server held in a `static` (never dropped) is not orphaned.
///
/// The port is chosen by the kernel (port 0) and printed on the first line of stdout.
const LAUNCHER: &str = r#"
import os, sys, threading

def exit_when_parent_goes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)

threading.Thread(target=exit_when_parent_goes, daemon=True).start()

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

dispatcher = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()

def serialized(environ, start_response):
    with one_at_a_time:
        body = dispatcher(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

server = make_server("127.0.0.1", 0, serialized, threaded=True, request_handler=MotoRequestHandler)
port = server.server_address[1]
os.environ["MOTO_PORT"] = str(port)
print(f"RUNWAY_MOTO_PORT={port}", flush=True)
server.serve_forever()
"#;

/// A moto server on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    // Held open: moto exits when it closes.
    _stdin: Option<ChildStdin>,
    port: u16,
}

impl MotoServer {
    /// Starts a fresh moto server and waits until it answers.
    ///
    /// Uses `$RUNWAY_MOTO_PYTHON`, the Python of `$RUNWAY_MOTO_SERVER`, or the project's venv
    /// (`.tools/venv/bin/python`, made by `scripts/setup.sh`).
    pub fn start() -> Result<MotoServer, TestkitError> {
        let python = moto_python();
        if !python.exists() {
            return Err(TestkitError::MotoMissing {
                path: python.display().to_string(),
            });
        }
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(LAUNCHER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a terminal's Ctrl-C goes to the test, whose exit then
            // closes moto's stdin.
            .process_group(0)
            .spawn()
            .map_err(|source| TestkitError::MotoSpawn {
                python: python.display().to_string(),
                source,
            })?;
        let stdin = child.stdin.take();
        let port = match read_port(&mut child) {
            Ok(port) => port,
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::MotoDidNotStart { reason });
            }
        };
        let server = MotoServer {
            child,
            _stdin: stdin,
            port,
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// The server shared by every test in this test binary, started on first use.
    ///
    /// Tests sharing it must keep apart: their own table names, queue names, and so on.
    /// It is never dropped; it exits when the test binary does.
    pub fn shared() -> Result<&'static MotoServer, TestkitError> {
        static SHARED: OnceLock<Result<MotoServer, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| MotoServer::start().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|reason| TestkitError::SharedMotoFailed {
                reason: reason.clone(),
            })
    }

    /// `http://127.0.0.1:<port>`, the endpoint to give every AWS client.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An SDK configuration that talks to this server only: static test credentials, region
    /// us-east-1, no environment, profile or instance-metadata lookups.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .empty_test_environment()
            .test_credentials()
            .region(aws_config::Region::from_static("us-east-1"))
            .endpoint_url(self.endpoint_url())
            .load()
            .await
    }

    /// Forgets every resource in every service (`POST /moto-api/reset`).
    ///
    /// Affects all tests sharing this server: only for servers a test owns alone.
    pub fn reset(&self) -> Result<(), TestkitError> {
        let status = self.request("POST", "/moto-api/reset")?;
        if status == 200 {
            Ok(())
        } else {
            Err(self.request_error("POST /moto-api/reset", format!("HTTP status {status}")))
        }
    }

    fn wait_until_ready(&self) -> Result<(), TestkitError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let outcome = self.request("GET", "/moto-api/");
            match outcome {
                Ok(200) => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(status) => {
                    return Err(self.request_error("GET /moto-api/", format!("HTTP {status}")));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One HTTP/1.1 request without a body; returns the status code.
    fn request(&self, method: &'static str, path: &str) -> Result<u16, TestkitError> {
        let what = if method == "POST" {
            "POST /moto-api/reset"
        } else {
            "GET /moto-api/"
        };
        let fail = |reason: String| self.request_error(what, reason);
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT)
            .map_err(|error| fail(error.to_string()))?;
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
            .map_err(|error| fail(error.to_string()))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|error| fail(error.to_string()))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|error| fail(error.to_string()))?;
        let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
        head.split_whitespace()
            .nth(1)
            .and_then(|status| status.parse::<u16>().ok())
            .ok_or_else(|| fail(format!("not an HTTP response: {head:?}")))
    }

    fn request_error(&self, request: &'static str, reason: String) -> TestkitError {
        TestkitError::MotoRequest {
            endpoint: self.endpoint_url(),
            request,
            reason,
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // The launcher is one process (werkzeug serves on threads), so killing it leaves
        // nothing behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$RUNWAY_MOTO_PYTHON`; else the interpreter named on the first line of
/// `$RUNWAY_MOTO_SERVER` (a `moto_server` script); else the project's venv.
fn moto_python() -> PathBuf {
    if let Some(python) = std::env::var_os("RUNWAY_MOTO_PYTHON") {
        return PathBuf::from(python);
    }
    if let Some(script) = std::env::var_os("RUNWAY_MOTO_SERVER") {
        let shebang = std::fs::read_to_string(&script).ok().and_then(|text| {
            let first = text.lines().next()?.strip_prefix("#!")?.trim().to_string();
            Some(first)
        });
        // An unreadable script leads to a "missing" error naming it.
        return shebang
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(script));
    }
    workspace_root().join(".tools/venv/bin/python")
}

/// Reads the port line from the launcher's stdout, within [`START_TIMEOUT`].
fn read_port(child: &mut Child) -> Result<u16, String> {
    let stdout = child.stdout.take().ok_or("moto's stdout is not piped")?;
    let stderr = child.stderr.take().ok_or("moto's stderr is not piped")?;
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // Keep the last lines of stderr for the error message, and keep draining it afterwards
    // so moto never blocks on a full pipe.
    let (stderr_tx, stderr_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = stderr_tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let outcome = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(remaining) {
            Ok(line) => {
                if let Some(port) = line.strip_prefix("RUNWAY_MOTO_PORT=") {
                    break port
                        .trim()
                        .parse::<u16>()
                        .map_err(|_| format!("moto printed a bad port: {line:?}"));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(format!(
                    "no port within {} seconds",
                    START_TIMEOUT.as_secs()
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child
                    .wait()
                    .map(|status| status.to_string())
                    .unwrap_or_else(|error| error.to_string());
                break Err(format!("the launcher exited ({status})"));
            }
        }
    };
    outcome.map_err(|reason| {
        std::thread::sleep(Duration::from_millis(100));
        let errors: Vec<String> = stderr_rx.try_iter().collect();
        let tail = errors[errors.len().saturating_sub(5)..].join("\n");
        if tail.is_empty() {
            reason
        } else {
            format!("{reason}; its last words:\n{tail}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_python_is_a_clear_error() {
        let error = with_python("/nonexistent/python", MotoServer::start);
        let message = error
            .expect_err("a missing python cannot start moto")
            .to_string();
        assert!(message.contains("run scripts/setup.sh"), "{message}");
    }

    #[test]
    fn a_python_without_moto_is_a_clear_error() {
        let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
        else {
            return;
        };
        let has_moto = Command::new(python)
            .args(["-c", "import moto"])
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(true);
        if has_moto {
            return;
        }
        let message = with_python(python, MotoServer::start)
            .expect_err("moto is not importable")
            .to_string();
        assert!(message.contains("run scripts/setup.sh"), "{message}");
        assert!(message.contains("moto"), "{message}");
    }

    fn with_python<T>(python: &str, run: impl FnOnce() -> T) -> T {
        static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: the tests that change the environment hold ENV; no other thread in this
        // test binary reads RUNWAY_MOTO_PYTHON while they run, except these tests.
        unsafe { std::env::set_var("RUNWAY_MOTO_PYTHON", python) };
        let result = run();
        unsafe { std::env::remove_var("RUNWAY_MOTO_PYTHON") };
        result
    }
}
