//! `sam/local-ec2.toml` against a real EC2, SSM and DynamoDB API (moto on 127.0.0.1): the job
//! state machine launches an EC2 instance for the job, hands it the JIT config through SSM
//! only, and terminates it at the end. No runner boots on moto, so the test plays the runner
//! with the JIT config it reads from SSM, as the instance's boot script would.

mod common;

use aws_sdk_ec2::types::{HttpTokensState, InstanceAttributeName, InstanceStateName};
use base64::Engine;
use common::*;
use runway_github_emulator::{JitConfig, JobStatus, NewJob};
use runway_local::{Listen, LocalConfig, LocalSystem, ProviderSettings, StoreConfig};
use runway_testkit::{MotoServer, workspace_root};

fn sam_config() -> LocalConfig {
    LocalConfig::from_file(&workspace_root().join("sam/local-ec2.toml"))
        .expect("sam/local-ec2.toml parses")
}

#[test]
fn the_local_ec2_configuration_asks_for_ec2_runners_and_a_dynamodb_table() {
    let config = sam_config();
    assert_eq!(
        config.store,
        StoreConfig::Dynamodb {
            table: "runway-local".into()
        }
    );
    assert_eq!(config.pools().count(), 1);
    let (pool, provider) = config.pools().next().unwrap();
    assert!(matches!(provider, ProviderSettings::Ec2(_)), "{provider:?}");
    // A stock image, named through AWS's public parameter.
    assert_eq!(
        pool.image.as_deref(),
        Some("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
    );
    assert!(!pool.instance_types.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_an_ec2_runner_with_dynamodb_state_and_the_instance_is_terminated() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let mut config = sam_config();
    config.listen = Listen::any_free_port();
    let (pool, _) = config.pools().next().unwrap();
    let (pool, labels) = (pool.name.clone(), pool.labels.clone());
    let system = LocalSystem::start_with_aws(config, Some(aws.clone()))
        .await
        .unwrap_or_else(|error| panic!("runway local did not start: {error}"));
    // The table was created.
    aws_sdk_dynamodb::Client::new(&aws)
        .describe_table()
        .table_name("runway-local")
        .send()
        .await
        .expect("the store's table exists");

    let emulator = emulator(&system);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &labels))
        .unwrap()
        .job_id;

    // The instance launched for the job, found by runway's tags.
    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    let instance = loop {
        let found = ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:runway:managed")
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        if let Some(instance) = found
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
        {
            break instance.clone();
        }
        if tokio::time::Instant::now() > deadline {
            let execution = system.execution_for_job(job);
            let states = execution
                .as_ref()
                .map(|e| states(&system, e).join(" → "))
                .unwrap_or_default();
            panic!("no runner was launched: {execution:?}\n{states}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let instance_id = instance.instance_id().unwrap().to_owned();
    let tags: std::collections::HashMap<&str, &str> = instance
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    let execution = system.execution_for_job(job).unwrap();
    let runner_name = tags
        .get("runway:runner")
        .copied()
        .unwrap_or_default()
        .to_owned();
    // The runner is recorded in DynamoDB as this execution's.
    let record = system
        .store()
        .get_runner(&runway_store::RunnerName::new(runner_name.as_str()).unwrap())
        .await
        .unwrap()
        .expect("the runner is recorded in the store");
    assert_eq!(record.execution.as_str(), execution.name);
    assert_eq!(record.pool.as_str(), pool);
    assert_eq!(tags.get("runway:execution"), Some(&execution.name.as_str()));
    assert_eq!(tags.get("runway:pool"), Some(&pool.as_str()));
    assert_eq!(tags.get("runway:runner"), Some(&runner_name.as_str()));
    assert_eq!(tags.get("runway:managed"), Some(&"true"));
    assert_eq!(tags.get("runway:stack"), Some(&"runway-local"));
    assert!(runner_name.starts_with("runway-local-"), "{runner_name}");
    assert_eq!(tags.get("team"), Some(&"platform"));
    assert_eq!(
        instance.metadata_options().and_then(|m| m.http_tokens()),
        Some(&HttpTokensState::Required),
        "IMDSv2 must be required"
    );

    // The JIT config is in SSM, readable by the instance, and not in its user data.
    let parameter = ssm
        .get_parameter()
        .name(format!("/runway/runway-local/jit/{instance_id}"))
        .with_decryption(true)
        .send()
        .await
        .expect("the JIT config parameter exists");
    let jit = parameter.parameter().unwrap().value().unwrap().to_owned();
    let decoded = JitConfig::decode(&jit).expect("an emulator JIT config");
    assert_eq!(decoded.runner_name, runner_name);
    let user_data = ec2
        .describe_instance_attribute()
        .instance_id(&instance_id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let script = base64::engine::general_purpose::STANDARD
        .decode(user_data.user_data().unwrap().value().unwrap())
        .unwrap();
    let script = String::from_utf8(script).unwrap();
    assert!(
        !script.contains(&jit),
        "the JIT config leaked into user data"
    );
    assert!(
        !script.contains(&decoded.credential),
        "a credential leaked into user data"
    );
    // A plain shell script that installs the runner the cache's manifest names.
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build(),
    );
    let manifest = s3
        .get_object()
        .bucket("runway-local-runner-cache")
        .key("runners/latest.json")
        .send()
        .await
        .expect("runway local filled the runner cache")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let manifest = runway_runner_cache::Manifest::parse(&manifest).unwrap();
    let linux = &manifest.platforms[&runway_runner_cache::Platform::LinuxX64];
    assert!(
        script.contains("cache_bucket=\"runway-local-runner-cache\""),
        "{script}"
    );
    assert!(
        script.contains(&format!("package_linux_x64=\"{}\"", linux.key)),
        "{script}"
    );
    assert!(
        script.contains(&format!("sha256_linux_x64=\"{}\"", linux.sha256)),
        "{script}"
    );
    // The stock image the public parameter names.
    let image = ssm
        .get_parameter()
        .name("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
        .send()
        .await
        .unwrap();
    assert_eq!(
        instance.image_id(),
        image.parameter().and_then(|parameter| parameter.value())
    );

    // Play the runner the instance would start.
    let outcome = runway_github_emulator::runner::run_once(Some(emulator.base_url()), &jit)
        .await
        .unwrap();
    assert!(
        matches!(outcome, runway_github_emulator::runner::RunOutcome::Completed { job_id, .. } if job_id == job),
        "{outcome:?}"
    );
    let execution = ended(&system, job).await;
    assert_succeeded(&system, &execution, "Done");
    assert_eq!(emulator.job(job).unwrap().status, JobStatus::Completed);

    let state = ec2
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned();
    assert!(
        matches!(
            state,
            Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
        ),
        "{state:?}"
    );
    let gone = ssm
        .get_parameter()
        .name(format!("/runway/runway-local/jit/{instance_id}"))
        .send()
        .await;
    assert!(gone.is_err(), "the JIT config parameter was left behind");
    assert_nothing_left(&system).await;
    system.shutdown().await;
}
