//! The stock validators: `sam validate --lint` on template.yaml (offline) and `asl-validator`
//! on every state machine with its substitutions made; the sample events of sam/events.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runway_deploy_tests::{
    Template, asl_definitions, repo_root, substituted_function, substitution_variables,
};
use serde_json::Value;

fn tool(relative: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    path
}

fn sam(dir: &Path, template: &Path) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(tool(".tools/sam-venv/bin/sam"))
        .args(["validate", "--lint", "--template-file"])
        .arg(template)
        .current_dir(dir)
        // Offline: no telemetry, no profile, static fake credentials, a fixed region.
        .env("HOME", home.path())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn sam_validate_lint_passes() {
    let root = repo_root();
    let output = sam(&root, &root.join("template.yaml"));
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("is a valid SAM Template"),
        "{}",
        text(&output)
    );
}

#[test]
fn sam_validate_lint_catches_a_broken_template() {
    // The same template with a reference to a log group that does not exist: the lint must
    // refuse it, or the check above proves nothing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("statemachines")).unwrap();
    for definition in asl_definitions(&repo_root()).unwrap() {
        std::fs::copy(repo_root().join(&definition), dir.path().join(&definition)).unwrap();
    }
    let original = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let broken = original.replacen(
        "LogGroup: !Ref RouteLogGroup",
        "LogGroup: !Ref RouteLogGroupMissing",
        1,
    );
    assert_ne!(broken, original);
    std::fs::write(dir.path().join("template.yaml"), broken).unwrap();
    let output = sam(dir.path(), &dir.path().join("template.yaml"));
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("RouteLogGroupMissing"),
        "{}",
        text(&output)
    );
}

/// The definition at `relative` with each `${X}` replaced as `replace` says.
fn substituted(relative: &str, replace: impl Fn(&str) -> String) -> String {
    let mut definition = std::fs::read_to_string(repo_root().join(relative)).unwrap();
    for variable in substitution_variables(&definition) {
        definition = definition.replace(&format!("${{{variable}}}"), &replace(&variable));
    }
    definition
}

fn asl_validator(definition: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machine.asl.json");
    std::fs::write(&path, definition).unwrap();
    Command::new(tool("scripts/node/node_modules/.bin/asl-validator"))
        .arg("--json-path")
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn asl_validator_accepts_every_state_machine_with_its_substitutions_made() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let machines = template.state_machines();
    assert!(machines.len() >= 2);
    for (id, machine) in machines {
        let properties = &machine["Properties"];
        let uri = properties["DefinitionUri"].as_str().unwrap();
        let substitutions = properties["DefinitionSubstitutions"]
            .as_object()
            .unwrap()
            .clone();
        // What CloudFormation puts there: each function's ARN.
        let definition = substituted(uri, |variable| {
            let function = substituted_function(&substitutions[variable])
                .unwrap_or_else(|| panic!("{id}: {variable} is not a function ARN"));
            format!("arn:aws:lambda:us-east-1:123456789012:function:runway-{function}")
        });
        assert!(!definition.contains("${"), "{id}");
        let output = asl_validator(&definition);
        assert!(output.status.success(), "{id} ({uri}): {}", text(&output));
    }
}

#[test]
fn asl_validator_refuses_a_resource_that_is_no_arn() {
    for definition in asl_definitions(&repo_root()).unwrap() {
        let replaced = substituted(&definition, |variable| format!("not-an-arn-{variable}"));
        if replaced.contains("not-an-arn-") {
            let output = asl_validator(&replaced);
            assert!(!output.status.success(), "{definition}: {}", text(&output));
        }
    }
}

// ---- Sample events ---------------------------------------------------------------------------

fn json_file(relative: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_root().join(relative)).unwrap())
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        runway_testkit::fixtures_dir()
            .unwrap()
            .join("github/webhooks/workflow_job")
            .join(name),
    )
    .unwrap()
}

