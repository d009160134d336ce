//! Real GitHub payloads and GitHub's published schema.

use std::path::PathBuf;

use runway_webhook::event::REQUIRED_FIELDS;
use runway_webhook::{WorkflowJobAction, parse_workflow_job};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    let dir = runway_testkit::fixtures_dir()
        .unwrap_or_else(|error| panic!("{error}"))
        .join("github/webhooks/workflow_job");
    assert!(
        dir.is_dir(),
        "workflow_job fixtures not found at {}: set RUNWAY_FIXTURES_DIR to the shared fixtures directory",
        dir.display()
    );
    dir
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "expected the 8 workflow_job fixtures, found {}",
        files.len()
    );
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn every_fixture_parses_and_agrees_with_the_raw_json() {
    for (name, body) in fixtures() {
        let event = parse_workflow_job(&body).unwrap_or_else(|err| panic!("{name}: {err}"));
        let raw: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(raw["action"], event.action.as_str(), "{name}");
        assert!(
            name.contains(event.action.as_str()),
            "{name} is a {:?}",
            event.action
        );
        let job = &raw["workflow_job"];
        assert_eq!(job["id"].as_u64(), Some(event.job.id), "{name}");
        assert_eq!(job["run_id"].as_u64(), Some(event.job.run_id), "{name}");
        assert_eq!(
            job["run_attempt"].as_u64().unwrap_or(1),
            u64::from(event.job.run_attempt),
            "{name}"
        );
        assert_eq!(
            job["runner_name"].as_str(),
            event.job.runner_name.as_deref(),
            "{name}"
        );
        assert_eq!(job["runner_id"].as_u64(), event.job.runner_id, "{name}");
        assert_eq!(
            job["conclusion"].as_str(),
            event.job.conclusion.as_deref(),
            "{name}"
        );
        let labels: Vec<&str> = job["labels"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(labels, event.job.labels, "{name}");
        assert_eq!(
            raw["repository"]["id"].as_u64(),
            Some(event.repository.id),
            "{name}"
        );
        assert_eq!(
            raw["repository"]["full_name"].as_str(),
            Some(event.repository.full_name.as_str())
        );
        assert_eq!(
            raw["organization"]["login"].as_str(),
            event.organization.as_ref().map(|o| o.login.as_str()),
            "{name}"
        );
        assert_eq!(
            raw["installation"]["id"].as_u64(),
            event.installation.as_ref().map(|i| i.id)
        );
    }
}

#[test]
fn fixtures_cover_every_action_and_queued_jobs_have_no_runner() {
    let mut seen = Vec::new();
    for (name, body) in fixtures() {
        let event = parse_workflow_job(&body).unwrap();
        seen.push(event.action);
        if event.action == WorkflowJobAction::Waiting {
            assert_eq!(event.job.runner_name, None, "{name}");
        }
        if event.action == WorkflowJobAction::Completed {
            assert!(event.job.conclusion.is_some(), "{name}");
        }
    }
    for action in [
        WorkflowJobAction::Queued,
        WorkflowJobAction::Waiting,
        WorkflowJobAction::InProgress,
        WorkflowJobAction::Completed,
    ] {
        assert!(seen.contains(&action), "no fixture for {action:?}");
    }
}

#[test]
fn truncated_fixtures_are_refused() {
    for (name, body) in fixtures() {
        for cut in [1, body.len() / 3, body.len() / 2, body.len() - 2] {
            assert!(
                parse_workflow_job(&body[..cut]).is_err(),
                "{name} cut at {cut}"
            );
        }
    }
}

fn schema_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../scripts/node/node_modules/@octokit/openapi-webhooks/generated/api.github.com.json",
    );
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh to install @octokit/openapi-webhooks",
        path.display()
    );
    path
}

/// Follows `$ref` and merges `allOf` parts into (properties, required) pairs.
fn object_parts<'a>(schemas: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return object_parts(schemas, &schemas[name]);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        return parts
            .iter()
            .flat_map(|part| object_parts(schemas, part))
            .collect();
    }
    vec![schema]
}

/// Whether `path` (dotted) is required at every level in `schema`.
fn is_required(schemas: &Value, schema: &Value, path: &[&str]) -> bool {
    let Some((field, rest)) = path.split_first() else {
        return true;
    };
    let parts = object_parts(schemas, schema);
    let required = parts.iter().any(|part| {
        part["required"]
            .as_array()
            .is_some_and(|req| req.iter().any(|r| r == field))
    });
    if !required {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    // Every part that describes the field must require the rest (a part without it adds nothing).
    let children: Vec<&Value> = parts
        .iter()
        .map(|part| &part["properties"][*field])
        .filter(|child| !child.is_null())
        .collect();
    !children.is_empty()
        && children
            .iter()
            .all(|child| is_required(schemas, child, rest))
}

#[test]
fn fields_the_parser_requires_are_required_by_githubs_schema() {
    let spec: Value = serde_json::from_slice(&std::fs::read(schema_path()).unwrap()).unwrap();
    let schemas = &spec["components"]["schemas"];
    for action in ["queued", "waiting", "in-progress", "completed"] {
        let name = format!("webhook-workflow-job-{action}");
        let schema = &schemas[&name];
        assert!(schema.is_object(), "{name} is not in the schema");
        for field in REQUIRED_FIELDS {
            let path: Vec<&str> = field.split('.').collect();
            assert!(
                is_required(schemas, schema, &path),
                "{field} is not required by {name}: the parser must not rely on it"
            );
        }
        // The action enum names exactly the action the parser maps it to.
        let actions = &schema["properties"]["action"]["enum"];
        let wanted = action.replace('-', "_");
        assert_eq!(actions, &serde_json::json!([wanted]), "{name}");
        let parsed: WorkflowJobAction = serde_json::from_value(Value::String(wanted)).unwrap();
        assert_eq!(parsed.as_str(), action.replace('-', "_"));
    }
}

#[test]
fn the_schema_check_catches_a_field_github_does_not_require() {
    let spec: Value = serde_json::from_slice(&std::fs::read(schema_path()).unwrap()).unwrap();
    let schemas = &spec["components"]["schemas"];
    let schema = &schemas["webhook-workflow-job-queued"];
    assert!(!is_required(schemas, schema, &["organization"]));
    assert!(!is_required(
        schemas,
        schema,
        &["workflow_job", "no_such_field"]
    ));
    assert!(is_required(schemas, schema, &["workflow_job", "id"]));
}
