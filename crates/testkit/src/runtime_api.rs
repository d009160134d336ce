//! The Lambda Runtime API on 127.0.0.1, as Lambda serves it to a function's process: `GET
//! .../invocation/next` long-polls for the next queued event, `POST .../{request id}/response`
//! and `.../error` report its result. Each poll is time-stamped, so a caller can tell how long
//! a process took to initialise (its start to its first poll).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::TestkitError;

const RUNTIME: &str = "/2018-06-01/runtime";

/// The X-Ray trace the Runtime API hands with every event (`Root=...;Parent=...;Sampled=1`).
pub const TRACE_ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
pub const TRACE_PARENT: &str = "53995c3f42cd8ad8";

/// What the function reported for one event.
#[derive(Debug)]
pub enum Report {
    Response { request_id: String, body: Value },
    Error { request_id: String, body: Value },
}

/// A queued event: its request id, body and deadline (ms since the epoch; none: a minute
/// after the poll).
type Queued = (String, Value, Option<u128>);

#[derive(Clone)]
struct Shared {
    events: Arc<Mutex<VecDeque<Queued>>>,
    queued: Arc<Notify>,
    polls: Arc<Mutex<Vec<Instant>>>,
    reports: mpsc::UnboundedSender<Report>,
}

/// A running Runtime API; it stops with the test's runtime.
pub struct RuntimeApi {
    address: String,
    shared: Shared,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl RuntimeApi {
    /// Serves the API on a free port of 127.0.0.1.
    pub async fn start() -> Result<RuntimeApi, TestkitError> {
        let (sender, reports) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::default(),
            queued: Arc::default(),
            polls: Arc::default(),
            reports: sender,
        };
        let app = Router::new()
            .route(&format!("{RUNTIME}/invocation/next"), get(next_invocation))
            .route(
                &format!("{RUNTIME}/invocation/{{request_id}}/{{result}}"),
                post(invocation_result),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| TestkitError::RuntimeApi(error.to_string()))?;
        let address = listener
            .local_addr()
            .map_err(|error| TestkitError::RuntimeApi(error.to_string()))?
            .to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            address,
            shared,
            reports,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an event for the function's next poll; its deadline is a minute after the poll.
    pub fn queue(&self, request_id: &str, event: Value) {
        self.push(request_id, event, None);
    }

    /// Queues an event whose deadline (`Lambda-Runtime-Deadline-Ms`) is `deadline_ms`
    /// milliseconds since the Unix epoch: a function's timeout, as Lambda announces it.
    pub fn queue_with_deadline(&self, request_id: &str, event: Value, deadline_ms: u128) {
        self.push(request_id, event, Some(deadline_ms));
    }

    fn push(&self, request_id: &str, event: Value, deadline_ms: Option<u128>) {
        self.shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back((request_id.to_owned(), event, deadline_ms));
        self.shared.queued.notify_one();
    }

    /// The next report, when it comes.
    pub async fn report(&mut self) -> Option<Report> {
        self.reports.recv().await
    }

    /// A report already made, if any.
    pub fn try_report(&mut self) -> Option<Report> {
        self.reports.try_recv().ok()
    }

    /// When the function first asked for work, if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared
            .polls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .copied()
    }
}

/// `GET .../invocation/next`: long-polls until an event is queued, as Lambda does.
async fn next_invocation(State(api): State<Shared>) -> Response {
    api.polls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Instant::now());
    loop {
        let next = api
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        if let Some((request_id, event, deadline)) = next {
            let deadline = deadline.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    + 60_000
            });
            let pairs = [
                ("lambda-runtime-aws-request-id", request_id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:runway-test".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    format!("Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"),
                ),
            ];
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return (headers, axum::Json(event)).into_response();
        }
        api.queued.notified().await;
    }
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!(String::from_utf8_lossy(body)))
}

/// `POST .../invocation/{request_id}/response` and `.../error`.
async fn invocation_result(
    State(api): State<Shared>,
    Path((request_id, result)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = parse(&body);
    let report = match result.as_str() {
        "response" => Report::Response { request_id, body },
        "error" => Report::Error { request_id, body },
        _ => return StatusCode::NOT_FOUND,
    };
    let _ = api.reports.send(report);
    StatusCode::ACCEPTED
}
