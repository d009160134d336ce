//! The emulator cannot drift from GitHub: every REST response it serves is validated against
//! the operation's response schema in `@octokit/openapi`, and every webhook it sends against
//! `@octokit/openapi-webhooks`, and compared in shape with real `workflow_job` payloads.
//! The specs are installed by `scripts/setup.sh`.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use common::{APP_PRIVATE_KEY, app_jwt, call, config, start_with_receiver};
use reqwest::Method;
use runway_github_emulator::runner::{self, RunnerOptions};
use runway_github_emulator::{EmulatorHandle, JobStatus, NewJob, REST_OPERATIONS};
use serde_json::{Value, json};

fn node_modules() -> PathBuf {
    match std::env::var_os("RUNWAY_NODE_MODULES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/node/node_modules"),
    }
}

fn load(relative: &str) -> Value {
    let path = node_modules().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run scripts/setup.sh to install the GitHub OpenAPI specs",
            path.display()
        )
    });
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    openapi_to_json_schema(&mut spec);
    spec
}

/// `api.github.com` REST spec (nullable already rewritten).
fn rest_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("@octokit/openapi/generated/api.github.com.json"))
}

/// GitHub Enterprise Cloud REST spec: the only one with the enterprise runner endpoints.
fn ghec_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("@octokit/openapi/generated/ghec.json"))
}

fn webhook_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("@octokit/openapi-webhooks/generated/api.github.com.json"))
}

/// OpenAPI 3.0's `nullable: true` becomes JSON Schema's `null` type (3.1 specs already use
/// type arrays and pass through unchanged).
fn openapi_to_json_schema(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        Value::Object(map) => {
            map.values_mut().for_each(openapi_to_json_schema);
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                match map.get("type").cloned() {
                    Some(Value::String(kind)) => {
                        map.insert("type".into(), json!([kind, "null"]));
                        if let Some(Value::Array(options)) = map.get_mut("enum")
                            && !options.contains(&Value::Null)
                        {
                            options.push(Value::Null);
                        }
                    }
                    Some(Value::Array(mut kinds)) => {
                        if !kinds.contains(&json!("null")) {
                            kinds.push(json!("null"));
                        }
                        map.insert("type".into(), Value::Array(kinds));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Errors of `instance` against `schema`, whose `$ref`s point into `spec`'s components.
fn validation_errors(spec: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = schema.clone();
    let Some(map) = root.as_object_mut() else {
        return vec!["schema is not an object".to_string()];
    };
    map.insert("components".into(), spec["components"].clone());
    let validator = match jsonschema::draft202012::new(&root) {
        Ok(validator) => validator,
        Err(error) => return vec![format!("cannot compile the schema: {error}")],
    };
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(spec: &Value, schema: &Value, instance: &Value, what: &str) {
    let errors = validation_errors(spec, schema, instance);
    assert!(
        errors.is_empty(),
        "{what} does not match GitHub's schema:\n{}\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(instance).unwrap()
    );
}

/// The response schema of `method path` for `status`, or a panic if GitHub has no such
/// operation (which would mean the emulator serves something GitHub does not).
fn response_schema<'a>(
    spec: &'a Value,
    path: &str,
    method: &str,
    status: u16,
) -> Option<&'a Value> {
    let operation = spec["paths"]
        .get(path)
        .and_then(|p| p.get(method))
        .unwrap_or_else(|| panic!("GitHub has no operation {} {path}", method.to_uppercase()));
    let response = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{} {path} never answers {status}", method.to_uppercase()));
    let response = resolve(spec, response);
    response
        .get("content")
        .and_then(|c| c.get("application/json"))
        .map(|c| &c["schema"])
}

/// Follows a `$ref` to a component (responses are often shared).
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => spec
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
        None => value,
    }
}

/// Calls the emulator and checks the answer against the operation's response schema.
/// The operations the conformance test has exercised.
fn checked() -> &'static std::sync::Mutex<std::collections::BTreeSet<(String, String)>> {
    static CHECKED: OnceLock<std::sync::Mutex<std::collections::BTreeSet<(String, String)>>> =
        OnceLock::new();
    CHECKED.get_or_init(Default::default)
}

struct Probe<'a> {
    spec: &'a Value,
    emulator: &'a EmulatorHandle,
}

