//! The real `statemachines/job.asl.json` on the local Step Functions engine, with every step
//! registered from the job flow: a job queued in the GitHub emulator reaches the webhook
//! intake, starts an execution, gets a runner (`runner-sim`, a real process), runs on it, and
//! the execution ends in Done with the runner gone and the slot released.
//!
//! This file has its own `main` (libtest-mimic, so the test runner's arguments work as usual):
//! launched as `<this test> runner-sim`, it is the simulated runner the local provider starts.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use libtest_mimic::{Failed, Trial};
use runway_asl::{ExecutionStatus, ServiceError, StepFunctions, TaskRegistry};
use runway_clock::SystemClock;
use runway_github::{Credentials, GitHub, RestGitHub, RunnerScope, Secret};
use runway_github_emulator::runner::{self, RunOutcome, RunnerOptions};
use runway_github_emulator::{Emulator, EmulatorConfig, JobStatus, NewJob, WebhookTarget};
use runway_jobflow::{Deps, FlowConfig, JobFlow, PoolConfig};
use runway_providers::{JITCONFIG_ENV, LocalConfig, LocalProvider, Provider};
use runway_store::{ExecutionKey, MemoryStore, PoolName, RunnerName, RunnerState, Store};
use runway_webhook::{
    ExecutionStarter, Intake, IntakeConfig, StartError, StartOutcome, WebhookSecrets,
};

const PREFIX: &str = "runway-";
const SECRET: &str = "engine-test-secret";

