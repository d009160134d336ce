//! Fault injection at the boundaries runway does not reach through HTTP: the task functions
//! (a step that dies after its work) and the engine's task callbacks (a lost
//! `SendTaskSuccess`), plus the driver that arms the GitHub emulator's fault switches. These
//! wrap the production parts from outside; nothing here is compiled into them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runway_asl::{TaskFailure, TaskRegistry};
use runway_aws_faults::{Fault, Rule, Trigger};
use runway_github_emulator::Faults;
use runway_jobflow::{CallbackError, JobFlow, Step, TaskCallbacks};
use serde_json::Value;
use tokio::sync::watch;

use super::faults::{FaultKind, FaultSet};

/// Chance that a launched runner's provision step dies before it returns.
const PROVISION_CRASH_RATE: f64 = 0.15;
/// Chance that one `SendTaskSuccess` of a switched-on kind is lost.
const LOST_CALLBACK_RATE: f64 = 0.08;
/// How often the GitHub driver arms the emulator's switches.
const GITHUB_TICK: Duration = Duration::from_millis(200);
/// REST requests answered between two bursts of one kind.
const CALLS_BETWEEN_BURSTS: u64 = 8;

/// What was injected, by fault kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally(Arc<Mutex<BTreeMap<FaultKind, u64>>>);

impl Tally {
    pub fn add(&self, kind: FaultKind, count: u64) {
        if count > 0 {
            *self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(kind)
                .or_default() += count;
        }
    }

    pub fn counts(&self) -> BTreeMap<FaultKind, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A seeded generator shared by the injectors.
fn shared_rng(seed: u64, stream: u64) -> Arc<Mutex<StdRng>> {
    Arc::new(Mutex::new(StdRng::seed_from_u64(
        seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )))
}

fn chance(rng: &Mutex<StdRng>, p: f64) -> bool {
    rng.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .random_bool(p.clamp(0.0, 1.0))
}

/// Re-registers the provision task so that, for some executions, the step launches its runner
/// and then dies before returning, as a Lambda killed after `RunInstances` would. Each
/// execution crashes at most once, so its retry finds the runner the crashed try launched.
pub(crate) fn crash_provision_steps(
    registry: &TaskRegistry,
    task_name: &str,
    flow: JobFlow,
    seed: u64,
    tally: Tally,
) {
    let rng = shared_rng(seed, 1);
    let crashed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    registry.register(task_name.to_owned(), move |request| {
        let flow = flow.clone();
        let rng = rng.clone();
        let crashed = crashed.clone();
        let tally = tally.clone();
        async move {
            let execution = request
                .input
                .get("execution")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let output = flow
                .run(Step::Provision, request.input)
                .await
                .map_err(|error| TaskFailure::new(error.error, error.cause))?;
            let first_crash = {
                let mut crashed = crashed.lock().unwrap_or_else(PoisonError::into_inner);
                !crashed.contains(&execution)
                    && chance(&rng, PROVISION_CRASH_RATE)
                    && crashed.insert(execution)
            };
            if first_crash {
                tally.add(FaultKind::ProvisionCrash, 1);
                return Err(TaskFailure::new(
                    "Lambda.Unknown",
                    "The provision function exited after its runner launched and before it \
                     returned (injected crash).",
                ));
            }
            Ok(output)
        }
    });
}

/// Which event a `SendTaskSuccess` carries, from its output.
fn callback_kind(output: &Value) -> Option<FaultKind> {
    if output.get("woken_by").is_some() {
        return Some(FaultKind::LostWakeups);
    }
    match output.get("status").and_then(Value::as_str) {
        Some("busy") => Some(FaultKind::LostWakeups),
        Some("in_progress" | "completed" | "gone") => Some(FaultKind::LostCompletionCallbacks),
        _ => None,
    }
}

/// Task callbacks that lose some `SendTaskSuccess` calls: the caller is told it went through
/// (as when the call's answer, not the call, is what arrives), the waiting task never hears.
#[derive(Debug)]
pub(crate) struct LossyCallbacks {
    inner: Arc<dyn TaskCallbacks>,
    faults: FaultSet,
    rng: Arc<Mutex<StdRng>>,
    armed: watch::Receiver<bool>,
    tally: Tally,
}

impl LossyCallbacks {
    pub fn new(
        inner: Arc<dyn TaskCallbacks>,
        faults: FaultSet,
        seed: u64,
        armed: watch::Receiver<bool>,
        tally: Tally,
    ) -> LossyCallbacks {
        LossyCallbacks {
            inner,
            faults,
            rng: shared_rng(seed, 2),
            armed,
            tally,
        }
    }
}

#[async_trait]
impl TaskCallbacks for LossyCallbacks {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        if *self.armed.borrow()
            && let Some(kind) = callback_kind(&output)
            && self.faults.contains(kind)
            && chance(&self.rng, LOST_CALLBACK_RATE)
        {
            self.tally.add(kind, 1);
            tracing::info!(fault = %kind, "lost a SendTaskSuccess (injected)");
            return Ok(());
        }
        self.inner.send_task_success(token, output).await
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        self.inner.send_task_failure(token, error, cause).await
    }
}

