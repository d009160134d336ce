//! The objects, the global `resourceVersion`, and the change history watches replay.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::names;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, Cause, Kind};

/// How many changes a watch may replay from: older `resourceVersion`s get `410 Expired`.
const HISTORY: usize = 10_000;

/// `(kind, namespace, name)`; namespaces have the namespace `""`.
pub type Key = (Kind, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_version: u64,
    pub kind: Kind,
    pub event_type: EventType,
    pub namespace: String,
    pub name: String,
    pub object: Value,
    /// The object before a modification (to tell a watch with a selector that it left it).
    pub old: Option<Value>,
}

pub struct Store {
    resource_version: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    changes: broadcast::Sender<Arc<Change>>,
}

pub fn now_rfc3339() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    string_map(&object["metadata"]["labels"])
}

pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// A field path's value for field selectors.
pub fn field_of(object: &Value, field: &str) -> String {
    let mut at = object;
    for part in field.split('.') {
        at = &at[part];
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && object["metadata"]["namespace"].as_str() != Some(ns)
        {
            return false;
        }
        self.labels.matches(&labels_of(object)) && self.fields.matches(|f| field_of(object, f))
    }
}

impl Store {
    pub fn new(changes: broadcast::Sender<Arc<Change>>) -> Store {
        Store {
            resource_version: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            changes,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind, namespace.to_string(), name.to_string()))
    }

    pub fn require(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.get(kind, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, name))
    }

    pub fn list(&self, kind: Kind, selection: &Selection) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, _, _), object)| *k == kind && selection.matches(object))
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Changes after `resource_version`, or `None` when they are no longer all kept.
    pub fn changes_since(&self, resource_version: u64) -> Option<Vec<Arc<Change>>> {
        let oldest = self
            .history
            .front()
            .map(|c| c.resource_version)
            .unwrap_or(self.resource_version + 1);
        if resource_version + 1 < oldest && resource_version < self.resource_version {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|c| c.resource_version > resource_version)
                .cloned()
                .collect(),
        )
    }

    pub fn history(&self) -> impl Iterator<Item = &Arc<Change>> {
        self.history.iter()
    }

    /// Stores (or removes, for `Deleted`) an object under a new `resourceVersion`, and
    /// tells the watches.
    pub fn commit(&mut self, kind: Kind, event_type: EventType, mut object: Value) -> Value {
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = name_of(&object).to_string();
        let key = (kind, namespace.clone(), name.clone());
        let old = if event_type == EventType::Deleted {
            self.objects.remove(&key)
        } else {
            self.objects.insert(key, object.clone())
        };
        let change = Arc::new(Change {
            resource_version: self.resource_version,
            kind,
            event_type,
            namespace,
            name,
            object: object.clone(),
            old: old.filter(|_| event_type == EventType::Modified),
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // No watch listening is fine.
        let _ = self.changes.send(change);
        object
    }

    /// Creates an object: validates it, fills in the server's metadata and defaults.
    pub fn create(&mut self, kind: Kind, namespace: &str, body: Value) -> Result<Value, ApiError> {
        let mut object = expect_object(kind, body)?;
        let metadata = object
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            })
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        if metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            let Some(prefix) = metadata.get("generateName").and_then(Value::as_str) else {
                return Err(ApiError::invalid(
                    kind,
                    "",
                    &[Cause::required("metadata.name")],
                ));
            };
            let name = format!("{prefix}{}", random_suffix());
            metadata.insert("name".into(), json!(name));
        }
        if kind.namespaced() {
            match metadata.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace \
                         sent on the request",
                    ));
                }
                _ => {}
            }
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        metadata.insert("creationTimestamp".into(), json!(now_rfc3339()));
        metadata.remove("resourceVersion");
        metadata.remove("deletionTimestamp");
        metadata.remove("deletionGracePeriodSeconds");
        validate(kind, &object)?;
        if kind.namespaced() && self.get(Kind::Namespace, "", namespace).is_none() {
            return Err(ApiError::not_found(Kind::Namespace, namespace));
        }
        let ns_key = if kind.namespaced() { namespace } else { "" };
        if self.get(kind, ns_key, &name).is_some() {
            return Err(ApiError::already_exists(kind, &name));
        }
        default_object(kind, &mut object)?;
        Ok(self.commit(kind, EventType::Added, object))
    }

    /// Replaces an object (`PUT`, or a patch's result). With `status_only`, only `status`
    /// changes (the `/status` subresource); otherwise a pod's `status` is kept.
    pub fn replace(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let ns_key = if kind.namespaced() { namespace } else { "" };
        let old = self.require(kind, ns_key, name)?;
        let mut object = expect_object(kind, body)?;
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        if let Some(body_name) = object["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != old["metadata"]["resourceVersion"].as_str().unwrap_or("")
        {
            return Err(ApiError::conflict(kind, name));
        }
        if status_only {
            let status = object["status"].take();
            object = old.clone();
            object["status"] = status;
        } else {
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generateName",
            ] {
                match old["metadata"].get(field) {
                    Some(value) => object["metadata"][field] = value.clone(),
                    None => {
                        if let Some(m) = object["metadata"].as_object_mut() {
                            m.remove(field);
                        }
                    }
                }
            }
            if kind != Kind::Secret {
                object["status"] = old["status"].clone();
            }
            validate(kind, &object)?;
            default_object(kind, &mut object)?;
        }
        if object == old {
            // No change: Kubernetes keeps the resourceVersion and sends no event.
            return Ok(old);
        }
        Ok(self.commit(kind, EventType::Modified, object))
    }

    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let ns_key = if kind.namespaced() { namespace } else { "" };
        let mut object = self.require(kind, ns_key, name)?;
        // Deletion is immediate: the object leaves with its deletion marked, no grace period.
        object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if kind == Kind::Namespace {
            object["status"]["phase"] = json!("Terminating");
        }
        Ok(self.commit(kind, EventType::Deleted, object))
    }
}

