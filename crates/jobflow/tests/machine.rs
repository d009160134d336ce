//! The real `statemachines/job.asl.json` on the local engine, on virtual time. Runners are the
//! GitHub emulator's runner stand-in run as tasks of this process on the test's clock, so idle
//! deadlines, heartbeats and days of queueing pass at once while every timestamp shows them.
//! Webhooks go from the emulator through the webhook intake to the job flow, except those a
//! test holds back or drops.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{REPOSITORY, github_client};
use runway_asl::{
    ExecutionDescription, ExecutionStatus, HistoryEvent, ServiceError, StepFunctions, TaskRegistry,
};
use runway_clock::{SharedClock, VirtualClock};
use runway_github::{GitHub, RestGitHub, RunnerScope};
use runway_github_emulator::runner::{self, RunOutcome, RunnerOptions};
use runway_github_emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, JobStatus, NewJob, Scope, WebhookTarget,
};
use runway_jobflow::{
    Deps, FlowConfig, JobFlow, MAX_SLOT_WAITS, PoolConfig, RECHECK_BOUNDS,
    WAIT_AND_START_BUDGET_SECONDS,
};
use runway_providers::{
    LaunchRequest, Launched, OwnedRunner, Provider, ProviderError, ProviderKind, Terminated,
};
use runway_store::{
    ExecutionKey, MemoryStore, PoolName, RunnerName, RunnerState, SlotClaim, Store,
};
use runway_webhook::{
    ExecutionStarter, ForwardError, Intake, IntakeConfig, JobEventKind, JobEventUpdate, JobEvents,
    StartError, StartOutcome, WebhookSecrets,
};
use serde_json::Value;
use tokio::task::JoinHandle;

const PREFIX: &str = "runway-";
const SECRET: &str = "machine-test-secret";
const POOL: &str = "linux";
const RUNNER_LABELS: [&str; 3] = ["self-hosted", "linux", "x64"];
const JOB_LABELS: [&str; 2] = ["self-hosted", "linux"];
/// Step Functions ends an execution whose history reaches this many events.
const HISTORY_LIMIT: usize = 25_000;

// ---- runners as tasks of this process -------------------------------------------------------

/// How a runner's life ended.
#[derive(Debug, Clone, PartialEq)]
enum Ended {
    /// The runner stand-in returned by itself.
    Ran(RunOutcome),
    Failed(String),
    /// Terminated by the provider while it still ran.
    Killed,
}

#[derive(Debug)]
struct Running {
    execution: String,
    pool: String,
    instance_id: String,
    launched_at: DateTime<Utc>,
    task: JoinHandle<()>,
}

/// A provider whose runners are the emulator's runner stand-in, each a task on the test's
/// clock: terminating one aborts its task, as terminating an instance stops its runner.
#[derive(Debug)]
struct TaskRunners {
    url: String,
    clock: SharedClock,
    running: Mutex<BTreeMap<String, Running>>,
    ended: Arc<Mutex<BTreeMap<String, Ended>>>,
    launches: AtomicU64,
}

impl TaskRunners {
    fn new(url: &str, clock: SharedClock) -> TaskRunners {
        TaskRunners {
            url: url.to_owned(),
            clock,
            running: Mutex::default(),
            ended: Arc::default(),
            launches: AtomicU64::new(0),
        }
    }

    fn ended(&self, runner_name: &str) -> Option<Ended> {
        self.ended.lock().unwrap().get(runner_name).cloned()
    }

    fn launched_by(&self, execution: &str) -> Option<String> {
        self.running
            .lock()
            .unwrap()
            .iter()
            .find(|(_, running)| running.execution == execution)
            .map(|(name, _)| name.clone())
    }
}

fn runner_options(url: &str, jitconfig: &str, clock: &SharedClock) -> RunnerOptions {
    let mut options = RunnerOptions::new(Some(url.to_owned()), jitconfig);
    options.clock = clock.clone();
    options.poll_wait = Duration::from_secs(10);
    options
}

