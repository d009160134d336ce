//! GitHub `workflow_job` webhook intake: signature verification, parsing, filtering.
//!
//! A delivery goes through [`Intake::handle`]:
//!
//! 1. bodies over [`IntakeConfig::max_body_bytes`] (default 1 MiB) → `413`;
//! 2. `X-Hub-Signature-256` checked against the current and, during a rotation, the previous
//!    secret, in constant time → `401` when missing or wrong, and nothing else happens;
//! 3. `ping` → `200`; events other than `workflow_job` → `202`, ignored; a body that is not a
//!    `workflow_job` payload → `400` with a short reason;
//! 4. events of a GitHub App installation runway does not serve → `202`, ignored (logged);
//!    jobs without the runner label (default `self-hosted`) or outside the allow-lists → `202`,
//!    ignored;
//! 5. `queued` → the job execution `job-<job id>-r<repo id>-a<attempt>` is started
//!    ([`ExecutionStarter`]); a redelivery finds it existing and succeeds (`200`);
//!    `in_progress` / `completed` → forwarded to the job flow ([`JobEvents`]);
//!    `waiting` → ignored (the job is queued again once approved).
//!
//! Calls to the engine are bounded by [`IntakeConfig::call_timeout`] (default 8 s, inside
//! GitHub's 10 s budget); a failure answers `503` so the delivery shows as failed in GitHub
//! and can be redelivered. Every log line carries the delivery id; secrets are never logged.

pub mod env;
pub mod event;
pub mod execution;
pub mod filter;
pub mod forward;
pub mod http;
pub mod intake;
#[cfg(feature = "aws-sfn")]
pub mod sfn;
pub mod signature;

pub use env::{ConfigError, secrets_from_env};
pub use event::{PayloadError, WorkflowJobAction, WorkflowJobEvent, parse_workflow_job};
pub use execution::{
    ExecutionStarter, JobExecutionInput, StartError, StartOutcome, execution_name,
    retry_execution_name,
};
pub use filter::{DEFAULT_RUNNER_LABEL, InstallationFilter, JobFilter, parse_installation_ids};
pub use forward::{ForwardError, JobEventKind, JobEventUpdate, JobEvents};
pub use http::{IntakeSlot, WEBHOOK_PATH, router, slot_router};
pub use intake::{Decision, Delivery, Intake, IntakeConfig, IntakeResponse, decide};
#[cfg(feature = "aws-sfn")]
pub use sfn::SfnExecutionStarter;
pub use signature::{SecretError, SignatureError, WebhookSecrets, generate_secret, sign_with};
