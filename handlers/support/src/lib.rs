//! What every runway Lambda shares: JSON logs ([`init_tracing`]), the entry points
//! ([`Handler`]), the loop of a step function ([`run_step`]: one [`handle`] per invocation,
//! its GitHub calls bounded by the invocation's deadline) and the reap function
//! ([`reaper`]). Everything they run is built by `runway_setup` from the function's
//! environment; this crate and the executable (`handlers/lambda`) are the only places that
//! know of Lambda.
//!
//! runway ships one Lambda executable; each function's `Handler` setting names its entry
//! point, and a step's entry point is one line: `run_step(Step::Route)`.

mod handler;
pub mod reaper;
pub mod runner_cache;

use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use runway_jobflow::{JobFlow, Step, StepError};
use serde_json::Value;

pub use handler::{HANDLER_ENV, Handler, UnknownHandler};
// What the functions are built from, for the executable and the tests.
pub use runway_setup::*;

/// JSON log lines on stdout, filtered by `RUST_LOG` (default `info`). Lambda adds the time.
/// With active tracing (Lambda sets `AWS_XRAY_DAEMON_ADDRESS`), each call to GitHub, an AWS
/// service or a policy is also an X-Ray subsegment of the invocation's trace.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_target(false)
        .without_time()
        .with_filter(filter);
    let (xray, unreachable) = match runway_xray::XRayLayer::from_env() {
        Ok(layer) => (layer.map(runway_xray::XRayLayer::filtered), None),
        Err(error) => (None, Some(error)),
    };
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(xray)
        .try_init();
    if let Some(error) = unreachable {
        tracing::warn!(%error, "X-Ray subsegments are off");
    }
}

/// The Lambda error for a step failure: Step Functions matches `Retry`/`Catch` on the
/// function's error type, so it is the step error's name (`Runway.Transient`, ...).
pub fn diagnostic(error: StepError) -> Diagnostic {
    Diagnostic {
        error_type: error.error,
        error_message: error.cause,
    }
}

/// GitHub calls end this long before the invocation's deadline, leaving time to report.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The deadline of the GitHub calls of an invocation whose own deadline is `deadline_ms`
/// (Unix milliseconds, as Lambda gives it): [`DEADLINE_MARGIN`] earlier.
pub fn github_deadline(deadline_ms: u64) -> DateTime<Utc> {
    let margin = chrono::Duration::from_std(DEADLINE_MARGIN).unwrap_or(chrono::Duration::zero());
    i64::try_from(deadline_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or(DateTime::<Utc>::MAX_UTC, |deadline| deadline - margin)
}

/// Runs `step` on one invocation's payload (the Task state's Parameters, or the Payload of
/// `lambda:invoke.waitForTaskToken`). Its GitHub calls, retries and rate-limit waits included,
/// end [`DEADLINE_MARGIN`] before the invocation's deadline: a GitHub that keeps failing makes
/// the step fail with a retryable error the state machine retries, instead of a function
/// killed by its timeout (`Lambda.ClientExecutionTimeoutException`, retried with the step's
/// work lost).
pub async fn handle(
    flow: &JobFlow,
    step: Step,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    if is_doctor_event(&event.payload) {
        return Ok(doctor_answer(Handler::Step(step)));
    }
    let deadline = github_deadline(event.context.deadline);
    // The Provision function also keeps the warm pools, on a schedule: the keeper launches
    // and retires runners, which is exactly what Provision may do.
    if step == Step::Provision && is_keep_warm_event(&event.payload) {
        let pass = runway_github::with_call_deadline(deadline, flow.keep_warm()).await;
        return Ok(pass.to_value());
    }
    runway_github::with_call_deadline(deadline, flow.run(step, event.payload))
        .await
        .map_err(diagnostic)
}

/// The schedule's event for the warm-pool keeper: `{"runway": "keep-warm"}`.
pub fn is_keep_warm_event(payload: &Value) -> bool {
    payload.get("runway").and_then(Value::as_str) == Some(KEEP_WARM_EVENT)
}

/// What the warm-pool schedule sends the Provision function (`template.yaml`).
pub const KEEP_WARM_EVENT: &str = "keep-warm";

/// `runway doctor`'s event, sent to every function of a stack: `{"runway": "doctor"}`.
pub fn is_doctor_event(payload: &Value) -> bool {
    payload.get("runway").and_then(Value::as_str) == Some(DOCTOR_EVENT)
}

/// What `runway doctor` sends to check that a function starts.
pub const DOCTOR_EVENT: &str = "doctor";

/// The answer to [`DOCTOR_EVENT`]: the function got this far, so its settings were read and
/// its clients built; nothing else is done. The version tells which build the stack runs.
pub fn doctor_answer(handler: Handler) -> Value {
    serde_json::json!({
        "runway": DOCTOR_EVENT,
        "handler": handler.name(),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// The whole life of a step's Lambda: logs, settings, the job flow, then one [`handle`] per
/// invocation. A setup failure is returned (the runtime reports it as an init error).
pub async fn run_step(step: Step) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = StackSettings::from_env()?;
    let aws = load_aws_config().await;
    let flow = build_flow(&settings, &aws).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let flow = flow.clone();
        async move { handle(&flow, step, event).await }
    }))
    .await
}
