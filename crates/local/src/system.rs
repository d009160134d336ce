//! [`LocalSystem`]: every part of runway, wired together in this process.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runway_asl::{
    ExecutionDescription, ExecutionEvent, ExecutionStatus, StepFunctions, TaskRegistry,
};
use runway_clock::{SharedClock, SystemClock};
use runway_github::{AppCredentials, Credentials, GitHub, RestGitHub, RestGitHubOptions, Secret};
use runway_github_emulator::{
    Emulator, EmulatorConfig, EmulatorError, EmulatorHandle, WebhookTarget,
};
use runway_jobflow::{Deps, JobFlow, TaskCallbacks};
use runway_policy_host::{
    EngineConfig, InstanceReuse, PolicyBounds, PolicyEngine, RouterPolicy, ThrottlePolicy,
};
use runway_providers::{Ec2Provider, LocalProvider, Provider};
use runway_store::{DynamoStore, MemoryStore, Store};
use runway_webhook::{Intake, IntakeConfig, JobFilter, WebhookSecrets};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{
    AwsSettings, ConfigError, Ec2Settings, GitHubConnection, LocalConfig, LocalRunners,
    ProviderSettings, StoreConfig,
};
use crate::console::Console;
use crate::starter::SfnStarter;

/// The job state machine, built in so a local runway works from any directory.
pub const JOB_STATE_MACHINE: &str = include_str!("../../../statemachines/job.asl.json");
/// The name the job machine is registered under.
pub const JOB_MACHINE_NAME: &str = "job";
/// Task functions are registered as `{TASK_PREFIX}{step}` (`runway-route`, …).
pub const TASK_PREFIX: &str = "runway-";

/// Webhook deliveries the emulator keeps during a replay (it reads none of them back).
const REPLAY_DELIVERIES_KEPT: usize = 1_000;

/// Why a local runway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "cannot listen on {addr} for the {what}: {source}; is another runway local running? \
         Pick another address (port 0 takes any free port)"
    )]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the GitHub emulator did not start: {0}")]
    Emulator(#[from] EmulatorError),
    #[error("{0}")]
    Setup(String),
    #[error("the {what} stopped: {message}")]
    Stopped { what: &'static str, message: String },
}

pub(crate) fn setup(message: impl Into<String>) -> LocalError {
    LocalError::Setup(message.into())
}

/// Where the webhook secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `$RUNWAY_WEBHOOK_SECRET`.
    Environment,
    /// The configuration's `[github] webhook_secret`.
    Config,
    /// Made up at start (print it so GitHub can be given it).
    Generated,
}

/// One pool as it runs, for banners and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSummary {
    pub name: String,
    pub labels: Vec<String>,
    pub provider: runway_providers::ProviderKind,
    pub max_running: u32,
}

/// Wraps the callbacks the job flow completes waiting tasks with (`runway chaos` loses some).
pub type CallbacksWrapper =
    Box<dyn FnOnce(Arc<dyn TaskCallbacks>) -> Arc<dyn TaskCallbacks> + Send>;

/// Put around a pool's configured provider: given the pool's name and its provider.
pub type ProviderWrapper = Box<dyn Fn(&str, Arc<dyn Provider>) -> Arc<dyn Provider> + Send>;

/// Parts of a [`LocalSystem`] built by the caller rather than from its configuration.
#[derive(Default)]
pub struct Supplied {
    /// AWS settings for the DynamoDB store and EC2 pools; the standard AWS environment otherwise.
    pub aws: Option<aws_config::SdkConfig>,
    /// Runner providers by pool name, in place of the pools' configured providers.
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Put around the engine's own task callbacks before the job flow gets them.
    pub wrap_callbacks: Option<CallbacksWrapper>,
    /// Put around each pool's configured provider (by pool name) before the job flow gets it.
    pub wrap_providers: Option<ProviderWrapper>,
    /// The GitHub runway talks to, in place of the configured connection (no emulator is
    /// started): e.g. another local runway's emulator, as two stacks share one GitHub.
    pub github: Option<Arc<dyn GitHub>>,
    /// The clock every part reads (wall-clock time otherwise): `runway replay` runs on a
    /// [`runway_clock::VirtualClock`] in a runtime with paused time.
    pub clock: Option<SharedClock>,
    /// The job flow's GitHub client, the emulator's webhooks and its runners' protocol go
    /// through in-process calls, not loopback sockets. Needed on virtual time: while a task
    /// waits on a socket the paused runtime may jump the clock to its next timer.
    pub in_process: bool,
    /// Also receives every metric sample the job flow records (they are kept for the
    /// console either way, the latest few thousand).
    pub metrics: Option<Arc<dyn runway_jobflow::metrics::Metrics>>,
    /// What the pods of EKS pools run, followed by `--jitconfig-file <the mounted secret>`
    /// (this binary's `runway runner-sim` otherwise).
    pub pod_command: Option<Vec<String>>,
}

impl std::fmt::Debug for Supplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supplied")
            .field("aws", &self.aws.is_some())
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("wrap_callbacks", &self.wrap_callbacks.is_some())
            .field("wrap_providers", &self.wrap_providers.is_some())
            .field("github", &self.github.is_some())
            .field("clock", &self.clock)
            .field("in_process", &self.in_process)
            .field("metrics", &self.metrics.is_some())
            .field("pod_command", &self.pod_command)
            .finish()
    }
}

