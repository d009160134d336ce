//! The emulated world: accounts, runners, jobs, deliveries and fault switches, and the rules
//! that move jobs between runners. Everything here runs under one lock and never awaits.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::config::{AppConfig, EmulatorConfig};
use crate::matching::{Scope, labels_match};

/// The one runner group every runner belongs to unless asked otherwise.
pub const DEFAULT_RUNNER_GROUP_ID: u64 = 1;
pub const DEFAULT_RUNNER_GROUP_NAME: &str = "Default";

#[derive(Debug, Clone)]
pub struct Account {
    pub login: String,
    pub id: u64,
    pub is_org: bool,
    pub enterprise: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Repository {
    pub id: u64,
    pub owner: Account,
    pub name: String,
}

impl Repository {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner.login, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Enterprise {
    pub slug: String,
}

/// A runner label as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerLabel {
    pub id: u64,
    pub name: String,
    /// `read-only` (added by GitHub) or `custom`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct Runner {
    pub id: u64,
    pub name: String,
    pub scope: Scope,
    pub labels: Vec<RunnerLabel>,
    pub group_id: u64,
    pub group_name: String,
    pub ephemeral: bool,
    pub credential: String,
    pub os: String,
    /// Set once the runner process has connected.
    pub version: Option<String>,
    pub last_seen: Option<DateTime<Utc>>,
    /// The job given to this runner (acquired or running).
    pub job: Option<u64>,
    pub jobs_run: u32,
}

impl Runner {
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }

    pub fn online(&self, now: DateTime<Utc>, offline_after: Duration) -> bool {
        match self.last_seen {
            Some(seen) => (now - seen)
                .to_std()
                .map(|idle| idle <= offline_after)
                .unwrap_or(true),
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }
}

/// The runner a job ran on, as the job remembers it after the runner is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRef {
    pub id: u64,
    pub name: String,
    pub group_id: u64,
    pub group_name: String,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    pub repository: String,
    pub labels: Vec<String>,
    pub name: String,
    pub workflow_name: String,
    pub head_branch: String,
    pub head_sha: String,
    pub status: JobStatus,
    pub conclusion: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The idle runner this job was handed to; it has not necessarily started yet.
    pub assigned_runner: Option<u64>,
    /// The runner that started the job (set when it goes in progress).
    pub runner: Option<RunnerRef>,
    pub duration: Duration,
    /// What the runner reports when the job finishes.
    pub planned_conclusion: String,
}

/// Counters for injected failures. Each counter is consumed one event at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Webhooks recorded but not sent.
    pub drop_webhooks: u32,
    /// When set, `drop_webhooks` drops only webhooks of this action (`queued`,
    /// `in_progress`, `completed`); the others are sent.
    pub drop_webhooks_action: Option<String>,
    /// Webhooks of one action recorded but not sent, by action (`queued`, `in_progress`,
    /// `completed`): each counter waits for a webhook of its own action, however long that
    /// takes, so a drop of `completed` webhooks armed early is consumed when jobs finish.
    pub drop_webhooks_by_action: BTreeMap<String, u32>,
    /// Webhooks sent twice, with the same delivery id (as a redelivery would be).
    pub duplicate_webhooks: u32,
    /// REST calls answered with `server_error_status`.
    pub server_errors: u32,
    /// The status for `server_errors` (default 500).
    pub server_error_status: Option<u16>,
    /// REST calls answered `429` with `Retry-After: 1`: GitHub's secondary rate limit, which
    /// slows a burst of requests down without spending the installation's hourly limit
    /// (exhausting that one is `set_rate_limit`'s job).
    pub rate_limits: u32,
}

/// What happened to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Queued for sending.
    Pending,
    /// The receiver answered (any status).
    Delivered,
    /// Dropped by a fault switch.
    Dropped,
    /// No webhook target is configured.
    Skipped,
    /// The request failed (connection refused, timeout).
    Failed,
}

/// One webhook delivery, as `GET /_emulator/deliveries` shows it.
/// What sending one webhook came to: GitHub's response status, or why nothing came back.
pub(crate) type SendResult = Result<u16, String>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Position in the order webhooks were produced.
    pub sequence: u64,
    /// The `X-GitHub-Delivery` GUID.
    pub guid: String,
    pub event: String,
    pub action: String,
    pub job_id: u64,
    /// True for the second copy sent by the duplicate switch.
    pub duplicate: bool,
    pub outcome: DeliveryOutcome,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub payload: serde_json::Value,
    /// When it was sent (GitHub's `delivered_at`); `None` until it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// Records how sending it went.
    pub(crate) fn complete(&mut self, result: SendResult) {
        match result {
            Ok(status) => {
                self.outcome = DeliveryOutcome::Delivered;
                self.response_status = Some(status);
            }
            Err(error) => {
                self.outcome = DeliveryOutcome::Failed;
                self.error = Some(error);
            }
        }
    }
}

/// A webhook waiting for the delivery task.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub sequence: u64,
    pub guid: String,
    pub action: String,
    pub job_id: u64,
    pub copies: u32,
    pub body: Vec<u8>,
}

/// The change a webhook announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    Queued,
    InProgress,
    Completed,
}

