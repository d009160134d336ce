//! runway's operational metrics: how long jobs wait, how long runners live, how launches and
//! policies fare.
//!
//! The job flow records [`Sample`]s through a [`Metrics`] sink. On AWS the sink is [`Emf`]:
//! each sample is one CloudWatch embedded-metric-format line on standard output, which
//! CloudWatch Logs turns into metrics with no API call. Tests and `runway local` keep samples
//! in memory ([`Recorded`]); [`Discard`] drops them.
//!
//! Dimensions are bounded: a pool, an organisation, a market or a policy kind, never a
//! repository or a job id, so the number of metric series stays small whatever the load.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of a stack's metrics: `runway/<stack>`, so two stacks in one
/// account keep their figures apart.
pub fn namespace(stack: &str) -> String {
    format!("runway/{stack}")
}

/// What runway measures. Names are the CloudWatch metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// From the job's creation on GitHub to its admission into a pool slot.
    JobWaitSeconds,
    /// A job told to wait for a slot (each trip through the queue).
    SlotWaits,
    /// A job that found a ceiling (pool, organisation or repository) full: counted when its wait
    /// starts or turns to a ceiling, not at each re-check.
    CeilingHits,
    /// A job the throttle policy queued: counted when its wait starts or turns to the policy,
    /// not at each re-check.
    PolicyWaits,
    /// A job refused by the throttle policy.
    JobsRejected,
    /// A runner launched (dimensions: pool, market).
    RunnerLaunches,
    /// A launch that fell back from its first choice of market or instance type.
    LaunchFallbacks,
    /// A launch that failed.
    LaunchFailures,
    /// A runner's spot instance EC2 warned it is reclaiming (an interruption warning).
    SpotReclaims,
    /// From a runner's launch to its teardown.
    RunnerLifetimeSeconds,
    /// A runner torn down without ever taking a job (idle until its deadline, or lost).
    IdleRunnersTornDown,
    /// From a runner's launch to the start of its first job: its boot and registration, and
    /// any wait for a job after them (recorded at teardown, for runners that took one).
    RunnerBootSeconds,
    /// From the start of a runner's job to the runner leaving (recorded at teardown).
    JobRunSeconds,
    /// The part of a runner's life paid for without a job running on it: lifetime minus
    /// job run time (recorded at teardown).
    RunnerIdleSeconds,
    /// The time a policy (router or throttle) took to decide.
    PolicyDecisionMilliseconds,
    /// A policy decision that fell back to the built-in behaviour (trap, timeout, refusal).
    PolicyFallbacks,
    /// Jobs waiting for a slot in a pool, at a reaper sweep.
    QueueDepth,
    /// How long the oldest job waiting for a slot in a pool has waited, at a reaper sweep
    /// (0 when none waits).
    OldestWaitSeconds,
    /// Slots held in a pool, at a reaper sweep.
    SlotsInUse,
}

