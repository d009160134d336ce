//! The evaluator's value type: JSON plus undefined, functions and JSONata's sequence flags.

use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::error::Error;
use crate::eval::Env;
use crate::functions::Builtin;
use crate::parser::LambdaDef;

/// Flags jsonata-js keeps on its arrays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Flags {
    /// A sequence of results rather than an array value: singletons unwrap, empties vanish.
    pub sequence: bool,
    /// A sequence that stays an array even with one member (from `[]`).
    pub keep_singleton: bool,
    /// An array built by an array constructor.
    pub cons: bool,
    /// The wrapper put around an input document that is itself an array.
    pub outer_wrapper: bool,
}

pub(crate) type Object = IndexMap<String, Value>;

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(Rc<str>),
    Array(Rc<Vec<Value>>, Flags),
    Object(Rc<Object>),
    Function(Rc<Function>),
    Regex(Arc<regex::Regex>),
}

#[derive(Debug)]
pub(crate) enum Function {
    Lambda {
        def: Arc<LambdaDef>,
        env: Env,
        input: Value,
    },
    Builtin(&'static Builtin),
    /// A partial application: `None` marks a `?` still to be filled.
    Partial {
        func: Value,
        args: Vec<Option<Value>>,
    },
    /// `$f ~> $g` composed into one function.
    Chain {
        first: Value,
        second: Value,
    },
}

impl Function {
    pub(crate) fn arity(&self) -> usize {
        match self {
            Function::Lambda { def, .. } => def.params.len(),
            Function::Builtin(b) => b.signature.arity(),
            Function::Partial { args, .. } => args.iter().filter(|a| a.is_none()).count(),
            Function::Chain { .. } => 1,
        }
    }
}

impl Value {
    pub(crate) fn array(items: Vec<Value>) -> Value {
        Value::Array(Rc::new(items), Flags::default())
    }

    pub(crate) fn sequence(items: Vec<Value>) -> Value {
        Value::Array(
            Rc::new(items),
            Flags {
                sequence: true,
                ..Flags::default()
            },
        )
    }

    pub(crate) fn string(s: impl Into<Rc<str>>) -> Value {
        Value::String(s.into())
    }

    pub(crate) fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    pub(crate) fn is_array(&self) -> bool {
        matches!(self, Value::Array(..))
    }

    pub(crate) fn is_sequence(&self) -> bool {
        matches!(self, Value::Array(_, f) if f.sequence)
    }

    pub(crate) fn is_function(&self) -> bool {
        matches!(self, Value::Function(_) | Value::Regex(_))
    }

    pub(crate) fn flags(&self) -> Flags {
        match self {
            Value::Array(_, f) => *f,
            _ => Flags::default(),
        }
    }

    pub(crate) fn with_flags(self, flags: Flags) -> Value {
        match self {
            Value::Array(items, _) => Value::Array(items, flags),
            other => other,
        }
    }

    /// The members of an array, or the value itself as a one-member list.
    pub(crate) fn members(&self) -> Vec<Value> {
        match self {
            Value::Undefined => Vec::new(),
            Value::Array(items, _) => items.as_ref().clone(),
            other => vec![other.clone()],
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(..) => "array",
            Value::Object(_) => "object",
            Value::Function(_) | Value::Regex(_) => "function",
        }
    }

