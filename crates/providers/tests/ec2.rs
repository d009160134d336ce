//! The EC2 provider against a real EC2 and SSM API (moto on 127.0.0.1).

mod contract;
mod faults;

use std::collections::HashMap;

use aws_sdk_ec2::types::{Filter, InstanceAttributeName, InstanceStateName};
use base64::Engine;
use runway_providers::{
    BootOs, Capacity, Ec2PoolConfig, Ec2Provider, ImageSource, LaunchTemplateRef, ManifestReader,
    Provider, ProviderError, Terminated,
};
use runway_testkit::MotoServer;

struct Aws {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
}

async fn aws() -> Aws {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let config = moto.sdk_config().await;
    Aws {
        ec2: aws_sdk_ec2::Client::new(&config),
        ssm: aws_sdk_ssm::Client::new(&config),
    }
}

/// An AMI moto knows.
async fn some_ami(ec2: &aws_sdk_ec2::Client) -> String {
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    images
        .images()
        .iter()
        .find(|image| image.root_device_name().is_some())
        .and_then(|image| image.image_id())
        .expect("moto has default AMIs")
        .to_string()
}

async fn default_subnets(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    runway_providers::default_vpc_subnets(ec2).await.unwrap()
}

async fn pool_config(aws: &Aws) -> Ec2PoolConfig {
    let mut config = Ec2PoolConfig::from_ami(
        some_ami(&aws.ec2).await,
        vec!["m5.large".to_string(), "c5.large".to_string()],
    );
    config.subnets = default_subnets(&aws.ec2).await;
    config.extra_tags.insert("team".into(), "platform".into());
    config
}

async fn fixture(_name: &str) -> Box<dyn Provider> {
    let aws = aws().await;
    let config = pool_config(&aws).await;
    Box::new(Ec2Provider::new(aws.ec2, aws.ssm, config).unwrap())
}

provider_contract_tests!(fixture);

fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> HashMap<String, String> {
    tags.iter()
        .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
        .collect()
}

async fn instance(ec2: &aws_sdk_ec2::Client, id: &str) -> aws_sdk_ec2::types::Instance {
    ec2.describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .clone()
}

