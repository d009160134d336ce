//! The HTTP endpoint (`POST /webhook`) for `runway local` and any other plain server.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::intake::{Delivery, Intake, IntakeResponse};

/// The path GitHub posts deliveries to.
pub const WEBHOOK_PATH: &str = "/webhook";

/// A router serving `POST /webhook` with `intake`.
pub fn router(intake: Intake) -> Router {
    // One byte over the intake's limit still reaches it, so it answers 413 itself.
    let limit = intake.config().max_body_bytes.saturating_add(1);
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(intake)
}

/// The intake once runway is set up. Until then every delivery is answered 503 with the
/// setup URL ([`IntakeResponse::not_set_up`]); setting the intake takes effect with the next
/// delivery, without a restart.
#[derive(Debug, Clone)]
pub struct IntakeSlot {
    current: std::sync::Arc<std::sync::RwLock<Option<Intake>>>,
    setup_url: std::sync::Arc<str>,
}

impl IntakeSlot {
    /// A slot with no intake yet; `setup_url` is where runway is set up.
    pub fn pending(setup_url: &str) -> IntakeSlot {
        IntakeSlot {
            current: Default::default(),
            setup_url: setup_url.into(),
        }
    }

    /// A slot with `intake` in it.
    pub fn ready(intake: Intake, setup_url: &str) -> IntakeSlot {
        let slot = IntakeSlot::pending(setup_url);
        slot.set(intake);
        slot
    }

    pub fn set(&self, intake: Intake) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(intake);
    }

    pub fn current(&self) -> Option<Intake> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Handles a delivery with the intake, or says runway is not set up.
    pub async fn handle(&self, delivery: Delivery) -> IntakeResponse {
        match self.current() {
            Some(intake) => intake.handle(delivery).await,
            None => IntakeResponse::not_set_up(&self.setup_url),
        }
    }
}

/// A router serving `POST /webhook` with whatever intake `slot` holds at each delivery.
pub fn slot_router(slot: IntakeSlot, max_body_bytes: usize) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive_in_slot))
        .layer(DefaultBodyLimit::max(max_body_bytes.saturating_add(1)))
        .with_state(slot)
}

async fn receive_in_slot(
    State(slot): State<IntakeSlot>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    into_http(&slot.handle(Delivery { headers, body }).await)
}

async fn receive(State(intake): State<Intake>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = intake.handle(Delivery { headers, body }).await;
    into_http(&answer)
}

/// The response for an intake answer.
pub fn into_http(answer: &IntakeResponse) -> Response {
    (
        answer.status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body(),
    )
        .into_response()
}