/// runway on this machine: the GitHub emulator (or a real GitHub App), the webhook intake,
/// the Step Functions API over the local engine running `statemachines/job.asl.json`, the job
/// flow with its store, providers and policies.
/// How often `runway local` runs the warm-pool keeper.
pub const WARM_KEEPER_EVERY: Duration = Duration::from_secs(2);

pub struct LocalSystem {
    metrics: runway_jobflow::metrics::Recorded,
    github: Arc<dyn GitHub>,
    emulator: Option<EmulatorHandle>,
    /// The Kubernetes API of EKS pools.
    kube: Option<runway_kube_emulator::KubeEmulatorHandle>,
    service: StepFunctions,
    flow: JobFlow,
    store: Arc<dyn Store>,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    secret: String,
    secret_source: SecretSource,
    webhook_url: String,
    /// `http://ADDR/setup?token=...`, with the emulator.
    setup_url: Option<String>,
    sfn_url: String,
    console_url: String,
    machine_arn: String,
    pools: Vec<PoolSummary>,
    router: Option<RouterPolicy>,
    throttle: Option<ThrottlePolicy>,
    notes: Vec<String>,
    stop: watch::Sender<bool>,
    /// The first server that stopped by itself, and why.
    failures: watch::Sender<Option<(&'static str, String)>>,
    servers: JoinSet<()>,
    /// Where local runners that name no `log_dir` keep their output; removed with the system.
    _runner_log_dir: tempfile::TempDir,
}

impl std::fmt::Debug for LocalSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSystem")
            .field("webhook_url", &self.webhook_url)
            .field("sfn_url", &self.sfn_url)
            .field("emulator", &self.emulator)
            .field("pools", &self.pools)
            .finish_non_exhaustive()
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, LocalError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| LocalError::Bind { what, addr, source })
}

