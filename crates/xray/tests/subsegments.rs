//! Spans of calls to other systems reach a daemon on 127.0.0.1 as X-Ray subsegments.

use std::net::UdpSocket;
use std::time::Duration;

use runway_xray::{Daemon, TraceHeader, TraceSource, XRayLayer};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

const ROOT: &str = "1-67891233-abcdef012345678912345678";

fn daemon() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket
}

fn traced(daemon: &UdpSocket, sampled: bool) -> impl tracing::Subscriber + Send + Sync {
    let layer = XRayLayer::new(
        Daemon::new(daemon.local_addr().unwrap()).unwrap(),
        TraceSource::Fixed(TraceHeader {
            root: ROOT.into(),
            parent: "53995c3f42cd8ad8".into(),
            sampled,
        }),
    );
    tracing_subscriber::registry().with(layer.filtered())
}

/// The next subsegment the daemon got, or `None` within half a second.
fn received(daemon: &UdpSocket) -> Option<Value> {
    let mut buffer = [0u8; 65_536];
    let length = daemon.recv(&mut buffer).ok()?;
    let text = std::str::from_utf8(&buffer[..length]).unwrap();
    let (header, document) = text.split_once('\n').unwrap();
    assert_eq!(header, r#"{"format":"json","version":1}"#);
    Some(serde_json::from_str(document).unwrap())
}

#[test]
fn an_aws_sdk_operation_is_a_subsegment_of_the_functions_segment() {
    let socket = daemon();
    tracing::subscriber::with_default(traced(&socket, true), || {
        // The span the AWS SDK for Rust opens around each operation.
        let span = tracing::debug_span!(
            "DynamoDB.GetItem",
            "rpc.service" = "DynamoDB",
            "rpc.method" = "GetItem",
            "sdk_invocation_id" = 4_242_424,
            "rpc.system" = "aws-api",
        );
        span.in_scope(|| std::thread::sleep(Duration::from_millis(5)));
    });
    let subsegment = received(&socket).expect("a subsegment");
    assert_eq!(subsegment["name"], "DynamoDB");
    assert_eq!(subsegment["namespace"], "aws");
    assert_eq!(subsegment["aws"]["operation"], "GetItem");
    assert_eq!(subsegment["type"], "subsegment");
    assert_eq!(subsegment["trace_id"], ROOT);
    assert_eq!(subsegment["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(subsegment["id"].as_str().unwrap().len(), 16);
    let took =
        subsegment["end_time"].as_f64().unwrap() - subsegment["start_time"].as_f64().unwrap();
    assert!(took >= 0.005, "{subsegment}");
    assert!(subsegment.get("fault").is_none(), "{subsegment}");
}

#[test]
fn a_github_request_is_a_remote_subsegment_with_its_status_and_failure_kind() {
    let socket = daemon();
    tracing::subscriber::with_default(traced(&socket, true), || {
        for status in [200u64, 404, 429, 503] {
            let span = tracing::debug_span!(
                "github_request",
                "rpc.system" = "http",
                "rpc.service" = "GitHub",
                "rpc.method" = "GET /repos/{owner}/{repo}/actions/runners",
                "http.request.method" = "GET",
                "url.path" = "/repos/octo-org/app/actions/runners",
                "http.response.status_code" = tracing::field::Empty,
            );
            span.record("http.response.status_code", status);
        }
    });
    let mut kinds = Vec::new();
    for status in [200, 404, 429, 503] {
        let subsegment = received(&socket).expect("a subsegment per request");
        assert_eq!(subsegment["name"], "GitHub");
        assert_eq!(subsegment["namespace"], "remote");
        assert_eq!(subsegment["http"]["request"]["method"], "GET");
        assert_eq!(
            subsegment["http"]["request"]["url"],
            "/repos/octo-org/app/actions/runners"
        );
        assert_eq!(subsegment["http"]["response"]["status"], status);
        kinds.push((
            subsegment.get("error").is_some(),
            subsegment.get("throttle").is_some(),
            subsegment.get("fault").is_some(),
        ));
    }
    assert_eq!(
        kinds,
        [
            (false, false, false),
            (true, false, false),
            (true, true, false),
            (false, false, true),
        ]
    );
}

#[test]
fn a_call_made_inside_another_hangs_off_it_and_other_spans_send_nothing() {
    let socket = daemon();
    tracing::subscriber::with_default(traced(&socket, true), || {
        let step = tracing::info_span!("step", name = "provision");
        let _step = step.enter();
        let outer = tracing::debug_span!(
            "policy",
            "rpc.system" = "wasm",
            "rpc.service" = "Policy",
            "rpc.method" = "route"
        );
        outer.in_scope(|| {
            let inner = tracing::debug_span!(
                "SSM.GetParameter",
                "rpc.service" = "SSM",
                "rpc.method" = "GetParameter",
                "rpc.system" = "aws-api"
            );
            inner.in_scope(|| {});
        });
    });
    let inner = received(&socket).expect("the inner call");
    let outer = received(&socket).expect("the outer call");
    assert_eq!(inner["name"], "SSM");
    assert_eq!(outer["name"], "Policy");
    assert_eq!(outer["metadata"]["rpc"]["method"], "route");
    assert_eq!(inner["parent_id"], outer["id"]);
    assert_eq!(outer["parent_id"], "53995c3f42cd8ad8");
    assert!(received(&socket).is_none(), "the step span is no call");
}

#[test]
fn an_unsampled_trace_sends_nothing() {
    let socket = daemon();
    tracing::subscriber::with_default(traced(&socket, false), || {
        tracing::debug_span!(
            "EC2.RunInstances",
            "rpc.service" = "EC2",
            "rpc.method" = "RunInstances",
            "rpc.system" = "aws-api"
        )
        .in_scope(|| {});
    });
    assert!(received(&socket).is_none());
}
