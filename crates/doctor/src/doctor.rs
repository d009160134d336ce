//! The checks in order, on one stack.

use std::sync::Arc;

use runway_clock::SharedClock;
use runway_config::{Document, Host, ReadOptions};
use runway_setup::{
    ConfigSource, CredentialSource, GitHubAuth, StackSettings, WebhookSecretSource, WebhookSettings,
};
use runway_webhook::WebhookSecrets;

use crate::cache::{CacheObjects, S3CacheObjects, check_runner_cache};
use crate::functions::{FunctionConfig, Functions, check_functions};
use crate::github::{AppHooks, RestAppHooks, check_credentials, check_github_hook, read_source};
use crate::pools::{AwsImages, Images, check_pools};
use crate::secrets::{AwsSecrets, Secrets};
use crate::stack::{CloudFormationStacks, StackView, Stacks, check_stack};
use crate::webhook::{HttpWebhooks, PingContext, Webhooks, check_webhook_ping};
use crate::{AwsFunctions, DoctorError, Finding, Report};

/// The outside systems the checks look at.
#[derive(Clone)]
pub struct Doctor {
    pub stacks: Arc<dyn Stacks>,
    pub functions: Arc<dyn Functions>,
    pub secrets: Arc<dyn Secrets>,
    pub webhooks: Arc<dyn Webhooks>,
    pub hooks: Arc<dyn AppHooks>,
    pub images: Arc<dyn Images>,
    pub cache: Arc<dyn CacheObjects>,
}

