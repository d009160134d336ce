//! A JSONata evaluator for the States Language's JSONata query language.
//!
//! ```
//! use serde_json::json;
//! let bindings = serde_json::Map::new();
//! let input = json!({"Account": {"Order": [{"Price": 2}, {"Price": 3}]}});
//! let total = runway_jsonata::evaluate("$sum(Account.Order.Price)", Some(&input), &bindings).unwrap();
//! assert_eq!(total, Some(json!(5)));
//! ```
//!
//! The language is JSONata 2 as documented at docs.jsonata.org: paths and their sequence
//! semantics (singleton sequences unwrap, empty ones are undefined), predicates, `[]`,
//! wildcards, grouping, order-by, variables, blocks, lambdas and closures, partial application,
//! `~>`, regular expressions and the standard library, plus the functions AWS Step Functions
//! adds (`$partition`, `$range`, `$hash`, `$random(seed)`, `$uuid`, `$parse`).
//!
//! Not supported: the parent operator `%`, the `@` and `#` binding operators, the transform
//! operator `| ... |`, `$eval` (which Step Functions also leaves out), and picture strings for
//! the date functions. Regular expressions use Rust's `regex` syntax, which lacks look-around
//! and back-references.
//!
//! Time: `$now()` and `$millis()` read the clock once per evaluation, so every call in one
//! expression sees the same instant. [`Expression::evaluate_with_clock`] takes a
//! [`runway_clock::Clock`]; [`evaluate`] and [`Expression::evaluate`] use the system clock.

mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod signature;
mod value;
mod variables;

use std::rc::Rc;
use std::sync::Arc;

use runway_clock::Clock;

pub use error::Error;
pub use functions::builtin_names;

use value::{Flags, Value};

/// A parsed expression, to evaluate many times (and from many threads: it is `Send + Sync`).
#[derive(Debug, Clone)]
pub struct Expression {
    root: Arc<parser::Node>,
}

/// Parses a JSONata expression.
pub fn parse(expression: &str) -> Result<Expression, Error> {
    Ok(Expression {
        root: Arc::new(parser::parse(expression)?),
    })
}

/// Parses and evaluates `expression` against `input` (the context `$`), with `bindings` as
/// variables (named without the `$`). `Ok(None)` is JSONata's undefined.
pub fn evaluate(
    expression: &str,
    input: Option<&serde_json::Value>,
    bindings: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<serde_json::Value>, Error> {
    parse(expression)?.evaluate(input, bindings)
}

impl Expression {
    /// Variables (named without `$`) the expression reads from outside itself: bound neither
    /// in the expression (`:=`, lambda parameters) nor among the built-in functions. A caller
    /// that must reject references to variables it does not bind checks these against its
    /// bindings before evaluating.
    pub fn free_variables(&self) -> Vec<String> {
        variables::free_variables(&self.root)
    }

    /// Evaluates with `$now()` and `$millis()` taken from the system clock.
    pub fn evaluate(
        &self,
        input: Option<&serde_json::Value>,
        bindings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, Error> {
        self.evaluate_at(input, bindings, chrono::Utc::now())
    }

    /// Evaluates with `$now()` and `$millis()` taken from `clock`.
    pub fn evaluate_with_clock(
        &self,
        input: Option<&serde_json::Value>,
        bindings: &serde_json::Map<String, serde_json::Value>,
        clock: &dyn Clock,
    ) -> Result<Option<serde_json::Value>, Error> {
        self.evaluate_at(input, bindings, clock.now())
    }

    /// Evaluates with `$now()` and `$millis()` reporting `now`.
    pub fn evaluate_at(
        &self,
        input: Option<&serde_json::Value>,
        bindings: &serde_json::Map<String, serde_json::Value>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<serde_json::Value>, Error> {
        let evaluator = eval::Evaluator::new(now);
        let root_frame = evaluator.frame(None);
        for (name, value) in bindings {
            root_frame.bind(name, Value::from_json(value));
        }
        let raw_input = input.map(Value::from_json).unwrap_or(Value::Undefined);
        root_frame.bind("$", raw_input.clone());
        // an input array is wrapped so the expression sees it as one document
        let context = match raw_input {
            Value::Array(..) => Value::Array(
                Rc::new(vec![raw_input]),
                Flags {
                    sequence: true,
                    outer_wrapper: true,
                    ..Flags::default()
                },
            ),
            other => other,
        };
        let result = evaluator.eval(&self.root, &context, &root_frame);
        let converted = result.and_then(|v| v.to_json());
        evaluator.release();
        converted
    }
}
