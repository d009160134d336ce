//! Dropping the engine and every policy it loaded stops its epoch thread and the thread that
//! prepares instances (alone in this test binary, so no other test's engine is counted).

use std::time::{Duration, Instant};

use runway_policy_host::{EngineConfig, Job, PolicyEngine, Pool};

fn epoch_threads() -> usize {
    threads_named("policy-epoch")
}

fn preparing_threads() -> usize {
    threads_named("policy-prepare")
}

fn threads_named(wanted: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| task.ok())
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|name| name.trim() == wanted)
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn the_engine_threads_stop_with_the_last_engine_and_policy() {
    let bytes = runway_testkit::built_policy_bytes("labels-router.wasm").unwrap();
    let engine = PolicyEngine::new(EngineConfig::default()).unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    assert_eq!(epoch_threads(), 1);
    drop(engine);
    // The policy still works without the engine handle: it keeps what it needs.
    let pools = [Pool {
        name: "any".into(),
        ..Pool::default()
    }];
    let job = Job {
        labels: vec!["self-hosted".into()],
        ..Job::default()
    };
    router.route(&job, &pools).unwrap();
    assert_eq!(epoch_threads(), 1);
    assert_eq!(preparing_threads(), 1);
    // Let the spares be made, so that dropping the policy also drops them.
    let deadline = Instant::now() + Duration::from_secs(2);
    while router.policy().prepared_instances() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(router.policy().prepared_instances() > 0);
    drop(router);
    let deadline = Instant::now() + Duration::from_secs(2);
    while (epoch_threads() > 0 || preparing_threads() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(epoch_threads(), 0, "the epoch thread outlived its engine");
    assert_eq!(
        preparing_threads(),
        0,
        "the preparing thread outlived its engine"
    );
}
