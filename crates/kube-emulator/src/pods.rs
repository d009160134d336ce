//! A pod's life: resolving its secrets and volumes, starting it on the runtime, and the
//! status changes `Pending` → `Running` → `Succeeded`/`Failed` a kubelet would report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::runtime::{ContainerExit, ContainerLaunch, PodLaunch, RunningPod, VolumeMount};
use crate::shared::Shared;
use crate::status::Kind;
use crate::store::{EventType, Store, now_rfc3339, string_map};

/// The node every pod is scheduled on.
pub const NODE_NAME: &str = "kube-emulator";
pub const HOST_IP: &str = "127.0.0.1";

/// Why a pod's containers could not be created yet: shown as the containers' `waiting` state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotReady {
    pub reason: &'static str,
    pub message: String,
}

fn config_error(message: String) -> NotReady {
    NotReady {
        reason: "CreateContainerConfigError",
        message,
    }
}

fn mount_error(message: String) -> NotReady {
    NotReady {
        reason: "ContainerCreating",
        message,
    }
}

/// The pod's directory under the emulator's work directory.
pub(crate) fn pod_dir(work_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    work_dir.join(namespace).join(format!("{name}-{uid}"))
}

pub(crate) fn log_path(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("logs").join(format!("{container}.log"))
}

pub(crate) fn spawn_launch(shared: Arc<Shared>, namespace: String, name: String, uid: String) {
    tokio::spawn(async move { launch(shared, namespace, name, uid).await });
}

/// A secret's keys, decoded.
fn secret_data(store: &Store, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    let secret = store.get(Kind::Secret, namespace, name)?;
    Some(
        string_map(&secret["data"])
            .into_iter()
            .filter_map(|(k, v)| {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .ok()
                    .map(|bytes| (k, bytes))
            })
            .collect(),
    )
}

