//! Which jobs runway takes on.

use crate::event::WorkflowJobEvent;

/// The label every job meant for runway's runners carries.
pub const DEFAULT_RUNNER_LABEL: &str = "self-hosted";

/// Cheap checks made before any work: the runner label and the allow-lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    runner_label: String,
    allowed_owners: Vec<String>,
    allowed_repositories: Vec<String>,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            runner_label: DEFAULT_RUNNER_LABEL.to_owned(),
            allowed_owners: Vec::new(),
            allowed_repositories: Vec::new(),
        }
    }
}

impl JobFilter {
    /// Jobs must carry `label` (compared case-insensitively, as GitHub does).
    pub fn with_runner_label(mut self, label: impl Into<String>) -> Self {
        self.runner_label = label.into();
        self
    }

    /// Only jobs of repositories owned by these accounts (organizations or users) are taken,
    /// together with those of [`JobFilter::allow_repositories`]. Both empty: every owner.
    pub fn allow_owners<I, S>(mut self, owners: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_owners = owners.into_iter().map(Into::into).collect();
        self
    }

    /// Only jobs of these repositories (`owner/name`), together with those of
    /// [`JobFilter::allow_owners`]. Both empty: every repository.
    pub fn allow_repositories<I, S>(mut self, repositories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_repositories = repositories.into_iter().map(Into::into).collect();
        self
    }

    pub fn runner_label(&self) -> &str {
        &self.runner_label
    }

    /// The owners of [`JobFilter::allow_owners`].
    pub fn allowed_owners(&self) -> &[String] {
        &self.allowed_owners
    }

    /// The repositories of [`JobFilter::allow_repositories`].
    pub fn allowed_repositories(&self) -> &[String] {
        &self.allowed_repositories
    }

    /// `Ok(())` when runway should handle the job, or why it should not.
    pub fn check(&self, event: &WorkflowJobEvent) -> Result<(), String> {
        if !self.asks_for_runner_label(&event.job.labels) {
            return Err(format!(
                "labels {:?} do not include {:?}",
                event.job.labels, self.runner_label
            ));
        }
        if !self.allowed(event) {
            return Err(format!(
                "repository {} is not in the allow-list",
                event.repository.full_name
            ));
        }
        Ok(())
    }

    /// Whether a job asking for `job_labels` asks for runway's runner label (case-insensitively),
    /// i.e. is meant for runway at all. This is not GitHub's runner-matching rule (whether a
    /// runner offers every label a job asks for: `runway_github_types::labels_match`): which
    /// pool serves the job is decided later, by routing.
    pub fn asks_for_runner_label(&self, job_labels: &[String]) -> bool {
        job_labels
            .iter()
            .any(|label| label.eq_ignore_ascii_case(&self.runner_label))
    }

    fn allowed(&self, event: &WorkflowJobEvent) -> bool {
        if self.allowed_owners.is_empty() && self.allowed_repositories.is_empty() {
            return true;
        }
        // GitHub account and repository names are case-insensitive.
        let owners = [event.owner_login(), event.repository.owner.login.as_str()];
        self.allowed_owners.iter().any(|allowed| {
            owners
                .iter()
                .any(|owner| owner.eq_ignore_ascii_case(allowed))
        }) || self
            .allowed_repositories
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&event.repository.full_name))
    }
}

/// Which GitHub App installations' events runway acts on.
///
/// Every installation of the App signs its deliveries with the App's one webhook secret, so a
/// valid signature does not say the event belongs to the installation runway serves: an
/// account that installs the same App (a public App, or one shared across an enterprise)
/// would otherwise start runners and move slots with its own jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InstallationFilter {
    /// No App (a personal access token): deliveries carry no installation; all are taken.
    #[default]
    Any,
    /// Only events of these installations; an event without an installation is refused.
    Only(std::collections::BTreeSet<u64>),
}

impl InstallationFilter {
    /// Only these installations (at least one).
    pub fn only(ids: impl IntoIterator<Item = u64>) -> InstallationFilter {
        InstallationFilter::Only(ids.into_iter().collect())
    }

    /// `Ok(())` when the event's installation is one runway serves, or why not.
    pub fn check(&self, event: &WorkflowJobEvent) -> Result<(), String> {
        let InstallationFilter::Only(allowed) = self else {
            return Ok(());
        };
        match event
            .installation
            .as_ref()
            .map(|installation| installation.id)
        {
            Some(id) if allowed.contains(&id) => Ok(()),
            Some(id) => Err(format!(
                "installation {id} is not one runway serves ({})",
                list_ids(allowed)
            )),
            None => Err(format!(
                "the event names no GitHub App installation; runway serves installation(s) {}",
                list_ids(allowed)
            )),
        }
    }
}

fn list_ids(ids: &std::collections::BTreeSet<u64>) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a comma-separated list of installation ids (`"123"`, `"123, 456"`).
pub fn parse_installation_ids(text: &str) -> Result<Vec<u64>, String> {
    let ids: Vec<u64> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<u64>()
                .map_err(|_| format!("{item:?} is not an installation id (a number)"))
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err("no installation id given".to_owned());
    }
    Ok(ids)
}
