//! The REST client against a scripted loopback server: auth, requests, retries, errors.

mod support;

use std::time::Duration;

use http::Method;
use runway_clock::{Clock, SharedClock, VirtualClock};
use runway_github::{
    ApiUsage, AppCredentials, Credentials, GitHub, GitHubError, JitConfigRequest, RateLimit,
    RestGitHub, RetryPolicy, RunnerScope, Secret, with_call_deadline,
};
use serde_json::{Value, json};
use support::{Answer, Loopback, OpenApi, app_key, verify_app_jwt};

const APP_ID: &str = "123456";
const INSTALLATION: u64 = 42;

fn app_credentials() -> Credentials {
    Credentials::App(
        AppCredentials::new(APP_ID, app_key().private_pem.as_bytes(), INSTALLATION).unwrap(),
    )
}

/// A client whose only timers are the clock's: under paused tokio time, waits cost nothing.
fn client(base_url: &str, credentials: Credentials, clock: SharedClock) -> RestGitHub {
    RestGitHub::with_options(base_url, credentials, clock, support::untimed()).unwrap()
}

fn runner_json(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name, "os": "linux", "status": "online", "busy": false,
           "runner_group_id": 1, "ephemeral": true,
           "labels": [{"id": 1, "name": "self-hosted", "type": "read-only"}]})
}

fn job_json() -> Value {
    json!({"id": 399444496, "run_id": 29679449, "run_attempt": 1, "status": "queued",
           "conclusion": null, "name": "build", "labels": ["self-hosted", "linux"],
           "runner_id": null, "runner_name": null, "runner_group_id": null,
           "node_id": "x", "head_sha": "f", "url": "u", "html_url": "h", "unknown_field": {"a": 1}})
}

#[tokio::test]
async fn app_jwt_claims_are_what_github_requires() {
    let clock = VirtualClock::new();
    let now = clock.now();
    let Credentials::App(app) = app_credentials() else {
        unreachable!()
    };
    let jwt = app.jwt(now).unwrap();
    let claims = verify_app_jwt(jwt.expose(), APP_ID).unwrap();
    assert_eq!(claims.iss, APP_ID);
    assert_eq!(claims.iat, now.timestamp() - 60);
    assert!(
        claims.exp > now.timestamp() && claims.exp - now.timestamp() <= 600,
        "{claims:?}"
    );
    // A JWT signed with another key does not verify.
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let other_pem = other.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let forged = AppCredentials::new(APP_ID, other_pem.as_bytes(), INSTALLATION)
        .unwrap()
        .jwt(now)
        .unwrap();
    assert!(verify_app_jwt(forged.expose(), APP_ID).is_err());
}

#[tokio::test]
async fn a_key_that_is_not_rsa_pem_is_a_config_error() {
    let err = AppCredentials::new(APP_ID, b"-----BEGIN NOTHING-----", 1).unwrap_err();
    assert!(matches!(err, GitHubError::Config { .. }), "{err:?}");
    let err = RestGitHub::new(
        "ftp://x",
        Credentials::Token(Secret::new("t")),
        VirtualClock::new().shared(),
    )
    .unwrap_err();
    assert!(matches!(err, GitHubError::Config { .. }));
}

