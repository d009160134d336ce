//! The Lambda runner image's bootstrap (`sam/lambda-runner/bootstrap`) for real: `shellcheck`,
//! and the script run as Lambda would run it, against the local Runtime API
//! (`runway_testkit::RuntimeApi`), moto's SSM (signed by curl `--aws-sigv4`, as in Lambda) and
//! a stand-in `run.sh` that records what it was given. What differs from Lambda: the runner is
//! a stand-in, and the environment is this machine's, not the image's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use runway_testkit::runtime_api::Report;
use runway_testkit::{MotoServer, RuntimeApi};
use serde_json::{Value, json};

fn bootstrap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sam/lambda-runner/bootstrap")
}

#[test]
fn the_bootstrap_passes_shellcheck() {
    let output = Command::new("shellcheck")
        .arg(bootstrap())
        .output()
        .expect("shellcheck runs (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A stand-in runner: records its arguments, environment, directory and pid, then sleeps
/// `$RUNWAY_TEST_SLEEP` seconds (in the same process, so stopping it is visible).
const RUN_SH: &str = r#"#!/bin/bash
printf '%s\n' "$@" > "$RUNWAY_TEST_OUT/args"
env > "$RUNWAY_TEST_OUT/env"
pwd > "$RUNWAY_TEST_OUT/pwd"
echo $$ > "$RUNWAY_TEST_OUT/pid"
exec sleep "${RUNWAY_TEST_SLEEP:-0}"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    runner_dir: PathBuf,
    work_root: PathBuf,
    out: PathBuf,
    ssm: aws_sdk_ssm::Client,
    moto: &'static MotoServer,
    api: RuntimeApi,
    jit: String,
    record: String,
}

async fn fixture(tag: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let runner_dir = dir.path().join("actions-runner");
    let work_root = dir.path().join("tmp");
    let out = dir.path().join("out");
    for path in [&runner_dir, &work_root, &out] {
        std::fs::create_dir_all(path).unwrap();
    }
    let run = runner_dir.join("run.sh");
    std::fs::write(&run, RUN_SH).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();

    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config().await);
    let jit = format!("/runway/runway/jit/lambda/configs/{tag}");
    let record = format!("/runway/runway/jit/lambda/runners/{tag}");
    ssm.put_parameter()
        .name(&jit)
        .value(format!("secret-jit-config-{tag}"))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name(&record)
        .value(json!({"runner": tag}).to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        runner_dir,
        work_root,
        out,
        ssm,
        moto,
        api: RuntimeApi::start().await.unwrap(),
        jit,
        record,
    }
}

impl Fixture {
    fn event(&self) -> Value {
        json!({
            "runway": "runner",
            "jit_parameter": self.jit,
            "record_parameter": self.record,
            "runner": "r",
            "execution": "e",
            "timeout_seconds": 60,
        })
    }

    fn start(&self, sleep_seconds: u32) -> Child {
        Command::new("bash")
            .arg(bootstrap())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.api.address())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("AWS_SESSION_TOKEN", "testing-token")
            .env("RUNWAY_SSM_ENDPOINT", self.moto.endpoint_url())
            .env("RUNWAY_RUNNER_DIR", &self.runner_dir)
            .env("RUNWAY_WORK_ROOT", &self.work_root)
            .env("RUNWAY_RECORD_POLL_SECONDS", "1")
            .env("RUNWAY_DEADLINE_MARGIN_SECONDS", "3")
            .env("RUNWAY_STOP_GRACE_SECONDS", "2")
            .env("RUNWAY_TEST_OUT", &self.out)
            .env("RUNWAY_TEST_SLEEP", sleep_seconds.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bash runs the bootstrap")
    }