impl Doctor {
    /// The doctor on AWS (`aws`'s region and credentials) and GitHub.
    pub fn aws(aws: &aws_config::SdkConfig, clock: SharedClock) -> Result<Doctor, DoctorError> {
        // An endpoint override (a local S3) serves buckets by path, not by host name.
        let path_style = aws.endpoint_url().is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws)
                .force_path_style(path_style)
                .build(),
        );
        Ok(Doctor {
            stacks: Arc::new(CloudFormationStacks::new(
                aws_sdk_cloudformation::Client::new(aws),
            )),
            functions: Arc::new(AwsFunctions::new(aws_sdk_lambda::Client::new(aws))),
            secrets: Arc::new(AwsSecrets::new(aws.clone())),
            webhooks: Arc::new(HttpWebhooks::new()?),
            hooks: Arc::new(RestAppHooks::new(clock)),
            images: Arc::new(AwsImages::new(
                aws_sdk_ec2::Client::new(aws),
                aws_sdk_ssm::Client::new(aws),
            )),
            cache: Arc::new(S3CacheObjects::new(s3)),
        })
    }

    /// Runs every check on `stack`.
    pub async fn examine(&self, stack: &str) -> Report {
        let mut findings = Vec::new();
        let view = match self.stacks.describe(stack).await {
            Ok(view) => view,
            Err(error) => {
                findings.push(Finding::fail(
                    "stack",
                    format!("cannot describe {stack}: {error}"),
                    "check the credentials (aws sts get-caller-identity); the doctor needs \
                     cloudformation:DescribeStacks and DescribeStackResources",
                ));
                return report(stack, findings);
            }
        };
        findings.push(check_stack(stack, view.as_ref()));
        let Some(view) = view else {
            return report(stack, findings);
        };
        if matches!(
            view.status.as_str(),
            "ROLLBACK_COMPLETE" | "DELETE_COMPLETE"
        ) {
            return report(stack, findings);
        }
        let (function_findings, configs) =
            check_functions(self.functions.as_ref(), &view.functions).await;
        findings.extend(function_findings);
        let settings = stack_settings(&configs);
        let settings = match settings {
            Ok(settings) => settings,
            Err(problem) => {
                findings.push(Finding::fail(
                    "settings",
                    problem,
                    "the stack's parameters give the functions their settings: fix the one \
                     named and deploy again (sam deploy)",
                ));
                findings.push(self.runner_cache(&view, None).await);
                return report(stack, findings);
            }
        };
        let setup_url = view.output("SetupUrl");
        let (credentials, facts) = check_credentials(
            self.secrets.as_ref(),
            &settings.github,
            &settings.github_api_url,
            setup_url,
        )
        .await;
        findings.push(credentials);
        let webhook_function = configs
            .iter()
            .find(|config| config.handler.as_deref() == Some("webhook"));
        let secret = self
            .webhook_secret(webhook_function, facts.stored_app.as_ref())
            .await;
        let (secrets, location, advice) = match &secret {
            Ok(secret) => (
                secret.secrets.as_ref(),
                secret.location.as_str(),
                secret.advice.as_str(),
            ),
            Err(problem) => {
                findings.push(Finding::fail(
                    "webhook secret",
                    problem.clone(),
                    "store the webhook secret where the stack's WebhookSecretParameter (or \
                     WebhookSecretArn) says, or finish setup (the SetupUrl output)",
                ));
                (
                    None,
                    "the stack's webhook secret",
                    "see the webhook secret finding",
                )
            }
        };
        let context = PingContext {
            secrets,
            secret_location: location,
            function: webhook_function.map(|config| config.name.as_str()),
            setup_url,
        };
        findings.push(
            check_webhook_ping(self.webhooks.as_ref(), view.output("WebhookUrl"), &context).await,
        );
        match (&facts.app, &settings.github) {
            (Some(app), _) => findings.extend(
                check_github_hook(self.hooks.as_ref(), app, view.output("WebhookUrl"), advice)
                    .await,
            ),
            (None, GitHubAuth::Token(_)) => findings.push(Finding::warn(
                "github webhook",
                "runway uses a token, not an App: GitHub's side of the webhook is the \
                 repository's or organization's",
                format!(
                    "check it in the repository's or organization's Settings → Webhooks: \
                     Payload URL {}, content type application/json, the stack's secret",
                    view.output("WebhookUrl")
                        .unwrap_or("(the WebhookUrl output)")
                ),
            )),
            // No App: the credentials finding has said why.
            (None, _) => {}
        }
        findings.extend(self.pools(stack, &settings).await);
        findings.push(
            self.runner_cache(&view, settings.runner_cache_bucket.as_deref())
                .await,
        );
        report(stack, findings)
    }

    async fn runner_cache(&self, view: &StackView, from_settings: Option<&str>) -> Finding {
        let bucket = view.output("RunnerCacheBucketName").or(from_settings);
        check_runner_cache(self.cache.as_ref(), bucket).await
    }

    /// The pools as the functions read them.
    async fn pools(&self, stack: &str, settings: &StackSettings) -> Vec<Finding> {
        const CHECK: &str = "pools";
        let options = ReadOptions::for_stack(Host::Lambda, stack);
        let (text, from) = match &settings.config {
            ConfigSource::Inline(text) => {
                (Ok(text.clone()), "the RunwayConfig parameter".to_owned())
            }
            ConfigSource::Parameter(name) => (
                self.secrets.read(name).await,
                format!("SSM parameter {name}"),
            ),
        };
        let document = text
            .map_err(|error| error.to_string())
            .and_then(|text| Document::from_json(&text, &options).map_err(|e| e.to_string()));
        let document = match document {
            Ok(document) => document,
            Err(problem) => {
                return vec![Finding::fail(
                    CHECK,
                    format!("the configuration in {from}: {problem}"),
                    "check it (runway config check FILE), then store it there and update the \
                     stack",
                )];
            }
        };
        match settings.ec2_pools(&document) {
            Ok(pools) if pools.is_empty() => vec![Finding::ok(CHECK, "no EC2 pools")],
            Ok(pools) => check_pools(self.images.as_ref(), &pools).await,
            Err(problem) => vec![Finding::fail(
                CHECK,
                format!("the configuration in {from}: {problem}"),
                "fix the pool it names (runway config check FILE) and update the stack",
            )],
        }
    }

    async fn webhook_secret(
        &self,
        function: Option<&FunctionConfig>,
        stored_app: Option<&runway_app_setup::StoredApp>,
    ) -> Result<WebhookSecret, String> {
        let Some(function) = function else {
            return Err("the stack has no webhook function".to_owned());
        };
        let settings =
            WebhookSettings::from_lookup(&|name| function.environment.get(name).cloned())
                .map_err(|error| error.to_string())?;
        match settings.secret {
            WebhookSecretSource::SetupApp(arn) => {
                let advice = format!(
                    "runway keeps it in {arn} (aws secretsmanager get-secret-value --secret-id \
                     {arn} --query SecretString --output text: its webhook_secret)"
                );
                let location = format!("the GitHub App secret {arn}");
                let secrets = match stored_app {
                    Some(app) => Some(
                        WebhookSecrets::from_stored(&app.webhook_secret)
                            .map_err(|error| format!("{location}: {error}"))?,
                    ),
                    // Setup pending: the ping goes unsigned and is told so.
                    None => None,
                };
                Ok(WebhookSecret {
                    secrets,
                    location,
                    advice,
                })
            }
            WebhookSecretSource::Stored(source) => {
                let location = crate::github::location(&source);
                let text = read_source(self.secrets.as_ref(), &source)
                    .await
                    .map_err(|error| error.to_string())?;
                let secrets = WebhookSecrets::from_stored(&text)
                    .map_err(|error| format!("{location}: {error}"))?;
                let advice = match &source {
                    CredentialSource::Parameter(name) => format!(
                        "read it with aws ssm get-parameter --name {name} --with-decryption \
                         --query Parameter.Value --output text"
                    ),
                    CredentialSource::Secret(arn) => format!(
                        "read it with aws secretsmanager get-secret-value --secret-id {arn} \
                         --query SecretString --output text"
                    ),
                    CredentialSource::Value(_) => {
                        "it is in the webhook function's environment".into()
                    }
                };
                Ok(WebhookSecret {
                    secrets: Some(secrets),
                    location,
                    advice,
                })
            }
            WebhookSecretSource::Given { current, previous } => {
                let mut secrets =
                    WebhookSecrets::new(current.as_bytes()).map_err(|e| e.to_string())?;
                if let Some(previous) = previous {
                    secrets = secrets
                        .with_previous(previous.as_bytes())
                        .map_err(|e| e.to_string())?;
                }
                Ok(WebhookSecret {
                    secrets: Some(secrets),
                    location: "the webhook function's RUNWAY_WEBHOOK_SECRET".into(),
                    advice: "it is the webhook function's RUNWAY_WEBHOOK_SECRET".into(),
                })
            }
        }
    }
}

/// The webhook's secret and how to talk about it.
struct WebhookSecret {
    secrets: Option<WebhookSecrets>,
    location: String,
    advice: String,
}

/// The stack's settings as the job steps read them (every function but the webhook and the
/// setup pages has the template's whole environment).
fn stack_settings(configs: &[FunctionConfig]) -> Result<StackSettings, String> {
    let preferred = ["provision", "route", "reap"];
    let function = preferred
        .iter()
        .find_map(|handler| {
            configs
                .iter()
                .find(|c| c.handler.as_deref() == Some(*handler))
        })
        .ok_or_else(|| {
            "the stack has no provision, route or reap function to read settings from".to_owned()
        })?;
    StackSettings::from_lookup(&|name| function.environment.get(name).cloned())
        .map_err(|error| format!("{}'s settings: {error}", function.name))
}

fn report(stack: &str, findings: Vec<Finding>) -> Report {
    Report {
        stack: stack.to_owned(),
        findings,
    }
}
