//! Loading, compiling and running policy components under wasmtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::{router, throttle};
use crate::error::{PolicyError, World};
use crate::fallback::{Decided, RouterFallback, ThrottleFallback};
use crate::types::{Job, Load, Pool, RouteDecision, ThrottleDecision};
use crate::wasi::{self, DecisionEnv, DecisionWasi, Imports, PolicyOutput};

/// An architecture to compile policies for ahead of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    X86_64,
    /// AWS Graviton.
    Aarch64,
}

impl Target {
    pub fn triple(self) -> &'static str {
        match self {
            Target::X86_64 => "x86_64-unknown-linux-gnu",
            Target::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The architecture this program runs on, if policies can be compiled for it.
    pub fn host() -> Option<Target> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Target::X86_64),
            "aarch64" => Some(Target::Aarch64),
            _ => None,
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "x86_64" | "x86-64" | "amd64" => Ok(Target::X86_64),
            "aarch64" | "arm64" | "graviton" => Ok(Target::Aarch64),
            other => Err(format!(
                "unknown target `{other}`: expected x86_64 or aarch64"
            )),
        }
    }
}

/// How instances get their memory. Every call gets a fresh instance either way, so that no
/// state survives from one decision to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAllocation {
    /// Allocate memory for each instance when it is created.
    OnDemand,
    /// Reuse pre-reserved slots for up to this many concurrent instances.
    Pooling { max_instances: u32 },
}

/// Whether an instance serves more than one call. Written `never`, `verified` or
/// `verified:N` in configuration (see its `FromStr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceReuse {
    /// A pristine instance for every call (the default): nothing a policy keeps in memory can
    /// reach the next decision, so every decision is replayable from its input.
    #[default]
    Never,
    /// An instance whose call succeeded without growing memory serves the next call, which
    /// saves instantiating one (about half a decision's time). Every `verify_every`-th reused
    /// call is made again on a pristine instance and the answers compared: a policy that
    /// answers differently keeps state between calls, so it loses reuse for good (logged as
    /// an error) and the pristine answer stands. For policies known to be stateless.
    Verified { verify_every: u32 },
}

impl InstanceReuse {
    /// How often a reused call is replayed on a pristine instance when `verified` gives no
    /// number. A replay costs one pristine call (about 12 µs against 5.6 µs for a reused
    /// one), so checking one call in 64 adds about 0.2 µs a decision (3 %), while a warm
    /// instance is still compared with a pristine one at least every 64 reused calls.
    pub const DEFAULT_VERIFY_EVERY: u32 = 64;

    /// Reuse with the default check rate ([`InstanceReuse::DEFAULT_VERIFY_EVERY`]).
    pub fn verified() -> InstanceReuse {
        InstanceReuse::Verified {
            verify_every: InstanceReuse::DEFAULT_VERIFY_EVERY,
        }
    }
}

/// `never`, `verified` or `verified:N`, as configuration files and environment variables
/// write it.
impl std::str::FromStr for InstanceReuse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let invalid = || {
            format!("unknown instance reuse {s:?}: expected never, verified or verified:N (N ≥ 1)")
        };
        if text.eq_ignore_ascii_case("never") {
            return Ok(InstanceReuse::Never);
        }
        if text.eq_ignore_ascii_case("verified") {
            return Ok(InstanceReuse::verified());
        }
        let Some((kind, every)) = text.split_once(':') else {
            return Err(invalid());
        };
        if !kind.eq_ignore_ascii_case("verified") {
            return Err(invalid());
        }
        // Digits only: `u32::from_str` would also take a sign.
        if every.is_empty() || !every.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        match every.parse::<u32>() {
            Ok(0) => Err(format!(
                "instance reuse {s:?}: N is how many reused calls go between two checks and \
                 must be at least 1 (expected never, verified or verified:N (N ≥ 1))"
            )),
            Ok(verify_every) => Ok(InstanceReuse::Verified { verify_every }),
            Err(_) => Err(format!(
                "instance reuse {s:?}: N is too large (at most {}); expected never, verified \
                 or verified:N (N ≥ 1)",
                u32::MAX
            )),
        }
    }
}

impl std::fmt::Display for InstanceReuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstanceReuse::Never => f.write_str("never"),
            InstanceReuse::Verified { verify_every } => write!(f, "verified:{verify_every}"),
        }
    }
}

/// Instances kept warm per policy under [`InstanceReuse::Verified`].
const MAX_WARM_INSTANCES: usize = 4;

/// Bounds on every call, and engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// WebAssembly instructions (roughly) a call may execute.
    pub fuel: u64,
    /// Wall-clock budget of a call, enforced by epoch interruption.
    pub time_budget: Duration,
    /// How often the epoch ticks; the time budget is enforced to within one tick.
    pub epoch_tick: Duration,
    /// Linear memory one call may use.
    pub memory_limit_bytes: usize,
    /// Native stack the guest may use.
    pub max_wasm_stack_bytes: usize,
    pub allocation: InstanceAllocation,
    /// Fresh instances each policy keeps ready ahead of its calls, so that a decision does
    /// not wait for one to be created. Each is used for exactly one call and is refilled by a
    /// background thread; 0 creates every instance on the call. They are made after the
    /// policy's first call, and each holds an allocation slot while it waits.
    pub prepared_instances: usize,
    /// Whether an instance serves more than one call.
    pub reuse: InstanceReuse,
    /// Where compiled policies are kept between processes, keyed by content hash.
    pub cache_dir: Option<PathBuf>,
    /// The bounds of a policy that imports the deterministic WASI: a language runtime
    /// (CPython, a JavaScript engine) starts with more memory and runs more instructions for
    /// the same decision than a policy compiled from Rust or C.
    pub runtime_bounds: CallBounds,
    /// The largest linear memory any policy may be given (its instance slot); a policy
    /// loaded with a larger memory cap is refused.
    pub max_memory_bytes: usize,
}

