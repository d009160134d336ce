//! Instances prepared ahead of calls: each decision still runs on a pristine instance, under
//! the same memory cap, and the spares are topped up off the decision path.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runway_policy_host::{
    EngineConfig, InstanceAllocation, InstanceReuse, Job, PolicyEngine, PolicyError, Pool,
    RouteDecision, RouterPolicy, ThrottlePolicy,
};

const MEMORY_CAP: usize = 16 << 20;

fn config(prepared_instances: usize) -> EngineConfig {
    EngineConfig {
        fuel: 5_000_000,
        time_budget: Duration::from_millis(10),
        memory_limit_bytes: MEMORY_CAP,
        prepared_instances,
        ..EngineConfig::default()
    }
}

fn wit_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// A router component from a core module in WAT, which must export `memory`,
/// `cabi_realloc` and `runway:policy/routing@0.1.0#route`.
fn router_component(core_wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir()).expect("policies/wit parses");
    let world = resolve
        .select_world(&[package], Some("router"))
        .expect("the router world");
    let mut module = wat::parse_str(core_wat).expect("valid WAT");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// Decides `ignore("fresh")` on its first call and `ignore("stale")` on any later one, by a
/// counter in a global and another in linear memory (where a Rust `static` would live).
/// `pages` is the memory's initial size.
fn stateful_router(pages: u32) -> Vec<u8> {
    router_component(&format!(
        r#"(module
  (memory (export "memory") {pages})
  (global $heap (mut i32) (i32.const 4096))
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 16) "fresh")
  (data (i32.const 32) "stale")
  ;; A bump allocator for the arguments the host writes into the instance.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $at) (local.get 3)))
    (local.get $at))
  ;; The decision is written at 64: case 1 (ignore), then the reason's pointer and length.
  (func (export "runway:policy/routing@0.1.0#route") (param i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 1))
    (if (i32.or (global.get $calls) (i32.load (i32.const 8)))
      (then (i32.store (i32.const 68) (i32.const 32)))
      (else (i32.store (i32.const 68) (i32.const 16))))
    (i32.store (i32.const 72) (i32.const 5))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1)))
    (i32.const 64)))"#
    ))
}

fn job() -> Job {
    Job {
        labels: vec!["self-hosted".into(), "linux".into()],
        ..Job::default()
    }
}

fn pools() -> Vec<Pool> {
    vec![Pool {
        name: "linux".into(),
        labels: vec!["linux".into()],
        ..Pool::default()
    }]
}

fn reason(router: &RouterPolicy) -> String {
    match router
        .route(&job(), &pools())
        .expect("the stateful router decides")
    {
        RouteDecision::Ignore { reason } => reason,
        other => panic!("unexpected decision {other:?}"),
    }
}

/// Waits (bounded) until the policy has `wanted` spares. The bound only catches a top-up that
/// never comes: on a loaded 2-core machine, with the suite's other tests beside it, a top-up
/// took longer than 5 s.
fn wait_for_spares(router: &RouterPolicy, wanted: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while router.policy().prepared_instances() < wanted {
        assert!(
            Instant::now() < deadline,
            "spares were not topped up: {} of {wanted}",
            router.policy().prepared_instances()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn policies_are_shared_across_threads_and_cheap_to_clone() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<RouterPolicy>();
    shareable::<ThrottlePolicy>();
    shareable::<PolicyEngine>();
}

#[test]
fn state_kept_in_a_global_or_in_memory_never_reaches_the_next_decision() {
    let bytes = stateful_router(1);
    for prepared in [0, 1, 4] {
        let engine = PolicyEngine::new(config(prepared)).unwrap();
        let router = engine.load(&bytes).unwrap().router().unwrap();
        // Back to back (spares may run out and instances are made on the call) ...
        for call in 0..20 {
            assert_eq!(reason(&router), "fresh", "prepared {prepared}, call {call}");
        }
        // ... and once the spares are ready, so that every call below takes one.
        for call in 0..10 {
            wait_for_spares(&router, prepared);
            assert_eq!(
                reason(&router),
                "fresh",
                "prepared {prepared}, spare {call}"
            );
        }
        assert!(router.policy().prepared_instances() <= prepared);
    }
}

#[test]
fn concurrent_callers_each_get_a_pristine_instance() {
    let engine = PolicyEngine::new(config(4)).unwrap();
    let router = engine.load(&stateful_router(1)).unwrap().router().unwrap();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let router = router.clone();
            std::thread::spawn(move || (0..50).map(|_| reason(&router)).collect::<Vec<_>>())
        })
        .collect();
    for caller in callers {
        let reasons = caller.join().expect("caller thread");
        assert!(reasons.iter().all(|r| r == "fresh"), "{reasons:?}");
    }
}

