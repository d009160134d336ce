//! What the reaper is told: how old a thing must be before it may be touched, how much one
//! sweep may do (actions, GitHub requests, the rate limit it leaves to provisioning), where
//! runners register, which repositories' queued jobs to check, and how often a job whose
//! execution failed for a transient cause is started again.
//!
//! ```json
//! {
//!   "grace_seconds": 600,
//!   "unknown_execution_grace_seconds": 950400,
//!   "max_actions_per_sweep": 50,
//!   "github_requests_per_sweep": 300,
//!   "rate_limit_reserve": 1000,
//!   "active_within_seconds": 604800,
//!   "job_lookups_per_sweep": 20,
//!   "max_retries": 2,
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
/// GitHub requests (those GitHub counts against the rate limit) one sweep may make: with
/// conditional requests an unchanged repository costs nothing, so this bounds the first
/// sweep and busy times.
pub const DEFAULT_GITHUB_REQUESTS_PER_SWEEP: u32 = 300;
/// Requests left in GitHub's rate-limit window below which sweeps stop: provisioning
/// (JIT configs, job and runner look-ups) shares the installation's limit.
pub const DEFAULT_RATE_LIMIT_RESERVE: u64 = 1000;
/// Repositories pushed to or changed within this long are checked for lost jobs (when no
/// repository or owner is listed).
pub const DEFAULT_ACTIVE_WITHIN_SECONDS: u64 = 7 * 24 * 3600;
/// Slots of running executions whose job is looked up on GitHub per sweep.
pub const DEFAULT_JOB_LOOKUPS_PER_SWEEP: u32 = 20;
/// New executions for one job whose executions failed for a transient cause.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// The most `max_retries` may be.
pub const MAX_RETRIES_LIMIT: u32 = 10;

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
    /// The repositories (`owner/name`) whose queued jobs `lost-jobs` checks. Empty: those the
    /// webhook intake allows (`RUNWAY_ALLOWED_REPOSITORIES`, and the repositories of
    /// `RUNWAY_ALLOWED_OWNERS`), or, with no allow-list, the installation's repositories
    /// active within `active_within_seconds`.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// GitHub requests counted against the rate limit that one sweep may make (`304 Not
    /// Modified` answers are free); the report says where it stopped.
    #[serde(default = "default_github_requests")]
    pub github_requests_per_sweep: u32,
    /// A sweep stops once GitHub's rate limit, as last seen, has fewer requests left than
    /// this: they are kept for provisioning.
    #[serde(default = "default_reserve")]
    pub rate_limit_reserve: u64,
    /// Without listed repositories or owners, `lost-jobs` checks the installation's
    /// repositories pushed to or changed within this many seconds.
    #[serde(default = "default_active_within")]
    pub active_within_seconds: u64,
    /// `stale-slots` looks up on GitHub the jobs of at most this many slots held by running
    /// executions, to free those whose job completed without its webhook.
    #[serde(default = "default_job_lookups")]
    pub job_lookups_per_sweep: u32,
    /// `lost-jobs` starts a job whose execution failed for a transient cause, and that is
    /// still queued, again at most this many times (0: never).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

fn default_github_requests() -> u32 {
    DEFAULT_GITHUB_REQUESTS_PER_SWEEP
}

fn default_reserve() -> u64 {
    DEFAULT_RATE_LIMIT_RESERVE
}

fn default_active_within() -> u64 {
    DEFAULT_ACTIVE_WITHIN_SECONDS
}

fn default_job_lookups() -> u32 {
    DEFAULT_JOB_LOOKUPS_PER_SWEEP
}

fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
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
            github_requests_per_sweep: DEFAULT_GITHUB_REQUESTS_PER_SWEEP,
            rate_limit_reserve: DEFAULT_RATE_LIMIT_RESERVE,
            active_within_seconds: DEFAULT_ACTIVE_WITHIN_SECONDS,
            job_lookups_per_sweep: DEFAULT_JOB_LOOKUPS_PER_SWEEP,
            max_retries: DEFAULT_MAX_RETRIES,
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
        if self.github_requests_per_sweep == 0 {
            return Err(ReaperConfigError(
                "github_requests_per_sweep is 0, so lost-jobs could not even list a repository: \
                 give at least 1"
                    .into(),
            ));
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(ReaperConfigError(format!(
                "max_retries is {}: at most {MAX_RETRIES_LIMIT} (a job that keeps failing needs \
                 a look, not more executions)",
                self.max_retries
            )));
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
                "repositories": ["octo-org/app"], "github_requests_per_sweep": 7,
                "rate_limit_reserve": 99, "active_within_seconds": 60,
                "job_lookups_per_sweep": 4, "max_retries": 0}"#,
        )
        .unwrap();
        assert_eq!(
            (
                config.github_requests_per_sweep,
                config.rate_limit_reserve,
                config.active_within_seconds,
                config.job_lookups_per_sweep,
                config.max_retries
            ),
            (7, 99, 60, 4, 0)
        );
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
            (r#"{"github_requests_per_sweep": 0}"#, "at least 1"),
            (r#"{"max_retries": 11}"#, "at most 10"),
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
