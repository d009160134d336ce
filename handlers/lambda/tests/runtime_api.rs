//! The `runway-lambda` executable as Lambda runs it: a process speaking the Lambda Runtime API
//! (served here on 127.0.0.1), its entry point picked by `_HANDLER`, its settings those
//! `sam local invoke` gives it (`sam/env.json`), AWS on moto. One executable serves the
//! webhook, a job step and the reaper; a `Handler` it does not know stops it before it asks
//! for work.
//!
//! `RUNWAY_LAMBDA_EXECUTABLE` runs the same tests on another build of the executable, given as
//! a command: `scripts/sam-build.sh --smoke` sets it to the arm64 `bootstrap` that `sam build`
//! made, under `qemu-aarch64`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use runway_testkit::MotoServer;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::{Notify, mpsc};

const RUNTIME: &str = "/2018-06-01/runtime";

/// What the executable reported to the Runtime API.
#[derive(Debug)]
enum Report {
    Response { request_id: String, body: Value },
    Error { request_id: String, body: Value },
}

#[derive(Clone)]
struct RuntimeApi {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    queued: Arc<Notify>,
    reports: mpsc::UnboundedSender<Report>,
}

impl RuntimeApi {
    fn queue(&self, request_id: &str, event: Value) {
        if let Ok(mut events) = self.events.lock() {
            events.push_back((request_id.to_owned(), event));
        }
        self.queued.notify_one();
    }
}

/// `GET .../invocation/next`: long-polls until an event is queued, as Lambda does.
async fn next_invocation(State(api): State<RuntimeApi>) -> Response {
    loop {
        let next = api
            .events
            .lock()
            .ok()
            .and_then(|mut events| events.pop_front());
        if let Some((request_id, event)) = next {
            let mut headers = HeaderMap::new();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 60_000;
            let pairs = [
                ("lambda-runtime-aws-request-id", request_id.clone()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:runway-test".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    format!("Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"),
                ),
            ];
            for (name, value) in pairs {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return (headers, axum::Json(event)).into_response();
        }
        api.queued.notified().await;
    }
}

const TRACE_ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
const TRACE_PARENT: &str = "53995c3f42cd8ad8";

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!(String::from_utf8_lossy(body)))
}