#[tokio::test(start_paused = true)]
async fn installation_tokens_are_cached_and_refreshed_before_expiry() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(&server.base_url, app_credentials(), clock.clone());
    server.script((0..4).map(|_| Answer::json(200, job_json())));

    github
        .workflow_job("octo-org", "app", 399444496)
        .await
        .unwrap();
    github
        .workflow_job("octo-org", "app", 399444496)
        .await
        .unwrap();
    assert_eq!(server.tokens_issued(), 1);
    // 50 minutes on: 10 minutes left, more than the 5-minute margin; still cached.
    clock.sleep(Duration::from_secs(50 * 60)).await;
    github
        .workflow_job("octo-org", "app", 399444496)
        .await
        .unwrap();
    assert_eq!(server.tokens_issued(), 1);
    // 56 minutes: within the margin; a new token is fetched.
    clock.sleep(Duration::from_secs(6 * 60)).await;
    github
        .workflow_job("octo-org", "app", 399444496)
        .await
        .unwrap();
    assert_eq!(server.tokens_issued(), 2);

    let requests = server.requests();
    let token_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/app/installations/42/access_tokens")
        .collect();
    assert_eq!(token_requests.len(), 2);
    assert!(token_requests.iter().all(|r| r.method == Method::POST));
    let auth: Vec<_> = server
        .api_requests()
        .into_iter()
        .map(|r| r.authorization.unwrap())
        .collect();
    assert_eq!(
        auth,
        [
            "Bearer ghs_token1",
            "Bearer ghs_token1",
            "Bearer ghs_token1",
            "Bearer ghs_token2"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn several_installations_at_once_each_use_their_own_token() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let first = client(&server.base_url, app_credentials(), clock.clone());
    let second = first.for_installation(7).unwrap();
    assert_eq!(
        (first.installation_id(), second.installation_id()),
        (Some(INSTALLATION), Some(7))
    );
    server.script((0..8).map(|_| Answer::json(200, job_json())));

    // Both at once, twice: one token each, each request with its own installation's.
    for _ in 0..2 {
        let (a, b) = tokio::join!(
            first.workflow_job("o", "r", 1),
            second.workflow_job("o", "r", 1)
        );
        a.unwrap();
        b.unwrap();
    }
    let (of_first, of_second) = (server.tokens_for(INSTALLATION), server.tokens_for(7));
    assert_eq!((of_first.len(), of_second.len()), (1, 1));
    assert_ne!(of_first, of_second);
    let carried = |token: &str| {
        server
            .api_requests()
            .iter()
            .filter(|r| r.authorization.as_deref() == Some(&format!("Bearer {token}")))
            .count()
    };
    assert_eq!((carried(&of_first[0]), carried(&of_second[0])), (2, 2));
    assert_eq!(server.api_requests().len(), 4);

    // 56 minutes on, within the 5-minute margin of both: each is refreshed when next used.
    clock.sleep(Duration::from_secs(56 * 60)).await;
    first.workflow_job("o", "r", 1).await.unwrap();
    assert_eq!(
        (
            server.tokens_for(INSTALLATION).len(),
            server.tokens_for(7).len()
        ),
        (2, 1)
    );
    second.workflow_job("o", "r", 1).await.unwrap();
    let (of_first, of_second) = (server.tokens_for(INSTALLATION), server.tokens_for(7));
    assert_eq!((of_first.len(), of_second.len()), (2, 2));
    let last: Vec<_> = server.api_requests()[4..]
        .iter()
        .map(|r| r.authorization.clone().unwrap())
        .collect();
    assert_eq!(
        last,
        [
            format!("Bearer {}", of_first[1]),
            format!("Bearer {}", of_second[1])
        ]
    );
    // The first installation's handle still works after the second's refresh, on its own.
    first.workflow_job("o", "r", 1).await.unwrap();
    assert_eq!(server.tokens_issued(), 4);
    // Both handles count into one usage: 4 token requests and 7 API requests.
    assert_eq!(first.usage(), second.usage());
    assert_eq!(first.usage().requests, 11);

    // A client with a token has no installations to act for.
    let err = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    )
    .for_installation(7)
    .unwrap_err();
    assert!(matches!(err, GitHubError::Config { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_installation_token_is_replaced_once() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(&server.base_url, app_credentials(), clock);
    server.script([
        Answer::json(401, json!({"message": "Bad credentials"})),
        Answer::json(200, job_json()),
    ]);
    github.workflow_job("o", "r", 1).await.unwrap();
    assert_eq!(server.tokens_issued(), 2);
    server.script([
        Answer::json(401, json!({"message": "Bad credentials"})),
        Answer::json(401, json!({"message": "Bad credentials"})),
    ]);
    let err = github.workflow_job("o", "r", 1).await.unwrap_err();
    assert!(
        matches!(&err, GitHubError::Unauthorized { message } if message == "Bad credentials"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_personal_token_is_sent_as_is() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("ghp_personal")),
        clock,
    );
    server.script([Answer::json(200, job_json())]);
    let job = github.workflow_job("o", "r", 399444496).await.unwrap();
    assert_eq!(job.labels, ["self-hosted", "linux"]);
    assert_eq!(server.tokens_issued(), 0);
    let request = &server.requests()[0];
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer ghp_personal")
    );
    assert_eq!(request.api_version.as_deref(), Some("2022-11-28"));
}

#[tokio::test]
async fn every_call_sends_the_documented_method_path_and_body() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    // GitHub Enterprise Server: the API lives under /api/v3.
    let github = client(
        &format!("{}/api/v3/", server.base_url),
        app_credentials(),
        clock,
    );
    let jit = json!({"runner": runner_json(23, "runway-1"), "encoded_jit_config": "c2VjcmV0"});
    let token =
        json!({"token": "AABF3JGZDX3P5PMEXLND6TS6FCWO6", "expires_at": "2026-01-01T01:00:00Z"});
    let page1: Vec<Value> = (0..100).map(|i| runner_json(i, &format!("r{i}"))).collect();
    server.script([
        Answer::json(201, jit.clone()),
        Answer::json(201, jit.clone()),
        Answer::json(201, jit),
        Answer::json(201, token.clone()),
        Answer::json(201, token),
        Answer::json(200, job_json()),
        Answer::json(200, json!({"total_count": 101, "runners": page1})),
        Answer::json(
            200,
            json!({"total_count": 101, "runners": [runner_json(100, "r100")]}),
        ),
        Answer::json(
            200,
            json!({"total_count": 1, "runners": [runner_json(7, "runway-7")]}),
        ),
        Answer::json(200, runner_json(7, "runway-7")),
        Answer::json(204, Value::Null),
    ]);
    let request = JitConfigRequest {
        name: "runway-1".into(),
        runner_group_id: 1,
        labels: vec!["self-hosted".into(), "linux".into()],
        work_folder: Some("_work".into()),
    };
    let repo = RunnerScope::repository("octo-org", "app");
    let org = RunnerScope::organization("octo-org");
    let enterprise = RunnerScope::enterprise("octo-corp");
    let config = github.generate_jit_config(&repo, &request).await.unwrap();
    assert_eq!(config.encoded_jit_config.expose(), "c2VjcmV0");
    assert_eq!(config.runner.name, "runway-1");
    github.generate_jit_config(&org, &request).await.unwrap();
    github
        .generate_jit_config(&enterprise, &request)
        .await
        .unwrap();
    let registration = github.registration_token(&org).await.unwrap();
    assert_eq!(registration.token.expose(), "AABF3JGZDX3P5PMEXLND6TS6FCWO6");
    github.registration_token(&enterprise).await.unwrap();
    let job = github
        .workflow_job("octo-org", "app", 399444496)
        .await
        .unwrap();
    assert_eq!(
        (job.id, job.status.as_str(), job.runner_name),
        (399444496, "queued", None)
    );
    assert_eq!(github.list_runners(&org, None).await.unwrap().len(), 101);
    let named = github.list_runners(&repo, Some("runway 7")).await.unwrap();
    assert_eq!(named[0].id, 7);
    assert_eq!(
        github.runner(&repo, 7).await.unwrap().labels[0].name,
        "self-hosted"
    );
    github.delete_runner(&repo, 7).await.unwrap();

    let seen: Vec<(Method, String, Option<String>, Option<Value>)> = server
        .api_requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.query, r.body))
        .collect();
    let body = json!({"name": "runway-1", "runner_group_id": 1, "labels": ["self-hosted", "linux"], "work_folder": "_work"});
    let expected = [
        (
            Method::POST,
            "/api/v3/repos/octo-org/app/actions/runners/generate-jitconfig",
            None,
            Some(body.clone()),
        ),
        (
            Method::POST,
            "/api/v3/orgs/octo-org/actions/runners/generate-jitconfig",
            None,
            Some(body.clone()),
        ),
        (
            Method::POST,
            "/api/v3/enterprises/octo-corp/actions/runners/generate-jitconfig",
            None,
            Some(body),
        ),
        (
            Method::POST,
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
            None,
            None,
        ),
        (
            Method::POST,
            "/api/v3/enterprises/octo-corp/actions/runners/registration-token",
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v3/repos/octo-org/app/actions/jobs/399444496",
            None,
            None,
        ),
        (
            Method::GET,
            "/api/v3/orgs/octo-org/actions/runners",
            Some("per_page=100&page=1"),
            None,
        ),
        (
            Method::GET,
            "/api/v3/orgs/octo-org/actions/runners",
            Some("per_page=100&page=2"),
            None,
        ),
        (
            Method::GET,
            "/api/v3/repos/octo-org/app/actions/runners",
            Some("per_page=100&page=1&name=runway+7"),
            None,
        ),
        (
            Method::GET,
            "/api/v3/repos/octo-org/app/actions/runners/7",
            None,
            None,
        ),
        (
            Method::DELETE,
            "/api/v3/repos/octo-org/app/actions/runners/7",
            None,
            None,
        ),
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:#?}");
    for (got, want) in seen.iter().zip(expected) {
        assert_eq!(
            (&got.0, got.1.as_str(), got.2.as_deref(), got.3.as_ref()),
            (&want.0, want.1, want.2, want.3.as_ref())
        );
    }

    // Every request is an operation of GitHub's REST description, with a valid body and
    // only declared query parameters.
    let spec = OpenApi::load();
    for request in server.requests() {
        let path = request.path.strip_prefix("/api/v3").unwrap();
        let template = spec
            .check(&request.method, path, request.body.as_ref())
            .unwrap_or_else(|err| panic!("{err}"));
        let declared = spec.query_parameters(&request.method, &template);
        for pair in request.query.iter().flat_map(|q| q.split('&')) {
            let name = pair.split('=').next().unwrap();
            assert!(
                declared.iter().any(|d| d == name),
                "{template}: query {name} not in {declared:?}"
            );
        }
    }
}

