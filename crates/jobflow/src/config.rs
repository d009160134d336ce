//! What the job flow is told: where runners register, the pools, and what happens when a
//! policy fails. TOML- and JSON-friendly; every field but a pool's `name` and `labels` has a
//! default.
//!
//! ```toml
//! router_fallback = "ignore"          # or { pool = "linux-x64" }
//! throttle_fallback = "admit"         # or "reject"
//!
//! [github]
//! scope = "repository"                # or "organization", or { enterprise = "acme" }
//! runner_group_id = 1
//! runner_name_prefix = "runway"
//!
//! [[pools]]
//! name = "linux-x64"
//! labels = ["self-hosted", "linux", "x64"]
//! max_running = 10
//! max_per_org = 4                     # 0 or absent: no organisation ceiling
//! idle_timeout_seconds = 300
//! boot_timeout_seconds = 300
//! max_replacements = 2
//! recheck_after_seconds = 60
//! max_wait_seconds = 86400
//! params = { tier = "standard" }
//! # What a router policy may override, besides the pool's own settings (empty: nothing):
//! allowed_instance_types = ["c7g.*", "m7g.large"]   # `*` matches any run of characters
//! allowed_images = ["ami-0123456789abcdef0"]
//! max_disk_gib = 200
//! allowed_markets = ["on-demand"]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use runway_policy_host::{Market, RouterFallback, ThrottleFallback};
use runway_schedule::WarmSchedule;
use serde::{Deserialize, Serialize};

/// The longest runner name prefix: the rest of a runner name takes at most 44 characters and
/// GitHub allows 64.
pub const MAX_RUNNER_NAME_PREFIX: usize = 20;

/// Bounds of a parked waiter's re-check interval, in seconds. Each re-check of a job that
/// keeps waiting doubles the interval, up to the upper bound.
pub const RECHECK_BOUNDS: (u32, u32) = (1, 900);

/// The longest Step Functions lets a Standard execution, and so any wait of it, run: a year.
pub const STEP_FUNCTIONS_MAX_SECONDS: u32 = 31_536_000;

/// What the job machine (`statemachines/job.asl.json`, `TimeoutSeconds` 11 days) leaves for a
/// job to wait for a slot and for its runner to start: 5 days, 5 more being the longest a job
/// may run and the last one [`JOB_FOLLOW_SECONDS`].
pub const WAIT_AND_START_BUDGET_SECONDS: u32 = 432_000;

/// How long the job machine follows a job after its runner left without running it
/// (`AwaitJobEnd`), holding neither runner nor slot.
pub const JOB_FOLLOW_SECONDS: u32 = 86_400;

/// How many times one execution may be sent to its pool's queue. Each wait adds 13 events to
/// the execution's history, which Step Functions caps at 25,000: this bound, not only the time
/// bound, keeps a job woken again and again (released slots another job takes first) within
/// half of it (about 10,000 events), leaving the rest for its runner and its job.
pub const MAX_SLOT_WAITS: u32 = 750;

/// Everything the job flow needs besides its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Where runners register.
    #[serde(default)]
    pub github: RunnerScopeConfig,
    /// What a failing router policy decides (default: the job is not taken).
    #[serde(default = "default_router_fallback")]
    pub router_fallback: RouterFallback,
    /// What a failing throttle policy decides (default: admit; the hard ceilings still apply).
    #[serde(default = "default_throttle_fallback")]
    pub throttle_fallback: ThrottleFallback,
    /// The pools, in the order the built-in matching tries them.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
}

fn default_router_fallback() -> RouterFallback {
    RouterFallback::Ignore
}

fn default_throttle_fallback() -> ThrottleFallback {
    ThrottleFallback::Admit
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            github: RunnerScopeConfig::default(),
            router_fallback: default_router_fallback(),
            throttle_fallback: default_throttle_fallback(),
            pools: Vec::new(),
        }
    }
}