#[test]
fn spares_are_made_after_the_first_call_and_only_when_asked_for() {
    let bytes = stateful_router(1);
    let engine = PolicyEngine::new(config(3)).unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    // Loading alone prepares nothing: a loaded policy that never decides holds no slots.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(router.policy().prepared_instances(), 0);
    reason(&router);
    wait_for_spares(&router, 3);

    let engine = PolicyEngine::new(config(0)).unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    reason(&router);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(router.policy().prepared_instances(), 0);
}

fn hostile() -> (PolicyEngine, RouterPolicy) {
    let bytes = runway_testkit::built_policy_bytes("tests/hostile-router.wasm").unwrap();
    let engine = PolicyEngine::new(config(2)).unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    (engine, router)
}

fn hostile_job(name: &str) -> Job {
    Job {
        job_name: name.into(),
        ..job()
    }
}

#[test]
fn a_prepared_instance_is_held_to_the_memory_cap_fuel_and_time_budget() {
    let (_engine, router) = hostile();
    router.route(&hostile_job("fine"), &pools()).unwrap();
    type Check = fn(&PolicyError) -> bool;
    let cases: [(&str, Check); 3] = [
        (
            "alloc-bomb",
            |e| matches!(e, PolicyError::MemoryLimit { limit_bytes } if *limit_bytes == MEMORY_CAP),
        ),
        ("spin", |e| {
            matches!(
                e,
                PolicyError::OutOfFuel { .. } | PolicyError::Timeout { .. }
            )
        }),
        ("trap", |e| matches!(e, PolicyError::Trap { .. })),
    ];
    for (name, expected) in cases {
        wait_for_spares(&router, 2);
        let error = router.route(&hostile_job(name), &pools()).expect_err(name);
        assert!(expected(&error), "{name}: {error:?}");
        // The failed instance is not reused: the next call decides normally.
        wait_for_spares(&router, 2);
        let decision = router.route(&hostile_job("fine"), &pools()).unwrap();
        assert!(matches!(decision, RouteDecision::Run { pool, .. } if pool == "linux"));
    }
}

#[test]
fn a_spare_waiting_longer_than_the_time_budget_still_gets_the_whole_budget() {
    let (_engine, router) = hostile();
    router.route(&hostile_job("fine"), &pools()).unwrap();
    wait_for_spares(&router, 2);
    // Ten budgets of waiting: a deadline counted from instantiation would have passed.
    std::thread::sleep(Duration::from_millis(100));
    let decision = router.route(&hostile_job("fine"), &pools()).unwrap();
    assert!(
        matches!(decision, RouteDecision::Run { .. }),
        "{decision:?}"
    );
}

