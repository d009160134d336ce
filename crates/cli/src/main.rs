//! `runway`: the one command-line entry point.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod chaos;
mod config;
mod doctor;
mod local;
mod logs;
mod policy;
mod policy_project;
mod replay;
mod runner_cache;
mod runner_sim;
mod sfn;

/// Ephemeral, autoscaling self-hosted GitHub Actions runners on AWS.
#[derive(Debug, Parser)]
#[command(name = "runway", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run runway on this machine: the Step Functions engine, GitHub emulator and local runners.
    Local(local::Args),
    /// Run and inspect States Language state machines on the local engine.
    #[command(subcommand)]
    Sfn(sfn::Command),
    /// Evaluate, test and compile WebAssembly routing and throttling policies.
    #[command(subcommand)]
    Policy(policy::Command),
    /// A stand-in for the GitHub Actions runner: registers with a JIT config, runs one job, exits.
    RunnerSim(runner_sim::Args),
    /// Measure webhook → launch latency and jobs per second through the job machine.
    Bench(bench::Args),
    /// Run a burst of jobs through the job machine with faults at every boundary; report leaks.
    Chaos(chaos::Args),
    /// Replay a trace of jobs through the real job machine on virtual time with simulated
    /// hosts: queue waits, runner-minutes, cost; compare two configurations.
    Replay(replay::Args),
    /// Check a configuration file and print every problem with its field path.
    #[command(subcommand)]
    Config(config::Command),
    /// Print a job's runner logs (boot, hooks, runner), from a deployed stack's CloudWatch
    /// Logs (--stack) or a running `runway local`.
    Logs(logs::Args),
    /// Check a deployed stack: its status, functions, GitHub App, webhook, pools and runner
    /// cache; each problem with what to do.
    Doctor(doctor::Args),
    /// Fill the runner cache bucket boot scripts install the actions runner from.
    #[command(subcommand)]
    RunnerCache(runner_cache::Command),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUNWAY_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let outcome = match cli.command {
        Command::Local(args) => local::run(args),
        Command::Sfn(command) => sfn::run(command),
        Command::Policy(command) => policy::run(command),
        Command::RunnerSim(args) => runner_sim::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Chaos(args) => chaos::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Config(command) => config::run(command),
        Command::RunnerCache(command) => runner_cache::run(command),
        Command::Logs(args) => logs::run(args),
        Command::Doctor(args) => doctor::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("runway: {error:#}");
            ExitCode::FAILURE
        }
    }
}
