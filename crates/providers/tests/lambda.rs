//! The Lambda provider against moto (127.0.0.1): Lambda's control plane (`CreateFunction`
//! with an image, `GetFunctionConfiguration`, `Invoke` with `InvocationType: Event`) and SSM.
//!
//! Where moto is not Lambda: it runs no container image here (its Docker runner is turned
//! off), so an invocation is accepted (202) and goes no further. What the function does with
//! the event is the bootstrap's, tested on its own (`tests/lambda_bootstrap.rs`).

mod contract;

use runway_providers::{
    LambdaPoolConfig, LambdaProvider, LambdaRecord, Provider, ProviderError, Terminated,
    lambda_instance_id, lambda_parameter_prefix,
};
use runway_testkit::MotoServer;

const STACK: &str = "runway";

/// The shared moto server, its Lambda told to run nothing (no Docker here).
async fn aws() -> aws_config::SdkConfig {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let answer = reqwest::Client::new()
        .post(format!("{}/moto-api/config", moto.endpoint_url()))
        .json(&serde_json::json!({"lambda": {"use_docker": false}}))
        .send()
        .await
        .expect("moto's config endpoint answers");
    assert!(answer.status().is_success(), "{answer:?}");
    moto.sdk_config().await
}

const ROLE: &str = "runway-lambda-runner";

/// The function's role in moto's IAM (moto's Lambda refuses a role it does not know). IAM's
/// query API by hand: the workspace has no IAM client, and moto checks no signature.
async fn role() {
    let moto = MotoServer::shared().expect("moto starts");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let answer = reqwest::Client::new()
        .post(moto.endpoint_url())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", ROLE),
            ("AssumeRolePolicyDocument", trust),
        ])
        .send()
        .await
        .expect("moto's IAM answers");
    // Made once per server: EntityAlreadyExists after that.
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    assert!(
        status.is_success() || body.contains("EntityAlreadyExists"),
        "{status}: {body}"
    );
}

/// A container-image function `name` with `timeout` seconds (made once per name).
async fn function(aws: &aws_config::SdkConfig, name: &str, timeout: i32) {
    role().await;
    let lambda = aws_sdk_lambda::Client::new(aws);
    if lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .is_ok()
    {
        return;
    }
    lambda
        .create_function()
        .function_name(name)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/runway-lambda-runner:1")
                .build(),
        )
        .role(format!("arn:aws:iam::123456789012:role/{ROLE}"))
        .timeout(timeout)
        .memory_size(4096)
        .send()
        .await
        .expect("moto creates the function");
}

async fn provider_for(function_name: &str, timeout: i32) -> LambdaProvider {
    let aws = aws().await;
    function(&aws, function_name, timeout).await;
    let mut config = LambdaPoolConfig::new(STACK);
    config.function = function_name.to_string();
    LambdaProvider::new(
        aws_sdk_lambda::Client::new(&aws),
        aws_sdk_ssm::Client::new(&aws),
        config,
    )
    .unwrap()
}

async fn fixture(_name: &str) -> Box<dyn Provider> {
    Box::new(provider_for("runway-lambda-runner", 900).await)
}

provider_contract_tests!(fixture);

async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Option<aws_sdk_ssm::types::Parameter> {
    ssm.get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .ok()
        .and_then(|output| output.parameter)
}

