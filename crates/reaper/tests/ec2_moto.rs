//! The reaper against real AWS APIs (moto on 127.0.0.1): runners on EC2, state in DynamoDB,
//! and execution lookups through Step Functions' `DescribeExecution`.

mod common;

use common::*;
use runway_local::{Listen, LocalConfig, LocalSystem, StoreConfig};
use runway_reaper::{ExecutionStatus, Executions, SfnExecutions};
use runway_testkit::{MotoServer, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_execution_s_ec2_runner_and_dynamodb_slot_are_cleaned_up_and_nothing_else() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let mut config = LocalConfig::from_file(&workspace_root().join("sam/local-ec2.toml"))
        .expect("sam/local-ec2.toml parses");
    config.listen = Listen::any_free_port();
    config.store = StoreConfig::Dynamodb {
        table: "runway-reaper".into(),
    };
    // One slot, and a runner that never boots is waited for rather than replaced.
    let pool = &mut config.document.flow.pools[0];
    pool.max_running = 1;
    pool.boot_timeout_seconds = 600;
    pool.idle_timeout_seconds = 600;
    pool.recheck_after_seconds = 600;
    let name = pool.name.clone();
    let labels = pool.labels.clone();
    let system = LocalSystem::start_with_aws(config, Some(aws))
        .await
        .unwrap_or_else(|error| panic!("runway local did not start: {error}"));
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    crash_and_reap(&system, &name, &labels).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_functions_says_which_executions_run() {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&aws);
    let machine = sfn
        .create_state_machine()
        .name("runway-reaper-job")
        .definition(r#"{"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/runway-states")
        .send()
        .await
        .unwrap();
    let executions = SfnExecutions::new(sfn.clone(), machine.state_machine_arn()).unwrap();

    assert_eq!(
        executions.status("job-1-r1-a1").await.unwrap(),
        ExecutionStatus::Unknown
    );
    let started = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("job-1-r1-a1")
        .input("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.status("job-1-r1-a1").await.unwrap(),
        ExecutionStatus::Running
    );
    sfn.stop_execution()
        .execution_arn(started.execution_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.status("job-1-r1-a1").await.unwrap(),
        ExecutionStatus::Ended
    );
    // A name no execution ARN can hold is no execution.
    assert_eq!(
        executions.status("a:b").await.unwrap(),
        ExecutionStatus::Unknown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_step_functions_is_a_retryable_error() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let executions = SfnExecutions::new(
        aws_sdk_sfn::Client::new(&aws),
        "arn:aws:states:us-east-1:123456789012:stateMachine:runway-job",
    )
    .unwrap();
    let error = executions.status("job-1-r1-a1").await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(error.name(), "Runway.Transient");
}
