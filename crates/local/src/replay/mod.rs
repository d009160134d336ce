//! `runway replay`: what a configuration and its policies would do to a day of jobs.
//!
//! A trace ([`trace`]) of jobs (arrival, repository, labels, run time) is played into the
//! GitHub emulator on a virtual clock, and the real job machine (`statemachines/job.asl.json`
//! on the local engine, the real steps, store and policies, a [`LocalSystem`]) handles them.
//! Runners are simulated hosts ([`sim::SimProvider`]): boot times drawn per pool, capacity
//! errors and spot reclaims at configured rates, and, once booted, the emulator's runner
//! protocol, so GitHub and runway see a real job life. Everything talks in-process (no
//! sockets): the paused tokio runtime moves the clock only when every part waits on a timer,
//! so a day passes in seconds and the same trace and configuration give the same report.
//!
//! The simulation settings are the configuration's `[replay]` section ([`settings`]).

pub mod generate;
pub mod report;
pub mod settings;
pub mod sim;
pub mod trace;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use runway_asl::ExecutionStatus;
use runway_clock::VirtualClock;
use runway_github_emulator::NewJob;
use runway_jobflow::metrics::{Dimension, Metric, Metrics, Sample};
use runway_providers::Provider;
use runway_store::WARM_KEY_PREFIX;

use crate::bench::{Progress, report_progress};
use crate::config::{GitHubConnection, Listen, LocalConfig, StoreConfig};
use crate::system::{LocalError, LocalSystem, Supplied};
use report::{MINIMUM_BILLED_SECONDS, PoolReport, ReplayReport, Waits};
use sim::{Ledger, SimProvider};
use trace::TraceJob;

/// How long after the last arrival a replay waits for everything to end, by default (virtual
/// time): GitHub cancels a job queued for a day.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(2 * 24 * 3600);

/// How often (virtual time) a replay checks whether everything has ended after the last
/// arrival.
const CHECK_EVERY: Duration = Duration::from_secs(300);

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// What to call the configuration in the report (its file name).
    pub label: String,
    /// Virtual time allowed after the last arrival for every job and execution to end.
    pub drain: Duration,
    /// Where progress lines go (a terminal); none: quiet.
    pub progress: Option<Progress>,
    /// Virtual time the system runs before the first arrival: warm pools fill in it.
    pub warm_up: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            label: "configuration".to_owned(),
            drain: DEFAULT_DRAIN,
            progress: None,
            warm_up: Duration::ZERO,
        }
    }
}

/// Why a replay could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("{0}")]
    Config(String),
    #[error("cannot start the replay's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the emulator refused job {index} of the trace ({repository}): {message}")]
    Job {
        index: usize,
        repository: String,
        message: String,
    },
    #[error(
        "{left} executions were still running {hours} h (virtual) after the last job arrived; \
         waiting in: {waiting}"
    )]
    Unfinished {
        left: usize,
        hours: u64,
        waiting: String,
    },
}

/// Counts of the job flow's metric samples by metric and pool (or policy).
#[derive(Debug, Default)]
struct Counts(Mutex<BTreeMap<(Metric, String), u64>>);

impl Metrics for Counts {
    fn record(&self, sample: Sample) {
        let counted = matches!(
            sample.metric,
            Metric::CeilingHits
                | Metric::PolicyWaits
                | Metric::JobsRejected
                | Metric::LaunchFallbacks
                | Metric::PolicyFallbacks
        );
        if !counted {
            return;
        }
        let key = sample
            .dimensions
            .iter()
            .find(|(d, _)| matches!(d, Dimension::Pool | Dimension::Policy))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((sample.metric, key))
            .or_default() += 1;
    }
}

impl Counts {
    fn get(&self, metric: Metric, key: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(metric, key.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn by_key(&self, metric: Metric) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((m, _), _)| *m == metric)
            .map(|((_, key), n)| (key.clone(), *n))
            .collect()
    }
}

/// `config` made fit to replay `trace`: the GitHub emulator knows the trace's repositories
/// and organisations, state is in memory, services listen on free ports (nothing reaches
/// them: everything runs in-process) and the reaper is off (nothing crashes to clean after).
pub fn prepare(mut config: LocalConfig, trace: &[TraceJob]) -> Result<LocalConfig, ReplayError> {
    config.listen = Listen::any_free_port();
    let GitHubConnection::Emulator(settings) = &mut config.github else {
        return Err(ReplayError::Config(
            "runway replay plays the trace into the GitHub emulator; set [github] mode = \
             \"emulator\" (or leave mode out) in the configuration"
                .to_owned(),
        ));
    };
    let mut repositories: BTreeSet<String> = settings.repositories.iter().cloned().collect();
    let mut organizations: BTreeSet<String> = settings.organizations.iter().cloned().collect();
    for job in trace {
        repositories.insert(job.repository.clone());
        organizations.insert(job.owner().to_owned());
    }
    settings.repositories = repositories.into_iter().collect();
    settings.organizations = organizations.into_iter().collect();
    config.store = StoreConfig::Memory;
    config.reaper.every_seconds = 0;
    Ok(config)
}

