//! Calls between runway's parts inside this process, without sockets: what `runway replay`
//! runs on, where a paused tokio runtime would jump its virtual clock while a task waited on
//! a socket.

use runway_github::{InProcess, InProcessAnswer};
use tower::ServiceExt;

/// The GitHub API of the emulator's `routes` ([`runway_github_emulator::EmulatorHandle::in_process`]),
/// for a [`runway_github::RestGitHub`] to call in this process.
pub fn github_api(routes: axum::Router) -> InProcess {
    InProcess::new(
        move |request: http::Request<bytes::Bytes>| -> InProcessAnswer {
            let routes = routes.clone();
            Box::pin(async move {
                let request = request.map(axum::body::Body::from);
                let response = match routes.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let (parts, body) = response.into_parts();
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(body) => http::Response::from_parts(parts, body),
                    Err(error) => {
                        let mut failed = http::Response::new(bytes::Bytes::from(format!(
                            "{{\"message\":\"the emulator's answer could not be read: {error}\"}}"
                        )));
                        *failed.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                        failed
                    }
                }
            })
        },
    )
}
