//! `runway chaos`: a fault campaign through the real job machine (see `runway_local::chaos`).
//! Progress goes to stderr; the last line on stdout is one JSON object with what was found.
//! The exit status is 0 only when nothing leaked and no ceiling was exceeded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use runway_local::LocalConfig;
use runway_local::chaos::{self, ChaosOptions, FaultSet};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Jobs queued at once.
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// Seeds every fault decision.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A `runway local` configuration (its GitHub must be the emulator). Default: one pool of
    /// in-process runners, or of EC2 instances on moto with --aws-endpoint.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The AWS API on this machine (moto), behind the fault proxy: EC2 pools, DynamoDB store.
    #[arg(long, env = "RUNWAY_CHAOS_AWS_ENDPOINT")]
    aws_endpoint: Option<String>,
    /// The faults to inject, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Faults to leave out of the list, comma-separated.
    #[arg(long, default_value = "")]
    without: String,
    /// The built-in pool's ceiling (max_running).
    #[arg(long, default_value_t = 20)]
    max_running: u32,
    /// How long each job runs on its runner, in seconds.
    #[arg(long, default_value_t = 0.5)]
    job_seconds: f64,
    /// How long to wait for every execution to end while nothing moves (no execution starts
    /// or ends, no job completes, no reaper pass acts), in seconds.
    #[arg(long, default_value_t = 180)]
    settle_seconds: u64,
    /// The longest wait for every execution to end, progress or not, in seconds.
    #[arg(long, default_value_t = 2700)]
    max_wait_seconds: u64,
    /// How often the reaper runs meanwhile, in seconds.
    #[arg(long, default_value_t = 10)]
    reaper_every_seconds: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut faults = FaultSet::parse_list(&args.faults)?;
    for kind in FaultSet::parse_list(&args.without)?.iter() {
        faults = faults.without(kind);
    }
    let config = match &args.config {
        Some(path) => Some(
            LocalConfig::from_file(path)
                .with_context(|| format!("cannot use the configuration {}", path.display()))?,
        ),
        None => None,
    };
    let options = ChaosOptions {
        jobs: args.jobs,
        seed: args.seed,
        faults,
        config,
        aws_endpoint: args.aws_endpoint,
        max_running: args.max_running,
        job_seconds: args.job_seconds,
        settle: Duration::from_secs(args.settle_seconds),
        max_wait: Duration::from_secs(args.max_wait_seconds),
        reaper_every: Duration::from_secs(args.reaper_every_seconds.max(1)),
        progress: Some(Arc::new(|line: &str| eprintln!("runway chaos: {line}"))),
        ..ChaosOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(chaos::run(&options))?;
    for failed in &report.failed {
        eprintln!(
            "runway chaos: job {} failed: {}",
            failed.job_id.map(|id| id.to_string()).unwrap_or_default(),
            failed.cause
        );
    }
    for stuck in &report.stuck {
        eprintln!("runway chaos: {}: {}", stuck.execution, stuck.cause);
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
