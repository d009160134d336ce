//! A loopback proxy in front of moto that answers as SSM does when it throttles and as ECS
//! does when Fargate Spot has no capacity, and records what EC2 and ECS were asked; everything
//! else goes to moto unchanged.
//!
//! The first `throttled` `PutParameter` calls get SSM's real throttling answers (HTTP 400,
//! `ThrottlingException` or `TooManyUpdates` in the AWS JSON 1.1 error shape), alternating,
//! before calls are forwarded again. After [`FaultProxy::no_spot_capacity`], `RunTask` calls
//! for `FARGATE_SPOT` get ECS's answer when Spot has no capacity: HTTP 200, no task, and a
//! failure "Capacity is unavailable at this time...".

// Each test binary uses the part of the proxy its provider needs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Default)]
pub struct Recorded {
    /// `ClientToken` of every `RunInstances` call, in order.
    pub run_instances_tokens: Vec<String>,
    /// `PutParameter` calls that reached the proxy (throttled or not).
    pub put_parameter_calls: usize,
    /// `PutParameter` calls answered with a throttling error.
    pub throttled: usize,
    /// The body of every `RunTask` call, in order.
    pub run_task_calls: Vec<serde_json::Value>,
    /// `RunTask` calls answered with "no capacity".
    pub no_capacity_answers: usize,
}

pub struct FaultProxy {
    pub url: String,
    pub recorded: Arc<Mutex<Recorded>>,
    throttle: Arc<AtomicUsize>,
    no_spot: Arc<AtomicUsize>,
}

struct Shared {
    moto: String,
    client: reqwest::Client,
    recorded: Arc<Mutex<Recorded>>,
    throttle: Arc<AtomicUsize>,
    no_spot: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Starts the proxy in front of `moto` (its endpoint URL), throttling the first
    /// `throttled` `PutParameter` calls.
    pub async fn start(moto: String, throttled: usize) -> FaultProxy {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let throttle = Arc::new(AtomicUsize::new(throttled));
        let no_spot = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            moto,
            client: reqwest::Client::new(),
            recorded: recorded.clone(),
            throttle: throttle.clone(),
            no_spot: no_spot.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            url,
            recorded,
            throttle,
            no_spot,
        }
    }

    /// Throttles the next `count` `PutParameter` calls.
    pub fn throttle_next(&self, count: usize) {
        self.throttle.store(count, Ordering::SeqCst);
    }

    /// Answers the next `count` `RunTask` calls for `FARGATE_SPOT` with "no capacity".
    pub fn no_spot_capacity(&self, count: usize) {
        self.no_spot.store(count, Ordering::SeqCst);
    }

    /// An SDK configuration that talks to moto through the proxy, with the SDK's own retries
    /// off (so the proxy sees every try runway makes).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .empty_test_environment()
            .test_credentials()
            .region(aws_config::Region::from_static("us-east-1"))
            .endpoint_url(&self.url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }
}

fn form_value(body: &[u8], key: &str) -> Option<String> {
    url_decode_pairs(body)
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// `application/x-www-form-urlencoded` pairs (EC2's query protocol).
fn url_decode_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |part: &str| {
        let bytes = part.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (decode(name), decode(value)))
        .collect()
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if target == "AmazonSSM.PutParameter" {
        let throttled = shared
            .throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        let mut recorded = shared.recorded.lock().unwrap();
        recorded.put_parameter_calls += 1;
        if throttled {
            recorded.throttled += 1;
            // SSM's two throttling answers, in turn.
            let (code, message) = if recorded.throttled % 2 == 1 {
                ("ThrottlingException", "Rate exceeded")
            } else {
                (
                    "TooManyUpdates",
                    "There are concurrent updates for the resource that you are trying to modify. Try again later.",
                )
            };
            let body = serde_json::json!({"__type": code, "message": message}).to_string();
            return (
                StatusCode::BAD_REQUEST,
                [
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amzn-requestid", "5d2b6a4e-0000-4000-8000-000000000000"),
                ],
                body,
            )
                .into_response();
        }
    }
    if target == "AmazonEC2ContainerServiceV20141113.RunTask" {
        let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let spot = call["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT";
        let mut recorded = shared.recorded.lock().unwrap();
        recorded.run_task_calls.push(call);
        if spot
            && shared
                .no_spot
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
        {
            recorded.no_capacity_answers += 1;
            // What ECS answers when Fargate Spot has no capacity: a failure, not an error.
            let body = serde_json::json!({
                "tasks": [],
                "failures": [{
                    "reason": "Capacity is unavailable at this time. Please try again later \
                               or in a different availability zone"
                }]
            })
            .to_string();
            return (
                StatusCode::OK,
                [
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amzn-requestid", "6e3c7b5f-0000-4000-8000-000000000000"),
                ],
                body,
            )
                .into_response();
        }
    }
    if form_value(&body, "Action").as_deref() == Some("RunInstances") {
        let token = form_value(&body, "ClientToken").unwrap_or_default();
        shared
            .recorded
            .lock()
            .unwrap()
            .run_instances_tokens
            .push(token);
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let mut request = shared
        .client
        .request(method, format!("{}{path}", shared.moto))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
