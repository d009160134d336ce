//! The reaper against real AWS APIs (moto on 127.0.0.1): runners on EC2, state in DynamoDB,
//! and execution lookups through Step Functions' `DescribeExecution`.

mod common;

use common::*;
use runway_local::{Listen, LocalConfig, LocalSystem, StoreConfig};
use runway_reaper::{ExecutionStatus, Executions, SfnExecutions};
use runway_testkit::{MotoServer, workspace_root};

/// `sam/local-ec2.toml` on free ports, its pool's runner waited for (never replaced, never
/// torn down idle) within a test; with the pool's name and labels.
fn local_ec2_config() -> (LocalConfig, String, Vec<String>) {
    let mut config = LocalConfig::from_file(&workspace_root().join("sam/local-ec2.toml"))
        .expect("sam/local-ec2.toml parses");
    config.listen = Listen::any_free_port();
    let pool = &mut config.document.flow.pools[0];
    pool.boot_timeout_seconds = 600;
    pool.idle_timeout_seconds = 600;
    pool.recheck_after_seconds = 600;
    let (name, labels) = (pool.name.clone(), pool.labels.clone());
    (config, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_execution_s_ec2_runner_and_dynamodb_slot_are_cleaned_up_and_nothing_else() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let (mut config, name, labels) = local_ec2_config();
    config.store = StoreConfig::Dynamodb {
        table: "runway-reaper".into(),
    };
    // One slot.
    config.document.flow.pools[0].max_running = 1;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_interruption_warning_is_recorded_once_on_the_runner_of_its_instance() {
    use runway_jobflow::metrics::{Dimension, Metric};
    use runway_store::RunnerName;
    use serde_json::json;

    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let (config, pool_name, labels) = local_ec2_config();
    let system = LocalSystem::start_with_aws(config, Some(aws))
        .await
        .unwrap_or_else(|error| panic!("runway local did not start: {error}"));
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    emulator(&system)
        .create_job(runway_github_emulator::NewJob::new("octo-org/app", &labels))
        .unwrap();
    let provider = system.providers()[&pool_name].clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    let runner = loop {
        if let Some(runner) = provider.owned().await.unwrap().into_iter().next() {
            break runner;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job's runner is never launched on EC2"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let warning = |instance: &str| {
        json!({
            "version": "0",
            "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
            "detail-type": "EC2 Spot Instance Interruption Warning",
            "source": "aws.ec2",
            "account": "123456789012",
            "time": "2026-12-04T12:00:00Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:ec2:us-east-1:123456789012:instance/{instance}")],
            "detail": {"instance-id": instance, "instance-action": "terminate"}
        })
    };
    let reaper = reaper(&system, eager());

    let report = reaper.run(warning(&runner.instance_id)).await.unwrap();
    assert_eq!(report["recorded"], true, "{report}");
    assert_eq!(
        report["runner_name"],
        runner.runner_name.as_str(),
        "{report}"
    );
    assert_eq!(report["execution"], runner.execution.as_str(), "{report}");
    assert_eq!(report["pool"], pool_name.as_str(), "{report}");
    let name = RunnerName::new(runner.runner_name.as_str()).unwrap();
    let record = system.store().get_runner(&name).await.unwrap().unwrap();
    assert!(record.reclaimed_at.is_some(), "{record:?}");

    // EventBridge may deliver it again: counted once.
    let again = reaper.run(warning(&runner.instance_id)).await.unwrap();
    assert_eq!(again["recorded"], false, "{again}");
    let reclaims = system.metrics().of(Metric::SpotReclaims);
    assert_eq!(reclaims.len(), 1, "{reclaims:?}");
    assert_eq!(
        reclaims[0].dimensions,
        vec![(Dimension::Pool, pool_name.clone())]
    );

    // Another instance of the account is none of the stack's business.
    let stranger = reaper.run(warning("i-0fffffffffffffff0")).await.unwrap();
    assert_eq!(
        stranger["runner_name"],
        serde_json::Value::Null,
        "{stranger}"
    );
    assert_eq!(stranger["recorded"], false, "{stranger}");

    // An event of another kind is refused, naming what the rule must match.
    let mut other = warning(&runner.instance_id);
    other["detail-type"] = json!("EC2 Instance State-change Notification");
    let refused = reaper.run(other).await.unwrap_err();
    assert_eq!(refused.name(), runway_reaper::BAD_INPUT);
    assert!(
        refused
            .to_string()
            .contains("EC2 Spot Instance Interruption Warning"),
        "{refused}"
    );
    system.shutdown().await;
}