/// Replays `trace` with `config` on a runtime of its own (one thread, paused time).
pub fn replay_blocking(
    config: LocalConfig,
    trace: &[TraceJob],
    options: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(ReplayError::Runtime)?;
    runtime.block_on(replay(config, trace, options))
}

/// Replays `trace` with `config`. Call it on a current-thread runtime whose time is paused
/// (see [`replay_blocking`]); on running time it would take as long as the trace.
pub async fn replay(
    config: LocalConfig,
    trace: &[TraceJob],
    options: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let Some(first) = trace.first() else {
        return Err(ReplayError::Config(trace::TraceError::Empty.to_string()));
    };
    let started_at =
        first.at - chrono::Duration::from_std(options.warm_up).unwrap_or(chrono::Duration::zero());
    let config = prepare(config, trace)?;
    let clock = VirtualClock::starting_at(started_at).shared();
    let ledger = Arc::new(Ledger::default());
    let routes = Arc::new(OnceLock::new());
    let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
    for (pool, _) in config.pools() {
        let provider = SimProvider::new(
            &pool.name,
            config.replay.pool(&pool.name),
            pool.instance_types.first().map(String::as_str),
            pool.market == runway_policy_host::Market::Spot,
            config.replay.seed,
            clock.clone(),
            routes.clone(),
            ledger.clone(),
        );
        providers.insert(pool.name.clone(), Arc::new(provider));
    }
    let counts = Arc::new(Counts::default());
    let system = LocalSystem::start_with(
        config.clone(),
        Supplied {
            providers,
            clock: Some(clock.clone()),
            in_process: true,
            metrics: Some(counts.clone()),
            ..Supplied::default()
        },
    )
    .await?;
    let outcome = drive(&system, &clock, &routes, trace, options).await;
    let report = match outcome {
        Ok(wall) => Ok(collect(
            &system, &config, &ledger, &counts, trace, options, wall,
        )),
        Err(error) => Err(error),
    };
    system.shutdown().await;
    report
}

/// Plays the trace in and waits for everything to end; the wall-clock time it took.
async fn drive(
    system: &LocalSystem,
    clock: &runway_clock::SharedClock,
    routes: &OnceLock<axum::Router>,
    trace: &[TraceJob],
    options: &ReplayOptions,
) -> Result<f64, ReplayError> {
    let emulator = system
        .emulator()
        .ok_or_else(|| ReplayError::Config("runway replay needs the GitHub emulator".into()))?;
    let _ = routes.set(emulator.in_process());
    let wall = Instant::now();
    let mut last_line = None;
    for (index, job) in trace.iter().enumerate() {
        clock.sleep_until(job.at).await;
        let labels: Vec<&str> = job.labels.iter().map(String::as_str).collect();
        emulator
            .create_job(NewJob {
                duration_seconds: job.run_seconds,
                ..NewJob::new(job.repository.as_str(), &labels)
            })
            .map_err(|error| ReplayError::Job {
                index: index + 1,
                repository: job.repository.clone(),
                message: error.to_string(),
            })?;
        report_progress(options.progress.as_ref(), &mut last_line, || {
            format!(
                "{}: {} of {} jobs queued, virtual time {}",
                options.label,
                index + 1,
                trace.len(),
                clock.now().format("%Y-%m-%d %H:%M")
            )
        });
    }
    let deadline = clock.now()
        + chrono::Duration::from_std(options.drain).unwrap_or(chrono::Duration::days(2));
    while !all_ended(system) {
        if clock.now() >= deadline {
            let (left, waiting) = crate::bench::unfinished(system);
            return Err(ReplayError::Unfinished {
                left,
                hours: options.drain.as_secs() / 3600,
                waiting,
            });
        }
        // The end is read from the executions' stop times, not from this check's.
        clock.sleep(CHECK_EVERY).await;
    }
    Ok(wall.elapsed().as_secs_f64())
}

