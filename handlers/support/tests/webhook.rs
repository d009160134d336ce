//! The webhook function's wiring on moto: its secret from SSM or Secrets Manager (without the
//! newline a `file://` value leaves, and with the previous secret in the same store while
//! rotating), and an intake built from its own settings alone, which starts executions, relays
//! job events and takes only the configured installations' events.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_ssm::types::ParameterType;
use bytes::Bytes;
use http::HeaderMap;
use runway_lambda_support::{
    GITHUB_APP_ID_ENV, GITHUB_CREDENTIAL_PARAMETER_ENV, GITHUB_INSTALLATION_ID_ENV,
    JOB_STATE_MACHINE_ENV, ROUTER_POLICY_ENV, TABLE_ENV, WEBHOOK_SECRET_PARAMETER_ENV,
    WebhookSettings, build_intake, webhook_secrets,
};
use runway_store::{DynamoStore, ExecutionKey, JobId, JobWatch, Store, TaskToken};
use runway_testkit::MotoServer;
use runway_webhook::{Delivery, Intake, sign_with};
use serde_json::Value;

fn settings(pairs: &[(&str, &str)]) -> WebhookSettings {
    let env = environment(pairs);
    WebhookSettings::from_lookup(&|name| env.get(name).cloned()).unwrap()
}

fn environment(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn put_parameter(aws: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(aws)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

async fn create_secret(aws: &SdkConfig, name: &str, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// A webhook environment whose secret is stored at `location`.
fn stored_at(location: &str) -> WebhookSettings {
    settings(&[
        (TABLE_ENV, "unused"),
        (
            JOB_STATE_MACHINE_ENV,
            "arn:aws:states:us-east-1:123456789012:stateMachine:x",
        ),
        (WEBHOOK_SECRET_PARAMETER_ENV, location),
    ])
}

/// The locations of `value` stored once in SSM and once in Secrets Manager, under `name`.
async fn in_both_stores(aws: &SdkConfig, name: &str, value: &str) -> [String; 2] {
    let parameter = format!("/webhook-tests/{name}");
    put_parameter(aws, &parameter, value).await;
    let arn = create_secret(aws, &format!("webhook-tests/{name}"), value).await;
    [parameter, arn]
}

#[tokio::test]
async fn a_secret_stored_with_a_trailing_newline_verifies() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    // What `aws ssm put-parameter --value file://secret.txt` stores from an editor's file.
    for location in in_both_stores(&aws, "newline", "0123abcd-from-a-file\n").await {
        let secrets = webhook_secrets(&aws, &stored_at(&location).secret)
            .await
            .unwrap();
        let body = br#"{"zen":"Design for failure."}"#;
        let header = sign_with(b"0123abcd-from-a-file", body);
        assert!(
            secrets.verify(Some(header.as_bytes()), body).is_ok(),
            "{location}: GitHub signs with the secret, not its newline"
        );
        assert!(!secrets.is_rotating());
    }
}

#[tokio::test]
async fn rotation_with_the_previous_secret_in_the_same_store_verifies_both() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let document = "{\"current\": \"new-secret\", \"previous\": \"old-secret\"}\n";
    for location in in_both_stores(&aws, "rotation", document).await {
        let secrets = webhook_secrets(&aws, &stored_at(&location).secret)
            .await
            .unwrap();
        assert!(secrets.is_rotating(), "{location}");
        let body = b"{}";
        for secret in ["new-secret", "old-secret"] {
            let header = sign_with(secret.as_bytes(), body);
            assert!(
                secrets.verify(Some(header.as_bytes()), body).is_ok(),
                "{location}: {secret}"
            );
        }
        let other = sign_with(b"another-secret", body);
        assert!(secrets.verify(Some(other.as_bytes()), body).is_err());
    }
}

fn fixture(name: &str) -> Value {
    let dir = runway_testkit::fixtures_dir().unwrap_or_else(|error| panic!("{error}"));
    let path = dir.join("github/webhooks/workflow_job").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error} (set RUNWAY_FIXTURES_DIR)", path.display()));
    serde_json::from_str(&text).unwrap()
}

