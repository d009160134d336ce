//! The Lambda path end to end on moto: settings as the template sets them, the job flow built
//! on DynamoDB and SSM, then steps run through `handle`, the function each step binary runs
//! per invocation, with the sample events of sam/events.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_ssm::types::ParameterType;
use common::{CONFIG, settings};
use lambda_runtime::{Context, LambdaEvent};
use runway_jobflow::{JobFlow, Step};
use runway_lambda_support::{
    CONFIG_ENV, CONFIG_PARAMETER_ENV, DEADLINE_MARGIN, GITHUB_API_URL_ENV,
    GITHUB_CREDENTIAL_PARAMETER_ENV, SetupError, TABLE_ENV, build_flow, handle,
};
use runway_store::{DynamoStore, ExecutionKey, Store};
use runway_testkit::MotoServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn put_parameter(moto: &MotoServer, name: &str, value: &str, kind: ParameterType) {
    aws_sdk_ssm::Client::new(&moto.sdk_config().await)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

async fn table(moto: &MotoServer, name: &str) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    runway_store::create_table(&client, name).await.unwrap();
    DynamoStore::new(client, name, runway_clock::SystemClock::shared())
}

fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sam/events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The job flow a Lambda builds from an environment holding exactly `pairs`, AWS on moto.
async fn flow_of(moto: &MotoServer, pairs: &[(&str, &str)]) -> Result<JobFlow, SetupError> {
    build_flow(&settings(pairs)?, &moto.sdk_config().await).await
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[tokio::test]
async fn route_admit_and_release_run_through_the_lambda_handler_on_dynamodb() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let emulator = sample_repository_on_github().await;
    let store = table(moto, "lambda-flow").await;
    put_parameter(
        moto,
        "/lambda-flow/github/token",
        "ghp_sample",
        ParameterType::SecureString,
    )
    .await;
    let flow = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-flow"),
            (CONFIG_ENV, CONFIG),
            (GITHUB_CREDENTIAL_PARAMETER_ENV, "/lambda-flow/github/token"),
            // Admit reads the job it admits.
            (GITHUB_API_URL_ENV, emulator.api_url()),
        ],
    )
    .await
    .unwrap();

    let mut route_input = sample("route.json");
    route_input["input"]["job"]["id"] = json!(queued_job(&emulator));
    let execution = route_input["execution"].as_str().unwrap().to_owned();
    let route = handle(&flow, Step::Route, event(route_input.clone()))
        .await
        .unwrap();
    assert_eq!(route["decision"], "run", "{route}");
    assert_eq!(route["pool"], "linux-x64", "{route}");

    let mut admit_input = route_input.clone();
    admit_input["route"] = route.clone();
    let admission = handle(&flow, Step::Admit, event(admit_input))
        .await
        .unwrap();
    assert_eq!(admission["decision"], "admit", "{admission}");
    let key = ExecutionKey::new(execution.as_str()).unwrap();
    let holder = store.slot_holder(&key).await.unwrap();
    assert_eq!(
        holder.map(|h| h.pool.to_string()).as_deref(),
        Some("linux-x64"),
        "the slot is held in DynamoDB"
    );

    let mut release_input = route_input;
    release_input["route"] = route;
    release_input["outcome"] = json!("done");
    let release = handle(&flow, Step::Release, event(release_input.clone()))
        .await
        .unwrap();
    assert_eq!(release["slot"], "released", "{release}");
    assert!(store.slot_holder(&key).await.unwrap().is_none());

    // Idempotent, as a retried Lambda invocation needs.
    let again = handle(&flow, Step::Release, event(release_input))
        .await
        .unwrap();
    assert_eq!(again["slot"], "not-held", "{again}");
}

#[tokio::test]
async fn a_bad_payload_fails_with_the_error_name_the_state_machine_matches() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-bad-input").await;
    let flow = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-bad-input"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
        ],
    )
    .await
    .unwrap();
    let error = handle(&flow, Step::Route, event(json!({"execution": "x"})))
        .await
        .unwrap_err();
    assert_eq!(error.error_type, runway_jobflow::errors::BAD_INPUT);
    assert!(!error.error_message.is_empty());
}

