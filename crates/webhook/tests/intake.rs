//! The intake end to end over its HTTP router: status codes, filtering, starting, forwarding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use runway_webhook::{
    Delivery, ExecutionStarter, Intake, IntakeConfig, JobEventKind, JobEventUpdate, JobFilter,
    StartError, StartOutcome, WebhookSecrets, router, sign_with,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tower::ServiceExt;

const SECRET: &str = "test-secret";

fn fixture(name: &str) -> Vec<u8> {
    let dir = runway_testkit::fixtures_dir().unwrap_or_else(|error| panic!("{error}"));
    let path = dir.join("github/webhooks/workflow_job").join(name);
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "fixture {} missing ({err}): set RUNWAY_FIXTURES_DIR",
            path.display()
        )
    })
}

/// A fixture rewritten: `labels` replaced, so it can be made a self-hosted job.
fn with_labels(body: &[u8], labels: &[&str]) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).unwrap();
    value["workflow_job"]["labels"] = serde_json::json!(labels);
    serde_json::to_vec(&value).unwrap()
}

/// Remembers started names, like an engine would: the same name twice is a duplicate.
#[derive(Debug, Default)]
struct NamedExecutions {
    started: Mutex<HashMap<String, String>>,
    delay: Duration,
    fail: Option<StartError>,
}

#[async_trait]
impl ExecutionStarter for NamedExecutions {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, StartError> {
        tokio::time::sleep(self.delay).await;
        if let Some(err) = &self.fail {
            return Err(err.clone());
        }
        let mut started = self.started.lock().unwrap();
        if started.contains_key(name) {
            return Ok(StartOutcome::AlreadyExists);
        }
        started.insert(name.to_owned(), input.to_owned());
        Ok(StartOutcome::Started {
            execution_id: format!("local:{name}"),
        })
    }
}

struct Harness {
    intake: Intake,
    starter: Arc<NamedExecutions>,
    events: mpsc::Receiver<JobEventUpdate>,
}

fn harness(config: IntakeConfig, starter: NamedExecutions) -> Harness {
    let starter = Arc::new(starter);
    let (sender, events) = mpsc::channel(16);
    let intake = Intake::new(config, starter.clone()).with_job_events(Arc::new(sender));
    Harness {
        intake,
        starter,
        events,
    }
}

fn config() -> IntakeConfig {
    IntakeConfig::new(WebhookSecrets::new(SECRET).unwrap())
}

fn request(event: &str, body: &[u8], signature: Option<String>) -> Request<Body> {
    let mut builder = Request::post("/webhook")
        .header("x-github-event", event)
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("x-hub-signature-256", signature);
    }
    builder.body(Body::from(body.to_vec())).unwrap()
}

fn signed(event: &str, body: &[u8]) -> Request<Body> {
    request(event, body, Some(sign_with(SECRET.as_bytes(), body)))
}

async fn send(intake: &Intake, req: Request<Body>) -> (StatusCode, Value) {
    let response = router(intake.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, body)
}

