//! Test support: a webhook receiver on 127.0.0.1:0 that verifies signatures, App JWTs signed
//! with a test key, and an HTTP client.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use runway_github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, WebhookTarget};
use serde_json::Value;
use sha2::Sha256;

pub const SECRET: &str = "It's a Secret to Everybody";
pub const APP_PRIVATE_KEY: &str = include_str!("../data/app-private-key.pem");
pub const APP_PUBLIC_KEY: &str = include_str!("../data/app-public-key.pem");
pub const OTHER_PRIVATE_KEY: &str = include_str!("../data/other-private-key.pem");

/// One webhook as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub payload: Value,
    /// The receiver's own check of `X-Hub-Signature-256` against [`SECRET`].
    pub signature_valid: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    pub fn action(&self) -> &str {
        self.payload["action"].as_str().unwrap_or_default()
    }
    pub fn job_id(&self) -> u64 {
        self.payload["workflow_job"]["id"]
            .as_u64()
            .unwrap_or_default()
    }
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (wall clock) until `count` webhooks arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let all = self.all();
            if all.len() >= count {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {count} webhooks, got {:#?}", self.all().len());
    }
}

fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let signature_valid = verify(SECRET, &body, &signature);
    receiver.received.lock().unwrap().push(Received {
        headers,
        body,
        payload,
        signature_valid,
    });
    StatusCode::NO_CONTENT
}

/// Starts a receiver; returns its URL.
pub async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/webhook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        repositories: vec![
            "octo-org/app".into(),
            "octo-org/lib".into(),
            "mona/dotfiles".into(),
        ],
        organizations: vec!["octo-org".into()],
        enterprises: vec![runway_github_emulator::EnterpriseConfig {
            slug: "acme".into(),
            organizations: vec!["octo-org".into()],
        }],
        ..EmulatorConfig::default()
    }
}

/// An emulator sending webhooks to a fresh receiver.
pub async fn start_with_receiver(mut config: EmulatorConfig) -> (EmulatorHandle, Receiver) {
    let (receiver, url) = start_receiver().await;
    config.webhook = Some(WebhookTarget {
        url,
        secret: SECRET.into(),
    });
    (Emulator::start(config).await.unwrap(), receiver)
}

/// An App JWT signed with `key`, valid for nine minutes from now.
pub fn app_jwt(key: &str, iss: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": iss});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Sends a request with a token and returns status and JSON body (Null when empty).
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client()
        .request(method, url)
        .header("Accept", "application/vnd.github+json")
        .header("User-Agent", "runway-tests");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}
