//! Each Step Functions operation: decode its input, call the local service, encode its output.

use axum::response::Response;
use runway_asl::{
    ExecutionDescription, ExecutionStatus, ServiceError, StateMachineDescription, StepFunctions,
};
use serde_json::Value;

use crate::paging;
use crate::protocol::{ApiError, Operation, json_response, parse_body, required};
use crate::shapes::*;

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        ApiError::new(error.aws_code(), error.to_string())
    }
}

/// Runs one operation on `body` and answers with its output shape or an AWS error.
pub fn dispatch(
    service: &StepFunctions,
    operation: Operation,
    body: &[u8],
) -> Result<Response, ApiError> {
    match operation {
        Operation::CreateStateMachine => create_state_machine(service, parse_body(body)?),
        Operation::ListStateMachines => list_state_machines(service, parse_body(body)?),
        Operation::DescribeStateMachine => describe_state_machine(service, parse_body(body)?),
        Operation::DeleteStateMachine => delete_state_machine(service, parse_body(body)?),
        Operation::DescribeStateMachineForExecution => {
            describe_state_machine_for_execution(service, parse_body(body)?)
        }
        Operation::StartExecution => start_execution(service, parse_body(body)?),
        Operation::DescribeExecution => describe_execution(service, parse_body(body)?),
        Operation::ListExecutions => list_executions(service, parse_body(body)?),
        Operation::GetExecutionHistory => get_execution_history(service, parse_body(body)?),
        Operation::StopExecution => stop_execution(service, parse_body(body)?),
        Operation::SendTaskSuccess => send_task_success(service, parse_body(body)?),
        Operation::SendTaskFailure => send_task_failure(service, parse_body(body)?),
        Operation::SendTaskHeartbeat => send_task_heartbeat(service, parse_body(body)?),
    }
}

fn machine_type(requested: Option<&str>) -> Result<(), ApiError> {
    match requested {
        None | Some("STANDARD") => Ok(()),
        Some("EXPRESS") => Err(ApiError::validation(
            "runway's local Step Functions runs STANDARD state machines only; leave 'type' out or set it to STANDARD",
        )),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
        ))),
    }
}

/// The machine type as the wire spells it; the engine runs STANDARD machines.
fn wire_type(machine: &StateMachineDescription) -> &'static str {
    match machine.kind.as_str() {
        "EXPRESS" => "EXPRESS",
        _ => "STANDARD",
    }
}

fn create_state_machine(
    service: &StepFunctions,
    input: CreateStateMachineInput,
) -> Result<Response, ApiError> {
    let name = required(input.name, "name")?;
    let definition = required(input.definition, "definition")?;
    machine_type(input.machine_type.as_deref())?;
    let machine = service.create_state_machine(&name, &definition, input.role_arn.as_deref())?;
    Ok(json_response(&CreateStateMachineOutput {
        state_machine_arn: machine.arn,
        creation_date: machine.creation_date,
    }))
}

fn list_state_machines(service: &StepFunctions, input: ListInput) -> Result<Response, ApiError> {
    let machines = service.list_state_machines();
    let (machines, next_token) = paging::page(
        machines,
        "ListStateMachines",
        input.max_results,
        input.next_token.as_deref(),
    )?;
    Ok(json_response(&ListStateMachinesOutput {
        state_machines: machines
            .into_iter()
            .map(|machine| StateMachineListItem {
                machine_type: wire_type(&machine),
                state_machine_arn: machine.arn,
                name: machine.name,
                creation_date: machine.creation_date,
            })
            .collect(),
        next_token,
    }))
}

fn describe_state_machine(
    service: &StepFunctions,
    input: StateMachineArnInput,
) -> Result<Response, ApiError> {
    let arn = required(input.state_machine_arn, "stateMachineArn")?;
    let machine = service.describe_state_machine(&arn)?;
    Ok(json_response(&DescribeStateMachineOutput {
        machine_type: wire_type(&machine),
        status: if machine.status == "DELETING" {
            "DELETING"
        } else {
            "ACTIVE"
        },
        state_machine_arn: machine.arn,
        name: machine.name,
        definition: machine.definition,
        role_arn: machine.role_arn,
        creation_date: machine.creation_date,
        logging_configuration: LoggingConfiguration::OFF,
        tracing_configuration: TracingConfiguration { enabled: false },
    }))
}

fn delete_state_machine(
    service: &StepFunctions,
    input: StateMachineArnInput,
) -> Result<Response, ApiError> {
    let arn = required(input.state_machine_arn, "stateMachineArn")?;
    // Check the ARN the way every other operation does, so a bad one is reported as such.
    service.describe_state_machine(&arn)?;
    Err(ApiError::unknown_operation(
        "DeleteStateMachine is not supported by runway's local Step Functions yet: restart it to start afresh",
    ))
}

