//! The reap Lambda: one sweep per invocation, on the reaper built by
//! [`runway_setup::reaper::build_reaper`] from the function's environment (see
//! [`runway_setup::reaper`] for the settings).
//!
//! Every GitHub call of an invocation ends, retries and rate-limit waits included, before
//! the invocation's deadline less [`crate::DEADLINE_MARGIN`]: a sweep that runs out of time fails
//! with `Runway.Transient` instead of being killed by its timeout.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use runway_reaper::{ReapError, Reaper};
use runway_setup::reaper::{ReaperSettings, build_reaper};
use runway_setup::{StackSettings, load_aws_config};
use serde_json::Value;

use crate::{github_deadline, init_tracing};

/// The Lambda error for a failed sweep: its name is what the reaper machine's `Retry` and
/// `Catch` match on.
pub fn reap_diagnostic(error: ReapError) -> Diagnostic {
    Diagnostic {
        error_type: error.name().to_owned(),
        error_message: error.to_string(),
    }
}

/// Runs the sweep one invocation names, its GitHub calls bounded by the invocation's deadline.
pub async fn handle_reap(reaper: &Reaper, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    if crate::is_doctor_event(&event.payload) {
        return Ok(crate::doctor_answer(crate::Handler::Reap));
    }
    let deadline = github_deadline(event.context.deadline);
    runway_github::with_call_deadline(deadline, reaper.run(event.payload))
        .await
        .map_err(reap_diagnostic)
}

/// The whole life of the reap Lambda.
pub async fn run_reaper() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = StackSettings::from_env()?;
    let reaper_settings = ReaperSettings::from_env()?;
    let aws = load_aws_config().await;
    let reaper = build_reaper(&settings, &reaper_settings, &aws).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let reaper = reaper.clone();
        async move { handle_reap(&reaper, event).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::DEADLINE_MARGIN;

    #[test]
    fn github_calls_end_before_the_invocation() {
        let deadline_ms = 1_700_000_000_000_u64;
        let ends = github_deadline(deadline_ms);
        assert_eq!(
            ends.timestamp_millis(),
            deadline_ms as i64 - DEADLINE_MARGIN.as_millis() as i64
        );
        assert_eq!(github_deadline(u64::MAX), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn a_transient_sweep_failure_is_retried_by_name() {
        let diagnostic = reap_diagnostic(ReapError::Transient("GitHub failed with 502".into()));
        assert_eq!(diagnostic.error_type, "Runway.Transient");
    }
}
