//! Cold starts of the `runway-lambda` executable, as Lambda starts a new execution environment:
//! the process is spawned with a function's settings (`sam/env.json`, AWS on moto) and a Lambda
//! Runtime API on 127.0.0.1, then timed:
//! - **init**: from the spawn to its first `GET .../invocation/next` (settings read, AWS clients
//!   and the job flow built, policies loaded): what Lambda reports as `Init Duration`;
//! - **first invocation**: from the spawn to its report of one sample event (`sam/events`), for
//!   the entry points whose sample needs no GitHub (the others are timed to init only, since
//!   nothing here may reach the network).
//!
//! ```sh
//! cargo bench -p runway-lambda --bench cold_start           # the release build
//! RUNWAY_LAMBDA_EXECUTABLE="qemu-aarch64 path/to/bootstrap" cargo bench -p runway-lambda --bench cold_start
//! ```
//!
//! `RUNWAY_COLD_STARTS` sets the runs per entry point (default 15).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use runway_testkit::MotoServer;
use runway_testkit::runtime_api::{Report, RuntimeApi};
use support::{function_command, sam_resources, sample};

/// An entry point, the sample event of its first invocation when that needs no GitHub, and
/// whether it loads the example router and throttle policies (compiled at init).
struct Entry {
    handler: &'static str,
    event: Option<&'static str>,
    policies: bool,
}

const fn entry(handler: &'static str, event: Option<&'static str>) -> Entry {
    Entry {
        handler,
        event,
        policies: false,
    }
}

const ENTRY_POINTS: [Entry; 11] = [
    entry("webhook", Some("webhook-queued.json")),
    entry("route", Some("route.json")),
    Entry {
        handler: "route",
        event: Some("route.json"),
        policies: true,
    },
    entry("admit", None),
    entry("wait-for-slot", None),
    entry("provision", None),
    entry("watch", None),
    entry("check-runner", None),
    entry("teardown", None),
    entry("release", Some("release-done.json")),
    entry("reap", None),
];

struct Figures {
    init: Vec<Duration>,
    invocation: Vec<Duration>,
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks entry points.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let runs: usize = std::env::var("RUNWAY_COLD_STARTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(15);
    let moto = match MotoServer::shared() {
        Ok(moto) => moto,
        Err(error) => {
            eprintln!("cold_start: {error}");
            std::process::exit(2);
        }
    };
    sam_resources(moto).await;
    println!("| entry point | init p50 | init max | first invocation p50 | first invocation max |");
    println!("|---|---|---|---|---|");
    for entry in &ENTRY_POINTS {
        let handler = entry.handler;
        if !filter.is_empty() && !filter.iter().any(|f| handler.contains(f.as_str())) {
            continue;
        }
        let mut figures = Figures {
            init: Vec::with_capacity(runs),
            invocation: Vec::with_capacity(runs),
        };
        for run in 0..runs {
            if let Err(error) = cold_start(moto, entry, run, &mut figures).await {
                eprintln!("cold_start: {handler}: {error}");
                std::process::exit(1);
            }
        }
        let invocation = if figures.invocation.is_empty() {
            "— | —".to_owned()
        } else {
            format!(
                "{} | {}",
                millis(percentile(&mut figures.invocation, 0.5)),
                millis(percentile(&mut figures.invocation, 1.0))
            )
        };
        let policies = if entry.policies {
            " with the labels-router and fair-share policies"
        } else {
            ""
        };
        println!(
            "| `{handler}`{policies} | {} | {} | {invocation} |",
            millis(percentile(&mut figures.init, 0.5)),
            millis(percentile(&mut figures.init, 1.0)),
        );
    }
}

/// One process: spawned, timed to its first poll and, with an event, to its report; killed.
async fn cold_start(
    moto: &MotoServer,
    entry: &Entry,
    run: usize,
    figures: &mut Figures,
) -> Result<(), String> {
    let event = entry.event;
    let mut api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
    let mut command = function_command(entry.handler, api.address(), moto);
    if entry.policies {
        for (variable, module) in [
            ("RUNWAY_ROUTER_POLICY", "labels-router.wasm"),
            ("RUNWAY_THROTTLE_POLICY", "fair-share.wasm"),
        ] {
            let path = runway_testkit::built_policy(module).map_err(|e| e.to_string())?;
            command.env(variable, path);
        }
    }
    let spawned = Instant::now();
    let mut process = command.spawn().map_err(|e| format!("spawn: {e}"))?;
    if let Some(event) = event {
        api.queue(&format!("cold-{run}"), sample(event));
    }
    let deadline = spawned + Duration::from_secs(60);
    let polled = loop {
        if let Some(at) = api.first_poll() {
            break at;
        }
        if let Ok(Some(status)) = process.try_wait() {
            let output = process.wait_with_output().await.ok();
            return Err(format!(
                "exited ({status}) before asking for work: {output:?}"
            ));
        }
        if Instant::now() > deadline {
            return Err("no poll within a minute".to_owned());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    figures.init.push(polled.saturating_duration_since(spawned));
    if event.is_some() {
        let report = tokio::time::timeout(Duration::from_secs(60), api.report())
            .await
            .map_err(|_| "no report within a minute".to_owned())?
            .ok_or("the Runtime API stopped")?;
        let answered = Instant::now();
        if let Report::Error { body, .. } = &report {
            return Err(format!("the sample event failed: {body}"));
        }
        figures
            .invocation
            .push(answered.saturating_duration_since(spawned));
    }
    let _ = process.kill().await;
    Ok(())
}

fn percentile(samples: &mut [Duration], share: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 * share).ceil() as usize).clamp(1, samples.len().max(1));
    samples.get(index - 1).copied().unwrap_or_default()
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
