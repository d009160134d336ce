//! The whole loop over HTTP: JIT config → runner stand-in → job → signed webhooks.

mod common;

use std::time::Duration;

use common::{Received, call, config, start_with_receiver};
use reqwest::Method;
use runway_github_emulator::runner::{self, RunOutcome, RunnerOptions};
use runway_github_emulator::{
    DeliveryOutcome, EmulatorConfig, EmulatorHandle, Faults, HOOK_ID, JobStatus, NewJob, USER_AGENT,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

async fn jit_via_rest(
    emulator: &EmulatorHandle,
    prefix: &str,
    name: &str,
    labels: &[&str],
) -> (u64, String) {
    let (status, body) = call(
        Method::POST,
        &format!(
            "{}/{prefix}/actions/runners/generate-jitconfig",
            emulator.api_url()
        ),
        Some("ghs_test"),
        Some(json!({"name": name, "runner_group_id": 1, "labels": labels})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["runner"]["id"].as_u64().unwrap(),
        body["encoded_jit_config"].as_str().unwrap().to_string(),
    )
}

fn fast(url: &str, jitconfig: &str) -> RunnerOptions {
    let mut options = RunnerOptions::new(Some(url.to_string()), jitconfig);
    options.poll_wait = Duration::from_millis(500);
    options
}

fn assert_github_headers(webhook: &Received) {
    assert!(webhook.signature_valid, "bad X-Hub-Signature-256");
    assert_eq!(webhook.header("x-github-event"), "workflow_job");
    assert_eq!(webhook.header("content-type"), "application/json");
    assert_eq!(webhook.header("user-agent"), USER_AGENT);
    assert!(webhook.header("user-agent").starts_with("GitHub-Hookshot/"));
    assert_eq!(webhook.header("x-github-hook-id"), HOOK_ID.to_string());
    assert_eq!(
        webhook.header("x-github-hook-installation-target-type"),
        "integration"
    );
    assert_eq!(webhook.header("x-github-hook-installation-target-id"), "1");
    assert!(uuid::Uuid::parse_str(webhook.header("x-github-delivery")).is_ok());
    let sha1 = webhook.header("x-hub-signature");
    assert_eq!(
        sha1,
        runway_github_emulator::signature_sha1(common::SECRET, &webhook.body)
    );
}

#[tokio::test]
async fn a_job_runs_on_a_jit_runner_with_signed_webhooks_in_order() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    let (runner_id, jitconfig) = jit_via_rest(
        &emulator,
        "orgs/octo-org",
        "runway-1",
        &["self-hosted", "linux", "x64"],
    )
    .await;
    let job = emulator
        .create_job(
            NewJob::new("octo-org/app", &["Self-Hosted", "LINUX"])
                .lasting(Duration::from_millis(300)),
        )
        .unwrap();

    let sim = tokio::spawn(runner::run(fast(emulator.base_url(), &jitconfig)));
    // While it runs, GitHub shows the runner online and busy.
    let busy = emulator
        .wait_for_runners(WAIT, |runners| runners.iter().any(|r| r.busy))
        .await
        .expect("runner never became busy");
    assert_eq!(busy[0].status, "online");
    let (_, listed) = call(
        Method::GET,
        &format!(
            "{}/orgs/octo-org/actions/runners?name=runway-1",
            emulator.api_url()
        ),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(listed["runners"][0]["status"], "online");
    assert_eq!(listed["runners"][0]["busy"], true);

    let outcome = sim.await.unwrap().unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed {
            job_id: job.job_id,
            conclusion: "success".into()
        }
    );
    let webhooks = receiver.wait_for(3).await;
    let actions: Vec<&str> = webhooks.iter().map(Received::action).collect();
    assert_eq!(actions, ["queued", "in_progress", "completed"]);
    for webhook in &webhooks {
        assert_github_headers(webhook);
        assert_eq!(webhook.job_id(), job.job_id);
        assert_eq!(webhook.payload["repository"]["full_name"], "octo-org/app");
        assert_eq!(webhook.payload["organization"]["login"], "octo-org");
        assert_eq!(webhook.payload["installation"]["id"], 1);
    }
    let queued = &webhooks[0].payload["workflow_job"];
    assert_eq!(queued["status"], "queued");
    assert!(queued["runner_name"].is_null() && queued["runner_id"].is_null());
    let running = &webhooks[1].payload["workflow_job"];
    assert_eq!(running["status"], "in_progress");
    assert_eq!(running["runner_name"], "runway-1");
    assert_eq!(running["runner_id"], runner_id);
    let completed = &webhooks[2].payload["workflow_job"];
    assert_eq!(completed["conclusion"], "success");
    assert_eq!(completed["runner_name"], "runway-1");
    assert!(completed["completed_at"].is_string());

    // Ephemeral: removed after its one job, so the REST API no longer knows it.
    let (status, _) = call(
        Method::GET,
        &format!(
            "{}/orgs/octo-org/actions/runners/{runner_id}",
            emulator.api_url()
        ),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let deliveries = emulator.wait_for_deliveries(3, WAIT).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.outcome == DeliveryOutcome::Delivered && d.response_status == Some(204))
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn runners_are_fungible_the_runner_launched_for_one_job_may_run_another() {
    let (emulator, _receiver) = start_with_receiver(config()).await;
    // Job B is queued first; the runner "launched for" job A, queued second, takes job B.
    let job_b = emulator
        .create_job(NewJob::new("octo-org/lib", &["linux"]).lasting(Duration::from_millis(100)))
        .unwrap();
    let job_a = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]).lasting(Duration::from_millis(100)))
        .unwrap();
    let (_, for_a) = jit_via_rest(&emulator, "orgs/octo-org", "for-job-a", &["linux"]).await;
    let outcome = runner::run(fast(emulator.base_url(), &for_a))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed {
            job_id: job_b.job_id,
            conclusion: "success".into()
        }
    );
    assert_eq!(
        emulator.job(job_a.job_id).unwrap().status,
        JobStatus::Queued
    );
    let (_, for_b) = jit_via_rest(&emulator, "orgs/octo-org", "for-job-b", &["linux"]).await;
    let outcome = runner::run(fast(emulator.base_url(), &for_b))
        .await
        .unwrap();
    assert!(matches!(outcome, RunOutcome::Completed { job_id, .. } if job_id == job_a.job_id));
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_job_goes_only_to_a_runner_whose_labels_cover_it_and_whose_scope_serves_it() {
    let (emulator, _receiver) = start_with_receiver(config()).await;
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted", "gpu"]).lasting(Duration::ZERO))
        .unwrap();
    let (_, no_gpu) = jit_via_rest(&emulator, "orgs/octo-org", "no-gpu", &["linux"]).await;
    let (_, other_repo) = jit_via_rest(&emulator, "repos/octo-org/lib", "lib-gpu", &["gpu"]).await;
    let mut idle = fast(emulator.base_url(), &no_gpu);
    idle.idle_timeout = Some(Duration::from_millis(600));
    assert_eq!(runner::run(idle).await.unwrap(), RunOutcome::IdleTimeout);
    let mut idle = fast(emulator.base_url(), &other_repo);
    idle.idle_timeout = Some(Duration::from_millis(600));
    assert_eq!(runner::run(idle).await.unwrap(), RunOutcome::IdleTimeout);
    // The enterprise's runners serve its organizations' repositories.
    let (_, enterprise) = jit_via_rest(&emulator, "enterprises/acme", "ent-gpu", &["GPU"]).await;
    let outcome = runner::run(fast(emulator.base_url(), &enterprise))
        .await
        .unwrap();
    assert!(matches!(outcome, RunOutcome::Completed { job_id, .. } if job_id == job.job_id));
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_idle_runner_deleted_through_the_api_goes_away_and_its_process_exits() {
    let (emulator, _receiver) = start_with_receiver(config()).await;
    let (runner_id, jitconfig) =
        jit_via_rest(&emulator, "repos/octo-org/app", "doomed", &["linux"]).await;
    let sim = tokio::spawn(runner::run(fast(emulator.base_url(), &jitconfig)));
    emulator
        .wait_for_runners(WAIT, |runners| runners.iter().any(|r| r.status == "online"))
        .await
        .expect("runner never came online");
    let (status, _) = call(
        Method::DELETE,
        &format!(
            "{}/repos/octo-org/app/actions/runners/{runner_id}",
            emulator.api_url()
        ),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let outcome = tokio::time::timeout(WAIT, sim)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome, RunOutcome::Removed);
    // Connecting again with the same config: still removed.
    assert_eq!(
        runner::run(fast(emulator.base_url(), &jitconfig))
            .await
            .unwrap(),
        RunOutcome::Removed
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_busy_runner_cannot_be_deleted() {
    let (emulator, _receiver) = start_with_receiver(config()).await;
    let (runner_id, jitconfig) = jit_via_rest(&emulator, "orgs/octo-org", "busy", &["linux"]).await;
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]).lasting(Duration::from_secs(2)))
        .unwrap();
    let sim = tokio::spawn(runner::run(fast(emulator.base_url(), &jitconfig)));
    emulator
        .wait_for_job(job.job_id, JobStatus::InProgress, WAIT)
        .await
        .expect("job never started");
    let (status, body) = call(
        Method::DELETE,
        &format!(
            "{}/orgs/octo-org/actions/runners/{runner_id}",
            emulator.api_url()
        ),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(matches!(
        sim.await.unwrap().unwrap(),
        RunOutcome::Completed { .. }
    ));
    emulator.shutdown().await;
}

#[tokio::test]
async fn cancelling_sends_completed_cancelled_with_or_without_a_runner() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    // Never started: completed/cancelled with no runner.
    let queued = emulator
        .create_job(NewJob::new("octo-org/app", &["nobody-has-this"]))
        .unwrap();
    let (status, cancelled) = call(
        Method::POST,
        &format!(
            "{}/_emulator/jobs/{}/cancel",
            emulator.base_url(),
            queued.job_id
        ),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["status"], "completed");
    assert_eq!(cancelled["conclusion"], "cancelled");
    let webhooks = receiver.wait_for(2).await;
    assert_eq!(webhooks[1].action(), "completed");
    assert_eq!(
        webhooks[1].payload["workflow_job"]["conclusion"],
        "cancelled"
    );
    assert!(webhooks[1].payload["workflow_job"]["runner_name"].is_null());
    // Cancelling twice is refused.
    let (status, _) = call(
        Method::POST,
        &format!(
            "{}/_emulator/jobs/{}/cancel",
            emulator.base_url(),
            queued.job_id
        ),
        None,
        None,
    )
    .await;
    assert_eq!(status, 409);

    // Running: the runner learns of it, stops, and the job names the runner.
    let running = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]).lasting(Duration::from_secs(60)))
        .unwrap();
    let (_, jitconfig) = jit_via_rest(&emulator, "orgs/octo-org", "cancel-me", &["linux"]).await;
    let sim = tokio::spawn(runner::run(fast(emulator.base_url(), &jitconfig)));
    emulator
        .wait_for_job(running.job_id, JobStatus::InProgress, WAIT)
        .await
        .expect("job never started");
    emulator.cancel_job(running.job_id).unwrap();
    let outcome = tokio::time::timeout(WAIT, sim)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed {
            job_id: running.job_id,
            conclusion: "cancelled".into()
        }
    );
    let webhooks = receiver.wait_for(5).await;
    let last = &webhooks[4].payload["workflow_job"];
    assert_eq!(webhooks[4].action(), "completed");
    assert_eq!(last["conclusion"], "cancelled");
    assert_eq!(last["runner_name"], "cancel-me");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.all().len(), 5, "one completed webhook per job");
    assert!(emulator.runners().is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn webhooks_can_be_dropped_or_duplicated_on_demand() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    let (status, _) = call(
        Method::POST,
        &format!("{}/_emulator/faults", emulator.base_url()),
        None,
        Some(json!({"drop_webhooks": 1, "duplicate_webhooks": 1})),
    )
    .await;
    assert_eq!(status, 200);
    let dropped = emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    let doubled = emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    let normal = emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    let webhooks = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let webhooks = if receiver.all().len() > webhooks.len() {
        receiver.all()
    } else {
        webhooks
    };
    let ids: Vec<u64> = webhooks.iter().map(Received::job_id).collect();
    assert_eq!(ids, [doubled.job_id, doubled.job_id, normal.job_id]);
    assert_eq!(
        webhooks[0].header("x-github-delivery"),
        webhooks[1].header("x-github-delivery"),
        "a duplicate is a redelivery of the same delivery"
    );
    let (status, deliveries) = call(
        Method::GET,
        &format!("{}/_emulator/deliveries", emulator.base_url()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 4);
    assert_eq!(deliveries[0]["job_id"], dropped.job_id);
    assert_eq!(deliveries[0]["outcome"], "dropped");
    assert!(deliveries.iter().any(|d| d["duplicate"] == true));
    emulator.shutdown().await;
}

#[tokio::test]
async fn drops_by_action_wait_for_their_own_action_side_by_side() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    let (status, _) = call(
        Method::POST,
        &format!("{}/_emulator/faults", emulator.base_url()),
        None,
        Some(json!({"drop_webhooks_by_action": {"queued": 1, "completed": 2}})),
    )
    .await;
    assert_eq!(status, 200);
    let first = emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    let second = emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    // The first `queued` webhook is dropped, the second sent; both `completed` ones dropped.
    assert_eq!(receiver.wait_for(1).await[0].job_id(), second.job_id);
    emulator.cancel_job(first.job_id).unwrap();
    emulator.cancel_job(second.job_id).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.all().len(), 1, "{:?}", emulator.deliveries());
    let left = emulator.faults().drop_webhooks_by_action;
    assert_eq!(left.get("queued"), Some(&0));
    assert_eq!(left.get("completed"), Some(&0));
    let dropped: Vec<(u64, String)> = emulator
        .deliveries()
        .into_iter()
        .filter(|d| d.outcome == runway_github_emulator::DeliveryOutcome::Dropped)
        .map(|d| (d.job_id, d.action))
        .collect();
    assert_eq!(
        dropped,
        vec![
            (first.job_id, "queued".to_owned()),
            (first.job_id, "completed".to_owned()),
            (second.job_id, "completed".to_owned()),
        ]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_drop_can_be_kept_for_webhooks_of_one_action() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    let (status, _) = call(
        Method::POST,
        &format!("{}/_emulator/faults", emulator.base_url()),
        None,
        Some(json!({"drop_webhooks": 1, "drop_webhooks_action": "completed"})),
    )
    .await;
    assert_eq!(status, 200);
    let queued = emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    // The queued webhook is sent: the drop waits for a completed one.
    assert_eq!(receiver.wait_for(1).await[0].job_id(), queued.job_id);
    assert_eq!(emulator.faults().drop_webhooks, 1);
    emulator.cancel_job(queued.job_id).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.all().len(), 1, "the completed webhook was dropped");
    assert_eq!(emulator.faults().drop_webhooks, 0);
    let deliveries = emulator.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[1].action, "completed");
    assert_eq!(
        deliveries[1].outcome,
        runway_github_emulator::DeliveryOutcome::Dropped
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_control_api_queues_lists_and_shows_jobs_and_runners() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    let base = emulator.base_url().to_string();
    let (status, created) = call(
        Method::POST,
        &format!("{base}/_emulator/jobs"),
        None,
        Some(json!({"repository": "octo-org/app", "labels": ["linux"], "duration_seconds": 0.2})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let job_id = created["job_id"].as_u64().unwrap();
    assert!(created["run_id"].as_u64().is_some());
    assert_eq!(receiver.wait_for(1).await[0].action(), "queued");

    let (_, jitconfig) = jit_via_rest(&emulator, "orgs/octo-org", "ctl", &["linux"]).await;
    let (_, runners) = call(
        Method::GET,
        &format!("{base}/_emulator/runners"),
        None,
        None,
    )
    .await;
    assert_eq!(runners[0]["name"], "ctl");
    assert_eq!(runners[0]["status"], "offline");
    runner::run(fast(&base, &jitconfig)).await.unwrap();

    let (status, job) = call(
        Method::GET,
        &format!("{base}/_emulator/jobs/{job_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "completed");
    assert_eq!(job["runner_name"], "ctl");
    let (_, jobs) = call(Method::GET, &format!("{base}/_emulator/jobs"), None, None).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);

    for (body, expected) in [
        (json!({"repository": "octo-org/missing", "labels": []}), 404),
        (json!({"labels": ["x"]}), 422),
        (
            json!({"repository": "octo-org/app", "labels": ["x"], "duration_seconds": -1}),
            422,
        ),
    ] {
        let (status, _) = call(
            Method::POST,
            &format!("{base}/_emulator/jobs"),
            None,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{body}");
    }
    let (status, _) = call(
        Method::GET,
        &format!("{base}/_emulator/jobs/999"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_runner_protocol_refuses_strangers() {
    let (emulator, _receiver) = start_with_receiver(config()).await;
    for auth in [None, Some("Bearer nobody")] {
        let mut request = common::client().post(format!("{}/_runner/acquire", emulator.base_url()));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
    }
    let error = runner::run_once(Some(emulator.base_url()), "bm90IGpzb24=")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("JIT config"), "{error}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_webhook_target_that_is_down_is_recorded_as_failed_and_not_retried() {
    let mut config = config();
    config.webhook = Some(runway_github_emulator::WebhookTarget {
        // Nothing listens on port 9 of loopback.
        url: "http://127.0.0.1:9/webhook".into(),
        secret: "s".into(),
    });
    let emulator = runway_github_emulator::Emulator::start(config)
        .await
        .unwrap();
    emulator
        .create_job(NewJob::new("octo-org/app", &["x"]))
        .unwrap();
    let deliveries = emulator.wait_for_deliveries(1, WAIT).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Failed);
    assert!(deliveries[0].error.is_some());
    emulator.set_faults(Faults::default());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_runners_and_jobs_each_job_runs_once_and_each_runner_runs_one_job() {
    let (emulator, receiver) = start_with_receiver(config()).await;
    const COUNT: usize = 8;
    let mut jobs = Vec::new();
    let mut sims = Vec::new();
    for n in 0..COUNT {
        let repo = if n % 2 == 0 {
            "octo-org/app"
        } else {
            "octo-org/lib"
        };
        jobs.push(
            emulator
                .create_job(
                    NewJob::new(repo, &["linux"]).lasting(Duration::from_millis(50 * n as u64)),
                )
                .unwrap()
                .job_id,
        );
        let (_, jitconfig) = jit_via_rest(
            &emulator,
            "orgs/octo-org",
            &format!("pool-{n}"),
            &["linux", "x64"],
        )
        .await;
        sims.push(tokio::spawn(runner::run(fast(
            emulator.base_url(),
            &jitconfig,
        ))));
    }
    let mut ran = Vec::new();
    for sim in sims {
        match tokio::time::timeout(WAIT, sim)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            RunOutcome::Completed { job_id, .. } => ran.push(job_id),
            other => panic!("a runner ended with {other:?}"),
        }
    }
    ran.sort_unstable();
    let mut expected = jobs.clone();
    expected.sort_unstable();
    assert_eq!(ran, expected, "every job ran exactly once");
    assert!(emulator.runners().is_empty());
    let webhooks = receiver.wait_for(3 * COUNT).await;
    for job_id in jobs {
        let actions: Vec<&str> = webhooks
            .iter()
            .filter(|w| w.job_id() == job_id)
            .map(Received::action)
            .collect();
        assert_eq!(
            actions,
            ["queued", "in_progress", "completed"],
            "job {job_id}"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn concurrent_delivery_keeps_each_jobs_events_in_order_and_sends_them_all() {
    let (emulator, receiver) = start_with_receiver(EmulatorConfig {
        delivery_concurrency: 4,
        ..config()
    })
    .await;
    let mut job_ids = Vec::new();
    for _ in 0..24 {
        let created = emulator
            .create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))
            .unwrap();
        job_ids.push(created.job_id);
    }
    for job_id in &job_ids {
        emulator.cancel_job(*job_id).unwrap();
    }
    let received = receiver.wait_for(2 * job_ids.len()).await;
    for job_id in &job_ids {
        let actions: Vec<&str> = received
            .iter()
            .filter(|webhook| webhook.job_id() == *job_id)
            .map(Received::action)
            .collect();
        assert_eq!(actions, ["queued", "completed"], "job {job_id}");
    }
}
