//! The deterministic WASI that policies built by language runtimes (Python with
//! componentize-py, JavaScript with componentize-js) need to start at all.
//!
//! A policy still decides from its input alone: the host offers WASI 0.2 with no arguments,
//! an empty environment, an empty stdin, no preopened directories and no network, clocks that
//! read the decision's time, and randomness seeded from the job. What the policy writes to
//! stdout and stderr is kept, bounded, for the decision's log record. A decision made with
//! this WASI is therefore replayable from its input, like one made by a policy that imports
//! nothing. Any import outside this set is refused when the policy loads, by name.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rand010::SeedableRng as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::PolicyError;
use crate::types::{Instant, Job};

/// The WASI interfaces a policy may import, by package and interface (any 0.2 version).
/// Filesystem and sockets are offered because language runtimes link them in whether or not
/// the policy uses them: there is no directory to open and every socket is refused.
const ALLOWED_INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Bytes of stdout and of stderr kept per decision; the rest is counted, not kept.
pub const CAPTURED_OUTPUT_BYTES: usize = 4096;

/// What a policy's imports say about the host it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Imports {
    /// Imports nothing: the policy needs no host at all.
    Nothing,
    /// Imports deterministic WASI only (a language runtime).
    DeterministicWasi,
}

/// Sorts a component's imports: nothing, the deterministic WASI, or refused with the names of
/// the imports outside it.
pub(crate) fn classify_imports(imports: &[String]) -> Result<Imports, PolicyError> {
    if imports.is_empty() {
        return Ok(Imports::Nothing);
    }
    let refused: Vec<String> = imports
        .iter()
        .filter(|name| !is_allowed(name))
        .cloned()
        .collect();
    if refused.is_empty() {
        Ok(Imports::DeterministicWasi)
    } else {
        Err(PolicyError::ForbiddenImports { refused })
    }
}

/// `wasi:clocks/wall-clock@0.2.3` is allowed for every `0.2.x`; a bare or other version is not.
fn is_allowed(name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    let wasi_0_2 = version
        .strip_prefix("0.2.")
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()));
    wasi_0_2 && ALLOWED_INTERFACES.contains(&interface)
}

/// What one decision's WASI reads: its time and its random seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecisionEnv {
    pub now: Instant,
    pub seed: [u8; 32],
}

impl DecisionEnv {
    /// The environment for a decision about `job` at `now`. The seed depends on the job alone
    /// (its id, run and attempt), so the same job gets the same random bytes in every replay.
    pub fn for_job(job: &Job, now: Instant) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"runway policy seed v1\0");
        hash.update(job.job_id.to_le_bytes());
        hash.update(job.run_id.to_le_bytes());
        hash.update(job.run_attempt.to_le_bytes());
        DecisionEnv {
            now,
            seed: hash.finalize().into(),
        }
    }

    /// The environment an instance is created in, before any decision: the epoch and a zero
    /// seed, so that whatever a runtime does while instantiating is deterministic too.
    pub fn before_any_decision() -> Self {
        DecisionEnv {
            now: Instant::from_unix(0),
            seed: [0; 32],
        }
    }

    fn since_epoch(&self) -> Duration {
        // Times before 1970 read as the epoch: a decision's time is a GitHub timestamp.
        u64::try_from(self.now.seconds)
            .map(|seconds| Duration::new(seconds, self.now.nanoseconds))
            .unwrap_or_default()
    }
}

/// What a decision wrote to stdout and stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyOutput {
    /// The first [`CAPTURED_OUTPUT_BYTES`] bytes written to stdout (lossy UTF-8).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Bytes written beyond the kept ones, on both streams.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl PolicyOutput {
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty() && self.dropped_bytes == 0
    }

    /// The end of stderr, for an error message (a Python traceback ends with its cause).
    pub(crate) fn stderr_tail(&self, max_chars: usize) -> Option<String> {
        let text = self.stderr.trim_end();
        if text.is_empty() {
            return None;
        }
        let count = text.chars().count();
        Some(if count <= max_chars {
            text.to_owned()
        } else {
            let tail: String = text.chars().skip(count - max_chars).collect();
            format!("…{tail}")
        })
    }
}

