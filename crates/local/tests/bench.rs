//! `runway bench` runs the real job machine end to end; a small run keeps it working.

use std::time::Duration;

use runway_local::bench::{self, BenchOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_bench_runs_every_job_through_the_machine() {
    let options = BenchOptions {
        latency_samples: 5,
        jobs: 25,
        runner_processes: false,
        timeout: Duration::from_secs(120),
    };
    let report = bench::run(&options).await.expect("the bench completes");

    assert_eq!(report.latency.samples, 5);
    assert!(report.latency.p50_ms > 0.0);
    assert!(report.latency.p50_ms <= report.latency.p95_ms);
    assert!(report.latency.p95_ms <= report.latency.max_ms);

    let throughput = &report.throughput;
    assert_eq!(throughput.jobs, 25);
    assert_eq!(throughput.succeeded, 25, "every execution succeeded");
    assert!(throughput.jobs_per_second > 0.0);
    let path = &throughput.happy_path;
    assert_eq!(path.first().map(String::as_str), Some("Route"));
    assert_eq!(path.last().map(String::as_str), Some("Done"));
    for state in ["Admit", "Provision", "Teardown", "Release"] {
        assert!(
            path.iter().any(|s| s == state),
            "{state} is on the happy path: {path:?}"
        );
    }
    // Which runner takes which job varies, so paths may differ a little; none is shorter than
    // Route → … → Done through the four steps above.
    assert!(throughput.transitions_per_job >= 6.0, "{throughput:?}");
    // Executions end after the burst is queued and before the run is measured to end.
    let ended = throughput.ended_after;
    assert!(ended.half > 0.0, "{throughput:?}");
    assert!(
        ended.half <= ended.p90 && ended.p90 <= ended.p99 && ended.p99 <= ended.all,
        "{throughput:?}"
    );
    assert!(ended.all <= throughput.seconds, "{throughput:?}");
    let spread = throughput.execution_seconds;
    assert!(
        0.0 < spread.p50 && spread.p50 <= spread.p99 && spread.p99 <= spread.max,
        "{throughput:?}"
    );
    assert!(spread.max <= ended.all, "{throughput:?}");
    assert!(report.to_string().contains("jobs/s"));
    assert!(report.to_string().contains("executions ended after: half"));
}
