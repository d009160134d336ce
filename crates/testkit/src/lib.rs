//! Test support for runway.
//!
//! - [`MotoServer`]: a real AWS API (moto) on 127.0.0.1, for tests of code that talks to
//!   DynamoDB, EC2, SSM, ECS and friends. One server per test binary via
//!   [`MotoServer::shared`]; tests keep apart by using their own table or resource names.
//! - [`RuntimeApi`]: the Lambda Runtime API on 127.0.0.1, for running the Lambda executable as
//!   Lambda does.
//! - [`workspace_root`], [`shared_dir`], [`fixtures_dir`], [`asl_conformance_dir`]: where the
//!   repository, the shared fixtures and the recorded ASL executions live (every reader uses
//!   these, so `RUNWAY_SHARED_DIR`, `RUNWAY_FIXTURES_DIR` and `RUNWAY_ASL_CONFORMANCE_DIR` are
//!   honoured everywhere); [`built_policy`], [`built_policy_bytes`]: the policy modules that
//!   `scripts/build-policies.sh` built from source.
//!
//! ```no_run
//! # async fn example() -> Result<(), runway_testkit::TestkitError> {
//! let moto = runway_testkit::MotoServer::shared()?;
//! let config = moto.sdk_config().await;
//! // e.g. aws_sdk_dynamodb::Client::new(&config), then a table named after the test.
//! # let _ = config;
//! # Ok(())
//! # }
//! ```

mod moto;
mod paths;
pub mod runtime_api;

pub use moto::MotoServer;
pub use paths::{
    asl_conformance_dir, built_policy, built_policy_bytes, fixtures_dir, shared_dir, workspace_root,
};
pub use runtime_api::RuntimeApi;

/// What can go wrong while setting up test support.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(
        "moto is not installed ({path} is missing): run scripts/setup.sh, \
         or point RUNWAY_MOTO_PYTHON at a Python that has moto[server]"
    )]
    MotoMissing { path: String },
    #[error("could not start moto with {python}: {source}; run scripts/setup.sh")]
    MotoSpawn {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error("moto did not start: {reason}; run scripts/setup.sh to (re)install it")]
    MotoDidNotStart { reason: String },
    #[error("the shared moto server did not start: {reason}")]
    SharedMotoFailed { reason: String },
    #[error("moto at {endpoint} did not answer {request}: {reason}")]
    MotoRequest {
        endpoint: String,
        request: &'static str,
        reason: String,
    },
    #[error("the shared directory {path} does not exist: set RUNWAY_SHARED_DIR to it")]
    SharedDirMissing { path: String },
    #[error("{path} is not a directory: set {variable} to it")]
    DirMissing {
        path: String,
        variable: &'static str,
    },
    #[error("{path}: {reason}; run scripts/build-policies.sh to build the policy modules")]
    PolicyNotBuilt { path: String, reason: String },
    #[error("could not serve the Lambda Runtime API on 127.0.0.1: {0}")]
    RuntimeApi(String),
}
