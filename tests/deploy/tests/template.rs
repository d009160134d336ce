//! template.yaml against what it deploys: every state machine's substitutions, the Lambda
//! executable and its entry points, the store's table, the functions' IAM needs, the runner role, launch template,
//! key, tracing, schedule and alarms.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use runway_deploy_tests::{
    Template, asl_definitions, repo_root, substituted_function, substitution_variables,
};
use runway_jobflow::Step;
use runway_lambda_support::{Handler, permissions};
use serde_json::{Value, json};

fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).expect("template.yaml")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The `${...}` variables of a state machine definition.
fn asl_variables(relative: &str) -> BTreeSet<String> {
    substitution_variables(&read(relative))
        .into_iter()
        .collect()
}

/// Every `[[bin]]` name of the crates under handlers/.
fn lambda_binaries() -> BTreeSet<String> {
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

/// The one executable every function runs.
const LAMBDA_BINARY: &str = "runway-lambda";

/// The binary `function` builds (`Metadata.BuildProperties.Binary`).
fn binary_of<'a>(id: &str, function: &'a Value) -> &'a str {
    function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no BuildProperties.Binary"))
}

/// The entry point `function` runs: its `Handler`, which must name one of runway's.
fn handler_of(id: &str, function: &Value) -> Handler {
    let setting = function["Properties"]["Handler"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no Handler"));
    setting
        .parse()
        .unwrap_or_else(|error| panic!("{id}: {error}"))
}

/// The state machine deploying `definition` (e.g. `statemachines/job.asl.json`).
fn machine_of<'a>(template: &'a Template, definition: &str) -> (String, &'a Value) {
    let mut found: Vec<(String, &Value)> = template
        .state_machines()
        .into_iter()
        .filter(|(_, machine)| machine["Properties"]["DefinitionUri"] == definition)
        .collect();
    assert_eq!(found.len(), 1, "one state machine deploys {definition}");
    found.remove(0)
}

fn job_machine(template: &Template) -> &Value {
    machine_of(template, "statemachines/job.asl.json").1
}

/// The logical id a substitution points at (`!GetAtt X.Arn`).
fn function_of(substitution: &Value) -> &str {
    substituted_function(substitution)
        .unwrap_or_else(|| panic!("{substitution} is not !GetAtt Function.Arn"))
}

fn substitutions(machine: &Value) -> &serde_json::Map<String, Value> {
    machine["Properties"]["DefinitionSubstitutions"]
        .as_object()
        .expect("DefinitionSubstitutions")
}

#[test]
fn every_state_machine_deploys_a_definition_whose_substitutions_are_all_defined() {
    let template = template();
    let binaries = lambda_binaries();
    let machines = template.state_machines();
    assert!(machines.len() >= 2, "the job and reaper machines");
    for (id, machine) in &machines {
        let properties = &machine["Properties"];
        let definition = properties["DefinitionUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: DefinitionUri is a file of statemachines/"));
        assert!(
            repo_root().join(definition).is_file(),
            "{id} deploys {definition}, which does not exist"
        );
        assert_eq!(properties["Type"], "STANDARD", "{id}");
        let defined: BTreeSet<String> = substitutions(machine).keys().cloned().collect();
        assert_eq!(
            asl_variables(definition),
            defined,
            "{id}: every ${{X}} of {definition} has a DefinitionSubstitutions entry and vice versa"
        );
        for (name, value) in substitutions(machine) {
            let function = function_of(value);
            let resource = template.resource(function).unwrap_or_else(|| {
                panic!("{id}: {name} points at {function}, which is not defined")
            });
            assert_eq!(resource["Type"], "AWS::Serverless::Function", "{function}");
            let binary = binary_of(function, resource);
            assert!(
                binaries.contains(binary),
                "{function} builds binary {binary}, which no handlers/*/Cargo.toml [[bin]] defines \
                 (have: {binaries:?})"
            );
            handler_of(function, resource);
        }
    }
}

#[test]
fn every_definition_that_calls_lambdas_is_deployed() {
    // A definition with `${...}` resources is meant for AWS; one without (the local demo) is
    // not.
    let template = template();
    let deployed: BTreeSet<String> = template
        .state_machines()
        .values()
        .filter_map(|machine| machine["Properties"]["DefinitionUri"].as_str())
        .map(str::to_owned)
        .collect();
    let definitions = asl_definitions(&repo_root()).unwrap();
    assert!(definitions.contains(&"statemachines/job.asl.json".to_owned()));
    assert!(definitions.contains(&"statemachines/reaper.asl.json".to_owned()));
    for definition in definitions {
        if !asl_variables(&definition).is_empty() {
            assert!(
                deployed.contains(&definition),
                "{definition} calls Lambdas but no state machine of template.yaml deploys it"
            );
        }
    }
}

#[test]
fn each_step_runs_in_the_function_whose_handler_names_it() {
    let template = template();
    let substitutions = substitutions(job_machine(&template));
    let variables = asl_variables("statemachines/job.asl.json");
    for step in Step::ALL {
        assert!(
            variables.contains(step.substitution()),
            "job.asl.json never calls {step}"
        );
        let function = function_of(&substitutions[step.substitution()]);
        assert_eq!(
            handler_of(function, template.resource(function).unwrap()),
            Handler::Step(step),
            "{function} must run the {step} step"
        );
    }
    assert_eq!(variables.len(), Step::ALL.len());
}

#[test]
fn the_reaper_machine_runs_the_reap_function_on_the_schedule() {
    let template = template();
    let (id, machine) = machine_of(&template, "statemachines/reaper.asl.json");
    let substitutions = substitutions(machine);
    assert_eq!(
        substitutions.keys().collect::<Vec<_>>(),
        ["ReapFunctionArn"],
        "{id}"
    );
    let function = function_of(&substitutions["ReapFunctionArn"]);
    let reap = template.resource(function).unwrap();
    assert_eq!(handler_of(function, reap), Handler::Reap);
    assert_eq!(
        reap["Properties"]["Environment"]["Variables"]["RUNWAY_JOB_STATE_MACHINE_ARN"],
        json!({"Ref": machine_of(&template, "statemachines/job.asl.json").0}),
        "the reaper asks the job machine whether an execution still runs"
    );
    let schedules: Vec<&Value> = machine["Properties"]["Events"]
        .as_object()
        .expect("the reaper machine has events")
        .values()
        .filter(|event| event["Type"] == "Schedule" || event["Type"] == "ScheduleV2")
        .collect();
    assert_eq!(schedules.len(), 1, "{id} runs on one schedule");
    assert_eq!(
        schedules[0]["Properties"]["Schedule"],
        json!({"Ref": "ReaperSchedule"}),
        "the schedule is a parameter"
    );
    let parameter = &template.root["Parameters"]["ReaperSchedule"];
    let default = parameter["Default"].as_str().unwrap();
    assert!(
        Regex::new(parameter["AllowedPattern"].as_str().unwrap())
            .unwrap()
            .is_match(default),
        "the default schedule {default} matches its own pattern"
    );
}