/// Every webhook has been delivered and no execution still runs. (A job runway does not take,
/// e.g. one for GitHub's own runners, stays queued on GitHub: it counts as not run.)
fn all_ended(system: &LocalSystem) -> bool {
    system.running_executions() == 0
        && system
            .emulator()
            .is_none_or(|emulator| emulator.pending_deliveries() == 0)
}

fn minutes(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 60_000.0
}

/// A pool's warm runners, as the replay saw them.
#[derive(Debug, Default)]
struct WarmFigures {
    runners: usize,
    jobs: usize,
    idle_minutes: f64,
    saved_minutes: f64,
}

/// Warm runners (launched under a warm key) by pool: how many, the jobs they ran, their idle
/// time, and the wait they saved against the pool's cold boot (a cold runner's launch to its
/// first job, averaged; with no cold runner, `typical_boot`, in minutes).
fn warm_figures(
    instances: &BTreeMap<String, sim::InstanceRecord>,
    jobs: &[runway_github_emulator::JobView],
    ended_at: DateTime<Utc>,
    typical_boot: impl Fn(&str) -> Option<f64>,
) -> BTreeMap<String, WarmFigures> {
    let is_warm = |record: &sim::InstanceRecord| record.execution.starts_with(WARM_KEY_PREFIX);
    let mut first_job: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    let mut busy: BTreeMap<&str, f64> = BTreeMap::new();
    for job in jobs {
        if let (Some(started), Some(runner)) = (job.started_at, job.runner_name.as_deref()) {
            let first = first_job.entry(runner).or_insert(started);
            *first = (*first).min(started);
            *busy.entry(runner).or_default() +=
                minutes(started, job.completed_at.unwrap_or(ended_at));
        }
    }
    let mut boots: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut figures: BTreeMap<String, WarmFigures> = BTreeMap::new();
    for (name, record) in instances {
        if is_warm(record) {
            let pool = figures.entry(record.pool.clone()).or_default();
            pool.runners += 1;
            let lifetime = minutes(record.launched_at, record.ended_at.unwrap_or(ended_at));
            let worked = busy.get(name.as_str()).copied().unwrap_or(0.0);
            pool.idle_minutes += (lifetime - worked).max(0.0);
        } else if let Some(first) = first_job.get(name.as_str()) {
            boots
                .entry(record.pool.as_str())
                .or_default()
                .push(minutes(record.launched_at, *first));
        }
    }
    for job in jobs {
        let (Some(started), Some(runner)) = (job.started_at, job.runner_name.as_deref()) else {
            continue;
        };
        let Some(record) = instances.get(runner).filter(|record| is_warm(record)) else {
            continue;
        };
        let waited = minutes(job.created_at, started);
        let boot = boots
            .get(record.pool.as_str())
            .filter(|boots| !boots.is_empty())
            .map(|boots| boots.iter().sum::<f64>() / boots.len() as f64)
            .or_else(|| typical_boot(&record.pool));
        let pool = figures.entry(record.pool.clone()).or_default();
        pool.jobs += 1;
        if let Some(boot) = boot {
            pool.saved_minutes += (boot - waited).max(0.0);
        }
    }
    figures
}

