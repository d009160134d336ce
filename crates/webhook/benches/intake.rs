//! verify + parse + decide for a real `queued` payload (the work done per delivery before the
//! engine is called).

use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use runway_webhook::{
    Decision, ExecutionStarter, Intake, IntakeConfig, StartError, StartOutcome, WebhookSecrets,
    parse_workflow_job, sign_with,
};

#[derive(Debug)]
struct NoEngine;

#[async_trait]
impl ExecutionStarter for NoEngine {
    async fn start_execution(&self, _: &str, _: &str) -> Result<StartOutcome, StartError> {
        Err(StartError::Rejected("benchmarks start nothing".into()))
    }
}

fn queued_payload() -> Vec<u8> {
    let dir = runway_testkit::fixtures_dir().unwrap_or_else(|error| panic!("{error}"));
    let path = dir.join("github/webhooks/workflow_job/06-queued.json");
    std::fs::read(&path)
        .unwrap_or_else(|err| panic!("{}: {err}; set RUNWAY_FIXTURES_DIR", path.display()))
}

fn verify_parse_decide(c: &mut Criterion) {
    let body = queued_payload();
    let secrets = WebhookSecrets::new("benchmark-secret").unwrap();
    let signature = sign_with(b"benchmark-secret", &body);
    let intake = Intake::new(IntakeConfig::new(secrets.clone()), Arc::new(NoEngine));

    let mut group = c.benchmark_group("webhook");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_parse_decide_queued", |b| {
        b.iter(|| {
            secrets.verify(Some(signature.as_bytes()), &body).unwrap();
            let event = parse_workflow_job(&body).unwrap();
            let decision = intake.decide(&event, Some("delivery"));
            assert!(matches!(decision, Decision::Start { .. }));
            decision
        })
    });
    group.bench_function("verify_only", |b| {
        b.iter(|| secrets.verify(Some(signature.as_bytes()), &body))
    });
    group.bench_function("parse_only", |b| {
        b.iter(|| parse_workflow_job(&body).unwrap())
    });
    group.finish();
}

criterion_group!(benches, verify_parse_decide);
criterion_main!(benches);
