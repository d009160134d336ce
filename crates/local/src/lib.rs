//! runway on one machine, offline: the GitHub emulator (or a real GitHub App), the webhook
//! intake, the Step Functions API over the local engine running `statemachines/job.asl.json`,
//! and the job flow with its store (memory or DynamoDB), providers (local processes or EC2)
//! and policies. `runway local` and the end-to-end tests both build on [`LocalSystem`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), runway_local::LocalError> {
//! use runway_local::{LocalConfig, LocalSystem};
//! let system = LocalSystem::start(LocalConfig::embedded_default()?).await?;
//! println!("webhooks go to {}", system.webhook_url());
//! system.shutdown().await;
//! # Ok(()) }
//! ```

pub mod bench;
pub mod chaos;
pub mod config;
pub mod console;
pub mod demo;
mod ecs;
mod eks;
pub mod in_process;
mod lambda;
pub mod provider_bench;
mod reaper;
pub mod replay;
pub mod runner_cache;
mod setup;
mod starter;
mod system;
pub mod view;
pub mod warm_bench;

pub use config::{
    AppSettings, AwsSettings, ConfigError, DEFAULT_CONFIG, Ec2Settings, EmulatorSettings,
    GitHubConnection, Listen, LocalConfig, LocalRunners, PolicyFiles, ProviderSettings,
    StoreConfig,
};
pub use console::step_functions_client;
pub use eks::RunnerSimRuntime;
pub use setup::SETUP_TOKEN_ENV;
pub use starter::SfnStarter;
pub use system::{
    CallbacksWrapper, JOB_MACHINE_NAME, JOB_STATE_MACHINE, LocalError, LocalSystem, PoolSummary,
    ProviderWrapper, SecretSource, Supplied, TASK_PREFIX, job_definition,
};
pub use view::EventView;
