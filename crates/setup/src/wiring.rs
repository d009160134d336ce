//! Building the job flow on AWS: DynamoDB store, EC2 providers, GitHub over REST, policies
//! from files or S3, Step Functions callbacks.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use runway_clock::{SharedClock, SystemClock};
use runway_github::{AppCredentials, Credentials, GitHub, RestGitHub, RestGitHubOptions, Secret};
use runway_jobflow::{Deps, JobFlow, SfnCallbacks};
use runway_policy_host::{
    EngineConfig, InstanceAllocation, Policy, PolicyBounds, PolicyEngine, PolicyError,
};
use runway_providers::{
    Ec2Provider, EcsProvider, EksTokenSource, LambdaProvider, ManifestReader, Provider,
    RunnerCacheReader, eks_providers,
};
use runway_runner_logs::{CloudWatchRunnerLogs, RunnerLogGroups};
use runway_store::DynamoStore;
use tracing::info;

use runway_config::{Document, Host, ReadOptions};

use crate::SetupError;
use crate::app_secret::{AppSecret, SetupAppGitHub};
use crate::policy_source::{PolicyLocation, PolicyObjects};
use crate::secrets::credential_value;
use crate::settings::{CONFIG_ENV, ConfigSource, GITHUB_CA_BUNDLE_ENV, GitHubAuth, StackSettings};

/// The AWS configuration of the Lambda's environment (region, credentials and
/// `AWS_ENDPOINT_URL` from the environment, as every AWS SDK reads them).
pub async fn load_aws_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Reads an SSM parameter, decrypting a SecureString.
pub async fn read_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, SetupError> {
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|error| {
            let detail = aws_sdk_ssm::error::DisplayErrorContext(&error);
            SetupError::Parameter {
                name: name.to_owned(),
                reason: detail.to_string(),
            }
        })?;
    output
        .parameter
        .and_then(|parameter| parameter.value)
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| SetupError::Parameter {
            name: name.to_owned(),
            reason: "it is empty".into(),
        })
}