/// The emulator's fault switches, through its control API.
struct Switches {
    client: reqwest::Client,
    url: String,
    usage_url: String,
}

impl Switches {
    async fn get(&self) -> Option<Faults> {
        let answer = self.client.get(&self.url).send().await.ok()?;
        answer.json().await.ok()
    }

    /// REST requests the emulator answered (injected faults excluded).
    async fn requests_served(&self) -> Option<u64> {
        let answer = self.client.get(&self.usage_url).send().await.ok()?;
        let usage: runway_github_emulator::ApiUsage = answer.json().await.ok()?;
        Some(usage.requests)
    }

    async fn set(&self, faults: &Faults) -> bool {
        self.client
            .post(&self.url)
            .json(faults)
            .send()
            .await
            .is_ok_and(|answer| answer.status().is_success())
    }
}

/// Arms the emulator's fault switches in short bursts until `stop` turns true, then disarms
/// them; counts what the emulator consumed.
///
/// Every switch is consumed by an event (a REST call, a webhook of its action), never by the
/// clock: the first tick, before the burst is queued, arms one of each kind switched on, so a
/// campaign injects every kind however slowly a loaded machine runs it. Later ticks re-arm a
/// REST switch once its last burst was consumed and [`CALLS_BETWEEN_BURSTS`] requests were
/// answered since it was armed: bursts follow the traffic, so the one execution left at a
/// campaign's tail meets one now and then, not one on every retry.
pub(crate) async fn drive_github_faults(
    emulator_url: String,
    faults: FaultSet,
    jobs: usize,
    seed: u64,
    tally: Tally,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let base = emulator_url.trim_end_matches('/');
    let switches = Switches {
        client: reqwest::Client::new(),
        url: format!("{base}/_emulator/faults"),
        usage_url: format!("{base}/_emulator/usage"),
    };
    // Requests served when each REST switch was last armed.
    let mut server_errors_armed_at = 0_u64;
    let mut rate_limits_armed_at = 0_u64;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6769_7468_7562);
    // What was set at the last tick: the difference to what is left is what was injected.
    let mut armed = Faults::default();
    loop {
        let Some(left) = switches.get().await else {
            tokio::time::sleep(GITHUB_TICK).await;
            if *stop.borrow() {
                return;
            }
            continue;
        };
        count_consumed(&tally, &armed, &left);
        if *stop.borrow() {
            switches.set(&Faults::default()).await;
            return;
        }
        let first = ready.is_some();
        let served = switches.requests_served().await.unwrap_or(0);
        let quiet_since = |armed_at: u64| served.saturating_sub(armed_at) >= CALLS_BETWEEN_BURSTS;
        let mut next = left.clone();
        // A new burst only once the last one was answered: switches armed on top of unused
        // ones pile up while few calls come (the campaign's tail) into one long outage that
        // fails every call of whichever execution comes next, which is no burst.
        if faults.contains(FaultKind::Github5xx)
            && left.server_errors == 0
            && (first || (quiet_since(server_errors_armed_at) && rng.random_bool(0.25)))
        {
            next.server_errors += rng.random_range(1..=2);
            next.server_error_status = Some([500, 502, 503][rng.random_range(0..3)]);
            server_errors_armed_at = served;
        }
        if faults.contains(FaultKind::Github429)
            && left.rate_limits == 0
            && (first || (quiet_since(rate_limits_armed_at) && rng.random_bool(0.12)))
        {
            next.rate_limits += 1;
            rate_limits_armed_at = served;
        }
        if faults.contains(FaultKind::DuplicateWebhooks)
            && left.duplicate_webhooks == 0
            && (first || rng.random_bool(0.2))
        {
            next.duplicate_webhooks += 1;
        }
        // Lost `queued` webhooks only among the burst's (no job is queued after it); lost
        // `completed` webhooks from the start, one in twenty jobs, each drop waiting for a
        // job to finish, and again whenever the last one was consumed.
        if first && faults.contains(FaultKind::LostQueuedWebhooks) {
            next.drop_webhooks_by_action.insert("queued".to_owned(), 2);
        }
        if faults.contains(FaultKind::LostCompletedWebhooks) {
            let pending = next.drop_webhooks_by_action.get("completed").copied();
            if first {
                let drops = u32::try_from(jobs / 20).unwrap_or(u32::MAX).max(1);
                next.drop_webhooks_by_action
                    .insert("completed".to_owned(), drops);
            } else if pending.unwrap_or(0) == 0 && rng.random_bool(0.1) {
                next.drop_webhooks_by_action
                    .insert("completed".to_owned(), 1);
            }
        }
        armed = if switches.set(&next).await {
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            next
        } else {
            left
        };
        tokio::select! {
            _ = tokio::time::sleep(GITHUB_TICK) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Adds to the tally what the emulator consumed of the switches `armed` at the last tick.
fn count_consumed(tally: &Tally, armed: &Faults, left: &Faults) {
    let used = |armed: u32, left: u32| u64::from(armed.saturating_sub(left));
    tally.add(
        FaultKind::Github5xx,
        used(armed.server_errors, left.server_errors),
    );
    tally.add(
        FaultKind::Github429,
        used(armed.rate_limits, left.rate_limits),
    );
    tally.add(
        FaultKind::DuplicateWebhooks,
        used(armed.duplicate_webhooks, left.duplicate_webhooks),
    );
    for (action, kind) in [
        ("queued", FaultKind::LostQueuedWebhooks),
        ("completed", FaultKind::LostCompletedWebhooks),
    ] {
        let count = |faults: &Faults| {
            faults
                .drop_webhooks_by_action
                .get(action)
                .copied()
                .unwrap_or(0)
        };
        tally.add(kind, used(count(armed), count(left)));
    }
}

/// The fault proxy's rules for the AWS faults switched on.
pub(crate) fn aws_rules(faults: &FaultSet) -> Vec<Rule> {
    let mut rules = Vec::new();
    if faults.contains(FaultKind::Ec2Capacity) {
        rules.push(Rule::new(
            "ec2",
            "RunInstances",
            Fault::insufficient_instance_capacity(),
            Trigger::Probability(0.15),
        ));
    }
    if faults.contains(FaultKind::SsmThrottling) {
        // Hundreds of JIT configs at once against a limit of tens of writes a second.
        rules.push(Rule::new(
            "ssm",
            "PutParameter",
            Fault::ssm_throttling(),
            Trigger::Bursts {
                period: 10,
                burst: 4,
            },
        ));
    }
    if faults.contains(FaultKind::Ec2Throttling) {
        // EC2 throttles by token bucket: one call in twenty refused, in every stretch of
        // twenty calls (a probability left a small campaign without any).
        rules.push(Rule::new(
            "ec2",
            "*",
            Fault::ec2_request_limit_exceeded(),
            Trigger::Bursts {
                period: 20,
                burst: 1,
            },
        ));
    }
    rules
}

/// Which fault kind a proxy rule's injection counts as.
pub(crate) fn aws_kind(service: &str, code: &str) -> Option<FaultKind> {
    match (service, code) {
        ("ec2", "InsufficientInstanceCapacity") => Some(FaultKind::Ec2Capacity),
        ("ec2", "RequestLimitExceeded") => Some(FaultKind::Ec2Throttling),
        ("ssm", "ThrottlingException") => Some(FaultKind::SsmThrottling),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn callbacks_are_told_apart_by_what_they_carry() {
        let kind = |output: Value| callback_kind(&output);
        assert_eq!(
            kind(json!({"woken_by": "x", "reason": "r"})),
            Some(FaultKind::LostWakeups)
        );
        assert_eq!(
            kind(json!({"status": "busy"})),
            Some(FaultKind::LostWakeups)
        );
        for status in ["in_progress", "completed", "gone"] {
            assert_eq!(
                kind(json!({"status": status})),
                Some(FaultKind::LostCompletionCallbacks)
            );
        }
        assert_eq!(kind(json!({"other": 1})), None);
    }
}
