//! Pure rules: which pool offers a job's labels, and what a runner is called.

/// Whether a pool offering `pool_labels` can run a job asking for `job_labels`: every label
/// the job asks for is offered (case-insensitively), as GitHub matches runners. A job asking
/// for no label matches nothing.
pub fn pool_offers<P: AsRef<str>, J: AsRef<str>>(pool_labels: &[P], job_labels: &[J]) -> bool {
    !job_labels.is_empty()
        && job_labels.iter().all(|wanted| {
            pool_labels
                .iter()
                .any(|offered| offered.as_ref().eq_ignore_ascii_case(wanted.as_ref()))
        })
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
