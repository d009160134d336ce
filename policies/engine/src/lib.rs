//! The wasmtime host for runway's WebAssembly routing and throttling policies.
//!
//! A policy is a component implementing the `router` or `throttle` world of the WIT package
//! in `policies/wit`, importing nothing or only a deterministic WASI 0.2 (for policies built
//! by language runtimes such as componentize-py and componentize-js: no arguments, an empty
//! environment, clocks reading the decision's time, randomness seeded from the job, output
//! captured, no files, no network). The host knows only that contract:
//!
//! ```no_run
//! use runway_policy_host::{EngineConfig, Job, Pool, PolicyEngine};
//!
//! let engine = PolicyEngine::new(EngineConfig::default())?;
//! let router = engine.load_file("policies/build/labels-router.wasm")?.router()?;
//! let job = Job { labels: vec!["self-hosted".into(), "linux".into()], ..Job::default() };
//! let pools = [Pool { name: "linux".into(), labels: vec!["linux".into()], ..Pool::default() }];
//! let decision = router.route(&job, &pools)?;
//! # Ok::<(), runway_policy_host::PolicyError>(())
//! ```
//!
//! By default every call runs in a fresh instance with a fuel budget, a wall-clock budget (epoch
//! interruption) and a memory cap; whatever the policy does, the call returns a decision or
//! a [`PolicyError`], and a [`RouterFallback`] or [`ThrottleFallback`] can turn the error
//! into a decision whose reason says what failed. [`EngineConfig::reuse`] lets an instance
//! serve more than one call, for stateless policies ([`InstanceReuse`]).
//!
//! [`PolicyEngine::load_file`] takes a `.wasm` component or a `.cwasm` compiled ahead of time
//! (`runway policy compile`); [`PolicyEngine::load`] takes the bytes of a component.

mod bindings;
pub mod cases;
mod engine;
mod error;
mod fallback;
mod loader;
mod types;
mod wasi;

pub use engine::{
    CallBounds, EngineConfig, InstanceAllocation, InstanceReuse, Policy, PolicyBounds,
    PolicyEngine, RouterPolicy, Target, ThrottlePolicy,
};
pub use error::{PolicyError, World};
pub use fallback::{Decided, RouterFallback, ThrottleFallback};
pub use types::{
    AllowLists, Counts, HOST_PARAM_PREFIX, Instant, Job, Load, Market, Overrides, Pool,
    RouteDecision, RouterInput, ThrottleDecision, ThrottleInput,
};
pub use wasi::{CAPTURED_OUTPUT_BYTES, PolicyOutput};
