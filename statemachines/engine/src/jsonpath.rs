//! JSONPath as the States Language uses it (placeholder interface, being implemented).

use serde_json::{Map, Value};

/// What a path may read: the state input (`$`), the context object (`$$`) and variables (`$name`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub input: &'a Value,
    pub context: &'a Value,
    pub variables: &'a Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    #[error("invalid JSONPath {path:?}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("the JSONPath {path:?} could not be found in the input")]
    NotFound { path: String },
}

/// Evaluates `path` against `root`.
pub fn query(path: &str, root: &Value) -> Result<Value, PathError> {
    let _ = root;
    Err(PathError::Invalid {
        path: path.to_owned(),
        reason: "not implemented yet".into(),
    })
}

/// Evaluates a path that may start with `$$` (context) or `$name` (a variable).
pub fn resolve(path: &str, scope: &Scope<'_>) -> Result<Value, PathError> {
    query(path, scope.input)
}

/// Writes `value` at the reference path `path` inside `root` (ResultPath semantics).
pub fn set(root: Value, path: &str, value: Value) -> Result<Value, PathError> {
    let _ = (root, value);
    Err(PathError::Invalid {
        path: path.to_owned(),
        reason: "not implemented yet".into(),
    })
}
