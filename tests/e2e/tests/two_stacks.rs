//! Two runway stacks in one AWS account (one moto) serving one GitHub organisation (one
//! emulator, which delivers every event to both, as GitHub does to two Apps), each with its own
//! pool and DynamoDB table. Both follow every job (the job that is not theirs ends as NotOurs
//! under the same execution name), both reapers sweep with no grace at all, and neither stack
//! ever touches the other's instances, JIT config parameters, runner registrations or slots.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use runway_asl::ExecutionStatus;
use runway_clock::SystemClock;
use runway_github::{Credentials, GitHub, RestGitHub, Secret};
use runway_github_emulator::{NewJob, WebhookTarget};
use runway_local::{LocalConfig, LocalSystem, Supplied};
use runway_providers::OwnedRunner;
use runway_reaper::Sweep;
use runway_store::PoolName;
use runway_testkit::MotoServer;

const SECRET: &str = "two-stacks-webhook-secret";

/// One stack: its name, its pool (whose jobs ask for the label `stack`), its table.
fn stack_config(stack: &str) -> LocalConfig {
    let toml = format!(
        r#"
stack = "{stack}"

[github]
mode = "emulator"
repositories = ["octo-org/app"]
organizations = ["octo-org"]
webhook_secret = "{SECRET}"
scope = "repository"

[store]
kind = "dynamodb"
table = "{stack}"

[[pools]]
name = "{stack}-ec2"
labels = ["self-hosted", "linux", "{stack}"]
max_running = 2
boot_timeout_seconds = 300
idle_timeout_seconds = 300
image = "ami-12c6146b"
instance_types = ["m5.large"]

[pools.provider]
kind = "ec2"
capacity = "on-demand"
"#
    );
    let mut config = LocalConfig::from_toml_str(&toml).unwrap_or_else(|error| panic!("{error}"));
    config.listen = runway_local::Listen::any_free_port();
    config
}

/// GitHub delivering each webhook to both stacks' Apps: forwards every delivery, as sent, to
/// every target.
#[derive(Clone, Default)]
struct Fanout {
    targets: Arc<Mutex<Vec<String>>>,
}

async fn fan_out(State(fanout): State<Fanout>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let targets = fanout.targets.lock().unwrap().clone();
    let client = reqwest::Client::new();
    let mut status = StatusCode::OK;
    for target in targets {
        let mut request = client.post(&target).body(body.clone());
        for (name, value) in &headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(answer) if answer.status().is_success() => {}
            _ => status = StatusCode::BAD_GATEWAY,
        }
    }
    status
}

async fn start_fanout() -> (Fanout, String) {
    let fanout = Fanout::default();
    let app = axum::Router::new()
        .fallback(fan_out)
        .with_state(fanout.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fanout, url)
}

async fn owned(system: &LocalSystem) -> Vec<OwnedRunner> {
    let mut all = Vec::new();
    for provider in system.providers().values() {
        all.extend(provider.owned().await.unwrap());
    }
    all
}