fn main() -> ExitCode {
    // The simulated runner is this executable started again; it takes no test arguments.
    if std::env::args().nth(1).as_deref() == Some("runner-sim") {
        return runner_sim();
    }
    // Everything else is the usual test runner's command line: `--list`, filters, `--exact`,
    // `--ignored`, `--nocapture`, `--format`, ...
    let arguments = libtest_mimic::Arguments::from_args();
    let trials = vec![Trial::test(
        "a_job_runs_through_the_state_machine_to_done",
        || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|error| Failed::from(format!("no tokio runtime: {error}")))?;
            runtime.block_on(a_job_runs_through_the_state_machine_to_done());
            Ok(())
        },
    )];
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// The simulated runner: registers with the JIT config, runs one job, exits.
fn runner_sim() -> ExitCode {
    let Ok(jitconfig) = std::env::var(JITCONFIG_ENV) else {
        eprintln!("runner-sim: {JITCONFIG_ENV} is not set");
        return ExitCode::FAILURE;
    };
    let url = std::env::var("RUNWAY_GITHUB_URL").ok();
    let mut options = RunnerOptions::new(url, jitconfig);
    options.poll_wait = Duration::from_secs(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(runner::run(options)) {
        Ok(RunOutcome::Completed { job_id, conclusion }) => {
            println!("job {job_id} completed: {conclusion}");
            ExitCode::SUCCESS
        }
        Ok(other) => {
            println!("{other:?}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("runner-sim: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Starts job executions on the local engine, as Step Functions would.
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

async fn a_job_runs_through_the_state_machine_to_done() {
    let clock = SystemClock::shared();
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let github = Arc::new(
        RestGitHub::new(
            emulator.api_url(),
            Credentials::Token(Secret::new("engine-test")),
            clock.clone(),
        )
        .unwrap(),
    );
    let mut local = LocalConfig::runner_sim().unwrap();
    local.url = Some(emulator.base_url().to_owned());
    local.grace = Duration::from_secs(2);
    let provider: Arc<dyn Provider> = Arc::new(LocalProvider::new(local).unwrap());

    let registry = TaskRegistry::new();
    let sfn = StepFunctions::new(clock.clone(), registry.clone());
    let mut pool = PoolConfig::new("linux", &["self-hosted", "linux", "x64"]);
    pool.max_running = 1;
    pool.boot_timeout_seconds = 60;
    pool.idle_timeout_seconds = 60;
    let config = FlowConfig {
        pools: vec![pool],
        ..FlowConfig::default()
    };
    let flow = JobFlow::new(
        Deps {
            store: store.clone(),
            github: github.clone(),
            providers: BTreeMap::from([("linux".to_string(), provider.clone())]),
            router: None,
            throttle: None,
            callbacks: Arc::new(sfn.clone()),
            clock: clock.clone(),
            metrics: runway_jobflow::metrics::discard(),
        },
        config,
    )
    .unwrap();
    flow.register_tasks(&registry, PREFIX);

    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines/job.asl.json"),
    )
    .unwrap();
    let definition =
        runway_asl::definition::substitute(&template, &JobFlow::local_substitutions(PREFIX))
            .unwrap();
    let machine_arn = sfn
        .create_state_machine("runway-job", &definition, None)
        .unwrap()
        .arn;

    // The webhook intake on 127.0.0.1, forwarding job events to the flow.
    let intake = Intake::new(
        IntakeConfig::new(WebhookSecrets::new(SECRET).unwrap()),
        Arc::new(LocalStarter {
            sfn: sfn.clone(),
            machine_arn: machine_arn.clone(),
        }),
    )
    .with_job_events(Arc::new(flow.clone()));
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

    let job = emulator
        .create_job(
            NewJob::new("octo-org/app", &["self-hosted", "linux"])
                .lasting(Duration::from_millis(500)),
        )
        .unwrap();

    // The queued webhook starts the execution.
    let execution = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(execution) = sfn
                .list_executions(&machine_arn, None)
                .unwrap()
                .into_iter()
                .next()
            {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the queued webhook never started an execution");
    assert!(
        execution.name.starts_with(&format!("job-{}-r", job.job_id)),
        "{}",
        execution.name
    );

    let done = tokio::time::timeout(
        Duration::from_secs(90),
        sfn.await_execution(&execution.execution_arn),
    )
    .await
    .unwrap_or_else(|_| {
        let history = sfn
            .get_execution_history(&execution.execution_arn, false)
            .unwrap();
        panic!("the execution did not finish: {history:#?}")
    })
    .unwrap();
    let history = sfn
        .get_execution_history(&execution.execution_arn, false)
        .unwrap();
    assert_eq!(
        done.status,
        ExecutionStatus::Succeeded,
        "{done:#?}\n{history:#?}"
    );
    let output: serde_json::Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["route"]["pool"], "linux", "{output:#}");
    assert_eq!(output["admission"]["decision"], "admit");
    assert_eq!(output["admission"]["job"]["status"], "queued", "{output:#}");
    // The runner left after running this job: the job is done too.
    assert_eq!(output["runner_status"]["status"], "gone", "{output:#}");
    assert_eq!(output["runner_status"]["job_id"], job.job_id, "{output:#}");
    assert!(
        output["release"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("job done"),
        "{output:#}"
    );
    let runner_name = output["runner"]["runner_name"].as_str().unwrap().to_owned();
    let history_text = serde_json::to_string(&history).unwrap();
    assert!(
        history_text.contains("\"Done\""),
        "the execution ended in Done"
    );

    // The job ran on the runner launched for it; nothing is left.
    let ran = emulator.job(job.job_id).unwrap();
    assert_eq!(ran.status, JobStatus::Completed);
    assert_eq!(ran.conclusion.as_deref(), Some("success"));
    assert_eq!(ran.runner_name.as_deref(), Some(runner_name.as_str()));
    let record = store
        .get_runner(&RunnerName::new(runner_name.as_str()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RunnerState::Gone);
    assert!(provider.owned().await.unwrap().is_empty());
    assert!(
        github
            .list_runners(&RunnerScope::repository("octo-org", "app"), None)
            .await
            .unwrap()
            .is_empty()
    );
    let execution_key = ExecutionKey::new(execution.name.as_str()).unwrap();
    assert_eq!(store.slot_holder(&execution_key).await.unwrap(), None);
    let load = store
        .load(
            &PoolName::new("linux").unwrap(),
            &"octo-org".parse().unwrap(),
            &"octo-org/app".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(load.pool_running, 0, "the slot is released");
    server.abort();
}
