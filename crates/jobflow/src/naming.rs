//! Pure rules: which pool offers a job's labels, and what a runner is called.

/// Whether a pool offering `pool_labels` can run a job asking for `job_labels`: GitHub's rule
/// ([`runway_github_types::labels_match`]: every asked label offered, case-insensitively),
/// except that a job asking for no label matches nothing, so built-in routing never sends an
/// unlabelled job to whichever pool comes first.
pub fn pool_offers<P: AsRef<str>, J: AsRef<str>>(pool_labels: &[P], job_labels: &[J]) -> bool {
    !job_labels.is_empty() && runway_github_types::labels_match(job_labels, pool_labels)
}

/// The labels a runner of `pool_labels` registers with for a job asking for `job_labels`: the
/// pool's, then each of the job's the pool lacks. A router may send a job to a pool that
/// does not carry all of its labels (a runner spec such as `runway/cpu=4/ram=16`, options a
/// policy reads), and GitHub gives a job only to a runner carrying every one of them.
pub fn runner_labels<P: AsRef<str>, J: AsRef<str>>(
    pool_labels: &[P],
    job_labels: &[J],
) -> Vec<String> {
    let mut labels: Vec<String> = pool_labels.iter().map(|l| l.as_ref().to_owned()).collect();
    for wanted in job_labels {
        let wanted = wanted.as_ref();
        if !labels.iter().any(|have| have.eq_ignore_ascii_case(wanted)) {
            labels.push(wanted.to_owned());
        }
    }
    labels
}

/// GitHub's limit on runner names.
pub const MAX_RUNNER_NAME: usize = 64;

/// The runner name of launch `attempt` for one attempt of a job:
/// `{prefix}-{job id}-a{run attempt}-{attempt}`. The same inputs always give the same name, so
/// a retried step finds its runner again. The prefix keeps only letters, digits, `-` and `_`
/// and at most 20 characters (an empty result becomes `runway`), so the name is at most 64
/// characters of `[A-Za-z0-9_-]`.
pub fn runner_name(prefix: &str, job_id: u64, run_attempt: u32, attempt: u32) -> String {
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(crate::config::MAX_RUNNER_NAME_PREFIX)
        .collect();
    if clean.trim_matches('-').is_empty() {
        clean = "runway".to_owned();
    }
    format!("{clean}-{job_id}-a{run_attempt}-{attempt}")
}

/// The runner name prefix of a stack that sets none: the stack name itself when it fits (at
/// most [`crate::MAX_RUNNER_NAME_PREFIX`] letters, digits, `-`, `_`), otherwise its first 13
/// characters, `-` and 6 hex digits of a hash of the whole name. Runner names then carry the
/// stack, so two stacks serving one organisation never pick the same name for a runner (and
/// never remove each other's registrations as stale).
pub fn stack_runner_name_prefix(stack: &str) -> String {
    let clean: String = stack
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.trim_matches('-').is_empty() {
        return "runway".to_owned();
    }
    if clean.len() <= crate::config::MAX_RUNNER_NAME_PREFIX {
        return clean;
    }
    // FNV-1a: stable across builds and platforms, which a runner name must be.
    let hash = stack.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{}-{:06x}", &clean[..13], hash & 0x00ff_ffff)
}

/// The name of the `index`th warm runner a keeper pass launched at `millis` (Unix time):
/// `<prefix>-w<millis>-<index>`, unique per pass and within GitHub's 64 characters.
pub fn warm_runner_name(prefix: &str, millis: i64, index: usize) -> String {
    format!("{prefix}-w{millis}-{index}")
}

/// Whether `name` is a runner name [`runner_name`] makes with `prefix`:
/// `{prefix}-{digits}-a{digits}-{digits}`, or a warm runner's `{prefix}-w{digits}-{digits}`. A prefix that is the start of another's (stack
/// `ci` and stack `ci-prod`) does not make the other's names match.
pub fn is_runner_name_of(prefix: &str, name: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    match parts.as_slice() {
        [job, run_attempt, attempt] => {
            digits(job) && run_attempt.strip_prefix('a').is_some_and(&digits) && digits(attempt)
        }
        // A warm runner: `w<millis>-<index>`.
        [launched, index] => launched.strip_prefix('w').is_some_and(&digits) && digits(index),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_carries_its_pools_labels_and_the_jobs_it_lacks() {
        assert_eq!(
            runner_labels(
                &["self-hosted", "linux", "x64"],
                &["Self-Hosted", "LINUX", "runway/cpu=4/ram=16"]
            ),
            ["self-hosted", "linux", "x64", "runway/cpu=4/ram=16"]
        );
        assert_eq!(
            runner_labels(&["self-hosted", "linux"], &[] as &[&str]),
            ["self-hosted", "linux"]
        );
    }

    proptest::proptest! {
        /// Whatever pool the router picks, GitHub can give the job to the runner launched for
        /// it, and the runner keeps every label of its pool.
        #[test]
        fn the_job_always_matches_its_runner(
            pool in proptest::collection::vec("[a-zA-Z]{1,4}", 0..5),
            job in proptest::collection::vec("[a-zA-Z/=0-9]{1,6}", 1..6),
        ) {
            let labels = runner_labels(&pool, &job);
            proptest::prop_assert!(runway_github_types::labels_match(&job, &labels));
            proptest::prop_assert!(runway_github_types::labels_match(&pool, &labels));
            proptest::prop_assert!(labels.len() <= pool.len() + job.len());
        }
    }

    #[test]
    fn a_short_stack_is_its_own_prefix_and_a_long_one_keeps_a_hash() {
        assert_eq!(stack_runner_name_prefix("runway"), "runway");
        assert_eq!(stack_runner_name_prefix("ci-prod"), "ci-prod");
        let long_a = stack_runner_name_prefix("runway-production-eu-west-1");
        let long_b = stack_runner_name_prefix("runway-production-eu-central-1");
        assert_ne!(long_a, long_b);
        for prefix in [&long_a, &long_b] {
            assert!(
                prefix.len() <= crate::config::MAX_RUNNER_NAME_PREFIX,
                "{prefix}"
            );
            assert!(prefix.starts_with("runway-produ"), "{prefix}");
        }
        assert_eq!(
            long_a,
            stack_runner_name_prefix("runway-production-eu-west-1")
        );
    }

    #[test]
    fn only_names_made_with_the_prefix_are_recognised() {
        assert!(is_runner_name_of("ci", &runner_name("ci", 42, 1, 2)));
        for other in [
            runner_name("ci-prod", 42, 1, 2),
            "ci-42-a1".to_owned(),
            "ci-42-a1-x".to_owned(),
            "ci-x-a1-1".to_owned(),
            "ci42-a1-1".to_owned(),
            "my-laptop".to_owned(),
        ] {
            assert!(!is_runner_name_of("ci", &other), "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_runner_name_is_recognised_by_its_prefix_only(
            stack_a in "[a-z][a-z0-9-]{0,30}",
            stack_b in "[a-z][a-z0-9-]{0,30}",
            job: u64,
            run_attempt: u32,
            attempt: u32,
        ) {
            let prefix_a = stack_runner_name_prefix(&stack_a);
            let prefix_b = stack_runner_name_prefix(&stack_b);
            let name = runner_name(&prefix_a, job, run_attempt, attempt);
            proptest::prop_assert!(name.len() <= MAX_RUNNER_NAME);
            proptest::prop_assert!(is_runner_name_of(&prefix_a, &name));
            if prefix_a != prefix_b {
                proptest::prop_assert!(!is_runner_name_of(&prefix_b, &name));
            }
        }
    }
}
