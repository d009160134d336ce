//! The configuration, the step names and the local engine wiring.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use runway_jobflow::{
    ConfigError, Deps, FlowConfig, JobFlow, RunnerScopeLevel, STEP_FUNCTIONS_MAX_SECONDS, Step,
    WAIT_AND_START_BUDGET_SECONDS,
};
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
    let reserved = FlowConfig::from_json(
        r#"{"pools": [{"name": "p", "labels": ["x"], "params": {"runway.max_disk_gib": "900"}}]}"#,
    )
    .unwrap();
    let error = reserved.validate().unwrap_err().to_string();
    assert!(
        error.contains("\"runway.max_disk_gib\"") && error.contains("rename it"),
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
            metrics: runway_jobflow::metrics::discard(),
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
    assert_eq!(Step::CheckRunner.substitution(), "CheckRunnerFunctionArn");
    assert!("launch".parse::<Step>().is_err());
    let substitutions = JobFlow::local_substitutions("runway-");
    assert_eq!(substitutions.len(), 8);
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

/// A lost `completed` webhook must not leave a watch waiting for days: the job watch times
/// out hourly, the runner's every 15 minutes, and is retried, and the retried watch asks
/// GitHub. Together the retries cover the watch's whole span (five days for the runner's job,
/// one to follow a job after its runner left without it).
#[test]
fn job_watches_re_read_the_job_every_hour_for_their_whole_span() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines/job.asl.json"),
    )
    .unwrap();
    let machine: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The runner's wait holds a slot, so it re-checks more often.
    for (name, span_seconds, heartbeat) in [
        ("AwaitJobEnd", runway_jobflow::JOB_FOLLOW_SECONDS, 3600),
        ("AwaitRunnerGone", 432_000, 900),
    ] {
        let span_seconds = u64::from(span_seconds);
        let state = &machine["States"][name];
        let timeout = state["TimeoutSeconds"].as_u64().unwrap();
        assert!(
            timeout <= heartbeat,
            "{name} re-checks at least every {heartbeat} s"
        );
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

/// Every error Lambda answers an invocation with that a later try may not get (throttling,
/// service faults, the client's own timeout) and runway's own transient error. Each Task of
/// runway's machines that calls a Lambda function retries all of them.
const RETRIED_ERRORS: [&str; 7] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
    "Runway.Transient",
];

/// Every Task calling a Lambda function (`${...FunctionArn}` or `lambda:invoke`), at any
/// depth, by name.
fn lambda_tasks(states: &serde_json::Value, found: &mut Vec<(String, serde_json::Value)>) {
    let Some(states) = states.as_object() else {
        return;
    };
    for (name, state) in states {
        let resource = state["Resource"].as_str().unwrap_or_default();
        let calls_lambda = (resource.starts_with("${") && resource.ends_with("FunctionArn}"))
            || resource.starts_with("arn:aws:states:::lambda:invoke");
        if state["Type"] == "Task" && calls_lambda {
            found.push((name.clone(), state.clone()));
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            lambda_tasks(&branch["States"], found);
        }
        for key in ["ItemProcessor", "Iterator"] {
            lambda_tasks(&state[key]["States"], found);
        }
    }
}

#[test]
fn every_lambda_task_retries_every_error_a_later_try_may_not_get() {
    for file in ["job.asl.json", "reaper.asl.json"] {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../statemachines")
                .join(file),
        )
        .unwrap();
        let machine: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut tasks = Vec::new();
        lambda_tasks(&machine["States"], &mut tasks);
        assert!(tasks.len() >= 4, "{file} calls Lambda functions");
        for (name, task) in tasks {
            let retried: std::collections::BTreeSet<&str> = task["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|retrier| retrier["ErrorEquals"].as_array().into_iter().flatten())
                .filter_map(serde_json::Value::as_str)
                .collect();
            for error in RETRIED_ERRORS {
                assert!(
                    retried.contains(error),
                    "{file}: {name} does not retry {error}"
                );
            }
        }
    }
}

#[test]
fn timeouts_step_functions_cannot_wait_are_refused_naming_the_field() {
    let year = STEP_FUNCTIONS_MAX_SECONDS;
    let pool =
        |name: &str, fields: &str| format!(r#"{{"name": "{name}", "labels": ["x"]{fields}}}"#);
    let cases = [
        (
            vec![
                pool("a", ""),
                pool("b", &format!(r#", "idle_timeout_seconds": {}"#, year + 1)),
            ],
            "pools[1].idle_timeout_seconds",
        ),
        (
            vec![pool(
                "a",
                &format!(r#", "boot_timeout_seconds": {}"#, year + 1),
            )],
            "pools[0].boot_timeout_seconds",
        ),
        (
            vec![pool("a", &format!(r#", "max_wait_seconds": {}"#, u32::MAX))],
            "pools[0].max_wait_seconds",
        ),
        (
            vec![pool("a", r#", "recheck_after_seconds": 0"#)],
            "pools[0].recheck_after_seconds",
        ),
        // Each within a year, together beyond what the job machine's 11 days leave.
        (
            vec![
                pool("a", ""),
                pool("b", ""),
                pool("c", r#", "max_wait_seconds": 432000"#),
            ],
            "pools[2].max_wait_seconds",
        ),
        (
            vec![pool(
                "a",
                r#", "boot_timeout_seconds": 100000, "max_replacements": 3"#,
            )],
            "pools[0].boot_timeout_seconds",
        ),
        (
            vec![pool("a", r#", "idle_timeout_seconds": 400000"#)],
            "pools[0].idle_timeout_seconds",
        ),
    ];
    for (pools, field) in cases {
        let json = format!(r#"{{"pools": [{}]}}"#, pools.join(", "));
        let error = FlowConfig::from_json(&json)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            error.to_string().contains(field),
            "{json}: {error} should name {field}"
        );
    }
    // The same in the TOML form.
    let toml = format!(
        "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\nidle_timeout_seconds = {}\n",
        year + 1
    );
    let error = FlowConfig::from_toml(&toml)
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(
        error.to_string().contains("pools[0].idle_timeout_seconds"),
        "{error}"
    );

    // Up to the budget is fine: a day's wait with the defaults, or the whole budget.
    let fits = FlowConfig::from_json(r#"{"pools": [{"name": "p", "labels": ["x"]}]}"#).unwrap();
    fits.validate().unwrap();
    assert!(fits.pools[0].wait_and_start_seconds() <= u64::from(WAIT_AND_START_BUDGET_SECONDS));
    let mut full = fits.clone();
    full.pools[0].max_wait_seconds = WAIT_AND_START_BUDGET_SECONDS
        - u32::try_from(full.pools[0].runner_start_seconds()).unwrap();
    full.validate().unwrap();
    full.pools[0].max_wait_seconds += 1;
    let over = full.validate().unwrap_err().to_string();
    assert!(over.contains("pools[0].max_wait_seconds"), "{over}");
}