/// The bounds of one call into a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallBounds {
    /// WebAssembly instructions (roughly) a call may execute, instantiation included.
    pub fuel: u64,
    /// Wall-clock budget of a call, enforced by epoch interruption.
    pub time_budget: Duration,
    /// Linear memory one call may use.
    pub memory_limit_bytes: usize,
}

/// One policy's bounds, set in its configuration; `None` keeps the engine's default for the
/// kind of policy it is ([`EngineConfig::fuel`] and its siblings for a policy importing
/// nothing, [`EngineConfig::runtime_bounds`] for one importing WASI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PolicyBounds {
    pub fuel: Option<u64>,
    pub time_budget: Option<Duration>,
    pub memory_limit_bytes: Option<usize>,
}

/// `fuel=N,time=Dms,memory=MMiB` (any subset, in any order; `time` also takes `s`, `memory`
/// also `GiB`), as configuration files and environment variables write a policy's bounds.
/// An empty string keeps every default.
impl std::str::FromStr for PolicyBounds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bounds = PolicyBounds::default();
        for item in s.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!(
                    "policy bounds {s:?}: {item:?} is not key=value; expected for example \
                     fuel=2000000000,time=500ms,memory=128MiB"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            let bad = |what: &str| format!("policy bounds {s:?}: {key}={value:?} {what}");
            match key {
                "fuel" => {
                    let fuel = value
                        .replace('_', "")
                        .parse::<u64>()
                        .ok()
                        .filter(|fuel| *fuel > 0)
                        .ok_or_else(|| bad("is not a positive whole number"))?;
                    bounds.fuel = Some(fuel);
                }
                "time" => {
                    let budget = parse_duration(value)
                        .filter(|budget| !budget.is_zero())
                        .ok_or_else(|| bad("is not a duration such as 500ms or 2s"))?;
                    bounds.time_budget = Some(budget);
                }
                "memory" => {
                    let bytes = parse_bytes(value)
                        .filter(|bytes| *bytes > 0)
                        .ok_or_else(|| bad("is not a size such as 128MiB or 1GiB"))?;
                    bounds.memory_limit_bytes = Some(bytes);
                }
                _ => {
                    return Err(format!(
                        "policy bounds {s:?}: unknown bound {key:?}; expected fuel, time or memory"
                    ));
                }
            }
        }
        Ok(bounds)
    }
}

impl std::fmt::Display for PolicyBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(fuel) = self.fuel {
            parts.push(format!("fuel={fuel}"));
        }
        if let Some(budget) = self.time_budget {
            parts.push(format!("time={}ms", budget.as_millis()));
        }
        if let Some(bytes) = self.memory_limit_bytes {
            parts.push(format!("memory={}MiB", bytes >> 20));
        }
        f.write_str(&parts.join(","))
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = split_unit(text);
    let value: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(value)),
        "s" => Some(Duration::from_secs(value)),
        _ => None,
    }
}

fn parse_bytes(text: &str) -> Option<usize> {
    let (number, unit) = split_unit(text);
    let value: usize = number.parse().ok()?;
    match unit {
        "MiB" => value.checked_mul(1 << 20),
        "GiB" => value.checked_mul(1 << 30),
        _ => None,
    }
}

fn split_unit(text: &str) -> (&str, &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text.split_at(digits)
}

impl EngineConfig {
    /// The bounds a policy runs under: its own where set, else the default for its kind.
    fn bounds_for(&self, imports: Imports, own: &PolicyBounds) -> CallBounds {
        let default = match imports {
            Imports::Nothing => CallBounds {
                fuel: self.fuel,
                time_budget: self.time_budget,
                memory_limit_bytes: self.memory_limit_bytes,
            },
            Imports::DeterministicWasi => self.runtime_bounds,
        };
        CallBounds {
            fuel: own.fuel.unwrap_or(default.fuel),
            time_budget: own.time_budget.unwrap_or(default.time_budget),
            memory_limit_bytes: own.memory_limit_bytes.unwrap_or(default.memory_limit_bytes),
        }
    }

    /// The size of an instance's memory slot: the largest cap any policy may have.
    fn slot_bytes(&self) -> usize {
        self.max_memory_bytes
            .max(self.memory_limit_bytes)
            .max(self.runtime_bounds.memory_limit_bytes)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel: 20_000_000,
            time_budget: Duration::from_millis(20),
            epoch_tick: Duration::from_millis(1),
            memory_limit_bytes: 32 << 20,
            max_wasm_stack_bytes: 512 << 10,
            allocation: InstanceAllocation::Pooling { max_instances: 64 },
            prepared_instances: 4,
            reuse: InstanceReuse::Never,
            cache_dir: None,
            runtime_bounds: CallBounds {
                fuel: 2_000_000_000,
                time_budget: Duration::from_millis(500),
                memory_limit_bytes: 128 << 20,
            },
            max_memory_bytes: 256 << 20,
        }
    }
}

