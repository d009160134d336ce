//! The States.* intrinsic functions of JSONPath states.
//!
//! An expression such as `States.Format('{} items', States.ArrayLength($.items))` is parsed
//! into a call tree and evaluated against a [`Scope`]. Failures carry AWS's error name and
//! cause: bad argument values fail with `States.Runtime` and the cause
//! `Invalid arguments in States.<Name>`, as AWS reports them.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::jsonpath::{self, PathError, Scope};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{cause}")]
pub struct IntrinsicError {
    /// The States Language error name, e.g. `States.IntrinsicFailure`.
    pub error: String,
    /// AWS's wording of the cause.
    pub cause: String,
}

/// The error name AWS reports for intrinsic calls that fail while running.
pub const RUNTIME_ERROR: &str = "States.Runtime";

/// Every intrinsic function AWS offers to JSONPath states.
pub const FUNCTION_NAMES: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// AWS limits the input of the encoding and hashing functions to this many characters.
const MAX_INPUT_CHARS: usize = 10_000;
/// AWS limits arrays built by States.ArrayRange to this many items.
const MAX_RANGE_ITEMS: i64 = 1_000;
/// Bounds recursion on hostile input; AWS itself allows far fewer nested calls.
const MAX_NESTING: usize = 64;

/// True when `text` is an intrinsic function call such as `States.Format('{}', $.a)`.
pub fn is_intrinsic(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

/// Evaluates an intrinsic function call.
pub fn evaluate(expression: &str, scope: &Scope<'_>) -> Result<Value, IntrinsicError> {
    evaluate_call(expression, None, scope)
}

/// Evaluates an intrinsic function call written in the payload field `field` (e.g.
/// `"FunctionResult.$"`), so that a path argument that is missing is reported the way AWS
/// reports it: `The JsonPath argument for the field '<field>' could not be found in the
/// input '<input>'`.
pub fn evaluate_in_field(
    expression: &str,
    field: &str,
    scope: &Scope<'_>,
) -> Result<Value, IntrinsicError> {
    evaluate_call(expression, Some(field), scope)
}

/// Checks the syntax of an intrinsic call used in a definition: a known function, the
/// right number of arguments, literal arguments of the right type, valid paths.
/// The `Err` is a reason fit for a definition validation message.
pub fn validate_intrinsic(expression: &str) -> Result<(), String> {
    let call = parse(expression)?;
    validate_call(&call)
}

fn evaluate_call(
    expression: &str,
    field: Option<&str>,
    scope: &Scope<'_>,
) -> Result<Value, IntrinsicError> {
    let call = parse(expression).map_err(runtime)?;
    let ctx = Ctx { scope, field };
    ctx.call(&call)
}

fn runtime(cause: impl Into<String>) -> IntrinsicError {
    IntrinsicError {
        error: RUNTIME_ERROR.to_owned(),
        cause: cause.into(),
    }
}

fn invalid_arguments(name: &str) -> IntrinsicError {
    runtime(format!("Invalid arguments in {name}"))
}

// ---------------------------------------------------------------------------------------
// Syntax
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A single-quoted literal: its value, and its source text between the quotes (the
    /// template of States.Format needs to know which braces were escaped).
    Str {
        value: String,
        raw: String,
    },
    Literal(Value),
    Path(String),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    name: String,
    args: Vec<Arg>,
}

fn parse(expression: &str) -> Result<Call, String> {
    let mut parser = Parser {
        chars: expression.chars().collect(),
        pos: 0,
    };
    parser.skip_spaces();
    let call = parser.call(0)?;
    parser.skip_spaces();
    if parser.pos != parser.chars.len() {
        return Err(format!(
            "unexpected text {:?} after the intrinsic function call",
            parser.rest()
        ));
    }
    Ok(call)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn rest(&self) -> String {
        self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .collect()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, word: &str) -> bool {
        let n = word.chars().count();
        self.chars.len() >= self.pos + n
            && word
                .chars()
                .zip(&self.chars[self.pos..])
                .all(|(a, b)| a == *b)
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err("intrinsic functions are nested too deeply".into());
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !FUNCTION_NAMES.contains(&name.as_str()) {
            return Err(if name.is_empty() {
                format!(
                    "expected an intrinsic function name such as States.Format at position {start}"
                )
            } else {
                format!("{name} is not a supported intrinsic function")
            });
        }
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Call { name, args });
        }
        loop {
            self.skip_spaces();
            args.push(self.arg(depth)?);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                Some(c) => {
                    return Err(format!(
                        "unexpected character {c:?} in the arguments of {name} at position {}",
                        self.pos
                    ));
                }
                None => return Err(format!("the arguments of {name} are not closed with ')'")),
            }
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(_) if self.starts_with("States.") => Ok(Arg::Call(self.call(depth + 1)?)),
            Some(_) => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.starts_with(word) {
                        let after = self.chars.get(self.pos + word.len()).copied();
                        if after.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                            self.pos += word.len();
                            return Ok(Arg::Literal(value));
                        }
                    }
                }
                Err(format!(
                    "unexpected argument {:?}: expected a quoted string, a number, true, false, null, a path or an intrinsic function",
                    self.rest()
                ))
            }
            None => Err("the intrinsic function call ends inside its arguments".into()),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut value = String::new();
        let mut raw = String::new();
        loop {
            match self.peek() {
                None => return Err("a string argument is missing its closing quote".into()),
                Some('\\') => {
                    self.pos += 1;
                    let escaped = self
                        .peek()
                        .ok_or("a string argument ends with a lone backslash")?;
                    self.pos += 1;
                    value.push(escaped);
                    raw.push('\\');
                    raw.push(escaped);
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(Arg::Str { value, raw });
                }
                Some(c) => {
                    self.pos += 1;
                    value.push(c);
                    raw.push(c);
                }
            }
        }
    }

    fn number(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        serde_json::from_str::<Number>(&text)
            .map(|n| Arg::Literal(Value::Number(n)))
            .map_err(|_| format!("{text:?} is not a valid number"))
    }

    /// A path runs to the next `,` or `)` outside brackets, parentheses and quotes.
    fn path(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                if c == '\\' {
                    self.pos += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '\'' | '"' if depth > 0 => quote = Some(c),
                    '[' | '(' => depth += 1,
                    ']' | ')' if depth > 0 => depth -= 1,
                    ',' | ')' => break,
                    c if c.is_whitespace() && depth == 0 => break,
                    _ => {}
                }
            }
            self.pos += 1;
        }
        let path: String = self.chars[start..self.pos.min(self.chars.len())]
            .iter()
            .collect();
        jsonpath::validate_path(&path).map_err(|e| e.to_string())?;
        Ok(Arg::Path(path))
    }
}

