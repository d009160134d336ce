//! JSONPath as AWS Step Functions evaluates it.
//!
//! Step Functions uses Jayway JsonPath semantics: a *definite* path (only child names and
//! array indexes) yields the value it points at and fails when that value is missing; an
//! *indefinite* path (wildcard, slice, union, filter, recursive descent) yields a JSON array
//! of every match, empty when nothing matches.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

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
    /// `$name…` named a variable that no state has assigned (AWS: `States.Runtime`).
    #[error(
        "the variable ${name} used in {path:?} is not defined; assign it before this state reads it"
    )]
    UnknownVariable { path: String, name: String },
    /// A ResultPath could not be applied because it runs into a value that is not an
    /// object (AWS: `States.ResultPathMatchFailure`). `input` is the JSON text of the value
    /// the path was applied to.
    #[error("Unable to apply ReferencePath {path} to input {input}")]
    ResultPathMatchFailure { path: String, input: String },
}

/// Evaluates `path` against `root`.
pub fn query(path: &str, root: &Value) -> Result<Value, PathError> {
    let parsed = parse(path)?;
    evaluate(&parsed, root, path)
}

/// Evaluates a path that may start with `$$` (context) or `$name` (a variable).
pub fn resolve(path: &str, scope: &Scope<'_>) -> Result<Value, PathError> {
    let (source, parsed) = parse_scoped(path)?;
    let root = match &source {
        Source::Input => scope.input,
        Source::Context => scope.context,
        Source::Variable(name) => {
            scope
                .variables
                .get(name)
                .ok_or_else(|| PathError::UnknownVariable {
                    path: path.to_owned(),
                    name: name.clone(),
                })?
        }
    };
    evaluate(&parsed, root, path)
}

/// Writes `value` at the reference path `path` inside `root` (ResultPath semantics).
///
/// `$` replaces the whole root; missing objects along the way are created; a path that
/// runs into a value that is not an object (or an index outside an array) fails with
/// [`PathError::ResultPathMatchFailure`].
pub fn set(root: Value, path: &str, value: Value) -> Result<Value, PathError> {
    let parsed = parse(path)?;
    if !parsed.is_reference() {
        return Err(invalid(
            path,
            "a ResultPath must be a reference path: only child names and array indexes, no wildcards, slices, unions, filters, recursive descent or functions",
        ));
    }
    let mut root = root;
    if set_in(&mut root, &parsed.segments, value).is_err() {
        let input = serde_json::to_string(&root).unwrap_or_default();
        return Err(PathError::ResultPathMatchFailure {
            path: path.to_owned(),
            input,
        });
    }
    Ok(root)
}

/// Checks the syntax of a path used in a definition: `$…`, `$$…` or `$name…`.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    parse_scoped(path).map(|_| ())
}

/// Checks that `path` is a reference path (what ResultPath and the `*Path` fields of
/// Wait/Map accept): `$`, `$$` or `$name` followed only by child names and array indexes.
pub fn validate_reference_path(path: &str) -> Result<(), PathError> {
    let (_, parsed) = parse_scoped(path)?;
    if parsed.is_reference() {
        Ok(())
    } else {
        Err(invalid(
            path,
            "a reference path may hold only child names and array indexes",
        ))
    }
}

/// True when `path` is a syntactically valid reference path.
pub fn is_reference_path(path: &str) -> bool {
    validate_reference_path(path).is_ok()
}

/// True when `path` is valid and definite (yields one value rather than an array of matches).
pub fn is_definite_path(path: &str) -> bool {
    parse_scoped(path).is_ok_and(|(_, parsed)| parsed.is_definite())
}

// ---------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Child(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Names(Vec<String>),
    Indices(Vec<i64>),
    Wildcard,
    /// `..` followed by a selector.
    Descend(Box<Segment>),
    Filter(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    segments: Vec<Segment>,
    /// The path ends in `.length()`.
    length: bool,
}

impl Path {
    fn is_definite(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Child(_) | Segment::Index(_)))
    }

    fn is_reference(&self) -> bool {
        self.is_definite() && !self.length
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, CmpOp, Operand),
    /// An operand on its own: a path tests for existence.
    Exists(Operand),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Regex,
}

