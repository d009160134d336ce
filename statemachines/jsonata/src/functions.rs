//! The standard library, plus the functions AWS Step Functions adds.

use std::rc::Rc;
use std::sync::OnceLock;

use base64::Engine as _;
use indexmap::IndexMap;
use rand::{Rng, SeedableRng};

use crate::error::Error;
use crate::eval::{Env, Evaluator, MAX_RANGE, lookup};
use crate::signature::Signature;
use crate::value::{Value, deep_equal, js_number_string, stringify};

type Impl = fn(&Evaluator, Vec<Value>, &Value, &Env) -> Result<Value, Error>;

#[derive(Debug)]
pub(crate) struct Builtin {
    pub name: &'static str,
    pub signature: Signature,
    pub func: Impl,
}

const TABLE: &[(&str, &str, Impl)] = &[
    ("sum", "<a<n>:n>", sum),
    ("count", "<a:n>", count),
    ("max", "<a<n>:n>", max),
    ("min", "<a<n>:n>", min),
    ("average", "<a<n>:n>", average),
    ("string", "<x-b?:s>", string_fn),
    ("substring", "<s-nn?:s>", substring),
    ("substringBefore", "<s-s:s>", substring_before),
    ("substringAfter", "<s-s:s>", substring_after),
    ("lowercase", "<s-:s>", lowercase),
    ("uppercase", "<s-:s>", uppercase),
    ("length", "<s-:n>", length),
    ("trim", "<s-:s>", trim),
    ("pad", "<s-ns?:s>", pad),
    ("match", "<s-f<s:o>n?:a<o>>", match_fn),
    ("contains", "<s-(sf):b>", contains),
    ("replace", "<s-(sf)(sf)n?:s>", replace),
    ("split", "<s-(sf)n?:a<s>>", split),
    ("join", "<a<s>s?:s>", join),
    ("formatNumber", "<n-so?:s>", format_number),
    ("formatBase", "<n-n?:s>", format_base),
    ("number", "<(nsb)-:n>", number),
    ("floor", "<n-:n>", floor),
    ("ceil", "<n-:n>", ceil),
    ("round", "<n-n?:n>", round),
    ("abs", "<n-:n>", abs),
    ("sqrt", "<n-:n>", sqrt),
    ("power", "<n-n:n>", power),
    ("random", "<n?:n>", random),
    ("boolean", "<x-:b>", boolean_fn),
    ("not", "<x-:b>", not),
    ("map", "<af>", map),
    ("zip", "<a+>", zip),
    ("filter", "<af>", filter),
    ("single", "<af?>", single),
    ("reduce", "<afj?:j>", reduce),
    ("sift", "<o-f?:o>", sift),
    ("keys", "<x-:a<s>>", keys),
    ("lookup", "<x-s:x>", lookup_fn),
    ("append", "<xx:a>", append_fn),
    ("exists", "<x:b>", exists),
    ("spread", "<x-:a<o>>", spread),
    ("merge", "<a<o>:o>", merge),
    ("reverse", "<a:a>", reverse),
    ("each", "<o-f:a>", each),
    ("error", "<s?:x>", error),
    ("assert", "<bs?:x>", assert),
    ("type", "<x:s>", type_fn),
    ("sort", "<af?:a>", sort),
    ("shuffle", "<a:a>", shuffle),
    ("distinct", "<x:x>", distinct),
    ("base64encode", "<s-:s>", base64encode),
    ("base64decode", "<s-:s>", base64decode),
    ("encodeUrlComponent", "<s-:s>", encode_url_component),
    ("encodeUrl", "<s-:s>", encode_url),
    ("decodeUrlComponent", "<s-:s>", decode_url),
    ("decodeUrl", "<s-:s>", decode_url),
    ("now", "<s?s?:s>", now),
    ("millis", "<:n>", millis),
    ("fromMillis", "<n-s?s?:s>", from_millis),
    ("toMillis", "<s-s?:n>", to_millis),
    // AWS Step Functions additions
    ("partition", "<an:a>", partition),
    ("range", "<nnn?:a>", range_fn),
    ("hash", "<s-s:s>", hash),
    ("uuid", "<:s>", uuid_fn),
    ("parse", "<s-:j>", parse_json),
];

static BUILTINS: OnceLock<Vec<Builtin>> = OnceLock::new();

fn builtins() -> &'static [Builtin] {
    BUILTINS.get_or_init(|| {
        TABLE
            .iter()
            .map(|(name, sig, func)| Builtin {
                name,
                signature: Signature::parse(sig).unwrap_or_else(|e| {
                    // the table is fixed; a bad entry is a programming error caught by tests
                    panic!("bad signature for ${name}: {e}")
                }),
                func: *func,
            })
            .collect()
    })
}

pub(crate) fn lookup_builtin(name: &str) -> Option<&'static Builtin> {
    builtins().iter().find(|b| b.name == name)
}

/// Names of every builtin, for documentation and tests.
pub fn builtin_names() -> Vec<&'static str> {
    TABLE.iter().map(|(n, _, _)| *n).collect()
}

// ---------------------------------------------------------------- helpers

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Undefined)
}