fn describe_state_machine_for_execution(
    service: &StepFunctions,
    input: ExecutionArnInput,
) -> Result<Response, ApiError> {
    let arn = required(input.execution_arn, "executionArn")?;
    let execution = service.describe_execution(&arn)?;
    let machine = service.describe_state_machine(&execution.state_machine_arn)?;
    Ok(json_response(&DescribeStateMachineForExecutionOutput {
        state_machine_arn: machine.arn,
        name: machine.name,
        definition: machine.definition,
        role_arn: machine.role_arn,
        update_date: machine.creation_date,
        logging_configuration: LoggingConfiguration::OFF,
        tracing_configuration: TracingConfiguration { enabled: false },
    }))
}

fn start_execution(
    service: &StepFunctions,
    input: StartExecutionInput,
) -> Result<Response, ApiError> {
    let arn = required(input.state_machine_arn, "stateMachineArn")?;
    let execution = service.start_execution(&arn, input.name.as_deref(), input.input.as_deref())?;
    Ok(json_response(&StartExecutionOutput {
        execution_arn: execution.execution_arn,
        start_date: execution.start_date,
    }))
}

fn describe_execution(
    service: &StepFunctions,
    input: ExecutionArnInput,
) -> Result<Response, ApiError> {
    let arn = required(input.execution_arn, "executionArn")?;
    let execution = service.describe_execution(&arn)?;
    Ok(json_response(&describe_output(execution)))
}

fn describe_output(execution: ExecutionDescription) -> DescribeExecutionOutput {
    let output_details = execution
        .output
        .as_ref()
        .map(|_| DataDetails { included: true });
    DescribeExecutionOutput {
        execution_arn: execution.execution_arn,
        state_machine_arn: execution.state_machine_arn,
        name: execution.name,
        status: execution.status.as_str().to_owned(),
        start_date: execution.start_date,
        stop_date: execution.stop_date,
        input: Some(execution.input),
        input_details: DataDetails { included: true },
        output: execution.output,
        output_details,
        error: execution.error,
        cause: execution.cause,
        redrive_count: 0,
    }
}

fn list_executions(
    service: &StepFunctions,
    input: ListExecutionsInput,
) -> Result<Response, ApiError> {
    let arn = required(input.state_machine_arn, "stateMachineArn")?;
    // PENDING_REDRIVE is a valid filter on AWS; nothing is ever pending a redrive here.
    let (filter, none_can_match) = match input.status_filter.as_deref() {
        None => (None, false),
        Some("PENDING_REDRIVE") => (None, true),
        Some(status) => (Some(status.parse::<ExecutionStatus>()?), false),
    };
    let mut executions = service.list_executions(&arn, filter)?;
    if none_can_match {
        executions.clear();
    }
    let scope = format!(
        "ListExecutions:{arn}:{}",
        input.status_filter.as_deref().unwrap_or("")
    );
    let (executions, next_token) = paging::page(
        executions,
        &scope,
        input.max_results,
        input.next_token.as_deref(),
    )?;
    Ok(json_response(&ListExecutionsOutput {
        executions: executions
            .into_iter()
            .map(|execution| ExecutionListItem {
                execution_arn: execution.execution_arn,
                state_machine_arn: execution.state_machine_arn,
                name: execution.name,
                status: execution.status.as_str().to_owned(),
                start_date: execution.start_date,
                stop_date: execution.stop_date,
            })
            .collect(),
        next_token,
    }))
}

/// Leaves out inputs and outputs of history events, as `includeExecutionData: false` asks.
fn without_execution_data(mut event: Value) -> Value {
    if let Some(event) = event.as_object_mut() {
        for (key, details) in event.iter_mut() {
            if !key.ends_with("EventDetails") {
                continue;
            }
            if let Some(details) = details.as_object_mut() {
                for member in [
                    "input",
                    "output",
                    "inputDetails",
                    "outputDetails",
                    "parameters",
                ] {
                    details.remove(member);
                }
            }
        }
    }
    event
}

