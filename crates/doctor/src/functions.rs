//! Check 4: the stack's functions start. Each is invoked once with an event that does
//! nothing: `{"runway": "doctor"}` for the job steps, the reaper and the runner cache (they
//! answer their handler and runway's version), and for the HTTP functions (webhook, setup
//! pages) an API Gateway request for `GET /doctor`, a path the API never routes to them,
//! answered with an HTTP status. A function whose settings or credentials are wrong exits
//! before it takes the event: Lambda reports `Runtime.ExitError` (or another `Runtime.`
//! error), and its log says what to fix.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use serde_json::{Value, json};

use crate::{DoctorError, Finding};

/// What the doctor sends the functions that take JSON events.
pub const DOCTOR_EVENT: &str = r#"{"runway":"doctor"}"#;

/// The entry points that serve HTTP (API Gateway events).
const HTTP_HANDLERS: [&str; 2] = ["webhook", "setup"];

/// A function's settings, as Lambda reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionConfig {
    pub name: String,
    /// The `Handler` setting: runway's entry point (`webhook`, `provision`, ...); `None` for a
    /// container image function (a Lambda pool's runner).
    pub handler: Option<String>,
    pub environment: BTreeMap<String, String>,
}

/// What an invocation came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// Lambda's `FunctionError` (`Unhandled`) when the function failed.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

/// Lambda's control plane and invocations.
#[async_trait]
pub trait Functions: Send + Sync {
    async fn configuration(&self, name: &str) -> Result<FunctionConfig, DoctorError>;
    /// Invokes `name` and waits for its answer.
    async fn invoke(&self, name: &str, payload: &[u8]) -> Result<Invoked, DoctorError>;
}

/// AWS Lambda.
#[derive(Debug, Clone)]
pub struct AwsFunctions {
    client: aws_sdk_lambda::Client,
}

impl AwsFunctions {
    pub fn new(client: aws_sdk_lambda::Client) -> AwsFunctions {
        AwsFunctions { client }
    }
}

