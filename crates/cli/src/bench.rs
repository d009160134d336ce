//! `runway bench`: webhook → launch latency and jobs per second through the job machine on
//! this machine (see `runway_local::bench`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use std::io::IsTerminal;

use runway_local::bench::{self, BenchOptions, Progress};
use runway_local::provider_bench::{self, BenchProvider, ProviderBenchOptions};
use runway_local::warm_bench::{self, WarmBenchOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Jobs timed one after another for the webhook → launch figure.
    #[arg(long, default_value_t = 300)]
    latency_samples: usize,
    /// Jobs queued at once for the throughput figure.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Run each runner as a `runway runner-sim` process instead of a task in this process.
    #[arg(long)]
    runner_processes: bool,
    /// Give up when a run has not finished after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_seconds: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Time launches through a real provider instead (`ec2`, `ecs`, `eks` or `lambda`), on the AWS API
    /// given by --aws-endpoint (moto on this machine; EKS pods go to runway's Kubernetes
    /// emulator): webhook → launch call → launched.
    #[arg(long)]
    provider: Option<BenchProvider>,
    /// The AWS API for --provider.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint: Option<String>,
    /// Compare a cold pool with a warm one instead: the same trace of jobs replayed on the
    /// virtual clock with runners that take --boot-seconds to register, without and with
    /// --warm-idle warm runners.
    #[arg(long, conflicts_with = "provider")]
    warm: bool,
    /// With --warm: how many warm runners the warm pool keeps.
    #[arg(long, default_value_t = 2, requires = "warm")]
    warm_idle: u32,
    /// With --warm: how long a runner takes to boot and register.
    #[arg(long, default_value_t = 45.0, requires = "warm")]
    boot_seconds: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(provider) = args.provider {
        return run_provider(provider, args);
    }
    if args.warm {
        return run_warm(&args);
    }
    let options = BenchOptions {
        latency_samples: args.latency_samples,
        jobs: args.jobs,
        runner_processes: args.runner_processes,
        timeout: Duration::from_secs(args.timeout_seconds),
        progress: progress(),
    };
    report(args.json, bench::run(&options))
}

fn run_provider(provider: BenchProvider, args: Args) -> anyhow::Result<ExitCode> {
    let aws_endpoint = args.aws_endpoint.context(
        "--provider needs the AWS API to launch on: start moto (.tools/venv/bin/moto_server -H \
         127.0.0.1 -p 5000) and give --aws-endpoint http://127.0.0.1:5000",
    )?;
    let options = ProviderBenchOptions {
        provider,
        samples: args.latency_samples,
        aws_endpoint,
        timeout: Duration::from_secs(args.timeout_seconds),
        progress: progress(),
    };
    report(args.json, provider_bench::measure(&options))
}

fn run_warm(args: &Args) -> anyhow::Result<ExitCode> {
    let options = WarmBenchOptions {
        idle: args.warm_idle,
        boot_seconds: args.boot_seconds,
        ..WarmBenchOptions::default()
    };
    let report = warm_bench::run_blocking(&options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a bench to its report and prints it, as JSON when asked.
fn report<R, E>(
    json: bool,
    bench: impl std::future::Future<Output = Result<R, E>>,
) -> anyhow::Result<ExitCode>
where
    R: serde::Serialize + std::fmt::Display,
    E: std::error::Error + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(bench)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress lines on stderr when it is a terminal; a redirected run stays quiet.
fn progress() -> Option<Progress> {
    std::io::stderr()
        .is_terminal()
        .then(|| Progress::new(|line| eprintln!("runway bench: {line}")))
}