/// Resolves env and volumes from the stored secrets and writes the volumes' files.
fn prepare(store: &Store, pod: &Value, work_dir: &Path) -> Result<PodLaunch, NotReady> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let dir = pod_dir(work_dir, namespace, name, uid);
    let io = |e: std::io::Error| mount_error(format!("cannot write the pod's files: {e}"));
    std::fs::create_dir_all(dir.join("logs")).map_err(io)?;

    // Volumes, written once each.
    let mut volumes: BTreeMap<String, PathBuf> = BTreeMap::new();
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let volume_name = volume["name"].as_str().unwrap_or_default();
        let host = dir.join("volumes").join(volume_name);
        std::fs::create_dir_all(&host).map_err(io)?;
        if let Some(source) = volume.get("secret").filter(|s| s.is_object()) {
            let secret_name = source["secretName"].as_str().unwrap_or_default();
            let optional = source["optional"].as_bool().unwrap_or(false);
            let data = match secret_data(store, namespace, secret_name) {
                Some(data) => data,
                None if optional => BTreeMap::new(),
                None => {
                    return Err(mount_error(format!(
                        "MountVolume.SetUp failed for volume \"{volume_name}\" : secret \
                         \"{secret_name}\" not found"
                    )));
                }
            };
            let files: Vec<(String, String)> = match source["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|item| {
                        (
                            item["key"].as_str().unwrap_or_default().to_string(),
                            item["path"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in files {
                let Some(bytes) = data.get(&key) else {
                    if optional {
                        continue;
                    }
                    return Err(mount_error(format!(
                        "MountVolume.SetUp failed for volume \"{volume_name}\" : references \
                         non-existent secret key: {key}"
                    )));
                };
                // A path may not climb out of the volume.
                if path.is_empty() || path.split('/').any(|p| p == "..") || path.starts_with('/') {
                    return Err(mount_error(format!("invalid path {path:?} in volume")));
                }
                let file = host.join(&path);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(&file, bytes).map_err(io)?;
            }
        }
        volumes.insert(volume_name.to_string(), host);
    }

    let mut containers = Vec::new();
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let container_name = container["name"].as_str().unwrap_or_default().to_string();
        let env = resolve_env(store, pod, container)?;
        let mut mounts = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let volume = mount["name"].as_str().unwrap_or_default();
            let Some(host) = volumes.get(volume) else {
                return Err(config_error(format!("volume {volume:?} not found")));
            };
            let host_dir = match mount["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => host.join(sub),
                None => host.clone(),
            };
            mounts.push(VolumeMount {
                volume: volume.to_string(),
                mount_path: mount["mountPath"].as_str().unwrap_or_default().to_string(),
                host_dir,
                read_only: mount["readOnly"].as_bool().unwrap_or(false),
            });
        }
        containers.push(ContainerLaunch {
            image: container["image"].as_str().unwrap_or_default().to_string(),
            command: strings(&container["command"]),
            args: strings(&container["args"]),
            env,
            mounts,
            working_dir: container["workingDir"].as_str().map(str::to_string),
            log_path: log_path(&dir, &container_name),
            name: container_name,
        });
    }
    Ok(PodLaunch {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        labels: string_map(&pod["metadata"]["labels"]),
        annotations: string_map(&pod["metadata"]["annotations"]),
        pod_dir: dir,
        containers,
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// `envFrom` then `env`, as the kubelet builds a container's environment.
fn resolve_env(
    store: &Store,
    pod: &Value,
    container: &Value,
) -> Result<Vec<(String, String)>, NotReady> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut env = Vec::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        if let Some(reference) = source.get("secretRef").filter(|r| r.is_object()) {
            let secret = reference["name"].as_str().unwrap_or_default();
            match secret_data(store, namespace, secret) {
                Some(data) => {
                    for (key, bytes) in data {
                        env.push((
                            format!("{prefix}{key}"),
                            String::from_utf8_lossy(&bytes).into_owned(),
                        ));
                    }
                }
                None if reference["optional"].as_bool() == Some(true) => {}
                None => return Err(config_error(format!("secret \"{secret}\" not found"))),
            }
        } else if let Some(reference) = source.get("configMapRef").filter(|r| r.is_object()) {
            // ConfigMaps are not served.
            if reference["optional"].as_bool() != Some(true) {
                let name = reference["name"].as_str().unwrap_or_default();
                return Err(config_error(format!("configmap \"{name}\" not found")));
            }
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().unwrap_or_default().to_string();
        let from = &variable["valueFrom"];
        let value = if let Some(reference) = from.get("secretKeyRef").filter(|r| r.is_object()) {
            let secret = reference["name"].as_str().unwrap_or_default();
            let key = reference["key"].as_str().unwrap_or_default();
            let optional = reference["optional"].as_bool() == Some(true);
            match secret_data(store, namespace, secret) {
                None if optional => continue,
                None => return Err(config_error(format!("secret \"{secret}\" not found"))),
                Some(data) => match data.get(key) {
                    Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(config_error(format!(
                            "couldn't find key {key} in Secret {namespace}/{secret}"
                        )));
                    }
                },
            }
        } else if let Some(reference) = from.get("fieldRef").filter(|r| r.is_object()) {
            field_value(pod, reference["fieldPath"].as_str().unwrap_or_default())
        } else if let Some(reference) = from.get("configMapKeyRef").filter(|r| r.is_object()) {
            if reference["optional"].as_bool() == Some(true) {
                continue;
            }
            let name = reference["name"].as_str().unwrap_or_default();
            return Err(config_error(format!("configmap \"{name}\" not found")));
        } else {
            variable["value"].as_str().unwrap_or_default().to_string()
        };
        env.push((name, value));
    }
    Ok(env)
}

