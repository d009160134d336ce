//! [`GitHub`] over GitHub's REST API (api.github.com or GitHub Enterprise Server).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, ETAG, HeaderMap, IF_NONE_MATCH, RETRY_AFTER, USER_AGENT,
};
use reqwest::{Method, StatusCode};
use runway_clock::SharedClock;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::GitHub;
use crate::auth::{Credentials, InstallationToken};
use crate::cache::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES, ResponseCache};
use crate::error::GitHubError;
use crate::secret::Secret;
use crate::types::{
    InstallationRepository, JitConfig, JitConfigRequest, RegistrationToken, Runner, RunnerList,
    RunnerScope, WorkflowJob, WorkflowRun, segment,
};
use crate::usage::{ApiUsage, UsageCounters, call_deadline};

/// The public GitHub API.
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// The REST API version runway is written against.
pub const API_VERSION: &str = "2022-11-28";
const RUNNERS_PER_PAGE: usize = 100;
/// Bounds pagination: 100 pages of 100 runners.
const MAX_RUNNER_PAGES: usize = 100;
/// Runs, jobs and repositories are listed 100 a page (GitHub's maximum) ...
const ITEMS_PER_PAGE: usize = 100;
/// ... up to 100 pages: 10,000 of each per call.
const MAX_ITEM_PAGES: usize = 100;

