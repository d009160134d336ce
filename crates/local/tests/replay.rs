//! `runway replay` on the real job machine: a tiny trace whose waits, runner-minutes and cost
//! are worked out by hand, and two policies compared on a generated day.

use runway_local::LocalConfig;
use runway_local::replay::generate::{GenerateOptions, generate};
use runway_local::replay::report::Comparison;
use runway_local::replay::{ReplayOptions, replay_blocking, trace};

/// One pool of one runner at a time, on-demand m7i.large at $0.12 an hour (0.2 cents a
/// minute), booting in exactly 30 s, never failing; no policies (label matching, admission
/// up to the ceiling). A waiting job is re-checked only after 900 s, so it is the slot freed
/// by the job before it that admits it.
const ONE_RUNNER: &str = r#"
[github]
mode = "emulator"
repositories = ["octo-org/app"]
organizations = ["octo-org"]

[[pools]]
name = "linux"
labels = ["self-hosted", "linux"]
instance_types = ["m7i.large"]
market = "on-demand"
max_running = 1
boot_timeout_seconds = 300
idle_timeout_seconds = 60
recheck_after_seconds = 900

[replay]
seed = 1

[replay.prices]
"m7i.large" = { on-demand = 0.12, spot = 0.04 }

[replay.pools.linux]
boot_seconds = 30
"#;

/// Three jobs for the pool: two a few seconds apart (the second waits for the first's slot),
/// a third alone ten minutes later; and one for GitHub's own runners, which runway leaves.
const TINY_TRACE: &str = r#"
{"at": "2026-12-07T09:00:00Z", "repository": "octo-org/app", "organization": "octo-org", "labels": ["self-hosted", "linux"], "run_seconds": 120}
{"at": "2026-12-07T09:00:10Z", "repository": "octo-org/app", "labels": ["self-hosted", "linux"], "run_seconds": 60}
{"at": "2026-12-07T09:10:00Z", "repository": "octo-org/app", "labels": ["self-hosted", "linux"], "run_seconds": 30}
{"at": "2026-12-07T09:20:00Z", "repository": "octo-org/app", "labels": ["ubuntu-latest"], "run_seconds": 10}
"#;

fn options(label: &str) -> ReplayOptions {
    ReplayOptions {
        label: label.to_owned(),
        ..ReplayOptions::default()
    }
}

#[test]
fn a_tiny_trace_replays_to_the_figures_worked_out_by_hand() {
    let config = LocalConfig::from_toml_str(ONE_RUNNER).unwrap();
    let jobs = trace::parse(TINY_TRACE).unwrap();
    let report = replay_blocking(config.clone(), &jobs, &options("one-runner")).unwrap();
    eprintln!("{report}");

    // Job 1 (09:00:00): admitted and launched at once; its runner boots 30 s and takes it.
    //   wait 30 s; runs 09:00:30–09:02:30; the runner is torn down at 09:02:30 (150 s).
    // Job 2 (09:00:10): the pool's one slot is held; it waits until job 1's teardown frees
    //   it at 09:02:30, is launched then, boots 30 s: starts 09:03:00, wait 170 s; runs to
    //   09:04:00; runner lifetime 90 s.
    // Job 3 (09:10:00): launched at once, starts 09:10:30, wait 30 s; runs to 09:11:00;
    //   runner lifetime 60 s.
    let all = &report.overall;
    // Job 4 asks for GitHub's runners: no execution, never run.
    assert_eq!(report.jobs, 4);
    assert_eq!(all.jobs, 3);
    assert_eq!(report.jobs_not_run, 1);
    assert_eq!(report.jobs_failed, 0);
    assert_eq!(all.wait_seconds.p50, 30.0);
    assert_eq!(all.wait_seconds.p95, 170.0);
    assert_eq!(all.wait_seconds.max, 170.0);
    assert!((all.wait_seconds.mean - 230.0 / 3.0).abs() < 1e-9);
    assert_eq!(all.runners, 3);
    // 150 + 90 + 60 s of instances = 5 minutes, of which 120 + 60 + 30 s ran jobs.
    assert!(
        (all.runner_minutes - 5.0).abs() < 1e-9,
        "{}",
        all.runner_minutes
    );
    assert!(
        (all.busy_minutes - 3.5).abs() < 1e-9,
        "{}",
        all.busy_minutes
    );
    assert!(
        (all.idle_minutes - 1.5).abs() < 1e-9,
        "{}",
        all.idle_minutes
    );
    // 300 billed seconds at $0.12 an hour.
    assert!((all.cost_usd - 0.01).abs() < 1e-12, "{}", all.cost_usd);
    // Job 2 was told to wait once, by the ceiling of one.
    assert_eq!(all.ceilings_hit, 1);
    assert_eq!(all.policy_waits, 0);
    assert_eq!(all.capacity_errors, 0);
    assert_eq!(all.market_fallbacks, 0);
    assert_eq!(all.spot_reclaims, 0);
    assert!(report.policy_fallbacks.is_empty());
    assert!(report.executions_not_succeeded.is_empty(), "{report:?}");
    assert_eq!(report.pools.len(), 1);
    assert_eq!(report.pools[0].pool, "linux");
    assert_eq!(report.pools[0].wait_seconds, all.wait_seconds);
    assert!(report.unpriced.is_empty());

    // The same trace and configuration give the same figures.
    let again = replay_blocking(config, &jobs, &options("one-runner")).unwrap();
    assert_eq!(
        ReplayReportFigures::of(&again),
        ReplayReportFigures::of(&report)
    );
}

