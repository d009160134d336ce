//! Check 3a: the webhook reaches the API and takes the stack's secret. The doctor signs a
//! `ping` event, as GitHub sends one when a webhook is made, with the secret the webhook
//! function reads, and POSTs it to the stack's `WebhookUrl`: runway answers a ping `200
//! pong`, a bad signature `401`, and `503 not_set_up` while the setup page has made no App.

use async_trait::async_trait;
use runway_webhook::WebhookSecrets;
use serde_json::json;

use crate::{DoctorError, Finding};

/// One HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// POSTs to a webhook URL.
#[async_trait]
pub trait Webhooks: Send + Sync {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<HttpAnswer, DoctorError>;
}

/// Over HTTPS, as GitHub delivers.
#[derive(Debug, Clone)]
pub struct HttpWebhooks {
    client: reqwest::Client,
}

impl HttpWebhooks {
    pub fn new() -> Result<HttpWebhooks, DoctorError> {
        let client = reqwest::Client::builder()
            // GitHub gives a receiver ten seconds.
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| DoctorError::Http(error.to_string()))?;
        Ok(HttpWebhooks { client })
    }
}

#[async_trait]
impl Webhooks for HttpWebhooks {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<HttpAnswer, DoctorError> {
        let mut request = self.client.post(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| DoctorError::Http(format!("POST {url}: {error}")))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok(HttpAnswer { status, body })
    }
}

/// The `ping` GitHub sends a new webhook, addressed to `url`.
pub fn ping_body(url: &str) -> Vec<u8> {
    json!({
        "zen": "Practicality beats purity.",
        "hook_id": 0,
        "hook": {
            "type": "App",
            "id": 0,
            "active": true,
            "events": ["workflow_job"],
            "config": {"content_type": "json", "insecure_ssl": "0", "url": url},
        },
    })
    .to_string()
    .into_bytes()
}

/// What the ping check needs besides the URL.
#[derive(Debug, Clone)]
pub struct PingContext<'a> {
    /// The secret the webhook function reads; `None` while setup is pending.
    pub secrets: Option<&'a WebhookSecrets>,
    /// Where that secret is kept, for the advice.
    pub secret_location: &'a str,
    /// The webhook function's name (for its log), if known.
    pub function: Option<&'a str>,
    /// The stack's `SetupUrl` output.
    pub setup_url: Option<&'a str>,
}

/// Check 3a.
pub async fn check_webhook_ping(
    webhooks: &dyn Webhooks,
    url: Option<&str>,
    context: &PingContext<'_>,
) -> Finding {
    const CHECK: &str = "webhook";
    let Some(url) = url else {
        return Finding::fail(
            CHECK,
            "the stack has no WebhookUrl output",
            "update the stack to runway's current template.yaml: sam build && sam deploy",
        );
    };
    let body = ping_body(url);
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", "runway-doctor".to_owned()),
        ("x-github-event", "ping".to_owned()),
        (
            "x-github-delivery",
            format!("runway-doctor-{}", chrono::Utc::now().timestamp_millis()),
        ),
    ];
    if let Some(secrets) = context.secrets {
        headers.push(("x-hub-signature-256", secrets.sign(&body)));
    }
    let logs = match context.function {
        Some(name) => format!("aws logs tail /aws/lambda/{name} --since 30m"),
        None => {
            "the webhook function's log (aws logs tail /aws/lambda/FUNCTION --since 30m)".to_owned()
        }
    };
    let answer = match webhooks.post(url, &headers, body).await {
        Ok(answer) => answer,
        Err(error) => {
            return Finding::fail(
                CHECK,
                format!("cannot reach {url}: {error}"),
                "the API must be reachable from the internet (GitHub delivers there): check \
                 the stack's WebhookApi in the API Gateway console and your network",
            );
        }
    };
    let status = answer.status;
    match status {
        200..=299 => Finding::ok(
            CHECK,
            format!("a signed ping to {url} was answered {status}"),
        ),
        401 => Finding::fail(
            CHECK,
            format!(
                "{url} refused a ping signed with the secret in {} (401): the function checks \
                 deliveries with another secret",
                context.secret_location
            ),
            format!(
                "the webhook function reads its secret when it starts: after changing {}, \
                 restart it (aws lambda update-function-configuration --function-name {} \
                 --description \"restarted $(date +%s)\"); to change the secret without refusing \
                 deliveries, store {{\"current\": \"NEW\", \"previous\": \"OLD\"}} there",
                context.secret_location,
                context.function.unwrap_or("FUNCTION"),
            ),
        ),
        503 if answer.body.contains("not_set_up") => Finding::fail(
            CHECK,
            format!("{url} answers 503 not_set_up: no GitHub App is set up yet"),
            match context.setup_url {
                Some(setup) => format!("open {setup} and make the App (the SetupUrl output)"),
                None => "open the stack's SetupUrl output and make the App".to_owned(),
            },
        ),
        403..=405 => Finding::fail(
            CHECK,
            format!("{url} answered {status}: it is not runway's webhook route"),
            "the API routes POST /webhook to the webhook function: update the stack to \
             runway's template.yaml (sam deploy), and use the WebhookUrl output as is",
        ),
        _ => Finding::fail(
            CHECK,
            format!(
                "{url} answered {status} to a signed ping: {}",
                answer.body.chars().take(200).collect::<String>()
            ),
            format!("the webhook function's log says why: {logs}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ping_names_its_url_and_is_json() {
        let body: serde_json::Value =
            serde_json::from_slice(&ping_body("https://x/webhook")).unwrap();
        assert_eq!(body["hook"]["config"]["url"], "https://x/webhook");
        assert!(body["zen"].is_string());
    }
}
