//! Whether a failed job execution is worth starting again: only when what stopped it may
//! pass by itself (throttling, capacity, a timeout, an unavailable service), never when
//! retrying cannot help (a policy rejected the job, the configuration is wrong, GitHub
//! refused).

use crate::executions::ExecutionFailure;

/// The job machine's `Failed` state: its cause is the release step's summary, which names the
/// error that sent the execution down the failure path.
pub const JOB_FAILED: &str = "Runway.JobFailed";
/// How that summary starts: `The job could not be served (<error>)...`.
const SERVED_PREFIX: &str = "The job could not be served (";

/// Errors that may pass by themselves. `Runway.Transient` covers throttling, GitHub 5xx and
/// provider capacity once the machine's own retries are spent; `States.Timeout` a step (or a
/// policy) that ran out of time.
const TRANSIENT_ERRORS: &[&str] = &[
    "Runway.Transient",
    "States.Timeout",
    "States.HeartbeatTimeout",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
];

/// What made the execution fail, for the retry decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// May pass: start the job again. The error that made the execution fail.
    Transient(String),
    /// Retrying cannot help.
    Permanent(String),
}

/// The error behind the failure: the one the release summary names for `Runway.JobFailed`,
/// else the execution's own.
pub fn underlying_error(failure: &ExecutionFailure) -> &str {
    if failure.error == JOB_FAILED
        && let Some(rest) = failure.cause.trim_start().strip_prefix(SERVED_PREFIX)
        && let Some((name, _)) = rest.split_once(')')
        && !name.trim().is_empty()
    {
        return name.trim();
    }
    failure.error.as_str()
}

pub fn classify(failure: &ExecutionFailure) -> FailureKind {
    let error = underlying_error(failure).to_owned();
    // An execution that ran out its own timeout had days: starting it again helps nobody.
    if !failure.timed_out && TRANSIENT_ERRORS.contains(&error.as_str()) {
        FailureKind::Transient(error)
    } else {
        FailureKind::Permanent(error)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn failed(error: &str, cause: &str) -> ExecutionFailure {
        ExecutionFailure {
            error: error.into(),
            cause: cause.into(),
            timed_out: false,
        }
    }

    #[test]
    fn the_release_summary_names_the_error() {
        let capacity = failed(
            JOB_FAILED,
            "The job could not be served (Runway.Transient): could not launch runner r in pool \
             linux: no capacity. Nothing it started is left running and its slot is free.",
        );
        assert_eq!(
            classify(&capacity),
            FailureKind::Transient("Runway.Transient".into())
        );
        let timeout = failed(JOB_FAILED, "The job could not be served (States.Timeout)");
        assert_eq!(
            classify(&timeout),
            FailureKind::Transient("States.Timeout".into())
        );
        for permanent in [
            "Runway.ProvisionFailed",
            "Runway.GitHubRefused",
            "Runway.NoSuchPool",
            "Runway.BadInput",
            "Runway.RunnerNeverRegistered",
        ] {
            let failure = failed(
                JOB_FAILED,
                &format!("The job could not be served ({permanent}): bad. Nothing ..."),
            );
            assert_eq!(classify(&failure), FailureKind::Permanent(permanent.into()));
        }
    }

    #[test]
    fn rejections_unknown_causes_and_timeouts_are_permanent() {
        let rejected = failed(
            "Runway.Rejected",
            "the throttle policy refused: over budget",
        );
        assert_eq!(
            classify(&rejected),
            FailureKind::Permanent("Runway.Rejected".into())
        );
        let unreadable = failed(JOB_FAILED, "something else");
        assert_eq!(
            classify(&unreadable),
            FailureKind::Permanent(JOB_FAILED.into())
        );
        let release_failed = failed("Runway.ReleaseFailed", "The job failed ...");
        assert!(matches!(
            classify(&release_failed),
            FailureKind::Permanent(_)
        ));
        let mut timed_out = failed("States.Timeout", "");
        timed_out.timed_out = true;
        assert!(matches!(classify(&timed_out), FailureKind::Permanent(_)));
    }

    proptest! {
        #[test]
        fn reading_a_cause_never_panics_and_only_listed_errors_are_transient(
            error in "\\PC{0,30}",
            cause in "\\PC{0,80}",
        ) {
            let failure = failed(&error, &cause);
            if let FailureKind::Transient(name) = classify(&failure) {
                prop_assert!(TRANSIENT_ERRORS.contains(&name.as_str()));
            }
        }
    }
}
