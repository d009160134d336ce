//! Credentials from Secrets Manager and policies from S3 by version, on moto: the settings as
//! the template sets them, the job flow built from them, and a step run through `handle`.

mod common;

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use common::{CONFIG, settings as settings_from};
use lambda_runtime::{Context, LambdaEvent};
use runway_jobflow::Step;
use runway_lambda_support::{
    CONFIG_ENV, GITHUB_API_URL_ENV, GITHUB_APP_ID_ENV, GITHUB_CREDENTIAL_PARAMETER_ENV,
    GITHUB_INSTALLATION_ID_ENV, PolicyLocation, ROUTER_POLICY_ENV, SetupError, StackSettings,
    TABLE_ENV, build_flow, handle, read_credential,
};
use runway_testkit::MotoServer;
use serde_json::Value;

fn settings(pairs: &[(&str, &str)]) -> StackSettings {
    settings_from(pairs).unwrap()
}

async fn table(moto: &MotoServer, name: &str) {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    runway_store::create_table(&client, name).await.unwrap();
}

fn route_event() -> LambdaEvent<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sam/events/route.json");
    let payload = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    LambdaEvent::new(payload, Context::default())
}

// ---- Secrets Manager ----------------------------------------------------------------------

async fn create_secret(moto: &MotoServer, name: &str, value: Option<&str>) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let mut request = client.create_secret().name(name);
    request = match value {
        Some(text) => request.secret_string(text),
        None => request.secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            b"\x00\x01".to_vec(),
        )),
    };
    request.send().await.unwrap().arn.unwrap()
}

#[tokio::test]
async fn a_credential_is_read_from_the_secret_its_arn_names_and_from_ssm_otherwise() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let arn = create_secret(
        moto,
        "sources/github-token",
        Some("ghp_from_secrets_manager"),
    )
    .await;
    assert!(arn.starts_with("arn:aws:secretsmanager:"), "{arn}");
    assert_eq!(
        read_credential(&aws, &arn).await.unwrap(),
        "ghp_from_secrets_manager"
    );

    aws_sdk_ssm::Client::new(&aws)
        .put_parameter()
        .name("/sources/webhook-secret")
        .value("from-ssm")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_credential(&aws, "/sources/webhook-secret")
            .await
            .unwrap(),
        "from-ssm"
    );
}

#[tokio::test]
async fn the_app_key_comes_from_secrets_manager_when_the_setting_is_a_secret_arn() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "sources-app-key").await;
    let aws = moto.sdk_config().await;
    // What the setup does with the secret's value shows that it was read: a value that is
    // not a PEM key fails as one.
    let arn = create_secret(moto, "sources/app-key", Some("not a pem")).await;
    let app = |location: &str| {
        settings(&[
            (TABLE_ENV, "sources-app-key"),
            (CONFIG_ENV, CONFIG),
            (GITHUB_APP_ID_ENV, "1"),
            (GITHUB_INSTALLATION_ID_ENV, "2"),
            (GITHUB_CREDENTIAL_PARAMETER_ENV, location),
        ])
    };
    let error = build_flow(&app(&arn), &aws).await.unwrap_err();
    assert!(
        matches!(error, SetupError::GitHub(ref reason) if reason.contains("private key")),
        "{error}"
    );

    let token_arn = create_secret(moto, "sources/token", Some("ghp_token")).await;
    let token = settings(&[
        (TABLE_ENV, "sources-app-key"),
        (CONFIG_ENV, CONFIG),
        (GITHUB_CREDENTIAL_PARAMETER_ENV, &token_arn),
        (GITHUB_API_URL_ENV, "http://127.0.0.1:9"),
    ]);
    build_flow(&token, &aws).await.unwrap();
}

#[tokio::test]
async fn a_missing_empty_or_binary_secret_is_an_error_naming_it_and_the_fix() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sources/none-AbCdEf";
    let error = read_credential(&aws, missing).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, SetupError::Secret { id, .. } if id == missing),
        "{text}"
    );
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains("full ARN"), "{text}");

    let empty = create_secret(moto, "sources/empty", Some("  ")).await;
    let text = read_credential(&aws, &empty).await.unwrap_err().to_string();
    assert!(
        text.contains(&empty) && text.contains("it is empty"),
        "{text}"
    );

    let binary = create_secret(moto, "sources/binary", None).await;
    let text = read_credential(&aws, &binary)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("binary data"), "{text}");

    // The job flow stops at start with the same error.
    table(moto, "sources-missing").await;
    let error = build_flow(
        &settings(&[
            (TABLE_ENV, "sources-missing"),
            (CONFIG_ENV, CONFIG),
            (GITHUB_CREDENTIAL_PARAMETER_ENV, missing),
        ]),
        &aws,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, SetupError::Secret { .. }), "{error}");
}

// ---- Policies from S3 ---------------------------------------------------------------------

fn policy_file(name: &str) -> Vec<u8> {
    runway_testkit::built_policy_bytes(name).unwrap()
}

struct Bucket {
    s3: aws_sdk_s3::Client,
    name: String,
}

impl Bucket {
    async fn versioned(moto: &MotoServer, name: &str) -> Bucket {
        let aws = moto.sdk_config().await;
        let config = aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(config);
        s3.create_bucket().bucket(name).send().await.unwrap();
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        Bucket {
            s3,
            name: name.to_owned(),
        }
    }

    /// Uploads `bytes` at `key`; the new version's id.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> String {
        self.s3
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap()
            .version_id
            .expect("a versioned bucket gives each upload a version id")
    }

    fn location(&self, key: &str, version: &str) -> String {
        format!("s3://{}/{key}?versionId={version}", self.name)
    }
}

