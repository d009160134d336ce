//! A stand-in for the GitHub Actions runner, speaking the emulator's runner protocol, so a full
//! loop runs with no real runner binary. `runway runner-sim` calls [`run`].
//!
//! The protocol (all calls carry `Authorization: Bearer <credential from the JIT config>`; a
//! runner that was removed gets `410 Gone`):
//! - `POST /_runner/connect` `{"version"}`: the runner is online (GitHub's runner list shows it).
//! - `POST /_runner/acquire?wait_seconds=N`: long poll; `200` with a job handed to this runner,
//!   `204` when none came in time.
//! - `POST /_runner/jobs/{id}/started`: the job is in progress (an `in_progress` webhook).
//! - `GET /_runner/jobs/{id}?wait_seconds=N&unless=in_progress`: long poll for a change
//!   (cancellation).
//! - `POST /_runner/jobs/{id}/finished` `{"conclusion"}`: the job is completed (a `completed`
//!   webhook) and the ephemeral runner is removed.

use std::time::Duration;

use runway_clock::{Backoff, SharedClock, SystemClock};
use serde::{Deserialize, Serialize};

use crate::jit::{JitConfig, JitConfigError};
use crate::state::{AssignedJob, JobStatus};

/// The version the runner reports when it connects.
pub const RUNNER_VERSION: &str = "2.329.0-runway-sim";

/// How [`run`] behaves.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The emulator's base URL; the JIT config's own URL is used when `None`.
    pub url: Option<String>,
    /// `encoded_jit_config` from the emulator.
    pub jitconfig: String,
    /// Times the job's duration.
    pub clock: SharedClock,
    /// How long each long poll may wait on the emulator.
    pub poll_wait: Duration,
    /// Give up (and exit) after waiting this long for a job. `None`: wait until removed.
    pub idle_timeout: Option<Duration>,
    /// Speak the protocol to these routes in this process instead of over HTTP
    /// ([`crate::EmulatorHandle::in_process`]): on virtual time no socket lets the clock jump.
    pub in_process: Option<axum::Router>,
}

impl RunnerOptions {
    pub fn new(url: Option<String>, jitconfig: impl Into<String>) -> Self {
        RunnerOptions {
            url,
            jitconfig: jitconfig.into(),
            clock: SystemClock::shared(),
            poll_wait: Duration::from_secs(10),
            idle_timeout: None,
            in_process: None,
        }
    }
}

/// How a runner's life ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Ran one job to its end (`conclusion` as GitHub recorded it, e.g. `cancelled`).
    Completed { job_id: u64, conclusion: String },
    /// The runner was deleted before it got a job.
    Removed,
    /// No job came within the idle timeout.
    IdleTimeout,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    JitConfig(#[from] JitConfigError),
    #[error("cannot reach the emulator at {url}: {source}; is it running, and is --url right?")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the emulator refused {call}: HTTP {status}: {body}")]
    Refused {
        call: String,
        status: u16,
        body: String,
    },
    #[error("the emulator sent an unreadable answer to {call}: {source}")]
    BadAnswer {
        call: String,
        source: reqwest::Error,
    },
    #[error("the emulator sent an unreadable answer to {call}: {message}")]
    Unreadable { call: String, message: String },
}

/// Registers with the JIT config at `url` (or the config's own URL), takes one job, runs it
/// for its duration, reports it finished and returns.
pub async fn run_once(url: Option<&str>, jitconfig: &str) -> Result<RunOutcome, RunnerError> {
    run(RunnerOptions::new(url.map(str::to_string), jitconfig)).await
}

#[derive(Debug, Deserialize)]
struct JobState {
    status: JobStatus,
    conclusion: Option<String>,
}

struct Session {
    http: reqwest::Client,
    in_process: Option<axum::Router>,
    endpoint: String,
    credential: String,
    clock: SharedClock,
}

enum Answer<T> {
    Ok(T),
    NoContent,
    Gone,
}

/// Transient failures (connection refused, 5xx) are tried again after these pauses.
const TRANSIENT_RETRY: Backoff =
    Backoff::exponential(Duration::from_millis(200), Duration::from_secs(2), 4);

impl Session {
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<Answer<T>, RunnerError> {
        if let Some(service) = &self.in_process {
            return self.call_in_process(service, method, path, body).await;
        }
        let url = format!("{}{}", self.endpoint, path);
        let mut pauses = TRANSIENT_RETRY.pauses(&self.clock);
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.credential)
                .timeout(timeout);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(source) => {
                    tracing::debug!(%url, %source, "runner call failed; retrying");
                    if pauses.wait().await {
                        continue;
                    }
                    return Err(RunnerError::Unreachable { url, source });
                }
            };
            let status = response.status();
            if status.is_server_error() && pauses.wait().await {
                continue;
            }
            return match status.as_u16() {
                204 => Ok(Answer::NoContent),
                410 => Ok(Answer::Gone),
                200..=299 => response
                    .json::<T>()
                    .await
                    .map(Answer::Ok)
                    .map_err(|source| RunnerError::BadAnswer {
                        call: path.to_string(),
                        source,
                    }),
                code => Err(RunnerError::Refused {
                    call: format!("{method} {path}"),
                    status: code,
                    body: response.text().await.unwrap_or_default(),
                }),
            };
        }
    }
}

