//! JSONata expressions and `{% %}` templates, evaluated through `runway-jsonata`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::definition::is_jsonata_template;

/// Evaluates one JSONata expression. `Ok(None)` is JSONata's "undefined".
/// `$now()` reads `now`, the execution clock's time.
/// A variable the expression reads that is not bound (JSONata alone would read it as
/// undefined; Step Functions fails the state instead) is [`QueryError::UndefinedVariable`].
pub fn evaluate(
    expression: &str,
    bindings: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<Value>, QueryError> {
    let parsed =
        runway_jsonata::parse(expression).map_err(|e| QueryError::Evaluation(e.to_string()))?;
    if let Some(name) = parsed
        .free_variables()
        .into_iter()
        .find(|name| !bindings.contains_key(name))
    {
        return Err(QueryError::UndefinedVariable(name));
    }
    parsed
        .evaluate_at(None, bindings, now)
        .map_err(|e| QueryError::Evaluation(e.to_string()))
}

/// Why a JSONata expression gave no value.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// JSONata raised an error (syntax, type, function): its code and message.
    Evaluation(String),
    /// The expression reads `$name`, which no state assigned and JSONata does not define.
    UndefinedVariable(String),
}

/// The expression inside a `{% ... %}` template.
pub fn template_expression(text: &str) -> Option<&str> {
    is_jsonata_template(text).then(|| text[2..text.len() - 2].trim())
}

/// Evaluates a JSONata field value: `{% %}` strings are evaluated, objects and arrays are
/// walked, everything else is literal. Undefined members of objects are left out.
pub fn evaluate_template(
    template: &Value,
    bindings: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<Value>, TemplateError> {
    match template {
        Value::String(text) => match template_expression(text) {
            Some(expression) => {
                evaluate(expression, bindings, now).map_err(|error| TemplateError {
                    expression: text.clone(),
                    error,
                })
            }
            None => Ok(Some(template.clone())),
        },
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                if let Some(v) = evaluate_template(value, bindings, now)? {
                    out.insert(key.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Some(v) = evaluate_template(item, bindings, now)? {
                    out.push(v);
                }
            }
            Ok(Some(Value::Array(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

#[derive(Debug, Clone)]
pub struct TemplateError {
    pub expression: String,
    pub error: QueryError,
}
