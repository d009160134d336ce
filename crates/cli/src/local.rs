//! `runway local`: the whole of runway on this machine. Without arguments: the GitHub
//! emulator, the webhook intake, the Step Functions API running `statemachines/job.asl.json`,
//! local runners (`runway runner-sim`), a demo workload over several pools and a live view
//! of every job moving through its states. With `--config FILE`: only what the file asks for.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use runway_asl::{ExecutionEvent, ExecutionStatus};
use runway_local::{EventView, LocalConfig, LocalSystem, SecretSource, demo};
use tokio::sync::broadcast;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration file (TOML: pools, providers, GitHub, store, policies). Without it the
    /// built-in configuration runs, with a demo workload.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Exit once no job is queued and no execution is running, with a summary (exit status 1
    /// if any job execution failed).
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Do not queue the demo jobs of the built-in configuration.
    #[arg(long)]
    pub no_demo: bool,
    /// Where the webhook intake listens (overrides the configuration).
    #[arg(long, value_name = "ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// Where the Step Functions API listens (overrides the configuration).
    #[arg(long, value_name = "ADDR")]
    pub sfn_addr: Option<SocketAddr>,
    /// Where the GitHub emulator listens (overrides the configuration).
    #[arg(long, value_name = "ADDR")]
    pub emulator_addr: Option<SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    runtime.block_on(run_local(args))
}

async fn run_local(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => LocalConfig::from_file(path)?,
        None => LocalConfig::embedded_default()?,
    };
    if let Some(addr) = args.webhook_addr {
        config.listen.webhook = addr;
    }
    if let Some(addr) = args.sfn_addr {
        config.listen.sfn = addr;
    }
    if let Some(addr) = args.emulator_addr {
        config.listen.emulator = addr;
    }
    let demo = args.config.is_none() && !args.no_demo;
    let system = LocalSystem::start(config).await?;
    // Subscribe before any job is queued so the first events are shown too.
    let printer = tokio::spawn(print_events(system.subscribe()));
    print_banner(&system);

    if demo && let Some(emulator) = system.emulator() {
        let jobs = demo::demo_jobs();
        demo::submit(emulator.base_url(), &jobs).await?;
        println!("queued {} demo jobs\n", jobs.len());
    }

    let outcome = if args.exit_when_idle {
        tokio::select! {
            signal = stop_signal() => { signal?; None }
            () = wait_until_idle(&system) => Some(summary(&system)),
            error = system.failure() => return Err(error.into()),
        }
    } else {
        tokio::select! {
            signal = stop_signal() => { signal?; None }
            error = system.failure() => return Err(error.into()),
        }
    };
    // Let the view print the last events before the summary.
    tokio::time::sleep(Duration::from_millis(200)).await;
    printer.abort();
    if outcome.is_none() {
        println!("\nstopping");
    }
    system.shutdown().await;
    Ok(outcome.unwrap_or(ExitCode::SUCCESS))
}

async fn wait_until_idle(system: &LocalSystem) {
    // Webhooks take a moment to turn queued jobs into executions.
    tokio::time::sleep(Duration::from_millis(500)).await;
    loop {
        if system.is_idle() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints how every execution ended; failure when any did not succeed.
fn summary(system: &LocalSystem) -> ExitCode {
    let executions = system.executions();
    let succeeded = executions
        .iter()
        .filter(|e| e.status == ExecutionStatus::Succeeded)
        .count();
    println!(
        "\nidle: {} job executions, {succeeded} succeeded",
        executions.len()
    );
    let mut failed = false;
    for execution in executions.iter().rev() {
        if execution.status != ExecutionStatus::Succeeded {
            failed = true;
            println!(
                "  {}  {}  {}: {}",
                execution.name,
                execution.status,
                execution.error.as_deref().unwrap_or(""),
                execution.cause.as_deref().unwrap_or("")
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_banner(system: &LocalSystem) {
    println!("runway local");
    if let Some(emulator) = system.emulator() {
        println!("  {:<20} {}", "GitHub emulator", emulator.base_url());
    }
    println!("  {:<20} {}", "webhook intake", system.webhook_url());
    if let Some(setup_url) = system.setup_url() {
        // Local only: the token guards nothing but this machine's emulator.
        println!("  {:<20} {}", "setup page", setup_url);
    }
    println!("  {:<20} {}", "Step Functions API", system.sfn_url());
    println!("  {:<20} {}", "web console", system.console_url());
    match system.webhook_secret_source() {
        SecretSource::Generated => println!(
            "  {:<20} {} (generated; set RUNWAY_WEBHOOK_SECRET to choose one)",
            "webhook secret",
            system.webhook_secret()
        ),
        SecretSource::Environment => {
            println!("  {:<20} from RUNWAY_WEBHOOK_SECRET", "webhook secret")
        }
        SecretSource::Config => println!("  {:<20} from the configuration", "webhook secret"),
    }
    println!(
        "  {:<20} {} (statemachines/job.asl.json, built in)",
        "state machine",
        runway_local::JOB_MACHINE_NAME
    );
    for pool in system.pools() {
        println!(
            "  {:<20} {}: [{}], {} runners, at most {} running",
            "pool",
            pool.name,
            pool.labels.join(", "),
            pool.provider,
            pool.max_running
        );
    }
    for note in system.notes() {
        println!("  {:<20} {note}", "note");
    }
    println!();
    println!(
        "  try: aws stepfunctions list-executions --state-machine-arn {} --endpoint-url {}",
        system.machine_arn(),
        system.sfn_url()
    );
    println!(
        "  (any credentials work, e.g. AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1)"
    );
    if let Some(emulator) = system.emulator() {
        println!(
            "  queue a job: curl -X POST {}/_emulator/jobs -H 'Content-Type: application/json' \\\n      -d '{{\"repository\": \"octo-org/app\", \"labels\": [\"self-hosted\", \"linux\", \"x64\"]}}'",
            emulator.base_url()
        );
    }
    println!("Press Ctrl-C to stop.");
    println!();
}

/// Prints one line per state a job execution enters.
async fn print_events(mut events: broadcast::Receiver<ExecutionEvent>) {
    let mut view = EventView::new();
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Some(line) = view.line(&event) {
                    println!("{line}");
                }
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                println!("  ... {skipped} events not shown (output fell behind)");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Completes on Ctrl-C (or SIGTERM on Unix).
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        tokio::select! {
            signal = tokio::signal::ctrl_c() => signal.context("cannot listen for Ctrl-C"),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}