/// `POST .../invocation/{request_id}/response` and `.../error`.
async fn invocation_result(
    State(api): State<RuntimeApi>,
    UrlPath((request_id, result)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = parse(&body);
    let report = match result.as_str() {
        "response" => Report::Response { request_id, body },
        "error" => Report::Error { request_id, body },
        _ => return StatusCode::NOT_FOUND,
    };
    let _ = api.reports.send(report);
    StatusCode::ACCEPTED
}

/// A Runtime API on 127.0.0.1: its address, the API, and the reports it receives.
async fn start_runtime_api() -> (String, RuntimeApi, mpsc::UnboundedReceiver<Report>) {
    let (reports, received) = mpsc::unbounded_channel();
    let api = RuntimeApi {
        events: Arc::default(),
        queued: Arc::default(),
        reports,
    };
    let app = Router::new()
        .route(&format!("{RUNTIME}/invocation/next"), get(next_invocation))
        .route(
            &format!("{RUNTIME}/invocation/{{request_id}}/{{result}}"),
            post(invocation_result),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (address, api, received)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample(name: &str) -> Value {
    let path = repo_root().join("sam/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The function environment `sam local invoke` gives every function (`sam/env.json`).
fn sam_environment() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("sam/env.json")).unwrap();
    let env: Value = serde_json::from_str(&text).unwrap();
    env["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect()
}

/// The executable with `_HANDLER=handler`, as Lambda starts it: the Runtime API's address,
/// the function's variables, credentials and an endpoint that lead to moto, nothing
/// inherited.
fn function_command(handler: &str, runtime_api: &str, moto: &MotoServer) -> Command {
    let mut command = match std::env::var("RUNWAY_LAMBDA_EXECUTABLE") {
        Ok(line) if !line.trim().is_empty() => {
            let mut words = line.split_whitespace();
            let mut command = Command::new(words.next().unwrap_or_default());
            command.args(words);
            command
        }
        _ => Command::new(env!("CARGO_BIN_EXE_runway-lambda")),
    };
    command
        .env_clear()
        .envs(sam_environment())
        .env("_HANDLER", handler)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("runway-{handler}"))
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/runway/test/{handler}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]0123")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the function until it exits (it must, within a minute); what it printed.
async fn exits_with(mut command: Command) -> (std::process::ExitStatus, String) {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the function exits")
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, printed)
}

/// What sam/env.json points at, made on moto once per test binary.
async fn sam_resources(moto: &'static MotoServer) {
    static MADE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    MADE.get_or_init(|| async move {
        let env: std::collections::HashMap<String, String> =
            sam_environment().into_iter().collect();
        let aws = moto.sdk_config().await;
        runway_store::create_table(&aws_sdk_dynamodb::Client::new(&aws), &env["RUNWAY_TABLE"])
            .await
            .unwrap();
        aws_sdk_ssm::Client::new(&aws)
            .put_parameter()
            .name(&env["RUNWAY_GITHUB_CREDENTIAL_PARAMETER"])
            .value("ghp_sample")
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        let machine_arn = &env["RUNWAY_JOB_STATE_MACHINE_ARN"];
        let name = machine_arn.rsplit(':').next().unwrap();
        let created = aws_sdk_sfn::Client::new(&aws)
            .create_state_machine()
            .name(name)
            .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/runway-job")
            .send()
            .await
            .unwrap();
        assert_eq!(created.state_machine_arn(), machine_arn);
    })
    .await;
}

/// Runs one invocation of `event` on the function with `_HANDLER=handler`; its report.
async fn invoke(handler: &str, event: Value) -> Report {
    invoke_with(handler, event, |_| {}).await
}

/// As [`invoke`], with the function's environment changed by `adjust`.
async fn invoke_with(handler: &str, event: Value, adjust: impl FnOnce(&mut Command)) -> Report {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    sam_resources(moto).await;
    let (address, api, mut reports) = start_runtime_api().await;
    let mut command = function_command(handler, &address, moto);
    adjust(&mut command);
    let mut function = command.spawn().unwrap();
    api.queue("request-1", event);
    let report = tokio::select! {
        report = reports.recv() => report.expect("the Runtime API stays up"),
        status = function.wait() => {
            let output = function.wait_with_output().await.ok();
            panic!("{handler} exited ({status:?}) before answering: {output:?}")
        }
        _ = tokio::time::sleep(Duration::from_secs(60)) => panic!("{handler} never answered"),
    };
    let _ = function.kill().await;
    report
}

#[tokio::test]
async fn the_webhook_entry_point_starts_an_execution_for_a_signed_queued_job() {
    let report = invoke("webhook", sample("webhook-queued.json")).await;
    let Report::Response { request_id, body } = report else {
        panic!("{report:?}");
    };
    assert_eq!(request_id, "request-1");
    assert_eq!(body["statusCode"], 202, "{body}");
    let answer: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["outcome"], "started", "{answer}");
    let execution = answer["execution"].as_str().unwrap().to_owned();

    let moto = MotoServer::shared().unwrap();
    let env: std::collections::HashMap<String, String> = sam_environment().into_iter().collect();
    let executions = aws_sdk_sfn::Client::new(&moto.sdk_config().await)
        .list_executions()
        .state_machine_arn(&env["RUNWAY_JOB_STATE_MACHINE_ARN"])
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = executions
        .executions()
        .iter()
        .map(|execution| execution.name())
        .collect();
    assert!(names.contains(&execution.as_str()), "{names:?}");
}

/// The webhook reads no GitHub credential, configuration document or policy: with none of
/// them readable it still starts and answers.
#[tokio::test]
async fn the_webhook_entry_point_starts_without_github_credentials_configuration_or_policies() {
    let report = invoke_with("webhook", sample("webhook-queued.json"), |command| {
        command
            .env_remove("RUNWAY_CONFIG")
            .env(
                "RUNWAY_GITHUB_CREDENTIAL_PARAMETER",
                "/runway/test/no-such-credential",
            )
            .env("RUNWAY_ROUTER_POLICY", "/no/such/router.wasm");
    })
    .await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(
        body["statusCode"].as_u64().map(|code| code / 100),
        Some(2),
        "{body}"
    );
}

#[tokio::test]
async fn the_webhook_entry_point_refuses_a_bad_signature_with_401() {
    let mut event = sample("webhook-queued.json");
    event["headers"]["x-hub-signature-256"] = json!(format!("sha256={}", "0".repeat(64)));
    let report = invoke("webhook", event).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["statusCode"], 401, "{body}");
}