#[tokio::test]
async fn a_runner_instance_is_tagged_locked_down_and_gets_its_config_from_ssm() {
    let aws = aws().await;
    let mut config = pool_config(&aws).await;
    config.log_group = Some(runway_providers::runner_log_group(
        "runway",
        "contract-pool",
    ));
    let first_subnet = config.subnets.first().cloned();
    let logs =
        aws_sdk_cloudwatchlogs::Client::new(&MotoServer::shared().unwrap().sdk_config().await);
    let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config)
        .unwrap()
        .with_runner_logs(std::sync::Arc::new(
            runway_runner_logs::CloudWatchRunnerLogs::new(logs.clone(), Some(30)),
        ));
    let request = contract::request("ec2-details", "ec2-details-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    assert_eq!(launched.instance_type.as_deref(), Some("m5.large"));
    assert_eq!(launched.subnet_id, first_subnet);
    assert_eq!(launched.capacity, Some(Capacity::Spot));
    let id = launched.instance_id.clone();

    let described = instance(&aws.ec2, &id).await;
    let tags = tags_of(described.tags());
    assert_eq!(tags["runway:execution"], "ec2-details");
    assert_eq!(tags["runway:pool"], "contract-pool");
    assert_eq!(tags["runway:runner"], "ec2-details-runner");
    assert_eq!(tags["runway:managed"], "true");
    assert_eq!(tags["runway:stack"], "runway");
    assert_eq!(tags["Name"], "runway-ec2-details-runner");
    assert_eq!(tags["team"], "platform");
    let metadata = described.metadata_options().expect("metadata options");
    assert_eq!(
        metadata.http_tokens().map(|tokens| tokens.as_str()),
        Some("required")
    );
    assert_eq!(
        described.instance_type().map(|t| t.as_str()),
        Some("m5.large")
    );

    // The volumes carry the same ownership tags.
    let volumes = aws
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(!volumes.volumes().is_empty());
    for volume in volumes.volumes() {
        let tags = tags_of(volume.tags());
        assert_eq!(
            tags.get("runway:execution").map(String::as_str),
            Some("ec2-details")
        );
        assert_eq!(tags.get("runway:managed").map(String::as_str), Some("true"));
        assert_eq!(tags.get("runway:stack").map(String::as_str), Some("runway"));
    }

    // The user data holds the boot script, not the secret.
    let attribute = aws
        .ec2
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = attribute
        .user_data()
        .and_then(|value| value.value())
        .expect("user data");
    let user_data = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        user_data,
        provider
            .user_data_script("ec2-details-runner")
            .await
            .unwrap()
    );
    assert!(user_data.contains("parameter_prefix=\"/runway/runway/jit\""));
    // The runner ships its output to its stream of the pool's group, made before the launch.
    assert!(user_data.contains("log_group=\"/runway/runway/runners/contract-pool\""));
    assert!(user_data.contains("log_stream=\"ec2-details-runner\""));
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/runway/runway/runners/contract-pool")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 1);
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));
    assert!(
        !user_data.contains(&secret),
        "the JIT config leaked into user data"
    );

    // The secret is in SSM, as a SecureString named after the instance.
    let parameter_name = format!("/runway/runway/jit/{id}");
    assert_eq!(provider.parameter_name(&id), parameter_name);
    let parameter = aws
        .ssm
        .get_parameter()
        .name(&parameter_name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let parameter = parameter.parameter().unwrap();
    assert_eq!(parameter.value(), Some(secret.as_str()));
    assert_eq!(
        parameter.r#type().map(|kind| kind.as_str()),
        Some("SecureString")
    );
    let parameter_tags = aws
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&parameter_name)
        .send()
        .await
        .unwrap();
    let parameter_tags: HashMap<&str, &str> = parameter_tags
        .tag_list()
        .iter()
        .map(|tag| (tag.key(), tag.value()))
        .collect();
    assert_eq!(parameter_tags["runway:execution"], "ec2-details");
    assert_eq!(parameter_tags["runway:instance-id"], id);
    assert_eq!(parameter_tags["runway:stack"], "runway");
    assert_eq!(parameter_tags["runway:pool"], "contract-pool");
    assert_eq!(parameter_tags["runway:runner"], "ec2-details-runner");

    // Terminate: the instance goes, and so does the secret.
    let outcome = provider
        .terminate("ec2-details", "ec2-details-runner")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Terminated::Stopped {
            instance_ids: vec![id.clone()]
        }
    );
    let state = instance(&aws.ec2, &id)
        .await
        .state()
        .and_then(|state| state.name())
        .cloned();
    assert!(
        matches!(
            state,
            Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
        ),
        "{state:?}"
    );
    let gone = aws
        .ssm
        .get_parameter()
        .name(&parameter_name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_ssm::error::ProvideErrorMetadata::code(&gone),
        Some("ParameterNotFound")
    );
    assert_eq!(
        provider
            .terminate("ec2-details", "ec2-details-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
}

#[tokio::test]
async fn a_parameter_left_by_a_runner_that_shut_itself_down_is_removed() {
    let aws = aws().await;
    let provider =
        Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let launched = provider
        .launch(contract::request("self-stop", "self-stop-runner"))
        .await
        .unwrap();
    // The instance ends on its own (as an ephemeral runner's does after its job).
    aws.ec2
        .terminate_instances()
        .instance_ids(&launched.instance_id)
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
    let gone = aws
        .ssm
        .get_parameter()
        .name(provider.parameter_name(&launched.instance_id))
        .send()
        .await;
    assert!(gone.is_err(), "the parameter should be deleted");
}

#[tokio::test]
async fn overrides_choose_the_instance_type_and_market() {
    let aws = aws().await;
    let provider =
        Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let mut request = contract::request("overrides", "overrides-runner");
    request.overrides.instance_types = Some(vec!["t3.small".to_string()]);
    request.overrides.capacity = Some(runway_providers::CapacityPreference::OnDemand);
    request.overrides.disk_gib = Some(40);
    let launched = provider.launch(request).await.unwrap();
    assert_eq!(launched.instance_type.as_deref(), Some("t3.small"));
    assert_eq!(launched.capacity, Some(Capacity::OnDemand));
    let described = instance(&aws.ec2, &launched.instance_id).await;
    assert_eq!(
        described.instance_type().map(|t| t.as_str()),
        Some("t3.small")
    );
    assert!(
        described.instance_lifecycle().is_none(),
        "on-demand, not spot"
    );
    provider
        .terminate("overrides", "overrides-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_subnet_is_a_configuration_error_and_leaves_nothing() {
    let aws = aws().await;
    let mut config = pool_config(&aws).await;
    config.subnets = vec!["subnet-00000000deadbeef0".into()];
    let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config).unwrap();
    let error = provider
        .launch(contract::request("bad-subnet", "bad-subnet-runner"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("subnet-00000000deadbeef0"),
        "{error}"
    );
    let owned = provider.owned().await.unwrap();
    assert!(owned.iter().all(|runner| runner.execution != "bad-subnet"));
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
    let provider = Ec2Provider::new(
        aws_sdk_ec2::Client::new(&config),
        aws_sdk_ssm::Client::new(&config),
        Ec2PoolConfig::from_ami("ami-12345678", vec!["m5.large".into()]),
    )
    .unwrap();
    let error = provider.owned().await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    let error = provider
        .launch(contract::request("unreachable", "unreachable-runner"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::Unavailable { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_bad_pool_configuration_is_refused_up_front() {
    let aws = aws().await;
    let mut config =
        Ec2PoolConfig::from_launch_template(LaunchTemplateRef::Name("lt".into()), None);
    config.ssm_prefix = Some("relative/prefix".into());
    let error = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config).unwrap_err();
    assert!(error.to_string().contains("must start with '/'"), "{error}");

    let config = Ec2PoolConfig::from_ami("ami-1", vec![]);
    let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config).unwrap();
    let error = provider
        .launch(contract::request("no-types", "no-types-runner"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no instance types"), "{error}");
}

#[tokio::test]
async fn owned_lists_only_live_runway_instances() {
    let aws = aws().await;
    let provider =
        Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    // An instance runway did not launch is not its to reap.
    let foreign = aws
        .ec2
        .run_instances()
        .image_id(some_ami(&aws.ec2).await)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let foreign_id = foreign.instances()[0].instance_id().unwrap().to_string();
    let launched = provider
        .launch(contract::request("owned-list", "owned-list-runner"))
        .await
        .unwrap();
    let owned = provider.owned().await.unwrap();
    assert!(owned.iter().all(|runner| runner.instance_id != foreign_id));
    let mine = owned
        .iter()
        .find(|runner| runner.instance_id == launched.instance_id)
        .expect("the runner is listed");
    assert_eq!(mine.execution, "owned-list");
    assert_eq!(mine.runner_name, "owned-list-runner");
    assert!(mine.launched_at.is_some());
    provider
        .terminate("owned-list", "owned-list-runner")
        .await
        .unwrap();
    let owned = provider.owned().await.unwrap();
    assert!(
        owned
            .iter()
            .all(|runner| runner.instance_id != launched.instance_id)
    );
}

/// The tier, type and value of a parameter, as SSM describes it.
async fn described_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> aws_sdk_ssm::types::ParameterMetadata {
    ssm.describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .values(name)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .parameters()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

/// The request with a JIT config as large as GitHub's (about 4 KB and growing): 5,000
/// characters.
fn github_sized(mut request: runway_providers::LaunchRequest) -> runway_providers::LaunchRequest {
    let config = format!("{}-{}", request.jit_config.expose(), "x".repeat(5_000));
    request.jit_config = runway_providers::JitConfig::new(config);
    request
}

/// moto does not refuse a Standard-tier value over 4,096 characters as SSM does, so the tier
/// is checked itself: a GitHub-sized JIT config needs the Advanced tier.
#[tokio::test]
async fn a_github_sized_jit_config_is_stored_in_the_advanced_tier() {
    let aws = aws().await;
    let provider =
        Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let request = github_sized(contract::request("advanced-tier", "advanced-tier-runner"));
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    let name = provider.parameter_name(&launched.instance_id);
    let described = described_parameter(&aws.ssm, &name).await;
    assert_eq!(
        described.tier().map(|tier| tier.as_str()),
        Some("Advanced"),
        "the Standard tier holds at most 4,096 characters"
    );
    let value = aws
        .ssm
        .get_parameter()
        .name(&name)
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|parameter| parameter.value);
    assert_eq!(value.as_deref(), Some(secret.as_str()));
    provider
        .terminate("advanced-tier", "advanced-tier-runner")
        .await
        .unwrap();
}

/// A clock that records the waits asked of it and returns at once.
#[derive(Debug, Default)]
struct RecordingClock {
    waits: std::sync::Mutex<Vec<std::time::Duration>>,
}

impl runway_clock::Clock for RecordingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    fn sleep_until(&self, deadline: chrono::DateTime<chrono::Utc>) -> runway_clock::Sleep {
        let wait = (deadline - chrono::Utc::now()).to_std().unwrap_or_default();
        self.sleep(wait)
    }

    fn sleep(&self, duration: std::time::Duration) -> runway_clock::Sleep {
        self.waits.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

async fn through_proxy(
    throttled: usize,
) -> (
    faults::FaultProxy,
    Ec2Provider,
    Aws,
    std::sync::Arc<RecordingClock>,
) {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let proxy = faults::FaultProxy::start(moto.endpoint_url(), throttled).await;
    let config = proxy.sdk_config().await;
    let direct = aws().await;
    let clock = std::sync::Arc::new(RecordingClock::default());
    let provider = Ec2Provider::new(
        aws_sdk_ec2::Client::new(&config),
        aws_sdk_ssm::Client::new(&config),
        pool_config(&direct).await,
    )
    .unwrap()
    .with_clock(clock.clone());
    (proxy, provider, direct, clock)
}

#[tokio::test]
async fn throttled_jit_config_writes_are_retried_with_growing_back_off() {
    let (proxy, provider, aws, clock) = through_proxy(5).await;
    let request = github_sized(contract::request("throttled", "throttled-runner"));
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    {
        let recorded = proxy.recorded.lock().unwrap();
        assert_eq!(recorded.throttled, 5, "{recorded:?}");
        assert_eq!(recorded.put_parameter_calls, 6, "{recorded:?}");
    }
    let waits = clock.waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 5, "one wait per throttled write: {waits:?}");
    assert!(waits[4] > waits[0], "the back-off grows: {waits:?}");
    assert!(
        waits
            .iter()
            .all(|wait| *wait <= runway_providers::SSM_WRITE_MAX_BACKOFF),
        "{waits:?}"
    );
    let value = aws
        .ssm
        .get_parameter()
        .name(provider.parameter_name(&launched.instance_id))
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|parameter| parameter.value);
    assert_eq!(value.as_deref(), Some(secret.as_str()));
    provider
        .terminate("throttled", "throttled-runner")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_write_throttled_past_every_retry_is_transient_and_leaves_nothing() {
    let attempts = runway_providers::SSM_WRITE_ATTEMPTS as usize;
    let (proxy, provider, aws, clock) = through_proxy(attempts + 10).await;
    let error = provider
        .launch(contract::request(
            "always-throttled",
            "always-throttled-runner",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::Throttled { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable(), "the state machine retries it");
    assert_eq!(proxy.recorded.lock().unwrap().put_parameter_calls, attempts);
    let waits = clock.waits.lock().unwrap().clone();
    assert_eq!(waits.len(), attempts - 1, "{waits:?}");
    let total: std::time::Duration = waits.iter().sum();
    assert!(
        total <= runway_providers::SSM_WRITE_MAX_BACKOFF * attempts as u32,
        "bounded: {total:?}"
    );
    // The instance that could not get its config was terminated.
    let direct =
        Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let owned = direct.owned().await.unwrap();
    assert!(
        owned
            .iter()
            .all(|runner| runner.execution != "always-throttled"),
        "{owned:?}"
    );
    proxy.throttle_next(0);
}

#[tokio::test]
async fn launching_twice_for_the_same_request_starts_one_instance() {
    let aws = aws().await;
    let provider =
        Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), pool_config(&aws).await).unwrap();
    let first = provider
        .launch(contract::request("launch-twice", "launch-twice-runner"))
        .await
        .unwrap();
    // A retried step launches again with a new JIT config.
    let mut again = contract::request("launch-twice", "launch-twice-runner");
    again.jit_config = runway_providers::JitConfig::new(format!("{}-again", "x".repeat(5_000)));
    let second = provider.launch(again.clone()).await.unwrap();
    assert_eq!(second.instance_id, first.instance_id);
    let owned: Vec<_> = provider
        .owned()
        .await
        .unwrap()
        .into_iter()
        .filter(|runner| runner.execution == "launch-twice")
        .collect();
    assert_eq!(owned.len(), 1, "{owned:?}");
    // The instance gets the newest config (the earlier one's registration is gone).
    let value = aws
        .ssm
        .get_parameter()
        .name(provider.parameter_name(&first.instance_id))
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|parameter| parameter.value);
    assert_eq!(value.as_deref(), Some(again.jit_config.expose()));
    provider
        .terminate("launch-twice", "launch-twice-runner")
        .await
        .unwrap();
}

/// moto accepts `ClientToken` but does not de-duplicate on it, so what runway sends is read on
/// the wire: the same request always carries the same token, another launch another token.
#[tokio::test]
async fn every_run_instances_call_carries_a_client_token_naming_the_request() {
    let (proxy, provider, aws, _clock) = through_proxy(0).await;
    let launched = provider
        .launch(contract::request("client-token", "client-token-runner"))
        .await
        .unwrap();
    // Gone (as if EC2 had not yet listed it): the same request is sent again.
    aws.ec2
        .terminate_instances()
        .instance_ids(&launched.instance_id)
        .send()
        .await
        .unwrap();
    provider
        .launch(contract::request("client-token", "client-token-runner"))
        .await
        .unwrap();
    provider
        .launch(contract::request("client-token", "client-token-runner-2"))
        .await
        .unwrap();
    let tokens = proxy.recorded.lock().unwrap().run_instances_tokens.clone();
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert!(
        tokens
            .iter()
            .all(|token| !token.is_empty() && token.len() <= 64),
        "{tokens:?}"
    );
    assert_eq!(tokens[0], tokens[1], "a retry is the same request");
    assert_ne!(
        tokens[0], tokens[2],
        "another launch attempt is another request"
    );
    for runner in ["client-token-runner", "client-token-runner-2"] {
        provider.terminate("client-token", runner).await.unwrap();
    }
}

#[tokio::test]
async fn two_stacks_in_one_account_never_touch_each_other_s_runners() {
    let aws = aws().await;
    let mut config_a = pool_config(&aws).await;
    config_a.stack = "stack-a".into();
    let mut config_b = pool_config(&aws).await;
    config_b.stack = "stack-b".into();
    let a = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config_a).unwrap();
    let b = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config_b).unwrap();
    // Both stacks follow the same job: the execution name is the same in each.
    let launched_a = a
        .launch(contract::request("two-stacks", "stack-a-runner"))
        .await
        .unwrap();
    let launched_b = b
        .launch(contract::request("two-stacks", "stack-b-runner"))
        .await
        .unwrap();
    assert_eq!(
        a.parameter_name(&launched_a.instance_id),
        format!("/runway/stack-a/jit/{}", launched_a.instance_id)
    );
    assert_eq!(
        b.parameter_name(&launched_b.instance_id),
        format!("/runway/stack-b/jit/{}", launched_b.instance_id)
    );
    let ids = |owned: Vec<runway_providers::OwnedRunner>| -> Vec<String> {
        owned.into_iter().map(|runner| runner.instance_id).collect()
    };
    let owned_a = ids(a.owned().await.unwrap());
    assert!(owned_a.contains(&launched_a.instance_id));
    assert!(!owned_a.contains(&launched_b.instance_id), "{owned_a:?}");
    let by_a = ids(a.owned_by("two-stacks").await.unwrap());
    assert_eq!(by_a, vec![launched_a.instance_id.clone()]);
    // Stack a cannot terminate stack b's runner, nor remove its JIT config.
    assert_eq!(
        a.terminate("two-stacks", "stack-b-runner").await.unwrap(),
        Terminated::AlreadyGone
    );
    let state = instance(&aws.ec2, &launched_b.instance_id)
        .await
        .state()
        .and_then(|state| state.name())
        .cloned();
    assert_eq!(state, Some(InstanceStateName::Running), "{state:?}");
    aws.ssm
        .get_parameter()
        .name(b.parameter_name(&launched_b.instance_id))
        .send()
        .await
        .expect("stack b's JIT config is still there");
    // A launch of stack a for stack b's runner is its own instance.
    let tags = tags_of(instance(&aws.ec2, &launched_b.instance_id).await.tags());
    assert_eq!(tags["runway:stack"], "stack-b");
    for (provider, runner) in [(&a, "stack-a-runner"), (&b, "stack-b-runner")] {
        assert!(matches!(
            provider.terminate("two-stacks", runner).await.unwrap(),
            Terminated::Stopped { .. }
        ));
    }
}

/// User data decoded from an instance's attribute.
async fn user_data_of(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let attribute = ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = attribute
        .user_data()
        .and_then(|value| value.value())
        .expect("user data");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_windows_pool_on_an_image_parameter_boots_powershell_that_installs_from_the_cache() {
    use std::sync::Arc;

    use runway_runner_cache::{CacheStore, FixedRelease, MemoryStore, Platform, Release};
    use sha2::Digest;

    let aws = aws().await;
    let ami = some_ami(&aws.ec2).await;
    let parameter = "/ec2-tests/images/windows-server";
    aws.ssm
        .put_parameter()
        .name(parameter)
        .value(&ami)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    // A runner cache holding one release.
    let store = MemoryStore::new();
    let mut release = Release {
        id: 1,
        tag_name: "v2.321.0".into(),
        body: None,
        assets: Vec::new(),
    };
    let mut files = std::collections::BTreeMap::new();
    for (index, platform) in Platform::ALL.iter().enumerate() {
        let content = bytes::Bytes::from(format!("package {platform}"));
        release.assets.push(runway_runner_cache::ReleaseAsset {
            id: index as u64,
            name: platform.asset_name("2.321.0"),
            size: content.len() as u64,
            url: String::new(),
            browser_download_url: String::new(),
            digest: Some(format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(&content))
            )),
        });
        files.insert(index as u64, content);
    }
    runway_runner_cache::sync(&FixedRelease { release, files }, &store)
        .await
        .unwrap();
    let manifest = runway_runner_cache::current_manifest(&store)
        .await
        .unwrap()
        .unwrap();
    let windows = &manifest.platforms[&Platform::WinX64];

    let mut config = pool_config(&aws).await;
    config.image = ImageSource::parse(&format!("resolve:ssm:{parameter}")).unwrap();
    config.os = BootOs::Windows;
    config.runner_dir = "C:\\actions-runner".into();
    config.runner_cache_bucket = Some("ec2-tests-runner-cache".into());
    let shared: Arc<dyn CacheStore> = Arc::new(store);
    let reader = ManifestReader::new(
        Arc::new(move |_: &str| shared.clone()),
        runway_clock::SystemClock::shared(),
    );
    let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config)
        .unwrap()
        .with_runner_cache(Arc::new(reader));
    let request = contract::request("ec2-windows", "ec2-windows-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    let described = instance(&aws.ec2, &launched.instance_id).await;
    assert_eq!(
        described.image_id(),
        Some(ami.as_str()),
        "the parameter's AMI"
    );

    let user_data = user_data_of(&aws.ec2, &launched.instance_id).await;
    assert!(user_data.starts_with("<powershell>"), "{user_data}");
    assert!(
        user_data.ends_with("<persist>false</persist>\n"),
        "{user_data}"
    );
    assert!(user_data.contains(&format!("$package = '{}'", windows.key)));
    assert!(user_data.contains(&format!("$sha256 = '{}'", windows.sha256)));
    assert!(user_data.contains("$cacheBucket = 'ec2-tests-runner-cache'"));
    assert!(
        !user_data.contains(&secret),
        "the JIT config leaked into user data"
    );

    // The parameter is read once per while: a change shows after IMAGE_PARAMETER_TTL.
    aws.ssm
        .put_parameter()
        .name(parameter)
        .value("ami-0000000000000000f")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let again = provider
        .launch(contract::request("ec2-windows-2", "ec2-windows-runner-2"))
        .await
        .unwrap();
    let described = instance(&aws.ec2, &again.instance_id).await;
    assert_eq!(described.image_id(), Some(ami.as_str()));
    for (execution, runner) in [
        ("ec2-windows", "ec2-windows-runner"),
        ("ec2-windows-2", "ec2-windows-runner-2"),
    ] {
        provider.terminate(execution, runner).await.unwrap();
    }
}

#[tokio::test]
async fn an_image_parameter_without_an_ami_is_a_configuration_error() {
    let aws = aws().await;
    let parameter = "/ec2-tests/images/not-an-ami";
    aws.ssm
        .put_parameter()
        .name(parameter)
        .value("ubuntu-24.04")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let mut config = pool_config(&aws).await;
    config.image = ImageSource::parse(&format!("resolve:ssm:{parameter}")).unwrap();
    let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config).unwrap();
    let error = provider
        .launch(contract::request("ec2-bad-image", "ec2-bad-image-runner"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error:?}");
    assert!(error.to_string().contains("not an AMI id"), "{error}");
    let missing = ImageSource::parse("resolve:ssm:/ec2-tests/images/none").unwrap();
    let mut config = pool_config(&aws).await;
    config.image = missing;
    let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config).unwrap();
    let error = provider
        .launch(contract::request("ec2-no-image", "ec2-no-image-runner"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("GetParameter"), "{error}");
}

/// Instance profile `name` in moto's IAM, made once per server, and its ARN (moto's EC2
/// refuses a profile its IAM does not know). IAM's query API by hand: the workspace has no
/// IAM client, and moto checks no signature.
async fn instance_profile_arn(name: &str) -> String {
    let moto = MotoServer::shared().expect("moto starts");
    let call = |action: &'static str| {
        reqwest::Client::new()
            .post(moto.endpoint_url())
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .form(&[
                ("Action", action),
                ("Version", "2010-05-08"),
                ("InstanceProfileName", name),
            ])
            .send()
    };
    let created = call("CreateInstanceProfile")
        .await
        .expect("moto's IAM answers");
    let mut body = created.text().await.unwrap_or_default();
    if body.contains("EntityAlreadyExists") {
        body = call("GetInstanceProfile")
            .await
            .expect("moto's IAM answers")
            .text()
            .await
            .unwrap_or_default();
    }
    let arn = body
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .unwrap_or_else(|| panic!("no ARN in {body}"));
    assert!(arn.ends_with(&format!(":instance-profile/{name}")), "{arn}");
    arn.to_string()
}

/// Pools launching through the stack's launch template, whose profile is the stack's runner
/// profile: each launch names its pool's profile (the config mapping fills in the stack's
/// runner profile for a default pool, its Session Manager profile for `session_manager =
/// true`, or the pool's own), and that profile replaces the template's.
#[tokio::test]
async fn each_pool_launches_through_the_stack_template_with_its_own_instance_profile() {
    let aws = aws().await;
    let runner = instance_profile_arn("profiles-stack-RunnerInstanceProfile").await;
    let session = instance_profile_arn("profiles-stack-RunnerSessionInstanceProfile").await;
    let team = instance_profile_arn("profiles-team-runners").await;
    let template = "profiles-stack-runner";
    let made = aws
        .ec2
        .create_launch_template()
        .launch_template_name(template)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .iam_instance_profile(
                    aws_sdk_ec2::types::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                        .arn(&runner)
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    if let Err(error) = made {
        let code = aws_sdk_ec2::error::ProvideErrorMetadata::code(&error).map(str::to_owned);
        assert_eq!(
            code.as_deref(),
            Some("InvalidLaunchTemplateName.AlreadyExistsException"),
            "{error:?}"
        );
    }
    let ami = some_ami(&aws.ec2).await;
    let subnets = default_subnets(&aws.ec2).await;
    for (pool, profile, wanted) in [
        // The stack passes its runner profile by name, as RUNWAY_RUNNER_INSTANCE_PROFILE.
        ("default", "profiles-stack-RunnerInstanceProfile", &runner),
        (
            "session",
            "profiles-stack-RunnerSessionInstanceProfile",
            &session,
        ),
        ("team", team.as_str(), &team),
    ] {
        let mut config =
            Ec2PoolConfig::from_launch_template(LaunchTemplateRef::Name(template.into()), None);
        config.instance_types = vec!["m5.large".into()];
        config.subnets = subnets.clone();
        config.instance_profile = Some(profile.to_string());
        let provider = Ec2Provider::new(aws.ec2.clone(), aws.ssm.clone(), config).unwrap();
        let execution = format!("profiles-{pool}");
        let runner_name = format!("profiles-{pool}-runner");
        let mut request = contract::request(&execution, &runner_name);
        // The route step passes the pool's image with each launch through the template.
        request.overrides.image = Some(ami.clone());
        let launched = provider.launch(request).await.unwrap();
        let described = instance(&aws.ec2, &launched.instance_id).await;
        assert_eq!(
            described
                .iam_instance_profile()
                .and_then(|profile| profile.arn()),
            Some(wanted.as_str()),
            "{pool}"
        );
        assert_eq!(described.image_id(), Some(ami.as_str()), "{pool}");
        provider.terminate(&execution, &runner_name).await.unwrap();
    }
}
