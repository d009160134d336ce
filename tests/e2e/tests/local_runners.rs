//! The whole flow on one machine: the emulator sends signed webhooks to the intake, which
//! starts `statemachines/job.asl.json` on the local engine; the job flow launches
//! `e2e-runner` processes that take jobs from the emulator. Outcomes are read from the
//! execution history, the store and the emulator.

mod common;

use std::time::Duration;

use common::*;
use runway_asl::ExecutionStatus;
use runway_github_emulator::{Faults, JobStatus, NewJob};
use serde_json::Value;

const LINUX: &[&str] = &["self-hosted", "linux"];

fn job(labels: &[&str], seconds: f64) -> NewJob {
    NewJob::new("octo-org/app", labels).lasting(Duration::from_secs_f64(seconds))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_a_local_runner_and_nothing_is_left() {
    let system = start(&pool("linux", LINUX, QUICK, &runners(&[]))).await;
    let emulator = emulator(&system);
    let job = emulator.create_job(job(LINUX, 0.5)).unwrap();

    let execution = ended(&system, job.job_id).await;
    assert_succeeded(&system, &execution, "Done");
    // The one job ran on the runner launched for it: the happy path.
    let states = states(&system, &execution);
    assert_eq!(states, runway_jobflow::HAPPY_PATH);
    let done = emulator.job(job.job_id).unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    let runner = done.runner_name.clone().unwrap();
    assert!(
        runner.contains(&format!("-{}-", job.job_id)),
        "the job ran on {runner}"
    );
    let output: Value = serde_json::from_str(execution.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        output["runner"]["runner_name"],
        runner.as_str(),
        "{output:#}"
    );
    assert_eq!(output["runner_status"]["status"], "gone", "{output:#}");
    assert_eq!(output["runner_status"]["job_id"], job.job_id, "{output:#}");
    assert_nothing_left(&system).await;

    // The webhooks were signed with the secret; a redelivery of `queued` starts nothing new,
    // and a delivery with a wrong signature is refused.
    let queued = emulator
        .deliveries()
        .into_iter()
        .find(|d| d.action == "queued" && d.job_id == job.job_id)
        .unwrap();
    assert_eq!(queued.response_status, Some(202));
    let body = serde_json::to_vec(&queued.payload).unwrap();
    let (status, answer) = post_webhook(system.webhook_url(), system.webhook_secret(), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("duplicate"), "{answer}");
    let (status, _) = post_webhook(system.webhook_url(), "not-the-secret", &body).await;
    assert_eq!(status, 401);
    assert_eq!(system.executions().len(), 1);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_of_an_unknown_repository_ends_on_its_own_with_a_readable_cause() {
    let toml = pool("linux", LINUX, QUICK, &runners(&[]))
        + &pool("k8s", &["self-hosted", "k8s"], QUICK, &runners(&[]));
    let system = start(&toml).await;
    let fixture = runway_testkit::fixtures_dir()
        .unwrap()
        .join("github/webhooks/workflow_job/06-queued.json");
    let body = std::fs::read(fixture).unwrap();
    let job_id = serde_json::from_slice::<Value>(&body).unwrap()["workflow_job"]["id"]
        .as_u64()
        .unwrap();

    let (status, _) = post_webhook(system.webhook_url(), "a-wrong-secret", &body).await;
    assert_eq!(status, 401);
    assert!(system.execution_for_job(job_id).is_none());

    let (status, answer) = post_webhook(system.webhook_url(), system.webhook_secret(), &body).await;
    assert_eq!(status, 202, "{answer}");
    assert!(answer.contains("started"), "{answer}");
    let execution = ended(&system, job_id).await;
    let states = states(&system, &execution);
    assert_eq!(execution.status, ExecutionStatus::Failed, "{states:?}");
    assert_eq!(execution.error.as_deref(), Some("Runway.JobFailed"));
    assert_readable(execution.cause.as_deref());
    assert_eq!(
        states.last().map(String::as_str),
        Some("Failed"),
        "{states:?}"
    );
    assert!(!states.iter().any(|s| s == "Provision"), "{states:?}");
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_runners_each_job_runs_on_the_runner_launched_for_the_other() {
    let gate = tempfile::tempdir().unwrap();
    let provider = runners(&[("RUNWAY_E2E_GATE_DIR", gate.path())]);
    let system = start(&pool("linux", LINUX, QUICK, &provider)).await;
    let emulator = emulator(&system);
    let a = emulator.create_job(job(LINUX, 1.0)).unwrap().job_id;
    let b = emulator.create_job(job(LINUX, 1.0)).unwrap().job_id;

    // Both runners are registered (not yet online): one launched for each job.
    let runners = emulator
        .wait_for_runners(JOB_TIMEOUT, |runners| runners.len() == 2)
        .await
        .expect("two runners were registered");
    let runner_a = runner_launched_for(&runners, a).unwrap();
    let runner_b = runner_launched_for(&runners, b).unwrap();

    // B's runner comes online first: GitHub hands it the oldest queued job, A.
    std::fs::write(gate.path().join(&runner_b.name), "").unwrap();
    let started = emulator
        .wait_for_job(a, JobStatus::InProgress, JOB_TIMEOUT)
        .await
        .expect("job A started");
    assert_eq!(started.runner_name.as_deref(), Some(runner_b.name.as_str()));
    std::fs::write(gate.path().join(&runner_a.name), "").unwrap();

    for (job_id, own, ran_on) in [(a, &runner_a, &runner_b), (b, &runner_b, &runner_a)] {
        let execution = ended(&system, job_id).await;
        assert_succeeded(&system, &execution, "Done");
        let done = emulator.job(job_id).unwrap();
        assert_eq!(done.conclusion.as_deref(), Some("success"));
        assert_eq!(done.runner_name.as_deref(), Some(ran_on.name.as_str()));
        // Each execution accounts for the runner it launched, whatever job that runner ran,
        // and follows its own job to its end.
        let output: Value = serde_json::from_str(execution.output.as_deref().unwrap()).unwrap();
        assert_eq!(
            output["runner"]["runner_name"],
            own.name.as_str(),
            "{output:#}"
        );
        assert_ne!(output["runner_status"]["job_id"], job_id, "{output:#}");
        // Read at teardown, the job ran elsewhere; or it still ran, and was followed to its end.
        let ended_elsewhere = output["teardown"]["job"]["status"] == "completed-elsewhere"
            || output["job_status"]["status"] == "completed";
        assert!(ended_elsewhere, "{output:#}");
    }
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_jobs_on_one_pool_all_complete_and_leave_nothing() {
    let settings = format!("max_running = 20\n{QUICK}");
    let system = start(&pool("linux", LINUX, &settings, &runners(&[]))).await;
    let emulator = emulator(&system);
    let jobs: Vec<u64> = (0..50)
        .map(|_| emulator.create_job(job(LINUX, 0.3)).unwrap().job_id)
        .collect();

    let mut ran_elsewhere = 0;
    for &job_id in &jobs {
        let execution = ended(&system, job_id).await;
        let states = states(&system, &execution);
        assert_eq!(
            execution.status,
            ExecutionStatus::Succeeded,
            "{job_id}: {:?} {:?} {states:?}",
            execution.error,
            execution.cause
        );
        // A job that a runner of another job took while this one waited for a slot needs
        // no runner of its own.
        let last = states.last().map(String::as_str);
        assert!(matches!(last, Some("Done" | "Cancelled")), "{states:?}");
    }
    assert!(
        system.wait_until_idle(JOB_TIMEOUT).await,
        "jobs or executions left"
    );
    for &job_id in &jobs {
        let done = emulator.job(job_id).unwrap();
        assert_eq!(done.status, JobStatus::Completed, "{done:?}");
        assert_eq!(done.conclusion.as_deref(), Some("success"), "{done:?}");
        if !done
            .runner_name
            .as_deref()
            .is_some_and(|name| name.contains(&format!("-{job_id}-")))
        {
            ran_elsewhere += 1;
        }
    }
    println!("{ran_elsewhere} of 50 jobs ran on a runner launched for another job");
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_that_never_registers_is_replaced_and_the_job_still_runs() {
    // The first runner of each job only sleeps; its replacement is a real runner.
    let provider = format!(
        "{{ kind = \"local\", grace_seconds = 1, command = [\"sh\", \"-c\", \
         \"case \\\"$RUNWAY_RUNNER_NAME\\\" in *-1) exec sleep 600;; esac; exec \\\"$0\\\"\", \
         {RUNNER:?}] }}"
    );
    let settings = "boot_timeout_seconds = 2\nidle_timeout_seconds = 3\nmax_replacements = 2";
    let system = start(&pool("linux", LINUX, settings, &provider)).await;
    let emulator = emulator(&system);
    let job = emulator.create_job(job(LINUX, 0.5)).unwrap().job_id;

    let execution = ended(&system, job).await;
    assert_succeeded(&system, &execution, "Done");
    let states = states(&system, &execution);
    let check = states.iter().position(|s| s == "CheckRunner");
    let replace = states.iter().position(|s| s == "ReplaceRunner");
    assert!(
        matches!((check, replace), (Some(c), Some(r)) if c < r),
        "{states:?}"
    );
    let done = emulator.job(job).unwrap();
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    let runner = done.runner_name.unwrap();
    assert!(runner.ends_with("-2"), "the job ran on {runner}");
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_before_its_runner_took_it_leaves_the_runner_to_the_idle_deadline() {
    let gate = tempfile::tempdir().unwrap();
    let provider = runners(&[("RUNWAY_E2E_GATE_DIR", gate.path())]);
    let settings = "boot_timeout_seconds = 2\nidle_timeout_seconds = 2";
    let system = start(&pool("linux", LINUX, settings, &provider)).await;
    let emulator = emulator(&system);
    let job = emulator.create_job(job(LINUX, 5.0)).unwrap().job_id;

    let runners = emulator
        .wait_for_runners(JOB_TIMEOUT, |runners| runners.len() == 1)
        .await
        .expect("a runner was registered");
    let cancelled = emulator.cancel_job(job).unwrap();
    assert_eq!(cancelled.conclusion.as_deref(), Some("cancelled"));
    // The runner comes online after the job is gone: it stays idle.
    std::fs::write(gate.path().join(&runners[0].name), "").unwrap();

    let execution = ended(&system, job).await;
    assert_succeeded(&system, &execution, "Done");
    let states = states(&system, &execution);
    let idle = states.iter().position(|s| s == "AwaitJobUntilIdleDeadline");
    let teardown = states.iter().position(|s| s == "Teardown");
    assert!(
        matches!((idle, teardown), (Some(i), Some(t)) if i < t),
        "{states:?}"
    );
    // Teardown read the job from GitHub, ended already: the slot is released, and nothing is
    // followed or launched any more.
    assert_eq!(
        &states[teardown.unwrap()..],
        ["Teardown", "RunnerLeft", "Release", "Done"],
        "{states:?}"
    );
    let output: Value = serde_json::from_str(execution.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        output["teardown"]["job"]["status"], "completed",
        "{output:#}"
    );
    assert_eq!(
        output["teardown"]["job"]["conclusion"], "cancelled",
        "{output:#}"
    );
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceiling_of_one_makes_jobs_wait_and_run_in_arrival_order() {
    let settings = format!("max_running = 1\n{QUICK}");
    let system = start(&pool("linux", LINUX, &settings, &runners(&[]))).await;
    let emulator = emulator(&system);
    let mut jobs = Vec::new();
    for _ in 0..4 {
        jobs.push(emulator.create_job(job(LINUX, 0.8)).unwrap().job_id);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The third job is cancelled while it waits for the slot.
    let cancelled = jobs[2];
    wait_for_state(&system, cancelled, "WaitForSlot").await;
    emulator.cancel_job(cancelled).unwrap();

    let mut ran = Vec::new();
    for &job_id in &jobs {
        let execution = ended(&system, job_id).await;
        let states = states(&system, &execution);
        if job_id == cancelled {
            assert_succeeded(&system, &execution, "Cancelled");
            assert!(!states.iter().any(|s| s == "Provision"), "{states:?}");
            continue;
        }
        assert_succeeded(&system, &execution, "Done");
        if job_id != jobs[0] {
            assert!(states.iter().any(|s| s == "WaitForSlot"), "{states:?}");
        }
        ran.push(emulator.job(job_id).unwrap());
    }
    // One at a time, first come first served.
    for pair in ran.windows(2) {
        let (first, next) = (&pair[0], &pair[1]);
        assert!(
            first.completed_at.unwrap() <= next.started_at.unwrap(),
            "{first:?} overlaps {next:?}"
        );
    }
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_launch_fails_the_job_with_nothing_running_and_the_slot_free() {
    let provider = "{ kind = \"local\", command = [\"/nonexistent/runway-runner\"] }";
    let settings = format!("max_running = 1\n{QUICK}");
    let system = start(&pool("linux", LINUX, &settings, provider)).await;
    let emulator = emulator(&system);
    let job = emulator.create_job(job(LINUX, 0.5)).unwrap().job_id;

    let execution = ended(&system, job).await;
    let states = states(&system, &execution);
    assert_eq!(execution.status, ExecutionStatus::Failed, "{states:?}");
    assert_eq!(execution.error.as_deref(), Some("Runway.JobFailed"));
    assert_readable(execution.cause.as_deref());
    for state in [
        "Provision",
        "TeardownAfterFailure",
        "ReleaseAfterFailure",
        "Failed",
    ] {
        assert!(states.iter().any(|s| s == state), "{state}: {states:?}");
    }
    assert_nothing_left(&system).await;
    // The job is still queued in GitHub: nothing of runway's is waiting for it.
    assert_eq!(emulator.job(job).unwrap().status, JobStatus::Queued);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_runner_ran_a_job_without_an_execution_gets_another_runner() {
    let gate = tempfile::tempdir().unwrap();
    let provider = runners(&[("RUNWAY_E2E_GATE_DIR", gate.path())]);
    let system = start(&pool("linux", LINUX, QUICK, &provider)).await;
    let emulator = emulator(&system);
    // A's `queued` webhook is lost: A has no execution, and no runner is launched for it.
    emulator.set_faults(Faults {
        drop_webhooks_by_action: [("queued".to_owned(), 1)].into_iter().collect(),
        ..Faults::default()
    });
    let a = emulator.create_job(job(LINUX, 0.5)).unwrap().job_id;
    let b = emulator.create_job(job(LINUX, 0.5)).unwrap().job_id;
    assert!(system.execution_for_job(a).is_none());

    // B's runner comes online and GitHub hands it the oldest queued job: A.
    let runners = emulator
        .wait_for_runners(JOB_TIMEOUT, |runners| runners.len() == 1)
        .await
        .expect("a runner was registered for B");
    let first = runner_launched_for(&runners, b).unwrap();
    std::fs::write(gate.path().join(&first.name), "").unwrap();
    let started = emulator
        .wait_for_job(a, JobStatus::Completed, JOB_TIMEOUT)
        .await
        .expect("job A ran");
    assert_eq!(started.runner_name.as_deref(), Some(first.name.as_str()));

    // B is still queued once that runner is gone: B's execution launches another for it.
    let second = emulator
        .wait_for_runners(JOB_TIMEOUT, |runners| {
            runners.iter().any(|runner| runner.name != first.name)
        })
        .await
        .expect("another runner was launched for B")
        .into_iter()
        .find(|runner| runner.name != first.name)
        .unwrap();
    std::fs::write(gate.path().join(&second.name), "").unwrap();

    let execution = ended(&system, b).await;
    assert_succeeded(&system, &execution, "Done");
    let states = states(&system, &execution);
    // Teardown read B from GitHub, still queued: RunnerLeft relaunched.
    let relaunch = states.iter().position(|s| s == "RelaunchForQueuedJob");
    let left = states.iter().position(|s| s == "RunnerLeft");
    assert!(
        matches!((left, relaunch), (Some(l), Some(r)) if l + 1 == r),
        "{states:?}"
    );
    let done = emulator.job(b).unwrap();
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    assert_eq!(done.runner_name.as_deref(), Some(second.name.as_str()));
    assert!(second.name.ends_with("-2"), "{}", second.name);
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_its_reaper_on_a_schedule_runway_local_runs_a_job_whose_webhook_was_lost() {
    let toml = format!(
        "[reaper]\nevery_seconds = 1\ngrace_seconds = 1\n{}",
        pool("linux", LINUX, QUICK, &runners(&[]))
    );
    let system = start(&toml).await;
    let emulator = emulator(&system);
    emulator.set_faults(Faults {
        drop_webhooks_by_action: [("queued".to_owned(), 1)].into_iter().collect(),
        ..Faults::default()
    });
    let lost = emulator.create_job(job(LINUX, 0.5)).unwrap().job_id;
    assert!(system.execution_for_job(lost).is_none());

    // The reaper's lost-jobs sweep finds it queued on GitHub and starts its execution.
    let execution = ended(&system, lost).await;
    assert_succeeded(&system, &execution, "Done");
    let done = emulator.job(lost).unwrap();
    assert_eq!(done.conclusion.as_deref(), Some("success"));
    assert_nothing_left(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runway_logs_reads_a_jobs_runner_output_through_the_execution_and_the_console() {
    use runway_runner_logs::{JobRef, job_logs, local_log_location};
    let system = start(&pool("linux", LINUX, QUICK, &runners(&[]))).await;
    let emulator = emulator(&system);
    let job = emulator.create_job(job(LINUX, 0.2)).unwrap();
    let execution = ended(&system, job.job_id).await;
    assert_succeeded(&system, &execution, "Done");

    // What `runway logs <job id>` does against a running `runway local`.
    let history = runway_runner_logs::StepFunctionsHistory::for_machine_named(
        runway_local::step_functions_client(system.sfn_url()),
        runway_local::JOB_MACHINE_NAME,
    )
    .await
    .unwrap();
    let reader = runway_local::console::ConsoleRunnerLogs::new(system.sfn_url());
    for asked in [
        JobRef::Job(job.job_id),
        JobRef::Execution(execution.name.clone()),
    ] {
        // The runner prints its last line as it exits, after it left GitHub.
        let mut logs = job_logs(&history, &reader, &local_log_location, &asked)
            .await
            .unwrap();
        for _ in 0..100 {
            let printed = logs
                .runners
                .iter()
                .flat_map(|runner| runner.lines.iter().flatten())
                .count();
            if printed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            logs = job_logs(&history, &reader, &local_log_location, &asked)
                .await
                .unwrap();
        }
        assert_eq!(logs.execution, execution.name);
        assert_eq!(logs.runners.len(), 1, "{logs:#?}");
        let runner = &logs.runners[0];
        assert_eq!(runner.runner.pool.as_deref(), Some("linux"));
        assert_eq!(runner.runner.provider.as_deref(), Some("local"));
        assert_eq!(runner.runner.launched_by, "Provision");
        let lines = runner.lines.as_ref().expect("the runner's output was kept");
        let expected = format!("{}: listening for a job", runner.runner.runner_name);
        assert!(
            lines.iter().any(|line| line.message == expected),
            "{expected:?} in {lines:#?}"
        );
    }

    // A job runway never saw says so; a name that is no job is refused before any call.
    let unknown = job_logs(
        &history,
        &reader,
        &local_log_location,
        &JobRef::Job(999_999),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("no execution of job 999999"), "{unknown}");
    assert!("job-1".parse::<JobRef>().is_err());
    system.shutdown().await;
}