impl JobEvent {
    pub fn action(self) -> &'static str {
        match self {
            JobEvent::Queued => "queued",
            JobEvent::InProgress => "in_progress",
            JobEvent::Completed => "completed",
        }
    }
}

/// Errors of the emulated world, mapped to GitHub's status codes by the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("runner {0} was removed")]
    RunnerGone(u64),
}

/// An installation token: when it expires, and the installation whose accounts it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedToken {
    pub expires_at: DateTime<Utc>,
    pub installation_id: u64,
}

pub struct World {
    pub accounts: Vec<Account>,
    pub repositories: Vec<Repository>,
    pub enterprises: Vec<Enterprise>,
    pub runners: BTreeMap<u64, Runner>,
    pub jobs: BTreeMap<u64, Job>,
    /// The jobs not completed yet: the scans that run on every runner poll (assignment, lost
    /// work) walk these, not every job of the day.
    open_jobs: BTreeSet<u64>,
    pub deliveries: Vec<Delivery>,
    /// See [`crate::EmulatorConfig::deliveries_kept`].
    deliveries_kept: usize,
    pub faults: Faults,
    /// Installation tokens issued through `POST /app/installations/{id}/access_tokens`.
    pub issued_tokens: BTreeMap<String, IssuedToken>,
    /// Credentials of runners that were removed, so their processes learn they are gone.
    pub removed_credentials: HashSet<String>,
    /// Job changes waiting to become webhooks, in order.
    pub pending_events: Vec<(u64, JobEvent)>,
    next_runner_id: u64,
    next_label_id: u64,
    next_job_id: u64,
    next_run_id: u64,
    next_sequence: u64,
    rng: StdRng,
    pub offline_after: Duration,
}

/// What a caller asks for when queuing a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// `owner/name` of a configured repository.
    pub repository: String,
    pub labels: Vec<String>,
    /// How long the runner works on it (fractions allowed).
    #[serde(default = "default_duration_seconds")]
    pub duration_seconds: f64,
    /// `success` unless asked otherwise (`failure`, ...).
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub workflow_name: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    /// Reuse a run id (several jobs of one run); a new run otherwise.
    #[serde(default)]
    pub run_id: Option<u64>,
    #[serde(default)]
    pub run_attempt: Option<u32>,
}

fn default_duration_seconds() -> f64 {
    1.0
}

impl NewJob {
    pub fn new(repository: impl Into<String>, labels: &[&str]) -> Self {
        NewJob {
            repository: repository.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            duration_seconds: default_duration_seconds(),
            conclusion: None,
            name: None,
            workflow_name: None,
            head_branch: None,
            run_id: None,
            run_attempt: None,
        }
    }

    pub fn lasting(mut self, duration: Duration) -> Self {
        self.duration_seconds = duration.as_secs_f64();
        self
    }
}

/// What `POST /_emulator/jobs` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedJob {
    pub job_id: u64,
    pub run_id: u64,
}

/// What a runner is handed when it acquires a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedJob {
    pub job_id: u64,
    pub run_id: u64,
    pub repository: String,
    pub labels: Vec<String>,
    pub name: String,
    pub duration_seconds: f64,
    pub conclusion: String,
}

impl World {
    pub fn new(config: &EmulatorConfig) -> Result<World, WorldError> {
        let mut world = World {
            accounts: Vec::new(),
            repositories: Vec::new(),
            enterprises: Vec::new(),
            runners: BTreeMap::new(),
            jobs: BTreeMap::new(),
            open_jobs: BTreeSet::new(),
            deliveries: Vec::new(),
            deliveries_kept: config.deliveries_kept.max(1),
            faults: Faults::default(),
            issued_tokens: BTreeMap::new(),
            removed_credentials: HashSet::new(),
            pending_events: Vec::new(),
            next_runner_id: 1,
            next_label_id: 1,
            next_job_id: 29_679_449_001,
            next_run_id: 10_945_129_001,
            next_sequence: 1,
            rng: StdRng::seed_from_u64(config.seed),
            offline_after: config.runner_offline_after,
        };
        for enterprise in &config.enterprises {
            world.enterprises.push(Enterprise {
                slug: enterprise.slug.clone(),
            });
        }
        for org in &config.organizations {
            let enterprise = config
                .enterprises
                .iter()
                .find(|e| e.organizations.iter().any(|o| o.eq_ignore_ascii_case(org)))
                .map(|e| e.slug.clone());
            world.add_account(org, true, enterprise);
        }
        for full_name in &config.repositories {
            let Some((owner, name)) = full_name.split_once('/') else {
                return Err(WorldError::Invalid(format!(
                    "repository {full_name:?} must be written owner/name"
                )));
            };
            if owner.is_empty() || name.is_empty() || name.contains('/') {
                return Err(WorldError::Invalid(format!(
                    "repository {full_name:?} must be written owner/name"
                )));
            }
            if world.account(owner).is_none() {
                world.add_account(owner, false, None);
            }
            let owner = world
                .account(owner)
                .cloned()
                .ok_or_else(|| WorldError::NotFound(format!("account {owner}")))?;
            let id = 700_000_000 + world.repositories.len() as u64 + 1;
            world.repositories.push(Repository {
                id,
                owner,
                name: name.to_string(),
            });
        }
        world.check_installations(&config.app)?;
        Ok(world)
    }

