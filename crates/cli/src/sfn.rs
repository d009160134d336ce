//! `runway sfn`: run and check States Language definitions on the local engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use runway_asl::{Definition, RunConfig, RunResult, TaskRegistry};
use runway_clock::{SharedClock, SystemClock, VirtualClock};
use serde_json::{Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run one execution of a state machine and print its result as one JSON object:
    /// {"status", "output", "error", "cause"}. Task states have no handlers here.
    Run(RunArgs),
    /// Check that a state machine definition parses and validates.
    Validate(ValidateArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The state machine definition (an .asl.json file).
    #[arg(long, value_name = "FILE")]
    pub definition: PathBuf,
    /// The execution input: JSON text, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE", default_value = "{}")]
    pub input: String,
    /// Run on the system clock, so Wait states and retry intervals take real time.
    /// By default time is virtual: an execution that waits an hour finishes at once.
    #[arg(long)]
    pub real_time: bool,
    /// Also print the execution history (GetExecutionHistory events) under "history".
    #[arg(long)]
    pub history: bool,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The state machine definition (an .asl.json file).
    #[arg(long, value_name = "FILE")]
    pub definition: PathBuf,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_execution(args),
        Command::Validate(args) => validate(args),
    }
}

/// Reads and validates a definition file, naming the file and the fault in any error.
pub fn load_definition(path: &Path) -> anyhow::Result<Definition> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the definition {}", path.display()))?;
    Definition::parse(&text).map_err(|error| {
        anyhow::anyhow!(
            "invalid state machine definition {}: {error}",
            path.display()
        )
    })
}

/// The execution input: inline JSON, or `@FILE`.
fn read_input(input: &str) -> anyhow::Result<Value> {
    let (text, origin) = match input.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the input file {path}"))?,
            format!("the input file {path}"),
        ),
        None => (input.to_owned(), "--input".to_owned()),
    };
    serde_json::from_str(&text).with_context(|| {
        format!("{origin} is not valid JSON (pass JSON text, or @FILE to read a file)")
    })
}

fn run_execution(args: RunArgs) -> anyhow::Result<ExitCode> {
    let definition = load_definition(&args.definition)?;
    let input = read_input(&args.input)?;
    let result = execute(&definition, input, args.real_time)?;
    let mut report = json!({
        "status": result.status.as_str(),
        "output": result.output,
        "error": result.error,
        "cause": result.cause,
    });
    if args.history {
        report["history"] = serde_json::to_value(&result.history)
            .context("could not encode the execution history")?;
    }
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Runs one execution with no task handlers, on virtual time unless `real_time`.
fn execute(definition: &Definition, input: Value, real_time: bool) -> anyhow::Result<RunResult> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if !real_time {
        // With time paused, tokio jumps to the next timer whenever the execution is idle.
        builder.start_paused(true);
    }
    let runtime = builder
        .build()
        .context("could not start the tokio runtime")?;
    Ok(runtime.block_on(async {
        let clock: SharedClock = if real_time {
            SystemClock::shared()
        } else {
            VirtualClock::new().shared()
        };
        runway_asl::run(
            definition,
            input,
            RunConfig::new(clock, TaskRegistry::new()),
        )
        .await
    }))
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let definition = load_definition(&args.definition)?;
    println!(
        "{}: valid ({} top-level states, starts at '{}')",
        args.definition.display(),
        definition.machine.states.len(),
        definition.machine.start_at
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_input_must_be_json() {
        assert_eq!(read_input(r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
        assert_eq!(read_input("3").unwrap(), json!(3));
        let error = read_input("{oops").unwrap_err();
        assert!(format!("{error:#}").contains("--input is not valid JSON"));
        let error = read_input("@/nonexistent/input.json").unwrap_err();
        assert!(format!("{error:#}").contains("/nonexistent/input.json"));
    }
}