#[tokio::test]
async fn github_s_link_header_decides_whether_another_page_follows() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    );
    let full: Vec<Value> = (0..100).map(|i| runner_json(i, &format!("r{i}"))).collect();
    let link = |rels: &[(u32, &str)]| {
        rels.iter()
            .map(|(page, rel)| {
                format!(
                    "<{}/orgs/o/actions/runners?per_page=100&page={page}>; rel=\"{rel}\"",
                    server.base_url
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    server.script([
        // A full page, no total: the Link header says a second page follows ...
        Answer::json(200, json!({"runners": full.clone()}))
            .header("link", link(&[(2, "next"), (2, "last")])),
        // ... and, full again, that it is the last.
        Answer::json(200, json!({"runners": full}))
            .header("link", link(&[(1, "prev"), (1, "first")])),
    ]);
    let org = RunnerScope::organization("o");
    assert_eq!(github.list_runners(&org, None).await.unwrap().len(), 200);
    let pages: Vec<_> = server
        .requests()
        .into_iter()
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert_eq!(pages, ["per_page=100&page=1", "per_page=100&page=2"]);
}

#[test]
fn the_spec_check_refuses_what_github_does_not_have() {
    let spec = OpenApi::load();
    let jit = "/repos/o/r/actions/runners/generate-jitconfig";
    assert!(
        spec.check(
            &Method::POST,
            jit,
            Some(&json!({"name": "n", "runner_group_id": 1, "labels": ["x"]}))
        )
        .is_ok()
    );
    assert!(
        spec.check(
            &Method::POST,
            jit,
            Some(&json!({"name": "n", "runner_group_id": 1, "labels": ["x"], "ephemeral": true}))
        )
        .is_err()
    );
    assert!(
        spec.check(&Method::POST, jit, Some(&json!({"name": "n"})))
            .is_err()
    );
    assert!(spec.check(&Method::PUT, jit, None).is_err());
    assert!(
        spec.check(&Method::GET, "/repos/o/r/actions/runnerz", None)
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_growing_backoff_then_succeed() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    );
    server.script([
        Answer::json(502, json!({"message": "Bad gateway"})),
        Answer::json(500, json!({"message": "Server Error"})),
        Answer::json(200, job_json()),
    ]);
    github.workflow_job("o", "r", 1).await.unwrap();
    let at: Vec<i64> = server.requests().iter().map(|r| r.at.timestamp()).collect();
    assert_eq!(at.len(), 3);
    assert_eq!(
        (at[1] - at[0], at[2] - at[1]),
        (1, 2),
        "backoff 1 s then 2 s: {at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_that_persist_end_in_a_typed_error() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    )
    .with_retry_policy(policy);
    server.script((0..5).map(|_| Answer::json(503, json!({"message": "unavailable"}))));
    let err = github.workflow_job("o", "r", 1).await.unwrap_err();
    assert_eq!(err, GitHubError::Server { status: 503 });
    assert!(err.is_retryable());
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_on_the_clock() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    );
    server.script([
        Answer::json(429, json!({"message": "Too many requests"})).header("retry-after", "30"),
        Answer::json(200, job_json()),
    ]);
    let wall = std::time::Instant::now();
    github.workflow_job("o", "r", 1).await.unwrap();
    let at: Vec<_> = server.requests().iter().map(|r| r.at).collect();
    assert_eq!((at[1] - at[0]).num_seconds(), 30);
    assert!(wall.elapsed() < Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_spent_primary_rate_limit_waits_for_the_reset() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock.clone(),
    );
    let reset = clock.now().timestamp() + 45;
    server.script([
        Answer::json(403, json!({"message": "API rate limit exceeded"}))
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", reset.to_string()),
        Answer::json(200, job_json()),
    ]);
    github.workflow_job("o", "r", 1).await.unwrap();
    let at: Vec<_> = server.requests().iter().map(|r| r.at.timestamp()).collect();
    assert_eq!(at[1], reset);
}

#[tokio::test(start_paused = true)]
async fn a_secondary_rate_limit_without_retry_after_waits_a_minute() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    );
    server.script([
        Answer::json(403, json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        Answer::json(200, job_json()),
    ]);
    github.workflow_job("o", "r", 1).await.unwrap();
    let at: Vec<_> = server.requests().iter().map(|r| r.at.timestamp()).collect();
    assert_eq!(at[1] - at[0], 60);
}

#[tokio::test(start_paused = true)]
async fn a_long_rate_limit_is_returned_not_slept_through() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock.clone(),
    );
    server
        .script([Answer::json(429, json!({"message": "slow down"})).header("retry-after", "3600")]);
    let before = clock.now();
    let err = github.workflow_job("o", "r", 1).await.unwrap_err();
    assert_eq!(
        err,
        GitHubError::RateLimited {
            retry_after: Duration::from_secs(3600)
        }
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(err.is_retryable());
    assert_eq!((clock.now() - before).num_seconds(), 0);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn client_errors_are_typed_and_not_retried() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    );
    server.script([
        Answer::json(404, json!({"message": "Not Found"})),
        Answer::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"message": "Name already exists"}]}),
        ),
        Answer::json(
            403,
            json!({"message": "Resource not accessible by integration"}),
        ),
        Answer::json(409, json!({"message": "Conflict"})),
    ]);
    let repo = RunnerScope::repository("o", "r");
    let err = github.runner(&repo, 1).await.unwrap_err();
    assert_eq!(
        err,
        GitHubError::NotFound {
            message: "Not Found".into()
        }
    );
    let request = JitConfigRequest {
        name: "n".into(),
        runner_group_id: 1,
        labels: vec!["x".into()],
        work_folder: None,
    };
    let err = github
        .generate_jit_config(&repo, &request)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        GitHubError::Validation {
            status: 422,
            message: "Validation Failed: Name already exists".into()
        }
    );
    let err = github.delete_runner(&repo, 1).await.unwrap_err();
    assert!(matches!(err, GitHubError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("permissions"));
    let err = github.registration_token(&repo).await.unwrap_err();
    assert!(matches!(err, GitHubError::Validation { status: 409, .. }));
    assert_eq!(server.requests().len(), 4);
    // work_folder left out is not sent.
    assert_eq!(
        server.requests()[1].body,
        Some(json!({"name": "n", "runner_group_id": 1, "labels": ["x"]}))
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_github_is_a_transport_error_after_the_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = VirtualClock::new().shared();
    let policy = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let github = client(
        &format!("http://127.0.0.1:{port}"),
        Credentials::Token(Secret::new("t")),
        clock,
    )
    .with_retry_policy(policy);
    let err = github.workflow_job("o", "r", 1).await.unwrap_err();
    assert!(matches!(err, GitHubError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let credentials = app_credentials();
    let shown = format!("{credentials:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && shown.contains(APP_ID),
        "{shown}"
    );
    let shown = format!("{:?}", Credentials::Token(Secret::new("ghp_personal")));
    assert!(!shown.contains("ghp_personal"));
    let config: runway_github::JitConfig = serde_json::from_value(
        json!({"runner": runner_json(1, "r"), "encoded_jit_config": "SECRET-CONFIG"}),
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("SECRET-CONFIG"));
    let github = RestGitHub::new(
        "https://api.github.com",
        app_credentials(),
        VirtualClock::new().shared(),
    )
    .unwrap();
    assert!(!format!("{github:?}").contains("PRIVATE KEY"));
}

#[tokio::test(start_paused = true)]
async fn a_call_never_waits_past_its_budget() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let policy = RetryPolicy {
        call_budget: Some(Duration::from_secs(20)),
        ..RetryPolicy::default()
    };
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock.clone(),
    )
    .with_retry_policy(policy.clone());
    // A Retry-After the policy would wait out (under max_rate_limit_wait), but not the budget.
    // Only the one answer: the call must not come back for another.
    server.script([
        Answer::json(429, json!({"message": "Too many requests"})).header("retry-after", "30")
    ]);
    let before = clock.now();
    let err = github.workflow_job("o", "r", 1).await.unwrap_err();
    assert_eq!(
        err,
        GitHubError::RateLimited {
            retry_after: Duration::from_secs(30)
        }
    );
    assert!(err.is_retryable());
    assert_eq!((clock.now() - before).num_seconds(), 0, "no wait was made");
    assert_eq!(server.requests().len(), 1);

    // 5xx: backoff 1 s and 2 s fit in a 4 s budget, the next 4 s does not.
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock.clone(),
    )
    .with_retry_policy(RetryPolicy {
        call_budget: Some(Duration::from_secs(4)),
        ..policy
    });
    let mut script: Vec<_> = (0..4)
        .map(|_| Answer::json(503, json!({"message": "unavailable"})))
        .collect();
    script.push(Answer::json(200, job_json()));
    server.script(script);
    let before = clock.now();
    let err = github.workflow_job("o", "r", 1).await.unwrap_err();
    assert_eq!(err, GitHubError::Server { status: 503 });
    assert_eq!((clock.now() - before).num_seconds(), 3);
    assert_eq!(server.requests().len(), 1 + 3);
}