fn local_addr(
    what: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, LocalError> {
    listener
        .local_addr()
        .map_err(|source| LocalError::Bind { what, addr, source })
}

impl LocalSystem {
    /// Starts everything `config` asks for. AWS clients (DynamoDB store, EC2 pools) use the
    /// configuration's `[aws]` settings and the standard AWS environment.
    pub async fn start(config: LocalConfig) -> Result<LocalSystem, LocalError> {
        LocalSystem::start_with_aws(config, None).await
    }

    /// As [`LocalSystem::start`], with AWS clients built from `aws` when given.
    pub async fn start_with_aws(
        config: LocalConfig,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<LocalSystem, LocalError> {
        LocalSystem::start_with(
            config,
            Supplied {
                aws,
                ..Supplied::default()
            },
        )
        .await
    }

    /// As [`LocalSystem::start`], with parts the caller built itself in place of the ones the
    /// configuration describes.
    pub async fn start_with(
        config: LocalConfig,
        supplied: Supplied,
    ) -> Result<LocalSystem, LocalError> {
        let Supplied {
            aws,
            providers: mut supplied_providers,
            wrap_callbacks,
            wrap_providers,
            github: supplied_github,
            clock: supplied_clock,
            in_process,
            metrics: metrics_tap,
            pod_command,
        } = supplied;
        if let Some(pool) = supplied_providers
            .keys()
            .find(|name| !config.pools().any(|(pool, _)| &pool.name == *name))
        {
            return Err(setup(format!(
                "a provider was supplied for pool {pool}, which the configuration does not have"
            )));
        }
        let clock = supplied_clock.unwrap_or_else(SystemClock::shared);
        let mut notes = Vec::new();
        let (secret, secret_source) = webhook_secret(&config);

        let webhook_listener = bind("webhook intake", config.listen.webhook).await?;
        let webhook_addr = local_addr("webhook intake", &webhook_listener, config.listen.webhook)?;
        let webhook_url = format!("http://{webhook_addr}{}", runway_webhook::WEBHOOK_PATH);
        let sfn_listener = bind("Step Functions API", config.listen.sfn).await?;
        let sfn_url = format!(
            "http://{}",
            local_addr("Step Functions API", &sfn_listener, config.listen.sfn)?
        );

        let (emulator, github) = match supplied_github {
            Some(github) => (None, github),
            None => connect_github(&config, &webhook_url, &secret, &clock, in_process).await?,
        };
        // The setup page moves runway to the App it makes, without a restart.
        let switchable = runway_github::SwitchableGitHub::new(github);
        let github: Arc<dyn GitHub> = Arc::new(switchable.clone());
        let flow_github = github.clone();

        let needs_aws = matches!(config.store, StoreConfig::Dynamodb { .. })
            || config.pools().any(|(_, provider)| {
                matches!(
                    provider,
                    ProviderSettings::Ec2(_)
                        | ProviderSettings::Ecs(_)
                        | ProviderSettings::Eks(_)
                        | ProviderSettings::Lambda(_)
                )
            });
        let aws = match (aws, needs_aws) {
            (Some(aws), _) => Some(aws),
            (None, true) => Some(load_aws(&config.aws).await),
            (None, false) => None,
        };
        let store = build_store(&config.store, aws.as_ref(), &clock).await?;

        let runner_url = emulator.as_ref().map(|e| e.base_url().to_owned());
        // EC2 pools boot stock images: their runner cache, made and filled once for all.
        let has_ec2_pools = config
            .pools()
            .any(|(_, provider)| matches!(provider, ProviderSettings::Ec2(_)));
        let runner_cache = match (&aws, has_ec2_pools) {
            (Some(aws), true) => Some(
                crate::runner_cache::fill(&config.stack, aws, emulator.as_ref(), &clock).await?,
            ),
            _ => None,
        };
        let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        // Built (and the cluster made) once, for the first ECS pool.
        let mut ecs_providers: Option<BTreeMap<String, runway_providers::EcsProvider>> = None;
        // Built (clusters made, the Kubernetes emulator started) once, for the first EKS pool.
        let mut eks: Option<crate::eks::LocalEks> = None;
        // Built (functions made on moto) once, for the first Lambda pool.
        let mut lambda_providers: Option<BTreeMap<String, runway_providers::LambdaProvider>> = None;
        // Local runners' output, which the console serves (`runway logs`).
        let runner_log_dir = tempfile::Builder::new()
            .prefix("runway-runner-logs-")
            .tempdir()
            .map_err(|error| {
                setup(format!(
                    "cannot make a directory for the local runners' logs: {error}"
                ))
            })?;
        let mut runner_logs = runway_runner_logs::FileRunnerLogs::new(runner_log_dir.path());
        for (pool, settings) in config.pools() {
            if let Some(provider) = supplied_providers.remove(&pool.name) {
                providers.insert(pool.name.clone(), provider);
                continue;
            }
            let provider: Arc<dyn Provider> = match settings {
                ProviderSettings::Local(runners) => {
                    let provider = local_provider(
                        &config,
                        runners,
                        runner_url.clone(),
                        &clock,
                        runner_log_dir.path(),
                    )?;
                    if let Some(dir) = provider.log_dir() {
                        runner_logs.add_dir(dir);
                    }
                    Arc::new(provider)
                }
                ProviderSettings::Ec2(settings) => {
                    let aws = aws.as_ref().ok_or_else(|| {
                        setup("the EC2 provider needs AWS settings, and none were loaded")
                    })?;
                    Arc::new(ec2_provider(
                        &config,
                        &pool.name,
                        settings,
                        aws,
                        &clock,
                        runner_cache.as_ref(),
                    )?)
                }
                ProviderSettings::Ecs(_) => {
                    let aws = aws.as_ref().ok_or_else(|| {
                        setup("the ECS provider needs AWS settings, and none were loaded")
                    })?;
                    let built = match &mut ecs_providers {
                        Some(built) => built,
                        None => {
                            ecs_providers.insert(crate::ecs::providers(&config, aws, &clock).await?)
                        }
                    };
                    let provider = built
                        .remove(&pool.name)
                        .ok_or_else(|| setup(format!("pool {} has no ECS provider", pool.name)))?;
                    Arc::new(provider)
                }
                ProviderSettings::Eks(_) => {
                    let aws = aws.as_ref().ok_or_else(|| {
                        setup("the EKS provider needs AWS settings, and none were loaded")
                    })?;
                    if eks.is_none() {
                        eks = crate::eks::providers(
                            &config,
                            aws,
                            match &pod_command {
                                Some(command) => command.clone(),
                                None => default_runner_command()?,
                            },
                            runner_url.clone(),
                            &clock,
                        )
                        .await?;
                    }
                    let provider = eks
                        .as_mut()
                        .and_then(|eks| eks.providers.remove(&pool.name))
                        .ok_or_else(|| setup(format!("pool {} has no EKS provider", pool.name)))?;
                    Arc::new(provider)
                }
                ProviderSettings::Lambda(_) => {
                    let aws = aws.as_ref().ok_or_else(|| {
                        setup("the Lambda provider needs AWS settings, and none were loaded")
                    })?;
                    let built = match &mut lambda_providers {
                        Some(built) => built,
                        None => lambda_providers
                            .insert(crate::lambda::providers(&config, aws, &clock).await?),
                    };
                    let provider = built.remove(&pool.name).ok_or_else(|| {
                        setup(format!("pool {} has no Lambda provider", pool.name))
                    })?;
                    Arc::new(provider)
                }
            };
            let provider = match &wrap_providers {
                Some(wrap) => wrap(&pool.name, provider),
                None => provider,
            };
            providers.insert(pool.name.clone(), provider);
        }

        let (router, throttle) = load_policies(&config, &mut notes)?;

        let metrics = runway_jobflow::metrics::Recorded::new();
        let tasks = TaskRegistry::new();
        let service = StepFunctions::new(clock.clone(), tasks.clone());
        let callbacks: Arc<dyn TaskCallbacks> = Arc::new(service.clone());
        let callbacks = match wrap_callbacks {
            Some(wrap) => wrap(callbacks),
            None => callbacks,
        };
        let flow = JobFlow::new(
            Deps {
                store: store.clone(),
                github,
                providers: providers.clone(),
                router: router.clone(),
                throttle: throttle.clone(),
                callbacks,
                clock: clock.clone(),
                metrics: match metrics_tap {
                    Some(tap) => Arc::new(Tee(Arc::new(metrics.clone()), tap)),
                    None => Arc::new(metrics.clone()),
                },
            },
            config.flow().clone(),
        )
        .map_err(|error| setup(error.to_string()))?;
        flow.register_tasks(&tasks, TASK_PREFIX);
        let definition = job_definition();
        let machine = service
            .create_state_machine(JOB_MACHINE_NAME, &definition, None)
            .map_err(|error| setup(format!("the job state machine was refused: {error}")))?;

        let secrets = WebhookSecrets::new(secret.as_bytes().to_vec())
            .map_err(|error| setup(format!("the webhook secret is not usable: {error}")))?;
        let make_intake: crate::setup::IntakeFactory = {
            let starter: Arc<dyn runway_webhook::ExecutionStarter> =
                Arc::new(SfnStarter::new(service.clone(), machine.arn.clone()));
            let flow = flow.clone();
            Arc::new(move |secrets| {
                let mut intake_config = IntakeConfig::new(secrets);
                intake_config.filter = JobFilter::default();
                Intake::new(intake_config, starter.clone()).with_job_events(Arc::new(flow.clone()))
            })
        };
        let intake = make_intake(secrets);
        let max_body = intake.config().max_body_bytes;
        let base_url = format!("http://{webhook_addr}");
        let setup_token = crate::setup::setup_token();
        let setup_url = format!("{base_url}{}", runway_app_setup::SETUP_PATH);
        let slot = runway_webhook::IntakeSlot::ready(intake, &setup_url);
        let mut webhook_app = runway_webhook::slot_router(slot.clone(), max_body);
        // The setup page makes an App on the emulator (a real GitHub's App is configured).
        if let Some(emulator) = &emulator {
            let options = if in_process {
                RestGitHubOptions {
                    request_timeout: None,
                    connect_timeout: None,
                    in_process: Some(crate::in_process::github_api(emulator.in_process())),
                    ..RestGitHubOptions::default()
                }
            } else {
                RestGitHubOptions::default()
            };
            let store = crate::setup::LocalSetupStore::new(
                setup_token.clone(),
                switchable.clone(),
                slot.clone(),
                make_intake.clone(),
                clock.clone(),
                options.clone(),
            );
            let service = runway_app_setup::SetupService::new(
                runway_app_setup::SetupConfig {
                    base_url: base_url.clone(),
                    site: runway_app_setup::GitHubSite {
                        web_url: emulator.base_url().to_owned(),
                        api_url: emulator.api_url().to_owned(),
                    },
                    app_name: "runway-local".into(),
                    token_command: "the token runway local printed at start".into(),
                },
                Arc::new(store),
                Arc::new(runway_app_setup::GitHubConversion::new(options)),
            );
            webhook_app = webhook_app.merge(crate::setup::router(service));
        }
        if in_process && let Some(emulator) = &emulator {
            emulator.set_webhook_receiver(Some(webhook_app.clone()));
        }

        let pools: Vec<PoolSummary> = config
            .pools()
            .map(|(pool, provider)| PoolSummary {
                name: pool.name.clone(),
                labels: pool.labels.clone(),
                provider: provider.kind(),
                max_running: pool.max_running,
            })
            .collect();
        let console = Console::new(
            service.clone(),
            machine.arn.clone(),
            &definition,
            store.clone(),
            pools.clone(),
            metrics.clone(),
            runner_logs,
        )
        .map_err(|error| {
            setup(format!(
                "the web console cannot draw the job machine: {error}"
            ))
        })?;
        let console_url = format!("{sfn_url}/");

        let (stop, _) = watch::channel(false);
        let (failures, _) = watch::channel(None);
        let mut servers = JoinSet::new();
        {
            let failures = failures.clone();
            let stopping = stop.subscribe();
            let report = move |what, served| report_stop(&failures, &stopping, what, served);
            let mut stopped = stop.subscribe();
            let app = webhook_app;
            servers.spawn(async move {
                let served = axum::serve(webhook_listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await;
                report("webhook intake", served);
            });
        }
        {
            let failures = failures.clone();
            let stopping = stop.subscribe();
            let report = move |what, served| report_stop(&failures, &stopping, what, served);
            let mut stopped = stop.subscribe();
            // The console's GET pages share the port with the POST-only API.
            let app = runway_sfn_local::router_with_pages(service.clone(), console.router());
            servers.spawn(async move {
                let served = axum::serve(sfn_listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await;
                report("Step Functions API", served);
            });
        }

        let emulator_setup_url = emulator
            .as_ref()
            .map(|_| format!("{setup_url}?token={setup_token}"));
        info!(%webhook_url, %sfn_url, %console_url, "runway local started");
        let schedule = config.reaper.clone();
        let repositories = match &config.github {
            GitHubConnection::Emulator(settings) => settings.repositories.clone(),
            GitHubConnection::App(_) => Vec::new(),
        };
        let mut system = LocalSystem {
            metrics,
            github: flow_github,
            emulator,
            kube: eks.map(|eks| eks.emulator),
            service,
            flow,
            store,
            providers,
            secret,
            secret_source,
            webhook_url,
            setup_url: emulator_setup_url,
            sfn_url,
            console_url,
            machine_arn: machine.arn,
            pools,
            router,
            throttle,
            notes,
            stop,
            failures,
            servers,
            _runner_log_dir: runner_log_dir,
        };
        if schedule.every_seconds > 0 {
            system.run_reaper(&schedule, &repositories)?;
        }
        if system
            .flow
            .config()
            .pools
            .iter()
            .any(|pool| pool.warm.is_some())
        {
            system.run_warm_keeper();
        }
        Ok(system)
    }

    /// Runs the warm-pool keeper every [`WARM_KEEPER_EVERY`] until the system stops, as the
    /// stack's schedule runs it every minute on AWS (more often here, so that adopted warm
    /// runners are replaced while one watches).
    fn run_warm_keeper(&mut self) {
        let flow = self.flow.clone();
        let mut stopped = self.stop.subscribe();
        self.servers.spawn(async move {
            loop {
                let pass = tokio::select! {
                    pass = flow.keep_warm() => pass,
                    _ = stopped.wait_for(|stop| *stop) => return,
                };
                for pool in &pass.pools {
                    if !pool.launched.is_empty() || !pool.retired.is_empty() {
                        info!(
                            pool = %pool.pool,
                            wanted = pool.wanted,
                            ready = pool.ready,
                            launched = ?pool.launched,
                            retired = ?pool.retired,
                            "warm pool kept"
                        );
                    }
                    for failure in &pool.failed {
                        warn!(pool = %pool.pool, %failure, "warm pool pass failed; the next one runs on time");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(WARM_KEEPER_EVERY) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        });
        info!(
            every_seconds = WARM_KEEPER_EVERY.as_secs(),
            "the warm-pool keeper runs on a schedule"
        );
    }

    /// Runs the reaper machine every `schedule.every_seconds` until the system stops, as the
    /// stack's schedule runs it on AWS.
    fn run_reaper(
        &mut self,
        schedule: &crate::config::ReaperSchedule,
        repositories: &[String],
    ) -> Result<(), LocalError> {
        let mut sweeper = crate::reaper::Sweeper::new(
            self,
            repositories,
            Duration::from_secs(schedule.grace_seconds),
        )?;
        let every = Duration::from_secs(schedule.every_seconds);
        let mut stopped = self.stop.subscribe();
        self.servers.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                let pass = tokio::select! {
                    pass = sweeper.pass() => pass,
                    _ = stopped.wait_for(|stop| *stop) => return,
                };
                match pass {
                    Ok(pass) if pass.acted > 0 => {
                        info!(
                            pass = sweeper.passes(),
                            acted = pass.acted,
                            "reaper pass acted"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, "reaper pass failed; the next one runs on time"),
                }
            }
        });
        info!(
            every_seconds = schedule.every_seconds,
            "the reaper runs on a schedule"
        );
        Ok(())
    }

    /// The GitHub client the job flow acts through.
    pub fn github(&self) -> &Arc<dyn GitHub> {
        &self.github
    }

    /// The GitHub emulator, unless a real GitHub App is configured.
    pub fn emulator(&self) -> Option<&EmulatorHandle> {
        self.emulator.as_ref()
    }

    /// The Kubernetes emulator standing in for the EKS pools' clusters, when there are any.
    pub fn kube_emulator(&self) -> Option<&runway_kube_emulator::KubeEmulatorHandle> {
        self.kube.as_ref()
    }

    /// The setup page with its token (`http://127.0.0.1:PORT/setup?token=...`): it makes a
    /// GitHub App on the emulator and moves runway to it. `None` with a real GitHub App.
    pub fn setup_url(&self) -> Option<&str> {
        self.setup_url.as_deref()
    }

    /// `http://127.0.0.1:PORT/webhook`.
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// The Step Functions API endpoint (`--endpoint-url` for the AWS CLI).
    pub fn sfn_url(&self) -> &str {
        &self.sfn_url
    }

    /// The web console: `http://127.0.0.1:PORT/` on the Step Functions API's port.
    pub fn console_url(&self) -> &str {
        &self.console_url
    }

    /// The Step Functions service the executions run on.
    pub fn service(&self) -> &StepFunctions {
        &self.service
    }

    pub fn flow(&self) -> &JobFlow {
        &self.flow
    }

    /// What the job flow and the reaper measured lately (the figures the AWS dashboard shows).
    pub fn metrics(&self) -> &runway_jobflow::metrics::Recorded {
        &self.metrics
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Each pool's provider, by pool name.
    pub fn providers(&self) -> &BTreeMap<String, Arc<dyn Provider>> {
        &self.providers
    }

    /// The secret webhooks must be signed with.
    pub fn webhook_secret(&self) -> &str {
        &self.secret
    }

    pub fn webhook_secret_source(&self) -> SecretSource {
        self.secret_source
    }

    /// The ARN of the job state machine.
    pub fn machine_arn(&self) -> &str {
        &self.machine_arn
    }

    pub fn pools(&self) -> &[PoolSummary] {
        &self.pools
    }

    /// The router policy the job flow decides with; `None`: built-in label matching.
    pub fn router_policy(&self) -> Option<&RouterPolicy> {
        self.router.as_ref()
    }

    /// The throttle policy the job flow admits with; `None`: admission up to the ceilings.
    pub fn throttle_policy(&self) -> Option<&ThrottlePolicy> {
        self.throttle.as_ref()
    }

    /// Things worth telling the user at start (e.g. policies that were not found).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Live history events of every execution.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecutionEvent> {
        self.service.subscribe()
    }

    /// Every job execution, newest first.
    pub fn executions(&self) -> Vec<ExecutionDescription> {
        self.service
            .list_executions(&self.machine_arn, None)
            .unwrap_or_default()
    }

    /// How many of the job machine's executions still run.
    pub fn running_executions(&self) -> usize {
        self.service
            .list_executions(&self.machine_arn, Some(ExecutionStatus::Running))
            .map_or(0, |running| running.len())
    }

    /// The execution following `job_id` (any repository, the latest attempt).
    pub fn execution_for_job(&self, job_id: u64) -> Option<ExecutionDescription> {
        let prefix = format!("job-{job_id}-r");
        self.executions()
            .into_iter()
            .find(|e| e.name.starts_with(&prefix))
    }

    /// Waits until the execution following `job_id` exists and has ended; `None` on timeout.
    pub async fn wait_for_job_execution(
        &self,
        job_id: u64,
        timeout: Duration,
    ) -> Option<ExecutionDescription> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(execution) = self.execution_for_job(job_id) {
                let ended = tokio::time::timeout_at(
                    deadline,
                    self.service.await_execution(&execution.execution_arn),
                )
                .await;
                return ended.ok().and_then(Result::ok);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True when no execution runs and every emulated job has completed.
    pub fn is_idle(&self) -> bool {
        let running = self
            .executions()
            .iter()
            .any(|e| e.status == ExecutionStatus::Running);
        let queued = self.emulator.as_ref().is_some_and(|emulator| {
            emulator
                .jobs()
                .iter()
                .any(|job| job.status != runway_github_emulator::JobStatus::Completed)
        });
        !running && !queued
    }

    /// Waits until [`LocalSystem::is_idle`]; false on timeout.
    pub async fn wait_until_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_idle() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Completes when one of the servers stops by itself (they run until shutdown, so this
    /// is an error).
    pub async fn failure(&self) -> LocalError {
        let mut failures = self.failures.subscribe();
        match failures.wait_for(Option::is_some).await {
            Ok(failure) => {
                let (what, message) = failure.clone().unwrap_or(("local service", String::new()));
                LocalError::Stopped { what, message }
            }
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops the servers, stops executions still running, terminates the runners they
    /// launched and stops the emulator.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let executions = self.executions();
        for execution in &executions {
            if execution.status == ExecutionStatus::Running {
                let _ = self.service.stop_execution(
                    &execution.execution_arn,
                    Some("Runway.LocalStopped"),
                    Some("runway local was stopped while the job was in flight."),
                );
            }
        }
        let ours: BTreeSet<&str> = executions.iter().map(|e| e.name.as_str()).collect();
        for (pool, provider) in &self.providers {
            let owned = match provider.owned().await {
                Ok(owned) => owned,
                Err(error) => {
                    warn!(pool = %pool, %error, "cannot list the pool's runners to stop them");
                    continue;
                }
            };
            for runner in owned.iter().filter(|r| ours.contains(r.execution.as_str())) {
                if let Err(error) = provider
                    .terminate(&runner.execution, &runner.runner_name)
                    .await
                {
                    warn!(runner = %runner.runner_name, %error, "could not terminate a runner");
                }
            }
        }
        while self.servers.join_next().await.is_some() {}
        if let Some(kube) = self.kube.take() {
            kube.shutdown().await;
        }
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
    }
}

/// Hands each metric sample to two recorders.
#[derive(Debug)]
struct Tee(
    Arc<dyn runway_jobflow::metrics::Metrics>,
    Arc<dyn runway_jobflow::metrics::Metrics>,
);

impl runway_jobflow::metrics::Metrics for Tee {
    fn record(&self, sample: runway_jobflow::metrics::Sample) {
        self.1.record(sample.clone());
        self.0.record(sample);
    }
}

/// Records a server that stopped while runway was not stopping.
fn report_stop(
    failures: &watch::Sender<Option<(&'static str, String)>>,
    stopping: &watch::Receiver<bool>,
    what: &'static str,
    served: std::io::Result<()>,
) {
    if *stopping.borrow() {
        return;
    }
    let message = match served {
        Ok(()) => "it stopped serving".to_owned(),
        Err(error) => error.to_string(),
    };
    failures.send_replace(Some((what, message)));
}

/// The job machine with each `${…FunctionArn}` replaced by the local function's ARN.
pub fn job_definition() -> String {
    let mut text = JOB_STATE_MACHINE.to_owned();
    for (name, arn) in JobFlow::local_substitutions(TASK_PREFIX) {
        let variable = if name.starts_with("${") {
            name
        } else {
            format!("${{{name}}}")
        };
        text = text.replace(&variable, &arn);
    }
    text
}

fn webhook_secret(config: &LocalConfig) -> (String, SecretSource) {
    if let Ok(secret) = std::env::var(runway_webhook::env::SECRET_ENV)
        && !secret.is_empty()
    {
        return (secret, SecretSource::Environment);
    }
    if let Some(secret) = config.webhook_secret.clone().filter(|s| !s.is_empty()) {
        return (secret, SecretSource::Config);
    }
    (runway_webhook::generate_secret(), SecretSource::Generated)
}

async fn connect_github(
    config: &LocalConfig,
    webhook_url: &str,
    secret: &str,
    clock: &SharedClock,
    in_process: bool,
) -> Result<(Option<EmulatorHandle>, Arc<dyn GitHub>), LocalError> {
    match &config.github {
        GitHubConnection::Emulator(settings) => {
            let emulator = Emulator::start(EmulatorConfig {
                listen: config.listen.emulator,
                webhook: Some(WebhookTarget {
                    url: webhook_url.to_owned(),
                    secret: secret.to_owned(),
                }),
                seed: settings.seed,
                delivery_concurrency: settings.delivery_concurrency,
                // A replay reads no delivery history; a day of jobs would hold every payload.
                deliveries_kept: if in_process {
                    REPLAY_DELIVERIES_KEPT
                } else {
                    runway_github_emulator::DEFAULT_DELIVERIES_KEPT
                },
                repositories: settings.repositories.clone(),
                organizations: settings.organizations.clone(),
                clock: clock.clone(),
                ..EmulatorConfig::default()
            })
            .await?;
            let options = if in_process {
                RestGitHubOptions {
                    request_timeout: None,
                    connect_timeout: None,
                    in_process: Some(crate::in_process::github_api(emulator.in_process())),
                    ..RestGitHubOptions::default()
                }
            } else {
                RestGitHubOptions::default()
            };
            // The emulator accepts any token.
            let github = RestGitHub::with_options(
                emulator.api_url(),
                Credentials::Token(Secret::new("runway-local")),
                clock.clone(),
                options,
            )
            .map_err(|error| setup(error.to_string()))?;
            Ok((Some(emulator), Arc::new(github)))
        }
        GitHubConnection::App(app) => {
            let path = config
                .resolve(&app.private_key_file)
                .unwrap_or_else(|| app.private_key_file.clone());
            let key = std::fs::read(&path).map_err(|error| {
                setup(format!(
                    "cannot read the GitHub App private key {}: {error}; give the path of the \
                     .pem file GitHub generated",
                    path.display()
                ))
            })?;
            let credentials = AppCredentials::new(app.app_id.clone(), &key, app.installation_id)
                .map_err(|error| setup(error.to_string()))?;
            let mut options = RestGitHubOptions::default();
            if let Some(bundle) = &app.ca_bundle_file {
                let path = config.resolve(bundle).unwrap_or_else(|| bundle.clone());
                options = options
                    .with_extra_ca_file(&path)
                    .map_err(|error| setup(format!("[github] ca_bundle_file: {error}")))?;
            }
            let github = RestGitHub::with_options(
                &app.api_url,
                Credentials::App(credentials),
                clock.clone(),
                options,
            )
            .map_err(|error| setup(error.to_string()))?;
            Ok((None, Arc::new(github)))
        }
    }
}

async fn load_aws(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    loader.load().await
}

async fn build_store(
    config: &StoreConfig,
    aws: Option<&aws_config::SdkConfig>,
    clock: &SharedClock,
) -> Result<Arc<dyn Store>, LocalError> {
    match config {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new(clock.clone()))),
        StoreConfig::Dynamodb { table } => {
            let aws = aws.ok_or_else(|| setup("the DynamoDB store needs AWS settings"))?;
            let client = aws_sdk_dynamodb::Client::new(aws);
            runway_store::create_table(&client, table)
                .await
                .map_err(|error| {
                    setup(format!(
                        "cannot create or open the DynamoDB table {table}: {error}; check \
                         AWS_ENDPOINT_URL, the region and the credentials"
                    ))
                })?;
            Ok(Arc::new(DynamoStore::new(
                client,
                table.clone(),
                clock.clone(),
            )))
        }
    }
}

/// `runway runner-sim` of this very binary. It reads the JIT config from `RUNWAY_JITCONFIG`,
/// where the local provider puts it (never on a command line other users could read).
fn default_runner_command() -> Result<Vec<String>, LocalError> {
    let exe = std::env::current_exe().map_err(|error| {
        setup(format!(
            "cannot find the runway binary to run `runner-sim` ({error}); give the pool a \
             provider command"
        ))
    })?;
    Ok(vec![
        exe.display().to_string(),
        "runner-sim".to_owned(),
        "--poll-seconds".to_owned(),
        "2".to_owned(),
    ])
}

fn local_provider(
    config: &LocalConfig,
    runners: &LocalRunners,
    url: Option<String>,
    clock: &SharedClock,
    default_log_dir: &std::path::Path,
) -> Result<LocalProvider, LocalError> {
    let command = match &runners.command {
        Some(command) => command.clone(),
        None => default_runner_command()?,
    };
    let mut local = runway_providers::LocalConfig::new(command);
    local.url = url;
    local.env = runners
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(dir) = &runners.log_dir {
        let dir = config.resolve(dir).unwrap_or_else(|| dir.clone());
        std::fs::create_dir_all(&dir).map_err(|error| {
            setup(format!(
                "cannot create the runner log directory {}: {error}",
                dir.display()
            ))
        })?;
        local.log_dir = Some(dir);
    } else {
        local.log_dir = Some(default_log_dir.to_path_buf());
    }
    if let Some(grace) = runners.grace_seconds {
        local.grace = Duration::try_from_secs_f64(grace).map_err(|_| {
            setup(format!(
                "grace_seconds must be a number of seconds, 0 or more (got {grace})"
            ))
        })?;
    }
    LocalProvider::new(local)
        .map(|provider| provider.with_clock(clock.clone()))
        .map_err(|error| setup(error.to_string()))
}

fn ec2_provider(
    config: &LocalConfig,
    pool: &str,
    settings: &Ec2Settings,
    aws: &aws_config::SdkConfig,
    clock: &SharedClock,
    runner_cache: Option<&crate::runner_cache::LocalRunnerCache>,
) -> Result<Ec2Provider, LocalError> {
    let (index, pool_config) = config
        .flow()
        .pools
        .iter()
        .enumerate()
        .find(|(_, candidate)| candidate.name == pool)
        .ok_or_else(|| setup(format!("pool {pool} is not in the job flow's pools")))?;
    // The same mapping the deployed stack uses; `runway local` fills in only the stack and
    // its runner cache.
    let mut defaults = runway_config::Ec2Defaults::for_stack(config.stack.as_str());
    defaults.runner_cache_bucket = runner_cache.map(|cache| cache.bucket.clone());
    let ec2 = runway_config::ec2_pool_config(index, pool_config, settings, &defaults)
        .map_err(|problem| setup(problem.to_string()))?;
    Ec2Provider::new(
        aws_sdk_ec2::Client::new(aws),
        aws_sdk_ssm::Client::new(aws),
        ec2,
    )
    .map(|provider| {
        // Runner logs go to moto's CloudWatch Logs as they would to the stack's.
        let logs = runway_runner_logs::CloudWatchRunnerLogs::new(
            aws_sdk_cloudwatchlogs::Client::new(aws),
            None,
        );
        let provider = provider
            .with_clock(clock.clone())
            .with_runner_logs(Arc::new(logs));
        match runner_cache {
            Some(cache) => provider.with_runner_cache(cache.reader.clone()),
            None => provider,
        }
    })
    .map_err(|error| setup(format!("pool {pool}: {error}")))
}

fn load_policies(
    config: &LocalConfig,
    notes: &mut Vec<String>,
) -> Result<(Option<RouterPolicy>, Option<ThrottlePolicy>), LocalError> {
    let mut found = Vec::new();
    for (world, path) in [
        ("router", &config.policies.router),
        ("throttle", &config.policies.throttle),
    ] {
        let Some(path) = path else {
            found.push(None);
            continue;
        };
        match config.resolve(path) {
            Some(resolved) => found.push(Some(resolved)),
            None if config.policies_optional => {
                notes.push(format!(
                    "{world} policy {} not found (build it with scripts/build-policies.sh); \
                     using built-in {}",
                    path.display(),
                    if world == "router" {
                        "label matching"
                    } else {
                        "admission up to the pool ceilings"
                    }
                ));
                found.push(None);
            }
            None => {
                return Err(setup(format!(
                    "the {world} policy {} does not exist; build it (scripts/build-policies.sh) \
                     or fix the path in [policies]",
                    path.display()
                )));
            }
        }
    }
    if found.iter().all(Option::is_none) {
        return Ok((None, None));
    }
    let engine = PolicyEngine::new(EngineConfig {
        reuse: config.policies.reuse,
        ..EngineConfig::default()
    })
    .map_err(|error| setup(format!("the policy engine did not start: {error}")))?;
    if config.policies.reuse != InstanceReuse::Never {
        notes.push(format!(
            "policy instances are reused ({}): for stateless policies only",
            config.policies.reuse
        ));
    }
    // The error names the file and says what to do (e.g. compile a .cwasm again).
    let load = |path: &std::path::Path, bounds: &PolicyBounds| {
        engine
            .load_file_with(path, bounds)
            .map_err(|error| setup(format!("cannot load the policy: {error}")))
    };
    let router = match &found[0] {
        Some(path) => {
            let policy = load(path, &config.policies.router_bounds)?
                .router()
                .map_err(|error| {
                    setup(format!(
                        "{} is not a router policy: {error}",
                        path.display()
                    ))
                })?;
            notes.push(format!("router policy {}", path.display()));
            Some(policy)
        }
        None => None,
    };
    let throttle = match &found[1] {
        Some(path) => {
            let policy = load(path, &config.policies.throttle_bounds)?
                .throttle()
                .map_err(|error| {
                    setup(format!(
                        "{} is not a throttle policy: {error}",
                        path.display()
                    ))
                })?;
            notes.push(format!("throttle policy {}", path.display()));
            Some(policy)
        }
        None => None,
    };
    Ok((router, throttle))
}
