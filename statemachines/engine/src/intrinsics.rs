//! The States.* intrinsic functions (placeholder interface, being implemented).

use serde_json::Value;

use crate::jsonpath::Scope;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{cause}")]
pub struct IntrinsicError {
    /// The States Language error name, e.g. `States.IntrinsicFailure`.
    pub error: String,
    /// AWS's wording of the cause.
    pub cause: String,
}

/// True when `text` is an intrinsic function call such as `States.Format('{}', $.a)`.
pub fn is_intrinsic(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

/// Evaluates an intrinsic function call.
pub fn evaluate(expression: &str, scope: &Scope<'_>) -> Result<Value, IntrinsicError> {
    let _ = scope;
    Err(IntrinsicError {
        error: "States.IntrinsicFailure".into(),
        cause: format!("not implemented yet: {expression}"),
    })
}