#[tokio::test(start_paused = true)]
async fn the_caller_s_deadline_bounds_every_call_in_it() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock.clone(),
    );
    server.script([
        // Waited: 5 s (and a request) fit in the 10 s left.
        Answer::json(429, json!({"message": "Too many requests"})).header("retry-after", "5"),
        Answer::json(200, job_json()),
        // Not waited: 30 s do not fit in the 5 s left.
        Answer::json(429, json!({"message": "Too many requests"})).header("retry-after", "30"),
        // The call after the scope: waited, as the policy allows 30 s.
        Answer::json(429, json!({"message": "Too many requests"})).header("retry-after", "30"),
        Answer::json(200, job_json()),
    ]);
    let deadline = clock.now() + chrono::Duration::seconds(10);
    let before = clock.now();
    let (first, second) = with_call_deadline(deadline, async {
        (
            github.workflow_job("o", "r", 1).await,
            github.workflow_job("o", "r", 1).await,
        )
    })
    .await;
    first.unwrap();
    assert_eq!(
        second.unwrap_err(),
        GitHubError::RateLimited {
            retry_after: Duration::from_secs(30)
        }
    );
    assert_eq!((clock.now() - before).num_seconds(), 5);
    assert_eq!(server.requests().len(), 3);
    // Outside the scope the same call waits as the policy allows.
    github.workflow_job("o", "r", 1).await.unwrap();
    assert_eq!((clock.now() - before).num_seconds(), 35);
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_resource_is_asked_for_conditionally_and_read_from_the_cache() {
    let clock = VirtualClock::new().shared();
    let server = Loopback::start(clock.clone(), APP_ID).await;
    let github = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        clock,
    );
    let rate = |remaining: u64| {
        move |answer: Answer| {
            answer
                .header("x-ratelimit-limit", "5000")
                .header("x-ratelimit-remaining", remaining.to_string())
                .header("x-ratelimit-reset", "1700000000")
        }
    };
    server.script([
        rate(4990)(Answer::json(200, job_json()).header("etag", "W/\"v1\"")),
        rate(4990)(Answer::json(304, Value::Null).header("etag", "W/\"v1\"")),
        // Another job id is another URL: asked for unconditionally.
        rate(4989)(Answer::json(200, job_json())),
    ]);
    let first = github.workflow_job("o", "r", 1).await.unwrap();
    let second = github.workflow_job("o", "r", 1).await.unwrap();
    assert_eq!(first, second);
    github.workflow_job("o", "r", 2).await.unwrap();
    let conditions: Vec<_> = server
        .requests()
        .into_iter()
        .map(|r| r.if_none_match)
        .collect();
    assert_eq!(conditions, [None, Some("W/\"v1\"".to_owned()), None]);
    assert_eq!(
        github.usage(),
        ApiUsage {
            requests: 3,
            not_modified: 1,
            rate_limit: Some(RateLimit {
                limit: 5000,
                remaining: 4989,
                reset: 1_700_000_000
            }),
        }
    );
    assert_eq!(github.usage().counted(), 2);

    // A client that keeps no answers never asks conditionally.
    let uncached = client(
        &server.base_url,
        Credentials::Token(Secret::new("t")),
        VirtualClock::new().shared(),
    )
    .with_response_cache(0, 0);
    server.script([
        Answer::json(200, job_json()).header("etag", "W/\"v1\""),
        Answer::json(200, job_json()).header("etag", "W/\"v1\""),
    ]);
    uncached.workflow_job("o", "r", 1).await.unwrap();
    uncached.workflow_job("o", "r", 1).await.unwrap();
    let requests = server.requests();
    assert!(requests[3..].iter().all(|r| r.if_none_match.is_none()));
}
