//! Test support: an App key pair, a scripted loopback server, GitHub's OpenAPI description.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use runway_clock::SharedClock;
use runway_github::{AppClaims, RestGitHubOptions};
use serde_json::{Value, json};

/// Options without request or connect timeouts: a client whose only timers are the clock's
/// (under paused tokio time a timer of its own could fire while the loopback server works).
pub fn untimed() -> RestGitHubOptions {
    RestGitHubOptions {
        request_timeout: None,
        connect_timeout: None,
        ..RestGitHubOptions::default()
    }
}

pub struct AppKey {
    pub private_pem: String,
    pub public_pem: String,
}

/// One RSA key pair per test binary (generating one takes a moment).
pub fn app_key() -> &'static AppKey {
    static KEY: OnceLock<AppKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        AppKey {
            private_pem: private.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    })
}

/// Verifies an App JWT with the test key; the claims.
pub fn verify_app_jwt(jwt: &str, app_id: &str) -> Result<AppClaims, String> {
    let key =
        DecodingKey::from_rsa_pem(app_key().public_pem.as_bytes()).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[app_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    // Virtual time runs ahead of the wall clock: exp/iat are checked by the callers instead.
    validation.validate_exp = false;
    jsonwebtoken::decode::<AppClaims>(jwt, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: DateTime<Utc>,
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub api_version: Option<String>,
    pub if_none_match: Option<String>,
    pub body: Option<Value>,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug)]
struct Inner {
    clock: SharedClock,
    app_id: String,
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Answer>>,
    tokens_issued: Mutex<u32>,
    /// Every token issued, with the installation it is for.
    issued: Mutex<Vec<(u64, String)>>,
    token_lifetime: chrono::Duration,
}

/// A loopback GitHub that issues installation tokens itself (after checking the App JWT
/// with the public key) and answers every other request from a script, in order.
#[derive(Clone, Debug)]
pub struct Loopback {
    inner: Arc<Inner>,
    pub base_url: String,
}

impl Loopback {
    pub async fn start(clock: SharedClock, app_id: &str) -> Self {
        let inner = Arc::new(Inner {
            clock,
            app_id: app_id.to_owned(),
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            tokens_issued: Mutex::new(0),
            issued: Mutex::new(Vec::new()),
            token_lifetime: chrono::Duration::hours(1),
        });
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Loopback { inner, base_url }
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Requests other than installation token requests.
    pub fn api_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| !is_token_request(&r.path))
            .collect()
    }

    pub fn tokens_issued(&self) -> u32 {
        *self.inner.tokens_issued.lock().unwrap()
    }

    /// The tokens issued for `installation`, oldest first.
    pub fn tokens_for(&self, installation: u64) -> Vec<String> {
        self.inner
            .issued
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| *id == installation)
            .map(|(_, token)| token.clone())
            .collect()
    }
}

fn is_token_request(path: &str) -> bool {
    let path = path.strip_prefix("/api/v3").unwrap_or(path);
    path.starts_with("/app/installations/") && path.ends_with("/access_tokens")
}

async fn answer(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = Recorded {
        at: inner.clock.now(),
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: header("authorization"),
        api_version: header("x-github-api-version"),
        if_none_match: header("if-none-match"),
        body: if body.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        },
    };
    inner.requests.lock().unwrap().push(recorded.clone());
    if is_token_request(uri.path()) {
        let jwt = recorded
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        if let Err(err) = verify_app_jwt(jwt, &inner.app_id) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": err})),
            )
                .into_response();
        }
        let installation: u64 = uri
            .path()
            .trim_end_matches("/access_tokens")
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_default();
        let mut issued = inner.tokens_issued.lock().unwrap();
        *issued += 1;
        let token = format!("ghs_token{issued}");
        inner
            .issued
            .lock()
            .unwrap()
            .push((installation, token.clone()));
        let expires_at = inner.clock.now() + inner.token_lifetime;
        return (
            StatusCode::CREATED,
            axum::Json(json!({"token": token, "expires_at": expires_at.to_rfc3339()})),
        )
            .into_response();
    }
    let next = inner.script.lock().unwrap().pop_front();
    let Some(next) = next else {
        return (
            StatusCode::NOT_IMPLEMENTED,
            axum::Json(json!({"message": "nothing scripted"})),
        )
            .into_response();
    };
    let mut response = (
        StatusCode::from_u16(next.status).unwrap(),
        axum::Json(next.body),
    )
        .into_response();
    for (name, value) in next.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    if next.status == 204 || next.status == 304 {
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

/// GitHub's REST description (`@octokit/openapi`), github.com and GHEC (enterprise endpoints).
pub struct OpenApi {
    specs: Vec<Value>,
}

impl OpenApi {
    pub fn load() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/node/node_modules/@octokit/openapi/generated");
        let specs = ["api.github.com.json", "ghec.json"]
            .iter()
            .map(|name| {
                let path = dir.join(name);
                let text = std::fs::read(&path).unwrap_or_else(|err| {
                    panic!(
                        "{} ({err}): run scripts/setup.sh to install @octokit/openapi",
                        path.display()
                    )
                });
                serde_json::from_slice(&text).unwrap()
            })
            .collect();
        OpenApi { specs }
    }

    /// Checks that `method path` is an operation of the spec and that `body`'s fields are
    /// properties of its request body (and its required ones are present). The template.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, String> {
        for spec in &self.specs {
            for (template, item) in spec["paths"].as_object().unwrap() {
                if !template_matches(template, path) {
                    continue;
                }
                let operation = &item[method.as_str().to_ascii_lowercase()];
                if operation.is_null() {
                    continue;
                }
                let schema = resolve(spec, &operation["requestBody"]);
                let schema = resolve(spec, &schema["content"]["application/json"]["schema"]);
                match body {
                    None => {
                        if schema["required"].as_array().is_some_and(|r| !r.is_empty()) {
                            return Err(format!("{method} {template} requires a body"));
                        }
                    }
                    Some(body) => {
                        let properties = schema["properties"]
                            .as_object()
                            .ok_or_else(|| format!("{method} {template} takes no body"))?;
                        for field in body.as_object().unwrap().keys() {
                            if !properties.contains_key(field) {
                                return Err(format!(
                                    "{method} {template}: {field} is not in the request body schema"
                                ));
                            }
                        }
                        for required in schema["required"].as_array().into_iter().flatten() {
                            if body.get(required.as_str().unwrap()).is_none() {
                                return Err(format!(
                                    "{method} {template}: required {required} missing"
                                ));
                            }
                        }
                    }
                }
                return Ok(template.clone());
            }
        }
        Err(format!(
            "{method} {path} is not an operation in GitHub's REST description"
        ))
    }

    /// The query parameters an operation declares.
    pub fn query_parameters(&self, method: &Method, template: &str) -> Vec<String> {
        for spec in &self.specs {
            let operation = &spec["paths"][template][method.as_str().to_ascii_lowercase()];
            if let Some(parameters) = operation["parameters"].as_array() {
                return parameters
                    .iter()
                    .map(|p| resolve(spec, p))
                    .filter(|p| p["in"] == "query")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect();
            }
        }
        Vec::new()
    }
}

fn resolve(spec: &Value, value: &Value) -> Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let mut target = spec;
            for part in reference.trim_start_matches("#/").split('/') {
                target = &target[part];
            }
            resolve(spec, target)
        }
        None => value.clone(),
    }
}

fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}
