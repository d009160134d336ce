//! Runners on Lambda: one asynchronous invocation of a container-image function per runner.
//!
//! # What runs
//!
//! A pool names a Lambda function whose image holds the actions runner and runway's runner
//! bootstrap (`sam/lambda-runner/`); by default the function the stack's template creates,
//! `<stack>-lambda-runner`. Each launch is one `Invoke` with `InvocationType: Event`: Lambda
//! queues the event and runs the function once, for at most its timeout (15 minutes at most),
//! without Docker. The bootstrap runs one ephemeral runner, which exits after its one job.
//!
//! # How the JIT config reaches the function
//!
//! The JIT config never goes into the invocation's payload (Lambda keeps async events, and
//! a function's logs may print them). runway writes it to a new SSM SecureString
//! `/runway/<stack>/jit/lambda/configs/<128-bit random name>` (Advanced tier, the runner's
//! tags, an `Expiration` policy at the latest moment the function can still run) and the
//! payload carries only that parameter's *name* ([`LambdaProvider::payload`]). The bootstrap
//! reads the parameter, deletes it, and runs `./run.sh --jitconfig ...`. The function's role
//! may read and delete parameters under `/runway/<stack>/jit/lambda/` only.
//!
//! # Finding runners again
//!
//! An invocation has no tags and cannot be listed, so each launch writes an ownership record:
//! a String parameter `/runway/<stack>/jit/lambda/runners/<instance id>` holding a
//! [`LambdaRecord`] (execution, runner, pool, function, launch time, the function's timeout,
//! the JIT parameter's name), tagged like the JIT config. The instance id is derived from the
//! stack, execution and runner ([`lambda_instance_id`]), so `terminate` and a retried launch
//! find the record by name. [`Provider::owned`] reads the records under the path.
//!
//! A record is live until its launch time plus the longest an event may wait in Lambda's
//! queue ([`LambdaPoolConfig::queue_slack`]) plus the function's timeout: after that the
//! function has necessarily ended. `owned` does not list such a record as a runner; it deletes
//! it (and its JIT parameter) on the way, since nothing can be running for it.
//!
//! # Stopping a runner
//!
//! An asynchronous invocation cannot be stopped from outside. `terminate` deletes the record
//! and the JIT parameter; the bootstrap checks its record every few seconds and stops the
//! runner when it is gone. When the runner ends by itself the bootstrap deletes its record.
//! When the function's deadline is near, the bootstrap stops the runner and fails the
//! invocation with a message that says the job outlived the function's timeout.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_ssm::types::{ParameterType, Tag};
use chrono::{DateTime, Utc};
use runway_clock::{SharedClock, SystemClock};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::jit::{JitParameter, check_kms_key, delete_jit_parameter, put_jit_parameter};
use crate::shared::{
    TAG_EXECUTION, TAG_MANAGED, TAG_POOL, TAG_RUNNER, TAG_STACK, check_stack_name, first_problem,
    hashed_id, sdk_error,
};
use crate::{
    LaunchRequest, Launched, OwnedRunner, Provider, ProviderError, ProviderKind, Terminated,
    jit_parameter_prefix,
};

/// The longest a Lambda function may run.
pub const LAMBDA_MAX_TIMEOUT: Duration = Duration::from_secs(900);

/// How long before a Lambda runner's deadline its bootstrap stops the runner
/// (`RUNWAY_DEADLINE_MARGIN_SECONDS` in `sam/lambda-runner/bootstrap`).
pub const TIME_LIMIT_MARGIN: Duration = Duration::from_secs(20);

/// How long the template lets an event wait in Lambda's queue (`MaximumEventAgeInSeconds`),
/// plus a minute for clocks and the bootstrap's start.
pub const DEFAULT_QUEUE_SLACK: Duration = Duration::from_secs(360);

const LAMBDA_FIX: &str = "check the pool's function (provider.function), that it exists in \
                          this region and account, and runway's IAM permissions on it \
                          (lambda:InvokeFunction, lambda:GetFunctionConfiguration)";
