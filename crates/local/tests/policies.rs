//! `[policies]` of `runway local`: policy files (`.wasm` or `.cwasm`) through the engine's one
//! loader, and `reuse`, which the job flow's policies run with.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runway_github_emulator::NewJob;
use runway_local::{Listen, LocalConfig, LocalSystem};
use runway_policy_host::{EngineConfig, InstanceReuse, PolicyEngine, Target};

const LABELS: [&str; 3] = ["self-hosted", "linux", "x64"];

fn labels_router() -> PathBuf {
    runway_testkit::built_policy("labels-router.wasm").unwrap()
}

/// One local pool whose runners are `sleep` (they never register, so a job stays in flight
/// after it was routed), the emulator and every service on a free port.
fn config(policies: &str) -> LocalConfig {
    let mut config = LocalConfig::from_toml_str(&format!(
        r#"
        [policies]
        {policies}

        [[pools]]
        name = "linux-x64"
        labels = {LABELS:?}
        max_running = 1
        boot_timeout_seconds = 60
        provider = {{ kind = "local", command = ["sleep", "30"] }}
        "#
    ))
    .unwrap_or_else(|error| panic!("{policies}: {error}"));
    config.listen = Listen::any_free_port();
    config
}

fn precompile(source: &Path, target: Target, into: &Path) -> PathBuf {
    let artefact = PolicyEngine::new(EngineConfig::default())
        .unwrap()
        .precompile(&std::fs::read(source).unwrap(), target)
        .unwrap();
    let path = into.join("router.cwasm");
    std::fs::write(&path, artefact).unwrap();
    path
}

/// Whether some execution has left its Route state (the router policy has decided).
fn routed(system: &LocalSystem) -> bool {
    system.executions().iter().any(|execution| {
        system
            .service()
            .get_execution_history(&execution.execution_arn, false)
            .unwrap_or_default()
            .iter()
            .any(|event| {
                event.event_type.ends_with("StateExited")
                    && event.detail().and_then(|detail| detail["name"].as_str()) == Some("Route")
            })
    })
}

