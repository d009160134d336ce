//! The AWS actions each function calls, for its IAM policy in `template.yaml`.
//!
//! The deploy tests hold the template to these lists both ways (every action granted is
//! listed here, every action listed is granted), and hold these lists to the code: every AWS
//! operation the store, the EC2 provider, the callbacks and this crate call maps to an action
//! of its group through [`iam_actions`].

use std::collections::BTreeSet;

use runway_jobflow::Step;

/// The store (`runway_store::DynamoStore`), on the table and its indexes.
pub const STORE: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:Scan",
];

/// Reading the settings at cold start: the GitHub credential and the configuration document.
pub const SETTINGS: &[&str] = &["ssm:GetParameter"];

/// Reading credentials kept in Secrets Manager (`crate::read_secret`), when their location is
/// a secret's ARN. The template grants it only then, on those secrets only.
pub const SECRETS: &[&str] = &["secretsmanager:GetSecretValue"];

/// The setup pages' store (`crate::SecretsManagerSetupStore`): the token secret and the App
/// secret read, and written as new versions. Only the setup function is granted it, on
/// those two secrets only; the other functions read the App secret through [`SECRETS`].
pub const SETUP_STORE: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
];

/// Fetching policy modules from S3 by version (`crate::PolicyObjects`), when a policy's
/// location is an S3 object. The template grants it only then, on those objects only.
pub const POLICY_OBJECTS: &[&str] = &["s3:GetObject", "s3:GetObjectVersion"];

/// Launching a runner (`Ec2Provider::launch`), including the clean-up of a failed launch and
/// the image a pool names through an SSM parameter (`resolve:ssm:/aws/service/...`).
pub const LAUNCH: &[&str] = &[
    "ssm:GetParameter",
    "ec2:DescribeImages",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "iam:PassRole",
    "ssm:PutParameter",
    "ssm:AddTagsToResource",
    "ssm:DeleteParameter",
    "ec2:TerminateInstances",
];

/// Reading the runner cache's manifest at launch (`runway_providers::ManifestReader`), for
/// the boot script of images without the runner.
pub const RUNNER_CACHE_MANIFEST: &[&str] = &["s3:GetObject", "s3:GetObjectVersion"];

/// Filling the runner cache (`runway_runner_cache::S3Store`): the manifest read and written,
/// packages uploaded in parts (each part is `s3:PutObject`) or aborted.
pub const RUNNER_CACHE_WRITE: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
];

/// Terminating runners (`Ec2Provider::terminate`).
/// Makes a pool's runner log group before its runners boot (tagged, with the stack's
/// retention).
pub const RUNNER_LOG_GROUPS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:TagResource",
    "logs:PutRetentionPolicy",
];

pub const TERMINATE: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:TerminateInstances",
    "ssm:DeleteParameter",
];

/// Launching a runner on ECS (`EcsProvider::launch`): the task definition runway registers
/// for the pool (looked up, and registered when it changed), an earlier try's task, the task,
/// its JIT config, and the clean-up of a failed launch.
pub const ECS_LAUNCH: &[&str] = &[
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:RunTask",
    "ecs:TagResource",
    "iam:PassRole",
    "ssm:PutParameter",
    "ssm:AddTagsToResource",
    "ssm:DeleteParameter",
];

/// Stopping runner tasks (`EcsProvider::terminate`, `EcsProvider::owned`), and removing their
/// JIT configs, also one whose launch died before `RunTask` (found by its tags).
pub const ECS_TERMINATE: &[&str] = &[
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:StopTask",
    "ssm:DescribeParameters",
    "ssm:DeleteParameter",
];

/// Reaching an EKS pool's cluster (`EksCluster`: its endpoint, CA and status). Pods and
/// secrets are the cluster's to authorise, through the role's EKS access entry.
pub const EKS: &[&str] = &["eks:DescribeCluster"];

/// Launching a runner on Lambda (`LambdaProvider::launch`): the function's timeout, an
/// earlier try's record, the JIT config and record written (and removed when the invocation
/// fails), the asynchronous invocation.
pub const LAMBDA_LAUNCH: &[&str] = &[
    "lambda:GetFunctionConfiguration",
    "lambda:InvokeFunction",
    "ssm:GetParameter",
    "ssm:PutParameter",
    "ssm:AddTagsToResource",
    "ssm:DeleteParameter",
];

