//! Recorded cases: inputs with the decision a policy is expected to make, kept in JSON next
//! to the policy and run by `runway policy test` and by CI.
//!
//! A cases file is either one case or a document of several:
//!
//! ```json
//! {
//!   "defaults": { "pools": [ { "name": "linux", "labels": ["linux"] } ] },
//!   "cases": [
//!     { "name": "linux job", "input": { "job": { "labels": ["self-hosted", "linux"] } },
//!       "expect": { "run": { "pool": "linux" } } },
//!     { "name": "bad pool", "input": { "job": { "job_name": "x" } }, "expect_error": "unknown-pool" }
//!   ]
//! }
//! ```
//!
//! `defaults` is merged into every input (objects key by key, the case winning). `expect` is
//! matched as a pattern: every field it names must equal the decision's, fields it leaves out
//! (a reason, say) are not compared. `expect_error` names a [`PolicyError::kind`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::engine::Policy;
use crate::error::{PolicyError, World};
use crate::types::{RouterInput, ThrottleInput};
use crate::wasi::PolicyOutput;

/// One recorded case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// The file it came from.
    pub source: PathBuf,
    /// The world the cases file says the policy implements, if it says.
    pub world: Option<World>,
    pub input: Value,
    pub expect: Expectation,
}

#[derive(Debug, Clone)]
pub enum Expectation {
    /// A pattern the decision's JSON must match.
    Decision(Value),
    /// The kind of error the call must fail with.
    Error(String),
}

/// How one case went.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub source: PathBuf,
    /// `None` when the case passed; otherwise why it failed.
    pub failure: Option<String>,
    /// The decision (as JSON) or the error the policy gave.
    pub actual: Value,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error("cannot read cases {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    world: Option<World>,
    #[serde(default)]
    defaults: Value,
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    #[serde(default)]
    name: Option<String>,
    input: Value,
    #[serde(default)]
    expect: Option<Value>,
    #[serde(default)]
    expect_error: Option<String>,
}

/// Reads the cases in a file, or in every `*.json` file of a directory (in name order).
pub fn load(path: impl AsRef<Path>) -> Result<Vec<Case>, CasesError> {
    let path = path.as_ref();
    let io = |source| CasesError::Io {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        let mut cases = Vec::new();
        for file in files {
            cases.extend(load_file(&file)?);
        }
        Ok(cases)
    } else {
        load_file(path)
    }
}

fn load_file(path: &Path) -> Result<Vec<Case>, CasesError> {
    let text = std::fs::read_to_string(path).map_err(|source| CasesError::Io {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| CasesError::Invalid {
        path: path.to_owned(),
        message,
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let file: CaseFile = if value.get("cases").is_some() {
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?
    } else {
        CaseFile {
            world: None,
            defaults: Value::Null,
            cases: vec![serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?],
        }
    };
    file.cases
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let name = raw.name.unwrap_or_else(|| format!("case {}", index + 1));
            let expect = match (raw.expect, raw.expect_error) {
                (Some(decision), None) => Expectation::Decision(decision),
                (None, Some(kind)) => Expectation::Error(kind),
                _ => {
                    return Err(invalid(format!(
                        "case `{name}` needs exactly one of `expect` and `expect_error`"
                    )));
                }
            };
            let mut input = file.defaults.clone();
            merge(&mut input, raw.input);
            Ok(Case {
                name,
                source: path.to_owned(),
                world: file.world,
                input,
                expect,
            })
        })
        .collect()
}

/// Deep-merges `overlay` into `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Whether `actual` matches the `pattern`: objects match when every key of the pattern
/// matches, anything else when equal.
pub fn matches(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::Object(pattern), Value::Object(actual)) => pattern
            .iter()
            .all(|(key, p)| actual.get(key).is_some_and(|a| matches(p, a))),
        (pattern, actual) => pattern == actual,
    }
}

