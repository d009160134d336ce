//! The state machine definition: parsing and validation of the Amazon States Language.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{intrinsics, jsonpath};

/// A definition that did not parse or validate, with where the problem is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct DefinitionError {
    /// The state at fault (`None` for the top level).
    pub state: Option<String>,
    /// The field at fault.
    pub field: Option<String>,
    pub message: String,
}

impl DefinitionError {
    fn render(&self) -> String {
        match (&self.state, &self.field) {
            (Some(state), Some(field)) => {
                format!("state '{state}', field '{field}': {}", self.message)
            }
            (Some(state), None) => format!("state '{state}': {}", self.message),
            (None, Some(field)) => format!("field '{field}': {}", self.message),
            (None, None) => self.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    JsonPath,
    Jsonata,
}

/// A parsed, validated state machine definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub machine: Machine,
    /// The definition as written.
    pub source: Value,
}

/// A set of states with a start: the top level, a Parallel branch or a Map processor.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    pub timeout_seconds: Option<u64>,
    pub query_language: QueryLanguage,
    pub comment: Option<String>,
}

/// A path field: absent means `$`, JSON null means "discard" (`None`).
pub type OptionalPath = Option<String>;

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: StateKind,
    pub query_language: QueryLanguage,
    pub next: Option<String>,
    pub end: bool,
    pub input_path: OptionalPath,
    pub output_path: OptionalPath,
    pub result_path: OptionalPath,
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
    pub arguments: Option<Value>,
    pub output: Option<Value>,
    pub assign: Option<Value>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

impl State {
    /// The history event prefix for this state's type (`Pass`, `Task`, ...).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StateKind::Pass { .. } => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail(_) => "Fail",
            StateKind::Parallel { .. } => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

/// A number given literally, by a JSONPath (`...Path`) or by a JSONata expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    Literal(Value),
    Path(String),
    Expression(String),
}

