//! The values the store keeps. Names are validated once, at the edge, so every key the store
//! builds from them is unambiguous.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// A name that cannot be used as part of a store key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidName {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Longest accepted name, in bytes (Step Functions execution names are at most 80 characters,
/// GitHub repository full names about 140; this leaves room without letting keys grow large).
const MAX_NAME_BYTES: usize = 256;

fn validate(kind: &'static str, value: &str) -> Result<(), InvalidName> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.len() > MAX_NAME_BYTES {
        Some("it is longer than 256 bytes")
    } else if value.contains('#') {
        Some("'#' separates the parts of store keys")
    } else if value.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InvalidName {
            kind,
            value: value.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`: non-empty, at most 256 bytes, no `#`, no control characters.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                validate($kind, &value)?;
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;
            fn from_str(value: &str) -> Result<Self, InvalidName> {
                $name::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }
    };
}

name_type!(
    /// The name of the Step Functions execution that follows one job (derived from the job).
    ExecutionKey,
    "execution key"
);
/// What starts every warm-pool key: the owner the warm-pool keeper launches a warm runner
/// under, until a job's execution adopts it. Step Functions execution names never start with
/// it (they start with the repository id).
pub const WARM_KEY_PREFIX: &str = "warm-";

impl ExecutionKey {
    /// The owner of a warm runner the keeper launched, named after the runner.
    pub fn warm(runner: &RunnerName) -> ExecutionKey {
        ExecutionKey(format!("{WARM_KEY_PREFIX}{runner}"))
    }

    /// Whether this is a warm-pool key ([`ExecutionKey::warm`]) rather than an execution.
    pub fn is_warm(&self) -> bool {
        self.0.starts_with(WARM_KEY_PREFIX)
    }
}

name_type!(
    /// A runner pool, as chosen by the router policy.
    PoolName,
    "pool name"
);
name_type!(
    /// A GitHub organisation (or user) login.
    OrgName,
    "organisation name"
);
name_type!(
    /// A repository's full name, `owner/name`.
    RepoName,
    "repository name"
);
name_type!(
    /// The name a runner registers with in GitHub.
    RunnerName,
    "runner name"
);

/// A GitHub Actions job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Step Functions task token: whoever holds it can complete the waiting task, so its Debug
/// form shows only a prefix.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskToken(String);

impl TaskToken {
    pub fn new(token: impl Into<String>) -> Result<Self, InvalidName> {
        let token = token.into();
        if token.is_empty() {
            return Err(InvalidName {
                kind: "task token",
                value: token,
                reason: "it is empty",
            });
        }
        Ok(TaskToken(token))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.0.chars().take(8).collect();
        write!(f, "TaskToken({prefix}…)")
    }
}

impl TryFrom<String> for TaskToken {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, InvalidName> {
        TaskToken::new(value)
    }
}

impl From<TaskToken> for String {
    fn from(token: TaskToken) -> String {
        token.0
    }
}

/// Hard ceilings on running jobs. The pool ceiling always applies; organisation and
/// repository ceilings only when set. Organisation and repository counts span all pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceilings {
    pub pool: u32,
    pub org: Option<u32>,
    pub repo: Option<u32>,
}

/// One execution's request for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotClaim {
    pub execution: ExecutionKey,
    pub pool: PoolName,
    pub org: OrgName,
    pub repo: RepoName,
    pub ceilings: Ceilings,
}

/// Which ceiling stopped an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeilingKind {
    Pool,
    Org,
    Repo,
}

impl fmt::Display for CeilingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CeilingKind::Pool => "pool",
            CeilingKind::Org => "organisation",
            CeilingKind::Repo => "repository",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SlotOutcome {
    /// The slot is taken and counted against every counter.
    Acquired,
    /// This execution already holds a slot (a retried acquire): nothing was counted again.
    AlreadyHeld,
    /// A ceiling is reached: `current` jobs run against a `limit`. The first full ceiling is
    /// reported, in the order pool, organisation, repository.
    Full {
        ceiling: CeilingKind,
        limit: u32,
        current: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// The slot was held and is now free; its counters went down by one.
    Released,
    /// No slot was held (never acquired, or already released): nothing changed.
    NotHeld,
}

/// Who holds a slot, and which counters it counts against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHolder {
    pub execution: ExecutionKey,
    pub pool: PoolName,
    pub org: OrgName,
    pub repo: RepoName,
    pub acquired_at: DateTime<Utc>,
}

/// Live counts, the throttle policy's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Load {
    pub pool_running: u32,
    pub org_running: u32,
    pub repo_running: u32,
    pub pool_waiting: u32,
}

