//! Policy host benchmarks: warm decision latency (against the same matching as a native
//! closure, a prepared instance against one made on the call and against a reused
//! instance), precompiled load, and memory per loaded policy. Needs scripts/build-policies.sh to have run.
//!
//! cargo bench -p runway-policy-host --bench policy

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use runway_policy_host::{
    EngineConfig, InstanceAllocation, InstanceReuse, Job, PolicyEngine, Pool, RouteDecision, Target,
};

#[path = "../../examples/labels-router/src/matching.rs"]
#[allow(dead_code, unused_imports)]
mod matching;

mod raw {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "runway:policy/router@0.1.0",
    });
}

fn module(name: &str) -> Vec<u8> {
    runway_testkit::built_policy_bytes(name).unwrap_or_else(|error| panic!("{error}"))
}

fn pools() -> Vec<Pool> {
    [
        ("linux-small", &["linux", "x64"][..]),
        ("linux-large", &["linux", "x64", "large"][..]),
        ("gpu", &["linux", "x64", "gpu"][..]),
        ("arm", &["linux", "arm64"][..]),
    ]
    .into_iter()
    .map(|(name, labels)| Pool {
        name: name.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        instance_types: vec!["m7i.large".into()],
        max_running: 50,
        ..Pool::default()
    })
    .collect()
}

fn job() -> Job {
    Job {
        job_id: 29_679_449,
        run_id: 10_548_712_345,
        repository: "acme/api".into(),
        owner: "acme".into(),
        labels: vec![
            "self-hosted".into(),
            "linux".into(),
            "x64".into(),
            "gpu".into(),
        ],
        workflow_name: "CI".into(),
        job_name: "build".into(),
        branch: Some("main".into()),
        ..Job::default()
    }
}

/// The labels router's work, natively: parse the labels, match, and write the decision.
fn native_route(job: &Job, pools: &[Pool]) -> RouteDecision {
    let request = matching::parse(&job.labels);
    match matching::best_pool(&request.labels, pools.iter().map(|p| p.labels.as_slice())) {
        Some((index, extra)) => RouteDecision::Run {
            pool: pools[index].name.clone(),
            overrides: Default::default(),
            reason: format!(
                "labels [{}] match pool {} ({extra} extra labels)",
                request.labels.join(", "),
                pools[index].name
            ),
        },
        None => RouteDecision::Ignore {
            reason: "no pool".into(),
        },
    }
}

