//! Lambda pools on `runway local`: on an AWS API on this machine (moto), the stack's runner
//! function is created when missing (a container-image function of the pool's timeout, as the
//! template creates it) and moto is told to run no container for it, so
//! `sam/local-lambda.toml` needs nothing prepared. On a real account the function must exist.
//!
//! moto accepts each asynchronous invocation and runs nothing, so no runner registers with the
//! emulator: play one with `runway runner-sim` (see `sam/local-lambda.toml`), or let the boot
//! deadline replace it.

use std::collections::BTreeMap;

use runway_clock::SharedClock;
use runway_config::ProviderSettings;
use runway_providers::{LAMBDA_MAX_TIMEOUT, LambdaProvider};
use tracing::info;

use crate::LocalConfig;
use crate::system::{LocalError, setup};

/// The image and role `runway local` names when it creates a function (moto checks only their
/// shape and runs neither).
const LOCAL_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/runway-lambda-runner:local";
const LOCAL_ROLE_NAME: &str = "runway-local-lambda-runner";
const LOCAL_ROLE: &str = "arn:aws:iam::123456789012:role/runway-local-lambda-runner";

/// Readies moto at `endpoint` for Lambda runner functions: its Lambda accepts invocations
/// without running their container (it has no Docker to run them with here), and its IAM
/// knows the role the functions name (moto's Lambda refuses one it does not). IAM's query API
/// by hand: runway has no IAM client, and moto checks no signature.
async fn ready_moto(endpoint: &str) -> Result<(), LocalError> {
    let base = endpoint.trim_end_matches('/');
    let client = reqwest::Client::new();
    let fail = |error: reqwest::Error| {
        setup(format!(
            "could not ready moto's Lambda at {endpoint}: {error}"
        ))
    };
    let answer = client
        .post(format!("{base}/moto-api/config"))
        .json(&serde_json::json!({"lambda": {"use_docker": false}}))
        .send()
        .await
        .map_err(fail)?;
    if !answer.status().is_success() {
        return Err(setup(format!(
            "moto at {endpoint} refused its Lambda configuration ({}): is it moto?",
            answer.status()
        )));
    }
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    })
    .to_string();
    let answer = client
        .post(base)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", LOCAL_ROLE_NAME),
            ("AssumeRolePolicyDocument", trust.as_str()),
        ])
        .send()
        .await
        .map_err(fail)?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if !status.is_success() && !body.contains("EntityAlreadyExists") {
        return Err(setup(format!(
            "moto at {endpoint} did not create the Lambda runner role ({status}): {body}"
        )));
    }
    Ok(())
}

/// Creates `function` when it does not exist: a container image with `timeout` seconds.
async fn ensure_function(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    timeout: u64,
) -> Result<(), LocalError> {
    if lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    lambda
        .create_function()
        .function_name(function)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(LOCAL_IMAGE)
                .build(),
        )
        .role(LOCAL_ROLE)
        .timeout(timeout.min(LAMBDA_MAX_TIMEOUT.as_secs()) as i32)
        .memory_size(4096)
        .send()
        .await
        .map_err(|error| {
            setup(format!(
                "could not create the Lambda function {function:?} for the Lambda pools: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&error)
            ))
        })?;
    info!(
        function,
        "created the Lambda runner function for the Lambda pools"
    );
    Ok(())
}

/// A provider for every Lambda pool of `config`, mapped as the deployed stack maps them; on
/// moto their functions are made when missing.
pub(crate) async fn providers(
    config: &LocalConfig,
    aws: &aws_config::SdkConfig,
    clock: &SharedClock,
) -> Result<BTreeMap<String, LambdaProvider>, LocalError> {
    if !config
        .pools()
        .any(|(_, provider)| matches!(provider, ProviderSettings::Lambda(_)))
    {
        return Ok(BTreeMap::new());
    }
    let pools = config
        .document
        .lambda_pools(config.stack.as_str(), None)
        .map_err(|error| setup(error.to_string()))?;
    let lambda = aws_sdk_lambda::Client::new(aws);
    if let Some(endpoint) = aws.endpoint_url()
        && crate::chaos::local_endpoint(endpoint)
    {
        ready_moto(endpoint).await?;
        for pool in pools.values() {
            let timeout = pool.timeout.unwrap_or(LAMBDA_MAX_TIMEOUT).as_secs();
            ensure_function(&lambda, &pool.function, timeout).await?;
        }
    }
    let ssm = aws_sdk_ssm::Client::new(aws);
    let mut providers = BTreeMap::new();
    for (pool, pool_config) in pools {
        let provider = LambdaProvider::new(lambda.clone(), ssm.clone(), pool_config)
            .map_err(|error| setup(format!("pool {pool}: {error}")))?
            .with_clock(clock.clone());
        providers.insert(pool, provider);
    }
    Ok(providers)
}