/// A parked admission: an execution waiting for a slot in `pool`, with the task token that
/// wakes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    pub pool: PoolName,
    pub execution: ExecutionKey,
    /// Higher goes first.
    pub priority: i32,
    /// Among equal priorities, older goes first. Keep the first enqueue's time when parking
    /// again so the job keeps its place.
    pub enqueued_at: DateTime<Utc>,
    pub task_token: TaskToken,
    pub expires_at: DateTime<Utc>,
}

impl Waiter {
    /// Queue order: priority (higher first), then arrival (older first, to the millisecond),
    /// then execution key, so the order is total and the same in every implementation.
    pub fn queue_order(&self, other: &Waiter) -> Ordering {
        other
            .priority
            .cmp(&self.priority)
            .then_with(|| {
                self.enqueued_at
                    .timestamp_millis()
                    .cmp(&other.enqueued_at.timestamp_millis())
            })
            .then_with(|| self.execution.cmp(&other.execution))
    }
}

/// Where a runner is in its life. `Gone` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunnerState {
    /// Launched, not yet registered with GitHub.
    Booting,
    /// Registered and waiting for a job.
    Idle,
    /// Running a job: any job with matching labels, not necessarily the one it was launched for.
    Busy { job_id: JobId },
    /// Finished, deregistered or torn down.
    Gone,
}

impl RunnerState {
    /// The canonical text form, also the stored one: `booting`, `idle`, `busy:<job id>`, `gone`.
    pub fn as_key(&self) -> String {
        match self {
            RunnerState::Booting => "booting".to_string(),
            RunnerState::Idle => "idle".to_string(),
            RunnerState::Busy { job_id } => format!("busy:{job_id}"),
            RunnerState::Gone => "gone".to_string(),
        }
    }

    pub fn from_key(key: &str) -> Option<RunnerState> {
        match key {
            "booting" => Some(RunnerState::Booting),
            "idle" => Some(RunnerState::Idle),
            "gone" => Some(RunnerState::Gone),
            other => other
                .strip_prefix("busy:")
                .and_then(|id| id.parse().ok())
                .map(|id| RunnerState::Busy { job_id: JobId(id) }),
        }
    }
}

/// What the step waiting on a runner's events waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerWait {
    /// The runner to start a job.
    Busy,
    /// The runner to leave: its job finished, or it was removed or torn down.
    Gone,
}

impl RunnerWait {
    /// The stored form: `busy`, `gone`.
    pub fn as_key(self) -> &'static str {
        match self {
            RunnerWait::Busy => "busy",
            RunnerWait::Gone => "gone",
        }
    }

    pub fn from_key(key: &str) -> Option<RunnerWait> {
        match key {
            "busy" => Some(RunnerWait::Busy),
            "gone" => Some(RunnerWait::Gone),
            _ => None,
        }
    }
}

/// A runner event that may end a wait: what a `workflow_job` webhook says of the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerEvent {
    /// The runner started a job (`in_progress`).
    Started,
    /// The runner finished its job (`completed`): an ephemeral runner leaves with it.
    Completed,
}

impl RunnerEvent {
    /// Whether the event answers a wait for `wait`. A started job answers only a wait for
    /// the runner to become busy; a finished one answers both, since a runner that left never
    /// starts a job. A watch recorded without its wait (`None`, written before records said
    /// what they wait for) is answered by either, as it always was.
    pub fn answers(self, wait: Option<RunnerWait>) -> bool {
        match (self, wait) {
            (RunnerEvent::Completed, _) | (_, None) => true,
            (RunnerEvent::Started, Some(wait)) => wait == RunnerWait::Busy,
        }
    }
}

/// The step waiting on a runner's events: its task token, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerWatch {
    pub task_token: TaskToken,
    /// `None` only for a record written before waits were recorded: any event answers it.
    pub wait: Option<RunnerWait>,
}

impl RunnerWatch {
    pub fn new(task_token: TaskToken, wait: RunnerWait) -> RunnerWatch {
        RunnerWatch {
            task_token,
            wait: Some(wait),
        }
    }
}

