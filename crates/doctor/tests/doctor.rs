//! `runway doctor` on stacks deployed in moto (127.0.0.1): a CloudFormation stack whose
//! outputs carry runway's keys (`WebhookUrl`, `GitHubAppSecretArn`, `SetupUrl`,
//! `RunnerCacheBucketName`) and whose Lambda functions carry runway's environment, pointing
//! at secrets, parameters, a bucket, an AMI and subnets made in moto; the webhook is
//! runway's own (`runway_setup::build_webhook` on the webhook function's environment) served
//! on 127.0.0.1; GitHub is the emulator.
//!
//! Where this is not AWS: moto's Lambda runs no code here (no Docker), so invocations are
//! answered by [`InProcessLambda`]: the settings each entry point reads at start
//! (`StackSettings`, `WebhookSettings`) read from the function's environment as moto stores
//! it, and Lambda's answer shapes. What the real executable answers to the doctor's events
//! is tested in `handlers/lambda/tests/runtime_api.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::HeaderMap;
use runway_app_setup::StoredApp;
use runway_doctor::{
    AwsFunctions, Doctor, DoctorError, FunctionConfig, Functions, Invoked, Report, Status,
};
use runway_github_emulator::{
    AppConfig, Emulator, EmulatorConfig, EmulatorHandle, NewJob, WebhookTarget,
};
use runway_setup::{StackSettings, Webhook, WebhookSettings, build_webhook_with};
use runway_testkit::MotoServer;
use runway_webhook::Delivery;
use serde_json::{Value, json};

const APP_KEY: &str = include_str!("../../github-emulator/tests/data/app-private-key.pem");
const APP_PUBLIC_KEY: &str = include_str!("../../github-emulator/tests/data/app-public-key.pem");
const WEBHOOK_SECRET: &str = "the-stack-webhook-secret";

/// Lambda's invocations, answered in this process from the function's stored settings.
struct InProcessLambda {
    aws: AwsFunctions,
}

#[async_trait]
impl Functions for InProcessLambda {
    async fn configuration(&self, name: &str) -> Result<FunctionConfig, DoctorError> {
        self.aws.configuration(name).await
    }

    async fn invoke(&self, name: &str, payload: &[u8]) -> Result<Invoked, DoctorError> {
        let config = self.aws.configuration(name).await?;
        let env = config.environment.clone();
        let lookup = move |key: &str| env.get(key).cloned();
        let handler = config.handler.unwrap_or_default();
        let event: Value = serde_json::from_slice(payload).unwrap();
        let started = match handler.as_str() {
            "webhook" => WebhookSettings::from_lookup(&lookup).map(|_| ()),
            _ => StackSettings::from_lookup(&lookup).map(|_| ()),
        };
        Ok(match started {
            // What Lambda answers when the runtime exits during init.
            Err(error) => Invoked {
                function_error: Some("Unhandled".into()),
                payload: json!({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": format!("RequestId: 1 Error: Runtime exited with error: exit status 1 ({error})"),
                })
                .to_string()
                .into_bytes(),
            },
            Ok(()) if handler == "webhook" => {
                assert_eq!(event["rawPath"], "/doctor", "{event}");
                Invoked {
                    function_error: None,
                    payload: json!({"statusCode": 400, "body": "{}"}).to_string().into_bytes(),
                }
            }
            Ok(()) => {
                assert_eq!(event, json!({"runway": "doctor"}));
                Invoked {
                    function_error: None,
                    payload: json!({"runway": "doctor", "handler": handler, "version": "0.1.0"})
                        .to_string()
                        .into_bytes(),
                }
            }
        })
    }
}

/// What a test stack is made of.
struct Deploy {
    tag: &'static str,
    /// The App secret's document: an App, or still pending.
    app_set_up: bool,
    /// The secret GitHub (the emulator) signs deliveries with.
    github_secret: &'static str,
    /// `Some(name)`: the webhook secret is this SSM parameter (no setup App) instead.
    webhook_parameter: bool,
    /// The pool's image; `None`: an AMI moto has.
    image: Option<&'static str>,
    cache_filled: bool,
    /// The provision function's table setting (empty: the function cannot start).
    table: &'static str,
}

impl Deploy {
    fn healthy(tag: &'static str) -> Deploy {
        Deploy {
            tag,
            app_set_up: true,
            github_secret: WEBHOOK_SECRET,
            webhook_parameter: false,
            image: None,
            cache_filled: true,
            table: "runway-doctor",
        }
    }
}

struct Deployed {
    doctor: Doctor,
    stack: String,
    emulator: EmulatorHandle,
    aws: aws_config::SdkConfig,
    webhook_parameter: String,
    bucket: String,
}