#[test]
fn every_function_is_a_traced_rust_arm64_function_with_its_own_log_group() {
    let template = template();
    let globals = &template.root["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], json!(["arm64"]));
    assert_eq!(globals["Tracing"], "Active", "X-Ray traces every function");
    assert!(
        globals.get("Handler").is_none(),
        "each function names its own entry point"
    );
    let functions = template.functions();
    assert_eq!(
        lambda_binaries(),
        BTreeSet::from([LAMBDA_BINARY.to_owned()]),
        "handlers/ builds one Lambda executable"
    );
    let deployed: BTreeSet<Handler> = functions
        .iter()
        .map(|(id, function)| handler_of(id, function))
        .collect();
    assert_eq!(
        deployed,
        Handler::all().collect::<BTreeSet<_>>(),
        "every entry point is deployed, and only those"
    );
    assert_eq!(
        functions.len(),
        deployed.len(),
        "one function per entry point"
    );
    let build = json!({
        "BuildMethod": "rust-cargolambda",
        "BuildProperties": {"Binary": LAMBDA_BINARY},
    });
    let mut log_groups = BTreeSet::new();
    for (id, function) in &functions {
        // The same build metadata (and CodeUri, from Globals) for all: `sam build` compiles
        // the executable once and copies it to every function.
        assert_eq!(function["Metadata"], build, "{id}");
        let properties = &function["Properties"];
        for key in ["Runtime", "Architectures", "CodeUri", "Tracing"] {
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
fn every_state_machine_logs_and_is_traced() {
    let template = template();
    for (id, machine) in template.state_machines() {
        let properties = &machine["Properties"];
        assert_eq!(
            properties["Tracing"],
            json!({"Enabled": true}),
            "{id} traces in X-Ray"
        );
        let logging = &properties["Logging"];
        assert!(logging["Level"].is_string(), "{id} logs");
        let group =
            logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{id} logs to a log group of the stack"));
        assert_eq!(
            template.resource(group).unwrap()["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{group}"
        );
    }
}

#[test]
fn the_webhook_is_post_webhook_on_the_http_api() {
    let template = template();
    let webhook = template.resource("WebhookFunction").unwrap();
    assert_eq!(
        handler_of("WebhookFunction", webhook),
        Handler::Webhook,
        "the webhook entry point"
    );
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
}

#[test]
fn the_outputs_name_what_an_operator_needs() {
    let template = template();
    let outputs = template.root["Outputs"].as_object().unwrap();
    for (output, resource) in [
        ("JobStateMachineArn", "JobStateMachine"),
        ("ReaperStateMachineArn", "ReaperStateMachine"),
        ("StateTableName", "StateTable"),
    ] {
        assert_eq!(
            outputs[output]["Value"],
            json!({"Ref": resource}),
            "{output}"
        );
    }
    let console = outputs["JobStateMachineConsoleUrl"]["Value"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(
        console.starts_with("https://") && console.ends_with("${JobStateMachine}"),
        "{console}"
    );
    for (id, output) in outputs {
        assert!(output["Description"].is_string(), "{id} has a description");
    }
}

#[test]
fn every_parameter_has_a_default_and_a_description() {
    let template = template();
    let parameters = template.root["Parameters"].as_object().unwrap();
    let grouped: BTreeSet<&str> =
        template.root["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["Parameters"].as_array().unwrap())
            .map(|name| name.as_str().unwrap())
            .collect();
    for (name, parameter) in parameters {
        assert!(parameter.get("Default").is_some(), "{name} has a default");
        assert!(
            parameter["Description"]
                .as_str()
                .is_some_and(|text| text.len() > 20),
            "{name} says what it is"
        );
        assert!(
            grouped.contains(name.as_str()),
            "{name} is in a console group"
        );
        if let (Some(pattern), Some(default)) = (
            parameter["AllowedPattern"].as_str(),
            parameter["Default"].as_str(),
        ) {
            assert!(
                Regex::new(pattern).unwrap().is_match(default),
                "{name}'s default {default:?} matches its pattern {pattern}"
            );
        }
    }
}

/// `RUNWAY_*` variables settings.rs reads (`pub const X_ENV: &str = "RUNWAY_..."`).
fn settings_variables() -> BTreeSet<String> {
    let pattern = Regex::new(r#"pub const ([A-Z_]+_ENV): &str = "(RUNWAY_[A-Z_]+)""#).unwrap();
    pattern
        .captures_iter(&read("crates/setup/src/settings.rs"))
        // The credential values themselves are for `sam local invoke` only.
        .filter(|captures| !["GITHUB_PRIVATE_KEY_ENV", "GITHUB_TOKEN_ENV"].contains(&&captures[1]))
        .map(|captures| captures[2].to_owned())
        .collect()
}

#[test]
fn every_function_gets_every_setting_and_local_invokes_replace_resource_references() {
    let template = template();
    let globals = template.root["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    let wanted = settings_variables();
    assert!(wanted.contains(runway_lambda_support::RUNNER_LAUNCH_TEMPLATE_ENV));
    assert!(wanted.contains(runway_lambda_support::JIT_CONFIG_KMS_KEY_ENV));
    for variable in &wanted {
        assert!(
            globals.contains_key(variable),
            "Globals sets no {variable}, which every function reads"
        );
    }
    assert_eq!(
        globals[runway_lambda_support::RUNNER_LAUNCH_TEMPLATE_ENV],
        json!({"Ref": "RunnerLaunchTemplate"})
    );
    assert_eq!(
        globals[runway_lambda_support::JIT_CONFIG_KMS_KEY_ENV],
        json!({"Fn::GetAtt": ["SecretsKey", "Arn"]})
    );
    // `sam local invoke` turns a reference to a resource into its logical id; sam/env.json
    // must give such variables a real (or empty) value instead.
    let env: Value = serde_json::from_str(&read("sam/env.json")).unwrap();
    let local = env["Parameters"].as_object().unwrap();
    let resources = template.resources();
    let mut variables: Vec<(&String, &Value)> = globals.iter().collect();
    for function in template.functions().values() {
        if let Some(own) = function["Properties"]["Environment"]["Variables"].as_object() {
            variables.extend(own.iter());
        }
    }
    for (name, value) in variables {
        let reference = value["Ref"]
            .as_str()
            .or_else(|| value["Fn::GetAtt"][0].as_str());
        if reference.is_some_and(|id| resources.contains_key(id)) {
            assert!(
                local.contains_key(name),
                "{name} names a stack resource: sam/env.json must set it for local invokes"
            );
        }
    }
    // The sample configuration is one the functions accept.
    let document = local[runway_lambda_support::CONFIG_ENV].as_str().unwrap();
    let options = runway_config::ReadOptions::new(runway_config::Host::Lambda);
    runway_config::Document::from_json(document, &options).unwrap_or_else(|error| {
        panic!(
            "sam/env.json {}: {error}",
            runway_lambda_support::CONFIG_ENV
        )
    });
}

// ---- IAM -------------------------------------------------------------------------------------

/// The inline policy statements of a function. A statement under `Fn::If` counts in each
/// branch that is one (the other branch is `AWS::NoValue`).
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
        .flat_map(conditional_branches)
        .collect()
}

/// What a value may be once its `Fn::If`s are decided, leaving out `AWS::NoValue`.
fn conditional_branches(value: &Value) -> Vec<&Value> {
    match value.get("Fn::If").and_then(Value::as_array) {
        Some(parts) => parts
            .iter()
            .skip(1)
            .filter(|branch| branch.get("Ref") != Some(&json!("AWS::NoValue")))
            .flat_map(conditional_branches)
            .collect(),
        None => vec![value],
    }
}

/// The `Fn::If` condition a function's statement `sid` is granted under, if any.
fn statement_condition<'a>(function: &'a Value, sid: &str) -> Option<&'a str> {
    function["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|policy| policy["Statement"].as_array().unwrap())
        .find(|statement| {
            conditional_branches(statement)
                .iter()
                .any(|branch| branch["Sid"] == sid)
        })
        .and_then(|statement| statement["Fn::If"][0].as_str())
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
        // A Deny only narrows what the Allows grant.
        .filter(|statement| statement["Effect"] != "Deny")
        .flat_map(|statement| {
            assert_eq!(statement["Effect"], "Allow");
            list(&statement["Action"])
                .into_iter()
                .map(|action| action.as_str().unwrap().to_owned())
        })
        .collect()
}

/// The IAM actions of an SDK operation, from runway_lambda_support's table.
fn iam_actions(service: &str, operation: &str) -> Option<&'static [&'static str]> {
    permissions::iam_actions(service, operation)
}

/// What AWS authorises on the caller's behalf besides the action called: SSM decrypts and
/// encrypts SecureStrings with KMS as the caller (for parameters under a customer key).
fn implied_actions(actions: &BTreeSet<String>) -> BTreeSet<String> {
    let mut implied = BTreeSet::new();
    // Secrets Manager decrypts a secret under a customer key as the caller too.
    if actions.contains("ssm:GetParameter") || actions.contains("secretsmanager:GetSecretValue") {
        implied.insert("kms:Decrypt".to_owned());
    }
    // Secrets Manager encrypts a new version under a customer key as the caller too.
    if actions.contains("secretsmanager:PutSecretValue") {
        implied.insert("kms:GenerateDataKey".to_owned());
    }
    if actions.contains("ssm:PutParameter") {
        implied.extend(["kms:Encrypt".to_owned(), "kms:GenerateDataKey".to_owned()]);
    }
    implied
}

/// The Rust files of a directory (not recursive).
fn rust_files(relative: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".rs"))
        .map(|name| format!("{relative}/{name}"))
        .collect();
    files.sort();
    files
}

/// The reaper's own AWS calls (crates/reaper), beyond the groups it shares with the steps.
fn reaper_own_actions() -> BTreeSet<&'static str> {
    let mut called = BTreeSet::new();
    for file in rust_files("crates/reaper/src") {
        called.extend(operations(&file, "client"));
    }
    assert!(
        called.contains("describe_execution"),
        "the reaper asks Step Functions about executions (found {called:?})"
    );
    actions_of("sfn", &called)
}

/// Every action an entry point's code calls.
fn handler_actions(handler: Handler) -> BTreeSet<String> {
    let actions: BTreeSet<&str> = match handler {
        Handler::Webhook => permissions::webhook_actions(),
        Handler::Reap => {
            // The support crate's list, which must cover what the reaper's own code calls.
            let listed = permissions::reaper_actions();
            let own = reaper_own_actions();
            assert!(
                own.is_subset(&listed),
                "crates/reaper calls {:?}, which permissions::reaper_actions does not list",
                own.difference(&listed).collect::<Vec<_>>()
            );
            listed
        }
        Handler::Step(step) => permissions::step_actions(step),
        Handler::RunnerCache => permissions::runner_cache_actions(),
        Handler::Setup => permissions::setup_actions(),
    };
    let mut actions: BTreeSet<String> = actions.into_iter().map(str::to_owned).collect();
    actions.extend(implied_actions(&actions));
    actions
}

#[test]
fn each_function_is_granted_exactly_the_actions_it_calls() {
    let template = template();
    for (function, resource) in template.functions() {
        let handler = handler_of(&function, resource);
        let wanted = handler_actions(handler);
        let granted = granted_actions(resource);
        let missing: Vec<_> = wanted.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&wanted).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{function} ({handler}): missing {missing:?}, granted without need {extra:?}"
        );
    }
}

#[test]
fn the_expected_actions_are_not_vacuous() {
    // The reaper's list is built here, not in runway_lambda_support: check it holds what the
    // reaper is known to do, so an empty scan cannot pass.
    let reap = handler_actions(Handler::Reap);
    for action in [
        "states:DescribeExecution",
        "ec2:TerminateInstances",
        "ssm:DeleteParameter",
        "dynamodb:Query",
        "states:SendTaskSuccess",
        "kms:Decrypt",
    ] {
        assert!(reap.contains(action), "{action}");
    }
    assert!(
        !reap.contains("ec2:RunInstances"),
        "the reaper launches nothing"
    );
    let provision = handler_actions(Handler::Step(Step::Provision));
    assert!(provision.contains("kms:Encrypt") && provision.contains("ec2:RunInstances"));
    assert!(!handler_actions(Handler::Step(Step::Route)).contains("kms:Encrypt"));
}

/// Actions IAM authorises on every resource only (no resource-level permissions), besides
/// `ec2:Describe*`: each is granted on `"*"`, narrowed where it can be (ListTasks by the
/// cluster; a registration by what it may tag, see
/// ecs_runners_run_only_the_stack_s_task_definitions_in_its_cluster_with_only_its_roles).
const ACTIONS_ON_EVERY_RESOURCE: &[&str] = &[
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:ListTasks",
    "ssm:DescribeParameters",
];

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
                        action.starts_with("ec2:Describe")
                            || ACTIONS_ON_EVERY_RESOURCE.contains(action),
                        "{id} grants {action} on every resource"
                    );
                }
            }
        }
    }
}

/// The roles a function may pass, each only to its service: the runner instances' two roles
/// (plain and Session Manager) and the roles the operator lists for pools' own profiles to
/// EC2, the runner tasks' two roles to ECS tasks.
fn passable_roles() -> [(Value, Value); 3] {
    [
        (
            json!([
                {"Fn::GetAtt": ["RunnerRole", "Arn"]},
                {"Fn::GetAtt": ["RunnerSessionRole", "Arn"]},
            ]),
            json!({"Fn::Sub": "ec2.${AWS::URLSuffix}"}),
        ),
        (
            json!({"Ref": "RunnerPassableRoleArns"}),
            json!({"Fn::Sub": "ec2.${AWS::URLSuffix}"}),
        ),
        (
            json!([
                {"Fn::GetAtt": ["RunnerTaskRole", "Arn"]},
                {"Fn::GetAtt": ["RunnerTaskExecutionRole", "Arn"]},
            ]),
            json!(ECS_TASKS_SERVICE),
        ),
    ]
}

#[test]
fn only_the_runner_roles_may_be_passed_each_only_to_its_service() {
    let template = template();
    let wanted = passable_roles();
    let mut passed = Vec::new();
    for (id, function) in template.resources_of_type("AWS::Serverless::Function") {
        for statement in statements(function) {
            if list(&statement["Action"]).contains(&&json!("iam:PassRole")) {
                assert_eq!(
                    list(&statement["Action"]).len(),
                    1,
                    "{id}: PassRole has statements of its own"
                );
                let grant = (
                    statement["Resource"].clone(),
                    statement["Condition"]["StringEquals"]["iam:PassedToService"].clone(),
                );
                assert!(
                    wanted.contains(&grant),
                    "{id} passes {} to {}",
                    grant.0,
                    grant.1
                );
                assert_eq!(
                    id, "ProvisionFunction",
                    "only the provision function launches"
                );
                passed.push(grant);
            }
        }
    }
    assert_eq!(passed.len(), wanted.len(), "{passed:?}");
    for grant in &wanted {
        assert!(
            passed.contains(grant),
            "nothing passes {} to {}",
            grant.0,
            grant.1
        );
    }
}

/// The statements of a role: its inline policies' and those of the template's managed
/// policies it attaches (under any condition).
fn statements_of_role<'a>(template: &'a Template, role: &str) -> Vec<&'a Value> {
    let properties = &template.resource(role).unwrap_or_else(|| panic!("{role}"))["Properties"];
    let mut found: Vec<&Value> = properties["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_array().unwrap())
        .collect();
    let mut references = Vec::new();
    references_in(&properties["ManagedPolicyArns"], &mut references);
    for id in references {
        if let Some(policy) = template
            .resource(&id)
            .filter(|policy| policy["Type"] == "AWS::IAM::ManagedPolicy")
        {
            found.extend(
                policy["Properties"]["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap(),
            );
        }
    }
    found
}

/// Every `Ref` target within a value.
fn references_in(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("Ref") {
                found.push(id.clone());
            }
            map.values().for_each(|inner| references_in(inner, found));
        }
        Value::Array(items) => items.iter().for_each(|inner| references_in(inner, found)),
        _ => {}
    }
}

/// A role's `ManagedPolicyArns` with its `Fn::If`s decided by `conditions`, its
/// `Fn::Split [",", Fn::Join [",", [...]]]` read as the list it makes, and each list parameter
/// (`Fn::Join [",", Ref]`) kept as its `Ref`.
fn managed_policy_arns(value: &Value, conditions: &BTreeMap<&str, bool>) -> Vec<Value> {
    if let Some([condition, then, otherwise]) = value
        .get("Fn::If")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        let holds = conditions[condition.as_str().unwrap()];
        return managed_policy_arns(if holds { then } else { otherwise }, conditions);
    }
    if let Some([separator, joined]) = value
        .get("Fn::Split")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        assert_eq!(separator, ",");
        let [join_separator, items] = joined["Fn::Join"].as_array().unwrap().as_slice() else {
            panic!("split of a join: {joined}")
        };
        assert_eq!(join_separator, ",");
        return items
            .as_array()
            .unwrap()
            .iter()
            .map(|item| match item.get("Fn::Join") {
                Some(inner) => {
                    assert_eq!(inner[0], ",");
                    inner[1].clone()
                }
                None => item.clone(),
            })
            .collect();
    }
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .clone()
}

