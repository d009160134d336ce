//! Function signatures (`<s-nn?:s>`), used to check and complete arguments.

use crate::error::Error;
use crate::value::Value;

#[derive(Debug, Clone)]
pub(crate) struct Param {
    /// Accepted type symbols: b n s l a o f j x, or several for a union `(sao)`.
    types: String,
    /// For `a<n>`: the type every member must have.
    array_of: Option<String>,
    optional: bool,
    /// `-`: the context value is used when the argument is left out.
    context: bool,
    /// `+`: one or more arguments.
    variadic: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Signature {
    params: Vec<Param>,
}

impl Signature {
    pub(crate) fn parse(text: &str) -> Result<Signature, String> {
        let chars: Vec<char> = text.chars().collect();
        if chars.first() != Some(&'<') {
            return Err(format!("Function signature must start with '<': {text}"));
        }
        let mut i = 1;
        let mut params: Vec<Param> = Vec::new();
        while i < chars.len() {
            let c = chars[i];
            match c {
                ':' | '>' => break,
                'b' | 'n' | 's' | 'l' | 'a' | 'o' | 'f' | 'j' | 'x' => {
                    params.push(Param {
                        types: c.to_string(),
                        array_of: None,
                        optional: false,
                        context: false,
                        variadic: false,
                    });
                    i += 1;
                }
                'u' => {
                    params.push(Param {
                        types: "bnsl".into(),
                        array_of: None,
                        optional: false,
                        context: false,
                        variadic: false,
                    });
                    i += 1;
                }
                '(' => {
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == ')')
                        .ok_or_else(|| format!("Unterminated union type in signature {text}"))?;
                    let types: String = chars[i + 1..i + end]
                        .iter()
                        .map(|&c| {
                            if c == 'u' {
                                "bnsl".to_string()
                            } else {
                                c.to_string()
                            }
                        })
                        .collect();
                    params.push(Param {
                        types,
                        array_of: None,
                        optional: false,
                        context: false,
                        variadic: false,
                    });
                    i += end + 1;
                }
                '<' => {
                    // subtype of the previous `a` or `f`
                    let mut depth = 0;
                    let start = i;
                    while i < chars.len() {
                        if chars[i] == '<' {
                            depth += 1;
                        } else if chars[i] == '>' {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        i += 1;
                    }
                    let sub: String = chars[start + 1..i.min(chars.len())].iter().collect();
                    i += 1;
                    if let Some(last) = params.last_mut()
                        && last.types == "a"
                    {
                        let sub = sub.replace('u', "bnsl");
                        let sub = sub.trim_start_matches('(').trim_end_matches(')');
                        if sub != "x" && !sub.is_empty() {
                            last.array_of = Some(sub.to_string());
                        }
                    }
                }
                '?' => {
                    if let Some(last) = params.last_mut() {
                        last.optional = true;
                    }
                    i += 1;
                }
                '+' => {
                    if let Some(last) = params.last_mut() {
                        last.variadic = true;
                    }
                    i += 1;
                }
                '-' => {
                    if let Some(last) = params.last_mut() {
                        last.context = true;
                    }
                    i += 1;
                }
                other => return Err(format!("Unknown type symbol '{other}' in signature {text}")),
            }
        }
        Ok(Signature { params })
    }

    /// How many arguments a function with this signature takes when called back.
    pub(crate) fn arity(&self) -> usize {
        self.params.iter().filter(|p| !p.optional).count().max(1)
    }

