//! GitHub's rule for which runner may take which job, the one every part of runway uses (the
//! emulator's assignment, the job flow's built-in routing).

/// True when the runner's labels contain every label the job asks for, compared without
/// regard to (ASCII) case, as GitHub does. A job asking for no label matches any runner; callers
/// that want otherwise say so themselves.
pub fn labels_match<J: AsRef<str>, R: AsRef<str>>(job_labels: &[J], runner_labels: &[R]) -> bool {
    job_labels.iter().all(|wanted| {
        runner_labels
            .iter()
            .any(|offered| offered.as_ref().eq_ignore_ascii_case(wanted.as_ref()))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The oracle: lower-cased set inclusion.
    fn subset_ignoring_case(job: &[String], runner: &[String]) -> bool {
        let lower = |labels: &[String]| -> BTreeSet<String> {
            labels.iter().map(|l| l.to_ascii_lowercase()).collect()
        };
        lower(job).is_subset(&lower(runner))
    }

    fn flip_case(text: &str, mask: u64) -> String {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    #[test]
    fn examples() {
        assert!(labels_match(
            &["self-hosted", "Linux"],
            &["SELF-HOSTED", "linux", "x64"]
        ));
        assert!(!labels_match(
            &["self-hosted", "gpu"],
            &["self-hosted", "linux"]
        ));
        assert!(labels_match(&[] as &[&str], &["anything"]));
        assert!(!labels_match(&["linux"], &[] as &[&str]));
    }

    proptest! {
        #[test]
        fn agrees_with_lower_cased_set_inclusion(
            runner in prop::collection::vec("[a-zA-Z0-9][a-zA-Z0-9._-]{0,7}", 0..6),
            others in prop::collection::vec("[a-zA-Z0-9][a-zA-Z0-9._-]{0,7}", 0..3),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            mask in any::<u64>(),
        ) {
            // Mostly the runner's own labels in another case, sometimes labels of its own.
            let mut job: Vec<String> = if runner.is_empty() {
                Vec::new()
            } else {
                picks.iter().map(|pick| flip_case(pick.get::<String>(&runner), mask)).collect()
            };
            job.extend(others);
            prop_assert_eq!(labels_match(&job, &runner), subset_ignoring_case(&job, &runner));
        }

        #[test]
        fn a_runners_own_labels_in_any_case_always_match(
            runner in prop::collection::vec("[a-zA-Z0-9-]{1,8}", 1..6),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            mask in any::<u64>(),
        ) {
            let job: Vec<String> =
                picks.iter().map(|pick| flip_case(pick.get::<String>(&runner), mask)).collect();
            prop_assert!(labels_match(&job, &runner));
        }
    }
}
