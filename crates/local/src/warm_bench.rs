//! `runway bench --warm`: what a warm pool saves. The same trace of jobs (one every few
//! minutes, as a quiet team queues them) is replayed twice on the virtual clock with runners
//! that take `boot_seconds` to boot and register: once on a cold pool, once on the same pool
//! keeping `idle` warm runners. The report compares the queue waits (GitHub queueing a job to
//! a runner starting it) and says what the warm runners cost in idle time.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;

use crate::config::LocalConfig;
use crate::replay::report::{PoolReport, ReplayReport, Waits};
use crate::replay::trace::TraceJob;
use crate::replay::{ReplayError, ReplayOptions, replay_blocking};

const POOL: &str = "linux";
const REPOSITORY: &str = "octo-org/app";
const LABELS: [&str; 3] = ["self-hosted", "linux", "x64"];

/// What the warm bench replays.
#[derive(Debug, Clone)]
pub struct WarmBenchOptions {
    pub jobs: usize,
    /// Seconds between two jobs' arrivals.
    pub every_seconds: u64,
    /// How long a runner takes from its launch to registering (simulated).
    pub boot_seconds: f64,
    /// How long each job runs.
    pub run_seconds: f64,
    /// The warm runners the warm pool keeps.
    pub idle: u32,
}

impl Default for WarmBenchOptions {
    fn default() -> Self {
        WarmBenchOptions {
            jobs: 60,
            every_seconds: 300,
            boot_seconds: 45.0,
            run_seconds: 120.0,
            idle: 2,
        }
    }
}

/// One run of the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmBenchRun {
    pub warm_idle: u32,
    pub wait_seconds: Waits,
    pub runners: usize,
    pub runner_minutes: f64,
    pub idle_minutes: f64,
    pub warm_jobs: usize,
    pub wait_saved_minutes: f64,
    pub warm_idle_minutes: f64,
    pub jobs_not_run: usize,
}

/// The two runs side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmBenchReport {
    pub jobs: usize,
    pub every_seconds: u64,
    pub boot_seconds: f64,
    pub run_seconds: f64,
    pub cold: WarmBenchRun,
    pub warm: WarmBenchRun,
    /// Wall-clock seconds both replays took.
    pub wall_seconds: f64,
}

fn config(
    options: &WarmBenchOptions,
    warm: bool,
    trace: &[TraceJob],
) -> Result<LocalConfig, ReplayError> {
    // The warm window covers the trace's hours, as a team's office hours would: after it the
    // pool scales to zero, so the idle time paid is the window's, not the replay's drain.
    let hours = match (trace.first(), trace.last()) {
        (Some(first), Some(last)) => format!("{}-{}", first.at.hour(), last.at.hour()),
        _ => "*".to_owned(),
    };
    let warm_table = if warm {
        format!(
            "warm = {{ repository = \"{REPOSITORY}\", windows = [{{ cron = \"* {hours} * * *\", idle = {} }}] }}",
            options.idle
        )
    } else {
        String::new()
    };
    let text = format!(
        r#"
[github]
mode = "emulator"
repositories = ["{REPOSITORY}"]
organizations = ["octo-org"]

[store]
kind = "memory"

[[pools]]
name = "{POOL}"
labels = {LABELS:?}
max_running = 50
boot_timeout_seconds = 900
idle_timeout_seconds = 120
provider = {{ kind = "local" }}
{warm_table}

[replay.pools.{POOL}]
boot_seconds = {boot}
"#,
        boot = options.boot_seconds
    );
    LocalConfig::from_toml_str(&text).map_err(|error| ReplayError::Config(error.to_string()))
}

fn trace(options: &WarmBenchOptions) -> Vec<TraceJob> {
    // A Monday morning.
    let first = DateTime::parse_from_rfc3339("2026-12-07T09:10:00Z")
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    (0..options.jobs)
        .map(|index| TraceJob {
            at: first
                + chrono::Duration::seconds(
                    i64::try_from(index as u64 * options.every_seconds).unwrap_or(i64::MAX),
                ),
            repository: REPOSITORY.to_owned(),
            organization: None,
            labels: LABELS.iter().map(|label| (*label).to_owned()).collect(),
            run_seconds: options.run_seconds,
        })
        .collect()
}

fn run_of(report: &ReplayReport, warm_idle: u32) -> WarmBenchRun {
    let pool: PoolReport = report
        .pools
        .iter()
        .find(|pool| pool.pool == POOL)
        .cloned()
        .unwrap_or_default();
    WarmBenchRun {
        warm_idle,
        wait_seconds: pool.wait_seconds,
        runners: pool.runners,
        runner_minutes: pool.runner_minutes,
        idle_minutes: pool.idle_minutes,
        warm_jobs: pool.warm_jobs,
        wait_saved_minutes: pool.wait_saved_minutes,
        warm_idle_minutes: pool.warm_idle_minutes,
        jobs_not_run: report.jobs_not_run,
    }
}

/// Replays the trace on a cold pool, then on a warm one (each on a runtime of its own).
pub fn run_blocking(options: &WarmBenchOptions) -> Result<WarmBenchReport, ReplayError> {
    let started = std::time::Instant::now();
    let trace = trace(options);
    let replay = ReplayOptions {
        label: "warm bench".to_owned(),
        drain: Duration::from_secs(6 * 3600),
        progress: None,
        // The warm pool fills before the first job, as it would at the start of its window.
        warm_up: Duration::from_secs(600),
    };
    let cold = replay_blocking(config(options, false, &trace)?, &trace, &replay)?;
    let warm = replay_blocking(config(options, true, &trace)?, &trace, &replay)?;
    Ok(WarmBenchReport {
        jobs: options.jobs,
        every_seconds: options.every_seconds,
        boot_seconds: options.boot_seconds,
        run_seconds: options.run_seconds,
        cold: run_of(&cold, 0),
        warm: run_of(&warm, options.idle),
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

impl fmt::Display for WarmBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "runway bench --warm: {} jobs, one every {} s, each running {:.0} s; runners boot \
             in {:.0} s (simulated, virtual time); replayed in {:.1} s",
            self.jobs, self.every_seconds, self.run_seconds, self.boot_seconds, self.wall_seconds
        )?;
        writeln!(
            f,
            "{:<14} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9}",
            "pool", "wait p50", "wait p95", "wait max", "runners", "runner-min", "idle-min"
        )?;
        for (name, run) in [
            ("cold".to_owned(), &self.cold),
            (format!("warm (idle {})", self.warm.warm_idle), &self.warm),
        ] {
            writeln!(
                f,
                "{:<14} {:>8.1}s {:>8.1}s {:>8.1}s {:>8} {:>10.1} {:>9.1}",
                name,
                run.wait_seconds.p50,
                run.wait_seconds.p95,
                run.wait_seconds.max,
                run.runners,
                run.runner_minutes,
                run.idle_minutes
            )?;
        }
        writeln!(
            f,
            "warm runners ran {} of {} jobs, saving about {:.1} min of queue wait for {:.1} idle \
             min paid",
            self.warm.warm_jobs,
            self.jobs,
            self.warm.wait_saved_minutes,
            self.warm.warm_idle_minutes
        )
    }
}
