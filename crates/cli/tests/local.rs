//! `runway local`, run as the built binary: the built-in configuration runs its demo workload
//! to completion with a live view of the states, serves the Step Functions API with the job
//! machine and the web console, and stops cleanly on Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const FREE_PORTS: [&str; 6] = [
    "--webhook-addr",
    "127.0.0.1:0",
    "--sfn-addr",
    "127.0.0.1:0",
    "--emulator-addr",
    "127.0.0.1:0",
];

fn post(address: &str, target: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AWSStepFunctions.{target}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/states/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn spawn(args: &[&str]) -> (Running, mpsc::Receiver<String>) {
    // From another directory: the job machine and configuration are built in.
    let elsewhere = std::env::temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_runway"))
        .arg("local")
        .args(FREE_PORTS)
        .args(args)
        .current_dir(elsewhere)
        .env_remove("RUNWAY_WEBHOOK_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    (Running(child), lines)
}

fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_demo_runs_every_job_to_done_and_exits_when_idle() {
    let (mut child, lines) = spawn(&["--exit-when-idle"]);
    let mut output = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(120)) {
        output.push(line);
    }
    let output = output.join("\n");
    let exit = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            child.0.try_wait().unwrap()
        })
        .unwrap_or_else(|| panic!("runway local did not exit when idle:\n{output}"));
    assert!(exit.success(), "{exit:?}\n{output}");
    for expected in [
        "GitHub emulator",
        "webhook intake",
        "web console",
        "(generated; set RUNWAY_WEBHOOK_SECRET",
        "linux-x64: [self-hosted, linux, x64], local runners",
        "queued 7 demo jobs",
        "  started  ",
        "Route",
        "Provision",
        "AwaitRunnerBusy",
        "Teardown",
        "Release",
        "Done",
        "succeeded",
        "idle: 7 job executions, 7 succeeded",
    ] {
        assert!(output.contains(expected), "{expected:?} missing:\n{output}");
    }
    // Every state line names its execution.
    assert!(
        output
            .lines()
            .filter(|l| l.contains("  Provision"))
            .all(|l| l.contains("job-")),
        "{output}"
    );
}

#[test]
fn runway_local_serves_the_job_machine_and_stops_on_ctrl_c() {
    let (child, lines) = spawn(&["--no-demo"]);
    let mut address = None;
    let mut console = None;
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        if let Some(url) = line.trim().strip_prefix("Step Functions API") {
            address = Some(url.trim().trim_start_matches("http://").to_owned());
        }
        if let Some(url) = line.trim().strip_prefix("web console") {
            console = Some(url.trim().to_owned());
        }
        let done = line.starts_with("Press Ctrl-C");
        seen.push(line);
        if done {
            break;
        }
    }
    let output = seen.join("\n");
    let address = address.unwrap_or_else(|| panic!("no endpoint in the banner:\n{output}"));
    assert!(output.contains("--endpoint-url http://"), "{output}");
    let listed = post(&address, "ListStateMachines", "{}");
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(listed.contains("stateMachine:job"), "{listed}");
    // The web console answers GET on the same port.
    assert_eq!(console, Some(format!("http://{address}/")), "{output}");
    let page = get(&address, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("<title>Executions · runway local</title>"),
        "{page}"
    );

    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let mut child = child;
    let exit = (0..150)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            child.0.try_wait().unwrap()
        })
        .expect("runway local did not stop within 15 s of Ctrl-C");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_configuration_that_cannot_be_used_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\nprovider = { kind = \"mainframe\" }\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_runway"))
        .args(["local", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pools[0].provider.kind: unknown variant `mainframe`"),
        "{stderr}"
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_runway"))
        .args(["local", "--config", "/nonexistent/runway.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read the configuration file"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

fn config_check(file: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_runway"))
        .args(["config", "check"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `runway config check` reads both spellings as runway would, and lists every problem with
/// its field path.
#[test]
fn config_check_lists_every_problem_with_its_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("pools.json");
    std::fs::write(
        &good,
        r#"{"pools": [{"name": "arm", "labels": ["self-hosted", "arm64"],
             "image": "ami-0123456789abcdef0", "instance_types": ["c7g.large"],
             "max_running": 4, "provider": {"kind": "ec2", "subnets": ["subnet-1"]}}]}"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = config_check(&good, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ok, 1 pool(s)"), "{stdout}");
    assert!(
        stdout.contains("arm: labels [self-hosted, arm64], ec2 runners, at most 4"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"router_fallback": {"pool": "gone"},
            "pools": [{"name": "arm", "labels": [], "max_running": 0,
                       "image": "ami-1", "instance_types": ["t4g.small"]},
                      {"name": "x64", "labels": ["x64"]}]}"#,
    )
    .unwrap();
    let (ok, _, stderr) = config_check(&bad, &[]);
    assert!(!ok);
    for expected in [
        "pools[0].labels: ",
        "pools[0].max_running: ",
        "router_fallback: ",
        "pools[1].image: pool \"x64\" has nothing to boot",
        "4 problem(s); nothing was started",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }

    // The built-in local configuration, and local runners refused for a deployed stack.
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../local/src/default.toml");
    let (ok, stdout, stderr) = config_check(&local, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("local runners"), "{stdout}");
    let pools = dir.path().join("pools.toml");
    std::fs::write(
        &pools,
        "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\nprovider = { kind = \"local\" }\n",
    )
    .unwrap();
    let (ok, _, stderr) = config_check(&pools, &["--for", "lambda"]);
    assert!(!ok);
    assert!(
        stderr.contains("pools[0].provider.kind: ") && stderr.contains("only under `runway local`"),
        "{stderr}"
    );
}
