//! Typed `workflow_job` events.
//!
//! Only the fields runway uses are decoded; every other field GitHub sends is ignored, and the
//! fields GitHub leaves `null` (the runner fields while a job is queued, `conclusion` until it
//! completes) are `Option`s.

use serde::{Deserialize, Serialize};

// The job is the REST client's type too: one shape whichever way runway learns of a job.
pub use runway_github_types::{Account, Repository, WorkflowJob};

/// The JSON fields the parser cannot do without (dotted paths into the payload).
///
/// Each of them is `required` in GitHub's published schema for every `workflow_job` action
/// (checked by a test against `@octokit/openapi-webhooks`). `workflow_job.run_attempt` is
/// required there too, yet some real payloads omit it: it defaults to 1.
pub const REQUIRED_FIELDS: &[&str] = &[
    "action",
    "workflow_job",
    "workflow_job.id",
    "workflow_job.run_id",
    "workflow_job.status",
    "workflow_job.labels",
    "workflow_job.name",
    "repository",
    "repository.id",
    "repository.name",
    "repository.full_name",
    "repository.owner",
    "repository.owner.login",
];

/// What happened to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowJobAction {
    Queued,
    Waiting,
    InProgress,
    Completed,
}

impl WorkflowJobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowJobAction::Queued => "queued",
            WorkflowJobAction::Waiting => "waiting",
            WorkflowJobAction::InProgress => "in_progress",
            WorkflowJobAction::Completed => "completed",
        }
    }
}

/// One `workflow_job` delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: WorkflowJobAction,
    #[serde(rename = "workflow_job")]
    pub job: WorkflowJob,
    pub repository: Repository,
    #[serde(default)]
    pub organization: Option<Organization>,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub login: String,
    #[serde(default)]
    pub id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub id: u64,
}

/// Why a payload is not a usable `workflow_job` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("not a valid workflow_job payload: {0}")]
    NotWorkflowJob(String),
}

/// Parses a `workflow_job` delivery body.
pub fn parse_workflow_job(body: &[u8]) -> Result<WorkflowJobEvent, PayloadError> {
    serde_json::from_slice(body).map_err(|err| {
        if err.is_syntax() || err.is_eof() {
            PayloadError::NotJson(short(&err))
        } else {
            PayloadError::NotWorkflowJob(short(&err))
        }
    })
}

/// serde_json messages stay short; keep them to one line anyway.
fn short(err: &serde_json::Error) -> String {
    let mut text = err.to_string();
    text.truncate(200);
    text
}

impl WorkflowJobEvent {
    /// The account the repository belongs to (the organization when there is one).
    pub fn owner_login(&self) -> &str {
        self.organization
            .as_ref()
            .map(|org| org.login.as_str())
            .unwrap_or(self.repository.owner.login.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"action":"queued","workflow_job":{"id":7,"run_id":8,"status":"queued",
        "name":"build","labels":["self-hosted",null,"x64"],"runner_id":null,"runner_name":null,
        "run_attempt":null},
        "repository":{"id":9,"name":"r","full_name":"o/r","owner":{"login":"o"}}}"#;

    #[test]
    fn minimal_payload_with_nulls_parses() {
        let event = parse_workflow_job(MINIMAL.as_bytes()).unwrap();
        assert_eq!(event.action, WorkflowJobAction::Queued);
        assert_eq!(event.job.id, 7);
        assert_eq!(event.job.run_attempt, 1);
        assert_eq!(event.job.labels, vec!["self-hosted", "x64"]);
        assert_eq!(event.job.runner_name, None);
        assert_eq!(event.owner_login(), "o");
    }

    #[test]
    fn malformed_json_and_wrong_shapes_are_told_apart() {
        assert!(matches!(
            parse_workflow_job(b"{"),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_workflow_job(b""),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse_workflow_job(b"{\"action\":\"queued\"}"),
            Err(PayloadError::NotWorkflowJob(_))
        ));
        let unknown_action = MINIMAL.replace(
            "\"queued\",\"workflow_job\"",
            "\"deleted\",\"workflow_job\"",
        );
        assert!(matches!(
            parse_workflow_job(unknown_action.as_bytes()),
            Err(PayloadError::NotWorkflowJob(_))
        ));
        let negative_id = MINIMAL.replace("\"id\":7", "\"id\":-7");
        assert!(matches!(
            parse_workflow_job(negative_id.as_bytes()),
            Err(PayloadError::NotWorkflowJob(_))
        ));
    }
}
