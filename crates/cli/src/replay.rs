//! `runway replay`: what a configuration and its policies would do to a day of jobs (see
//! `runway_local::replay`).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, TimeZone, Utc};
use runway_local::LocalConfig;
use runway_local::bench::Progress;
use runway_local::replay::generate::{GenerateOptions, generate};
use runway_local::replay::report::Comparison;
use runway_local::replay::{self, ReplayOptions, trace};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trace to replay: one JSON object a line (at, repository, organization, labels,
    /// run_seconds); `-` reads standard input.
    #[arg(long, required_unless_present = "generate")]
    trace: Option<PathBuf>,
    /// The configuration to replay with (the `runway local --config` file, with its pools,
    /// policies and [replay] simulation settings); the built-in one when absent. Given twice,
    /// the two are compared side by side.
    #[arg(long, num_args = 1)]
    config: Vec<PathBuf>,
    /// A second configuration to compare with the first.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Hours of virtual time allowed after the last arrival for everything to end.
    #[arg(long, default_value_t = 48)]
    drain_hours: u64,
    /// Minutes of virtual time runway runs before the first arrival, so that warm pools are
    /// filled when the first job comes.
    #[arg(long, default_value_t = 10)]
    warm_up_minutes: u64,
    /// Write a synthetic trace to standard output instead of replaying one.
    #[arg(long, conflicts_with_all = ["trace", "compare", "json"])]
    generate: bool,
    /// --generate: how many jobs.
    #[arg(long, default_value_t = 10_000, requires = "generate")]
    jobs: usize,
    /// --generate: the seed (the same seed, the same trace).
    #[arg(long, default_value_t = 1, requires = "generate")]
    seed: u64,
    /// --generate: the first day (YYYY-MM-DD, UTC); a Monday by default.
    #[arg(long, default_value = "2026-12-07", requires = "generate")]
    start: NaiveDate,
    /// --generate: how many days.
    #[arg(long, default_value_t = 1, requires = "generate")]
    days: u32,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.generate {
        let start = Utc.from_utc_datetime(&args.start.and_time(chrono::NaiveTime::MIN));
        let jobs = generate(&GenerateOptions {
            jobs: args.jobs,
            seed: args.seed,
            start,
            days: args.days,
        });
        print!("{}", trace::to_jsonl(&jobs));
        return Ok(ExitCode::SUCCESS);
    }
    let mut configs = args.config.clone();
    configs.extend(args.compare.clone());
    if configs.len() > 2 {
        anyhow::bail!(
            "give one configuration to replay, or two to compare (--config A --config B, or \
             --config A --compare B), not {}",
            configs.len()
        );
    }
    let trace_path = args
        .trace
        .as_deref()
        .context("--trace FILE is needed (or --generate to make one)")?;
    let jobs = read_trace(trace_path)?;
    let mut reports = Vec::new();
    let paths: Vec<Option<&Path>> = if configs.is_empty() {
        vec![None]
    } else {
        configs.iter().map(|p| Some(p.as_path())).collect()
    };
    for path in paths {
        let (config, label) = load(path)?;
        let options = ReplayOptions {
            label: label.clone(),
            drain: Duration::from_secs(args.drain_hours * 3600),
            progress: std::io::stderr()
                .is_terminal()
                .then(|| Progress::new(|line| eprintln!("runway replay: {line}"))),
            warm_up: Duration::from_secs(args.warm_up_minutes * 60),
        };
        let report = replay::replay_blocking(config, &jobs, &options)
            .with_context(|| format!("the replay with {label} did not finish"))?;
        reports.push(report);
    }
    let mut reports = reports.into_iter();
    match (reports.next(), reports.next()) {
        (Some(a), Some(b)) => {
            let comparison = Comparison { a, b };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&comparison)?);
            } else {
                print!("{comparison}");
            }
        }
        (Some(report), None) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        _ => anyhow::bail!("no configuration was replayed"),
    }
    Ok(ExitCode::SUCCESS)
}

fn read_trace(path: &Path) -> anyhow::Result<Vec<trace::TraceJob>> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the trace from standard input")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the trace {}; make one with `runway replay --generate > {}`",
                path.display(),
                path.display()
            )
        })?
    };
    trace::parse(&text).with_context(|| format!("the trace {} is not usable", path.display()))
}

fn load(path: Option<&Path>) -> anyhow::Result<(LocalConfig, String)> {
    match path {
        Some(path) => Ok((
            LocalConfig::from_file(path)
                .with_context(|| format!("the configuration {} is not usable", path.display()))?,
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        )),
        None => Ok((
            LocalConfig::embedded_default()?,
            "the built-in configuration".to_owned(),
        )),
    }
}
