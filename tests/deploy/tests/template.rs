//! template.yaml against what it deploys: the state machine's substitutions, the handler
//! binaries, the store's table, the functions' IAM needs, the runner role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;
use runway_deploy_tests::{Template, repo_root, substitution_variables};
use runway_jobflow::Step;
use runway_lambda_support::permissions;
use serde_json::{Value, json};

fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).expect("template.yaml")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The `${...}` variables of the job state machine.
fn asl_variables() -> BTreeSet<String> {
    substitution_variables(&read("statemachines/job.asl.json"))
        .into_iter()
        .collect()
}

/// Every `[[bin]]` name of the crates under handlers/.
fn handler_binaries() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join("handlers")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let manifest: toml::Value = toml::from_str(&text).unwrap();
        for bin in manifest
            .get("bin")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            names.insert(bin["name"].as_str().unwrap().to_owned());
        }
    }
    names
}

fn state_machine(template: &Template) -> &Value {
    let machines = template.resources_of_type("AWS::Serverless::StateMachine");
    assert_eq!(machines.len(), 1, "one state machine");
    machines.into_values().next().unwrap()
}

/// The logical id a substitution points at (`!GetAtt X.Arn`).
fn function_of(substitution: &Value) -> &str {
    let parts = substitution["Fn::GetAtt"]
        .as_array()
        .unwrap_or_else(|| panic!("{substitution} is not !GetAtt Function.Arn"));
    assert_eq!(parts[1], "Arn", "{substitution}");
    parts[0].as_str().unwrap()
}

#[test]
fn every_substitution_of_the_state_machine_is_defined_and_every_definition_used() {
    let template = template();
    let machine = state_machine(&template);
    assert_eq!(
        machine["Properties"]["DefinitionUri"],
        "statemachines/job.asl.json"
    );
    assert_eq!(machine["Properties"]["Type"], "STANDARD");
    let substitutions = machine["Properties"]["DefinitionSubstitutions"]
        .as_object()
        .unwrap();
    let defined: BTreeSet<String> = substitutions.keys().cloned().collect();
    assert_eq!(
        asl_variables(),
        defined,
        "every ${{X}} of job.asl.json has a DefinitionSubstitutions entry and vice versa"
    );
    let binaries = handler_binaries();
    for (name, value) in substitutions {
        let function = function_of(value);
        let resource = template
            .resource(function)
            .unwrap_or_else(|| panic!("{name} points at {function}, which is not defined"));
        assert_eq!(resource["Type"], "AWS::Serverless::Function", "{function}");
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{function} has no BuildProperties.Binary"));
        assert!(
            binaries.contains(binary),
            "{function} builds binary {binary}, which no handlers/*/Cargo.toml [[bin]] defines \
             (have: {binaries:?})"
        );
    }
}

#[test]
fn each_step_runs_in_the_function_built_from_its_own_binary() {
    let template = template();
    let substitutions = &state_machine(&template)["Properties"]["DefinitionSubstitutions"];
    let variables = asl_variables();
    for step in Step::ALL {
        assert!(
            variables.contains(step.substitution()),
            "job.asl.json never calls {step}"
        );
        let function = function_of(&substitutions[step.substitution()]);
        assert_eq!(
            template.resource(function).unwrap()["Metadata"]["BuildProperties"]["Binary"],
            step.name(),
            "{function} must run the {step} step"
        );
    }
    assert_eq!(variables.len(), Step::ALL.len());
}

