//! The `webhook` entry point: API Gateway (HTTP API, payload v2) event in, runway-webhook
//! intake, HTTP response out.
//!
//! Environment (see `runway_lambda_support::WebhookSettings`):
//! - `RUNWAY_JOB_STATE_MACHINE_ARN`: the job state machine to start (required);
//! - `RUNWAY_WEBHOOK_SECRET_PARAMETER`: where the webhook secret is stored, an SSM SecureString
//!   name, or a Secrets Manager secret's ARN (read with GetSecretValue); while rotating, the
//!   stored value is `{"current": "NEW", "previous": "OLD"}`. For `sam local invoke`,
//!   `RUNWAY_WEBHOOK_SECRET` (and `RUNWAY_WEBHOOK_SECRET_PREVIOUS`) give the secrets instead;
//! - `RUNWAY_TABLE`: the store, whose watch and runner records route `in_progress` /
//!   `completed` events to the executions waiting for them;
//! - `RUNWAY_GITHUB_APP_ID`, `RUNWAY_GITHUB_INSTALLATION_ID`: with an App, only events of
//!   these installations (comma-separated) are taken;
//! - `RUNWAY_RUNNER_LABEL`, `RUNWAY_ALLOWED_OWNERS`, `RUNWAY_ALLOWED_REPOSITORIES`,
//!   `RUNWAY_WEBHOOK_MAX_BODY_BYTES`, `RUNWAY_WEBHOOK_CALL_TIMEOUT_MS`: see `runway_webhook::env`;
//! - `RUNWAY_GITHUB_APP_SECRET`: with no webhook secret given, the App the setup page
//!   stores: deliveries are answered 503 `not_set_up` (with the setup URL, from the request)
//!   until it is set up, then checked with its webhook secret;
//! - `RUST_LOG`: log filter (default `info`). Logs are JSON lines.
//!
//! The GitHub credential, the configuration document and the policies are not read here.

use lambda_http::{Body, Error, Request, Response, service_fn};
use runway_lambda_support::{Webhook, WebhookSettings, build_webhook, load_aws_config};
use runway_webhook::{Delivery, IntakeResponse};

use crate::origin::{origin, setup_url};

/// The whole life of the webhook function: its intake, then one [`handle`] per request. A
/// setup failure is returned (the runtime reports it as an init error).
pub async fn run() -> Result<(), Error> {
    let settings = WebhookSettings::from_env()?;
    let aws = load_aws_config().await;
    let intake = build_webhook(&settings, &aws, &|name| std::env::var(name).ok()).await?;
    lambda_http::run(service_fn(move |request: Request| {
        let intake = intake.clone();
        async move { handle(&intake, request).await }
    }))
    .await
}

async fn handle(intake: &Webhook, request: Request) -> Result<Response<Body>, Error> {
    let setup_url = setup_url(origin(&request).0.as_deref());
    let (parts, body) = request.into_parts();
    // lambda_http has already undone API Gateway's base64; these are the bytes GitHub signed.
    let body = match body {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        other => other.to_vec(),
    };
    let answer = intake
        .handle(
            Delivery {
                headers: parts.headers,
                body: body.into(),
            },
            &setup_url,
        )
        .await;
    encode(&answer)
}

fn encode(answer: &IntakeResponse) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(Body::Text(answer.body()))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_webhook::{Intake, IntakeConfig, SfnExecutionStarter, WebhookSecrets, sign_with};
    use std::sync::Arc;

    fn intake() -> Webhook {
        // An endpoint nothing listens on: these tests never reach the engine.
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let starter = SfnExecutionStarter::new(aws_sdk_sfn::Client::from_conf(config), "arn");
        Webhook::Ready(Intake::new(
            IntakeConfig::new(WebhookSecrets::new("s").unwrap()),
            Arc::new(starter),
        ))
    }

    fn api_gateway_v2_event(body: &[u8], signature: &str, base64: bool) -> Request {
        use base64::Engine;
        let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let (body, encoded) = if base64 {
            (encode(body), true)
        } else {
            (String::from_utf8(body.to_vec()).unwrap(), false)
        };
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "POST /webhook",
            "rawPath": "/webhook",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/json",
                "x-github-event": "ping",
                "x-github-delivery": "d-1",
                "x-hub-signature-256": signature
            },
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "example.com",
                "domainPrefix": "example", "requestId": "r", "routeKey": "POST /webhook",
                "stage": "$default", "time": "25/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
                "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/1"}
            },
            "body": body,
            "isBase64Encoded": encoded
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[tokio::test]
    async fn a_signed_ping_through_api_gateway_is_200_in_text_and_base64() {
        let body = "{\"zen\":\"Design for failure.\",\"hook_id\":1}".as_bytes();
        let signature = sign_with(b"s", body);
        for base64 in [false, true] {
            let response = handle(&intake(), api_gateway_v2_event(body, &signature, base64))
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "base64: {base64}");
            let answer: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(answer["outcome"], "pong");
        }
    }

    #[tokio::test]
    async fn a_bad_signature_through_api_gateway_is_401() {
        let body = b"{}";
        let response = handle(
            &intake(),
            api_gateway_v2_event(body, &sign_with(b"x", body), false),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 401);
    }
}