/// A bounded in-memory sink for one stream: writes always succeed (a chatty policy is not
/// failed for it), bytes past the bound are counted and dropped.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<CapturedBytes>>);

#[derive(Debug, Default)]
struct CapturedBytes {
    kept: Vec<u8>,
    dropped: u64,
}

impl Captured {
    fn take(&self) -> CapturedBytes {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn append(&self, bytes: &[u8]) {
        let mut captured = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let room = CAPTURED_OUTPUT_BYTES.saturating_sub(captured.kept.len());
        let kept = bytes.len().min(room);
        captured.kept.extend_from_slice(&bytes[..kept]);
        captured.dropped += (bytes.len() - kept) as u64;
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct DecisionWallClock(Duration);

impl HostWallClock for DecisionWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// Monotonic time stands still during a decision: it reads the decision's time in
/// nanoseconds, so a runtime measuring itself sees no time pass.
struct DecisionMonotonicClock(u64);

impl HostMonotonicClock for DecisionMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0
    }
}

/// A store's WASI state: rebuilt for each decision from its [`DecisionEnv`], with the output
/// sinks kept across rebuilds so that streams opened earlier still land in them.
pub(crate) struct DecisionWasi {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: Captured,
    stderr: Captured,
    seed: [u8; 32],
}

impl DecisionWasi {
    pub fn new() -> Self {
        let stdout = Captured::default();
        let stderr = Captured::default();
        let env = DecisionEnv::before_any_decision();
        DecisionWasi {
            ctx: build_ctx(&env, &stdout, &stderr),
            table: ResourceTable::new(),
            stdout,
            stderr,
            seed: env.seed,
        }
    }

    /// Starts a decision: its clocks and seed, and empty output.
    pub fn begin(&mut self, env: &DecisionEnv) {
        self.ctx = build_ctx(env, &self.stdout, &self.stderr);
        self.seed = env.seed;
        self.stdout.take();
        self.stderr.take();
    }

    /// What the decision wrote.
    pub fn output(&self) -> PolicyOutput {
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        PolicyOutput {
            stdout: String::from_utf8_lossy(&stdout.kept).into_owned(),
            stderr: String::from_utf8_lossy(&stderr.kept).into_owned(),
            dropped_bytes: stdout.dropped + stderr.dropped,
        }
    }

    fn insecure_seed(&self) -> (u64, u64) {
        let half = |range: std::ops::Range<usize>| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&self.seed[range]);
            u64::from_le_bytes(bytes)
        };
        (half(16..24), half(24..32))
    }

    pub fn view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

fn build_ctx(env: &DecisionEnv, stdout: &Captured, stderr: &Captured) -> WasiCtx {
    let since_epoch = env.since_epoch();
    let monotonic = u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX);
    let mut secure_seed = [0u8; 32];
    secure_seed.copy_from_slice(&env.seed);
    let mut insecure_seed = secure_seed;
    insecure_seed[0] ^= 0xff;
    WasiCtx::builder()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(DecisionWallClock(since_epoch))
        .monotonic_clock(DecisionMonotonicClock(monotonic))
        .secure_random(rand010::rngs::StdRng::from_seed(secure_seed))
        .insecure_random(rand010::rngs::StdRng::from_seed(insecure_seed))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

/// The store data of a policy call that may use WASI.
pub(crate) trait HasDecisionWasi: Send + 'static {
    fn decision_wasi(&mut self) -> &mut DecisionWasi;
}