#[derive(Debug, Clone)]
pub enum StateKind {
    Pass {
        result: Option<Value>,
    },
    Task(Task),
    Choice {
        choices: Vec<Choice>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail(Fail),
    Parallel {
        branches: Vec<Machine>,
    },
    Map(Box<MapState>),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub resource: String,
    pub timeout_seconds: Option<Dynamic>,
    pub heartbeat_seconds: Option<Dynamic>,
    pub credentials: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(Dynamic),
    Timestamp(Dynamic),
}

#[derive(Debug, Clone, Default)]
pub struct Fail {
    pub error: Option<Dynamic>,
    pub cause: Option<Dynamic>,
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub processor: Machine,
    pub items_path: OptionalPath,
    pub items: Option<Value>,
    pub item_selector: Option<Value>,
    pub max_concurrency: Option<Dynamic>,
    pub tolerated_failure_count: Option<Dynamic>,
    pub tolerated_failure_percentage: Option<Dynamic>,
    pub item_reader: Option<Value>,
    pub result_writer: Option<Value>,
    /// `ItemBatcher`: iterations get `{"Items": [...], "BatchInput": ...}` batches.
    pub item_batcher: Option<Value>,
    pub distributed: bool,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: OptionalPath,
    pub output: Option<Value>,
    pub assign: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub rule: Rule,
    pub next: String,
    pub assign: Option<Value>,
    pub output: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        variable: String,
        operator: Operator,
        operand: Operand,
    },
    /// A JSONata `Condition`.
    Condition(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Path(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Compare(Kind, Relation),
    StringMatches,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const COMPARISONS: &[(&str, Kind)] = &[
    ("String", Kind::String),
    ("Numeric", Kind::Numeric),
    ("Boolean", Kind::Boolean),
    ("Timestamp", Kind::Timestamp),
];
const RELATIONS: &[(&str, Relation)] = &[
    ("Equals", Relation::Equals),
    ("LessThanEquals", Relation::LessThanEquals),
    ("GreaterThanEquals", Relation::GreaterThanEquals),
    ("LessThan", Relation::LessThan),
    ("GreaterThan", Relation::GreaterThan),
];
const TYPE_TESTS: &[(&str, Operator)] = &[
    ("IsNull", Operator::IsNull),
    ("IsPresent", Operator::IsPresent),
    ("IsNumeric", Operator::IsNumeric),
    ("IsString", Operator::IsString),
    ("IsBoolean", Operator::IsBoolean),
    ("IsTimestamp", Operator::IsTimestamp),
];

impl Definition {
    /// Parses and validates a definition written in the Amazon States Language.
    pub fn parse(text: &str) -> Result<Definition, DefinitionError> {
        let source: Value = serde_json::from_str(text).map_err(|e| DefinitionError {
            state: None,
            field: None,
            message: format!("the definition is not valid JSON: {e}"),
        })?;
        Self::from_value(source)
    }

    /// Validates a definition already parsed as JSON.
    pub fn from_value(source: Value) -> Result<Definition, DefinitionError> {
        let object = source
            .as_object()
            .ok_or_else(|| top("", "the definition must be a JSON object"))?;
        let language = match object.get("QueryLanguage") {
            None => QueryLanguage::JsonPath,
            Some(v) => query_language(None, v)?,
        };
        let machine = parse_machine(object, language, &[])?;
        Ok(Definition { machine, source })
    }

    /// Parses a definition template after replacing `${Name}` placeholders (SAM's
    /// `DefinitionSubstitutions`) with `values`. A placeholder without a value is an error.
    pub fn parse_with_substitutions(
        text: &str,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<Definition, DefinitionError> {
        Self::parse(&substitute(text, values)?)
    }

    pub fn query_language(&self) -> QueryLanguage {
        self.machine.query_language
    }
}

/// Replaces `${Name}` placeholders in a definition template.
pub fn substitute(
    text: &str,
    values: &std::collections::BTreeMap<String, String>,
) -> Result<String, DefinitionError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        match values.get(name) {
            Some(value) => {
                // Values land inside JSON strings: escape them as JSON does.
                let encoded = serde_json::to_string(value).unwrap_or_default();
                out.push_str(&encoded[1..encoded.len() - 1]);
            }
            None => {
                return Err(top(
                    "",
                    format!(
                        "the placeholder ${{{name}}} has no substitution; pass a value for {name}"
                    ),
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn top(field: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        state: None,
        field: (!field.is_empty()).then(|| field.to_owned()),
        message: message.into(),
    }
}

fn at(state: &str, field: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        state: Some(state.to_owned()),
        field: (!field.is_empty()).then(|| field.to_owned()),
        message: message.into(),
    }
}

fn query_language(state: Option<&str>, value: &Value) -> Result<QueryLanguage, DefinitionError> {
    match value.as_str() {
        Some("JSONPath") => Ok(QueryLanguage::JsonPath),
        Some("JSONata") => Ok(QueryLanguage::Jsonata),
        _ => Err(DefinitionError {
            state: state.map(str::to_owned),
            field: Some("QueryLanguage".into()),
            message: format!("must be \"JSONPath\" or \"JSONata\", not {value}"),
        }),
    }
}

fn parse_machine(
    object: &Map<String, Value>,
    language: QueryLanguage,
    outer_variables: &[String],
) -> Result<Machine, DefinitionError> {
    let start_at = object
        .get("StartAt")
        .ok_or_else(|| top("StartAt", "is required"))?
        .as_str()
        .ok_or_else(|| top("StartAt", "must be a string"))?
        .to_owned();
    let states_value = object
        .get("States")
        .ok_or_else(|| top("States", "is required"))?
        .as_object()
        .ok_or_else(|| top("States", "must be an object of states"))?;
    if states_value.is_empty() {
        return Err(top("States", "must hold at least one state"));
    }
    let timeout_seconds = match object.get("TimeoutSeconds") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| top("TimeoutSeconds", "must be a non-negative integer"))?,
        ),
    };
    let comment = object
        .get("Comment")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Variables this machine assigns anywhere: nested branches may read them, not assign them.
    let mut visible = outer_variables.to_vec();
    for value in states_value.values() {
        collect_assigned(value, &mut visible);
    }
    let mut states = BTreeMap::new();
    for (name, value) in states_value {
        if name.is_empty() || name.chars().count() > 80 {
            return Err(at(name, "", "a state name must be 1 to 80 characters long"));
        }
        let state = parse_state(name, value, language, outer_variables, &visible)?;
        states.insert(name.clone(), state);
    }
    if !states.contains_key(&start_at) {
        return Err(top(
            "StartAt",
            format!("refers to '{start_at}', which is not a state"),
        ));
    }
    // Every transition must land on a state of this machine.
    for state in states.values() {
        for (field, target) in transitions(state) {
            if !states.contains_key(target) {
                return Err(at(
                    &state.name,
                    &field,
                    format!("refers to '{target}', which is not a state of this machine"),
                ));
            }
        }
    }
    // Every state must be reachable from StartAt.
    let mut reached = HashSet::new();
    let mut pending = vec![start_at.clone()];
    while let Some(name) = pending.pop() {
        if !reached.insert(name.clone()) {
            continue;
        }
        if let Some(state) = states.get(&name) {
            for (_, target) in transitions(state) {
                pending.push(target.to_owned());
            }
        }
    }
    if let Some(unreached) = states.keys().find(|name| !reached.contains(*name)) {
        return Err(at(
            unreached,
            "",
            "is unreachable: no transition leads to it from StartAt",
        ));
    }
    Ok(Machine {
        start_at,
        states,
        timeout_seconds,
        query_language: language,
        comment,
    })
}

fn transitions(state: &State) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(next) = &state.next {
        out.push(("Next".to_owned(), next.as_str()));
    }
    if let StateKind::Choice { choices, default } = &state.kind {
        for (i, choice) in choices.iter().enumerate() {
            out.push((format!("Choices[{i}].Next"), choice.next.as_str()));
        }
        if let Some(default) = default {
            out.push(("Default".to_owned(), default.as_str()));
        }
    }
    for (i, catcher) in state.catch.iter().enumerate() {
        out.push((format!("Catch[{i}].Next"), catcher.next.as_str()));
    }
    out
}

/// Reads the fields of one state, reporting problems with the state's name.
struct Fields<'a> {
    state: &'a str,
    map: &'a Map<String, Value>,
    used: HashSet<&'static str>,
}

impl<'a> Fields<'a> {
    fn get(&mut self, field: &'static str) -> Option<&'a Value> {
        self.used.insert(field);
        self.map.get(field)
    }

    fn string(&mut self, field: &'static str) -> Result<Option<String>, DefinitionError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(at(self.state, field, "must be a string")),
        }
    }

