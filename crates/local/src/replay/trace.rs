//! A trace: one job a line, as JSON (`runway replay --trace day.jsonl`).
//!
//! ```json
//! {"at": "2026-12-07T09:00:00Z", "repository": "octo-org/app", "organization": "octo-org", "labels": ["self-hosted", "linux", "x64"], "run_seconds": 300}
//! ```
//!
//! `at` is when GitHub queues the job (RFC 3339), `run_seconds` how long it runs once a
//! runner takes it; `organization` (or `organisation`) is optional and must be the
//! repository's owner when given. Blank lines and lines starting with `#` are skipped.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceJob {
    /// When GitHub queues it.
    pub at: DateTime<Utc>,
    /// `owner/name`.
    pub repository: String,
    /// The repository's owner; implied when absent.
    #[serde(
        default,
        alias = "organisation",
        skip_serializing_if = "Option::is_none"
    )]
    pub organization: Option<String>,
    pub labels: Vec<String>,
    /// How long the job runs on its runner.
    pub run_seconds: f64,
}

impl TraceJob {
    /// The repository's owner: its organisation (or user).
    pub fn owner(&self) -> &str {
        self.repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(owner, _)| owner)
    }

    fn check(&self) -> Result<(), String> {
        let Some((owner, name)) = self.repository.split_once('/') else {
            return Err(format!(
                "repository {:?} is not owner/name (e.g. \"octo-org/app\")",
                self.repository
            ));
        };
        if owner.is_empty() || name.is_empty() || name.contains('/') {
            return Err(format!(
                "repository {:?} is not owner/name (e.g. \"octo-org/app\")",
                self.repository
            ));
        }
        if let Some(organization) = &self.organization
            && !organization.eq_ignore_ascii_case(owner)
        {
            return Err(format!(
                "organization {organization:?} is not the owner of repository {:?}; GitHub \
                 files a repository's jobs under its owner, so give {owner:?} or leave it out",
                self.repository
            ));
        }
        if !(self.run_seconds.is_finite() && self.run_seconds >= 0.0) {
            return Err(format!(
                "run_seconds must be 0 or more seconds (got {})",
                self.run_seconds
            ));
        }
        if let Some(label) = self.labels.iter().find(|label| label.trim().is_empty()) {
            return Err(format!("labels has an empty label ({label:?})"));
        }
        Ok(())
    }
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("line {line} of the trace: {message}")]
    Line { line: usize, message: String },
    #[error(
        "the trace has no jobs; give one JSON object a line, e.g. {{\"at\": \
         \"2026-12-07T09:00:00Z\", \"repository\": \"octo-org/app\", \"labels\": \
         [\"self-hosted\", \"linux\"], \"run_seconds\": 300}}, or make one with \
         `runway replay --generate`"
    )]
    Empty,
}

/// Reads a trace; jobs come back in order of arrival (lines with the same time keep their
/// order).
pub fn parse(text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let mut jobs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at_line = |message: String| TraceError::Line {
            line: index + 1,
            message,
        };
        let job: TraceJob = serde_json::from_str(trimmed).map_err(|error| {
            at_line(format!(
                "{error}; each line is one JSON object with at, repository, labels and \
                 run_seconds"
            ))
        })?;
        job.check().map_err(at_line)?;
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Err(TraceError::Empty);
    }
    jobs.sort_by_key(|job| job.at);
    Ok(jobs)
}

/// Writes `jobs` one a line.
pub fn to_jsonl(jobs: &[TraceJob]) -> String {
    let mut out = String::with_capacity(jobs.len() * 160);
    for job in jobs {
        // A TraceJob always serializes.
        if let Ok(line) = serde_json::to_string(job) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = r#"{"at": "2026-12-07T09:00:00Z", "repository": "octo-org/app", "labels": ["self-hosted"], "run_seconds": 60}"#;

    #[test]
    fn a_good_trace_reads_in_order_of_arrival() {
        let text = format!(
            "# a comment\n{}\n\n{GOOD}\n",
            GOOD.replace("09:00", "10:00")
        );
        let jobs = parse(&text).unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs[0].at < jobs[1].at);
        assert_eq!(jobs[0].owner(), "octo-org");
    }

    #[test]
    fn a_bad_line_is_named_with_what_is_wrong() {
        let cases: [(&str, &str); 6] = [
            ("{\"at\": \"yesterday\"", "line 2 of the trace"),
            (&GOOD.replace("octo-org/app", "app"), "is not owner/name"),
            (&GOOD.replace("60}", "-5}"), "run_seconds must be 0 or more"),
            (
                &GOOD.replace("\"labels\"", "\"organization\": \"other\", \"labels\""),
                "is not the owner",
            ),
            (&GOOD.replace("\"labels\"", "\"lables\""), "unknown field"),
            (&GOOD.replace("2026-12-07T09:00:00Z", "9am"), "line 2"),
        ];
        for (line, expected) in cases {
            let error = parse(&format!("{GOOD}\n{line}\n")).unwrap_err().to_string();
            assert!(error.contains("line 2 of the trace"), "{error}");
            assert!(error.contains(expected), "{line}: {error}");
        }
        assert!(matches!(parse("\n# nothing\n"), Err(TraceError::Empty)));
    }

    proptest! {
        #[test]
        fn written_traces_read_back_the_same(
            jobs in proptest::collection::vec(
                (0i64..86_400 * 7, "[a-z]{1,8}", "[a-z]{1,8}",
                 proptest::collection::vec("[a-z0-9-]{1,10}", 0..4), 0u32..100_000, any::<bool>()),
                1..20,
            )
        ) {
            let start: DateTime<Utc> = "2026-12-07T00:00:00Z".parse().unwrap();
            let mut trace: Vec<TraceJob> = jobs
                .into_iter()
                .map(|(offset, owner, name, labels, run, with_org)| TraceJob {
                    at: start + chrono::Duration::seconds(offset),
                    repository: format!("{owner}/{name}"),
                    organization: with_org.then(|| owner.clone()),
                    labels,
                    run_seconds: f64::from(run) / 10.0,
                })
                .collect();
            trace.sort_by_key(|job| job.at);
            let read = parse(&to_jsonl(&trace)).unwrap();
            prop_assert_eq!(read, trace);
        }

        #[test]
        fn any_text_is_read_or_refused_with_a_line_number(text in ".{0,200}") {
            match parse(&text) {
                Ok(jobs) => prop_assert!(!jobs.is_empty()),
                Err(TraceError::Empty) => {}
                Err(TraceError::Line { line, .. }) => prop_assert!(line >= 1),
            }
        }
    }
}
