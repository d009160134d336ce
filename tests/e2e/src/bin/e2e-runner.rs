//! The runner the end-to-end tests launch as a local process: the emulator's runner stand-in
//! (registers with the JIT config in `$RUNWAY_JITCONFIG`, or in the file after
//! `--jitconfig-file` as an EKS pod reads its mounted secret; takes one job, runs it, exits).
//!
//! When `$RUNWAY_E2E_GATE_DIR` is set it first waits until a file named after the runner
//! (`$RUNWAY_RUNNER_NAME`) appears there, so a test decides when each runner comes online.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use runway_github_emulator::runner::{self, RunOutcome, RunnerOptions};

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().collect();
    let file = arguments
        .iter()
        .position(|argument| argument == "--jitconfig-file")
        .and_then(|at| arguments.get(at + 1));
    let jitconfig = match file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("e2e-runner: cannot read the JIT config from {path}: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => match std::env::var("RUNWAY_JITCONFIG") {
            Ok(config) => config,
            Err(_) => {
                eprintln!(
                    "e2e-runner: RUNWAY_JITCONFIG is not set; run me through the local provider"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let name = std::env::var("RUNWAY_RUNNER_NAME").unwrap_or_default();
    if let Some(dir) = std::env::var_os("RUNWAY_E2E_GATE_DIR") {
        let gate = PathBuf::from(dir).join(&name);
        while !gate.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("e2e-runner: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // As the actions runner does, say so on start: its log shows it ran even when it is
    // stopped before it can say how its job ended.
    println!("{name}: listening for a job");
    let mut options = RunnerOptions::new(None, jitconfig);
    options.poll_wait = Duration::from_secs(1);
    match runtime.block_on(runner::run(options)) {
        Ok(RunOutcome::Completed { job_id, conclusion }) => {
            println!("{name}: job {job_id} completed: {conclusion}");
            ExitCode::SUCCESS
        }
        Ok(outcome) => {
            println!("{name}: {outcome:?}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}
