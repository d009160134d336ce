//! Policies by language: what a policy compiled from Rust or C costs against one carried by a
//! language runtime (CPython by componentize-py, a JavaScript engine by componentize-js).
//! For each example: component size, compile time, `.cwasm` size and load time, decision
//! latency on a pristine instance (median and p95 of many), the fuel one decision needs
//! (instantiation included), and the memory a loaded policy adds to the process.
//! Needs scripts/build-policies.sh to have run.
//!
//! cargo bench -p runway-policy-host --bench runtimes [-- DECISIONS]

use std::time::{Duration, Instant as Clock};

use runway_policy_host::{
    Counts, EngineConfig, InstanceAllocation, Instant, Job, Load, Policy, PolicyBounds,
    PolicyEngine, PolicyError, Pool, Target, World,
};

struct Example {
    language: &'static str,
    file: &'static str,
}

const EXAMPLES: &[Example] = &[
    Example {
        language: "Rust",
        file: "labels-router.wasm",
    },
    Example {
        language: "C",
        file: "ceiling-c.wasm",
    },
    Example {
        language: "Python",
        file: "python-router.wasm",
    },
    Example {
        language: "TypeScript",
        file: "typescript-throttle.wasm",
    },
];

fn job() -> Job {
    Job {
        job_id: 29_679_449,
        run_id: 10_548_712_345,
        run_attempt: 1,
        repository: "acme/api".into(),
        owner: "acme".into(),
        labels: vec!["self-hosted".into(), "linux".into(), "x64".into()],
        workflow_name: "CI".into(),
        job_name: "build".into(),
        branch: Some("main".into()),
        default_branch: "main".into(),
        event_time: Instant::from_unix(1_764_063_000),
        ..Job::default()
    }
}

fn pools() -> Vec<Pool> {
    [
        ("linux", &["linux", "x64"][..]),
        ("large", &["linux", "x64", "large"][..]),
    ]
    .into_iter()
    .map(|(name, labels)| Pool {
        name: name.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        instance_types: vec!["m7i.large".into()],
        max_running: 20,
        max_booting: 5,
        ..Pool::default()
    })
    .collect()
}

fn load() -> Load {
    Load {
        pool: Counts {
            running: 3,
            booting: 1,
            waiting: 0,
        },
        org: Counts::default(),
        repo: Counts::default(),
        now: Instant::from_unix(1_764_063_005),
    }
}

/// One decision; panics on a failure (the bench measures working policies).
fn decide(policy: &Policy) {
    if let Err(error) = try_decide(policy) {
        panic!("the policy failed: {error}");
    }
}

fn try_decide(policy: &Policy) -> Result<(), PolicyError> {
    match policy.world() {
        World::Router => policy.router()?.route(&job(), &pools()).map(drop),
        World::Throttle => {
            let pools = pools();
            policy
                .throttle()?
                .decide(&job(), &pools[0], &load())
                .map(drop)
        }
    }
}

/// The least fuel a decision needs, to within 1 %, by bisection over the policy's own bound.
fn fuel_needed(engine: &PolicyEngine, bytes: &[u8]) -> u64 {
    let (mut enough, mut short) = (u64::MAX / 4, 1_000u64);
    while enough - short > enough / 100 {
        let fuel = short + (enough - short) / 2;
        let bounds = PolicyBounds {
            fuel: Some(fuel),
            time_budget: Some(Duration::from_secs(60)),
            ..PolicyBounds::default()
        };
        let policy = engine.load_with(bytes, &bounds).expect("loads");
        match try_decide(&policy) {
            Ok(()) => enough = fuel,
            Err(PolicyError::OutOfFuel { .. }) => short = fuel,
            Err(error) => panic!("the policy failed: {error}"),
        }
    }
    enough
}

/// Resident memory of this process, from /proc (Linux).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the decisions per example.
    let decisions: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200);
    // No instances made ahead: each decision instantiates on the call, so its time includes
    // the instance, as for a Lambda (which keeps none ahead either).
    // As a Lambda's engine (crates/setup: `policy_engine`).
    let config = EngineConfig {
        prepared_instances: 0,
        allocation: InstanceAllocation::Pooling { max_instances: 4 },
        ..EngineConfig::default()
    };
    let engine = PolicyEngine::new(config).expect("engine");
    let target = Target::host().expect("an x86_64 or aarch64 host");
    println!(
        "| language | component | compile | .cwasm | load .cwasm | decision p50 | p95 | fuel per decision | RSS per loaded policy |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for example in EXAMPLES {
        let bytes = match runway_testkit::built_policy_bytes(example.file) {
            Ok(bytes) => bytes,
            Err(error) => {
                println!("| {} | not built: {error} |", example.language);
                continue;
            }
        };
        let started = Clock::now();
        let artefact = engine.precompile(&bytes, target).expect("compiles");
        let compile = started.elapsed();
        // A fresh engine per example, so its load is a cold one and its memory its own.
        let fresh = PolicyEngine::new(EngineConfig {
            prepared_instances: 0,
            allocation: InstanceAllocation::Pooling { max_instances: 4 },
            ..EngineConfig::default()
        })
        .expect("engine");
        let before = rss_bytes().unwrap_or(0);
        let started = Clock::now();
        // SAFETY: produced just above by an engine with the same settings.
        let policy = unsafe { fresh.load_precompiled(&artefact) }.expect("loads");
        let load = started.elapsed();
        decide(&policy);
        let mut times = Vec::with_capacity(decisions);
        for _ in 0..decisions {
            let started = Clock::now();
            decide(&policy);
            times.push(started.elapsed());
        }
        let after = rss_bytes().unwrap_or(0);
        times.sort();
        let fuel = fuel_needed(&engine, &bytes);
        println!(
            "| {} | {} | {:.2} s | {} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} |",
            example.language,
            mib(bytes.len() as u64),
            compile.as_secs_f64(),
            mib(artefact.len() as u64),
            load.as_secs_f64() * 1e3,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            if fuel < 1_000_000 {
                format!("{:.0} k", fuel as f64 / 1e3)
            } else {
                format!("{:.1} M", fuel as f64 / 1e6)
            },
            mib(after.saturating_sub(before)),
        );
    }
}
