//! One delivery in, one HTTP answer out.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::event::{WorkflowJobAction, WorkflowJobEvent, parse_workflow_job};
use crate::execution::{ExecutionStarter, JobExecutionInput, StartOutcome, execution_name};
use crate::filter::{InstallationFilter, JobFilter};
use crate::forward::{JobEventUpdate, JobEvents};
use crate::signature::WebhookSecrets;

/// Default body limit. A `workflow_job` payload is about 10 KiB; GitHub caps any payload at
/// 25 MB, and such bodies are never workflow jobs, so they are refused before they are hashed.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Default budget for starting an execution or forwarding an event. GitHub gives up on a
/// delivery after 10 seconds; this leaves room for the rest of the request.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(8);

/// A webhook delivery as received over HTTP.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the intake is set up.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub secrets: WebhookSecrets,
    pub filter: JobFilter,
    /// The GitHub App installations whose events are taken (default: any, for a token).
    pub installations: InstallationFilter,
    pub max_body_bytes: usize,
    pub call_timeout: Duration,
}

impl IntakeConfig {
    pub fn new(secrets: WebhookSecrets) -> Self {
        IntakeConfig {
            secrets,
            filter: JobFilter::default(),
            installations: InstallationFilter::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// What to do with a verified `workflow_job` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start the job execution `name` with `input`.
    Start {
        name: String,
        input: JobExecutionInput,
    },
    /// Hand the update to the job flow.
    Forward(JobEventUpdate),
    /// Nothing to do, and why.
    Ignore(String),
}

/// The answer to a delivery: an HTTP status and a short JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntakeResponse {
    #[serde(skip)]
    pub status: StatusCode,
    /// `started`, `duplicate`, `forwarded`, `ignored`, `pong`, `rejected`, `not_set_up` or
    /// `unavailable`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl IntakeResponse {
    fn new(status: StatusCode, outcome: &'static str) -> Self {
        IntakeResponse {
            status,
            outcome,
            execution: None,
            reason: None,
        }
    }

    /// The answer while runway has no GitHub credentials yet: 503, and where to set it up.
    /// Nothing is verified or started (there is no secret to verify with).
    pub fn not_set_up(setup_url: &str) -> Self {
        IntakeResponse {
            reason: Some(format!("runway is not set up yet: open {setup_url}")),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_set_up")
        }
    }

    /// The answer when what the intake needs (its stored secret) cannot be read now: 503,
    /// nothing verified or started; GitHub's redelivery can bring the delivery again.
    pub fn unavailable(reason: &str) -> Self {
        IntakeResponse {
            reason: Some(reason.to_owned()),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }

    fn rejected(status: StatusCode, reason: impl Into<String>) -> Self {
        IntakeResponse {
            reason: Some(reason.into()),
            ..Self::new(status, "rejected")
        }
    }

    fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// The webhook intake: verify, parse, filter, then start or forward.
#[derive(Debug, Clone)]
pub struct Intake {
    config: Arc<IntakeConfig>,
    starter: Arc<dyn ExecutionStarter>,
    job_events: Option<Arc<dyn JobEvents>>,
}

impl Intake {
    /// An intake that starts executions with `starter`. Until [`Intake::with_job_events`]
    /// connects the job flow, `in_progress` / `completed` events are acknowledged and dropped.
    pub fn new(config: IntakeConfig, starter: Arc<dyn ExecutionStarter>) -> Self {
        Intake {
            config: Arc::new(config),
            starter,
            job_events: None,
        }
    }

    /// Forwards `in_progress` / `completed` events to `job_events`.
    pub fn with_job_events(mut self, job_events: Arc<dyn JobEvents>) -> Self {
        self.job_events = Some(job_events);
        self
    }

    pub fn config(&self) -> &IntakeConfig {
        &self.config
    }

    /// Handles one delivery. Every log line carries the delivery id.
    pub async fn handle(&self, delivery: Delivery) -> IntakeResponse {
        let delivery_id = header_str(&delivery.headers, "x-github-delivery").map(str::to_owned);
        let event_name = header_str(&delivery.headers, "x-github-event").map(str::to_owned);
        let span = info_span!(
            "webhook_delivery",
            delivery = delivery_id.as_deref().unwrap_or("-"),
            event = event_name.as_deref().unwrap_or("-"),
        );
        async move {
            let response = self
                .handle_in_span(&delivery, delivery_id.as_deref(), event_name.as_deref())
                .await;
            info!(
                status = response.status.as_u16(),
                outcome = response.outcome,
                reason = response.reason.as_deref(),
                "delivery handled"
            );
            response
        }
        .instrument(span)
        .await
    }

    async fn handle_in_span(
        &self,
        delivery: &Delivery,
        delivery_id: Option<&str>,
        event_name: Option<&str>,
    ) -> IntakeResponse {
        // The size check needs no secret and bounds the hashing work, so it comes first.
        if delivery.body.len() > self.config.max_body_bytes {
            return IntakeResponse::rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", self.config.max_body_bytes),
            );
        }
        let signature = delivery
            .headers
            .get("x-hub-signature-256")
            .map(|v| v.as_bytes());
        if let Err(err) = self.config.secrets.verify(signature, &delivery.body) {
            warn!(error = %err, "signature refused");
            return IntakeResponse::rejected(StatusCode::UNAUTHORIZED, "invalid signature");
        }
        match event_name {
            Some("workflow_job") => {}
            Some("ping") => return IntakeResponse::new(StatusCode::OK, "pong"),
            Some(other) => {
                return IntakeResponse::new(StatusCode::ACCEPTED, "ignored")
                    .with_reason(format!("event {other} is not handled"));
            }
            None => {
                return IntakeResponse::rejected(
                    StatusCode::BAD_REQUEST,
                    "missing X-GitHub-Event header",
                );
            }
        }
        let event = match parse_workflow_job(&delivery.body) {
            Ok(event) => event,
            Err(err) => return IntakeResponse::rejected(StatusCode::BAD_REQUEST, err.to_string()),
        };
        debug!(job = event.job.id, action = event.action.as_str(), repository = %event.repository.full_name, "workflow_job parsed");
        // Before any decision: an event of another installation starts, forwards and counts
        // nothing (its runner names could otherwise move runway's runners' state).
        if let Err(reason) = self.config.installations.check(&event) {
            warn!(
                installation = event.installation.as_ref().map(|i| i.id),
                job = event.job.id,
                repository = %event.repository.full_name,
                %reason,
                "event of another installation ignored"
            );
            return IntakeResponse::new(StatusCode::ACCEPTED, "ignored").with_reason(reason);
        }
        match self.decide(&event, delivery_id) {
            Decision::Ignore(reason) => {
                IntakeResponse::new(StatusCode::ACCEPTED, "ignored").with_reason(reason)
            }
            Decision::Start { name, input } => self.start(name, &input).await,
            Decision::Forward(update) => self.forward(update).await,
        }
    }

    /// What to do with a verified event; pure and cheap (see [`decide`]).
    pub fn decide(&self, event: &WorkflowJobEvent, delivery_id: Option<&str>) -> Decision {
        decide(&self.config.filter, event, delivery_id)
    }

    async fn start(&self, name: String, input: &JobExecutionInput) -> IntakeResponse {
        let input = match serde_json::to_string(input) {
            Ok(input) => input,
            Err(err) => {
                return IntakeResponse::rejected(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    err.to_string(),
                );
            }
        };
        let call = self.starter.start_execution(&name, &input);
        let outcome = match tokio::time::timeout(self.config.call_timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                warn!(execution = %name, "starting the execution timed out");
                return IntakeResponse::rejected(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "starting the job execution timed out",
                );
            }
        };
        match outcome {
            Ok(StartOutcome::Started { execution_id }) => {
                info!(execution = %name, execution_id = %execution_id, "job execution started");
                IntakeResponse {
                    execution: Some(name),
                    ..IntakeResponse::new(StatusCode::ACCEPTED, "started")
                }
            }
            Ok(StartOutcome::AlreadyExists) => {
                info!(execution = %name, "job execution already exists");
                IntakeResponse {
                    execution: Some(name),
                    ..IntakeResponse::new(StatusCode::OK, "duplicate")
                }
            }
            Err(err) => {
                warn!(execution = %name, error = %err, "job execution not started");
                IntakeResponse::rejected(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
        }
    }

    async fn forward(&self, update: JobEventUpdate) -> IntakeResponse {
        let Some(job_events) = &self.job_events else {
            return IntakeResponse::new(StatusCode::ACCEPTED, "ignored")
                .with_reason("no job flow is connected to receive job events");
        };
        let call = job_events.job_event(update);
        match tokio::time::timeout(self.config.call_timeout, call).await {
            Ok(Ok(())) => IntakeResponse::new(StatusCode::ACCEPTED, "forwarded"),
            Ok(Err(err)) => {
                warn!(error = %err, "job event not forwarded");
                IntakeResponse::rejected(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            Err(_) => IntakeResponse::rejected(
                StatusCode::SERVICE_UNAVAILABLE,
                "forwarding the job event timed out",
            ),
        }
    }
}

/// What the intake does with a verified `workflow_job` event, given its filter: pure and cheap.
/// A `queued` job that passes `filter` is started as `job-<job id>-r<repo id>-a<attempt>` with
/// [`JobExecutionInput::from_event`]; the reaper builds the same decision for a queued job
/// whose webhook never arrived.
pub fn decide(filter: &JobFilter, event: &WorkflowJobEvent, delivery_id: Option<&str>) -> Decision {
    if let Err(reason) = filter.check(event) {
        return Decision::Ignore(reason);
    }
    match event.action {
        WorkflowJobAction::Queued => Decision::Start {
            name: execution_name(event.repository.id, event.job.id, event.job.run_attempt),
            input: JobExecutionInput::from_event(event, delivery_id),
        },
        WorkflowJobAction::Waiting => Decision::Ignore(
            "the job waits for an approval; it is started when it is queued".to_owned(),
        ),
        WorkflowJobAction::InProgress | WorkflowJobAction::Completed => {
            match JobEventUpdate::from_event(event, delivery_id) {
                Some(update) => Decision::Forward(update),
                None => Decision::Ignore("nothing to forward".to_owned()),
            }
        }
    }
}

/// A header as text, cut to 100 bytes: it is logged before the signature is checked.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let text = headers.get(name).and_then(|value| value.to_str().ok())?;
    // Header values that pass `to_str` are ASCII, so any byte index is a char boundary.
    Some(&text[..text.len().min(100)])
}
