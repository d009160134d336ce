//! The host against real policy components built from source by scripts/build-policies.sh:
//! the examples against their recorded cases, hostile modules, fallbacks, ahead-of-time
//! compilation and caching.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant as Clock};

use runway_policy_host::{
    Counts, EngineConfig, Instant, Job, Load, PolicyEngine, PolicyError, Pool, RouteDecision,
    RouterFallback, Target, ThrottleDecision, ThrottleFallback, World, cases,
};

fn module(relative: &str) -> Vec<u8> {
    runway_testkit::built_policy_bytes(relative).unwrap()
}

/// Bounds tight enough that a hostile call is stopped well inside 50 ms.
fn test_config() -> EngineConfig {
    EngineConfig {
        fuel: 5_000_000,
        time_budget: Duration::from_millis(10),
        memory_limit_bytes: 16 << 20,
        ..EngineConfig::default()
    }
}

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::new(test_config()).expect("engine"))
}

fn pools() -> Vec<Pool> {
    vec![
        Pool {
            name: "linux".into(),
            labels: vec!["linux".into(), "x64".into()],
            ..Pool::default()
        },
        Pool {
            name: "gpu".into(),
            labels: vec!["linux".into(), "x64".into(), "gpu".into()],
            ..Pool::default()
        },
    ]
}

fn job(name: &str) -> Job {
    Job {
        repository: "acme/api".into(),
        owner: "acme".into(),
        labels: vec!["self-hosted".into(), "linux".into()],
        job_name: name.into(),
        ..Job::default()
    }
}

fn hostile() -> runway_policy_host::RouterPolicy {
    engine()
        .load(&module("tests/hostile-router.wasm"))
        .expect("hostile router loads")
        .router()
        .expect("is a router")
}

#[test]
fn every_example_passes_its_recorded_cases() {
    for (name, world) in [
        ("labels-router", World::Router),
        ("fair-share", World::Throttle),
        ("business-hours", World::Throttle),
    ] {
        let policy = engine().load(&module(&format!("{name}.wasm"))).unwrap();
        assert_eq!(policy.world(), world, "{name}");
        let cases_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name)
            .join("cases.json");
        let cases = cases::load(&cases_path).unwrap();
        assert!(cases.len() >= 5, "{name} has too few cases");
        let failures: Vec<String> = cases
            .iter()
            .map(|case| cases::run(&policy, case))
            .filter(|outcome| !outcome.passed())
            .map(|outcome| format!("{name}: {}: {}", outcome.name, outcome.failure.unwrap()))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

/// The C example is built by scripts/build-policies.sh with clang and wasm-ld, which
/// scripts/setup.sh installs; it must pass its cases like the Rust ones.
#[test]
fn the_c_example_passes_its_recorded_cases() {
    let policy = engine().load(&module("ceiling-c.wasm")).unwrap();
    assert_eq!(policy.world(), World::Throttle);
    let cases_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/ceiling-c/cases.json");
    let cases = cases::load(cases_path).unwrap();
    assert!(!cases.is_empty());
    for case in &cases {
        let outcome = cases::run(&policy, case);
        assert!(outcome.passed(), "{}: {:?}", outcome.name, outcome.failure);
    }
}

#[test]
fn a_failing_case_is_reported_as_failed() {
    let policy = engine().load(&module("labels-router.wasm")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(
        &path,
        r#"{"defaults": {"pools": [{"name": "linux", "labels": ["linux"]}]},
            "cases": [
              {"name": "right", "input": {"job": {"labels": ["self-hosted", "linux"]}}, "expect": {"run": {"pool": "linux"}}},
              {"name": "wrong", "input": {"job": {"labels": ["self-hosted", "linux"]}}, "expect": {"ignore": {}}},
              {"name": "wrong error", "input": {"job": {"labels": ["linux"]}}, "expect_error": "trap"}
            ]}"#,
    )
    .unwrap();
    let outcomes: Vec<_> = cases::load(&path)
        .unwrap()
        .iter()
        .map(|case| cases::run(&policy, case))
        .collect();
    let passed: Vec<bool> = outcomes.iter().map(|o| o.passed()).collect();
    assert_eq!(passed, [true, false, false]);
}

#[test]
fn hostile_calls_are_stopped_within_50ms_with_a_typed_error() {
    let router = hostile();
    // Warm up: the first call may pay for lazy initialisation.
    router.route(&job("fine"), &pools()).unwrap();
    type Check = fn(&PolicyError) -> bool;
    let cases: [(&str, Check); 5] = [
        ("spin", |e| {
            matches!(
                e,
                PolicyError::OutOfFuel { .. } | PolicyError::Timeout { .. }
            )
        }),
        ("trap", |e| matches!(e, PolicyError::Trap { .. })),
        (
            "alloc-bomb",
            |e| matches!(e, PolicyError::MemoryLimit { limit_bytes } if *limit_bytes == 16 << 20),
        ),
        // Rust's shadow stack lives in linear memory: overflowing it is an out-of-bounds trap.
        ("recurse", |e| matches!(e, PolicyError::Trap { .. })),
        (
            "unknown-pool",
            |e| matches!(e, PolicyError::UnknownPool { pool, known } if pool == "no-such-pool" && known.len() == 2),
        ),
    ];
    for (name, expected) in cases {
        let started = Clock::now();
        let error = router.route(&job(name), &pools()).expect_err(name);
        let elapsed = started.elapsed();
        assert!(expected(&error), "{name}: unexpected error {error:?}");
        assert!(
            elapsed <= Duration::from_millis(50),
            "{name} took {elapsed:?}"
        );
        assert!(!error.to_string().is_empty());
    }
    // The engine and the policy are still fine after all that.
    let decision = router.route(&job("fine"), &pools()).unwrap();
    assert!(matches!(decision, RouteDecision::Run { pool, .. } if pool == "linux"));
}

#[test]
fn an_endless_loop_is_stopped_by_the_time_budget_too() {
    // With fuel to spare, the epoch deadline must still stop the call.
    let engine = PolicyEngine::new(EngineConfig {
        fuel: u64::MAX / 2,
        time_budget: Duration::from_millis(5),
        ..EngineConfig::default()
    })
    .unwrap();
    let router = engine
        .load(&module("tests/hostile-router.wasm"))
        .unwrap()
        .router()
        .unwrap();
    router.route(&job("fine"), &pools()).unwrap();
    let started = Clock::now();
    let error = router.route(&job("spin"), &pools()).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, PolicyError::Timeout { .. }), "{error:?}");
    assert_eq!(error.kind(), "timeout");
    assert!(elapsed <= Duration::from_millis(50), "took {elapsed:?}");
}

