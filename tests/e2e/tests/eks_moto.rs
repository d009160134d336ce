//! `sam/local-eks.toml` against a real EKS, EC2 and DynamoDB API (moto on 127.0.0.1) and
//! runway's Kubernetes emulator standing in for the cluster's Kubernetes API: the job state
//! machine starts a pod for the job, hands it the JIT config through a Kubernetes Secret only,
//! the pod's runner (`e2e-runner --jitconfig-file <the mounted secret>`) takes the job, and
//! teardown deletes the pod and its secret.

mod common;

use base64::Engine;
use common::*;
use runway_github_emulator::{JitConfig, JobStatus, NewJob};
use runway_local::{LocalConfig, LocalSystem, ProviderSettings, Supplied};
use runway_providers::{
    LABEL_EXECUTION, LABEL_MANAGED, LABEL_POOL, LABEL_RUNNER, LABEL_STACK, label_value, secret_name,
};
use runway_testkit::{MotoServer, workspace_root};
use serde_json::Value;

const NAMESPACE: &str = "runners";

fn sam_text() -> String {
    std::fs::read_to_string(workspace_root().join("sam/local-eks.toml"))
        .expect("sam/local-eks.toml is there")
}

#[test]
fn the_local_eks_configuration_asks_for_pods_of_the_official_image() {
    let config = LocalConfig::from_toml_str(&sam_text()).expect("sam/local-eks.toml parses");
    assert_eq!(config.pools().count(), 1);
    let (pool, provider) = config.pools().next().unwrap();
    assert!(matches!(provider, ProviderSettings::Eks(_)), "{provider:?}");
    assert!(
        pool.image
            .as_deref()
            .is_some_and(|image| image.starts_with("ghcr.io/actions/actions-runner"))
    );
}

async fn start(text: &str, aws: &aws_config::SdkConfig) -> LocalSystem {
    let mut config = LocalConfig::from_toml_str(text).unwrap();
    config.listen = runway_local::Listen::any_free_port();
    LocalSystem::start_with(
        config,
        Supplied {
            aws: Some(aws.clone()),
            pod_command: Some(vec![RUNNER.to_string()]),
            ..Supplied::default()
        },
    )
    .await
    .unwrap_or_else(|error| panic!("runway local did not start: {error}"))
}

fn pods(system: &LocalSystem) -> Vec<Value> {
    system
        .kube_emulator()
        .expect("the Kubernetes emulator runs")
        .pods(NAMESPACE)
}

