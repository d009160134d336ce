//! Policies built by language runtimes (CPython with componentize-py, a JavaScript engine with
//! componentize-js) on the deterministic WASI: the Python and TypeScript examples against
//! their recorded cases, and a Python probe that tries every way out of a decision (clocks,
//! randomness, environment, files, sockets, sleeping, exceptions, loops, memory, output).
//! All are built from source by scripts/build-policies.sh.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use runway_policy_host::{
    CAPTURED_OUTPUT_BYTES, EngineConfig, Instant, Job, Policy, PolicyBounds, PolicyEngine,
    PolicyError, Pool, RouteDecision, RouterPolicy, World, cases,
};

fn module(relative: &str) -> Vec<u8> {
    runway_testkit::built_policy_bytes(relative).unwrap()
}

/// One engine for the file, whose compiled policies are kept between runs: a runtime's
/// component is tens of megabytes and takes seconds to compile.
fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        PolicyEngine::new(EngineConfig {
            cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("policy-cache")),
            ..EngineConfig::default()
        })
        .expect("engine")
    })
}

/// Loads `relative` with `bounds` once for the whole file: tests run in parallel and would
/// otherwise compile the same component side by side.
fn policy(relative: &str, bounds: PolicyBounds) -> Policy {
    static LOADED: Mutex<Option<HashMap<(String, PolicyBounds), Policy>>> = Mutex::new(None);
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loaded
        .get_or_insert_with(HashMap::new)
        .entry((relative.to_owned(), bounds))
        .or_insert_with(|| engine().load_with(&module(relative), &bounds).unwrap())
        .clone()
}

fn probe() -> RouterPolicy {
    policy("tests/python-probe.wasm", PolicyBounds::default())
        .router()
        .expect("the probe is a router")
}

/// The probe with a generous time budget, so that what stops it is the bound under test and
/// not a loaded machine.
fn unhurried_probe(bounds: PolicyBounds) -> RouterPolicy {
    policy(
        "tests/python-probe.wasm",
        PolicyBounds {
            time_budget: Some(Duration::from_secs(30)),
            ..bounds
        },
    )
    .router()
    .expect("the probe is a router")
}