/// The one runner the stack launched, once it is there.
async fn launched(system: &LocalSystem, job: u64) -> OwnedRunner {
    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    loop {
        if let Some(runner) = owned(system).await.into_iter().next() {
            return runner;
        }
        if tokio::time::Instant::now() > deadline {
            let states = system
                .execution_for_job(job)
                .map(|e| states(system, &e).join(" → "))
                .unwrap_or_default();
            panic!("no runner was launched for job {job}: {states}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the stack's execution for `job` has ended as not its job.
async fn not_ours(system: &LocalSystem, job: u64) {
    let execution = ended(system, job).await;
    assert_succeeded(system, &execution, "NotOurs");
}

async fn instance_state(ec2: &aws_sdk_ec2::Client, id: &str) -> Option<InstanceStateName> {
    ec2.describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations()
        .first()
        .and_then(|reservation| reservation.instances().first())
        .and_then(|instance| instance.state())
        .and_then(|state| state.name())
        .cloned()
}

async fn jit_config(ssm: &aws_sdk_ssm::Client, stack: &str, instance: &str) -> Option<String> {
    ssm.get_parameter()
        .name(format!("/runway/{stack}/jit/{instance}"))
        .with_decryption(true)
        .send()
        .await
        .ok()
        .and_then(|output| output.parameter)
        .and_then(|parameter| parameter.value)
}

async fn slots_held(system: &LocalSystem, pool: &str) -> usize {
    system
        .store()
        .slot_holders(&PoolName::new(pool).unwrap())
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_in_one_account_never_touch_each_other() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let ssm = aws_sdk_ssm::Client::new(&aws);

    let system_a = LocalSystem::start_with(
        stack_config("stack-a"),
        Supplied {
            aws: Some(aws.clone()),
            ..Supplied::default()
        },
    )
    .await
    .unwrap_or_else(|error| panic!("stack a did not start: {error}"));
    let emulator = emulator(&system_a);
    let github = |token: &str| -> Arc<dyn GitHub> {
        Arc::new(
            RestGitHub::new(
                emulator.api_url(),
                Credentials::Token(Secret::new(token)),
                SystemClock::shared(),
            )
            .unwrap(),
        )
    };
    let system_b = LocalSystem::start_with(
        stack_config("stack-b"),
        Supplied {
            aws: Some(aws.clone()),
            github: Some(github("stack-b")),
            ..Supplied::default()
        },
    )
    .await
    .unwrap_or_else(|error| panic!("stack b did not start: {error}"));
    let (fanout, fanout_url) = start_fanout().await;
    fanout.targets.lock().unwrap().extend([
        system_a.webhook_url().to_owned(),
        system_b.webhook_url().to_owned(),
    ]);
    emulator.set_webhook(Some(WebhookTarget {
        url: fanout_url,
        secret: SECRET.to_owned(),
    }));

    let job_a = emulator
        .create_job(NewJob::new(
            "octo-org/app",
            &["self-hosted", "linux", "stack-a"],
        ))
        .unwrap()
        .job_id;
    let job_b = emulator
        .create_job(NewJob::new(
            "octo-org/app",
            &["self-hosted", "linux", "stack-b"],
        ))
        .unwrap()
        .job_id;

    let runner_a = launched(&system_a, job_a).await;
    let runner_b = launched(&system_b, job_b).await;
    // Each stack took its own job, under the execution name the other stack also used.
    not_ours(&system_b, job_a).await;
    not_ours(&system_a, job_b).await;
    assert_eq!(
        runner_a.execution,
        system_a.execution_for_job(job_a).unwrap().name
    );
    assert_eq!(
        runner_b.execution,
        system_b.execution_for_job(job_b).unwrap().name
    );
    // Runner names carry the stack.
    assert!(runner_a.runner_name.starts_with("stack-a-"), "{runner_a:?}");
    assert!(runner_b.runner_name.starts_with("stack-b-"), "{runner_b:?}");
    let config_a = jit_config(&ssm, "stack-a", &runner_a.instance_id)
        .await
        .expect("stack a's JIT config is under /runway/stack-a/jit");
    let config_b = jit_config(&ssm, "stack-b", &runner_b.instance_id)
        .await
        .expect("stack b's JIT config is under /runway/stack-b/jit");

    // Both reapers sweep everything, with no grace.
    let reapers = [
        (
            "stack a",
            reaper_without_grace(&system_a, github("reaper-a")),
        ),
        (
            "stack b",
            reaper_without_grace(&system_b, github("reaper-b")),
        ),
    ];
    let mut reports = BTreeMap::new();
    for (stack, reaper) in &reapers {
        for sweep in [
            Sweep::OrphanRunners,
            Sweep::OfflineRunners,
            Sweep::StaleSlots,
        ] {
            let report = reaper
                .sweep(sweep)
                .await
                .unwrap_or_else(|error| panic!("{stack} {sweep:?}: {error}"));
            reports.insert(format!("{stack} {sweep:?}"), report);
        }
    }
    for (id, stack) in [
        (&runner_a.instance_id, "stack-a"),
        (&runner_b.instance_id, "stack-b"),
    ] {
        assert_eq!(
            instance_state(&ec2, id).await,
            Some(InstanceStateName::Running),
            "{stack}'s runner {id} was touched: {reports:#?}"
        );
        assert!(
            jit_config(&ssm, stack, id).await.is_some(),
            "{stack}'s JIT config was removed: {reports:#?}"
        );
    }
    assert_eq!(
        slots_held(&system_a, "stack-a-ec2").await,
        1,
        "{reports:#?}"
    );
    assert_eq!(
        slots_held(&system_b, "stack-b-ec2").await,
        1,
        "{reports:#?}"
    );
    for report in reports.values() {
        assert_eq!(report.acted, 0, "{report:#?}");
    }
    for (system, job) in [(&system_a, job_a), (&system_b, job_b)] {
        assert_eq!(
            system.execution_for_job(job).map(|e| e.status),
            Some(ExecutionStatus::Running)
        );
    }
    assert_eq!(owned(&system_a).await, vec![runner_a.clone()]);
    assert_eq!(owned(&system_b).await, vec![runner_b.clone()]);

    // Each instance's runner takes its own stack's job; both stacks end clean.
    for (config, job) in [(&config_a, job_a), (&config_b, job_b)] {
        let outcome = runway_github_emulator::runner::run_once(Some(emulator.base_url()), config)
            .await
            .unwrap();
        assert!(
            matches!(outcome, runway_github_emulator::runner::RunOutcome::Completed { job_id, .. } if job_id == job),
            "{outcome:?}"
        );
    }
    for (system, job) in [(&system_a, job_a), (&system_b, job_b)] {
        let execution = ended(system, job).await;
        assert_succeeded(system, &execution, "Done");
    }
    for id in [&runner_a.instance_id, &runner_b.instance_id] {
        let state = instance_state(&ec2, id).await;
        assert!(
            matches!(
                state,
                Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
            ),
            "{id}: {state:?}"
        );
    }
    assert_nothing_left(&system_b).await;
    assert_nothing_left(&system_a).await;
    system_b.shutdown().await;
    system_a.shutdown().await;
}
