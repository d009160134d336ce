//! The ECS provider against a real ECS, SSM and EC2 API (moto on 127.0.0.1).
//!
//! Where moto is not ECS, the test says so beside the workaround:
//! - moto needs `securityGroups` in an `awsvpc` configuration (ECS takes none: the VPC's
//!   default group), so every pool here names the default VPC's group;
//! - moto never answers "no capacity" and ignores `clientToken`: the fault proxy answers as
//!   ECS does and records the tokens on the wire;
//! - moto places EC2-launch-type tasks only on registered container instances, so the EC2
//!   capacity test registers one.

mod contract;
mod faults;

use std::collections::HashMap;

use aws_sdk_ecs::types::{DesiredStatus, Task, TaskDefinitionField, TaskField};
use runway_providers::{
    Capacity, DockerMode, EcsCapacity, EcsPoolConfig, EcsProvider, Provider, ProviderError,
    RunnerTaskDefinition, Terminated, register_default_task_definition, started_by,
};
use runway_testkit::MotoServer;

const CLUSTER: &str = "runway-runners";
const IMAGE: &str = "ghcr.io/actions/actions-runner:2.321.0";

struct Aws {
    ecs: aws_sdk_ecs::Client,
    ssm: aws_sdk_ssm::Client,
    ec2: aws_sdk_ec2::Client,
}

fn clients(config: &aws_config::SdkConfig) -> Aws {
    Aws {
        ecs: aws_sdk_ecs::Client::new(config),
        ssm: aws_sdk_ssm::Client::new(config),
        ec2: aws_sdk_ec2::Client::new(config),
    }
}

async fn aws() -> Aws {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    clients(&moto.sdk_config().await)
}

/// The cluster with both Fargate capacity providers (creating it again changes nothing).
async fn cluster(ecs: &aws_sdk_ecs::Client) {
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .send()
        .await
        .expect("moto creates the cluster");
}

async fn default_subnets(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    runway_providers::default_vpc_subnets(ec2).await.unwrap()
}

async fn default_security_group(ec2: &aws_sdk_ec2::Client) -> String {
    runway_providers::default_vpc_security_group(ec2)
        .await
        .unwrap()
        .expect("moto's default VPC has a default group")
}

/// A Fargate pool running the stack's default task definition.
async fn pool_config(aws: &Aws) -> EcsPoolConfig {
    cluster(&aws.ecs).await;
    let mut config = EcsPoolConfig::new(
        CLUSTER,
        "placeholder",
        default_subnets(&aws.ec2).await[..2].to_vec(),
    );
    // moto needs securityGroups in the awsvpc configuration (ECS does not).
    config.security_groups = vec![default_security_group(&aws.ec2).await];
    config.image = Some(IMAGE.to_string());
    config.cpu = Some(1024);
    config.memory = Some(2048);
    config.extra_tags.insert("team".into(), "platform".into());
    let definition = RunnerTaskDefinition::for_pool(&config, "contract-pool", IMAGE);
    config.task_definition = register_default_task_definition(&aws.ecs, &definition)
        .await
        .expect("the default task definition registers");
    config
}

async fn fixture(_name: &str) -> Box<dyn Provider> {
    let aws = aws().await;
    let config = pool_config(&aws).await;
    Box::new(EcsProvider::new(aws.ecs, aws.ssm, config).unwrap())
}

provider_contract_tests!(fixture);

fn tags_of(task: &Task) -> HashMap<String, String> {
    task.tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
        .collect()
}

async fn task(ecs: &aws_sdk_ecs::Client, arn: &str) -> Task {
    ecs.describe_tasks()
        .cluster(CLUSTER)
        .tasks(arn)
        .include(TaskField::Tags)
        .send()
        .await
        .unwrap()
        .tasks()
        .iter()
        .find(|task| task.task_arn() == Some(arn))
        .cloned()
        .unwrap_or_else(|| panic!("no task {arn}"))
}

