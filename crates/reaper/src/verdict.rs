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

        /// Ageing never takes a verdict back: what is reaped at some age is reaped at any
        /// later one.
        #[test]
        fn once_reaped_always_reaped(
            status in status(),
            age in 0_i64..10_000_000,
            later in 0_i64..10_000_000,
            config in config(),
        ) {
            let reaped = |age: i64| {
                matches!(judge("e", status, Some(Duration::seconds(age)), &config), Verdict::Reap(_))
            };
            if reaped(age) {
                prop_assert!(reaped(age + later), "reaped at {} s, kept at {} s", age, age + later);
            }
        }

        /// Where each kind of execution's things start to be reaped: an ended one's at the
        /// grace period (or at once when no launch time is known), an unknown one's at the
        /// unknown-execution grace and never without a launch time.
        #[test]
        fn ended_and_unknown_executions_are_reaped_from_their_own_grace_on(config in config()) {
            let reaped = |status: ExecutionStatus, age: Option<u64>| {
                let age = age.map(|seconds| Duration::seconds(seconds as i64));
                matches!(judge("e", status, age, &config), Verdict::Reap(_))
            };
            let grace = config.grace_seconds;
            let unknown_grace = config.unknown_execution_grace_seconds;
            prop_assert!(reaped(ExecutionStatus::Ended, Some(grace)));
            prop_assert!(reaped(ExecutionStatus::Ended, None));
            prop_assert!(reaped(ExecutionStatus::Unknown, Some(unknown_grace)));
            prop_assert!(!reaped(ExecutionStatus::Unknown, None));
            if grace > 0 {
                prop_assert!(!reaped(ExecutionStatus::Ended, Some(grace - 1)));
            }
            if unknown_grace > 0 {
                prop_assert!(!reaped(ExecutionStatus::Unknown, Some(unknown_grace - 1)));
            }
        }
    }
}