/// One launched runner, found by the name it registers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRecord {
    pub runner_name: RunnerName,
    /// The execution that launched it and owns its teardown (for a warm runner: its warm key
    /// until an execution adopts it, then that execution).
    pub execution: ExecutionKey,
    /// The owner its host was launched under, when that is not `execution`: a warm runner
    /// adopted by a job's execution keeps the warm key on its host (tags, labels), which is
    /// what providers find it by ([`RunnerRecord::host_owner`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_by: Option<ExecutionKey>,
    pub pool: PoolName,
    /// The host kind that runs it (`ec2`, `ecs`, `eks`, `lambda`, `local`).
    pub provider: String,
    pub instance_id: Option<String>,
    pub state: RunnerState,
    /// The execution step waiting on this runner's events, if one is.
    pub runner_watch: Option<RunnerWatch>,
    pub launched_at: DateTime<Utc>,
    /// When the store first saw it busy: its first job started (the job's webhook arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_started_at: Option<DateTime<Utc>>,
    /// When the store first saw it gone: its job ended, or it was torn down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DateTime<Utc>>,
    /// When a teardown first removed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_down_at: Option<DateTime<Utc>>,
    /// When its host was first said to be reclaimed (an EC2 spot interruption warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

impl RunnerRecord {
    /// The owner its host was launched under: what a provider's `terminate` is given.
    pub fn host_owner(&self) -> &ExecutionKey {
        self.launched_by.as_ref().unwrap_or(&self.execution)
    }

    /// Whether the warm-pool keeper launched it and no execution has adopted it yet.
    pub fn is_unadopted_warm(&self) -> bool {
        self.execution.is_warm()
    }

    /// The seconds it spent running its job: from the job's start to its leaving (or `now`,
    /// if it has not left), 0 if it never took one.
    pub fn job_seconds(&self, now: DateTime<Utc>) -> f64 {
        self.job_started_at.map_or(0.0, |started| {
            seconds_between(started, self.left_at.unwrap_or(now))
        })
    }

    /// From its launch to its first job's start: the boot, plus any wait for a job.
    pub fn seconds_to_first_job(&self) -> Option<f64> {
        self.job_started_at
            .map(|started| seconds_between(self.launched_at, started))
    }
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PutRunner {
    Created,
    /// A live record with this name exists (a retried launch, or a name clash): unchanged.
    Exists {
        existing: Box<RunnerRecord>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StateChange {
    Applied,
    /// Refused: the runner was not in the expected state, or is `Gone`.
    Stale {
        current: RunnerState,
    },
    NotFound,
}

/// An execution step waiting for the events of one job (matched by job id, whichever runner
/// takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobWatch {
    pub job_id: JobId,
    pub execution: ExecutionKey,
    pub task_token: TaskToken,
    pub expires_at: DateTime<Utc>,
}

/// Expiry is kept to whole seconds, DynamoDB's TTL unit.
pub(crate) fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(0)
}

/// An item is live while `now` is before its expiry second.
pub(crate) fn is_live(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at.timestamp() > now.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_keys_are_refused() {
        for bad in ["", "a#b", "tab\there", &"x".repeat(257)] {
            let error = PoolName::new(bad).expect_err(bad);
            assert_eq!(error.kind, "pool name");
        }
        assert_eq!(
            RepoName::new("octo-org/app.web").unwrap().as_str(),
            "octo-org/app.web"
        );
        assert!(serde_json::from_str::<ExecutionKey>("\"a#b\"").is_err());
        assert!(TaskToken::new("").is_err());
    }

    #[test]
    fn runner_states_round_trip_through_their_key() {
        for state in [
            RunnerState::Booting,
            RunnerState::Idle,
            RunnerState::Busy { job_id: JobId(42) },
            RunnerState::Gone,
        ] {
            assert_eq!(RunnerState::from_key(&state.as_key()), Some(state));
        }
        assert_eq!(RunnerState::from_key("busy:x"), None);
        assert_eq!(RunnerState::from_key("running"), None);
    }

    #[test]
    fn a_started_job_answers_only_a_wait_for_busy_and_a_finished_one_any() {
        use RunnerEvent::{Completed, Started};
        assert!(Started.answers(Some(RunnerWait::Busy)));
        assert!(!Started.answers(Some(RunnerWait::Gone)));
        assert!(Completed.answers(Some(RunnerWait::Busy)));
        assert!(Completed.answers(Some(RunnerWait::Gone)));
        // A watch recorded before waits were: any event, as before.
        assert!(Started.answers(None));
        assert!(Completed.answers(None));
        for wait in [RunnerWait::Busy, RunnerWait::Gone] {
            assert_eq!(RunnerWait::from_key(wait.as_key()), Some(wait));
        }
        assert_eq!(RunnerWait::from_key("idle"), None);
    }

    #[test]
    fn task_tokens_do_not_leak_into_logs() {
        let token = TaskToken::new("AAAAKgAAAAIAAAAAAAAAAsecret-part").unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