// ---------------------------------------------------------------------------------------
// Definition-time checks
// ---------------------------------------------------------------------------------------

/// How many arguments each function takes: (minimum, maximum).
fn arity(name: &str) -> (usize, usize) {
    match name {
        "States.Format" => (1, usize::MAX),
        "States.Array" => (0, usize::MAX),
        "States.UUID" => (0, 0),
        "States.StringToJson"
        | "States.JsonToString"
        | "States.ArrayLength"
        | "States.ArrayUnique"
        | "States.Base64Encode"
        | "States.Base64Decode" => (1, 1),
        "States.ArrayRange" | "States.JsonMerge" => (3, 3),
        "States.MathRandom" => (2, 3),
        _ => (2, 2),
    }
}

fn validate_call(call: &Call) -> Result<(), String> {
    let (min, max) = arity(&call.name);
    let n = call.args.len();
    if n < min || n > max {
        let expected = match (min, max) {
            (min, usize::MAX) => format!("at least {min}"),
            (min, max) if min == max => min.to_string(),
            (min, max) => format!("{min} to {max}"),
        };
        return Err(format!(
            "{} takes {expected} argument(s) but was given {n}",
            call.name
        ));
    }
    if call.name == "States.JsonMerge"
        && let Some(Arg::Literal(Value::Bool(true))) = call.args.get(2)
    {
        return Err(
            "States.JsonMerge supports only shallow merging: its third argument must be false"
                .into(),
        );
    }
    if call.name == "States.Format"
        && let Some(Arg::Str { raw, .. }) = call.args.first()
    {
        let placeholders = template(raw, true)
            .map_err(|reason| format!("States.Format: {reason}"))?
            .iter()
            .filter(|p| matches!(p, Piece::Placeholder))
            .count();
        if placeholders != n - 1 {
            return Err(format!(
                "States.Format has {placeholders} placeholder(s) but {} value argument(s)",
                n - 1
            ));
        }
    }
    for arg in &call.args {
        if let Arg::Call(inner) = arg {
            validate_call(inner)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------

struct Ctx<'s, 'a> {
    scope: &'s Scope<'a>,
    field: Option<&'s str>,
}

impl Ctx<'_, '_> {
    fn arg(&self, arg: &Arg) -> Result<Value, IntrinsicError> {
        match arg {
            Arg::Str { value, .. } => Ok(Value::String(value.clone())),
            Arg::Literal(v) => Ok(v.clone()),
            Arg::Call(call) => self.call(call),
            Arg::Path(path) => {
                jsonpath::resolve(path, self.scope).map_err(|e| self.path_error(path, e))
            }
        }
    }

    fn path_error(&self, path: &str, error: PathError) -> IntrinsicError {
        match error {
            PathError::NotFound { .. } => {
                let input = serde_json::to_string(self.scope.input).unwrap_or_default();
                match self.field {
                    Some(field) => runtime(format!(
                        "The JsonPath argument for the field '{field}' could not be found in the input '{input}'"
                    )),
                    None => runtime(format!(
                        "The JsonPath argument {path} could not be found in the input '{input}'"
                    )),
                }
            }
            other => runtime(other.to_string()),
        }
    }

    fn call(&self, call: &Call) -> Result<Value, IntrinsicError> {
        let name = call.name.as_str();
        let (min, max) = arity(name);
        if call.args.len() < min || call.args.len() > max {
            return Err(invalid_arguments(name));
        }
        // States.Format reads its template's escapes from the source text.
        if name == "States.Format" {
            return self.format(call);
        }
        let args = call
            .args
            .iter()
            .map(|a| self.arg(a))
            .collect::<Result<Vec<_>, _>>()?;
        let bad = || invalid_arguments(name);
        match name {
            "States.StringToJson" => {
                let text = args[0].as_str().ok_or_else(bad)?;
                // AWS answers null for a blank string.
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(text)
                    .map(normalize_negative_zero)
                    .map_err(|_| bad())
            }
            "States.JsonToString" => serde_json::to_string(&args[0])
                .map(Value::String)
                .map_err(|_| bad()),
            "States.Array" => Ok(Value::Array(args)),
            "States.ArrayPartition" => {
                let items = args[0].as_array().ok_or_else(bad)?;
                let size = truncate(&args[1]).filter(|s| *s > 0).ok_or_else(bad)?;
                let size = usize::try_from(size).map_err(|_| bad())?;
                Ok(Value::Array(
                    items
                        .chunks(size)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            "States.ArrayContains" => {
                let items = args[0].as_array().ok_or_else(bad)?;
                Ok(Value::Bool(
                    items
                        .iter()
                        .any(|item| jsonpath::json_equal(item, &args[1])),
                ))
            }
            "States.ArrayRange" => array_range(&args).ok_or_else(bad),
            "States.ArrayGetItem" => {
                let items = args[0].as_array().ok_or_else(bad)?;
                let index = truncate(&args[1]).ok_or_else(bad)?;
                if items.is_empty() && index >= 0 {
                    // AWS answers null rather than failing when the array is empty.
                    return Ok(Value::Null);
                }
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(bad)
            }
            "States.ArrayLength" => {
                let items = args[0].as_array().ok_or_else(bad)?;
                Ok(Value::from(items.len()))
            }
            "States.ArrayUnique" => {
                let items = args[0].as_array().ok_or_else(bad)?;
                let mut unique: Vec<Value> = Vec::with_capacity(items.len());
                for item in items {
                    if !unique.iter().any(|u| jsonpath::json_equal(u, item)) {
                        unique.push(item.clone());
                    }
                }
                Ok(Value::Array(unique))
            }
            "States.Base64Encode" => {
                let text = limited_string(&args[0]).ok_or_else(bad)?;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
                ))
            }
            "States.Base64Decode" => {
                let text = limited_string(&args[0]).ok_or_else(bad)?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|_| bad())?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| bad())
            }
            "States.Hash" => {
                let data = match &args[0] {
                    Value::String(s) => s.clone(),
                    Value::Null => return Err(bad()),
                    other => display(other),
                };
                if data.chars().count() > MAX_INPUT_CHARS {
                    return Err(bad());
                }
                let algorithm = args[1].as_str().ok_or_else(bad)?;
                hash(algorithm, data.as_bytes())
                    .map(Value::String)
                    .ok_or_else(bad)
            }
            "States.JsonMerge" => {
                let (Value::Object(first), Value::Object(second), Value::Bool(false)) =
                    (&args[0], &args[1], &args[2])
                else {
                    return Err(bad());
                };
                let mut merged: Map<String, Value> = first.clone();
                for (k, v) in second {
                    merged.insert(k.clone(), v.clone());
                }
                Ok(Value::Object(merged))
            }
            "States.MathRandom" => math_random(&args).ok_or_else(bad),
            "States.MathAdd" => {
                let a = java_round(&args[0]).ok_or_else(bad)?;
                let b = java_round(&args[1]).ok_or_else(bad)?;
                a.checked_add(b).map(Value::from).ok_or_else(bad)
            }
            "States.StringSplit" => {
                let (Some(text), Some(delimiters)) = (args[0].as_str(), args[1].as_str()) else {
                    return Err(bad());
                };
                // Every character of the second argument is a delimiter and empty pieces
                // are dropped, like Java's StringTokenizer.
                Ok(Value::Array(
                    text.split(|c| delimiters.contains(c))
                        .filter(|piece| !piece.is_empty())
                        .map(|piece| Value::String(piece.to_owned()))
                        .collect(),
                ))
            }
            "States.UUID" => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
            _ => Err(runtime(format!(
                "{name} is not a supported intrinsic function"
            ))),
        }
    }

    fn format(&self, call: &Call) -> Result<Value, IntrinsicError> {
        let bad = || invalid_arguments("States.Format");
        let pieces = match &call.args[0] {
            Arg::Str { raw, .. } => template(raw, true),
            other => match self.arg(other)? {
                Value::String(text) => template(&text, false),
                _ => return Err(bad()),
            },
        }
        .map_err(|_| bad())?;
        let values = call.args[1..]
            .iter()
            .map(|a| self.arg(a))
            .collect::<Result<Vec<_>, _>>()?;
        let placeholders = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Placeholder))
            .count();
        if placeholders != values.len() {
            return Err(bad());
        }
        let mut out = String::new();
        let mut values = values.iter();
        for piece in &pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Placeholder => {
                    if let Some(v) = values.next() {
                        out.push_str(&display(v));
                    }
                }
            }
        }
        Ok(Value::String(out))
    }
}

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Placeholder,
}