/// A report without its wall-clock time.
#[derive(Debug, PartialEq)]
struct ReplayReportFigures(String);

impl ReplayReportFigures {
    fn of(report: &runway_local::replay::report::ReplayReport) -> Self {
        let mut report = report.clone();
        report.wall_seconds = 0.0;
        ReplayReportFigures(serde_json::to_string(&report).unwrap())
    }
}

/// Two pools' worth of generated jobs through a small ceiling, then through a large one with
/// slow, flaky spot capacity.
fn pools(max_running: u32, market: &str, simulation: &str) -> String {
    format!(
        r#"
[github]
mode = "emulator"

[[pools]]
name = "linux-x64"
labels = ["self-hosted", "linux", "x64"]
instance_types = ["m7i.large"]
market = "{market}"
max_running = {max_running}
idle_timeout_seconds = 60
boot_timeout_seconds = 300

[[pools]]
name = "linux-arm64"
labels = ["self-hosted", "linux", "arm64"]
instance_types = ["m7g.large"]
market = "{market}"
max_running = {max_running}
idle_timeout_seconds = 60
boot_timeout_seconds = 300

[[pools]]
name = "gpu"
labels = ["self-hosted", "linux", "gpu"]
instance_types = ["g5.xlarge"]
market = "on-demand"
max_running = 2
idle_timeout_seconds = 60
boot_timeout_seconds = 300

[replay]
seed = 3

[replay.prices]
"m7i.large" = {{ on-demand = 0.1008, spot = 0.0390 }}
"m7g.large" = {{ on-demand = 0.0816, spot = 0.0320 }}
"g5.xlarge" = {{ on-demand = 1.006, spot = 0.40 }}

{simulation}
"#
    )
}

#[test]
fn two_configurations_compare_on_a_generated_day() {
    let jobs = generate(&GenerateOptions {
        jobs: 300,
        seed: 5,
        ..GenerateOptions::default()
    });
    let tight = LocalConfig::from_toml_str(&pools(
        2,
        "on-demand",
        "[replay.pools.linux-x64]\nboot_seconds = 40\n",
    ))
    .unwrap();
    let roomy = LocalConfig::from_toml_str(&pools(
        50,
        "spot",
        r#"
[replay.pools.linux-x64]
boot_seconds = { median = 45, p95 = 120 }
capacity_error_rate = 0.2
spot_reclaims_per_hour = 0.5
[replay.pools.linux-arm64]
boot_seconds = { min = 30, max = 60 }
"#,
    ))
    .unwrap();
    let a = replay_blocking(tight, &jobs, &options("tight.toml")).unwrap();
    let b = replay_blocking(roomy, &jobs, &options("roomy.toml")).unwrap();
    let comparison = Comparison { a, b };
    let table = comparison.to_string();
    eprintln!("{table}");
    let (a, b) = (&comparison.a, &comparison.b);
    assert_eq!(a.jobs, 300);
    assert_eq!(a.jobs_not_run, 0, "{a}");
    // A ceiling of two makes jobs queue; fifty hardly ever does.
    assert!(a.overall.ceilings_hit > b.overall.ceilings_hit, "{table}");
    assert!(
        a.overall.wait_seconds.p95 > b.overall.wait_seconds.p95,
        "{table}"
    );
    // Spot with 20 % capacity errors falls back to on-demand some of the time, and some
    // spot runners are reclaimed.
    assert!(b.overall.capacity_errors > 0, "{table}");
    assert!(b.overall.market_fallbacks > 0, "{table}");
    assert_eq!(a.overall.capacity_errors, 0);
    assert!(a.overall.cost_usd > 0.0 && b.overall.cost_usd > 0.0);
    for figure in [
        "wait p95",
        "cost $",
        "ceilings hit",
        "A: tight.toml",
        "B: roomy.toml",
    ] {
        assert!(table.contains(figure), "{figure} missing from\n{table}");
    }
    let json = serde_json::to_value(&comparison).unwrap();
    assert_eq!(json["a"]["config"], "tight.toml");
    assert!(json["b"]["overall"]["wait_seconds"]["p95"].is_number());
}