fn wasmtime_config(config: &EngineConfig, target: Option<Target>) -> Result<Config, PolicyError> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack_bytes)
        // Policies are short-lived: no need for multi-GiB reservations.
        .memory_reservation(config.slot_bytes().max(64 << 20) as u64)
        .memory_guard_size(64 << 10)
        .memory_reservation_for_growth(0);
    if let Some(target) = target {
        wasm.target(target.triple()).map_err(PolicyError::engine)?;
    }
    if let InstanceAllocation::Pooling { max_instances } = config.allocation {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(max_instances)
            // A language runtime links a dozen core modules (libc, the interpreter, the WASI
            // adapter, shims) where a Rust or C policy has one: room for every instance to be
            // one. Slots are address space, reserved once, not memory.
            .total_core_instances(max_instances.saturating_mul(32))
            .total_memories(max_instances.saturating_mul(4))
            .total_tables(max_instances.saturating_mul(8))
            .max_memory_size(config.slot_bytes())
            .max_component_instance_size(1 << 20)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .table_elements(20_000)
            // Reset a returned slot by zeroing the first pages rather than unmapping them,
            // so the next call does not page-fault its stack and heap back in.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            // Copy the (small) initial memory into a slot kept resident rather than map it
            // copy-on-write: instances are made ahead of their call, and a mapped image
            // would page-fault on the call instead.
            .memory_init_cow(false);
    }
    Ok(wasm)
}

fn epoch_tick(configured: Duration) -> Duration {
    configured.max(Duration::from_micros(100))
}

/// How many epoch ticks make `budget`.
fn epoch_ticks(budget: Duration, tick: Duration) -> u64 {
    budget
        .as_nanos()
        .div_ceil(epoch_tick(tick).as_nanos())
        .max(1) as u64
}

/// Stops the epoch ticker when the last user of the engine is gone.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Result<Ticker, PolicyError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                // One tick per wake-up: a late wake-up on a busy machine stretches a budget
                // a little rather than cutting a call short.
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(PolicyError::engine)?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A used instance waiting to be dropped (its memory reset) off the decision path, and the
/// policy whose spares it came from.
struct Refill {
    policy: Weak<PolicyInner>,
    used: Store<CallState>,
}

/// Used instances waiting for the preparing thread, at most. Each holds an allocation slot,
/// so when callers outrun the thread the rest are dropped on the call instead.
const REFILL_BACKLOG: usize = 8;

/// How often the preparing thread looks for work. Callers never wake it: waking a thread
/// costs a decision a system call and, on a busy machine, its core.
const REFILL_POLL: Duration = Duration::from_millis(1);

/// What callers leave for the preparing thread.
#[derive(Default)]
struct RefillQueue {
    work: Mutex<Vec<Refill>>,
    stop: AtomicBool,
}

/// The thread that drops used instances and tops up spares. It stops when the engine's
/// last user is gone; it is not joined, since that last user may be dropped on it.
struct Preparer {
    queue: Arc<RefillQueue>,
}

impl Preparer {
    fn start() -> Result<Preparer, PolicyError> {
        let queue = Arc::new(RefillQueue::default());
        let shared = queue.clone();
        std::thread::Builder::new()
            .name("policy-prepare".into())
            .spawn(move || prepare_loop(&shared))
            .map_err(PolicyError::engine)?;
        Ok(Preparer { queue })
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.queue.stop.store(true, Ordering::Relaxed);
    }
}

fn prepare_loop(queue: &RefillQueue) {
    run_in_the_background();
    while !queue.stop.load(Ordering::Relaxed) {
        std::thread::sleep(REFILL_POLL);
        let work = match queue.work.lock() {
            Ok(mut work) => std::mem::take(&mut *work),
            Err(_) => return,
        };
        let mut policies: Vec<Weak<PolicyInner>> = Vec::new();
        for Refill { policy, used } in work {
            drop(used);
            if !policies.iter().any(|p| p.ptr_eq(&policy)) {
                policies.push(policy);
            }
        }
        for policy in policies {
            if let Some(policy) = policy.upgrade() {
                policy.top_up();
            }
        }
    }
}

/// Lowers the calling thread's priority to the least, so that waking it to refill never
/// preempts a decision: with every core busy it refills later and calls make their own.
fn run_in_the_background() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread (on Linux, `setpriority` on a
        // thread id affects that thread alone); a failure only leaves the priority as is.
        let lowered = unsafe {
            let thread = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 19)
        };
        if lowered != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the priority of the preparing thread");
        }
    }
}

struct Shared {
    engine: Engine,
    config: EngineConfig,
    linker: Linker<CallState>,
    preparer: Preparer,
    _ticker: Ticker,
}

/// Loaded policies by the SHA-256 of their bytes. Policies point at `Shared`, not at the
/// cache, so that dropping the engine and its policies stops the ticker.
type Cache = Mutex<HashMap<([u8; 32], PolicyBounds), Policy>>;