impl FlowConfig {
    /// Parses the TOML form.
    pub fn from_toml(text: &str) -> Result<FlowConfig, ConfigError> {
        toml_de(text)
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<FlowConfig, ConfigError> {
        serde_json::from_str(text).map_err(|error| ConfigError::Parse(error.to_string()))
    }

    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|pool| pool.name == name)
    }

    /// Checks names, bounds and references (without the providers, see `JobFlow::new`): the
    /// first of [`FlowConfig::problems`], if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(ConfigError::Invalid(problem.to_string())),
            None => Ok(()),
        }
    }

    /// Every problem with names, bounds and references, each with the path of its field
    /// (`pools[2].max_wait_seconds`), in document order.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let prefix = &self.github.runner_name_prefix;
        if prefix.is_empty()
            || prefix.len() > MAX_RUNNER_NAME_PREFIX
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            problems.push(Problem::new(
                "github.runner_name_prefix",
                format!(
                    "{prefix:?} must be 1 to {MAX_RUNNER_NAME_PREFIX} letters, digits, '-' or '_'"
                ),
            ));
        }
        if let RunnerScopeLevel::Enterprise(slug) = &self.github.scope
            && slug.trim().is_empty()
        {
            problems.push(Problem::new(
                "github.scope",
                "names an empty enterprise: give its slug, e.g. { enterprise = \"acme\" }",
            ));
        }
        let mut seen = BTreeSet::new();
        for (index, pool) in self.pools.iter().enumerate() {
            pool.problems(index, &mut problems);
            if let Some(warm) = &pool.warm {
                warm_problems(&self.github.scope, warm, index, &mut problems);
            }
            if !seen.insert(pool.name.as_str()) {
                problems.push(Problem::new(
                    format!("pools[{index}].name"),
                    format!(
                        "pool {:?} is configured twice; pool names must be unique",
                        pool.name
                    ),
                ));
            }
        }
        if let RouterFallback::Pool(name) = &self.router_fallback
            && self.pool(name).is_none()
        {
            problems.push(Problem::new(
                "router_fallback",
                format!(
                    "names pool {name:?}, which is not configured; name one of the [[pools]] or \
                     use \"ignore\""
                ),
            ));
        }
        problems
    }
}

/// A warm schedule must say where its runners register when the scope depends on the job.
fn warm_problems(
    scope: &RunnerScopeLevel,
    warm: &WarmSchedule,
    index: usize,
    problems: &mut Vec<Problem>,
) {
    let path = format!("pools[{index}].warm");
    match scope {
        RunnerScopeLevel::Organization if warm.organization.is_none() => {
            problems.push(Problem::new(
                format!("{path}.organization"),
                "runners register per organisation: name the one warm runners register in, \
                 e.g. organization = \"acme\"",
            ));
        }
        RunnerScopeLevel::Repository => {
            let valid = warm.repository.as_deref().is_some_and(|full| {
                full.split_once('/')
                    .is_some_and(|(owner, name)| !owner.is_empty() && !name.is_empty())
            });
            if !valid {
                problems.push(Problem::new(
                    format!("{path}.repository"),
                    "runners register per repository: name the one warm runners register in, \
                     e.g. repository = \"acme/app\" (or register per organisation)",
                ));
            }
        }
        _ => {}
    }
    if warm.replace_after_seconds < 60 {
        problems.push(Problem::new(
            format!("{path}.replace_after_seconds"),
            format!(
                "is {}; keep a warm runner at least 60 seconds, or it is replaced before it \
                 registers",
                warm.replace_after_seconds
            ),
        ));
    }
}

/// One thing wrong with a configuration: where (a field path such as
/// `pools[0].max_running`) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn toml_de(text: &str) -> Result<FlowConfig, ConfigError> {
    toml::from_str(text).map_err(|error| ConfigError::Parse(error.to_string()))
}

/// Where runners register, and what they are called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerScopeConfig {
    #[serde(default)]
    pub scope: RunnerScopeLevel,
    #[serde(default = "default_runner_group_id")]
    pub runner_group_id: u64,
    #[serde(default = "default_runner_name_prefix")]
    pub runner_name_prefix: String,
}

fn default_runner_group_id() -> u64 {
    1
}

fn default_runner_name_prefix() -> String {
    "runway".to_owned()
}

impl Default for RunnerScopeConfig {
    fn default() -> Self {
        RunnerScopeConfig {
            scope: RunnerScopeLevel::default(),
            runner_group_id: default_runner_group_id(),
            runner_name_prefix: default_runner_name_prefix(),
        }
    }
}

/// The level runners register at: `"repository"` (the job's repository), `"organization"`
/// (the job's organisation) or `{ enterprise = "slug" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerScopeLevel {
    #[default]
    Repository,
    Organization,
    Enterprise(String),
}