impl Metric {
    /// Every metric runway records.
    pub const ALL: [Metric; 19] = [
        Metric::JobWaitSeconds,
        Metric::SlotWaits,
        Metric::CeilingHits,
        Metric::PolicyWaits,
        Metric::JobsRejected,
        Metric::RunnerLaunches,
        Metric::LaunchFallbacks,
        Metric::LaunchFailures,
        Metric::SpotReclaims,
        Metric::RunnerLifetimeSeconds,
        Metric::IdleRunnersTornDown,
        Metric::RunnerBootSeconds,
        Metric::JobRunSeconds,
        Metric::RunnerIdleSeconds,
        Metric::PolicyDecisionMilliseconds,
        Metric::PolicyFallbacks,
        Metric::QueueDepth,
        Metric::OldestWaitSeconds,
        Metric::SlotsInUse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::JobWaitSeconds => "JobWaitSeconds",
            Metric::SlotWaits => "SlotWaits",
            Metric::CeilingHits => "CeilingHits",
            Metric::PolicyWaits => "PolicyWaits",
            Metric::JobsRejected => "JobsRejected",
            Metric::RunnerLaunches => "RunnerLaunches",
            Metric::LaunchFallbacks => "LaunchFallbacks",
            Metric::LaunchFailures => "LaunchFailures",
            Metric::SpotReclaims => "SpotReclaims",
            Metric::RunnerLifetimeSeconds => "RunnerLifetimeSeconds",
            Metric::IdleRunnersTornDown => "IdleRunnersTornDown",
            Metric::RunnerBootSeconds => "RunnerBootSeconds",
            Metric::JobRunSeconds => "JobRunSeconds",
            Metric::RunnerIdleSeconds => "RunnerIdleSeconds",
            Metric::PolicyDecisionMilliseconds => "PolicyDecisionMilliseconds",
            Metric::PolicyFallbacks => "PolicyFallbacks",
            Metric::QueueDepth => "QueueDepth",
            Metric::OldestWaitSeconds => "OldestWaitSeconds",
            Metric::SlotsInUse => "SlotsInUse",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::JobWaitSeconds
            | Metric::RunnerLifetimeSeconds
            | Metric::RunnerBootSeconds
            | Metric::JobRunSeconds
            | Metric::RunnerIdleSeconds
            | Metric::OldestWaitSeconds => Unit::Seconds,
            Metric::PolicyDecisionMilliseconds => Unit::Milliseconds,
            Metric::SlotWaits
            | Metric::CeilingHits
            | Metric::PolicyWaits
            | Metric::JobsRejected
            | Metric::RunnerLaunches
            | Metric::LaunchFallbacks
            | Metric::LaunchFailures
            | Metric::SpotReclaims
            | Metric::IdleRunnersTornDown
            | Metric::PolicyFallbacks
            | Metric::QueueDepth
            | Metric::SlotsInUse => Unit::Count,
        }
    }
}

/// CloudWatch units runway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Milliseconds,
    Count,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Count => "Count",
        }
    }
}

/// A bounded dimension a sample is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Pool,
    Organization,
    /// `spot` or `on-demand`.
    Market,
    /// `router` or `throttle`.
    Policy,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Pool => "Pool",
            Dimension::Organization => "Organization",
            Dimension::Market => "Market",
            Dimension::Policy => "Policy",
        }
    }
}

/// One measurement and what it is split by.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Metric,
    pub value: f64,
    pub dimensions: Vec<(Dimension, String)>,
    pub at: DateTime<Utc>,
}

impl Sample {
    /// A count of one.
    pub fn count(metric: Metric, at: DateTime<Utc>) -> Sample {
        Sample::new(metric, 1.0, at)
    }

    pub fn new(metric: Metric, value: f64, at: DateTime<Utc>) -> Sample {
        Sample {
            metric,
            value,
            dimensions: Vec::new(),
            at,
        }
    }

    /// Splits the sample by `dimension`; an empty value is left out (CloudWatch refuses it).
    pub fn by(mut self, dimension: Dimension, value: impl Into<String>) -> Sample {
        let value = value.into();
        if !value.is_empty() {
            self.dimensions
                .retain(|(existing, _)| *existing != dimension);
            self.dimensions.push((dimension, value));
        }
        self
    }

    /// The sample as one embedded-metric-format object: split by its dimensions, and also
    /// without any (the fleet-wide series that alarms watch).
    pub fn to_emf(&self, namespace: &str) -> Value {
        let mut record = Map::new();
        let names: Vec<&str> = self
            .dimensions
            .iter()
            .map(|(dimension, _)| dimension.name())
            .collect();
        let sets: Vec<Vec<&str>> = if names.is_empty() {
            vec![names]
        } else {
            vec![names, Vec::new()]
        };
        record.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": self.at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": sets,
                    "Metrics": [{"Name": self.metric.name(), "Unit": self.metric.unit().name()}],
                }],
            }),
        );
        for (dimension, value) in &self.dimensions {
            record.insert(dimension.name().to_owned(), Value::String(value.clone()));
        }
        record.insert(self.metric.name().to_owned(), json!(self.value));
        Value::Object(record)
    }
}

/// Where samples go. Recording never fails the step that measured: a sink that cannot write
/// drops the sample.
pub trait Metrics: Send + Sync + fmt::Debug {
    fn record(&self, sample: Sample);
}

/// Drops every sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Metrics for Discard {
    fn record(&self, _sample: Sample) {}
}

/// A sink that drops every sample, shared.
pub fn discard() -> Arc<dyn Metrics> {
    Arc::new(Discard)
}