const SSM_FIX: &str = "check runway's IAM permissions on /runway/<stack>/jit/lambda/";

/// Where a stack's Lambda runners' JIT configs and ownership records live.
pub fn lambda_parameter_prefix(stack: &str) -> String {
    format!("{}/lambda", jit_parameter_prefix(stack))
}

/// The path of a stack's ownership records.
fn records_path(stack: &str) -> String {
    format!("{}/runners", lambda_parameter_prefix(stack))
}

/// The function the stack's template creates (`LambdaRunnerImageUri`), run by pools that
/// name none.
pub fn default_lambda_function(stack: &str) -> String {
    format!("{stack}-lambda-runner")
}

/// The instance id of a runner: `lambda-` and 28 hex digits of a SHA-256 over the stack,
/// execution and runner names; also the leaf name of its ownership record.
pub fn lambda_instance_id(stack: &str, execution: &str, runner: &str) -> String {
    hashed_id("lambda-", &[stack, execution, runner], 14)
}

fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("lambda-")
        .is_some_and(|hex| hex.len() == 28 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A function name, partial ARN (`123456789012:function:name`) or ARN, optionally with a
/// version or alias: what `Invoke` takes.
pub fn is_lambda_function_ref(function: &str) -> bool {
    !function.is_empty()
        && function.len() <= 170
        && function
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '$' | '.'))
}

/// One pool's Lambda settings.
#[derive(Debug, Clone)]
pub struct LambdaPoolConfig {
    /// The runway stack the runners belong to: the path of their parameters, and their tags.
    pub stack: String,
    /// The function each runner is an invocation of.
    pub function: String,
    /// The KMS key of the JIT config SecureString; `None`: the account's key for SSM.
    pub ssm_kms_key_id: Option<String>,
    /// The function's timeout; `None`: asked of Lambda (`GetFunctionConfiguration`) before
    /// the first launch.
    pub timeout: Option<Duration>,
    /// How long an event may wait in Lambda's queue before the function starts, plus a margin:
    /// a record is live until its launch plus this plus the timeout.
    pub queue_slack: Duration,
}

impl LambdaPoolConfig {
    pub fn new(stack: impl Into<String>) -> Self {
        let stack = stack.into();
        LambdaPoolConfig {
            function: default_lambda_function(&stack),
            stack,
            ssm_kms_key_id: None,
            timeout: None,
            queue_slack: DEFAULT_QUEUE_SLACK,
        }
    }

    /// Whether the settings can work; the first problem found.
    pub fn validate(&self) -> Result<(), ProviderError> {
        first_problem(self.problems())
    }

    /// Every problem of the settings, each with its setting's key (`""` for the stack).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if let Err(ProviderError::Config { reason }) = check_stack_name(&self.stack) {
            problems.push(("", reason));
        }
        if !is_lambda_function_ref(&self.function) {
            problems.push((
                "function",
                format!(
                    "{:?} is not a Lambda function name or ARN (letters, digits, '-', '_', \
                     ':'; e.g. {})",
                    self.function,
                    default_lambda_function(&self.stack)
                ),
            ));
        }
        if let Some(key) = &self.ssm_kms_key_id
            && let Err(ProviderError::Config { reason }) = check_kms_key(key)
        {
            problems.push(("ssm_kms_key_id", reason));
        }
        if let Some(timeout) = self.timeout
            && (timeout < Duration::from_secs(60) || timeout > LAMBDA_MAX_TIMEOUT)
        {
            problems.push((
                "timeout_seconds",
                format!(
                    "a runner function's timeout is 60 to 900 seconds, not {}",
                    timeout.as_secs()
                ),
            ));
        }
        problems
    }
}

/// A runner's ownership record: the value of its record parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaRecord {
    pub execution: String,
    pub runner: String,
    pub pool: String,
    pub function: String,
    pub instance_id: String,
    pub launched_at: DateTime<Utc>,
    pub timeout_seconds: u64,
    /// The JIT config's parameter (gone once the function read it).
    pub jit_parameter: String,
}

