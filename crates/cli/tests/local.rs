//! `runway local`, run as the built binary: it serves the Step Functions API, registers the
//! demo machine, runs a demo execution and stops cleanly on Ctrl-C.

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

#[test]
fn runway_local_serves_the_api_and_runs_the_demo() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let child = Command::new(env!("CARGO_BIN_EXE_runway"))
        .args(["local", "--sfn-addr", "127.0.0.1:0"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("runway local went quiet")
    };

    let mut address = None;
    let mut seen = Vec::new();
    loop {
        let line = next();
        if let Some(url) = line.trim().strip_prefix("Step Functions API") {
            address = Some(url.trim().trim_start_matches("http://").to_owned());
        }
        let done = line.contains("ExecutionSucceeded") || line.contains("ExecutionFailed");
        seen.push(line);
        if done {
            break;
        }
    }
    let output = seen.join("\n");
    let address = address.unwrap_or_else(|| panic!("no endpoint in the banner:\n{output}"));
    assert!(
        output.contains("list-state-machines --endpoint-url http://"),
        "{output}"
    );
    assert!(output.contains("demo/"), "{output}");
    assert!(
        output.contains("WaitStateEntered  PauseBriefly"),
        "{output}"
    );
    assert!(output.contains("ParallelStateEntered  FanOut"), "{output}");
    assert!(output.contains("ExecutionSucceeded"), "{output}");

    let listed = post(&address, "ListStateMachines", "{}");
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(listed.contains("stateMachine:demo"), "{listed}");

    // Ctrl-C stops it cleanly.
    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let exit = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            child.0.try_wait().unwrap()
        })
        .expect("runway local did not stop within 10 s of Ctrl-C");
    assert!(exit.success(), "{exit:?}");
}