/// Evaluates one input document (`{"job", "pools"}` or `{"job", "pool", "load"}`, as the
/// policy's world wants) and returns the decision as JSON.
pub fn eval(policy: &Policy, input: &Value) -> Result<Result<Value, PolicyError>, String> {
    eval_with_output(policy, input).map(|(decision, _)| decision)
}

/// As [`eval`], with what the policy wrote to stdout and stderr while deciding.
pub fn eval_with_output(
    policy: &Policy,
    input: &Value,
) -> Result<(Result<Value, PolicyError>, PolicyOutput), String> {
    fn as_json<D: serde::Serialize>(
        decision: Result<D, PolicyError>,
    ) -> Result<Value, PolicyError> {
        decision.map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
    }
    match policy.world() {
        World::Router => {
            let input: RouterInput = serde_json::from_value(input.clone())
                .map_err(|e| format!("not a router input: {e}"))?;
            let router = policy.router().map_err(|e| e.to_string())?;
            let (decision, output) = router.route_with_output(&input.job, &input.pools);
            Ok((as_json(decision), output))
        }
        World::Throttle => {
            let input: ThrottleInput = serde_json::from_value(input.clone())
                .map_err(|e| format!("not a throttle input: {e}"))?;
            let throttle = policy.throttle().map_err(|e| e.to_string())?;
            let (decision, output) =
                throttle.decide_with_output(&input.job, &input.pool, &input.load);
            Ok((as_json(decision), output))
        }
    }
}

/// Runs one case against the policy.
pub fn run(policy: &Policy, case: &Case) -> Outcome {
    let outcome = |failure: Option<String>, actual: Value| Outcome {
        name: case.name.clone(),
        source: case.source.clone(),
        failure,
        actual,
    };
    if let Some(world) = case.world
        && world != policy.world()
    {
        let error = PolicyError::WrongWorld {
            expected: world,
            found: policy.world().wit_name().into(),
        };
        return outcome(Some(error.to_string()), error_json(&error));
    }
    let result = match eval(policy, &case.input) {
        Ok(result) => result,
        Err(message) => return outcome(Some(format!("bad input: {message}")), Value::Null),
    };
    match (&case.expect, result) {
        (Expectation::Decision(pattern), Ok(actual)) => {
            let failure = (!matches(pattern, &actual))
                .then(|| format!("expected a decision matching {pattern}, got {actual}"));
            outcome(failure, actual)
        }
        (Expectation::Decision(pattern), Err(error)) => outcome(
            Some(format!(
                "expected a decision matching {pattern}, got error: {error}"
            )),
            error_json(&error),
        ),
        (Expectation::Error(kind), Ok(actual)) => outcome(
            Some(format!("expected a {kind} error, got {actual}")),
            actual,
        ),
        (Expectation::Error(kind), Err(error)) => {
            let failure =
                (error.kind() != kind).then(|| format!("expected a {kind} error, got: {error}"));
            outcome(failure, error_json(&error))
        }
    }
}

/// The JSON form of an error: `{"error": {"kind": …, "message": …}}`.
pub fn error_json(error: &PolicyError) -> Value {
    serde_json::json!({ "error": { "kind": error.kind(), "message": error.to_string() } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_subsets() {
        let actual = json!({"run": {"pool": "gpu", "reason": "because"}});
        assert!(matches(&json!({"run": {"pool": "gpu"}}), &actual));
        assert!(!matches(&json!({"run": {"pool": "cpu"}}), &actual));
        assert!(!matches(&json!({"ignore": {}}), &actual));
        assert!(!matches(
            &json!({"run": {"pool": "gpu", "overrides": {}}}),
            &actual
        ));
        assert!(matches(&json!(["a"]), &json!(["a"])));
        assert!(!matches(&json!(["a"]), &json!(["a", "b"])));
    }

    #[test]
    fn defaults_merge_deeply() {
        let mut base = json!({"job": {"owner": "acme", "labels": ["x"]}, "pools": [1]});
        merge(&mut base, json!({"job": {"labels": ["y"]}}));
        assert_eq!(
            base,
            json!({"job": {"owner": "acme", "labels": ["y"]}, "pools": [1]})
        );
    }
}
