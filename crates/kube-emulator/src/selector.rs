//! Label selectors (`labelSelector=`) and field selectors (`fieldSelector=`) as the API server
//! parses and matches them.

use std::collections::BTreeMap;
use std::fmt;

use crate::names;

/// Why a selector was refused (answered `400 BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// One value for `=`/`!=`, the set for `in`/`notin`, none otherwise.
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            // As in Kubernetes: a missing key satisfies `!=` and `notin`.
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(v))
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={}", self.key, self.values.join("")),
            Operator::NotEquals => write!(f, "{}!={}", self.key, self.values.join("")),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
        }
    }
}

/// A parsed label selector: every requirement must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let terms: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", terms.join(","))
    }
}

impl LabelSelector {
    /// Parses `app=x,tier!=db,env in (a,b),!legacy,gpu`.
    pub fn parse(text: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        for term in split_top_level(text)? {
            let term = term.trim();
            if term.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(SelectorError(format!("empty requirement in {text:?}")));
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SelectorError(format!("unbalanced ')' in {text:?}")))?;
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!("unbalanced '(' in {text:?}")));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn parse_requirement(term: &str) -> Result<Requirement, SelectorError> {
    if let Some(rest) = term.strip_prefix('!') {
        let key = rest.trim();
        check_key(key, term)?;
        return Ok(Requirement {
            key: key.to_string(),
            operator: Operator::DoesNotExist,
            values: Vec::new(),
        });
    }
    let key_end = term.find(|c: char| !is_key_char(c)).unwrap_or(term.len());
    let key = &term[..key_end];
    check_key(key, term)?;
    let rest = term[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(Requirement {
            key: key.to_string(),
            operator: Operator::Exists,
            values: Vec::new(),
        });
    }
    let (operator, value_text) = if let Some(v) = rest.strip_prefix("==") {
        (Operator::Equals, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (Operator::NotEquals, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (Operator::Equals, v)
    } else if let Some(v) = rest.strip_prefix("notin") {
        (Operator::NotIn, v)
    } else if let Some(v) = rest.strip_prefix("in") {
        (Operator::In, v)
    } else {
        return Err(SelectorError(format!(
            "{term:?}: found '{rest}', expected: in, notin, =, ==, !="
        )));
    };
    let values = match operator {
        Operator::In | Operator::NotIn => {
            // `in` must be a word of its own: `inx` is no operator.
            if !value_text.starts_with([' ', '\t', '(']) {
                return Err(SelectorError(format!(
                    "{term:?}: expected '(' after operator"
                )));
            }
            let inner = value_text
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| SelectorError(format!("{term:?}: expected '(values)'")))?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(SelectorError(format!(
                    "{term:?}: for 'in', 'notin' operators, values set can't be empty"
                )));
            }
            values
        }
        _ => vec![value_text.trim().to_string()],
    };
    for value in &values {
        names::label_value(value)
            .map_err(|e| SelectorError(format!("{term:?}: invalid label value: {value:?}: {e}")))?;
    }
    Ok(Requirement {
        key: key.to_string(),
        operator,
        values,
    })
}

fn check_key(key: &str, term: &str) -> Result<(), SelectorError> {
    names::label_key(key)
        .map_err(|e| SelectorError(format!("{term:?}: invalid label key {key:?}: {e}")))
}

/// A field selector: `metadata.name=x,status.phase!=Running`. Only `=`, `==` and `!=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the selector; `fields` are the field paths the resource supports.
    pub fn parse(text: &str, fields: &[&str]) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!("invalid field selector: {term:?}")));
            };
            let field = field.trim();
            if !fields.contains(&field) {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    /// `lookup` gives an object's value of a field path ("" when unset).
    pub fn matches(&self, lookup: impl Fn(&str) -> String) -> bool {
        self.terms
            .iter()
            .all(|(field, equal, value)| (lookup(field) == *value) == *equal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("app", "runner"), ("env", "ci")]);
        for (selector, want) in [
            ("", true),
            ("app=runner", true),
            ("app==runner", true),
            ("app!=runner", false),
            ("missing!=x", true),
            ("env in (ci, prod)", true),
            ("env notin (ci)", false),
            ("missing notin (ci)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=runner,env in(ci)", true),
            ("app=runner,env=prod", false),
            ("runway.dev/pool=x", false),
        ] {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&l), want, "{selector}");
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "app=a b",
            "a,,b",
            "env in ()",
            "env in ci",
            "env>3",
            "(",
            "x)",
            "-bad=1",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields() {
        let s = FieldSelector::parse(
            "metadata.name=a,status.phase!=Running",
            &["metadata.name", "status.phase"],
        )
        .unwrap();
        assert!(s.matches(|f| if f == "metadata.name" {
            "a".into()
        } else {
            "Pending".into()
        }));
        assert!(FieldSelector::parse("spec.x=1", &["metadata.name"]).is_err());
    }
}
