//! A loopback GitHub emulator for tests and runway local: REST API, runners, signed webhooks.
//!
//! It behaves like GitHub where runway depends on it: a queued job goes to any idle online
//! runner whose labels contain all the job's labels (case-insensitively, picked at random among
//! several, seeded); a just-in-time runner is ephemeral and is removed after one job; each job
//! change sends a signed `workflow_job` webhook (queued → in_progress → completed).
//!
//! ```no_run
//! # async fn demo() -> Result<(), runway_github_emulator::EmulatorError> {
//! use runway_github_emulator::{Emulator, EmulatorConfig, NewJob};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! let job = emulator.create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))?;
//! println!("job {} queued; REST API at {}", job.job_id, emulator.api_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Served under the base URL (and the REST API also under `/api/v3`, as GHES does):
//! - GitHub REST: `POST {repos/o/r|orgs/o|enterprises/e}/actions/runners/generate-jitconfig`,
//!   `.../registration-token`, `.../remove-token`, `GET .../actions/runners[?name=]`,
//!   `GET|DELETE .../actions/runners/{id}`, `GET /repos/o/r/actions/jobs/{id}`,
//!   `GET /repos/o/r/actions/runs[?status=]`, `GET /repos/o/r/actions/runs/{id}/jobs`,
//!   `GET /installation/repositories` (all paged, with GitHub's `Link` header),
//!   `GET /repos/o/r/installation`, `GET /orgs/o/installation`, `GET /app`,
//!   `GET /app/installations/{id}`, `GET /app/hook/config`, `GET /app/hook/deliveries`,
//!   `POST /app/installations/{id}/access_tokens`, `POST /app-manifests/{code}/conversions`
//!   (no credential: see the manifest flow below). Releases
//!   ([`EmulatorHandle::publish_release`]): `GET /repos/o/r/releases`,
//!   `GET /repos/o/r/releases/latest`, `GET /repos/o/r/releases/assets/{id}` (with
//!   `Accept: application/octet-stream`, a `302` to the file) and the `browser_download_url`
//!   `GET /o/r/releases/download/{tag}/{name}`, with no credentials needed, as for a public
//!   repository. The App may have several installations
//!   ([`AppConfig::installations`]): an installation token reaches only its installation's
//!   accounts (`404` for another's repository, `403` for another's organization), as on
//!   GitHub; a personal access token reaches every account. `GET` answers carry an `ETag`; a request
//!   whose `If-None-Match` names it gets `304 Not Modified` with no body, which is not counted
//!   against the primary rate limit (`x-ratelimit-*`, 5000 an hour, see
//!   [`EmulatorHandle::set_rate_limit`]); [`EmulatorHandle::api_usage`] counts requests.
//! - The App manifest flow (GitHub's web pages): `POST /settings/apps/new` and
//!   `POST /organizations/{org}/settings/apps/new` take a `manifest` form field and a `state`
//!   query; their page's "Create GitHub App" button sends the browser to the manifest's
//!   `redirect_url?code=...&state=...`. The conversion of that code makes the App the
//!   emulator's App ([`EmulatorHandle::app`]).
//! - Control: `/_emulator/jobs`, `/_emulator/jobs/{id}`, `/_emulator/jobs/{id}/cancel`,
//!   `/_emulator/runners`, `/_emulator/deliveries`, `/_emulator/faults`, `/_emulator/usage`, `/_emulator/webhook`.
//! - Runner protocol (see [`runner`]): `/_runner/connect`, `/_runner/acquire`,
//!   `/_runner/jobs/{id}`, `/_runner/jobs/{id}/started`, `/_runner/jobs/{id}/finished`.

// The repository payload is one large `json!` literal.
#![recursion_limit = "256"]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

mod api;
mod auth;
mod config;
mod jit;
mod manifest;
mod matching;
mod payloads;
mod reach;
mod releases;
pub mod runner;
mod server;
mod shared;
mod state;
mod views;
mod webhooks;

