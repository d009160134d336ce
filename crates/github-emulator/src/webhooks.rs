//! Signed `workflow_job` webhook delivery, never retried (GitHub does not retry failed
//! deliveries on its own). Deliveries run in lanes: one job's events always go out in order on
//! one lane; several lanes send different jobs' events at once, as GitHub does.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::shared::Shared;
use crate::state::{Outgoing, SendResult};

/// The `X-GitHub-Hook-ID` the emulator's one webhook carries.
pub const HOOK_ID: u64 = 482_651_339;
/// GitHub's user agent for webhook deliveries (the suffix is a build hash).
pub const USER_AGENT: &str = "GitHub-Hookshot/e6a1a7f";
/// GitHub gives a receiver ten seconds to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex HMAC-SHA256 of body>`, as in `X-Hub-Signature-256`.
pub fn signature_sha256(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `sha1=<hex HMAC-SHA1 of body>`, as in the legacy `X-Hub-Signature`.
pub fn signature_sha1(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends queued webhooks until the emulator shuts down, on `lanes` lanes (at least one).
pub(crate) async fn deliver_all(
    shared: Arc<Shared>,
    mut outbox: mpsc::UnboundedReceiver<Outgoing>,
    lanes: usize,
) {
    let client = match reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; webhooks will not be sent");
            return;
        }
    };
    let lanes = lanes.max(1);
    if lanes == 1 {
        return deliver_lane(shared, client, outbox).await;
    }
    let mut senders = Vec::with_capacity(lanes);
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (sender, receiver) = mpsc::unbounded_channel();
        senders.push(sender);
        running.spawn(deliver_lane(shared.clone(), client.clone(), receiver));
    }
    let lane_count = senders.len() as u64;
    while let Some(outgoing) = outbox.recv().await {
        let lane = (outgoing.job_id % lane_count) as usize;
        if senders[lane].send(outgoing).is_err() {
            break;
        }
    }
    drop(senders);
    while running.join_next().await.is_some() {}
}

/// Sends one lane's webhooks in order.
async fn deliver_lane(
    shared: Arc<Shared>,
    client: reqwest::Client,
    mut outbox: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(outgoing) = outbox.recv().await {
        for copy in 0..outgoing.copies {
            let duplicate = copy > 0;
            let result = send(&shared, &client, &outgoing).await;
            shared.record_delivery(&outgoing, duplicate, result);
        }
    }
}

/// POSTs one webhook: the receiver's status, or why there was none.
async fn send(shared: &Shared, client: &reqwest::Client, outgoing: &Outgoing) -> SendResult {
    let Some(target) = shared.webhook_target() else {
        return Err("no webhook target is configured".to_string());
    };
    if let Some(receiver) = shared.webhook_receiver() {
        return send_in_process(shared, receiver, &target, outgoing).await;
    }
    let mut request = client.post(&target.url);
    for (name, value) in delivery_headers(shared, &target, outgoing) {
        request = request.header(name, value);
    }
    let response = request.body(outgoing.body.clone()).send().await;
    match response {
        Ok(response) => {
            tracing::debug!(
                job_id = outgoing.job_id,
                action = %outgoing.action,
                status = response.status().as_u16(),
                "webhook delivered"
            );
            Ok(response.status().as_u16())
        }
        Err(error) => {
            tracing::warn!(url = %target.url, %error, "webhook delivery failed");
            Err(error.to_string())
        }
    }
}

/// The headers GitHub sends with a `workflow_job` delivery, signatures included: one list for
/// deliveries over HTTP and to a receiver in this process.
fn delivery_headers(
    shared: &Shared,
    target: &crate::config::WebhookTarget,
    outgoing: &Outgoing,
) -> [(&'static str, String); 9] {
    [
        ("Content-Type", "application/json".to_owned()),
        ("User-Agent", USER_AGENT.to_owned()),
        ("X-GitHub-Event", "workflow_job".to_owned()),
        ("X-GitHub-Delivery", outgoing.guid.clone()),
        ("X-GitHub-Hook-ID", HOOK_ID.to_string()),
        (
            "X-GitHub-Hook-Installation-Target-ID",
            shared.app().app_id.to_string(),
        ),
        (
            "X-GitHub-Hook-Installation-Target-Type",
            "integration".to_owned(),
        ),
        (
            "X-Hub-Signature",
            signature_sha1(&target.secret, &outgoing.body),
        ),
        (
            "X-Hub-Signature-256",
            signature_sha256(&target.secret, &outgoing.body),
        ),
    ]
}

/// Hands one webhook to a receiver in this process, with the headers GitHub sends.
async fn send_in_process(
    shared: &Shared,
    receiver: axum::Router,
    target: &crate::config::WebhookTarget,
    outgoing: &Outgoing,
) -> SendResult {
    use tower::ServiceExt;
    let mut request = axum::http::Request::post(&target.url);
    for (name, value) in delivery_headers(shared, target, outgoing) {
        request = request.header(name, value);
    }
    let request = request
        .body(axum::body::Body::from(outgoing.body.clone()))
        .map_err(|error| error.to_string())?;
    match receiver.oneshot(request).await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries" documentation.
        assert_eq!(
            signature_sha256("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(signature_sha1("s", b"x").starts_with("sha1="));
        assert_eq!(signature_sha1("s", b"x").len(), "sha1=".len() + 40);
    }
}