    /// A path where JSON null means "none" and absence means `$`.
    fn optional_path(&mut self, field: &'static str) -> Result<OptionalPath, DefinitionError> {
        match self.get(field) {
            None => Ok(Some("$".into())),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                check_path(self.state, field, s)?;
                Ok(Some(s.clone()))
            }
            Some(_) => Err(at(self.state, field, "must be a JSONPath string or null")),
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DefinitionError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(at(self.state, field, "must be true or false")),
        }
    }

    fn template(&mut self, field: &'static str) -> Result<Option<Value>, DefinitionError> {
        Ok(self.get(field).cloned())
    }

    fn object(&mut self, field: &'static str) -> Result<Option<Value>, DefinitionError> {
        match self.get(field) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(_) => Err(at(self.state, field, "must be an object")),
        }
    }

    /// A number that may also be given through `<field>Path` or as a JSONata expression.
    fn dynamic(
        &mut self,
        field: &'static str,
        path_field: &'static str,
        language: QueryLanguage,
    ) -> Result<Option<Dynamic>, DefinitionError> {
        let literal = self.get(field);
        let path = self.get(path_field);
        match (literal, path) {
            (Some(_), Some(_)) => Err(at(
                self.state,
                field,
                format!("cannot be given together with {path_field}"),
            )),
            (Some(Value::String(s)), None)
                if language == QueryLanguage::Jsonata && is_jsonata_template(s) =>
            {
                Ok(Some(Dynamic::Expression(s.clone())))
            }
            (Some(v), None) => Ok(Some(Dynamic::Literal(v.clone()))),
            (None, Some(Value::String(p))) => {
                if language == QueryLanguage::Jsonata {
                    return Err(at(
                        self.state,
                        path_field,
                        "is not allowed in a JSONata state; use an expression in the field itself",
                    ));
                }
                if matches!(path_field, "ErrorPath" | "CausePath") && intrinsics::is_intrinsic(p) {
                    if let Err(reason) = intrinsics::validate_intrinsic(p) {
                        return Err(at(self.state, path_field, reason));
                    }
                    return Ok(Some(Dynamic::Path(p.clone())));
                }
                check_path(self.state, path_field, p)?;
                Ok(Some(Dynamic::Path(p.clone())))
            }
            (None, Some(_)) => Err(at(self.state, path_field, "must be a JSONPath string")),
            (None, None) => Ok(None),
        }
    }
}