async fn check(
    probe: Probe<'_>,
    template: &str,
    method: Method,
    actual_path: &str,
    token: &str,
    body: Option<Value>,
    expected_status: u16,
) -> Value {
    let Probe { spec, emulator } = probe;
    checked()
        .lock()
        .unwrap()
        .insert((method.as_str().to_string(), template.to_string()));
    let url = format!("{}{actual_path}", emulator.api_url());
    let (status, answer) = call(method.clone(), &url, Some(token), body).await;
    assert_eq!(status, expected_status, "{method} {actual_path}: {answer}");
    let spec_method = method.as_str().to_lowercase();
    match response_schema(spec, template, &spec_method, status) {
        Some(schema) => assert_valid(
            spec,
            schema,
            &answer,
            &format!("{method} {actual_path} ({status})"),
        ),
        None => assert!(
            answer.is_null(),
            "{method} {actual_path}: GitHub sends no body, the emulator sent {answer}"
        ),
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_response_matches_githubs_openapi_description() {
    let rest = rest_spec();
    let ghec = ghec_spec();
    let (emulator, _receiver) = start_with_receiver(config()).await;
    let jit = json!({"name": "r", "runner_group_id": 1, "labels": ["self-hosted", "linux"]});

    // Runners at every level, with one runner online and busy so every field is filled in.
    let scopes = [
        (rest, "/repos/{owner}/{repo}", "/repos/octo-org/app"),
        (rest, "/orgs/{org}", "/orgs/octo-org"),
        (ghec, "/enterprises/{enterprise}", "/enterprises/acme"),
    ];
    for (spec, template, prefix) in scopes {
        let created = check(
            Probe {
                spec,
                emulator: &emulator,
            },
            &format!("{template}/actions/runners/generate-jitconfig"),
            Method::POST,
            &format!("{prefix}/actions/runners/generate-jitconfig"),
            "t",
            Some(jit.clone()),
            201,
        )
        .await;
        let runner_id = created["runner"]["id"].as_u64().unwrap();
        for token_kind in ["registration-token", "remove-token"] {
            check(
                Probe {
                    spec,
                    emulator: &emulator,
                },
                &format!("{template}/actions/runners/{token_kind}"),
                Method::POST,
                &format!("{prefix}/actions/runners/{token_kind}"),
                "t",
                None,
                201,
            )
            .await;
        }
        check(
            Probe {
                spec,
                emulator: &emulator,
            },
            &format!("{template}/actions/runners"),
            Method::GET,
            &format!("{prefix}/actions/runners?name=r"),
            "t",
            None,
            200,
        )
        .await;
        check(
            Probe {
                spec,
                emulator: &emulator,
            },
            &format!("{template}/actions/runners/{{runner_id}}"),
            Method::GET,
            &format!("{prefix}/actions/runners/{runner_id}"),
            "t",
            None,
            200,
        )
        .await;
        // Errors have GitHub's shapes too.
        check(
            Probe {
                spec,
                emulator: &emulator,
            },
            &format!("{template}/actions/runners/generate-jitconfig"),
            Method::POST,
            &format!("{prefix}/actions/runners/generate-jitconfig"),
            "t",
            Some(jit.clone()),
            409,
        )
        .await;
        check(
            Probe {
                spec,
                emulator: &emulator,
            },
            &format!("{template}/actions/runners/generate-jitconfig"),
            Method::POST,
            &format!("{prefix}/actions/runners/generate-jitconfig"),
            "t",
            Some(json!({"name": "x"})),
            422,
        )
        .await;
        check(
            Probe {
                spec,
                emulator: &emulator,
            },
            &format!("{template}/actions/runners/{{runner_id}}"),
            Method::DELETE,
            &format!("{prefix}/actions/runners/{runner_id}"),
            "t",
            None,
            204,
        )
        .await;
    }
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/orgs/{org}/actions/runners/generate-jitconfig",
        Method::POST,
        "/orgs/nobody/actions/runners/generate-jitconfig",
        "t",
        Some(jit.clone()),
        404,
    )
    .await;

    // A job in each of its states, and a runner online and busy.
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]).lasting(Duration::from_millis(400)))
        .unwrap();
    let job_path = format!("/repos/octo-org/app/actions/jobs/{}", job.job_id);
    let job_template = "/repos/{owner}/{repo}/actions/jobs/{job_id}";
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        job_template,
        Method::GET,
        &job_path,
        "t",
        None,
        200,
    )
    .await;
    let generated = emulator
        .generate_jitconfig(
            runway_github_emulator::Scope::organization("octo-org"),
            "busy",
            &["linux"],
        )
        .unwrap();
    let mut options = RunnerOptions::new(
        Some(emulator.base_url().into()),
        generated.encoded_jit_config,
    );
    options.poll_wait = Duration::from_millis(500);
    let sim = tokio::spawn(runner::run(options));
    emulator
        .wait_for_job(job.job_id, JobStatus::InProgress, Duration::from_secs(20))
        .await
        .unwrap();
    let running = check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        job_template,
        Method::GET,
        &job_path,
        "t",
        None,
        200,
    )
    .await;
    assert_eq!(running["status"], "in_progress");
    let list = check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/orgs/{org}/actions/runners",
        Method::GET,
        "/orgs/octo-org/actions/runners",
        "t",
        None,
        200,
    )
    .await;
    assert_eq!(list["runners"][0]["busy"], true);
    sim.await.unwrap().unwrap();
    let done = check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        job_template,
        Method::GET,
        &job_path,
        "t",
        None,
        200,
    )
    .await;
    assert_eq!(done["status"], "completed");

    // Runs (one completed, one queued), a run's jobs and the installation's repositories.
    let queued = emulator
        .create_job(NewJob::new("octo-org/app", &["nobody"]))
        .unwrap();
    let rest_probe = || Probe {
        spec: rest,
        emulator: &emulator,
    };
    let runs_template = "/repos/{owner}/{repo}/actions/runs";
    let all_runs = check(
        rest_probe(),
        runs_template,
        Method::GET,
        "/repos/octo-org/app/actions/runs",
        "t",
        None,
        200,
    )
    .await;
    assert_eq!(all_runs["total_count"], 2, "{all_runs}");
    assert_eq!(all_runs["workflow_runs"][1]["conclusion"], "success");
    let queued_runs = check(
        rest_probe(),
        runs_template,
        Method::GET,
        "/repos/octo-org/app/actions/runs?status=queued&per_page=1",
        "t",
        None,
        200,
    )
    .await;
    assert_eq!(queued_runs["workflow_runs"][0]["id"], queued.run_id);
    let jobs = check(
        rest_probe(),
        "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
        Method::GET,
        &format!("/repos/octo-org/app/actions/runs/{}/jobs", queued.run_id),
        "t",
        None,
        200,
    )
    .await;
    assert_eq!(jobs["jobs"][0]["id"], queued.job_id);
    let repositories = check(
        rest_probe(),
        "/installation/repositories",
        Method::GET,
        "/installation/repositories",
        "t",
        None,
        200,
    )
    .await;
    assert!(
        repositories["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|repo| repo["full_name"] == "octo-org/app"),
        "{repositories}"
    );

    // GitHub App endpoints.
    let jwt = app_jwt(APP_PRIVATE_KEY, "1");
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/repos/{owner}/{repo}/installation",
        Method::GET,
        "/repos/octo-org/app/installation",
        &jwt,
        None,
        200,
    )
    .await;
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/repos/{owner}/{repo}/installation",
        Method::GET,
        "/repos/mona/dotfiles/installation",
        &jwt,
        None,
        200,
    )
    .await;
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/orgs/{org}/installation",
        Method::GET,
        "/orgs/octo-org/installation",
        &jwt,
        None,
        200,
    )
    .await;
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app",
        Method::GET,
        "/app",
        &jwt,
        None,
        200,
    )
    .await;
    // The App's webhook: where it goes, and the deliveries sent so far (newest first).
    let hook = check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app/hook/config",
        Method::GET,
        "/app/hook/config",
        &jwt,
        None,
        200,
    )
    .await;
    assert_eq!(hook["url"].as_str(), emulator.webhook_url().as_deref());
    assert_eq!(
        hook["secret"], "********",
        "the secret is never shown: {hook}"
    );
    let deliveries = check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app/hook/deliveries",
        Method::GET,
        "/app/hook/deliveries?per_page=2",
        &jwt,
        None,
        200,
    )
    .await;
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert!(deliveries[0]["id"].as_u64() > deliveries[1]["id"].as_u64());
    assert_eq!(deliveries[0]["event"], "workflow_job");
    assert_eq!(deliveries[0]["status"], "OK", "{deliveries:?}");
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app/hook/deliveries",
        Method::GET,
        "/app/hook/deliveries?status=bogus",
        &jwt,
        None,
        422,
    )
    .await;
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app/installations/{installation_id}",
        Method::GET,
        "/app/installations/1",
        &jwt,
        None,
        200,
    )
    .await;
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app/installations/{installation_id}/access_tokens",
        Method::POST,
        "/app/installations/1/access_tokens",
        &jwt,
        Some(json!({"permissions": {"actions": "read"}})),
        201,
    )
    .await;
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app/installations/{installation_id}/access_tokens",
        Method::POST,
        "/app/installations/1/access_tokens",
        "x.y.z",
        None,
        401,
    )
    .await;
    // The manifest flow: the page's button gives a code, converted once (201), then 404.
    let manifest = json!({"name": "runway spec", "url": "http://127.0.0.1:9/setup",
        "hook_attributes": {"url": "http://127.0.0.1:9/webhook"},
        "redirect_url": "http://127.0.0.1:9/setup/callback", "public": false,
        "default_permissions": {"actions": "read", "administration": "write"},
        "default_events": ["workflow_job"]});
    let created = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/settings/apps/new/create", emulator.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "state=s1&manifest={}",
            manifest
                .to_string()
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 302);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:9/setup/callback?code="),
        "{location}"
    );
    assert!(location.ends_with("&state=s1"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_owned();
    let converted = check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app-manifests/{code}/conversions",
        Method::POST,
        &format!("/app-manifests/{code}/conversions"),
        "",
        None,
        201,
    )
    .await;
    assert_eq!(converted["id"], json!(emulator.app().app_id));
    assert_eq!(converted["slug"], "runway-spec");
    assert!(converted["pem"].as_str().unwrap().contains("PRIVATE KEY"));
    check(
        Probe {
            spec: rest,
            emulator: &emulator,
        },
        "/app-manifests/{code}/conversions",
        Method::POST,
        &format!("/app-manifests/{code}/conversions"),
        "",
        None,
        404,
    )
    .await;
    let served: std::collections::BTreeSet<(String, String)> = REST_OPERATIONS
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let checked = checked().lock().unwrap().clone();
    let unchecked: Vec<_> = served.difference(&checked).collect();
    assert!(
        unchecked.is_empty(),
        "served but never checked against the spec: {unchecked:?}"
    );
    emulator.shutdown().await;
}

