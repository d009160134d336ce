//! `runway bench --provider ec2|ecs|eks|lambda`: webhook → launch with a real provider, on an AWS API
//! on this machine (moto), and for EKS runway's Kubernetes emulator.
//!
//! The same path as [`crate::bench`]'s webhook → launch figure (signed webhook, intake,
//! execution, Route, Admit, JIT config, Provision), with the pool's real EC2 or ECS provider
//! behind it, so the figure also says what the provider's own calls cost: writing the JIT
//! config to SSM and `RunInstances` or `RunTask` (and, for ECS, finding the pool's task
//! definition on the first launch); for Lambda, the function's timeout (once), the JIT config
//! and the runner's record written to SSM and the asynchronous `Invoke`; for EKS, `DescribeCluster` (once, then remembered) and
//! creating the runner's Secret and Pod over HTTPS. Nothing boots on moto, so each runner
//! starts in this process the moment its launch is asked for, as an instance, task or pod
//! that booted at once would (the emulator's pods run `true`, so no second runner takes the
//! JIT config), and every execution runs to its end: teardown terminates what was launched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runway_providers::{
    LaunchRequest, Launched, OwnedRunner, Provider, ProviderError, ProviderKind, Terminated,
};
use serde::Serialize;

use crate::bench::{
    BenchError, ExecutionTimes, InProcessRunners, LatencyReport, Progress, latency_report,
    queue_bench_job, report_progress, unfinished, wait_until_idle_saying,
};
use crate::system::{LocalError, LocalSystem, Supplied};
use crate::{Listen, LocalConfig};

const POOL: &str = "bench";
/// Launches before the samples, so connections, caches and the task definition are warm.
const WARM_UP_JOBS: usize = 3;

/// The provider whose launches are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchProvider {
    Ec2,
    Ecs,
    Eks,
    Lambda,
}

impl BenchProvider {
    fn pool_settings(self) -> &'static str {
        match self {
            // An AMI moto knows.
            BenchProvider::Ec2 => {
                "image = \"ami-12c6146b\"\ninstance_types = [\"m5.large\"]\n\
                 provider = { kind = \"ec2\", capacity = \"spot-then-on-demand\" }"
            }
            BenchProvider::Ecs => {
                "image = \"ghcr.io/actions/actions-runner:latest\"\nmarket = \"spot\"\n\
                 provider = { kind = \"ecs\", cpu = 1024, memory = 2048 }"
            }
            // `runway local` makes the cluster in moto and serves its Kubernetes API.
            BenchProvider::Eks => {
                "image = \"ghcr.io/actions/actions-runner:latest\"\n\
                 provider = { kind = \"eks\", cluster = \"runway-bench\", \
                 namespace = \"runners\", cpu = \"1\", memory = \"2Gi\" }"
            }
            // `runway local` makes the stack's runner function in moto.
            BenchProvider::Lambda => "provider = { kind = \"lambda\" }",
        }
    }

    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            BenchProvider::Ec2 => "EC2",
            BenchProvider::Ecs => "ECS",
            BenchProvider::Eks => "EKS",
            BenchProvider::Lambda => "Lambda",
        }
    }
}

impl std::str::FromStr for BenchProvider {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ec2" => Ok(BenchProvider::Ec2),
            "ecs" => Ok(BenchProvider::Ecs),
            "eks" => Ok(BenchProvider::Eks),
            "lambda" => Ok(BenchProvider::Lambda),
            other => Err(format!(
                "{other:?} is not a provider the bench can time: ec2, ecs, eks or lambda"
            )),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct ProviderBenchOptions {
    pub provider: BenchProvider,
    /// Jobs timed one after another.
    pub samples: usize,
    /// The AWS API: moto on this machine (a loopback URL).
    pub aws_endpoint: String,
    /// Longest wait for the runs to finish.
    pub timeout: Duration,
    /// Where progress lines go while the bench runs (a terminal); none: quiet.
    pub progress: Option<Progress>,
}

/// Webhook → launch call and launch call → launched, jobs one after another.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderBenchReport {
    pub provider: BenchProvider,
    /// From the emulator queueing a job to the job flow calling the provider's `launch`.
    pub webhook_to_launch_call: LatencyReport,
    /// From that call to the provider's answer (its SSM and EC2 or ECS calls, or its
    /// Kubernetes calls).
    pub launch_call_to_launched: LatencyReport,
    /// From the emulator queueing a job to the provider's answer.
    pub webhook_to_launched: LatencyReport,
    /// Runners the provider still listed as its own once every execution had ended
    /// (instances, tasks or pods that teardown did not stop): 0.
    pub runners_left: usize,
}

impl std::fmt::Display for ProviderBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let provider = self.provider.label();
        for (what, report) in [
            ("webhook → launch call", &self.webhook_to_launch_call),
            ("launch call → launched", &self.launch_call_to_launched),
            ("webhook → launched", &self.webhook_to_launched),
        ] {
            writeln!(
                f,
                "{provider} {what}, {} jobs one after another: p50 {:.2} ms, p95 {:.2} ms, \
                 p99 {:.2} ms, max {:.2} ms",
                report.samples, report.p50_ms, report.p95_ms, report.p99_ms, report.max_ms
            )?;
        }
        writeln!(
            f,
            "{provider} runners left running after the last execution ended: {}",
            self.runners_left
        )
    }
}