#[test]
fn every_function_is_a_rust_arm64_function_with_its_own_log_group() {
    let template = template();
    let globals = &template.root["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], json!(["arm64"]));
    assert_eq!(globals["Handler"], "bootstrap");
    let functions = template.resources_of_type("AWS::Serverless::Function");
    assert_eq!(
        functions.len(),
        Step::ALL.len() + 1,
        "the steps and the webhook"
    );
    let mut log_groups = BTreeSet::new();
    for (id, function) in &functions {
        assert_eq!(
            function["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id}"
        );
        let properties = &function["Properties"];
        for key in ["Runtime", "Architectures", "CodeUri", "Handler"] {
            assert!(
                properties.get(key).is_none() || properties[key] == globals[key],
                "{id} overrides {key}"
            );
        }
        let group = properties["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no LoggingConfig.LogGroup"));
        let resource = template.resource(group).unwrap();
        assert_eq!(resource["Type"], "AWS::Logs::LogGroup", "{id}");
        assert_eq!(
            resource["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{group} keeps logs for the configured retention"
        );
        assert!(log_groups.insert(group.to_owned()), "{group} is shared");
    }
}

#[test]
fn the_webhook_is_post_webhook_on_the_http_api() {
    let template = template();
    let webhook = template.resource("WebhookFunction").unwrap();
    assert_eq!(
        webhook["Metadata"]["BuildProperties"]["Binary"], "webhook",
        "the webhook binary"
    );
    assert!(handler_binaries().contains("webhook"));
    let event = &webhook["Properties"]["Events"]["Webhook"];
    assert_eq!(event["Type"], "HttpApi");
    assert_eq!(event["Properties"]["Path"], runway_webhook::WEBHOOK_PATH);
    assert_eq!(event["Properties"]["Method"], "POST");
    let outputs = template.root["Outputs"].as_object().unwrap();
    assert!(
        outputs["WebhookUrl"]["Value"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(runway_webhook::WEBHOOK_PATH)
    );
    assert!(outputs.contains_key("JobStateMachineArn"));
}

// ---- IAM -------------------------------------------------------------------------------------

/// The inline policy statements of a function.
fn statements(function: &Value) -> Vec<&Value> {
    function["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|policy| {
            policy["Statement"]
                .as_array()
                .unwrap_or_else(|| panic!("only inline policy documents, not {policy}"))
        })
        .collect()
}

fn list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn granted_actions(function: &Value) -> BTreeSet<String> {
    statements(function)
        .into_iter()
        .flat_map(|statement| {
            assert_eq!(statement["Effect"], "Allow");
            list(&statement["Action"])
                .into_iter()
                .map(|action| action.as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn each_function_is_granted_exactly_the_actions_it_calls() {
    let template = template();
    let substitutions = &state_machine(&template)["Properties"]["DefinitionSubstitutions"];
    let mut expected: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for step in Step::ALL {
        let function = function_of(&substitutions[step.substitution()]).to_owned();
        expected.insert(function, permissions::step_actions(step));
    }
    expected.insert("WebhookFunction".into(), permissions::webhook_actions());
    for (function, wanted) in expected {
        let granted = granted_actions(template.resource(&function).unwrap());
        let wanted: BTreeSet<String> = wanted.into_iter().map(str::to_owned).collect();
        let missing: Vec<_> = wanted.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&wanted).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{function}: missing {missing:?}, granted without need {extra:?}"
        );
    }
}

#[test]
fn no_policy_grants_wildcard_actions_or_unscoped_writes() {
    let template = template();
    for (id, function) in template.resources_of_type("AWS::Serverless::Function") {
        for statement in statements(function) {
            let actions: Vec<&str> = list(&statement["Action"])
                .into_iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            for action in &actions {
                assert!(!action.contains('*'), "{id} grants {action}");
            }
            if statement["Resource"] == "*" {
                // Describe* calls do not support resource-level permissions.
                for action in &actions {
                    assert!(
                        action.starts_with("ec2:Describe"),
                        "{id} grants {action} on every resource"
                    );
                }
            }
        }
    }
}

#[test]
fn only_the_runner_role_may_be_passed_and_only_to_ec2() {
    let template = template();
    for (id, function) in template.resources_of_type("AWS::Serverless::Function") {
        for statement in statements(function) {
            if list(&statement["Action"]).contains(&&json!("iam:PassRole")) {
                assert_eq!(
                    statement["Resource"],
                    json!({"Fn::GetAtt": ["RunnerRole", "Arn"]}),
                    "{id}"
                );
                assert_eq!(
                    statement["Condition"]["StringEquals"]["iam:PassedToService"],
                    json!({"Fn::Sub": "ec2.${AWS::URLSuffix}"}),
                    "{id}"
                );
            }
        }
    }
}

#[test]
fn the_runner_role_is_the_providers_runner_policy() {
    let template = template();
    let role = template.resource("RunnerRole").unwrap();
    let statement = &role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0];
    let wanted: Value = serde_json::from_str(runway_providers::RUNNER_POLICY_DOC).unwrap();
    assert_eq!(statement["Sid"], wanted["Sid"]);
    assert_eq!(statement["Effect"], wanted["Effect"]);
    assert_eq!(statement["Action"], wanted["Action"]);
    assert_eq!(
        statement["Resource"],
        json!({"Fn::Sub": wanted["Resource"]})
    );
    let profile = template.resource("RunnerInstanceProfile").unwrap();
    assert_eq!(
        profile["Properties"]["Roles"],
        json!([{"Ref": "RunnerRole"}])
    );
    // JIT configs are written under the prefix the runner role may read.
    assert!(wanted["Resource"].as_str().unwrap().contains(&format!(
        "parameter{}/",
        runway_providers::DEFAULT_SSM_PREFIX
    )));
}

/// The SDK operations called in `file`, as `receiver.operation()` (with any whitespace).
fn operations(file: &str, receiver: &str) -> BTreeSet<String> {
    let pattern = Regex::new(&format!(r"\.{receiver}\s*\.\s*([a-z_]+)\(\)")).unwrap();
    pattern
        .captures_iter(&read(file))
        .map(|captures| captures[1].to_owned())
        // Cloning a client calls nothing.
        .filter(|operation| operation != "clone")
        .collect()
}

fn actions_of(service: &str, operations: &BTreeSet<String>) -> BTreeSet<&'static str> {
    operations
        .iter()
        .flat_map(|operation| {
            permissions::iam_actions(service, operation)
                .unwrap_or_else(|| {
                    panic!("{service} {operation} is called but has no IAM actions listed in runway_lambda_support::permissions::iam_actions")
                })
                .iter()
                .copied()
        })
        .collect()
}

fn assert_within(what: &str, actions: BTreeSet<&str>, group: &[&str]) {
    let group: BTreeSet<&str> = group.iter().copied().collect();
    let outside: Vec<_> = actions.difference(&group).collect();
    assert!(
        outside.is_empty(),
        "{what} calls {outside:?}, which its group does not grant"
    );
}

#[test]
fn the_permission_groups_cover_every_aws_operation_in_the_code() {
    let store = operations("crates/store/src/dynamo.rs", "client");
    for operation in ["get_item", "put_item", "transact_write_items", "query"] {
        assert!(store.contains(operation), "the scan found {store:?}");
    }
    assert_within(
        "the store",
        actions_of("dynamodb", &store),
        permissions::STORE,
    );

    let provider = "crates/providers/src/ec2.rs";
    let mut ec2 = operations(provider, "ec2");
    ec2.extend(operations(provider, "client"));
    assert!(ec2.contains("run_instances"), "the scan found {ec2:?}");
    let mut provider_actions = actions_of("ec2", &ec2);
    provider_actions.extend(actions_of("ssm", &operations(provider, "ssm")));
    let launch_and_terminate: Vec<&str> = permissions::LAUNCH
        .iter()
        .chain(permissions::TERMINATE)
        .copied()
        .collect();
    assert_within("the EC2 provider", provider_actions, &launch_and_terminate);

    let callbacks = operations("crates/jobflow/src/callbacks.rs", "client");
    assert!(!callbacks.is_empty());
    assert_within(
        "the callbacks",
        actions_of("sfn", &callbacks),
        permissions::CALLBACKS,
    );

    let starter = operations("crates/webhook/src/sfn.rs", "client");
    assert!(!starter.is_empty());
    assert_within(
        "the execution starter",
        actions_of("sfn", &starter),
        permissions::START_EXECUTIONS,
    );

    let settings = Regex::new(r"ssm\s*\.\s*([a-z_]+)\(\)").unwrap();
    let support: BTreeSet<String> = settings
        .captures_iter(&read("handlers/support/src/wiring.rs"))
        .map(|c| c[1].to_owned())
        .filter(|operation| operation != "clone")
        .collect();
    assert!(support.contains("get_parameter"));
    assert_within(
        "the settings",
        actions_of("ssm", &support),
        permissions::SETTINGS,
    );
}

#[test]
fn the_state_machine_may_invoke_each_step_function_and_nothing_else() {
    let template = template();
    let machine = state_machine(&template);
    let substitutions = machine["Properties"]["DefinitionSubstitutions"]
        .as_object()
        .unwrap();
    let wanted: BTreeSet<&str> = substitutions.values().map(function_of).collect();
    let mut invoked = BTreeSet::new();
    for policy in machine["Properties"]["Policies"].as_array().unwrap() {
        if let Some(invoke) = policy.get("LambdaInvokePolicy") {
            invoked.insert(invoke["FunctionName"]["Ref"].as_str().unwrap());
        } else {
            for statement in policy["Statement"].as_array().unwrap() {
                for action in list(&statement["Action"]) {
                    let action = action.as_str().unwrap();
                    assert!(
                        action.starts_with("logs:"),
                        "the state machine may {action}"
                    );
                }
            }
        }
    }
    assert_eq!(invoked, wanted);
}

// ---- The table -------------------------------------------------------------------------------

fn names<'a>(items: &'a Value, key: &str) -> BTreeSet<&'a str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

/// `[(attribute, HASH|RANGE)]` of a key schema from the template.
fn template_keys(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["AttributeName"].as_str().unwrap().to_owned(),
                key["KeyType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn sdk_keys(schema: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> Vec<(String, String)> {
    schema
        .iter()
        .map(|key| {
            (
                key.attribute_name().to_owned(),
                key.key_type().as_str().to_owned(),
            )
        })
        .collect()
}

/// `{index name: (key schema, projection type)}`.
type Indexes = BTreeMap<String, (Vec<(String, String)>, String)>;

fn template_indexes(indexes: &Value) -> Indexes {
    indexes
        .as_array()
        .unwrap()
        .iter()
        .map(|index| {
            (
                index["IndexName"].as_str().unwrap().to_owned(),
                (
                    template_keys(&index["KeySchema"]),
                    index["Projection"]["ProjectionType"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_table_is_the_one_the_store_creates() {
    let moto = runway_testkit::MotoServer::shared().expect("moto (scripts/setup.sh)");
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let name = "deploy-check-table";
    runway_store::create_table(&client, name).await.unwrap();
    let table = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();

    let template = template();
    let tables = template.resources_of_type("AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1);
    let properties = &tables.values().next().unwrap()["Properties"];

    let attributes: BTreeSet<(String, String)> = properties["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap().to_owned(),
                a["AttributeType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let created: BTreeSet<(String, String)> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_owned(),
                a.attribute_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(attributes, created, "attribute definitions");
    assert_eq!(
        template_keys(&properties["KeySchema"]),
        sdk_keys(table.key_schema()),
        "primary key"
    );

    let created_lsis: Indexes = table
        .local_secondary_indexes()
        .iter()
        .map(|index| {
            (
                index.index_name().unwrap().to_owned(),
                (
                    sdk_keys(index.key_schema()),
                    index
                        .projection()
                        .and_then(|p| p.projection_type())
                        .unwrap()
                        .as_str()
                        .to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(
        template_indexes(&properties["LocalSecondaryIndexes"]),
        created_lsis,
        "local secondary indexes"
    );
    let created_gsis: Indexes = table
        .global_secondary_indexes()
        .iter()
        .map(|index| {
            (
                index.index_name().unwrap().to_owned(),
                (
                    sdk_keys(index.key_schema()),
                    index
                        .projection()
                        .and_then(|p| p.projection_type())
                        .unwrap()
                        .as_str()
                        .to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(
        template_indexes(&properties["GlobalSecondaryIndexes"]),
        created_gsis,
        "global secondary indexes"
    );
    // The store queries its indexes by these names.
    assert!(created_lsis.contains_key(runway_store::dynamo::QUEUE_INDEX));
    assert!(created_gsis.contains_key(runway_store::dynamo::POOL_INDEX));
    assert_eq!(
        names(&properties["LocalSecondaryIndexes"], "IndexName"),
        BTreeSet::from([runway_store::dynamo::QUEUE_INDEX])
    );

    assert_eq!(
        properties["TimeToLiveSpecification"],
        json!({"AttributeName": ttl.attribute_name().unwrap(), "Enabled": true}),
        "TTL"
    );
    assert_eq!(
        ttl.attribute_name(),
        Some(runway_store::dynamo::TTL_ATTRIBUTE)
    );
    assert_eq!(
        properties["BillingMode"],
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str())
            .unwrap_or("PAY_PER_REQUEST")
    );
}

#[test]
fn the_sam_config_builds_with_the_beta_rust_builder() {
    let config: toml::Value = toml::from_str(&read("sam/samconfig.toml")).unwrap();
    assert_eq!(
        config["default"]["build"]["parameters"]["beta_features"].as_bool(),
        Some(true)
    );
    assert!(Path::new(&repo_root().join("sam/env.json")).exists());
}