impl LambdaRecord {
    /// The latest moment the function can still be running.
    pub fn ends_by(&self, queue_slack: Duration) -> DateTime<Utc> {
        let wait = Duration::from_secs(self.timeout_seconds) + queue_slack;
        self.launched_at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
    }

    fn owned_runner(&self) -> OwnedRunner {
        OwnedRunner {
            provider: ProviderKind::Lambda,
            execution: self.execution.clone(),
            runner_name: self.runner.clone(),
            pool: Some(self.pool.clone()),
            instance_id: self.instance_id.clone(),
            launched_at: Some(self.launched_at),
        }
    }
}

/// Runners as Lambda invocations.
#[derive(Debug, Clone)]
pub struct LambdaProvider {
    lambda: aws_sdk_lambda::Client,
    ssm: aws_sdk_ssm::Client,
    config: LambdaPoolConfig,
    clock: SharedClock,
    /// The function's timeout, asked once per process when the pool does not give it.
    timeout: Arc<tokio::sync::OnceCell<Duration>>,
}

impl LambdaProvider {
    /// Checks the pool configuration; an unusable one is [`ProviderError::Config`].
    pub fn new(
        lambda: aws_sdk_lambda::Client,
        ssm: aws_sdk_ssm::Client,
        config: LambdaPoolConfig,
    ) -> Result<LambdaProvider, ProviderError> {
        config.validate()?;
        Ok(LambdaProvider {
            lambda,
            ssm,
            config,
            clock: SystemClock::shared(),
            timeout: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Uses `clock` for launch times, expiry and back-off instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> LambdaProvider {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &LambdaPoolConfig {
        &self.config
    }

    /// The function's timeout: the pool's, or Lambda's answer (asked once).
    pub async fn function_timeout(&self) -> Result<Duration, ProviderError> {
        if let Some(timeout) = self.config.timeout {
            return Ok(timeout);
        }
        self.timeout
            .get_or_try_init(|| async {
                let configuration = self
                    .lambda
                    .get_function_configuration()
                    .function_name(&self.config.function)
                    .send()
                    .await
                    .map_err(|error| lambda_error("GetFunctionConfiguration", error))?;
                let seconds = configuration.timeout().unwrap_or(3).max(1) as u64;
                Ok(Duration::from_secs(seconds))
            })
            .await
            .copied()
    }

    /// The invocation's payload: names and times, never the JIT config.
    pub fn payload(&self, record_name: &str, record: &LambdaRecord) -> serde_json::Value {
        json!({
            "runway": "runner",
            "stack": self.config.stack,
            "execution": record.execution,
            "runner": record.runner,
            "pool": record.pool,
            "jit_parameter": record.jit_parameter,
            "record_parameter": record_name,
            "timeout_seconds": record.timeout_seconds,
        })
    }

    fn record_name(&self, instance_id: &str) -> String {
        format!("{}/{instance_id}", records_path(&self.config.stack))
    }

    fn new_jit_name(&self) -> String {
        format!(
            "{}/configs/{:032x}",
            lambda_parameter_prefix(&self.config.stack),
            rand::random::<u128>()
        )
    }

    fn tags<'a>(
        &'a self,
        execution: &'a str,
        pool: &'a str,
        runner: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            (TAG_STACK, self.config.stack.as_str()),
            (TAG_EXECUTION, execution),
            (TAG_POOL, pool),
            (TAG_RUNNER, runner),
            (TAG_MANAGED, "true"),
        ]
    }

    async fn write_jit(
        &self,
        request: &LaunchRequest,
        name: &str,
        ends_by: DateTime<Utc>,
    ) -> Result<(), ProviderError> {
        let parameter = JitParameter {
            name,
            runner_name: &request.runner_name,
            tags: self.tags(&request.execution, &request.pool, &request.runner_name),
            kms_key_id: self.config.ssm_kms_key_id.as_deref(),
            expires_at: Some(ends_by),
        };
        put_jit_parameter(&self.ssm, &self.clock, &parameter, &request.jit_config).await
    }

    async fn write_record(&self, name: &str, record: &LambdaRecord) -> Result<(), ProviderError> {
        let value = serde_json::to_string(record)
            .map_err(|error| ProviderError::other(format!("encoding a runner record: {error}")))?;
        let tags: Vec<Tag> = self
            .tags(&record.execution, &record.pool, &record.runner)
            .into_iter()
            .filter_map(|(key, value)| Tag::builder().key(key).value(value).build().ok())
            .collect();
        let first = self
            .ssm
            .put_parameter()
            .name(name)
            .description(format!("runway Lambda runner {}", record.runner))
            .value(&value)
            .r#type(ParameterType::String)
            .set_tags(Some(tags))
            .send()
            .await;
        let error = match first {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if error.code() != Some("ParameterAlreadyExists") {
            return Err(sdk_error("SSM", "PutParameter", error, SSM_FIX));
        }
        // An expired record of the same runner name: this launch's replaces it (SSM takes no
        // tags with Overwrite; the first write's stay).
        self.ssm
            .put_parameter()
            .name(name)
            .value(&value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| sdk_error("SSM", "PutParameter", error, SSM_FIX))
    }

    /// The record `name`, if there is one.
    async fn read_record(&self, name: &str) -> Result<Option<LambdaRecord>, ProviderError> {
        let output = match self.ssm.get_parameter().name(name).send().await {
            Ok(output) => output,
            Err(error) if error.code() == Some("ParameterNotFound") => return Ok(None),
            Err(error) => return Err(sdk_error("SSM", "GetParameter", error, SSM_FIX)),
        };
        Ok(output
            .parameter()
            .and_then(|parameter| parameter.value())
            .and_then(|value| parse_record(name, value)))
    }

    /// Every record of the stack, by parameter name.
    async fn records(&self) -> Result<Vec<(String, LambdaRecord)>, ProviderError> {
        let mut records = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .ssm
                .get_parameters_by_path()
                .path(records_path(&self.config.stack))
                .recursive(true)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| sdk_error("SSM", "GetParametersByPath", error, SSM_FIX))?;
            for parameter in page.parameters() {
                let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                    continue;
                };
                if let Some(record) = parse_record(name, value) {
                    records.push((name.to_string(), record));
                }
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(records),
            }
        }
    }