/// The downward API's `fieldRef` paths.
fn field_value(pod: &Value, path: &str) -> String {
    let metadata = &pod["metadata"];
    let from_map = |map: &Value, rest: &str| {
        let key = rest
            .trim_start_matches("['")
            .trim_end_matches("']")
            .to_string();
        map[key].as_str().unwrap_or_default().to_string()
    };
    match path {
        "metadata.name" | "metadata.namespace" | "metadata.uid" => metadata
            [path.trim_start_matches("metadata.")]
        .as_str()
        .unwrap_or_default()
        .to_string(),
        "spec.nodeName" => NODE_NAME.to_string(),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        "status.hostIP" => HOST_IP.to_string(),
        "status.podIP" => pod["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => {
            if let Some(rest) = path.strip_prefix("metadata.labels") {
                from_map(&metadata["labels"], rest)
            } else if let Some(rest) = path.strip_prefix("metadata.annotations") {
                from_map(&metadata["annotations"], rest)
            } else {
                String::new()
            }
        }
    }
}

/// Changes a pod's status (and, with `schedule`, its `spec.nodeName`) if it is still the
/// pod with `uid`.
pub(crate) fn update_status(
    shared: &Shared,
    namespace: &str,
    name: &str,
    uid: &str,
    change: impl FnOnce(&mut Value),
) -> Option<Value> {
    let mut store = shared.store();
    let mut pod = store.get(Kind::Pod, namespace, name)?.clone();
    if pod["metadata"]["uid"].as_str() != Some(uid) {
        return None;
    }
    let before = pod.clone();
    change(&mut pod);
    if pod == before {
        return Some(pod);
    }
    Some(store.commit(Kind::Pod, EventType::Modified, pod))
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, at: &str) -> Value {
    let mut condition = json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": at,
    });
    if let Some(reason) = reason {
        condition["reason"] = json!(reason);
    }
    condition
}

fn conditions(ready: bool, started: bool, reason: Option<&str>, at: &str) -> Value {
    json!([
        condition("PodReadyToStartContainers", started, None, at),
        condition("Initialized", true, None, at),
        condition("Ready", ready, reason, at),
        condition("ContainersReady", ready, reason, at),
        condition("PodScheduled", true, None, at),
    ])
}

fn container_names(pod: &Value) -> Vec<(String, String)> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["image"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn container_id(uid: &str, name: &str) -> String {
    format!("emulator://{uid}/{name}")
}

/// Waiting containers, with the reason they are not running yet.
fn set_waiting(pod: &mut Value, reason: &str, message: Option<&str>) {
    let now = now_rfc3339();
    let statuses: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            let mut waiting = json!({"reason": reason});
            if let Some(message) = message {
                waiting["message"] = json!(message);
            }
            json!({
                "name": name, "image": image, "imageID": "", "ready": false,
                "restartCount": 0, "started": false,
                "state": {"waiting": waiting}, "lastState": {},
            })
        })
        .collect();
    let status = &mut pod["status"];
    status["phase"] = json!("Pending");
    status["conditions"] = conditions(false, false, Some("ContainersNotReady"), &now);
    status["containerStatuses"] = json!(statuses);
}

fn set_running(pod: &mut Value, uid: &str) {
    let now = now_rfc3339();
    let statuses: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("emulator://{image}"),
                "containerID": container_id(uid, &name),
                "ready": true, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": now}}, "lastState": {},
            })
        })
        .collect();
    let status = &mut pod["status"];
    status["phase"] = json!("Running");
    status["conditions"] = conditions(true, true, None, &now);
    status["containerStatuses"] = json!(statuses);
}

/// Terminated containers: `Succeeded` when all exited 0, `Failed` otherwise.
pub(crate) fn set_terminated(pod: &mut Value, uid: &str, exits: &[ContainerExit]) {
    let now = now_rfc3339();
    let started = |name: &str| {
        pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["state"]["running"]["startedAt"].as_str())
            .unwrap_or(&now)
            .to_string()
    };
    let mut all_zero = true;
    let statuses: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            let exit = exits.iter().find(|e| e.name == name);
            let code = exit.map(|e| e.exit_code).unwrap_or(137);
            all_zero &= code == 0;
            let reason = exit
                .and_then(|e| e.reason.clone())
                .unwrap_or_else(|| if code == 0 { "Completed" } else { "Error" }.to_string());
            json!({
                "name": name, "image": image, "imageID": format!("emulator://{image}"),
                "containerID": container_id(uid, &name),
                "ready": false, "restartCount": 0, "started": false,
                "state": {"terminated": {
                    "exitCode": code, "reason": reason,
                    "startedAt": started(&name), "finishedAt": now,
                    "containerID": container_id(uid, &name),
                }},
                "lastState": {},
            })
        })
        .collect();
    let (phase, reason) = if all_zero {
        ("Succeeded", "PodCompleted")
    } else {
        ("Failed", "PodFailed")
    };
    let status = &mut pod["status"];
    status["phase"] = json!(phase);
    status["conditions"] = conditions(false, false, Some(reason), &now);
    status["containerStatuses"] = json!(statuses);
}