#[test]
fn a_configuration_for_a_real_github_app_is_refused_with_what_to_do() {
    let config = LocalConfig::from_toml_str(
        r#"
[github]
mode = "app"
app_id = 1
installation_id = 2
private_key_file = "key.pem"

[[pools]]
name = "linux"
labels = ["self-hosted", "linux"]
"#,
    )
    .unwrap();
    let jobs = trace::parse(TINY_TRACE).unwrap();
    let error = replay_blocking(config, &jobs, &options("app.toml"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("mode = \"emulator\""), "{error}");
}

#[test]
fn simulation_settings_for_an_unknown_pool_are_refused() {
    let error = LocalConfig::from_toml_str(&format!(
        "{ONE_RUNNER}\n[replay.pools.gpu]\nboot_seconds = 10\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("[replay.pools.gpu] names no pool"),
        "{error}"
    );
}

#[test]
fn the_sample_day_configurations_read() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sam");
    for name in ["replay-day.toml", "replay-day-lean.toml"] {
        let config = LocalConfig::from_file(&root.join(name)).unwrap();
        assert_eq!(config.pools().count(), 3, "{name}");
        assert!(config.replay.price("m7i.large", "spot").is_some(), "{name}");
    }
}

/// The speed figure of BENCHMARKS.md: a generated day through `sam/replay-day.toml` without its
/// policies (the example policies are built separately). `RUNWAY_REPLAY_JOBS` jobs (10,000 by
/// default); run with `cargo test --release -p runway-local --test replay -- --ignored
/// --nocapture a_generated_day`.
#[test]
#[ignore = "a benchmark: run it in release"]
fn a_generated_day_replays_in_under_a_minute() {
    let jobs: usize = std::env::var("RUNWAY_REPLAY_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sam");
    let mut config = LocalConfig::from_file(&root.join("replay-day.toml")).unwrap();
    if std::env::var_os("RUNWAY_REPLAY_POLICIES").is_none() {
        config.policies = Default::default();
    }
    let trace = generate(&GenerateOptions {
        jobs,
        ..GenerateOptions::default()
    });
    let started = std::time::Instant::now();
    let report = replay_blocking(config, &trace, &options("replay-day.toml")).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{report}");
    eprintln!(
        "{jobs} jobs replayed in {seconds:.1} s ({:.0} jobs/s); peak memory {:?} MiB",
        jobs as f64 / seconds,
        runway_local::bench::peak_rss_mib()
    );
    assert_eq!(report.jobs, jobs);
}

/// `runway bench --warm` on a small trace: one job every ten minutes, runners that take a
/// minute to register. On the cold pool every job waits for a boot; on the warm pool every
/// job finds a warm runner, and the report says what that saved and what it cost.
#[test]
fn a_warm_pool_serves_jobs_faster_than_the_pool_boots() {
    use runway_local::warm_bench::{WarmBenchOptions, run_blocking};
    let report = run_blocking(&WarmBenchOptions {
        jobs: 6,
        every_seconds: 600,
        boot_seconds: 60.0,
        run_seconds: 60.0,
        idle: 1,
    })
    .unwrap();
    eprintln!("{report}");
    assert_eq!((report.cold.jobs_not_run, report.warm.jobs_not_run), (0, 0));
    assert!(report.cold.wait_seconds.p50 >= 60.0, "{report}");
    assert!(report.warm.wait_seconds.max < 60.0, "{report}");
    assert_eq!(report.cold.warm_jobs, 0);
    assert_eq!(report.warm.warm_jobs, 6, "{report}");
    // Each job saved about a boot; the warm runners idled between jobs.
    assert!(report.warm.wait_saved_minutes > 5.0, "{report}");
    assert!(report.warm.warm_idle_minutes > 30.0, "{report}");
    let text = report.to_string();
    assert!(text.contains("warm runners ran 6 of 6 jobs"), "{text}");
}