fn num(args: &[Value], i: usize) -> Option<f64> {
    match arg(args, i) {
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

fn str_arg(args: &[Value], i: usize) -> Option<Rc<str>> {
    match arg(args, i) {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `fn.boolean`: JSONata's truthiness; `None` for undefined.
pub(crate) fn boolean(v: &Value) -> Option<bool> {
    Some(match v {
        Value::Undefined => return None,
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::String(s) => !s.is_empty(),
        Value::Array(items, _) => match items.len() {
            0 => false,
            1 => boolean(&items[0]).unwrap_or(false),
            _ => items.iter().any(|i| boolean(i) == Some(true)),
        },
        Value::Object(map) => !map.is_empty(),
        Value::Function(_) | Value::Regex(_) => false,
    })
}

/// `fn.string`: `None` for undefined.
pub(crate) fn to_string(v: &Value) -> Result<Option<String>, Error> {
    Ok(Some(match v {
        Value::Undefined => return Ok(None),
        Value::String(s) => s.to_string(),
        Value::Function(_) | Value::Regex(_) => String::new(),
        Value::Number(n) if !n.is_finite() => {
            return Err(Error::new(
                "D3001",
                "Attempting to invoke string function on Infinity or NaN",
            ));
        }
        Value::Array(items, f) if f.outer_wrapper && items.len() == 1 => {
            stringify(&items[0], false)?
        }
        other => stringify(other, false)?,
    }))
}

/// `fn.append`: concatenates, treating single values as arrays of one.
pub(crate) fn append(a: Value, b: Value) -> Value {
    if a.is_undefined() {
        return b;
    }
    if b.is_undefined() {
        return a;
    }
    let mut items = a.members();
    items.extend(b.members());
    Value::array(items)
}

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn sequence_or_undefined(items: Vec<Value>) -> Value {
    Value::sequence(items)
}

// ---------------------------------------------------------------- aggregation

fn numbers(v: &Value) -> Vec<f64> {
    v.members()
        .iter()
        .filter_map(|m| match m {
            Value::Number(n) => Some(*n),
            _ => None,
        })
        .collect()
}

fn sum(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    Ok(Value::Number(numbers(&args[0]).iter().sum()))
}

fn count(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(Value::Number(args[0].members().len() as f64))
}

fn max(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let ns = numbers(&args[0]);
    Ok(ns
        .into_iter()
        .reduce(f64::max)
        .map(Value::Number)
        .unwrap_or(Value::Undefined))
}

fn min(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let ns = numbers(&args[0]);
    Ok(ns
        .into_iter()
        .reduce(f64::min)
        .map(Value::Number)
        .unwrap_or(Value::Undefined))
}

fn average(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let ns = numbers(&args[0]);
    if ns.is_empty() {
        return Ok(Value::Undefined);
    }
    Ok(Value::Number(ns.iter().sum::<f64>() / ns.len() as f64))
}

// ---------------------------------------------------------------- strings

fn string_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let pretty = matches!(arg(&args, 1), Value::Bool(true));
    Ok(match &args[0] {
        Value::Undefined => Value::Undefined,
        Value::Array(..) | Value::Object(_) if pretty => Value::string(stringify(&args[0], true)?),
        other => to_string(other)?
            .map(Value::string)
            .unwrap_or(Value::Undefined),
    })
}

fn substring(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let cs = chars(&s);
    let len = cs.len() as f64;
    let mut start = num(&args, 1).unwrap_or(0.0).trunc();
    if len + start < 0.0 {
        start = 0.0;
    }
    // JavaScript's Array.slice with a negative start counts from the end
    let slice = |from: f64, to: f64| -> String {
        let norm = |i: f64| -> usize {
            if i < 0.0 {
                (len + i).max(0.0) as usize
            } else {
                i.min(len) as usize
            }
        };
        let (a, b) = (norm(from), norm(to));
        if a >= b {
            String::new()
        } else {
            cs[a..b].iter().collect()
        }
    };
    if let Some(length) = num(&args, 2) {
        if length <= 0.0 {
            return Ok(Value::string(""));
        }
        let end = if start >= 0.0 {
            start + length
        } else {
            len + start + length
        };
        return Ok(Value::string(slice(start, end.trunc())));
    }
    Ok(Value::string(slice(start, len)))
}

fn substring_before(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let (Some(s), Some(c)) = (str_arg(&args, 0), str_arg(&args, 1)) else {
        return Ok(str_arg(&args, 0)
            .map(Value::String)
            .unwrap_or(Value::Undefined));
    };
    Ok(Value::string(match s.find(c.as_ref()) {
        Some(i) => &s[..i],
        None => &s[..],
    }))
}

fn substring_after(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let (Some(s), Some(c)) = (str_arg(&args, 0), str_arg(&args, 1)) else {
        return Ok(str_arg(&args, 0)
            .map(Value::String)
            .unwrap_or(Value::Undefined));
    };
    Ok(Value::string(match s.find(c.as_ref()) {
        Some(i) => &s[i + c.len()..],
        None => &s[..],
    }))
}

fn lowercase(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(s.to_lowercase()))
        .unwrap_or(Value::Undefined))
}

fn uppercase(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(s.to_uppercase()))
        .unwrap_or(Value::Undefined))
}

