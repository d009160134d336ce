//! `runway doctor --stack NAME`: checks a deployed stack and says, for each problem, what to
//! do. The checks, in order:
//!
//! 1. the stack exists and its last operation completed ([`check_stack`]);
//! 2. the functions start: each is invoked with an event that does nothing
//!    ([`check_functions`]); their settings are what the next checks read;
//! 3. the GitHub credentials the functions use exist; for the setup page's App, the App
//!    secret holds an App ([`check_credentials`]);
//! 4. the webhook reaches the API and takes the stack's secret: a signed `ping` POSTed to the
//!    `WebhookUrl` output ([`check_webhook_ping`]); GitHub sends the App's webhook there, with
//!    a secret, and its latest delivery was taken ([`check_github_hook`]);
//! 5. each EC2 pool's image (AMI or `resolve:ssm:` parameter) and subnets exist
//!    ([`check_pools`]);
//! 6. the runner cache holds `runners/latest.json` and the packages it names
//!    ([`check_runner_cache`]).
//!
//! Every outside system is a trait with an AWS (or GitHub, or HTTP) implementation:
//! [`Stacks`], [`Functions`], [`Secrets`], [`Webhooks`], [`AppHooks`], [`Images`],
//! [`CacheObjects`]. [`Doctor::examine`] runs the checks and returns a [`Report`].

mod cache;
mod doctor;
mod functions;
mod github;
mod pools;
mod report;
mod secrets;
mod stack;
mod webhook;

pub use cache::{CacheObjects, S3CacheObjects, check_runner_cache};
pub use doctor::Doctor;
pub use functions::{
    Answer, AwsFunctions, DOCTOR_EVENT, FunctionConfig, Functions, Invoked, check_functions,
    doctor_event, read_answer,
};
pub use github::{
    AppHooks, AppIdentity, GitHubFacts, RestAppHooks, check_credentials, check_deliveries,
    check_github_hook,
};
pub use pools::{AwsImages, Images, check_pools};
pub use report::{Finding, Report, Status};
pub use secrets::{AwsSecrets, Secrets};
pub use stack::{CloudFormationStacks, StackView, Stacks, check_stack};
pub use webhook::{HttpAnswer, HttpWebhooks, PingContext, Webhooks, check_webhook_ping, ping_body};

/// Why the doctor could not look at something. Checks turn these into findings.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("{call}: {reason}")]
    Aws { call: String, reason: String },
    #[error("cannot read {location}: {reason}")]
    Unreadable { location: String, reason: String },
    #[error("{0}")]
    Http(String),
    #[error("GitHub: {0}")]
    GitHub(String),
}

impl DoctorError {
    pub(crate) fn aws(call: impl Into<String>, reason: impl std::fmt::Display) -> DoctorError {
        DoctorError::Aws {
            call: call.into(),
            reason: reason.to_string(),
        }
    }
}
