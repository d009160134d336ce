use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use runway_testkit::{MotoServer, asl_conformance_dir, fixtures_dir, shared_dir};

async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn table_names(client: &aws_sdk_dynamodb::Client) -> Vec<String> {
    client
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names
        .unwrap_or_default()
}

#[tokio::test]
async fn a_server_of_its_own_serves_dynamodb_resets_and_dies_with_its_handle() {
    let server = MotoServer::start().unwrap();
    let endpoint = server.endpoint_url();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let client = aws_sdk_dynamodb::Client::new(&server.sdk_config().await);

    create_table(&client, "testkit-own").await;
    assert_eq!(table_names(&client).await, vec!["testkit-own".to_string()]);

    server.reset().unwrap();
    assert!(table_names(&client).await.is_empty());

    let port = server.port();
    drop(server);
    let refused = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(refused.is_err(), "moto still listens on {port} after drop");
}

#[tokio::test]
async fn the_shared_server_is_one_per_test_binary() {
    let first = MotoServer::shared().unwrap();
    let second = MotoServer::shared().unwrap();
    assert_eq!(first.endpoint_url(), second.endpoint_url());
    let client = aws_sdk_dynamodb::Client::new(&first.sdk_config().await);
    create_table(&client, "testkit-shared").await;
    assert!(
        table_names(&client)
            .await
            .contains(&"testkit-shared".to_string())
    );
}

#[test]
fn the_shared_fixtures_are_found() {
    let shared = shared_dir().unwrap();
    assert!(shared.join("DESIGN.md").is_file(), "{}", shared.display());
    assert!(fixtures_dir().unwrap().is_dir());
    assert!(asl_conformance_dir().unwrap().is_dir());
}