/// One pool of runners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    /// The labels its runners offer (and register with).
    pub labels: Vec<String>,
    #[serde(default)]
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub disk_gib: Option<u32>,
    #[serde(default)]
    pub market: Market,
    /// Images a router policy may ask for besides `image` (`*` wildcards); empty: none.
    #[serde(default)]
    pub allowed_images: Vec<String>,
    /// Instance types a router policy may ask for besides `instance_types` (`*` wildcards,
    /// e.g. `c7g.*`); empty: none.
    #[serde(default)]
    pub allowed_instance_types: Vec<String>,
    /// The largest disk a router policy may ask for; absent: `disk_gib`.
    #[serde(default)]
    pub max_disk_gib: Option<u32>,
    /// Markets a router policy may ask for besides `market`; empty: none.
    #[serde(default)]
    pub allowed_markets: Vec<Market>,
    /// The pool ceiling: at most this many jobs of the pool hold a slot.
    #[serde(default = "default_max_running")]
    pub max_running: u32,
    /// Jobs of one organisation (or user) across all pools; 0 or absent: no ceiling.
    #[serde(default)]
    pub max_per_org: Option<u32>,
    /// Jobs of one repository across all pools; 0 or absent: no ceiling.
    #[serde(default)]
    pub max_per_repo: Option<u32>,
    /// An idle runner is torn down at this deadline.
    #[serde(default = "default_timeout")]
    pub idle_timeout_seconds: u32,
    /// A runner not busy by then is checked (never registered: replaced).
    #[serde(default = "default_timeout")]
    pub boot_timeout_seconds: u32,
    /// How many times a runner that never registers is replaced.
    #[serde(default = "default_max_replacements")]
    pub max_replacements: u32,
    /// A parked waiter is admitted again after this long (clamped to 1..=900), doubling on
    /// each re-check up to 900.
    #[serde(default = "default_recheck")]
    pub recheck_after_seconds: u32,
    /// The longest a job waits for a slot; then its execution fails (`Runway.WaitedTooLong`).
    /// GitHub itself cancels a job queued for a day.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u32,
    /// Free-form settings handed to the policies.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Idle runners kept registered on a schedule, which jobs adopt instead of waiting for a
    /// launch ([`crate::JobFlow::keep_warm`]); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmSchedule>,
}

fn default_max_running() -> u32 {
    10
}

fn default_timeout() -> u32 {
    300
}

fn default_max_replacements() -> u32 {
    2
}

fn default_recheck() -> u32 {
    60
}

fn default_max_wait() -> u32 {
    86_400
}

impl PoolConfig {
    /// A pool with every default.
    pub fn new(name: impl Into<String>, labels: &[&str]) -> PoolConfig {
        PoolConfig {
            name: name.into(),
            labels: labels.iter().map(|label| label.to_string()).collect(),
            instance_types: Vec::new(),
            image: None,
            disk_gib: None,
            market: Market::default(),
            allowed_images: Vec::new(),
            allowed_instance_types: Vec::new(),
            max_disk_gib: None,
            allowed_markets: Vec::new(),
            max_running: default_max_running(),
            max_per_org: None,
            max_per_repo: None,
            idle_timeout_seconds: default_timeout(),
            boot_timeout_seconds: default_timeout(),
            max_replacements: default_max_replacements(),
            recheck_after_seconds: default_recheck(),
            max_wait_seconds: default_max_wait(),
            params: BTreeMap::new(),
            warm: None,
        }
    }

    pub fn ceilings(&self) -> PoolCeilings {
        PoolCeilings {
            max_running: self.max_running,
            max_per_org: self.max_per_org.filter(|&n| n > 0),
            max_per_repo: self.max_per_repo.filter(|&n| n > 0),
        }
    }

    /// The re-check interval within its bounds.
    pub fn recheck_after(&self) -> u32 {
        self.recheck_after_seconds
            .clamp(RECHECK_BOUNDS.0, RECHECK_BOUNDS.1)
    }

    /// The longest the job machine may take from the job's first admission until its runner
    /// has had every chance to start: the wait for a slot, every replacement's boot deadline,
    /// then the idle one.
    pub fn wait_and_start_seconds(&self) -> u64 {
        u64::from(self.max_wait_seconds) + self.runner_start_seconds()
    }

    /// Every launch's boot deadline, then the idle one.
    pub fn runner_start_seconds(&self) -> u64 {
        let boots = u64::from(self.boot_timeout_seconds) * (u64::from(self.max_replacements) + 1);
        boots + u64::from(self.idle_timeout_seconds)
    }