/// Every key of the real payload is in ours, with the same JSON type (null matches anything).
fn shape_differences(real: &Value, ours: &Value, path: &str, out: &mut Vec<String>) {
    match (real, ours) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(real), Value::Object(ours)) => {
            for (key, value) in real {
                match ours.get(key) {
                    Some(mine) => shape_differences(value, mine, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key} is missing")),
                }
            }
        }
        (Value::Array(real), Value::Array(ours)) => {
            if let (Some(r), Some(o)) = (real.first(), ours.first()) {
                shape_differences(r, o, &format!("{path}[0]"), out);
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        (real, ours) => out.push(format!(
            "{path}: real payload has {real}, emulator sends {ours}"
        )),
    }
}

fn fixtures(action: &str) -> Vec<(String, Value)> {
    let dir = runway_testkit::fixtures_dir()
        .unwrap_or_else(|error| panic!("{error}"))
        .join("github/webhooks/workflow_job");
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if value["action"] == action {
            found.push((path.display().to_string(), value));
        }
    }
    assert!(
        !found.is_empty(),
        "no {action} fixtures in {}",
        dir.display()
    );
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_matches_githubs_schema_and_the_real_payloads() {
    let spec = webhook_spec();
    let (emulator, receiver) = start_with_receiver(config()).await;
    let job = emulator
        .create_job(
            NewJob::new("octo-org/app", &["self-hosted"]).lasting(Duration::from_millis(100)),
        )
        .unwrap();
    let cancelled = emulator
        .create_job(NewJob::new("mona/dotfiles", &["nobody"]))
        .unwrap();
    emulator.cancel_job(cancelled.job_id).unwrap();
    let generated = emulator
        .generate_jitconfig(
            runway_github_emulator::Scope::organization("octo-org"),
            "hook",
            &["self-hosted"],
        )
        .unwrap();
    let mut options = RunnerOptions::new(
        Some(emulator.base_url().into()),
        generated.encoded_jit_config,
    );
    options.poll_wait = Duration::from_millis(500);
    runner::run(options).await.unwrap();
    let webhooks = receiver.wait_for(5).await;
    let mut seen = std::collections::BTreeSet::new();
    for webhook in &webhooks {
        let action = webhook.action();
        seen.insert(action.to_string());
        let component = format!("webhook-workflow-job-{}", action.replace('_', "-"));
        let schema = json!({"$ref": format!("#/components/schemas/{component}")});
        assert_valid(
            spec,
            &schema,
            &webhook.payload,
            &format!("{action} webhook"),
        );
        // The header the spec requires, and the payload shape real GitHub sends.
        let operation =
            &spec["webhooks"][format!("workflow-job-{}", action.replace('_', "-"))]["post"];
        for parameter in operation["parameters"].as_array().unwrap() {
            if parameter["in"] == "header" && parameter["required"] == true {
                let name = parameter["name"].as_str().unwrap().to_lowercase();
                assert!(
                    !webhook.header(&name).is_empty(),
                    "{action}: header {name} missing"
                );
            }
        }
        for (file, real) in fixtures(action) {
            let mut differences = Vec::new();
            for part in ["workflow_job", "repository", "sender", "installation"] {
                if !real[part].is_null() {
                    shape_differences(&real[part], &webhook.payload[part], part, &mut differences);
                }
            }
            if !real["organization"].is_null() && webhook.job_id() == job.job_id {
                shape_differences(
                    &real["organization"],
                    &webhook.payload["organization"],
                    "organization",
                    &mut differences,
                );
            }
            assert!(
                differences.is_empty(),
                "{action} differs from {file}:\n{}",
                differences.join("\n")
            );
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["completed", "in_progress", "queued"]
    );
    emulator.shutdown().await;
}

#[test]
fn nullable_is_rewritten_as_json_schema_null() {
    let mut schema = json!({
        "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"allOf": [{"type": "object"}], "nullable": true},
            "c": {"type": "string", "enum": ["x"], "nullable": true}
        }
    });
    openapi_to_json_schema(&mut schema);
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    assert!(validator.is_valid(&json!({"a": null, "b": null, "c": null})));
    assert!(validator.is_valid(&json!({"a": "s", "b": {}, "c": "x"})));
    assert!(!validator.is_valid(&json!({"a": 1})));
    assert!(!validator.is_valid(&json!({"c": "y"})));
}