    /// Every account given an installation of its own must exist, once: a misspelt login would
    /// otherwise leave the account under the default installation without a word.
    fn check_installations(&self, app: &AppConfig) -> Result<(), WorldError> {
        let mut seen: Vec<&str> = Vec::new();
        for login in app.installations.keys() {
            if self.account(login).is_none() {
                return Err(WorldError::Invalid(format!(
                    "app installation for {login:?}: no configured organization or repository owner has that login"
                )));
            }
            if seen.iter().any(|other| other.eq_ignore_ascii_case(login)) {
                return Err(WorldError::Invalid(format!(
                    "app installation for {login:?} is listed twice (logins compare case-insensitively)"
                )));
            }
            seen.push(login);
        }
        Ok(())
    }

    fn add_account(&mut self, login: &str, is_org: bool, enterprise: Option<String>) {
        let id = 90_000_000 + self.accounts.len() as u64 + 1;
        self.accounts.push(Account {
            login: login.to_string(),
            id,
            is_org,
            enterprise,
        });
    }

    pub fn account(&self, login: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.login.eq_ignore_ascii_case(login))
    }

    pub fn organization(&self, login: &str) -> Option<&Account> {
        self.account(login).filter(|a| a.is_org)
    }

    pub fn enterprise(&self, slug: &str) -> Option<&Enterprise> {
        self.enterprises
            .iter()
            .find(|e| e.slug.eq_ignore_ascii_case(slug))
    }

    pub fn repository(&self, owner: &str, name: &str) -> Option<&Repository> {
        self.repositories.iter().find(|r| {
            r.owner.login.eq_ignore_ascii_case(owner) && r.name.eq_ignore_ascii_case(name)
        })
    }

    pub fn repository_by_full_name(&self, full_name: &str) -> Option<&Repository> {
        let (owner, name) = full_name.split_once('/')?;
        self.repository(owner, name)
    }

    /// Checks that a scope names a configured repository, organization or enterprise.
    pub fn check_scope(&self, scope: &Scope) -> Result<(), WorldError> {
        let known = match scope {
            Scope::Repository { owner, repo } => self.repository(owner, repo).is_some(),
            Scope::Organization { org } => self.organization(org).is_some(),
            Scope::Enterprise { enterprise } => self.enterprise(enterprise).is_some(),
        };
        if known {
            Ok(())
        } else {
            Err(WorldError::NotFound(scope.to_string()))
        }
    }

    /// The scope spelled as configured, or `NotFound`.
    pub fn canonical_scope(&self, scope: &Scope) -> Result<Scope, WorldError> {
        let canonical = match scope {
            Scope::Repository { owner, repo } => self
                .repository(owner, repo)
                .map(|r| Scope::repository(&r.owner.login, &r.name)),
            Scope::Organization { org } => self
                .organization(org)
                .map(|a| Scope::organization(&a.login)),
            Scope::Enterprise { enterprise } => self
                .enterprise(enterprise)
                .map(|e| Scope::enterprise(&e.slug)),
        };
        canonical.ok_or_else(|| WorldError::NotFound(scope.to_string()))
    }

    /// Registers a just-in-time runner: ephemeral, offline until its process connects.
    pub fn add_jit_runner(
        &mut self,
        scope: Scope,
        name: &str,
        group_id: u64,
        labels: &[String],
        credential: String,
    ) -> Result<u64, WorldError> {
        self.check_scope(&scope)?;
        if name.trim().is_empty() {
            return Err(WorldError::Invalid("name must not be empty".to_string()));
        }
        if labels.is_empty() || labels.len() > 100 {
            return Err(WorldError::Invalid(
                "labels must name between 1 and 100 labels".to_string(),
            ));
        }
        if labels.iter().any(|l| l.trim().is_empty()) {
            return Err(WorldError::Invalid("labels must not be empty".to_string()));
        }
        if self
            .runners
            .values()
            .any(|r| r.scope.same_as(&scope) && r.name.eq_ignore_ascii_case(name))
        {
            return Err(WorldError::Conflict(format!(
                "Already exists - A runner with the name {name} already exists."
            )));
        }
        let mut runner_labels = Vec::new();
        if !labels.iter().any(|l| l.eq_ignore_ascii_case("self-hosted")) {
            runner_labels.push(self.label("self-hosted", "read-only"));
        }
        for label in labels {
            let kind = if label.eq_ignore_ascii_case("self-hosted") {
                "read-only"
            } else {
                "custom"
            };
            if !runner_labels
                .iter()
                .any(|l: &RunnerLabel| l.name.eq_ignore_ascii_case(label))
            {
                runner_labels.push(self.label(label, kind));
            }
        }
        let id = self.next_runner_id;
        self.next_runner_id += 1;
        let group_name = if group_id == DEFAULT_RUNNER_GROUP_ID {
            DEFAULT_RUNNER_GROUP_NAME.to_string()
        } else {
            format!("group-{group_id}")
        };
        self.runners.insert(
            id,
            Runner {
                id,
                name: name.to_string(),
                scope,
                labels: runner_labels,
                group_id,
                group_name,
                ephemeral: true,
                credential,
                os: "linux".to_string(),
                version: None,
                last_seen: None,
                job: None,
                jobs_run: 0,
            },
        );
        Ok(id)
    }

    fn label(&mut self, name: &str, kind: &str) -> RunnerLabel {
        let id = self.next_label_id;
        self.next_label_id += 1;
        RunnerLabel {
            id,
            name: name.to_string(),
            kind: kind.to_string(),
        }
    }

    /// Records a delivery; past the retention the oldest finished ones are forgotten (in
    /// batches, so that recording stays cheap).
    pub fn record_delivery(&mut self, delivery: Delivery) {
        self.deliveries.push(delivery);
        let slack = (self.deliveries_kept / 4).max(64);
        if self.deliveries.len() <= self.deliveries_kept + slack {
            return;
        }
        let mut excess = self.deliveries.len() - self.deliveries_kept;
        self.deliveries.retain(|delivery| {
            if excess > 0 && delivery.outcome != DeliveryOutcome::Pending {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// The jobs not completed yet, oldest first.
    fn open_jobs(&self) -> impl Iterator<Item = &Job> {
        self.open_jobs.iter().filter_map(|id| self.jobs.get(id))
    }

    pub fn runner_by_credential(&self, credential: &str) -> Option<&Runner> {
        self.runners.values().find(|r| r.credential == credential)
    }

    /// The runner process connected (or polled): it is online.
    pub fn touch_runner(
        &mut self,
        runner_id: u64,
        now: DateTime<Utc>,
        version: Option<String>,
    ) -> Result<(), WorldError> {
        let runner = self
            .runners
            .get_mut(&runner_id)
            .ok_or(WorldError::RunnerGone(runner_id))?;
        runner.last_seen = Some(now);
        if version.is_some() {
            runner.version = version;
        }
        Ok(())
    }

    /// The runs of `repository` (`owner/name`), newest first: run id → the jobs of its latest
    /// attempt, in the order they were queued.
    pub fn runs(&self, repository: &str) -> Vec<(u64, Vec<&Job>)> {
        let mut runs: BTreeMap<u64, Vec<&Job>> = BTreeMap::new();
        for job in self
            .jobs
            .values()
            .filter(|job| job.repository.eq_ignore_ascii_case(repository))
        {
            runs.entry(job.run_id).or_default().push(job);
        }
        runs.into_iter()
            .rev()
            .map(|(run_id, jobs)| {
                let latest = jobs.iter().map(|job| job.run_attempt).max().unwrap_or(1);
                let jobs = jobs
                    .into_iter()
                    .filter(|job| job.run_attempt == latest)
                    .collect();
                (run_id, jobs)
            })
            .collect()
    }

    pub fn create_job(
        &mut self,
        new: &NewJob,
        now: DateTime<Utc>,
    ) -> Result<CreatedJob, WorldError> {
        let repository = self
            .repository_by_full_name(&new.repository)
            .ok_or_else(|| WorldError::NotFound(format!("repository {}", new.repository)))?
            .full_name();
        if !new.duration_seconds.is_finite() || new.duration_seconds < 0.0 {
            return Err(WorldError::Invalid(
                "duration_seconds must be a number of seconds, 0 or more".to_string(),
            ));
        }
        if new.labels.iter().any(|l| l.trim().is_empty()) {
            return Err(WorldError::Invalid("labels must not be empty".to_string()));
        }
        let id = self.next_job_id;
        self.next_job_id += 1;
        let run_id = match new.run_id {
            Some(run_id) => run_id,
            None => {
                let run_id = self.next_run_id;
                self.next_run_id += 1;
                run_id
            }
        };
        self.open_jobs.insert(id);
        self.jobs.insert(
            id,
            Job {
                id,
                run_id,
                run_attempt: new.run_attempt.unwrap_or(1),
                repository,
                labels: new.labels.clone(),
                name: new.name.clone().unwrap_or_else(|| "build".to_string()),
                workflow_name: new
                    .workflow_name
                    .clone()
                    .unwrap_or_else(|| "CI".to_string()),
                head_branch: new
                    .head_branch
                    .clone()
                    .unwrap_or_else(|| "main".to_string()),
                head_sha: format!("{:040x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                status: JobStatus::Queued,
                conclusion: None,
                created_at: now,
                started_at: None,
                completed_at: None,
                assigned_runner: None,
                runner: None,
                duration: Duration::from_secs_f64(new.duration_seconds),
                planned_conclusion: new
                    .conclusion
                    .clone()
                    .unwrap_or_else(|| "success".to_string()),
            },
        );
        self.pending_events.push((id, JobEvent::Queued));
        self.assign(now);
        Ok(CreatedJob { job_id: id, run_id })
    }

    /// Hands queued jobs, oldest first, to idle online runners whose labels contain all the
    /// job's labels; among several such runners one is picked at random (seeded).
    pub fn assign(&mut self, now: DateTime<Utc>) {
        let offline_after = self.offline_after;
        // A job handed to a runner that went silent before starting it goes back to the queue.
        for job_id in &self.open_jobs {
            let Some(job) = self.jobs.get_mut(job_id) else {
                continue;
            };
            let Some(runner_id) = job.assigned_runner else {
                continue;
            };
            if job.status != JobStatus::Queued {
                continue;
            }
            let silent = self
                .runners
                .get(&runner_id)
                .is_none_or(|r| !r.online(now, offline_after));
            if silent {
                job.assigned_runner = None;
                if let Some(runner) = self.runners.get_mut(&runner_id) {
                    runner.job = None;
                }
            }
        }
        let waiting: Vec<u64> = self
            .open_jobs()
            .filter(|j| j.status == JobStatus::Queued && j.assigned_runner.is_none())
            .map(|j| j.id)
            .collect();
        if waiting.is_empty() {
            return;
        }
        // The idle runners, in id order, each with its labels read once: this runs on every
        // runner poll, so it must not grow with jobs × runners allocations.
        let mut idle: Vec<(u64, Vec<String>)> = self
            .runners
            .values()
            .filter(|r| r.job.is_none() && r.online(now, offline_after))
            .map(|r| (r.id, r.label_names()))
            .collect();
        for job_id in waiting {
            if idle.is_empty() {
                break;
            }
            let Some(job) = self.jobs.get(&job_id) else {
                continue;
            };
            let Some(repository) = self.repository_by_full_name(&job.repository) else {
                continue;
            };
            let owner = &repository.owner.login;
            let name = &repository.name;
            let enterprise = repository.owner.enterprise.as_deref();
            let candidates: Vec<usize> = idle
                .iter()
                .enumerate()
                .filter(|(_, (runner_id, labels))| {
                    self.runners
                        .get(runner_id)
                        .is_some_and(|r| r.scope.serves(owner, name, enterprise))
                        && labels_match(&job.labels, labels)
                })
                .map(|(index, _)| index)
                .collect();
            let Some(&index) = candidates.choose(&mut self.rng) else {
                continue;
            };
            // `remove`, not `swap_remove`: the order of the rest, and so the seeded choices
            // that follow, stay as they were.
            let (runner_id, _) = idle.remove(index);
            if let Some(runner) = self.runners.get_mut(&runner_id) {
                runner.job = Some(job_id);
            }
            if let Some(job) = self.jobs.get_mut(&job_id) {
                job.assigned_runner = Some(runner_id);
            }
        }
    }

    /// True when [`World::expire_lost`] would change something at `now`.
    pub fn has_lost_work(&self, now: DateTime<Utc>) -> bool {
        self.open_jobs().any(|job| {
            let runner = match job.status {
                JobStatus::InProgress => job.runner.as_ref().map(|r| r.id),
                JobStatus::Queued => job.assigned_runner,
                JobStatus::Completed => None,
            };
            runner.is_some_and(|id| {
                self.runners
                    .get(&id)
                    .is_none_or(|r| !r.online(now, self.offline_after))
            })
        })
    }

    /// A runner that went silent loses its work, as on GitHub: a job it was running fails
    /// (the runner stays listed, offline); a job handed to it but not started is queued again.
    pub fn expire_lost(&mut self, now: DateTime<Utc>) {
        let offline_after = self.offline_after;
        let lost: Vec<(u64, u64)> = self
            .open_jobs()
            .filter(|job| job.status == JobStatus::InProgress)
            .filter_map(|job| job.runner.as_ref().map(|r| (job.id, r.id)))
            .filter(|(_, runner_id)| {
                self.runners
                    .get(runner_id)
                    .is_none_or(|r| !r.online(now, offline_after))
            })
            .collect();
        for (job_id, runner_id) in lost {
            if let Some(job) = self.jobs.get_mut(&job_id) {
                job.status = JobStatus::Completed;
                job.conclusion = Some("failure".to_string());
                job.completed_at = Some(now);
                self.open_jobs.remove(&job_id);
                self.pending_events.push((job_id, JobEvent::Completed));
            }
            if let Some(runner) = self.runners.get_mut(&runner_id) {
                runner.job = None;
                runner.jobs_run += 1;
            }
        }
        self.assign(now);
    }

    /// The job given to this runner, if any.
    pub fn job_for_runner(&self, runner_id: u64) -> Result<Option<AssignedJob>, WorldError> {
        let runner = self
            .runners
            .get(&runner_id)
            .ok_or(WorldError::RunnerGone(runner_id))?;
        let Some(job) = runner.job.and_then(|id| self.jobs.get(&id)) else {
            return Ok(None);
        };
        Ok(Some(AssignedJob {
            job_id: job.id,
            run_id: job.run_id,
            repository: job.repository.clone(),
            labels: job.labels.clone(),
            name: job.name.clone(),
            duration_seconds: job.duration.as_secs_f64(),
            conclusion: job.planned_conclusion.clone(),
        }))
    }

    pub fn start_job(
        &mut self,
        runner_id: u64,
        job_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), WorldError> {
        let runner = self
            .runners
            .get(&runner_id)
            .ok_or(WorldError::RunnerGone(runner_id))?;
        if runner.job != Some(job_id) {
            return Err(WorldError::Conflict(format!(
                "job {job_id} is not assigned to runner {}",
                runner.name
            )));
        }
        let runner_ref = RunnerRef {
            id: runner.id,
            name: runner.name.clone(),
            group_id: runner.group_id,
            group_name: runner.group_name.clone(),
        };
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or_else(|| WorldError::NotFound(format!("job {job_id}")))?;
        match job.status {
            JobStatus::Queued => {
                job.status = JobStatus::InProgress;
                job.started_at = Some(now);
                job.runner = Some(runner_ref);
                self.pending_events.push((job_id, JobEvent::InProgress));
                Ok(())
            }
            JobStatus::InProgress => Ok(()),
            JobStatus::Completed => Err(WorldError::Conflict(format!(
                "job {job_id} is already completed"
            ))),
        }
    }

    /// The runner finished its job. An ephemeral runner is removed.
    pub fn finish_job(
        &mut self,
        runner_id: u64,
        job_id: u64,
        conclusion: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WorldError> {
        let runner = self
            .runners
            .get(&runner_id)
            .ok_or(WorldError::RunnerGone(runner_id))?;
        if runner.job != Some(job_id) {
            return Err(WorldError::Conflict(format!(
                "job {job_id} is not assigned to runner {}",
                runner.name
            )));
        }
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or_else(|| WorldError::NotFound(format!("job {job_id}")))?;
        match job.status {
            JobStatus::Queued => {
                return Err(WorldError::Conflict(format!(
                    "job {job_id} was never started"
                )));
            }
            JobStatus::InProgress => {
                job.status = JobStatus::Completed;
                job.conclusion = Some(conclusion.to_string());
                job.completed_at = Some(now);
                self.open_jobs.remove(&job_id);
                self.pending_events.push((job_id, JobEvent::Completed));
            }
            // Cancelled while running: the runner only reports back.
            JobStatus::Completed => {}
        }
        self.release_runner(runner_id);
        self.assign(now);
        Ok(())
    }

    fn release_runner(&mut self, runner_id: u64) {
        let ephemeral = match self.runners.get_mut(&runner_id) {
            Some(runner) => {
                runner.job = None;
                runner.jobs_run += 1;
                runner.ephemeral
            }
            None => return,
        };
        if ephemeral {
            self.remove_runner(runner_id);
        }
    }

    fn remove_runner(&mut self, runner_id: u64) {
        if let Some(runner) = self.runners.remove(&runner_id) {
            self.removed_credentials.insert(runner.credential);
        }
    }

    /// Cancels a job as GitHub does: a job that never started completes as `cancelled` with no
    /// runner; a running job completes as `cancelled` naming its runner.
    pub fn cancel_job(&mut self, job_id: u64, now: DateTime<Utc>) -> Result<(), WorldError> {
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or_else(|| WorldError::NotFound(format!("job {job_id}")))?;
        match job.status {
            JobStatus::Completed => {
                return Err(WorldError::Conflict(format!(
                    "job {job_id} is already completed"
                )));
            }
            JobStatus::Queued => {
                let assigned = job.assigned_runner.take();
                job.status = JobStatus::Completed;
                job.conclusion = Some("cancelled".to_string());
                job.completed_at = Some(now);
                if job.started_at.is_none() {
                    job.started_at = Some(now);
                }
                if let Some(runner) = assigned.and_then(|id| self.runners.get_mut(&id)) {
                    runner.job = None;
                }
            }
            JobStatus::InProgress => {
                job.status = JobStatus::Completed;
                job.conclusion = Some("cancelled".to_string());
                job.completed_at = Some(now);
            }
        }
        self.open_jobs.remove(&job_id);
        self.pending_events.push((job_id, JobEvent::Completed));
        self.assign(now);
        Ok(())
    }

    /// Deletes a runner, as `DELETE .../actions/runners/{id}` does. A runner running a job
    /// cannot be deleted; one that was handed a job it has not started gives it back.
    pub fn delete_runner(
        &mut self,
        scope: &Scope,
        runner_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), WorldError> {
        let runner = self
            .runners
            .get(&runner_id)
            .filter(|r| r.scope.same_as(scope))
            .ok_or_else(|| WorldError::NotFound(format!("runner {runner_id}")))?;
        if let Some(job_id) = runner.job {
            let running = self
                .jobs
                .get(&job_id)
                .is_some_and(|j| j.status == JobStatus::InProgress);
            if running {
                return Err(WorldError::Invalid(format!(
                    "Bad request - Runner \"{}\" is still running a job\"",
                    runner.name
                )));
            }
            if let Some(job) = self.jobs.get_mut(&job_id) {
                job.assigned_runner = None;
            }
        }
        self.remove_runner(runner_id);
        self.assign(now);
        Ok(())
    }

    pub fn next_sequence(&mut self) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        sequence
    }

    /// Consumes one REST fault, if any is armed: `Some(status)` to answer with.
    pub fn take_api_fault(&mut self) -> Option<u16> {
        if self.faults.rate_limits > 0 {
            self.faults.rate_limits -= 1;
            return Some(429);
        }
        if self.faults.server_errors > 0 {
            self.faults.server_errors -= 1;
            return Some(self.faults.server_error_status.unwrap_or(500));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> (World, DateTime<Utc>) {
        let config = EmulatorConfig {
            repositories: vec![
                "octo-org/app".into(),
                "octo-org/lib".into(),
                "someone/tool".into(),
            ],
            organizations: vec!["octo-org".into()],
            ..EmulatorConfig::default()
        };
        (World::new(&config).unwrap(), Utc::now())
    }

    fn delivery(sequence: u64, outcome: DeliveryOutcome) -> Delivery {
        Delivery {
            sequence,
            guid: format!("guid-{sequence}"),
            event: "workflow_job".into(),
            action: "queued".into(),
            job_id: sequence,
            duplicate: false,
            outcome,
            response_status: None,
            error: None,
            payload: serde_json::Value::Null,
            delivered_at: None,
        }
    }

    #[test]
    fn old_finished_deliveries_are_forgotten_past_the_retention_and_pending_ones_kept() {
        let config = EmulatorConfig {
            deliveries_kept: 100,
            ..EmulatorConfig::default()
        };
        let mut world = World::new(&config).unwrap();
        world.record_delivery(delivery(0, DeliveryOutcome::Pending));
        for sequence in 1..=1_000 {
            world.record_delivery(delivery(sequence, DeliveryOutcome::Delivered));
        }
        assert!(
            world.deliveries.len() <= 100 + 64,
            "{}",
            world.deliveries.len()
        );
        assert_eq!(world.deliveries[0].sequence, 0, "the pending one stays");
        assert_eq!(world.deliveries.last().map(|d| d.sequence), Some(1_000));
        let sequences: Vec<u64> = world.deliveries.iter().map(|d| d.sequence).collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "kept in order");
    }

    #[test]
    fn completed_jobs_leave_the_open_set_that_assignment_walks() {
        let (mut world, now) = world();
        let new = NewJob::new("octo-org/app", &["self-hosted"]);
        let first = world.create_job(&new, now).unwrap().job_id;
        let second = world.create_job(&new, now).unwrap().job_id;
        assert_eq!(world.open_jobs().count(), 2);
        world.cancel_job(first, now).unwrap();
        let open: Vec<u64> = world.open_jobs().map(|job| job.id).collect();
        assert_eq!(open, [second]);
        assert_eq!(world.jobs.len(), 2, "completed jobs stay listed");
    }

    fn connected_runner(
        world: &mut World,
        scope: Scope,
        name: &str,
        labels: &[&str],
        now: DateTime<Utc>,
    ) -> u64 {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let id = world
            .add_jit_runner(scope, name, 1, &labels, format!("cred-{name}"))
            .unwrap();
        world.touch_runner(id, now, None).unwrap();
        world.assign(now);
        id
    }

    #[test]
    fn a_job_waits_for_a_matching_runner_and_the_runner_leaves_after_one_job() {
        let (mut world, now) = world();
        let job = world
            .create_job(&NewJob::new("octo-org/app", &["self-hosted", "linux"]), now)
            .unwrap();
        assert_eq!(world.jobs[&job.job_id].assigned_runner, None);
        let wrong = connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "gpu",
            &["gpu"],
            now,
        );
        assert_eq!(world.jobs[&job.job_id].assigned_runner, None);
        let right = connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "r1",
            &["Linux"],
            now,
        );
        assert_eq!(world.jobs[&job.job_id].assigned_runner, Some(right));
        world.start_job(right, job.job_id, now).unwrap();
        world.finish_job(right, job.job_id, "success", now).unwrap();
        assert!(!world.runners.contains_key(&right));
        assert!(world.runners.contains_key(&wrong));
        assert_eq!(world.jobs[&job.job_id].status, JobStatus::Completed);
    }

    #[test]
    fn runners_of_another_scope_do_not_take_the_job() {
        let (mut world, now) = world();
        let job = world
            .create_job(&NewJob::new("someone/tool", &["linux"]), now)
            .unwrap();
        connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "org",
            &["linux"],
            now,
        );
        connected_runner(
            &mut world,
            Scope::repository("octo-org", "app"),
            "repo",
            &["linux"],
            now,
        );
        assert_eq!(world.jobs[&job.job_id].assigned_runner, None);
        let own = connected_runner(
            &mut world,
            Scope::repository("Someone", "TOOL"),
            "own",
            &["linux"],
            now,
        );
        assert_eq!(world.jobs[&job.job_id].assigned_runner, Some(own));
    }

    #[test]
    fn a_runner_that_never_connected_gets_no_job() {
        let (mut world, now) = world();
        world
            .add_jit_runner(
                Scope::organization("octo-org"),
                "cold",
                1,
                &["linux".into()],
                "c".into(),
            )
            .unwrap();
        let job = world
            .create_job(&NewJob::new("octo-org/app", &["linux"]), now)
            .unwrap();
        assert_eq!(world.jobs[&job.job_id].assigned_runner, None);
    }

    #[test]
    fn cancelling_a_queued_job_frees_its_runner_for_the_next() {
        let (mut world, now) = world();
        let first = world
            .create_job(&NewJob::new("octo-org/app", &["linux"]), now)
            .unwrap();
        let second = world
            .create_job(&NewJob::new("octo-org/app", &["linux"]), now)
            .unwrap();
        let runner = connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "r",
            &["linux"],
            now,
        );
        assert_eq!(world.jobs[&first.job_id].assigned_runner, Some(runner));
        world.cancel_job(first.job_id, now).unwrap();
        let cancelled = &world.jobs[&first.job_id];
        assert_eq!(cancelled.conclusion.as_deref(), Some("cancelled"));
        assert!(cancelled.runner.is_none());
        assert_eq!(world.jobs[&second.job_id].assigned_runner, Some(runner));
    }

    #[test]
    fn a_busy_runner_cannot_be_deleted_but_an_idle_one_can() {
        let (mut world, now) = world();
        let scope = Scope::organization("octo-org");
        let runner = connected_runner(&mut world, scope.clone(), "r", &["linux"], now);
        let job = world
            .create_job(&NewJob::new("octo-org/app", &["linux"]), now)
            .unwrap();
        world.start_job(runner, job.job_id, now).unwrap();
        let refused = world.delete_runner(&scope, runner, now);
        assert!(matches!(refused, Err(WorldError::Invalid(_))));
        let idle = connected_runner(&mut world, scope.clone(), "idle", &["linux"], now);
        world.delete_runner(&scope, idle, now).unwrap();
        assert!(!world.runners.contains_key(&idle));
        let wrong_scope = world.delete_runner(&Scope::repository("octo-org", "app"), runner, now);
        assert!(matches!(wrong_scope, Err(WorldError::NotFound(_))));
    }

    #[test]
    fn duplicate_runner_names_conflict_and_bad_input_is_refused() {
        let (mut world, _) = world();
        let scope = Scope::organization("octo-org");
        world
            .add_jit_runner(scope.clone(), "r", 1, &["a".into()], "x".into())
            .unwrap();
        assert!(matches!(
            world.add_jit_runner(scope.clone(), "R", 1, &["a".into()], "y".into()),
            Err(WorldError::Conflict(_))
        ));
        assert!(matches!(
            world.add_jit_runner(scope.clone(), "s", 1, &[], "z".into()),
            Err(WorldError::Invalid(_))
        ));
        assert!(matches!(
            world.add_jit_runner(
                Scope::organization("nobody"),
                "s",
                1,
                &["a".into()],
                "z".into()
            ),
            Err(WorldError::NotFound(_))
        ));
        let bad_config = EmulatorConfig {
            repositories: vec!["no-slash".into()],
            ..EmulatorConfig::default()
        };
        assert!(World::new(&bad_config).is_err());
    }

    #[test]
    fn among_several_matching_idle_runners_the_pick_is_random_but_seeded() {
        fn pick(seed: u64) -> String {
            let config = EmulatorConfig {
                seed,
                ..EmulatorConfig::default()
            };
            let mut world = World::new(&config).unwrap();
            let now = Utc::now();
            for name in ["a", "b", "c", "d"] {
                connected_runner(
                    &mut world,
                    Scope::organization("octo-org"),
                    name,
                    &["linux"],
                    now,
                );
            }
            let job = world
                .create_job(&NewJob::new("octo-org/app", &["linux"]), now)
                .unwrap();
            let runner = world.jobs[&job.job_id].assigned_runner.unwrap();
            world.runners[&runner].name.clone()
        }
        assert_eq!(pick(7), pick(7));
        let picked: HashSet<String> = (0..32).map(pick).collect();
        assert!(picked.len() >= 3, "always the same few runners: {picked:?}");
    }

    #[test]
    fn a_runner_that_stops_polling_goes_offline_and_gets_no_job() {
        let (mut world, now) = world();
        let runner = connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "quiet",
            &["linux"],
            now,
        );
        let later = now + chrono::Duration::seconds(61);
        assert!(world.runners[&runner].online(now, world.offline_after));
        assert!(!world.runners[&runner].online(later, world.offline_after));
        let job = world
            .create_job(&NewJob::new("octo-org/app", &["linux"]), later)
            .unwrap();
        assert_eq!(world.jobs[&job.job_id].assigned_runner, None);
        world.touch_runner(runner, later, None).unwrap();
        world.assign(later);
        assert_eq!(world.jobs[&job.job_id].assigned_runner, Some(runner));

        // It goes silent again before starting the job: the job goes to a runner that is there.
        let much_later = later + chrono::Duration::seconds(120);
        let other = connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "other",
            &["linux"],
            much_later,
        );
        assert_eq!(world.jobs[&job.job_id].assigned_runner, Some(other));
        assert_eq!(world.runners[&runner].job, None);
    }

    #[test]
    fn a_runner_lost_mid_job_fails_the_job_and_stays_listed_offline() {
        let (mut world, now) = world();
        let runner = connected_runner(
            &mut world,
            Scope::organization("octo-org"),
            "lost",
            &["linux"],
            now,
        );
        let job = world
            .create_job(&NewJob::new("octo-org/app", &["linux"]), now)
            .unwrap();
        world.start_job(runner, job.job_id, now).unwrap();
        world.pending_events.clear();
        assert!(!world.has_lost_work(now + chrono::Duration::seconds(30)));
        let later = now + chrono::Duration::seconds(61);
        assert!(world.has_lost_work(later));
        world.expire_lost(later);
        let failed = &world.jobs[&job.job_id];
        assert_eq!(failed.status, JobStatus::Completed);
        assert_eq!(failed.conclusion.as_deref(), Some("failure"));
        assert_eq!(failed.runner.as_ref().map(|r| r.id), Some(runner));
        assert_eq!(
            world.pending_events,
            vec![(job.job_id, JobEvent::Completed)]
        );
        assert!(!world.runners[&runner].online(later, world.offline_after));
        assert_eq!(world.runners[&runner].job, None);
        assert!(!world.has_lost_work(later));
    }
}