/// Splits a States.Format template into text and `{}` placeholders. In a literal template
/// `\{` and `\}` are literal braces; a brace that is not part of `{}` is an error.
fn template(text: &str, escapes: bool) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escapes => match chars.next() {
                Some(escaped) => current.push(escaped),
                None => return Err("the template ends with a lone backslash".into()),
            },
            '{' => {
                if chars.next() != Some('}') {
                    return Err(
                        "a '{' in the template must be followed by '}' or escaped as '\\{'".into(),
                    );
                }
                pieces.push(Piece::Text(std::mem::take(&mut current)));
                pieces.push(Piece::Placeholder);
            }
            '}' => return Err("a lone '}' in the template must be escaped as '\\}'".into()),
            c => current.push(c),
        }
    }
    pieces.push(Piece::Text(current));
    pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    Ok(pieces)
}

/// How AWS renders a value into a string (States.Format): strings as they are, objects
/// and arrays the way Java prints maps and lists (`{a=1, b=[x, y]}`).
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(display).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", display(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| n.to_string(), java_double),
        other => other.to_string(),
    }
}

/// Java's `Double.toString`: plain notation in [10^-3, 10^7), otherwise `d.dddE±n`.
fn java_double(f: f64) -> String {
    let magnitude = f.abs();
    if f == 0.0 || (1e-3..1e7).contains(&magnitude) || !f.is_finite() {
        let plain = format!("{f}");
        return if plain.contains('.') || !f.is_finite() {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// serde_json reads `-0` as the float -0.0; AWS (Jackson) reads it as the integer 0.
fn normalize_negative_zero(value: Value) -> Value {
    match value {
        Value::Number(n)
            if n.as_f64() == Some(0.0) && n.as_f64().is_some_and(f64::is_sign_negative) =>
        {
            Value::from(0)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(normalize_negative_zero).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_negative_zero(v)))
                .collect(),
        ),
        other => other,
    }
}

fn limited_string(value: &Value) -> Option<&str> {
    value
        .as_str()
        .filter(|s| s.chars().count() <= MAX_INPUT_CHARS)
}

/// A number argument cut to an integer toward zero, as AWS does for indexes and ranges.
fn truncate(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?.trunc();
    (f >= i64::MIN as f64 && f <= i64::MAX as f64).then_some(f as i64)
}

/// A number argument rounded like Java's `Math.round` (half up toward positive infinity),
/// which States.MathAdd applies to non-integers.
fn java_round(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = (n.as_f64()? + 0.5).floor();
    (f >= i64::MIN as f64 && f <= i64::MAX as f64).then_some(f as i64)
}

fn array_range(args: &[Value]) -> Option<Value> {
    let start = truncate(&args[0])?;
    let end = truncate(&args[1])?;
    let step = truncate(&args[2])?;
    if step == 0 {
        return None;
    }
    let count = if (step > 0 && start > end) || (step < 0 && start < end) {
        0
    } else {
        (i128::from(end) - i128::from(start)) / i128::from(step) + 1
    };
    if count > i128::from(MAX_RANGE_ITEMS) {
        return None;
    }
    let items = (0..count as i64)
        .map(|i| Value::from(start + i * step))
        .collect();
    Some(Value::Array(items))
}

fn math_random(args: &[Value]) -> Option<Value> {
    let start = truncate(&args[0])?;
    let end = truncate(&args[1])?;
    if start >= end {
        return None;
    }
    let span = u64::try_from(i128::from(end) - i128::from(start)).ok()?;
    let offset = match args.get(2) {
        Some(seed) => JavaRandom::new(truncate(seed)?).below(span),
        None => rand::random_range(0..span),
    };
    let value = i128::from(start) + i128::from(offset);
    i64::try_from(value).ok().map(Value::from)
}

fn hash(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    Some(match algorithm {
        "MD5" => hex(&md5::Md5::digest(data)),
        "SHA-1" => hex(&sha1::Sha1::digest(data)),
        "SHA-256" => hex(&sha2::Sha256::digest(data)),
        "SHA-384" => hex(&sha2::Sha384::digest(data)),
        "SHA-512" => hex(&sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// The linear congruential generator of `java.util.Random`, so that a seeded
/// States.MathRandom is deterministic.
struct JavaRandom {
    state: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        Self {
            state: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> u32 {
        self.state = (self.state.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.state >> (48 - bits)) as u32
    }

    /// A value in `0..bound` (`bound > 0`), following `nextInt(bound)` while the bound fits
    /// an `int`.
    fn below(&mut self, bound: u64) -> u64 {
        if bound <= i32::MAX as u64 {
            let bound = bound as u32;
            if bound.is_power_of_two() {
                return (u64::from(bound) * u64::from(self.next(31))) >> 31;
            }
            loop {
                let bits = self.next(31);
                let value = bits % bound;
                if bits.wrapping_sub(value).wrapping_add(bound - 1) as i32 >= 0 {
                    return u64::from(value);
                }
            }
        }
        let wide = (u64::from(self.next(32)) << 32) | u64::from(self.next(32));
        wide % bound
    }
}

#[cfg(test)]
mod tests;