/// The wasmtime engine that loads and runs policies. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct PolicyEngine {
    shared: Arc<Shared>,
    cache: Arc<Cache>,
    /// Compiled components by the SHA-256 of their bytes, so that loading the same policy with
    /// other bounds does not compile it again.
    components: Arc<Mutex<HashMap<[u8; 32], Component>>>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl PolicyEngine {
    pub fn new(config: EngineConfig) -> Result<Self, PolicyError> {
        let engine = Engine::new(&wasmtime_config(&config, None)?).map_err(PolicyError::engine)?;
        let ticker = Ticker::start(engine.clone(), epoch_tick(config.epoch_tick))?;
        let preparer = Preparer::start()?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(PolicyError::engine)?;
        Ok(PolicyEngine {
            shared: Arc::new(Shared {
                engine,
                config,
                linker,
                preparer,
                _ticker: ticker,
            }),
            cache: Arc::new(Mutex::new(HashMap::new())),
            components: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Loads a policy component (the `.wasm` that runway-policy-build writes). Compiled
    /// policies are cached by content hash, in memory and in `cache_dir` if configured.
    pub fn load(&self, bytes: &[u8]) -> Result<Policy, PolicyError> {
        self.load_with(bytes, &PolicyBounds::default())
    }

    /// As [`PolicyEngine::load`], with the policy's own bounds.
    pub fn load_with(&self, bytes: &[u8], bounds: &PolicyBounds) -> Result<Policy, PolicyError> {
        check_component_header(bytes)?;
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(policy) = self.cached(&hash, bounds) {
            return Ok(policy);
        }
        let compiled = self
            .components
            .lock()
            .ok()
            .and_then(|components| components.get(&hash).cloned());
        let component = match compiled {
            Some(component) => component,
            None => {
                let component = match self.disk_cache_path(&hash) {
                    Some(path) => self.compile_with_disk_cache(bytes, &path)?,
                    None => self.compile(bytes)?,
                };
                if let Ok(mut components) = self.components.lock() {
                    components.insert(hash, component.clone());
                }
                component
            }
        };
        self.finish_load(component, hash, bounds)
    }

    /// Loads a policy compiled ahead of time by [`PolicyEngine::precompile`].
    ///
    /// # Safety
    /// The bytes are native code run as is: they must come from `precompile` (or
    /// `runway policy compile`) of a trusted policy, for example a file this deployment
    /// built. wasmtime checks the version and settings, not the code.
    pub unsafe fn load_precompiled(&self, bytes: &[u8]) -> Result<Policy, PolicyError> {
        // SAFETY: as this function's.
        unsafe { self.load_precompiled_with(bytes, &PolicyBounds::default()) }
    }

    /// As [`PolicyEngine::load_precompiled`], with the policy's own bounds.
    ///
    /// # Safety
    /// As [`PolicyEngine::load_precompiled`].
    pub unsafe fn load_precompiled_with(
        &self,
        bytes: &[u8],
        bounds: &PolicyBounds,
    ) -> Result<Policy, PolicyError> {
        if !matches!(
            Engine::detect_precompiled(bytes),
            Some(wasmtime::Precompiled::Component)
        ) {
            return Err(PolicyError::Incompatible {
                reason: "not a precompiled component".into(),
            });
        }
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(policy) = self.cached(&hash, bounds) {
            return Ok(policy);
        }
        // SAFETY: the caller vouches for the bytes (see above).
        let component =
            unsafe { Component::deserialize(&self.shared.engine, bytes) }.map_err(|e| {
                PolicyError::Incompatible {
                    reason: format!("{e:#}"),
                }
            })?;
        self.finish_load(component, hash, bounds)
    }

    /// Compiles a policy component ahead of time for `target`, for a runway built with the
    /// same version and engine settings (`EngineConfig` bounds other than the allocation
    /// strategy must match).
    pub fn precompile(&self, bytes: &[u8], target: Target) -> Result<Vec<u8>, PolicyError> {
        check_component_header(bytes)?;
        let engine = if Target::host() == Some(target) {
            self.shared.engine.clone()
        } else {
            Engine::new(&wasmtime_config(&self.shared.config, Some(target))?)
                .map_err(PolicyError::engine)?
        };
        // Check it is a policy before spending time compiling it for another machine.
        let policy = self.load(bytes)?;
        tracing::debug!(world = %policy.world(), ?target, "precompiling policy");
        engine
            .precompile_component(bytes)
            .map_err(|e| PolicyError::Malformed {
                reason: format!("{e:#}"),
            })
    }

    fn cached(&self, hash: &[u8; 32], bounds: &PolicyBounds) -> Option<Policy> {
        self.cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(&(*hash, *bounds)).cloned())
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, PolicyError> {
        Component::from_binary(&self.shared.engine, bytes).map_err(|e| PolicyError::Malformed {
            reason: format!("{e:#}"),
        })
    }

    fn disk_cache_path(&self, hash: &[u8; 32]) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.shared.config.cache_dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.shared
            .engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(dir.join(format!(
            "{}-{:016x}.cwasm",
            hex::encode(hash),
            hasher.finish()
        )))
    }

    fn compile_with_disk_cache(&self, bytes: &[u8], path: &Path) -> Result<Component, PolicyError> {
        if let Ok(artefact) = std::fs::read(path) {
            // SAFETY: the cache directory holds only artefacts this engine wrote, named by the
            // hash of their source and of the engine's settings.
            match unsafe { Component::deserialize(&self.shared.engine, &artefact) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "ignoring unusable cached policy")
                }
            }
        }
        let artefact = self
            .shared
            .engine
            .precompile_component(bytes)
            .map_err(|e| PolicyError::Malformed {
                reason: format!("{e:#}"),
            })?;
        if let Err(error) = write_atomically(path, &artefact) {
            tracing::warn!(path = %path.display(), %error, "cannot cache compiled policy");
        }
        // SAFETY: produced just above by this engine.
        unsafe { Component::deserialize(&self.shared.engine, &artefact) }
            .map_err(PolicyError::engine)
    }

    fn finish_load(
        &self,
        component: Component,
        hash: [u8; 32],
        own_bounds: &PolicyBounds,
    ) -> Result<Policy, PolicyError> {
        let import_names: Vec<String> = component
            .component_type()
            .imports(&self.shared.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let imports = wasi::classify_imports(&import_names)?;
        let bounds = self.shared.config.bounds_for(imports, own_bounds);
        let slot = self.shared.config.slot_bytes();
        if bounds.memory_limit_bytes > slot {
            return Err(PolicyError::Engine {
                message: format!(
                    "the policy's memory cap ({} MiB) is above the largest this engine gives \
                     any policy ({} MiB); lower the cap or raise the engine's max_memory_bytes",
                    bounds.memory_limit_bytes >> 20,
                    slot >> 20
                ),
            });
        }
        let pre = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PolicyError::ImportMismatch {
                reason: format!("{e:#}"),
            })?;
        let kind = if let Ok(router) = router::RouterPre::new(pre.clone()) {
            Kind::Router(router)
        } else if let Ok(throttle) = throttle::ThrottlePre::new(pre) {
            Kind::Throttle(throttle)
        } else {
            let exports: Vec<String> = component
                .component_type()
                .exports(&self.shared.engine)
                .map(|(name, _)| name.to_string())
                .collect();
            return Err(PolicyError::Malformed {
                reason: format!(
                    "it implements neither {} nor {} (exports: {exports:?})",
                    World::Router.wit_name(),
                    World::Throttle.wit_name()
                ),
            });
        };
        let policy = Policy {
            inner: Arc::new(PolicyInner {
                shared: self.shared.clone(),
                hash: hex::encode(hash),
                kind,
                imports,
                bounds,
                epoch_ticks: epoch_ticks(bounds.time_budget, self.shared.config.epoch_tick),
                spares: Mutex::new(Vec::new()),
                warm: Mutex::new(Vec::new()),
                reused_calls: AtomicU64::new(0),
                reuse_revoked: AtomicBool::new(false),
            }),
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert((hash, *own_bounds), policy.clone());
        }
        Ok(policy)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A component starts with `\0asm` and the component-model layer (a core module has
/// version 1); anything else is refused before the compiler sees it.
fn check_component_header(bytes: &[u8]) -> Result<(), PolicyError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => Err(PolicyError::Malformed {
            reason: "this is a core WebAssembly module, not a component".into(),
        }),
        _ if Engine::detect_precompiled(bytes).is_some() => Err(PolicyError::Malformed {
            reason: "this is a precompiled artefact; load it as one (`.cwasm`)".into(),
        }),
        _ => Err(PolicyError::Malformed {
            reason: "the bytes are not WebAssembly".into(),
        }),
    }
}

enum Kind {
    Router(router::RouterPre<CallState>),
    Throttle(throttle::ThrottlePre<CallState>),
}

/// An instance of either world, made in its own store and never called yet.
enum Instance {
    Router(router::Router),
    Throttle(throttle::Throttle),
}

/// A pristine instance ready for one call.
struct Prepared {
    store: Store<CallState>,
    instance: Instance,
}

struct PolicyInner {
    shared: Arc<Shared>,
    hash: String,
    kind: Kind,
    imports: Imports,
    bounds: CallBounds,
    /// The time budget in epoch ticks.
    epoch_ticks: u64,
    /// Instances made ahead of calls; each is taken by exactly one call.
    spares: Mutex<Vec<Prepared>>,
    /// Instances that served a clean call, for the next ones ([`InstanceReuse::Verified`]).
    warm: Mutex<Vec<Prepared>>,
    reused_calls: AtomicU64,
    /// Set when a reused instance answered differently from a pristine one.
    reuse_revoked: AtomicBool,
}

impl PolicyInner {
    /// A store with the call's bounds. The fuel covers instantiation and the call, as it
    /// always has; the epoch deadline is set again when the call starts.
    fn store(&self) -> Result<Store<CallState>, PolicyError> {
        let mut store = Store::new(
            &self.shared.engine,
            CallState {
                memory_limit: self.bounds.memory_limit_bytes,
                memory_denied: false,
                memory_grew: false,
                wasi: match self.imports {
                    Imports::Nothing => None,
                    Imports::DeterministicWasi => Some(Box::new(DecisionWasi::new())),
                },
            },
        );
        store.limiter(|state| state);
        store
            .set_fuel(self.bounds.fuel)
            .map_err(PolicyError::engine)?;
        store.set_epoch_deadline(self.epoch_ticks);
        Ok(store)
    }

    fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Instance> {
        match &self.kind {
            Kind::Router(pre) => pre.instantiate(&mut *store).map(Instance::Router),
            Kind::Throttle(pre) => pre.instantiate(&mut *store).map(Instance::Throttle),
        }
    }

    /// A pristine instance for one call: a spare if one is ready, else one made now. An
    /// instantiation failure is the call's failure, reported as any other.
    fn take(&self) -> Result<Prepared, PolicyError> {
        let spare = self.spares.lock().ok().and_then(|mut spares| spares.pop());
        if let Some(mut prepared) = spare {
            // Time spent waiting as a spare is not the call's.
            prepared.store.set_epoch_deadline(self.epoch_ticks);
            return Ok(prepared);
        }
        let mut store = self.store()?;
        match self.instantiate(&mut store) {
            Ok(instance) => Ok(Prepared { store, instance }),
            Err(error) => Err(self.call_error(&store, error)),
        }
    }

    /// How often a reused call is checked against a pristine instance, when reuse is on.
    fn verify_every(&self) -> Option<u64> {
        match self.shared.config.reuse {
            InstanceReuse::Verified { verify_every }
                if !self.reuse_revoked.load(Ordering::Relaxed) =>
            {
                Some(u64::from(verify_every.max(1)))
            }
            _ => None,
        }
    }

    /// Runs one decision: on a pristine instance, or under [`InstanceReuse::Verified`] on a
    /// warm one (checked against a pristine one now and then).
    fn call<T: PartialEq + std::fmt::Debug + Send>(
        self: &Arc<Self>,
        env: &DecisionEnv,
        decide: impl Fn(&Instance, &mut Store<CallState>) -> wasmtime::Result<T> + Sync,
    ) -> Called<T> {
        match self.imports {
            Imports::Nothing => self.call_here(env, &decide),
            Imports::DeterministicWasi => wasi::off_async_runtime(|| self.call_here(env, &decide)),
        }
    }

    fn call_here<T: PartialEq + std::fmt::Debug>(
        self: &Arc<Self>,
        env: &DecisionEnv,
        decide: &impl Fn(&Instance, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Called<T> {
        let Some(verify_every) = self.verify_every() else {
            return self.call_pristine(env, decide);
        };
        let warm = self.warm.lock().ok().and_then(|mut warm| warm.pop());
        let reused = warm.is_some();
        let mut prepared = match warm {
            Some(prepared) => prepared,
            None => match self.take() {
                Ok(prepared) => prepared,
                Err(error) => return (Err(error), PolicyOutput::default()),
            },
        };
        // A warm instance gets the whole budget again.
        let store = &mut prepared.store;
        if let Err(error) = store.set_fuel(self.bounds.fuel) {
            return (Err(PolicyError::engine(error)), PolicyOutput::default());
        }
        store.set_epoch_deadline(self.epoch_ticks);
        store.data_mut().memory_grew = false;
        let (answer, output) = self.decide_on(&mut prepared, env, decide);
        // An instance that failed, or needed more memory (a policy that keeps what it
        // allocates), is not used again.
        let clean = answer.is_ok() && !prepared.store.data().memory_grew;
        if clean && let Ok(mut warm) = self.warm.lock() {
            if warm.len() < MAX_WARM_INSTANCES {
                warm.push(prepared);
            }
        } else {
            self.retire(prepared.store);
        }
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => return (Err(error), output),
        };
        let count = if reused {
            self.reused_calls.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        };
        if reused
            && count.is_multiple_of(verify_every)
            && let (Ok(pristine), pristine_output) = self.call_pristine(env, decide)
            && pristine != answer
        {
            self.reuse_revoked.store(true, Ordering::Relaxed);
            if let Ok(mut warm) = self.warm.lock() {
                warm.clear();
            }
            tracing::error!(
                policy = %self.hash,
                reused = ?answer,
                pristine = ?pristine,
                "a reused policy instance answered differently from a pristine one: the \
                 policy keeps state between calls, so its instances are no longer reused"
            );
            return (Ok(pristine), pristine_output);
        }
        (Ok(answer), output)
    }

    fn call_pristine<T>(
        self: &Arc<Self>,
        env: &DecisionEnv,
        decide: &impl Fn(&Instance, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Called<T> {
        let mut prepared = match self.take() {
            Ok(prepared) => prepared,
            Err(error) => return (Err(error), PolicyOutput::default()),
        };
        let called = self.decide_on(&mut prepared, env, decide);
        self.retire(prepared.store);
        called
    }

    /// One decision on `prepared`: its WASI set to the decision's time and seed, and what it
    /// wrote to stdout and stderr collected.
    fn decide_on<T>(
        &self,
        prepared: &mut Prepared,
        env: &DecisionEnv,
        decide: &impl Fn(&Instance, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Called<T> {
        let store = &mut prepared.store;
        if let Some(wasi) = store.data_mut().wasi.as_deref_mut() {
            wasi.begin(env);
        }
        let answer = decide(&prepared.instance, store).map_err(|e| self.call_error(store, e));
        let output = store
            .data()
            .wasi
            .as_deref()
            .map(DecisionWasi::output)
            .unwrap_or_default();
        let answer = answer.map_err(|error| match error {
            // A runtime's trap is explained on its stderr (a Python traceback, say).
            PolicyError::Trap { message } => PolicyError::Trap {
                message: match output.stderr_tail(STDERR_IN_ERRORS) {
                    Some(tail) => format!("{message}; the policy's stderr ends: {tail}"),
                    None => message,
                },
            },
            other => other,
        });
        (answer, output)
    }

    /// Leaves the used store for the preparing thread, which also tops the spares up.
    fn retire(self: &Arc<Self>, used: Store<CallState>) {
        // With no spares to make, the preparing thread would only drop the store, and a
        // store waiting for it holds an instance slot the next call may need (a small pool,
        // as a Lambda's, runs out in a burst of calls): drop it here.
        if self.shared.config.prepared_instances == 0 {
            drop(used);
            return;
        }
        let refill = Refill {
            policy: Arc::downgrade(self),
            used,
        };
        let queue = &self.shared.preparer.queue;
        if let Ok(mut work) = queue.work.lock()
            && work.len() < REFILL_BACKLOG
        {
            work.push(refill);
        }
        // Otherwise (a backlog) the store is dropped here, on the call.
    }

    /// Makes spares until there are enough. A policy whose instantiation fails gets none:
    /// its calls instantiate on the spot and report the failure.
    fn top_up(&self) {
        let wanted = self.shared.config.prepared_instances;
        loop {
            let ready = self
                .spares
                .lock()
                .map(|spares| spares.len())
                .unwrap_or(wanted);
            if ready >= wanted {
                return;
            }
            let Ok(mut store) = self.store() else { return };
            let Ok(instance) = self.instantiate(&mut store) else {
                return;
            };
            match self.spares.lock() {
                Ok(mut spares) => spares.push(Prepared { store, instance }),
                Err(_) => return,
            }
        }
    }

    /// Turns a failed call into the error that explains it.
    fn call_error(&self, store: &Store<CallState>, error: wasmtime::Error) -> PolicyError {
        let bounds = &self.bounds;
        if store.data().memory_denied {
            return PolicyError::MemoryLimit {
                limit_bytes: bounds.memory_limit_bytes,
            };
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => PolicyError::OutOfFuel { fuel: bounds.fuel },
            Some(wasmtime::Trap::Interrupt) => PolicyError::Timeout {
                budget: bounds.time_budget,
            },
            Some(trap) => PolicyError::Trap {
                message: trap.to_string(),
            },
            None => PolicyError::Trap {
                message: format!("{error:#}"),
            },
        }
    }
}

/// A call's answer and what the policy wrote meanwhile.
type Called<T> = (Result<T, PolicyError>, PolicyOutput);

/// Characters of a trapping policy's stderr quoted in its error.
const STDERR_IN_ERRORS: usize = 600;

/// A loaded policy of either world.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<PolicyInner>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("world", &self.world())
            .field("sha256", &self.inner.hash)
            .finish()
    }
}

impl Policy {
    pub fn world(&self) -> World {
        match self.inner.kind {
            Kind::Router(_) => World::Router,
            Kind::Throttle(_) => World::Throttle,
        }
    }

    /// The SHA-256 of the bytes it was loaded from, in hex.
    pub fn sha256(&self) -> &str {
        &self.inner.hash
    }

    pub fn router(&self) -> Result<RouterPolicy, PolicyError> {
        match self.inner.kind {
            Kind::Router(_) => Ok(RouterPolicy {
                policy: self.clone(),
            }),
            Kind::Throttle(_) => Err(PolicyError::WrongWorld {
                expected: World::Router,
                found: World::Throttle.wit_name().into(),
            }),
        }
    }

    pub fn throttle(&self) -> Result<ThrottlePolicy, PolicyError> {
        match self.inner.kind {
            Kind::Throttle(_) => Ok(ThrottlePolicy {
                policy: self.clone(),
            }),
            Kind::Router(_) => Err(PolicyError::WrongWorld {
                expected: World::Throttle,
                found: World::Router.wit_name().into(),
            }),
        }
    }

    /// How many instances that served a call wait for the next one
    /// ([`InstanceReuse::Verified`]).
    pub fn warm_instances(&self) -> usize {
        self.inner.warm.lock().map(|warm| warm.len()).unwrap_or(0)
    }

    /// Whether this policy's instances serve more than one call: reuse is configured and no
    /// check has caught the policy keeping state.
    pub fn reuses_instances(&self) -> bool {
        self.inner.verify_every().is_some()
    }

    /// How many fresh instances are ready for this policy's next calls.
    pub fn prepared_instances(&self) -> usize {
        self.inner
            .spares
            .lock()
            .map(|spares| spares.len())
            .unwrap_or(0)
    }
}

/// Per-call state: the memory cap, and whether the cap refused a growth (so that the trap
/// that follows an allocation failure is reported as what it is).
struct CallState {
    memory_limit: usize,
    memory_denied: bool,
    /// Whether linear memory grew during the call (a warm instance that grew is retired).
    memory_grew: bool,
    /// The deterministic WASI, for a policy that imports it.
    wasi: Option<Box<DecisionWasi>>,
}

impl wasmtime_wasi::WasiView for CallState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        // Only a policy importing WASI reaches here, and its stores are made with one; a
        // store made without gets one on first use rather than a panic.
        self.wasi
            .get_or_insert_with(|| Box::new(DecisionWasi::new()))
            .view()
    }
}

impl wasi::HasDecisionWasi for CallState {
    fn decision_wasi(&mut self) -> &mut DecisionWasi {
        self.wasi
            .get_or_insert_with(|| Box::new(DecisionWasi::new()))
    }
}

impl wasmtime::ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_grew |= desired > current;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A loaded `router` policy.
#[derive(Debug, Clone)]
pub struct RouterPolicy {
    policy: Policy,
}

impl RouterPolicy {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Asks the policy where `job` runs. A `run` naming a pool not in `pools` is an error.
    pub fn route(&self, job: &Job, pools: &[Pool]) -> Result<RouteDecision, PolicyError> {
        self.route_with_output(job, pools).0
    }

    /// As [`RouterPolicy::route`], with what the policy wrote to stdout and stderr. A
    /// router's clock reads the job's `event-time`, the one time in its input.
    pub fn route_with_output(
        &self,
        job: &Job,
        pools: &[Pool],
    ) -> (Result<RouteDecision, PolicyError>, PolicyOutput) {
        let call = policy_call("route", &self.policy).entered();
        let (decision, output) = self.route_in_guest(job, pools);
        record_call(&call, &decision, &output);
        (decision, output)
    }

    fn route_in_guest(&self, job: &Job, pools: &[Pool]) -> Called<RouteDecision> {
        let inner = &self.policy.inner;
        let wit_job = router::wit::Job::from(job);
        let wit_pools: Vec<router::wit::Pool> = pools.iter().map(Into::into).collect();
        let env = DecisionEnv::for_job(job, job.event_time);
        let (decision, output) = inner.call(&env, |instance, store| {
            let Instance::Router(instance) = instance else {
                unreachable!("RouterPolicy is only made for a router");
            };
            instance
                .runway_policy_routing()
                .call_route(store, &wit_job, &wit_pools)
                .map(RouteDecision::from)
        });
        let decision = decision.and_then(|decision| match &decision {
            RouteDecision::Run { pool, .. } if !pools.iter().any(|p| &p.name == pool) => {
                Err(PolicyError::UnknownPool {
                    pool: pool.clone(),
                    known: pools.iter().map(|p| p.name.clone()).collect(),
                })
            }
            _ => Ok(decision),
        });
        (decision, output)
    }

    /// As [`RouterPolicy::route`], with `fallback` deciding when the policy fails.
    pub fn route_or_fallback(
        &self,
        job: &Job,
        pools: &[Pool],
        fallback: &RouterFallback,
    ) -> Decided<RouteDecision> {
        let (decision, output) = self.route_with_output(job, pools);
        let decided = match decision {
            Ok(decision) => Decided::by_policy(decision),
            Err(failure) => {
                tracing::warn!(kind = failure.kind(), %failure, "router policy failed; using the fallback");
                fallback.decide(failure)
            }
        };
        decided.with_output(output)
    }
}

/// Notes a call's failure on its span, and what the policy wrote as an event in it: the
/// decision's log record.
fn record_call<T>(
    span: &tracing::span::EnteredSpan,
    answer: &Result<T, PolicyError>,
    output: &PolicyOutput,
) {
    if let Err(failure) = answer {
        span.record("error.message", failure.to_string());
    }
    if !output.is_empty() {
        tracing::info!(
            policy.stdout = %output.stdout,
            policy.stderr = %output.stderr,
            policy.output_dropped_bytes = output.dropped_bytes,
            "policy output"
        );
    }
}

/// The span of one call into a policy, described as a call to another system (OpenTelemetry's
/// RPC fields), so that tracing can show it beside the GitHub and AWS calls (X-Ray on AWS).
fn policy_call(method: &'static str, policy: &Policy) -> tracing::Span {
    tracing::debug_span!(
        "policy_call",
        "rpc.system" = "wasm",
        "rpc.service" = "Policy",
        "rpc.method" = method,
        "policy.sha256" = policy.sha256(),
        "error.message" = tracing::field::Empty,
    )
}

/// A loaded `throttle` policy.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    policy: Policy,
}

impl ThrottlePolicy {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Asks the policy whether `job` may start now in `pool`, given its `load`.
    pub fn decide(
        &self,
        job: &Job,
        pool: &Pool,
        load: &Load,
    ) -> Result<ThrottleDecision, PolicyError> {
        self.decide_with_output(job, pool, load).0
    }

    /// As [`ThrottlePolicy::decide`], with what the policy wrote to stdout and stderr. A
    /// throttle's clock reads `load.now`.
    pub fn decide_with_output(
        &self,
        job: &Job,
        pool: &Pool,
        load: &Load,
    ) -> (Result<ThrottleDecision, PolicyError>, PolicyOutput) {
        let call = policy_call("decide", &self.policy).entered();
        let (decision, output) = self.decide_in_guest(job, pool, load);
        record_call(&call, &decision, &output);
        (decision, output)
    }

    fn decide_in_guest(&self, job: &Job, pool: &Pool, load: &Load) -> Called<ThrottleDecision> {
        let inner = &self.policy.inner;
        let wit_job = throttle::wit::Job::from(job);
        let wit_pool = throttle::wit::Pool::from(pool);
        let wit_load = throttle::wit::Load::from(load);
        let env = DecisionEnv::for_job(job, load.now);
        inner.call(&env, |instance, store| {
            let Instance::Throttle(instance) = instance else {
                unreachable!("ThrottlePolicy is only made for a throttle");
            };
            instance
                .runway_policy_throttling()
                .call_decide(store, &wit_job, &wit_pool, wit_load)
                .map(ThrottleDecision::from)
        })
    }

    /// As [`ThrottlePolicy::decide`], with `fallback` deciding when the policy fails.
    pub fn decide_or_fallback(
        &self,
        job: &Job,
        pool: &Pool,
        load: &Load,
        fallback: ThrottleFallback,
    ) -> Decided<ThrottleDecision> {
        let (decision, output) = self.decide_with_output(job, pool, load);
        let decided = match decision {
            Ok(decision) => Decided::by_policy(decision),
            Err(failure) => {
                tracing::warn!(kind = failure.kind(), %failure, "throttle policy failed; using the fallback");
                fallback.decide(failure)
            }
        };
        decided.with_output(output)
    }
}