#[tokio::test]
async fn the_config_document_can_come_from_an_ssm_parameter() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-config-parameter").await;
    put_parameter(moto, "/lambda-config/doc", CONFIG, ParameterType::String).await;
    put_parameter(
        moto,
        "/lambda-config/bad",
        r#"{"pools": [{"name": "p"}]}"#,
        ParameterType::String,
    )
    .await;
    let aws = moto.sdk_config().await;
    let with = |parameter: &'static str| {
        settings(&[
            (TABLE_ENV, "lambda-config-parameter"),
            (CONFIG_PARAMETER_ENV, parameter),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
        ])
        .unwrap()
    };

    let flow = build_flow(&with("/lambda-config/doc"), &aws).await.unwrap();
    assert_eq!(flow.config().pools[0].name, "linux-x64");

    let error = build_flow(&with("/lambda-config/bad"), &aws)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("SSM parameter /lambda-config/bad"),
        "{error}"
    );
    assert!(error.contains("labels"), "{error}");

    let error = build_flow(&with("/lambda-config/missing"), &aws)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("/lambda-config/missing"), "{error}");
    assert!(error.contains("may read it"), "{error}");
}

#[tokio::test]
async fn a_missing_credential_parameter_or_a_bad_private_key_is_a_clear_setup_error() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-credentials").await;
    put_parameter(
        moto,
        "/lambda-credentials/key",
        "not a pem",
        ParameterType::SecureString,
    )
    .await;
    let aws = moto.sdk_config().await;

    let missing = settings(&[
        (TABLE_ENV, "lambda-credentials"),
        (CONFIG_ENV, CONFIG),
        (GITHUB_CREDENTIAL_PARAMETER_ENV, "/lambda-credentials/none"),
    ])
    .unwrap();
    let error = build_flow(&missing, &aws).await.unwrap_err();
    assert!(
        matches!(&error, SetupError::Parameter { name, .. } if name == "/lambda-credentials/none"),
        "{error}"
    );

    let bad_key = settings(&[
        (TABLE_ENV, "lambda-credentials"),
        (CONFIG_ENV, CONFIG),
        ("RUNWAY_GITHUB_APP_ID", "1"),
        ("RUNWAY_GITHUB_INSTALLATION_ID", "2"),
        (GITHUB_CREDENTIAL_PARAMETER_ENV, "/lambda-credentials/key"),
    ])
    .unwrap();
    let error = build_flow(&bad_key, &aws).await.unwrap_err().to_string();
    assert!(error.contains("private key"), "{error}");
}

#[tokio::test]
async fn a_missing_policy_file_is_a_setup_error_naming_the_file() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-policy").await;
    let error = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-policy"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
            ("RUNWAY_ROUTER_POLICY", "/nonexistent/router.cwasm"),
        ],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("/nonexistent/router.cwasm"), "{error}");
}

#[tokio::test]
async fn a_router_policy_file_routes_the_job_as_wasm_and_as_precompiled_cwasm() {
    use runway_policy_host::{EngineConfig, PolicyEngine, Target};

    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-router-policy").await;
    let wasm = runway_testkit::built_policy("labels-router.wasm").unwrap();
    // What `runway policy compile` writes, for this machine's architecture.
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("router.cwasm");
    let engine = PolicyEngine::new(EngineConfig::default()).unwrap();
    let compiled = engine
        .precompile(&std::fs::read(&wasm).unwrap(), Target::host().unwrap())
        .unwrap();
    std::fs::write(&cwasm, compiled).unwrap();

    for path in [&wasm, &cwasm] {
        let path = path.to_str().unwrap();
        let flow = flow_of(
            moto,
            &[
                (TABLE_ENV, "lambda-router-policy"),
                (CONFIG_ENV, CONFIG),
                ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
                ("RUNWAY_ROUTER_POLICY", path),
            ],
        )
        .await
        .unwrap();
        let route = handle(&flow, Step::Route, event(sample("route.json")))
            .await
            .unwrap();
        assert_eq!(route["decision"], "run", "{path}: {route}");
        assert_eq!(route["fallback"], false, "{path}: {route}");
        // The labels-router's own wording, not the built-in matching's.
        assert!(
            route["reason"].as_str().unwrap().contains("extra label"),
            "{path}: {route}"
        );
    }

    // A router policy where a throttle policy is expected is refused at start.
    let error = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-router-policy"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
            ("RUNWAY_THROTTLE_POLICY", wasm.to_str().unwrap()),
        ],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("labels-router.wasm"), "{error}");
}