/// The configuration document, from the environment or its SSM parameter.
pub async fn load_document(
    settings: &StackSettings,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Document, SetupError> {
    let options = ReadOptions::for_stack(Host::Lambda, settings.stack.as_str());
    match &settings.config {
        ConfigSource::Inline(text) => Document::from_json(text, &options)
            .map_err(|error| SetupError::Config(format!("{CONFIG_ENV}: {error}"))),
        ConfigSource::Parameter(name) => {
            let text = read_parameter(ssm, name).await?;
            Document::from_json(&text, &options)
                .map_err(|error| SetupError::Config(format!("SSM parameter {name}: {error}")))
        }
    }
}

pub(crate) async fn github(
    settings: &StackSettings,
    aws: &SdkConfig,
    clock: SharedClock,
) -> Result<Arc<dyn GitHub>, SetupError> {
    let credentials = match &settings.github {
        GitHubAuth::App {
            app_id,
            installations,
            private_key,
        } => {
            let pem = credential_value(aws, private_key).await?;
            let first = installations.first().copied().ok_or_else(|| {
                SetupError::Settings("no GitHub App installation id is set".to_owned())
            })?;
            let app = AppCredentials::new(app_id.clone(), pem.as_bytes(), first)
                .map_err(|error| SetupError::GitHub(error.to_string()))?;
            Credentials::App(app.serving(installations))
        }
        GitHubAuth::Token(token) => {
            Credentials::Token(Secret::new(credential_value(aws, token).await?))
        }
        GitHubAuth::SetupApp { secret } => {
            // Read when called, not now: the function starts while setup is pending.
            let secret = AppSecret::new(aws_sdk_secretsmanager::Client::new(aws), secret);
            return Ok(Arc::new(SetupAppGitHub::new(
                secret,
                None,
                clock,
                github_options(settings)?,
            )));
        }
    };
    let github = RestGitHub::with_options(
        &settings.github_api_url,
        credentials,
        clock,
        github_options(settings)?,
    )
    .map_err(|error| SetupError::GitHub(error.to_string()))?;
    Ok(Arc::new(github))
}

fn github_options(settings: &StackSettings) -> Result<RestGitHubOptions, SetupError> {
    let mut options = RestGitHubOptions::default();
    if let Some(bundle) = &settings.github_ca_bundle {
        options = options
            .with_extra_ca_file(bundle)
            .map_err(|error| SetupError::GitHub(format!("{GITHUB_CA_BUNDLE_ENV}: {error}")))?;
    }
    Ok(options)
}

/// Loads a policy: a file (a `.wasm` component, or a `.cwasm` compiled ahead of time for this
/// architecture, through the engine's one loader), or one version of a `.wasm` object in S3
/// (only `.wasm`: see [`crate::policy_source`] for why S3 never supplies native code).
async fn load_policy(
    engine: &PolicyEngine,
    location: &PolicyLocation,
    bounds: &PolicyBounds,
    objects: &PolicyObjects,
) -> Result<Policy, SetupError> {
    match location {
        // A `.cwasm` is native code, trusted because a file is only read from the
        // deployment's own package (the function's policy layer), which the operator built
        // with `runway policy compile`.
        PolicyLocation::File(path) => {
            engine
                .load_file_with(path, bounds)
                .map_err(|error| SetupError::Policy {
                    path: path.display().to_string(),
                    reason: without_file_name(error),
                })
        }
        PolicyLocation::S3(object) => {
            let bytes = objects.fetch(object).await?;
            engine
                .load_with(&bytes, bounds)
                .map_err(|error| SetupError::Policy {
                    path: object.to_string(),
                    reason: error.to_string(),
                })
        }
    }
}

/// The reason of a file's loading error without the file's name, which
/// [`SetupError::Policy`] gives.
fn without_file_name(error: PolicyError) -> String {
    match error {
        PolicyError::File { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}

/// Loads the policy at `location`, when one is configured, in the role (router or throttle)
/// it must play.
async fn load_role<T>(
    engine: &PolicyEngine,
    location: Option<&PolicyLocation>,
    bounds: &PolicyBounds,
    objects: &PolicyObjects,
    role: impl Fn(&Policy) -> Result<T, runway_policy_host::PolicyError>,
) -> Result<Option<T>, SetupError> {
    let Some(location) = location else {
        return Ok(None);
    };
    let policy = load_policy(engine, location, bounds, objects).await?;
    role(&policy).map(Some).map_err(|error| SetupError::Policy {
        path: location.to_string(),
        reason: error.to_string(),
    })
}

/// The policy engine of a Lambda: a small instance pool (one call at a time per process),
/// no instances made ahead (the process is frozen between invocations), instances reused as
/// `settings` say ([`crate::POLICY_REUSE_ENV`]). The pooling strategy is kept: it changes how
/// modules are compiled, and `.cwasm` files are compiled with it.
pub fn policy_engine(settings: &StackSettings) -> Result<PolicyEngine, SetupError> {
    let config = EngineConfig {
        allocation: InstanceAllocation::Pooling { max_instances: 4 },
        prepared_instances: 0,
        reuse: settings.policy_reuse,
        ..EngineConfig::default()
    };
    PolicyEngine::new(config).map_err(|error| SetupError::Policy {
        path: "-".into(),
        reason: format!("the policy engine did not start: {error}"),
    })
}

/// Builds the job flow from `settings` on the AWS services of `aws`.
pub async fn build_flow(settings: &StackSettings, aws: &SdkConfig) -> Result<JobFlow, SetupError> {
    let clock = SystemClock::shared();
    let ssm = aws_sdk_ssm::Client::new(aws);
    let document = load_document(settings, &ssm).await?;

    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        settings.table.clone(),
        clock.clone(),
    );
    let github: Arc<dyn GitHub> = github(settings, aws, clock.clone()).await?;

    let providers = runner_providers(settings, &document, aws, &ssm, &clock)?;

    let (router, throttle) = match (&settings.router_policy, &settings.throttle_policy) {
        (None, None) => (None, None),
        (router, throttle) => {
            let engine = policy_engine(settings)?;
            let objects = PolicyObjects::from_config(aws, settings.policy_cache_dir.clone());
            (
                load_role(
                    &engine,
                    router.as_ref(),
                    &settings.router_bounds,
                    &objects,
                    Policy::router,
                )
                .await?,
                load_role(
                    &engine,
                    throttle.as_ref(),
                    &settings.throttle_bounds,
                    &objects,
                    Policy::throttle,
                )
                .await?,
            )
        }
    };

    let deps = Deps {
        store: Arc::new(store),
        github,
        providers,
        router,
        throttle,
        callbacks: Arc::new(SfnCallbacks::new(aws_sdk_sfn::Client::new(aws))),
        clock,
        metrics: Arc::new(runway_jobflow::metrics::Emf::stdout(
            runway_jobflow::metrics::namespace(&settings.stack),
        )),
    };
    let flow =
        JobFlow::new(deps, document.flow).map_err(|error| SetupError::Config(error.to_string()))?;
    info!(
        table = %settings.table,
        pools = flow.config().pools.len(),
        router_policy = settings.router_policy.is_some(),
        throttle_policy = settings.throttle_policy.is_some(),
        policy_reuse = %settings.policy_reuse,
        "job flow ready"
    );
    Ok(flow)
}

/// EKS tokens signed with the function's credentials in its region.
fn eks_tokens(aws: &aws_config::SdkConfig) -> Result<EksTokenSource, SetupError> {
    let credentials = aws.credentials_provider().ok_or_else(|| {
        SetupError::Config("EKS pools need AWS credentials to sign tokens, and none are set".into())
    })?;
    let region = aws.region().ok_or_else(|| {
        SetupError::Config("EKS pools need an AWS region to sign tokens in, and none is set".into())
    })?;
    Ok(EksTokenSource::new(credentials, region.as_ref()))
}

/// One provider per pool of `document`: Lambda pools invoking their functions (JIT configs
/// under the stack's key), EKS pools reaching their clusters' APIs with the
/// function's role (its EKS access entry), EC2 pools with the stack's launch template and KMS
/// key, ECS pools in the stack's cluster, running the task definitions runway registers for
/// them (registered by the first launch, see [`EcsProvider::with_default_task_definition`]).
pub(crate) fn runner_providers(
    settings: &StackSettings,
    document: &Document,
    aws: &aws_config::SdkConfig,
    ssm: &aws_sdk_ssm::Client,
    clock: &SharedClock,
) -> Result<BTreeMap<String, Arc<dyn Provider>>, SetupError> {
    let ec2 = aws_sdk_ec2::Client::new(aws);
    let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
    // One reader for every pool: a burst of launches reads the cache's manifest once.
    let runner_cache: Arc<dyn RunnerCacheReader> = Arc::new(ManifestReader::s3(
        aws_sdk_s3::Client::new(aws),
        clock.clone(),
    ));
    // One maker of log groups: each pool's group is made (or found) once an hour at most.
    let runner_logs: Arc<dyn RunnerLogGroups> = Arc::new(CloudWatchRunnerLogs::new(
        aws_sdk_cloudwatchlogs::Client::new(aws),
        settings.runner_log_retention_days,
    ));
    for (pool, config) in settings.ec2_pools(document)? {
        let provider = Ec2Provider::new(ec2.clone(), ssm.clone(), config)
            .map_err(|error| SetupError::Config(format!("pool {pool:?}: {error}")))?
            .with_clock(clock.clone())
            .with_runner_cache(runner_cache.clone())
            .with_runner_logs(runner_logs.clone());
        providers.insert(pool, Arc::new(provider));
    }
    let eks_pools = document
        .eks_pools(&settings.stack)
        .map_err(|error| SetupError::Config(error.to_string()))?;
    if !eks_pools.is_empty() {
        let tokens = Arc::new(eks_tokens(aws)?);
        let eks = aws_sdk_eks::Client::new(aws);
        for (pool, provider) in eks_providers(&eks, tokens, eks_pools, None, clock.clone())
            .map_err(|error| SetupError::Config(error.to_string()))?
        {
            providers.insert(pool, Arc::new(provider));
        }
    }
    let lambda_pools = document
        .lambda_pools(&settings.stack, settings.jit_config_kms_key.as_deref())
        .map_err(|error| SetupError::Config(error.to_string()))?;
    if !lambda_pools.is_empty() {
        let lambda = aws_sdk_lambda::Client::new(aws);
        for (pool, config) in lambda_pools {
            let provider = LambdaProvider::new(lambda.clone(), ssm.clone(), config)
                .map_err(|error| SetupError::Config(format!("pool {pool:?}: {error}")))?
                .with_clock(clock.clone());
            providers.insert(pool, Arc::new(provider));
        }
    }
    let defaults = settings.ecs_defaults();
    let ecs_pools = document
        .ecs_pools(&defaults)
        .map_err(|error| SetupError::Config(error.to_string()))?;
    if ecs_pools.is_empty() {
        return Ok(providers);
    }
    let mut definitions = document.ecs_task_definitions(&ecs_pools, &defaults);
    let ecs = aws_sdk_ecs::Client::new(aws);
    for (pool, config) in ecs_pools {
        let definition = definitions.remove(&pool);
        let provider =
            EcsProvider::for_pool(ecs.clone(), ssm.clone(), config, definition, clock.clone())
                .map_err(|error| SetupError::Config(format!("pool {pool:?}: {error}")))?;
        providers.insert(pool, Arc::new(provider));
    }
    Ok(providers)
}