fn expect_object(kind: Kind, body: Value) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if let Some(k) = body["kind"].as_str()
        && k != kind.kind()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data (v1) does not match the expected kind {}: got {k}",
            kind.kind()
        )));
    }
    let mut body = body;
    body["kind"] = json!(kind.kind());
    body["apiVersion"] = json!("v1");
    Ok(body)
}

/// Names, labels, and what each kind requires.
fn validate(kind: Kind, object: &Value) -> Result<(), ApiError> {
    let name = name_of(object).to_string();
    let mut causes = Vec::new();
    let check_name = if kind == Kind::Namespace {
        names::dns_label(&name)
    } else {
        names::dns_subdomain(&name)
    };
    if let Err(why) = check_name {
        causes.push(Cause::invalid("metadata.name", &name, &why));
    }
    for (field, map) in [
        ("metadata.labels", &object["metadata"]["labels"]),
        ("metadata.annotations", &object["metadata"]["annotations"]),
    ] {
        match map {
            Value::Null => {}
            Value::Object(entries) => {
                for (key, value) in entries {
                    if let Err(why) = names::label_key(key) {
                        causes.push(Cause::invalid(field, key, &why));
                    }
                    match value.as_str() {
                        Some(v) if field == "metadata.labels" => {
                            if let Err(why) = names::label_value(v) {
                                causes.push(Cause::invalid(field, v, &why));
                            }
                        }
                        Some(_) => {}
                        None => causes.push(Cause::invalid(
                            field,
                            &value.to_string(),
                            "must be a string",
                        )),
                    }
                }
            }
            other => causes.push(Cause::invalid(field, &other.to_string(), "must be a map")),
        }
    }
    match kind {
        Kind::Pod => {
            let containers = object["spec"]["containers"].as_array();
            match containers {
                Some(list) if !list.is_empty() => {
                    for (i, container) in list.iter().enumerate() {
                        let cname = container["name"].as_str().unwrap_or_default();
                        if cname.is_empty() {
                            causes.push(Cause::required(&format!("spec.containers[{i}].name")));
                        } else if let Err(why) = names::dns_label(cname) {
                            causes.push(Cause::invalid(
                                &format!("spec.containers[{i}].name"),
                                cname,
                                &why,
                            ));
                        }
                        if container["image"].as_str().unwrap_or_default().is_empty() {
                            causes.push(Cause::required(&format!("spec.containers[{i}].image")));
                        }
                    }
                }
                _ => causes.push(Cause::required("spec.containers")),
            }
        }
        Kind::Secret => {
            if let Some(data) = object["data"].as_object() {
                for (key, value) in data {
                    let decoded = value
                        .as_str()
                        .map(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
                    if decoded != Some(true) {
                        causes.push(Cause::invalid(
                            &format!("data[{key}]"),
                            "",
                            "must be base64-encoded bytes",
                        ));
                    }
                }
            }
        }
        Kind::Namespace => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind, &name, &causes))
    }
}