fn length(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(str_arg(&args, 0)
        .map(|s| Value::Number(s.chars().count() as f64))
        .unwrap_or(Value::Undefined))
}

fn trim(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let mut out = String::with_capacity(s.len());
    let mut in_ws = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_ws = true;
        } else {
            if in_ws && !out.is_empty() {
                out.push(' ');
            }
            in_ws = false;
            out.push(c);
        }
    }
    Ok(Value::string(out))
}

fn pad(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let width = num(&args, 1).unwrap_or(0.0).trunc();
    let fill = match str_arg(&args, 2) {
        Some(f) if !f.is_empty() => f.to_string(),
        _ => " ".to_string(),
    };
    let len = s.chars().count() as f64;
    let pad_len = width.abs() - len;
    if pad_len <= 0.0 {
        return Ok(Value::String(s));
    }
    let padding: String = fill.chars().cycle().take(pad_len as usize).collect();
    Ok(Value::string(if width > 0.0 {
        format!("{s}{padding}")
    } else {
        format!("{padding}{s}")
    }))
}

fn regex_of(v: &Value) -> Option<std::sync::Arc<regex::Regex>> {
    match v {
        Value::Regex(r) => Some(r.clone()),
        _ => None,
    }
}

fn char_index(s: &str, byte: usize) -> usize {
    s[..byte].chars().count()
}

fn match_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let Some(re) = regex_of(arg(&args, 1)) else {
        return Err(Error::new(
            "T0410",
            "Argument 2 of function \"match\" does not match function signature",
        ));
    };
    let limit = limit_arg(&args, 2, "match")?;
    let mut out = Vec::new();
    for caps in re.captures_iter(&s) {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let Some(m) = caps.get(0) else { continue };
        let groups: Vec<Value> = (1..caps.len())
            .map(|i| Value::string(caps.get(i).map(|g| g.as_str()).unwrap_or("")))
            .collect();
        let mut obj = IndexMap::new();
        obj.insert("match".to_string(), Value::string(m.as_str()));
        obj.insert(
            "index".to_string(),
            Value::Number(char_index(&s, m.start()) as f64),
        );
        obj.insert("groups".to_string(), Value::array(groups));
        out.push(Value::Object(Rc::new(obj)));
    }
    Ok(sequence_or_undefined(out))
}

fn limit_arg(args: &[Value], i: usize, name: &str) -> Result<Option<usize>, Error> {
    match num(args, i) {
        None => Ok(None),
        Some(n) if n < 0.0 => Err(Error::new(
            "D3011",
            format!("Fourth argument of {name} function must evaluate to a positive number"),
        )),
        Some(n) => Ok(Some(n.trunc() as usize)),
    }
}

fn contains(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    Ok(Value::Bool(match arg(&args, 1) {
        Value::String(p) => s.contains(p.as_ref()),
        Value::Regex(re) => re.is_match(&s),
        _ => false,
    }))
}

