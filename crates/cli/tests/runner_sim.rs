//! `runway runner-sim` as a real process against an in-process GitHub emulator.

use std::process::Stdio;
use std::time::Duration;

use runway_github_emulator::{Emulator, EmulatorConfig, JobStatus, NewJob, Scope};

const RUNWAY: &str = env!("CARGO_BIN_EXE_runway");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_sim_takes_a_job_runs_it_and_exits() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let jit = emulator
        .generate_jitconfig(
            Scope::organization("octo-org"),
            "sim-1",
            &["self-hosted", "linux"],
        )
        .unwrap();
    let job = emulator
        .create_job(
            NewJob::new("octo-org/app", &["self-hosted", "Linux"])
                .lasting(Duration::from_millis(300)),
        )
        .unwrap();

    let child = tokio::process::Command::new(RUNWAY)
        .args([
            "runner-sim",
            "--url",
            emulator.base_url(),
            "--jitconfig",
            &jit.encoded_jit_config,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("runner-sim did not exit")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "runner-sim failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("job {} completed: success", job.job_id)),
        "{stdout}"
    );

    let done = emulator.job(job.job_id).unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    assert_eq!(done.runner_name.as_deref(), Some("sim-1"));
    // The JIT runner is ephemeral: gone after its job.
    assert!(emulator.runners().is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_sim_exits_cleanly_when_its_idle_runner_is_deleted_and_explains_bad_input() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let jit = emulator
        .generate_jitconfig(Scope::repository("octo-org", "app"), "sim-2", &["gpu"])
        .unwrap();
    // The JIT config carries the emulator URL, so --url is optional.
    let child = tokio::process::Command::new(RUNWAY)
        .args([
            "runner-sim",
            "--poll-seconds",
            "1",
            "--jitconfig",
            &jit.encoded_jit_config,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let online = emulator
        .wait_for_runners(Duration::from_secs(30), |runners| {
            runners
                .iter()
                .any(|r| r.name == "sim-2" && r.status == "online")
        })
        .await;
    assert!(online.is_some(), "runner never came online");
    emulator
        .delete_runner(&Scope::repository("octo-org", "app"), jit.runner_id)
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("runner-sim did not exit after its runner was deleted")
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("runner removed"));

    let bad = tokio::process::Command::new(RUNWAY)
        .args(["runner-sim", "--jitconfig", "not base64!"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("JIT config"));
    emulator.shutdown().await;
}
