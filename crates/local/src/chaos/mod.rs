//! `runway chaos`: a fault campaign through the real job machine.
//!
//! A burst of jobs goes through everything `runway local` runs (signed webhooks from the GitHub
//! emulator, the webhook intake, `statemachines/job.asl.json` on the local engine, the job flow
//! with its store, providers and policies) while faults are injected at every boundary
//! ([`FaultKind`]): GitHub 5xx and 429 bursts, lost and duplicated webhooks, EC2 capacity
//! errors and throttling and SSM `PutParameter` throttling (through the fault proxy of
//! `runway-aws-faults`, in front of moto), a provision step that dies after its launch, and
//! lost task callbacks. The reaper machine (`statemachines/reaper.asl.json`) runs on a
//! schedule meanwhile and, once the faults stop, until it finds nothing more to do.
//!
//! Then the campaign counts: how each job's execution ended (a one-sentence cause for every
//! failure), runners left alive or registered, JIT configs left in SSM, slots left held, and
//! whether a pool ever held more slots or runners than its ceiling ([`ChaosReport`]).
//!
//! Runners are tasks in this process speaking the emulator's runner protocol; on EC2 pools
//! (moto, where no instance boots) the campaign plays each instance's boot script: read the
//! JIT config from SSM, delete it, run the runner, terminate the instance when it exits.

mod account;
mod boot;
mod faults;
mod inject;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use runway_aws_faults::FaultProxy;
use runway_github_emulator::{JobStatus, NewJob};
use runway_jobflow::TaskCallbacks;
use runway_providers::{Provider, jit_parameter_prefix};
use runway_store::PoolName;
use serde::Serialize;
use tokio::sync::watch;

pub use account::{FailedJob, Leaks, PoolPeak, StuckJob};
pub use faults::{FaultKind, FaultSet, UnknownFault};

use crate::bench::InProcessRunners;
use crate::config::{GitHubConnection, Listen, LocalConfig, ProviderSettings, StoreConfig};
use crate::reaper::Sweeper;
use crate::system::{LocalError, LocalSystem, Supplied, TASK_PREFIX};
use account::{Hosts, WatchedPool};
use inject::Tally;

/// An AMI moto knows, for the built-in EC2 campaign.
const MOTO_AMI: &str = "ami-12c6146b";

/// Called with one line of progress at a time.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// What to run.
#[derive(Clone)]
pub struct ChaosOptions {
    /// Jobs queued at once (a large matrix).
    pub jobs: usize,
    /// Seeds every fault decision.
    pub seed: u64,
    pub faults: FaultSet,
    /// `None`: the built-in campaign ([`chaos_config`]): one pool of in-process runners, or
    /// of EC2 instances with a DynamoDB store when `aws_endpoint` is given.
    pub config: Option<LocalConfig>,
    /// The AWS API (moto on this machine) behind the fault proxy, for EC2 pools and the
    /// DynamoDB store; else the configuration's `[aws] endpoint_url` or `$AWS_ENDPOINT_URL`.
    pub aws_endpoint: Option<String>,
    /// The built-in pool's ceiling.
    pub max_running: u32,
    /// How long each job runs on its runner.
    pub job_seconds: f64,
    /// How long the campaign waits for every execution to end while nothing moves (no
    /// execution starts or ends, no job completes, no reaper pass acts): progress, not the
    /// clock, decides when a slow machine's campaign has settled.
    pub settle: Duration,
    /// The longest wait, after queueing, for every execution to end, progress or not.
    pub max_wait: Duration,
    /// How often the reaper runs while the jobs do.
    pub reaper_every: Duration,
    /// The reaper's `grace_seconds`.
    pub reaper_grace: Duration,
    /// Reaper passes after the faults stop, at most.
    pub final_passes: u32,
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for ChaosOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosOptions")
            .field("jobs", &self.jobs)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("aws_endpoint", &self.aws_endpoint)
            .field("max_running", &self.max_running)
            .field("settle", &self.settle)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions {
            jobs: 200,
            seed: 1,
            faults: FaultSet::all(),
            config: None,
            aws_endpoint: None,
            max_running: 20,
            job_seconds: 0.5,
            settle: Duration::from_secs(180),
            max_wait: Duration::from_secs(45 * 60),
            reaper_every: Duration::from_secs(10),
            reaper_grace: Duration::from_secs(3),
            final_passes: 6,
            progress: None,
        }
    }
}

