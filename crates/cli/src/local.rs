//! `runway local`: runway on this machine. Today: the Step Functions API over the local engine,
//! with the state machines of `statemachines/` registered and a demo execution started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use runway_asl::{ExecutionEvent, StepFunctions, TaskRegistry};
use runway_clock::SystemClock;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The demo machine, built in so `runway local` works from any directory.
const BUILT_IN_DEMO: &str = include_str!("../../../statemachines/demo.asl.json");
const DEMO_INPUT: &str = r#"{"who": "runway"}"#;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the Step Functions API listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8083")]
    pub sfn_addr: SocketAddr,
    /// The directory of state machines (*.asl.json) to register.
    #[arg(long, value_name = "DIR", default_value = "statemachines")]
    pub state_machines: PathBuf,
    /// Do not start the demo execution.
    #[arg(long)]
    pub no_demo: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    runtime.block_on(run_local(args))?;
    Ok(ExitCode::SUCCESS)
}

/// A state machine file that was registered or left out, for the banner.
enum Loaded {
    Registered { name: String, origin: String },
    Skipped { origin: String, reason: String },
}

/// One service `runway local` runs, for the banner.
struct Endpoint {
    what: &'static str,
    url: String,
}

async fn run_local(args: Args) -> anyhow::Result<()> {
    let tasks = TaskRegistry::new();
    let service = StepFunctions::new(SystemClock::shared(), tasks.clone());
    // Subscribe before anything runs so the first events are shown too.
    let events = service.subscribe();
    let loaded = register_state_machines(&service, &tasks, &args.state_machines)?;

    let (shutdown, _) = broadcast::channel::<()>(1);
    let sfn_listener = tokio::net::TcpListener::bind(args.sfn_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the Step Functions API: is another runway local running? Pick another address with --sfn-addr",
                args.sfn_addr
            )
        })?;
    let sfn_url = format!("http://{}", sfn_listener.local_addr()?);
    let mut servers = tokio::task::JoinSet::new();
    {
        let service = service.clone();
        let mut stop = shutdown.subscribe();
        servers.spawn(async move {
            runway_sfn_local::serve_with_shutdown(sfn_listener, service, async move {
                let _ = stop.recv().await;
            })
            .await
            .context("the Step Functions API stopped")
        });
    }
    let endpoints = vec![Endpoint {
        what: "Step Functions API",
        url: sfn_url.clone(),
    }];
    print_banner(&endpoints, &loaded, &sfn_url);
    tokio::spawn(print_events(events));

    if !args.no_demo {
        let demo = loaded
            .iter()
            .any(|l| matches!(l, Loaded::Registered { name, .. } if name == "demo"));
        if demo {
            let arn = format!(
                "arn:aws:states:{}:{}:stateMachine:demo",
                runway_asl::service::DEFAULT_REGION,
                runway_asl::service::DEFAULT_ACCOUNT
            );
            let name = format!("welcome-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
            service
                .start_execution(&arn, Some(&name), Some(DEMO_INPUT))
                .map_err(|error| anyhow::anyhow!("could not start the demo execution: {error}"))?;
        }
    }

    tokio::select! {
        signal = stop_signal() => signal?,
        Some(outcome) = servers.join_next() => {
            outcome.context("a runway local service panicked")??;
        }
    }
    println!("\nstopping");
    let _ = shutdown.send(());
    while let Some(outcome) = servers.join_next().await {
        outcome.context("a runway local service panicked")??;
    }
    Ok(())
}

/// Registers every `*.asl.json` in `dir` that can run here, and the built-in demo if `dir`
/// has none.
fn register_state_machines(
    service: &StepFunctions,
    tasks: &TaskRegistry,
    dir: &Path,
) -> anyhow::Result<Vec<Loaded>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.to_string_lossy().ends_with(".asl.json"))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            return Err(error).with_context(|| {
                format!("cannot read the state machine directory {}", dir.display())
            });
        }
    };
    files.sort();
    let mut loaded = Vec::new();
    for path in files {
        let origin = path.display().to_string();
        let name = machine_name(&path);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                loaded.push(Loaded::Skipped {
                    origin,
                    reason: format!("unreadable: {error}"),
                });
                continue;
            }
        };
        loaded.push(register(service, tasks, &name, &text, origin));
    }
    let has_demo = loaded
        .iter()
        .any(|l| matches!(l, Loaded::Registered { name, .. } if name == "demo"));
    if !has_demo {
        loaded.push(register(
            service,
            tasks,
            "demo",
            BUILT_IN_DEMO,
            "built in".into(),
        ));
    }
    Ok(loaded)
}