/// Finding Lambda runners by their records (`LambdaProvider::owned`, `terminate`) and
/// removing records and JIT configs (the bootstrap stops a runner whose record is gone).
pub const LAMBDA_TERMINATE: &[&str] = &[
    "ssm:GetParameter",
    "ssm:GetParametersByPath",
    "ssm:DeleteParameter",
];

/// Reading a Lambda runner function's timeout at teardown (`Provider::runner_time_limit`):
/// whether it ended the runner during its job, which the teardown's summary then says.
pub const LAMBDA_TIME_LIMIT: &[&str] = &["lambda:GetFunctionConfiguration"];

/// Completing task tokens (`SfnCallbacks`).
pub const CALLBACKS: &[&str] = &["states:SendTaskSuccess", "states:SendTaskFailure"];

/// Starting job executions (`runway_webhook::SfnExecutionStarter`).
pub const START_EXECUTIONS: &[&str] = &["states:StartExecution"];

/// Asking whether a job execution still runs and which waits it has open
/// (`runway_reaper::SfnExecutions`).
pub const DESCRIBE_EXECUTIONS: &[&str] =
    &["states:DescribeExecution", "states:GetExecutionHistory"];

/// Listing the job machine's running executions (`runway_reaper::SfnExecutions`).
pub const LIST_EXECUTIONS: &[&str] = &["states:ListExecutions"];

/// The IAM actions an SDK operation needs (`service` as in the SDK crate: `dynamodb`, `ec2`,
/// `ssm`, `sfn`; `operation` the client method), or `None` for an operation runway does not
/// know it calls.
pub fn iam_actions(service: &str, operation: &str) -> Option<&'static [&'static str]> {
    Some(match (service, operation) {
        ("dynamodb", "get_item") => &["dynamodb:GetItem"],
        ("dynamodb", "put_item") => &["dynamodb:PutItem"],
        ("dynamodb", "update_item") => &["dynamodb:UpdateItem"],
        ("dynamodb", "delete_item") => &["dynamodb:DeleteItem"],
        ("dynamodb", "query") => &["dynamodb:Query"],
        ("dynamodb", "scan") => &["dynamodb:Scan"],
        // A transaction is authorised item by item.
        ("dynamodb", "transact_write_items") => &[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ],
        ("ec2", "describe_images") => &["ec2:DescribeImages"],
        ("ec2", "describe_instances") => &["ec2:DescribeInstances"],
        ("ec2", "terminate_instances") => &["ec2:TerminateInstances"],
        // Tags given at launch need CreateTags; the instance profile needs PassRole.
        ("ec2", "run_instances") => &["ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"],
        ("ssm", "get_parameter") => &["ssm:GetParameter"],
        ("ssm", "describe_parameters") => &["ssm:DescribeParameters"],
        // Tags given at creation need TagResource; the task definition's roles need PassRole.
        ("ecs", "run_task") => &["ecs:RunTask", "ecs:TagResource", "iam:PassRole"],
        ("ecs", "register_task_definition") => &[
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
            "iam:PassRole",
        ],
        ("ecs", "describe_task_definition") => &["ecs:DescribeTaskDefinition"],
        ("ecs", "list_tasks") => &["ecs:ListTasks"],
        ("ecs", "describe_tasks") => &["ecs:DescribeTasks"],
        ("ecs", "stop_task") => &["ecs:StopTask"],
        ("eks", "describe_cluster") => &["eks:DescribeCluster"],
        ("lambda", "invoke") => &["lambda:InvokeFunction"],
        ("lambda", "get_function_configuration") => &["lambda:GetFunctionConfiguration"],
        ("ssm", "get_parameters_by_path") => &["ssm:GetParametersByPath"],
        ("secretsmanager", "get_secret_value") => &["secretsmanager:GetSecretValue"],
        ("secretsmanager", "put_secret_value") => &["secretsmanager:PutSecretValue"],
        // Reading a given version needs GetObjectVersion.
        ("s3", "get_object") => &["s3:GetObject", "s3:GetObjectVersion"],
        // A multipart upload is authorised part by part as PutObject.
        ("s3", "put_object")
        | ("s3", "create_multipart_upload")
        | ("s3", "upload_part")
        | ("s3", "complete_multipart_upload") => &["s3:PutObject"],
        ("s3", "abort_multipart_upload") => &["s3:AbortMultipartUpload"],
        // Tags given with the parameter need AddTagsToResource.
        ("ssm", "put_parameter") => &["ssm:PutParameter", "ssm:AddTagsToResource"],
        ("ssm", "delete_parameter") => &["ssm:DeleteParameter"],
        ("sfn", "send_task_success") => &["states:SendTaskSuccess"],
        ("sfn", "send_task_failure") => &["states:SendTaskFailure"],
        ("sfn", "start_execution") => &["states:StartExecution"],
        ("sfn", "describe_execution") => &["states:DescribeExecution"],
        ("sfn", "get_execution_history") => &["states:GetExecutionHistory"],
        ("sfn", "list_executions") => &["states:ListExecutions"],
        ("logs", "create_log_group") => &["logs:CreateLogGroup", "logs:TagResource"],
        ("logs", "put_retention_policy") => &["logs:PutRetentionPolicy"],
        // `runway logs`, with the operator's credentials.
        ("logs", "describe_log_streams") => &["logs:DescribeLogStreams"],
        ("logs", "get_log_events") => &["logs:GetLogEvents"],
        _ => return None,
    })
}