fn get_execution_history(
    service: &StepFunctions,
    input: GetExecutionHistoryInput,
) -> Result<Response, ApiError> {
    let arn = required(input.execution_arn, "executionArn")?;
    let reverse = input.reverse_order.unwrap_or(false);
    let events = service.get_execution_history(&arn, reverse)?;
    let scope = format!("GetExecutionHistory:{arn}:{reverse}");
    let (events, next_token) = paging::page(
        events,
        &scope,
        input.max_results,
        input.next_token.as_deref(),
    )?;
    let include_data = input.include_execution_data.unwrap_or(true);
    let events = events
        .iter()
        .map(|event| {
            serde_json::to_value(event)
                .map(|event| {
                    if include_data {
                        event
                    } else {
                        without_execution_data(event)
                    }
                })
                .map_err(|error| {
                    ApiError::internal(format!("could not encode a history event: {error}"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(&GetExecutionHistoryOutput {
        events,
        next_token,
    }))
}

fn stop_execution(
    service: &StepFunctions,
    input: StopExecutionInput,
) -> Result<Response, ApiError> {
    let arn = required(input.execution_arn, "executionArn")?;
    let stop_date = service.stop_execution(&arn, input.error.as_deref(), input.cause.as_deref())?;
    Ok(json_response(&StopExecutionOutput { stop_date }))
}

fn send_task_success(
    service: &StepFunctions,
    input: SendTaskSuccessInput,
) -> Result<Response, ApiError> {
    let token = required(input.task_token, "taskToken")?;
    let output = required(input.output, "output")?;
    service.send_task_success(&token, &output)?;
    Ok(json_response(&Empty {}))
}

fn send_task_failure(
    service: &StepFunctions,
    input: SendTaskFailureInput,
) -> Result<Response, ApiError> {
    let token = required(input.task_token, "taskToken")?;
    service.send_task_failure(&token, input.error.as_deref(), input.cause.as_deref())?;
    Ok(json_response(&Empty {}))
}

fn send_task_heartbeat(
    service: &StepFunctions,
    input: SendTaskHeartbeatInput,
) -> Result<Response, ApiError> {
    let token = required(input.task_token, "taskToken")?;
    service.send_task_heartbeat(&token)?;
    Ok(json_response(&Empty {}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use proptest::prelude::*;
    use serde_json::json;

    const MACHINE_ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:probe";
    const DEFINITION: &str = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;

    fn member_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-5i64..1100).prop_map(Value::from),
            Just(json!(MACHINE_ARN)),
            Just(json!(format!("{MACHINE_ARN}x"))),
            Just(json!(
                "arn:aws:states:us-east-1:123456789012:execution:probe:e1"
            )),
            Just(json!(DEFINITION)),
            Just(json!("{\"a\": 1}")),
            Just(json!("RUNNING")),
            ".{0,20}".prop_map(Value::from),
            prop::collection::vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
        ]
    }

    fn request_body() -> impl Strategy<Value = Value> {
        let members = prop::sample::select(vec![
            "name",
            "definition",
            "roleArn",
            "type",
            "stateMachineArn",
            "executionArn",
            "input",
            "output",
            "taskToken",
            "maxResults",
            "nextToken",
            "reverseOrder",
            "includeExecutionData",
            "statusFilter",
            "error",
            "cause",
        ]);
        prop::collection::btree_map(members, member_value(), 0..6).prop_map(|map| {
            Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever a client sends, every operation answers 200 or an AWS client error.
        #[test]
        fn any_request_gets_an_answer_or_a_client_error(
            operation in prop::sample::select(Operation::ALL.to_vec()),
            body in request_body(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _guard = runtime.enter();
            let service = StepFunctions::new(runway_clock::SystemClock::shared(), runway_asl::TaskRegistry::new());
            service.create_state_machine("probe", DEFINITION, None).unwrap();
            service.start_execution(MACHINE_ARN, Some("e1"), None).unwrap();
            let bytes = serde_json::to_vec(&body).unwrap();
            match dispatch(&service, operation, &bytes) {
                Ok(response) => prop_assert_eq!(response.status(), StatusCode::OK),
                Err(error) => {
                    prop_assert_eq!(error.status, StatusCode::BAD_REQUEST, "{}", error);
                    prop_assert!(!error.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn execution_data_is_left_out_only_from_event_details() {
        let event = json!({
            "timestamp": 1.0, "type": "PassStateExited", "id": 3, "previousEventId": 2,
            "stateExitedEventDetails": {"name": "P", "output": "{}", "outputDetails": {"truncated": false}}
        });
        assert_eq!(
            without_execution_data(event),
            json!({
                "timestamp": 1.0, "type": "PassStateExited", "id": 3, "previousEventId": 2,
                "stateExitedEventDetails": {"name": "P"}
            })
        );
    }

    #[test]
    fn only_standard_machines_are_accepted() {
        assert!(machine_type(None).is_ok());
        assert!(machine_type(Some("STANDARD")).is_ok());
        assert_eq!(
            machine_type(Some("EXPRESS")).unwrap_err().code,
            "ValidationException"
        );
        assert_eq!(
            machine_type(Some("weird")).unwrap_err().code,
            "ValidationException"
        );
    }
}
