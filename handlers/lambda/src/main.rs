//! runway's Lambda executable. Every function of `template.yaml` runs it; the function's
//! `Handler` setting (`_HANDLER`) picks the entry point:
//! - `webhook`: API Gateway event in, webhook intake, HTTP response out ([`webhook`]);
//! - a job step's name (`route`, `admit`, ..., `release`): that step of the job flow
//!   ([`runway_lambda_support::run_step`]);
//! - `reap`: one reaper sweep per invocation ([`runway_lambda_support::reaper::run_reaper`]);
//! - `runner-cache`: the runner cache bucket brought up to the latest runner release
//!   ([`runway_lambda_support::runner_cache::run_runner_cache`]);
//! - `setup`: the setup pages, a GitHub App in two clicks ([`setup`]).
//!
//! Settings come from the environment: see each entry point and `runway_lambda_support`.

mod origin;
mod setup;
mod webhook;

use std::process::ExitCode;

use runway_lambda_support::Handler;

#[tokio::main]
async fn main() -> ExitCode {
    runway_lambda_support::init_tracing();
    let handler = match Handler::from_env() {
        Ok(handler) => handler,
        Err(error) => {
            tracing::error!(%error, "cannot tell which entry point to run");
            return ExitCode::FAILURE;
        }
    };
    let ended = match handler {
        Handler::Webhook => webhook::run().await,
        Handler::Step(step) => runway_lambda_support::run_step(step).await,
        Handler::Reap => runway_lambda_support::reaper::run_reaper().await,
        Handler::RunnerCache => runway_lambda_support::runner_cache::run_runner_cache().await,
        Handler::Setup => setup::run().await,
    };
    // Setup failures end here: one JSON line saying what to fix (Lambda reports the exit as
    // an init error), rather than the error's debug form on stderr.
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, %handler, "cannot start");
            ExitCode::FAILURE
        }
    }
}
