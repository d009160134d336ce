//! [`GitHub`] over GitHub's REST API (api.github.com or GitHub Enterprise Server).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use octocrab::{FromResponse, OctoBody, Page};
use runway_clock::{Backoff, SharedClock};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::GitHub;
use crate::auth::{
    AppCredentials, Credentials, InstallationRef, InstallationToken, InstallationTokens,
    OwnerInstallations,
};
use crate::cache::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES, ResponseCache};
use crate::error::GitHubError;
use crate::secret::Secret;
use crate::transport::{Answer, RestGitHubOptions, Transport};
use crate::types::{
    AppWebhookConfig, HookDelivery, InstallationRepository, JitConfig, JitConfigRequest,
    RegistrationToken, Runner, RunnerScope, WorkflowJob, WorkflowRun, segment,
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
    /// The wait after `failures` failed tries: runway's one back-off policy
    /// ([`runway_clock::Backoff`]), doubling from `initial_backoff` up to `max_backoff`.
    fn backoff(&self, failures: u32) -> Duration {
        let retries = self.max_attempts.saturating_sub(1).max(1) as usize;
        let backoff = Backoff::exponential(self.initial_backoff, self.max_backoff, retries);
        backoff
            .delay(failures.max(1) as usize)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Secondary rate limits without `Retry-After`: GitHub asks to wait at least a minute.
const SECONDARY_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A GitHub REST client.
///
/// Handles made with [`RestGitHub::for_installation`] share the connection pool, the
/// installation tokens, the answers kept for conditional requests and the usage counters.
#[derive(Debug)]
pub struct RestGitHub {
    transport: Arc<Transport>,
    base_url: String,
    credentials: Credentials,
    clock: SharedClock,
    retry: RetryPolicy,
    /// Installation tokens by installation id.
    tokens: Arc<InstallationTokens>,
    /// The installation found on each owner, when the App serves several.
    owners: Arc<OwnerInstallations>,
    /// `GET` answers with an `ETag`, for conditional requests.
    cache: Arc<ResponseCache>,
    usage: Arc<UsageCounters>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    /// The token of the installation on the request's owner (or the personal token).
    Installation,
    /// The token of this installation.
    InstallationId(u64),
    /// The App's own JWT.
    App,
}

/// Who a request is sent as, once its installation is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    Token,
    App,
    Installation(u64),
}

/// Whose resource a request path names: the owner whose installation acts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner<'a> {
    Repository { owner: &'a str, repo: &'a str },
    Organization(&'a str),
}

impl Owner<'_> {
    fn login(&self) -> &str {
        match self {
            Owner::Repository { owner, .. } => owner,
            Owner::Organization(org) => org,
        }
    }

    /// Where GitHub tells which installation of the App is on this owner (App JWT).
    fn installation_path(&self) -> String {
        match self {
            Owner::Repository { owner, repo } => format!("/repos/{owner}/{repo}/installation"),
            Owner::Organization(org) => format!("/orgs/{org}/installation"),
        }
    }

    /// The owner of `/repos/{owner}/{repo}/…` and `/orgs/{org}/…` (segments as sent);
    /// `None` for paths that name no owner (an enterprise's, the installation's own).
    fn of(path: &str) -> Option<Owner<'_>> {
        let mut segments = path.trim_start_matches('/').split('/');
        match (segments.next(), segments.next(), segments.next()) {
            (Some("repos"), Some(owner), Some(repo)) if !owner.is_empty() && !repo.is_empty() => {
                Some(Owner::Repository { owner, repo })
            }
            (Some("orgs"), Some(org), _) if !org.is_empty() => Some(Owner::Organization(org)),
            _ => None,
        }
    }
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
        Self::with_options(base_url, credentials, clock, RestGitHubOptions::default())
    }

    /// [`RestGitHub::new`] with connection options: an extra CA bundle (GitHub Enterprise
    /// Server behind an internal CA), request and connect timeouts.
    pub fn with_options(
        base_url: &str,
        credentials: Credentials,
        clock: SharedClock,
        options: RestGitHubOptions,
    ) -> Result<Self, GitHubError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(GitHubError::Config {
                message: format!(
                    "the GitHub API URL {base_url:?} must start with https:// (e.g. https://api.github.com or https://HOST/api/v3)"
                ),
            });
        }
        let transport = Transport::new(&base_url, &options)?;
        Ok(RestGitHub {
            transport: Arc::new(transport),
            base_url,
            credentials,
            clock,
            retry: RetryPolicy::default(),
            tokens: Arc::default(),
            owners: Arc::default(),
            cache: Arc::new(ResponseCache::new(
                DEFAULT_CACHE_ENTRIES,
                DEFAULT_CACHE_BYTES,
            )),
            usage: Arc::default(),
        })
    }

    /// A handle acting for another installation of the same GitHub App, sharing this
    /// client's connections, tokens (each installation its own), cached answers and usage
    /// counters, so one process can act for several installations at once. The usage's
    /// rate limit is the one last seen by any of them.
    pub fn for_installation(&self, installation_id: u64) -> Result<RestGitHub, GitHubError> {
        let Credentials::App(app) = &self.credentials else {
            return Err(GitHubError::Config {
                message: "acting for an installation needs GitHub App credentials; this client has a token".to_owned(),
            });
        };
        Ok(RestGitHub {
            transport: self.transport.clone(),
            base_url: self.base_url.clone(),
            credentials: Credentials::App(app.with_installation(installation_id)),
            clock: self.clock.clone(),
            retry: self.retry.clone(),
            tokens: self.tokens.clone(),
            owners: self.owners.clone(),
            cache: self.cache.clone(),
            usage: self.usage.clone(),
        })
    }

    /// Where the App's webhook goes (`GET /app/hook/config`, as the App).
    pub async fn app_webhook_config(&self) -> Result<AppWebhookConfig, GitHubError> {
        self.call(Method::GET, "/app/hook/config", &[], None, As::App)
            .await
    }

    /// The App webhook's latest `per_page` deliveries (1 to 100), newest first
    /// (`GET /app/hook/deliveries`, as the App).
    pub async fn app_webhook_deliveries(
        &self,
        per_page: u8,
    ) -> Result<Vec<HookDelivery>, GitHubError> {
        let per_page = per_page.clamp(1, 100).to_string();
        self.call(
            Method::GET,
            "/app/hook/deliveries",
            &[("per_page", per_page)],
            None,
            As::App,
        )
        .await
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Remembers at most `entries` answers of at most `bytes` in all for conditional requests
    /// (0 entries: none).
    pub fn with_response_cache(mut self, entries: usize, bytes: usize) -> Self {
        self.cache = Arc::new(ResponseCache::new(entries, bytes));
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The installation this handle acts for (`None` with a token).
    pub fn installation_id(&self) -> Option<u64> {
        match &self.credentials {
            Credentials::App(app) => Some(app.installation_id()),
            Credentials::Token(_) => None,
        }
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

    /// Who a request for `path` is sent as: with several installations served, the one on
    /// the path's owner.
    async fn identity(&self, who: As, path: &str) -> Result<Identity, GitHubError> {
        let app = match &self.credentials {
            Credentials::Token(_) => return Ok(Identity::Token),
            Credentials::App(app) => app,
        };
        match who {
            As::App => Ok(Identity::App),
            As::InstallationId(id) => Ok(Identity::Installation(id)),
            As::Installation if app.installations().len() <= 1 && !app.serves_any() => {
                Ok(Identity::Installation(app.installation_id()))
            }
            As::Installation => match Owner::of(path) {
                Some(owner) => self
                    .installation_on(app, owner)
                    .await
                    .map(Identity::Installation),
                None => Ok(Identity::Installation(app.installation_id())),
            },
        }
    }

    /// The installation of the App on `owner`, looked up once an hour, refused unless it is
    /// one this client serves.
    async fn installation_on(
        &self,
        app: &AppCredentials,
        owner: Owner<'_>,
    ) -> Result<u64, GitHubError> {
        let login = owner.login();
        let id = match self.owners.get(login, self.clock.now()) {
            Some(id) => id,
            None => {
                let path = owner.installation_path();
                // Boxed: `call` finds its identity through here, with the App JWT only.
                let found: Result<InstallationRef, GitHubError> =
                    Box::pin(self.call(Method::GET, &path, &[], None, As::App)).await;
                let found = found.map_err(|error| match error {
                    GitHubError::NotFound { .. } => GitHubError::NotFound {
                        message: format!(
                            "the GitHub App is not installed on {login}: install it there, or \
                             leave {login}'s jobs to another runner fleet"
                        ),
                    },
                    other => other,
                })?;
                self.owners.put(login, found.id, self.clock.now());
                found.id
            }
        };
        if !app.serves(id) {
            return Err(GitHubError::Forbidden {
                message: format!(
                    "the GitHub App's installation on {login} is {id}, which runway does not \
                     serve: add {id} to the installations it serves (GitHubInstallationId)"
                ),
            });
        }
        Ok(id)
    }

    /// The bearer token for `who`, fetching an installation token when none is fresh.
    async fn bearer(&self, who: Identity) -> Result<Secret, GitHubError> {
        let installation_id = match (&self.credentials, who) {
            (Credentials::Token(token), _) => return Ok(token.clone()),
            (Credentials::App(app), Identity::App) => return app.jwt(self.clock.now()),
            (Credentials::App(_), Identity::Installation(id)) => id,
            (Credentials::App(app), Identity::Token) => app.installation_id(),
        };
        let slot = self.tokens.slot(installation_id);
        // Holding the lock while fetching: concurrent callers wait for one fetch.
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.fresh_at(self.clock.now())) {
            return Ok(token.token.clone());
        }
        let path = format!("/app/installations/{installation_id}/access_tokens");
        // Boxed: `call` authenticates through `bearer`, here with the App JWT only.
        let token: InstallationToken =
            Box::pin(self.call(Method::POST, &path, &[], None, As::App)).await?;
        debug!(installation_id, expires_at = %token.expires_at, "installation token obtained");
        let secret = token.token.clone();
        *cached = Some(token);
        Ok(secret)
    }

    /// Forgets the installation token GitHub refused, unless another call has replaced it.
    async fn forget_installation_token(&self, installation_id: u64, refused: &Secret) {
        if let Credentials::App(_) = &self.credentials {
            let slot = self.tokens.slot(installation_id);
            let mut cached = slot.lock().await;
            if cached.as_ref().is_some_and(|token| &token.token == refused) {
                *cached = None;
            }
        }
    }

    /// Who a cached answer was for: an App JWT and each installation see different things.
    fn cache_identity(&self, who: Identity) -> String {
        match (&self.credentials, who) {
            (Credentials::App(app), Identity::App) => format!("app {}", app.app_id()),
            (Credentials::App(_), Identity::Installation(id)) => format!("installation {id}"),
            (Credentials::App(app), Identity::Token) => {
                format!("installation {}", app.installation_id())
            }
            (Credentials::Token(_), _) => "token".to_owned(),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        who: As,
    ) -> Result<T, GitHubError> {
        let answer = self.send(method, path, query, body, who).await?;
        serde_json::from_slice(&answer.body).map_err(|err| GitHubError::Unexpected {
            status: answer.status.as_u16(),
            message: format!("the response to {path} could not be read: {err}"),
        })
    }

    /// Sends one request with retries; the successful answer. A `GET` whose earlier answer
    /// carried an `ETag` is sent with `If-None-Match`, and a `304` answer gives the
    /// remembered body back.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        who: As,
    ) -> Result<Answer, GitHubError> {
        // Relative to the base URL: octocrab's base-URI layer puts it (and GHES's /api/v3)
        // in front.
        let path_and_query = format!("{path}{}", query_string(query));
        let who = self.identity(who, path).await?;
        let cache_key = (method == Method::GET).then(|| {
            format!(
                "{} {}{path_and_query}",
                self.cache_identity(who),
                self.base_url
            )
        });
        let body = body
            .map(|body| {
                serde_json::to_vec(body).map_err(|err| GitHubError::Config {
                    message: format!("the request body for {path} could not be written: {err}"),
                })
            })
            .transpose()?;
        let deadline = self.deadline();
        let mut failures = 0_u32;
        let mut refreshed_token = false;
        loop {
            let token = self.bearer(who).await?;
            let cached = cache_key.as_deref().and_then(|key| self.cache.get(key));
            let request = build_request(
                &method,
                &path_and_query,
                &token,
                cached.as_ref().map(|cached| cached.etag.as_str()),
                body.as_deref(),
            )?;
            // The request itself must not outlive the deadline either.
            let bound = deadline
                .map(|deadline| time_left(self.clock.now(), deadline).max(MIN_REQUEST_TIME));
            self.usage.sent();
            let attempt_error = match self.transport.send(request, bound).await {
                Err(error) => error,
                Ok(answer) => {
                    let status = answer.status;
                    self.usage.saw(&answer.headers);
                    debug!(method = %method, path, status = status.as_u16(), "GitHub answered");
                    if status == StatusCode::NOT_MODIFIED
                        && let Some(cached) = cached
                    {
                        self.usage.not_modified();
                        return Ok(Answer {
                            status: StatusCode::OK,
                            headers: answer.headers,
                            body: cached.body,
                        });
                    }
                    if status.is_success() {
                        if let (Some(key), Some(etag)) = (
                            cache_key.as_deref(),
                            answer.headers.get(ETAG).and_then(|v| v.to_str().ok()),
                        ) {
                            self.cache.put(key, etag, answer.body.clone());
                        }
                        return Ok(answer);
                    }
                    let message = error_message(&answer.body);
                    let error = self.classify(status, &answer.headers, message);
                    if let (GitHubError::Unauthorized { .. }, Identity::Installation(id)) =
                        (&error, who)
                        && matches!(self.credentials, Credentials::App(_))
                        && !refreshed_token
                    {
                        // A revoked or rotated installation token: fetch a new one, once.
                        refreshed_token = true;
                        self.forget_installation_token(id, &token).await;
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

    /// One page of a list, read by octocrab: the items (under the list's key, such as
    /// `runners` or `workflow_runs`), `total_count` and the `Link` header's pages.
    async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        who: As,
    ) -> Result<Page<T>, GitHubError> {
        let answer = self.send(Method::GET, path, query, None, who).await?;
        let status = answer.status;
        let mut response = http::Response::new(
            Full::new(answer.body)
                .map_err(|never: Infallible| -> octocrab::Error { match never {} }),
        );
        *response.status_mut() = status;
        *response.headers_mut() = answer.headers;
        Page::<T>::from_response(response)
            .await
            .map_err(|err| GitHubError::Unexpected {
                status: status.as_u16(),
                message: format!("the list {path} answered could not be read: {err}"),
            })
    }

    /// Every page of a list, `per_page` items a page, up to `max_pages` pages. Pages are
    /// asked for by number (stable URLs, so unchanged pages cost a `304`); GitHub's `Link`
    /// header, when there is one, says whether another follows, else a short page or
    /// `total_count` does.
    async fn paged<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        per_page: usize,
        max_pages: usize,
    ) -> Result<Vec<T>, GitHubError> {
        self.paged_as(As::Installation, path, query, per_page, max_pages)
            .await
    }

    /// [`RestGitHub::paged`] sent as `who`.
    async fn paged_as<T: DeserializeOwned>(
        &self,
        who: As,
        path: &str,
        query: &[(&str, String)],
        per_page: usize,
        max_pages: usize,
    ) -> Result<Vec<T>, GitHubError> {
        let mut items = Vec::new();
        for page_number in 1..=max_pages {
            let mut page_query = vec![
                ("per_page", per_page.to_string()),
                ("page", page_number.to_string()),
            ];
            page_query.extend_from_slice(query);
            let page = self.page::<T>(path, &page_query, who).await?;
            let linked = page.next.is_some()
                || page.prev.is_some()
                || page.first.is_some()
                || page.last.is_some();
            let has_next = page.next.is_some();
            let total = page.total_count;
            let count = page.items.len();
            items.extend(page.items);
            let more = if linked {
                has_next
            } else {
                count >= per_page && total.is_none_or(|total| (items.len() as u64) < total)
            };
            if !more {
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

/// A request is given at least this long, even when the deadline is nearer: a call always
/// makes one attempt.
const MIN_REQUEST_TIME: Duration = Duration::from_secs(1);

fn time_left(now: DateTime<Utc>, deadline: DateTime<Utc>) -> Duration {
    (deadline - now).to_std().unwrap_or(Duration::ZERO)
}

/// `?name=value&…`, form-encoded as GitHub reads queries; empty without parameters.
fn query_string(query: &[(&str, String)]) -> String {
    let mut text = String::new();
    for (index, (name, value)) in query.iter().enumerate() {
        text.push(if index == 0 { '?' } else { '&' });
        form_encode(&mut text, name);
        text.push('=');
        form_encode(&mut text, value);
    }
    text
}

fn form_encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
}

/// One request as runway sends it: GitHub's media type and API version, runway's user agent,
/// the bearer token (never logged), the `ETag` to revalidate, the JSON body.
fn build_request(
    method: &Method,
    path_and_query: &str,
    token: &Secret,
    if_none_match: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Request<OctoBody>, GitHubError> {
    let mut authorization =
        HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
            GitHubError::Config {
                message:
                    "the GitHub token holds characters a header cannot carry (a stray newline?)"
                        .to_owned(),
            }
        })?;
    authorization.set_sensitive(true);
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path_and_query)
        .header(ACCEPT, "application/vnd.github+json")
        .header("x-github-api-version", API_VERSION)
        .header(USER_AGENT, concat!("runway/", env!("CARGO_PKG_VERSION")))
        .header(AUTHORIZATION, authorization);
    if let Some(etag) = if_none_match {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let body = match body {
        Some(body) => {
            request = request.header(CONTENT_TYPE, "application/json");
            OctoBody::from(body.to_vec())
        }
        None => {
            if *method != Method::GET {
                request = request.header(CONTENT_LENGTH, "0");
            }
            OctoBody::empty()
        }
    };
    request.body(body).map_err(|err| GitHubError::Config {
        message: format!("the request {method} {path_and_query} could not be made: {err}"),
    })
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
        let name: Vec<(&str, String)> = name
            .map(|name| ("name", name.to_owned()))
            .into_iter()
            .collect();
        self.paged(&path, &name, RUNNERS_PER_PAGE, MAX_RUNNER_PAGES)
            .await
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
        self.paged(
            &path,
            &[("status", status.to_owned())],
            ITEMS_PER_PAGE,
            MAX_ITEM_PAGES,
        )
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
        self.paged(&path, &[], ITEMS_PER_PAGE, MAX_ITEM_PAGES).await
    }

    async fn installation_repositories(&self) -> Result<Vec<InstallationRepository>, GitHubError> {
        // Each served installation's own: a token reaches only its installation's.
        let askers: Vec<As> = match &self.credentials {
            Credentials::App(app) if app.installations().len() > 1 => app
                .installations()
                .iter()
                .map(|id| As::InstallationId(*id))
                .collect(),
            _ => vec![As::Installation],
        };
        let mut repositories = Vec::new();
        for who in askers {
            let listed: Vec<InstallationRepository> = self
                .paged_as(
                    who,
                    "/installation/repositories",
                    &[],
                    ITEMS_PER_PAGE,
                    MAX_ITEM_PAGES,
                )
                .await?;
            repositories.extend(listed);
        }
        Ok(repositories)
    }

    async fn installation_for(&self, owner: &str, repo: &str) -> Result<Option<u64>, GitHubError> {
        let path = format!("/repos/{}/{}", segment(owner), segment(repo));
        match self.identity(As::Installation, &path).await? {
            Identity::Installation(id) => Ok(Some(id)),
            Identity::App | Identity::Token => Ok(None),
        }
    }

    fn usage(&self) -> ApiUsage {
        self.usage.snapshot()
    }
}
