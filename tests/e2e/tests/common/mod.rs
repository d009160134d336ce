//! What every end-to-end test needs: a local runway on free ports, pools whose runners are
//! the `e2e-runner` binary, and checks that nothing is left behind.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use runway_asl::{ExecutionDescription, ExecutionStatus, HistoryEvent};
use runway_github_emulator::{EmulatorHandle, RunnerView};
use runway_local::{Listen, LocalConfig, LocalSystem};
use runway_store::{ExecutionKey, PoolName};

/// The runner process the local pools launch.
pub const RUNNER: &str = env!("CARGO_BIN_EXE_e2e-runner");

/// Generous bound for one job's execution to end (it normally takes seconds).
pub const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// `[github]` for the emulator with two repositories of one organisation.
pub const GITHUB: &str = r#"
[github]
mode = "emulator"
repositories = ["octo-org/app", "octo-org/api"]
organizations = ["octo-org"]
seed = 11
"#;

/// Short deadlines, so a test waits seconds, not minutes.
pub const QUICK: &str =
    "boot_timeout_seconds = 20\nidle_timeout_seconds = 3\nrecheck_after_seconds = 5";

/// A local provider running `e2e-runner`, with extra environment.
pub fn runners(env: &[(&str, &Path)]) -> String {
    let env: Vec<String> = env
        .iter()
        .map(|(key, value)| format!("{key} = {:?}", value.display().to_string()))
        .collect();
    format!(
        "{{ kind = \"local\", command = [{RUNNER:?}], grace_seconds = 1, env = {{ {} }} }}",
        env.join(", ")
    )
}

/// A `[[pools]]` table: `settings` are the job flow's pool settings, `provider` an inline
/// provider table.
pub fn pool(name: &str, labels: &[&str], settings: &str, provider: &str) -> String {
    let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
    format!(
        "\n[[pools]]\nname = \"{name}\"\nlabels = [{}]\n{settings}\nprovider = {provider}\n",
        labels.join(", ")
    )
}

/// Parses `toml` (after [`GITHUB`]) and listens on free ports.
pub fn config(toml: &str) -> LocalConfig {
    let mut config = LocalConfig::from_toml_str(&format!("{GITHUB}\n{toml}"))
        .unwrap_or_else(|error| panic!("{error}\n{toml}"));
    config.listen = Listen::any_free_port();
    config
}

pub async fn start(toml: &str) -> LocalSystem {
    LocalSystem::start(config(toml))
        .await
        .unwrap_or_else(|error| panic!("runway local did not start: {error}"))
}

pub fn emulator(system: &LocalSystem) -> &EmulatorHandle {
    system.emulator().expect("the emulator runs")
}

/// The ended execution of `job_id`; panics with its history when it does not end in time.
pub async fn ended(system: &LocalSystem, job_id: u64) -> ExecutionDescription {
    match system.wait_for_job_execution(job_id, JOB_TIMEOUT).await {
        Some(execution) => execution,
        None => {
            let history = system
                .execution_for_job(job_id)
                .map(|e| states(system, &e).join(" → "))
                .unwrap_or_else(|| "no execution was started".to_owned());
            panic!("the execution of job {job_id} did not end in time: {history}");
        }
    }
}

pub fn history(system: &LocalSystem, execution: &ExecutionDescription) -> Vec<HistoryEvent> {
    system
        .service()
        .get_execution_history(&execution.execution_arn, false)
        .unwrap()
}

/// The names of the states the execution entered, in order.
pub fn states(system: &LocalSystem, execution: &ExecutionDescription) -> Vec<String> {
    history(system, execution)
        .iter()
        .filter(|e| e.event_type.ends_with("StateEntered"))
        .filter_map(|e| e.detail()?.get("name")?.as_str().map(str::to_owned))
        .collect()
}

