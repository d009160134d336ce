//! EC2 spot interruption warnings: EC2 gives a spot instance two minutes' notice before it
//! reclaims it, through an EventBridge event. The reap function receives those events too;
//! a warning for one of the stack's runners is recorded on the runner (so its teardown says
//! the host was reclaimed) and counted (`SpotReclaims`). The job it ran fails on GitHub with
//! its runner lost, and the execution tears down and releases as after any job.

use chrono::{DateTime, Utc};
use runway_store::RunnerName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::error::ReapError;
use crate::reaper::Reaper;

/// The `detail-type` of EC2's warning.
pub const SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";

/// An EventBridge event, as the reap function receives one.
#[derive(Debug, Clone, Deserialize)]
pub struct SpotInterruptionWarning {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// When EC2 sent the warning.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    pub detail: SpotInterruptionDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SpotInterruptionDetail {
    #[serde(rename = "instance-id")]
    pub instance_id: String,
    /// `terminate`, `stop` or `hibernate`.
    #[serde(rename = "instance-action", default)]
    pub instance_action: Option<String>,
}

impl SpotInterruptionWarning {
    /// Reads an EventBridge event; one that is not a spot interruption warning, or lacks the
    /// instance it warns of, is refused with what was expected.
    pub fn from_event(event: Value) -> Result<SpotInterruptionWarning, ReapError> {
        let warning: SpotInterruptionWarning = serde_json::from_value(event).map_err(|error| {
            ReapError::BadInput(format!(
                "the EventBridge event is not a spot interruption warning ({error}); the rule \
                 must match detail-type {SPOT_INTERRUPTION_WARNING:?} from source aws.ec2"
            ))
        })?;
        if warning.detail_type != SPOT_INTERRUPTION_WARNING {
            return Err(ReapError::BadInput(format!(
                "the reap function takes EventBridge events of detail-type \
                 {SPOT_INTERRUPTION_WARNING:?} only, not {:?}",
                warning.detail_type
            )));
        }
        Ok(warning)
    }
}

/// What a warning did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterruptionReport {
    pub instance_id: String,
    /// The stack's runner on that instance, when it is one.
    pub runner_name: Option<String>,
    pub execution: Option<String>,
    pub pool: Option<String>,
    /// False for another of the same warning (EventBridge delivers at least once).
    pub recorded: bool,
    pub summary: String,
}

impl Reaper {
    /// Records a spot interruption warning on the runner it concerns (see the module's docs).
    /// An instance that is not one of the stack's runners is left alone.
    pub async fn spot_interruption(
        &self,
        warning: &SpotInterruptionWarning,
    ) -> Result<InterruptionReport, ReapError> {
        let instance_id = warning.detail.instance_id.as_str();
        let action = warning
            .detail
            .instance_action
            .as_deref()
            .unwrap_or("terminate");
        let mut found = None;
        for (_, provider) in self.distinct_providers() {
            if let Some(runner) = provider.runner_on(instance_id).await.map_err(|error| {
                ReapError::provider(&format!("look up instance {instance_id}"), error)
            })? {
                found = Some(runner);
                break;
            }
        }
        let Some(runner) = found else {
            info!(
                instance_id,
                "a spot interruption warning for an instance runway did not launch"
            );
            return Ok(InterruptionReport {
                instance_id: instance_id.to_owned(),
                runner_name: None,
                execution: None,
                pool: None,
                recorded: false,
                summary: format!("{instance_id} is not a runner of this stack: nothing to do"),
            });
        };
        let recorded = match RunnerName::new(runner.runner_name.as_str()) {
            Ok(name) => self
                .deps()
                .store
                .set_runner_reclaimed(&name)
                .await
                .map_err(|error| {
                    ReapError::store("record the runner's host as reclaimed", error)
                })?,
            Err(_) => false,
        };
        let pool = runner.pool.clone().unwrap_or_default();
        if recorded {
            use runway_jobflow::metrics::{Dimension, Metric, Sample};
            let now = self.deps().clock.now();
            self.deps().flow.metrics().record(
                Sample::count(Metric::SpotReclaims, now).by(Dimension::Pool, pool.as_str()),
            );
            warn!(
                instance_id,
                runner = %runner.runner_name,
                execution = %runner.execution,
                pool = %pool,
                action,
                "EC2 is reclaiming a runner's spot instance"
            );
        }
        let summary = format!(
            "EC2 will {action} spot instance {instance_id} of runner {} (execution {}, pool {}){}",
            runner.runner_name,
            runner.execution,
            if pool.is_empty() {
                "unknown"
            } else {
                pool.as_str()
            },
            if recorded {
                ""
            } else {
                "; already recorded, or the runner has no live record"
            }
        );
        Ok(InterruptionReport {
            instance_id: instance_id.to_owned(),
            runner_name: Some(runner.runner_name),
            execution: Some(runner.execution),
            pool: runner.pool,
            recorded,
            summary,
        })
    }
}
