//! Properties of the labels router over random jobs: it never names a pool it was not
//! given, it decides the same way every time, and it agrees with the same matching code
//! compiled natively. And the parser of policy bounds (`fuel=…,time=…,memory=…`).

use std::sync::OnceLock;

use proptest::prelude::*;
use runway_policy_host::{EngineConfig, Job, PolicyEngine, Pool, RouteDecision, RouterPolicy};

#[path = "../../examples/labels-router/src/matching.rs"]
#[allow(dead_code)]
mod matching;

fn router() -> &'static RouterPolicy {
    static ROUTER: OnceLock<RouterPolicy> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let bytes = runway_testkit::built_policy_bytes("labels-router.wasm").unwrap();
        PolicyEngine::new(EngineConfig::default())
            .unwrap()
            .load(&bytes)
            .unwrap()
            .router()
            .unwrap()
    })
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "self-hosted",
            "Self-Hosted",
            "linux",
            "LINUX",
            "x64",
            "arm64",
            "gpu",
            "large",
            "windows",
            "ubuntu-latest",
            "disk=100",
            "spot=false",
            "spot=maybe",
            "instance-type=m7g.large+c7g.large",
            "image=ami-1",
            "disk=",
            "=",
            " ",
        ])
        .prop_map(String::from),
        "[a-z0-9=+ .-]{0,12}",
        any::<String>(),
    ]
}

fn pool() -> impl Strategy<Value = Pool> {
    ("[a-z]{1,8}", prop::collection::vec(label(), 0..5)).prop_map(|(name, labels)| Pool {
        name,
        labels,
        ..Pool::default()
    })
}

fn job() -> impl Strategy<Value = Job> {
    (
        prop::collection::vec(label(), 0..7),
        any::<String>(),
        any::<u64>(),
    )
        .prop_map(|(labels, job_name, run_id)| Job {
            labels,
            job_name,
            run_id,
            repository: "acme/api".into(),
            owner: "acme".into(),
            ..Job::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn the_router_names_only_given_pools_and_is_deterministic(
        job in job(),
        pools in prop::collection::vec(pool(), 0..6),
    ) {
        let first = router().route(&job, &pools);
        let second = router().route(&job, &pools);
        let first = first.expect("the labels router never fails");
        prop_assert_eq!(&first, &second.expect("nor the second time"));
        match &first {
            RouteDecision::Run { pool, .. } => {
                prop_assert!(pools.iter().any(|p| &p.name == pool));
            }
            RouteDecision::Ignore { reason } => prop_assert!(!reason.is_empty()),
        }
        // The same matching compiled natively picks the same pool.
        let request = matching::parse(&job.labels);
        let native = if request.labels.is_empty() || !request.labels.iter().any(|l| l == "self-hosted") {
            None
        } else {
            matching::best_pool(&request.labels, pools.iter().map(|p| p.labels.as_slice()))
                .map(|(index, _)| pools[index].name.clone())
        };
        let chosen = match &first {
            RouteDecision::Run { pool, .. } => Some(pool.clone()),
            RouteDecision::Ignore { .. } => None,
        };
        prop_assert_eq!(chosen, native);
    }
}

proptest::proptest! {
    /// Any bounds written out read back the same, and nothing panics the parser.
    #[test]
    fn policy_bounds_round_trip(
        fuel in proptest::option::of(1u64..u64::MAX),
        millis in proptest::option::of(1u64..10_000_000),
        mib in proptest::option::of(1usize..1 << 20),
    ) {
        let bounds = runway_policy_host::PolicyBounds {
            fuel,
            time_budget: millis.map(std::time::Duration::from_millis),
            memory_limit_bytes: mib.map(|mib| mib << 20),
        };
        let read: runway_policy_host::PolicyBounds = bounds.to_string().parse().unwrap();
        proptest::prop_assert_eq!(read, bounds);
    }

    #[test]
    fn policy_bounds_parser_never_panics(text in ".{0,40}") {
        let _ = text.parse::<runway_policy_host::PolicyBounds>();
    }
}

#[test]
fn policy_bounds_errors_say_what_is_expected() {
    use runway_policy_host::PolicyBounds;
    let read: PolicyBounds = "fuel=1_000_000, time=2s ,memory=1GiB".parse().unwrap();
    assert_eq!(read.fuel, Some(1_000_000));
    assert_eq!(read.time_budget, Some(std::time::Duration::from_secs(2)));
    assert_eq!(read.memory_limit_bytes, Some(1 << 30));
    assert_eq!("".parse::<PolicyBounds>().unwrap(), PolicyBounds::default());
    for (bad, says) in [
        ("fuel", "not key=value"),
        ("fuel=0", "positive whole number"),
        ("time=5", "duration such as 500ms"),
        ("memory=12MB", "size such as 128MiB"),
        ("cpu=2", "unknown bound \"cpu\""),
    ] {
        let error = bad.parse::<PolicyBounds>().unwrap_err();
        assert!(error.contains(says), "{bad}: {error}");
    }
}
