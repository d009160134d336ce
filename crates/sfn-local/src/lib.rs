//! A Step Functions-compatible HTTP API (AWS JSON 1.0) over the local States Language engine.
//!
//! Point any AWS SDK, the aws CLI or boto3 at it with an endpoint URL; any credentials work
//! (requests may be signed, signatures are not checked):
//!
//! ```text
//! aws stepfunctions list-state-machines --endpoint-url http://127.0.0.1:8083
//! ```
//!
//! [`router`] gives the axum router for a [`StepFunctions`] service; [`serve`] and
//! [`serve_with_shutdown`] run it on a listener. [`router_with_pages`] shares the port with
//! read-only pages (the API itself takes only POST).

use std::future::Future;
use std::io;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
pub use runway_asl::StepFunctions;

mod operations;
pub mod paging;
pub mod protocol;
pub mod shapes;

use protocol::{ApiError, Operation};

/// Step Functions caps a state machine definition at 1 MiB; requests carry little else.
const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

/// The HTTP API: `POST /` with `X-Amz-Target: AWSStepFunctions.<Operation>`.
pub fn router(service: StepFunctions) -> Router {
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(service)
}

/// The HTTP API, with GET and HEAD requests handed to `pages` instead: Step Functions takes
/// only POST, so a web view can live on the same port without shadowing any operation.
pub fn router_with_pages(service: StepFunctions, pages: Router) -> Router {
    let api = router(service);
    Router::new().fallback_service(axum::routing::get_service(pages).fallback_service(api))
}

async fn handle(
    State(service): State<StepFunctions>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = if method != Method::POST {
        Err(ApiError::unknown_operation(format!(
            "Step Functions takes POST requests with an X-Amz-Target header, not {method}"
        )))
    } else {
        Operation::from_target(protocol::target_header(&headers)).and_then(|operation| {
            tracing::debug!(operation = operation.name(), %request_id, "step functions request");
            operations::dispatch(&service, operation, &body)
        })
    };
    let mut response = result.unwrap_or_else(|error| {
        tracing::debug!(%error, %request_id, "step functions request refused");
        error.into_response()
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, service: StepFunctions) -> io::Result<()> {
    axum::serve(listener, router(service)).await
}

/// Serves the API on `listener` until `shutdown` completes, then finishes open requests.
pub async fn serve_with_shutdown<F>(
    listener: tokio::net::TcpListener,
    service: StepFunctions,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use runway_asl::TaskRegistry;
    use runway_clock::SystemClock;
    use tower::ServiceExt;

    fn app() -> Router {
        let service = StepFunctions::new(SystemClock::shared(), TaskRegistry::new());
        let pages = Router::new().route("/", axum::routing::get(|| async { "the pages" }));
        router_with_pages(service, pages)
    }

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn gets_go_to_the_pages_and_posts_to_the_api() {
        let page = app()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(body_text(page).await, "the pages");

        let listed = app()
            .oneshot(
                Request::post("/")
                    .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
        assert!(body_text(listed).await.contains("stateMachines"));
    }
}