/// What a campaign found. Serialised as one JSON object, the last line `runway chaos` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub jobs: usize,
    /// Jobs done: their execution succeeded, or (`served_without_execution`) they completed
    /// on GitHub with no execution of their own.
    pub done: usize,
    /// Jobs whose `queued` webhook was lost and that a runner of another execution served
    /// (runners are fungible) before the reaper's lost-jobs sweep found them still queued:
    /// completed successfully, nothing of theirs to clean up.
    pub served_without_execution: Vec<u64>,
    /// Executions that failed, each with its cause.
    pub failed: Vec<FailedJob>,
    /// Executions still running when the campaign stopped waiting.
    pub stuck: Vec<StuckJob>,
    /// Jobs GitHub still shows queued or in progress at the end.
    pub unserved_jobs: Vec<u64>,
    /// Hosts alive, GitHub registrations and SSM JIT configs left behind.
    pub leaked_runners: usize,
    /// Slots still held in the store.
    pub leaked_slots: usize,
    /// Pools × {slots, runners} whose peak went over the pool's ceiling.
    pub ceiling_violations: u32,
    pub leaks: Leaks,
    pub ceilings: Vec<PoolPeak>,
    /// Faults injected, by kind.
    pub injected: BTreeMap<String, u64>,
    pub faults: FaultSet,
    pub seed: u64,
    /// Where runners ran and state was kept.
    pub runners: String,
    pub store: String,
    pub reaper_passes: u32,
    pub seconds: f64,
}

impl ChaosReport {
    /// Nothing leaked and no ceiling was exceeded.
    pub fn passed(&self) -> bool {
        self.leaked_runners == 0 && self.leaked_slots == 0 && self.ceiling_violations == 0
    }
}

/// Why a campaign could not run (a campaign that ran reports its findings instead).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("{0}")]
    Setup(String),
}

fn setup(message: impl Into<String>) -> ChaosError {
    ChaosError::Setup(message.into())
}

/// The built-in campaign's configuration: the emulator on port 0 with one repository, one
/// pool with a ceiling of `max_running`, the example policies when they are built; local
/// runners and a memory store, or (with `ec2`) EC2 runners on an AMI moto knows and a DynamoDB
/// table named after the seed.
pub fn chaos_config(max_running: u32, ec2: bool, seed: u64) -> Result<LocalConfig, LocalError> {
    let mut embedded = LocalConfig::embedded_default()?;
    let (store, image, provider) = if ec2 {
        (
            format!("kind = \"dynamodb\"\ntable = \"runway-chaos-{seed}\""),
            format!("image = \"{MOTO_AMI}\"\ninstance_types = [\"m5.large\", \"c5.large\"]"),
            "kind = \"ec2\"\ncapacity = \"spot-then-on-demand\"".to_owned(),
        )
    } else {
        (
            "kind = \"memory\"".to_owned(),
            String::new(),
            "kind = \"local\"".to_owned(),
        )
    };
    let text = format!(
        r#"
[github]
mode = "emulator"
delivery_concurrency = 16
repositories = ["octo-org/app"]
organizations = ["octo-org"]
scope = "repository"

[store]
{store}

[[pools]]
name = "chaos"
labels = ["self-hosted", "linux", "x64"]
max_running = {max_running}
max_per_org = 100000
max_per_repo = 100000
boot_timeout_seconds = 20
idle_timeout_seconds = 10
recheck_after_seconds = 5
params = {{ "fair-share.org-percent" = "100", "fair-share.repo-percent" = "100" }}
{image}

[pools.provider]
{provider}
"#
    );
    let mut config = LocalConfig::from_toml_str(&text)?;
    config.policies = std::mem::take(&mut embedded.policies);
    config.policies_optional = embedded.policies_optional;
    config.search_dirs = std::mem::take(&mut embedded.search_dirs);
    Ok(config)
}

/// Only an AWS API on this machine: a campaign launches hundreds of instances.
pub(crate) fn local_endpoint(endpoint: &str) -> bool {
    let rest = endpoint
        .strip_prefix("http://")
        .unwrap_or_default()
        .to_ascii_lowercase();
    ["127.0.0.1:", "localhost:", "[::1]:"]
        .iter()
        .any(|host| rest.starts_with(host))
}

