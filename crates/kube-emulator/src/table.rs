//! `meta.k8s.io/v1` Tables, which `kubectl get` asks for (`Accept: ...;as=Table;...`) and
//! prints as they come: the server decides the columns.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::status::Kind;

/// What each row carries besides its cells (`includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(text: Option<&str>) -> Include {
        match text {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

fn column(name: &str, kind: &str, format: &str, description: &str, priority: u32) -> Value {
    json!({
        "name": name, "type": kind, "format": format,
        "description": description, "priority": priority,
    })
}

pub fn columns(kind: Kind) -> Value {
    let name = column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let age = column(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    );
    match kind {
        Kind::Pod => json!([
            name,
            column(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
                0
            ),
            column(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0
            ),
            column(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                0
            ),
            age,
            column("IP", "string", "", "The IP address assigned to the pod", 1),
            column(
                "Node",
                "string",
                "",
                "The name of the node assigned to the pod",
                1
            ),
        ]),
        Kind::Secret => json!([
            name,
            column("Type", "string", "", "The type of the secret", 0),
            column(
                "Data",
                "string",
                "",
                "The number of entries in the secret",
                0
            ),
            age,
        ]),
        Kind::Namespace => json!([
            name,
            column("Status", "string", "", "The status of the namespace", 0),
            age,
        ]),
    }
}

/// kubectl's short ages: `45s`, `3m12s`, `17m`, `5h`, `2d`.
pub fn age(created: &str, now: DateTime<Utc>) -> String {
    let Ok(created) = DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".to_string();
    };
    let seconds = (now - created.to_utc()).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn cells(kind: Kind, object: &Value, now: DateTime<Utc>) -> Value {
    let metadata = &object["metadata"];
    let name = metadata["name"].clone();
    let age = age(
        metadata["creationTimestamp"].as_str().unwrap_or_default(),
        now,
    );
    match kind {
        Kind::Pod => {
            let statuses = object["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = object["spec"]["containers"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: u64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_u64())
                .sum();
            json!([
                name,
                format!("{ready}/{total}"),
                pod_status(object),
                restarts.to_string(),
                age,
                object["status"]["podIP"].as_str().unwrap_or("<none>"),
                object["spec"]["nodeName"].as_str().unwrap_or("<none>"),
            ])
        }
        Kind::Secret => json!([
            name,
            object["type"].as_str().unwrap_or("Opaque"),
            object["data"].as_object().map(|d| d.len()).unwrap_or(0),
            age,
        ]),
        Kind::Namespace => json!([
            name,
            object["status"]["phase"].as_str().unwrap_or("Active"),
            age,
        ]),
    }
}

/// The STATUS column: a waiting or terminated container's reason, else the phase.
fn pod_status(pod: &Value) -> String {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return "Terminating".into();
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    for status in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(reason) = status["state"]["waiting"]["reason"].as_str() {
            return reason.to_string();
        }
        if let Some(reason) = status["state"]["terminated"]["reason"].as_str()
            && (phase != "Succeeded" || reason != "Completed")
        {
            return reason.to_string();
        }
    }
    if phase == "Succeeded" {
        return "Completed".into();
    }
    phase.to_string()
}

fn row(kind: Kind, object: &Value, include: Include, now: DateTime<Utc>) -> Value {
    let mut row = json!({"cells": cells(kind, object, now)});
    match include {
        Include::None => {}
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"],
            });
        }
        Include::Object => row["object"] = object.clone(),
    }
    row
}

/// A Table of `objects`.
pub fn table(
    kind: Kind,
    objects: &[Value],
    resource_version: &str,
    include: Include,
    with_columns: bool,
) -> Value {
    let now = Utc::now();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "rows": objects.iter().map(|o| row(kind, o, include, now)).collect::<Vec<_>>(),
    });
    if with_columns {
        table["columnDefinitions"] = columns(kind);
    }
    table
}
