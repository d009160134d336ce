//! `sam/local-ecs.toml` against a real ECS, SSM, EC2 and DynamoDB API (moto on 127.0.0.1): the
//! job state machine starts an ECS task for the job, hands it the JIT config through SSM only,
//! and stops the task at the end. No container runs on moto, so the test plays the task's start
//! script (read the parameter the task names, delete it) and its runner.

mod common;

use std::collections::HashMap;

use aws_sdk_ecs::types::{DesiredStatus, Task, TaskDefinitionField, TaskField};
use common::*;
use runway_github_emulator::{JitConfig, JobStatus, NewJob};
use runway_local::{LocalConfig, LocalSystem, ProviderSettings};
use runway_testkit::{MotoServer, workspace_root};

const CLUSTER: &str = "runway-local-runners";

fn sam_config() -> LocalConfig {
    LocalConfig::from_file(&workspace_root().join("sam/local-ecs.toml"))
        .expect("sam/local-ecs.toml parses")
}

#[test]
fn the_local_ecs_configuration_asks_for_fargate_runners_of_the_official_image() {
    let config = sam_config();
    assert_eq!(config.pools().count(), 1);
    let (pool, provider) = config.pools().next().unwrap();
    assert!(matches!(provider, ProviderSettings::Ecs(_)), "{provider:?}");
    assert!(
        pool.image
            .as_deref()
            .is_some_and(|image| image.starts_with("ghcr.io/actions/actions-runner"))
    );
}

async fn tasks(ecs: &aws_sdk_ecs::Client, status: DesiredStatus) -> Vec<Task> {
    let arns = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .desired_status(status)
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns))
        .include(TaskField::Tags)
        .send()
        .await
        .unwrap()
        .tasks()
        .to_vec()
}