impl Deployed {
    async fn examine(&self) -> Report {
        let report = self.doctor.examine(&self.stack).await;
        println!("{}", report.to_text());
        report
    }
}

async fn aws() -> aws_config::SdkConfig {
    MotoServer::shared()
        .expect("moto starts (run scripts/setup.sh)")
        .sdk_config()
        .await
}

/// A template with runway's output keys and three of its functions.
fn template() -> Value {
    let parameter = |name: &str| (name.to_owned(), json!({"Type": "String", "Default": ""}));
    let names = [
        "AppSecretArn",
        "WebhookUrl",
        "SetupUrl",
        "Bucket",
        "Config",
        "Subnets",
        "Table",
        "WebhookSecretParameter",
    ];
    let parameters: serde_json::Map<String, Value> = names.iter().map(|n| parameter(n)).collect();
    let r = |name: &str| json!({"Ref": name});
    let function = |handler: &str, variables: Value| {
        json!({
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": handler,
                "Runtime": "provided.al2023",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "bootstrap"},
                "Environment": {"Variables": variables},
            }
        })
    };
    let stack_env = json!({
        "RUNWAY_STACK": {"Ref": "AWS::StackName"},
        "RUNWAY_TABLE": r("Table"),
        "RUNWAY_CONFIG": r("Config"),
        "RUNWAY_GITHUB_APP_SECRET": r("AppSecretArn"),
        "RUNWAY_RUNNER_CACHE_BUCKET": r("Bucket"),
        "RUNWAY_RUNNER_SUBNETS": r("Subnets"),
    });
    json!({
        "Parameters": parameters,
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
                }}
            },
            "ProvisionFunction": function("provision", stack_env.clone()),
            "ReapFunction": function("reap", stack_env),
            "WebhookFunction": function("webhook", json!({
                "RUNWAY_TABLE": "runway-doctor",
                "RUNWAY_JOB_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:runway-doctor-job",
                "RUNWAY_WEBHOOK_SECRET_PARAMETER": r("WebhookSecretParameter"),
                "RUNWAY_GITHUB_APP_SECRET": r("AppSecretArn"),
            })),
        },
        "Outputs": {
            "WebhookUrl": {"Value": r("WebhookUrl")},
            "SetupUrl": {"Value": r("SetupUrl")},
            "GitHubAppSecretArn": {"Value": r("AppSecretArn")},
            "RunnerCacheBucketName": {"Value": r("Bucket")},
        }
    })
}

