//! The `runway-lambda` executable started as Lambda starts it, with the settings `sam local
//! invoke` gives it and AWS on moto: shared by the Runtime API tests and the cold-start bench.

// Each of the two uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use aws_sdk_ssm::types::ParameterType;
use runway_testkit::MotoServer;
use serde_json::Value;
use tokio::process::Command;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sample(name: &str) -> Value {
    let path = repo_root().join("sam/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The function environment `sam local invoke` gives every function (`sam/env.json`).
pub fn sam_environment() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("sam/env.json")).unwrap();
    let env: Value = serde_json::from_str(&text).unwrap();
    env["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect()
}

/// The executable with `_HANDLER=handler`, as Lambda starts it: the Runtime API's address,
/// the function's variables, credentials and an endpoint that lead to moto, nothing
/// inherited.
pub fn function_command(handler: &str, runtime_api: &str, moto: &MotoServer) -> Command {
    let mut command = match std::env::var("RUNWAY_LAMBDA_EXECUTABLE") {
        Ok(line) if !line.trim().is_empty() => {
            let mut words = line.split_whitespace();
            let mut command = Command::new(words.next().unwrap_or_default());
            command.args(words);
            command
        }
        _ => Command::new(env!("CARGO_BIN_EXE_runway-lambda")),
    };
    command
        .env_clear()
        .envs(sam_environment())
        .env("_HANDLER", handler)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("runway-{handler}"))
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/runway/test/{handler}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]0123")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// What sam/env.json points at, made on moto once per process.
pub async fn sam_resources(moto: &'static MotoServer) {
    static MADE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    MADE.get_or_init(|| async move {
        let env: std::collections::HashMap<String, String> =
            sam_environment().into_iter().collect();
        let aws = moto.sdk_config().await;
        runway_store::create_table(&aws_sdk_dynamodb::Client::new(&aws), &env["RUNWAY_TABLE"])
            .await
            .unwrap();
        aws_sdk_ssm::Client::new(&aws)
            .put_parameter()
            .name(&env["RUNWAY_GITHUB_CREDENTIAL_PARAMETER"])
            .value("ghp_sample")
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        let machine_arn = &env["RUNWAY_JOB_STATE_MACHINE_ARN"];
        let name = machine_arn.rsplit(':').next().unwrap();
        let created = aws_sdk_sfn::Client::new(&aws)
            .create_state_machine()
            .name(name)
            .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/runway-job")
            .send()
            .await
            .unwrap();
        assert_eq!(created.state_machine_arn(), machine_arn);
    })
    .await;
}