    /// Deletes a record and its JIT parameter (either may be gone already).
    async fn remove(&self, name: &str, record: &LambdaRecord) -> Result<(), ProviderError> {
        delete_jit_parameter(&self.ssm, &record.jit_parameter).await?;
        delete_jit_parameter(&self.ssm, name).await
    }

    fn is_live(&self, record: &LambdaRecord) -> bool {
        self.clock.now() < record.ends_by(self.config.queue_slack)
    }

    fn launched(&self, record: &LambdaRecord) -> Launched {
        Launched {
            runner_name: record.runner.clone(),
            provider: ProviderKind::Lambda,
            instance_id: record.instance_id.clone(),
            instance_type: None,
            subnet_id: None,
            capacity: None,
            launched_at: record.launched_at,
        }
    }

    async fn invoke(&self, payload: &serde_json::Value) -> Result<(), ProviderError> {
        let body = serde_json::to_vec(payload)
            .map_err(|error| ProviderError::other(format!("encoding the payload: {error}")))?;
        let output = self
            .lambda
            .invoke()
            .function_name(&self.config.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|error| lambda_error("Invoke", error))?;
        if output.status_code() != 202 {
            return Err(ProviderError::other(format!(
                "Lambda Invoke answered {} for an asynchronous invocation (202 expected)",
                output.status_code()
            )));
        }
        Ok(())
    }
}

fn parse_record(name: &str, value: &str) -> Option<LambdaRecord> {
    match serde_json::from_str(value) {
        Ok(record) => Some(record),
        Err(error) => {
            warn!(parameter = name, %error, "a Lambda runner record runway cannot read; left \
                alone");
            None
        }
    }
}