/// The REST API base URL of a GitHub Enterprise Server host: `https://HOST/api/v3`.
pub fn enterprise_server_url(host: &str) -> String {
    format!("https://{}/api/v3", host.trim_end_matches('/'))
}

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A rate limit that lifts within this is waited out; a longer one is returned as
    /// [`GitHubError::RateLimited`] so the caller can wait without holding a request open.
    pub max_rate_limit_wait: Duration,
    /// The longest one call may take, its retries and waits included: a wait that would end
    /// past it is not made, and the call returns its (retryable) error instead. `None`: only
    /// a deadline set with [`crate::with_call_deadline`] bounds the call.
    pub call_budget: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            max_rate_limit_wait: Duration::from_secs(60),
            call_budget: None,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2_u32.saturating_pow(failures.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Secondary rate limits without `Retry-After`: GitHub asks to wait at least a minute.
const SECONDARY_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A GitHub REST client.
#[derive(Debug)]
pub struct RestGitHub {
    http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    clock: SharedClock,
    retry: RetryPolicy,
    installation_token: tokio::sync::Mutex<Option<InstallationToken>>,
    /// `GET` answers with an `ETag`, for conditional requests.
    cache: ResponseCache,
    usage: UsageCounters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    /// The installation token (or the personal token).
    Installation,
    /// The App's own JWT.
    App,
}

impl RestGitHub {
    /// A client for the API at `base_url` ([`GITHUB_API_URL`], or
    /// [`enterprise_server_url`] for GitHub Enterprise Server). Time (token expiry, retry
    /// waits, rate-limit resets) is read from `clock`.
    pub fn new(
        base_url: &str,
        credentials: Credentials,
        clock: SharedClock,
    ) -> Result<Self, GitHubError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(GitHubError::Config {
                message: format!(
                    "the GitHub API URL {base_url:?} must start with https:// (e.g. https://api.github.com or https://HOST/api/v3)"
                ),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| GitHubError::Config {
                message: format!("could not build the HTTP client: {err}"),
            })?;
        Ok(RestGitHub {
            http,
            base_url,
            credentials,
            clock,
            retry: RetryPolicy::default(),
            installation_token: tokio::sync::Mutex::new(None),
            cache: ResponseCache::new(DEFAULT_CACHE_ENTRIES, DEFAULT_CACHE_BYTES),
            usage: UsageCounters::default(),
        })
    }

    /// Uses `http` for requests (proxies, custom roots, timeouts).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Remembers at most `entries` answers of at most `bytes` in all for conditional requests
    /// (0 entries: none).
    pub fn with_response_cache(mut self, entries: usize, bytes: usize) -> Self {
        self.cache = ResponseCache::new(entries, bytes);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The deadline of a call starting now: the policy's budget and the caller's deadline,
    /// whichever comes first.
    fn deadline(&self) -> Option<DateTime<Utc>> {
        let budget = self.retry.call_budget.map(|budget| {
            let budget = chrono::Duration::from_std(budget).unwrap_or(chrono::Duration::MAX);
            self.clock
                .now()
                .checked_add_signed(budget)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        });
        match (budget, call_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The bearer token for `who`, fetching an installation token when none is fresh.
    async fn bearer(&self, who: As) -> Result<Secret, GitHubError> {
        let app = match (&self.credentials, who) {
            (Credentials::Token(token), _) => return Ok(token.clone()),
            (Credentials::App(app), As::App) => return app.jwt(self.clock.now()),
            (Credentials::App(app), As::Installation) => app,
        };
        // Holding the lock while fetching: concurrent callers wait for one fetch.
        let mut cached = self.installation_token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.fresh_at(self.clock.now())) {
            return Ok(token.token.clone());
        }
        let path = format!("/app/installations/{}/access_tokens", app.installation_id());
        // Boxed: `call` authenticates through `bearer`, here with the App JWT only.
        let token: InstallationToken =
            Box::pin(self.call(Method::POST, &path, &[], None, As::App)).await?;
        debug!(expires_at = %token.expires_at, "installation token obtained");
        let secret = token.token.clone();
        *cached = Some(token);
        Ok(secret)
    }

    async fn forget_installation_token(&self) {
        *self.installation_token.lock().await = None;
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        who: As,
    ) -> Result<T, GitHubError> {
        let (status, bytes) = self.send(method, path, query, body, who).await?;
        serde_json::from_slice(&bytes).map_err(|err| GitHubError::Unexpected {
            status: status.as_u16(),
            message: format!("the response to {path} could not be read: {err}"),
        })
    }

    /// Sends one request with retries; the body of the successful response. A `GET` whose
    /// earlier answer carried an `ETag` is sent with `If-None-Match`, and a `304` answer gives
    /// the remembered body back.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        who: As,
    ) -> Result<(StatusCode, bytes::Bytes), GitHubError> {
        let url = format!("{}{}", self.base_url, path);
        let cache_key = (method == Method::GET).then(|| cache_key(who, &url, query));
        let deadline = self.deadline();
        let mut failures = 0_u32;
        let mut refreshed_token = false;
        loop {
            let token = self.bearer(who).await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
                .header(USER_AGENT, concat!("runway/", env!("CARGO_PKG_VERSION")))
                .header(AUTHORIZATION, format!("Bearer {}", token.expose()));
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let cached = cache_key.as_deref().and_then(|key| self.cache.get(key));
            if let Some(cached) = &cached {
                request = request.header(IF_NONE_MATCH, cached.etag.as_str());
            }
            if let Some(left) = deadline.map(|deadline| time_left(self.clock.now(), deadline))
                && left < REQUEST_TIMEOUT
            {
                // The request itself must not outlive the deadline either.
                request = request.timeout(left.max(MIN_REQUEST_TIME));
            }
            self.usage.sent();
            let attempt_error = match request.send().await {
                Err(err) => GitHubError::Transport {
                    message: transport_message(&err),
                },
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    self.usage.saw(&headers);
                    let bytes = response
                        .bytes()
                        .await
                        .map_err(|err| GitHubError::Transport {
                            message: transport_message(&err),
                        });
                    debug!(method = %method, path, status = status.as_u16(), "GitHub answered");
                    if status == StatusCode::NOT_MODIFIED
                        && let Some(cached) = cached
                    {
                        self.usage.not_modified();
                        return Ok((StatusCode::OK, cached.body));
                    }
                    if status.is_success() {
                        let bytes = bytes?;
                        if let (Some(key), Some(etag)) = (
                            cache_key.as_deref(),
                            headers.get(ETAG).and_then(|v| v.to_str().ok()),
                        ) {
                            self.cache.put(key, etag, bytes.clone());
                        }
                        return Ok((status, bytes));
                    }
                    let message = error_message(bytes.as_deref().unwrap_or_default());
                    let error = self.classify(status, &headers, message);
                    if matches!(error, GitHubError::Unauthorized { .. })
                        && who == As::Installation
                        && matches!(self.credentials, Credentials::App(_))
                        && !refreshed_token
                    {
                        // A revoked or rotated installation token: fetch a new one, once.
                        refreshed_token = true;
                        self.forget_installation_token().await;
                        continue;
                    }
                    error
                }
            };
            failures += 1;
            let wait = match &attempt_error {
                GitHubError::RateLimited { retry_after }
                    if *retry_after <= self.retry.max_rate_limit_wait =>
                {
                    *retry_after
                }
                GitHubError::Server { .. } | GitHubError::Transport { .. } => {
                    self.retry.backoff(failures)
                }
                _ => return Err(attempt_error),
            };
            if failures >= self.retry.max_attempts {
                return Err(attempt_error);
            }
            if let Some(deadline) = deadline
                && wait + MIN_REQUEST_TIME > time_left(self.clock.now(), deadline)
            {
                // Waiting would outlive the caller: give it the error to retry later.
                warn!(method = %method, path, error = %attempt_error, wait_ms = wait.as_millis() as u64, "GitHub request failed; no time left to retry within the call's deadline");
                return Err(attempt_error);
            }
            warn!(method = %method, path, error = %attempt_error, wait_ms = wait.as_millis() as u64, "GitHub request failed; retrying");
            self.clock.sleep(wait).await;
        }
    }

    /// Every page of a list answered as `{"total_count": n, "<key>": [...]}`.
    async fn paged<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        key: &str,
    ) -> Result<Vec<T>, GitHubError> {
        let mut items = Vec::new();
        for page in 1..=MAX_ITEM_PAGES {
            let mut page_query = query.to_vec();
            page_query.push(("per_page", ITEMS_PER_PAGE.to_string()));
            page_query.push(("page", page.to_string()));
            let mut answer: serde_json::Value = self
                .call(Method::GET, path, &page_query, None, As::Installation)
                .await?;
            let total = answer["total_count"].as_u64();
            let list = answer
                .get_mut(key)
                .map(serde_json::Value::take)
                .unwrap_or_default();
            let list: Vec<T> =
                serde_json::from_value(list).map_err(|err| GitHubError::Unexpected {
                    status: 200,
                    message: format!("the {key} listed by {path} could not be read: {err}"),
                })?;
            let count = list.len();
            items.extend(list);
            if count < ITEMS_PER_PAGE || total.is_some_and(|total| items.len() as u64 >= total) {
                break;
            }
        }
        Ok(items)
    }

    fn classify(&self, status: StatusCode, headers: &HeaderMap, message: String) -> GitHubError {
        if let Some(retry_after) = self.rate_limit_wait(status, headers, &message) {
            return GitHubError::RateLimited { retry_after };
        }
        match status.as_u16() {
            401 => GitHubError::Unauthorized { message },
            403 => GitHubError::Forbidden { message },
            404 => GitHubError::NotFound { message },
            409 | 422 => GitHubError::Validation {
                status: status.as_u16(),
                message,
            },
            500..=599 => GitHubError::Server {
                status: status.as_u16(),
            },
            other => GitHubError::Unexpected {
                status: other,
                message,
            },
        }
    }

    /// How long a rate-limited answer asks to wait; `None` when it is not a rate limit.
    fn rate_limit_wait(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        message: &str,
    ) -> Option<Duration> {
        if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
            return None;
        }
        if let Some(seconds) = header_u64(headers, RETRY_AFTER.as_str()) {
            return Some(Duration::from_secs(seconds));
        }
        if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
            let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(0);
            let now = self.clock.now().timestamp();
            let wait = i64::try_from(reset)
                .unwrap_or(i64::MAX)
                .saturating_sub(now)
                .max(1);
            return Some(Duration::from_secs(wait.unsigned_abs()));
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            || message.to_ascii_lowercase().contains("rate limit")
        {
            return Some(SECONDARY_RATE_LIMIT_WAIT);
        }
        None
    }
}