/// Every action a step's function calls.
pub fn step_actions(step: Step) -> BTreeSet<&'static str> {
    let mut groups: Vec<&[&str]> = vec![STORE, SETTINGS, SECRETS, POLICY_OBJECTS];
    match step {
        Step::Provision => groups.extend([
            LAUNCH,
            RUNNER_CACHE_MANIFEST,
            RUNNER_LOG_GROUPS,
            TERMINATE,
            ECS_LAUNCH,
            ECS_TERMINATE,
            EKS,
            LAMBDA_LAUNCH,
            LAMBDA_TERMINATE,
        ]),
        Step::Teardown => groups.extend([
            TERMINATE,
            ECS_TERMINATE,
            EKS,
            LAMBDA_TERMINATE,
            LAMBDA_TIME_LIMIT,
        ]),
        Step::WaitForSlot | Step::Watch | Step::Release => groups.push(CALLBACKS),
        Step::Route | Step::Admit | Step::CheckRunner => {}
    }
    groups.into_iter().flatten().copied().collect()
}

/// Every action the webhook function calls: it reads its secret (SSM or Secrets Manager),
/// starts executions and relays job events through the store and the callbacks. No policy
/// objects: it loads no policy.
pub fn webhook_actions() -> BTreeSet<&'static str> {
    [STORE, SETTINGS, SECRETS, CALLBACKS, START_EXECUTIONS]
        .into_iter()
        .flatten()
        .copied()
        .collect()
}

/// Every action the reaper's function calls: it terminates orphan runners, releases stale
/// slots through the job flow (store and callbacks, no policies), asks which executions
/// still run and starts executions for queued jobs whose webhook was lost.
pub fn reaper_actions() -> BTreeSet<&'static str> {
    [
        STORE,
        SETTINGS,
        SECRETS,
        TERMINATE,
        ECS_TERMINATE,
        EKS,
        LAMBDA_TERMINATE,
        CALLBACKS,
        DESCRIBE_EXECUTIONS,
        LIST_EXECUTIONS,
        START_EXECUTIONS,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect()
}

/// Every action the runner-cache function calls: the runner cache bucket's objects only (it
/// reads no settings: the bucket comes from its environment, the release from GitHub without
/// credentials).
pub fn runner_cache_actions() -> BTreeSet<&'static str> {
    RUNNER_CACHE_WRITE.iter().copied().collect()
}

/// Every action the setup function calls: the setup store's two secrets, nothing else (the
/// manifest conversion is a call to GitHub).
pub fn setup_actions() -> BTreeSet<&'static str> {
    SETUP_STORE.iter().copied().collect()
}