fn job(name: &str) -> Job {
    Job {
        job_id: 29_679_449,
        run_id: 10_548_712_345,
        run_attempt: 1,
        repository: "acme/api".into(),
        owner: "acme".into(),
        labels: vec!["self-hosted".into(), "linux".into()],
        job_name: name.into(),
        event_time: Instant::from_unix(1_764_063_000), // 2025-11-25T09:30:00Z
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

/// The reason of the probe's `ignore` for `name`.
fn probed(name: &str) -> String {
    match probe().route(&job(name), &pools()) {
        Ok(RouteDecision::Ignore { reason }) => reason,
        other => panic!("{name}: expected the probe's report, got {other:?}"),
    }
}

fn passes_its_cases(name: &str, world: World) {
    let policy = policy(&format!("{name}.wasm"), PolicyBounds::default());
    assert_eq!(policy.world(), world, "{name}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .join("cases.json");
    let cases = cases::load(&path).unwrap();
    assert!(cases.len() >= 5, "{name} has too few cases");
    let failures: Vec<String> = cases
        .iter()
        .map(|case| cases::run(&policy, case))
        .filter(|outcome| !outcome.passed())
        .map(|outcome| format!("{}: {:?}", outcome.name, outcome.failure))
        .collect();
    assert!(failures.is_empty(), "{name}: {failures:#?}");
}

#[test]
fn the_python_router_passes_its_recorded_cases() {
    passes_its_cases("python-router", World::Router);
}

#[test]
fn the_typescript_throttle_passes_its_recorded_cases() {
    passes_its_cases("typescript-throttle", World::Throttle);
}

#[test]
fn what_a_policy_prints_is_kept_with_its_decision() {
    let router = policy("python-router.wasm", PolicyBounds::default())
        .router()
        .unwrap();
    let mut job = job("build");
    job.labels = vec!["self-hosted".into(), "linux".into()];
    let (decision, output) = router.route_with_output(&job, &pools());
    assert!(
        matches!(decision, Ok(RouteDecision::Run { .. })),
        "{decision:?}"
    );
    assert_eq!(output.stdout, "route acme/api job 29679449: linux\n");
    assert_eq!(output.stderr, "");
}

#[test]
fn clocks_read_the_decisions_time_and_stand_still() {
    let seen = probed("clock");
    assert_eq!(
        seen,
        "time=1764063000.0 monotonic=1764063000.0 now=2025-11-25T09:30:00+00:00"
    );
    assert_eq!(
        probed("clock"),
        seen,
        "the same decision reads the same time"
    );
}

#[test]
fn randomness_is_seeded_from_the_job() {
    let first = probed("random");
    assert_eq!(
        probed("random"),
        first,
        "the same job draws the same numbers"
    );
    let mut other = job("random");
    other.run_attempt = 2;
    let Ok(RouteDecision::Ignore { reason }) = probe().route(&other, &pools()) else {
        panic!("the probe reports");
    };
    assert_ne!(reason, first, "another attempt draws other numbers");
}

#[test]
fn there_are_no_arguments_environment_files_or_sockets() {
    assert_eq!(
        probed("environment"),
        "environ={} argv=[] cwd=ok '/'",
        "no environment and no arguments"
    );
    let file = probed("file");
    assert!(file.starts_with("open: ") && !file.contains("ok"), "{file}");
    let listing = probed("listdir");
    assert!(!listing.contains("ok"), "{listing}");
    let socket = probed("socket");
    assert!(
        socket.starts_with("connect: ") && !socket.contains(" ok "),
        "{socket}"
    );
}

#[test]
fn a_policy_that_sleeps_is_stopped_with_a_reason() {
    let probe = unhurried_probe(PolicyBounds::default());
    let started = std::time::Instant::now();
    let error = probe.route(&job("sleep"), &pools()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "it did not sleep 5 s"
    );
    assert_eq!(error.kind(), "trap", "{error}");
    assert!(error.to_string().contains("must not wait"), "{error}");
}

#[test]
fn a_python_exception_is_a_trap_that_quotes_the_traceback() {
    let error = probe().route(&job("raise"), &pools()).unwrap_err();
    assert_eq!(error.kind(), "trap", "{error}");
    assert!(
        error
            .to_string()
            .contains("ValueError: the probe raises on purpose"),
        "{error}"
    );
}

#[test]
fn interpreters_are_bounded_by_fuel_time_and_memory() {
    let probe = unhurried_probe(PolicyBounds::default());
    let error = probe.route(&job("spin"), &pools()).unwrap_err();
    assert!(matches!(error, PolicyError::OutOfFuel { .. }), "{error:?}");
    let error = probe.route(&job("hoard"), &pools()).unwrap_err();
    assert!(
        matches!(error, PolicyError::MemoryLimit { limit_bytes } if limit_bytes == 128 << 20),
        "{error:?}"
    );
    let hurried = policy(
        "tests/python-probe.wasm",
        PolicyBounds {
            time_budget: Some(Duration::from_millis(50)),
            fuel: Some(u64::MAX / 2),
            ..PolicyBounds::default()
        },
    )
    .router()
    .unwrap();
    let error = hurried.route(&job("spin"), &pools()).unwrap_err();
    assert!(matches!(error, PolicyError::Timeout { .. }), "{error:?}");
    // And after all three the probe still decides.
    assert!(matches!(
        probe.route(&job("build"), &pools()),
        Ok(RouteDecision::Run { .. })
    ));
}

#[test]
fn bounds_are_set_per_policy() {
    let tight = unhurried_probe(PolicyBounds {
        fuel: Some(50_000_000),
        ..PolicyBounds::default()
    });
    match tight.route(&job("spin"), &pools()).unwrap_err() {
        PolicyError::OutOfFuel { fuel } => assert_eq!(fuel, 50_000_000),
        other => panic!("{other:?}"),
    }
    let error = engine()
        .load_with(
            &module("tests/python-probe.wasm"),
            &PolicyBounds {
                memory_limit_bytes: Some(1 << 40),
                ..PolicyBounds::default()
            },
        )
        .unwrap_err();
    assert!(error.to_string().contains("memory cap"), "{error}");
}

#[test]
fn output_is_bounded() {
    let (decision, output) = probe().route_with_output(&job("chatter"), &pools());
    assert!(decision.is_ok(), "{decision:?}");
    assert_eq!(output.stdout.len(), CAPTURED_OUTPUT_BYTES);
    assert_eq!(output.stderr, "a line on stderr\n");
    assert_eq!(output.dropped_bytes, 100_000 - CAPTURED_OUTPUT_BYTES as u64);
}

#[test]
fn exiting_is_a_trap() {
    let error = probe().route(&job("exit"), &pools()).unwrap_err();
    assert_eq!(error.kind(), "trap", "{error}");
}

#[test]
fn imports_outside_the_deterministic_wasi_are_refused_by_name() {
    let bytes = wat::parse_str(
        r#"(component
             (import "wasi:http/outgoing-handler@0.2.0" (instance))
             (import "acme:secrets/vault@1.0.0" (instance))
             (import "wasi:io/streams@0.2.0" (instance)))"#,
    )
    .unwrap();
    match engine().load(&bytes).unwrap_err() {
        PolicyError::ForbiddenImports { refused } => assert_eq!(
            refused,
            [
                "wasi:http/outgoing-handler@0.2.0",
                "acme:secrets/vault@1.0.0"
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wasi_import_of_another_shape_is_refused_with_the_reason() {
    let bytes = wat::parse_str(
        r#"(component
             (import "wasi:clocks/wall-clock@0.2.0" (instance (export "now" (func (result u64))))))"#,
    )
    .unwrap();
    let error = engine().load(&bytes).unwrap_err();
    assert_eq!(error.kind(), "import-mismatch", "{error}");
    assert!(
        error.to_string().contains("wasi:clocks/wall-clock"),
        "{error}"
    );
}