#[tokio::test]
async fn policy_reuse_from_the_environment_reaches_the_lambdas_policy_engine() {
    use runway_lambda_support::{POLICY_REUSE_ENV, policy_engine};
    use runway_policy_host::{InstanceReuse, Job, Pool};

    let wasm = runway_testkit::built_policy("labels-router.wasm").unwrap();
    let job = Job {
        labels: vec!["self-hosted".into(), "k8s".into()],
        ..Job::default()
    };
    let pools = [Pool {
        name: "linux-x64".into(),
        labels: vec!["self-hosted".into(), "k8s".into()],
        ..Pool::default()
    }];
    for (value, reuse, warm) in [
        (None, InstanceReuse::Never, 0),
        (Some("never"), InstanceReuse::Never, 0),
        (
            Some("verified:8"),
            InstanceReuse::Verified { verify_every: 8 },
            1,
        ),
    ] {
        let mut pairs = vec![
            (TABLE_ENV, "lambda-reuse"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
        ];
        pairs.extend(value.map(|value| (POLICY_REUSE_ENV, value)));
        let settings = settings(&pairs).unwrap();
        assert_eq!(settings.policy_reuse, reuse, "{value:?}");
        let engine = policy_engine(&settings).unwrap();
        assert_eq!(engine.config().reuse, reuse, "{value:?}");
        let router = engine.load_file(&wasm).unwrap().router().unwrap();
        assert_eq!(router.policy().reuses_instances(), warm == 1, "{value:?}");
        for _ in 0..3 {
            router.route(&job, &pools).unwrap();
        }
        assert_eq!(router.policy().warm_instances(), warm, "{value:?}");
    }

    // The job flow built with reuse on routes as it does without.
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-reuse").await;
    let flow = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-reuse"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
            ("RUNWAY_ROUTER_POLICY", wasm.to_str().unwrap()),
            (POLICY_REUSE_ENV, "verified"),
        ],
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let route = handle(&flow, Step::Route, event(sample("route.json")))
            .await
            .unwrap();
        assert_eq!(route["decision"], "run", "{route}");
        assert_eq!(route["fallback"], false, "{route}");
        assert!(
            route["reason"].as_str().unwrap().contains("extra label"),
            "{route}"
        );
    }

    // An invalid value stops the start and names the variable.
    let error = settings_error(&[
        (TABLE_ENV, "lambda-reuse"),
        (CONFIG_ENV, CONFIG),
        ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
        (POLICY_REUSE_ENV, "always"),
    ]);
    assert!(error.contains(POLICY_REUSE_ENV), "{error}");
    assert!(error.contains("verified:N"), "{error}");
}

fn settings_error(pairs: &[(&str, &str)]) -> String {
    settings(pairs).unwrap_err().to_string()
}

