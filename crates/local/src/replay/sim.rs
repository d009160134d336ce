//! [`SimProvider`]: a [`Provider`] whose hosts are simulated on the virtual clock. A launch
//! may be refused for capacity; a launched runner boots for a drawn time, then speaks the
//! GitHub emulator's runner protocol (in-process) like a real runner: connects, takes a job,
//! reports it started and finished. A spot runner may be reclaimed: it stops dead, as an
//! instance taken back does, and GitHub and runway find out the way they would.
//!
//! Every launch and teardown goes in the [`Ledger`], from which the replay counts
//! runner-minutes and cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runway_clock::SharedClock;
use runway_providers::{
    Capacity, CapacityPreference, LaunchRequest, Launched, OwnedRunner, Provider, ProviderError,
    ProviderKind, Terminated,
};

use super::settings::{BootTime, DEFAULT_BOOT_SECONDS, DEFAULT_INSTANCE_TYPE, PoolSimulation};

/// How long an idle simulated runner's long poll for a job waits (the emulator's longest).
const POLL_WAIT: Duration = Duration::from_secs(30);

/// One simulated instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub pool: String,
    pub execution: String,
    pub instance_type: String,
    /// `spot` or `on-demand`.
    pub market: &'static str,
    pub launched_at: DateTime<Utc>,
    /// When it was terminated or reclaimed; `None` while it runs.
    pub ended_at: Option<DateTime<Utc>>,
    pub reclaimed: bool,
}

/// What the simulated hosts did, shared by every pool's provider.
#[derive(Debug, Default)]
pub struct Ledger {
    instances: Mutex<BTreeMap<String, InstanceRecord>>,
    /// Launch attempts refused for capacity, by pool (one per market tried).
    capacity_errors: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    /// Every instance, by runner name.
    pub fn instances(&self) -> BTreeMap<String, InstanceRecord> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn capacity_errors(&self) -> BTreeMap<String, u64> {
        self.capacity_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One instance's record.
    pub fn record(&self, runner_name: &str) -> Option<InstanceRecord> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(runner_name)
            .cloned()
    }

    fn end(&self, runner_name: &str, at: DateTime<Utc>, reclaimed: bool) {
        let mut instances = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = instances.get_mut(runner_name)
            && record.ended_at.is_none()
        {
            record.ended_at = Some(at);
            record.reclaimed = reclaimed;
        }
    }
}

/// A number from `seed` and `name` (FNV-1a, then SplitMix64): a runner's draws depend on
/// nothing else, so they do not change with the order things happen in.
pub(crate) fn mix(seed: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug)]
struct Running {
    execution: String,
    instance_id: String,
    launched_at: DateTime<Utc>,
    task: tokio::task::JoinHandle<()>,
}

/// One pool's simulated host.
#[derive(Debug)]
pub struct SimProvider {
    pool: String,
    sim: PoolSimulation,
    instance_type: String,
    markets: CapacityPreference,
    seed: u64,
    clock: SharedClock,
    /// The emulator's routes, set once it has started.
    routes: Arc<OnceLock<axum::Router>>,
    ledger: Arc<Ledger>,
    running: Mutex<BTreeMap<String, Running>>,
}

