//! `runway runner-sim`: a stand-in for the GitHub Actions runner that speaks to the runway
//! GitHub emulator. It registers with a JIT config, takes one job (whichever the emulator
//! hands it), runs it for the job's duration, reports it finished and exits.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use runway_github_emulator::runner::{self, RunOutcome, RunnerOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The emulator's base URL (e.g. http://127.0.0.1:8090). Defaults to the URL in the JIT
    /// config.
    #[arg(long, env = "RUNWAY_RUNNER_URL")]
    url: Option<String>,
    /// The `encoded_jit_config` the emulator returned from generate-jitconfig. runway's local
    /// provider hands it over in `RUNWAY_JITCONFIG`.
    #[arg(
        long,
        env = "RUNWAY_JITCONFIG",
        required_unless_present = "jitconfig_file"
    )]
    jitconfig: Option<String>,
    /// Read the JIT config from this file instead.
    #[arg(long, conflicts_with = "jitconfig")]
    jitconfig_file: Option<std::path::PathBuf>,
    /// Exit after waiting this many seconds without getting a job (default: wait until the
    /// runner is removed).
    #[arg(long)]
    idle_timeout: Option<f64>,
    /// How long each long poll waits on the emulator, in seconds.
    #[arg(long, default_value_t = 10.0)]
    poll_seconds: f64,
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a number of seconds, 0 or more (got {value})"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let jitconfig = match (&args.jitconfig, &args.jitconfig_file) {
        (Some(config), _) => config.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the JIT config from {}", path.display()))?,
        (None, None) => anyhow::bail!("pass --jitconfig or --jitconfig-file"),
    };
    let mut options = RunnerOptions::new(args.url.clone(), jitconfig);
    options.poll_wait = seconds(args.poll_seconds, "--poll-seconds")?;
    options.idle_timeout = args
        .idle_timeout
        .map(|s| seconds(s, "--idle-timeout"))
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(runner::run(options))?;
    match &outcome {
        RunOutcome::Completed { job_id, conclusion } => {
            println!("job {job_id} completed: {conclusion}")
        }
        RunOutcome::Removed => println!("runner removed; exiting"),
        RunOutcome::IdleTimeout => println!("no job within the idle timeout; exiting"),
    }
    Ok(ExitCode::SUCCESS)
}