#[test]
fn malformed_bytes_are_refused() {
    let valid = module("labels-router.wasm");
    let core_module = wat::parse_str("(module (func (export \"route\")))").unwrap();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"definitely not wasm".to_vec()),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("core module", core_module),
        ("empty component", wat::parse_str("(component)").unwrap()),
    ];
    for (name, bytes) in inputs {
        let started = Clock::now();
        let error = engine().load(&bytes).expect_err(name);
        assert!(
            matches!(error, PolicyError::Malformed { .. }),
            "{name}: {error:?}"
        );
        assert!(started.elapsed() <= Duration::from_millis(50), "{name}");
    }
}

#[test]
fn a_component_that_imports_a_host_function_is_refused() {
    let bytes = wat::parse_str(
        r#"(component
             (import "acme:clock/now@1.0.0" (instance (export "now" (func (result u64))))))"#,
    )
    .unwrap();
    let error = engine().load(&bytes).unwrap_err();
    match error {
        PolicyError::ForbiddenImports { refused } => {
            assert_eq!(refused, ["acme:clock/now@1.0.0"])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_policy_of_the_other_world_is_refused() {
    let throttle = engine().load(&module("fair-share.wasm")).unwrap();
    assert_eq!(throttle.world(), World::Throttle);
    let error = throttle.router().unwrap_err();
    assert!(
        matches!(
            error,
            PolicyError::WrongWorld {
                expected: World::Router,
                ..
            }
        ),
        "{error:?}"
    );
    let router = engine().load(&module("labels-router.wasm")).unwrap();
    let error = router.throttle().unwrap_err();
    assert_eq!(error.kind(), "wrong-world");
}

#[test]
fn fallbacks_turn_failures_into_decisions_that_say_why() {
    let router = hostile();
    let decided = router.route_or_fallback(
        &job("trap"),
        &pools(),
        &RouterFallback::Pool("linux".into()),
    );
    assert!(decided.is_fallback());
    match &decided.decision {
        RouteDecision::Run { pool, reason, .. } => {
            assert_eq!(pool, "linux");
            assert!(
                reason.contains("trap") && reason.contains("fail-open"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let decided = router.route_or_fallback(&job("unknown-pool"), &pools(), &RouterFallback::Ignore);
    assert!(
        matches!(&decided.decision, RouteDecision::Ignore { reason } if reason.contains("unknown-pool") && reason.contains("fail-closed"))
    );
    let decided = router.route_or_fallback(&job("fine"), &pools(), &RouterFallback::Ignore);
    assert!(!decided.is_fallback());

    // A throttle that fails: a pool whose settings make business-hours fail is not a
    // failure, so use fuel exhaustion with an engine that has almost none.
    let starved = PolicyEngine::new(EngineConfig {
        fuel: 10,
        ..EngineConfig::default()
    })
    .unwrap();
    let throttle = starved
        .load(&module("fair-share.wasm"))
        .unwrap()
        .throttle()
        .unwrap();
    let pool = Pool {
        name: "linux".into(),
        ..Pool::default()
    };
    let load = Load::default();
    let decided = throttle.decide_or_fallback(&job("x"), &pool, &load, ThrottleFallback::Reject);
    assert_eq!(
        decided.failure.as_ref().map(PolicyError::kind),
        Some("out-of-fuel")
    );
    assert!(
        matches!(&decided.decision, ThrottleDecision::Reject { reason } if reason.contains("out-of-fuel"))
    );
    let decided = throttle.decide_or_fallback(&job("x"), &pool, &load, ThrottleFallback::Admit);
    assert!(matches!(decided.decision, ThrottleDecision::Admit { .. }));
}

#[test]
fn throttles_decide_from_the_load() {
    let throttle = engine()
        .load(&module("fair-share.wasm"))
        .unwrap()
        .throttle()
        .unwrap();
    let pool = Pool {
        name: "shared".into(),
        max_running: 4,
        ..Pool::default()
    };
    let mut load = Load {
        now: Instant::from_unix(1_795_641_527),
        ..Load::default()
    };
    assert!(matches!(
        throttle.decide(&job("x"), &pool, &load).unwrap(),
        ThrottleDecision::Admit { .. }
    ));
    load.pool = Counts {
        running: 3,
        booting: 1,
        waiting: 2,
    };
    assert!(matches!(
        throttle.decide(&job("x"), &pool, &load).unwrap(),
        ThrottleDecision::Wait { .. }
    ));
}

#[test]
fn precompiled_policies_load_and_decide_the_same() {
    let bytes = module("labels-router.wasm");
    let host = Target::host().expect("a supported architecture");
    let artefact = engine().precompile(&bytes, host).unwrap();
    // SAFETY: precompiled just above by this engine.
    let policy = unsafe { engine().load_precompiled(&artefact) }.unwrap();
    let job = Job {
        labels: vec!["self-hosted".into(), "gpu".into()],
        ..job("x")
    };
    let from_artefact = policy.router().unwrap().route(&job, &pools()).unwrap();
    let from_source = engine()
        .load(&bytes)
        .unwrap()
        .router()
        .unwrap()
        .route(&job, &pools())
        .unwrap();
    assert_eq!(from_artefact, from_source);
    assert!(matches!(from_artefact, RouteDecision::Run { pool, .. } if pool == "gpu"));

    // Graviton artefacts build here but do not load here.
    let other = if host == Target::X86_64 {
        Target::Aarch64
    } else {
        Target::X86_64
    };
    let foreign = engine().precompile(&bytes, other).unwrap();
    assert_ne!(foreign, artefact);
    // SAFETY: produced by precompile; refusing it is the point.
    let error = unsafe { engine().load_precompiled(&foreign) }.unwrap_err();
    assert_eq!(error.kind(), "incompatible", "{error}");
    // Source bytes are not a precompiled artefact, nor the other way round.
    // SAFETY: refused before any code is used.
    assert_eq!(
        unsafe { engine().load_precompiled(&bytes) }
            .unwrap_err()
            .kind(),
        "incompatible"
    );
    assert_eq!(engine().load(&artefact).unwrap_err().kind(), "malformed");
}

#[test]
fn compiled_policies_are_cached_by_content_hash_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..test_config()
    };
    let bytes = module("business-hours.wasm");
    let first = PolicyEngine::new(config.clone())
        .unwrap()
        .load(&bytes)
        .unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(cached.len(), 1);
    let name = cached[0]
        .as_ref()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    assert!(
        name.starts_with(first.sha256()) && name.ends_with(".cwasm"),
        "{name}"
    );
    // A second process (a new engine) loads the artefact instead of compiling.
    let second = PolicyEngine::new(config).unwrap().load(&bytes).unwrap();
    assert_eq!(second.world(), World::Throttle);
    assert_eq!(second.sha256(), first.sha256());
}

#[test]
fn loading_from_a_missing_file_says_which() {
    let error = engine().load_file("/nonexistent/policy.wasm").unwrap_err();
    assert!(error.to_string().contains("/nonexistent/policy.wasm"));
    assert_eq!(error.kind(), "io");
}
