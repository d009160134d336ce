//! Property tests: hostile input never panics and never passes verification.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use proptest::prelude::*;
use runway_webhook::{
    Delivery, ExecutionStarter, Intake, IntakeConfig, StartError, StartOutcome, WebhookSecrets,
    parse_workflow_job, sign_with,
};

const SECRET: &[u8] = b"property-secret";

#[derive(Debug)]
struct RefuseAll;

#[async_trait]
impl ExecutionStarter for RefuseAll {
    async fn start_execution(&self, _: &str, _: &str) -> Result<StartOutcome, StartError> {
        Err(StartError::Rejected("no engine in this test".into()))
    }
}

fn intake() -> Intake {
    Intake::new(
        IntakeConfig::new(WebhookSecrets::new(SECRET).unwrap()),
        Arc::new(RefuseAll),
    )
}

fn header_pairs() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("x-hub-signature-256".to_owned()),
        Just("x-github-event".to_owned()),
        Just("x-github-delivery".to_owned()),
        "[a-z][a-z0-9-]{0,20}",
    ];
    let value = prop_oneof![
        Just(b"sha256=".to_vec()),
        Just(b"workflow_job".to_vec()),
        "sha256=[0-9a-f]{64}".prop_map(String::into_bytes),
        proptest::collection::vec(32_u8..127, 0..80),
    ];
    proptest::collection::vec((name, value), 0..6)
}

fn headers(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_deliveries_never_panic_and_never_pass_verification(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        pairs in header_pairs(),
    ) {
        let answer = runtime().block_on(intake().handle(Delivery {
            headers: headers(&pairs),
            body: Bytes::from(body),
        }));
        // Without the secret no delivery gets past the signature check.
        prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_valid_signature_over_another_body_never_verifies(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        other in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        prop_assume!(body != other);
        let secrets = WebhookSecrets::new(SECRET).unwrap();
        let signature = sign_with(SECRET, &other);
        prop_assert!(secrets.verify(Some(signature.as_bytes()), &body).is_err());
        prop_assert!(secrets.verify(Some(sign_with(SECRET, &body).as_bytes()), &body).is_ok());
    }

    #[test]
    fn signed_garbage_is_a_clean_400_or_202(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        event in prop_oneof![Just("workflow_job"), Just("ping"), Just("push")],
    ) {
        let mut map = HeaderMap::new();
        map.insert("x-github-event", HeaderValue::from_static(event));
        map.insert("x-hub-signature-256", HeaderValue::from_str(&sign_with(SECRET, &body)).unwrap());
        let answer = runtime().block_on(intake().handle(Delivery { headers: map, body: Bytes::from(body) }));
        prop_assert!(matches!(answer.status.as_u16(), 200 | 202 | 400 | 503), "{}", answer.status);
    }

    #[test]
    fn the_parser_never_panics_on_json_shaped_input(
        text in r#"\{("[a-z_]{1,12}":(null|[0-9]{1,20}|"[a-z ]{0,8}"|\[\]|\{\}),?){0,8}\}"#,
    ) {
        let _ = parse_workflow_job(text.as_bytes());
    }
}
