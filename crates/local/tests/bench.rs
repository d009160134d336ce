//! `runway bench` runs the real job machine end to end; a small run keeps it working.

use std::time::Duration;

use runway_local::bench::{self, BenchOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_bench_runs_every_job_through_the_machine() {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let options = BenchOptions {
        latency_samples: 5,
        jobs: 25,
        runner_processes: false,
        timeout: Duration::from_secs(120),
        progress: Some(bench::Progress::new({
            let lines = lines.clone();
            move |line| lines.lock().unwrap().push(line.to_owned())
        })),
    };
    let report = bench::run(&options).await.expect("the bench completes");
    // A long run is seen to move: the first line comes at once.
    let said = lines.lock().unwrap().clone();
    assert_eq!(
        said.first().map(String::as_str),
        Some("webhook → launch: 0 of 5 jobs"),
        "{said:?}"
    );

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
    for state in ["Admit", "Provision", "Teardown"] {
        assert!(
            path.iter().any(|s| s == state),
            "{state} is on the happy path: {path:?}"
        );
    }
    // Release, or ReleaseBeforeJobEnds when every runner of the burst ran another job.
    assert!(
        path.iter().any(|s| s.starts_with("Release")),
        "the slot is released on the happy path: {path:?}"
    );
    // Which runner takes which job varies, so paths may differ a little; none is shorter than
    // Route → … → Done through the four steps above.
    assert!(throughput.transitions_per_job >= 6.0, "{throughput:?}");
    // Route, Admit, Provision, the runner's two waits, Teardown and Release at least.
    assert!(throughput.step_invocations_per_job >= 7.0, "{throughput:?}");
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

/// `runway bench --provider`: launches through the real EC2, ECS and EKS providers on moto
/// (EKS pods on the Kubernetes emulator), every execution run to its end, and what was
/// launched stopped by teardown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_bench_times_real_ec2_ecs_and_eks_launches_and_leaves_nothing_running() {
    use runway_local::provider_bench::{self, BenchProvider, ProviderBenchOptions};

    let moto = runway_testkit::MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let aws = moto.sdk_config().await;
    for provider in [BenchProvider::Ec2, BenchProvider::Ecs, BenchProvider::Eks] {
        let report = provider_bench::measure(&ProviderBenchOptions {
            provider,
            samples: 4,
            aws_endpoint: moto.endpoint_url(),
            timeout: Duration::from_secs(120),
            progress: None,
        })
        .await
        .unwrap_or_else(|error| panic!("{provider:?}: {error}"));
        for figure in [
            &report.webhook_to_launch_call,
            &report.launch_call_to_launched,
            &report.webhook_to_launched,
        ] {
            assert_eq!(figure.samples, 4, "{provider:?}");
            assert!(figure.p50_ms > 0.0 && figure.p50_ms <= figure.max_ms);
        }
        assert!(
            report.webhook_to_launched.p50_ms >= report.webhook_to_launch_call.p50_ms,
            "{report:?}"
        );
        // Teardown stopped every instance, task or pod (for EKS, its secret too: the
        // provider lists a runner while either is left).
        assert_eq!(report.runners_left, 0, "{provider:?}: {report:?}");
    }

    // Seven launches of each (three to warm up), none left running.
    let ec2 = aws_sdk_ec2::Client::new(&aws);
    let instances: Vec<_> = ec2
        .describe_instances()
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect();
    assert_eq!(instances.len(), 7);
    assert!(instances.iter().all(|instance| matches!(
        instance.state().and_then(|s| s.name()),
        Some(
            aws_sdk_ec2::types::InstanceStateName::Terminated
                | aws_sdk_ec2::types::InstanceStateName::ShuttingDown
        )
    )));
    let ecs = aws_sdk_ecs::Client::new(&aws);
    // moto lists every task unless asked for a status (ECS lists running ones).
    let running = ecs
        .list_tasks()
        .cluster("runway-bench-runners")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
        .unwrap();
    assert!(running.task_arns().is_empty(), "{running:?}");
    let stopped = ecs
        .list_tasks()
        .cluster("runway-bench-runners")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.task_arns().len(), 7);
}