/// Serves runway's webhook, built from `env` as the webhook function builds it.
async fn serve_webhook(
    aws: &aws_config::SdkConfig,
    env: &BTreeMap<String, String>,
    listener: tokio::net::TcpListener,
    setup_url: String,
) {
    let lookup = |key: &str| env.get(key).cloned();
    let settings = WebhookSettings::from_lookup(&lookup).unwrap();
    // The App secret read on every delivery, as after the function's cache expires.
    let webhook: Webhook = build_webhook_with(&settings, aws, &lookup, Duration::ZERO)
        .await
        .unwrap();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (webhook, setup_url) = (webhook.clone(), setup_url.clone());
            async move {
                let answer = webhook.handle(Delivery { headers, body }, &setup_url).await;
                (
                    axum::http::StatusCode::from_u16(answer.status.as_u16()).unwrap(),
                    answer.body(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
}

async fn deploy(spec: Deploy) -> Deployed {
    let aws = aws().await;
    let stack = format!("doctor-{}", spec.tag);
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build(),
    );
    let ec2 = aws_sdk_ec2::Client::new(&aws);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let webhook_url = format!("{base}/webhook");
    let setup_url = format!("{base}/setup");

    let emulator = Emulator::start(EmulatorConfig {
        repositories: vec!["octo-org/app".into()],
        organizations: vec!["octo-org".into()],
        app: AppConfig {
            public_key_pem: Some(APP_PUBLIC_KEY.into()),
            ..AppConfig::default()
        },
        webhook: Some(WebhookTarget {
            url: webhook_url.clone(),
            secret: spec.github_secret.into(),
        }),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();

    let app = StoredApp {
        app_id: emulator.app().app_id,
        slug: emulator.app().slug,
        html_url: format!("{}/apps/runway", emulator.base_url()),
        api_url: emulator.api_url().to_owned(),
        private_key: APP_KEY.into(),
        webhook_secret: WEBHOOK_SECRET.into(),
    };
    let document = if spec.app_set_up {
        app.to_json()
    } else {
        StoredApp::PENDING.to_owned()
    };
    let app_secret = secrets
        .create_secret()
        .name(format!("{stack}/github-app"))
        .secret_string(document)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();

    let webhook_parameter = format!("/{stack}/webhook-secret");
    if spec.webhook_parameter {
        ssm.put_parameter()
            .name(&webhook_parameter)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(WEBHOOK_SECRET)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    let bucket = format!("{stack}-runner-cache");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    if spec.cache_filled {
        let key = "runners/2.321.0/actions-runner-linux-x64-2.321.0.tar.gz";
        let package = vec![7_u8; 1024];
        let manifest = json!({"version": "2.321.0", "platforms": {"linux-x64": {
            "key": key, "sha256": "a".repeat(64), "size": package.len()}}});
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(package.into())
            .send()
            .await
            .unwrap();
        s3.put_object()
            .bucket(&bucket)
            .key("runners/latest.json")
            .body(manifest.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
    }

    let image = match spec.image {
        Some(image) => image.to_owned(),
        None => ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap()
            .images()
            .iter()
            .find_map(|image| image.image_id().map(str::to_owned))
            .expect("moto has Amazon's images"),
    };
    let subnet = ec2
        .describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets()
        .first()
        .and_then(|subnet| subnet.subnet_id().map(str::to_owned))
        .expect("moto's default VPC has subnets");
    let config = json!({"github": {"scope": "repository"}, "pools": [{
        "name": "linux", "labels": ["self-hosted"], "image": image,
        "instance_types": ["c7g.large"], "max_running": 2}]});

    let parameters = [
        ("AppSecretArn", app_secret.clone()),
        ("WebhookUrl", webhook_url.clone()),
        ("SetupUrl", setup_url.clone()),
        ("Bucket", bucket.clone()),
        ("Config", config.to_string()),
        ("Subnets", subnet),
        ("Table", spec.table.to_owned()),
        (
            "WebhookSecretParameter",
            if spec.webhook_parameter {
                webhook_parameter.clone()
            } else {
                String::new()
            },
        ),
    ];
    let cloudformation = aws_sdk_cloudformation::Client::new(&aws);
    let mut create = cloudformation
        .create_stack()
        .stack_name(&stack)
        .template_body(template().to_string());
    for (key, value) in &parameters {
        create = create.parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(*key)
                .parameter_value(value)
                .build(),
        );
    }
    create.send().await.unwrap();

    // The webhook, from the webhook function's environment as deployed.
    let functions = AwsFunctions::new(aws_sdk_lambda::Client::new(&aws));
    let view = runway_doctor::CloudFormationStacks::new(cloudformation.clone());
    let described = runway_doctor::Stacks::describe(&view, &stack)
        .await
        .unwrap()
        .unwrap();
    let mut webhook_env = None;
    for name in &described.functions {
        let config = functions.configuration(name).await.unwrap();
        if config.handler.as_deref() == Some("webhook") {
            webhook_env = Some(config.environment);
        }
    }
    serve_webhook(
        &aws,
        &webhook_env.expect("a webhook function"),
        listener,
        setup_url,
    )
    .await;

    let mut doctor = Doctor::aws(&aws, runway_clock::SystemClock::shared()).unwrap();
    doctor.functions = Arc::new(InProcessLambda { aws: functions });
    Deployed {
        doctor,
        stack,
        emulator,
        aws,
        webhook_parameter,
        bucket,
    }
}

fn assert_status(report: &Report, check: &str, status: Status) -> String {
    let finding = report
        .finding(check)
        .unwrap_or_else(|| panic!("no {check} finding:\n{}", report.to_text()));
    assert_eq!(finding.status, status, "{}", report.to_text());
    finding.fix.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_stack_passes_every_check() {
    let deployed = deploy(Deploy::healthy("healthy")).await;
    let report = deployed.examine().await;
    assert!(!report.failed(), "{}", report.to_text());
    for check in [
        "stack",
        "functions",
        "github app",
        "webhook",
        "github webhook",
        "github deliveries",
        "pool linux",
        "runner cache",
    ] {
        assert_status(&report, check, Status::Ok);
    }
    let functions = report.finding("functions").unwrap();
    assert!(
        functions
            .found
            .starts_with("3 function(s) started (runway 0.1.0)"),
        "{functions:?}"
    );
    assert!(
        report
            .finding("webhook")
            .unwrap()
            .found
            .contains("answered 200")
    );
    assert!(
        report
            .finding("runner cache")
            .unwrap()
            .found
            .contains("runner 2.321.0 for linux-x64")
    );
    let json = report.to_json();
    assert_eq!(json["failed"], false);
    assert_eq!(json["counts"]["fail"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_whose_setup_is_pending_sends_the_deployer_to_the_setup_page() {
    let deployed = deploy(Deploy {
        app_set_up: false,
        ..Deploy::healthy("pending")
    })
    .await;
    let report = deployed.examine().await;
    assert!(report.failed());
    let fix = assert_status(&report, "github app", Status::Fail);
    assert!(
        fix.starts_with("open the SetupUrl output (http://127.0.0.1:"),
        "{fix}"
    );
    assert!(fix.contains("SetupTokenCommand"), "{fix}");
    // The real webhook answers 503 not_set_up until then.
    let fix = assert_status(&report, "webhook", Status::Fail);
    assert!(fix.contains("/setup and make the App"), "{fix}");
    assert!(
        report.finding("github webhook").is_none(),
        "no App to ask GitHub as"
    );
    assert_status(&report, "runner cache", Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_secret_other_than_the_stacks_fails_the_deliveries_check_with_the_fix() {
    let deployed = deploy(Deploy {
        github_secret: "what-github-was-given",
        ..Deploy::healthy("github-secret")
    })
    .await;
    // A job: GitHub delivers `queued`, signed with its secret; runway refuses it with 401.
    deployed
        .emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted"]))
        .unwrap();
    for _ in 0..100 {
        if deployed
            .emulator
            .deliveries()
            .iter()
            .any(|d| d.response_status.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = deployed.examine().await;
    assert!(report.failed());
    // The stack itself takes its own secret.
    assert_status(&report, "webhook", Status::Ok);
    assert_status(&report, "github webhook", Status::Ok);
    let finding = report.finding("github deliveries").unwrap();
    assert!(finding.found.contains("refused with 401"), "{finding:?}");
    let fix = assert_status(&report, "github deliveries", Status::Fail);
    assert!(
        fix.contains("/settings/apps/runway, set the Webhook secret to the stack's"),
        "{fix}"
    );
    assert!(
        fix.contains("aws secretsmanager get-secret-value --secret-id arn:aws:secretsmanager:"),
        "{fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_running_on_an_older_secret_fails_the_ping_with_the_restart() {
    let deployed = deploy(Deploy {
        webhook_parameter: true,
        ..Deploy::healthy("rotated")
    })
    .await;
    // The secret changes after the webhook function read it at start.
    aws_sdk_ssm::Client::new(&deployed.aws)
        .put_parameter()
        .name(&deployed.webhook_parameter)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value("a-newer-secret")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let report = deployed.examine().await;
    assert!(report.failed());
    let finding = report.finding("webhook").unwrap();
    assert!(finding.found.contains("(401)"), "{finding:?}");
    let fix = assert_status(&report, "webhook", Status::Fail);
    assert!(fix.contains("aws lambda update-function-configuration --function-name doctor-rotated-WebhookFunction"), "{fix}");
    assert!(
        fix.contains("{\"current\": \"NEW\", \"previous\": \"OLD\"}"),
        "{fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_and_an_empty_cache_each_say_what_to_do() {
    let deployed = deploy(Deploy {
        image: Some("ami-0000000000000dead"),
        cache_filled: false,
        ..Deploy::healthy("broken-pool")
    })
    .await;
    let report = deployed.examine().await;
    assert!(report.failed());
    let finding = report.finding("pool linux").unwrap();
    assert!(
        finding
            .found
            .contains("image ami-0000000000000dead does not exist"),
        "{finding:?}"
    );
    let fix = assert_status(&report, "pool linux", Status::Fail);
    assert!(fix.contains("set pool linux's ec2.image"), "{fix}");
    let fix = assert_status(&report, "runner cache", Status::Fail);
    assert_eq!(
        fix,
        format!(
            "fill it once: runway runner-cache sync --bucket {} (the stack's runner-cache \
             function then keeps it current every day)",
            deployed.bucket
        )
    );
    // Everything else is fine.
    assert_status(&report, "webhook", Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_cannot_start_is_named_with_its_log() {
    let deployed = deploy(Deploy {
        table: "",
        ..Deploy::healthy("no-table")
    })
    .await;
    let report = deployed.examine().await;
    assert!(report.failed());
    let fix = assert_status(&report, "function provision", Status::Fail);
    assert!(
        fix.contains("aws logs tail /aws/lambda/doctor-no-table-ProvisionFunction"),
        "{fix}"
    );
    let found = &report.finding("function provision").unwrap().found;
    assert!(found.contains("Runtime.ExitError"), "{found}");
    assert!(found.contains("RUNWAY_TABLE is not set"), "{found}");
    // The webhook has its own settings and starts.
    assert_status(&report, "functions", Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_that_does_not_exist_is_one_failure() {
    let aws = aws().await;
    let doctor = Doctor::aws(&aws, runway_clock::SystemClock::shared()).unwrap();
    let report = doctor.examine("doctor-nowhere").await;
    assert_eq!(report.findings.len(), 1, "{}", report.to_text());
    let fix = assert_status(&report, "stack", Status::Fail);
    assert!(fix.contains("sam deploy --guided"), "{fix}");
}