async fn deliver(intake: &Intake, secret: &str, payload: &Value) -> Value {
    let body = serde_json::to_vec(payload).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", "workflow_job".parse().unwrap());
    headers.insert("x-github-delivery", "d-webhook-test".parse().unwrap());
    headers.insert(
        "x-hub-signature-256",
        sign_with(secret.as_bytes(), &body).parse().unwrap(),
    );
    let answer = intake
        .handle(Delivery {
            headers,
            body: Bytes::from(body),
        })
        .await;
    let mut json: Value = serde_json::from_str(&answer.body()).unwrap();
    json["status"] = answer.status.as_u16().into();
    json
}

async fn executions(aws: &SdkConfig, machine: &str) -> Vec<String> {
    aws_sdk_sfn::Client::new(aws)
        .list_executions()
        .state_machine_arn(machine)
        .send()
        .await
        .unwrap()
        .executions()
        .iter()
        .map(|execution| execution.name().to_owned())
        .collect()
}

/// The webhook's environment names a GitHub credential and a router policy that do not
/// exist, and no configuration document: it reads none of them, so it still starts.
#[tokio::test]
async fn the_intake_starts_and_relays_with_its_own_settings_only_for_its_installation() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let table = "webhook-intake-test";
    runway_store::create_table(&aws_sdk_dynamodb::Client::new(&aws), table)
        .await
        .unwrap();
    let machine = aws_sdk_sfn::Client::new(&aws)
        .create_state_machine()
        .name("webhook-intake-test-job")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/runway-job")
        .send()
        .await
        .unwrap()
        .state_machine_arn
        .clone();
    put_parameter(&aws, "/webhook-tests/intake", "intake-secret\n").await;
    let env = environment(&[
        (TABLE_ENV, table),
        (JOB_STATE_MACHINE_ENV, &machine),
        (WEBHOOK_SECRET_PARAMETER_ENV, "/webhook-tests/intake"),
        (GITHUB_APP_ID_ENV, "12345"),
        (GITHUB_INSTALLATION_ID_ENV, "23154469"),
        (
            GITHUB_CREDENTIAL_PARAMETER_ENV,
            "/webhook-tests/no-such-credential",
        ),
        (ROUTER_POLICY_ENV, "/no/such/router.wasm"),
    ]);
    let lookup = |name: &str| env.get(name).cloned();
    let settings = WebhookSettings::from_lookup(&lookup).unwrap();
    let intake = build_intake(&settings, &aws, &lookup).await.unwrap();

    // A self-hosted job of installation 23154469 starts its execution.
    let queued = fixture("06-queued.json");
    let answer = deliver(&intake, "intake-secret", &queued).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let started = executions(&aws, &machine).await;
    assert_eq!(started.len(), 1);

    // The same job from another installation (3456996) starts nothing.
    let mut foreign = fixture("05-queued.json");
    foreign["workflow_job"]["labels"] = serde_json::json!(["self-hosted", "k8s"]);
    foreign["workflow_job"]["id"] = 1.into();
    let answer = deliver(&intake, "intake-secret", &foreign).await;
    assert_eq!(answer["status"], 202, "{answer}");
    assert_eq!(answer["outcome"], "ignored", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("installation 3456996"),
        "{answer}"
    );
    assert_eq!(executions(&aws, &machine).await, started);

    // The job ending wakes the execution that watches it, through the store and the task
    // callbacks alone.
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        table.to_owned(),
        runway_clock::SystemClock::shared(),
    );
    let job_id = JobId(queued["workflow_job"]["id"].as_u64().unwrap());
    store
        .watch_job(&JobWatch {
            job_id,
            execution: ExecutionKey::new(started[0].as_str()).unwrap(),
            task_token: TaskToken::new("token-of-the-watch-job-completed-state").unwrap(),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    let mut completed = queued.clone();
    completed["action"] = "completed".into();
    completed["workflow_job"]["status"] = "completed".into();
    completed["workflow_job"]["conclusion"] = "success".into();
    completed["workflow_job"]["runner_name"] = "runway-webhook-test".into();
    let answer = deliver(&intake, "intake-secret", &completed).await;
    assert_eq!(answer["outcome"], "forwarded", "{answer}");
    assert_eq!(
        store.get_job_watch(job_id).await.unwrap(),
        None,
        "the watch was taken and its task completed"
    );
}
