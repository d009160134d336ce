//! JSONata expressions and `{% %}` templates, evaluated through `runway-jsonata`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::definition::is_jsonata_template;

/// Evaluates one JSONata expression. `Ok(None)` is JSONata's "undefined".
/// `$now()` reads `now`, the execution clock's time.
pub fn evaluate(
    expression: &str,
    bindings: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<Value>, String> {
    runway_jsonata::parse(expression)
        .and_then(|parsed| parsed.evaluate_at(None, bindings, now))
        .map_err(|e| e.to_string())
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
                evaluate(expression, bindings, now).map_err(|message| TemplateError {
                    expression: text.clone(),
                    message,
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
    pub message: String,
}