    /// Adds this pool's problems; `index` is its place in `pools`, for the field paths.
    fn problems(&self, index: usize, problems: &mut Vec<Problem>) {
        let at = format!("pools[{index}]");
        let mut problem = |field: &str, message: String| {
            problems.push(Problem::new(format!("{at}.{field}"), message));
        };
        if let Err(error) = runway_store::PoolName::new(self.name.as_str()) {
            problem("name", format!("pool name: {error}"));
        }
        let name = &self.name;
        if self.labels.is_empty() || self.labels.iter().any(|l| l.trim().is_empty()) {
            problem(
                "labels",
                format!(
                    "pool {name:?} needs labels (the labels its runners offer), none of them \
                     empty"
                ),
            );
        }
        if self.max_running == 0 {
            problem(
                "max_running",
                format!(
                    "pool {name:?} has max_running = 0, so no job could ever run; set it to 1 \
                     or more"
                ),
            );
        }
        if let Some(key) = self
            .params
            .keys()
            .find(|key| key.starts_with(runway_policy_host::HOST_PARAM_PREFIX))
        {
            problem(
                "params",
                format!(
                    "pool {name:?} has the param {key:?}: params starting with \"runway.\" are \
                     the ones runway passes to policies (the pool's allow-lists); rename it"
                ),
            );
        }
        for (field, patterns) in [
            ("allowed_images", &self.allowed_images),
            ("allowed_instance_types", &self.allowed_instance_types),
        ] {
            if patterns.iter().any(|pattern| pattern.trim().is_empty()) {
                problem(
                    field,
                    format!(
                        "pool {name:?} has an empty entry in {field}; give a name or a pattern \
                         such as \"c7g.*\""
                    ),
                );
            }
        }
        let mut in_range = true;
        for (field, value) in [
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("boot_timeout_seconds", self.boot_timeout_seconds),
            ("recheck_after_seconds", self.recheck_after_seconds),
            ("max_wait_seconds", self.max_wait_seconds),
        ] {
            if value == 0 {
                in_range = false;
                problem(
                    field,
                    format!(
                        "pool {name:?} has {field} = 0; Step Functions timeouts must be at \
                         least 1 second"
                    ),
                );
            }
            if value > STEP_FUNCTIONS_MAX_SECONDS {
                in_range = false;
                problem(
                    field,
                    format!(
                        "pool {name:?} has {field} = {value}, beyond a year \
                         ({STEP_FUNCTIONS_MAX_SECONDS} s), the longest Step Functions waits"
                    ),
                );
            }
        }
        let total = self.wait_and_start_seconds();
        // Only once each bound is in range: the sum of out-of-range values says nothing new.
        if in_range && total > u64::from(WAIT_AND_START_BUDGET_SECONDS) {
            // The larger share is the one to shorten.
            let field = if u64::from(self.max_wait_seconds) >= self.runner_start_seconds() {
                "max_wait_seconds"
            } else if u64::from(self.idle_timeout_seconds)
                >= u64::from(self.boot_timeout_seconds) * (u64::from(self.max_replacements) + 1)
            {
                "idle_timeout_seconds"
            } else {
                "boot_timeout_seconds"
            };
            problem(
                field,
                format!(
                    "pool {name:?} may take {total} s before its runner has started: \
                     max_wait_seconds ({}) plus boot_timeout_seconds ({}) x (max_replacements \
                     ({}) + 1) + idle_timeout_seconds ({}); at most \
                     {WAIT_AND_START_BUDGET_SECONDS} s fit, since the job machine ends after 11 \
                     days, a job may run for 5 and is followed for one more after a runner \
                     left without it",
                    self.max_wait_seconds,
                    self.boot_timeout_seconds,
                    self.max_replacements,
                    self.idle_timeout_seconds,
                ),
            );
        }
    }
}

/// A pool's hard ceilings, enforced by the store whatever the policies say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolCeilings {
    pub max_running: u32,
    pub max_per_org: Option<u32>,
    pub max_per_repo: Option<u32>,
}

impl PoolCeilings {
    pub fn to_store(self) -> runway_store::Ceilings {
        runway_store::Ceilings {
            pool: self.max_running,
            org: self.max_per_org,
            repo: self.max_per_repo,
        }
    }
}

/// A configuration the job flow cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the job flow configuration: {0}")]
    Parse(String),
    #[error("invalid job flow configuration: {0}")]
    Invalid(String),
}