/// The real provider, with a runner started in this process at each launch and the time each
/// launch returned noted.
#[derive(Debug)]
struct TimedLaunches {
    inner: Arc<dyn Provider>,
    runners: Arc<InProcessRunners>,
    returned: Arc<ExecutionTimes>,
}

#[async_trait]
impl Provider for TimedLaunches {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        // Noted as asked for, and the runner started, before the provider's calls: the
        // runner stands for an instance or task that booted at once.
        self.runners.launch(request.clone()).await?;
        let launched = self.inner.launch(request.clone()).await;
        self.returned.note(&request.execution);
        if launched.is_err() {
            let _ = self
                .runners
                .terminate(&request.execution, &request.runner_name)
                .await;
        }
        launched
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let _ = self.runners.terminate(execution, runner_name).await;
        self.inner.terminate(execution, runner_name).await
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.inner.owned().await
    }

    async fn owned_by(&self, execution: &str) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.inner.owned_by(execution).await
    }
}

/// The bench's configuration: one pool of `provider`, the in-memory store (the figure is the
/// job machine's and the provider's, not DynamoDB's), the emulator, no policies.
pub fn provider_bench_config(provider: BenchProvider) -> Result<LocalConfig, BenchError> {
    let text = format!(
        r#"
stack = "runway-bench"

[github]
mode = "emulator"
repositories = ["octo-org/app"]
organizations = ["octo-org"]

[store]
kind = "memory"

[[pools]]
name = "{POOL}"
labels = ["self-hosted", "linux", "x64"]
max_running = 100
boot_timeout_seconds = 120
idle_timeout_seconds = 60
{settings}
"#,
        settings = provider.pool_settings()
    );
    let mut config = LocalConfig::from_toml_str(&text).map_err(LocalError::from)?;
    config.listen = Listen::any_free_port();
    Ok(config)
}

/// Times `options.samples` launches through the pool's real provider.
pub async fn measure(options: &ProviderBenchOptions) -> Result<ProviderBenchReport, BenchError> {
    if !crate::chaos::local_endpoint(&options.aws_endpoint) {
        return Err(BenchError::Local(crate::system::setup(format!(
            "{} is not an AWS API on this machine: the provider bench launches hundreds of \
             runners, so it runs only against moto on 127.0.0.1",
            options.aws_endpoint
        ))));
    }
    let config = provider_bench_config(options.provider)?;
    // moto takes any credentials; the region is moto's default unless one is set.
    let region = std::env::var("AWS_REGION").ok();
    let aws = crate::chaos::sdk_config(&options.aws_endpoint, region.as_deref()).await;
    let runners = Arc::new(InProcessRunners::for_pool(None, POOL));
    let launch_returns = Arc::new(ExecutionTimes::default());
    let supplied = Supplied {
        aws: Some(aws),
        wrap_providers: Some(Box::new({
            let runners = runners.clone();
            let launch_returns = launch_returns.clone();
            move |_pool: &str, inner: Arc<dyn Provider>| -> Arc<dyn Provider> {
                Arc::new(TimedLaunches {
                    inner,
                    runners: runners.clone(),
                    returned: launch_returns.clone(),
                })
            }
        })),
        // A pod's runner is the one started in this process at launch.
        pod_command: Some(vec!["true".to_owned()]),
        ..Supplied::default()
    };
    let system = LocalSystem::start_with(config, supplied).await?;
    runners.set_url(
        system
            .emulator()
            .map(|emulator| emulator.base_url().to_owned()),
    );
    let wait = Duration::from_secs(60);
    let (mut to_call, mut to_return, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_line = None;
    for sample in 0..WARM_UP_JOBS + options.samples {
        report_progress(options.progress.as_ref(), &mut last_line, || {
            format!(
                "webhook → launched: {} of {} jobs",
                sample.saturating_sub(WARM_UP_JOBS),
                options.samples
            )
        });
        let queued = Instant::now();
        let job_id = queue_bench_job(&system)?;
        let called =
            runners
                .wait_for_launch(job_id, wait)
                .await
                .ok_or(BenchError::NeverLaunched {
                    job_id,
                    seconds: wait.as_secs(),
                })?;
        let returned =
            launch_returns
                .wait_for_job(job_id, wait)
                .await
                .ok_or(BenchError::NeverLaunched {
                    job_id,
                    seconds: wait.as_secs(),
                })?;
        if sample >= WARM_UP_JOBS {
            to_call.push(called.saturating_duration_since(queued));
            to_return.push(returned.saturating_duration_since(called));
            total.push(returned.saturating_duration_since(queued));
        }
    }
    let finished = wait_until_idle_saying(
        &system,
        options.timeout,
        options.progress.as_ref(),
        "finishing",
    )
    .await;
    let (left, waiting) = unfinished(&system);
    let runners_left = match system.providers().get(POOL) {
        Some(provider) => provider.owned().await.map_err(|error| {
            BenchError::Local(crate::system::setup(format!(
                "the bench could not list what its provider still runs: {error}"
            )))
        })?,
        None => Vec::new(),
    }
    .len();
    system.shutdown().await;
    if !finished {
        return Err(BenchError::Unfinished {
            jobs: WARM_UP_JOBS + options.samples,
            left,
            seconds: options.timeout.as_secs(),
            waiting,
        });
    }
    Ok(ProviderBenchReport {
        provider: options.provider,
        webhook_to_launch_call: latency_report(to_call),
        launch_call_to_launched: latency_report(to_return),
        webhook_to_launched: latency_report(total),
        runners_left,
    })
}
