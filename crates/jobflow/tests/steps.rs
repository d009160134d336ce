//! Each step of the job flow against the in-memory store, the GitHub emulator (through the
//! REST client) and local process runners.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use runway_github::{GitHub, RunnerScope};
use runway_github_emulator::{Faults, JobStatus};
use runway_jobflow::{PoolConfig, Step, errors};
use runway_policy_host::RouterFallback;
use runway_providers::{
    LaunchRequest, Launched, LocalProvider, OwnedRunner, Provider, ProviderError, ProviderKind,
    Terminated,
};
use runway_store::{
    ExecutionKey, JobId, PoolName, RunnerEvent, RunnerName, RunnerState, RunnerWait, RunnerWatch,
    Store, TaskToken, Waiter,
};
use runway_webhook::{JobEventKind, JobEventUpdate, JobEvents};
use serde_json::{Value, json};

fn pool_name() -> PoolName {
    PoolName::new(POOL).unwrap()
}

fn exec(name: &str) -> ExecutionKey {
    ExecutionKey::new(name).unwrap()
}

// ---- route ---------------------------------------------------------------------------------

#[tokio::test]
async fn built_in_routing_takes_the_first_pool_offering_every_label() {
    let gpu = PoolConfig::new("gpu", &["self-hosted", "linux", "x64", "gpu"]);
    let fixture = Fixture::start(Options {
        config: config(vec![linux_pool(), gpu]),
        ..Options::default()
    })
    .await;
    let input = job_input(1, 1, &["self-hosted", "Linux", "GPU"]);
    let route = fixture
        .run(Step::Route, json!({"execution": "job-1", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["decision"], "run");
    assert_eq!(route["pool"], "gpu");
    assert_eq!(route["provider"], "local");
    assert_eq!(route["fallback"], false);
    assert_eq!(route["org"], "octo-org");
    assert_eq!(route["repo"], REPOSITORY);
    assert_eq!(route["job_id"], 1);
    assert_eq!(
        route["labels"],
        json!(["self-hosted", "linux", "x64", "gpu"])
    );
    assert_eq!(route["boot_timeout_seconds"], 300);
    assert!(
        route["reason"]
            .as_str()
            .unwrap()
            .contains("matched pool gpu")
    );

    let input = job_input(2, 2, &["self-hosted", "windows"]);
    let route = fixture
        .run(Step::Route, json!({"execution": "job-2", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["decision"], "ignore");
    assert_eq!(route["pool"], Value::Null);
    assert!(
        route["reason"]
            .as_str()
            .unwrap()
            .contains("no pool offers all of the labels [self-hosted, windows]"),
        "{route}"
    );
}

#[tokio::test]
async fn a_router_policy_routes_and_its_failure_falls_back_visibly() {
    let mut gpu = PoolConfig::new("gpu", &["self-hosted", "linux", "gpu"]);
    gpu.instance_types = vec!["g5.xlarge".into()];
    gpu.max_disk_gib = Some(100);
    let mut flow_config = config(vec![linux_pool(), gpu]);
    flow_config.router_fallback = RouterFallback::Pool(POOL.into());
    let fixture = Fixture::start(Options {
        config: flow_config.clone(),
        router: Some(load_router("labels-router.wasm")),
        ..Options::default()
    })
    .await;
    let input = job_input(3, 3, &["self-hosted", "gpu", "disk=100"]);
    let route = fixture
        .run(Step::Route, json!({"execution": "job-3", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["decision"], "run", "{route}");
    assert_eq!(route["pool"], "gpu");
    assert_eq!(route["fallback"], false);
    assert_eq!(route["overrides"]["disk_gib"], 100);
    assert_eq!(route["overrides"]["instance_types"], json!(["g5.xlarge"]));

    let hostile = Fixture::start(Options {
        config: flow_config,
        router: Some(load_router("tests/hostile-router.wasm")),
        ..Options::default()
    })
    .await;
    let mut input = job_input(4, 4, &["self-hosted", "gpu"]);
    input["job"]["name"] = json!("trap");
    let route = hostile
        .run(Step::Route, json!({"execution": "job-4", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["decision"], "run", "{route}");
    assert_eq!(route["pool"], POOL);
    assert_eq!(route["fallback"], true);
    let reason = route["reason"].as_str().unwrap();
    assert!(
        reason.contains("trap") && reason.contains("fail-open"),
        "{reason}"
    );
}

/// The labels router takes `instance-type=...` from the job's labels, which whoever writes the
/// workflow controls: the host holds the pool's allow-lists, and a refused ask gets the
/// router fallback, with the refusal in the route's output.
#[tokio::test]
async fn a_router_asking_outside_the_pools_allow_lists_gets_the_fallback_with_the_reason() {
    let mut gpu = PoolConfig::new("gpu", &["self-hosted", "linux", "gpu"]);
    gpu.instance_types = vec!["g5.xlarge".into()];
    gpu.allowed_instance_types = vec!["g5.*".into()];
    let mut fail_open = config(vec![linux_pool(), gpu]);
    fail_open.router_fallback = RouterFallback::Pool(POOL.into());
    let fixture = Fixture::start(Options {
        config: fail_open.clone(),
        router: Some(load_router("labels-router.wasm")),
        ..Options::default()
    })
    .await;

    // Inside the allow-list (a wildcard match): the router's ask stands.
    let input = job_input(5, 5, &["self-hosted", "gpu", "instance-type=g5.2xlarge"]);
    let route = fixture
        .run(Step::Route, json!({"execution": "job-5", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["pool"], "gpu", "{route}");
    assert_eq!(route["fallback"], false);
    assert_eq!(route["overrides"]["instance_types"], json!(["g5.2xlarge"]));
    assert!(route.get("refused").is_none(), "{route}");

    // Outside it: the fallback pool with its own settings, and why.
    let input = job_input(6, 6, &["self-hosted", "gpu", "instance-type=p5.48xlarge"]);
    let route = fixture
        .run(Step::Route, json!({"execution": "job-6", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["decision"], "run", "{route}");
    assert_eq!(route["pool"], POOL, "{route}");
    assert_eq!(route["fallback"], true);
    assert_eq!(route["overrides"]["instance_types"], Value::Null, "{route}");
    let refused = route["refused"].as_str().unwrap();
    assert!(
        refused.contains("pool gpu refuses the router's overrides")
            && refused.contains("[\"p5.48xlarge\"] are not in allowed_instance_types [\"g5.*\"]"),
        "{refused}"
    );
    let reason = route["reason"].as_str().unwrap();
    assert!(
        reason.contains(refused) && reason.ends_with("fail-open to pool linux"),
        "{reason}"
    );

    // Without an allow-list for a field, the pool takes no override of it; fail-closed leaves
    // the job alone.
    let mut fail_closed = fail_open;
    fail_closed.router_fallback = RouterFallback::Ignore;
    let closed = Fixture::start(Options {
        config: fail_closed,
        router: Some(load_router("labels-router.wasm")),
        ..Options::default()
    })
    .await;
    let input = job_input(7, 7, &["self-hosted", "gpu", "disk=2000"]);
    let route = closed
        .run(Step::Route, json!({"execution": "job-7", "input": input}))
        .await
        .unwrap();
    assert_eq!(route["decision"], "ignore", "{route}");
    assert_eq!(route["fallback"], true);
    let refused = route["refused"].as_str().unwrap();
    assert!(
        refused.contains("disk 2000 GiB asked, but the pool sets no max_disk_gib"),
        "{refused}"
    );
    assert!(
        route["reason"]
            .as_str()
            .unwrap()
            .ends_with("fail-closed, job not taken")
    );
}

// ---- admit / wait-for-slot / release --------------------------------------------------------

#[tokio::test]
async fn a_full_ceiling_makes_the_job_wait_naming_the_ceiling() {
    let mut pool = linux_pool();
    pool.max_running = 2;
    let fixture = Fixture::start(Options {
        config: config(vec![pool]),
        ..Options::default()
    })
    .await;
    let mut admitted_inputs = Vec::new();
    for name in ["job-a", "job-b"] {
        let input = fixture.queue_job(&["self-hosted", "linux"]);
        let admitted = fixture
            .run(Step::Admit, fixture.routed(name, &input).await)
            .await
            .unwrap();
        assert_eq!(admitted["decision"], "admit", "{admitted}");
        // Admitted, the job was read from GitHub: still queued.
        assert_eq!(admitted["job"]["status"], "queued", "{admitted}");
        admitted_inputs.push(input);
    }
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let waiting = fixture
        .run(Step::Admit, fixture.routed("job-c", &input).await)
        .await
        .unwrap();
    assert_eq!(waiting["decision"], "wait");
    assert_eq!(waiting["reason"], "pool ceiling 2 reached: 2 running");
    assert_eq!(waiting["waiting_for"], "ceiling");
    assert_eq!(waiting["load"]["pool_running"], 2);
    assert_eq!(waiting["recheck_after_seconds"], 60);

    // A retried admission of a job that holds a slot counts nothing twice.
    let input = admitted_inputs[0].clone();
    let mut again = fixture.routed("job-a", &input).await;
    again["input"] = input;
    let admitted = fixture.run(Step::Admit, again).await.unwrap();
    assert_eq!(admitted["decision"], "admit");
    assert!(
        admitted["reason"]
            .as_str()
            .unwrap()
            .contains("already holds")
    );
}

#[tokio::test]
async fn fifo_a_newcomer_waits_behind_an_older_waiter_and_release_wakes_the_oldest() {
    let fixture = Fixture::start(Options::default()).await;
    let input_a = fixture.queue_job(&["self-hosted", "linux"]);
    let state_a = fixture.routed("job-a", &input_a).await;
    let admitted = fixture.run(Step::Admit, state_a.clone()).await.unwrap();
    assert_eq!(admitted["decision"], "admit");

    // B waits for A's slot and parks its task token.
    let input_b = fixture.queue_job(&["self-hosted", "linux"]);
    let mut state_b = fixture.routed("job-b", &input_b).await;
    let admission_b = fixture.run(Step::Admit, state_b.clone()).await.unwrap();
    assert_eq!(admission_b["decision"], "wait");
    let parked_b = fixture.tokens.park("job-b").await;
    state_b["admission"] = admission_b.clone();
    state_b["task_token"] = json!(parked_b.token);
    let parked = fixture
        .run(Step::WaitForSlot, state_b.clone())
        .await
        .unwrap();
    assert_eq!(parked["parked"], true);
    assert_eq!(parked["position"], 0);

    // A released slot goes to B, not to a newcomer: C waits behind B even with a free slot.
    let release = fixture
        .run(
            Step::Release,
            json!({"execution": "job-a", "input": input_a, "route": state_a["route"], "outcome": "done"}),
        )
        .await
        .unwrap();
    assert_eq!(release["slot"], "released");
    assert_eq!(release["woke"], "job-b");
    let woken = fixture
        .tokens
        .output(&fixture.tokens.outcome(&parked_b).await);
    assert_eq!(woken["woken_by"], "job-a", "{woken}");

    // B is popped; put an older waiter D back to show a newcomer queues behind it.
    let input_d = fixture.queue_job(&["self-hosted", "linux"]);
    let earlier = fixture.clock.now() - chrono::Duration::seconds(30);
    fixture
        .store()
        .enqueue_waiter(&Waiter {
            pool: pool_name(),
            execution: exec("job-d"),
            priority: 0,
            enqueued_at: earlier,
            task_token: TaskToken::new("token-of-d").unwrap(),
            expires_at: fixture.clock.now() + chrono::Duration::seconds(300),
        })
        .await
        .unwrap();
    let input_c = fixture.queue_job(&["self-hosted", "linux"]);
    let newcomer = fixture
        .run(Step::Admit, fixture.routed("job-c", &input_c).await)
        .await
        .unwrap();
    assert_eq!(newcomer["decision"], "wait", "{newcomer}");
    assert_eq!(newcomer["waiting_for"], "queue");
    assert_eq!(newcomer["position"], 1);
    assert!(
        newcomer["reason"]
            .as_str()
            .unwrap()
            .contains("1 older job waits")
    );
    assert_eq!(
        fixture
            .store()
            .load(
                &pool_name(),
                &"octo-org".parse().unwrap(),
                &REPOSITORY.parse().unwrap()
            )
            .await
            .unwrap()
            .pool_running,
        0,
        "the newcomer took no slot"
    );

    // D comes back from the queue (re-admitted with its earlier admission) and keeps its
    // place: it is first, so it takes the free slot.
    let mut state_d = fixture.routed("job-d", &input_d).await;
    state_d["admission"] = json!({
        "decision": "wait", "reason": "earlier", "priority": 0,
        "enqueued_at": earlier.to_rfc3339(), "recheck_after_seconds": 60,
    });
    let readmitted = fixture.run(Step::Admit, state_d).await.unwrap();
    assert_eq!(readmitted["decision"], "admit", "{readmitted}");
    assert_eq!(
        readmitted["enqueued_at"],
        earlier.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    assert_eq!(
        fixture
            .store()
            .position(&pool_name(), &exec("job-d"))
            .await
            .unwrap(),
        None,
        "its own queue entry is gone"
    );
}

#[tokio::test]
async fn release_skips_gone_tokens_and_wakes_the_next_waiter() {
    let fixture = Fixture::start(Options::default()).await;
    let input_a = fixture.queue_job(&["self-hosted", "linux"]);
    let state_a = fixture.routed("job-a", &input_a).await;
    assert_eq!(
        fixture.run(Step::Admit, state_a.clone()).await.unwrap()["decision"],
        "admit"
    );
    let mut parked = Vec::new();
    for name in ["job-b", "job-c"] {
        let input = fixture.queue_job(&["self-hosted", "linux"]);
        let mut state = fixture.routed(name, &input).await;
        let admission = fixture.run(Step::Admit, state.clone()).await.unwrap();
        assert_eq!(admission["decision"], "wait");
        let token = fixture.tokens.park(name).await;
        state["admission"] = admission;
        state["task_token"] = json!(token.token);
        fixture.run(Step::WaitForSlot, state).await.unwrap();
        parked.push(token);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // B's execution stopped: its token is gone.
    fixture
        .tokens
        .sfn
        .stop_execution(&parked[0].execution_arn, None, None)
        .unwrap();

    // The failure path passes no route: the slot holder names the pool.
    let release = fixture
        .run(
            Step::Release,
            json!({
                "execution": "job-a", "input": input_a, "outcome": "failed",
                "error": {"Error": "Runway.ProvisionFailed", "Cause": "{\"errorMessage\": \"no AMI in the pool.\", \"errorType\": \"Runway.ProvisionFailed\"}"}
            }),
        )
        .await
        .unwrap();
    assert_eq!(release["slot"], "released");
    assert_eq!(release["woke"], "job-c", "{release}");
    assert_eq!(
        release["summary"],
        "The job could not be served (Runway.ProvisionFailed): no AMI in the pool. Nothing it \
         started is left running and its slot is free."
    );
    let woken = fixture
        .tokens
        .output(&fixture.tokens.outcome(&parked[1]).await);
    assert_eq!(woken["woken_by"], "job-a");

    // Idempotent: a second release holds nothing and wakes nobody.
    let again = fixture
        .run(
            Step::Release,
            json!({"execution": "job-a", "input": input_a, "outcome": "done", "route": state_a["route"]}),
        )
        .await
        .unwrap();
    assert_eq!(again["slot"], "not-held");
    assert_eq!(again["woke"], Value::Null);
}

#[tokio::test]
async fn a_waiter_that_finds_a_free_slot_at_the_head_wakes_itself() {
    let fixture = Fixture::start(Options::default()).await;
    let input_a = fixture.queue_job(&["self-hosted", "linux"]);
    let state_a = fixture.routed("job-a", &input_a).await;
    fixture.run(Step::Admit, state_a.clone()).await.unwrap();
    let input_b = fixture.queue_job(&["self-hosted", "linux"]);
    let mut state_b = fixture.routed("job-b", &input_b).await;
    let admission = fixture.run(Step::Admit, state_b.clone()).await.unwrap();
    assert_eq!(admission["decision"], "wait");
    // A's slot is freed before B parks: nobody is in the queue to wake.
    let release = fixture
        .run(
            Step::Release,
            json!({"execution": "job-a", "input": input_a, "route": state_a["route"], "outcome": "done"}),
        )
        .await
        .unwrap();
    assert_eq!(release["woke"], Value::Null);

    let parked = fixture.tokens.park("job-b").await;
    state_b["admission"] = admission;
    state_b["task_token"] = json!(parked.token);
    fixture.run(Step::WaitForSlot, state_b).await.unwrap();
    let woken = fixture
        .tokens
        .output(&fixture.tokens.outcome(&parked).await);
    assert_eq!(woken["woken_by"], "job-b", "{woken}");
    assert_eq!(
        fixture.store().waiters(&pool_name()).await.unwrap(),
        vec![],
        "the waiter took itself out of the queue"
    );
}

#[tokio::test]
async fn the_throttle_policy_can_queue_or_reject() {
    let mut pool = linux_pool();
    pool.max_running = 5;
    pool.params.insert("ceiling".into(), "1".into());
    let fixture = Fixture::start(Options {
        config: config(vec![pool]),
        throttle: Some(load_throttle("ceiling-c.wasm")),
        ..Options::default()
    })
    .await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let first = fixture
        .run(Step::Admit, fixture.routed("job-a", &input).await)
        .await
        .unwrap();
    assert_eq!(first["decision"], "admit", "{first}");
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .contains("throttle policy admits")
    );
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let second = fixture
        .run(Step::Admit, fixture.routed("job-b", &input).await)
        .await
        .unwrap();
    assert_eq!(second["decision"], "wait", "{second}");
    assert_eq!(second["waiting_for"], "policy");
    assert_eq!(second["recheck_after_seconds"], 30);

    let mut office = linux_pool();
    office
        .params
        .insert("business-hours.start".into(), "8am".into());
    let rejecting = Fixture::start(Options {
        config: config(vec![office]),
        throttle: Some(load_throttle("business-hours.wasm")),
        ..Options::default()
    })
    .await;
    let input = rejecting.queue_job(&["self-hosted", "linux"]);
    let rejected = rejecting
        .run(Step::Admit, rejecting.routed("job-r", &input).await)
        .await
        .unwrap();
    assert_eq!(rejected["decision"], "reject", "{rejected}");
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap()
            .contains("must be HH:MM"),
        "{rejected}"
    );
}

// ---- the job as GitHub has it: on admission, and once the runner left ----------------------

/// What the machine's Release states pass for `execution`.
fn release_of(execution: &str, state: &Value) -> Value {
    json!({"execution": execution, "input": state["input"], "route": state["route"], "outcome": "cancelled"})
}

#[tokio::test]
async fn an_admitted_job_is_read_from_github_and_read_again_once_its_runner_left() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-a", &input).await;
    let admitted = fixture.run(Step::Admit, state.clone()).await.unwrap();
    assert_eq!(admitted["decision"], "admit", "{admitted}");
    assert_eq!(admitted["job"]["status"], "queued", "{admitted}");
    fixture
        .run(Step::Release, release_of("job-a", &state))
        .await
        .unwrap();

    // Cancelled before it was admitted: it needs no runner, and the slot it took is for the
    // machine to release (ReleaseUnneededSlot).
    let job_id = input["job"]["id"].as_u64().unwrap();
    fixture.emulator.cancel_job(job_id).unwrap();
    let admitted = fixture.run(Step::Admit, state.clone()).await.unwrap();
    assert_eq!(admitted["decision"], "not-needed", "{admitted}");
    assert_eq!(admitted["job"]["conclusion"], "cancelled", "{admitted}");
    assert!(
        admitted["reason"]
            .as_str()
            .unwrap()
            .contains("before any runner took it"),
        "{admitted}"
    );
    let holder = fixture.store().slot_holder(&exec("job-a")).await.unwrap();
    assert!(holder.is_some(), "the slot is held until it is released");
    let released = fixture
        .run(Step::Release, release_of("job-a", &state))
        .await
        .unwrap();
    assert_eq!(released["slot"], "released", "{released}");

    // A job that already ran took a runner launched for another job of the pool, which now
    // waits for a runner in its turn: admitted, it is launched one anyway.
    let ran = fixture.queue_job(&["self-hosted", "linux"]);
    let ran_id = ran["job"]["id"].as_u64().unwrap();
    let runner = fixture
        .emulator
        .generate_jitconfig(
            runway_github_emulator::Scope::repository("octo-org", "app"),
            "launched-for-another-job",
            &["self-hosted", "linux"],
        )
        .unwrap();
    let api = fixture.emulator.base_url().to_owned();
    let outcome = runway_github_emulator::runner::run_once(Some(&api), &runner.encoded_jit_config)
        .await
        .unwrap();
    assert!(
        matches!(outcome, runway_github_emulator::runner::RunOutcome::Completed { job_id, .. } if job_id == ran_id),
        "{outcome:?}"
    );
    let ran_state = fixture.routed("job-ran", &ran).await;
    let admitted = fixture.run(Step::Admit, ran_state.clone()).await.unwrap();
    assert_eq!(admitted["decision"], "admit", "{admitted}");
    assert_eq!(
        admitted["job"]["status"], "completed-elsewhere",
        "{admitted}"
    );
    assert_eq!(admitted["job"]["runner_name"], "launched-for-another-job");
    assert!(
        admitted["job"]["reason"]
            .as_str()
            .unwrap()
            .contains("a runner is launched anyway"),
        "{admitted}"
    );

    // Its own runner ran another job and left: teardown reads the job again, which needs no
    // runner now. A runner that ran this execution's own job needs no reading.
    let mut teardown = ran_state.clone();
    teardown["reason"] = json!("runner finished or idle");
    teardown["runner_status"] = json!({"status": "gone", "job_id": 1, "reason": "ran job 1"});
    let torn = fixture.run(Step::Teardown, teardown.clone()).await.unwrap();
    assert_eq!(torn["job"]["status"], "completed-elsewhere", "{torn}");
    assert!(
        torn["job"]["reason"]
            .as_str()
            .unwrap()
            .ends_with("it needs no runner"),
        "{torn}"
    );
    teardown["runner_status"]["job_id"] = json!(ran_id);
    let torn = fixture.run(Step::Teardown, teardown.clone()).await.unwrap();
    assert!(torn.get("job").is_none(), "{torn}");
    fixture
        .run(Step::Release, release_of("job-ran", &ran_state))
        .await
        .unwrap();

    // GitHub failing with 5xx: admission is retried (the slot it took is held once), and a
    // teardown says it could not tell, leaving the job to be followed.
    fixture.emulator.set_faults(Faults {
        server_errors: 3,
        server_error_status: Some(502),
        ..Faults::default()
    });
    let error = fixture.run(Step::Admit, state.clone()).await.unwrap_err();
    assert_eq!(error.error, errors::TRANSIENT, "{error}");
    assert!(error.cause.contains("502"), "{error}");
    fixture.emulator.set_faults(Faults {
        server_errors: 3,
        server_error_status: Some(502),
        ..Faults::default()
    });
    teardown["runner_status"]["job_id"] = json!(1);
    let torn = fixture.run(Step::Teardown, teardown).await.unwrap();
    assert_eq!(torn["job"]["status"], "unknown", "{torn}");
    assert!(
        torn["job"]["reason"].as_str().unwrap().contains("502"),
        "{torn}"
    );
    fixture.emulator.set_faults(Faults::default());
    fixture
        .run(Step::Release, release_of("job-a", &state))
        .await
        .unwrap();

    let missing = job_input(987_654, 1, &["self-hosted", "linux"]);
    let missing_state = fixture.routed("job-x", &missing).await;
    let error = fixture.run(Step::Admit, missing_state).await.unwrap_err();
    assert_eq!(error.error, errors::JOB_NOT_FOUND);
    assert!(error.cause.contains("App may not be installed"), "{error}");
}

#[tokio::test]
async fn malformed_input_is_bad_input_with_a_clear_cause() {
    let fixture = Fixture::start(Options::default()).await;
    let error = fixture
        .run(Step::Admit, json!({"execution": "job-a"}))
        .await
        .unwrap_err();
    assert_eq!(error.error, errors::BAD_INPUT);
    assert!(
        error.cause.contains("admit step") && error.cause.contains("input"),
        "{error}"
    );
    let input = job_input(1, 1, &["self-hosted"]);
    let error = fixture
        .run(
            Step::Watch,
            json!({"execution": "job-a", "input": input, "watch": "job-exploded", "task_token": "t"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error, errors::BAD_INPUT);
    assert!(error.cause.contains("job-exploded"), "{error}");
    let error = fixture
        .run(
            Step::Watch,
            json!({"execution": "job-a", "input": input, "watch": "runner-busy", "task_token": "t"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error, errors::BAD_INPUT);
    assert!(error.cause.contains("needs `runner`"), "{error}");
    let error = fixture
        .run(
            Step::Route,
            json!({"execution": "bad#name", "input": input}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error, errors::BAD_INPUT);
}

// ---- provision / check-runner / teardown ----------------------------------------------------

/// The real local provider, noting whether the runner record existed when launch began.
#[derive(Debug)]
struct RecordChecking {
    inner: LocalProvider,
    store: Arc<dyn Store>,
    seen: std::sync::Mutex<Vec<(String, Option<RunnerState>)>>,
}

#[async_trait]
impl Provider for RecordChecking {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let name = RunnerName::new(request.runner_name.as_str()).unwrap();
        let record = self.store.get_runner(&name).await.unwrap();
        self.seen
            .lock()
            .unwrap()
            .push((request.runner_name.clone(), record.map(|r| r.state)));
        self.inner.launch(request).await
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        self.inner.terminate(execution, runner_name).await
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.inner.owned().await
    }
}

fn repo_scope() -> RunnerScope {
    RunnerScope::repository("octo-org", "app")
}

#[tokio::test]
async fn provision_records_before_launch_and_replacement_is_bounded() {
    let clock = runway_clock::SystemClock::shared();
    let store: Arc<runway_store::MemoryStore> =
        Arc::new(runway_store::MemoryStore::new(clock.clone()));
    let checking = Arc::new(RecordChecking {
        inner: LocalProvider::new(sleeper()).unwrap(),
        store: store.clone(),
        seen: Default::default(),
    });
    let mut pool = linux_pool();
    pool.max_replacements = 1;
    let fixture = Fixture::start(Options {
        config: config(vec![pool]),
        provider: Some(checking.clone()),
        ..Options::default()
    })
    .await;
    // The flow's own store is the fixture's; check against that one.
    let checking_store: Arc<dyn Store> = fixture.store.clone();
    let checking = Arc::new(RecordChecking {
        inner: LocalProvider::new(sleeper()).unwrap(),
        store: checking_store,
        seen: Default::default(),
    });
    drop(store);
    let fixture = Fixture {
        flow: runway_jobflow::JobFlow::new(
            runway_jobflow::Deps {
                store: fixture.store.clone(),
                github: fixture.github.clone(),
                providers: [(POOL.to_string(), checking.clone() as Arc<dyn Provider>)].into(),
                router: None,
                throttle: None,
                callbacks: Arc::new(fixture.tokens.sfn.clone()),
                clock: fixture.clock.clone(),
                metrics: runway_jobflow::metrics::discard(),
            },
            fixture.flow.config().clone(),
        )
        .unwrap(),
        provider: checking.clone(),
        ..fixture
    };

    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let job_id = input["job"]["id"].as_u64().unwrap();
    let state = fixture.routed("job-p", &input).await;
    let runner = fixture.run(Step::Provision, state.clone()).await.unwrap();
    let name = format!("runway-{job_id}-a1-1");
    assert_eq!(runner["runner_name"], name.as_str(), "{runner}");
    assert_eq!(runner["attempt"], 1);
    assert_eq!(runner["provider"], "local");
    assert!(runner["instance_id"].as_str().unwrap().starts_with("pid-"));
    assert_eq!(
        checking.seen.lock().unwrap().clone(),
        vec![(name.clone(), Some(RunnerState::Booting))],
        "the record existed, booting, when the launch began"
    );
    let registered = fixture
        .github
        .list_runners(&repo_scope(), Some(&name))
        .await
        .unwrap();
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].id, runner["runner_id"].as_u64().unwrap());

    // Nobody runs the JIT config: GitHub shows the runner offline.
    let mut check = state.clone();
    check["runner"] = runner.clone();
    let status = fixture.run(Step::CheckRunner, check).await.unwrap();
    assert_eq!(status["status"], "never-registered", "{status}");

    // Replacing it tears the old one down and launches attempt 2.
    let mut replace = state.clone();
    replace["replaces"] = runner.clone();
    let second = fixture.run(Step::Provision, replace).await.unwrap();
    assert_eq!(second["attempt"], 2);
    assert_eq!(second["runner_name"], format!("runway-{job_id}-a1-2"));
    assert!(
        fixture
            .github
            .list_runners(&repo_scope(), Some(&name))
            .await
            .unwrap()
            .is_empty(),
        "the replaced runner left GitHub"
    );
    let old = fixture
        .store()
        .get_runner(&RunnerName::new(name.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.state, RunnerState::Gone);

    // max_replacements = 1: a third runner is not launched.
    let mut replace = state.clone();
    replace["replaces"] = second.clone();
    let error = fixture.run(Step::Provision, replace).await.unwrap_err();
    assert_eq!(error.error, errors::RUNNER_NEVER_REGISTERED, "{error}");
    assert!(error.cause.contains("none of the 2 runners"), "{error}");
    assert!(fixture.provider.owned().await.unwrap().is_empty());
}

/// A provision step that died after its launch is tried again; by then its runner may have
/// run a job and left. The retry must not launch a second runner under the same name (nothing
/// would wait for it, and it would idle on GitHub for ever): following the first one finds it
/// gone and checks the job.
#[tokio::test]
async fn a_retried_provision_whose_runner_already_ran_a_job_launches_no_second_runner() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-retry", &input).await;
    let first = fixture.run(Step::Provision, state.clone()).await.unwrap();
    let name = RunnerName::new(first["runner_name"].as_str().unwrap()).unwrap();

    // The runner took a job and exited before the step's retry.
    fixture
        .store()
        .set_runner_state(
            &name,
            RunnerState::Busy {
                job_id: JobId(4242),
            },
            None,
        )
        .await
        .unwrap();
    fixture
        .provider
        .terminate("job-retry", name.as_str())
        .await
        .unwrap();
    assert!(fixture.provider.owned().await.unwrap().is_empty());

    let retried = fixture.run(Step::Provision, state).await.unwrap();
    assert_eq!(retried["runner_name"], first["runner_name"], "{retried}");
    assert!(
        retried["reason"]
            .as_str()
            .unwrap()
            .contains("already ran a job (busy:4242)"),
        "{retried}"
    );
    assert!(
        fixture.provider.owned().await.unwrap().is_empty(),
        "a second runner was launched under the same name"
    );
}

#[tokio::test]
async fn teardown_removes_everything_the_execution_launched_and_is_idempotent() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-t", &input).await;
    let runner = fixture.run(Step::Provision, state.clone()).await.unwrap();
    let name = runner["runner_name"].as_str().unwrap().to_owned();
    assert_eq!(fixture.provider.owned().await.unwrap().len(), 1);

    // The failure path: no runner output, found from the store and the provider.
    let mut teardown = state.clone();
    teardown["reason"] = json!("failure");
    teardown["error"] = json!({"Error": "States.Timeout", "Cause": ""});
    let first = fixture.run(Step::Teardown, teardown.clone()).await.unwrap();
    assert_eq!(first["terminated"], json!([name]), "{first}");
    let summary = first["summary"].as_str().unwrap();
    assert!(
        summary.contains("host stopped") && summary.contains("removed from GitHub"),
        "{summary}"
    );
    assert!(fixture.provider.owned().await.unwrap().is_empty());
    assert!(
        fixture
            .github
            .list_runners(&repo_scope(), Some(&name))
            .await
            .unwrap()
            .is_empty()
    );
    let record = fixture
        .store()
        .get_runner(&RunnerName::new(name.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RunnerState::Gone);

    // Again, with the runner given: nothing left, still success.
    teardown["runner"] = runner;
    let second = fixture.run(Step::Teardown, teardown).await.unwrap();
    let summary = second["summary"].as_str().unwrap();
    assert!(
        summary.contains("host already gone") && summary.contains("not registered"),
        "{summary}"
    );
}

// ---- watch and webhook events ---------------------------------------------------------------

#[tokio::test]
async fn a_watch_completes_itself_when_the_event_already_happened() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let job_id = input["job"]["id"].as_u64().unwrap();

    // Still queued: the watch waits.
    let waiting = fixture.tokens.park("watch-queued").await;
    let output = fixture
        .run(
            Step::Watch,
            json!({"execution": "job-w", "input": input, "watch": "job-completed", "task_token": waiting.token}),
        )
        .await
        .unwrap();
    assert_eq!(output["completed_now"], false);
    assert!(fixture.tokens.is_running(&waiting));
    assert!(
        fixture
            .store()
            .get_job_watch(JobId(job_id))
            .await
            .unwrap()
            .is_some()
    );

    // The job ended before the next watch was registered.
    fixture.emulator.cancel_job(job_id).unwrap();
    let parked = fixture.tokens.park("watch-done").await;
    let output = fixture
        .run(
            Step::Watch,
            json!({"execution": "job-w", "input": input, "watch": "job-completed", "task_token": parked.token}),
        )
        .await
        .unwrap();
    assert_eq!(output["completed_now"], true, "{output}");
    let woken = fixture
        .tokens
        .output(&fixture.tokens.outcome(&parked).await);
    assert_eq!(woken["status"], "completed");
    assert_eq!(woken["conclusion"], "cancelled");
    assert!(
        fixture
            .store()
            .get_job_watch(JobId(job_id))
            .await
            .unwrap()
            .is_none()
    );

    // A runner that already took a job.
    let state = fixture.routed("job-w", &input).await;
    let runner = fixture.run(Step::Provision, state).await.unwrap();
    let name = RunnerName::new(runner["runner_name"].as_str().unwrap()).unwrap();
    fixture
        .store()
        .set_runner_state(&name, RunnerState::Busy { job_id: JobId(77) }, None)
        .await
        .unwrap();
    let parked = fixture.tokens.park("watch-busy").await;
    fixture
        .run(
            Step::Watch,
            json!({"execution": "job-w", "input": input, "watch": "runner-busy", "task_token": parked.token, "runner": runner}),
        )
        .await
        .unwrap();
    let woken = fixture
        .tokens
        .output(&fixture.tokens.outcome(&parked).await);
    assert_eq!(woken["status"], "busy");
    assert_eq!(woken["job_id"], 77);
    fixture
        .provider
        .terminate("job-w", name.as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn job_events_reach_the_job_watch_and_the_runner_watch_independently() {
    let fixture = Fixture::start(Options {
        config: config(vec![{
            let mut pool = linux_pool();
            pool.max_running = 2;
            pool
        }]),
        ..Options::default()
    })
    .await;
    // Two executions, A and B, each with a runner; job A runs on B's runner.
    let input_a = fixture.queue_job(&["self-hosted", "linux"]);
    let input_b = fixture.queue_job(&["self-hosted", "linux"]);
    let job_a = input_a["job"]["id"].as_u64().unwrap();
    let state_b = fixture.routed("job-b", &input_b).await;
    let runner_b = fixture.run(Step::Provision, state_b).await.unwrap();
    let runner_b_name = runner_b["runner_name"].as_str().unwrap().to_owned();

    let job_done_a = fixture.tokens.park("a-job-done").await;
    fixture
        .run(
            Step::Watch,
            json!({"execution": "job-a", "input": input_a, "watch": "job-completed", "task_token": job_done_a.token}),
        )
        .await
        .unwrap();
    let runner_watch_b = fixture.tokens.park("b-runner-busy").await;
    fixture
        .run(
            Step::Watch,
            json!({"execution": "job-b", "input": input_b, "watch": "runner-busy", "task_token": runner_watch_b.token, "runner": runner_b}),
        )
        .await
        .unwrap();

    let update =
        |kind, conclusion: Option<&str>| job_event(kind, job_a, &runner_b_name, conclusion, "d-1");
    fixture
        .flow
        .job_event(update(JobEventKind::Started, None))
        .await
        .unwrap();
    // The job's start is not its end: A's job watch keeps waiting.
    assert!(fixture.tokens.is_running(&job_done_a));
    let busy = fixture
        .tokens
        .output(&fixture.tokens.outcome(&runner_watch_b).await);
    assert_eq!(busy["status"], "busy");
    assert_eq!(busy["job_id"], job_a);
    let record = fixture
        .store()
        .get_runner(&RunnerName::new(runner_b_name.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.state,
        RunnerState::Busy {
            job_id: JobId(job_a)
        }
    );

    // Completion: the job watch gets the conclusion, the runner watch "gone".
    let runner_gone_b = fixture.tokens.park("b-runner-gone").await;
    fixture
        .run(
            Step::Watch,
            json!({"execution": "job-b", "input": input_b, "watch": "runner-gone", "task_token": runner_gone_b.token, "runner": {"runner_name": runner_b_name}}),
        )
        .await
        .unwrap();
    // A redelivered event is harmless: the tokens are handed out once.
    for _ in 0..2 {
        fixture
            .flow
            .job_event(update(JobEventKind::Completed, Some("success")))
            .await
            .unwrap();
    }
    let done = fixture
        .tokens
        .output(&fixture.tokens.outcome(&job_done_a).await);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["conclusion"], "success");
    let gone = fixture
        .tokens
        .output(&fixture.tokens.outcome(&runner_gone_b).await);
    assert_eq!(gone["status"], "gone");

    // Events of jobs and runners runway does not follow are fine.
    let mut stranger = update(JobEventKind::Started, None);
    stranger.job_id = 1;
    stranger.runner_name = Some("someone-elses-runner".into());
    fixture.flow.job_event(stranger).await.unwrap();
    assert_eq!(
        fixture.emulator.job(job_a).map(|j| j.status),
        Some(JobStatus::Queued)
    );
    fixture
        .provider
        .terminate("job-b", &runner_b_name)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wait_run_again_by_the_reaper_wakes_only_if_its_token_is_still_the_runners() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let state = fixture.routed("job-r", &input).await;
    let runner = fixture.run(Step::Provision, state).await.unwrap();
    let name = RunnerName::new(runner["runner_name"].as_str().unwrap()).unwrap();
    let watch = |token: &str, kind: &str, rerun: bool| {
        json!({"execution": "job-r", "input": input, "watch": kind, "task_token": token,
               "runner": runner, "rerun": rerun, "recheck": u32::from(rerun)})
    };

    // A runner-busy wait, then the runner-gone wait after it registered its own token: the
    // busy wait run again must not take the gone wait's token, nor answer for it.
    let busy = fixture.tokens.park("r-busy").await;
    let gone = fixture.tokens.park("r-gone").await;
    fixture
        .run(Step::Watch, watch(&busy.token, "runner-busy", false))
        .await
        .unwrap();
    fixture
        .store()
        .set_runner_state(&name, RunnerState::Busy { job_id: JobId(9) }, None)
        .await
        .unwrap();
    fixture
        .run(Step::Watch, watch(&gone.token, "runner-gone", false))
        .await
        .unwrap();
    let rerun = fixture
        .run(Step::Watch, watch(&busy.token, "runner-busy", true))
        .await
        .unwrap();
    assert_eq!(rerun["completed_now"], false, "{rerun}");
    let record = fixture.store().get_runner(&name).await.unwrap().unwrap();
    assert_eq!(
        record.runner_watch.as_ref().map(|w| w.task_token.as_str()),
        Some(gone.token.as_str())
    );

    // The completed event reached the store (runner gone, token taken) and its callback was
    // lost: the gone wait, run again, finds the runner gone and wakes.
    fixture
        .store()
        .set_runner_state(&name, RunnerState::Gone, None)
        .await
        .unwrap();
    assert!(
        fixture
            .store()
            .take_runner_token_for(&name, RunnerEvent::Completed)
            .await
            .unwrap()
            .is_some()
    );
    assert!(fixture.tokens.is_running(&gone));
    let rerun = fixture
        .run(Step::Watch, watch(&gone.token, "runner-gone", true))
        .await
        .unwrap();
    assert_eq!(rerun["completed_now"], true, "{rerun}");
    let woken = fixture.tokens.output(&fixture.tokens.outcome(&gone).await);
    assert_eq!(woken["status"], "gone");
    fixture
        .provider
        .terminate("job-r", name.as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_started_event_leaves_a_runner_gone_wait_waiting_until_the_runner_leaves() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let job_id = input["job"]["id"].as_u64().unwrap();
    let state = fixture.routed("job-g", &input).await;
    let runner = fixture.run(Step::Provision, state).await.unwrap();
    let runner_name = runner["runner_name"].as_str().unwrap().to_owned();

    // GitHub already showed the runner busy to CheckRunner, so the execution waits for it to
    // leave; the webhook saying it started the job comes only after that wait registered.
    let gone = fixture.tokens.park("g-runner-gone").await;
    let output = fixture
        .run(
            Step::Watch,
            json!({"execution": "job-g", "input": input, "watch": "runner-gone", "task_token": gone.token, "runner": runner}),
        )
        .await
        .unwrap();
    assert_eq!(output["completed_now"], false, "{output}");

    let update =
        |kind, conclusion: Option<&str>| job_event(kind, job_id, &runner_name, conclusion, "d-g");
    // The started event records the runner busy but does not answer a wait for it to leave.
    fixture
        .flow
        .job_event(update(JobEventKind::Started, None))
        .await
        .unwrap();
    assert!(
        fixture.tokens.is_running(&gone),
        "a busy runner must not answer a wait for it to leave"
    );
    let name = RunnerName::new(runner_name.as_str()).unwrap();
    let record = fixture.store().get_runner(&name).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        RunnerState::Busy {
            job_id: JobId(job_id)
        }
    );
    assert_eq!(
        record.runner_watch,
        Some(RunnerWatch::new(
            TaskToken::new(gone.token.as_str()).unwrap(),
            RunnerWait::Gone
        )),
        "the wait keeps its token"
    );

    // The completed event answers it.
    fixture
        .flow
        .job_event(update(JobEventKind::Completed, Some("success")))
        .await
        .unwrap();
    let woken = fixture.tokens.output(&fixture.tokens.outcome(&gone).await);
    assert_eq!(woken["status"], "gone", "{woken}");
    assert_eq!(woken["job_id"], job_id);
    fixture
        .provider
        .terminate("job-g", &runner_name)
        .await
        .unwrap();
}

// ---- bounds of a long wait and of teardown ---------------------------------------------------

#[tokio::test]
async fn a_job_that_keeps_waiting_backs_off_and_gives_up_at_its_bounds() {
    let mut pool = linux_pool();
    pool.recheck_after_seconds = 60;
    pool.max_wait_seconds = 7200;
    let fixture = Fixture::start(Options {
        config: config(vec![pool]),
        ..Options::default()
    })
    .await;
    // Another job holds the pool's only slot.
    let holder = fixture.queue_job(&["self-hosted", "linux"]);
    let mut holder = fixture.routed("job-holder", &holder).await;
    holder["admission"] = json!({"decision": "new"});
    let held = fixture.run(Step::Admit, holder).await.unwrap();
    assert_eq!(held["decision"], "admit", "{held}");
    assert_eq!(held["waits"], 0);

    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let mut state = fixture.routed("job-waits", &input).await;
    state["admission"] = json!({"decision": "new"});
    // Each time the job comes back and must wait again, the re-check interval doubles, to 900.
    let mut rechecks = Vec::new();
    for wait in 1..=6 {
        let admission = fixture.run(Step::Admit, state.clone()).await.unwrap();
        assert_eq!(admission["decision"], "wait", "{admission}");
        assert_eq!(admission["waits"], wait, "{admission}");
        rechecks.push(admission["recheck_after_seconds"].as_u64().unwrap());
        state["admission"] = admission;
    }
    assert_eq!(rechecks, vec![60, 120, 240, 480, 900, 900]);

    // Near the deadline the last re-check falls on it.
    let now = chrono::Utc::now();
    state["admission"]["enqueued_at"] = json!((now - chrono::Duration::seconds(7100)).to_rfc3339());
    let last = fixture.run(Step::Admit, state.clone()).await.unwrap();
    let recheck = last["recheck_after_seconds"].as_u64().unwrap();
    assert!((1..=100).contains(&recheck), "{last}");

    // At the deadline the job gives up, saying why.
    state["admission"]["enqueued_at"] = json!((now - chrono::Duration::seconds(7201)).to_rfc3339());
    let error = fixture.run(Step::Admit, state.clone()).await.unwrap_err();
    assert_eq!(error.error, errors::WAITED_TOO_LONG, "{error}");
    assert!(
        error.cause.contains("2 h") && error.cause.contains("max_wait_seconds (7200)"),
        "{}",
        error.cause
    );
    assert!(
        error.cause.contains("pool ceiling 1 reached"),
        "{}",
        error.cause
    );

    // However young the wait, an execution's history holds only so many of them.
    state["admission"]["enqueued_at"] = json!(now.to_rfc3339());
    state["admission"]["waits"] = json!(runway_jobflow::MAX_SLOT_WAITS);
    let error = fixture.run(Step::Admit, state.clone()).await.unwrap_err();
    assert_eq!(error.error, errors::WAITED_TOO_LONG, "{error}");
    assert!(
        error
            .cause
            .contains(&format!("{} times", runway_jobflow::MAX_SLOT_WAITS)),
        "{}",
        error.cause
    );
    assert!(
        fixture
            .store()
            .waiters(&pool_name())
            .await
            .unwrap()
            .is_empty(),
        "a job that gave up is not left in the queue"
    );
}

#[tokio::test]
async fn teardown_does_not_terminate_a_runner_github_shows_busy() {
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let job_id = input["job"]["id"].as_u64().unwrap();
    let state = fixture.routed("job-busy", &input).await;
    // A runner of the execution, registered and running the job.
    let name = format!("runway-{job_id}-a1-1");
    let jit = fixture
        .emulator
        .generate_jitconfig(
            runway_github_emulator::Scope::repository("octo-org", "app"),
            &name,
            &["self-hosted", "linux", "x64"],
        )
        .unwrap();
    let options = runway_github_emulator::runner::RunnerOptions::new(
        Some(fixture.emulator.base_url().to_owned()),
        jit.encoded_jit_config,
    );
    let runner = tokio::spawn(runway_github_emulator::runner::run(options));
    fixture
        .emulator
        .wait_for_job(job_id, JobStatus::InProgress, Duration::from_secs(20))
        .await
        .expect("the runner takes the job");

    // The runner branch's teardown: GitHub refuses to remove the runner, so it is followed.
    let mut teardown = state.clone();
    teardown["runner"] = json!({"runner_name": name});
    teardown["reason"] = json!("runner finished or idle");
    let error = fixture
        .run(Step::Teardown, teardown.clone())
        .await
        .unwrap_err();
    assert_eq!(error.error, errors::RUNNER_BUSY, "{error}");
    assert!(
        error.cause.contains(&name) && error.cause.contains("not terminated"),
        "{}",
        error.cause
    );
    // The failure path cannot follow it: it leaves it running and says so.
    let mut failed = teardown.clone();
    failed["reason"] = json!("failure");
    failed["error"] = json!({"Error": "States.Timeout", "Cause": ""});
    let output = fixture.run(Step::Teardown, failed).await.unwrap();
    assert_eq!(output["left_running"], json!([name]), "{output}");
    assert_eq!(output["terminated"], json!([]), "{output}");
    assert!(
        output["summary"]
            .as_str()
            .unwrap()
            .contains("left to finish it"),
        "{output}"
    );
    assert!(!runner.is_finished(), "the runner still runs its job");
    let listed = fixture
        .github
        .list_runners(&repo_scope(), Some(&name))
        .await
        .unwrap();
    assert!(
        listed.iter().any(|r| r.name == name && r.busy),
        "{listed:?}"
    );

    // Once the job is over and the ephemeral runner has left, teardown goes through.
    fixture.emulator.cancel_job(job_id).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .expect("the runner leaves after its job")
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            ended,
            runway_github_emulator::runner::RunOutcome::Completed { .. }
        ),
        "{ended:?}"
    );
    let output = fixture.run(Step::Teardown, teardown).await.unwrap();
    assert_eq!(output["left_running"], json!([]), "{output}");
}

// ---- metrics ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_steps_measure_waits_launches_and_runner_lifetimes_by_pool_and_organisation() {
    use runway_jobflow::metrics::{Dimension, Metric};
    let mut pool = linux_pool();
    pool.max_running = 1;
    let fixture = Fixture::start(Options {
        config: config(vec![pool]),
        ..Options::default()
    })
    .await;
    let mut input = fixture.queue_job(&["self-hosted", "linux"]);
    // Queued on GitHub half a minute ago.
    let queued = chrono::Utc::now() - chrono::Duration::seconds(30);
    input["job"]["created_at"] = json!(queued.to_rfc3339());
    let state = fixture.routed("job-m1", &input).await;
    let admitted = fixture.run(Step::Admit, state.clone()).await.unwrap();
    assert_eq!(admitted["decision"], "admit", "{admitted}");
    let other = fixture.queue_job(&["self-hosted", "linux"]);
    let mut waiter = fixture.routed("job-m2", &other).await;
    let waiting = fixture.run(Step::Admit, waiter.clone()).await.unwrap();
    assert_eq!(waiting["decision"], "wait", "{waiting}");
    assert_eq!(waiting["waiting_for"], "ceiling", "{waiting}");
    // Its re-check finds the ceiling still full: one more trip through the queue, the same
    // ceiling hit.
    waiter["admission"] = waiting;
    let rechecked = fixture.run(Step::Admit, waiter).await.unwrap();
    assert_eq!(rechecked["waiting_for"], "ceiling", "{rechecked}");

    let runner = fixture.run(Step::Provision, state.clone()).await.unwrap();
    let mut teardown = state;
    teardown["runner"] = runner;
    teardown["reason"] = json!("runner finished or idle");
    fixture.run(Step::Teardown, teardown).await.unwrap();

    let by_pool_and_org = vec![
        (Dimension::Pool, "linux".to_owned()),
        (Dimension::Organization, "octo-org".to_owned()),
    ];
    let waits = fixture.metrics.of(Metric::JobWaitSeconds);
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0].dimensions, by_pool_and_org);
    assert!(
        waits[0].value >= 30.0 && waits[0].value < 3600.0,
        "{waits:?}"
    );
    let slot_waits = fixture.metrics.of(Metric::SlotWaits);
    assert_eq!(slot_waits.len(), 2);
    assert_eq!(slot_waits[0].dimensions, by_pool_and_org);
    let ceiling_hits = fixture.metrics.of(Metric::CeilingHits);
    assert_eq!(ceiling_hits.len(), 1, "{ceiling_hits:?}");
    assert_eq!(ceiling_hits[0].dimensions, by_pool_and_org);
    assert!(fixture.metrics.of(Metric::PolicyWaits).is_empty());

    let launches = fixture.metrics.of(Metric::RunnerLaunches);
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0].value, 1.0);
    assert_eq!(
        launches[0].dimensions[0],
        (Dimension::Pool, "linux".to_owned())
    );
    let lifetimes = fixture.metrics.of(Metric::RunnerLifetimeSeconds);
    assert_eq!(lifetimes.len(), 1, "{lifetimes:?}");
    // It never took a job: torn down idle.
    assert_eq!(fixture.metrics.of(Metric::IdleRunnersTornDown).len(), 1);

    // No repository or job id is ever a dimension: the series stay few.
    for sample in fixture.metrics.samples() {
        let line = sample.to_emf("runway/test").to_string();
        assert!(!line.contains("octo-org/"), "{line}");
        assert!(!line.contains("job-m"), "{line}");
    }
}

#[tokio::test]
async fn teardown_splits_a_runners_life_into_boot_job_and_idle_time_once_and_names_a_spot_reclaim()
{
    use runway_jobflow::metrics::{Dimension, Metric};
    let fixture = Fixture::start(Options::default()).await;
    let input = fixture.queue_job(&["self-hosted", "linux"]);
    let job_id = input["job"]["id"].as_u64().unwrap();
    let state = fixture.routed("job-t1", &input).await;
    let runner = fixture.run(Step::Provision, state.clone()).await.unwrap();
    let runner_name = runner["runner_name"].as_str().unwrap().to_owned();
    let update =
        |kind, conclusion: Option<&str>| job_event(kind, job_id, &runner_name, conclusion, "d-t1");
    // Booting, then the job, then the runner waits for its teardown.
    tokio::time::sleep(Duration::from_millis(120)).await;
    fixture
        .flow
        .job_event(update(JobEventKind::Started, None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    fixture
        .flow
        .job_event(update(JobEventKind::Completed, Some("success")))
        .await
        .unwrap();
    // EC2 warned it was reclaiming the runner's spot instance: the teardown says so.
    let name = RunnerName::new(runner_name.as_str()).unwrap();
    assert!(fixture.store().set_runner_reclaimed(&name).await.unwrap());
    tokio::time::sleep(Duration::from_millis(80)).await;
    let mut teardown = state;
    teardown["runner"] = runner;
    teardown["reason"] = json!("runner finished or idle");
    let output = fixture.run(Step::Teardown, teardown.clone()).await.unwrap();
    assert!(
        output["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("its spot instance was reclaimed by EC2")),
        "{output}"
    );
    // A retried teardown measures nothing twice.
    fixture.run(Step::Teardown, teardown).await.unwrap();

    let one = |metric| {
        let samples = fixture.metrics.of(metric);
        assert_eq!(samples.len(), 1, "{metric:?}: {samples:?}");
        assert_eq!(
            samples[0].dimensions,
            vec![(Dimension::Pool, "linux".to_owned())],
            "{metric:?}"
        );
        samples[0].value
    };
    let lifetime = one(Metric::RunnerLifetimeSeconds);
    let boot = one(Metric::RunnerBootSeconds);
    let ran = one(Metric::JobRunSeconds);
    let idle = one(Metric::RunnerIdleSeconds);
    assert!(boot >= 0.12, "boot {boot}");
    assert!(ran >= 0.2, "job {ran}");
    assert!(idle >= boot + 0.08, "idle {idle}, boot {boot}");
    assert!(
        (lifetime - (idle + ran)).abs() < 1e-9,
        "{lifetime} = {idle} + {ran}"
    );
    assert!(
        fixture.metrics.of(Metric::IdleRunnersTornDown).is_empty(),
        "it took a job"
    );
}

/// A webhook's event for `job_id` on the runner `runner_name`, as the intake forwards it.
fn job_event(
    kind: JobEventKind,
    job_id: u64,
    runner_name: &str,
    conclusion: Option<&str>,
    delivery: &str,
) -> JobEventUpdate {
    JobEventUpdate {
        kind,
        job_id,
        run_id: 1,
        run_attempt: 1,
        repository_id: REPOSITORY_ID,
        repository: REPOSITORY.into(),
        runner_name: Some(runner_name.to_owned()),
        runner_id: Some(1),
        conclusion: conclusion.map(str::to_owned),
        delivery_id: Some(delivery.to_owned()),
    }
}

/// A provider whose runners end at a time limit of their host, as a Lambda function's timeout
/// ends its invocation.
#[derive(Debug)]
struct TimeLimited {
    inner: LocalProvider,
    limit: Duration,
}

#[async_trait]
impl Provider for TimeLimited {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Lambda
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        self.inner.launch(request).await
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        self.inner.terminate(execution, runner_name).await
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.inner.owned().await
    }

    async fn runner_time_limit(&self) -> Result<Option<Duration>, ProviderError> {
        Ok(Some(self.limit))
    }
}

/// The teardown of a runner that took a job and lived until its function's timeout (less the
/// margin the bootstrap stops it at) says the timeout ended it; one that ended well before does
/// not.
#[tokio::test]
async fn teardown_says_when_a_lambda_function_s_timeout_ended_the_runner() {
    // A 20 s limit is reached at once (the bootstrap stops a runner 20 s before its deadline);
    // 900 s is not reached by this test.
    for (limit, says) in [(20, true), (900, false)] {
        let fixture = Fixture::start(Options {
            provider: Some(Arc::new(TimeLimited {
                inner: LocalProvider::new(sleeper()).unwrap(),
                limit: Duration::from_secs(limit),
            })),
            ..Options::default()
        })
        .await;
        let input = fixture.queue_job(&["self-hosted", "linux"]);
        let job_id = input["job"]["id"].as_u64().unwrap();
        let execution = format!("job-limit-{limit}");
        let state = fixture.routed(&execution, &input).await;
        let runner = fixture.run(Step::Provision, state.clone()).await.unwrap();
        let runner_name = runner["runner_name"].as_str().unwrap().to_owned();
        let update = |kind, conclusion: Option<&str>| {
            job_event(
                kind,
                job_id,
                &runner_name,
                conclusion,
                &format!("d-{limit}"),
            )
        };
        fixture
            .flow
            .job_event(update(JobEventKind::Started, None))
            .await
            .unwrap();
        fixture
            .flow
            .job_event(update(JobEventKind::Completed, Some("failure")))
            .await
            .unwrap();
        let mut teardown = state;
        teardown["runner"] = runner;
        teardown["reason"] = json!("runner finished or idle");
        let output = fixture.run(Step::Teardown, teardown).await.unwrap();
        let summary = output["summary"].as_str().unwrap();
        let sentence = format!(
            "the Lambda function's timeout ({limit} s) ended the runner before the job finished"
        );
        assert_eq!(summary.contains(&sentence), says, "{summary}");
    }
}