impl SimProvider {
    /// The simulated host of `pool`: `sim` says how it behaves; runners run on the pool's
    /// `instance_type` unless `sim` names one; `spot` says whether the pool buys spot first.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: &str,
        sim: PoolSimulation,
        pool_instance_type: Option<&str>,
        spot: bool,
        seed: u64,
        clock: SharedClock,
        routes: Arc<OnceLock<axum::Router>>,
        ledger: Arc<Ledger>,
    ) -> SimProvider {
        let instance_type = sim
            .instance_type
            .clone()
            .or_else(|| pool_instance_type.map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned());
        SimProvider {
            pool: pool.to_owned(),
            sim,
            instance_type,
            markets: if spot {
                CapacityPreference::SpotThenOnDemand
            } else {
                CapacityPreference::OnDemand
            },
            seed,
            clock,
            routes,
            ledger,
            running: Mutex::default(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn market_name(capacity: Capacity) -> &'static str {
    match capacity {
        Capacity::Spot => "spot",
        Capacity::OnDemand => "on-demand",
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let now = self.clock.now();
        let instance_type = request
            .overrides
            .instance_types
            .as_ref()
            .and_then(|types| types.first().cloned())
            .unwrap_or_else(|| self.instance_type.clone());
        // A retried launch finds the runner its first try started.
        if let Some(running) = self
            .running()
            .get(&request.runner_name)
            .filter(|r| r.execution == request.execution && !r.task.is_finished())
        {
            let record = self.ledger.record(&request.runner_name);
            return Ok(Launched {
                runner_name: request.runner_name.clone(),
                provider: ProviderKind::Local,
                instance_id: running.instance_id.clone(),
                instance_type: Some(instance_type),
                subnet_id: None,
                capacity: record.map(|r| {
                    if r.market == "spot" {
                        Capacity::Spot
                    } else {
                        Capacity::OnDemand
                    }
                }),
                launched_at: running.launched_at,
            });
        }
        let mut rng = StdRng::seed_from_u64(mix(self.seed, &request.runner_name));
        let markets = request.overrides.capacity.unwrap_or(self.markets).markets();
        let mut tried = Vec::new();
        let mut chosen = None;
        for market in markets {
            if rng.random::<f64>() < self.sim.capacity_error_rate {
                tried.push(format!(
                    "{instance_type} ({}): InsufficientInstanceCapacity (simulated)",
                    market_name(*market)
                ));
            } else {
                chosen = Some(*market);
                break;
            }
        }
        if !tried.is_empty() {
            *self
                .ledger
                .capacity_errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(self.pool.clone())
                .or_default() += tried.len() as u64;
        }
        let Some(market) = chosen else {
            return Err(ProviderError::Capacity { tried });
        };
        let boot = self
            .sim
            .boot_seconds
            .unwrap_or(BootTime::Fixed(DEFAULT_BOOT_SECONDS))
            .sample(rng.random(), super::generate::normal(&mut rng));
        let boot = Duration::from_secs_f64(boot.max(0.0));
        let reclaim_after = (market == Capacity::Spot && self.sim.spot_reclaims_per_hour > 0.0)
            .then(|| {
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                Duration::from_secs_f64(-u.ln() * 3600.0 / self.sim.spot_reclaims_per_hour)
            });
        let mut options =
            runway_github_emulator::runner::RunnerOptions::new(None, request.jit_config.expose());
        options.clock = self.clock.clone();
        options.poll_wait = POLL_WAIT;
        options.in_process = self.routes.get().cloned();
        if options.in_process.is_none() {
            return Err(ProviderError::Other {
                reason: "the simulated host has no emulator to run runners against yet".into(),
            });
        }
        let clock = self.clock.clone();
        let ledger = self.ledger.clone();
        let name = request.runner_name.clone();
        let task = tokio::spawn(async move {
            let life = async {
                clock.sleep(boot).await;
                if let Err(error) = runway_github_emulator::runner::run(options).await {
                    tracing::warn!(runner = %name, %error, "a simulated runner stopped");
                }
            };
            match reclaim_after {
                None => life.await,
                Some(after) => {
                    tokio::select! {
                        () = life => {}
                        () = clock.sleep(after) => ledger.end(&name, clock.now(), true),
                    }
                }
            }
        });
        let instance_id = format!("sim-{}", request.runner_name);
        self.ledger
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                request.runner_name.clone(),
                InstanceRecord {
                    pool: self.pool.clone(),
                    execution: request.execution.clone(),
                    instance_type: instance_type.clone(),
                    market: market_name(market),
                    launched_at: now,
                    ended_at: None,
                    reclaimed: false,
                },
            );
        self.running().insert(
            request.runner_name.clone(),
            Running {
                execution: request.execution,
                instance_id: instance_id.clone(),
                launched_at: now,
                task,
            },
        );
        Ok(Launched {
            runner_name: request.runner_name,
            provider: ProviderKind::Local,
            instance_id,
            instance_type: Some(instance_type),
            subnet_id: None,
            capacity: Some(market),
            launched_at: now,
        })
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let mut running = self.running();
        let ours = running
            .get(runner_name)
            .is_some_and(|r| r.execution == execution);
        let Some(runner) = ours.then(|| running.remove(runner_name)).flatten() else {
            return Ok(Terminated::AlreadyGone);
        };
        drop(running);
        self.ledger.end(runner_name, self.clock.now(), false);
        let alive = self
            .ledger
            .record(runner_name)
            .is_some_and(|record| !record.reclaimed);
        runner.task.abort();
        Ok(if alive {
            Terminated::Stopped {
                instance_ids: vec![runner.instance_id],
            }
        } else {
            Terminated::AlreadyGone
        })
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        let running = self.running();
        let instances = self
            .ledger
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(running
            .iter()
            .filter(|(name, _)| {
                instances
                    .get(*name)
                    .is_some_and(|record| record.ended_at.is_none())
            })
            .map(|(name, running)| OwnedRunner {
                provider: ProviderKind::Local,
                execution: running.execution.clone(),
                runner_name: name.clone(),
                pool: Some(self.pool.clone()),
                instance_id: running.instance_id.clone(),
                launched_at: Some(running.launched_at),
            })
            .collect())
    }
}
