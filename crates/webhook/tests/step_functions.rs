//! `SfnExecutionStarter` against a real Step Functions API (moto server on 127.0.0.1).
#![cfg(feature = "aws-sfn")]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use runway_webhook::{
    Delivery, ExecutionStarter, Intake, IntakeConfig, SfnExecutionStarter, StartError,
    StartOutcome, WebhookSecrets, sign_with,
};

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let binary = std::env::var_os("RUNWAY_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/moto_server")
        });
    assert!(
        binary.is_file(),
        "{} is missing: run scripts/setup.sh (or set RUNWAY_MOTO_SERVER)",
        binary.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {}: {err}", binary.display()));
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

fn client(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

async fn state_machine(client: &aws_sdk_sfn::Client) -> String {
    client
        .create_state_machine()
        .name("runway-job")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/runway-job")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

async fn executions(client: &aws_sdk_sfn::Client, arn: &str) -> Vec<String> {
    let listed = client
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .unwrap();
    listed.executions.into_iter().map(|e| e.name).collect()
}

#[tokio::test]
async fn starting_a_name_twice_is_one_execution_and_two_successes() {
    let moto = moto();
    let client = client(&moto.endpoint);
    let arn = state_machine(&client).await;
    let starter = SfnExecutionStarter::new(client.clone(), &arn);

    let first = starter
        .start_execution("job-7-r9-a1", r#"{"job":{"id":7}}"#)
        .await
        .unwrap();
    let StartOutcome::Started { execution_id } = first else {
        panic!("{first:?}")
    };
    assert!(execution_id.ends_with(":job-7-r9-a1"), "{execution_id}");

    // Same name and input (Step Functions may answer with the running execution), then a
    // different input (ExecutionAlreadyExists): both are a success that starts nothing.
    let again = starter
        .start_execution("job-7-r9-a1", r#"{"job":{"id":7}}"#)
        .await
        .unwrap();
    assert!(
        matches!(
            again,
            StartOutcome::AlreadyExists | StartOutcome::Started { .. }
        ),
        "{again:?}"
    );
    let different = starter
        .start_execution("job-7-r9-a1", r#"{"job":{"id":7,"x":1}}"#)
        .await
        .unwrap();
    assert!(matches!(
        different,
        StartOutcome::AlreadyExists | StartOutcome::Started { .. }
    ));
    assert_eq!(
        executions(&client, &arn).await,
        vec!["job-7-r9-a1".to_owned()]
    );
}

#[tokio::test]
async fn an_unknown_state_machine_is_rejected_not_retried() {
    let moto = moto();
    let client = client(&moto.endpoint);
    let starter = SfnExecutionStarter::new(
        client,
        "arn:aws:states:us-east-1:123456789012:stateMachine:missing",
    );
    let err = starter
        .start_execution("job-1-r1-a1", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let starter = SfnExecutionStarter::new(
        client(&format!("http://127.0.0.1:{port}")),
        "arn:aws:states:us-east-1:123456789012:stateMachine:runway-job",
    );
    let err = starter
        .start_execution("job-1-r1-a1", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_redelivered_queued_webhook_starts_one_step_functions_execution() {
    let moto = moto();
    let client = client(&moto.endpoint);
    let arn = state_machine(&client).await;
    let intake = Intake::new(
        IntakeConfig::new(WebhookSecrets::new("s3cret").unwrap()),
        Arc::new(SfnExecutionStarter::new(client.clone(), &arn)),
    );
    let dir = runway_testkit::fixtures_dir().unwrap_or_else(|error| panic!("{error}"));
    let body = std::fs::read(dir.join("github/webhooks/workflow_job/06-queued.json"))
        .expect("fixture missing: set RUNWAY_FIXTURES_DIR");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-github-event", "workflow_job".parse().unwrap());
        headers.insert(
            "x-hub-signature-256",
            sign_with(b"s3cret", &body).parse().unwrap(),
        );
        let answer = intake
            .handle(Delivery {
                headers,
                body: body.clone().into(),
            })
            .await;
        statuses.push((answer.status.as_u16(), answer.outcome));
    }
    assert_eq!(statuses[0], (202, "started"));
    assert!(
        statuses[1..]
            .iter()
            .all(|(status, _)| *status == 200 || *status == 202),
        "{statuses:?}"
    );
    assert_eq!(
        executions(&client, &arn).await,
        vec!["job-12877621891-r591427149-a1".to_owned()]
    );
    let described = client
        .describe_execution()
        .execution_arn(format!(
            "{}:job-12877621891-r591427149-a1",
            arn.replace(":stateMachine:", ":execution:")
        ))
        .send()
        .await
        .unwrap();
    let input: serde_json::Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(input["job"]["id"], 12877621891_u64);
}