fn router_settings(table: &str, location: &str, cache: &Path) -> StackSettings {
    let mut read = settings(&[
        (TABLE_ENV, table),
        (CONFIG_ENV, CONFIG),
        ("RUNWAY_GITHUB_TOKEN", "ghp_sample"),
        (ROUTER_POLICY_ENV, location),
    ]);
    assert!(matches!(read.router_policy, Some(PolicyLocation::S3(_))));
    read.policy_cache_dir = cache.to_owned();
    read
}

/// The route step's decision with the router policy at `location`.
async fn route_with(
    moto: &MotoServer,
    table: &str,
    location: &str,
    cache: &Path,
) -> Result<Value, SetupError> {
    let flow = build_flow(
        &router_settings(table, location, cache),
        &moto.sdk_config().await,
    )
    .await?;
    Ok(handle(&flow, Step::Route, route_event()).await.unwrap())
}

fn assert_labels_router_decided(route: &Value) {
    assert_eq!(route["decision"], "run", "{route}");
    assert_eq!(route["fallback"], false, "{route}");
    // The labels-router's own wording, not the built-in matching's.
    assert!(
        route["reason"].as_str().unwrap().contains("extra label"),
        "{route}"
    );
}

#[tokio::test]
async fn the_pinned_version_is_loaded_not_the_latest_upload() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "sources-s3-version").await;
    let bucket = Bucket::versioned(moto, "sources-policy-versions").await;
    let v1 = bucket
        .put("router.wasm", policy_file("labels-router.wasm"))
        .await;
    // A later upload at the same key: a throttle, which cannot route.
    let v2 = bucket
        .put("router.wasm", policy_file("business-hours.wasm"))
        .await;
    assert_ne!(v1, v2);
    let cache = tempfile::tempdir().unwrap();

    let route = route_with(
        moto,
        "sources-s3-version",
        &bucket.location("router.wasm", &v1),
        cache.path(),
    )
    .await
    .unwrap();
    assert_labels_router_decided(&route);

    let v2_location = bucket.location("router.wasm", &v2);
    let error = route_with(moto, "sources-s3-version", &v2_location, cache.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&v2_location), "{error}");
    assert!(error.contains("router"), "{error}");
}

#[tokio::test]
async fn a_wrong_version_or_key_is_an_error_that_says_where_to_look() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "sources-s3-wrong").await;
    let bucket = Bucket::versioned(moto, "sources-policy-wrong").await;
    bucket
        .put("router.wasm", policy_file("labels-router.wasm"))
        .await;
    let cache = tempfile::tempdir().unwrap();

    let wrong_version = bucket.location("router.wasm", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY");
    let error = route_with(moto, "sources-s3-wrong", &wrong_version, cache.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&wrong_version), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains("list-object-versions"), "{error}");

    let wrong_key = bucket.location("routr.wasm", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY");
    let error = route_with(moto, "sources-s3-wrong", &wrong_key, cache.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&wrong_key), "{error}");
    assert!(error.contains("routr.wasm"), "{error}");
}

#[tokio::test]
async fn a_fetched_version_is_loaded_from_the_cache_without_s3() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "sources-s3-cache").await;
    let bucket = Bucket::versioned(moto, "sources-policy-cache").await;
    let bytes = policy_file("labels-router.wasm");
    let version = bucket.put("router.wasm", bytes.clone()).await;
    let location = bucket.location("router.wasm", &version);
    let cache = tempfile::tempdir().unwrap();

    assert_labels_router_decided(
        &route_with(moto, "sources-s3-cache", &location, cache.path())
            .await
            .unwrap(),
    );
    // Kept by content hash.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(
        std::fs::read(cache.path().join(format!("{hash}.wasm"))).unwrap(),
        bytes
    );

    // The version is gone from S3: only the cache can supply it now.
    bucket
        .s3
        .delete_object()
        .bucket(&bucket.name)
        .key("router.wasm")
        .version_id(&version)
        .send()
        .await
        .unwrap();
    assert_labels_router_decided(
        &route_with(moto, "sources-s3-cache", &location, cache.path())
            .await
            .unwrap(),
    );
    // With an empty cache the same location fails: the second load did not call S3.
    let empty = tempfile::tempdir().unwrap();
    let error = route_with(moto, "sources-s3-cache", &location, empty.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("does not exist"), "{error}");
}

#[tokio::test]
async fn a_sha256_pin_must_match_the_object_and_a_tampered_cache_is_not_used() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    table(moto, "sources-s3-pin").await;
    let bucket = Bucket::versioned(moto, "sources-policy-pin").await;
    let bytes = policy_file("labels-router.wasm");
    let version = bucket.put("router.wasm", bytes.clone()).await;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let cache = tempfile::tempdir().unwrap();

    let wrong = format!(
        "{}&sha256={}",
        bucket.location("router.wasm", &version),
        "0".repeat(64)
    );
    let error = route_with(moto, "sources-s3-pin", &wrong, cache.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&format!("its SHA-256 is {hash}")), "{error}");

    let pinned = format!("{}&sha256={hash}", bucket.location("router.wasm", &version));
    // A cached file whose bytes do not match its name is ignored and fetched again.
    std::fs::write(cache.path().join(format!("{hash}.wasm")), b"tampered").unwrap();
    assert_labels_router_decided(
        &route_with(moto, "sources-s3-pin", &pinned, cache.path())
            .await
            .unwrap(),
    );
    assert_eq!(
        std::fs::read(cache.path().join(format!("{hash}.wasm"))).unwrap(),
        bytes
    );
}
