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