fn override_env(task: &Task) -> HashMap<String, String> {
    task.overrides()
        .into_iter()
        .flat_map(|overrides| overrides.container_overrides())
        .flat_map(|container| container.environment())
        .filter_map(|pair| Some((pair.name()?.to_string(), pair.value()?.to_string())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_an_ecs_task_with_its_jit_config_in_ssm_only_and_the_task_is_stopped() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&aws);
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let mut config = sam_config();
    config.listen = runway_local::Listen::any_free_port();
    let (pool, _) = config.pools().next().unwrap();
    let (pool, labels) = (pool.name.clone(), pool.labels.clone());
    let system = LocalSystem::start_with_aws(config, Some(aws.clone()))
        .await
        .unwrap_or_else(|error| panic!("runway local did not start: {error}"));

    let emulator = emulator(&system);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &labels))
        .unwrap()
        .job_id;

    // The task started for the job, in the cluster runway local made for the pool.
    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    let task = loop {
        if let Some(task) = tasks(&ecs, DesiredStatus::Running).await.into_iter().next() {
            break task;
        }
        if tokio::time::Instant::now() > deadline {
            let execution = system.execution_for_job(job);
            let states = execution
                .as_ref()
                .map(|e| states(&system, e).join(" → "))
                .unwrap_or_default();
            panic!("no runner task was started: {execution:?}\n{states}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let task_arn = task.task_arn().unwrap().to_owned();
    let tags: HashMap<&str, &str> = task
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    let execution = system.execution_for_job(job).unwrap();
    let runner_name = tags
        .get("runway:runner")
        .copied()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(tags.get("runway:execution"), Some(&execution.name.as_str()));
    assert_eq!(tags.get("runway:pool"), Some(&pool.as_str()));
    assert_eq!(tags.get("runway:managed"), Some(&"true"));
    assert_eq!(tags.get("runway:stack"), Some(&"runway-local"));
    assert_eq!(tags.get("team"), Some(&"platform"));
    assert!(runner_name.starts_with("runway-local-"), "{runner_name}");
    assert_eq!(
        task.started_by(),
        Some(runway_providers::started_by("runway-local", &execution.name).as_str())
    );
    let record = system
        .store()
        .get_runner(&runway_store::RunnerName::new(runner_name.as_str()).unwrap())
        .await
        .unwrap()
        .expect("the runner is recorded in the store");
    assert_eq!(record.execution.as_str(), execution.name);

    // The task runs the task definition registered for the pool, with the pool's image.
    let definition = ecs
        .describe_task_definition()
        .task_definition(task.task_definition_arn().unwrap())
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let registered = definition.task_definition().unwrap();
    assert_eq!(
        registered.family(),
        Some("runway-local-runner-linux-x64-fargate")
    );
    assert_eq!(
        registered.container_definitions()[0].image(),
        Some("ghcr.io/actions/actions-runner:latest")
    );

    // The JIT config is in SSM under the name the task is given, and nowhere in the task.
    let env = override_env(&task);
    let parameter = env
        .get("RUNWAY_JIT_PARAMETER")
        .expect("the task is told its parameter's name")
        .clone();
    assert!(
        parameter.starts_with("/runway/runway-local/jit/ecs/"),
        "{parameter}"
    );
    let jit = ssm
        .get_parameter()
        .name(&parameter)
        .with_decryption(true)
        .send()
        .await
        .expect("the JIT config parameter exists")
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_owned();
    let decoded = JitConfig::decode(&jit).expect("an emulator JIT config");
    assert_eq!(decoded.runner_name, runner_name);
    for (what, text) in [
        ("the task", format!("{task:?}")),
        ("the task definition", format!("{definition:?}")),
    ] {
        assert!(!text.contains(&jit), "the JIT config leaked into {what}");
        assert!(
            !text.contains(&decoded.credential),
            "a credential leaked into {what}"
        );
    }
    let history = format!("{:?}", history(&system, &execution));
    assert!(
        !history.contains(&decoded.credential),
        "a credential leaked into the execution's history"
    );

    // Play the start script (it deletes the parameter once read) and the runner.
    ssm.delete_parameter()
        .name(&parameter)
        .send()
        .await
        .unwrap();
    let outcome = runway_github_emulator::runner::run_once(Some(emulator.base_url()), &jit)
        .await
        .unwrap();
    assert!(
        matches!(outcome, runway_github_emulator::runner::RunOutcome::Completed { job_id, .. } if job_id == job),
        "{outcome:?}"
    );
    let execution = ended(&system, job).await;
    assert_succeeded(&system, &execution, "Done");
    assert_eq!(emulator.job(job).unwrap().status, JobStatus::Completed);

    // The task was stopped, and no JIT config of the stack is left.
    let stopped = tasks(&ecs, DesiredStatus::Stopped).await;
    assert!(
        stopped
            .iter()
            .any(|task| task.task_arn() == Some(task_arn.as_str())),
        "the runner task was not stopped: {stopped:?}"
    );
    assert!(tasks(&ecs, DesiredStatus::Running).await.is_empty());
    let left = ssm
        .get_parameters_by_path()
        .path("/runway/runway-local/jit")
        .recursive(true)
        .send()
        .await
        .unwrap();
    assert!(left.parameters().is_empty(), "{:?}", left.parameters());
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_stops_an_ecs_task_whose_execution_has_ended_and_removes_its_jit_config() {
    use runway_providers::{JitConfig as ProviderJit, LaunchOverrides, LaunchRequest};
    use runway_reaper::Sweep;

    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&aws);
    let ssm = aws_sdk_ssm::Client::new(&aws);
    // Deadlines of seconds: the cancelled job's runner never comes online on moto.
    let text = std::fs::read_to_string(workspace_root().join("sam/local-ecs.toml")).unwrap();
    let text = text
        .replace("boot_timeout_seconds = 120", "boot_timeout_seconds = 2")
        .replace("idle_timeout_seconds = 60", "idle_timeout_seconds = 2");
    let mut config = LocalConfig::from_toml_str(&text).unwrap();
    config.listen = runway_local::Listen::any_free_port();
    let (pool, labels) = {
        let pool = config.pools().next().unwrap().0;
        (pool.name.clone(), pool.labels.clone())
    };
    let system = LocalSystem::start_with_aws(config, Some(aws.clone()))
        .await
        .unwrap_or_else(|error| panic!("runway local did not start: {error}"));

    // A job cancelled before its runner started: its execution ends (and stops its task).
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let job = emulator(&system)
        .create_job(NewJob::new("octo-org/app", &labels))
        .unwrap()
        .job_id;
    wait_for_state(&system, job, "AwaitRunnerBusy").await;
    emulator(&system).cancel_job(job).unwrap();
    let ended_execution = ended(&system, job).await;
    assert!(tasks(&ecs, DesiredStatus::Running).await.is_empty());

    // A task of that ended execution, as a teardown that failed for good would leave it.
    // (moto gives tasks no creation time, so only an ended execution lets the reaper act.)
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
    let running = tasks(&ecs, DesiredStatus::Running).await;
    assert_eq!(running.len(), 1);
    let parameter = override_env(&running[0])["RUNWAY_JIT_PARAMETER"].clone();

    let reaper = reaper_without_grace(&system, system.github().clone());
    let report = reaper.sweep(Sweep::OrphanRunners).await.unwrap();

    let stopped = tasks(&ecs, DesiredStatus::Stopped).await;
    assert!(
        stopped
            .iter()
            .any(|task| task.task_arn() == Some(launched.instance_id.as_str())),
        "the stray task was not stopped: {report:?}"
    );
    assert!(tasks(&ecs, DesiredStatus::Running).await.is_empty());
    assert!(
        ssm.get_parameter().name(&parameter).send().await.is_err(),
        "the stray task's JIT config was left: {report:?}"
    );
    system.shutdown().await;
}