#[derive(Debug, Clone)]
enum Operand {
    Current(Path),
    Root(Path),
    Literal(Value),
    Regex(regex::Regex),
}

impl PartialEq for Operand {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Operand::Current(a), Operand::Current(b)) | (Operand::Root(a), Operand::Root(b)) => {
                a == b
            }
            (Operand::Literal(a), Operand::Literal(b)) => a == b,
            (Operand::Regex(a), Operand::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

enum Source {
    Input,
    Context,
    Variable(String),
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/// Filters and parentheses nest; this bounds recursion on hostile input.
const MAX_NESTING: usize = 64;

fn invalid(path: &str, reason: impl Into<String>) -> PathError {
    PathError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn parse(path: &str) -> Result<Path, PathError> {
    let mut parser = Parser::new(path);
    if !parser.eat('$') {
        return Err(invalid(path, "a path must start with '$'"));
    }
    let parsed = parser
        .segments(false, 0)
        .map_err(|reason| invalid(path, reason))?;
    if let Some(c) = parser.peek() {
        return Err(invalid(
            path,
            format!("unexpected character {c:?} at position {}", parser.pos),
        ));
    }
    Ok(parsed)
}

/// Splits off `$$` (context) or `$name` (variable) and parses the rest as a path.
fn parse_scoped(path: &str) -> Result<(Source, Path), PathError> {
    let reparse = |rest: &str| {
        parse(&format!("${rest}")).map_err(|e| match e {
            PathError::Invalid { reason, .. } => invalid(path, reason),
            other => other,
        })
    };
    if let Some(rest) = path.strip_prefix("$$") {
        return Ok((Source::Context, reparse(rest)?));
    }
    if let Some(rest) = path.strip_prefix('$') {
        let starts_name = rest
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_');
        if starts_name {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, tail) = rest.split_at(end);
            return Ok((Source::Variable(name.to_owned()), reparse(tail)?));
        }
    }
    Ok((Source::Input, parse(path)?))
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Self {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && s.chars().zip(&self.chars[self.pos..]).all(|(a, b)| a == *b)
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(found) => format!(
                    "expected {c:?} at position {} but found {found:?}",
                    self.pos
                ),
                None => format!("expected {c:?} at position {} but the path ended", self.pos),
            })
        }
    }

    /// Parses segments after `$` or `@`. Inside a filter a name also stops at spaces and
    /// operator characters.
    fn segments(&mut self, in_filter: bool, depth: usize) -> Result<Path, String> {
        let mut segments = Vec::new();
        let mut length = false;
        loop {
            match self.peek() {
                Some('.') if self.peek_at(1) == Some('.') => {
                    self.pos += 2;
                    let selector = match self.peek() {
                        Some('[') => self.bracket(depth)?,
                        Some('*') => {
                            self.pos += 1;
                            Segment::Wildcard
                        }
                        _ => Segment::Child(self.name(in_filter)?),
                    };
                    segments.push(Segment::Descend(Box::new(selector)));
                }
                Some('.') => {
                    self.pos += 1;
                    if self.eat('*') {
                        segments.push(Segment::Wildcard);
                        continue;
                    }
                    let before = self.pos;
                    if self.eat_str("length()") {
                        if self.at_path_end(in_filter) {
                            length = true;
                            break;
                        }
                        self.pos = before;
                    }
                    let name = self.name(in_filter)?;
                    segments.push(Segment::Child(name));
                }
                Some('[') => segments.push(self.bracket(depth)?),
                _ => break,
            }
        }
        Ok(Path { segments, length })
    }

    fn at_path_end(&self, in_filter: bool) -> bool {
        match self.peek() {
            None => true,
            Some(c) => in_filter && (c.is_whitespace() || ")=!<>&|".contains(c)),
        }
    }

    fn name(&mut self, in_filter: bool) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let stop = c == '.'
                || c == '['
                || c == ']'
                || (in_filter && (c.is_whitespace() || "()=!<>&|,".contains(c)));
            if stop {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(format!("expected a property name at position {start}"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn bracket(&mut self, depth: usize) -> Result<Segment, String> {
        self.expect('[')?;
        self.skip_spaces();
        let segment = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.skip_spaces();
                self.expect('(')?;
                let expr = self.or_expr(depth + 1)?;
                self.skip_spaces();
                self.expect(')')?;
                Segment::Filter(Box::new(expr))
            }
            Some('\'' | '"') => {
                let mut names = vec![self.quoted()?];
                loop {
                    self.skip_spaces();
                    if !self.eat(',') {
                        break;
                    }
                    self.skip_spaces();
                    names.push(self.quoted()?);
                }
                if names.len() == 1 {
                    Segment::Child(names.remove(0))
                } else {
                    Segment::Names(names)
                }
            }
            Some(c) if c == '-' || c == ':' || c.is_ascii_digit() => self.indexes()?,
            Some(c) => {
                return Err(format!(
                    "unexpected character {c:?} inside brackets at position {}",
                    self.pos
                ));
            }
            None => return Err("the path ends inside brackets".into()),
        };
        self.skip_spaces();
        self.expect(']')?;
        Ok(segment)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("expected a quoted name at position {}", self.pos)),
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted name".into()),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        None => return Err("unterminated quoted name".into()),
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Result<Option<i64>, String> {
        self.skip_spaces();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        self.skip_spaces();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{text:?} is not a valid array index"))
    }

    fn indexes(&mut self) -> Result<Segment, String> {
        let first = self.integer()?;
        if self.eat(':') {
            let end = self.integer()?;
            if self.peek() == Some(':') {
                return Err("slice steps are not supported".into());
            }
            return Ok(Segment::Slice(first, end));
        }
        let first =
            first.ok_or_else(|| format!("expected an array index at position {}", self.pos))?;
        let mut indices = vec![first];
        while self.eat(',') {
            let next = self
                .integer()?
                .ok_or_else(|| format!("expected an array index at position {}", self.pos))?;
            indices.push(next);
        }
        Ok(if indices.len() == 1 {
            Segment::Index(first)
        } else {
            Segment::Indices(indices)
        })
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > MAX_NESTING {
            return Err("the filter is nested too deeply".into());
        }
        let mut left = self.and_expr(depth)?;
        loop {
            self.skip_spaces();
            if self.eat_str("||") {
                let right = self.and_expr(depth)?;
                left = Expr::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, String> {
        let mut left = self.unary(depth)?;
        loop {
            self.skip_spaces();
            if self.eat_str("&&") {
                let right = self.unary(depth)?;
                left = Expr::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > MAX_NESTING {
            return Err("the filter is nested too deeply".into());
        }
        self.skip_spaces();
        if self.peek() == Some('!') && self.peek_at(1) != Some('=') {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.eat('(') {
            let inner = self.or_expr(depth + 1)?;
            self.skip_spaces();
            self.expect(')')?;
            return Ok(inner);
        }
        let left = self.operand(depth)?;
        self.skip_spaces();
        let op = if self.eat_str("==") {
            CmpOp::Eq
        } else if self.eat_str("!=") {
            CmpOp::Ne
        } else if self.eat_str("<=") {
            CmpOp::Le
        } else if self.eat_str(">=") {
            CmpOp::Ge
        } else if self.eat_str("=~") {
            CmpOp::Regex
        } else if self.eat('<') {
            CmpOp::Lt
        } else if self.eat('>') {
            CmpOp::Gt
        } else {
            return match left {
                Operand::Regex(_) => Err("a regular expression must follow =~".into()),
                other => Ok(Expr::Exists(other)),
            };
        };
        self.skip_spaces();
        let right = self.operand(depth)?;
        if op == CmpOp::Regex && !matches!(right, Operand::Regex(_)) {
            return Err("=~ must be followed by a regular expression such as /^a.*/".into());
        }
        Ok(Expr::Compare(left, op, right))
    }

    fn operand(&mut self, depth: usize) -> Result<Operand, String> {
        self.skip_spaces();
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.segments(true, depth + 1)?))
            }
            Some('$') => {
                self.pos += 1;
                Ok(Operand::Root(self.segments(true, depth + 1)?))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some('/') => self.regex(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(_) => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.eat_str(word) {
                        return Ok(Operand::Literal(value));
                    }
                }
                Err(format!(
                    "unexpected character {:?} in filter at position {}",
                    self.peek().unwrap_or(' '),
                    self.pos
                ))
            }
            None => Err("the filter ends unexpectedly".into()),
        }
    }

    fn number(&mut self) -> Result<Operand, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '+')
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        serde_json::from_str::<Number>(&text)
            .map(|n| Operand::Literal(Value::Number(n)))
            .map_err(|_| format!("{text:?} is not a valid number"))
    }

    fn regex(&mut self) -> Result<Operand, String> {
        self.expect('/')?;
        let mut pattern = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated regular expression".into()),
                Some('\\') if self.peek_at(1) == Some('/') => {
                    pattern.push('/');
                    self.pos += 2;
                }
                Some('\\') => {
                    pattern.push('\\');
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        pattern.push(c);
                        self.pos += 1;
                    }
                }
                Some('/') => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    pattern.push(c);
                    self.pos += 1;
                }
            }
        }
        let mut flags = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphabetic()) {
            if !"imsx".contains(c) {
                return Err(format!("unsupported regular expression flag {c:?}"));
            }
            flags.push(c);
            self.pos += 1;
        }
        let mut full = String::new();
        if !flags.is_empty() {
            let _ = write!(full, "(?{flags})");
        }
        // Jayway matches the whole value, like Java's Matcher.matches().
        let _ = write!(full, "^(?:{pattern})$");
        regex::RegexBuilder::new(&full)
            .size_limit(1 << 20)
            .build()
            .map(Operand::Regex)
            .map_err(|e| format!("invalid regular expression /{pattern}/: {e}"))
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------