#[test]
fn a_policy_whose_memory_is_over_the_cap_gets_no_spares_and_every_call_says_why() {
    // 512 pages of 64 KiB: 32 MiB, over the 16 MiB cap before the policy runs at all.
    let over_the_cap = stateful_router(512);

    // Pooled or allocated on demand, it loads (a pool slot holds the largest memory any
    // policy may have); instantiating it is what the cap refuses, on the call and in the
    // background alike, so no spare is ever made.
    let pooling = PolicyEngine::new(config(4)).unwrap();
    let on_demand = PolicyEngine::new(EngineConfig {
        allocation: InstanceAllocation::OnDemand,
        ..config(4)
    })
    .unwrap();
    for engine in [&pooling, &on_demand] {
        let router = engine.load(&over_the_cap).unwrap().router().unwrap();
        for call in 0..3 {
            let error = router.route(&job(), &pools()).expect_err("over the cap");
            assert!(
                matches!(error, PolicyError::MemoryLimit { limit_bytes } if limit_bytes == MEMORY_CAP),
                "call {call}: {error:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
            assert_eq!(router.policy().prepared_instances(), 0);
        }
    }
    // Under the cap, the same guest runs on spares made in the background.
    let router = on_demand
        .load(&stateful_router(2))
        .unwrap()
        .router()
        .unwrap();
    assert_eq!(reason(&router), "fresh");
    wait_for_spares(&router, 4);
    assert_eq!(reason(&router), "fresh");
}

fn reusing(verify_every: u32) -> EngineConfig {
    EngineConfig {
        reuse: InstanceReuse::Verified { verify_every },
        ..config(2)
    }
}

#[test]
fn verified_reuse_catches_a_policy_that_keeps_state_and_stops_reusing_it() {
    let engine = PolicyEngine::new(reusing(1)).unwrap();
    let router = engine.load(&stateful_router(1)).unwrap().router().unwrap();
    assert!(router.policy().reuses_instances());
    // The first call runs on a pristine instance, which is then kept warm; the second
    // reuses it, is checked against a pristine one, and the pristine answer stands.
    for call in 0..10 {
        assert_eq!(reason(&router), "fresh", "call {call}");
    }
    assert!(!router.policy().reuses_instances());
    assert_eq!(router.policy().warm_instances(), 0);
}

#[test]
fn verified_reuse_serves_a_stateless_policy_from_a_warm_instance() {
    let bytes = runway_testkit::built_policy_bytes("labels-router.wasm").unwrap();
    let pools = vec![
        Pool {
            name: "linux".into(),
            labels: vec!["self-hosted".into(), "linux".into()],
            ..Pool::default()
        },
        Pool {
            name: "gpu".into(),
            labels: vec!["self-hosted".into(), "linux".into(), "gpu".into()],
            ..Pool::default()
        },
    ];
    let jobs: Vec<Job> = [
        vec!["self-hosted", "linux"],
        vec!["self-hosted", "linux", "gpu"],
    ]
    .into_iter()
    .map(|labels| Job {
        labels: labels.into_iter().map(String::from).collect(),
        ..Job::default()
    })
    .collect();
    let pristine = PolicyEngine::new(config(0)).unwrap();
    let pristine = pristine.load(&bytes).unwrap().router().unwrap();
    let engine = PolicyEngine::new(reusing(3)).unwrap();
    let reused = engine.load(&bytes).unwrap().router().unwrap();
    for call in 0..60 {
        let job = &jobs[call % jobs.len()];
        assert_eq!(
            reused.route(job, &pools).unwrap(),
            pristine.route(job, &pools).unwrap(),
            "call {call}"
        );
    }
    assert!(
        reused.policy().reuses_instances(),
        "a stateless policy keeps reuse"
    );
    assert_eq!(
        reused.policy().warm_instances(),
        1,
        "one caller, one warm instance"
    );
}

#[test]
fn a_warm_instance_that_fails_is_not_used_again_and_keeps_its_bounds() {
    let bytes = runway_testkit::built_policy_bytes("tests/hostile-router.wasm").unwrap();
    let engine = PolicyEngine::new(reusing(1)).unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    for (name, expected) in [
        ("trap", "trap"),
        ("alloc-bomb", "memory"),
        ("spin", "budget"),
    ] {
        router.route(&hostile_job("fine"), &pools()).unwrap();
        assert_eq!(router.policy().warm_instances(), 1, "{name}");
        let error = router.route(&hostile_job(name), &pools()).expect_err(name);
        let matched = match expected {
            "trap" => matches!(error, PolicyError::Trap { .. }),
            "memory" => {
                matches!(error, PolicyError::MemoryLimit { limit_bytes } if limit_bytes == MEMORY_CAP)
            }
            _ => matches!(
                error,
                PolicyError::OutOfFuel { .. } | PolicyError::Timeout { .. }
            ),
        };
        assert!(matched, "{name}: {error:?}");
        assert_eq!(
            router.policy().warm_instances(),
            0,
            "{name}: the failed instance is dropped"
        );
    }
    let decision = router.route(&hostile_job("fine"), &pools()).unwrap();
    assert!(matches!(decision, RouteDecision::Run { pool, .. } if pool == "linux"));
}