#[tokio::test]
async fn a_policy_file_compiled_for_another_architecture_is_a_setup_error_saying_to_recompile() {
    use runway_policy_host::{EngineConfig, PolicyEngine, Target};

    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-foreign-policy").await;
    let other = match Target::host().unwrap() {
        Target::X86_64 => Target::Aarch64,
        Target::Aarch64 => Target::X86_64,
    };
    let wasm = std::fs::read(runway_testkit::built_policy("labels-router.wasm").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("router.cwasm");
    std::fs::write(
        &cwasm,
        PolicyEngine::new(EngineConfig::default())
            .unwrap()
            .precompile(&wasm, other)
            .unwrap(),
    )
    .unwrap();
    let error = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-foreign-policy"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
            ("RUNWAY_ROUTER_POLICY", cwasm.to_str().unwrap()),
        ],
    )
    .await
    .unwrap_err();
    assert!(matches!(error, SetupError::Policy { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(cwasm.to_str().unwrap()), "{message}");
    assert!(message.contains("runway policy compile"), "{message}");
    assert_eq!(
        message.matches(cwasm.to_str().unwrap()).count(),
        1,
        "the file is named once: {message}"
    );
}

/// The sample job's repository on the emulated GitHub, where its runner registers.
async fn sample_repository_on_github() -> runway_github_emulator::EmulatorHandle {
    runway_github_emulator::Emulator::start(runway_github_emulator::EmulatorConfig {
        repositories: vec!["lineville/elastic-machines-testing".to_owned()],
        organizations: vec!["lineville".to_owned()],
        ..runway_github_emulator::EmulatorConfig::default()
    })
    .await
    .unwrap()
}

/// A job queued in the sample repository, as the admit step reads the jobs it admits.
fn queued_job(emulator: &runway_github_emulator::EmulatorHandle) -> u64 {
    let job = runway_github_emulator::NewJob::new(
        "lineville/elastic-machines-testing",
        &["self-hosted", "k8s"],
    );
    emulator.create_job(job).unwrap().job_id
}

fn sample_state(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sam/sample-state")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The function settings of sam/env.json.
fn sam_env(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sam/env.json");
    let env: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    env["Parameters"][name].as_str().unwrap().to_owned()
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// The step results in the sample events (sam/sample-state/*.json, which
/// scripts/make-sam-events.py resolves job.asl.json's Parameters against) are what the steps
/// return for the sample job under sam/env.json's pool: route exactly, a queued admission and
/// a launched runner field for field.
#[tokio::test]
async fn the_sample_events_carry_what_the_steps_return_for_the_sample_job() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let emulator = sample_repository_on_github().await;
    table(moto, "sam-samples").await;
    put_parameter(
        moto,
        "/sam-samples/github/token",
        "ghp_sample",
        ParameterType::SecureString,
    )
    .await;
    let flow = flow_of(
        moto,
        &[
            (TABLE_ENV, "sam-samples"),
            (CONFIG_ENV, &sam_env("RUNWAY_CONFIG")),
            (GITHUB_CREDENTIAL_PARAMETER_ENV, "/sam-samples/github/token"),
            (GITHUB_API_URL_ENV, emulator.api_url()),
        ],
    )
    .await
    .unwrap();

    let route = handle(&flow, Step::Route, event(sample("route.json")))
        .await
        .unwrap();
    assert_eq!(
        route,
        sample_state("route.json"),
        "sam/sample-state/route.json is what the route step returns: {route}"
    );

    // The pool's slots taken by two other jobs, the sample job queues.
    let pool_size = 2;
    for other in 0..pool_size {
        let mut input = sample("admit.json");
        input["execution"] = json!(format!("job-{other}-r1-a1"));
        input["input"]["job"]["id"] = json!(queued_job(&emulator));
        input["input"]["repository"]["id"] = json!(1);
        let admitted = handle(&flow, Step::Admit, event(input)).await.unwrap();
        assert_eq!(admitted["decision"], "admit", "{admitted}");
    }
    let admission = handle(&flow, Step::Admit, event(sample("admit.json")))
        .await
        .unwrap();
    // `enqueued_at` is the time of this run.
    assert_same_result(
        &admission,
        "admission.json",
        &[
            "decision",
            "reason",
            "priority",
            "recheck_after_seconds",
            "load",
            "position",
            "waiting_for",
        ],
    );

    let runner = handle(&flow, Step::Provision, event(sample("provision.json")))
        .await
        .unwrap();
    // The instance id and launch time are this run's.
    assert_same_result(
        &runner,
        "runner.json",
        &[
            "runner_name",
            "runner_id",
            "provider",
            "instance_type",
            "capacity",
            "attempt",
        ],
    );
}

/// `result` has the fields of `sam/sample-state/{sample}`, and the same values in `fields`.
fn assert_same_result(result: &Value, sample: &str, fields: &[&str]) {
    let expected = sample_state(sample);
    assert_eq!(keys(result), keys(&expected), "{sample}: {result}");
    for field in fields {
        assert_eq!(
            result[field], expected[field],
            "{sample}, {field}: {result}"
        );
    }
}

/// A GitHub that answers every request `503`, counting them.
async fn failing_github() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0_u8; 64 * 1024];
                // One request per connection: read its head, answer, close.
                let Ok(read) = socket.read(&mut buffer).await else {
                    return;
                };
                if read == 0 {
                    return;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"message":"Service Unavailable"}"#;
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, requests)
}

/// A step's GitHub calls end before its invocation does: with the invocation's deadline just
/// the margin away, a GitHub that keeps failing is asked once, not retried past the deadline,
/// and the step fails with the retryable error the state machine retries.
#[tokio::test]
async fn a_step_stops_retrying_github_before_its_invocation_times_out() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "lambda-deadline").await;
    let (github, requests) = failing_github().await;
    let flow = flow_of(
        moto,
        &[
            (TABLE_ENV, "lambda-deadline"),
            (CONFIG_ENV, CONFIG),
            ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
            (GITHUB_API_URL_ENV, &github),
        ],
    )
    .await
    .unwrap();
    let mut context = Context::default();
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    context.deadline = now_ms + u64::try_from(DEADLINE_MARGIN.as_millis()).unwrap();
    let error = handle(
        &flow,
        Step::CheckRunner,
        LambdaEvent::new(sample("check-runner.json"), context),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.error_type,
        runway_jobflow::errors::TRANSIENT,
        "{}",
        error.error_message
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "GitHub was asked again after the deadline"
    );
}
