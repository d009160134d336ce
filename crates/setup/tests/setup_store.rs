//! The setup store in Secrets Manager (moto): the documents the stack creates read back, the
//! App stored only over a pending one, so that of callbacks racing exactly one App is kept,
//! and the token spent once.

use std::sync::Arc;

use runway_app_setup::{SetupStore, StoreError, StoredApp, TokenState};
use runway_setup::SecretsManagerSetupStore;
use runway_testkit::MotoServer;

fn app(id: u64) -> StoredApp {
    StoredApp {
        app_id: id,
        slug: format!("runway-{id}"),
        html_url: format!("https://github.com/apps/runway-{id}"),
        api_url: "https://api.github.com".into(),
        private_key: format!("-----BEGIN RSA PRIVATE KEY-----\nkey-{id}"),
        webhook_secret: format!("whsec-{id}"),
    }
}

/// The two secrets as the stack creates them; their ARNs.
async fn stack_secrets(client: &aws_sdk_secretsmanager::Client, name: &str) -> (String, String) {
    let create = |suffix: &str, value: &str| {
        client
            .create_secret()
            .name(format!("setup-store-tests/{name}/{suffix}"))
            .secret_string(value)
            .send()
    };
    // What GenerateSecretString makes of the template's SecretStringTemplate.
    let token = create("token", r#"{"status":"pending","token":"AbC123xyz"}"#)
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

#[tokio::test]
async fn the_stack_s_documents_read_back_and_one_setup_is_kept() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let (token, app_secret) = stack_secrets(&client, "race").await;
    let store = SecretsManagerSetupStore::new(client.clone(), &token, &app_secret);

    assert_eq!(
        store.token().await.unwrap(),
        TokenState::Pending("AbC123xyz".into())
    );
    assert_eq!(store.app().await.unwrap(), None);

    // Eight callbacks at once, each with its own App, each through its own function
    // instance: exactly one is kept, the others are told so.
    let stores: Vec<Arc<SecretsManagerSetupStore>> = (0..8)
        .map(|_| {
            Arc::new(SecretsManagerSetupStore::new(
                client.clone(),
                &token,
                &app_secret,
            ))
        })
        .collect();
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move { (i as u64 + 1, store.save_app(&app(i as u64 + 1)).await) })
        })
        .collect();
    let mut kept = Vec::new();
    for task in tasks {
        let (id, saved) = task.await.unwrap();
        match saved {
            Ok(()) => kept.push(id),
            Err(StoreError::Conflict(reason)) => {
                assert!(reason.contains("stored first"), "{reason}")
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(kept.len(), 1, "exactly one App kept: {kept:?}");
    assert_eq!(store.app().await.unwrap(), Some(app(kept[0])));

    // Spent once; spending again (a retried callback) changes nothing.
    store.spend_token().await.unwrap();
    store.spend_token().await.unwrap();
    assert_eq!(store.token().await.unwrap(), TokenState::Spent);
    let versions = client
        .list_secret_version_ids()
        .secret_id(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        2,
        "the generated token and one spent version"
    );
    // After setup, another App is refused without a write.
    assert!(matches!(
        store.save_app(&app(99)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.app().await.unwrap(), Some(app(kept[0])));
}

/// What the claim rests on: two writers over the same version name the same successor, and
/// Secrets Manager refuses the second value (the version cannot be rewritten) while taking the
/// same value again as done.
#[tokio::test]
async fn a_version_s_successor_is_written_once() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let (_, app_secret) = stack_secrets(&client, "successor").await;
    let pending = client
        .get_secret_value()
        .secret_id(&app_secret)
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    let successor = runway_setup::successor_version(&pending, "app");
    let put = |value: String| {
        client
            .put_secret_value()
            .secret_id(&app_secret)
            .client_request_token(&successor)
            .secret_string(value)
            .send()
    };
    put(app(1).to_json()).await.unwrap();
    put(app(1).to_json())
        .await
        .expect("the same value again is done");
    let refused = put(app(2).to_json()).await.unwrap_err();
    assert!(
        refused
            .as_service_error()
            .is_some_and(|error| error.is_resource_exists_exception()),
        "{refused:?}"
    );
    let store = SecretsManagerSetupStore::new(client.clone(), "unused", &app_secret);
    assert_eq!(store.app().await.unwrap(), Some(app(1)));
}

#[tokio::test]
async fn a_missing_secret_or_a_foreign_document_is_a_clear_error() {
    let moto = MotoServer::shared().expect("moto (scripts/setup.sh)");
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let missing = SecretsManagerSetupStore::new(client.clone(), "no-such-token", "no-such-app");
    let error = missing.token().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(error.to_string().contains("no-such-token"), "{error}");

    let foreign = client
        .create_secret()
        .name("setup-store-tests/foreign")
        .secret_string("just-a-password")
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let store = SecretsManagerSetupStore::new(client, &foreign, &foreign);
    assert!(matches!(store.token().await, Err(StoreError::Malformed(_))));
    let error = store.save_app(&app(1)).await.unwrap_err();
    assert!(matches!(error, StoreError::Malformed(_)), "{error}");
    assert!(!error.to_string().contains("just-a-password"), "{error}");
}