/// Checks every `"key.$"` of a JSONPath payload template: a path or an intrinsic call.
fn check_payload_template(
    state: &str,
    field: &str,
    template: &Value,
) -> Result<(), DefinitionError> {
    match template {
        Value::Object(map) => {
            for (key, value) in map {
                let inner = format!("{field}.{key}");
                if key.ends_with(".$") {
                    let Value::String(expression) = value else {
                        return Err(at(
                            state,
                            &inner,
                            "must be a JSONPath or an intrinsic function call (a string)",
                        ));
                    };
                    if intrinsics::is_intrinsic(expression) {
                        intrinsics::validate_intrinsic(expression)
                            .map_err(|reason| at(state, &inner, reason))?;
                    } else {
                        jsonpath::validate_path(expression)
                            .map_err(|e| at(state, &inner, e.to_string()))?;
                    }
                } else {
                    check_payload_template(state, &inner, value)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_payload_template(state, &format!("{field}[{i}]"), item)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// True for a `{% expression %}` template string.
pub fn is_jsonata_template(text: &str) -> bool {
    text.starts_with("{%") && text.ends_with("%}") && text.len() >= 4
}

fn check_path(state: &str, field: &str, path: &str) -> Result<(), DefinitionError> {
    if !path.starts_with('$') {
        return Err(at(
            state,
            field,
            format!("'{path}' is not a valid JSONPath: it must start with '$'"),
        ));
    }
    if let Err(reason) = validate_path_syntax(path) {
        return Err(at(
            state,
            field,
            format!("'{path}' is not a valid JSONPath: {reason}"),
        ));
    }
    if let Err(error) = jsonpath::validate_path(path) {
        return Err(at(state, field, error.to_string()));
    }
    Ok(())
}

/// A light syntax check of a JSONPath: balanced brackets and quotes, no empty segments.
pub fn validate_path_syntax(path: &str) -> Result<(), String> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut previous = '\0';
    for c in path.chars() {
        match quote {
            Some(q) => {
                if c == q && previous != '\\' {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => depth += 1,
                ']' | ')' => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(format!("unbalanced '{c}'"));
                    }
                }
                _ => {}
            },
        }
        previous = c;
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    Ok(())
}

/// Adds the variable names a state's `Assign` fields (state, catchers, choice rules) declare.
fn collect_assigned(state: &Value, out: &mut Vec<String>) {
    let mut add = |assign: Option<&Value>| {
        if let Some(Value::Object(map)) = assign {
            out.extend(
                map.keys()
                    .map(|k| k.strip_suffix(".$").unwrap_or(k).to_owned()),
            );
        }
    };
    add(state.get("Assign"));
    for list in ["Catch", "Choices"] {
        if let Some(Value::Array(items)) = state.get(list) {
            for item in items {
                add(item.get("Assign"));
            }
        }
    }
}

fn parse_state(
    name: &str,
    value: &Value,
    machine_language: QueryLanguage,
    outer_variables: &[String],
    visible_variables: &[String],
) -> Result<State, DefinitionError> {
    let map = value
        .as_object()
        .ok_or_else(|| at(name, "", "a state must be a JSON object"))?;
    let mut f = Fields {
        state: name,
        map,
        used: HashSet::new(),
    };
    let kind_name = f
        .string("Type")?
        .ok_or_else(|| at(name, "Type", "is required"))?;
    let language = match f.get("QueryLanguage") {
        None => machine_language,
        Some(v) => {
            let l = query_language(Some(name), v)?;
            if machine_language == QueryLanguage::Jsonata && l == QueryLanguage::JsonPath {
                return Err(at(
                    name,
                    "QueryLanguage",
                    "cannot be JSONPath inside a JSONata state machine",
                ));
            }
            l
        }
    };
    f.get("Comment");
    let next = f.string("Next")?;
    let end = f.bool("End")?;
    let terminal = matches!(kind_name.as_str(), "Succeed" | "Fail" | "Choice");
    if !terminal {
        match (&next, end) {
            (Some(_), true) => return Err(at(name, "End", "cannot be true when Next is given")),
            (None, false) => return Err(at(name, "Next", "is required unless End is true")),
            _ => {}
        }
    } else if next.is_some() {
        return Err(at(
            name,
            "Next",
            format!("is not allowed in a {kind_name} state"),
        ));
    } else if end {
        return Err(at(
            name,
            "End",
            format!("is not allowed in a {kind_name} state"),
        ));
    }

    let jsonpath = language == QueryLanguage::JsonPath;
    let (input_path, output_path, result_path) = if jsonpath {
        (
            f.optional_path("InputPath")?,
            f.optional_path("OutputPath")?,
            f.optional_path("ResultPath")?,
        )
    } else {
        for field in [
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
        ] {
            if map.contains_key(field) {
                return Err(at(
                    name,
                    field,
                    "is not allowed in a JSONata state; use Arguments and Output",
                ));
            }
        }
        (Some("$".into()), Some("$".into()), Some("$".into()))
    };
    let parameters = f.object("Parameters")?;
    let result_selector = f.object("ResultSelector")?;
    if jsonpath {
        for field in ["Parameters", "ResultSelector", "ItemSelector", "Assign"] {
            if let Some(template) = map.get(field) {
                check_payload_template(name, field, template)?;
            }
        }
    }
    let arguments = f.template("Arguments")?;
    let output = f.template("Output")?;
    if jsonpath {
        for field in ["Arguments", "Output"] {
            if map.contains_key(field) {
                return Err(at(
                    name,
                    field,
                    "is only allowed in a JSONata state; use Parameters, ResultPath and OutputPath",
                ));
            }
        }
    }
    let assign = f.object("Assign")?;
    if let Some(Value::Object(assign)) = &assign {
        for key in assign.keys() {
            let var = key.strip_suffix(".$").unwrap_or(key);
            if outer_variables.iter().any(|v| v == var) {
                return Err(at(
                    name,
                    "Assign",
                    format!(
                        "cannot assign '{var}': it belongs to an outer scope, which a Map or Parallel branch may read but not write"
                    ),
                ));
            }
        }
    }

    let kind = match kind_name.as_str() {
        "Pass" => StateKind::Pass {
            result: f.template("Result")?,
        },
        "Succeed" => StateKind::Succeed,
        "Fail" => StateKind::Fail(Fail {
            error: f.dynamic("Error", "ErrorPath", language)?,
            cause: f.dynamic("Cause", "CausePath", language)?,
        }),
        "Wait" => {
            let seconds = f.dynamic("Seconds", "SecondsPath", language)?;
            let timestamp = f.dynamic("Timestamp", "TimestampPath", language)?;
            match (seconds, timestamp) {
                (Some(s), None) => {
                    if let Dynamic::Literal(v) = &s
                        && !v.is_u64()
                    {
                        return Err(at(name, "Seconds", "must be a non-negative integer"));
                    }
                    StateKind::Wait(WaitFor::Seconds(s))
                }
                (None, Some(t)) => {
                    if let Dynamic::Literal(v) = &t
                        && v.as_str().and_then(parse_timestamp).is_none()
                    {
                        return Err(at(
                            name,
                            "Timestamp",
                            "must be an ISO-8601 timestamp such as 2026-01-01T00:00:00Z",
                        ));
                    }
                    StateKind::Wait(WaitFor::Timestamp(t))
                }
                _ => {
                    return Err(at(
                        name,
                        "Seconds",
                        "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp or TimestampPath",
                    ));
                }
            }
        }
        "Task" => {
            let resource = f
                .string("Resource")?
                .ok_or_else(|| at(name, "Resource", "is required"))?;
            let timeout_seconds = f.dynamic("TimeoutSeconds", "TimeoutSecondsPath", language)?;
            let heartbeat_seconds =
                f.dynamic("HeartbeatSeconds", "HeartbeatSecondsPath", language)?;
            for (field, value) in [
                ("TimeoutSeconds", &timeout_seconds),
                ("HeartbeatSeconds", &heartbeat_seconds),
            ] {
                if let Some(Dynamic::Literal(v)) = value
                    && v.as_u64().is_none_or(|n| n == 0)
                {
                    return Err(at(name, field, "must be a positive integer"));
                }
            }
            if let (Some(Dynamic::Literal(t)), Some(Dynamic::Literal(h))) =
                (&timeout_seconds, &heartbeat_seconds)
                && h.as_u64() >= t.as_u64()
            {
                return Err(at(
                    name,
                    "HeartbeatSeconds",
                    "must be smaller than TimeoutSeconds",
                ));
            }
            StateKind::Task(Task {
                resource,
                timeout_seconds,
                heartbeat_seconds,
                credentials: f.template("Credentials")?,
            })
        }
        "Choice" => parse_choice(name, &mut f, language)?,
        "Parallel" => {
            let branches_value = f
                .get("Branches")
                .ok_or_else(|| at(name, "Branches", "is required"))?
                .as_array()
                .ok_or_else(|| at(name, "Branches", "must be an array of state machines"))?;
            let mut branches = Vec::new();
            let inner_outer = visible_variables.to_vec();
            for (i, branch) in branches_value.iter().enumerate() {
                let object = branch
                    .as_object()
                    .ok_or_else(|| at(name, "Branches", format!("branch {i} must be an object")))?;
                branches.push(nested(
                    name,
                    &format!("Branches[{i}]"),
                    object,
                    language,
                    &inner_outer,
                )?);
            }
            StateKind::Parallel { branches }
        }
        "Map" => parse_map(name, &mut f, language, visible_variables)?,
        other => {
            return Err(at(
                name,
                "Type",
                format!(
                    "unknown state type '{other}'; expected Pass, Task, Choice, Wait, Succeed, Fail, Parallel or Map"
                ),
            ));
        }
    };

    let retry = parse_retry(name, f.get("Retry"))?;
    let catch = parse_catch(name, f.get("Catch"), language)?;
    let retry_given = map.contains_key("Retry");
    if (retry_given || map.contains_key("Catch"))
        && !matches!(
            kind,
            StateKind::Task(_) | StateKind::Parallel { .. } | StateKind::Map(_)
        )
    {
        let field = if retry_given { "Retry" } else { "Catch" };
        return Err(at(
            name,
            field,
            format!("is not allowed in a {kind_name} state"),
        ));
    }
    Ok(State {
        name: name.to_owned(),
        kind,
        query_language: language,
        next,
        end,
        input_path,
        output_path,
        result_path,
        parameters,
        result_selector,
        arguments,
        output,
        assign,
        retry,
        catch,
    })
}

fn nested(
    state: &str,
    field: &str,
    object: &Map<String, Value>,
    language: QueryLanguage,
    outer_variables: &[String],
) -> Result<Machine, DefinitionError> {
    let language = match object.get("QueryLanguage") {
        None => language,
        Some(v) => query_language(Some(state), v)?,
    };
    parse_machine(object, language, outer_variables).map_err(|mut e| {
        if e.state.is_none() {
            e.state = Some(state.to_owned());
            e.field = Some(match e.field {
                Some(inner) => format!("{field}.{inner}"),
                None => field.to_owned(),
            });
        }
        e
    })
}

fn parse_map(
    name: &str,
    f: &mut Fields<'_>,
    language: QueryLanguage,
    visible_variables: &[String],
) -> Result<StateKind, DefinitionError> {
    let processor_value = match (f.get("ItemProcessor"), f.get("Iterator")) {
        (Some(p), None) | (None, Some(p)) => p,
        (Some(_), Some(_)) => {
            return Err(at(
                name,
                "ItemProcessor",
                "cannot be given together with Iterator",
            ));
        }
        (None, None) => return Err(at(name, "ItemProcessor", "is required")),
    };
    let object = processor_value
        .as_object()
        .ok_or_else(|| at(name, "ItemProcessor", "must be an object"))?;
    let distributed = object
        .get("ProcessorConfig")
        .and_then(|c| c.get("Mode"))
        .and_then(Value::as_str)
        == Some("DISTRIBUTED");
    let processor = nested(name, "ItemProcessor", object, language, visible_variables)?;
    let jsonpath = language == QueryLanguage::JsonPath;
    let items_path = if jsonpath {
        f.optional_path("ItemsPath")?
    } else {
        Some("$".into())
    };
    let items = f.template("Items")?;
    if jsonpath && items.is_some() {
        return Err(at(
            name,
            "Items",
            "is only allowed in a JSONata state; use ItemsPath",
        ));
    }
    let item_selector = match (f.get("ItemSelector"), f.map.get("Parameters")) {
        (Some(_), Some(_)) => {
            return Err(at(
                name,
                "ItemSelector",
                "cannot be given together with Parameters",
            ));
        }
        (Some(s), None) => Some(s.clone()),
        (None, Some(p)) => Some(p.clone()),
        (None, None) => None,
    };
    let max_concurrency = f.dynamic("MaxConcurrency", "MaxConcurrencyPath", language)?;
    let tolerated_failure_count = f.dynamic(
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        language,
    )?;
    let tolerated_failure_percentage = f.dynamic(
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        language,
    )?;
    let item_reader = f.template("ItemReader")?;
    let result_writer = f.template("ResultWriter")?;
    f.get("Label");
    let item_batcher = f.object("ItemBatcher")?;
    Ok(StateKind::Map(Box::new(MapState {
        processor,
        items_path,
        items,
        item_selector,
        max_concurrency,
        tolerated_failure_count,
        tolerated_failure_percentage,
        item_reader,
        result_writer,
        item_batcher,
        distributed,
    })))
}

fn parse_choice(
    name: &str,
    f: &mut Fields<'_>,
    language: QueryLanguage,
) -> Result<StateKind, DefinitionError> {
    let choices_value = f
        .get("Choices")
        .ok_or_else(|| at(name, "Choices", "is required"))?
        .as_array()
        .ok_or_else(|| at(name, "Choices", "must be an array"))?;
    if choices_value.is_empty() {
        return Err(at(name, "Choices", "must hold at least one rule"));
    }
    let mut choices = Vec::new();
    for (i, value) in choices_value.iter().enumerate() {
        let field = format!("Choices[{i}]");
        let map = value
            .as_object()
            .ok_or_else(|| at(name, &field, "must be an object"))?;
        let next = map
            .get("Next")
            .and_then(Value::as_str)
            .ok_or_else(|| at(name, &format!("{field}.Next"), "is required"))?
            .to_owned();
        let rule = parse_rule(name, &field, map, language)?;
        choices.push(Choice {
            rule,
            next,
            assign: map.get("Assign").cloned(),
            output: map.get("Output").cloned(),
        });
    }
    let default = f.string("Default")?;
    Ok(StateKind::Choice { choices, default })
}

fn parse_rule(
    state: &str,
    field: &str,
    map: &Map<String, Value>,
    language: QueryLanguage,
) -> Result<Rule, DefinitionError> {
    if language == QueryLanguage::Jsonata {
        let condition = map.get("Condition").ok_or_else(|| {
            at(
                state,
                &format!("{field}.Condition"),
                "is required in a JSONata Choice rule",
            )
        })?;
        return Ok(Rule::Condition(condition.clone()));
    }
    for (key, combinator) in [("And", 0), ("Or", 1)] {
        if let Some(value) = map.get(key) {
            let list = value.as_array().ok_or_else(|| {
                at(
                    state,
                    &format!("{field}.{key}"),
                    "must be an array of rules",
                )
            })?;
            let mut rules = Vec::new();
            for (i, inner) in list.iter().enumerate() {
                let inner_field = format!("{field}.{key}[{i}]");
                let inner_map = inner
                    .as_object()
                    .ok_or_else(|| at(state, &inner_field, "must be an object"))?;
                rules.push(parse_rule(state, &inner_field, inner_map, language)?);
            }
            return Ok(if combinator == 0 {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            });
        }
    }
    if let Some(value) = map.get("Not") {
        let inner_field = format!("{field}.Not");
        let inner_map = value
            .as_object()
            .ok_or_else(|| at(state, &inner_field, "must be an object"))?;
        return Ok(Rule::Not(Box::new(parse_rule(
            state,
            &inner_field,
            inner_map,
            language,
        )?)));
    }
    let variable = map
        .get("Variable")
        .ok_or_else(|| {
            at(
                state,
                &format!("{field}.Variable"),
                "is required in a comparison",
            )
        })?
        .as_str()
        .ok_or_else(|| {
            at(
                state,
                &format!("{field}.Variable"),
                "must be a JSONPath string",
            )
        })?;
    check_path(state, &format!("{field}.Variable"), variable)?;
    for (key, value) in map {
        if let Some(operator) = comparison_operator(key) {
            let is_path = key.ends_with("Path");
            let operand = if is_path {
                let path = value.as_str().ok_or_else(|| {
                    at(
                        state,
                        &format!("{field}.{key}"),
                        "must be a JSONPath string",
                    )
                })?;
                check_path(state, &format!("{field}.{key}"), path)?;
                Operand::Path(path.to_owned())
            } else {
                check_operand(state, &format!("{field}.{key}"), operator, value)?;
                Operand::Literal(value.clone())
            };
            return Ok(Rule::Compare {
                variable: variable.to_owned(),
                operator,
                operand,
            });
        }
    }
    Err(at(
        state,
        field,
        "has no comparison operator (e.g. StringEquals, NumericLessThan, IsPresent), And, Or or Not",
    ))
}

fn check_operand(
    state: &str,
    field: &str,
    operator: Operator,
    value: &Value,
) -> Result<(), DefinitionError> {
    let ok = match operator {
        Operator::Compare(Kind::String, _) | Operator::StringMatches => value.is_string(),
        Operator::Compare(Kind::Numeric, _) => value.is_number(),
        Operator::Compare(Kind::Boolean, _) => value.is_boolean(),
        // A literal that is not a timestamp never matches; AWS accepts the definition.
        Operator::Compare(Kind::Timestamp, _) => value.is_string(),
        _ => value.is_boolean(),
    };
    if ok {
        Ok(())
    } else {
        Err(at(
            state,
            field,
            format!("{value} is not a valid operand for this operator"),
        ))
    }
}

fn comparison_operator(key: &str) -> Option<Operator> {
    let base = key.strip_suffix("Path").unwrap_or(key);
    if base == "StringMatches" {
        return (!key.ends_with("Path")).then_some(Operator::StringMatches);
    }
    for (name, op) in TYPE_TESTS {
        if key == *name {
            return Some(*op);
        }
    }
    for (prefix, kind) in COMPARISONS {
        if let Some(rest) = base.strip_prefix(prefix) {
            for (relation_name, relation) in RELATIONS {
                if rest == *relation_name {
                    return Some(Operator::Compare(*kind, *relation));
                }
            }
        }
    }
    None
}

fn parse_retry(state: &str, value: Option<&Value>) -> Result<Vec<Retrier>, DefinitionError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| at(state, "Retry", "must be an array"))?;
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let field = format!("Retry[{i}]");
        let map = item
            .as_object()
            .ok_or_else(|| at(state, &field, "must be an object"))?;
        let error_equals = error_equals(state, &field, map)?;
        let number = |key: &str| -> Result<Option<&Value>, DefinitionError> { Ok(map.get(key)) };
        let interval_seconds = match number("IntervalSeconds")? {
            None => 1,
            Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                at(
                    state,
                    &format!("{field}.IntervalSeconds"),
                    "must be a positive integer",
                )
            })?,
        };
        let max_attempts = match number("MaxAttempts")? {
            None => 3,
            Some(v) => v.as_u64().ok_or_else(|| {
                at(
                    state,
                    &format!("{field}.MaxAttempts"),
                    "must be a non-negative integer",
                )
            })?,
        };
        let backoff_rate = match number("BackoffRate")? {
            None => 2.0,
            Some(v) => v.as_f64().filter(|n| *n >= 1.0).ok_or_else(|| {
                at(
                    state,
                    &format!("{field}.BackoffRate"),
                    "must be a number of at least 1.0",
                )
            })?,
        };
        let max_delay_seconds = match number("MaxDelaySeconds")? {
            None => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                at(
                    state,
                    &format!("{field}.MaxDelaySeconds"),
                    "must be a positive integer",
                )
            })?),
        };
        let full_jitter = match map.get("JitterStrategy").map(|v| v.as_str()) {
            None | Some(Some("NONE")) => false,
            Some(Some("FULL")) => true,
            Some(_) => {
                return Err(at(
                    state,
                    &format!("{field}.JitterStrategy"),
                    "must be \"FULL\" or \"NONE\"",
                ));
            }
        };
        out.push(Retrier {
            error_equals,
            interval_seconds,
            max_attempts,
            backoff_rate,
            max_delay_seconds,
            full_jitter,
        });
    }
    Ok(out)
}

