//! The one rule every sweep follows: what may be touched.

use chrono::Duration;

use crate::config::ReaperConfig;
use crate::executions::ExecutionStatus;

/// What to do with one thing (a runner, a registration, a slot) of `execution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Act; the reason is for the report.
    Reap(String),
    /// Leave it; the reason is counted in the report.
    Keep(&'static str),
}

pub const KEEP_RUNNING: &str = "its execution is running";
pub const KEEP_YOUNG: &str = "younger than the grace period";
pub const KEEP_UNKNOWN: &str =
    "its execution is unknown to the workflow service and it is not old enough to be sure";

/// Never acts on a running execution's things, nor on anything younger than the grace period.
/// A thing whose execution the service does not know waits for the (longer) unknown-execution
/// grace, so a wrong job machine ARN cannot make the reaper remove live runners. `age` is
/// `None` when no launch time is known: then only an ended execution is enough.
pub fn judge(
    execution: &str,
    status: ExecutionStatus,
    age: Option<Duration>,
    config: &ReaperConfig,
) -> Verdict {
    if status == ExecutionStatus::Running {
        return Verdict::Keep(KEEP_RUNNING);
    }
    let seconds = age.map(|age| age.num_seconds().max(0) as u64);
    if seconds.is_some_and(|seconds| seconds < config.grace_seconds) {
        return Verdict::Keep(KEEP_YOUNG);
    }
    match status {
        ExecutionStatus::Running => Verdict::Keep(KEEP_RUNNING),
        ExecutionStatus::Ended => Verdict::Reap(format!("its execution {execution} has ended")),
        ExecutionStatus::Unknown => match seconds {
            Some(seconds) if seconds >= config.unknown_execution_grace_seconds => {
                Verdict::Reap(format!(
                    "its execution {execution} is unknown to the workflow service and it is \
                     {seconds} s old, older than any execution can run"
                ))
            }
            _ => Verdict::Keep(KEEP_UNKNOWN),
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn status() -> impl Strategy<Value = ExecutionStatus> {
        prop_oneof![
            Just(ExecutionStatus::Running),
            Just(ExecutionStatus::Ended),
            Just(ExecutionStatus::Unknown),
        ]
    }

    fn config() -> impl Strategy<Value = ReaperConfig> {
        (0_u64..10_000, 0_u64..100_000).prop_map(|(grace, extra)| ReaperConfig {
            grace_seconds: grace,
            unknown_execution_grace_seconds: grace + extra,
            ..ReaperConfig::default()
        })
    }

    proptest! {
        #[test]
        fn a_running_execution_s_things_are_never_touched(
            age in proptest::option::of(-1_000_i64..10_000_000),
            config in config(),
        ) {
            let verdict = judge("e", ExecutionStatus::Running, age.map(Duration::seconds), &config);
            prop_assert_eq!(verdict, Verdict::Keep(KEEP_RUNNING));
        }

        #[test]
        fn nothing_younger_than_the_grace_period_is_touched(
            status in status(),
            fraction in 0.0_f64..1.0,
            config in config(),
        ) {
            let age = (config.grace_seconds as f64 * fraction) as i64;
            prop_assume!((age as u64) < config.grace_seconds);
            let verdict = judge("e", status, Some(Duration::seconds(age)), &config);
            prop_assert!(matches!(verdict, Verdict::Keep(_)), "{verdict:?}");
        }

        #[test]
        fn an_ended_execution_s_old_things_are_reaped_and_unknown_ones_only_when_very_old(
            status in status(),
            age in proptest::option::of(0_i64..10_000_000),
            config in config(),
        ) {
            let verdict = judge("e", status, age.map(Duration::seconds), &config);
            let old = |limit: u64| age.is_none_or(|age| age as u64 >= limit);
            let expected = match status {
                ExecutionStatus::Running => false,
                ExecutionStatus::Ended => old(config.grace_seconds),
                ExecutionStatus::Unknown => {
                    age.is_some() && old(config.unknown_execution_grace_seconds)
                }
            };
            prop_assert_eq!(matches!(verdict, Verdict::Reap(_)), expected, "{:?}", verdict);
        }
    }
}
