//! Reading `template.yaml` for the deploy tests: the CloudFormation short forms (`!Ref`,
//! `!GetAtt`, `!Sub`, ...) become their long JSON forms (`{"Ref": ...}`, ...), so the tests
//! work on plain `serde_json::Value`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Why the template could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("{0}")]
    Shape(String),
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A SAM/CloudFormation template as JSON.
#[derive(Debug, Clone)]
pub struct Template {
    pub root: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Template::parse(&text).map_err(|error| match error {
            TemplateError::Yaml { source, .. } => TemplateError::Yaml {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|source| TemplateError::Yaml {
                path: "-".into(),
                source,
            })?;
        Ok(Template {
            root: to_json(yaml)?,
        })
    }

    /// Every resource, by logical id.
    pub fn resources(&self) -> BTreeMap<String, &Value> {
        self.root
            .get("Resources")
            .and_then(Value::as_object)
            .map(|resources| resources.iter().map(|(k, v)| (k.clone(), v)).collect())
            .unwrap_or_default()
    }

    /// The resources of one type, by logical id.
    pub fn resources_of_type(&self, kind: &str) -> BTreeMap<String, &Value> {
        self.resources()
            .into_iter()
            .filter(|(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.root.get("Resources")?.get(logical_id)
    }

    /// Every `AWS::Serverless::StateMachine`, by logical id.
    pub fn state_machines(&self) -> BTreeMap<String, &Value> {
        self.resources_of_type("AWS::Serverless::StateMachine")
    }

    /// Every `AWS::Serverless::Function`, by logical id.
    pub fn functions(&self) -> BTreeMap<String, &Value> {
        self.resources_of_type("AWS::Serverless::Function")
    }
}

/// The function a definition substitution names (`!GetAtt Function.Arn`), if it names one.
pub fn substituted_function(value: &Value) -> Option<&str> {
    match value.get("Fn::GetAtt")?.as_array()?.as_slice() {
        [function, attribute] if attribute == "Arn" => function.as_str(),
        _ => None,
    }
}

/// The state machine definitions of the repository: `statemachines/*.asl.json`, relative to
/// the repository root, sorted.
pub fn asl_definitions(root: &Path) -> Result<Vec<String>, TemplateError> {
    let dir = root.join("statemachines");
    let entries = std::fs::read_dir(&dir).map_err(|source| TemplateError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".asl.json"))
        .map(|name| format!("statemachines/{name}"))
        .collect();
    names.sort();
    Ok(names)
}

/// YAML to JSON, with `!Tag value` as `{"Fn::Tag": value}` (`!Ref` as `{"Ref": value}`;
/// `!GetAtt A.B` as `{"Fn::GetAtt": ["A", "B"]}`).
fn to_json(value: serde_yaml::Value) -> Result<Value, TemplateError> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n)
            .map_err(|error| TemplateError::Shape(format!("number {n}: {error}")))?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err(TemplateError::Shape(format!(
                            "a mapping key is not a string: {other:?}"
                        )));
                    }
                };
                object.insert(key, to_json(value)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            match name {
                "Ref" => serde_json::json!({ "Ref": inner }),
                "Condition" => serde_json::json!({ "Condition": inner }),
                "GetAtt" => {
                    let parts = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((resource, attribute)) => {
                                vec![Value::from(resource), Value::from(attribute)]
                            }
                            None => {
                                return Err(TemplateError::Shape(format!(
                                    "!GetAtt {s} names no attribute"
                                )));
                            }
                        },
                        Value::Array(parts) => parts,
                        other => {
                            return Err(TemplateError::Shape(format!("!GetAtt {other}")));
                        }
                    };
                    serde_json::json!({ "Fn::GetAtt": parts })
                }
                other => {
                    let mut object = Map::new();
                    object.insert(format!("Fn::{other}"), inner);
                    Value::Object(object)
                }
            }
        }
    })
}

/// Every `${Name}` in `text` (not `${!Literal}`, not `${AWS::...}` pseudo parameters).
pub fn substitution_variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') && !name.contains("::") && !name.is_empty() {
            names.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_become_long_forms() {
        let template = Template::parse(
            "Resources:\n  A:\n    Type: X\n    Properties:\n      R: !Ref B\n      G: !GetAtt B.Arn\n      S: !Sub \"x-${B}\"\n      J: !Join [\",\", !Ref L]\n",
        )
        .unwrap();
        let properties = &template.resource("A").unwrap()["Properties"];
        assert_eq!(properties["R"], serde_json::json!({"Ref": "B"}));
        assert_eq!(
            properties["G"],
            serde_json::json!({"Fn::GetAtt": ["B", "Arn"]})
        );
        assert_eq!(properties["S"], serde_json::json!({"Fn::Sub": "x-${B}"}));
        assert_eq!(
            properties["J"],
            serde_json::json!({"Fn::Join": [",", {"Ref": "L"}]})
        );
    }

    #[test]
    fn substitution_variables_skip_literals_and_pseudo_parameters() {
        assert_eq!(
            substitution_variables("${A} ${AWS::Region} ${!ec2:InstanceID} ${B.Arn} ${"),
            ["A", "B.Arn"]
        );
    }

    #[test]
    fn a_substituted_function_is_a_getatt_of_its_arn() {
        let value = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(
            substituted_function(&value(r#"{"Fn::GetAtt": ["ReapFunction", "Arn"]}"#)),
            Some("ReapFunction")
        );
        for other in [
            r#"{"Fn::GetAtt": ["ReapFunction", "Name"]}"#,
            r#"{"Fn::GetAtt": ["ReapFunction"]}"#,
            r#"{"Ref": "ReapFunction"}"#,
            r#""arn:aws:lambda:us-east-1:123456789012:function:x""#,
        ] {
            assert_eq!(substituted_function(&value(other)), None, "{other}");
        }
    }

    #[test]
    fn the_definitions_are_the_asl_files_of_statemachines() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        std::fs::create_dir(dir.join("statemachines")).unwrap();
        for name in ["b.asl.json", "a.asl.json", "notes.md", "c.json"] {
            std::fs::write(dir.join("statemachines").join(name), "{}").unwrap();
        }
        assert_eq!(
            asl_definitions(&dir).unwrap(),
            ["statemachines/a.asl.json", "statemachines/b.asl.json"]
        );
        assert!(
            asl_definitions(&dir.join("missing")).is_err(),
            "a missing directory is an error"
        );
    }

    #[test]
    fn bad_yaml_is_an_error() {
        assert!(Template::parse("a: [").is_err());
        assert!(Template::parse("? [1]\n: x\n").is_err());
    }
}
