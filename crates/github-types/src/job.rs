//! The workflow job: one type for `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` (and the
//! job listings) and for the `workflow_job` webhook's `workflow_job` object.

use serde::{Deserialize, Serialize};

/// A workflow job. Fields a payload may lack (older payloads, the emulator's, a test's) are
/// `Option`s that default to `None`, as are the fields GitHub leaves `null` (the runner fields
/// while a job is queued, `conclusion` until it completes). The parts runway cannot do without
/// (ids, status, name, labels) are required: see `runway_webhook::event::REQUIRED_FIELDS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowJob {
    pub id: u64,
    pub run_id: u64,
    /// 1 for a run's first attempt. GitHub's schema requires it, yet some real payloads omit it
    /// or send `null`: both read as 1, the attempt such a payload describes.
    #[serde(default = "first_attempt", deserialize_with = "attempt_or_first")]
    pub run_attempt: u32,
    /// `queued`, `waiting`, `in_progress`, `completed`, `requested` or `pending` (kept as text:
    /// GitHub adds states).
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    pub name: String,
    #[serde(default)]
    pub workflow_name: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    /// The `runs-on` labels (required by both schemas). The webhook schema allows `null`
    /// items; they are dropped.
    #[serde(deserialize_with = "labels_without_nulls")]
    pub labels: Vec<String>,
    #[serde(default)]
    pub runner_id: Option<u64>,
    #[serde(default)]
    pub runner_name: Option<String>,
    #[serde(default)]
    pub runner_group_id: Option<u64>,
    #[serde(default)]
    pub runner_group_name: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

fn attempt_or_first<'de, D: serde::Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(de)?.unwrap_or(1))
}

fn labels_without_nulls<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let labels = Vec::<Option<String>>::deserialize(de)?;
    Ok(labels.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rest_job_and_a_webhook_job_read_as_the_same_type() {
        // As the REST API lists it, trimmed: no head_sha, extra fields (steps) ignored.
        let rest: WorkflowJob = serde_json::from_value(json!({
            "id": 399444496, "run_id": 29679449, "run_attempt": 2, "status": "queued",
            "conclusion": null, "name": "build", "labels": ["self-hosted", "linux"],
            "runner_id": null, "runner_name": null, "runner_group_id": null,
            "steps": []
        }))
        .unwrap();
        assert_eq!(rest.run_attempt, 2);
        assert_eq!(rest.head_sha, None);
        assert_eq!(rest.labels, ["self-hosted", "linux"]);
        // Webhook: a null attempt, a null label.
        let webhook: WorkflowJob = serde_json::from_value(json!({
            "id": 7, "run_id": 8, "run_attempt": null, "status": "queued", "name": "build",
            "labels": ["self-hosted", null, "x64"], "head_sha": "abc",
            "runner_group_name": null
        }))
        .unwrap();
        assert_eq!(webhook.run_attempt, 1);
        assert_eq!(webhook.labels, ["self-hosted", "x64"]);
        assert_eq!(webhook.head_sha.as_deref(), Some("abc"));
    }

    #[test]
    fn a_missing_attempt_is_the_first_and_missing_labels_are_an_error() {
        let job: WorkflowJob = serde_json::from_value(json!({
            "id": 1, "run_id": 2, "status": "completed", "name": "n", "labels": []
        }))
        .unwrap();
        assert_eq!(job.run_attempt, 1);
        assert!(
            serde_json::from_value::<WorkflowJob>(
                json!({"id": 1, "run_id": 2, "status": "queued", "name": "n"})
            )
            .is_err()
        );
    }
}
