//! Cost of the HTTP API layer: requests through the router, without a network in between.
//!
//! `cargo bench -p runway-sfn-local --bench api`

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use runway_asl::{StepFunctions, TaskRegistry};
use runway_clock::SystemClock;
use tower::ServiceExt;

const MACHINE_ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:bench";
const DEFINITION: &str = r#"{"StartAt": "Shape", "States": {"Shape": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": true}}}"#;

fn request(operation: &str, body: String) -> Request<Body> {
    Request::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AWSStepFunctions.{operation}"))
        .body(Body::from(body))
        .unwrap()
}

fn api(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let service = StepFunctions::new(SystemClock::shared(), TaskRegistry::new());
    service
        .create_state_machine("bench", DEFINITION, None)
        .unwrap();
    let execution = runtime.block_on(async {
        let started = service
            .start_execution(MACHINE_ARN, Some("described"), Some(r#"{"n": 1}"#))
            .unwrap();
        service
            .await_execution(&started.execution_arn)
            .await
            .unwrap()
    });
    let router = runway_sfn_local::router(service.clone());

    let describe = format!(r#"{{"executionArn": "{}"}}"#, execution.execution_arn);
    c.bench_function("DescribeExecution through the router", |b| {
        b.to_async(&runtime).iter(|| {
            let router = router.clone();
            let body = describe.clone();
            async move {
                router
                    .oneshot(request("DescribeExecution", body))
                    .await
                    .unwrap()
            }
        })
    });

    let history = format!(r#"{{"executionArn": "{}"}}"#, execution.execution_arn);
    c.bench_function("GetExecutionHistory through the router", |b| {
        b.to_async(&runtime).iter(|| {
            let router = router.clone();
            let body = history.clone();
            async move {
                router
                    .oneshot(request("GetExecutionHistory", body))
                    .await
                    .unwrap()
            }
        })
    });

    let start = format!(r#"{{"stateMachineArn": "{MACHINE_ARN}", "input": "{{\"n\": 2}}"}}"#);
    c.bench_function("StartExecution of a Pass machine, run to the end", |b| {
        b.to_async(&runtime).iter(|| {
            let router = router.clone();
            let service = service.clone();
            let body = start.clone();
            async move {
                let response = router
                    .oneshot(request("StartExecution", body))
                    .await
                    .unwrap();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let started: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let arn = started["executionArn"].as_str().unwrap();
                service.await_execution(arn).await.unwrap()
            }
        })
    });
}

criterion_group!(benches, api);
criterion_main!(benches);
