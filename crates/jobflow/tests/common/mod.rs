//! What the job flow tests share: the GitHub emulator behind the real REST client, the
//! in-memory store, local process runners, and a local Step Functions service whose
//! `.waitForTaskToken` tasks hand out real task tokens.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runway_asl::{ExecutionDescription, ExecutionStatus, StepFunctions, TaskRegistry};
use runway_clock::{SharedClock, SystemClock};
use runway_github::{Credentials, RestGitHub, RetryPolicy, Secret};
use runway_github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, NewJob};
use runway_jobflow::{Deps, FlowConfig, JobFlow, PoolConfig, Step, StepError};
use runway_policy_host::{EngineConfig, PolicyEngine, RouterPolicy, ThrottlePolicy};
use runway_providers::{LocalConfig, LocalProvider, Provider};
use runway_store::{MemoryStore, Store};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const REPOSITORY: &str = "octo-org/app";
pub const REPOSITORY_ID: u64 = 4242;
pub const POOL: &str = "linux";

/// A pool of the emulator's `self-hosted, linux` runners.
pub fn linux_pool() -> PoolConfig {
    let mut pool = PoolConfig::new(POOL, &["self-hosted", "linux", "x64"]);
    pool.max_running = 1;
    pool
}

pub fn config(pools: Vec<PoolConfig>) -> FlowConfig {
    FlowConfig {
        pools,
        ..FlowConfig::default()
    }
}

/// A runner process that lives until it is terminated.
pub fn sleeper() -> LocalConfig {
    let mut config = LocalConfig::new(vec!["sleep".into(), "120".into()]);
    config.grace = Duration::from_secs(2);
    config
}

/// Parks `.waitForTaskToken` tasks and hands their tokens to the test.
pub struct Tokens {
    pub sfn: StepFunctions,
    machine: String,
    pending: Arc<Mutex<BTreeMap<String, oneshot::Sender<String>>>>,
}

pub struct Parked {
    pub execution_arn: String,
    pub token: String,
}

impl Tokens {
    pub fn new(clock: SharedClock) -> Tokens {
        let registry = TaskRegistry::new();
        let pending: Arc<Mutex<BTreeMap<String, oneshot::Sender<String>>>> = Arc::default();
        let senders = pending.clone();
        registry.register("park", move |request: runway_asl::TaskRequest| {
            let senders = senders.clone();
            async move {
                let name = request.context["Execution"]["Name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let token = request.task_token.clone().unwrap_or_default();
                if let Some(sender) = senders.lock().unwrap().remove(&name) {
                    let _ = sender.send(token);
                }
                Ok(json!({}))
            }
        });
        let sfn = StepFunctions::new(clock, registry);
        let definition = json!({
            "StartAt": "Park",
            "States": {"Park": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "park", "Payload": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 120,
                "End": true
            }}
        });
        let machine = sfn
            .create_state_machine("park", &definition.to_string(), None)
            .unwrap()
            .arn;
        Tokens {
            sfn,
            machine,
            pending,
        }
    }

    /// Starts an execution that waits on a task token; returns the token.
    pub async fn park(&self, name: &str) -> Parked {
        let (sender, receiver) = oneshot::channel();
        self.pending.lock().unwrap().insert(name.to_owned(), sender);
        let started = self
            .sfn
            .start_execution(&self.machine, Some(name), Some("{}"))
            .unwrap();
        let token = tokio::time::timeout(Duration::from_secs(10), receiver)
            .await
            .expect("the parked task never ran")
            .unwrap();
        Parked {
            execution_arn: started.execution_arn,
            token,
        }
    }

    /// The output the parked task was completed with (bounded wait).
    pub async fn outcome(&self, parked: &Parked) -> ExecutionDescription {
        tokio::time::timeout(
            Duration::from_secs(20),
            self.sfn.await_execution(&parked.execution_arn),
        )
        .await
        .expect("the parked task was never completed")
        .unwrap()
    }

    pub fn output(&self, description: &ExecutionDescription) -> Value {
        assert_eq!(
            description.status,
            ExecutionStatus::Succeeded,
            "{description:?}"
        );
        serde_json::from_str(description.output.as_deref().unwrap()).unwrap()
    }

    pub fn is_running(&self, parked: &Parked) -> bool {
        self.sfn
            .describe_execution(&parked.execution_arn)
            .unwrap()
            .status
            == ExecutionStatus::Running
    }
}