impl Session {
    /// One call to the emulator's routes in this process (no transport to fail).
    async fn call_in_process<T: for<'de> Deserialize<'de>>(
        &self,
        service: &axum::Router,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Answer<T>, RunnerError> {
        use tower::ServiceExt;
        let unreadable = |message: String| RunnerError::Unreadable {
            call: path.to_string(),
            message,
        };
        let body = match &body {
            Some(body) => axum::body::Body::from(
                serde_json::to_vec(body).map_err(|error| unreadable(error.to_string()))?,
            ),
            None => axum::body::Body::empty(),
        };
        let request = axum::http::Request::builder()
            .method(method.as_str())
            .uri(format!("/_runner{path}"))
            .header("Authorization", format!("Bearer {}", self.credential))
            .header("Content-Type", "application/json")
            .body(body)
            .map_err(|error| unreadable(error.to_string()))?;
        let response = match service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|error| unreadable(error.to_string()))?;
        match status {
            204 => Ok(Answer::NoContent),
            410 => Ok(Answer::Gone),
            200..=299 => serde_json::from_slice(&bytes)
                .map(Answer::Ok)
                .map_err(|error| unreadable(error.to_string())),
            code => Err(RunnerError::Refused {
                call: format!("{method} {path}"),
                status: code,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            }),
        }
    }
}

/// Runs a runner stand-in to the end of its life; see the module docs.
pub async fn run(options: RunnerOptions) -> Result<RunOutcome, RunnerError> {
    let config = JitConfig::decode(&options.jitconfig)?;
    let endpoint = match &options.url {
        // The runner protocol sits beside the REST API, not under GHES's `/api/v3`.
        Some(url) => {
            let base = url.trim_end_matches('/');
            let base = base.strip_suffix("/api/v3").unwrap_or(base);
            format!("{base}/_runner")
        }
        None => config.runner_endpoint.trim_end_matches('/').to_string(),
    };
    let http = reqwest::Client::builder()
        .build()
        .map_err(|source| RunnerError::Unreachable {
            url: endpoint.clone(),
            source,
        })?;
    let session = Session {
        http,
        in_process: options.in_process.clone(),
        endpoint,
        credential: config.credential.clone(),
        clock: options.clock.clone(),
    };
    let short = Duration::from_secs(10);
    let poll_timeout = options.poll_wait + Duration::from_secs(10);
    let connect = session
        .call::<serde_json::Value>(
            reqwest::Method::POST,
            "/connect",
            Some(serde_json::json!({"version": RUNNER_VERSION})),
            short,
        )
        .await?;
    if matches!(connect, Answer::Gone) {
        return Ok(RunOutcome::Removed);
    }
    tracing::info!(runner = %config.runner_name, "runner connected; waiting for a job");
    let waiting_since = options.clock.now();
    let job = loop {
        let wait = options.poll_wait.as_secs_f64();
        match session
            .call::<AssignedJob>(
                reqwest::Method::POST,
                &format!("/acquire?wait_seconds={wait}"),
                None,
                poll_timeout,
            )
            .await?
        {
            Answer::Ok(job) => break job,
            Answer::Gone => return Ok(RunOutcome::Removed),
            Answer::NoContent => {
                if let Some(limit) = options.idle_timeout {
                    let idle = (options.clock.now() - waiting_since)
                        .to_std()
                        .unwrap_or_default();
                    if idle >= limit {
                        return Ok(RunOutcome::IdleTimeout);
                    }
                }
            }
        }
    };
    tracing::info!(runner = %config.runner_name, job_id = job.job_id, "running job");
    let started = session
        .call::<serde_json::Value>(
            reqwest::Method::POST,
            &format!("/jobs/{}/started", job.job_id),
            None,
            short,
        )
        .await;
    match started {
        Ok(Answer::Gone) => return Ok(RunOutcome::Removed),
        Ok(_) => {}
        // Cancelled between hand-over and start: report back so the runner is released.
        Err(RunnerError::Refused { status: 409, .. }) => {}
        Err(error) => return Err(error),
    }
    let duration = Duration::from_secs_f64(job.duration_seconds.max(0.0));
    let cancelled = tokio::select! {
        _ = options.clock.sleep(duration) => false,
        cancelled = watch_for_cancellation(&session, job.job_id, &options, poll_timeout) => cancelled,
    };
    let conclusion = if cancelled {
        "cancelled".to_string()
    } else {
        job.conclusion.clone()
    };
    let finished = session
        .call::<serde_json::Value>(
            reqwest::Method::POST,
            &format!("/jobs/{}/finished", job.job_id),
            Some(serde_json::json!({"conclusion": conclusion})),
            short,
        )
        .await?;
    if matches!(finished, Answer::Gone) {
        return Ok(RunOutcome::Removed);
    }
    Ok(RunOutcome::Completed {
        job_id: job.job_id,
        conclusion,
    })
}

/// Completes when the job is completed by someone else (cancelled); never otherwise.
async fn watch_for_cancellation(
    session: &Session,
    job_id: u64,
    options: &RunnerOptions,
    poll_timeout: Duration,
) -> bool {
    loop {
        let wait = options.poll_wait.as_secs_f64();
        let answer = session
            .call::<JobState>(
                reqwest::Method::GET,
                &format!("/jobs/{job_id}?wait_seconds={wait}&unless=in_progress"),
                None,
                poll_timeout,
            )
            .await;
        match answer {
            Ok(Answer::Ok(JobState {
                status: JobStatus::Completed,
                conclusion,
            })) => {
                tracing::info!(job_id, ?conclusion, "job completed elsewhere (cancelled)");
                return true;
            }
            Ok(_) => {}
            Err(error) => {
                // Keep running the job; the finish call reports any lasting problem.
                tracing::debug!(%error, "cannot watch the job; retrying");
                options.clock.sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