fn error_equals(
    state: &str,
    field: &str,
    map: &Map<String, Value>,
) -> Result<Vec<String>, DefinitionError> {
    let list = map
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            at(
                state,
                &format!("{field}.ErrorEquals"),
                "is required: an array of error names",
            )
        })?;
    let names: Vec<String> = list
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if names.len() != list.len() || names.is_empty() {
        return Err(at(
            state,
            &format!("{field}.ErrorEquals"),
            "must be a non-empty array of error names",
        ));
    }
    if names.iter().any(|n| n == "States.ALL") && names.len() > 1 {
        return Err(at(
            state,
            &format!("{field}.ErrorEquals"),
            "States.ALL must appear alone",
        ));
    }
    Ok(names)
}

fn parse_catch(
    state: &str,
    value: Option<&Value>,
    language: QueryLanguage,
) -> Result<Vec<Catcher>, DefinitionError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| at(state, "Catch", "must be an array"))?;
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let field = format!("Catch[{i}]");
        let map = item
            .as_object()
            .ok_or_else(|| at(state, &field, "must be an object"))?;
        let error_equals = error_equals(state, &field, map)?;
        let next = map
            .get("Next")
            .and_then(Value::as_str)
            .ok_or_else(|| at(state, &format!("{field}.Next"), "is required"))?
            .to_owned();
        let result_path = match map.get("ResultPath") {
            None => Some("$".to_owned()),
            Some(Value::Null) => None,
            Some(Value::String(p)) if language == QueryLanguage::JsonPath => {
                check_path(state, &format!("{field}.ResultPath"), p)?;
                Some(p.clone())
            }
            Some(_) => {
                return Err(at(
                    state,
                    &format!("{field}.ResultPath"),
                    "must be a JSONPath string or null",
                ));
            }
        };
        out.push(Catcher {
            error_equals,
            next,
            result_path,
            output: map.get("Output").cloned(),
            assign: map.get("Assign").cloned(),
        });
    }
    Ok(out)
}

/// Parses an RFC 3339 timestamp the way the States Language accepts it (upper-case `T`,
/// a zone designator required).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if !text.contains('T') || text.contains('t') || text.contains(' ') {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