/// Waits until the execution of `job_id` has entered `state`.
pub async fn wait_for_state(system: &LocalSystem, job_id: u64, state: &str) {
    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    loop {
        if let Some(execution) = system.execution_for_job(job_id)
            && states(system, &execution).iter().any(|s| s == state)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the execution of job {job_id} never entered {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn assert_succeeded(system: &LocalSystem, execution: &ExecutionDescription, last: &str) {
    let states = states(system, execution);
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{}: {:?} {:?}\n{}",
        execution.name,
        execution.error,
        execution.cause,
        states.join(" → ")
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some(last),
        "{}",
        states.join(" → ")
    );
}

/// A failure cause a person can read: one sentence, no newline, no JSON.
pub fn assert_readable(cause: Option<&str>) {
    let cause = cause.unwrap_or("");
    assert!(!cause.trim().is_empty(), "no cause");
    assert!(!cause.contains('\n'), "{cause}");
    assert!(!cause.trim_start().starts_with('{'), "{cause}");
    assert!(cause.len() < 600, "{cause}");
}

/// The runner GitHub lists for `job_id` (runner names carry the job id they were launched
/// for).
pub fn runner_launched_for(runners: &[RunnerView], job_id: u64) -> Option<RunnerView> {
    let tag = format!("-{job_id}-");
    runners.iter().find(|r| r.name.contains(&tag)).cloned()
}

/// No execution runs, no runner process or emulator runner is left, no slot is held and no
/// runner record is live.
pub async fn assert_nothing_left(system: &LocalSystem) {
    let running: Vec<String> = system
        .executions()
        .into_iter()
        .filter(|e| e.status == ExecutionStatus::Running)
        .map(|e| e.name)
        .collect();
    assert!(running.is_empty(), "executions still running: {running:?}");
    for (pool, provider) in system.providers() {
        let owned = provider.owned().await.unwrap();
        assert!(owned.is_empty(), "pool {pool} still has runners: {owned:?}");
        let pool_name = PoolName::new(pool.as_str()).unwrap();
        let holders = system.store().slot_holders(&pool_name).await.unwrap();
        assert!(
            holders.is_empty(),
            "pool {pool} slots still held: {holders:?}"
        );
        let runners = system.store().runners_of_pool(&pool_name).await.unwrap();
        let live: Vec<_> = runners
            .iter()
            .filter(|r| r.state != runway_store::RunnerState::Gone)
            .collect();
        assert!(
            live.is_empty(),
            "pool {pool} has live runner records: {live:?}"
        );
    }
    for execution in system.executions() {
        let held = system
            .store()
            .slot_holder(&ExecutionKey::new(execution.name.as_str()).unwrap())
            .await
            .unwrap();
        assert_eq!(held, None, "{} still holds a slot", execution.name);
    }
    if let Some(emulator) = system.emulator() {
        let runners = emulator.runners();
        assert!(runners.is_empty(), "runners left in GitHub: {runners:?}");
    }
}

/// Posts a `workflow_job` delivery to the intake, signed with `secret`; returns the status
/// and body.
pub async fn post_webhook(url: &str, secret: &str, body: &[u8]) -> (u16, String) {
    let signature = runway_webhook::sign_with(secret.as_bytes(), body);
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "workflow_job")
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("X-Hub-Signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A reaper of `system`'s stack with no grace at all: anything whose execution is not running
/// may go. It acts through `github` and sees the repository `octo-org/app`.
pub fn reaper_without_grace(
    system: &LocalSystem,
    github: std::sync::Arc<dyn runway_github::GitHub>,
) -> runway_reaper::Reaper {
    use std::sync::Arc;

    use runway_reaper::{LocalExecutions, Reaper, ReaperConfig, ReaperDeps};
    Reaper::new(
        ReaperDeps {
            flow: system.flow().clone(),
            store: system.store().clone(),
            github,
            providers: system.providers().clone(),
            executions: Arc::new(
                LocalExecutions::new(system.service().clone(), system.machine_arn())
                    .expect("the job machine's ARN"),
            ),
            starter: Arc::new(runway_local::SfnStarter::new(
                system.service().clone(),
                system.machine_arn(),
            )),
            job_filter: runway_webhook::JobFilter::default(),
            installation_id: None,
            clock: runway_clock::SystemClock::shared(),
        },
        ReaperConfig {
            grace_seconds: 0,
            unknown_execution_grace_seconds: 0,
            github_scopes: vec![runway_github::RunnerScope::repository("octo-org", "app")],
            ..ReaperConfig::default()
        },
    )
    .expect("a reaper with no grace")
}
