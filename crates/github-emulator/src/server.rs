//! The HTTP side: GitHub's REST API, the `/_emulator` control API and the `/_runner` protocol.

// Handlers bail out early with a finished response; its size is irrelevant on that path.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{RateView, entity_tag, matches};
use crate::auth::{Credential, check_app_jwt, credential};
use crate::config::WebhookTarget;
use crate::matching::Scope;
use crate::payloads::{self, timestamp};
use crate::reach::{self, Caller, OutOfReach};
use crate::releases;
use crate::shared::{Shared, random_token};
use crate::state::{Faults, JobStatus, NewJob, WorldError};

/// The longest a runner's long poll may wait.
const MAX_POLL: Duration = Duration::from_secs(30);

type AppState = Arc<Shared>;

pub(crate) fn router(shared: AppState) -> Router {
    let rest = releases::api_router(shared.clone()).merge(rest_router(shared.clone()));
    Router::new()
        .merge(rest.clone())
        .merge(releases::download_router(shared.clone()))
        .nest("/api/v3", rest)
        .merge(crate::manifest::routes())
        .nest("/_emulator", control_router())
        .nest("/_runner", runner_router())
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// REST API

fn rest_router(shared: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for prefix in [
        "/repos/{owner}/{repo}",
        "/orgs/{org}",
        "/enterprises/{enterprise}",
    ] {
        router = router
            .route(
                &format!("{prefix}/actions/runners/generate-jitconfig"),
                post(generate_jitconfig),
            )
            .route(
                &format!("{prefix}/actions/runners/registration-token"),
                post(registration_token),
            )
            .route(
                &format!("{prefix}/actions/runners/remove-token"),
                post(remove_token),
            )
            .route(&format!("{prefix}/actions/runners"), get(list_runners))
            .route(
                &format!("{prefix}/actions/runners/{{runner_id}}"),
                get(get_runner).delete(delete_runner),
            );
    }
    router
        .route("/repos/{owner}/{repo}/actions/jobs/{job_id}", get(get_job))
        .route("/repos/{owner}/{repo}/actions/runs", get(list_runs))
        .route(
            "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
            get(list_run_jobs),
        )
        .route("/installation/repositories", get(installation_repositories))
        .route("/repos/{owner}/{repo}/installation", get(repo_installation))
        .route("/orgs/{org}/installation", get(org_installation))
        .route("/app", get(get_app))
        .route("/app/hook/config", get(app_hook_config))
        .route("/app/hook/deliveries", get(app_hook_deliveries))
        .route(
            "/app/installations/{installation_id}",
            get(get_installation),
        )
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(create_access_token),
        )
        .route(
            "/app-manifests/{code}/conversions",
            post(crate::manifest::convert),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared, rest_gate))
}

async fn not_found() -> Response {
    gh_error(StatusCode::NOT_FOUND, "Not Found")
}

/// Every REST call: injected faults first, then authentication, then what the token reaches,
/// then GitHub's headers.
async fn rest_gate(State(shared): State<AppState>, mut request: Request, next: Next) -> Response {
    let now = shared.clock.now();
    if let Some(status) = shared.update(|world, _| world.take_api_fault()) {
        return fault_response(status, now);
    }
    let path = request.uri().path().to_string();
    let path = path.strip_prefix("/api/v3").unwrap_or(&path);
    // A manifest's conversion needs no credential: the one-time code is the proof.
    if path.starts_with("/app-manifests/") {
        let response = next.run(request).await;
        return with_github_headers(response, now);
    }
    let auth = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match authenticate(&shared, auth, wants_jwt(path), now) {
        Ok(caller) => caller,
        Err(message) => {
            return with_github_headers(gh_error(StatusCode::UNAUTHORIZED, &message), now);
        }
    };
    let admitted = shared.api().admit(now);
    if let Err(rate) = admitted {
        return rate_limited_response(rate, now);
    }
    let out_of_reach = caller.and_then(|caller| reach::check(&shared.app(), caller, path).err());
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    let conditional = *request.method() == axum::http::Method::GET;
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut response = match out_of_reach {
        Some(OutOfReach::Hidden) => not_found_response(),
        Some(denied @ OutOfReach::Forbidden) => {
            gh_error(StatusCode::FORBIDDEN, &denied.to_string())
        }
        None => next.run(request).await,
    };
    let mut not_modified = false;
    if conditional && response.status() == StatusCode::OK {
        (response, not_modified) = tagged(response, if_none_match.as_deref()).await;
    }
    let rate = shared.api().served(now, not_modified);
    with_rate_headers(with_github_headers(response, now), rate)
}

/// Whether a REST path (without `/api/v3`) needs the App's JWT rather than a token.
fn wants_jwt(path: &str) -> bool {
    path.starts_with("/app/") || path == "/app" || path.ends_with("/installation")
}