/// Queues a job, waits (bounded) until it was routed, and returns how many instances the
/// router policy then keeps warm.
async fn warm_instances_after_routing_a_job(system: &LocalSystem) -> usize {
    let emulator = system.emulator().expect("the emulator runs");
    emulator
        .create_job(NewJob::new("octo-org/app", &LABELS))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !routed(system) {
        assert!(Instant::now() < deadline, "the job was not routed in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    system
        .router_policy()
        .expect("a router policy is loaded")
        .policy()
        .warm_instances()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_reuse_from_the_config_reaches_the_job_flows_router() {
    let router = labels_router();
    let system = LocalSystem::start(config(&format!(
        "router = {:?}\nreuse = \"verified:8\"",
        router.display().to_string()
    )))
    .await
    .unwrap_or_else(|error| panic!("runway local did not start: {error}"));
    let policy = system.router_policy().unwrap().policy().clone();
    assert!(policy.reuses_instances());
    assert!(
        system
            .notes()
            .iter()
            .any(|note| note.contains("verified:8")),
        "{:?}",
        system.notes()
    );
    // The Route step decides with the policy; its clean instance is kept for the next call.
    assert_eq!(warm_instances_after_routing_a_job(&system).await, 1);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reuse_every_decision_gets_a_pristine_instance() {
    let router = labels_router();
    let dir = tempfile::tempdir().unwrap();
    // A precompiled router loads through the same loader as a component.
    let cwasm = precompile(&router, Target::host().unwrap(), dir.path());
    let system = LocalSystem::start(config(&format!(
        "router = {:?}",
        cwasm.display().to_string()
    )))
    .await
    .unwrap_or_else(|error| panic!("runway local did not start: {error}"));
    let policy = system.router_policy().unwrap().policy().clone();
    assert!(!policy.reuses_instances());
    assert_eq!(warm_instances_after_routing_a_job(&system).await, 0);
    system.shutdown().await;
}

/// The output of the first `state` an execution left, as JSON.
fn state_output(system: &LocalSystem, state: &str) -> Option<serde_json::Value> {
    system.executions().iter().find_map(|execution| {
        system
            .service()
            .get_execution_history(&execution.execution_arn, false)
            .unwrap_or_default()
            .iter()
            .filter(|event| event.event_type.ends_with("StateExited"))
            .filter_map(|event| event.detail())
            .find(|detail| detail["name"].as_str() == Some(state))
            .and_then(|detail| serde_json::from_str(detail["output"].as_str()?).ok())
    })
}

/// A Python router and a TypeScript throttle drive the real job machine: the Route and Admit
/// states carry their decisions and reasons. The bounds come from `[policies]` (a generous
/// time budget: the first decision of each runs on a loaded test machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_typescript_policies_route_and_admit_jobs() {
    let router = runway_testkit::built_policy("python-router.wasm").unwrap();
    let throttle = runway_testkit::built_policy("typescript-throttle.wasm").unwrap();
    let system = LocalSystem::start(config(&format!(
        "router = {:?}\nthrottle = {:?}\nrouter_bounds = \"time=5s\"\nthrottle_bounds = \"time=5s,memory=96MiB\"",
        router.display().to_string(),
        throttle.display().to_string()
    )))
    .await
    .unwrap_or_else(|error| panic!("runway local did not start: {error}"));
    let emulator = system.emulator().expect("the emulator runs");
    emulator
        .create_job(NewJob::new("octo-org/app", &LABELS))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let admitted = loop {
        if let Some(admit) = state_output(&system, "Admit") {
            break admit;
        }
        assert!(
            Instant::now() < deadline,
            "the job was not admitted in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let state = state_output(&system, "Route").expect("Route ran before Admit");
    let route = &state["route"];
    assert_eq!(route["pool"], "linux-x64", "{route}");
    assert_eq!(
        route["reason"], "labels [linux, self-hosted, x64] fit pool linux-x64 (0 extra labels)",
        "{route}"
    );
    assert_eq!(route["fallback"], false, "{route}");
    // The throttle's reason (its caps depend on the hour it reads from the clock).
    let admitted = admitted.to_string();
    assert!(admitted.contains("octo-org 0/"), "{admitted}");
    assert!(admitted.contains("octo-org/app 0/"), "{admitted}");
    system.shutdown().await;
}

#[tokio::test]
async fn a_policy_for_another_architecture_stops_the_start_naming_the_file_and_the_fix() {
    let host = Target::host().unwrap();
    let other = if host == Target::X86_64 {
        Target::Aarch64
    } else {
        Target::X86_64
    };
    let dir = tempfile::tempdir().unwrap();
    let cwasm = precompile(&labels_router(), other, dir.path());
    let error = LocalSystem::start(config(&format!(
        "router = {:?}",
        cwasm.display().to_string()
    )))
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains(&cwasm.display().to_string()), "{error}");
    assert!(error.contains("runway policy compile"), "{error}");
}

#[test]
fn an_invalid_reuse_in_a_config_file_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runway.toml");
    std::fs::write(
        &file,
        "[policies]\nreuse = \"verified:zero\"\n\n[[pools]]\nname = \"a\"\nlabels = [\"self-hosted\"]\n",
    )
    .unwrap();
    let error = LocalConfig::from_file(&file).unwrap_err().to_string();
    assert!(error.contains("[policies] reuse"), "{error}");
    assert!(error.contains("verified:zero"), "{error}");
    assert!(
        error.contains("expected never, verified or verified:N (N ≥ 1)"),
        "{error}"
    );

    std::fs::write(
        &file,
        "[policies]\nreuse = \"verified\"\n\n[[pools]]\nname = \"a\"\nlabels = [\"self-hosted\"]\n",
    )
    .unwrap();
    assert_eq!(
        LocalConfig::from_file(&file).unwrap().policies.reuse,
        InstanceReuse::verified()
    );
}