/// The runner container's environment in the task's overrides.
fn override_env(task: &Task) -> HashMap<String, String> {
    task.overrides()
        .expect("overrides")
        .container_overrides()
        .iter()
        .flat_map(|container| container.environment())
        .filter_map(|pair| Some((pair.name()?.to_string(), pair.value()?.to_string())))
        .collect()
}

async fn parameter_value(ssm: &aws_sdk_ssm::Client, name: &str) -> Option<String> {
    ssm.get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .ok()
        .and_then(|output| output.parameter)
        .and_then(|parameter| parameter.value)
}

#[tokio::test]
async fn a_runner_task_is_tagged_found_by_its_execution_and_gets_its_config_from_ssm_only() {
    let aws = aws().await;
    let config = pool_config(&aws).await;
    let task_definition = config.task_definition.clone();
    let provider = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config).unwrap();
    let request = contract::request("ecs-details", "ecs-details-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    assert_eq!(
        launched.capacity,
        Some(Capacity::Spot),
        "Fargate Spot first"
    );
    assert!(launched.subnet_id.is_some());
    let arn = launched.instance_id.clone();

    let described = task(&aws.ecs, &arn).await;
    let tags = tags_of(&described);
    assert_eq!(tags["runway:stack"], "runway");
    assert_eq!(tags["runway:execution"], "ecs-details");
    assert_eq!(tags["runway:pool"], "contract-pool");
    assert_eq!(tags["runway:runner"], "ecs-details-runner");
    assert_eq!(tags["runway:managed"], "true");
    assert_eq!(tags["team"], "platform");
    let expected_started_by = started_by("runway", "ecs-details");
    assert!(expected_started_by.len() <= 36);
    assert_eq!(described.started_by(), Some(expected_started_by.as_str()));
    assert_eq!(described.capacity_provider_name(), Some("FARGATE_SPOT"));
    assert_eq!(
        described.task_definition_arn(),
        Some(task_definition.as_str())
    );

    // Teardown and the reaper find it by its startedBy.
    let listed = aws
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .started_by(&expected_started_by)
        .desired_status(DesiredStatus::Running)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.task_arns(), std::slice::from_ref(&arn));

    // The overrides carry the start script and the parameter's name, never the secret.
    let overrides = described.overrides().expect("overrides");
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some("runner"));
    assert_eq!(container.command(), provider.start_command().as_slice());
    let env = override_env(&described);
    assert_eq!(env["RUNWAY_REGION"], "us-east-1");
    let parameter = env["RUNWAY_JIT_PARAMETER"].clone();
    assert!(
        parameter.starts_with("/runway/runway/jit/ecs/") && parameter.len() > 40,
        "{parameter}"
    );
    assert!(
        !format!("{described:?}").contains(&secret),
        "the JIT config leaked into the task"
    );
    let definition = aws
        .ecs
        .describe_task_definition()
        .task_definition(&task_definition)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert!(
        !format!("{definition:?}").contains(&secret),
        "the JIT config leaked into the task definition"
    );
    assert!(
        !format!("{launched:?}").contains(&secret),
        "the JIT config leaked into the execution's state"
    );

    // The secret is in SSM: an Advanced-tier SecureString, tagged, with an expiry.
    assert_eq!(
        parameter_value(&aws.ssm, &parameter).await.as_deref(),
        Some(secret.as_str())
    );
    let metadata = aws
        .ssm
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .values(&parameter)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .parameters()[0]
        .clone();
    assert_eq!(metadata.r#type().map(|t| t.as_str()), Some("SecureString"));
    assert_eq!(metadata.tier().map(|t| t.as_str()), Some("Advanced"));
    // One Expiration policy. (moto puts the policy's text, as a Python dict, where AWS puts
    // its type, so the text is what is read.)
    let policies: Vec<&str> = metadata
        .policies()
        .iter()
        .filter_map(|policy| policy.policy_text())
        .collect();
    assert_eq!(policies.len(), 1, "{metadata:?}");
    assert!(policies[0].contains("Expiration"), "{metadata:?}");
    let parameter_tags = aws
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&parameter)
        .send()
        .await
        .unwrap();
    let parameter_tags: HashMap<&str, &str> = parameter_tags
        .tag_list()
        .iter()
        .map(|tag| (tag.key(), tag.value()))
        .collect();
    assert_eq!(parameter_tags["runway:execution"], "ecs-details");
    assert_eq!(parameter_tags["runway:runner"], "ecs-details-runner");
    assert_eq!(parameter_tags["runway:stack"], "runway");

    // Teardown stops the task and deletes the parameter.
    assert_eq!(
        provider
            .terminate("ecs-details", "ecs-details-runner")
            .await
            .unwrap(),
        Terminated::Stopped {
            instance_ids: vec![arn.clone()]
        }
    );
    let stopped = task(&aws.ecs, &arn).await;
    assert_eq!(stopped.desired_status(), Some("STOPPED"));
    assert_eq!(parameter_value(&aws.ssm, &parameter).await, None);
    assert_eq!(
        provider
            .terminate("ecs-details", "ecs-details-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
}

async fn through_proxy() -> (faults::FaultProxy, EcsProvider, Aws) {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let proxy = faults::FaultProxy::start(moto.endpoint_url(), 0).await;
    let proxied = clients(&proxy.sdk_config().await);
    let direct = aws().await;
    let provider = EcsProvider::new(proxied.ecs, proxied.ssm, pool_config(&direct).await).unwrap();
    (proxy, provider, direct)
}

#[tokio::test]
async fn no_fargate_spot_capacity_falls_back_to_fargate() {
    let (proxy, provider, aws) = through_proxy().await;
    proxy.no_spot_capacity(1);
    let request = contract::request("spot-fallback", "spot-fallback-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    assert_eq!(launched.capacity, Some(Capacity::OnDemand));
    let described = task(&aws.ecs, &launched.instance_id).await;
    assert_eq!(described.capacity_provider_name(), Some("FARGATE"));

    let calls = proxy.recorded.lock().unwrap().run_task_calls.clone();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let provider_of = |call: &serde_json::Value| {
        call["capacityProviderStrategy"][0]["capacityProvider"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(provider_of(&calls[0]).as_deref(), Some("FARGATE_SPOT"));
    assert_eq!(provider_of(&calls[1]).as_deref(), Some("FARGATE"));
    for call in &calls {
        assert!(call.get("launchType").is_none(), "{call}");
        assert!(
            !call.to_string().contains(&secret),
            "the secret went to ECS"
        );
    }
    // Both tries hand over the same parameter; another placement is another request.
    assert_eq!(
        calls[0]["overrides"]["containerOverrides"],
        calls[1]["overrides"]["containerOverrides"]
    );
    let tokens: Vec<&str> = calls
        .iter()
        .map(|call| call["clientToken"].as_str().unwrap_or_default())
        .collect();
    assert!(
        tokens
            .iter()
            .all(|token| !token.is_empty() && token.len() <= 64),
        "{tokens:?}"
    );
    assert_ne!(tokens[0], tokens[1]);
    let parameter = override_env(&described)["RUNWAY_JIT_PARAMETER"].clone();
    assert_eq!(
        parameter_value(&aws.ssm, &parameter).await.as_deref(),
        Some(secret.as_str())
    );
    provider
        .terminate("spot-fallback", "spot-fallback-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn fargate_spot_alone_without_capacity_is_a_retryable_capacity_error_and_leaves_nothing() {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let proxy = faults::FaultProxy::start(moto.endpoint_url(), 0).await;
    let proxied = clients(&proxy.sdk_config().await);
    let aws = aws().await;
    let mut config = pool_config(&aws).await;
    config.capacity = EcsCapacity::FargateSpot;
    let provider = EcsProvider::new(proxied.ecs, proxied.ssm, config).unwrap();
    proxy.no_spot_capacity(5);
    let error = provider
        .launch(contract::request("spot-only", "spot-only-runner"))
        .await
        .unwrap_err();
    let ProviderError::Capacity { tried } = &error else {
        panic!("expected a capacity error, got {error:?}");
    };
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert!(
        tried[0].starts_with("FARGATE_SPOT: Capacity is unavailable"),
        "{tried:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(proxy.recorded.lock().unwrap().run_task_calls.len(), 1);
    // The JIT config written for the launch is gone with it.
    let left = aws
        .ssm
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("tag:runway:runner")
                .values("spot-only-runner")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(left.parameters().is_empty(), "{left:?}");
    assert!(provider.owned_by("spot-only").await.unwrap().is_empty());
}

#[tokio::test]
async fn docker_in_docker_on_fargate_is_refused_before_anything_runs() {
    let aws = aws().await;
    let mut config = pool_config(&aws).await;
    config.docker = DockerMode::Dind;
    let error = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config.clone()).unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("Fargate does not run"), "{message}");
    assert!(message.contains("capacity \"ec2\""), "{message}");

    let mut definition = RunnerTaskDefinition::for_pool(&config, "dind-fargate", IMAGE);
    definition.docker = DockerMode::Dind;
    let error = register_default_task_definition(&aws.ecs, &definition)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Fargate does not run"),
        "{error}"
    );
    let families = aws
        .ecs
        .list_task_definitions()
        .family_prefix(&definition.family)
        .send()
        .await
        .unwrap();
    assert!(
        families.task_definition_arns().is_empty(),
        "nothing registered"
    );
}

/// moto places EC2-launch-type tasks only on a registered container instance: one is
/// registered for the cluster first.
async fn container_instance(aws: &Aws, cluster: &str) {
    let image = aws
        .ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap()
        .images()
        .iter()
        .find_map(|image| image.image_id().map(str::to_string))
        .expect("moto has default AMIs");
    let instance = aws
        .ec2
        .run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let instance_id = instance.instances()[0].instance_id().unwrap().to_string();
    aws.ecs
        .register_container_instance()
        .cluster(cluster)
        .instance_identity_document(serde_json::json!({ "instanceId": instance_id }).to_string())
        .send()
        .await
        .expect("moto registers the container instance");
}

#[tokio::test]
async fn an_ec2_capacity_pool_runs_the_runner_beside_a_privileged_dind_sidecar() {
    let aws = aws().await;
    let cluster = "runway-ec2-runners";
    aws.ecs
        .create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    container_instance(&aws, cluster).await;
    let mut config = pool_config(&aws).await;
    config.cluster = cluster.to_string();
    config.capacity = EcsCapacity::Ec2;
    config.docker = DockerMode::Dind;
    let definition = RunnerTaskDefinition::for_pool(&config, "docker", IMAGE);
    config.task_definition = register_default_task_definition(&aws.ecs, &definition)
        .await
        .unwrap();
    let registered = aws
        .ecs
        .describe_task_definition()
        .task_definition(&config.task_definition)
        .send()
        .await
        .unwrap()
        .task_definition
        .expect("the task definition");
    assert_eq!(
        registered
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["EC2"]
    );
    let containers = registered.container_definitions();
    assert_eq!(containers.len(), 2);
    let sidecar = containers
        .iter()
        .find(|container| container.name() == Some("dind"))
        .expect("the dind sidecar");
    assert_eq!(sidecar.privileged(), Some(true));
    assert_eq!(sidecar.image(), Some("docker:dind"));
    let runner = containers
        .iter()
        .find(|container| container.name() == Some("runner"))
        .expect("the runner");
    assert_ne!(
        runner.privileged(),
        Some(true),
        "only the sidecar is privileged"
    );

    let provider = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config).unwrap();
    let launched = provider
        .launch(contract::request("ec2-dind", "ec2-dind-runner"))
        .await
        .unwrap();
    assert_eq!(launched.capacity, None, "the EC2 launch type has no market");
    let described = aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(&launched.instance_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.tasks()[0].launch_type().map(|t| t.as_str()),
        Some("EC2")
    );
    assert!(matches!(
        provider
            .terminate("ec2-dind", "ec2-dind-runner")
            .await
            .unwrap(),
        Terminated::Stopped { .. }
    ));
}

/// The start script, run as the container would run it: against moto's SSM (signed with
/// `curl --aws-sigv4`), credentials from a file standing in for the task role's endpoint, and
/// a `run.sh` that records what it was given.
#[tokio::test]
async fn the_start_script_reads_and_deletes_its_parameter_then_starts_the_runner() {
    let aws = aws().await;
    let runner_dir = tempfile::tempdir().unwrap();
    let mut config = pool_config(&aws).await;
    config.runner_dir = runner_dir.path().to_str().unwrap().to_string();
    let provider = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config).unwrap();
    let request = contract::request("start-script", "start-script-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    let described = task(&aws.ecs, &launched.instance_id).await;
    let env = override_env(&described);
    let command = described.overrides().unwrap().container_overrides()[0]
        .command()
        .to_vec();
    let parameter = env["RUNWAY_JIT_PARAMETER"].clone();

    let run = runner_dir.path().join("run.sh");
    std::fs::write(
        &run,
        "#!/bin/bash\nprintf '%s\\n' \"$@\" > args\nenv > env\n",
    )
    .unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let credentials = runner_dir.path().join("credentials.json");
    std::fs::write(
        &credentials,
        r#"{"AccessKeyId": "AKIDTEST", "SecretAccessKey": "test-secret", "Token": "test-token"}"#,
    )
    .unwrap();
    let moto = MotoServer::shared().unwrap();
    let output = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("file://{}", credentials.display()),
        )
        .env("RUNWAY_SSM_ENDPOINT", moto.endpoint_url())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let args = std::fs::read_to_string(runner_dir.path().join("args")).unwrap();
    assert_eq!(args, format!("--jitconfig\n{secret}\n"));
    let runner_env = std::fs::read_to_string(runner_dir.path().join("env")).unwrap();
    for dropped in [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "RUNWAY_JIT_PARAMETER",
        "RUNWAY_SSM_ENDPOINT",
    ] {
        assert!(
            !runner_env.contains(dropped),
            "{dropped} reached the runner"
        );
    }
    assert_eq!(
        parameter_value(&aws.ssm, &parameter).await,
        None,
        "the script deletes its parameter"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&secret));
    provider
        .terminate("start-script", "start-script-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn launching_twice_for_the_same_request_starts_one_task_with_the_newest_config() {
    let aws = aws().await;
    let provider =
        EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let first = provider
        .launch(contract::request("ecs-twice", "ecs-twice-runner"))
        .await
        .unwrap();
    let mut again = contract::request("ecs-twice", "ecs-twice-runner");
    again.jit_config = runway_providers::JitConfig::new(format!("{}-again", "x".repeat(5_000)));
    let second = provider.launch(again.clone()).await.unwrap();
    assert_eq!(second.instance_id, first.instance_id);
    assert_eq!(provider.owned_by("ecs-twice").await.unwrap().len(), 1);
    let described = task(&aws.ecs, &first.instance_id).await;
    let parameter = override_env(&described)["RUNWAY_JIT_PARAMETER"].clone();
    assert_eq!(
        parameter_value(&aws.ssm, &parameter).await.as_deref(),
        Some(again.jit_config.expose())
    );
    provider
        .terminate("ecs-twice", "ecs-twice-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_parameter_left_by_a_launch_that_died_before_run_task_is_removed_by_teardown() {
    let aws = aws().await;
    let provider =
        EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let name = "/runway/runway/jit/ecs/0123456789abcdef0123456789abcdef";
    let tag = |key: &str, value: &str| {
        aws_sdk_ssm::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .unwrap()
    };
    aws.ssm
        .put_parameter()
        .name(name)
        .value("orphaned-jit-config")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .tags(tag("runway:stack", "runway"))
        .tags(tag("runway:execution", "died-early"))
        .tags(tag("runway:runner", "died-early-runner"))
        .send()
        .await
        .unwrap();
    // Another runner's parameter stays.
    let other = "/runway/runway/jit/ecs/fedcba9876543210fedcba9876543210";
    aws.ssm
        .put_parameter()
        .name(other)
        .value("other-jit-config")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .tags(tag("runway:stack", "runway"))
        .tags(tag("runway:execution", "died-early"))
        .tags(tag("runway:runner", "another-runner"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        provider
            .terminate("died-early", "died-early-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
    assert_eq!(parameter_value(&aws.ssm, name).await, None);
    assert!(parameter_value(&aws.ssm, other).await.is_some());
}

#[tokio::test]
async fn owned_lists_only_this_stack_s_running_tasks() {
    let aws = aws().await;
    let config = pool_config(&aws).await;
    let task_definition = config.task_definition.clone();
    let mut other_stack = config.clone();
    other_stack.stack = "stack-b".into();
    let a = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config.clone()).unwrap();
    let b = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), other_stack).unwrap();
    // A task runway did not start is not its to reap.
    let foreign = aws
        .ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition(&task_definition)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(config.subnets.clone()))
                        .set_security_groups(Some(config.security_groups.clone()))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let foreign_arn = foreign.tasks()[0].task_arn().unwrap().to_string();
    // Both stacks follow the same job: the execution name is the same in each.
    let launched_a = a
        .launch(contract::request("two-stacks", "stack-a-runner"))
        .await
        .unwrap();
    let launched_b = b
        .launch(contract::request("two-stacks", "stack-b-runner"))
        .await
        .unwrap();
    let arns = |owned: Vec<runway_providers::OwnedRunner>| -> Vec<String> {
        owned.into_iter().map(|runner| runner.instance_id).collect()
    };
    let owned_a = arns(a.owned().await.unwrap());
    assert!(owned_a.contains(&launched_a.instance_id));
    assert!(!owned_a.contains(&launched_b.instance_id), "{owned_a:?}");
    assert!(!owned_a.contains(&foreign_arn), "{owned_a:?}");
    assert_eq!(
        arns(a.owned_by("two-stacks").await.unwrap()),
        vec![launched_a.instance_id.clone()]
    );
    assert_ne!(
        started_by("runway", "two-stacks"),
        started_by("stack-b", "two-stacks")
    );
    // Stack a cannot stop stack b's runner.
    assert_eq!(
        a.terminate("two-stacks", "stack-b-runner").await.unwrap(),
        Terminated::AlreadyGone
    );
    assert_eq!(
        task(&aws.ecs, &launched_b.instance_id)
            .await
            .desired_status(),
        Some("RUNNING")
    );
    for (provider, runner) in [(&a, "stack-a-runner"), (&b, "stack-b-runner")] {
        assert!(matches!(
            provider.terminate("two-stacks", runner).await.unwrap(),
            Terminated::Stopped { .. }
        ));
    }
    aws.ecs
        .stop_task()
        .cluster(CLUSTER)
        .task(&foreign_arn)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_task_that_ended_by_itself_is_already_gone_and_its_parameter_removed() {
    let aws = aws().await;
    let provider =
        EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let launched = provider
        .launch(contract::request("self-stop", "self-stop-runner"))
        .await
        .unwrap();
    let parameter =
        override_env(&task(&aws.ecs, &launched.instance_id).await)["RUNWAY_JIT_PARAMETER"].clone();
    // The runner exits after its job; the task stops.
    aws.ecs
        .stop_task()
        .cluster(CLUSTER)
        .task(&launched.instance_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        provider
            .terminate("self-stop", "self-stop-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
    assert_eq!(parameter_value(&aws.ssm, &parameter).await, None);
}

#[tokio::test]
async fn overrides_ecs_cannot_honour_are_refused_and_leave_nothing() {
    let aws = aws().await;
    let provider =
        EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let mut image = contract::request("bad-overrides", "bad-overrides-runner");
    image.overrides.image = Some("ghcr.io/someone/else:1".into());
    let error = provider.launch(image).await.unwrap_err();
    assert!(error.to_string().contains("cannot switch"), "{error}");
    let mut types = contract::request("bad-overrides", "bad-overrides-runner");
    types.overrides.instance_types = Some(vec!["m7g.large".into()]);
    let error = provider.launch(types).await.unwrap_err();
    assert!(error.to_string().contains("no instance types"), "{error}");
    // The pool's own image, and a market override, are fine.
    let mut own = contract::request("bad-overrides", "bad-overrides-runner");
    own.overrides.image = Some(IMAGE.into());
    own.overrides.capacity = Some(runway_providers::CapacityPreference::OnDemand);
    own.overrides.disk_gib = Some(40);
    let launched = provider.launch(own).await.unwrap();
    assert_eq!(launched.capacity, Some(Capacity::OnDemand));
    let described = task(&aws.ecs, &launched.instance_id).await;
    assert_eq!(described.capacity_provider_name(), Some("FARGATE"));
    assert_eq!(
        described
            .overrides()
            .and_then(|overrides| overrides.ephemeral_storage())
            .map(|storage| storage.size_in_gib()),
        Some(40)
    );
    provider
        .terminate("bad-overrides", "bad-overrides-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_api_is_unavailable_and_retryable() {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .empty_test_environment()
        .test_credentials()
        .region(aws_config::Region::from_static("us-east-1"))
        // Port 9 (discard) on loopback: nothing listens there.
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let provider = EcsProvider::new(
        aws_sdk_ecs::Client::new(&config),
        aws_sdk_ssm::Client::new(&config),
        EcsPoolConfig::new("c", "td", vec!["subnet-1".into()]),
    )
    .unwrap();
    let error = provider.owned().await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

async fn revisions(ecs: &aws_sdk_ecs::Client, family: &str) -> Vec<String> {
    ecs.list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_task_definition_is_registered_once_and_again_when_the_pool_changes() {
    let aws = aws().await;
    cluster(&aws.ecs).await;
    let mut config = EcsPoolConfig::new(
        CLUSTER,
        runway_providers::default_task_definition_family("td-stack", "linux"),
        default_subnets(&aws.ec2).await[..1].to_vec(),
    );
    config.stack = "td-stack".to_string();
    config.security_groups = vec![default_security_group(&aws.ec2).await];
    config.image = Some(IMAGE.to_string());
    let family = config.task_definition.clone();
    let definition = RunnerTaskDefinition::for_pool(&config, "linux", IMAGE);
    let provider = |definition: RunnerTaskDefinition| {
        EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config.clone())
            .unwrap()
            .with_default_task_definition(definition)
            .unwrap()
    };

    // The first launch registers it; the task runs that revision.
    let first = provider(definition.clone());
    let launched = first
        .launch(contract::request("td-1", "td-1-runner"))
        .await
        .unwrap();
    let registered = revisions(&aws.ecs, &family).await;
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(
        task(&aws.ecs, &launched.instance_id)
            .await
            .task_definition_arn(),
        Some(registered[0].as_str())
    );

    // Another process with the same pool finds it and registers nothing.
    let again = provider(definition.clone());
    assert_eq!(again.task_definition().await.unwrap(), registered[0]);
    again
        .launch(contract::request("td-2", "td-2-runner"))
        .await
        .unwrap();
    assert_eq!(revisions(&aws.ecs, &family).await.len(), 1);

    // A new image is a new revision, and launches run it.
    let mut newer = definition.clone();
    newer.image = "ghcr.io/actions/actions-runner:2.330.0".to_string();
    let changed = provider(newer);
    let arn = changed.task_definition().await.unwrap();
    let registered = revisions(&aws.ecs, &family).await;
    assert_eq!(registered.len(), 2, "{registered:?}");
    assert!(arn.ends_with(":2"), "{arn}");

    // A definition of another family than the pool runs is refused.
    let mut other = definition;
    other.family = "someone-else".to_string();
    let error = EcsProvider::new(aws.ecs.clone(), aws.ssm.clone(), config.clone())
        .unwrap()
        .with_default_task_definition(other)
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error:?}");
    for execution in ["td-1", "td-2"] {
        first
            .terminate(execution, &format!("{execution}-runner"))
            .await
            .unwrap();
    }
}
