//! Dropping the engine and every policy it loaded stops its epoch thread (alone in this
//! test binary, so no other test's engine is counted).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runway_policy_host::{EngineConfig, Job, PolicyEngine, Pool};

fn epoch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| task.ok())
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|name| name.trim() == "policy-epoch")
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn the_epoch_thread_stops_with_the_last_engine_and_policy() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../build/labels-router.wasm");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-policies.sh", path.display()));
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
    drop(router);
    let deadline = Instant::now() + Duration::from_secs(2);
    while epoch_threads() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(epoch_threads(), 0, "the epoch thread outlived its engine");
}
