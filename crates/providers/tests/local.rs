//! The local (process) provider: the contract, and what only processes do.

mod contract;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runway_providers::{LocalConfig, LocalProvider, Provider, ProviderError, Terminated};

/// A runner that never ends by itself until told to.
fn long_lived() -> Vec<String> {
    vec!["sleep".to_string(), "60".to_string()]
}

async fn fixture(_name: &str) -> Box<dyn Provider> {
    let mut config = LocalConfig::new(long_lived());
    config.grace = Duration::from_secs(2);
    Box::new(LocalProvider::new(config).unwrap())
}

provider_contract_tests!(fixture);

fn shell(script: &str, work_dir: &Path) -> LocalConfig {
    let mut config = LocalConfig::new(vec!["sh".into(), "-c".into(), script.into()]);
    config.work_dir = Some(work_dir.to_path_buf());
    config.grace = Duration::from_secs(2);
    config
}

/// Waits (bounded) until `path` exists with some content.
async fn read_when_written(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn process_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); read its state from /proc instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn pid_of(instance_id: &str) -> i32 {
    instance_id.strip_prefix("pid-").unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_runner_reads_its_jit_config_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(shell(
        "echo \"$RUNWAY_JITCONFIG $RUNWAY_RUNNER_NAME $RUNWAY_POOL\" > seen; exec sleep 30",
        dir.path(),
    ))
    .unwrap();
    let request = contract::request("env-execution", "env-runner");
    let launched = provider.launch(request).await.unwrap();
    let seen = read_when_written(&dir.path().join("seen")).await;
    assert_eq!(seen, "jit-config-for-env-runner env-runner contract-pool\n");

    let pid = pid_of(&launched.instance_id);
    assert!(process_alive(pid));
    let outcome = provider
        .terminate("env-execution", "env-runner")
        .await
        .unwrap();
    assert!(matches!(outcome, Terminated::Stopped { .. }));
    assert!(!process_alive(pid), "the runner was killed and reaped");
    assert!(provider.owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn placeholders_are_filled_in_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::new(vec![
        "sh".into(),
        "-c".into(),
        "echo \"$1 $2\" > args; exec sleep 30".into(),
        "runner-sim".into(),
        "--jitconfig={jitconfig}".into(),
        "--url={url}/{runner}".into(),
    ]);
    config.url = Some("http://127.0.0.1:9".into());
    config.work_dir = Some(dir.path().to_path_buf());
    let provider = LocalProvider::new(config).unwrap();
    provider
        .launch(contract::request("args-execution", "args-runner"))
        .await
        .unwrap();
    let seen = read_when_written(&dir.path().join("args")).await;
    assert_eq!(
        seen,
        "--jitconfig=jit-config-for-args-runner --url=http://127.0.0.1:9/args-runner\n"
    );
    provider
        .terminate("args-execution", "args-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_runner_that_exits_by_itself_is_no_longer_owned() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(shell("echo done > done", dir.path())).unwrap();
    let launched = provider
        .launch(contract::request("self-exit", "self-exit-runner"))
        .await
        .unwrap();
    read_when_written(&dir.path().join("done")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !provider.owned().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the exited runner is still listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!process_alive(pid_of(&launched.instance_id)));
    assert_eq!(
        provider
            .terminate("self-exit", "self-exit-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
}

#[tokio::test]
async fn a_runner_ignoring_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = shell(
        "trap '' TERM; echo ready > ready; while true; do sleep 1; done",
        dir.path(),
    );
    config.grace = Duration::from_millis(300);
    let provider = LocalProvider::new(config).unwrap();
    let launched = provider
        .launch(contract::request("stubborn", "stubborn-runner"))
        .await
        .unwrap();
    read_when_written(&dir.path().join("ready")).await;
    let outcome = provider
        .terminate("stubborn", "stubborn-runner")
        .await
        .unwrap();
    assert!(matches!(outcome, Terminated::Stopped { .. }));
    assert!(!process_alive(pid_of(&launched.instance_id)));
}

#[tokio::test]
async fn terminate_stops_what_the_runner_started() {
    let dir = tempfile::tempdir().unwrap();
    let provider =
        LocalProvider::new(shell("sleep 30 & echo $! > child; wait", dir.path())).unwrap();
    provider
        .launch(contract::request("group", "group-runner"))
        .await
        .unwrap();
    let child: i32 = read_when_written(&dir.path().join("child"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(process_alive(child));
    provider.terminate("group", "group-runner").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // The grandchild is not ours to reap: wait until it is gone or a zombie of init.
    while process_alive(child) {
        assert!(Instant::now() < deadline, "the runner's own child survived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn launching_the_same_runner_twice_is_refused() {
    let provider = fixture("twice").await;
    provider
        .launch(contract::request("twice", "twice-runner"))
        .await
        .unwrap();
    let error = provider
        .launch(contract::request("twice", "twice-runner"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("already running"), "{error}");
    provider.terminate("twice", "twice-runner").await.unwrap();
}

#[tokio::test]
async fn bad_commands_are_configuration_errors() {
    let empty = LocalProvider::new(LocalConfig::new(vec![])).unwrap_err();
    assert!(matches!(empty, ProviderError::Config { .. }), "{empty:?}");

    let missing = PathBuf::from("/nonexistent/runway-runner");
    let provider =
        LocalProvider::new(LocalConfig::new(vec![missing.display().to_string()])).unwrap();
    let error = provider
        .launch(contract::request("missing", "missing-runner"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert!(provider.owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn dropping_the_provider_kills_its_runners() {
    let provider = fixture("drop").await;
    let launched = provider
        .launch(contract::request("drop", "drop-runner"))
        .await
        .unwrap();
    let pid = pid_of(&launched.instance_id);
    drop(provider);
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the runner outlived its provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_default_command_is_this_binary_as_runner_sim() {
    let config = LocalConfig::runner_sim().unwrap();
    assert_eq!(config.command.len(), 2);
    assert_eq!(config.command[1], "runner-sim");
    assert_eq!(
        PathBuf::from(&config.command[0]),
        std::env::current_exe().unwrap()
    );
}
