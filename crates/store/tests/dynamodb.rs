//! The store contract against DynamoDB, served by moto on 127.0.0.1. One moto server for this
//! test binary; every test works in a table of its own.

mod contract;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use contract::{Fixture, SteppedClock};
use proptest::prelude::*;
use runway_clock::Clock;
use runway_store::{
    DynamoStore, RunnerEvent, RunnerWait, RunnerWatch, Store, StoreError, TaskToken, create_table,
};
use runway_testkit::MotoServer;

async fn client() -> Client {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    Client::new(&moto.sdk_config().await)
}

fn fresh_table_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "runway-store-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn store_on_fresh_table() -> (DynamoStore, Arc<SteppedClock>, Client) {
    let client = client().await;
    let table = fresh_table_name();
    create_table(&client, &table).await.unwrap();
    let clock = SteppedClock::new();
    (
        DynamoStore::new(client.clone(), table, clock.clone()),
        clock,
        client,
    )
}

async fn fixture() -> Fixture {
    let (store, clock, _) = store_on_fresh_table().await;
    let advancing = clock.clone();
    Fixture::new(
        Arc::new(store),
        clock,
        Box::new(move |by| {
            advancing.advance(by);
            Box::pin(async {})
        }),
    )
}

contract_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fixture
);

proptest! {
    // Each case makes a table and some hundred requests: few cases, short sequences.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn slot_counters_always_match_holders_and_ceilings(ops in contract::slot_ops(14)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (store, _, _) = store_on_fresh_table().await;
            contract::slot_accounting_matches_model(&store, &ops, false).await;
        });
    }
}

#[tokio::test]
async fn creating_the_table_twice_is_harmless() {
    let client = client().await;
    let table = fresh_table_name();
    create_table(&client, &table).await.unwrap();
    create_table(&client, &table).await.unwrap();
    let description = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let description = description.table.unwrap();
    let indexes: Vec<String> = description
        .local_secondary_indexes()
        .iter()
        .filter_map(|index| index.index_name().map(str::to_string))
        .chain(
            description
                .global_secondary_indexes()
                .iter()
                .filter_map(|index| index.index_name().map(str::to_string)),
        )
        .collect();
    assert_eq!(indexes, ["by_queue_position", "by_pool"]);
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn a_missing_table_is_a_typed_error() {
    let store = DynamoStore::new(client().await, "no-such-table", SteppedClock::new());
    let error = store
        .get_runner(&contract::runner_name("r"))
        .await
        .expect_err("the table does not exist");
    assert!(
        matches!(error, StoreError::TableMissing { ref table } if table == "no-such-table"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("create_table"), "{error}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_error() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moto = MotoServer::shared().unwrap();
    let config = aws_sdk_dynamodb::config::Builder::from(&moto.sdk_config().await)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let store = DynamoStore::new(Client::from_conf(config), "anything", SteppedClock::new());
    let claim = contract::claim("e", "p", "o", "o/r", contract::pool_ceiling(1));
    let error = store
        .acquire_slot(&claim)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_malformed_item_is_reported_not_trusted() {
    let (store, _, client) = store_on_fresh_table().await;
    client
        .put_item()
        .table_name(store.table())
        .item("pk", AttributeValue::S("RUNNER#broken".into()))
        .item("sk", AttributeValue::S("RUNNER".into()))
        .item("state", AttributeValue::S("exploded".into()))
        .item("expires_at", AttributeValue::N("99999999999".into()))
        .send()
        .await
        .unwrap();
    let error = store
        .get_runner(&contract::runner_name("broken"))
        .await
        .expect_err("the item is malformed");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("RUNNER#broken"), "{error}");

    // A counter driven negative by hand is refused rather than read as room to admit.
    client
        .put_item()
        .table_name(store.table())
        .item("pk", AttributeValue::S("SLOT#POOL#linux".into()))
        .item("sk", AttributeValue::S("COUNT".into()))
        .item("count", AttributeValue::N("-1".into()))
        .send()
        .await
        .unwrap();
    let error = store
        .load(
            &contract::pool("linux"),
            &contract::org("o"),
            &contract::repo("o/r"),
        )
        .await
        .expect_err("a negative counter is corrupt");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

/// A table deployed before runner records said what their wait waits for holds items with
/// `runner_token` and no `runner_wait`: any event answers such a wait, as it always did.
#[tokio::test]
async fn a_runner_item_without_its_wait_is_answered_by_any_event() {
    let (store, clock, client) = store_on_fresh_table().await;
    let expires_at = clock.now().timestamp() + 3600;
    client
        .put_item()
        .table_name(store.table())
        .item("pk", AttributeValue::S("RUNNER#old-runner".into()))
        .item("sk", AttributeValue::S("RUNNER".into()))
        .item("runner_name", AttributeValue::S("old-runner".into()))
        .item("execution", AttributeValue::S("job-1-r1-a1".into()))
        .item("pool", AttributeValue::S("linux".into()))
        .item("provider", AttributeValue::S("ec2".into()))
        .item("state", AttributeValue::S("idle".into()))
        .item("runner_token", AttributeValue::S("old-token".into()))
        .item(
            "launched_at",
            AttributeValue::S("2026-01-01T00:00:00.000000000Z".into()),
        )
        .item("expires_at", AttributeValue::N(expires_at.to_string()))
        .send()
        .await
        .unwrap();
    let name = contract::runner_name("old-runner");
    let old = RunnerWatch {
        task_token: TaskToken::new("old-token").unwrap(),
        wait: None,
    };
    let record = store.get_runner(&name).await.unwrap().unwrap();
    assert_eq!(record.runner_watch, Some(old.clone()));
    assert_eq!(
        store
            .take_runner_token_for(&name, RunnerEvent::Started)
            .await
            .unwrap(),
        Some(old.clone())
    );

    // Put back as it was: still without a wait.
    assert!(store.restore_runner_token(&name, &old).await.unwrap());
    let raw = |client: Client, table: String| async move {
        client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("RUNNER#old-runner".into()))
            .key("sk", AttributeValue::S("RUNNER".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    let item = raw(client.clone(), store.table().to_owned()).await;
    assert!(item.contains_key("runner_token") && !item.contains_key("runner_wait"));

    // A new wait records what it waits for.
    assert!(
        store
            .set_runner_token(
                &name,
                &TaskToken::new("new-token").unwrap(),
                RunnerWait::Gone
            )
            .await
            .unwrap()
    );
    let item = raw(client.clone(), store.table().to_owned()).await;
    assert_eq!(
        item.get("runner_wait"),
        Some(&AttributeValue::S("gone".into()))
    );

    // A wait the store does not know is reported, not guessed at.
    client
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("RUNNER#old-runner".into()))
        .key("sk", AttributeValue::S("RUNNER".into()))
        .update_expression("SET runner_wait = :wait")
        .expression_attribute_values(":wait", AttributeValue::S("idle".into()))
        .send()
        .await
        .unwrap();
    let error = store.get_runner(&name).await.expect_err("unknown wait");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}
