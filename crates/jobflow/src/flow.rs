//! [`JobFlow`]: the steps of the job state machine over runway's ports.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use runway_asl::{TaskFailure, TaskRegistry};
use runway_clock::SharedClock;
use runway_github::GitHub;
use runway_metrics::Metrics;
use runway_policy_host::{RouterPolicy, ThrottlePolicy};
use runway_providers::Provider;
use runway_store::Store;
use tracing::warn;

use crate::callbacks::TaskCallbacks;
use crate::config::{ConfigError, FlowConfig, PoolConfig};
use crate::error::{NO_SUCH_POOL, StepError};
use crate::step::Step;

/// The region and account of the local engine's Lambda ARNs.
const LOCAL_FUNCTION_ARN_PREFIX: &str = "arn:aws:lambda:us-east-1:000000000000:function:";

/// Everything the job flow talks to.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub github: Arc<dyn GitHub>,
    /// One provider per pool, by pool name.
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    /// `None`: built-in label matching.
    pub router: Option<RouterPolicy>,
    /// `None`: admit up to the ceilings.
    pub throttle: Option<ThrottlePolicy>,
    pub callbacks: Arc<dyn TaskCallbacks>,
    pub clock: SharedClock,
    /// Where the steps' measurements go ([`runway_metrics::discard`] for none).
    pub metrics: Arc<dyn Metrics>,
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deps")
            .field("store", &self.store)
            .field("github", &self.github)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("router", &self.router.is_some())
            .field("throttle", &self.throttle.is_some())
            .field("callbacks", &self.callbacks)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub deps: Deps,
    pub config: FlowConfig,
}

/// The job flow. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct JobFlow {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for JobFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobFlow")
            .field("deps", &self.inner.deps)
            .field(
                "pools",
                &self
                    .inner
                    .config
                    .pools
                    .iter()
                    .map(|p| &p.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl JobFlow {
    /// Checks the configuration against the dependencies: every pool has a provider, names
    /// and bounds are valid.
    pub fn new(deps: Deps, config: FlowConfig) -> Result<JobFlow, ConfigError> {
        config.validate()?;
        for pool in &config.pools {
            if !deps.providers.contains_key(&pool.name) {
                return Err(ConfigError::Invalid(format!(
                    "pool {:?} has no provider; configure where its runners run",
                    pool.name
                )));
            }
        }
        for name in deps.providers.keys() {
            if config.pool(name).is_none() {
                warn!(pool = %name, "a provider is configured for a pool the job flow does not know");
            }
        }
        Ok(JobFlow {
            inner: Arc::new(Inner { deps, config }),
        })
    }

    pub fn config(&self) -> &FlowConfig {
        &self.inner.config
    }

    /// Where the steps' measurements go: the reaper records its own there too.
    pub fn metrics(&self) -> &Arc<dyn Metrics> {
        &self.inner.deps.metrics
    }

    pub(crate) fn deps(&self) -> &Deps {
        &self.inner.deps
    }

    pub(crate) fn pool(&self, name: &str) -> Result<&PoolConfig, StepError> {
        self.inner.config.pool(name).ok_or_else(|| {
            StepError::new(
                NO_SUCH_POOL,
                format!(
                    "pool {name:?} is not configured (configured: {}); the configuration changed \
                     while the job was in flight, or the router named a pool that does not exist",
                    self.pool_names()
                ),
            )
        })
    }

    pub(crate) fn provider(&self, pool: &str) -> Result<&Arc<dyn Provider>, StepError> {
        self.inner.deps.providers.get(pool).ok_or_else(|| {
            StepError::new(
                NO_SUCH_POOL,
                format!("pool {pool:?} has no provider; configure where its runners run"),
            )
        })
    }

    fn pool_names(&self) -> String {
        let names: Vec<&str> = self
            .inner
            .config
            .pools
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// Registers each step with the local engine under `{prefix}{step name}`.
    pub fn register_tasks(&self, registry: &TaskRegistry, prefix: &str) {
        for step in Step::ALL {
            let flow = self.clone();
            registry.register(format!("{prefix}{}", step.name()), move |request| {
                let flow = flow.clone();
                async move {
                    flow.run(step, request.input)
                        .await
                        .map_err(|error| TaskFailure::new(error.error, error.cause))
                }
            });
        }
    }

    /// The `${...}` substitutions of `statemachines/job.asl.json` for the local engine: each
    /// step's function ARN, named `{prefix}{step name}`.
    pub fn local_substitutions(prefix: &str) -> BTreeMap<String, String> {
        Step::ALL
            .into_iter()
            .map(|step| {
                (
                    step.substitution().to_owned(),
                    format!("{LOCAL_FUNCTION_ARN_PREFIX}{prefix}{}", step.name()),
                )
            })
            .collect()
    }
}