/// The report, from what the emulator, the simulated hosts and the metrics saw.
fn collect(
    system: &LocalSystem,
    config: &LocalConfig,
    ledger: &Ledger,
    counts: &Counts,
    trace: &[TraceJob],
    options: &ReplayOptions,
    wall_seconds: f64,
) -> ReplayReport {
    let executions = system.executions();
    let mut ended_at = trace.last().map_or(Utc::now(), |job| job.at);
    let mut not_succeeded: BTreeMap<String, u64> = BTreeMap::new();
    for execution in &executions {
        if let Some(stop) = execution.stop_date {
            ended_at = ended_at.max(stop);
        }
        if execution.status != ExecutionStatus::Succeeded {
            *not_succeeded
                .entry(format!(
                    "{} ({})",
                    execution.status.as_str(),
                    execution.error.as_deref().unwrap_or("no error")
                ))
                .or_default() += 1;
        }
    }
    let instances = ledger.instances();
    let mut pools: BTreeMap<String, (PoolReport, Vec<f64>)> = config
        .pools()
        .map(|(pool, _)| {
            (
                pool.name.clone(),
                (
                    PoolReport {
                        pool: pool.name.clone(),
                        ..PoolReport::default()
                    },
                    Vec::new(),
                ),
            )
        })
        .collect();
    let mut unpriced = BTreeSet::new();
    for record in instances.values() {
        let Some((pool, _)) = pools.get_mut(&record.pool) else {
            continue;
        };
        let end = record.ended_at.unwrap_or(ended_at);
        let lifetime = minutes(record.launched_at, end);
        pool.runners += 1;
        pool.runner_minutes += lifetime;
        pool.spot_reclaims += u64::from(record.reclaimed);
        match config.replay.price(&record.instance_type, record.market) {
            Some(price) => {
                let billed = (lifetime * 60.0).max(MINIMUM_BILLED_SECONDS);
                pool.cost_usd += billed / 3600.0 * price;
            }
            None => {
                unpriced.insert(format!("{} ({})", record.instance_type, record.market));
            }
        }
    }
    let mut jobs_not_run = 0;
    let mut jobs_failed = 0;
    let mut all_waits = Vec::new();
    let jobs = system.emulator().map(|e| e.jobs()).unwrap_or_default();
    let typical_boot = |pool: &str| {
        // The configured boot's middle (a log-normal's median), for a run with no cold boot.
        config
            .replay
            .pool(pool)
            .boot_seconds
            .map(|boot| boot.sample(0.5, 0.0) / 60.0)
    };
    let warm = warm_figures(&instances, &jobs, ended_at, typical_boot);
    if let Some(emulator) = system.emulator() {
        for job in emulator.jobs() {
            let (Some(started), Some(runner)) = (job.started_at, job.runner_name.as_deref()) else {
                jobs_not_run += 1;
                continue;
            };
            if job.conclusion.as_deref() != Some("success") {
                jobs_failed += 1;
            }
            let wait = (started - job.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            all_waits.push(wait);
            let Some((pool, waits)) = instances
                .get(runner)
                .and_then(|record| pools.get_mut(&record.pool))
            else {
                continue;
            };
            pool.jobs += 1;
            waits.push(wait);
            pool.busy_minutes += minutes(started, job.completed_at.unwrap_or(ended_at));
        }
    }
    let capacity_errors = ledger.capacity_errors();
    let mut overall = PoolReport {
        pool: "all".to_owned(),
        wait_seconds: Waits::of(&all_waits),
        ..PoolReport::default()
    };
    let pools: Vec<PoolReport> = config
        .pools()
        .filter_map(|(pool, _)| pools.remove(&pool.name))
        .map(|(mut pool, waits)| {
            pool.wait_seconds = Waits::of(&waits);
            pool.idle_minutes = (pool.runner_minutes - pool.busy_minutes).max(0.0);
            pool.ceilings_hit = counts.get(Metric::CeilingHits, &pool.pool);
            pool.policy_waits = counts.get(Metric::PolicyWaits, &pool.pool);
            pool.rejected = counts.get(Metric::JobsRejected, &pool.pool);
            pool.market_fallbacks = counts.get(Metric::LaunchFallbacks, &pool.pool);
            pool.capacity_errors = capacity_errors.get(&pool.pool).copied().unwrap_or(0);
            if let Some(figures) = warm.get(&pool.pool) {
                pool.warm_runners = figures.runners;
                pool.warm_jobs = figures.jobs;
                pool.warm_idle_minutes = figures.idle_minutes;
                pool.wait_saved_minutes = figures.saved_minutes;
            }
            overall.warm_runners += pool.warm_runners;
            overall.warm_jobs += pool.warm_jobs;
            overall.warm_idle_minutes += pool.warm_idle_minutes;
            overall.wait_saved_minutes += pool.wait_saved_minutes;
            overall.jobs += pool.jobs;
            overall.runners += pool.runners;
            overall.runner_minutes += pool.runner_minutes;
            overall.busy_minutes += pool.busy_minutes;
            overall.idle_minutes += pool.idle_minutes;
            overall.cost_usd += pool.cost_usd;
            overall.ceilings_hit += pool.ceilings_hit;
            overall.policy_waits += pool.policy_waits;
            overall.rejected += pool.rejected;
            overall.market_fallbacks += pool.market_fallbacks;
            overall.capacity_errors += pool.capacity_errors;
            overall.spot_reclaims += pool.spot_reclaims;
            pool
        })
        .collect();
    ReplayReport {
        config: options.label.clone(),
        jobs: trace.len(),
        started_at: trace.first().map_or(ended_at, |job| job.at),
        ended_at,
        wall_seconds,
        jobs_not_run,
        jobs_failed,
        overall,
        pools,
        policy_fallbacks: counts.by_key(Metric::PolicyFallbacks),
        executions_not_succeeded: not_succeeded,
        unpriced: unpriced.into_iter().collect(),
    }
}