/// What the API server (and, for pods, the admission chain) fills in.
fn default_object(kind: Kind, object: &mut Value) -> Result<(), ApiError> {
    match kind {
        Kind::Secret => {
            // stringData is write-only: merged into data, never stored.
            let string_data = object
                .as_object_mut()
                .and_then(|o| o.remove("stringData"))
                .unwrap_or(Value::Null);
            if let Some(entries) = string_data.as_object() {
                if !object["data"].is_object() {
                    object["data"] = json!({});
                }
                for (key, value) in entries {
                    let text = value.as_str().ok_or_else(|| {
                        ApiError::bad_request(format!("stringData[{key}] must be a string"))
                    })?;
                    object["data"][key] =
                        json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            if object["type"].as_str().unwrap_or_default().is_empty() {
                object["type"] = json!("Opaque");
            }
        }
        Kind::Namespace => {
            let name = name_of(object).to_string();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if object["spec"]["finalizers"].is_null() {
                object["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            if object["status"]["phase"].is_null() {
                object["status"] = json!({"phase": "Active"});
            }
        }
        Kind::Pod => {
            let spec = &mut object["spec"];
            for (field, value) in [
                ("restartPolicy", json!("Always")),
                ("dnsPolicy", json!("ClusterFirst")),
                ("schedulerName", json!("default-scheduler")),
                ("terminationGracePeriodSeconds", json!(30)),
                ("serviceAccountName", json!("default")),
                ("serviceAccount", json!("default")),
                ("securityContext", json!({})),
                ("enableServiceLinks", json!(true)),
                ("preemptionPolicy", json!("PreemptLowerPriority")),
                ("priority", json!(0)),
            ] {
                if spec[field].is_null() {
                    spec[field] = value;
                }
            }
            if let Some(containers) = spec["containers"].as_array_mut() {
                for container in containers {
                    let image = container["image"].as_str().unwrap_or_default();
                    let tagged = image
                        .rsplit('/')
                        .next()
                        .is_some_and(|last| last.contains(':') || last.contains('@'));
                    let pull = if !tagged || image.ends_with(":latest") {
                        "Always"
                    } else {
                        "IfNotPresent"
                    };
                    for (field, value) in [
                        ("imagePullPolicy", json!(pull)),
                        ("terminationMessagePath", json!("/dev/termination-log")),
                        ("terminationMessagePolicy", json!("File")),
                        ("resources", json!({})),
                    ] {
                        if container[field].is_null() {
                            container[field] = value;
                        }
                    }
                }
            }
            if object["status"]["phase"].is_null() {
                object["status"] = json!({
                    "phase": "Pending",
                    "qosClass": "BestEffort",
                });
            }
        }
    }
    Ok(())
}

/// Five characters from the alphabet Kubernetes uses for `generateName` (no vowels).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// RFC 7386 JSON merge patch (also used for strategic merge patches: lists are replaced
/// rather than merged by key).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(entries) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in entries {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace`, `test`, `copy`, `move`.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let operations = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array"))?;
    for operation in operations {
        let op = operation["op"].as_str().unwrap_or_default();
        let path = operation["path"].as_str().unwrap_or_default();
        let fail = |what: &str| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {what}"),
            )
        };
        match op {
            "add" | "replace" => {
                let value = operation["value"].clone();
                pointer_set(target, path, value, op == "add").map_err(|e| fail(&e))?;
            }
            "remove" => {
                pointer_remove(target, path).map_err(|e| fail(&e))?;
            }
            "test" => {
                if target.pointer(path) != Some(&operation["value"]) {
                    return Err(fail(&format!("testing value {path} failed")));
                }
            }
            "copy" | "move" => {
                let from = operation["from"].as_str().unwrap_or_default();
                let value = target
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| fail(&format!("missing value at {from}")))?;
                if op == "move" {
                    pointer_remove(target, from).map_err(|e| fail(&e))?;
                }
                pointer_set(target, path, value, true).map_err(|e| fail(&e))?;
            }
            other => return Err(fail(&format!("unknown operation {other:?}"))),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid path {path:?}"))?;
    Ok((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn pointer_set(target: &mut Value, path: &str, value: Value, add: bool) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let container = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("missing path {parent:?}"))?;
    match container {
        Value::Object(map) => {
            if !add && !map.contains_key(&last) {
                return Err(format!("replace of missing {path:?}"));
            }
            map.insert(last, value);
        }
        Value::Array(list) => {
            if last == "-" && add {
                list.push(value);
            } else {
                let index: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
                if add && index <= list.len() {
                    list.insert(index, value);
                } else if !add && index < list.len() {
                    list[index] = value;
                } else {
                    return Err(format!("index {index} out of range"));
                }
            }
        }
        _ => return Err(format!("{parent:?} is not a container")),
    }
    Ok(())
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    let container = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("missing path {parent:?}"))?;
    let removed = match container {
        Value::Object(map) => map.remove(&last).is_some(),
        Value::Array(list) => match last.parse::<usize>() {
            Ok(index) if index < list.len() => {
                list.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    };
    if removed {
        Ok(())
    } else {
        Err(format!("nothing to remove at {path:?}"))
    }
}