#[async_trait]
impl Provider for TaskRunners {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let options = runner_options(&self.url, request.jit_config.expose(), &self.clock);
        let ended = self.ended.clone();
        let name = request.runner_name.clone();
        let task = tokio::spawn(async move {
            let outcome = match runner::run(options).await {
                Ok(outcome) => Ended::Ran(outcome),
                Err(error) => Ended::Failed(error.to_string()),
            };
            ended.lock().unwrap().insert(name, outcome);
        });
        let number = self.launches.fetch_add(1, Ordering::Relaxed) + 1;
        let launched_at = self.clock.now();
        let instance_id = format!("task-{number}");
        self.running.lock().unwrap().insert(
            request.runner_name.clone(),
            Running {
                execution: request.execution,
                pool: request.pool,
                instance_id: instance_id.clone(),
                launched_at,
                task,
            },
        );
        Ok(Launched {
            runner_name: request.runner_name,
            provider: ProviderKind::Local,
            instance_id,
            instance_type: None,
            subnet_id: None,
            capacity: None,
            launched_at,
        })
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let mut running = self.running.lock().unwrap();
        let ours = running
            .get(runner_name)
            .is_some_and(|r| r.execution == execution);
        let Some(runner) = ours.then(|| running.remove(runner_name)).flatten() else {
            return Ok(Terminated::AlreadyGone);
        };
        if runner.task.is_finished() {
            return Ok(Terminated::AlreadyGone);
        }
        runner.task.abort();
        self.ended
            .lock()
            .unwrap()
            .insert(runner_name.to_owned(), Ended::Killed);
        Ok(Terminated::Stopped {
            instance_ids: vec![runner.instance_id],
        })
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        Ok(self
            .running
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, running)| !running.task.is_finished())
            .map(|(name, running)| OwnedRunner {
                provider: ProviderKind::Local,
                execution: running.execution.clone(),
                runner_name: name.clone(),
                pool: Some(running.pool.clone()),
                instance_id: running.instance_id.clone(),
                launched_at: Some(running.launched_at),
            })
            .collect())
    }
}

// ---- webhooks that come late or never ------------------------------------------------------

/// What happens to the webhook events a rule matches.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Never reaches runway (GitHub did not deliver it).
    Dropped,
    /// Reaches runway when the test says so.
    Held,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: JobEventKind,
    /// Only events naming this runner; every runner when `None`.
    runner_name: Option<String>,
    fate: Fate,
}

/// The job flow's event intake, with events a test drops or holds back.
#[derive(Debug)]
struct Forwarder {
    flow: JobFlow,
    rules: Mutex<Vec<Rule>>,
    held: Mutex<Vec<JobEventUpdate>>,
    dropped: Mutex<Vec<JobEventUpdate>>,
}

impl Forwarder {
    fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    async fn release_held(&self) {
        let held: Vec<JobEventUpdate> = std::mem::take(&mut *self.held.lock().unwrap());
        for update in held {
            self.flow.job_event(update).await.unwrap();
        }
    }
}

#[async_trait]
impl JobEvents for Forwarder {
    async fn job_event(&self, update: JobEventUpdate) -> Result<(), ForwardError> {
        let fate = self
            .rules
            .lock()
            .unwrap()
            .iter()
            .find(|rule| {
                rule.kind == update.kind
                    && rule
                        .runner_name
                        .as_ref()
                        .is_none_or(|name| update.runner_name.as_ref() == Some(name))
            })
            .map(|rule| rule.fate);
        match fate {
            Some(Fate::Dropped) => {
                self.dropped.lock().unwrap().push(update);
                Ok(())
            }
            Some(Fate::Held) => {
                self.held.lock().unwrap().push(update);
                Ok(())
            }
            None => self.flow.job_event(update).await,
        }
    }
}