fn replace(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    if matches!(arg(&args, 1), Value::String(p) if p.is_empty()) {
        return Err(Error::new(
            "D3010",
            "Second argument of replace function cannot be an empty string",
        ));
    }
    let limit = match num(&args, 3) {
        None => usize::MAX,
        Some(n) if n < 0.0 => {
            return Err(Error::new(
                "D3011",
                "Fourth argument of replace function must evaluate to a positive number",
            ));
        }
        Some(n) => n.trunc() as usize,
    };
    let replacement = arg(&args, 2);
    match arg(&args, 1) {
        Value::String(p) => {
            let Value::String(r) = replacement else {
                return Err(Error::new(
                    "T0410",
                    "Argument 3 of function \"replace\" does not match function signature",
                ));
            };
            Ok(Value::string(s.replacen(p.as_ref(), r, limit)))
        }
        Value::Regex(re) => {
            let mut out = String::new();
            let mut last = 0;
            for (n, caps) in re.captures_iter(&s).enumerate() {
                if n >= limit {
                    break;
                }
                let Some(m) = caps.get(0) else { continue };
                if m.as_str().is_empty() {
                    return Err(Error::new(
                        "D1004",
                        "Regular expression matches zero length string",
                    ));
                }
                out.push_str(&s[last..m.start()]);
                match replacement {
                    Value::String(r) => out.push_str(&expand_replacement(r, &caps)),
                    f if f.is_function() => {
                        let groups: Vec<Value> = (1..caps.len())
                            .map(|i| Value::string(caps.get(i).map(|g| g.as_str()).unwrap_or("")))
                            .collect();
                        let mut obj = IndexMap::new();
                        obj.insert("match".to_string(), Value::string(m.as_str()));
                        obj.insert(
                            "index".to_string(),
                            Value::Number(char_index(&s, m.start()) as f64),
                        );
                        obj.insert("groups".to_string(), Value::array(groups));
                        let r = ev.call_back(f, vec![Value::Object(Rc::new(obj))], input, env)?;
                        match r {
                            Value::String(r) => out.push_str(&r),
                            _ => {
                                return Err(Error::new(
                                    "D3012",
                                    "Attempted to replace a matched string with a non-string value",
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(Error::new(
                            "T0410",
                            "Argument 3 of function \"replace\" does not match function signature",
                        ));
                    }
                }
                last = m.end();
            }
            out.push_str(&s[last..]);
            Ok(Value::string(out))
        }
        _ => Ok(Value::String(s)),
    }
}

/// `$0`, `$1`… in a replacement string; `$$` is a literal `$`.
fn expand_replacement(r: &str, caps: &regex::Captures) -> String {
    let cs: Vec<char> = r.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] == '$' && i + 1 < cs.len() {
            if cs[i + 1] == '$' {
                out.push('$');
                i += 2;
                continue;
            }
            if cs[i + 1].is_ascii_digit() {
                // longest group number that exists, as JSONata does
                let mut j = i + 1;
                let mut group = 0usize;
                let mut used = 0;
                while j < cs.len() && cs[j].is_ascii_digit() {
                    let candidate = group * 10 + cs[j].to_digit(10).unwrap_or(0) as usize;
                    if candidate >= caps.len() && used > 0 {
                        break;
                    }
                    group = candidate;
                    used += 1;
                    j += 1;
                }
                if group < caps.len() {
                    out.push_str(caps.get(group).map(|g| g.as_str()).unwrap_or(""));
                }
                i = j;
                continue;
            }
        }
        out.push(cs[i]);
        i += 1;
    }
    out
}

fn split(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let limit = match num(&args, 2) {
        None => usize::MAX,
        Some(n) if n < 0.0 => {
            return Err(Error::new(
                "D3020",
                "Third argument of split function must evaluate to a positive number",
            ));
        }
        Some(n) => n.trunc() as usize,
    };
    let parts: Vec<String> = match arg(&args, 1) {
        Value::String(sep) if sep.is_empty() => s.chars().map(|c| c.to_string()).collect(),
        Value::String(sep) => s.split(sep.as_ref()).map(str::to_string).collect(),
        Value::Regex(re) => re.split(&s).map(str::to_string).collect(),
        _ => vec![s.to_string()],
    };
    Ok(Value::array(
        parts.into_iter().take(limit).map(Value::string).collect(),
    ))
}

fn join(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let sep = str_arg(&args, 1).map(|s| s.to_string()).unwrap_or_default();
    let parts: Vec<String> = args[0]
        .members()
        .iter()
        .filter_map(|m| match m {
            Value::String(s) => Some(s.to_string()),
            _ => None,
        })
        .collect();
    Ok(Value::string(parts.join(&sep)))
}

// ---------------------------------------------------------------- numbers

fn js_round_half_up(x: f64) -> f64 {
    (x + 0.5).floor()
}

/// `$round`: half to even, with the decimal shift done on the decimal text as JSONata does.
pub(crate) fn round_half_even(n: f64, precision: i32) -> f64 {
    let shift = |v: f64, by: i32| -> f64 {
        let text = js_number_string(v);
        let (mant, exp) = match text.split_once('e') {
            Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
            None => (text.clone(), 0),
        };
        format!("{mant}e{}", exp + by).parse().unwrap_or(v)
    };
    let x = if precision != 0 {
        shift(n, precision)
    } else {
        n
    };
    let mut r = js_round_half_up(x);
    let diff = r - x;
    if diff.abs() == 0.5 && (r % 2.0).abs() == 1.0 {
        r -= 1.0;
    }
    let r = if precision != 0 {
        shift(r, -precision)
    } else {
        r
    };
    if r == 0.0 { 0.0 } else { r }
}

fn number(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(match &args[0] {
        Value::Undefined => Value::Undefined,
        Value::Number(n) => Value::Number(*n),
        Value::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => Value::Number(parse_number_string(s).ok_or_else(|| {
            Error::new(
                "D3030",
                format!("Unable to cast value to a number: \"{s}\""),
            )
        })?),
        other => {
            return Err(Error::new(
                "D3030",
                format!(
                    "Unable to cast value to a number: {}",
                    stringify(other, false)?
                ),
            ));
        }
    })
}

fn parse_number_string(s: &str) -> Option<f64> {
    let re = regex_cache(&NUMBER_RE, r"^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$");
    if re.is_match(s) {
        return s.parse::<f64>().ok().filter(|n| n.is_finite());
    }
    let lower = s.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = lower.strip_prefix(prefix)
            && !digits.is_empty()
        {
            return u64::from_str_radix(digits, radix).ok().map(|v| v as f64);
        }
    }
    None
}

static NUMBER_RE: OnceLock<regex::Regex> = OnceLock::new();

fn regex_cache(cell: &'static OnceLock<regex::Regex>, pattern: &str) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{e}")))
}

fn floor(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(num(&args, 0)
        .map(|n| Value::Number(n.floor()))
        .unwrap_or(Value::Undefined))
}

fn ceil(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(num(&args, 0)
        .map(|n| Value::Number(n.ceil()))
        .unwrap_or(Value::Undefined))
}

fn abs(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(num(&args, 0)
        .map(|n| Value::Number(n.abs()))
        .unwrap_or(Value::Undefined))
}

fn round(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(n) = num(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let precision = num(&args, 1).unwrap_or(0.0).trunc() as i32;
    Ok(Value::Number(round_half_even(n, precision)))
}

fn sqrt(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(n) = num(&args, 0) else {
        return Ok(Value::Undefined);
    };
    if n < 0.0 {
        return Err(Error::new(
            "D3060",
            format!(
                "The sqrt function cannot be applied to a negative number: {}",
                js_number_string(n)
            ),
        ));
    }
    Ok(Value::Number(n.sqrt()))
}

fn power(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let (Some(b), Some(e)) = (num(&args, 0), num(&args, 1)) else {
        return Ok(Value::Undefined);
    };
    let r = b.powf(e);
    if !r.is_finite() {
        return Err(Error::new(
            "D3061",
            format!(
                "The power function has resulted in a value that cannot be represented as a JSON number: base={}, exponent={}",
                js_number_string(b),
                js_number_string(e)
            ),
        ));
    }
    Ok(Value::Number(r))
}

/// `$random()` is uniform in [0, 1); `$random(seed)` (a Step Functions addition) always gives
/// the same number for the same integer seed.
fn random(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    match arg(&args, 0) {
        Value::Number(seed) => {
            if seed.fract() != 0.0 {
                return Err(Error::new(
                    "D3200",
                    "The seed of the random function must be an integer",
                ));
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(*seed as i64 as u64);
            Ok(Value::Number(rng.random::<f64>()))
        }
        _ => Ok(Value::Number(rand::rng().random::<f64>())),
    }
}

fn format_base(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(n) = num(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let radix = num(&args, 1).unwrap_or(10.0).trunc();
    if !(2.0..=36.0).contains(&radix) {
        return Err(Error::new(
            "D3100",
            format!(
                "The radix of the formatBase function must be between 2 and 36.  It was given {}",
                js_number_string(radix)
            ),
        ));
    }
    let v = round_half_even(n, 0);
    let neg = v < 0.0;
    let mut x = v.abs() as u128;
    let radix = radix as u128;
    let mut digits = Vec::new();
    loop {
        let d = (x % radix) as u32;
        digits.push(std::char::from_digit(d, radix as u32).unwrap_or('0'));
        x /= radix;
        if x == 0 {
            break;
        }
    }
    if neg {
        digits.push('-');
    }
    Ok(Value::string(digits.into_iter().rev().collect::<String>()))
}

/// `$formatNumber` for the common XPath pictures: `#`/`0` digits, `,` grouping, `.` decimal
/// point, a literal prefix and suffix, `%` and `‰`, and an exponent written `e0`.
fn format_number(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(n) = num(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let Some(picture) = str_arg(&args, 1) else {
        return Ok(Value::Undefined);
    };
    let picture = match picture.split_once(';') {
        Some((_, neg)) if n < 0.0 => return format_picture(-n, neg).map(Value::string),
        Some((pos, _)) => pos.to_string(),
        None => picture.to_string(),
    };
    let text = format_picture(n.abs(), &picture)?;
    Ok(Value::string(
        if n < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
            format!("-{text}")
        } else {
            text
        },
    ))
}

fn format_picture(n: f64, picture: &str) -> Result<String, Error> {
    let is_active = |c: char| matches!(c, '#' | '0'..='9' | ',' | '.' | 'e');
    let cs: Vec<char> = picture.chars().collect();
    let start = cs.iter().position(|&c| matches!(c, '#' | '0'..='9' | '.'));
    let Some(start) = start else {
        return Err(Error::new(
            "D3085",
            format!("The picture string must contain at least one digit: {picture}"),
        ));
    };
    let end = cs.len()
        - cs.iter()
            .rev()
            .position(|&c| matches!(c, '#' | '0'..='9'))
            .unwrap_or(0);
    let prefix: String = cs[..start].iter().collect();
    let mut body: String = cs[start..end.max(start)].iter().collect();
    let suffix: String = cs[end.max(start)..].iter().collect();
    if body.chars().any(|c| !is_active(c)) {
        return Err(Error::new(
            "D3087",
            format!("Unsupported picture string for $formatNumber: {picture}"),
        ));
    }
    let mut value = n;
    if suffix.contains('%') || prefix.contains('%') {
        value *= 100.0;
    } else if suffix.contains('‰') || prefix.contains('‰') {
        value *= 1000.0;
    }
    let mut exponent_text = None;
    if let Some((mant, exp)) = body.clone().split_once('e') {
        body = mant.to_string();
        let min_int = mant
            .split('.')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit())
            .count()
            .max(1) as i32;
        let mut e = 0;
        if value != 0.0 {
            e = value.abs().log10().floor() as i32 - (min_int - 1);
            value /= 10f64.powi(e);
        }
        exponent_text = Some(format!("{:0>width$}", e, width = exp.len()));
    }
    let (int_pic, frac_pic) = match body.split_once('.') {
        Some((i, f)) => (i.to_string(), f.to_string()),
        None => (body.clone(), String::new()),
    };
    let min_frac = frac_pic.chars().filter(|c| *c == '0').count();
    let max_frac = frac_pic.chars().filter(|c| *c == '0' || *c == '#').count();
    let mut min_int = int_pic.chars().filter(|c| c.is_ascii_digit()).count();
    if min_int == 0 && max_frac == 0 {
        // XPath: with no mandatory digit and no fraction, one integer digit is shown
        min_int = 1;
    }
    let rounded = round_half_even(value, max_frac as i32);
    let fixed = format!("{:.*}", max_frac, rounded);
    let (int_digits, frac_digits) = match fixed.split_once('.') {
        Some((i, f)) => (i.to_string(), f.to_string()),
        None => (fixed.clone(), String::new()),
    };
    let mut int_digits = int_digits.trim_start_matches('0').to_string();
    while int_digits.len() < min_int {
        int_digits.insert(0, '0');
    }
    let mut frac_digits = frac_digits;
    while frac_digits.len() > min_frac && frac_digits.ends_with('0') {
        frac_digits.pop();
    }
    // grouping: the size is the distance from the last ',' to the end of the integer picture
    if let Some(pos) = int_pic.rfind(',') {
        let size = int_pic.len() - pos - 1;
        if size > 0 {
            let digits: Vec<char> = int_digits.chars().collect();
            let mut grouped = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(size) {
                    grouped.push(',');
                }
                grouped.push(*c);
            }
            int_digits = grouped;
        }
    }
    let mut out = format!("{prefix}{int_digits}");
    if !frac_digits.is_empty() {
        out.push('.');
        out.push_str(&frac_digits);
    }
    if let Some(e) = exponent_text {
        out.push('e');
        out.push_str(&e);
    }
    out.push_str(&suffix);
    Ok(out)
}

// ---------------------------------------------------------------- booleans and types

fn boolean_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(boolean(&args[0])
        .map(Value::Bool)
        .unwrap_or(Value::Undefined))
}

fn not(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(boolean(&args[0])
        .map(|b| Value::Bool(!b))
        .unwrap_or(Value::Undefined))
}

fn exists(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(Value::Bool(!args[0].is_undefined()))
}

fn type_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(match &args[0] {
        Value::Undefined => Value::Undefined,
        other => Value::string(other.type_name()),
    })
}