pub(crate) async fn sdk_config(endpoint: &str, region: Option<&str>) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .empty_test_environment()
        .test_credentials()
        .region(aws_config::Region::new(
            region.unwrap_or("us-east-1").to_owned(),
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

fn say(options: &ChaosOptions, line: &str) {
    if let Some(progress) = &options.progress {
        progress(line);
    }
}

/// Runs a campaign and reports what it found.
pub async fn run(options: &ChaosOptions) -> Result<ChaosReport, ChaosError> {
    let started = Instant::now();
    let mut config = match &options.config {
        Some(config) => config.clone(),
        None => chaos_config(
            options.max_running,
            options.aws_endpoint.is_some(),
            options.seed,
        )?,
    };
    config.listen = Listen::any_free_port();
    let repositories = match &mut config.github {
        GitHubConnection::Emulator(settings) => {
            settings.delivery_concurrency = settings.delivery_concurrency.max(8);
            settings.repositories.clone()
        }
        GitHubConnection::App(_) => {
            return Err(setup(
                "a chaos campaign runs against the GitHub emulator, never a real GitHub App: \
                 set [github] mode = \"emulator\"",
            ));
        }
    };
    let repository = repositories
        .first()
        .cloned()
        .ok_or_else(|| setup("the emulator has no repository to queue jobs in"))?;

    let ec2_pools: Vec<(String, String)> = config
        .pools()
        .filter_map(|(pool, provider)| match provider {
            ProviderSettings::Ec2(settings) => Some((
                pool.name.clone(),
                settings
                    .ssm_prefix
                    .clone()
                    .unwrap_or_else(|| jit_parameter_prefix(&config.stack)),
            )),
            ProviderSettings::Local(_)
            | ProviderSettings::Ecs(_)
            | ProviderSettings::Eks(_)
            | ProviderSettings::Lambda(_) => None,
        })
        .collect();
    let needs_aws = !ec2_pools.is_empty() || matches!(config.store, StoreConfig::Dynamodb { .. });
    let tally = Tally::default();
    let seed = options.seed;

    // The AWS API, behind the fault proxy.
    let mut proxy = None;
    let mut direct_aws = None;
    let mut supplied = Supplied::default();
    if needs_aws {
        let endpoint = options
            .aws_endpoint
            .clone()
            .or_else(|| config.aws.endpoint_url.clone())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .ok_or_else(|| {
                setup(
                    "this configuration uses AWS (EC2 pools or the DynamoDB store): give the \
                     AWS API on this machine (moto) with --aws-endpoint or AWS_ENDPOINT_URL",
                )
            })?;
        if !local_endpoint(&endpoint) {
            return Err(setup(format!(
                "{endpoint} is not an AWS API on this machine: a campaign launches hundreds of \
                 instances, so it only runs against moto on 127.0.0.1"
            )));
        }
        let rules = if ec2_pools.is_empty() {
            Vec::new()
        } else {
            inject::aws_rules(&options.faults)
        };
        let started_proxy = FaultProxy::start(&endpoint, rules, seed)
            .await
            .map_err(|error| setup(error.to_string()))?;
        let region = config.aws.region.clone();
        supplied.aws = Some(sdk_config(&started_proxy.url(), region.as_deref()).await);
        direct_aws = Some(sdk_config(&endpoint, region.as_deref()).await);
        proxy = Some(started_proxy);
    }

    // Local pools run their runners as tasks in this process.
    let mut in_process = Vec::new();
    for (pool, provider) in config.pools() {
        if matches!(provider, ProviderSettings::Local(_)) {
            let runners = Arc::new(InProcessRunners::for_pool(None, &pool.name));
            supplied
                .providers
                .insert(pool.name.clone(), runners.clone() as Arc<dyn Provider>);
            in_process.push(runners);
        }
    }
    let (armed_tx, armed_rx) = watch::channel(true);
    let lossy = [FaultKind::LostWakeups, FaultKind::LostCompletionCallbacks]
        .into_iter()
        .any(|kind| options.faults.contains(kind));
    if lossy {
        let faults = options.faults.clone();
        let tally = tally.clone();
        supplied.wrap_callbacks = Some(Box::new(
            move |inner: Arc<dyn TaskCallbacks>| -> Arc<dyn TaskCallbacks> {
                Arc::new(inject::LossyCallbacks::new(
                    inner, faults, seed, armed_rx, tally,
                ))
            },
        ));
    }

    let labels_by_pool: Vec<Vec<String>> = config
        .pools()
        .map(|(pool, _)| pool.labels.clone())
        .collect();
    let ceilings: BTreeMap<String, u32> = config
        .pools()
        .map(|(pool, _)| (pool.name.clone(), pool.max_running))
        .collect();
    let store_kind = match &config.store {
        StoreConfig::Memory => "memory".to_owned(),
        StoreConfig::Dynamodb { table } => format!("dynamodb table {table}"),
    };
    let runners_kind = if ec2_pools.is_empty() {
        "in-process runners".to_owned()
    } else {
        "EC2 on moto through the fault proxy".to_owned()
    };

    let system = LocalSystem::start_with(config, supplied).await?;
    let emulator_url = system
        .emulator()
        .map(|emulator| emulator.base_url().to_owned())
        .ok_or_else(|| setup("the campaign needs the GitHub emulator"))?;
    for runners in &in_process {
        runners.set_url(Some(emulator_url.clone()));
    }
    if options.faults.contains(FaultKind::ProvisionCrash) {
        inject::crash_provision_steps(
            system.service().tasks(),
            &format!("{TASK_PREFIX}{}", runway_jobflow::Step::Provision.name()),
            system.flow().clone(),
            seed,
            tally.clone(),
        );
    }
    let mut sweeper = Sweeper::new(&system, &repositories, options.reaper_grace)?;

    // Background: the ceilings sampler, the GitHub fault driver, the EC2 boot loop.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (faults_off_tx, faults_off_rx) = watch::channel(false);
    let direct_ec2 = direct_aws.as_ref().map(aws_sdk_ec2::Client::new);
    let direct_ssm = direct_aws.as_ref().map(aws_sdk_ssm::Client::new);
    let watched: Vec<WatchedPool> = system
        .providers()
        .iter()
        .map(|(name, provider)| WatchedPool {
            name: name.clone(),
            max_running: ceilings.get(name).copied().unwrap_or(u32::MAX),
            hosts: match (&direct_ec2, ec2_pools.iter().any(|(pool, _)| pool == name)) {
                (Some(ec2), true) => Hosts::Ec2(ec2.clone()),
                _ => Hosts::Provider(provider.clone()),
            },
        })
        .collect();
    let peaks = Arc::new(Mutex::new(BTreeMap::new()));
    let sampler = tokio::spawn(account::sample_peaks(
        system.store().clone(),
        watched.clone(),
        peaks.clone(),
        stop_rx.clone(),
    ));
    let (driver_ready_tx, driver_ready_rx) = tokio::sync::oneshot::channel();
    let github_driver = tokio::spawn(inject::drive_github_faults(
        emulator_url.clone(),
        options.faults.clone(),
        options.jobs,
        seed,
        tally.clone(),
        faults_off_rx,
        driver_ready_tx,
    ));
    // The burst's webhooks meet the armed switches (a lost `queued` webhook among them).
    let _ = tokio::time::timeout(Duration::from_secs(10), driver_ready_rx).await;
    let booter = match (&direct_ec2, &direct_ssm, ec2_pools.first()) {
        (Some(ec2), Some(ssm), Some((_, prefix))) => Some(tokio::spawn(boot::boot_instances(
            ec2.clone(),
            ssm.clone(),
            prefix.clone(),
            emulator_url.clone(),
            stop_rx.clone(),
        ))),
        _ => None,
    };

    // The burst: every job queued at once, spread over the pools.
    let emulator = system
        .emulator()
        .ok_or_else(|| setup("the campaign needs the GitHub emulator"))?;
    let mut job_ids = Vec::with_capacity(options.jobs);
    for index in 0..options.jobs {
        let labels = &labels_by_pool[index % labels_by_pool.len().max(1)];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let created = emulator
            .create_job(NewJob {
                duration_seconds: options.job_seconds,
                ..NewJob::new(&repository, &labels)
            })
            .map_err(|error| setup(format!("the emulator refused a job: {error}")))?;
        job_ids.push(created.job_id);
    }
    say(
        options,
        &format!(
            "queued {} jobs ({runners_kind}, {store_kind}); faults: {}",
            options.jobs,
            options
                .faults
                .iter()
                .map(FaultKind::name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // Until every execution has ended and every job is completed, with the reaper on its
    // schedule, or until nothing has moved for the settle time (or the longest wait is up).
    let hard_deadline = Instant::now() + options.max_wait;
    let mut settle_deadline = Instant::now() + options.settle;
    let mut last_progress = Movement::of(&system);
    let mut next_sweep = Instant::now() + options.reaper_every;
    let mut next_report = Instant::now() + Duration::from_secs(5);
    while !system.is_idle() && Instant::now() < settle_deadline.min(hard_deadline) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut moved = false;
        if Instant::now() >= next_sweep {
            match sweeper.pass().await {
                Ok(pass) => {
                    moved = pass.acted > 0;
                    say(
                        options,
                        &format!("reaper pass {}: {} acted", sweeper.passes(), pass.acted),
                    );
                }
                Err(error) => say(options, &format!("reaper pass failed: {error}")),
            }
            next_sweep = Instant::now() + options.reaper_every;
        }
        let progress = Movement::of(&system);
        if moved || progress != last_progress {
            last_progress = progress;
            settle_deadline = Instant::now() + options.settle;
        }
        if Instant::now() >= next_report {
            say(options, &progress_line(&system, &job_ids, started));
            next_report = Instant::now() + Duration::from_secs(5);
        }
    }
    say(options, &progress_line(&system, &job_ids, started));

    // Faults off; the reaper until it finds nothing more, with the jobs it restarts run out.
    let _ = armed_tx.send(false);
    let _ = faults_off_tx.send(true);
    if let Some(proxy) = &proxy {
        proxy.set_enabled(false);
    }
    let _ = github_driver.await;
    // A task that met the last burst waits out its retry (at most half a minute) and ends.
    system.wait_until_idle(options.settle).await;
    for _ in 0..options.final_passes {
        tokio::time::sleep(options.reaper_grace + Duration::from_secs(1)).await;
        let pass = sweeper.pass().await;
        let acted = match &pass {
            Ok(pass) => pass.acted,
            Err(_) => 1,
        };
        say(
            options,
            &format!(
                "final reaper pass {}: {}",
                sweeper.passes(),
                match &pass {
                    Ok(pass) => format!(
                        "{} acted{}",
                        pass.acted,
                        if pass.swept { "" } else { ", a sweep failed" }
                    ),
                    Err(error) => error.clone(),
                }
            ),
        );
        if acted == 0 && pass.as_ref().is_ok_and(|p| p.swept) {
            break;
        }
        // What the reaper restarted runs to its end (bounded).
        system.wait_until_idle(Duration::from_secs(60)).await;
    }
    let _ = stop_tx.send(true);
    let _ = sampler.await;
    if let Some(booter) = booter {
        let _ = booter.await;
    }

    // The count.
    let executions = system.executions();
    let (done, failed, stuck) = account::outcomes(&system, &executions);
    let with_execution: BTreeSet<u64> = executions
        .iter()
        .filter_map(|execution| account::job_id_of(&execution.name))
        .collect();
    let served_without_execution: Vec<u64> = emulator
        .jobs()
        .into_iter()
        .filter(|job| {
            job.status == JobStatus::Completed
                && job.conclusion.as_deref() == Some("success")
                && !with_execution.contains(&job.job_id)
        })
        .map(|job| job.job_id)
        .collect();
    let done = done + served_without_execution.len();
    let unserved_jobs: Vec<u64> = emulator
        .jobs()
        .into_iter()
        .filter(|job| job.status != JobStatus::Completed)
        .map(|job| job.job_id)
        .collect();
    let mut leaks = Leaks::default();
    for (pool, runners) in account::live_runners(&watched).await {
        leaks.hosts.extend(
            runners
                .into_iter()
                .map(|runner| format!("{pool}: {runner}")),
        );
    }
    leaks.github_runners = emulator
        .runners()
        .into_iter()
        .map(|runner| {
            format!(
                "{} ({}{})",
                runner.name,
                runner.status,
                if runner.busy { ", busy" } else { "" }
            )
        })
        .collect();
    if let Some(ssm) = &direct_ssm {
        let prefixes: BTreeSet<&String> = ec2_pools.iter().map(|(_, prefix)| prefix).collect();
        for prefix in prefixes {
            match account::ssm_parameters(ssm, prefix).await {
                Ok(names) => leaks.ssm_parameters.extend(names),
                Err(error) => say(options, &format!("cannot list the SSM parameters: {error}")),
            }
        }
    }
    for pool in ceilings.keys() {
        if let Ok(name) = PoolName::new(pool.as_str())
            && let Ok(holders) = system.store().slot_holders(&name).await
        {
            leaks.slots.extend(
                holders
                    .into_iter()
                    .map(|holder| format!("{pool}: {}", holder.execution)),
            );
        }
    }
    let ceilings: Vec<PoolPeak> = peaks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .cloned()
        .collect();
    let mut injected: BTreeMap<String, u64> = tally
        .counts()
        .into_iter()
        .map(|(kind, count)| (kind.name().to_owned(), count))
        .collect();
    if let Some(proxy) = &proxy {
        for (what, count) in proxy.injected() {
            if let Some(kind) = inject::aws_kind(&what.service, &what.code) {
                *injected.entry(kind.name().to_owned()).or_default() += count;
            }
        }
    }
    let reaper_passes = sweeper.passes();
    system.shutdown().await;
    if let Some(proxy) = proxy {
        proxy.shutdown().await;
    }
    Ok(ChaosReport {
        jobs: options.jobs,
        done,
        served_without_execution,
        failed,
        stuck,
        unserved_jobs,
        leaked_runners: leaks.hosts.len() + leaks.github_runners.len() + leaks.ssm_parameters.len(),
        leaked_slots: leaks.slots.len(),
        ceiling_violations: ceilings.iter().map(PoolPeak::violations).sum(),
        leaks,
        ceilings,
        injected,
        faults: options.faults.clone(),
        seed,
        runners: runners_kind,
        store: store_kind,
        reaper_passes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What moves while a campaign runs: executions started and ended, jobs completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Movement {
    executions: usize,
    ended: usize,
    jobs_completed: usize,
    /// Events in the running executions' histories: a task retrying through a fault burst
    /// is moving even while no execution ends.
    running_events: usize,
}

impl Movement {
    fn of(system: &LocalSystem) -> Movement {
        let executions = system.executions();
        let ended = executions
            .iter()
            .filter(|e| e.status != runway_asl::ExecutionStatus::Running)
            .count();
        let running_events = executions
            .iter()
            .filter(|e| e.status == runway_asl::ExecutionStatus::Running)
            .map(|e| {
                system
                    .service()
                    .history_length(&e.execution_arn)
                    .unwrap_or(0)
            })
            .sum();
        let jobs_completed = system.emulator().map_or(0, |emulator| {
            emulator
                .jobs()
                .iter()
                .filter(|job| job.status == JobStatus::Completed)
                .count()
        });
        Movement {
            executions: executions.len(),
            ended,
            jobs_completed,
            running_events,
        }
    }
}

fn progress_line(system: &LocalSystem, job_ids: &[u64], started: Instant) -> String {
    let executions = system.executions();
    let running = executions
        .iter()
        .filter(|e| e.status == runway_asl::ExecutionStatus::Running)
        .count();
    let completed = system
        .emulator()
        .map(|emulator| {
            emulator
                .jobs()
                .iter()
                .filter(|job| job.status == JobStatus::Completed)
                .count()
        })
        .unwrap_or(0);
    format!(
        "{:.0} s: {completed} of {} jobs completed; {} executions, {running} running",
        started.elapsed().as_secs_f64(),
        job_ids.len(),
        executions.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_aws_api_on_this_machine_is_accepted() {
        assert!(local_endpoint("http://127.0.0.1:5000"));
        assert!(local_endpoint("http://localhost:4566"));
        assert!(!local_endpoint("https://ec2.us-east-1.amazonaws.com"));
        assert!(!local_endpoint("http://10.0.0.1:5000"));
    }

    #[test]
    fn the_built_in_configurations_parse() {
        let local = chaos_config(7, false, 1).unwrap();
        assert_eq!(local.pools().count(), 1);
        assert_eq!(local.flow().pool("chaos").unwrap().max_running, 7);
        let ec2 = chaos_config(5, true, 9).unwrap();
        assert!(matches!(
            ec2.pools().next(),
            Some((_, ProviderSettings::Ec2(_)))
        ));
        assert_eq!(
            ec2.store,
            StoreConfig::Dynamodb {
                table: "runway-chaos-9".into()
            }
        );
    }
}