    pub(crate) fn validate(
        &self,
        args: Vec<Value>,
        context: &Value,
        name: &str,
    ) -> Result<Vec<Value>, Error> {
        let required = self.params.iter().filter(|p| !p.optional).count();
        let mut out = Vec::with_capacity(self.params.len());
        let mut supplied = args.into_iter().peekable();
        let mut supplied_count = supplied.len();
        for (index, param) in self.params.iter().enumerate() {
            if param.variadic {
                let mut any = false;
                for arg in supplied.by_ref() {
                    out.push(check(param, arg, out.len() + 1, name)?);
                    any = true;
                }
                if !any && !param.optional {
                    return Err(mismatch(index + 1, name));
                }
                return Ok(out);
            }
            let fits = supplied.peek().is_some_and(|a| matches(param, a));
            let use_context =
                param.context && (supplied.peek().is_none() || supplied_count < required || !fits);
            if use_context {
                out.push(check(param, context.clone(), index + 1, name)?);
                supplied_count += 1;
                continue;
            }
            match supplied.next() {
                Some(arg) => out.push(check(param, arg, index + 1, name)?),
                None => {
                    if param.optional {
                        out.push(Value::Undefined);
                    } else {
                        // missing arguments are undefined, as in JSONata
                        out.push(Value::Undefined);
                    }
                }
            }
        }
        if supplied.next().is_some() {
            return Err(mismatch(out.len() + 1, name));
        }
        Ok(out)
    }
}

fn mismatch(index: usize, name: &str) -> Error {
    Error::new(
        "T0410",
        format!("Argument {index} of function \"{name}\" does not match function signature"),
    )
}

fn symbol(v: &Value) -> char {
    match v {
        Value::Undefined => 'm',
        Value::Null => 'l',
        Value::Bool(_) => 'b',
        Value::Number(_) => 'n',
        Value::String(_) => 's',
        Value::Array(..) => 'a',
        Value::Object(_) => 'o',
        Value::Function(_) => 'f',
        Value::Regex(_) => 'f',
    }
}

fn type_ok(types: &str, v: &Value) -> bool {
    let s = symbol(v);
    s == 'm' || types.contains('x') || types.contains(s) || (types.contains('j') && s != 'f')
}

fn matches(param: &Param, v: &Value) -> bool {
    type_ok(&param.types, v) || (param.types.contains('a') && symbol(v) != 'm')
}

fn check(param: &Param, arg: Value, index: usize, name: &str) -> Result<Value, Error> {
    if matches!(arg, Value::Undefined) {
        return Ok(arg);
    }
    if type_ok(&param.types, &arg) {
        if let (Some(sub), Value::Array(items, _)) = (&param.array_of, &arg)
            && !items.iter().all(|item| type_ok(sub, item))
        {
            return Err(Error::new(
                "T0412",
                format!(
                    "Argument {index} of function \"{name}\" must be an array of {}",
                    type_name(sub)
                ),
            ));
        }
        return Ok(arg);
    }
    if param.types.contains('a') {
        // a single value where an array is expected is treated as an array of one
        let wrapped = Value::array(vec![arg]);
        if let (Some(sub), Value::Array(items, _)) = (&param.array_of, &wrapped)
            && !items.iter().all(|item| type_ok(sub, item))
        {
            return Err(Error::new(
                "T0412",
                format!(
                    "Argument {index} of function \"{name}\" must be an array of {}",
                    type_name(sub)
                ),
            ));
        }
        return Ok(wrapped);
    }
    Err(mismatch(index, name))
}

fn type_name(sym: &str) -> &'static str {
    match sym {
        "n" => "numbers",
        "s" => "strings",
        "b" => "booleans",
        "o" => "objects",
        "a" => "arrays",
        "f" => "functions",
        _ => "values of the expected type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_fills_a_missing_first_argument() {
        let sig = Signature::parse("<s-s:s>").unwrap();
        let ctx = Value::string("ctx");
        let got = sig.validate(vec![Value::string("x")], &ctx, "f").unwrap();
        assert!(
            matches!(&got[..], [Value::String(a), Value::String(b)] if &**a == "ctx" && &**b == "x")
        );
        let got = sig
            .validate(vec![Value::string("a"), Value::string("b")], &ctx, "f")
            .unwrap();
        assert!(matches!(&got[0], Value::String(a) if &**a == "a"));
    }

    #[test]
    fn single_values_become_arrays_and_members_are_checked() {
        let sig = Signature::parse("<a<n>:n>").unwrap();
        let got = sig
            .validate(vec![Value::Number(1.0)], &Value::Undefined, "f")
            .unwrap();
        assert!(matches!(&got[0], Value::Array(items, _) if items.len() == 1));
        let e = sig
            .validate(vec![Value::string("x")], &Value::Undefined, "f")
            .unwrap_err();
        assert_eq!(e.code, "T0412");
    }

    #[test]
    fn unions_optionals_and_too_many_arguments() {
        let sig = Signature::parse("<s-(sf)n?:s>").unwrap();
        assert_eq!(sig.arity(), 2);
        let e = sig
            .validate(
                vec![
                    Value::string("a"),
                    Value::string("b"),
                    Value::Number(1.0),
                    Value::Null,
                ],
                &Value::Undefined,
                "f",
            )
            .unwrap_err();
        assert_eq!(e.code, "T0410");
        assert!(Signature::parse("<q>").is_err());
        assert!(Signature::parse("s").is_err());
    }
}
