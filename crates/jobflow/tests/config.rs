//! The configuration, the step names and the local engine wiring.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use runway_jobflow::{ConfigError, Deps, FlowConfig, JobFlow, RunnerScopeLevel, Step};
use runway_policy_host::{Market, RouterFallback, ThrottleFallback};

const SAMPLE: &str = r#"
router_fallback = { pool = "linux-x64" }
throttle_fallback = "reject"

[github]
scope = { enterprise = "acme" }
runner_group_id = 3
runner_name_prefix = "ci"

[[pools]]
name = "linux-x64"
labels = ["self-hosted", "linux", "x64"]
market = "on-demand"
max_running = 4
max_per_org = 0
max_per_repo = 2
recheck_after_seconds = 5000
params = { tier = "standard" }
allowed_instance_types = ["c7g.*", "m7g.large"]
allowed_images = ["ami-0123456789abcdef0"]
max_disk_gib = 200
allowed_markets = ["spot"]
"#;

#[test]
fn the_toml_form_parses_with_defaults_and_clamps() {
    let config = FlowConfig::from_toml(SAMPLE).unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.router_fallback,
        RouterFallback::Pool("linux-x64".into())
    );
    assert_eq!(config.throttle_fallback, ThrottleFallback::Reject);
    assert_eq!(
        config.github.scope,
        RunnerScopeLevel::Enterprise("acme".into())
    );
    assert_eq!(config.github.runner_group_id, 3);
    let pool = &config.pools[0];
    assert_eq!(pool.market, Market::OnDemand);
    let ceilings = pool.ceilings();
    assert_eq!(ceilings.max_running, 4);
    assert_eq!(ceilings.max_per_org, None, "0 means no ceiling");
    assert_eq!(ceilings.max_per_repo, Some(2));
    assert_eq!(pool.recheck_after(), 900);
    assert_eq!(pool.idle_timeout_seconds, 300);
    assert_eq!(pool.max_replacements, 2);
    assert_eq!(pool.params["tier"], "standard");
    assert_eq!(pool.allowed_instance_types, ["c7g.*", "m7g.large"]);
    assert_eq!(pool.allowed_images, ["ami-0123456789abcdef0"]);
    assert_eq!(pool.max_disk_gib, Some(200));
    assert_eq!(pool.allowed_markets, [Market::Spot]);

    let defaults =
        FlowConfig::from_json(r#"{"pools": [{"name": "p", "labels": ["self-hosted"]}]}"#).unwrap();
    assert_eq!(defaults.github.scope, RunnerScopeLevel::Repository);
    assert_eq!(defaults.github.runner_name_prefix, "runway");
    assert_eq!(defaults.router_fallback, RouterFallback::Ignore);
    assert_eq!(defaults.throttle_fallback, ThrottleFallback::Admit);
    let pool = &defaults.pools[0];
    assert!(pool.allowed_instance_types.is_empty() && pool.allowed_images.is_empty());
    assert!(pool.allowed_markets.is_empty() && pool.max_disk_gib.is_none());
    let blank = FlowConfig::from_json(
        r#"{"pools": [{"name": "p", "labels": ["x"], "allowed_instance_types": [" "]}]}"#,
    )
    .unwrap();
    let error = blank.validate().unwrap_err().to_string();
    assert!(
        error.contains("empty entry in allowed_instance_types"),
        "{error}"
    );
    let organization = FlowConfig::from_toml("[github]\nscope = \"organization\"\n").unwrap();
    assert_eq!(organization.github.scope, RunnerScopeLevel::Organization);
}

