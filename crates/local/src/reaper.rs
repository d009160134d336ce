//! The reaper, as its schedule runs it on AWS: `statemachines/reaper.asl.json` on the local
//! engine, one execution per pass, from `[reaper]` on a timer or from a fault campaign.

use std::sync::Arc;
use std::time::Duration;

use runway_asl::{ExecutionStatus, StepFunctions};
use runway_clock::SystemClock;
use runway_github::{Credentials, GitHub, RestGitHub, RunnerScope, Secret};
use runway_reaper::{
    LOCAL_REAP_FUNCTION, LocalExecutions, Reaper, ReaperConfig, ReaperDeps, local_definition,
};
use runway_webhook::JobFilter;
use serde_json::Value;

use crate::starter::SfnStarter;
use crate::system::{LocalError, LocalSystem};

/// The longest one reaper pass may take.
const PASS_TIMEOUT: Duration = Duration::from_secs(300);

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pass {
    /// Things terminated, removed, released or started, over all sweeps.
    pub acted: u64,
    /// Every sweep ran to its end.
    pub swept: bool,
}

/// Runs reaper passes against a [`LocalSystem`].
pub(crate) struct Sweeper {
    service: StepFunctions,
    machine_arn: String,
    passes: u32,
}

impl Sweeper {
    /// Registers the reaper with the system's engine. `grace` is the reaper's
    /// `grace_seconds`: what is younger is left alone. With the emulator, `repositories` are
    /// the ones it serves; against GitHub, none (the installation's recently active ones).
    pub fn new(
        system: &LocalSystem,
        repositories: &[String],
        grace: Duration,
    ) -> Result<Sweeper, LocalError> {
        let setup = |message: String| LocalError::Setup(message);
        // As the reaper Lambda is built: its own GitHub client with the standard retries.
        let (github, installation_id): (Arc<dyn GitHub>, _) = match system.emulator() {
            Some(emulator) => (
                Arc::new(
                    RestGitHub::new(
                        emulator.api_url(),
                        Credentials::Token(Secret::new("runway-local-reaper")),
                        SystemClock::shared(),
                    )
                    .map_err(|error| setup(error.to_string()))?,
                ),
                Some(runway_github_emulator::AppConfig::default().installation_id),
            ),
            None => (system.github().clone(), None),
        };
        let github_scopes = repositories
            .iter()
            .filter_map(|full| full.split_once('/'))
            .map(|(owner, repo)| RunnerScope::repository(owner, repo))
            .collect();
        let config = ReaperConfig {
            grace_seconds: grace.as_secs(),
            github_scopes,
            repositories: repositories.to_vec(),
            ..ReaperConfig::default()
        };
        let executions = LocalExecutions::new(system.service().clone(), system.machine_arn())
            .map_err(|error| setup(error.to_string()))?;
        let reaper = Reaper::new(
            ReaperDeps {
                flow: system.flow().clone(),
                store: system.store().clone(),
                github,
                providers: system.providers().clone(),
                executions: Arc::new(executions),
                starter: Arc::new(SfnStarter::new(
                    system.service().clone(),
                    system.machine_arn(),
                )),
                job_filter: JobFilter::default(),
                installation_id,
                clock: SystemClock::shared(),
            },
            config,
        )
        .map_err(|error| setup(error.to_string()))?;
        let service = system.service().clone();
        reaper.register_task(service.tasks(), LOCAL_REAP_FUNCTION);
        let machine = service
            .create_state_machine("reaper", &local_definition(LOCAL_REAP_FUNCTION), None)
            .map_err(|error| setup(format!("the reaper machine was refused: {error}")))?;
        Ok(Sweeper {
            service,
            machine_arn: machine.arn,
            passes: 0,
        })
    }

    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// One run of the reaper machine.
    pub async fn pass(&mut self) -> Result<Pass, String> {
        self.passes += 1;
        let name = format!("sweep-{}", self.passes);
        let started = self
            .service
            .start_execution(&self.machine_arn, Some(&name), Some("{}"))
            .map_err(|error| format!("the reaper did not start: {error}"))?;
        let ended = tokio::time::timeout(
            PASS_TIMEOUT,
            self.service.await_execution(&started.execution_arn),
        )
        .await
        .map_err(|_| format!("reaper pass {name} did not end within {PASS_TIMEOUT:?}"))?
        .map_err(|error| format!("reaper pass {name}: {error}"))?;
        // Summarise's output: the execution's output, and in the history when a sweep failed.
        let history = self
            .service
            .get_execution_history(&started.execution_arn, false)
            .unwrap_or_default();
        let summary: Value = history
            .iter()
            .filter(|event| event.event_type.ends_with("StateExited"))
            .filter_map(|event| event.details.get("stateExitedEventDetails"))
            .find(|details| details["name"] == "Summarise")
            .and_then(|details| details["output"].as_str())
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        let reports = summary["reports"].as_object().cloned().unwrap_or_default();
        let acted = reports
            .values()
            .filter_map(|report| report["acted"].as_u64())
            .sum();
        Ok(Pass {
            acted,
            swept: ended.status == ExecutionStatus::Succeeded,
        })
    }
}