#[async_trait]
impl Functions for AwsFunctions {
    async fn configuration(&self, name: &str) -> Result<FunctionConfig, DoctorError> {
        let output = self
            .client
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(|error| {
                DoctorError::aws(
                    format!("lambda:GetFunctionConfiguration {name}"),
                    DisplayErrorContext(&error),
                )
            })?;
        Ok(FunctionConfig {
            name: name.to_owned(),
            handler: output
                .handler()
                .filter(|handler| !handler.is_empty())
                .map(str::to_owned),
            environment: output
                .environment()
                .and_then(|environment| environment.variables())
                .map(|variables| {
                    variables
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    async fn invoke(&self, name: &str, payload: &[u8]) -> Result<Invoked, DoctorError> {
        let output = self
            .client
            .invoke()
            .function_name(name)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|error| {
                DoctorError::aws(format!("lambda:Invoke {name}"), DisplayErrorContext(&error))
            })?;
        Ok(Invoked {
            function_error: output.function_error().map(str::to_owned),
            payload: output
                .payload()
                .map(|blob| blob.as_ref().to_vec())
                .unwrap_or_default(),
        })
    }
}

/// The event that checks `handler` starts without doing anything.
pub fn doctor_event(handler: &str) -> Vec<u8> {
    if !HTTP_HANDLERS.contains(&handler) {
        return DOCTOR_EVENT.as_bytes().to_vec();
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /doctor",
        "rawPath": "/doctor",
        "rawQueryString": "",
        "headers": {"user-agent": "runway-doctor"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "doctor",
            "domainName": "doctor.invalid",
            "domainPrefix": "doctor",
            "http": {
                "method": "GET",
                "path": "/doctor",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "runway-doctor"
            },
            "requestId": "runway-doctor",
            "routeKey": "GET /doctor",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1_767_225_600_000_u64
        },
        "isBase64Encoded": false
    });
    event.to_string().into_bytes()
}

/// How one function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It started: what it said (`runway 0.1.0`, `HTTP 404`).
    Started(String),
    /// It could not start, or failed on the doctor's event: Lambda's error type and message.
    Failed { error: String, message: String },
}

/// Reads a function's answer to [`doctor_event`].
pub fn read_answer(handler: &str, invoked: &Invoked) -> Answer {
    let payload: Value = serde_json::from_slice(&invoked.payload).unwrap_or(Value::Null);
    if invoked.function_error.is_some() {
        let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or_default();
        return Answer::Failed {
            error: match text("errorType") {
                "" => invoked.function_error.clone().unwrap_or_default(),
                error => error.to_owned(),
            },
            message: text("errorMessage").to_owned(),
        };
    }
    if HTTP_HANDLERS.contains(&handler) {
        return match payload.get("statusCode").and_then(Value::as_u64) {
            Some(status) => Answer::Started(format!("HTTP {status}")),
            None => Answer::Failed {
                error: "Runway.UnexpectedAnswer".into(),
                message: format!("not an HTTP response: {payload}"),
            },
        };
    }
    match (
        payload.get("runway").and_then(Value::as_str),
        payload.get("version").and_then(Value::as_str),
    ) {
        (Some("doctor"), Some(version)) => Answer::Started(format!("runway {version}")),
        // A build from before the doctor's event: it started, and did what the event said.
        _ => Answer::Started("an older runway (no doctor answer)".into()),
    }
}

/// Check 4 over every function of the stack: the configurations read (for the checks that
/// need the stack's settings) and one finding per function that failed, or one for all.
pub async fn check_functions(
    lambda: &dyn Functions,
    names: &[String],
) -> (Vec<Finding>, Vec<FunctionConfig>) {
    const CHECK: &str = "functions";
    let mut findings = Vec::new();
    let mut configs = Vec::new();
    let mut started = Vec::new();
    if names.is_empty() {
        findings.push(Finding::fail(
            CHECK,
            "the stack has no Lambda functions",
            "deploy runway's template.yaml to this stack: sam build && sam deploy",
        ));
        return (findings, configs);
    }
    for name in names {
        let config = match lambda.configuration(name).await {
            Ok(config) => config,
            Err(error) => {
                findings.push(Finding::fail(
                    format!("function {name}"),
                    format!("cannot read its settings: {error}"),
                    "give the doctor's credentials lambda:GetFunctionConfiguration and \
                     lambda:InvokeFunction on the stack's functions",
                ));
                continue;
            }
        };
        // A container image function runs a Lambda pool's runner: invoking it would start one.
        let Some(handler) = config.handler.clone() else {
            configs.push(config);
            continue;
        };
        let answer = match lambda.invoke(name, &doctor_event(&handler)).await {
            Ok(invoked) => read_answer(&handler, &invoked),
            Err(error) => Answer::Failed {
                error: "Invoke".into(),
                message: error.to_string(),
            },
        };
        match answer {
            Answer::Started(said) => started.push(format!("{handler}: {said}")),
            Answer::Failed { error, message } => findings.push(Finding::fail(
                format!("function {handler}"),
                format!("{name} did not start: {error}: {}", one_line(&message)),
                format!(
                    "its log says what to fix (a setting, a credential it cannot read): aws logs \
                     tail /aws/lambda/{name} --since 30m; after fixing, run runway doctor again"
                ),
            )),
        }
        configs.push(config);
    }
    if !started.is_empty() {
        let versions: std::collections::BTreeSet<&str> = started
            .iter()
            .filter_map(|said| said.split_once(": runway ").map(|(_, v)| v))
            .collect();
        let version = match versions.len() {
            0 => String::new(),
            1 => format!(
                " (runway {})",
                versions.iter().next().copied().unwrap_or_default()
            ),
            _ => format!(" (several builds: {versions:?})"),
        };
        findings.insert(
            0,
            Finding::ok(
                CHECK,
                format!("{} function(s) started{version}", started.len()),
            ),
        );
    }
    (findings, configs)
}

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoked(error: Option<&str>, payload: Value) -> Invoked {
        Invoked {
            function_error: error.map(str::to_owned),
            payload: payload.to_string().into_bytes(),
        }
    }

    #[test]
    fn lambdas_answers_are_read_as_started_or_not() {
        let doctor = invoked(
            None,
            json!({"runway": "doctor", "handler": "route", "version": "0.1.0"}),
        );
        assert_eq!(
            read_answer("route", &doctor),
            Answer::Started("runway 0.1.0".into())
        );
        let http = invoked(None, json!({"statusCode": 401, "body": "{}"}));
        assert_eq!(
            read_answer("webhook", &http),
            Answer::Started("HTTP 401".into())
        );
        // What Lambda answers when the runtime exits before taking the event.
        let exit = invoked(
            Some("Unhandled"),
            json!({"errorType": "Runtime.ExitError", "errorMessage": "RequestId: 1 Error: Runtime exited with error: exit status 1"}),
        );
        assert_eq!(
            read_answer("provision", &exit),
            Answer::Failed {
                error: "Runtime.ExitError".into(),
                message: "RequestId: 1 Error: Runtime exited with error: exit status 1".into()
            }
        );
        let bare = invoked(Some("Unhandled"), Value::Null);
        assert!(
            matches!(read_answer("reap", &bare), Answer::Failed { error, .. } if error == "Unhandled")
        );
    }

    #[test]
    fn http_functions_get_an_api_gateway_request_and_the_others_the_doctor_event() {
        let http: Value = serde_json::from_slice(&doctor_event("webhook")).unwrap();
        assert_eq!(http["requestContext"]["http"]["method"], "GET");
        assert_eq!(http["rawPath"], "/doctor");
        assert_eq!(doctor_event("provision"), DOCTOR_EVENT.as_bytes());
    }
}
