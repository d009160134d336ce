//! The stock validators: `sam validate --lint` on template.yaml and on the image recipe's
//! sam/images/template.yaml (offline) and `asl-validator` on every state machine with its
//! substitutions made; the sample events of sam/events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runway_deploy_tests::{
    Template, asl_definitions, repo_root, substituted_function, substitution_variables,
};
use runway_jobflow::Step;
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
    let mut args = vec!["validate".into(), "--lint".into(), "--template-file".into()];
    args.push(template.as_os_str().to_owned());
    sam_as_typed(dir, &args)
}

/// The SAM CLI run in `dir` with exactly `args`, offline.
fn sam_as_typed(dir: &Path, args: &[std::ffi::OsString]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(tool(".tools/sam-venv/bin/sam"))
        .args(args)
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

/// `sam validate` typed with no flags in the repository root lints (samconfig.toml says so)
/// and passes; the same configuration beside a template that only the linter refuses fails.
#[test]
fn sam_validate_as_typed_in_the_root_lints_and_passes() {
    let root = repo_root();
    let output = sam_as_typed(&root, &["validate".into()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("is a valid SAM Template"),
        "{}",
        text(&output)
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("samconfig.toml"),
        dir.path().join("samconfig.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("template.yaml"),
        "AWSTemplateFormatVersion: \"2010-09-09\"\n\
         Transform: AWS::Serverless-2016-10-31\n\
         Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n\
         \x20     Handler: index.handler\n      Runtime: python2.7\n\
         \x20     InlineCode: \"def handler(e, c): pass\"\n",
    )
    .unwrap();
    let refused = sam_as_typed(dir.path(), &["validate".into()]);
    assert!(
        !text(&refused).contains("is a valid SAM Template"),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("Linting failed"),
        "{}",
        text(&refused)
    );
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

#[test]
fn sam_validate_lint_passes_on_the_image_recipe() {
    let root = repo_root();
    let output = sam(&root, &root.join("sam/images/template.yaml"));
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("is a valid SAM Template"),
        "{}",
        text(&output)
    );
}

#[test]
fn sam_validate_lint_catches_a_broken_image_recipe() {
    // The lint knows Image Builder's resources: a property the distribution does not have is
    // refused, or the check above proves nothing.
    let original = std::fs::read_to_string(repo_root().join("sam/images/template.yaml")).unwrap();
    let broken = original.replacen(
        "SsmParameterConfigurations:",
        "SsmParameterConfiguration:",
        1,
    );
    assert_ne!(broken, original);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("template.yaml"), broken).unwrap();
    let output = sam(dir.path(), &dir.path().join("template.yaml"));
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("SsmParameterConfiguration"),
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
fn every_step_function_has_sample_events_that_its_step_takes() {
    // Each sam/events/<step>[-<case>].json is the payload of a Task of job.asl.json that calls
    // the step's function, carries the webhook's execution input, and decodes as that step's
    // input; every step has at least one.
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
    let definition = json_file("statemachines/job.asl.json");
    let mut covered: BTreeMap<Step, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(repo_root().join("sam/events")).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        if stem.starts_with("webhook-") || stem.starts_with("reap-") {
            continue;
        }
        let step = Step::ALL
            .into_iter()
            .filter(|step| stem == step.name() || stem.starts_with(&format!("{}-", step.name())))
            .max_by_key(|step| step.name().len())
            .unwrap_or_else(|| panic!("sam/events/{file} names no step"));
        let sample = json_file(&format!("sam/events/{file}"));
        step.check_input(&sample)
            .unwrap_or_else(|error| panic!("{file}: {}", error.cause));
        assert_eq!(sample["execution"], name.as_str(), "{file}");
        let carried: runway_webhook::JobExecutionInput =
            serde_json::from_value(sample["input"].clone()).unwrap();
        assert_eq!(carried, expected, "{file}");
        let payloads = function_task_payloads(&definition, step.substitution());
        assert!(
            payloads
                .iter()
                .any(|parameters| is_resolved_from(&sample, parameters)),
            "{file} is not what any Task calling the {step} function passes it: {payloads:?}"
        );
        covered.entry(step).or_default().push(file);
    }
    for step in Step::ALL {
        assert!(
            covered.contains_key(&step),
            "no sample event for the {step} function (scripts/make-sam-events.py)"
        );
    }
}

/// `event` has exactly the fields of `parameters`, with its constants (`"watch":
/// "job-completed"`) and a value for each path (`"route.$": "$.route"`).
fn is_resolved_from(event: &Value, parameters: &Value) -> bool {
    let (Some(event), Some(parameters)) = (event.as_object(), parameters.as_object()) else {
        return false;
    };
    event.len() == parameters.len()
        && parameters
            .iter()
            .all(|(key, value)| match key.strip_suffix(".$") {
                Some(field) => event.get(field).is_some_and(|value| !value.is_null()),
                None => event.get(key) == Some(value),
            })
}

/// What each Task calling the function `${variable}` passes it, at any depth (Parallel
/// branches): its Parameters, or the Payload of a `lambda:invoke` Task naming the function.
fn function_task_payloads(value: &Value, variable: &str) -> Vec<Value> {
    let mut found = Vec::new();
    collect_function_task_payloads(value, &format!("${{{variable}}}"), &mut found);
    found
}

fn collect_function_task_payloads(value: &Value, function: &str, found: &mut Vec<Value>) {
    match value {
        Value::Object(object) => {
            if object.get("Type").and_then(Value::as_str) == Some("Task") {
                let parameters = object.get("Parameters").cloned().unwrap_or(Value::Null);
                let resource = object.get("Resource").and_then(Value::as_str);
                if resource == Some(function) {
                    found.push(parameters);
                } else if resource
                    .is_some_and(|arn| arn.starts_with("arn:aws:states:::lambda:invoke"))
                    && parameters["FunctionName"] == function
                {
                    found.push(parameters["Payload"].clone());
                }
            }
            for child in object.values() {
                collect_function_task_payloads(child, function, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_function_task_payloads(item, function, found)),
        _ => {}
    }
}

#[test]
fn the_sample_reaper_events_are_the_reaper_machines_task_inputs() {
    // Every Task of reaper.asl.json calling the reap function has a sample event
    // (reap-<sweep>.json) equal to its Parameters with the execution name filled in.
    let definition = json_file("statemachines/reaper.asl.json");
    let sweeps = function_task_payloads(&definition, "ReapFunctionArn");
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
