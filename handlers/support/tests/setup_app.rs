//! Setup pending by default, on moto: with no webhook secret or GitHub credential given, the
//! functions start on the stack's App secret; the webhook answers 503 `not_set_up` with the
//! setup URL and the steps' GitHub says setup is pending, until the setup page stores the App.
//! Then, without a restart, deliveries signed with the App's webhook secret are taken and
//! GitHub is called as the App.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use runway_app_setup::{SetupStore, StoredApp};
use runway_github::{GitHub, GitHubError, RestGitHubOptions};
use runway_lambda_support::{
    AppSecret, GITHUB_APP_SECRET_ENV, JOB_STATE_MACHINE_ENV, SecretsManagerSetupStore,
    SetupAppGitHub, TABLE_ENV, Webhook, WebhookSecretSource, WebhookSettings, build_webhook_with,
};
use runway_testkit::MotoServer;
use runway_webhook::{Delivery, sign_with};
use serde_json::Value;

const SETUP_URL: &str = "https://api.example.test/setup";

async fn pending_secrets(aws: &aws_config::SdkConfig, name: &str) -> (String, String) {
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let create = |suffix: &str, value: &str| {
        client
            .create_secret()
            .name(format!("setup-app-tests/{name}/{suffix}"))
            .secret_string(value)
            .send()
    };
    let token = create("token", r#"{"status":"pending","token":"tok"}"#)
        .await
        .unwrap()
        .arn
        .unwrap();
    let app = create("app", r#"{"status":"pending"}"#)
        .await
        .unwrap()
        .arn
        .unwrap();
    (token, app)
}

fn fixture(name: &str) -> Value {
    let dir = runway_testkit::fixtures_dir().unwrap_or_else(|error| panic!("{error}"));
    let path = dir.join("github/webhooks/workflow_job").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn deliver(webhook: &Webhook, secret: &str, payload: &Value) -> Value {
    let body = serde_json::to_vec(payload).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", "workflow_job".parse().unwrap());
    headers.insert("x-github-delivery", "d-setup-app".parse().unwrap());
    headers.insert(
        "x-hub-signature-256",
        sign_with(secret.as_bytes(), &body).parse().unwrap(),
    );
    let answer = webhook
        .handle(
            Delivery {
                headers,
                body: Bytes::from(body),
            },
            SETUP_URL,
        )
        .await;
    let mut json: Value = serde_json::from_str(&answer.body()).unwrap();
    json["status"] = answer.status.as_u16().into();
    json
}

fn stored_app(webhook_secret: &str, api_url: &str, app_id: u64) -> StoredApp {
    StoredApp {
        app_id,
        slug: "runway-setup-app".into(),
        html_url: "https://github.com/apps/runway-setup-app".into(),
        api_url: api_url.into(),
        private_key: runway_github_emulator::MANIFEST_APP_PRIVATE_KEY.into(),
        webhook_secret: webhook_secret.into(),
    }
}

#[tokio::test]
async fn the_webhook_is_not_set_up_until_the_app_is_stored_then_takes_its_deliveries() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let table = "setup-app-webhook-test";
    runway_store::create_table(&aws_sdk_dynamodb::Client::new(&aws), table)
        .await
        .unwrap();
    let machine = aws_sdk_sfn::Client::new(&aws)
        .create_state_machine()
        .name("setup-app-webhook-test-job")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/runway-job")
        .send()
        .await
        .unwrap()
        .state_machine_arn
        .clone();
    let (token, app_secret) = pending_secrets(&aws, "webhook").await;
    // The stack's defaults: no webhook secret, no App id, no credential.
    let env: HashMap<String, String> = [
        (TABLE_ENV, table),
        (JOB_STATE_MACHINE_ENV, machine.as_str()),
        (GITHUB_APP_SECRET_ENV, app_secret.as_str()),
        ("RUNWAY_WEBHOOK_SECRET_PARAMETER", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let lookup = |name: &str| env.get(name).cloned();
    let settings = WebhookSettings::from_lookup(&lookup).unwrap();
    assert_eq!(
        settings.secret,
        WebhookSecretSource::SetupApp(app_secret.clone())
    );
    // Trusted for no time: each delivery reads the secret (the stack's functions: 30 s).
    let webhook = build_webhook_with(&settings, &aws, &lookup, Duration::ZERO)
        .await
        .expect("the webhook starts with setup pending");

    let queued = fixture("06-queued.json");
    let answer = deliver(&webhook, "whsec-setup", &queued).await;
    assert_eq!(answer["status"], 503, "{answer}");
    assert_eq!(answer["outcome"], "not_set_up", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains(SETUP_URL),
        "{answer}"
    );

    // The setup page stores the App.
    let store = SecretsManagerSetupStore::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &token,
        &app_secret,
    );
    store
        .save_app(&stored_app("whsec-setup", "https://api.github.com", 7))
        .await
        .unwrap();

    let answer = deliver(&webhook, "whsec-setup", &queued).await;
    assert_eq!(answer["outcome"], "started", "{answer}");
    let forged = deliver(&webhook, "another-secret", &queued).await;
    assert_eq!(forged["status"], 401, "{forged}");
}

#[tokio::test]
async fn the_steps_github_is_pending_until_the_app_is_stored_then_acts_as_it() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    let emulator =
        runway_github_emulator::Emulator::start(runway_github_emulator::EmulatorConfig {
            repositories: vec!["octo-org/app".to_owned()],
            organizations: vec!["octo-org".to_owned()],
            ..runway_github_emulator::EmulatorConfig::default()
        })
        .await
        .unwrap();
    let (token, app_secret) = pending_secrets(&aws, "github").await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let github = SetupAppGitHub::new(
        AppSecret::with_ttl(client.clone(), &app_secret, Duration::ZERO),
        None,
        runway_clock::SystemClock::shared(),
        RestGitHubOptions::default(),
    );
    let pending = github
        .installation_for("octo-org", "app")
        .await
        .unwrap_err();
    assert!(
        matches!(&pending, GitHubError::Config { message } if message.contains("not set up")),
        "{pending}"
    );

    let app_id = emulator.app().app_id;
    SecretsManagerSetupStore::new(client, &token, &app_secret)
        .save_app(&stored_app("whsec", emulator.api_url(), app_id))
        .await
        .unwrap();
    assert_eq!(
        github.installation_for("octo-org", "app").await.unwrap(),
        Some(emulator.app().installation_id),
        "called as the stored App"
    );
}