fn evaluate(path: &Path, root: &Value, text: &str) -> Result<Value, PathError> {
    let nodes = select(path, root, root);
    let not_found = || PathError::NotFound {
        path: text.to_owned(),
    };
    if path.is_definite() {
        let value = nodes.first().ok_or_else(not_found)?;
        if path.length {
            return length_of(value)
                .ok_or_else(|| invalid(text, "length() applies to an array or an object only"));
        }
        return Ok((*value).clone());
    }
    if path.length {
        return Ok(Value::from(nodes.len()));
    }
    Ok(Value::Array(nodes.into_iter().cloned().collect()))
}

fn length_of(value: &Value) -> Option<Value> {
    match value {
        Value::Array(items) => Some(Value::from(items.len())),
        Value::Object(map) => Some(Value::from(map.len())),
        _ => None,
    }
}

fn select<'a>(path: &Path, start: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    let mut nodes = vec![start];
    for segment in &path.segments {
        let mut next = Vec::new();
        for node in nodes {
            apply(segment, node, root, &mut next);
        }
        nodes = next;
    }
    nodes
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let actual = if index < 0 { len + index } else { index };
    (0..len).contains(&actual).then_some(actual as usize)
}

fn apply<'a>(segment: &Segment, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match segment {
        Segment::Child(name) => {
            if let Some(v) = node.as_object().and_then(|m| m.get(name)) {
                out.push(v);
            }
        }
        Segment::Names(names) => {
            if let Some(map) = node.as_object() {
                out.extend(names.iter().filter_map(|n| map.get(n)));
            }
        }
        Segment::Index(index) => {
            if let Some(items) = node.as_array()
                && let Some(i) = resolve_index(*index, items.len())
            {
                out.push(&items[i]);
            }
        }
        Segment::Indices(indices) => {
            if let Some(items) = node.as_array() {
                out.extend(
                    indices
                        .iter()
                        .filter_map(|i| resolve_index(*i, items.len()))
                        .map(|i| &items[i]),
                );
            }
        }
        Segment::Slice(start, end) => {
            if let Some(items) = node.as_array() {
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let clamp = |v: i64| {
                    let v = if v < 0 { len + v } else { v };
                    v.clamp(0, len) as usize
                };
                let from = clamp(start.unwrap_or(0));
                let to = clamp(end.unwrap_or(len));
                if from < to {
                    out.extend(&items[from..to]);
                }
            }
        }
        Segment::Wildcard => children(node, out),
        Segment::Descend(selector) => descend(selector, node, root, out),
        Segment::Filter(expr) => match node {
            Value::Array(items) => {
                out.extend(items.iter().filter(|item| test(expr, item, root)));
            }
            Value::Object(_) if test(expr, node, root) => out.push(node),
            _ => {}
        },
    }
}