fn error(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let message = str_arg(&args, 0)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "$error() function evaluated".to_string());
    Err(Error::new("D3137", message))
}

fn assert(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    match &args[0] {
        Value::Bool(true) => Ok(Value::Undefined),
        Value::Bool(false) => Err(Error::new(
            "D3141",
            str_arg(&args, 1)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "$assert() statement failed".to_string()),
        )),
        _ => Err(Error::new(
            "T0410",
            "Argument 1 of function \"assert\" does not match function signature",
        )),
    }
}

// ---------------------------------------------------------------- arrays and objects

fn map(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let items = args[0].members();
    let whole = Value::array(items.clone());
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let r = ev.call_back(
            &args[1],
            vec![item, Value::Number(i as f64), whole.clone()],
            input,
            env,
        )?;
        if !r.is_undefined() {
            out.push(r);
        }
    }
    Ok(Value::sequence(out))
}

fn filter(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let items = args[0].members();
    let whole = Value::array(items.clone());
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let r = ev.call_back(
            &args[1],
            vec![item.clone(), Value::Number(i as f64), whole.clone()],
            input,
            env,
        )?;
        if boolean(&r) == Some(true) {
            out.push(item);
        }
    }
    Ok(Value::sequence(out))
}

fn single(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let items = args[0].members();
    let whole = Value::array(items.clone());
    let mut found = None;
    for (i, item) in items.into_iter().enumerate() {
        let pass = if args[1].is_undefined() {
            true
        } else {
            let r = ev.call_back(
                &args[1],
                vec![item.clone(), Value::Number(i as f64), whole.clone()],
                input,
                env,
            )?;
            boolean(&r) == Some(true)
        };
        if pass {
            if found.is_some() {
                return Err(Error::new(
                    "D3138",
                    "The $single() function expected exactly 1 matching result.  Instead it matched more.",
                ));
            }
            found = Some(item);
        }
    }
    found.ok_or_else(|| {
        Error::new(
            "D3139",
            "The $single() function expected exactly 1 matching result.  Instead it matched 0.",
        )
    })
}

