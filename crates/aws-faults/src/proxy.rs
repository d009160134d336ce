//! The proxy server: forwards to the upstream, or answers with a fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::call::Call;
use crate::rule::{ArmedRule, Rule};

/// How long [`FaultProxy::shutdown`] lets open connections finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Bodies larger than this are refused (AWS API requests are far smaller).
const MAX_BODY: usize = 64 << 20;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum FaultProxyError {
    #[error("the fault proxy cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    #[error("the fault proxy's upstream {upstream:?} is not an http:// URL")]
    Upstream { upstream: String },
    #[error("the fault proxy's HTTP client did not start: {0}")]
    Client(#[source] reqwest::Error),
}

/// How often one kind of fault was injected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Injected {
    pub service: String,
    pub action: String,
    pub code: String,
}

#[derive(Debug)]
struct Counters {
    rules: Vec<ArmedRule>,
    rng: StdRng,
    injected: BTreeMap<Injected, u64>,
    forwarded: u64,
    enabled: bool,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    counters: Mutex<Counters>,
}

impl Shared {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy; stops when dropped or shut down.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`
    /// (`http://127.0.0.1:5000`), applying `rules` in order: the first rule that matches a call
    /// and fires answers it. `seed` drives every probability, so the same seed and the same
    /// sequence of calls inject the same faults.
    pub async fn start(
        upstream: &str,
        rules: Vec<Rule>,
        seed: u64,
    ) -> Result<FaultProxy, FaultProxyError> {
        if !upstream.starts_with("http://") {
            return Err(FaultProxyError::Upstream {
                upstream: upstream.to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(FaultProxyError::Client)?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            counters: Mutex::new(Counters {
                rules: rules.into_iter().map(ArmedRule::new).collect(),
                rng: StdRng::seed_from_u64(seed),
                injected: BTreeMap::new(),
                forwarded: 0,
                enabled: true,
            }),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(FaultProxyError::Bind)?;
        let addr = listener.local_addr().map_err(FaultProxyError::Bind)?;
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                warn!(%error, "the fault proxy stopped serving");
            }
        });
        Ok(FaultProxy {
            shared,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:<port>`: the endpoint to give the AWS clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the rules (their call counts start again).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.shared.counters().rules = rules.into_iter().map(ArmedRule::new).collect();
    }

    /// Off: every call is forwarded (e.g. while counting what a campaign left behind).
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.counters().enabled = enabled;
    }

    /// Faults injected so far, by service, action and error code.
    pub fn injected(&self) -> BTreeMap<Injected, u64> {
        self.shared.counters().injected.clone()
    }

    /// All faults injected so far.
    pub fn injected_total(&self) -> u64 {
        self.shared.counters().injected.values().sum()
    }

    /// Calls passed on to the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.counters().forwarded
    }

    /// Stops serving: open requests get a moment to finish, idle keep-alive connections
    /// (AWS clients hold them) do not hold the proxy up.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Hop-by-hop headers and those the client recomputes are not forwarded.
fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("the fault proxy could not read the request body: {error}"),
            )
                .into_response();
        }
    };
    let call = Call::identify(parts.uri.query(), &parts.headers, &body);
    let injected = {
        let mut counters = shared.counters();
        let counters = &mut *counters;
        let fault = if counters.enabled {
            counters
                .rules
                .iter_mut()
                .filter(|armed| armed.rule.matches(&call))
                .find_map(|armed| {
                    armed
                        .fires(&mut counters.rng)
                        .then(|| armed.rule.fault.clone())
                })
        } else {
            None
        };
        match fault {
            Some(fault) => {
                let key = Injected {
                    service: call.service.clone(),
                    action: call.action.clone(),
                    code: fault.code.clone(),
                };
                *counters.injected.entry(key).or_default() += 1;
                let request_id = format!("{:032x}", counters.rng.random::<u128>());
                Some((fault, request_id))
            }
            None => {
                counters.forwarded += 1;
                None
            }
        }
    };
    if let Some((fault, request_id)) = injected {
        debug!(service = %call.service, action = %call.action, code = %fault.code, "fault injected");
        return fault.response(&request_id);
    }

    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| forwardable(name)) {
        upstream = upstream.header(name, value);
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => {
            warn!(%error, service = %call.service, action = %call.action, "the upstream did not answer");
            return (
                StatusCode::BAD_GATEWAY,
                format!(
                    "the fault proxy could not reach {}: {error}",
                    shared.upstream
                ),
            )
                .into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the upstream's answer broke off: {error}"),
            )
                .into_response();
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in headers.iter().filter(|(name, _)| forwardable(name)) {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
