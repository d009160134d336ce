//! What to decide when a policy fails: configured per pool kind by the operator.

use crate::error::PolicyError;
use crate::types::{RouteDecision, ThrottleDecision};
use crate::wasi::PolicyOutput;

/// What the router's failure turns into.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterFallback {
    /// Fail open: run the job in this pool with its defaults.
    Pool(String),
    /// Fail closed: runway does not take the job.
    Ignore,
}

/// What the throttle's failure turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleFallback {
    /// Fail open: admit the job (the host's hard ceilings still apply).
    Admit,
    /// Fail closed: reject the job.
    Reject,
}

/// A decision, and the policy failure it stands in for if the fallback made it.
#[derive(Debug)]
pub struct Decided<D> {
    pub decision: D,
    pub failure: Option<PolicyError>,
    /// What the policy wrote to stdout and stderr while deciding (a policy importing WASI).
    pub output: PolicyOutput,
}

impl<D> Decided<D> {
    pub fn by_policy(decision: D) -> Self {
        Decided {
            decision,
            failure: None,
            output: PolicyOutput::default(),
        }
    }

    pub fn with_output(self, output: PolicyOutput) -> Self {
        Decided { output, ..self }
    }

    /// Whether the fallback made this decision.
    pub fn is_fallback(&self) -> bool {
        self.failure.is_some()
    }
}

impl RouterFallback {
    pub fn decide(&self, failure: PolicyError) -> Decided<RouteDecision> {
        let decision = match self {
            RouterFallback::Pool(pool) => RouteDecision::Run {
                pool: pool.clone(),
                overrides: Default::default(),
                reason: format!(
                    "router policy failed ({}: {failure}); fail-open to pool {pool}",
                    failure.kind()
                ),
            },
            RouterFallback::Ignore => RouteDecision::Ignore {
                reason: format!(
                    "router policy failed ({}: {failure}); fail-closed, job not taken",
                    failure.kind()
                ),
            },
        };
        Decided {
            decision,
            failure: Some(failure),
            output: PolicyOutput::default(),
        }
    }
}

impl ThrottleFallback {
    pub fn decide(&self, failure: PolicyError) -> Decided<ThrottleDecision> {
        let decision = match self {
            ThrottleFallback::Admit => ThrottleDecision::Admit {
                reason: format!(
                    "throttle policy failed ({}: {failure}); fail-open, admitted",
                    failure.kind()
                ),
            },
            ThrottleFallback::Reject => ThrottleDecision::Reject {
                reason: format!(
                    "throttle policy failed ({}: {failure}); fail-closed, rejected",
                    failure.kind()
                ),
            },
        };
        Decided {
            decision,
            failure: Some(failure),
            output: PolicyOutput::default(),
        }
    }
}