fn reduce(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    if let Value::Function(f) = &args[1]
        && f.arity() < 2
    {
        return Err(Error::new(
            "D3050",
            "The second argument of reduce function must be a function with at least two arguments",
        ));
    }
    let items = args[0].members();
    let whole = Value::array(items.clone());
    let mut iter = items.into_iter().enumerate();
    let mut acc = if args[2].is_undefined() {
        match iter.next() {
            Some((_, first)) => first,
            None => return Ok(Value::Undefined),
        }
    } else {
        args[2].clone()
    };
    for (i, item) in iter {
        acc = ev.call_back(
            &args[1],
            vec![acc, item, Value::Number(i as f64), whole.clone()],
            input,
            env,
        )?;
    }
    Ok(acc)
}

fn zip(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let lists: Vec<Vec<Value>> = args.iter().map(|a| a.members()).collect();
    let shortest = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::array(
        (0..shortest)
            .map(|i| Value::array(lists.iter().map(|l| l[i].clone()).collect()))
            .collect(),
    ))
}

fn sift(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    let Value::Object(obj) = &args[0] else {
        return Ok(Value::Undefined);
    };
    let mut out = IndexMap::new();
    for (k, v) in obj.iter() {
        let r = ev.call_back(
            &args[1],
            vec![v.clone(), Value::string(k.as_str()), args[0].clone()],
            input,
            env,
        )?;
        if boolean(&r) == Some(true) {
            out.insert(k.clone(), v.clone());
        }
    }
    if out.is_empty() {
        return Ok(Value::Undefined);
    }
    Ok(Value::Object(Rc::new(out)))
}