    async fn exists(&self, name: &str) -> bool {
        self.ssm.get_parameter().name(name).send().await.is_ok()
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.out.join(file)).unwrap_or_default()
    }

    /// Waits for the stand-in runner to have started.
    async fn runner_started(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.read("pid").trim().is_empty() {
            assert!(Instant::now() < deadline, "the runner never started");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn report(&mut self) -> Report {
        tokio::time::timeout(Duration::from_secs(60), self.api.report())
            .await
            .expect("the bootstrap reports within a minute")
            .expect("a report")
    }

    fn runner_alive(&self) -> bool {
        let pid = self.read("pid");
        Path::new(&format!("/proc/{}", pid.trim())).exists()
    }
}

fn wait_for_exit(mut child: Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the bootstrap exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the bootstrap did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invocation_runs_one_runner_with_its_jit_config_and_cleans_up() {
    let mut fixture = fixture("bootstrap-done").await;
    fixture.api.queue("request-done", fixture.event());
    let child = fixture.start(0);
    let report = fixture.report().await;
    let Report::Response { request_id, body } = report else {
        panic!("expected a response, got {report:?}");
    };
    assert_eq!(request_id, "request-done");
    assert_eq!(body, json!({"outcome": "done", "runner_exit_status": 0}));
    wait_for_exit(child);

    // The runner got its JIT config as run.sh's argument, from its own copy under /tmp.
    assert_eq!(
        fixture.read("args"),
        "--jitconfig\nsecret-jit-config-bootstrap-done\n"
    );
    assert!(
        fixture
            .read("pwd")
            .starts_with(&fixture.work_root.display().to_string()),
        "{}",
        fixture.read("pwd")
    );
    // Without the function's credentials or the Runtime API.
    let env = fixture.read("env");
    for hidden in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_LAMBDA_RUNTIME_API",
    ] {
        assert!(!env.contains(hidden), "{hidden} reached the runner: {env}");
    }
    // The JIT config was deleted once read, the record once the runner ended, the copy too.
    assert!(!fixture.exists(&fixture.jit).await);
    assert!(!fixture.exists(&fixture.record).await);
    assert_eq!(std::fs::read_dir(&fixture.work_root).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_record_stops_the_runner() {
    let mut fixture = fixture("bootstrap-teardown").await;
    fixture.api.queue("request-teardown", fixture.event());
    let child = fixture.start(120);
    fixture.runner_started().await;
    assert!(fixture.runner_alive());
    assert!(!fixture.exists(&fixture.jit).await, "read and deleted");

    // What the provider's terminate does.
    fixture
        .ssm
        .delete_parameter()
        .name(&fixture.record)
        .send()
        .await
        .unwrap();
    let report = fixture.report().await;
    let Report::Response { body, .. } = report else {
        panic!("expected a response, got {report:?}");
    };
    assert_eq!(body, json!({"outcome": "torn-down"}));
    assert!(!fixture.runner_alive(), "the runner was stopped");
    wait_for_exit(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_outlives_the_function_fails_the_invocation_saying_so() {
    let mut fixture = fixture("bootstrap-timeout").await;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    // Lambda would end the function in 6 s; the bootstrap stops the runner 3 s before.
    fixture
        .api
        .queue_with_deadline("request-timeout", fixture.event(), now_ms + 6_000);
    let child = fixture.start(120);
    fixture.runner_started().await;
    let report = fixture.report().await;
    let Report::Error { request_id, body } = report else {
        panic!("expected an error, got {report:?}");
    };
    assert_eq!(request_id, "request-timeout");
    assert_eq!(body["errorType"], "Runway.FunctionTimeout");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("the job outlived the Lambda function's timeout (60 s)"),
        "{message}"
    );
    assert!(!fixture.runner_alive(), "the runner was stopped");
    assert!(
        !fixture.exists(&fixture.record).await,
        "the ended runner's record is gone"
    );
    wait_for_exit(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_torn_down_before_it_started_runs_nothing() {
    let mut fixture = fixture("bootstrap-early").await;
    fixture
        .ssm
        .delete_parameter()
        .name(&fixture.record)
        .send()
        .await
        .unwrap();
    fixture.api.queue("request-early", fixture.event());
    let child = fixture.start(0);
    let report = fixture.report().await;
    let Report::Response { body, .. } = report else {
        panic!("expected a response, got {report:?}");
    };
    assert_eq!(body, json!({"outcome": "torn-down-before-start"}));
    wait_for_exit(child);
    assert!(fixture.read("args").is_empty(), "no runner ran");
    assert!(
        fixture.exists(&fixture.jit).await,
        "the JIT config was not read (teardown deletes it)"
    );
}