    pub(crate) fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::string(s.as_str()),
            serde_json::Value::Array(items) => {
                Value::array(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Object(Rc::new(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// Converts to JSON the way `JSON.stringify` would see it: functions become nothing inside
    /// objects and `null` inside arrays, and numbers that JSON cannot hold are an error.
    pub(crate) fn to_json(&self) -> Result<Option<serde_json::Value>, Error> {
        Ok(match self {
            Value::Undefined | Value::Function(_) | Value::Regex(_) => None,
            Value::Null => Some(serde_json::Value::Null),
            Value::Bool(b) => Some(serde_json::Value::Bool(*b)),
            Value::Number(n) => Some(number_to_json(*n)?),
            Value::String(s) => Some(serde_json::Value::String(s.to_string())),
            Value::Array(items, _) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(item.to_json()?.unwrap_or(serde_json::Value::Null));
                }
                Some(serde_json::Value::Array(out))
            }
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map.iter() {
                    if let Some(j) = v.to_json()? {
                        out.insert(k.clone(), j);
                    }
                }
                Some(serde_json::Value::Object(out))
            }
        })
    }
}

pub(crate) fn number_to_json(n: f64) -> Result<serde_json::Value, Error> {
    if !n.is_finite() {
        return Err(Error::new(
            "D1001",
            format!("Number out of range: {}", js_number_string(n)),
        ));
    }
    if n == n.trunc() && n.abs() < 9_007_199_254_740_992.0 {
        // -0 is written as 0, as JSON.stringify does
        return Ok(serde_json::Value::from(n as i64));
    }
    Ok(serde_json::Number::from_f64(n)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null))
}

/// JavaScript's `Number.prototype.toString()`.
pub(crate) fn js_number_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    // shortest round-trip digits and exponent, as `{:e}` gives them
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let point = exp + 1; // position of the decimal point relative to the digits
    let sign = if n < 0.0 { "-" } else { "" };
    let body = if k <= point && point <= 21 {
        format!("{digits}{}", "0".repeat((point - k) as usize))
    } else if 0 < point && point <= 21 {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else {
        let e = point - 1;
        let e_str = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{e_str}")
        } else {
            format!("{}.{}e{e_str}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

/// `Number(n.toPrecision(15))`, which JSONata applies before turning numbers into strings.
pub(crate) fn to_precision_15(n: f64) -> f64 {
    format!("{n:.14e}").parse().unwrap_or(n)
}

/// `JSON.stringify` with JSONata's replacer (15 significant digits, functions as "").
pub(crate) fn stringify(v: &Value, pretty: bool) -> Result<String, Error> {
    let mut out = String::new();
    write_json(v, pretty, 0, &mut out)?;
    Ok(out)
}

fn write_json(v: &Value, pretty: bool, indent: usize, out: &mut String) -> Result<(), Error> {
    match v {
        Value::Undefined => out.push_str("null"),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if !n.is_finite() {
                out.push_str("null");
            } else {
                out.push_str(&js_number_string(to_precision_15(*n)));
            }
        }
        Value::String(s) => write_json_string(s, out),
        Value::Function(_) | Value::Regex(_) => out.push_str("\"\""),
        Value::Array(items, _) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(pretty, indent + 1, out);
                write_json(item, pretty, indent + 1, out)?;
            }
            newline(pretty, indent, out);
            out.push(']');
        }
        Value::Object(map) => {
            let entries: Vec<_> = map.iter().filter(|(_, v)| !v.is_undefined()).collect();
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(pretty, indent + 1, out);
                write_json_string(k, out);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_json(item, pretty, indent + 1, out)?;
            }
            newline(pretty, indent, out);
            out.push('}');
        }
    }
    Ok(())
}

fn newline(pretty: bool, indent: usize, out: &mut String) {
    if pretty {
        out.push('\n');
        out.push_str(&"  ".repeat(indent));
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Structural equality, as JSONata 2's `=` uses.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) => true,
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x, _), Value::Array(y, _)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        (Value::Function(x), Value::Function(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_like_javascript() {
        for (n, want) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.23e-18, "1.23e-18"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (123456.789, "123456.789"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-0.0, "0"),
        ] {
            assert_eq!(js_number_string(n), want, "{n}");
        }
        assert_eq!(to_precision_15(0.1 + 0.2), 0.3);
    }

    #[test]
    fn json_numbers_are_integers_where_exact() {
        assert_eq!(number_to_json(3.0).unwrap(), serde_json::json!(3));
        assert_eq!(number_to_json(-0.0).unwrap().to_string(), "0");
        assert_eq!(number_to_json(2.5).unwrap(), serde_json::json!(2.5));
        assert_eq!(number_to_json(f64::INFINITY).unwrap_err().code, "D1001");
        assert_eq!(number_to_json(f64::NAN).unwrap_err().code, "D1001");
    }

    #[test]
    fn stringify_escapes_and_pretty_prints() {
        let v = Value::from_json(&serde_json::json!({"a": ["x\"\n", 1.5, null], "b": {}}));
        assert_eq!(
            stringify(&v, false).unwrap(),
            r#"{"a":["x\"\n",1.5,null],"b":{}}"#
        );
        assert_eq!(
            stringify(&v, true).unwrap(),
            "{\n  \"a\": [\n    \"x\\\"\\n\",\n    1.5,\n    null\n  ],\n  \"b\": {}\n}"
        );
    }
}