/// The checks above can fail: a payload that drifted from GitHub's shape is caught.
#[test]
fn a_drifted_payload_is_caught() {
    let rest = rest_spec();
    let schema = response_schema(
        rest,
        "/orgs/{org}/actions/runners/generate-jitconfig",
        "post",
        201,
    )
    .unwrap();
    let good = json!({
        "runner": {"id": 1, "name": "r", "os": "linux", "status": "online", "busy": false,
                   "labels": [{"id": 1, "name": "linux", "type": "custom"}]},
        "encoded_jit_config": "e30="
    });
    assert_valid(rest, schema, &good, "a good JIT answer");
    let mut missing_busy = good.clone();
    missing_busy["runner"]
        .as_object_mut()
        .unwrap()
        .remove("busy");
    let mut bad_label = good.clone();
    bad_label["runner"]["labels"][0]["type"] = json!("mystery");
    for bad in [missing_busy, bad_label] {
        assert!(
            !validation_errors(rest, schema, &bad).is_empty(),
            "accepted {bad}"
        );
    }

    let webhooks = webhook_spec();
    let schema = json!({"$ref": "#/components/schemas/webhook-workflow-job-queued"});
    let (_, real) = fixtures("queued").remove(0);
    assert_valid(webhooks, &schema, &real, "a real queued payload");
    let mut wrong_status = real.clone();
    wrong_status["workflow_job"]["status"] = json!("running");
    assert!(!validation_errors(webhooks, &schema, &wrong_status).is_empty());

    let mut ours = real.clone();
    ours["workflow_job"]
        .as_object_mut()
        .unwrap()
        .remove("run_attempt");
    let mut differences = Vec::new();
    shape_differences(&real, &ours, "", &mut differences);
    assert_eq!(differences, [".workflow_job.run_attempt is missing"]);
}