fn children<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    match node {
        Value::Object(map) => out.extend(map.values()),
        Value::Array(items) => out.extend(items),
        _ => {}
    }
}

fn descend<'a>(selector: &Segment, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    // Walk iteratively (pre-order) so deep documents cannot exhaust the stack.
    let mut stack = vec![node];
    while let Some(current) = stack.pop() {
        apply(selector, current, root, out);
        let mut kids = Vec::new();
        children(current, &mut kids);
        stack.extend(kids.into_iter().rev());
    }
}

/// What a filter operand stands for at one item: `None` when its path does not exist.
fn operand_value<'a>(operand: &'a Operand, item: &'a Value, root: &'a Value) -> Option<Value> {
    let (path, start) = match operand {
        Operand::Literal(v) => return Some(v.clone()),
        Operand::Regex(_) => return None,
        Operand::Current(path) => (path, item),
        Operand::Root(path) => (path, root),
    };
    let nodes = select(path, start, root);
    if path.is_definite() {
        let value = nodes.first()?;
        if path.length {
            return length_of(value);
        }
        Some((*value).clone())
    } else if path.length {
        Some(Value::from(nodes.len()))
    } else {
        Some(Value::Array(nodes.into_iter().cloned().collect()))
    }
}

fn test(expr: &Expr, item: &Value, root: &Value) -> bool {
    match expr {
        Expr::Or(a, b) => test(a, item, root) || test(b, item, root),
        Expr::And(a, b) => test(a, item, root) && test(b, item, root),
        Expr::Not(inner) => !test(inner, item, root),
        Expr::Exists(operand) => match operand {
            Operand::Literal(v) => !matches!(v, Value::Null | Value::Bool(false)),
            other => operand_value(other, item, root).is_some(),
        },
        Expr::Compare(left, op, right) => {
            let l = operand_value(left, item, root);
            if *op == CmpOp::Regex {
                return match (l, right) {
                    (Some(Value::String(s)), Operand::Regex(re)) => re.is_match(&s),
                    _ => false,
                };
            }
            let r = operand_value(right, item, root);
            match op {
                CmpOp::Eq => equal(l.as_ref(), r.as_ref()),
                CmpOp::Ne => !equal(l.as_ref(), r.as_ref()),
                _ => match (l.as_ref(), r.as_ref()) {
                    (Some(a), Some(b)) => order(a, b).is_some_and(|o| match op {
                        CmpOp::Lt => o.is_lt(),
                        CmpOp::Le => o.is_le(),
                        CmpOp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    }),
                    _ => false,
                },
            }
        }
    }
}

fn equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => json_equal(a, b),
        _ => false,
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn number_equal(x: &Number, y: &Number) -> bool {
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn set_in(target: &mut Value, segments: &[Segment], value: Value) -> Result<(), ()> {
    let Some((first, rest)) = segments.split_first() else {
        *target = value;
        return Ok(());
    };
    let slot = match first {
        Segment::Child(name) => {
            let map = target.as_object_mut().ok_or(())?;
            if rest.is_empty() {
                map.insert(name.clone(), value);
                return Ok(());
            }
            map.entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()))
        }
        Segment::Index(index) => {
            let items = target.as_array_mut().ok_or(())?;
            let i = resolve_index(*index, items.len()).ok_or(())?;
            &mut items[i]
        }
        _ => return Err(()),
    };
    set_in(slot, rest, value)
}

#[cfg(test)]
mod tests;