/// Adds the deterministic WASI to `linker`. Waiting on a clock is refused with a trap, since a
/// decision must not sleep (a host-side wait would not be bounded by the call's budget), and
/// `insecure-seed` returns the job's seed instead of a per-process one.
pub(crate) fn add_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: HasDecisionWasi + WasiView,
{
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    for function in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(
            function,
            move |_store: wasmtime::StoreContextMut<'_, T>,
                  (_nanoseconds,): (u64,)|
                  -> wasmtime::Result<(Resource<DynPollable>,)> {
                Err(wasmtime::format_err!(
                    "the policy tried to sleep (wasi:clocks/monotonic-clock.{function}): a \
                     decision must not wait; decide from the input"
                ))
            },
        )?;
    }
    let mut seed = linker.instance("wasi:random/insecure-seed@0.2.12")?;
    seed.func_wrap(
        "insecure-seed",
        |mut store: wasmtime::StoreContextMut<'_, T>, (): ()| -> wasmtime::Result<((u64, u64),)> {
            Ok((store.data_mut().decision_wasi().insecure_seed(),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs `call` where wasmtime-wasi's blocking stream operations may start their own runtime:
/// on this thread when it is not a tokio runtime's, else on a short-lived thread of its own
/// (blocking on a runtime from inside one panics).
pub(crate) fn off_async_runtime<R: Send>(call: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return call();
    }
    std::thread::scope(|scope| match scope.spawn(call).join() {
        Ok(answer) => answer,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_0_2_interfaces_of_the_set_are_allowed_at_any_patch_version() {
        assert!(is_allowed("wasi:cli/stdout@0.2.0"));
        assert!(is_allowed("wasi:clocks/wall-clock@0.2.12"));
        assert!(is_allowed("wasi:sockets/tcp@0.2.9"));
        assert!(!is_allowed("wasi:cli/stdout"));
        assert!(!is_allowed("wasi:cli/stdout@0.3.0"));
        assert!(!is_allowed("wasi:cli/stdout@0.2."));
        assert!(!is_allowed("wasi:http/outgoing-handler@0.2.0"));
        assert!(!is_allowed("wasi:cli/run@0.2.0"));
        assert!(!is_allowed("acme:secrets/vault@1.0.0"));
    }

    #[test]
    fn imports_are_classified_and_refusals_name_every_import_outside_the_set() {
        assert_eq!(classify_imports(&[]).ok(), Some(Imports::Nothing));
        let wasi = vec![
            "wasi:io/streams@0.2.0".to_owned(),
            "wasi:cli/exit@0.2.6".into(),
        ];
        assert_eq!(
            classify_imports(&wasi).ok(),
            Some(Imports::DeterministicWasi)
        );
        let mixed = vec![
            "wasi:io/streams@0.2.0".to_owned(),
            "wasi:http/outgoing-handler@0.2.0".into(),
            "acme:secrets/vault@1.0.0".into(),
        ];
        match classify_imports(&mixed) {
            Err(PolicyError::ForbiddenImports { refused }) => assert_eq!(
                refused,
                [
                    "wasi:http/outgoing-handler@0.2.0",
                    "acme:secrets/vault@1.0.0"
                ]
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_seed_is_the_jobs_and_the_same_on_every_replay() {
        let job = Job {
            job_id: 7,
            run_id: 9,
            run_attempt: 1,
            ..Job::default()
        };
        let now = Instant::from_unix(1_700_000_000);
        assert_eq!(
            DecisionEnv::for_job(&job, now),
            DecisionEnv::for_job(&job, now)
        );
        let other = Job {
            run_attempt: 2,
            ..job.clone()
        };
        assert_ne!(
            DecisionEnv::for_job(&job, now).seed,
            DecisionEnv::for_job(&other, now).seed
        );
    }

    #[test]
    fn output_is_bounded_and_what_is_dropped_is_counted() {
        let sink = Captured::default();
        sink.append(&vec![b'a'; CAPTURED_OUTPUT_BYTES - 2]);
        sink.append(b"bcdef");
        let taken = sink.take();
        assert_eq!(taken.kept.len(), CAPTURED_OUTPUT_BYTES);
        assert!(taken.kept.ends_with(b"bc"));
        assert_eq!(taken.dropped, 3);
        assert!(sink.take().kept.is_empty(), "taking empties the sink");
    }

    #[test]
    fn the_stderr_tail_keeps_the_end() {
        let output = PolicyOutput {
            stderr: "Traceback...\nZeroDivisionError: division by zero\n".into(),
            ..PolicyOutput::default()
        };
        assert_eq!(
            output.stderr_tail(35).as_deref(),
            Some("…ZeroDivisionError: division by zero")
        );
        assert_eq!(PolicyOutput::default().stderr_tail(10), None);
    }
}