/// Lambda's error codes, for the caller to act on: throttling and a function being updated
/// are retried; a function that is not there is the pool's configuration.
fn lambda_error<E, R>(action: &str, error: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = aws_smithy_types::error::display::DisplayErrorContext(&error).to_string();
    let reason = format!("{action}: {message}");
    match error.code() {
        Some("TooManyRequestsException" | "EC2ThrottledException") => ProviderError::Throttled {
            service: "Lambda".into(),
            reason,
        },
        Some(
            "ServiceException"
            | "ResourceConflictException"
            | "ResourceNotReadyException"
            | "EC2UnexpectedException"
            | "ENILimitReachedException",
        ) => ProviderError::Unavailable {
            service: "Lambda".into(),
            reason,
        },
        Some(code @ ("ResourceNotFoundException" | "RequestTooLargeException")) => {
            ProviderError::config(format!("{reason} ({code}); {LAMBDA_FIX}"))
        }
        _ => sdk_error("Lambda", action, error, LAMBDA_FIX),
    }
}

#[async_trait]
impl Provider for LambdaProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Lambda
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let overrides = &request.overrides;
        if overrides.image.is_some()
            || overrides
                .instance_types
                .as_ref()
                .is_some_and(|types| !types.is_empty())
            || overrides.disk_gib.is_some()
            || overrides.capacity.is_some()
        {
            return Err(ProviderError::config(format!(
                "the launch asks for {overrides:?}; a Lambda pool runs its function as it is \
                 (its image, memory and storage are the function's)"
            )));
        }
        let timeout = self.function_timeout().await?;
        let instance_id =
            lambda_instance_id(&self.config.stack, &request.execution, &request.runner_name);
        let record_name = self.record_name(&instance_id);
        if let Some(earlier) = self.read_record(&record_name).await? {
            if earlier.execution != request.execution || earlier.runner != request.runner_name {
                return Err(ProviderError::other(format!(
                    "the Lambda runner record {record_name} is not this runner's; remove it"
                )));
            }
            if self.is_live(&earlier) {
                // An earlier try invoked the function: it gets this try's JIT config.
                self.write_jit(
                    &request,
                    &earlier.jit_parameter,
                    earlier.ends_by(self.config.queue_slack),
                )
                .await?;
                info!(instance_id, runner = %request.runner_name, execution = %request.execution,
                    "the runner was launched by an earlier try; it has this try's JIT config");
                return Ok(self.launched(&earlier));
            }
            self.remove(&record_name, &earlier).await?;
        }
        let record = LambdaRecord {
            execution: request.execution.clone(),
            runner: request.runner_name.clone(),
            pool: request.pool.clone(),
            function: self.config.function.clone(),
            instance_id,
            launched_at: self.clock.now(),
            timeout_seconds: timeout.as_secs(),
            jit_parameter: self.new_jit_name(),
        };
        let ends_by = record.ends_by(self.config.queue_slack);
        self.write_jit(&request, &record.jit_parameter, ends_by)
            .await?;
        if let Err(error) = self.write_record(&record_name, &record).await {
            self.discard(&record_name, &record).await;
            return Err(error);
        }
        if let Err(error) = self.invoke(&self.payload(&record_name, &record)).await {
            self.discard(&record_name, &record).await;
            return Err(error);
        }
        info!(instance_id = %record.instance_id, function = %self.config.function,
            runner = %record.runner, execution = %record.execution, "launched runner on Lambda");
        Ok(self.launched(&record))
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let instance_id = lambda_instance_id(&self.config.stack, execution, runner_name);
        let name = self.record_name(&instance_id);
        let Some(record) = self.read_record(&name).await? else {
            return Ok(Terminated::AlreadyGone);
        };
        if record.execution != execution || record.runner != runner_name {
            return Ok(Terminated::AlreadyGone);
        }
        let live = self.is_live(&record);
        // The bootstrap sees its record gone and stops the runner.
        self.remove(&name, &record).await?;
        if live {
            info!(
                execution,
                runner = runner_name,
                instance_id,
                "told the Lambda runner to stop"
            );
            Ok(Terminated::Stopped {
                instance_ids: vec![instance_id],
            })
        } else {
            Ok(Terminated::AlreadyGone)
        }
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        let mut owned = Vec::new();
        for (name, record) in self.records().await? {
            if self.is_live(&record) {
                owned.push(record.owned_runner());
                continue;
            }
            // The function has ended whatever it did: nothing runs for this record.
            if let Err(error) = self.remove(&name, &record).await {
                warn!(parameter = %name, %error, "could not delete an ended Lambda runner's \
                    record; the next look deletes it");
            }
        }
        Ok(owned)
    }

    async fn runner_time_limit(&self) -> Result<Option<Duration>, ProviderError> {
        self.function_timeout().await.map(Some)
    }

    async fn runner_on(&self, instance_id: &str) -> Result<Option<OwnedRunner>, ProviderError> {
        if !is_instance_id(instance_id) {
            return Ok(None);
        }
        Ok(self
            .read_record(&self.record_name(instance_id))
            .await?
            .filter(|record| self.is_live(record) && record.instance_id == instance_id)
            .map(|record| record.owned_runner()))
    }
}