/// Checks a request's credential against what its path needs. `Ok(None)`: the App's JWT;
/// `Ok(Some(caller))`: a token and who it speaks for; `Err`: GitHub's 401 message.
fn authenticate(
    shared: &Shared,
    auth: Option<&str>,
    wants_jwt: bool,
    now: DateTime<Utc>,
) -> Result<Option<Caller>, String> {
    match (credential(auth), wants_jwt) {
        (None, _) => Err("Requires authentication".to_string()),
        (Some(Credential::Jwt(jwt)), true) => check_app_jwt(&jwt, &shared.app(), now).map(|()| None),
        (Some(Credential::Token(_)), true) => Err(
            "A JSON web token could not be decoded; this endpoint needs the GitHub App's JWT"
                .to_string(),
        ),
        (Some(Credential::Jwt(_)), false) => Err(
            "A JSON web token was given where an installation token or personal access token is needed"
                .to_string(),
        ),
        (Some(Credential::Token(token)), false) => shared
            .caller(&token, now)
            .map(Some)
            .ok_or_else(|| "Bad credentials".to_string()),
    }
}

/// A `200` answer with its `ETag`, or `304 Not Modified` without a body when the request's
/// `If-None-Match` names it (true).
async fn tagged(response: Response, if_none_match: Option<&str>) -> (Response, bool) {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (
            gh_error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
            false,
        );
    };
    let etag = entity_tag(&bytes);
    if let Ok(value) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, value);
    }
    if if_none_match.is_some_and(|wanted| matches(wanted, &etag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return (Response::from_parts(parts, axum::body::Body::empty()), true);
    }
    (
        Response::from_parts(parts, axum::body::Body::from(bytes)),
        false,
    )
}

/// GitHub's answer once the primary rate limit is spent.
fn rate_limited_response(rate: RateView, now: DateTime<Utc>) -> Response {
    let response = gh_error(
        StatusCode::FORBIDDEN,
        "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
    );
    with_rate_headers(with_github_headers(response, now), rate)
}

/// The rate limit as the accounting has it.
fn with_rate_headers(mut response: Response, rate: RateView) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", rate.limit.to_string()),
        ("x-ratelimit-remaining", rate.remaining.to_string()),
        ("x-ratelimit-used", rate.used.to_string()),
        ("x-ratelimit-reset", rate.reset.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn fault_response(status: u16, now: DateTime<Utc>) -> Response {
    if status == 429 {
        // A secondary rate limit: the primary limit's headers stay as they are (the hourly
        // window is not spent), and `Retry-After` says when to try again.
        let mut response = gh_error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
        );
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        return with_github_headers(response, now);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_github_headers(gh_error(status, "Server Error"), now)
}

fn with_github_headers(mut response: Response, now: DateTime<Utc>) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("x-ratelimit-used", "1"),
        ("x-ratelimit-resource", "core"),
        ("x-github-api-version-selected", "2022-11-28"),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if !headers.contains_key("x-ratelimit-reset")
        && let Ok(value) = HeaderValue::from_str(&(now.timestamp() + 3600).to_string())
    {
        headers.insert("x-ratelimit-reset", value);
    }
    let request_id = format!(
        "{:08X}:{:04X}",
        rand::rng().random::<u32>(),
        rand::rng().random::<u16>()
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-github-request-id", value);
    }
    response
}

fn gh_json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn gh_error(status: StatusCode, message: &str) -> Response {
    gh_json(status, payloads::error(message, status.as_u16()))
}

