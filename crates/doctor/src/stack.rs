//! The stack as CloudFormation describes it: status, outputs, parameters and functions
//! (`DescribeStacks`, `DescribeStackResources`), and the first check: is it deployed.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::{DoctorError, Finding};

/// What the doctor knows of a stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackView {
    pub name: String,
    /// `CREATE_COMPLETE`, `UPDATE_ROLLBACK_COMPLETE`, ...
    pub status: String,
    pub status_reason: Option<String>,
    /// Output key → value (`WebhookUrl`, `GitHubAppSecretArn`, ...).
    pub outputs: BTreeMap<String, String>,
    /// Parameter key → value as deployed.
    pub parameters: BTreeMap<String, String>,
    /// The names of the stack's Lambda functions.
    pub functions: Vec<String>,
}

impl StackView {
    /// A non-empty output.
    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }
}

/// Reads stacks.
#[async_trait]
pub trait Stacks: Send + Sync {
    /// The stack `name`; `None` when there is none in this account and region.
    async fn describe(&self, name: &str) -> Result<Option<StackView>, DoctorError>;
}

/// CloudFormation.
#[derive(Debug, Clone)]
pub struct CloudFormationStacks {
    client: aws_sdk_cloudformation::Client,
}

impl CloudFormationStacks {
    pub fn new(client: aws_sdk_cloudformation::Client) -> CloudFormationStacks {
        CloudFormationStacks { client }
    }
}

#[async_trait]
impl Stacks for CloudFormationStacks {
    async fn describe(&self, name: &str) -> Result<Option<StackView>, DoctorError> {
        let described = self.client.describe_stacks().stack_name(name).send().await;
        let output = match described {
            Ok(output) => output,
            // CloudFormation answers an unknown stack with a ValidationError saying so.
            Err(error)
                if error.code() == Some("ValidationError")
                    && error
                        .message()
                        .is_some_and(|m| m.contains("does not exist")) =>
            {
                return Ok(None);
            }
            Err(error) => {
                return Err(DoctorError::aws(
                    format!("cloudformation:DescribeStacks {name}"),
                    DisplayErrorContext(&error),
                ));
            }
        };
        let Some(stack) = output.stacks().first() else {
            return Ok(None);
        };
        let mut view = StackView {
            name: stack.stack_name().unwrap_or(name).to_owned(),
            status: stack
                .stack_status()
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
            status_reason: stack.stack_status_reason().map(str::to_owned),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            functions: Vec::new(),
        };
        let resources = self
            .client
            .describe_stack_resources()
            .stack_name(name)
            .send()
            .await
            .map_err(|error| {
                DoctorError::aws(
                    format!("cloudformation:DescribeStackResources {name}"),
                    DisplayErrorContext(&error),
                )
            })?;
        view.functions = resources
            .stack_resources()
            .iter()
            .filter(|r| r.resource_type() == Some("AWS::Lambda::Function"))
            .filter_map(|r| r.physical_resource_id().map(str::to_owned))
            .collect();
        view.functions.sort();
        Ok(Some(view))
    }
}

/// Check 1: the stack exists and its last operation completed.
pub fn check_stack(name: &str, view: Option<&StackView>) -> Finding {
    const CHECK: &str = "stack";
    let Some(view) = view else {
        return Finding::fail(
            CHECK,
            format!("no stack {name} in this account and region"),
            "check the region and profile (AWS_REGION, AWS_PROFILE, or --region), or deploy it: \
             sam deploy --guided",
        );
    };
    let status = view.status.as_str();
    let reason = view
        .status_reason
        .as_deref()
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default();
    let events = format!(
        "aws cloudformation describe-stack-events --stack-name {name} --query \
         \"StackEvents[?contains(ResourceStatus, 'FAILED')].[LogicalResourceId,ResourceStatusReason]\" \
         --output text"
    );
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => {
            Finding::ok(CHECK, format!("{name}: {status}"))
        }
        "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => Finding::warn(
            CHECK,
            format!("{name}: {status} (the last update failed and was undone{reason})"),
            format!("see why, fix it and deploy again: {events}"),
        ),
        "ROLLBACK_COMPLETE" => Finding::fail(
            CHECK,
            format!("{name}: {status} (its creation failed{reason})"),
            format!(
                "see why ({events}), then delete it (aws cloudformation delete-stack \
                 --stack-name {name}) and deploy again"
            ),
        ),
        "DELETE_COMPLETE" => Finding::fail(
            CHECK,
            format!("{name} was deleted"),
            "deploy it again: sam deploy --guided",
        ),
        _ if status.ends_with("_IN_PROGRESS") => Finding::fail(
            CHECK,
            format!("{name}: {status} (an operation is under way)"),
            format!(
                "wait for it (aws cloudformation describe-stacks --stack-name {name} --query \
                 Stacks[0].StackStatus), then run runway doctor again"
            ),
        ),
        _ => Finding::fail(
            CHECK,
            format!("{name}: {status}{reason}"),
            format!("see why, fix it and deploy again: {events}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: &str, reason: Option<&str>) -> StackView {
        StackView {
            name: "runway".into(),
            status: status.into(),
            status_reason: reason.map(str::to_owned),
            ..StackView::default()
        }
    }

    #[test]
    fn only_a_completed_operation_is_ok() {
        for status in ["CREATE_COMPLETE", "UPDATE_COMPLETE"] {
            assert_eq!(
                check_stack("runway", Some(&view(status, None))).status,
                crate::Status::Ok
            );
        }
        let rolled_back = check_stack("runway", Some(&view("UPDATE_ROLLBACK_COMPLETE", None)));
        assert_eq!(rolled_back.status, crate::Status::Warn);
        let failed = check_stack(
            "runway",
            Some(&view(
                "ROLLBACK_COMPLETE",
                Some("The following resource(s) failed"),
            )),
        );
        assert_eq!(failed.status, crate::Status::Fail);
        assert!(failed.found.contains("resource(s) failed"), "{failed:?}");
        assert!(
            failed
                .fix
                .unwrap()
                .contains("delete-stack --stack-name runway")
        );
        let busy = check_stack("runway", Some(&view("UPDATE_IN_PROGRESS", None)));
        assert_eq!(busy.status, crate::Status::Fail);
        assert!(busy.fix.unwrap().starts_with("wait for it"));
    }

    #[test]
    fn a_missing_stack_says_where_to_look() {
        let missing = check_stack("nope", None);
        assert_eq!(missing.status, crate::Status::Fail);
        assert!(missing.found.contains("no stack nope"));
        assert!(missing.fix.unwrap().contains("AWS_REGION"));
    }
}