#[derive(Debug)]
struct LocalStarter {
    sfn: StepFunctions,
    machine_arn: String,
}

#[async_trait]
impl ExecutionStarter for LocalStarter {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, StartError> {
        match self
            .sfn
            .start_execution(&self.machine_arn, Some(name), Some(input))
        {
            Ok(started) => Ok(StartOutcome::Started {
                execution_id: started.execution_arn,
            }),
            Err(ServiceError::ExecutionAlreadyExists(_)) => Ok(StartOutcome::AlreadyExists),
            Err(error) => Err(StartError::Rejected(error.to_string())),
        }
    }
}

// ---- the machine -----------------------------------------------------------------------------

struct Machine {
    clock: SharedClock,
    emulator: EmulatorHandle,
    store: Arc<MemoryStore>,
    github: Arc<RestGitHub>,
    runners: Arc<TaskRunners>,
    events: Arc<Forwarder>,
    sfn: StepFunctions,
    machine_arn: String,
    server: JoinHandle<()>,
}

fn pool() -> PoolConfig {
    PoolConfig::new(POOL, &RUNNER_LABELS)
}

impl Machine {
    async fn start(pool: PoolConfig) -> Machine {
        let clock = VirtualClock::new().shared();
        let emulator = Emulator::start(EmulatorConfig {
            clock: clock.clone(),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let github = Arc::new(github_client(&emulator, clock.clone()));
        let runners = Arc::new(TaskRunners::new(emulator.base_url(), clock.clone()));
        let registry = TaskRegistry::new();
        let sfn = StepFunctions::new(clock.clone(), registry.clone());
        let flow = JobFlow::new(
            Deps {
                store: store.clone(),
                github: github.clone(),
                providers: BTreeMap::from([(
                    POOL.to_owned(),
                    runners.clone() as Arc<dyn Provider>,
                )]),
                router: None,
                throttle: None,
                callbacks: Arc::new(sfn.clone()),
                clock: clock.clone(),
                metrics: runway_jobflow::metrics::discard(),
            },
            FlowConfig {
                pools: vec![pool],
                ..FlowConfig::default()
            },
        )
        .unwrap();
        flow.register_tasks(&registry, PREFIX);
        let template = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../statemachines/job.asl.json"),
        )
        .unwrap();
        let definition =
            runway_asl::definition::substitute(&template, &JobFlow::local_substitutions(PREFIX))
                .unwrap();
        let machine_arn = sfn
            .create_state_machine("runway-job", &definition, None)
            .unwrap()
            .arn;
        let events = Arc::new(Forwarder {
            flow: flow.clone(),
            rules: Mutex::default(),
            held: Mutex::default(),
            dropped: Mutex::default(),
        });
        let intake = Intake::new(
            IntakeConfig::new(WebhookSecrets::new(SECRET).unwrap()),
            Arc::new(LocalStarter {
                sfn: sfn.clone(),
                machine_arn: machine_arn.clone(),
            }),
        )
        .with_job_events(events.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, runway_webhook::router(intake))
                .await
                .unwrap();
        });
        emulator.set_webhook(Some(WebhookTarget {
            url: format!("http://{address}{}", runway_webhook::WEBHOOK_PATH),
            secret: SECRET.into(),
        }));
        Machine {
            clock,
            emulator,
            store,
            github,
            runners,
            events,
            sfn,
            machine_arn,
            server,
        }
    }

    fn queue_job(&self, lasting: Duration) -> u64 {
        self.emulator
            .create_job(NewJob::new(REPOSITORY, &JOB_LABELS).lasting(lasting))
            .unwrap()
            .job_id
    }

    /// Polls `check` every virtual second until it answers, for at most `limit`.
    async fn until<T>(
        &self,
        limit: Duration,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = self.clock.now() + chrono::Duration::from_std(limit).unwrap();
        loop {
            if let Some(found) = check() {
                return found;
            }
            assert!(self.clock.now() < deadline, "{what}: not within {limit:?}");
            self.clock.sleep(Duration::from_secs(1)).await;
        }
    }

    /// The execution the queued webhook of `job_id` started.
    async fn execution_of(&self, job_id: u64) -> String {
        let prefix = format!("job-{job_id}-r");
        self.until(
            Duration::from_secs(60),
            "the queued webhook starts an execution",
            || {
                self.sfn
                    .list_executions(&self.machine_arn, None)
                    .unwrap()
                    .into_iter()
                    .find(|execution| execution.name.starts_with(&prefix))
                    .map(|execution| execution.execution_arn)
            },
        )
        .await
    }

    fn history(&self, arn: &str) -> Vec<HistoryEvent> {
        self.sfn.get_execution_history(arn, false).unwrap()
    }

    async fn finished(&self, arn: &str, limit: Duration) -> ExecutionDescription {
        match tokio::time::timeout(limit, self.sfn.await_execution(arn)).await {
            Ok(done) => done.unwrap(),
            Err(_) => {
                let entered: Vec<String> = entered(&self.history(arn))
                    .into_iter()
                    .map(|(name, at)| format!("{at} {name}"))
                    .collect();
                panic!("the execution did not finish within {limit:?}: {entered:#?}")
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The states an execution entered, in order, with when.
fn entered(history: &[HistoryEvent]) -> Vec<(String, DateTime<Utc>)> {
    history
        .iter()
        .filter(|event| event.event_type.ends_with("StateEntered"))
        .filter_map(|event| {
            let name = event.detail()?.get("name")?.as_str()?;
            Some((name.to_owned(), event.timestamp))
        })
        .collect()
}

fn first_entry(history: &[HistoryEvent], state: &str) -> Option<DateTime<Utc>> {
    entered(history)
        .into_iter()
        .find(|(name, _)| name == state)
        .map(|(_, at)| at)
}

fn output(description: &ExecutionDescription) -> Value {
    serde_json::from_str(description.output.as_deref().unwrap_or("null")).unwrap()
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds()
}

async fn assert_nothing_left(machine: &Machine, arn: &str, runner_name: &str) {
    let name = arn.rsplit(':').next().unwrap();
    let execution = ExecutionKey::new(name).unwrap();
    assert_eq!(
        machine.store.slot_holder(&execution).await.unwrap(),
        None,
        "the slot is released"
    );
    let record = machine
        .store
        .get_runner(&RunnerName::new(runner_name).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RunnerState::Gone);
    assert!(
        machine
            .runners
            .owned()
            .await
            .unwrap()
            .iter()
            .all(|owned| owned.runner_name != runner_name),
        "{runner_name} is not left running"
    );
    assert!(
        machine
            .github
            .list_runners(
                &RunnerScope::repository("octo-org", "app"),
                Some(runner_name)
            )
            .await
            .unwrap()
            .is_empty(),
        "{runner_name} is not left on GitHub"
    );
}

// ---- the tests -------------------------------------------------------------------------------

/// A runner reaches its idle deadline just as it takes a job, and the webhook saying so comes
/// after the deadline. Teardown asks GitHub to remove it first; GitHub refuses (it is busy), so
/// its host is not terminated: the execution follows it until the job ends and it leaves.
#[tokio::test(start_paused = true)]
async fn a_runner_that_takes_a_job_at_its_idle_deadline_finishes_the_job() {
    let mut pool = pool();
    pool.max_running = 2;
    let machine = Machine::start(pool).await;
    let clock = machine.clock.clone();

    // A runner that is not runway's takes the first job, so the runner launched for that job
    // registers, finds nothing to do, and idles.
    let outside = machine
        .emulator
        .generate_jitconfig(
            Scope::repository("octo-org", "app"),
            "outside-runner",
            &RUNNER_LABELS,
        )
        .unwrap();
    let options = runner_options(
        machine.emulator.base_url(),
        &outside.encoded_jit_config,
        &clock,
    );
    tokio::spawn(async move {
        let _ = runner::run(options).await;
    });
    machine
        .emulator
        .wait_for_runners(Duration::from_secs(30), |runners| {
            runners
                .iter()
                .any(|r| r.name == "outside-runner" && r.status == "online")
        })
        .await
        .expect("the outside runner comes online");
    let first_job = machine.queue_job(Duration::from_secs(30));
    let execution = machine.execution_of(first_job).await;
    let execution_name = execution.rsplit(':').next().unwrap().to_owned();
    let idle_since = machine
        .until(Duration::from_secs(900), "the runner idles", || {
            first_entry(&machine.history(&execution), "AwaitJobUntilIdleDeadline")
        })
        .await;
    let runner_name = machine.runners.launched_by(&execution_name).unwrap();
    let deadline = idle_since + chrono::Duration::seconds(300);

    // Its in_progress webhook reaches runway only after the deadline.
    machine.events.add(Rule {
        kind: JobEventKind::Started,
        runner_name: Some(runner_name.clone()),
        fate: Fate::Held,
    });
    clock
        .sleep_until(deadline - chrono::Duration::seconds(2))
        .await;
    let second_job = machine.queue_job(Duration::from_secs(120));
    let started = machine
        .until(
            Duration::from_secs(2),
            "the idle runner starts the new job",
            || {
                machine
                    .emulator
                    .job(second_job)
                    .filter(|job| job.status == JobStatus::InProgress)
            },
        )
        .await;
    assert_eq!(started.runner_name.as_deref(), Some(runner_name.as_str()));
    machine
        .until(
            Duration::from_secs(30),
            "teardown at the idle deadline",
            || first_entry(&machine.history(&execution), "Teardown"),
        )
        .await;
    clock.sleep(Duration::from_secs(5)).await;
    machine.events.release_held().await;

    let done = machine
        .finished(&execution, Duration::from_secs(3600))
        .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
    let ran = machine.emulator.job(second_job).unwrap();
    assert_eq!(ran.status, JobStatus::Completed);
    assert_eq!(ran.conclusion.as_deref(), Some("success"), "{ran:?}");
    assert_eq!(ran.runner_name.as_deref(), Some(runner_name.as_str()));
    assert_eq!(
        machine.runners.ended(&runner_name),
        Some(Ended::Ran(RunOutcome::Completed {
            job_id: second_job,
            conclusion: "success".into()
        })),
        "the runner ran its job to the end; its host was not terminated under it"
    );
    // The console says why the execution went back to following its runner.
    let history = machine.history(&execution);
    let busy = history
        .iter()
        .find(|event| {
            // A Task naming a function's ARN fails as `LambdaFunctionFailed`, one through
            // `lambda:invoke` as `TaskFailed`.
            matches!(
                event.event_type.as_str(),
                "TaskFailed" | "LambdaFunctionFailed"
            ) && event.detail().and_then(|d| d.get("error")) == Some(&"Runway.RunnerBusy".into())
        })
        .expect("teardown reported the runner busy");
    let cause = busy.detail().unwrap()["cause"].as_str().unwrap();
    assert!(
        cause.contains(&runner_name) && cause.contains("not terminated"),
        "{cause}"
    );
    let teardowns = entered(&history)
        .into_iter()
        .filter(|(name, _)| name == "Teardown")
        .count();
    assert!(teardowns >= 2, "teardown ran again once the runner left");
    assert_nothing_left(&machine, &execution, &runner_name).await;

    // The second job's own execution ends too: its runner idled to its deadline.
    let second = machine.execution_of(second_job).await;
    let done = machine.finished(&second, Duration::from_secs(3600)).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
}

/// The `completed` webhook of a job is lost. The runner's wait re-checks GitHub every 15
/// minutes and the job's every hour, so the slot is released and the runner torn down within
/// 15 minutes of the job's end, and the execution ends within the hour, not after 5 days.
#[tokio::test(start_paused = true)]
async fn a_lost_completed_webhook_holds_the_slot_at_most_one_heartbeat() {
    let machine = Machine::start(pool()).await;
    machine.events.add(Rule {
        kind: JobEventKind::Completed,
        runner_name: None,
        fate: Fate::Dropped,
    });
    let job = machine.queue_job(Duration::from_secs(600));
    let execution = machine.execution_of(job).await;
    let completed = machine
        .emulator
        .wait_for_job(job, JobStatus::Completed, Duration::from_secs(3600))
        .await
        .expect("the job runs to its end");
    let completed_at = completed.completed_at.unwrap();

    let done = machine
        .finished(&execution, Duration::from_secs(2 * 3600))
        .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
    assert_eq!(
        machine.events.dropped.lock().unwrap().len(),
        1,
        "the completed webhook was lost"
    );
    let history = machine.history(&execution);
    let released = first_entry(&history, "Release").unwrap();
    assert!(
        seconds(completed_at, released) <= 900 + 60,
        "the slot was released {} s after the job ended",
        seconds(completed_at, released)
    );
    assert!(
        seconds(completed_at, done.stop_date.unwrap()) <= 3600 + 60,
        "the execution ended {} s after the job",
        seconds(completed_at, done.stop_date.unwrap())
    );
    let result = output(&done);
    // GitHub, asked on the re-check, says the runner ran this job: it is done too.
    assert_eq!(result["runner_status"]["status"], "gone", "{result:#}");
    assert_eq!(result["runner_status"]["job_id"], job, "{result:#}");
    let runner_name = result["runner"]["runner_name"].as_str().unwrap().to_owned();
    assert_eq!(
        machine.runners.ended(&runner_name),
        Some(Ended::Ran(RunOutcome::Completed {
            job_id: job,
            conclusion: "success".into()
        }))
    );
    assert_nothing_left(&machine, &execution, &runner_name).await;
}

/// A job waits for a slot as long as its pool allows, re-checked from every second upwards:
/// the re-check interval doubles to its bound, the execution ends with a clear cause at the
/// pool's `max_wait_seconds`, and its history stays far below Step Functions' 25,000 events,
/// as it would even if it were sent back to the queue the most times an execution may be.
#[tokio::test(start_paused = true)]
async fn the_longest_allowed_wait_for_a_slot_stays_within_the_history_limit() {
    let mut pool = pool();
    pool.max_running = 1;
    pool.recheck_after_seconds = RECHECK_BOUNDS.0;
    // The longest wait a pool may configure.
    pool.max_wait_seconds =
        WAIT_AND_START_BUDGET_SECONDS - u32::try_from(pool.runner_start_seconds()).unwrap();
    let mut longer = FlowConfig {
        pools: vec![pool.clone()],
        ..FlowConfig::default()
    };
    longer.validate().unwrap();
    longer.pools[0].max_wait_seconds += 1;
    let refused = longer.validate().unwrap_err().to_string();
    assert!(refused.contains("pools[0].max_wait_seconds"), "{refused}");

    let machine = Machine::start(pool.clone()).await;
    // Another job holds the pool's only slot for the whole wait.
    machine
        .store
        .acquire_slot(&SlotClaim {
            execution: ExecutionKey::new("job-1-r1-a1").unwrap(),
            pool: PoolName::new(POOL).unwrap(),
            org: "octo-org".parse().unwrap(),
            repo: "octo-org/app".parse().unwrap(),
            ceilings: pool.ceilings().to_store(),
        })
        .await
        .unwrap();
    let job = machine.queue_job(Duration::from_secs(60));
    let execution = machine.execution_of(job).await;
    let started = machine.clock.now();
    let done = loop {
        match tokio::time::timeout(
            Duration::from_secs(3600),
            machine.sfn.await_execution(&execution),
        )
        .await
        {
            Ok(done) => break done.unwrap(),
            Err(_) => {
                let written = machine.history(&execution).len();
                if written > HISTORY_LIMIT {
                    machine.sfn.stop_execution(&execution, None, None).unwrap();
                    panic!(
                        "after {} h of waiting the execution's history has {written} events, \
                         more than Step Functions keeps",
                        seconds(started, machine.clock.now()) / 3600
                    );
                }
            }
        }
    };
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:#?}");
    let cause = done.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("Runway.WaitedTooLong") && cause.contains("max_wait_seconds"),
        "{cause}"
    );
    let waited = seconds(started, done.stop_date.unwrap());
    assert!(
        // `started` is read after the execution began, so the measured wait may fall a
        // little short of the one the execution counted.
        (i64::from(pool.max_wait_seconds) - 60..=i64::from(pool.max_wait_seconds) + 60)
            .contains(&waited),
        "the job waited {waited} s"
    );
    // Nothing of it is left in the pool.
    let pool_name = PoolName::new(POOL).unwrap();
    assert!(machine.store.waiters(&pool_name).await.unwrap().is_empty());
    let name = execution.rsplit(':').next().unwrap();
    assert_eq!(
        machine
            .store
            .slot_holder(&ExecutionKey::new(name).unwrap())
            .await
            .unwrap(),
        None
    );

    // The waits follow the doubling schedule: 1, 2, 4, ... 512, then 900 s to the deadline.
    let mut expected_waits = 0u64;
    let mut elapsed = 0u64;
    let mut interval = u64::from(RECHECK_BOUNDS.0);
    while elapsed < u64::from(pool.max_wait_seconds) {
        expected_waits += 1;
        elapsed += interval.min(u64::from(pool.max_wait_seconds) - elapsed);
        interval = (interval * 2).min(u64::from(RECHECK_BOUNDS.1));
    }
    let history = machine.history(&execution);
    let waits: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, event)| {
            event.event_type == "TaskStateEntered"
                && event.detail().and_then(|d| d.get("name")) == Some(&"WaitForSlot".into())
        })
        .map(|(index, _)| index)
        .collect();
    assert_eq!(
        waits.len() as u64,
        expected_waits,
        "waits on the doubling schedule"
    );
    // Each wait writes the same events (the wait, its timeout, the admission and its choice).
    let per_wait = waits[1] - waits[0];
    assert!(waits.windows(2).all(|pair| pair[1] - pair[0] == per_wait));
    let before_and_after = history.len() - waits.len() * per_wait;
    let worst_case = before_and_after + MAX_SLOT_WAITS as usize * per_wait;
    println!(
        "longest wait: {} waits, {} events ({per_wait} a wait); at most {MAX_SLOT_WAITS} waits: \
         {worst_case} events",
        waits.len(),
        history.len()
    );
    assert!(history.len() < HISTORY_LIMIT);
    assert!(
        worst_case < HISTORY_LIMIT / 2,
        "{MAX_SLOT_WAITS} waits write {worst_case} events, leaving too little of Step \
         Functions' {HISTORY_LIMIT} for the runner and the job"
    );
}

/// A job whose webhooks all arrive: the states it passes through, what Step Functions bills
/// (at most 12 a job).
#[tokio::test(start_paused = true)]
async fn a_happy_path_job_takes_11_state_transitions() {
    let machine = Machine::start(pool()).await;
    let job = machine.queue_job(Duration::from_secs(30));
    let execution = machine.execution_of(job).await;
    let done = machine
        .finished(&execution, Duration::from_secs(3600))
        .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
    let states: Vec<String> = entered(&machine.history(&execution))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(states, runway_jobflow::HAPPY_PATH);
    let result = output(&done);
    let runner_name = result["runner"]["runner_name"].as_str().unwrap().to_owned();
    assert_nothing_left(&machine, &execution, &runner_name).await;
}
