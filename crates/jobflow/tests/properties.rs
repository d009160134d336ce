//! Properties of the pure rules: built-in label matching and runner names, each against an
//! oracle of its own (a set model, the name recogniser), not the rule written again.

use std::collections::BTreeSet;

use proptest::prelude::*;
use runway_jobflow::naming::{MAX_RUNNER_NAME, is_runner_name_of, pool_offers, runner_name};

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
        // A model: the asked labels, lower-cased, are a non-empty subset of the offered ones.
        let offered: BTreeSet<String> = pool.iter().map(|l| l.to_ascii_lowercase()).collect();
        let wanted: BTreeSet<String> = job.iter().map(|l| l.to_ascii_lowercase()).collect();
        prop_assert_eq!(
            pool_offers(&pool, &job),
            !wanted.is_empty() && wanted.is_subset(&offered)
        );
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
        // Whatever the prefix became, the name is one the stack recognises as its own.
        let kept = name
            .match_indices('-')
            .map(|(at, _)| &name[..at])
            .find(|candidate| is_runner_name_of(candidate, &name));
        prop_assert!(kept.is_some_and(|kept| !kept.is_empty()), "{}", name);
    }

    #[test]
    fn a_clean_prefix_is_kept_and_its_names_are_recognised(
        prefix in "[a-zA-Z0-9_][a-zA-Z0-9_-]{0,19}",
        other in "[a-zA-Z0-9_]{1,5}",
        job_id in any::<u64>(),
        run_attempt in any::<u32>(),
        attempt in any::<u32>(),
    ) {
        let name = runner_name(&prefix, job_id, run_attempt, attempt);
        prop_assert!(name.starts_with(&prefix), "{}", name);
        prop_assert!(is_runner_name_of(&prefix, &name), "{}", name);
        // Another stack's prefix, even one extending this one, never claims the name.
        let longer = format!("{prefix}-{other}");
        prop_assert!(!is_runner_name_of(&longer, &name), "{} claimed {}", longer, name);
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