pub use api::{ApiUsage, DEFAULT_RATE_LIMIT, RateView};
pub use auth::check_app_jwt;
pub use config::{
    AppConfig, DEFAULT_DELIVERIES_KEPT, EmulatorConfig, EnterpriseConfig, WebhookTarget,
};
pub use jit::{JitConfig, JitConfigError};
pub use manifest::MANIFEST_APP_PRIVATE_KEY;
pub use matching::{Scope, labels_match};
pub use releases::{NewAsset, NewRelease, runner_release_stand_in};
pub use state::{CreatedJob, Delivery, DeliveryOutcome, Faults, JobStatus, NewJob, RunnerLabel};
pub use views::{JobView, RunnerView};
pub use webhooks::{HOOK_ID, USER_AGENT, signature_sha1, signature_sha256};

use shared::Shared;
use state::{World, WorldError};

/// Every GitHub REST operation the emulator serves, as `(method, path template)` spelled as in
/// GitHub's OpenAPI description. The conformance tests check each against the spec.
pub const REST_OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/app/hook/config"),
    ("GET", "/app/hook/deliveries"),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
    ),
    ("POST", "/orgs/{org}/actions/runners/generate-jitconfig"),
    (
        "POST",
        "/enterprises/{enterprise}/actions/runners/generate-jitconfig",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/runners/registration-token",
    ),
    ("POST", "/orgs/{org}/actions/runners/registration-token"),
    (
        "POST",
        "/enterprises/{enterprise}/actions/runners/registration-token",
    ),
    ("POST", "/repos/{owner}/{repo}/actions/runners/remove-token"),
    ("POST", "/orgs/{org}/actions/runners/remove-token"),
    (
        "POST",
        "/enterprises/{enterprise}/actions/runners/remove-token",
    ),
    ("GET", "/repos/{owner}/{repo}/actions/runners"),
    ("GET", "/orgs/{org}/actions/runners"),
    ("GET", "/enterprises/{enterprise}/actions/runners"),
    ("GET", "/repos/{owner}/{repo}/actions/runners/{runner_id}"),
    ("GET", "/orgs/{org}/actions/runners/{runner_id}"),
    (
        "GET",
        "/enterprises/{enterprise}/actions/runners/{runner_id}",
    ),
    (
        "DELETE",
        "/repos/{owner}/{repo}/actions/runners/{runner_id}",
    ),
    ("DELETE", "/orgs/{org}/actions/runners/{runner_id}"),
    (
        "DELETE",
        "/enterprises/{enterprise}/actions/runners/{runner_id}",
    ),
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}"),
    ("GET", "/repos/{owner}/{repo}/actions/runs"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    ("GET", "/installation/repositories"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("GET", "/orgs/{org}/installation"),
    ("GET", "/app"),
    ("GET", "/app/installations/{installation_id}"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
    ("POST", "/app-manifests/{code}/conversions"),
];

/// Why the emulator could not start or refused a request made through the handle.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}; pick a free address or port 0")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<WorldError> for EmulatorError {
    fn from(error: WorldError) -> Self {
        match error {
            WorldError::NotFound(what) => EmulatorError::NotFound(what),
            WorldError::RunnerGone(id) => EmulatorError::NotFound(format!("runner {id}")),
            WorldError::Conflict(message) => EmulatorError::Conflict(message),
            WorldError::Invalid(message) => EmulatorError::Invalid(message),
        }
    }
}

/// A JIT config generated through the handle.
#[derive(Debug, Clone)]
pub struct GeneratedJitConfig {
    pub runner_id: u64,
    pub runner_name: String,
    /// `encoded_jit_config`, as the REST API would return it.
    pub encoded_jit_config: String,
}

/// Starts emulators.
pub struct Emulator;

impl Emulator {
    /// Binds the listen address and serves until [`EmulatorHandle::shutdown`] (or the handle
    /// is dropped). Must be called inside a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let world = World::new(&config).map_err(|e| EmulatorError::Config(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let base_url = format!("http://{addr}");
        let api_url = if config.ghes {
            format!("{base_url}/api/v3")
        } else {
            base_url.clone()
        };
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(
            world,
            config.clock.clone(),
            payloads::Urls {
                api: api_url.clone(),
                html: base_url.clone(),
            },
            config.app.clone(),
            config.tokens.clone(),
            config.webhook.clone(),
            outbox,
        ));
        let delivery = tokio::spawn(webhooks::deliver_all(
            shared.clone(),
            outbox_rx,
            config.delivery_concurrency,
        ));
        let watchdog = tokio::spawn(watch_runners(shared.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let in_process = app.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the GitHub emulator stopped serving");
            }
        });
        tracing::info!(%base_url, "GitHub emulator listening");
        Ok(EmulatorHandle {
            shared,
            in_process,
            addr,
            base_url,
            api_url,
            stop: Some(stop),
            server: Some(server),
            delivery: Some(delivery),
            watchdog,
        })
    }
}