async fn launch(shared: Arc<Shared>, namespace: String, name: String, uid: String) {
    if !shared.pod_start_delay.is_zero() {
        tokio::time::sleep(shared.pod_start_delay).await;
    }
    // Scheduled on the one node; the containers are being created.
    let scheduled = update_status(&shared, &namespace, &name, &uid, |pod| {
        pod["spec"]["nodeName"] = json!(NODE_NAME);
        let status = &mut pod["status"];
        if status["startTime"].is_null() {
            status["startTime"] = json!(now_rfc3339());
        }
        status["hostIP"] = json!(HOST_IP);
        status["hostIPs"] = json!([{"ip": HOST_IP}]);
        let ip = pod_ip(&uid);
        pod["status"]["podIP"] = json!(ip);
        pod["status"]["podIPs"] = json!([{"ip": ip}]);
        set_waiting(pod, "ContainerCreating", None);
    });
    let Some(pod) = scheduled else {
        return;
    };
    let prepared = {
        let store = shared.store();
        prepare(&store, &pod, &shared.work_dir)
    };
    let launch = match prepared {
        Ok(launch) => launch,
        Err(not_ready) => {
            tracing::info!(%namespace, %name, reason = not_ready.reason, message = %not_ready.message, "pod waits");
            shared.wait_for_secret(&namespace, &name, &uid);
            update_status(&shared, &namespace, &name, &uid, |pod| {
                set_waiting(pod, not_ready.reason, Some(&not_ready.message));
            });
            return;
        }
    };
    let names = launch.containers.iter().map(|c| c.name.clone()).collect();
    let started = match &shared.runtime {
        None => Ok(RunningPod::until_killed(names)),
        Some(runtime) => runtime.start(launch).await,
    };
    let running = match started {
        Ok(running) => running,
        Err(error) => {
            tracing::warn!(%namespace, %name, %error, "pod failed to start");
            update_status(&shared, &namespace, &name, &uid, |pod| {
                let exits: Vec<ContainerExit> = container_names(pod)
                    .into_iter()
                    .map(|(name, _)| ContainerExit {
                        name,
                        exit_code: 128,
                        reason: Some("StartError".into()),
                    })
                    .collect();
                set_terminated(pod, &uid, &exits);
                pod["status"]["message"] = json!(error.to_string());
            });
            return;
        }
    };
    let (exited, kill) = running.into_parts();
    shared.register_kill(&uid, kill);
    let shown = update_status(&shared, &namespace, &name, &uid, |pod| {
        set_running(pod, &uid)
    });
    if shown.is_none() || *shared.stopping.borrow() {
        // Deleted while starting.
        shared.kill(&uid);
    }
    let exits = exited.await;
    if shared.exited(&uid) {
        tracing::info!(%namespace, %name, ?exits, "pod's containers exited");
        update_status(&shared, &namespace, &name, &uid, |pod| {
            set_terminated(pod, &uid, &exits)
        });
    }
}

/// A stable address in 10.244.0.0/16 for the pod.
fn pod_ip(uid: &str) -> String {
    let bytes = uid.as_bytes();
    let a = bytes.first().copied().unwrap_or(0);
    let b = bytes.get(1).copied().unwrap_or(0);
    format!("10.244.{}.{}", a % 250, (b % 250) + 2)
}