fn each(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    let Value::Object(obj) = &args[0] else {
        return Ok(Value::Undefined);
    };
    let mut out = Vec::new();
    for (k, v) in obj.iter() {
        let r = ev.call_back(
            &args[1],
            vec![v.clone(), Value::string(k.as_str()), args[0].clone()],
            input,
            env,
        )?;
        if !r.is_undefined() {
            out.push(r);
        }
    }
    Ok(Value::sequence(out))
}

fn keys(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let mut out: Vec<String> = Vec::new();
    for m in args[0].members() {
        if let Value::Object(obj) = m {
            for k in obj.keys() {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
    }
    Ok(Value::sequence(
        out.into_iter().map(Value::string).collect(),
    ))
}

fn lookup_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(key) = str_arg(&args, 1) else {
        return Ok(Value::Undefined);
    };
    Ok(lookup(&args[0], &key))
}

fn append_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let mut args = args.into_iter();
    let a = args.next().unwrap_or(Value::Undefined);
    let b = args.next().unwrap_or(Value::Undefined);
    Ok(append(a, b))
}

fn spread(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    match &args[0] {
        Value::Undefined => Ok(Value::Undefined),
        Value::Array(..) => {
            let mut out = Vec::new();
            for m in args[0].members() {
                if let Value::Object(obj) = m {
                    for (k, v) in obj.iter() {
                        out.push(single_entry(k, v));
                    }
                } else {
                    out.push(m);
                }
            }
            Ok(Value::sequence(out))
        }
        Value::Object(obj) => Ok(Value::sequence(
            obj.iter().map(|(k, v)| single_entry(k, v)).collect(),
        )),
        other => Ok(other.clone()),
    }
}

fn single_entry(k: &str, v: &Value) -> Value {
    let mut m = IndexMap::new();
    m.insert(k.to_string(), v.clone());
    Value::Object(Rc::new(m))
}

fn merge(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let mut out = IndexMap::new();
    for m in args[0].members() {
        if let Value::Object(obj) = m {
            for (k, v) in obj.iter() {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Value::Object(Rc::new(out)))
}

fn reverse(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let mut items = args[0].members();
    items.reverse();
    Ok(Value::array(items))
}

fn shuffle(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    use rand::seq::SliceRandom;
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let mut items = args[0].members();
    items.shuffle(&mut rand::rng());
    Ok(Value::array(items))
}

fn distinct(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    match &args[0] {
        Value::Array(items, _) => {
            let mut out: Vec<Value> = Vec::new();
            for item in items.iter() {
                if !out.iter().any(|o| deep_equal(o, item)) {
                    out.push(item.clone());
                }
            }
            Ok(Value::sequence(out))
        }
        other => Ok(other.clone()),
    }
}

fn sort(ev: &Evaluator, args: Vec<Value>, input: &Value, env: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let items = args[0].members();
    if items.len() <= 1 {
        return Ok(args[0].clone());
    }
    if args[1].is_undefined() {
        let all_numbers = items.iter().all(|i| matches!(i, Value::Number(_)));
        let all_strings = items.iter().all(|i| matches!(i, Value::String(_)));
        if !all_numbers && !all_strings {
            return Err(Error::new(
                "D3070",
                "The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function",
            ));
        }
        let mut items = items;
        items.sort_by(|a, b| match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal)
            }
            (Value::String(x), Value::String(y)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        });
        return Ok(Value::array(items));
    }
    // merge sort with the user's "a comes after b" function, stable like JSONata's
    let mut failure = None;
    let mut items = items;
    items.sort_by(|a, b| {
        if failure.is_some() {
            return std::cmp::Ordering::Equal;
        }
        match ev.call_back(&args[1], vec![a.clone(), b.clone()], input, env) {
            Ok(r) => {
                if boolean(&r) == Some(true) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                }
            }
            Err(e) => {
                failure = Some(e);
                std::cmp::Ordering::Equal
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Value::array(items))
}

// ---------------------------------------------------------------- encoding

fn base64encode(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())))
        .unwrap_or(Value::Undefined))
}

fn base64decode(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim().as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s.trim().as_bytes()))
        .map_err(|e| Error::new("D3137", format!("Invalid base64 text: {e}")))?;
    Ok(Value::string(String::from_utf8_lossy(&bytes).into_owned()))
}

fn percent_encode(s: &str, keep: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || keep.contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_url_component(
    _: &Evaluator,
    args: Vec<Value>,
    _: &Value,
    _: &Env,
) -> Result<Value, Error> {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(percent_encode(&s, "-_.!~*'()")))
        .unwrap_or(Value::Undefined))
}