/// Runs one invocation with active tracing (an X-Ray daemon on 127.0.0.1); its report and
/// the subsegments the daemon received.
async fn traced_invocation(handler: &str, event: Value) -> (Report, Vec<Value>) {
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let address = daemon.local_addr().unwrap().to_string();
    let report = invoke_with(handler, event, |command| {
        command.env("AWS_XRAY_DAEMON_ADDRESS", address);
    })
    .await;
    let mut subsegments = Vec::new();
    let mut buffer = [0u8; 65_536];
    while let Ok(length) = daemon.recv(&mut buffer) {
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        let (header, document) = text.split_once('\n').unwrap();
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        subsegments.push(serde_json::from_str::<Value>(document).unwrap());
    }
    (report, subsegments)
}

fn calls_in(subsegments: &[Value]) -> Vec<String> {
    for subsegment in subsegments {
        assert_eq!(subsegment["trace_id"], TRACE_ROOT, "{subsegment}");
        assert_eq!(subsegment["parent_id"], TRACE_PARENT, "{subsegment}");
        assert_eq!(subsegment["type"], "subsegment", "{subsegment}");
    }
    subsegments
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["name"].as_str().unwrap_or("?"),
                s["aws"]["operation"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn with_active_tracing_each_aws_call_of_an_invocation_is_an_xray_subsegment_of_its_trace() {
    let (report, subsegments) = traced_invocation("webhook", sample("webhook-queued.json")).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["statusCode"], 202, "{body}");
    let calls = calls_in(&subsegments);
    assert!(
        calls.contains(&"SFN StartExecution".to_owned()),
        "{calls:?}"
    );
    for subsegment in &subsegments {
        assert_eq!(subsegment["namespace"], "aws", "{subsegment}");
        assert!(subsegment["end_time"].as_f64() >= subsegment["start_time"].as_f64());
    }

    let (report, subsegments) = traced_invocation("admit", sample("admit.json")).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["decision"], "admit", "{body}");
    let calls = calls_in(&subsegments);
    assert!(
        calls.iter().any(|call| call.starts_with("DynamoDB ")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_step_entry_point_runs_that_step() {
    let report = invoke("route", sample("route.json")).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["decision"], "run", "{body}");
    assert_eq!(body["pool"], "linux-x64", "{body}");
}

#[tokio::test]
async fn a_step_failure_reaches_the_runtime_api_under_the_name_the_state_machine_catches() {
    let report = invoke("route", json!({"execution": "x", "input": "not a job"})).await;
    let Report::Error { request_id, body } = report else {
        panic!("{report:?}");
    };
    assert_eq!(request_id, "request-1");
    assert!(
        body["errorType"]
            .as_str()
            .is_some_and(|name| name.starts_with("Runway.")),
        "{body}"
    );
}

#[tokio::test]
async fn the_reap_entry_point_runs_a_sweep() {
    let report = invoke("reap", sample("reap-stale-slots.json")).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["sweep"], "stale-slots", "{body}");
}

#[tokio::test]
async fn the_reap_entry_point_takes_a_spot_interruption_warning_from_eventbridge() {
    let report = invoke("reap", sample("reap-spot-interruption.json")).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["instance_id"], "i-1234567890abcdef0", "{body}");
    assert_eq!(body["recorded"], false, "{body}");
    assert!(
        body["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("not a runner of this stack")),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_handler_stops_the_function_with_the_names_to_use() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let (address, _api, mut reports) = start_runtime_api().await;
    let (status, printed) = exits_with(function_command("bootstrap", &address, moto)).await;
    assert!(!status.success());
    assert!(
        printed.contains(r#"unknown handler \"bootstrap\""#),
        "{printed}"
    );
    assert!(printed.contains("webhook, route, admit"), "{printed}");
    assert!(
        reports.try_recv().is_err(),
        "it asked for no work and reported nothing"
    );
}

#[tokio::test]
async fn a_setting_missing_stops_the_function_with_one_log_line_saying_what_to_set() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let (address, _api, mut reports) = start_runtime_api().await;
    let mut command = function_command("route", &address, moto);
    command.env_remove("RUNWAY_TABLE");
    let (status, printed) = exits_with(command).await;
    assert!(!status.success());
    let lines: Vec<Value> = printed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert_eq!(lines.len(), 1, "{printed}");
    assert_eq!(lines[0]["level"], "ERROR", "{printed}");
    assert_eq!(lines[0]["fields"]["handler"], "route", "{printed}");
    assert!(
        lines[0]["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("RUNWAY_TABLE is not set")),
        "{printed}"
    );
    assert!(reports.try_recv().is_err(), "it asked for no work");
}