impl LambdaProvider {
    /// Deletes what a failed launch wrote; a failure to is only logged (the JIT parameter
    /// expires; the record expires at its deadline and `owned` deletes it then).
    async fn discard(&self, record_name: &str, record: &LambdaRecord) {
        if let Err(error) = self.remove(record_name, record).await {
            warn!(%error, parameter = record_name, "could not delete a failed launch's record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(launched_at: DateTime<Utc>) -> LambdaRecord {
        LambdaRecord {
            execution: "e".into(),
            runner: "r".into(),
            pool: "p".into(),
            function: "f".into(),
            instance_id: lambda_instance_id("s", "e", "r"),
            launched_at,
            timeout_seconds: 900,
            jit_parameter: "/runway/s/jit/lambda/configs/x".into(),
        }
    }

    #[test]
    fn a_record_ends_after_the_queue_and_the_timeout() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ends = record(at).ends_by(Duration::from_secs(360));
        assert_eq!((ends - at).num_seconds(), 900 + 360);
    }

    #[test]
    fn instance_ids_are_stable_and_recognised() {
        let id = lambda_instance_id("s", "e", "r");
        assert_eq!(id, lambda_instance_id("s", "e", "r"));
        assert_ne!(id, lambda_instance_id("s", "e", "r2"));
        assert!(is_instance_id(&id), "{id}");
        assert!(!is_instance_id("lambda-../../x"));
        assert!(!is_instance_id("i-0123456789abcdef0"));
        assert_eq!(
            lambda_instance_id("s", &"x".repeat(80), "r").len(),
            id.len()
        );
    }

    #[test]
    fn parameters_live_under_the_stack_s_jit_path() {
        assert_eq!(lambda_parameter_prefix("ci"), "/runway/ci/jit/lambda");
        assert_eq!(records_path("ci"), "/runway/ci/jit/lambda/runners");
        assert_eq!(default_lambda_function("ci"), "ci-lambda-runner");
    }

    #[test]
    fn pool_settings_are_checked() {
        let mut config = LambdaPoolConfig::new("ci");
        assert!(config.validate().is_ok());
        config.function =
            "arn:aws:lambda:us-east-1:123456789012:function:ci-lambda-runner:live".into();
        assert!(config.validate().is_ok());
        config.function = "has space".into();
        assert_eq!(config.problems()[0].0, "function");
        config.function = "ok".into();
        config.timeout = Some(Duration::from_secs(901));
        assert_eq!(config.problems()[0].0, "timeout_seconds");
        config.timeout = Some(Duration::from_secs(900));
        config.stack = "-bad".into();
        assert_eq!(config.problems()[0].0, "");
    }

    proptest::proptest! {
        #[test]
        fn function_refs_are_plain(function in "[ -~]{0,40}") {
            if is_lambda_function_ref(&function) {
                proptest::prop_assert!(!function.contains(' ') && !function.contains('/'));
            }
        }
    }
}
