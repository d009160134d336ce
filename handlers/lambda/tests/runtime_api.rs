//! The `runway-lambda` executable as Lambda runs it: a process speaking the Lambda Runtime API
//! (served here on 127.0.0.1), its entry point picked by `_HANDLER`, its settings those
//! `sam local invoke` gives it (`sam/env.json`), AWS on moto. One executable serves the
//! webhook, a job step and the reaper; a `Handler` it does not know stops it before it asks
//! for work.
//!
//! `RUNWAY_LAMBDA_EXECUTABLE` runs the same tests on another build of the executable, given as
//! a command: `scripts/sam-build.sh --smoke` sets it to the arm64 `bootstrap` that `sam build`
//! made, under `qemu-aarch64`.

mod support;

use std::time::Duration;

use runway_testkit::MotoServer;
use runway_testkit::runtime_api::{Report, RuntimeApi, TRACE_PARENT, TRACE_ROOT};
use serde_json::{Value, json};
use support::{function_command, sam_environment, sam_resources, sample};
use tokio::process::Command;

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

/// Runs one invocation of `event` on the function with `_HANDLER=handler`; its report.
async fn invoke(handler: &str, event: Value) -> Report {
    invoke_with(handler, event, |_| {}).await
}

/// As [`invoke`], with the function's environment changed by `adjust`.
async fn invoke_with(handler: &str, event: Value, adjust: impl FnOnce(&mut Command)) -> Report {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    sam_resources(moto).await;
    let mut api = RuntimeApi::start().await.unwrap();
    let mut command = function_command(handler, api.address(), moto);
    adjust(&mut command);
    let mut function = command.spawn().unwrap();
    api.queue("request-1", event);
    let report = tokio::select! {
        report = api.report() => report.expect("the Runtime API stays up"),
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

    let (report, subsegments) = traced_invocation("release", sample("release-done.json")).await;
    let Report::Response { body, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(body["slot"], "not-held", "{body}");
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
    let mut api = RuntimeApi::start().await.unwrap();
    let (status, printed) = exits_with(function_command("bootstrap", api.address(), moto)).await;
    assert!(!status.success());
    assert!(
        printed.contains(r#"unknown handler \"bootstrap\""#),
        "{printed}"
    );
    assert!(printed.contains("webhook, route, admit"), "{printed}");
    assert!(
        api.try_report().is_none() && api.first_poll().is_none(),
        "it asked for no work and reported nothing"
    );
}

#[tokio::test]
async fn a_setting_missing_stops_the_function_with_one_log_line_saying_what_to_set() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let api = RuntimeApi::start().await.unwrap();
    let mut command = function_command("route", api.address(), moto);
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
    assert!(api.first_poll().is_none(), "it asked for no work");
}

/// `runway doctor`'s events, as `runway_doctor` sends them: every entry point takes its event
/// without doing anything (no sync, no sweep, no step) and answers as the doctor expects.
#[tokio::test]
async fn every_entry_point_answers_the_doctors_event_as_started() {
    use runway_doctor::{Answer, Invoked, doctor_event, read_answer};
    for handler in ["route", "provision", "reap", "runner-cache", "webhook"] {
        let event: Value = serde_json::from_slice(&doctor_event(handler)).unwrap();
        let report = invoke_with(handler, event, |command| {
            // No bucket is read: the doctor's event stops before any sync.
            command.env("RUNWAY_RUNNER_CACHE_BUCKET", "runway-doctor-no-such-bucket");
        })
        .await;
        let invoked = match report {
            Report::Response { body, .. } => Invoked {
                function_error: None,
                payload: body.to_string().into_bytes(),
            },
            Report::Error { body, .. } => Invoked {
                function_error: Some("Unhandled".into()),
                payload: body.to_string().into_bytes(),
            },
        };
        match read_answer(handler, &invoked) {
            // An unsigned GET is refused before anything is started.
            Answer::Started(said) if handler == "webhook" => {
                assert!(said.starts_with("HTTP 4"), "{said}")
            }
            answer => assert_eq!(
                answer,
                Answer::Started(format!("runway {}", env!("CARGO_PKG_VERSION"))),
                "{handler}: {invoked:?}"
            ),
        }
    }
}
