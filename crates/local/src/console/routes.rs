//! The console's GET routes: four pages, their script and style, and the JSON they poll.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

use super::Console;
use super::api::ExecutionFilter;
use super::assets;

pub(super) fn router(console: Console) -> Router {
    Router::new()
        .route("/", get(executions_page))
        .route("/executions/{name}", get(execution_page))
        .route("/pools", get(pools_page))
        .route("/metrics", get(metrics_page))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
        .route("/console/api/executions", get(executions))
        .route("/console/api/executions/{name}", get(execution))
        .route("/console/api/graph", get(graph))
        .route("/console/api/pools", get(pools))
        .route("/console/api/metrics", get(metrics))
        .route("/console/api/runners/{name}/log", get(runner_log))
        .fallback(not_found)
        .with_state(console)
}

async fn runner_log(State(console): State<Console>, Path(name): Path<String>) -> Response {
    match console.runner_log(&name).await {
        Ok(Some(lines)) => fresh(json!({"runner": name, "lines": lines})),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            format!("no output of local runner {name}"),
        ),
        Err(error) => problem(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn executions_page() -> Html<String> {
    Html(assets::page("Executions", "executions", None))
}

async fn execution_page(Path(name): Path<String>) -> Html<String> {
    Html(assets::page(&name, "execution", Some(&name)))
}

async fn pools_page() -> Html<String> {
    Html(assets::page("Pools", "pools", None))
}

async fn metrics_page() -> Html<String> {
    Html(assets::page("Metrics", "metrics", None))
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        assets::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        assets::STYLE,
    )
        .into_response()
}

/// JSON that is read again every second: never cached.
fn fresh(body: impl serde::Serialize) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn problem(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": message})),
    )
        .into_response()
}

async fn executions(
    State(console): State<Console>,
    Query(filter): Query<ExecutionFilter>,
) -> Response {
    fresh(console.executions(&filter))
}

/// How long an execution page's request waits for something new before it is answered
/// with what there is.
const LONG_POLL: Duration = Duration::from_secs(10);

/// `?after=N`: the page already shows N events of the execution.
#[derive(Debug, Deserialize)]
struct Since {
    after: Option<usize>,
}

async fn execution(
    State(console): State<Console>,
    Path(name): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    let detail = match since.after {
        Some(after) => console.execution_after(&name, after, LONG_POLL).await,
        None => console.execution(&name),
    };
    match detail {
        Some(detail) => fresh(detail),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("no execution of the job machine is named {name}"),
        ),
    }
}

async fn graph(State(console): State<Console>) -> Response {
    fresh(console.graph())
}

async fn pools(State(console): State<Console>) -> Response {
    match console.pools().await {
        Ok(pools) => fresh(pools),
        Err(error) => {
            tracing::warn!(%error, "the console could not read the pools");
            problem(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
    }
}

async fn metrics(State(console): State<Console>) -> Response {
    fresh(console.metrics())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(assets::page("Not found", "missing", None)),
    )
        .into_response()
}