/// Writes each sample as one embedded-metric-format line (CloudWatch Logs reads standard
/// output of a Lambda function).
pub struct Emf {
    namespace: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Emf {
    /// Lines on standard output, in `namespace` (see [`namespace`]).
    pub fn stdout(namespace: impl Into<String>) -> Emf {
        Emf::to(namespace, Box::new(std::io::stdout()))
    }

    pub fn to(namespace: impl Into<String>, out: Box<dyn Write + Send>) -> Emf {
        Emf {
            namespace: namespace.into(),
            out: Mutex::new(out),
        }
    }
}

impl fmt::Debug for Emf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emf")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Metrics for Emf {
    fn record(&self, sample: Sample) {
        let mut line = sample.to_emf(&self.namespace).to_string();
        line.push('\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // One write per line, so lines of concurrent steps never interleave.
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}

/// How many samples [`Recorded::new`] keeps.
pub const RECORDED_SAMPLES: usize = 10_000;

/// Keeps the latest samples in memory, in order; clones share them.
#[derive(Debug, Clone)]
pub struct Recorded {
    samples: Arc<Mutex<VecDeque<Sample>>>,
    keep: usize,
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded::keeping(RECORDED_SAMPLES)
    }
}

impl Recorded {
    /// Keeps the latest [`RECORDED_SAMPLES`].
    pub fn new() -> Recorded {
        Recorded::default()
    }

    /// Keeps the latest `keep` samples (at least one): a long-running process stays bounded.
    pub fn keeping(keep: usize) -> Recorded {
        Recorded {
            samples: Arc::default(),
            keep: keep.max(1),
        }
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The samples of `metric`.
    pub fn of(&self, metric: Metric) -> Vec<Sample> {
        self.samples()
            .into_iter()
            .filter(|sample| sample.metric == metric)
            .collect()
    }
}

impl Metrics for Recorded {
    fn record(&self, sample: Sample) {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if samples.len() >= self.keep {
            samples.pop_front();
        }
        samples.push_back(sample);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_one_embedded_metric_format_object() {
        let at = DateTime::from_timestamp_millis(1_764_806_400_123).unwrap();
        let sample = Sample::new(Metric::JobWaitSeconds, 12.5, at)
            .by(Dimension::Pool, "linux")
            .by(Dimension::Organization, "octo-org");
        assert_eq!(
            sample.to_emf("runway/ci"),
            json!({
                "_aws": {
                    "Timestamp": 1_764_806_400_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "runway/ci",
                        "Dimensions": [["Pool", "Organization"], []],
                        "Metrics": [{"Name": "JobWaitSeconds", "Unit": "Seconds"}],
                    }],
                },
                "Pool": "linux",
                "Organization": "octo-org",
                "JobWaitSeconds": 12.5,
            })
        );
    }

    #[test]
    fn an_empty_dimension_is_left_out_and_a_repeated_one_replaced() {
        let at = Utc::now();
        let sample = Sample::count(Metric::RunnerLaunches, at)
            .by(Dimension::Pool, "linux")
            .by(Dimension::Market, "")
            .by(Dimension::Pool, "gpu");
        assert_eq!(sample.dimensions, vec![(Dimension::Pool, "gpu".to_owned())]);
        assert_eq!(
            sample.to_emf("runway/ci")["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Pool"], []])
        );
        assert_eq!(sample.to_emf("runway/ci")["RunnerLaunches"], json!(1.0));
    }

    #[test]
    fn recorded_keeps_only_the_latest() {
        let recorded = Recorded::keeping(2);
        let at = Utc::now();
        for value in [1.0, 2.0, 3.0] {
            recorded.record(Sample::new(Metric::QueueDepth, value, at));
        }
        let kept: Vec<f64> = recorded.samples().iter().map(|s| s.value).collect();
        assert_eq!(kept, [2.0, 3.0]);
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn emf_writes_one_line_per_sample() {
        let out = Shared::default();
        let emf = Emf::to(namespace("ci"), Box::new(out.clone()));
        let at = Utc::now();
        emf.record(Sample::count(Metric::SlotWaits, at).by(Dimension::Pool, "linux"));
        emf.record(
            Sample::new(Metric::PolicyDecisionMilliseconds, 3.0, at)
                .by(Dimension::Policy, "router"),
        );
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["SlotWaits"], json!(1.0));
        assert_eq!(lines[1]["Policy"], json!("router"));
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            json!("Milliseconds")
        );
    }
}
