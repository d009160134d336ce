//! Choice rule comparisons, as AWS evaluates them.

use serde_json::Value;

use crate::definition::{Kind, Operator, Relation};
// The States Language's timestamps are parsed where Wait states read them too.
pub use crate::definition::parse_timestamp;

/// Matches `text` against a `StringMatches` pattern: `*` matches any run of characters,
/// `\*` a literal star and `\\` a literal backslash.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Token {
        Char(char),
        Star,
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => tokens.push(Token::Char(escaped)),
                None => tokens.push(Token::Char('\\')),
            },
            '*' => tokens.push(Token::Star),
            other => tokens.push(Token::Char(other)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic wildcard matching with backtracking on the last star.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < tokens.len() && tokens[p] == Token::Char(text[t]) {
            t += 1;
            p += 1;
        } else if p < tokens.len() && tokens[p] == Token::Star {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < tokens.len() && tokens[p] == Token::Star {
        p += 1;
    }
    p == tokens.len()
}

fn relate<T: PartialOrd>(a: T, b: T, relation: Relation) -> bool {
    match relation {
        Relation::Equals => a == b,
        Relation::LessThan => a < b,
        Relation::GreaterThan => a > b,
        Relation::LessThanEquals => a <= b,
        Relation::GreaterThanEquals => a >= b,
    }
}

/// Evaluates a comparison of `value` (the `Variable`, `None` if absent) with `operand`.
pub fn compare(operator: Operator, value: Option<&Value>, operand: &Value) -> bool {
    match operator {
        Operator::IsPresent => value.is_some() == (operand == &Value::Bool(true)),
        Operator::IsNull => value.is_some_and(Value::is_null) == (operand == &Value::Bool(true)),
        Operator::IsNumeric => {
            value.is_some_and(Value::is_number) == (operand == &Value::Bool(true))
        }
        Operator::IsString => {
            value.is_some_and(Value::is_string) == (operand == &Value::Bool(true))
        }
        Operator::IsBoolean => {
            value.is_some_and(Value::is_boolean) == (operand == &Value::Bool(true))
        }
        Operator::IsTimestamp => {
            value
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .is_some()
                == (operand == &Value::Bool(true))
        }
        Operator::StringMatches => match (value.and_then(Value::as_str), operand.as_str()) {
            (Some(text), Some(pattern)) => string_matches(text, pattern),
            _ => false,
        },
        Operator::Compare(kind, relation) => {
            let Some(value) = value else { return false };
            match kind {
                Kind::String => match (value.as_str(), operand.as_str()) {
                    (Some(a), Some(b)) => relate(a, b, relation),
                    _ => false,
                },
                Kind::Numeric => match (value.as_f64(), operand.as_f64()) {
                    (Some(a), Some(b)) if value.is_number() && operand.is_number() => {
                        relate(a, b, relation)
                    }
                    _ => false,
                },
                Kind::Boolean => match (value.as_bool(), operand.as_bool()) {
                    (Some(a), Some(b)) => relate(a, b, relation),
                    _ => false,
                },
                Kind::Timestamp => match (
                    value.as_str().and_then(parse_timestamp),
                    operand.as_str().and_then(parse_timestamp),
                ) {
                    (Some(a), Some(b)) => relate(a, b, relation),
                    _ => false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_aws() {
        assert!(string_matches("log-2026.txt", "log-*.txt"));
        assert!(string_matches("abc", "*"));
        assert!(string_matches("", "*"));
        assert!(!string_matches("abc", "ab"));
        assert!(string_matches("a*c", "a\\*c"));
        assert!(!string_matches("abc", "a\\*c"));
        assert!(string_matches("aXbYc", "a*b*c"));
    }

    #[test]
    fn timestamps_need_a_zone_and_upper_case_t() {
        assert!(parse_timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(parse_timestamp("2016-03-14T01:59:00.123+02:00").is_some());
        assert!(parse_timestamp("2016-03-14t01:59:00Z").is_none());
        assert!(parse_timestamp("2016-03-14T01:59:00").is_none());
        assert!(parse_timestamp("2016-03-14").is_none());
    }
}