fn world_error(error: WorldError) -> Response {
    match error {
        WorldError::NotFound(_) | WorldError::RunnerGone(_) => {
            gh_error(StatusCode::NOT_FOUND, "Not Found")
        }
        WorldError::Conflict(message) => gh_error(StatusCode::CONFLICT, &message),
        WorldError::Invalid(message) => gh_error(StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

fn scope_from(params: &HashMap<String, String>) -> Option<Scope> {
    if let Some(enterprise) = params.get("enterprise") {
        return Some(Scope::enterprise(enterprise));
    }
    if let Some(org) = params.get("org") {
        return Some(Scope::organization(org));
    }
    match (params.get("owner"), params.get("repo")) {
        (Some(owner), Some(repo)) => Some(Scope::repository(owner, repo)),
        _ => None,
    }
}

/// The scope named by the path, with the configured spelling, or a 404.
fn known_scope(shared: &Shared, params: &HashMap<String, String>) -> Result<Scope, Response> {
    let scope = scope_from(params).ok_or_else(not_found_response)?;
    shared
        .read(|world, _| world.canonical_scope(&scope))
        .map_err(|_| not_found_response())
}

fn not_found_response() -> Response {
    gh_error(StatusCode::NOT_FOUND, "Not Found")
}

fn id_param(params: &HashMap<String, String>, name: &str) -> Result<u64, Response> {
    params
        .get(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(not_found_response)
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|error| {
        gh_error(
            StatusCode::BAD_REQUEST,
            &format!("Problems parsing JSON: {error}"),
        )
    })
}

async fn generate_jitconfig(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let scope = match known_scope(&shared, &params) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let invalid = |message: &str| {
        gh_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Invalid request.\n\n{message}"),
        )
    };
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return invalid("\"name\" wasn't supplied.");
    };
    let Some(group_id) = body.get("runner_group_id").and_then(Value::as_u64) else {
        return invalid("\"runner_group_id\" wasn't supplied.");
    };
    let Some(labels) = body.get("labels").and_then(Value::as_array) else {
        return invalid("\"labels\" wasn't supplied.");
    };
    let Some(labels) = labels
        .iter()
        .map(|l| l.as_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
    else {
        return invalid("\"labels\" must be an array of strings.");
    };
    let work_folder = body
        .get("work_folder")
        .and_then(Value::as_str)
        .unwrap_or("_work")
        .to_string();
    let generated = shared.generate_jit(scope, name, group_id, &labels, &work_folder);
    let (runner_json, config) = match generated {
        Ok(generated) => generated,
        Err(error) => return world_error(error),
    };
    gh_json(
        StatusCode::CREATED,
        json!({"runner": runner_json, "encoded_jit_config": config.encode()}),
    )
}

async fn registration_token(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    if let Err(response) = known_scope(&shared, &params) {
        return response;
    }
    let expires = shared.clock.now() + chrono::Duration::hours(1);
    gh_json(
        StatusCode::CREATED,
        json!({"token": random_token("A", 28), "expires_at": timestamp(expires)}),
    )
}

async fn remove_token(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    registration_token(State(shared), Path(params)).await
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    name: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

async fn list_runners(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let scope = match known_scope(&shared, &params) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let (per_page, page) = page_of(query.per_page, query.page);
    let (total, runners) = shared.read(|world, now| {
        let matching: Vec<&crate::state::Runner> = world
            .runners
            .values()
            .filter(|r| r.scope.same_as(&scope))
            .filter(|r| query.name.as_deref().is_none_or(|name| r.name == name))
            .collect();
        let runners: Vec<Value> = matching
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|r| payloads::runner(r, now, world))
            .collect();
        (matching.len(), runners)
    });
    let response = gh_json(
        StatusCode::OK,
        json!({"total_count": total, "runners": runners}),
    );
    let filters: Vec<(&str, String)> = query
        .name
        .iter()
        .map(|name| ("name", name.clone()))
        .collect();
    paginated(
        &shared,
        response,
        uri.path(),
        &filters,
        page,
        per_page,
        total,
    )
}

/// Adds GitHub's `Link` header to one page of a list of `total` items.
fn paginated(
    shared: &Shared,
    mut response: Response,
    path: &str,
    filters: &[(&str, String)],
    page: usize,
    per_page: usize,
    total: usize,
) -> Response {
    let last_page = total.div_ceil(per_page).max(1);
    if let Some(link) = pagination_link(shared, path, filters, page, per_page, last_page)
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `per_page` (1 to 100, default 30) and `page` (from 1) of a list request.
fn page_of(per_page: Option<usize>, page: Option<usize>) -> (usize, usize) {
    (
        per_page.unwrap_or(30).clamp(1, 100),
        page.unwrap_or(1).max(1),
    )
}

/// One page of `items`.
fn page_slice<T>(items: Vec<T>, page: usize, per_page: usize) -> Vec<T> {
    items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect()
}

/// One page of a list GitHub wraps in an object (`{"total_count": N, "<key>": [...]}`), with
/// its `Link` header. `filters` are the query parameters the links carry over; `extra`
/// fields join the body.
fn wrapped_page(
    shared: &Shared,
    path: &str,
    filters: &[(&str, String)],
    (per_page, page): (usize, usize),
    key: &str,
    items: Vec<Value>,
    extra: &[(&str, Value)],
) -> Response {
    let total = items.len();
    let mut body = serde_json::Map::new();
    body.insert("total_count".into(), json!(total));
    body.insert(key.into(), Value::Array(page_slice(items, page, per_page)));
    for (field, value) in extra {
        body.insert((*field).into(), value.clone());
    }
    let response = gh_json(StatusCode::OK, Value::Object(body));
    paginated(shared, response, path, filters, page, per_page, total)
}

/// GitHub's `Link` header: `next`/`last` while more pages follow, `prev`/`first` after the first.
fn pagination_link(
    shared: &Shared,
    path: &str,
    filters: &[(&str, String)],
    page: usize,
    per_page: usize,
    last_page: usize,
) -> Option<String> {
    let page_url = |number: usize| -> Option<String> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", shared.urls.html)).ok()?;
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in filters {
                pairs.append_pair(key, value);
            }
            pairs.append_pair("per_page", &per_page.to_string());
            pairs.append_pair("page", &number.to_string());
        }
        Some(url.to_string())
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            page_url(page.min(last_page + 1) - 1)?
        ));
        links.push(format!("<{}>; rel=\"first\"", page_url(1)?));
    }
    if page < last_page {
        links.push(format!("<{}>; rel=\"next\"", page_url(page + 1)?));
        links.push(format!("<{}>; rel=\"last\"", page_url(last_page)?));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

async fn get_runner(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let scope = match known_scope(&shared, &params) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let runner_id = match id_param(&params, "runner_id") {
        Ok(id) => id,
        Err(response) => return response,
    };
    let runner = shared.read(|world, now| {
        world
            .runners
            .get(&runner_id)
            .filter(|r| r.scope.same_as(&scope))
            .map(|r| payloads::runner(r, now, world))
    });
    match runner {
        Some(runner) => gh_json(StatusCode::OK, runner),
        None => not_found_response(),
    }
}

async fn delete_runner(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let scope = match known_scope(&shared, &params) {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let runner_id = match id_param(&params, "runner_id") {
        Ok(id) => id,
        Err(response) => return response,
    };
    match shared.update(|world, now| world.delete_runner(&scope, runner_id, now)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => world_error(error),
    }
}

async fn get_job(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let Ok(Scope::Repository { owner, repo }) = known_scope(&shared, &params) else {
        return not_found_response();
    };
    let job_id = match id_param(&params, "job_id") {
        Ok(id) => id,
        Err(response) => return response,
    };
    let full_name = format!("{owner}/{repo}");
    let job = shared.read(|world, _| {
        world
            .jobs
            .get(&job_id)
            .filter(|j| j.repository.eq_ignore_ascii_case(&full_name))
            .map(|j| payloads::job(j, &shared.urls))
    });
    match job {
        Some(job) => gh_json(StatusCode::OK, job),
        None => not_found_response(),
    }
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    status: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /repos/{owner}/{repo}/actions/runs`: newest first; `status` matches a run's status or
/// its conclusion, as on GitHub.
async fn list_runs(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<RunsQuery>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let Ok(Scope::Repository { owner, repo }) = known_scope(&shared, &params) else {
        return not_found_response();
    };
    let (per_page, page) = page_of(query.per_page, query.page);
    let full_name = format!("{owner}/{repo}");
    let listed = shared.read(|world, _| {
        let repository = world.repository_by_full_name(&full_name)?;
        let runs: Vec<Value> = world
            .runs(&full_name)
            .into_iter()
            .filter(|(_, jobs)| {
                let (status, conclusion) = payloads::run_status(jobs);
                query
                    .status
                    .as_deref()
                    .is_none_or(|wanted| wanted == status || conclusion.as_deref() == Some(wanted))
            })
            .map(|(run_id, jobs)| {
                payloads::workflow_run(repository, run_id, &jobs, &shared.urls, shared.epoch)
            })
            .collect();
        Some(runs)
    });
    let Some(runs) = listed else {
        return not_found_response();
    };
    let filters: Vec<(&str, String)> = query
        .status
        .iter()
        .map(|status| ("status", status.clone()))
        .collect();
    wrapped_page(
        &shared,
        uri.path(),
        &filters,
        (per_page, page),
        "workflow_runs",
        runs,
        &[],
    )
}

#[derive(Debug, Deserialize)]
struct RunJobsQuery {
    /// `latest` (default): the jobs of the run's latest attempt; `all`: of every attempt.
    filter: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`.
async fn list_run_jobs(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<RunJobsQuery>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let Ok(Scope::Repository { owner, repo }) = known_scope(&shared, &params) else {
        return not_found_response();
    };
    let run_id = match id_param(&params, "run_id") {
        Ok(id) => id,
        Err(response) => return response,
    };
    let all_attempts = match query.filter.as_deref() {
        None | Some("latest") => false,
        Some("all") => true,
        Some(other) => {
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Invalid request.\n\nfilter must be latest or all, not {other:?}."),
            );
        }
    };
    let full_name = format!("{owner}/{repo}");
    let jobs: Vec<Value> = shared.read(|world, _| {
        if all_attempts {
            world
                .jobs
                .values()
                .filter(|job| {
                    job.run_id == run_id && job.repository.eq_ignore_ascii_case(&full_name)
                })
                .map(|job| payloads::job(job, &shared.urls))
                .collect()
        } else {
            world
                .runs(&full_name)
                .into_iter()
                .find(|(id, _)| *id == run_id)
                .map(|(_, jobs)| {
                    jobs.iter()
                        .map(|job| payloads::job(job, &shared.urls))
                        .collect()
                })
                .unwrap_or_default()
        }
    });
    if jobs.is_empty() {
        return not_found_response();
    }
    let filters: Vec<(&str, String)> = query
        .filter
        .iter()
        .map(|filter| ("filter", filter.clone()))
        .collect();
    wrapped_page(
        &shared,
        uri.path(),
        &filters,
        page_of(query.per_page, query.page),
        "jobs",
        jobs,
        &[],
    )
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /installation/repositories`: the repositories of the token's installation (every
/// configured repository for a personal access token).
async fn installation_repositories(
    State(shared): State<AppState>,
    caller: Option<Extension<Caller>>,
    Query(query): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let caller = caller.map_or(Caller::Personal, |Extension(caller)| caller);
    let app = shared.app();
    let repositories: Vec<Value> = shared.read(|world, _| {
        world
            .repositories
            .iter()
            .filter(|repo| caller.reaches(&app, &repo.owner.login))
            .map(|repo| {
                let mut payload = payloads::repository(repo, &shared.urls, shared.epoch);
                // A job comes from a push (or another event) to its repository: the latest
                // job's creation is the repository's last push.
                let full_name = repo.full_name();
                let pushed = world
                    .jobs
                    .values()
                    .filter(|job| job.repository.eq_ignore_ascii_case(&full_name))
                    .map(|job| job.created_at)
                    .max();
                if let Some(pushed) = pushed.filter(|pushed| *pushed > shared.epoch) {
                    payload["pushed_at"] = json!(timestamp(pushed));
                }
                payload
            })
            .collect()
    });
    wrapped_page(
        &shared,
        uri.path(),
        &[],
        page_of(query.per_page, query.page),
        "repositories",
        repositories,
        &[("repository_selection", json!("all"))],
    )
}

/// The installation covering `account`, as GitHub describes it.
fn installation(shared: &Shared, account: &crate::state::Account) -> Value {
    let app = &shared.app();
    let id = app.installation_of(&account.login);
    let api = &shared.urls.api;
    let at = timestamp(shared.epoch);
    json!({
        "id": id,
        "client_id": app.client_id.clone().unwrap_or_else(|| format!("Iv1.{:016x}", app.app_id)),
        "account": payloads::user(account, &shared.urls),
        "repository_selection": "all",
        "access_tokens_url": format!("{api}/app/installations/{id}/access_tokens"),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": format!("{}/organizations/{}/settings/installations/{id}", shared.urls.html, account.login),
        "app_id": app.app_id,
        "app_slug": app.slug,
        "target_id": account.id,
        "target_type": if account.is_org { "Organization" } else { "User" },
        "permissions": {
            "actions": "read",
            "administration": "write",
            "metadata": "read",
            "organization_self_hosted_runners": "write",
        },
        "events": ["workflow_job"],
        "created_at": at,
        "updated_at": at,
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    })
}

async fn repo_installation(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let (Some(owner), Some(repo)) = (params.get("owner"), params.get("repo")) else {
        return not_found_response();
    };
    let account = shared.read(|world, _| world.repository(owner, repo).map(|r| r.owner.clone()));
    match account {
        Some(account) => gh_json(StatusCode::OK, installation(&shared, &account)),
        None => not_found_response(),
    }
}

async fn org_installation(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let Some(org) = params.get("org") else {
        return not_found_response();
    };
    let account = shared.read(|world, _| world.organization(org).cloned());
    match account {
        Some(account) => gh_json(StatusCode::OK, installation(&shared, &account)),
        None => not_found_response(),
    }
}

async fn get_installation(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let Ok(id) = id_param(&params, "installation_id") else {
        return not_found_response();
    };
    // The default installation covers several accounts; it is described with the first.
    let app = shared.app();
    let account = shared.read(|world, _| {
        world
            .accounts
            .iter()
            .find(|account| app.installation_of(&account.login) == id)
            .cloned()
    });
    match account {
        Some(account) => gh_json(StatusCode::OK, installation(&shared, &account)),
        None => not_found_response(),
    }
}

/// `GET /app/hook/config`: where the App's webhook goes. GitHub never shows the secret, only
/// that there is one.
async fn app_hook_config(State(shared): State<AppState>) -> Response {
    let target = shared.webhook_target();
    let mut config = json!({
        "content_type": "json",
        "insecure_ssl": "0",
        "url": target.as_ref().map(|target| target.url.clone()).unwrap_or_default(),
    });
    if target.is_some_and(|target| !target.secret.is_empty()) {
        config["secret"] = json!("********");
    }
    gh_json(StatusCode::OK, config)
}

#[derive(Debug, Deserialize)]
struct DeliveriesQuery {
    per_page: Option<usize>,
    /// `success` or `failure`.
    status: Option<String>,
}

/// `GET /app/hook/deliveries`: the App's webhook deliveries that were sent, newest first, as
/// GitHub lists them (one page; `cursor` is not served).
async fn app_hook_deliveries(
    State(shared): State<AppState>,
    Query(query): Query<DeliveriesQuery>,
) -> Response {
    let per_page = query.per_page.unwrap_or(30).clamp(1, 100);
    let wanted = query.status.as_deref();
    if wanted.is_some_and(|status| status != "success" && status != "failure") {
        return gh_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: status must be success or failure",
        );
    }
    let items: Vec<Value> = shared.read(|world, _| {
        world
            .deliveries
            .iter()
            .rev()
            .filter_map(|delivery| {
                let delivered_at = delivery.delivered_at?;
                let status_code = delivery.response_status.unwrap_or(0);
                let success = (200..300).contains(&status_code);
                match wanted {
                    Some("success") if !success => return None,
                    Some("failure") if success => return None,
                    _ => {}
                }
                let status = match (&delivery.error, success) {
                    (Some(error), _) => error.clone(),
                    (None, true) => "OK".to_owned(),
                    (None, false) => format!("Invalid HTTP Response: {status_code}"),
                };
                Some(json!({
                    "id": delivery.sequence,
                    "guid": delivery.guid,
                    "delivered_at": timestamp(delivered_at),
                    "redelivery": false,
                    "duration": 0.01,
                    "status": status,
                    "status_code": status_code,
                    "event": delivery.event,
                    "action": delivery.action,
                    "installation_id": delivery.payload.pointer("/installation/id").cloned().unwrap_or(Value::Null),
                    "repository_id": delivery.payload.pointer("/repository/id").cloned().unwrap_or(Value::Null),
                }))
            })
            .take(per_page)
            .collect()
    });
    gh_json(StatusCode::OK, Value::Array(items))
}

async fn get_app(State(shared): State<AppState>) -> Response {
    let Some(owner) = shared.read(|world, _| world.accounts.first().cloned()) else {
        return not_found_response();
    };
    let app = &shared.app();
    let at = timestamp(shared.epoch);
    gh_json(
        StatusCode::OK,
        json!({
            "id": app.app_id,
            "slug": app.slug,
            "node_id": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("011:Integration{}", app.app_id)),
            "client_id": app.client_id.clone().unwrap_or_else(|| format!("Iv1.{:016x}", app.app_id)),
            "owner": payloads::user(&owner, &shared.urls),
            "name": app.slug,
            "description": null,
            "external_url": shared.urls.html,
            "html_url": format!("{}/apps/{}", shared.urls.html, app.slug),
            "created_at": at,
            "updated_at": at,
            "permissions": {
                "actions": "read",
                "administration": "write",
                "metadata": "read",
                "organization_self_hosted_runners": "write",
            },
            "events": ["workflow_job"],
            "installations_count": app.installation_ids().len(),
        }),
    )
}

async fn create_access_token(
    State(shared): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let id = match id_param(&params, "installation_id") {
        Ok(id) if shared.app().has_installation(id) => id,
        _ => return not_found_response(),
    };
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (token, expires) = shared.issue_token(id);
    let permissions = body.get("permissions").cloned().unwrap_or_else(|| {
        json!({
            "actions": "read",
            "administration": "write",
            "metadata": "read",
            "organization_self_hosted_runners": "write",
        })
    });
    gh_json(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": timestamp(expires),
            "permissions": permissions,
            "repository_selection": "all",
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Control API

fn control_router() -> Router<AppState> {
    Router::new()
        .route("/jobs", post(control_create_job).get(control_list_jobs))
        .route("/jobs/{job_id}", get(control_get_job))
        .route("/jobs/{job_id}/cancel", post(control_cancel_job))
        .route("/runners", get(control_list_runners))
        .route("/deliveries", get(control_deliveries))
        .route("/faults", get(control_faults).post(control_set_faults))
        .route("/usage", get(control_usage))
        .route("/webhook", get(control_webhook).put(control_set_webhook))
        .route("/webhook", delete(control_clear_webhook))
}

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"message": message.into()}))).into_response()
}

fn control_world_error(error: WorldError) -> Response {
    let status = match error {
        WorldError::NotFound(_) | WorldError::RunnerGone(_) => StatusCode::NOT_FOUND,
        WorldError::Conflict(_) => StatusCode::CONFLICT,
        WorldError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    control_error(status, error.to_string())
}

async fn control_create_job(State(shared): State<AppState>, body: Bytes) -> Response {
    let new: NewJob = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(error) => {
            return control_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "expected {{\"repository\": \"owner/name\", \"labels\": [...], \"duration_seconds\": n}}: {error}"
                ),
            );
        }
    };
    match shared.update(|world, now| world.create_job(&new, now)) {
        Ok(created) => (StatusCode::CREATED, axum::Json(created)).into_response(),
        Err(error) => control_world_error(error),
    }
}

async fn control_list_jobs(State(shared): State<AppState>) -> Response {
    axum::Json(crate::views::jobs(&shared)).into_response()
}

async fn control_get_job(State(shared): State<AppState>, Path(job_id): Path<String>) -> Response {
    let job = job_id
        .parse()
        .ok()
        .and_then(|id| crate::views::job(&shared, id));
    match job {
        Some(job) => axum::Json(job).into_response(),
        None => control_error(StatusCode::NOT_FOUND, format!("job {job_id} not found")),
    }
}

async fn control_cancel_job(
    State(shared): State<AppState>,
    Path(job_id): Path<String>,
) -> Response {
    let Ok(id) = job_id.parse::<u64>() else {
        return control_error(StatusCode::NOT_FOUND, format!("job {job_id} not found"));
    };
    match shared.update(|world, now| world.cancel_job(id, now)) {
        Ok(()) => match crate::views::job(&shared, id) {
            Some(job) => axum::Json(job).into_response(),
            None => control_error(StatusCode::NOT_FOUND, format!("job {job_id} not found")),
        },
        Err(error) => control_world_error(error),
    }
}

async fn control_list_runners(State(shared): State<AppState>) -> Response {
    axum::Json(crate::views::runners(&shared)).into_response()
}

async fn control_deliveries(State(shared): State<AppState>) -> Response {
    axum::Json(shared.read(|world, _| world.deliveries.clone())).into_response()
}

async fn control_faults(State(shared): State<AppState>) -> Response {
    axum::Json(shared.read(|world, _| world.faults.clone())).into_response()
}

/// The REST requests served so far (`ApiUsage`): what a fault driver paces its bursts by.
async fn control_usage(State(shared): State<AppState>) -> Response {
    axum::Json(shared.api_usage()).into_response()
}

async fn control_set_faults(State(shared): State<AppState>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(error) => {
            return control_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "expected fault counters (drop_webhooks, drop_webhooks_action, drop_webhooks_by_action, duplicate_webhooks, server_errors, server_error_status, rate_limits): {error}"
                ),
            );
        }
    };
    if let Some(status) = faults.server_error_status
        && !(500..=599).contains(&status)
    {
        return control_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("server_error_status must be a 5xx status, not {status}"),
        );
    }
    let faults = shared.update(|world, _| {
        world.faults = faults;
        world.faults.clone()
    });
    axum::Json(faults).into_response()
}

#[derive(Debug, Deserialize)]
struct WebhookBody {
    url: String,
    secret: String,
}

async fn control_webhook(State(shared): State<AppState>) -> Response {
    // The secret stays private.
    let url = shared.webhook_target().map(|t| t.url);
    axum::Json(json!({"url": url})).into_response()
}

async fn control_set_webhook(State(shared): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<WebhookBody>(&body) {
        Ok(body) => {
            shared.set_webhook_target(Some(WebhookTarget {
                url: body.url.clone(),
                secret: body.secret,
            }));
            axum::Json(json!({"url": body.url})).into_response()
        }
        Err(error) => control_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("expected {{\"url\": ..., \"secret\": ...}}: {error}"),
        ),
    }
}

async fn control_clear_webhook(State(shared): State<AppState>) -> Response {
    shared.set_webhook_target(None);
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------------
// Runner protocol

fn runner_router() -> Router<AppState> {
    Router::new()
        .route("/connect", post(runner_connect))
        .route("/acquire", post(runner_acquire))
        .route("/jobs/{job_id}", get(runner_job_status))
        .route("/jobs/{job_id}/started", post(runner_job_started))
        .route("/jobs/{job_id}/finished", post(runner_job_finished))
}

/// The runner a request speaks for, from its `Authorization: Bearer <credential>`.
fn authenticated_runner(shared: &Shared, headers: &HeaderMap) -> Result<u64, Response> {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if credential.is_empty() {
        return Err(control_error(
            StatusCode::UNAUTHORIZED,
            "the runner protocol needs Authorization: Bearer <credential from the JIT config>",
        ));
    }
    shared.read(|world, _| {
        if let Some(runner) = world.runner_by_credential(credential) {
            Ok(runner.id)
        } else if world.removed_credentials.contains(credential) {
            Err(runner_gone())
        } else {
            Err(control_error(
                StatusCode::UNAUTHORIZED,
                "unknown runner credential; generate a new JIT config",
            ))
        }
    })
}

fn runner_gone() -> Response {
    control_error(StatusCode::GONE, "this runner was removed")
}

fn runner_result(result: Result<(), WorldError>) -> Result<(), Response> {
    match result {
        Ok(()) => Ok(()),
        Err(WorldError::RunnerGone(_)) => Err(runner_gone()),
        Err(error) => Err(control_world_error(error)),
    }
}

#[derive(Debug, Deserialize, Default)]
struct ConnectBody {
    #[serde(default)]
    version: Option<String>,
}

async fn runner_connect(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let runner_id = match authenticated_runner(&shared, &headers) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let body: ConnectBody = serde_json::from_slice(&body).unwrap_or_default();
    let connected = shared.update(|world, now| {
        world.touch_runner(runner_id, now, body.version.clone())?;
        world.assign(now);
        world
            .runners
            .get(&runner_id)
            .map(|r| payloads::runner(r, now, world))
            .ok_or(WorldError::RunnerGone(runner_id))
    });
    match connected {
        Ok(runner) => axum::Json(runner).into_response(),
        Err(WorldError::RunnerGone(_)) => runner_gone(),
        Err(error) => control_world_error(error),
    }
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    wait_seconds: Option<f64>,
}

fn poll_wait(query: &WaitQuery) -> Duration {
    let seconds = query.wait_seconds.unwrap_or(20.0);
    if seconds.is_finite() && seconds > 0.0 {
        Duration::from_secs_f64(seconds).min(MAX_POLL)
    } else {
        Duration::ZERO
    }
}

async fn runner_acquire(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<WaitQuery>,
) -> Response {
    let runner_id = match authenticated_runner(&shared, &headers) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let touched = shared.update(|world, now| {
        let touched = world.touch_runner(runner_id, now, None);
        world.assign(now);
        touched
    });
    if let Err(response) = runner_result(touched) {
        return response;
    }
    let found = shared
        .wait_for(poll_wait(&query), |world, _| {
            match world.job_for_runner(runner_id) {
                Ok(Some(job)) => Some(Ok(job)),
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            }
        })
        .await;
    // Polling is the runner's heartbeat.
    let _ = shared.update(|world, now| world.touch_runner(runner_id, now, None));
    match found {
        Some(Ok(job)) => axum::Json(job).into_response(),
        Some(Err(WorldError::RunnerGone(_))) => runner_gone(),
        Some(Err(error)) => control_world_error(error),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct JobWaitQuery {
    wait_seconds: Option<f64>,
    /// Answer once the status differs from this one.
    unless: Option<JobStatus>,
}

async fn runner_job_status(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    Query(query): Query<JobWaitQuery>,
) -> Response {
    let runner_id = match authenticated_runner(&shared, &headers) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let Ok(job_id) = job_id.parse::<u64>() else {
        return control_error(StatusCode::NOT_FOUND, "no such job");
    };
    let _ = shared.update(|world, now| world.touch_runner(runner_id, now, None));
    let wait = poll_wait(&WaitQuery {
        wait_seconds: query.wait_seconds,
    });
    let status = shared
        .wait_for(wait, |world, _| {
            let job = world.jobs.get(&job_id)?;
            (Some(job.status) != query.unless)
                .then(|| json!({"status": job.status, "conclusion": job.conclusion}))
        })
        .await
        .or_else(|| {
            shared.read(|world, _| {
                world
                    .jobs
                    .get(&job_id)
                    .map(|job| json!({"status": job.status, "conclusion": job.conclusion}))
            })
        });
    let _ = shared.update(|world, now| world.touch_runner(runner_id, now, None));
    match status {
        Some(status) => axum::Json(status).into_response(),
        None => control_error(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn runner_job_started(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Response {
    let runner_id = match authenticated_runner(&shared, &headers) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let Ok(job_id) = job_id.parse::<u64>() else {
        return control_error(StatusCode::NOT_FOUND, "no such job");
    };
    let started = shared.update(|world, now| {
        world.touch_runner(runner_id, now, None)?;
        world.start_job(runner_id, job_id, now)
    });
    match runner_result(started) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize, Default)]
struct FinishedBody {
    conclusion: Option<String>,
}

async fn runner_job_finished(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    body: Bytes,
) -> Response {
    let runner_id = match authenticated_runner(&shared, &headers) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let Ok(job_id) = job_id.parse::<u64>() else {
        return control_error(StatusCode::NOT_FOUND, "no such job");
    };
    let body: FinishedBody = serde_json::from_slice(&body).unwrap_or_default();
    let conclusion = body.conclusion.unwrap_or_else(|| "success".to_string());
    const CONCLUSIONS: [&str; 4] = ["success", "failure", "cancelled", "skipped"];
    if !CONCLUSIONS.contains(&conclusion.as_str()) {
        return control_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("conclusion must be one of {CONCLUSIONS:?}, not {conclusion:?}"),
        );
    }
    let finished =
        shared.update(|world, now| world.finish_job(runner_id, job_id, &conclusion, now));
    match runner_result(finished) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}
