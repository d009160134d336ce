//! Properties of the pure rules: built-in label matching and runner names.

use proptest::prelude::*;
use runway_jobflow::naming::{MAX_RUNNER_NAME, pool_offers, runner_name};

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,11}"
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

proptest! {
    #[test]
    fn a_pool_offers_any_subset_of_its_labels_in_any_case(
        pool in prop::collection::vec(label(), 1..8),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
        mask in any::<u64>(),
    ) {
        let job: Vec<String> = picks
            .iter()
            .map(|pick| flip_case(pick.get::<String>(&pool), mask))
            .collect();
        prop_assert!(pool_offers(&pool, &job));
    }

    #[test]
    fn a_label_the_pool_lacks_is_never_matched(
        pool in prop::collection::vec(label(), 0..8),
        job in prop::collection::vec(label(), 0..8),
        extra in label(),
    ) {
        let lacks = !pool.iter().any(|offered| offered.eq_ignore_ascii_case(&extra));
        let mut asked = job.clone();
        asked.push(extra);
        if lacks {
            prop_assert!(!pool_offers(&pool, &asked));
        }
        // Matching is exactly "every asked label is offered, ignoring case".
        let expected = !job.is_empty()
            && job.iter().all(|j| pool.iter().any(|p| p.eq_ignore_ascii_case(j)));
        prop_assert_eq!(pool_offers(&pool, &job), expected);
    }

    #[test]
    fn runner_names_are_short_valid_and_deterministic(
        prefix in any::<String>(),
        job_id in any::<u64>(),
        run_attempt in any::<u32>(),
        attempt in any::<u32>(),
    ) {
        let name = runner_name(&prefix, job_id, run_attempt, attempt);
        prop_assert!(name.len() <= MAX_RUNNER_NAME, "{} is {} long", name, name.len());
        prop_assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{}", name
        );
        prop_assert_eq!(&name, &runner_name(&prefix, job_id, run_attempt, attempt));
        let suffix = format!("-{job_id}-a{run_attempt}-{attempt}");
        prop_assert!(name.ends_with(&suffix), "{}", name);
        prop_assert!(name.len() > suffix.len(), "the prefix is never empty: {}", name);
    }

    #[test]
    fn different_launches_get_different_names(
        prefix in "[a-z]{1,20}",
        job_id in any::<u64>(),
        run_attempt in any::<u32>(),
        attempt in 1u32..10,
    ) {
        let name = runner_name(&prefix, job_id, run_attempt, attempt);
        prop_assert_ne!(&name, &runner_name(&prefix, job_id, run_attempt, attempt + 1));
        prop_assert_ne!(&name, &runner_name(&prefix, job_id.wrapping_add(1), run_attempt, attempt));
        prop_assert_ne!(&name, &runner_name(&prefix, job_id, run_attempt.wrapping_add(1), attempt));
    }
}

#[test]
fn a_job_asking_for_nothing_matches_no_pool() {
    assert!(!pool_offers(&["self-hosted"], &[] as &[&str]));
    assert!(pool_offers(
        &["self-hosted", "Linux"],
        &["linux", "SELF-HOSTED"]
    ));
    assert_eq!(runner_name("", 7, 1, 2), "runway-7-a1-2");
    assert_eq!(runner_name("my pool!", 7, 1, 2), "my-pool--7-a1-2");
}