fn encode_url(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(str_arg(&args, 0)
        .map(|s| Value::string(percent_encode(&s, "-_.!~*'();/?:@&=+$,#")))
        .unwrap_or(Value::Undefined))
}

fn decode_url(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let bad = || {
        Error::new(
            "D3140",
            format!("Malformed URL passed to $decodeUrlComponent(): \"{s}\""),
        )
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map(Value::string).map_err(|_| bad())
}

// ---------------------------------------------------------------- time

fn now(ev: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    if !arg(&args, 0).is_undefined() {
        return Err(Error::new(
            "D3133",
            "Picture strings for $now() are not supported by this evaluator; use $now() for ISO 8601",
        ));
    }
    Ok(Value::string(
        ev.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ))
}

fn millis(ev: &Evaluator, _: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(Value::Number(ev.now.timestamp_millis() as f64))
}

fn from_millis(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(ms) = num(&args, 0) else {
        return Ok(Value::Undefined);
    };
    if !arg(&args, 1).is_undefined() || !arg(&args, 2).is_undefined() {
        return Err(Error::new(
            "D3133",
            "Picture strings and timezones for $fromMillis() are not supported by this evaluator",
        ));
    }
    let t = chrono::DateTime::from_timestamp_millis(ms.trunc() as i64).ok_or_else(|| {
        Error::new(
            "D3137",
            format!("Timestamp out of range: {}", js_number_string(ms)),
        )
    })?;
    Ok(Value::string(
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ))
}

fn to_millis(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(s) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    if !arg(&args, 1).is_undefined() {
        return Err(Error::new(
            "D3133",
            "Picture strings for $toMillis() are not supported by this evaluator",
        ));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s) {
        return Ok(Value::Number(t.timestamp_millis() as f64));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(Value::Number(t.and_utc().timestamp_millis() as f64));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&s, fmt) {
            return Ok(Value::Number(t.and_utc().timestamp_millis() as f64));
        }
    }
    Err(Error::new(
        "D3110",
        format!("The timestamp string \"{s}\" does not match the ISO 8601 format"),
    ))
}

// ---------------------------------------------------------------- Step Functions additions

/// `$partition(array, size)`: consecutive chunks of `size`; the last may be shorter.
fn partition(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    if args[0].is_undefined() {
        return Ok(Value::Undefined);
    }
    let size = num(&args, 1).unwrap_or(0.0);
    if size.fract() != 0.0 || size < 1.0 {
        return Err(Error::new(
            "D3201",
            format!(
                "The chunk size of $partition must be a positive integer, got {}",
                js_number_string(size)
            ),
        ));
    }
    let items = args[0].members();
    Ok(Value::array(
        items
            .chunks(size as usize)
            .map(|c| Value::array(c.to_vec()))
            .collect(),
    ))
}

/// `$range(start, end, step)`: `start`, `start+step`, … up to and including `end`. The result
/// is a sequence, so a single member unwraps (`$range(1, 9, 9)` is `1`).
fn range_fn(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let (Some(start), Some(end)) = (num(&args, 0), num(&args, 1)) else {
        return Ok(Value::Undefined);
    };
    let step = num(&args, 2).unwrap_or(1.0);
    for (what, v) in [("start", start), ("end", end), ("step", step)] {
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(Error::new(
                "D3202",
                format!(
                    "The {what} of $range must be an integer, got {}",
                    js_number_string(v)
                ),
            ));
        }
    }
    if step == 0.0 {
        return Err(Error::new("D3202", "The step of $range must not be 0"));
    }
    let count = ((end - start) / step).floor() + 1.0;
    if count > MAX_RANGE {
        return Err(Error::new(
            "D2014",
            format!(
                "The size of the sequence allocated by $range must not exceed 1e7.  Attempted to allocate {}.",
                js_number_string(count)
            ),
        ));
    }
    let mut out = Vec::new();
    if count > 0.0 {
        for i in 0..count as u64 {
            out.push(Value::Number(start + i as f64 * step));
        }
    }
    Ok(Value::sequence(out))
}

/// `$hash(data, algorithm)`: lower-case hex digest of the UTF-8 text.
fn hash(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    use sha2::Digest;
    let Some(data) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let algorithm = str_arg(&args, 1).map(|s| s.to_string()).unwrap_or_default();
    let bytes = data.as_bytes();
    let digest: Vec<u8> = match algorithm.as_str() {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        other => {
            return Err(Error::new(
                "D3203",
                format!(
                    "The hash algorithm \"{other}\" is not supported; use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
                ),
            ));
        }
    };
    Ok(Value::string(hex::encode(digest)))
}

fn uuid_fn(_: &Evaluator, _: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    Ok(Value::string(uuid::Uuid::new_v4().to_string()))
}

/// `$parse(text)`: the JSON value the text holds.
fn parse_json(_: &Evaluator, args: Vec<Value>, _: &Value, _: &Env) -> Result<Value, Error> {
    let Some(text) = str_arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::new(
            "D3204",
            format!("The argument of $parse is not valid JSON: {e}"),
        )
    })?;
    Ok(Value::from_json(&json))
}