fn record_name(execution: &str, runner: &str) -> String {
    format!(
        "{}/runners/{}",
        lambda_parameter_prefix(STACK),
        lambda_instance_id(STACK, execution, runner)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jit_config_is_only_in_its_securestring_and_the_payload_names_it() {
    let provider = provider_for("runway-lambda-runner", 900).await;
    let ssm = aws_sdk_ssm::Client::new(&aws().await);
    let request = contract::request("lambda-secret", "lambda-secret-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    assert!(launched.instance_id.starts_with("lambda-"), "{launched:?}");

    // The record: what runway needs to find the runner again, and no secret.
    let name = record_name("lambda-secret", "lambda-secret-runner");
    let stored = parameter(&ssm, &name).await.expect("the record exists");
    assert_eq!(
        stored.r#type(),
        Some(&aws_sdk_ssm::types::ParameterType::String)
    );
    let value = stored.value().unwrap();
    assert!(!value.contains(&secret), "the record holds the JIT config");
    let record: LambdaRecord = serde_json::from_str(value).unwrap();
    assert_eq!(record.execution, "lambda-secret");
    assert_eq!(record.runner, "lambda-secret-runner");
    assert_eq!(record.pool, "contract-pool");
    assert_eq!(record.timeout_seconds, 900, "asked of Lambda");
    assert_eq!(record.instance_id, launched.instance_id);
    assert!(
        record
            .jit_parameter
            .starts_with(&format!("{}/configs/", lambda_parameter_prefix(STACK))),
        "{record:?}"
    );

    // The JIT config: a SecureString of its own, tagged with the runner.
    let jit = parameter(&ssm, &record.jit_parameter)
        .await
        .expect("the JIT config parameter exists");
    assert_eq!(
        jit.r#type(),
        Some(&aws_sdk_ssm::types::ParameterType::SecureString)
    );
    assert_eq!(jit.value(), Some(secret.as_str()));
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&record.jit_parameter)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_list()
            .iter()
            .any(|tag| tag.key() == "runway:runner" && tag.value() == "lambda-secret-runner"),
        "{tags:?}"
    );

    // The payload the function gets names the parameters only.
    let payload = provider.payload(&name, &record).to_string();
    assert!(!payload.contains(&secret), "{payload}");
    assert!(payload.contains(&record.jit_parameter), "{payload}");
    assert!(payload.contains(&name), "{payload}");

    // terminate removes both: the bootstrap stops the runner when its record is gone.
    assert_eq!(
        provider
            .terminate("lambda-secret", "lambda-secret-runner")
            .await
            .unwrap(),
        Terminated::Stopped {
            instance_ids: vec![launched.instance_id.clone()]
        }
    );
    assert!(parameter(&ssm, &name).await.is_none());
    assert!(parameter(&ssm, &record.jit_parameter).await.is_none());
    assert_eq!(
        provider.runner_on(&launched.instance_id).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_launch_finds_its_runner_and_hands_it_the_new_config() {
    let provider = provider_for("runway-lambda-runner", 900).await;
    let ssm = aws_sdk_ssm::Client::new(&aws().await);
    let first = provider
        .launch(contract::request("lambda-retry", "lambda-retry-runner"))
        .await
        .unwrap();
    let mut again = contract::request("lambda-retry", "lambda-retry-runner");
    again.jit_config = runway_providers::JitConfig::new("second-try");
    let second = provider.launch(again).await.unwrap();
    assert_eq!(first, second);
    let record: LambdaRecord = serde_json::from_str(
        parameter(&ssm, &record_name("lambda-retry", "lambda-retry-runner"))
            .await
            .unwrap()
            .value()
            .unwrap(),
    )
    .unwrap();
    let jit = parameter(&ssm, &record.jit_parameter).await.unwrap();
    assert_eq!(jit.value(), Some("second-try"));
    let owned = provider.owned_by("lambda-retry").await.unwrap();
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(
        provider.runner_on(&first.instance_id).await.unwrap(),
        Some(owned[0].clone())
    );
    provider
        .terminate("lambda-retry", "lambda-retry-runner")
        .await
        .unwrap();
}

/// A record past the function's timeout (and the queue's wait) is a runner that has ended:
/// `owned` does not list it and deletes it with its JIT parameter; terminating it is
/// `AlreadyGone`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_past_the_function_s_timeout_is_not_a_runner_and_is_removed() {
    let provider = provider_for("runway-lambda-runner-short", 60).await;
    let ssm = aws_sdk_ssm::Client::new(&aws().await);
    let launched = provider
        .launch(contract::request("lambda-expired", "lambda-expired-runner"))
        .await
        .unwrap();
    let name = record_name("lambda-expired", "lambda-expired-runner");
    let mut record: LambdaRecord =
        serde_json::from_str(parameter(&ssm, &name).await.unwrap().value().unwrap()).unwrap();
    assert_eq!(record.timeout_seconds, 60);
    assert_eq!(provider.owned_by("lambda-expired").await.unwrap().len(), 1);

    // Launched long enough ago that the function cannot be running any more.
    record.launched_at -= chrono::Duration::seconds(60 + 360 + 1);
    ssm.put_parameter()
        .name(&name)
        .value(serde_json::to_string(&record).unwrap())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        provider.runner_on(&launched.instance_id).await.unwrap(),
        None
    );
    assert!(
        provider
            .owned()
            .await
            .unwrap()
            .iter()
            .all(|r| r.execution != "lambda-expired")
    );
    assert!(parameter(&ssm, &name).await.is_none(), "owned() removed it");
    assert!(parameter(&ssm, &record.jit_parameter).await.is_none());
    assert_eq!(
        provider
            .terminate("lambda-expired", "lambda-expired-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_is_not_there_is_a_configuration_error_and_leaves_nothing() {
    let aws = aws().await;
    let mut config = LambdaPoolConfig::new(STACK);
    config.function = "no-such-function".into();
    let provider = LambdaProvider::new(
        aws_sdk_lambda::Client::new(&aws),
        aws_sdk_ssm::Client::new(&aws),
        config,
    )
    .unwrap();
    let error = provider
        .launch(contract::request("lambda-missing", "lambda-missing-runner"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error}");
    assert!(
        error.to_string().contains("GetFunctionConfiguration"),
        "{error}"
    );
    let ssm = aws_sdk_ssm::Client::new(&aws);
    assert!(
        parameter(
            &ssm,
            &record_name("lambda-missing", "lambda-missing-runner")
        )
        .await
        .is_none(),
        "a failed launch removes its record"
    );
    assert!(
        provider
            .owned_by("lambda-missing")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_pool_refuses_instance_settings() {
    let provider = provider_for("runway-lambda-runner", 900).await;
    let mut request = contract::request("lambda-override", "lambda-override-runner");
    request.overrides.disk_gib = Some(100);
    let error = provider.launch(request).await.unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error}");
}