#[test]
fn the_sample_webhook_events_are_real_payloads_signed_with_the_sample_secret() {
    let env = json_file("sam/env.json");
    let secret = env["Parameters"][runway_webhook::env::SECRET_ENV]
        .as_str()
        .unwrap();
    for (event, fixture_name, event_type) in [
        ("webhook-queued.json", "06-queued.json", "workflow_job"),
        (
            "webhook-in-progress.json",
            "00-in_progress.json",
            "workflow_job",
        ),
        (
            "webhook-completed.json",
            "01-completed.json",
            "workflow_job",
        ),
    ] {
        let text = std::fs::read_to_string(repo_root().join("sam/events").join(event)).unwrap();
        // The event is what API Gateway (HTTP API, payload 2.0) sends.
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|error| panic!("{event}: {error}"));
        assert_eq!(
            request.uri().path(),
            runway_webhook::WEBHOOK_PATH,
            "{event}"
        );
        assert_eq!(request.headers()["x-github-event"], event_type, "{event}");
        let body = match request.body() {
            lambda_http::Body::Text(text) => text.as_bytes().to_vec(),
            lambda_http::Body::Binary(bytes) => bytes.clone(),
            _ => Vec::new(),
        };
        assert_eq!(
            body,
            fixture(fixture_name),
            "{event} carries {fixture_name}"
        );
        let secrets = runway_webhook::WebhookSecrets::new(secret).unwrap();
        let signature = request
            .headers()
            .get("x-hub-signature-256")
            .map(|v| v.as_bytes());
        secrets
            .verify(signature, &body)
            .unwrap_or_else(|error| panic!("{event}: {error}"));
    }
}

#[test]
fn the_sample_step_inputs_carry_the_webhooks_execution_input() {
    let body = fixture("06-queued.json");
    let event = runway_webhook::parse_workflow_job(&body).unwrap();
    let queued = json_file("sam/events/webhook-queued.json");
    let delivery = queued["headers"]["x-github-delivery"].as_str().unwrap();
    let expected = runway_webhook::JobExecutionInput::from_event(&event, Some(delivery));
    let name = runway_webhook::execution_name(
        expected.repository.id,
        expected.job.id,
        expected.job.run_attempt,
    );
    for sample in ["route.json", "check-job.json", "release-failed.json"] {
        let input = json_file(&format!("sam/events/{sample}"));
        assert_eq!(input["execution"], name.as_str(), "{sample}");
        let carried: runway_webhook::JobExecutionInput =
            serde_json::from_value(input["input"].clone()).unwrap();
        assert_eq!(carried, expected, "{sample}");
    }
}

#[test]
fn the_sample_reaper_events_are_the_reaper_machines_task_inputs() {
    // Every Task of reaper.asl.json calling the reap function has a sample event
    // (reap-<sweep>.json) equal to its Parameters with the execution name filled in.
    let definition = json_file("statemachines/reaper.asl.json");
    let mut sweeps = Vec::new();
    collect_reap_parameters(&definition, &mut sweeps);
    assert!(
        !sweeps.is_empty(),
        "reaper.asl.json calls the reap function"
    );
    for parameters in sweeps {
        let sweep = parameters["sweep"]
            .as_str()
            .expect("each reap task names its sweep");
        let event = json_file(&format!("sam/events/reap-{sweep}.json"));
        let object = parameters.as_object().unwrap();
        assert_eq!(
            event.as_object().unwrap().len(),
            object.len(),
            "reap-{sweep}.json has the task's fields"
        );
        for (key, value) in object {
            match key.strip_suffix(".$") {
                Some(field) => assert!(event[field].is_string(), "reap-{sweep}.json: {field}"),
                None => assert_eq!(&event[key], value, "reap-{sweep}.json: {key}"),
            }
        }
    }
}

/// The Parameters of every Task calling `${ReapFunctionArn}`, at any depth (Parallel branches).
fn collect_reap_parameters(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Object(object) => {
            if object.get("Type").and_then(Value::as_str) == Some("Task")
                && object.get("Resource").and_then(Value::as_str) == Some("${ReapFunctionArn}")
            {
                found.push(object.get("Parameters").cloned().unwrap_or(Value::Null));
            }
            for child in object.values() {
                collect_reap_parameters(child, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_reap_parameters(item, found)),
        _ => {}
    }
}