#[tokio::test]
async fn a_queued_self_hosted_job_starts_one_execution_and_redelivery_is_a_duplicate() {
    let h = harness(config(), NamedExecutions::default());
    let body = fixture("06-queued.json"); // labels [self-hosted, k8s]
    let (status, answer) = send(&h.intake, signed("workflow_job", &body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["outcome"], "started");
    assert_eq!(answer["execution"], "job-12877621891-r591427149-a1");

    let (status, answer) = send(&h.intake, signed("workflow_job", &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "duplicate");

    let started = h.starter.started.lock().unwrap().clone();
    assert_eq!(started.len(), 1);
    let input: Value = serde_json::from_str(&started["job-12877621891-r591427149-a1"]).unwrap();
    assert_eq!(input["job"]["id"], 12877621891_u64);
    assert_eq!(
        input["job"]["labels"],
        serde_json::json!(["self-hosted", "k8s"])
    );
    assert_eq!(
        input["repository"]["full_name"],
        "lineville/elastic-machines-testing"
    );
    assert_eq!(input["installation_id"], 23154469);
    assert_eq!(input["delivery_id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_start_one_execution() {
    let h = harness(config(), NamedExecutions::default());
    let body = fixture("06-queued.json");
    let answers = futures_join(&h.intake, &body, 8).await;
    assert!(answers.iter().all(|s| s.is_success()), "{answers:?}");
    assert_eq!(h.starter.started.lock().unwrap().len(), 1);
}

async fn futures_join(intake: &Intake, body: &[u8], copies: usize) -> Vec<StatusCode> {
    let mut tasks = Vec::new();
    for _ in 0..copies {
        let intake = intake.clone();
        let req = signed("workflow_job", body);
        tasks.push(tokio::spawn(async move { send(&intake, req).await.0 }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn jobs_for_hosted_runners_are_ignored_without_starting_anything() {
    let h = harness(config(), NamedExecutions::default());
    let (status, answer) = send(
        &h.intake,
        signed("workflow_job", &fixture("05-queued.json")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["outcome"], "ignored");
    assert!(answer["reason"].as_str().unwrap().contains("self-hosted"));
    assert!(h.starter.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_runner_label_is_configurable_and_case_insensitive() {
    let mut cfg = config();
    cfg.filter = JobFilter::default().with_runner_label("RUNWAY");
    let h = harness(cfg, NamedExecutions::default());
    let hosted = with_labels(&fixture("05-queued.json"), &["self-hosted", "linux"]);
    let (_, answer) = send(&h.intake, signed("workflow_job", &hosted)).await;
    assert_eq!(answer["outcome"], "ignored");
    let ours = with_labels(&fixture("05-queued.json"), &["Runway", "linux"]);
    let (status, answer) = send(&h.intake, signed("workflow_job", &ours)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("started"))
    );
    assert!(
        h.starter
            .started
            .lock()
            .unwrap()
            .contains_key("job-289782451-r186853002-a1")
    );
}

#[tokio::test]
async fn the_allow_list_admits_listed_owners_and_repositories_only() {
    let body = with_labels(&fixture("05-queued.json"), &["self-hosted"]); // Codertocat/Hello-World
    for (filter, expected) in [
        (JobFilter::default().allow_owners(["octo-org"]), "ignored"),
        (JobFilter::default().allow_owners(["OCTOCODERS"]), "started"),
        (
            JobFilter::default().allow_repositories(["codertocat/hello-world"]),
            "started",
        ),
        (
            JobFilter::default().allow_repositories(["codertocat/other"]),
            "ignored",
        ),
    ] {
        let mut cfg = config();
        cfg.filter = filter.clone();
        let h = harness(cfg, NamedExecutions::default());
        let (_, answer) = send(&h.intake, signed("workflow_job", &body)).await;
        assert_eq!(answer["outcome"], expected, "{filter:?}: {answer}");
    }
}

#[tokio::test]
async fn waiting_jobs_start_nothing() {
    let h = harness(config(), NamedExecutions::default());
    let (status, answer) = send(
        &h.intake,
        signed("workflow_job", &fixture("07-waiting.json")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["outcome"], "ignored");
    assert!(h.starter.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn in_progress_and_completed_are_forwarded_with_job_and_runner_keys() {
    let mut h = harness(config(), NamedExecutions::default());
    let started = with_labels(&fixture("03-in_progress.json"), &["self-hosted", "linux"]);
    let (status, answer) = send(&h.intake, signed("workflow_job", &started)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("forwarded"))
    );
    let update = h.events.recv().await.unwrap();
    assert_eq!(update.kind, JobEventKind::Started);
    assert_eq!(update.job_id, 289782451);
    assert_eq!(update.runner_name.as_deref(), Some("GitHub Actions 5"));
    assert_eq!(update.repository_id, 186853002);

    let done = with_labels(&fixture("01-completed.json"), &["self-hosted"]);
    send(&h.intake, signed("workflow_job", &done)).await;
    let update = h.events.recv().await.unwrap();
    assert_eq!(update.kind, JobEventKind::Completed);
    assert_eq!(update.conclusion.as_deref(), Some("failure"));
    assert!(h.starter.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_stopped_job_flow_answers_503() {
    let Harness { intake, events, .. } = harness(config(), NamedExecutions::default());
    drop(events);
    let body = with_labels(&fixture("03-in_progress.json"), &["self-hosted"]);
    let (status, answer) = send(&intake, signed("workflow_job", &body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
}

#[tokio::test]
async fn bad_or_missing_signatures_are_401_and_do_nothing() {
    let mut cfg = config();
    cfg.secrets = WebhookSecrets::new("new")
        .unwrap()
        .with_previous(SECRET)
        .unwrap();
    let h = harness(cfg, NamedExecutions::default());
    let body = fixture("06-queued.json");
    let wrong = sign_with(b"not-the-secret", &body);
    for signature in [
        None,
        Some(wrong),
        Some("sha256=zz".to_owned()),
        Some(String::new()),
    ] {
        let (status, answer) = send(&h.intake, request("workflow_job", &body, signature)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    }
    // A signature over another body does not carry over.
    let other = sign_with(SECRET.as_bytes(), b"{}");
    let (status, _) = send(&h.intake, request("workflow_job", &body, Some(other))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.starter.started.lock().unwrap().is_empty());
    // The previous secret still works during the rotation.
    let (status, _) = send(&h.intake, signed("workflow_job", &body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn ping_other_events_and_bad_payloads() {
    let h = harness(config(), NamedExecutions::default());
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    assert_eq!(
        send(&h.intake, signed("ping", ping)).await.0,
        StatusCode::OK
    );
    let (status, answer) = send(&h.intake, signed("push", b"{}")).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    let (status, answer) = send(&h.intake, signed("workflow_job", b"{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["reason"].as_str().unwrap().contains("not JSON"),
        "{answer}"
    );
    let (status, answer) = send(&h.intake, signed("workflow_job", br#"{"action":"queued"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["reason"].as_str().unwrap().contains("workflow_job"),
        "{answer}"
    );
    let body = fixture("06-queued.json");
    let unsigned_event = Request::post("/webhook")
        .header("x-hub-signature-256", sign_with(SECRET.as_bytes(), &body))
        .body(Body::from(body))
        .unwrap();
    assert_eq!(
        send(&h.intake, unsigned_event).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_before_verification() {
    let mut cfg = config();
    cfg.max_body_bytes = 4096;
    let h = harness(cfg, NamedExecutions::default());
    let big = fixture("06-queued.json"); // 13 KiB
    let (status, _) = send(&h.intake, signed("workflow_job", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(&h.intake, request("workflow_job", &big, None)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Far beyond the limit, axum refuses it before the intake.
    let huge = vec![b' '; 64 * 1024];
    let (status, _) = send(&h.intake, signed("workflow_job", &huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Direct calls get the same answer.
    let answer = h
        .intake
        .handle(Delivery {
            headers: Default::default(),
            body: huge.into(),
        })
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(start_paused = true)]
async fn a_slow_engine_is_cut_off_within_githubs_budget() {
    let starter = NamedExecutions {
        delay: Duration::from_secs(30),
        ..Default::default()
    };
    let h = harness(config(), starter);
    let clock = tokio::time::Instant::now();
    let (status, answer) = send(
        &h.intake,
        signed("workflow_job", &fixture("06-queued.json")),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("timed out"));
    assert!(clock.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn engine_failures_are_503_with_the_reason() {
    let starter = NamedExecutions {
        fail: Some(StartError::Unavailable("throttled".into())),
        ..Default::default()
    };
    let h = harness(config(), starter);
    let (status, answer) = send(
        &h.intake,
        signed("workflow_job", &fixture("06-queued.json")),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer["reason"].as_str().unwrap().contains("throttled"));
}

#[tokio::test]
async fn without_a_job_flow_job_events_are_acknowledged_and_dropped() {
    let starter = Arc::new(NamedExecutions::default());
    let intake = Intake::new(config(), starter.clone());
    let body = with_labels(&fixture("02-completed.json"), &["self-hosted"]);
    let (status, answer) = send(&intake, signed("workflow_job", &body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["outcome"], "ignored");
    assert!(
        answer["reason"].as_str().unwrap().contains("no job flow"),
        "{answer}"
    );
    assert!(starter.started.lock().unwrap().is_empty());
}

/// Every installation of an App signs with the App's secret: only the configured
/// installations' events start or forward anything; a deployment with a token takes all.
#[tokio::test]
async fn events_of_other_installations_start_and_forward_nothing() {
    use runway_webhook::InstallationFilter;

    // 06-queued is a self-hosted job of installation 23154469.
    let queued = fixture("06-queued.json");
    let mut other = config();
    other.installations = InstallationFilter::only([3456996, 1]);
    let mut h = harness(other, NamedExecutions::default());
    let (status, answer) = send(&h.intake, signed("workflow_job", &queued)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("installation 23154469 is not one runway serves (1, 3456996)"),
        "{reason}"
    );
    assert!(
        h.starter.started.lock().unwrap().is_empty(),
        "no execution, so no slot"
    );

    // in_progress / completed of another installation are not forwarded either: their runner
    // names must not move runway's runners.
    let in_progress = with_labels(&fixture("04-in_progress.json"), &["self-hosted"]);
    let mut ours_only = config();
    ours_only.installations = InstallationFilter::only([23154469]);
    let mut h2 = harness(ours_only, NamedExecutions::default());
    let (status, answer) = send(&h2.intake, signed("workflow_job", &in_progress)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("installation 3456996"),
        "{answer}"
    );
    // An event with no installation at all (a repository webhook signed with the same secret).
    let no_installation = with_labels(&fixture("00-in_progress.json"), &["self-hosted"]);
    let (status, answer) = send(&h2.intake, signed("workflow_job", &no_installation)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("names no GitHub App installation"),
        "{answer}"
    );
    assert!(h2.events.try_recv().is_err(), "nothing was forwarded");

    // The configured installation's job starts.
    let (status, answer) = send(&h2.intake, signed("workflow_job", &queued)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("started"))
    );
    assert_eq!(h2.starter.started.lock().unwrap().len(), 1);

    // A token deployment filters nothing: the same deliveries start and forward.
    let mut any = harness(config(), NamedExecutions::default());
    let (_, answer) = send(&any.intake, signed("workflow_job", &queued)).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let (_, answer) = send(&any.intake, signed("workflow_job", &no_installation)).await;
    assert_eq!(answer["outcome"], "forwarded", "{answer}");
    assert!(any.events.try_recv().is_ok());
    assert!(h.events.try_recv().is_err());
}

#[test]
fn installation_ids_are_a_comma_separated_list_of_numbers() {
    use runway_webhook::parse_installation_ids;
    assert_eq!(parse_installation_ids("23154469").unwrap(), [23154469]);
    assert_eq!(parse_installation_ids(" 1, 2 ,3,").unwrap(), [1, 2, 3]);
    for bad in ["", " , ", "12a", "1;2", "-4"] {
        assert!(parse_installation_ids(bad).is_err(), "{bad:?}");
    }
}
