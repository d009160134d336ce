//! What the reaper is told: how old a thing must be before it may be touched, how much one
//! sweep may do, where runners register, and which repositories' queued jobs to check.
//!
//! ```json
//! {
//!   "grace_seconds": 600,
//!   "unknown_execution_grace_seconds": 950400,
//!   "max_actions_per_sweep": 50,
//!   "github_scopes": [
//!     { "level": "organization", "org": "octo-org" },
//!     { "level": "repository", "owner": "octo-org", "repo": "app" }
//!   ],
//!   "repositories": ["octo-org/app"]
//! }
//! ```

use runway_github::RunnerScope;
use serde::{Deserialize, Serialize};

/// Things younger than this are never touched: a runner just launched, a slot just taken.
pub const DEFAULT_GRACE_SECONDS: u64 = 600;
/// Longer than the job machine's 10-day timeout: once this old, nothing can belong to a
/// running execution, whatever the workflow service says.
pub const DEFAULT_UNKNOWN_EXECUTION_GRACE_SECONDS: u64 = 11 * 24 * 3600;
pub const DEFAULT_MAX_ACTIONS_PER_SWEEP: u32 = 50;

/// Why a configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reaper configuration: {0}")]
pub struct ReaperConfigError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaperConfig {
    /// Runners, registrations and slots younger than this are left alone.
    #[serde(default = "default_grace")]
    pub grace_seconds: u64,
    /// Things whose execution the workflow service does not know (never started, past its
    /// retention, or a job state machine ARN that is wrong) are left alone until this old.
    #[serde(default = "default_unknown_grace")]
    pub unknown_execution_grace_seconds: u64,
    /// One sweep does at most this many things; the next scheduled run does the rest.
    #[serde(default = "default_max_actions")]
    pub max_actions_per_sweep: u32,
    /// Where runway's runners register (an enterprise named by the job flow's
    /// `github.scope` is searched too): `offline-runners` looks here.
    #[serde(default)]
    pub github_scopes: Vec<RunnerScope>,
    /// The repositories (`owner/name`) whose queued jobs `lost-jobs` checks. Empty: every
    /// repository the GitHub App installation can access.
    #[serde(default)]
    pub repositories: Vec<String>,
}

fn default_grace() -> u64 {
    DEFAULT_GRACE_SECONDS
}

fn default_unknown_grace() -> u64 {
    DEFAULT_UNKNOWN_EXECUTION_GRACE_SECONDS
}

fn default_max_actions() -> u32 {
    DEFAULT_MAX_ACTIONS_PER_SWEEP
}

impl Default for ReaperConfig {
    fn default() -> Self {
        ReaperConfig {
            grace_seconds: DEFAULT_GRACE_SECONDS,
            unknown_execution_grace_seconds: DEFAULT_UNKNOWN_EXECUTION_GRACE_SECONDS,
            max_actions_per_sweep: DEFAULT_MAX_ACTIONS_PER_SWEEP,
            github_scopes: Vec::new(),
            repositories: Vec::new(),
        }
    }
}

impl ReaperConfig {
    /// Parses the JSON form; an empty text is the default configuration.
    pub fn from_json(text: &str) -> Result<ReaperConfig, ReaperConfigError> {
        if text.trim().is_empty() {
            return Ok(ReaperConfig::default());
        }
        let config: ReaperConfig =
            serde_json::from_str(text).map_err(|error| ReaperConfigError(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ReaperConfigError> {
        if self.max_actions_per_sweep == 0 {
            return Err(ReaperConfigError(
                "max_actions_per_sweep is 0, so no sweep could do anything: give at least 1".into(),
            ));
        }
        if self.unknown_execution_grace_seconds < self.grace_seconds {
            return Err(ReaperConfigError(format!(
                "unknown_execution_grace_seconds ({}) is shorter than grace_seconds ({}): things \
                 of executions the service does not know must wait at least as long",
                self.unknown_execution_grace_seconds, self.grace_seconds
            )));
        }
        for scope in &self.github_scopes {
            let empty = match scope {
                RunnerScope::Repository { owner, repo } => owner.is_empty() || repo.is_empty(),
                RunnerScope::Organization { org } => org.is_empty(),
                RunnerScope::Enterprise { enterprise } => enterprise.is_empty(),
            };
            if empty {
                return Err(ReaperConfigError(format!(
                    "github_scopes has an entry with an empty name ({scope:?}): name the \
                     repository, organization or enterprise"
                )));
            }
        }
        for repository in &self.repositories {
            if split_repository(repository).is_none() {
                return Err(ReaperConfigError(format!(
                    "repositories has {repository:?}: write each repository as owner/name"
                )));
            }
        }
        Ok(())
    }
}

/// `owner/name` → (owner, name), both non-empty, no further `/`.
pub(crate) fn split_repository(full_name: &str) -> Option<(&str, &str)> {
    let (owner, name) = full_name.split_once('/')?;
    let plain = |part: &str| !part.trim().is_empty() && part.trim() == part;
    (plain(owner) && plain(name) && !name.contains('/')).then_some((owner, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_document_is_the_default() {
        assert_eq!(
            ReaperConfig::from_json("").unwrap(),
            ReaperConfig::default()
        );
        assert_eq!(
            ReaperConfig::from_json("{}").unwrap(),
            ReaperConfig::default()
        );
    }

    #[test]
    fn scopes_and_bounds_are_read() {
        let config = ReaperConfig::from_json(
            r#"{"grace_seconds": 0, "max_actions_per_sweep": 3,
                "github_scopes": [{"level": "organization", "org": "octo-org"}],
                "repositories": ["octo-org/app"]}"#,
        )
        .unwrap();
        assert_eq!(config.repositories, ["octo-org/app"]);
        assert_eq!(config.grace_seconds, 0);
        assert_eq!(config.max_actions_per_sweep, 3);
        assert_eq!(
            config.github_scopes,
            [RunnerScope::organization("octo-org")]
        );
    }

    #[test]
    fn bad_documents_say_what_to_fix() {
        for (text, expected) in [
            (r#"{"max_actions_per_sweep": 0}"#, "at least 1"),
            (
                r#"{"grace_seconds": 100, "unknown_execution_grace_seconds": 10}"#,
                "shorter",
            ),
            (
                r#"{"github_scopes": [{"level": "organization", "org": ""}]}"#,
                "empty name",
            ),
            (r#"{"grace": 1}"#, "unknown field"),
            (r#"{"repositories": ["octo-org"]}"#, "owner/name"),
            (r#"{"repositories": ["octo-org/app/x"]}"#, "owner/name"),
            (r#"{"repositories": ["/app"]}"#, "owner/name"),
            (r#""every hour""#, "invalid type"),
        ] {
            let error = ReaperConfig::from_json(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn repository_names_split_back(owner in "[A-Za-z0-9-]{1,20}", name in "[A-Za-z0-9._-]{1,20}") {
            let full = format!("{owner}/{name}");
            proptest::prop_assert_eq!(split_repository(&full), Some((owner.as_str(), name.as_str())));
        }

        #[test]
        fn splitting_never_panics(text in "\\PC{0,40}") {
            if let Some((owner, name)) = split_repository(&text) {
                proptest::prop_assert!(!owner.is_empty() && !name.contains('/'));
            }
        }
    }
}