/// One request's own bound (the client's default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request is given at least this long, even when the deadline is nearer: a call always
/// makes one attempt.
const MIN_REQUEST_TIME: Duration = Duration::from_secs(1);

fn time_left(now: DateTime<Utc>, deadline: DateTime<Utc>) -> Duration {
    (deadline - now).to_std().unwrap_or(Duration::ZERO)
}

/// The cache key of a `GET`: who asks (an App JWT and an installation token see different
/// things), the URL and the query.
fn cache_key(who: As, url: &str, query: &[(&str, String)]) -> String {
    let mut key = format!("{who:?} {url}");
    for (index, (name, value)) in query.iter().enumerate() {
        key.push(if index == 0 { '?' } else { '&' });
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    key
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// GitHub's `message` (and first validation error), short; never the request itself.
fn error_message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from("no details");
    };
    let mut message = value["message"].as_str().unwrap_or("no details").to_owned();
    if let Some(first) = value["errors"].as_array().and_then(|errors| errors.first()) {
        let detail = first["message"]
            .as_str()
            .or_else(|| first["code"].as_str())
            .unwrap_or_default();
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
    }
    message.truncate(300);
    message
}

fn transport_message(err: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, which holds no credentials here.
    let mut text = err.to_string();
    if err.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

#[async_trait]
impl GitHub for RestGitHub {
    async fn generate_jit_config(
        &self,
        scope: &RunnerScope,
        request: &JitConfigRequest,
    ) -> Result<JitConfig, GitHubError> {
        let path = format!("{}/actions/runners/generate-jitconfig", scope.path_prefix());
        let body = serde_json::to_value(request).map_err(|err| GitHubError::Config {
            message: err.to_string(),
        })?;
        self.call(Method::POST, &path, &[], Some(&body), As::Installation)
            .await
    }

    async fn registration_token(
        &self,
        scope: &RunnerScope,
    ) -> Result<RegistrationToken, GitHubError> {
        let path = format!("{}/actions/runners/registration-token", scope.path_prefix());
        self.call(Method::POST, &path, &[], None, As::Installation)
            .await
    }

    async fn workflow_job(
        &self,
        owner: &str,
        repo: &str,
        job_id: u64,
    ) -> Result<WorkflowJob, GitHubError> {
        let path = format!(
            "/repos/{}/{}/actions/jobs/{job_id}",
            segment(owner),
            segment(repo)
        );
        self.call(Method::GET, &path, &[], None, As::Installation)
            .await
    }

    async fn list_runners(
        &self,
        scope: &RunnerScope,
        name: Option<&str>,
    ) -> Result<Vec<Runner>, GitHubError> {
        let path = format!("{}/actions/runners", scope.path_prefix());
        let mut runners = Vec::new();
        for page in 1..=MAX_RUNNER_PAGES {
            let mut query = vec![
                ("per_page", RUNNERS_PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            if let Some(name) = name {
                query.push(("name", name.to_owned()));
            }
            let list: RunnerList = self
                .call(Method::GET, &path, &query, None, As::Installation)
                .await?;
            let count = list.runners.len();
            runners.extend(list.runners);
            if count < RUNNERS_PER_PAGE || runners.len() as u64 >= list.total_count {
                break;
            }
        }
        Ok(runners)
    }

    async fn runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<Runner, GitHubError> {
        let path = format!("{}/actions/runners/{runner_id}", scope.path_prefix());
        self.call(Method::GET, &path, &[], None, As::Installation)
            .await
    }

    async fn delete_runner(&self, scope: &RunnerScope, runner_id: u64) -> Result<(), GitHubError> {
        let path = format!("{}/actions/runners/{runner_id}", scope.path_prefix());
        self.send(Method::DELETE, &path, &[], None, As::Installation)
            .await
            .map(|_| ())
    }

    async fn workflow_runs(
        &self,
        owner: &str,
        repo: &str,
        status: &str,
    ) -> Result<Vec<WorkflowRun>, GitHubError> {
        let path = format!("/repos/{}/{}/actions/runs", segment(owner), segment(repo));
        self.paged(&path, &[("status", status.to_owned())], "workflow_runs")
            .await
    }

    async fn workflow_run_jobs(
        &self,
        owner: &str,
        repo: &str,
        run_id: u64,
    ) -> Result<Vec<WorkflowJob>, GitHubError> {
        let path = format!(
            "/repos/{}/{}/actions/runs/{run_id}/jobs",
            segment(owner),
            segment(repo)
        );
        self.paged(&path, &[], "jobs").await
    }

    async fn installation_repositories(&self) -> Result<Vec<InstallationRepository>, GitHubError> {
        self.paged("/installation/repositories", &[], "repositories")
            .await
    }

    fn usage(&self) -> ApiUsage {
        self.usage.snapshot()
    }
}
