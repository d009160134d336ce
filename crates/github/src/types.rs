use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Where runners are registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum RunnerScope {
    Repository { owner: String, repo: String },
    Organization { org: String },
    Enterprise { enterprise: String },
}

impl RunnerScope {
    pub fn repository(owner: impl Into<String>, repo: impl Into<String>) -> Self {
        RunnerScope::Repository {
            owner: owner.into(),
            repo: repo.into(),
        }
    }

    pub fn organization(org: impl Into<String>) -> Self {
        RunnerScope::Organization { org: org.into() }
    }

    pub fn enterprise(enterprise: impl Into<String>) -> Self {
        RunnerScope::Enterprise {
            enterprise: enterprise.into(),
        }
    }

    /// `/repos/{owner}/{repo}`, `/orgs/{org}` or `/enterprises/{enterprise}`, segments encoded.
    pub(crate) fn path_prefix(&self) -> String {
        match self {
            RunnerScope::Repository { owner, repo } => {
                format!("/repos/{}/{}", segment(owner), segment(repo))
            }
            RunnerScope::Organization { org } => format!("/orgs/{}", segment(org)),
            RunnerScope::Enterprise { enterprise } => {
                format!("/enterprises/{}", segment(enterprise))
            }
        }
    }
}

/// Percent-encodes one path segment (GitHub names are plain, but input is input).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The runner to create with a just-in-time configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JitConfigRequest {
    pub name: String,
    pub runner_group_id: u64,
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_folder: Option<String>,
}

/// A just-in-time runner configuration: hand `encoded_jit_config` to `run.sh --jitconfig`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JitConfig {
    pub runner: Runner,
    pub encoded_jit_config: Secret,
}

/// A runner registration token (the fallback when JIT configuration is not available).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegistrationToken {
    pub token: Secret,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A self-hosted runner as GitHub sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub runner_group_id: Option<u64>,
    pub os: String,
    /// `online` or `offline`.
    pub status: String,
    pub busy: bool,
    #[serde(default)]
    pub ephemeral: Option<bool>,
    pub labels: Vec<RunnerLabel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerLabel {
    #[serde(default)]
    pub id: Option<u64>,
    pub name: String,
    /// `read-only` (set by GitHub) or `custom`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A workflow run, as `GET /repos/{owner}/{repo}/actions/runs` lists it (the fields runway
/// reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u32>,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// The repository the run belongs to.
    pub repository: Repository,
}

// A job read through the API is the webhook intake's type too.
pub use runway_github_types::{Account, Repository, WorkflowJob};

/// A repository as `GET /installation/repositories` lists it: the repository, and when it
/// last changed (for choosing the repositories worth checking).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRepository {
    #[serde(flatten)]
    pub repository: Repository,
    /// The last push to any branch (RFC 3339).
    #[serde(default)]
    pub pushed_at: Option<String>,
    /// The last change to the repository itself (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl InstallationRepository {
    /// The later of `pushed_at` and `updated_at`, when either reads as a time.
    pub fn last_activity(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        [&self.pushed_at, &self.updated_at]
            .into_iter()
            .flatten()
            .filter_map(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|time| time.with_timezone(&chrono::Utc))
            .max()
    }
}

/// Where the GitHub App's webhook goes (`GET /app/hook/config`). GitHub never shows the
/// secret: `secret` is `********` when one is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AppWebhookConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
}

/// One delivery of the GitHub App's webhook (`GET /app/hook/deliveries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: chrono::DateTime<chrono::Utc>,
    /// `OK`, `Invalid HTTP Response: 401`, `failed to connect`, ...
    pub status: String,
    /// The receiver's answer (0 when there was none).
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub redelivery: bool,
}