fn register(
    service: &StepFunctions,
    tasks: &TaskRegistry,
    name: &str,
    text: &str,
    origin: String,
) -> Loaded {
    let missing = missing_handlers(text, tasks);
    if !missing.is_empty() {
        return Loaded::Skipped {
            origin,
            reason: format!(
                "its Task states need handlers not wired into runway local yet: {}",
                missing.join(", ")
            ),
        };
    }
    match service.create_state_machine(name, text, None) {
        Ok(machine) => Loaded::Registered {
            name: machine.name,
            origin,
        },
        Err(error) => Loaded::Skipped {
            origin,
            reason: error.to_string(),
        },
    }
}

/// `statemachines/demo.asl.json` → `demo`.
fn machine_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.trim_end_matches(".asl.json").to_owned()
}

/// Task resources of a definition (at any depth) with no handler registered.
fn missing_handlers(text: &str, tasks: &TaskRegistry) -> Vec<String> {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.get("Type").and_then(Value::as_str) == Some("Task") {
                    let resource = map.get("Resource").and_then(Value::as_str).unwrap_or("?");
                    let function = map
                        .get("Parameters")
                        .or_else(|| map.get("Arguments"))
                        .and_then(|p| p.get("FunctionName"))
                        .and_then(Value::as_str);
                    found.push(function.unwrap_or(resource).to_owned());
                }
                map.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let Ok(source) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk(&source, &mut found);
    let registered = tasks.names();
    let mut missing: Vec<String> = found
        .into_iter()
        .filter(|name| !registered.iter().any(|r| name.ends_with(r.as_str())))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

fn print_banner(endpoints: &[Endpoint], loaded: &[Loaded], sfn_url: &str) {
    println!("runway local");
    for endpoint in endpoints {
        println!("  {:<20} {}", endpoint.what, endpoint.url);
    }
    for entry in loaded {
        match entry {
            Loaded::Registered { name, origin } => {
                println!("  {:<20} {name} ({origin})", "state machine")
            }
            Loaded::Skipped { origin, reason } => {
                println!("  {:<20} {origin}: {reason}", "skipped")
            }
        }
    }
    println!();
    println!("  try: aws stepfunctions list-state-machines --endpoint-url {sfn_url}");
    println!(
        "  (any credentials work, e.g. AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1)"
    );
    println!("Press Ctrl-C to stop.");
    println!();
}

/// Prints one line per history event as executions move through their states.
async fn print_events(mut events: broadcast::Receiver<ExecutionEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => println!("{}", event_line(&event)),
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                println!("  ... {skipped} events not shown (output fell behind)");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// `12:00:01.250  demo/1f0c…  PassStateEntered  Greet`.
fn event_line(event: &ExecutionEvent) -> String {
    let execution = execution_label(&event.execution_arn);
    let time = event.event.timestamp.format("%H:%M:%S%.3f");
    let mut line = format!("{time}  {execution}  {}", event.event.event_type);
    let details = event.event.detail().cloned().unwrap_or(json!({}));
    if let Some(name) = details.get("name").and_then(Value::as_str) {
        line.push_str(&format!("  {name}"));
    }
    if let Some(error) = details.get("error").and_then(Value::as_str) {
        line.push_str(&format!("  error={error}"));
    }
    if let Some(cause) = details.get("cause").and_then(Value::as_str) {
        line.push_str(&format!("  cause={cause}"));
    }
    if event.event.event_type == "ExecutionSucceeded"
        && let Some(output) = details.get("output").and_then(Value::as_str)
    {
        line.push_str(&format!("  output={output}"));
    }
    line
}

/// `arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME` → `MACHINE/NAME`.
fn execution_label(arn: &str) -> String {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [.., "execution", machine, name] => format!("{machine}/{name}"),
        _ => arn.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_come_from_file_names() {
        assert_eq!(
            machine_name(Path::new("statemachines/demo.asl.json")),
            "demo"
        );
        assert_eq!(machine_name(Path::new("/x/job.asl.json")), "job");
    }

    #[test]
    fn task_states_without_handlers_are_found_at_any_depth() {
        let text = r#"{"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "runway-route"}, "End": true}}}]}}}"#;
        let none = TaskRegistry::new();
        assert_eq!(
            missing_handlers(text, &none),
            vec!["runway-route".to_owned()]
        );
        let some = TaskRegistry::new().with("runway-route", |_| async { Ok(json!({})) });
        assert!(missing_handlers(text, &some).is_empty());
        assert!(missing_handlers(BUILT_IN_DEMO, &none).is_empty());
    }

    #[test]
    fn execution_labels_are_machine_and_name() {
        assert_eq!(
            execution_label("arn:aws:states:us-east-1:123456789012:execution:demo:run-1"),
            "demo/run-1"
        );
        assert_eq!(execution_label("weird"), "weird");
    }
}