pub struct Fixture {
    pub emulator: EmulatorHandle,
    pub store: Arc<MemoryStore>,
    pub github: Arc<RestGitHub>,
    pub provider: Arc<dyn Provider>,
    pub tokens: Tokens,
    pub flow: JobFlow,
    pub clock: SharedClock,
    /// What the steps measured.
    pub metrics: runway_jobflow::metrics::Recorded,
}

pub struct Options {
    pub config: FlowConfig,
    pub router: Option<RouterPolicy>,
    pub throttle: Option<ThrottlePolicy>,
    pub provider: Option<Arc<dyn Provider>>,
    /// The job flow's and the store's clock; the system clock when absent.
    pub clock: Option<SharedClock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: config(vec![linux_pool()]),
            router: None,
            throttle: None,
            provider: None,
            clock: None,
        }
    }
}

pub fn github_client(emulator: &EmulatorHandle, clock: SharedClock) -> RestGitHub {
    RestGitHub::new(
        emulator.api_url(),
        Credentials::Token(Secret::new("test-token")),
        clock,
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        max_rate_limit_wait: Duration::ZERO,
        ..RetryPolicy::default()
    })
}

impl Fixture {
    pub async fn start(options: Options) -> Fixture {
        let clock = options.clock.clone().unwrap_or_else(SystemClock::shared);
        let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let github = Arc::new(github_client(&emulator, clock.clone()));
        let provider: Arc<dyn Provider> = options
            .provider
            .unwrap_or_else(|| Arc::new(LocalProvider::new(sleeper()).unwrap()));
        let tokens = Tokens::new(clock.clone());
        let metrics = runway_jobflow::metrics::Recorded::new();
        let providers = options
            .config
            .pools
            .iter()
            .map(|pool| (pool.name.clone(), provider.clone()))
            .collect();
        let flow = JobFlow::new(
            Deps {
                store: store.clone(),
                github: github.clone(),
                providers,
                router: options.router,
                throttle: options.throttle,
                callbacks: Arc::new(tokens.sfn.clone()),
                clock: clock.clone(),
                metrics: Arc::new(metrics.clone()),
            },
            options.config,
        )
        .unwrap();
        Fixture {
            emulator,
            store,
            github,
            provider,
            tokens,
            flow,
            clock,
            metrics,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Queues a job in the emulator; returns its execution input.
    pub fn queue_job(&self, labels: &[&str]) -> Value {
        let created = self
            .emulator
            .create_job(NewJob::new(REPOSITORY, labels))
            .unwrap();
        job_input(created.job_id, created.run_id, labels)
    }

    pub async fn run(&self, step: Step, input: Value) -> Result<Value, StepError> {
        self.flow.run(step, input).await
    }

    /// Routes the job of `input` and returns `{execution, input, route}`.
    pub async fn routed(&self, execution: &str, input: &Value) -> Value {
        let route = self
            .run(Step::Route, json!({"execution": execution, "input": input}))
            .await
            .unwrap();
        assert_eq!(route["decision"], "run", "{route}");
        json!({"execution": execution, "input": input, "route": route})
    }
}

/// A job execution input as the webhook intake builds it.
pub fn job_input(job_id: u64, run_id: u64, labels: &[&str]) -> Value {
    json!({
        "job": {
            "id": job_id,
            "run_id": run_id,
            "run_attempt": 1,
            "name": "build",
            "workflow_name": "CI",
            "labels": labels,
            "head_branch": "main",
            "html_url": null,
            "created_at": null
        },
        "repository": {
            "id": REPOSITORY_ID,
            "owner": "octo-org",
            "name": "app",
            "full_name": REPOSITORY,
            "private": true
        },
        "organization": "octo-org",
        "installation_id": 1,
        "delivery_id": "delivery-1"
    })
}

pub fn policy_engine() -> &'static PolicyEngine {
    static ENGINE: std::sync::OnceLock<PolicyEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::new(EngineConfig::default()).unwrap())
}

pub fn load_router(relative: &str) -> RouterPolicy {
    let path = runway_testkit::built_policy(relative).unwrap();
    policy_engine().load_file(&path).unwrap().router().unwrap()
}

pub fn load_throttle(relative: &str) -> ThrottlePolicy {
    let path = runway_testkit::built_policy(relative).unwrap();
    policy_engine()
        .load_file(&path)
        .unwrap()
        .throttle()
        .unwrap()
}