/// Notices runners that stopped polling: their jobs fail or go back to the queue.
async fn watch_runners(shared: Arc<Shared>) {
    loop {
        shared.clock.sleep(Duration::from_secs(1)).await;
        let now = shared.clock.now();
        if shared.read(|world, _| world.has_lost_work(now)) {
            shared.update(|world, now| world.expire_lost(now));
        }
    }
}

/// A running emulator. Dropping it stops the server.
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    /// The same routes the server serves, for callers in this process.
    in_process: axum::Router,
    addr: SocketAddr,
    base_url: String,
    api_url: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    delivery: Option<JoinHandle<()>>,
    watchdog: JoinHandle<()>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("base_url", &self.base_url)
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl EmulatorHandle {
    /// `http://127.0.0.1:port`: the control API, the runner protocol and the web root.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The REST API root: the base URL, or `{base}/api/v3` in GHES mode.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the server to finish. Webhooks not yet sent are dropped.
    pub async fn shutdown(mut self) {
        self.stop_tasks();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(delivery) = self.delivery.take() {
            let _ = delivery.await;
        }
    }

    fn stop_tasks(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(delivery) = &self.delivery {
            delivery.abort();
        }
        self.watchdog.abort();
    }

    /// Publishes a release with its assets (see the release routes in the crate docs); returns
    /// its id. The newest release that is no prerelease is `releases/latest`.
    pub fn publish_release(&self, release: NewRelease) -> Result<u64, EmulatorError> {
        let now = self.shared.clock.now();
        self.shared
            .releases()
            .publish(release, now)
            .map_err(EmulatorError::Config)
    }

    /// Queues a job, as `POST /_emulator/jobs` does; a `queued` webhook follows.
    pub fn create_job(&self, job: NewJob) -> Result<CreatedJob, EmulatorError> {
        Ok(self
            .shared
            .update(|world, now| world.create_job(&job, now))?)
    }

    /// Cancels a job as GitHub does (see `POST /_emulator/jobs/{id}/cancel`).
    pub fn cancel_job(&self, job_id: u64) -> Result<JobView, EmulatorError> {
        self.shared
            .update(|world, now| world.cancel_job(job_id, now))?;
        self.job(job_id)
            .ok_or_else(|| EmulatorError::NotFound(format!("job {job_id}")))
    }

    pub fn job(&self, job_id: u64) -> Option<JobView> {
        views::job(&self.shared, job_id)
    }

    /// The App runway authenticates as now: the configured one, or the one a manifest
    /// conversion made.
    pub fn app(&self) -> AppConfig {
        self.shared.app()
    }

    /// The URL webhooks go to now (an App made from a manifest brings its own).
    pub fn webhook_url(&self) -> Option<String> {
        self.shared.webhook_target().map(|target| target.url)
    }

    pub fn jobs(&self) -> Vec<JobView> {
        views::jobs(&self.shared)
    }

    pub fn runners(&self) -> Vec<RunnerView> {
        views::runners(&self.shared)
    }

    /// Every webhook produced so far, in order (with duplicates sent by the fault switch).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.read(|world, _| world.deliveries.clone())
    }

    /// How many webhooks are still on their way (without copying the deliveries).
    pub fn pending_deliveries(&self) -> usize {
        self.shared.read(|world, _| {
            world
                .deliveries
                .iter()
                .filter(|delivery| delivery.outcome == DeliveryOutcome::Pending)
                .count()
        })
    }

    /// The REST requests served so far: counted, `304 Not Modified`, refused for the rate
    /// limit.
    pub fn api_usage(&self) -> ApiUsage {
        self.shared.api_usage()
    }

    /// The primary rate limit as the next answer would report it.
    pub fn rate_limit(&self) -> RateView {
        self.shared.rate_limit()
    }

    /// Sets the rate limit window's size and what is left of it; a request beyond it is
    /// answered `403` with `x-ratelimit-remaining: 0`, as GitHub does.
    pub fn set_rate_limit(&self, limit: u64, remaining: u64) {
        self.shared.set_rate_limit(limit, remaining);
    }

    /// Replaces the fault counters.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.update(|world, _| world.faults = faults);
    }

    pub fn faults(&self) -> Faults {
        self.shared.read(|world, _| world.faults.clone())
    }

    /// Changes where webhooks go (e.g. once the receiver has its port).
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        self.shared.set_webhook_target(target);
    }

    /// Everything the server serves (REST API, control API, runner protocol), to be called in
    /// this process without a socket: on virtual time, where waiting on a socket would let
    /// the clock jump ahead, callers use this (see [`runner::RunnerOptions::in_process`]).
    pub fn in_process(&self) -> axum::Router {
        self.in_process.clone()
    }

    /// Delivers webhooks to `receiver` in this process instead of POSTing them to the
    /// target's URL (the target's secret still signs them); `None`: over HTTP again.
    pub fn set_webhook_receiver(&self, receiver: Option<axum::Router>) {
        self.shared.set_webhook_receiver(receiver);
    }

    /// Registers a JIT runner without going through the REST API (for tests and demos).
    pub fn generate_jitconfig(
        &self,
        scope: Scope,
        name: &str,
        labels: &[&str],
    ) -> Result<GeneratedJitConfig, EmulatorError> {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let (_, config) = self.shared.generate_jit(
            scope,
            name,
            state::DEFAULT_RUNNER_GROUP_ID,
            &labels,
            "_work",
        )?;
        Ok(GeneratedJitConfig {
            runner_id: config.runner_id,
            runner_name: config.runner_name.clone(),
            encoded_jit_config: config.encode(),
        })
    }

    /// Deletes a runner as `DELETE .../actions/runners/{id}` does (refused while it runs a job).
    pub fn delete_runner(&self, scope: &Scope, runner_id: u64) -> Result<(), EmulatorError> {
        Ok(self
            .shared
            .update(|world, now| world.delete_runner(scope, runner_id, now))?)
    }

    /// Waits (on the emulator's clock) until the job reaches `status`; `None` on timeout or
    /// if there is no such job.
    pub async fn wait_for_job(
        &self,
        job_id: u64,
        status: JobStatus,
        timeout: Duration,
    ) -> Option<JobView> {
        self.shared
            .wait_for(timeout, |world, _| {
                world
                    .jobs
                    .get(&job_id)
                    .filter(|job| job.status == status)
                    .map(views::job_view)
            })
            .await
    }

    /// Waits until at least `count` deliveries are settled (not pending); returns them all.
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let settled = self
            .shared
            .wait_for(timeout, |world, _| {
                let done = world
                    .deliveries
                    .iter()
                    .filter(|d| d.outcome != DeliveryOutcome::Pending)
                    .count();
                (done >= count).then(|| world.deliveries.clone())
            })
            .await;
        settled.unwrap_or_else(|| self.deliveries())
    }

    /// Waits until `check` holds for the runners; returns them.
    pub async fn wait_for_runners(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[RunnerView]) -> bool,
    ) -> Option<Vec<RunnerView>> {
        self.shared
            .wait_for(timeout, |world, now| {
                let runners = views::runner_views(world, now);
                check(&runners).then_some(runners)
            })
            .await
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}