fn decision_latency(c: &mut Criterion) {
    let bytes = module("labels-router.wasm");
    let job = job();
    let pools = pools();
    let mut group = c.benchmark_group("route");
    group.measurement_time(Duration::from_secs(3));
    for (name, allocation, prepared_instances) in [
        (
            "wasm prepared instance, pooling (the default)",
            InstanceAllocation::Pooling { max_instances: 64 },
            EngineConfig::default().prepared_instances,
        ),
        (
            "wasm prepared instance, on-demand",
            InstanceAllocation::OnDemand,
            EngineConfig::default().prepared_instances,
        ),
        (
            "wasm instance made on the call, pooling",
            InstanceAllocation::Pooling { max_instances: 64 },
            0,
        ),
        (
            "wasm instance made on the call, on-demand",
            InstanceAllocation::OnDemand,
            0,
        ),
    ] {
        let engine = PolicyEngine::new(EngineConfig {
            allocation,
            prepared_instances,
            ..EngineConfig::default()
        })
        .unwrap();
        let router = engine.load(&bytes).unwrap().router().unwrap();
        assert!(
            matches!(router.route(&job, &pools).unwrap(), RouteDecision::Run { pool, .. } if pool == "gpu")
        );
        // One decision at a time, each timed alone once the spares are topped up again: the
        // latency of a decision when jobs arrive slower than instances are prepared.
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    while router.policy().prepared_instances() < prepared_instances {
                        std::thread::yield_now();
                    }
                    let started = Instant::now();
                    black_box(router.route(black_box(&job), black_box(&pools)).unwrap());
                    total += started.elapsed();
                }
                total
            })
        });
    }

    // Back to back: decisions outrun the preparing thread, so this is the sustained rate
    // of one caller, part of the calls making their instance on the spot.
    let engine = PolicyEngine::new(EngineConfig::default()).unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    group.bench_function("wasm back to back, pooling (the default)", |b| {
        b.iter(|| router.route(black_box(&job), black_box(&pools)).unwrap())
    });

    // Opt-in reuse: a warm instance serves the next call, one call in 100 is checked against
    // a pristine instance.
    let engine = PolicyEngine::new(EngineConfig {
        reuse: InstanceReuse::Verified { verify_every: 100 },
        ..EngineConfig::default()
    })
    .unwrap();
    let router = engine.load(&bytes).unwrap().router().unwrap();
    group.bench_function("wasm warm instance, verified reuse (opt-in)", |b| {
        b.iter(|| router.route(black_box(&job), black_box(&pools)).unwrap())
    });

    // A reused instance, to weigh what a fresh instance per call costs.
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true).epoch_interruption(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = wasmtime::component::Component::new(&engine, &bytes).unwrap();
    let linker = wasmtime::component::Linker::<()>::new(&engine);
    let mut store = wasmtime::Store::new(&engine, ());
    store.set_fuel(u64::MAX).unwrap();
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = raw::Router::instantiate(&mut store, &component, &linker).unwrap();
    let wit_pools: Vec<raw::exports::runway::policy::routing::Pool> = pools
        .iter()
        .map(|p| raw::exports::runway::policy::routing::Pool {
            name: p.name.clone(),
            labels: p.labels.clone(),
            instance_types: p.instance_types.clone(),
            image: None,
            disk_gib: None,
            market: raw::exports::runway::policy::routing::Market::Spot,
            max_running: p.max_running,
            max_booting: p.max_booting,
            params: vec![],
        })
        .collect();
    let wit_job = raw::exports::runway::policy::routing::Job {
        job_id: job.job_id,
        run_id: job.run_id,
        run_attempt: 1,
        repository: job.repository.clone(),
        owner: job.owner.clone(),
        labels: job.labels.clone(),
        workflow_name: job.workflow_name.clone(),
        job_name: job.job_name.clone(),
        branch: job.branch.clone(),
        default_branch: "main".into(),
        event_time: raw::exports::runway::policy::routing::Instant {
            seconds: 0,
            nanoseconds: 0,
        },
        installation_id: 0,
    };
    group.bench_function("wasm reused instance (not used: state would leak)", |b| {
        b.iter(|| {
            instance
                .runway_policy_routing()
                .call_route(&mut store, black_box(&wit_job), black_box(&wit_pools))
                .unwrap()
        })
    });

    group.bench_function("native closure", |b| {
        b.iter(|| native_route(black_box(&job), black_box(&pools)))
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let bytes = module("labels-router.wasm");
    let host = Target::host().expect("supported architecture");
    let config = EngineConfig {
        allocation: InstanceAllocation::OnDemand,
        ..EngineConfig::default()
    };
    let artefact = PolicyEngine::new(config.clone())
        .unwrap()
        .precompile(&bytes, host)
        .unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(30);
    // A new engine per iteration (outside the measurement) so that its cache is empty.
    group.bench_function("precompiled (.cwasm)", |b| {
        b.iter_batched(
            || PolicyEngine::new(config.clone()).unwrap(),
            // SAFETY: precompiled above by an engine with the same settings.
            |engine| unsafe { engine.load_precompiled(black_box(&artefact)) }.unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("from source (compile)", |b| {
        b.iter_batched(
            || PolicyEngine::new(config.clone()).unwrap(),
            |engine| engine.load(black_box(&bytes)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Not a timing: prints what a loaded policy costs in memory.
fn memory(_: &mut Criterion) {
    const ENGINES: usize = 40;
    let config = EngineConfig {
        allocation: InstanceAllocation::OnDemand,
        ..EngineConfig::default()
    };
    for name in [
        "labels-router.wasm",
        "fair-share.wasm",
        "business-hours.wasm",
    ] {
        let bytes = module(name);
        let host = Target::host().unwrap();
        let artefact = PolicyEngine::new(config.clone())
            .unwrap()
            .precompile(&bytes, host)
            .unwrap();
        let engines: Vec<PolicyEngine> = (0..ENGINES)
            .map(|_| PolicyEngine::new(config.clone()).unwrap())
            .collect();
        let before = resident_bytes();
        let policies: Vec<_> = engines
            .iter()
            // SAFETY: precompiled above with the same settings.
            .map(|engine| unsafe { engine.load_precompiled(&artefact) }.unwrap())
            .collect();
        let after = resident_bytes();
        println!(
            "memory {name}: component {} B, precompiled {} B, resident per loaded policy {} B (mean over {ENGINES})",
            bytes.len(),
            artefact.len(),
            after.saturating_sub(before) / ENGINES
        );
        drop(policies);
    }
}

criterion_group!(benches, decision_latency, load, memory);
criterion_main!(benches);