fn secrets(system: &LocalSystem) -> Vec<Value> {
    system
        .kube_emulator()
        .expect("the Kubernetes emulator runs")
        .secrets(NAMESPACE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_an_eks_pod_with_its_jit_config_in_a_secret_only_and_both_are_deleted() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let text = sam_text();
    let config = LocalConfig::from_toml_str(&text).unwrap();
    let (pool, labels) = {
        let pool = config.pools().next().unwrap().0;
        (pool.name.clone(), pool.labels.clone())
    };
    let system = start(&text, &aws).await;
    // runway local made the cluster in moto, and it is active.
    let described = aws_sdk_eks::Client::new(&aws)
        .describe_cluster()
        .name("runway-local")
        .send()
        .await
        .expect("the cluster exists");
    assert_eq!(
        described.cluster().and_then(|c| c.status()),
        Some(&aws_sdk_eks::types::ClusterStatus::Active)
    );

    let emulator = emulator(&system);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &labels))
        .unwrap()
        .job_id;

    // The pod started for the job, labelled with the stack, execution, pool and runner.
    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    let pod = loop {
        if let Some(pod) = pods(&system).into_iter().next() {
            break pod;
        }
        if tokio::time::Instant::now() > deadline {
            let execution = system.execution_for_job(job);
            let states = execution
                .as_ref()
                .map(|e| states(&system, e).join(" → "))
                .unwrap_or_default();
            panic!("no runner pod was started: {execution:?}\n{states}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let execution = system.execution_for_job(job).unwrap();
    let pod_labels = &pod["metadata"]["labels"];
    let annotations = &pod["metadata"]["annotations"];
    let runner_name = annotations[LABEL_RUNNER].as_str().unwrap().to_string();
    assert_eq!(pod_labels[LABEL_STACK], "runway-local");
    assert_eq!(
        pod_labels[LABEL_EXECUTION],
        label_value(&execution.name).as_str()
    );
    assert_eq!(annotations[LABEL_EXECUTION], execution.name.as_str());
    assert_eq!(pod_labels[LABEL_POOL], pool.as_str());
    assert_eq!(pod_labels[LABEL_RUNNER], label_value(&runner_name).as_str());
    assert_eq!(pod_labels[LABEL_MANAGED], "true");
    assert_eq!(pod_labels["team"], "platform");
    assert!(runner_name.starts_with("runway-local-"), "{runner_name}");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "ghcr.io/actions/actions-runner:latest"
    );

    // The JIT config is in the pod's secret, and nowhere in the pod or the execution.
    let secret = secrets(&system)
        .into_iter()
        .find(|secret| secret["metadata"]["name"] == secret_name(&pod_name).as_str())
        .expect("the pod's secret exists");
    assert_eq!(secret["metadata"]["labels"][LABEL_STACK], "runway-local");
    let jit = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["jitconfig"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let decoded = JitConfig::decode(&jit).expect("an emulator JIT config");
    assert_eq!(decoded.runner_name, runner_name);
    assert!(
        !pod.to_string().contains(&jit),
        "the JIT config leaked into the pod"
    );
    assert!(
        !pod.to_string().contains(&decoded.credential),
        "a credential leaked into the pod"
    );
    let history = format!("{:?}", history(&system, &execution));
    assert!(
        !history.contains(&decoded.credential),
        "a credential leaked into the execution's history"
    );

    // The pod's runner reads its mounted secret, takes the job and exits.
    let execution = ended(&system, job).await;
    assert_succeeded(&system, &execution, "Done");
    assert_eq!(emulator.job(job).unwrap().status, JobStatus::Completed);

    // Teardown deleted the pod and its secret.
    assert!(pods(&system).is_empty(), "{:?}", pods(&system));
    assert!(secrets(&system).is_empty(), "{:?}", secrets(&system));
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_removes_a_pod_and_secret_whose_execution_has_ended() {
    use runway_providers::{JitConfig as ProviderJit, LaunchOverrides, LaunchRequest};
    use runway_reaper::Sweep;

    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    // Deadlines of seconds: the cancelled job's runner never takes it.
    let text = sam_text()
        .replace("boot_timeout_seconds = 120", "boot_timeout_seconds = 2")
        .replace("idle_timeout_seconds = 60", "idle_timeout_seconds = 2");
    let config = LocalConfig::from_toml_str(&text).unwrap();
    let (pool, labels) = {
        let pool = config.pools().next().unwrap().0;
        (pool.name.clone(), pool.labels.clone())
    };
    let system = start(&text, &aws).await;

    // A job cancelled before a runner took it: its execution ends (and deletes its pod).
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let job = emulator(&system)
        .create_job(NewJob::new("octo-org/app", &labels))
        .unwrap()
        .job_id;
    wait_for_state(&system, job, "AwaitRunnerBusy").await;
    emulator(&system).cancel_job(job).unwrap();
    let ended_execution = ended(&system, job).await;
    assert!(pods(&system).is_empty(), "{:?}", pods(&system));

    // A pod and secret of that ended execution, as a teardown that failed for good would
    // leave them (its runner's JIT config registers with nothing: it waits until killed).
    let provider = system.providers()[&pool].clone();
    let launched = provider
        .launch(LaunchRequest {
            execution: ended_execution.name.clone(),
            pool: pool.clone(),
            runner_name: "runway-local-stray".to_string(),
            labels: vec!["self-hosted".to_string()],
            jit_config: ProviderJit::new("stray-jit-config"),
            overrides: LaunchOverrides::default(),
        })
        .await
        .unwrap();
    assert_eq!(pods(&system).len(), 1);
    assert_eq!(secrets(&system).len(), 1);

    let reaper = reaper_without_grace(&system, system.github().clone());
    let report = reaper.sweep(Sweep::OrphanRunners).await.unwrap();
    assert!(
        pods(&system)
            .iter()
            .all(|pod| pod["metadata"]["name"] != launched.instance_id.as_str()),
        "the stray pod was not deleted: {report:?}"
    );
    assert!(
        secrets(&system).is_empty(),
        "the stray pod's secret was left: {report:?}"
    );
    system.shutdown().await;
}