#[test]
fn the_runner_roles_share_runway_s_policy_and_take_the_operator_s_managed_policies() {
    let template = template();
    let parameters = &template.root["Parameters"];
    for parameter in ["RunnerManagedPolicyArns", "RunnerPassableRoleArns"] {
        assert_eq!(
            parameters[parameter]["Type"], "CommaDelimitedList",
            "{parameter}"
        );
        assert_eq!(
            parameters[parameter]["Default"], "",
            "{parameter}: none by default"
        );
    }
    // An empty CommaDelimitedList is [""]: the conditions join it to tell.
    let conditions = &template.root["Conditions"];
    for (condition, parameter) in [
        ("HasRunnerManagedPolicies", "RunnerManagedPolicyArns"),
        ("HasPassableRoles", "RunnerPassableRoleArns"),
    ] {
        assert_eq!(
            conditions[condition],
            json!({"Fn::Not": [{"Fn::Equals": [{"Fn::Join": [",", {"Ref": parameter}]}, ""]}]}),
            "{condition}"
        );
    }
    let ssm_core =
        json!({"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"});
    let runway = json!({"Ref": "RunnerPolicy"});
    let extra = json!({"Ref": "RunnerManagedPolicyArns"});
    let runner = template.resource("RunnerRole").unwrap();
    let session = template.resource("RunnerSessionRole").unwrap();
    for (role, given, wanted) in [
        (runner, false, vec![runway.clone()]),
        (runner, true, vec![runway.clone(), extra.clone()]),
        (session, false, vec![runway.clone(), ssm_core.clone()]),
        (
            session,
            true,
            vec![runway.clone(), ssm_core.clone(), extra.clone()],
        ),
    ] {
        let given = BTreeMap::from([("HasRunnerManagedPolicies", given)]);
        assert_eq!(
            managed_policy_arns(&role["Properties"]["ManagedPolicyArns"], &given),
            wanted,
            "{given:?}"
        );
        assert!(
            role["Properties"].get("Policies").is_none(),
            "runway's rights are in RunnerPolicy, once"
        );
    }
    assert_eq!(
        template.resource("RunnerPolicy").unwrap()["Type"],
        "AWS::IAM::ManagedPolicy"
    );
    // Both are for EC2 instances only.
    assert_eq!(
        runner["Properties"]["AssumeRolePolicyDocument"],
        session["Properties"]["AssumeRolePolicyDocument"]
    );
    assert_eq!(
        runner["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
        json!({"Service": {"Fn::Sub": "ec2.${AWS::URLSuffix}"}})
    );
    assert_eq!(
        statements_of_role(&template, "RunnerRole"),
        statements_of_role(&template, "RunnerSessionRole")
    );
    let profile = template.resource("RunnerSessionInstanceProfile").unwrap();
    assert_eq!(
        profile["Properties"]["Roles"],
        json!([{"Ref": "RunnerSessionRole"}])
    );
    // The provision function learns the session profile's name; operators see it too.
    assert_eq!(
        template.root["Globals"]["Function"]["Environment"]["Variables"]
            [runway_lambda_support::RUNNER_SESSION_INSTANCE_PROFILE_ENV],
        json!({"Ref": "RunnerSessionInstanceProfile"})
    );
    assert_eq!(
        template.root["Outputs"]["RunnerSessionInstanceProfileName"]["Value"],
        json!({"Ref": "RunnerSessionInstanceProfile"})
    );

    // The provision function passes the stack's two runner roles always, and the listed
    // roles only when some are listed.
    let provision = template.resource("ProvisionFunction").unwrap();
    assert_eq!(statement_condition(provision, "PassRunnerRole"), None);
    assert_eq!(
        statement_condition(provision, "PassPoolRunnerRoles"),
        Some("HasPassableRoles")
    );
}

#[test]
fn the_runner_role_is_the_providers_runner_policy() {
    let template = template();
    let statements = statements_of_role(&template, "RunnerRole");
    let statement = statements[0];
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
    // JIT configs are written under the prefix the runner role may read: the stack's own.
    assert!(
        wanted["Resource"]
            .as_str()
            .unwrap()
            .contains(&format!("parameter{STACK_JIT_PREFIX}/")),
        "{}",
        wanted["Resource"]
    );
    assert_eq!(
        runway_providers::jit_parameter_prefix("${AWS::StackName}"),
        STACK_JIT_PREFIX
    );
}

/// Where the stack's JIT configs live, as its policies write it (`/runway/<stack>/jit`).
const STACK_JIT_PREFIX: &str = "/runway/${AWS::StackName}/jit";

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
            iam_actions(service, operation)
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

    // The ECS provider, with the JIT config writer it shares with EC2 (their clients are
    // plain locals too, so any `ecs.`/`ssm.` call counts; reading a client's config calls
    // nothing).
    let calls = |file: &str, client: &str| -> BTreeSet<String> {
        Regex::new(&format!(r"\b{client}\s*\.\s*([a-z_]+)\(\)"))
            .unwrap()
            .captures_iter(&read(file))
            .map(|captures| captures[1].to_owned())
            .filter(|operation| !["clone", "config"].contains(&operation.as_str()))
            .collect()
    };
    let ecs = calls("crates/providers/src/ecs.rs", "ecs");
    for operation in ["run_task", "register_task_definition", "stop_task"] {
        assert!(ecs.contains(operation), "the scan found {ecs:?}");
    }
    let mut ssm = calls("crates/providers/src/ecs.rs", "ssm");
    ssm.extend(calls("crates/providers/src/jit.rs", "ssm"));
    assert!(ssm.contains("put_parameter"), "the scan found {ssm:?}");
    let mut ecs_actions = actions_of("ecs", &ecs);
    ecs_actions.extend(actions_of("ssm", &ssm));
    let ecs_groups: Vec<&str> = permissions::ECS_LAUNCH
        .iter()
        .chain(permissions::ECS_TERMINATE)
        .copied()
        .collect();
    assert_within("the ECS provider", ecs_actions, &ecs_groups);

    // The Lambda provider, with the same JIT config writer.
    let lambda = calls("crates/providers/src/lambda.rs", "lambda");
    for operation in ["invoke", "get_function_configuration"] {
        assert!(lambda.contains(operation), "the scan found {lambda:?}");
    }
    let mut ssm = calls("crates/providers/src/lambda.rs", "ssm");
    ssm.extend(calls("crates/providers/src/jit.rs", "ssm"));
    assert!(
        ssm.contains("get_parameters_by_path"),
        "the scan found {ssm:?}"
    );
    let mut lambda_actions = actions_of("lambda", &lambda);
    lambda_actions.extend(actions_of("ssm", &ssm));
    let lambda_groups: Vec<&str> = permissions::LAMBDA_LAUNCH
        .iter()
        .chain(permissions::LAMBDA_TERMINATE)
        .copied()
        .collect();
    assert_within("the Lambda provider", lambda_actions, &lambda_groups);

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

    // The settings are read by the shared wiring (and the reaper's, when it has its own).
    let settings = Regex::new(r"ssm\s*\.\s*([a-z_]+)\(\)").unwrap();
    let support: BTreeSet<String> = ["wiring.rs", "reaper.rs"]
        .into_iter()
        .map(|file| format!("crates/setup/src/{file}"))
        .filter(|file| repo_root().join(file).exists())
        .flat_map(|file| {
            settings
                .captures_iter(&read(&file))
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|operation| operation != "clone")
        .collect();
    assert!(support.contains("get_parameter"));
    assert_within(
        "the settings",
        actions_of("ssm", &support),
        permissions::SETTINGS,
    );

    let secrets: BTreeSet<String> = Regex::new(r"\bsecrets\s*\.\s*([a-z_]+)\(\)")
        .unwrap()
        .captures_iter(&read("crates/setup/src/secrets.rs"))
        .map(|c| c[1].to_owned())
        .collect();
    assert!(
        secrets.contains("get_secret_value"),
        "the scan found {secrets:?}"
    );
    assert_within(
        "the credentials",
        actions_of("secretsmanager", &secrets),
        permissions::SECRETS,
    );
    // The runner cache's S3 calls, but for the bucket creation only the CLI and `runway
    // local` use (the stack's template makes the bucket).
    // Provision makes each pool's runner log group; the reads are `runway logs`', run with
    // the operator's credentials.
    let logs = operations("crates/runner-logs/src/cloudwatch.rs", "client");
    let made: BTreeSet<String> = ["create_log_group", "put_retention_policy"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(made.is_subset(&logs), "the scan found {logs:?}");
    assert_within(
        "the runner log groups",
        actions_of("logs", &made),
        permissions::RUNNER_LOG_GROUPS,
    );
    actions_of("logs", &logs);
    let mut cache: BTreeSet<String> = operations("crates/runner-cache/src/store.rs", "client");
    cache.retain(|operation| {
        !["head_bucket", "create_bucket", "put_bucket_versioning"].contains(&operation.as_str())
    });
    assert!(cache.contains("upload_part"), "the scan found {cache:?}");
    assert_within(
        "the runner cache",
        actions_of("s3", &cache),
        permissions::RUNNER_CACHE_WRITE,
    );
    let objects = operations("crates/setup/src/policy_source.rs", "s3");
    assert!(objects.contains("get_object"), "the scan found {objects:?}");
    assert_within(
        "the policy objects",
        actions_of("s3", &objects),
        permissions::POLICY_OBJECTS,
    );
}

/// SSM is read only for the settings that are not in Secrets Manager: a parameter the stack
/// replaced with a secret is not granted, and with everything in secrets (and no config
/// parameter) no SSM statement is left at all.
#[test]
fn ssm_settings_are_granted_only_when_read_from_ssm() {
    let template = template();
    let mut checked = 0;
    for (id, function) in template.functions() {
        let Some(read) = statements(function)
            .into_iter()
            .find(|statement| statement["Sid"] == "ReadSettings")
        else {
            continue;
        };
        let condition = if id == "WebhookFunction" {
            "WebhookSecretInSsm"
        } else {
            "ReadsSettingsFromSsm"
        };
        assert_eq!(
            statement_condition(function, "ReadSettings"),
            Some(condition),
            "{id}"
        );
        assert_eq!(
            statement_condition(function, "DecryptSettings"),
            Some(condition),
            "{id}"
        );
        if id == "WebhookFunction" {
            // Its one parameter, granted only when it is the secret's store (the condition).
            assert_eq!(
                read["Resource"],
                json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WebhookSecretParameter}"})
            );
            continue;
        }
        for entry in list(&read["Resource"]) {
            let text = entry.to_string();
            // Granted only when that parameter is named and no secret replaces it.
            for (parameter, in_ssm) in [
                ("GitHubCredentialParameter", "ReadsGitHubCredentialFromSsm"),
                ("WebhookSecretParameter", "WebhookSecretInSsm"),
            ] {
                if text.contains(&format!("${{{parameter}}}")) {
                    checked += 1;
                    assert_eq!(entry["Fn::If"][0], in_ssm, "{id}: {entry}");
                    assert_eq!(
                        entry["Fn::If"][2],
                        json!({"Ref": "AWS::NoValue"}),
                        "{id}: {entry}"
                    );
                }
            }
        }
    }
    assert!(
        checked >= Handler::all().count() - 3,
        "every function but the webhook, runner-cache and setup reads its GitHub credential: \
         {checked}"
    );
}

/// Secrets Manager and S3 are read only when the stack names a secret or a policy object,
/// and then only what it names.
#[test]
fn secrets_and_policy_objects_are_granted_only_when_named() {
    let template = template();
    let mut checked = 0;
    for (id, function) in template.functions() {
        // It reads no secret and no policy: only the runner cache (see
        // the_runner_cache_is_private_and_each_role_reads_only_its_part).
        if id == "RunnerCacheFunction" {
            assert_eq!(statement_condition(function, "ReadSecrets"), None);
            continue;
        }
        // Its own two secrets (the_setup_function_alone_writes_the_setup_secrets).
        if id == "SetupFunction" {
            continue;
        }
        let webhook = id == "WebhookFunction";
        // The setup App's secret, read only while no explicit credential is given.
        let uses_setup_app = if webhook {
            "WebhookUsesSetupApp"
        } else {
            "UsesSetupApp"
        };
        for sid in ["ReadAppSecret", "DecryptAppSecret"] {
            assert_eq!(
                statement_condition(function, sid),
                Some(uses_setup_app),
                "{id} {sid}"
            );
        }
        let secrets = if webhook {
            "HasWebhookSecretArn"
        } else {
            "HasGitHubCredentialSecret"
        };
        assert_eq!(
            statement_condition(function, "ReadSecrets"),
            Some(secrets),
            "{id}"
        );
        assert_eq!(
            statement_condition(function, "DecryptSecrets"),
            Some(secrets),
            "{id}"
        );
        let policies = statement_condition(function, "ReadPolicyObjects");
        if id == "ReapFunction" || webhook {
            assert_eq!(policies, None, "{id} loads no policy");
        } else {
            assert_eq!(policies, Some("HasPolicyObjects"), "{id}");
        }
        for statement in statements(function) {
            let actions = list(&statement["Action"]);
            if statement["Sid"] == "ReadAppSecret" {
                assert_eq!(
                    statement["Resource"],
                    json!({"Ref": "GitHubAppSecret"}),
                    "{id}"
                );
                continue;
            }
            if actions.contains(&&json!("secretsmanager:GetSecretValue")) {
                checked += 1;
                let mut named: Vec<&Value> = list(&statement["Resource"])
                    .into_iter()
                    .flat_map(conditional_branches)
                    .collect();
                named.sort_by_key(|value| value.to_string());
                let wanted = if webhook {
                    vec![json!({"Ref": "WebhookSecretArn"})]
                } else {
                    vec![json!({"Ref": "GitHubCredentialSecretArn"})]
                };
                assert_eq!(named, wanted.iter().collect::<Vec<_>>(), "{id}");
            }
            // The runner cache's statements name its bucket (see
            // the_runner_cache_is_private_and_each_role_reads_only_its_part).
            let runner_cache = statement["Resource"]
                .to_string()
                .contains("RunnerCacheBucket.Arn");
            if actions.contains(&&json!("s3:GetObjectVersion")) && !runner_cache {
                checked += 1;
                let objects: Vec<&Value> = list(&statement["Resource"])
                    .into_iter()
                    .flat_map(conditional_branches)
                    .collect();
                assert_eq!(objects.len(), 2, "{id}: the router's and the throttle's");
                for (object, parameter) in objects
                    .into_iter()
                    .zip(["RouterPolicyObject", "ThrottlePolicyObject"])
                {
                    let sub = object["Fn::Sub"].as_array().unwrap();
                    assert_eq!(sub[0], "arn:${AWS::Partition}:s3:::${Object}", "{id}");
                    assert!(
                        sub[1]["Object"]
                            .to_string()
                            .contains(&format!("\"Ref\":\"{parameter}\"")),
                        "{id}: {object}"
                    );
                }
            }
        }
    }
    assert!(
        checked >= 18,
        "every function's grants were checked ({checked})"
    );
    // The locations reach the functions only when set; the packaged files stay the default.
    let globals = &template.root["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        globals[runway_lambda_support::ROUTER_POLICY_ENV],
        json!({"Fn::If": ["HasRouterPolicyObject", {"Ref": "RouterPolicyObject"}, {"Ref": "RouterPolicyPath"}]})
    );
    assert_eq!(
        globals[runway_lambda_support::GITHUB_CREDENTIAL_PARAMETER_ENV],
        json!({"Fn::If": ["HasGitHubCredentialSecret", {"Ref": "GitHubCredentialSecretArn"}, {"Ref": "GitHubCredentialParameter"}]})
    );
    // The parameters accept what the functions read the same way.
    let parameters = &template.root["Parameters"];
    let secret = Regex::new(
        parameters["GitHubCredentialSecretArn"]["AllowedPattern"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:runway/github-AbCdEf";
    assert!(secret.is_match(arn) && runway_lambda_support::is_secret_arn(arn));
    assert!(!secret.is_match("/runway/github/private-key"));
    let object = Regex::new(
        parameters["RouterPolicyObject"]["AllowedPattern"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for location in [
        "s3://runway-policies/router.wasm?versionId=3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        &format!(
            "s3://runway-policies/teams/a.wasm?versionId=v1&sha256={}",
            "a".repeat(64)
        ),
    ] {
        assert!(object.is_match(location), "{location}");
        assert!(matches!(
            runway_lambda_support::PolicyLocation::parse(location),
            Ok(runway_lambda_support::PolicyLocation::S3(_))
        ));
    }
    for refused in [
        "s3://runway-policies/router.cwasm?versionId=v1",
        "s3://runway-policies/router.wasm",
    ] {
        assert!(!object.is_match(refused), "{refused}");
        assert!(runway_lambda_support::PolicyLocation::parse(refused).is_err());
    }
}

/// The webhook needs its secret, StartExecution, the store and the task callbacks: whatever
/// the stack's parameters, its role never gets the GitHub credential (the App's private key
/// or the token), the configuration parameter or a policy object back.
#[test]
fn the_webhook_role_reads_its_secret_and_never_the_github_credential_or_a_policy() {
    let template = template();
    let webhook = template.resource("WebhookFunction").unwrap();
    let granted: Vec<String> = statements(webhook)
        .into_iter()
        .map(|statement| statement.to_string())
        .collect();
    assert!(!granted.is_empty());
    for statement in &granted {
        for forbidden in [
            "GitHubCredentialParameter",
            "GitHubCredentialSecretArn",
            "RunwayConfigParameter",
            "RouterPolicyObject",
            "ThrottlePolicyObject",
            "s3:",
            "ec2:",
            "ecs:",
            "iam:",
        ] {
            assert!(
                !statement.contains(forbidden),
                "the webhook's role grants {forbidden}: {statement}"
            );
        }
    }
    // What it reads, it reads from the one store its secret is in.
    let reads: Vec<String> = statements(webhook)
        .into_iter()
        .filter(|statement| {
            list(&statement["Action"]).iter().any(|action| {
                ["ssm:GetParameter", "secretsmanager:GetSecretValue"]
                    .contains(&action.as_str().unwrap())
            })
        })
        .map(|statement| statement["Resource"].to_string())
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert!(reads[0].contains("${WebhookSecretParameter}"), "{reads:?}");
    assert_eq!(reads[1], json!({"Ref": "WebhookSecretArn"}).to_string());
    // With no webhook secret given: the setup App's (which holds its key too; give
    // WebhookSecretParameter or WebhookSecretArn to keep the webhook from it).
    assert_eq!(reads[2], json!({"Ref": "GitHubAppSecret"}).to_string());
    assert_eq!(
        granted_actions(webhook),
        handler_actions(Handler::Webhook),
        "exactly what the webhook's code calls"
    );
    assert!(!handler_actions(Handler::Webhook).contains("s3:GetObject"));
}

#[test]
fn policy_instance_reuse_is_a_parameter_every_function_reads_and_defaults_to_pristine() {
    let template = template();
    let parameter = &template.root["Parameters"]["PolicyInstanceReuse"];
    assert_eq!(
        parameter["Default"], "never",
        "pristine instances by default"
    );
    let description = parameter["Description"].as_str().unwrap();
    assert!(description.contains("stateless"), "{description}");
    assert!(description.contains("replayable"), "{description}");
    let globals = &template.root["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        globals[runway_lambda_support::POLICY_REUSE_ENV],
        json!({"Ref": "PolicyInstanceReuse"})
    );
    // Every value the parameter allows is one the functions accept, and means what it says.
    let allowed: Vec<&str> = parameter["AllowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_str().unwrap())
        .collect();
    assert_eq!(allowed, ["never", "verified"]);
    for value in allowed {
        let settings = runway_lambda_support::StackSettings::from_lookup(&|name| match name {
            runway_lambda_support::TABLE_ENV => Some("runway".to_owned()),
            runway_lambda_support::CONFIG_ENV => Some("{}".to_owned()),
            runway_lambda_support::GITHUB_TOKEN_ENV => Some("ghp_x".to_owned()),
            runway_lambda_support::POLICY_REUSE_ENV => Some(value.to_owned()),
            _ => None,
        })
        .unwrap_or_else(|error| panic!("{value}: {error}"));
        let read = settings.policy_reuse.to_string();
        assert!(read.starts_with(value), "{value} is read as {read}");
    }
    // Every function that builds the job flow loads the policies, so all get the stack's.
    for (id, function) in template.functions() {
        let own = &function["Properties"]["Environment"]["Variables"];
        assert!(
            own.get(runway_lambda_support::POLICY_REUSE_ENV).is_none(),
            "{id} overrides the stack's policy reuse"
        );
    }
}

#[test]
fn policy_bounds_are_parameters_whose_pattern_admits_what_the_functions_read() {
    let template = template();
    let globals = &template.root["Globals"]["Function"]["Environment"]["Variables"];
    for (name, env) in [
        (
            "RouterPolicyBounds",
            runway_lambda_support::ROUTER_POLICY_BOUNDS_ENV,
        ),
        (
            "ThrottlePolicyBounds",
            runway_lambda_support::THROTTLE_POLICY_BOUNDS_ENV,
        ),
    ] {
        let parameter = &template.root["Parameters"][name];
        assert_eq!(parameter["Default"], "", "{name}: the kind's defaults");
        assert_eq!(globals[env], json!({"Ref": name}), "{name}");
        let pattern = regex::Regex::new(parameter["AllowedPattern"].as_str().unwrap()).unwrap();
        let read = |value: &str| {
            runway_lambda_support::StackSettings::from_lookup(&|key| match key {
                runway_lambda_support::TABLE_ENV => Some("runway".to_owned()),
                runway_lambda_support::CONFIG_ENV => Some("{}".to_owned()),
                runway_lambda_support::GITHUB_TOKEN_ENV => Some("ghp_x".to_owned()),
                key if key == env => Some(value.to_owned()),
                _ => None,
            })
        };
        for good in [
            "",
            "time=300ms",
            "fuel=1_000_000,memory=96MiB",
            "memory=1GiB,time=2s",
        ] {
            assert!(pattern.is_match(good), "{name} refuses {good:?}");
            assert!(read(good).is_ok(), "{name}: the functions refuse {good:?}");
        }
        for bad in ["time=fast", "cpu=2", "fuel", "time=300ms;memory=1GiB"] {
            assert!(!pattern.is_match(bad), "{name} admits {bad:?}");
        }
    }
}

#[test]
fn each_state_machine_may_invoke_its_own_functions_and_nothing_else() {
    let template = template();
    for (id, machine) in template.state_machines() {
        let wanted: BTreeSet<&str> = substitutions(machine).values().map(function_of).collect();
        let mut invoked = BTreeSet::new();
        for policy in machine["Properties"]["Policies"].as_array().unwrap() {
            if let Some(invoke) = policy.get("LambdaInvokePolicy") {
                invoked.insert(invoke["FunctionName"]["Ref"].as_str().unwrap());
            } else {
                for statement in policy["Statement"].as_array().unwrap() {
                    for action in list(&statement["Action"]) {
                        let action = action.as_str().unwrap();
                        assert!(action.starts_with("logs:"), "{id} may {action}");
                    }
                }
            }
        }
        assert_eq!(invoked, wanted, "{id}");
    }
}

/// The ARN of the runner launch template, as the policies write it.
fn launch_template_arn() -> Value {
    json!({"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:launch-template/${RunnerLaunchTemplate}"})
}

fn resources_of(statement: &Value) -> Vec<String> {
    list(&statement["Resource"])
        .into_iter()
        .map(|resource| match resource {
            Value::String(text) => text.clone(),
            other => other["Fn::Sub"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| other.to_string()),
        })
        .collect()
}

fn stack_name() -> Value {
    json!({"Ref": "AWS::StackName"})
}

/// The kind of an ARN's resource (`instance`, `volume`, `image`, ...).
fn resource_kind(arn: &str) -> String {
    arn.rsplit(':')
        .next()
        .and_then(|tail| tail.split('/').next())
        .unwrap()
        .to_owned()
}

#[test]
fn runners_launch_only_from_the_runner_template_tagged_as_the_stack_s() {
    let template = template();
    let mut launchers = BTreeSet::new();
    let mut allowed_kinds = BTreeSet::new();
    let mut denied_kinds = BTreeSet::new();
    for (id, function) in template.functions() {
        for statement in statements(function) {
            if !list(&statement["Action"]).contains(&&json!("ec2:RunInstances")) {
                continue;
            }
            assert_eq!(
                list(&statement["Action"]).len(),
                1,
                "{id}: RunInstances has statements of its own"
            );
            if statement["Effect"] == "Deny" {
                denied_kinds.extend(resources_of(statement).iter().map(|r| resource_kind(r)));
                continue;
            }
            launchers.insert(id.clone());
            assert_eq!(
                statement["Condition"]["ArnEquals"]["ec2:LaunchTemplate"],
                launch_template_arn(),
                "{id}: every resource of a launch needs the runner launch template"
            );
            let condition = &statement["Condition"];
            for resource in resources_of(statement) {
                let kind = resource_kind(&resource);
                if kind == "instance" || kind == "volume" {
                    assert_eq!(
                        condition["StringEquals"]["aws:RequestTag/runway:managed"], "true",
                        "{id}: {kind}s are launched only with runway's tag"
                    );
                    assert_eq!(
                        condition["StringEquals"]["aws:RequestTag/runway:stack"],
                        stack_name(),
                        "{id}: {kind}s are launched only tagged with the stack"
                    );
                }
                if kind == "instance" {
                    assert_eq!(
                        condition["StringEquals"]["ec2:MetadataHttpTokens"], "required",
                        "{id}: instances only with IMDSv2 required"
                    );
                    assert_eq!(
                        condition["NumericLessThanEquals"]["ec2:MetadataHttpPutResponseHopLimit"],
                        "2",
                        "{id}: instances only with a hop limit of at most 2"
                    );
                    assert_eq!(
                        condition["StringLike"]["ec2:InstanceType"],
                        json!({"Ref": "RunnerInstanceTypes"}),
                        "{id}: instances only of the allowed types"
                    );
                }
                if kind == "image" {
                    let owners = condition["StringEquals"]["ec2:Owner"].to_string();
                    assert!(
                        owners.contains("RunnerImageOwners") && owners.contains("AWS::AccountId"),
                        "{id}: images only of allowed owners, not {owners}"
                    );
                }
                assert_ne!(kind, "key-pair", "{id}: runners never get a key pair");
                allowed_kinds.insert(kind);
            }
        }
    }
    assert_eq!(
        launchers,
        BTreeSet::from(["ProvisionFunction".to_owned()]),
        "only the provision function launches"
    );
    for kind in ["instance", "volume", "image", "subnet", "launch-template"] {
        assert!(allowed_kinds.contains(kind), "{kind}: {allowed_kinds:?}");
    }
    assert_eq!(
        denied_kinds,
        BTreeSet::from(["key-pair".to_owned()]),
        "a launch with a key pair is denied outright"
    );
    for parameter in ["RunnerImageOwners", "RunnerInstanceTypes"] {
        assert!(
            template.root["Parameters"].get(parameter).is_some(),
            "{parameter}"
        );
    }
}

#[test]
fn each_stack_touches_only_its_own_runners_and_jit_configs() {
    let template = template();
    assert_eq!(
        template.root["Globals"]["Function"]["Environment"]["Variables"]
            [runway_lambda_support::STACK_ENV],
        stack_name(),
        "the functions know their stack"
    );
    let mut terminators = BTreeSet::new();
    let mut jit_writers = BTreeSet::new();
    for (id, function) in template.functions() {
        for statement in statements(function) {
            let actions = list(&statement["Action"]);
            if actions.contains(&&json!("ec2:TerminateInstances")) {
                terminators.insert(id.clone());
                assert_eq!(
                    statement["Condition"]["StringEquals"]["ec2:ResourceTag/runway:stack"],
                    stack_name(),
                    "{id}: terminates only instances tagged with its stack"
                );
            }
            if actions.contains(&&json!("ec2:CreateTags")) {
                assert_eq!(
                    statement["Condition"]["StringEquals"]["aws:RequestTag/runway:stack"],
                    stack_name(),
                    "{id}: tags only with its stack"
                );
            }
            let jit_actions = [
                "ssm:PutParameter",
                "ssm:DeleteParameter",
                "ssm:AddTagsToResource",
            ];
            if actions
                .iter()
                .any(|action| jit_actions.contains(&action.as_str().unwrap()))
            {
                jit_writers.insert(id.clone());
                for resource in resources_of(statement) {
                    assert!(
                        resource.ends_with(&format!("parameter{STACK_JIT_PREFIX}/*")),
                        "{id}: writes only the stack's JIT configs, not {resource}"
                    );
                }
            }
        }
    }
    for id in ["ProvisionFunction", "TeardownFunction", "ReapFunction"] {
        assert!(terminators.contains(id), "{id}: {terminators:?}");
        assert!(jit_writers.contains(id), "{id}: {jit_writers:?}");
    }
}

#[test]
fn the_runner_launch_template_locks_the_instance_down() {
    let template = template();
    let launch_template = template.resource("RunnerLaunchTemplate").unwrap();
    assert_eq!(launch_template["Type"], "AWS::EC2::LaunchTemplate");
    let data = &launch_template["Properties"]["LaunchTemplateData"];
    let metadata = &data["MetadataOptions"];
    assert_eq!(metadata["HttpTokens"], "required", "IMDSv2 only");
    assert_eq!(metadata["HttpEndpoint"], "enabled");
    assert_eq!(
        metadata["HttpPutResponseHopLimit"], 1,
        "job containers cannot reach the instance role"
    );
    assert_eq!(
        data["IamInstanceProfile"]["Arn"],
        json!({"Fn::GetAtt": ["RunnerInstanceProfile", "Arn"]})
    );
    assert_eq!(data["InstanceInitiatedShutdownBehavior"], "terminate");
    let devices = data["BlockDeviceMappings"].as_array().unwrap();
    assert!(!devices.is_empty());
    for device in devices {
        assert_eq!(device["Ebs"]["Encrypted"], true, "{device}");
        assert_eq!(device["Ebs"]["DeleteOnTermination"], true, "{device}");
    }
    let mut tagged = BTreeSet::new();
    for specification in data["TagSpecifications"].as_array().unwrap() {
        let tags = specification["Tags"].as_array().unwrap();
        assert!(
            tags.contains(&json!({"Key": "runway:managed", "Value": "true"})),
            "{specification}"
        );
        tagged.insert(specification["ResourceType"].as_str().unwrap());
    }
    assert_eq!(tagged, BTreeSet::from(["instance", "volume"]));
    // The stack's functions launch through it.
    assert_eq!(
        template.root["Globals"]["Function"]["Environment"]["Variables"]
            [runway_lambda_support::RUNNER_LAUNCH_TEMPLATE_ENV],
        json!({"Ref": "RunnerLaunchTemplate"})
    );
}

#[test]
fn kms_is_used_only_on_the_stack_key_and_only_through_ssm() {
    let template = template();
    let key = template.resource("SecretsKey").unwrap();
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let administrators = &key["Properties"]["KeyPolicy"]["Statement"];
    assert!(
        administrators.as_array().unwrap().iter().any(|statement| {
            statement["Principal"]["AWS"]
                == json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"})
        }),
        "the account administers the key"
    );
    let alias = template.resource("SecretsKeyAlias").unwrap();
    assert_eq!(
        alias["Properties"]["TargetKeyId"],
        json!({"Ref": "SecretsKey"})
    );
    assert!(
        alias["Properties"]["AliasName"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .starts_with("alias/")
    );

    let via_ssm = json!({"Fn::Sub": "ssm.${AWS::Region}.${AWS::URLSuffix}"});
    let via_secrets_manager = json!({"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"});
    let mut checked = 0;
    let role_statements: Vec<(String, &Value)> = [
        "RunnerRole",
        "RunnerSessionRole",
        "RunnerTaskRole",
        "LambdaRunnerRole",
    ]
    .into_iter()
    .flat_map(|role| {
        statements_of_role(&template, role)
            .into_iter()
            .map(move |statement| (role.to_owned(), statement))
    })
    .collect();
    let function_statements: Vec<(String, &Value)> = template
        .functions()
        .into_iter()
        .flat_map(|(id, function)| {
            statements(function)
                .into_iter()
                .map(move |statement| (id.clone(), statement))
        })
        .collect();
    for (id, statement) in role_statements.iter().chain(&function_statements) {
        let actions = list(&statement["Action"]);
        if !actions
            .iter()
            .any(|action| action.as_str().unwrap().starts_with("kms:"))
        {
            continue;
        }
        checked += 1;
        assert!(
            actions
                .iter()
                .all(|action| action.as_str().unwrap().starts_with("kms:")),
            "{id}: KMS actions have statements of their own"
        );
        assert_eq!(
            statement["Resource"],
            json!({"Fn::GetAtt": ["SecretsKey", "Arn"]}),
            "{id}: only the stack's key"
        );
        // Secrets Manager may decrypt credentials kept there (only when the stack names such
        // a secret: see secrets_and_policy_objects_are_granted_only_when_named).
        let via = &statement["Condition"]["StringEquals"]["kms:ViaService"];
        let secrets_sids = ["DecryptSecrets", "DecryptAppSecret", "SetupSecretsKey"];
        assert!(
            *via == via_ssm
                || (secrets_sids.contains(&statement["Sid"].as_str().unwrap_or_default())
                    && *via == via_secrets_manager),
            "{id}: only through SSM (or Secrets Manager for its secrets), not {via}"
        );
    }
    assert!(
        checked >= 4,
        "the runner, the runner task, the provision function and the settings readers"
    );
    // The runner decrypts only its own parameter.
    let runner = role_statements
        .iter()
        .filter(|(role, _)| role == "RunnerRole")
        .map(|(_, statement)| statement)
        .find(|statement| list(&statement["Action"]).contains(&&json!("kms:Decrypt")))
        .expect("the runner role may decrypt its JIT config");
    let context =
        runner["Condition"]["StringEquals"]["kms:EncryptionContext:PARAMETER_ARN"]["Fn::Sub"]
            .as_str()
            .unwrap();
    assert!(
        context.ends_with(&format!("parameter{STACK_JIT_PREFIX}/${{!ec2:InstanceID}}")),
        "{context}"
    );
    // The provision function encrypts only JIT configs.
    let provision = template.resource("ProvisionFunction").unwrap();
    let encrypt = statements(provision)
        .into_iter()
        .find(|statement| list(&statement["Action"]).contains(&&json!("kms:Encrypt")))
        .unwrap();
    assert!(
        encrypt["Condition"]["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(&format!("parameter{STACK_JIT_PREFIX}/*"))
    );
    assert_eq!(
        template.root["Globals"]["Function"]["Environment"]["Variables"]
            [runway_lambda_support::JIT_CONFIG_KMS_KEY_ENV],
        json!({"Fn::GetAtt": ["SecretsKey", "Arn"]}),
        "the provision function encrypts JIT configs with the stack's key"
    );
}

#[test]
fn step_functions_calls_are_scoped_to_the_job_machine() {
    let template = template();
    let job = job_machine(&template);
    assert_eq!(
        job["Properties"]["Name"],
        json!({"Fn::Sub": "${AWS::StackName}-job"})
    );
    let machine_arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-job";
    let executions_arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-job:*";
    let mut seen = BTreeSet::new();
    for (id, function) in template.functions() {
        for statement in statements(function) {
            for action in list(&statement["Action"]) {
                let action = action.as_str().unwrap();
                if !action.starts_with("states:") {
                    continue;
                }
                seen.insert(action.to_owned());
                let on_executions = ["states:DescribeExecution", "states:GetExecutionHistory"];
                let wanted = if on_executions.contains(&action) {
                    executions_arn
                } else {
                    machine_arn
                };
                assert_eq!(
                    statement["Resource"],
                    json!({"Fn::Sub": wanted}),
                    "{id}: {action} only on the job machine"
                );
            }
        }
    }
    assert!(seen.contains("states:StartExecution") && seen.contains("states:DescribeExecution"));
}

// ---- ECS runners -----------------------------------------------------------------------------

/// The service principal of ECS tasks (the same in every partition).
const ECS_TASKS_SERVICE: &str = "ecs-tasks.amazonaws.com";

/// The ARN of the cluster ECS pools run in, as the policies write it: the stack's own, or the
/// one the `EcsCluster` parameter names.
fn ecs_cluster_arn() -> Value {
    json!({"Fn::If": [
        "CreatesEcsCluster",
        {"Fn::GetAtt": ["RunnerCluster", "Arn"]},
        {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/${EcsCluster}"},
    ]})
}

/// An ECS ARN in the stack's account and region (`task/*`, ...), as the policies write it.
fn ecs_arn(resource: &str) -> Value {
    json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")})
}

/// The task definition families runway registers for the stack's pools
/// (`<stack>-runner-<pool>`, see `default_task_definition_family`), as an IAM pattern.
fn stack_task_definition_families() -> String {
    let family = runway_providers::default_task_definition_family("STACK", "POOL");
    assert_eq!(
        family, "STACK-runner-POOL",
        "the family the provider registers"
    );
    format!(
        "{}*",
        family
            .trim_end_matches("POOL")
            .replace("STACK", "${AWS::StackName}")
    )
}

/// Where the provider keeps ECS JIT configs, as the policies write it
/// (`/runway/${AWS::StackName}/jit/ecs`).
fn stack_ecs_jit_prefix() -> String {
    runway_providers::ecs_jit_parameter_prefix(&runway_providers::jit_parameter_prefix(
        "${AWS::StackName}",
    ))
}

/// An ECS JIT config parameter's ARN, as a `!Sub` would name it.
fn ecs_jit_parameter_arn() -> String {
    format!(
        "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{}/0123456789abcdef0123456789abcdef",
        stack_ecs_jit_prefix()
    )
}

/// Whether an IAM resource pattern (an ARN, or one ending in `*`) covers `arn`.
fn covers(pattern: &str, arn: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => arn.starts_with(prefix),
        None => pattern == arn,
    }
}

/// A function's statements that grant `action`.
fn statements_granting<'a>(function: &'a Value, action: &str) -> Vec<&'a Value> {
    statements(function)
        .into_iter()
        .filter(|statement| list(&statement["Action"]).contains(&&json!(action)))
        .collect()
}

/// Whether one of `function`'s statements grants `action` on `arn`.
fn grants_on(function: &Value, action: &str, arn: &str) -> bool {
    statements_granting(function, action)
        .into_iter()
        .filter(|statement| statement["Effect"] == "Allow")
        .any(|statement| {
            resources_of(statement)
                .iter()
                .any(|resource| covers(resource, arn))
        })
}

#[test]
fn the_ecs_task_role_is_the_providers_task_role_policy() {
    let template = template();
    let role = template.resource("RunnerTaskRole").expect("RunnerTaskRole");
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(trust.len(), 1, "{trust:?}");
    assert_eq!(trust[0]["Principal"], json!({"Service": ECS_TASKS_SERVICE}));
    assert_eq!(trust[0]["Action"], "sts:AssumeRole");
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        json!({"Ref": "AWS::AccountId"}),
        "only tasks of the stack's account"
    );

    let policies = role["Properties"]["Policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1, "one inline policy");
    let granted = policies[0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let statement = &granted[0];
    let wanted: Value = serde_json::from_str(runway_providers::ECS_TASK_ROLE_POLICY_DOC).unwrap();
    assert_eq!(statement["Sid"], wanted["Sid"]);
    assert_eq!(statement["Effect"], wanted["Effect"]);
    assert_eq!(statement["Action"], wanted["Action"]);
    assert_eq!(
        statement["Resource"],
        json!({"Fn::Sub": wanted["Resource"]})
    );
    // The path is the one the provider writes ECS JIT configs under: the stack's JIT prefix
    // (which the EC2 runner role reads only by instance id) and /ecs.
    assert_eq!(stack_ecs_jit_prefix(), format!("{STACK_JIT_PREFIX}/ecs"));
    let readable = wanted["Resource"].as_str().unwrap();
    assert!(
        readable.ends_with(&format!("parameter{}/*", stack_ecs_jit_prefix())),
        "{readable}"
    );
    assert!(covers(readable, &ecs_jit_parameter_arn()), "{readable}");

    // Besides: decrypting those parameters with the stack's key through SSM; nothing else.
    assert_eq!(granted.len(), 2, "{granted:?}");
    let decrypt = &granted[1];
    assert_eq!(decrypt["Effect"], "Allow");
    assert_eq!(decrypt["Action"], json!(["kms:Decrypt"]));
    assert_eq!(
        decrypt["Resource"],
        json!({"Fn::GetAtt": ["SecretsKey", "Arn"]})
    );
    assert_eq!(
        decrypt["Condition"]["StringEquals"]["kms:ViaService"],
        json!({"Fn::Sub": "ssm.${AWS::Region}.${AWS::URLSuffix}"})
    );
    assert_eq!(
        decrypt["Condition"]["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"],
        statement["Resource"],
        "decrypts only what it may read"
    );

    // ECS pulls images and writes logs with the execution role: AWS's managed policy only.
    let execution = template
        .resource("RunnerTaskExecutionRole")
        .expect("RunnerTaskExecutionRole");
    assert_eq!(execution["Type"], "AWS::IAM::Role");
    assert_eq!(
        execution["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
        json!({"Service": ECS_TASKS_SERVICE})
    );
    assert_eq!(
        execution["Properties"]["ManagedPolicyArns"],
        json!([{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}])
    );
    assert!(
        execution["Properties"].get("Policies").is_none(),
        "the execution role reads no JIT config"
    );

    // The runners' output, kept as long as the functions' logs.
    let logs = template
        .resource("RunnerTaskLogGroup")
        .expect("RunnerTaskLogGroup");
    assert_eq!(logs["Type"], "AWS::Logs::LogGroup");
    assert_eq!(
        logs["Properties"]["LogGroupName"],
        json!({"Fn::Sub": "/runway/${AWS::StackName}/ecs-runners"})
    );
    assert_eq!(
        logs["Properties"]["RetentionInDays"],
        json!({"Ref": "LogRetentionDays"})
    );
}

#[test]
fn ecs_runners_run_only_the_stack_s_task_definitions_in_its_cluster_with_only_its_roles() {
    let template = template();
    let families = ecs_arn(&format!(
        "task-definition/{}",
        stack_task_definition_families()
    ));
    assert_eq!(
        families,
        json!({"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${AWS::StackName}-runner-*"})
    );
    let tasks = ecs_arn("task/*");
    let cluster = ecs_cluster_arn();

    // Only the provision function runs, registers or tags anything on ECS.
    for (id, function) in template.functions() {
        for action in [
            "ecs:RunTask",
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
        ] {
            assert!(
                statements_granting(function, action).is_empty() || id == "ProvisionFunction",
                "{id} may {action}"
            );
        }
    }
    let provision = template.resource("ProvisionFunction").unwrap();

    // Tasks only of the stack's task definition families, only in the stack's cluster.
    let run = statements_granting(provision, "ecs:RunTask");
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(
        list(&run[0]["Action"]).len(),
        1,
        "RunTask has a statement of its own"
    );
    assert_eq!(
        run[0]["Resource"], families,
        "only the stack's task definitions"
    );
    assert_eq!(
        run[0]["Condition"]["ArnEquals"]["ecs:cluster"], cluster,
        "only in the stack's cluster"
    );

    // Tags only as tasks and the stack's task definitions are created, only the stack's.
    let mut tagged = BTreeMap::new();
    for statement in statements_granting(provision, "ecs:TagResource") {
        let condition = &statement["Condition"]["StringEquals"];
        let action = condition["ecs:CreateAction"]
            .as_str()
            .unwrap_or_else(|| panic!("tags only at creation: {statement}"));
        assert_eq!(
            condition["aws:RequestTag/runway:stack"],
            stack_name(),
            "tags only with the stack"
        );
        tagged.insert(action.to_owned(), statement["Resource"].clone());
    }
    assert_eq!(
        tagged,
        BTreeMap::from([
            ("RegisterTaskDefinition".to_owned(), families),
            ("RunTask".to_owned(), tasks),
        ])
    );
    // Reading and registering task definitions takes no resource-level permission.
    for action in ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"] {
        let granted = statements_granting(provision, action);
        assert_eq!(granted.len(), 1, "{action}: {granted:?}");
        assert_eq!(granted[0]["Resource"], "*", "{action}");
    }

    // The two ECS roles, and only to ECS tasks.
    let pass = statements_granting(provision, "iam:PassRole")
        .into_iter()
        .find(|statement| {
            statement["Condition"]["StringEquals"]["iam:PassedToService"] == ECS_TASKS_SERVICE
        })
        .expect("provision passes the runner task roles to ECS tasks");
    assert_eq!(
        pass["Resource"],
        json!([
            {"Fn::GetAtt": ["RunnerTaskRole", "Arn"]},
            {"Fn::GetAtt": ["RunnerTaskExecutionRole", "Arn"]},
        ])
    );
    assert_eq!(
        pass["Condition"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["StringEquals"]
    );

    // It writes, tags, deletes and encrypts the tasks' JIT configs, under the stack's prefix.
    let parameter = ecs_jit_parameter_arn();
    for action in [
        "ssm:PutParameter",
        "ssm:AddTagsToResource",
        "ssm:DeleteParameter",
    ] {
        assert!(
            grants_on(provision, action, &parameter),
            "provision may not {action} {parameter}"
        );
    }
    let encrypt = statements_granting(provision, "kms:Encrypt");
    assert!(
        encrypt.iter().any(|statement| {
            covers(
                &sub_text(
                    &statement["Condition"]["StringLike"]["kms:EncryptionContext:PARAMETER_ARN"],
                ),
                &parameter,
            )
        }),
        "provision may not encrypt {parameter}"
    );
}

#[test]
fn teardown_and_reap_stop_tasks_only_in_the_stack_s_cluster() {
    let template = template();
    let cluster = ecs_cluster_arn();
    let tasks = ecs_arn("task/*");
    let mut stoppers = BTreeSet::new();
    for (id, function) in template.functions() {
        for statement in statements(function) {
            let actions = list(&statement["Action"]);
            let on_tasks = ["ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask"];
            if !actions
                .iter()
                .any(|action| on_tasks.contains(&action.as_str().unwrap()))
            {
                continue;
            }
            assert_eq!(
                actions.len(),
                1,
                "{id}: {actions:?} have statements of their own"
            );
            let action = actions[0].as_str().unwrap();
            assert_eq!(statement["Effect"], "Allow", "{id}: {action}");
            assert_eq!(
                statement["Condition"]["ArnEquals"]["ecs:cluster"], cluster,
                "{id}: {action} only in the stack's cluster"
            );
            if action == "ecs:ListTasks" {
                // No resource-level permission: the cluster condition is the scope.
                assert_eq!(statement["Resource"], "*", "{id}: {action}");
            } else {
                assert_eq!(statement["Resource"], tasks, "{id}: {action}");
            }
            if action == "ecs:StopTask" {
                stoppers.insert(id.clone());
                assert_eq!(
                    statement["Condition"]["StringEquals"]["aws:ResourceTag/runway:stack"],
                    stack_name(),
                    "{id}: stops only tasks tagged with its stack"
                );
            }
        }
    }
    assert_eq!(
        stoppers,
        BTreeSet::from(
            ["ProvisionFunction", "ReapFunction", "TeardownFunction"].map(str::to_owned)
        ),
        "provision (a failed launch), teardown and the reaper stop tasks"
    );

    // Each finds its tasks and removes their JIT configs, also one whose launch died before
    // RunTask (found by its tags).
    let parameter = ecs_jit_parameter_arn();
    for id in ["ProvisionFunction", "TeardownFunction", "ReapFunction"] {
        let function = template.resource(id).unwrap();
        let granted = granted_actions(function);
        for action in [
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "ecs:StopTask",
            "ssm:DescribeParameters",
        ] {
            assert!(granted.contains(action), "{id} may not {action}");
        }
        assert!(
            grants_on(function, "ssm:DeleteParameter", &parameter),
            "{id} may not delete {parameter}"
        );
    }
    // Nothing else touches runner tasks.
    for (id, function) in template.functions() {
        if ["ProvisionFunction", "TeardownFunction", "ReapFunction"].contains(&id.as_str()) {
            continue;
        }
        assert!(
            !granted_actions(function)
                .iter()
                .any(|action| action.starts_with("ecs:")),
            "{id} has ECS permissions"
        );
    }
}

#[test]
fn every_function_gets_the_ecs_cluster_task_roles_and_log_group() {
    let template = template();
    let globals = &template.root["Globals"]["Function"]["Environment"]["Variables"];
    let variables = [
        (
            "RUNWAY_ECS_CLUSTER",
            json!({"Fn::If": ["CreatesEcsCluster", {"Ref": "RunnerCluster"}, {"Ref": "EcsCluster"}]}),
        ),
        (
            "RUNWAY_ECS_TASK_ROLE_ARN",
            json!({"Fn::GetAtt": ["RunnerTaskRole", "Arn"]}),
        ),
        (
            "RUNWAY_ECS_EXECUTION_ROLE_ARN",
            json!({"Fn::GetAtt": ["RunnerTaskExecutionRole", "Arn"]}),
        ),
        ("RUNWAY_ECS_LOG_GROUP", json!({"Ref": "RunnerTaskLogGroup"})),
    ];
    for (variable, wanted) in &variables {
        assert_eq!(&globals[*variable], wanted, "{variable}");
    }
    // No function overrides them: every function that builds the job flow (and the reaper,
    // which stops orphaned tasks) runs ECS pools in the same cluster.
    for (id, function) in template.functions() {
        let own = &function["Properties"]["Environment"]["Variables"];
        for (variable, _) in &variables {
            assert!(own.get(*variable).is_none(), "{id} overrides {variable}");
        }
    }
    // Each names what the stack creates (the cluster only when EcsCluster is empty).
    for id in [
        "RunnerTaskRole",
        "RunnerTaskExecutionRole",
        "RunnerTaskLogGroup",
        "RunnerCluster",
    ] {
        assert!(template.resource(id).is_some(), "{id}");
    }
    // The same cluster the policies scope tasks to.
    assert_eq!(
        ecs_cluster_arn()["Fn::If"][1],
        json!({"Fn::GetAtt": ["RunnerCluster", "Arn"]})
    );
    let outputs = &template.root["Outputs"];
    assert_eq!(
        outputs["EcsClusterName"]["Value"], variables[0].1,
        "the cluster is an output"
    );
}

#[test]
fn with_no_cluster_given_the_stack_creates_one_with_fargate_and_fargate_spot() {
    let template = template();
    let parameter = &template.root["Parameters"]["EcsCluster"];
    assert_eq!(
        parameter["Default"], "",
        "the stack's own cluster by default"
    );
    assert_eq!(
        template.root["Conditions"]["CreatesEcsCluster"],
        json!({"Fn::Equals": [{"Ref": "EcsCluster"}, ""]})
    );
    // A cluster name (the policies build its ARN), never an ARN.
    let name = Regex::new(parameter["AllowedPattern"].as_str().unwrap()).unwrap();
    for accepted in ["", "runners", "ci_runners-2"] {
        assert!(name.is_match(accepted), "{accepted:?}");
    }
    for refused in [
        "arn:aws:ecs:eu-west-1:123456789012:cluster/runners",
        "my runners",
    ] {
        assert!(!name.is_match(refused), "{refused:?}");
    }

    let cluster = template.resource("RunnerCluster").expect("RunnerCluster");
    assert_eq!(cluster["Type"], "AWS::ECS::Cluster");
    assert_eq!(cluster["Condition"], "CreatesEcsCluster");
    let properties = &cluster["Properties"];
    assert_eq!(
        properties["ClusterName"],
        json!({"Fn::Sub": "${AWS::StackName}-runners"})
    );
    assert_eq!(
        properties["ClusterSettings"],
        json!([{"Name": "containerInsights", "Value": "disabled"}])
    );

    let associations = template.resources_of_type("AWS::ECS::ClusterCapacityProviderAssociations");
    assert_eq!(associations.len(), 1, "{associations:?}");
    let (id, association) = associations.into_iter().next().unwrap();
    assert_eq!(association["Condition"], "CreatesEcsCluster", "{id}");
    let properties = &association["Properties"];
    assert_eq!(
        properties["Cluster"],
        json!({"Ref": "RunnerCluster"}),
        "{id}"
    );
    // What Fargate pools ask RunTask for: Fargate Spot, then Fargate.
    let providers: BTreeSet<&str> = properties["CapacityProviders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|provider| provider.as_str().unwrap())
        .collect();
    assert_eq!(
        providers,
        BTreeSet::from(["FARGATE", "FARGATE_SPOT"]),
        "{id}"
    );
    assert_eq!(
        properties["DefaultCapacityProviderStrategy"],
        json!([{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]),
        "{id}"
    );
}

// ---- Alarms ----------------------------------------------------------------------------------

/// The state machines and functions an alarm watches, with the metric names.
fn alarm_targets(alarm: &Value) -> Vec<(String, String)> {
    let properties = &alarm["Properties"];
    let mut metrics = vec![(
        properties["MetricName"].clone(),
        properties["Dimensions"].clone(),
    )];
    for query in properties["Metrics"].as_array().into_iter().flatten() {
        let metric = &query["MetricStat"]["Metric"];
        metrics.push((metric["MetricName"].clone(), metric["Dimensions"].clone()));
    }
    metrics
        .into_iter()
        .filter_map(|(name, dimensions)| {
            let name = name.as_str()?.to_owned();
            let target = dimensions.as_array()?.first()?["Value"]["Ref"]
                .as_str()?
                .to_owned();
            Some((target, name))
        })
        .collect()
}

#[test]
fn failed_executions_and_webhook_errors_raise_alarms_that_notify() {
    let template = template();
    let alarms = template.resources_of_type("AWS::CloudWatch::Alarm");
    let watched: BTreeSet<(String, String)> = alarms
        .values()
        .flat_map(|alarm| alarm_targets(alarm))
        .collect();
    for id in template.state_machines().keys() {
        assert!(
            watched.contains(&(id.clone(), "ExecutionsFailed".to_owned())),
            "no alarm on failed executions of {id}"
        );
    }
    assert!(watched.contains(&("WebhookFunction".to_owned(), "Errors".to_owned())));
    let topic = template.resource("AlarmTopic").unwrap();
    assert_eq!(topic["Condition"], "HasAlarmEmail");
    assert_eq!(
        topic["Properties"]["Subscription"][0]["Endpoint"],
        json!({"Ref": "AlarmEmail"})
    );
    for (id, alarm) in alarms {
        let actions = alarm["Properties"]["AlarmActions"].to_string();
        assert!(
            actions.contains("AlarmTopicArn") && actions.contains("\"AlarmTopic\""),
            "{id} notifies the email topic and the given topic: {actions}"
        );
    }
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

/// `sam build && sam deploy` as typed in the root: the configuration is where SAM looks, the
/// Rust builder's beta feature is on (no question), and deploy has its stack name,
/// capabilities and bucket, and asks for no confirmation.
#[test]
fn the_sam_config_in_the_root_lets_sam_build_and_deploy_run_as_typed() {
    let config: toml::Value = toml::from_str(&read("samconfig.toml")).unwrap();
    let default = &config["default"];
    assert_eq!(
        default["build"]["parameters"]["beta_features"].as_bool(),
        Some(true)
    );
    assert_eq!(
        default["global"]["parameters"]["stack_name"].as_str(),
        Some("runway")
    );
    let deploy = &default["deploy"]["parameters"];
    assert_eq!(deploy["capabilities"].as_str(), Some("CAPABILITY_IAM"));
    assert_eq!(deploy["resolve_s3"].as_bool(), Some(true));
    assert_eq!(deploy["confirm_changeset"].as_bool(), Some(false));
    assert!(
        deploy.get("parameter_overrides").is_none(),
        "the stack deploys with its parameters' defaults"
    );
    assert_eq!(
        default["validate"]["parameters"]["lint"].as_bool(),
        Some(true)
    );
    assert!(
        !repo_root().join("sam/samconfig.toml").exists(),
        "one configuration"
    );
    let env_vars = default["local_invoke"]["parameters"]["env_vars"]
        .as_str()
        .unwrap();
    assert!(repo_root().join(env_vars).exists(), "{env_vars}");
    // Every parameter has a default: nothing to type at deploy.
    let template = template();
    for (name, parameter) in template.root["Parameters"].as_object().unwrap() {
        assert!(
            parameter.get("Default").is_some(),
            "parameter {name} has no default"
        );
    }
}

// ---- Metrics ---------------------------------------------------------------------------------

/// A `!Sub` string's text.
fn sub_text(value: &Value) -> String {
    value
        .get("Fn::Sub")
        .unwrap_or(value)
        .as_str()
        .unwrap_or_else(|| panic!("not a string or !Sub: {value}"))
        .to_owned()
}

#[test]
fn the_waits_and_launch_failures_raise_alarms_and_the_dashboard_shows_every_metric() {
    use runway_jobflow::metrics::{Metric, namespace};
    let template = template();
    let stack_namespace = namespace("${AWS::StackName}");
    for (id, metric, parameter) in [
        (
            "OldestWaitAlarm",
            Metric::OldestWaitSeconds,
            "AlarmOldestWaitSeconds",
        ),
        (
            "LaunchFailuresAlarm",
            Metric::LaunchFailures,
            "AlarmLaunchFailures",
        ),
    ] {
        let alarm = &template.resource(id).unwrap()["Properties"];
        assert_eq!(sub_text(&alarm["Namespace"]), stack_namespace, "{id}");
        assert_eq!(alarm["MetricName"], metric.name(), "{id}");
        // The fleet-wide series (every sample is also recorded without dimensions).
        assert!(alarm.get("Dimensions").is_none(), "{id}");
        assert_eq!(alarm["Threshold"], json!({"Ref": parameter}), "{id}");
        assert!(
            template.root["Parameters"].get(parameter).is_some(),
            "{parameter}"
        );
    }

    let dashboard = template.resource("Dashboard").unwrap();
    let body = sub_text(&dashboard["Properties"]["DashboardBody"])
        .replace("${AWS::Region}", "eu-west-1")
        .replace("${AWS::StackName}", "ci");
    let body: Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let text = body.to_string();
    assert!(text.contains(&namespace("ci")), "{text}");
    for metric in Metric::ALL {
        assert!(
            text.contains(metric.name()),
            "the dashboard does not show {}",
            metric.name()
        );
    }
}

#[test]
fn the_runner_cache_is_private_and_each_role_reads_only_its_part() {
    let template = template();
    let bucket = template.resource("RunnerCacheBucket").unwrap();
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    let properties = &bucket["Properties"];
    assert_eq!(properties["VersioningConfiguration"]["Status"], "Enabled");
    for block in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            properties["PublicAccessBlockConfiguration"][block], true,
            "{block}"
        );
    }
    assert!(
        properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .is_string()
    );
    let rules = &properties["LifecycleConfiguration"]["Rules"][0];
    assert!(rules["NoncurrentVersionExpiration"]["NoncurrentDays"].is_number());
    let policy = template.resource("RunnerCacheBucketPolicy").unwrap();
    let deny = &policy["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");

    // Who may touch it, and what.
    let objects = |prefix: &str| json!({"Fn::Sub": format!("${{RunnerCacheBucket.Arn}}/{prefix}")});
    let runner_reads = statements_of_role(&template, "RunnerRole")
        .into_iter()
        .find(|statement| statement["Sid"] == "RunwayRunnerReadsRunnerPackages")
        .expect("runners read the packages");
    assert_eq!(runner_reads["Action"], json!(["s3:GetObject"]));
    assert_eq!(runner_reads["Resource"], objects("runners/*"));
    for (id, function) in template.functions() {
        for statement in statements(function) {
            if !statement["Resource"]
                .to_string()
                .contains("RunnerCacheBucket")
            {
                continue;
            }
            match id.as_str() {
                "ProvisionFunction" => {
                    assert_eq!(statement["Resource"], objects("runners/latest.json"))
                }
                "RunnerCacheFunction" => assert_eq!(statement["Resource"], objects("runners/*")),
                other => panic!("{other} may not touch the runner cache"),
            }
        }
    }
    let globals = &template.root["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        globals[runway_lambda_support::RUNNER_CACHE_BUCKET_ENV],
        json!({"Ref": "RunnerCacheBucket"})
    );
    let function = template.resource("RunnerCacheFunction").unwrap();
    assert_eq!(function["Properties"]["Handler"], "runner-cache");
    assert_eq!(
        function["Properties"]["Events"]["Daily"]["Properties"]["Schedule"],
        json!({"Ref": "RunnerCacheSchedule"})
    );
}

/// Image parameters provision may read: AWS's public ones and, in the stack's account, those
/// the image recipe (sam/images) writes.
#[test]
fn image_parameters_are_public_or_the_image_recipes_and_provision_reads_no_others() {
    let template = template();
    let provision = template.resource("ProvisionFunction").unwrap();
    let resolve = statements(provision)
        .into_iter()
        .find(|statement| statement["Sid"] == "ResolveImageParameters")
        .expect("provision resolves image parameters");
    assert_eq!(resolve["Action"], json!(["ssm:GetParameter"]));
    assert_eq!(
        resolve["Resource"],
        json!([
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/aws/service/*"},
            {"Fn::Sub": format!(
                "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{}*",
                IMAGE_PARAMETER_PREFIX
            )},
        ])
    );
    // The recipe writes under that prefix.
    let images = Template::load(&repo_root().join("sam/images/template.yaml")).unwrap();
    let distribution = images.resource("Distribution").unwrap();
    let written = &distribution["Properties"]["Distributions"][0]["SsmParameterConfigurations"]["Fn::If"]
        [1][0]["ParameterName"]["Fn::Sub"];
    assert!(
        written
            .as_str()
            .is_some_and(|name| name.starts_with(IMAGE_PARAMETER_PREFIX)),
        "{written}"
    );
}

/// Where the image recipe's pipelines write their AMI ids.
const IMAGE_PARAMETER_PREFIX: &str = "/runway/images/";

/// The setup pages on the stack: their three routes on the webhook's API, the token generated
/// at deploy as the token document and the App secret pending, both under the stack's key;
/// only the setup function writes them (new versions, no other action), and the outputs say
/// where the page is and how to read the token.
#[test]
fn the_setup_function_alone_writes_the_setup_secrets() {
    let template = template();
    let setup = template.resource("SetupFunction").unwrap();
    assert_eq!(handler_of("SetupFunction", setup), Handler::Setup);
    let mut routes: Vec<(String, String)> = setup["Properties"]["Events"]
        .as_object()
        .unwrap()
        .values()
        .map(|event| {
            assert_eq!(event["Type"], "HttpApi");
            assert_eq!(event["Properties"]["ApiId"], json!({"Ref": "WebhookApi"}));
            (
                event["Properties"]["Method"].as_str().unwrap().to_owned(),
                event["Properties"]["Path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        vec![
            ("GET".to_owned(), runway_app_setup::SETUP_PATH.to_owned()),
            ("GET".to_owned(), runway_app_setup::CALLBACK_PATH.to_owned()),
            ("POST".to_owned(), runway_app_setup::START_PATH.to_owned()),
        ]
    );
    assert_eq!(
        setup["Properties"]["Environment"]["Variables"]
            [runway_lambda_support::SETUP_TOKEN_SECRET_ENV],
        json!({"Ref": "SetupTokenSecret"})
    );

    // The documents the store reads.
    let token = &template.resource("SetupTokenSecret").unwrap()["Properties"];
    let generate = &token["GenerateSecretString"];
    assert_eq!(generate["GenerateStringKey"], "token");
    assert_eq!(generate["ExcludePunctuation"], true);
    let mut document: Value =
        serde_json::from_str(generate["SecretStringTemplate"].as_str().unwrap()).unwrap();
    document["token"] = "GeneratedAtDeploy0123456789".into();
    assert_eq!(
        runway_app_setup::TokenState::from_json(&document.to_string()).unwrap(),
        runway_app_setup::TokenState::Pending("GeneratedAtDeploy0123456789".into())
    );
    let app = &template.resource("GitHubAppSecret").unwrap()["Properties"];
    assert_eq!(
        runway_app_setup::StoredApp::from_json(app["SecretString"].as_str().unwrap()).unwrap(),
        None,
        "pending until set up"
    );
    for secret in [token, app] {
        assert_eq!(
            secret["KmsKeyId"],
            json!({"Fn::GetAtt": ["SecretsKey", "Arn"]})
        );
    }

    // Only the setup function writes, and only those two.
    let both = json!([{"Ref": "SetupTokenSecret"}, {"Ref": "GitHubAppSecret"}]);
    for (id, function) in template.functions() {
        for statement in statements(function) {
            let actions = list(&statement["Action"]);
            if actions.contains(&&json!("secretsmanager:PutSecretValue")) {
                assert_eq!(id, "SetupFunction", "{id} writes a secret");
                assert_eq!(statement["Resource"], both);
            }
            if id != "SetupFunction" {
                assert!(
                    !statement.to_string().contains("SetupTokenSecret"),
                    "{id} reaches the setup token"
                );
            }
        }
    }
    assert_eq!(
        template.root["Globals"]["Function"]["Environment"]["Variables"]
            [runway_lambda_support::GITHUB_APP_SECRET_ENV],
        json!({"Ref": "GitHubAppSecret"})
    );

    let outputs = &template.root["Outputs"];
    assert!(
        outputs["SetupUrl"]["Value"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(runway_app_setup::SETUP_PATH)
    );
    assert_eq!(
        outputs["SetupTokenSecretArn"]["Value"],
        json!({"Ref": "SetupTokenSecret"})
    );
    let command = outputs["SetupTokenCommand"]["Value"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(
        command.starts_with("aws secretsmanager get-secret-value --secret-id ${SetupTokenSecret}"),
        "{command}"
    );

    // With no GitHub parameter given, the functions use the setup App.
    let parameters = &template.root["Parameters"];
    for name in [
        "GitHubAppId",
        "GitHubCredentialParameter",
        "GitHubCredentialSecretArn",
        "WebhookSecretParameter",
        "WebhookSecretArn",
    ] {
        assert_eq!(parameters[name]["Default"], "", "{name}");
    }
}

/// The warm-pool keeper runs in the Provision function, on the stack's schedule, with the
/// event the function recognises.
#[test]
fn the_provision_function_keeps_the_warm_pools_on_their_schedule() {
    let template = template();
    let provision = template
        .resource("ProvisionFunction")
        .expect("ProvisionFunction");
    assert_eq!(provision["Properties"]["Handler"], "provision");
    let event = &provision["Properties"]["Events"]["KeepWarm"];
    assert_eq!(event["Type"], "Schedule", "{event}");
    assert_eq!(
        event["Properties"]["Schedule"],
        json!({"Ref": "WarmPoolSchedule"}),
        "{event}"
    );
    let input: Value =
        serde_json::from_str(event["Properties"]["Input"].as_str().expect("an input")).unwrap();
    assert!(runway_lambda_support::is_keep_warm_event(&input), "{input}");
    assert!(!runway_lambda_support::is_keep_warm_event(
        &json!({"execution": "x"})
    ));
}

/// The Lambda runner function exists only when an image is given; it runs that image with a
/// role that may read and delete only the stack's Lambda JIT configs and records, is never
/// retried, and is what the job functions may invoke (nothing else).
#[test]
fn the_lambda_runner_is_optional_scoped_and_invoked_only_by_the_functions_that_launch() {
    let template = template();
    assert_eq!(
        template.root["Conditions"]["HasLambdaRunner"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "LambdaRunnerImageUri"}, ""]}]})
    );
    assert_eq!(
        template.root["Parameters"]["LambdaRunnerImageUri"]["Default"], "",
        "absent by default"
    );
    for id in [
        "LambdaRunnerRole",
        "LambdaRunnerLogGroup",
        "LambdaRunnerFunction",
        "LambdaRunnerInvokeConfig",
    ] {
        assert_eq!(
            template.resource(id).unwrap()["Condition"],
            "HasLambdaRunner",
            "{id}"
        );
    }
    let function = &template.resource("LambdaRunnerFunction").unwrap()["Properties"];
    assert_eq!(function["PackageType"], "Image");
    assert_eq!(
        function["Code"]["ImageUri"],
        json!({"Ref": "LambdaRunnerImageUri"})
    );
    assert_eq!(
        function["FunctionName"],
        json!({"Fn::Sub": "${AWS::StackName}-lambda-runner"}),
        "the name Lambda pools run by default (default_lambda_function)"
    );
    assert_eq!(
        runway_providers::default_lambda_function("${AWS::StackName}"),
        "${AWS::StackName}-lambda-runner"
    );
    assert_eq!(
        function["Role"],
        json!({"Fn::GetAtt": ["LambdaRunnerRole", "Arn"]})
    );
    let retries = &template.resource("LambdaRunnerInvokeConfig").unwrap()["Properties"];
    assert_eq!(retries["MaximumRetryAttempts"], 0);
    // runway counts a record live for the queue's wait plus the timeout.
    assert!(
        retries["MaximumEventAgeInSeconds"].as_u64().unwrap() + 60
            <= runway_providers::DEFAULT_QUEUE_SLACK.as_secs()
    );

    let lambda_prefix = format!(
        "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{STACK_JIT_PREFIX}/lambda/*"
    );
    let role = template.resource("LambdaRunnerRole").unwrap();
    for policy in role["Properties"]["Policies"].as_array().unwrap() {
        for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
            let actions = list(&statement["Action"]);
            if actions.contains(&&json!("kms:Decrypt")) {
                continue;
            }
            assert_eq!(
                actions,
                vec![&json!("ssm:GetParameter"), &json!("ssm:DeleteParameter")]
            );
            assert_eq!(statement["Resource"], json!({"Fn::Sub": lambda_prefix}));
        }
    }

    let mut invokers = BTreeSet::new();
    for (id, function) in template.functions() {
        for statement in statements(function) {
            if list(&statement["Action"]).contains(&&json!("lambda:InvokeFunction")) {
                invokers.insert(id.clone());
                assert_eq!(
                    statement["Resource"],
                    json!({"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-lambda-runner*"}),
                    "{id}"
                );
            }
        }
    }
    assert_eq!(invokers, BTreeSet::from(["ProvisionFunction".to_owned()]));
}

/// Runners ship their output to their pool's group of this stack only, which provision makes
/// with the stack's retention.
#[test]
fn runner_logs_go_to_the_stacks_runner_groups_kept_for_the_stacks_retention() {
    let template = template();
    let groups = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/runway/${AWS::StackName}/runners/*";
    let runner = statements_of_role(&template, "RunnerRole");
    let ships = runner
        .iter()
        .find(|statement| statement["Sid"] == "RunwayRunnerShipsItsLog")
        .expect("the runner role ships its log");
    assert_eq!(
        ships["Action"],
        json!([
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams"
        ])
    );
    assert_eq!(
        ships["Resource"],
        json!([{"Fn::Sub": groups}, {"Fn::Sub": format!("{groups}:log-stream:*")}])
    );
    // Runners may not make groups or change how long they are kept.
    for statement in &runner {
        for action in list(&statement["Action"]) {
            let action = action.as_str().unwrap();
            assert!(
                ![
                    "logs:CreateLogGroup",
                    "logs:PutRetentionPolicy",
                    "logs:DeleteLogGroup"
                ]
                .contains(&action),
                "{action}"
            );
        }
    }
    let provision = template.resource("ProvisionFunction").unwrap();
    let makes = statements(provision)
        .into_iter()
        .find(|statement| statement["Sid"] == "MakeRunnerLogGroups")
        .expect("provision makes the runner log groups");
    assert_eq!(makes["Resource"], json!({"Fn::Sub": groups}));
    let globals = &template.root["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        globals[runway_setup::RUNNER_LOG_RETENTION_ENV],
        json!({"Ref": "LogRetentionDays"})
    );
    // The group name the policies scope is the one runway makes.
    assert_eq!(
        runway_runner_logs::runner_log_group("ci", "linux-x64"),
        "/runway/ci/runners/linux-x64"
    );
}