#[test]
fn bad_configurations_are_refused_with_what_to_fix() {
    let unknown =
        FlowConfig::from_toml("[[pools]]\nname = \"p\"\nlabels = [\"x\"]\nmax_runing = 3\n")
            .unwrap_err();
    assert!(
        matches!(&unknown, ConfigError::Parse(text) if text.contains("max_runing")),
        "{unknown}"
    );
    let cases = [
        (
            r#"{"pools": [{"name": "a#b", "labels": ["x"]}]}"#,
            "pool name",
        ),
        (
            r#"{"pools": [{"name": "p", "labels": []}]}"#,
            "needs labels",
        ),
        (
            r#"{"pools": [{"name": "p", "labels": ["x"], "max_running": 0}]}"#,
            "max_running = 0",
        ),
        (
            r#"{"pools": [{"name": "p", "labels": ["x"], "boot_timeout_seconds": 0}]}"#,
            "boot_timeout_seconds = 0",
        ),
        (
            r#"{"pools": [{"name": "p", "labels": ["x"]}, {"name": "p", "labels": ["y"]}]}"#,
            "configured twice",
        ),
        (r#"{"router_fallback": {"pool": "nope"}}"#, "not configured"),
        (
            r#"{"github": {"runner_name_prefix": "has space"}}"#,
            "runner_name_prefix",
        ),
    ];
    for (json, expected) in cases {
        let error = FlowConfig::from_json(json).unwrap().validate().unwrap_err();
        assert!(error.to_string().contains(expected), "{json}: {error}");
    }
}

#[tokio::test]
async fn every_pool_needs_a_provider() {
    let fixture = Fixture::start(Options::default()).await;
    let error = JobFlow::new(
        Deps {
            store: fixture.store.clone(),
            github: fixture.github.clone(),
            providers: BTreeMap::new(),
            router: None,
            throttle: None,
            callbacks: Arc::new(fixture.tokens.sfn.clone()),
            clock: fixture.clock.clone(),
        },
        config(vec![linux_pool()]),
    )
    .unwrap_err();
    assert!(error.to_string().contains("has no provider"), "{error}");
}

#[test]
fn step_names_substitutions_and_local_arns() {
    for step in Step::ALL {
        assert_eq!(step.name().parse::<Step>().unwrap(), step);
        assert!(step.substitution().ends_with("FunctionArn"));
    }
    assert_eq!(Step::WaitForSlot.name(), "wait-for-slot");
    assert_eq!(Step::CheckJob.substitution(), "CheckJobFunctionArn");
    assert!("launch".parse::<Step>().is_err());
    let substitutions = JobFlow::local_substitutions("runway-");
    assert_eq!(substitutions.len(), 9);
    assert_eq!(
        substitutions["CheckRunnerFunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:runway-check-runner"
    );
    // Every placeholder of the machine has a value.
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines/job.asl.json"),
    )
    .unwrap();
    runway_asl::Definition::parse_with_substitutions(&template, &substitutions).unwrap();
}

/// A lost `in_progress` or `completed` webhook must not leave a job's watch waiting for days:
/// each job watch times out hourly and is retried, and the retried watch reads the job from
/// GitHub. Together the retries cover the watch's whole span (a day to start, five to finish).
#[test]
fn job_watches_re_read_the_job_every_hour_for_their_whole_span() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines/job.asl.json"),
    )
    .unwrap();
    let machine: serde_json::Value = serde_json::from_str(&text).unwrap();
    let branches = machine["States"]["Follow"]["Branches"].as_array().unwrap();
    for (name, span_seconds) in [("AwaitJobStart", 86_400), ("AwaitJobDone", 432_000)] {
        let state = branches
            .iter()
            .find_map(|branch| branch["States"].get(name))
            .unwrap_or_else(|| panic!("{name} is in a branch of Follow"));
        let timeout = state["TimeoutSeconds"].as_u64().unwrap();
        assert!(timeout <= 3600, "{name} re-reads the job at least hourly");
        let on_timeout = state["Retry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|retrier| retrier["ErrorEquals"] == serde_json::json!(["States.Timeout"]))
            .unwrap_or_else(|| panic!("{name} retries its timeout"));
        let attempts = on_timeout["MaxAttempts"].as_u64().unwrap();
        assert_eq!(
            timeout * (attempts + 1),
            span_seconds,
            "{name} waits {span_seconds} s in all"
        );
    }
}
