//! Stock clients against the emulator over HTTPS with a bearer token: kubectl (Debian's
//! `kubernetes-client`) and the official Python client (`kubernetes`, in `.tools/kube-venv`),
//! both installed by `scripts/setup.sh`. No network is used.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use runway_kube_emulator::{Auth, CommandRuntime, KubeEmulator, KubeEmulatorConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "emulator-token";

fn kubectl_path() -> PathBuf {
    let path = PathBuf::from("/usr/bin/kubectl");
    assert!(
        path.exists(),
        "kubectl is missing: run scripts/setup.sh (apt-get install kubernetes-client)"
    );
    path
}

fn python() -> PathBuf {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/kube-venv/bin/python");
    assert!(
        python.exists(),
        "the Python tools are missing from {}: run scripts/setup.sh",
        python.display()
    );
    python
}

/// kubectl with only the given kubeconfig and a private home (its discovery cache).
fn kubectl(home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(kubectl_path());
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("KUBECONFIG", home.join("config"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run(command: &mut tokio::process::Command) -> Output {
    tokio::time::timeout(WAIT, command.output())
        .await
        .expect("the command did not finish in time")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("kubectl get -w printed nothing in time")
        .unwrap()
        .expect("kubectl get -w ended")
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: jit
  labels:
    app: runner
stringData:
  jitconfig: eyJydW5uZXIiOjF9
---
apiVersion: v1
kind: Pod
metadata:
  name: runner-1
  labels:
    app: runner
    pool: small
spec:
  restartPolicy: Never
  volumes:
    - name: jit
      secret:
        secretName: jit
  containers:
    - name: runner
      image: runway/runner:1
      command: ["sh", "-c", "cat \"$KUBE_MOUNT_RUN_JIT/jitconfig\"; echo; exec sleep 600"]
      volumeMounts:
        - name: jit
          mountPath: /run/jit
"#;

/// The table's rows as whitespace-separated cells.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn kubectl_creates_lists_watches_and_deletes() {
    let kube = KubeEmulator::start(
        KubeEmulatorConfig::default()
            .with_auth(Auth::Bearer(TOKEN.into()))
            .with_runtime(CommandRuntime::new()),
    )
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config"), kube.kubeconfig(TOKEN)).unwrap();
    std::fs::write(home.path().join("runner.yaml"), MANIFEST).unwrap();

    let created = stdout(
        &run(kubectl(home.path())
            .args(["create", "-f"])
            .arg(home.path().join("runner.yaml")))
        .await,
    );
    assert_eq!(created, "secret/jit created\npod/runner-1 created\n");
    kube.wait_for_phase("default", "runner-1", "Running", WAIT)
        .await
        .unwrap();

    let listed: Value = serde_json::from_str(&stdout(
        &run(kubectl(home.path()).args(["get", "pods", "-o", "json"])).await,
    ))
    .unwrap();
    assert_eq!(listed["kind"], "List");
    assert_eq!(listed["items"][0]["kind"], "Pod");
    assert_eq!(listed["items"][0]["metadata"]["name"], "runner-1");
    assert_eq!(listed["items"][0]["status"]["phase"], "Running");

    let named = stdout(
        &run(kubectl(home.path()).args([
            "get",
            "pods",
            "-l",
            "pool in (small,large)",
            "-o",
            "name",
        ]))
        .await,
    );
    assert_eq!(named, "pod/runner-1\n");
    let none = run(kubectl(home.path()).args(["get", "pods", "-l", "app!=runner"])).await;
    assert!(none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found in default namespace.")
    );

    let table = rows(&stdout(
        &run(kubectl(home.path()).args(["get", "pods"])).await,
    ));
    assert_eq!(table[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(table[1][..4], ["runner-1", "1/1", "Running", "0"]);
    let wide = rows(&stdout(
        &run(kubectl(home.path()).args(["get", "pods", "-o", "wide"])).await,
    ));
    assert_eq!(
        wide[0][..7],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    );
    assert_eq!(wide[1][6], "kube-emulator");
    let secrets = rows(&stdout(
        &run(kubectl(home.path()).args(["get", "secrets"])).await,
    ));
    assert_eq!(secrets[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(secrets[1][..3], ["jit", "Opaque", "1"]);
    let namespaces = rows(&stdout(
        &run(kubectl(home.path()).args(["get", "namespaces"])).await,
    ));
    assert_eq!(namespaces[0], ["NAME", "STATUS", "AGE"]);
    assert_eq!(namespaces[1][..2], ["default", "Active"]);

    let logs = stdout(&run(kubectl(home.path()).args(["logs", "runner-1"])).await);
    assert_eq!(logs, "eyJydW5uZXIiOjF9\n");

    // `get -w` prints the table, then a row per change.
    let mut watch = kubectl(home.path())
        .args(["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    assert!(next_line(&mut lines).await.starts_with("NAME"));
    assert!(next_line(&mut lines).await.starts_with("runner-1"));
    kube.create(
        "pods",
        "default",
        json!({"metadata": {"name": "runner-2"}, "spec": {"containers": [
            {"name": "runner", "image": "runway/runner:1", "command": ["sleep", "600"]}]}}),
    )
    .unwrap();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("runner-2") && l.contains("Running"))
    {
        seen.push(next_line(&mut lines).await);
    }
    assert!(seen[0].starts_with("runner-2"), "{seen:?}");
    watch.kill().await.unwrap();

    let deleted =
        stdout(&run(kubectl(home.path()).args(["delete", "pod", "runner-1", "runner-2"])).await);
    assert_eq!(
        deleted,
        "pod \"runner-1\" deleted\npod \"runner-2\" deleted\n"
    );
    let deleted =
        stdout(&run(kubectl(home.path()).args(["delete", "secret", "-l", "app=runner"])).await);
    assert_eq!(deleted, "secret \"jit\" deleted\n");
    assert!(kube.pods("default").is_empty());
    assert!(kube.secrets("default").is_empty());

    let missing = run(kubectl(home.path()).args(["get", "pod", "runner-1"])).await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("pods \"runner-1\" not found"));

    // The wrong token is refused.
    std::fs::write(home.path().join("config"), kube.kubeconfig("wrong")).unwrap();
    let refused = run(kubectl(home.path()).args(["get", "pods"])).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Unauthorized"));
    kube.shutdown().await;
}

const PYTHON_SCRIPT: &str = r#"
import json, sys
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
out = {}

secret = v1.create_namespaced_secret("default", client.V1Secret(
    metadata=client.V1ObjectMeta(name="jit", labels={"app": "runner"}),
    string_data={"jitconfig": "abc"}))
out["secret_data"] = secret.data
out["secret_string_data"] = secret.string_data

pod = client.V1Pod(
    metadata=client.V1ObjectMeta(generate_name="runner-", labels={"app": "runner"}),
    spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
        name="runner", image="runway/runner:1",
        env=[client.V1EnvVar(name="JIT", value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name="jit", key="jitconfig")))])]))
created = v1.create_namespaced_pod("default", pod)
name = created.metadata.name
out["created_phase"] = created.status.phase

events = []
w = watch.Watch()
for event in w.stream(v1.list_namespaced_pod, "default", label_selector="app=runner",
                      timeout_seconds=20):
    events.append([event["type"], event["object"].metadata.name, event["object"].status.phase])
    if event["object"].status.phase == "Running":
        w.stop()
out["events"] = events

out["listed"] = [p.metadata.name for p in
                 v1.list_namespaced_pod("default", label_selector="app=runner").items]
out["none"] = [p.metadata.name for p in
               v1.list_pod_for_all_namespaces(label_selector="app notin (runner)").items]
running = v1.read_namespaced_pod(name, "default")
out["ready"] = running.status.container_statuses[0].ready
out["started_at"] = running.status.container_statuses[0].state.running.started_at.isoformat()

try:
    v1.read_namespaced_pod("nope", "default")
except ApiException as e:
    out["missing"] = [e.status, json.loads(e.body)["reason"]]
try:
    v1.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="jit")))
except ApiException as e:
    out["duplicate"] = [e.status, json.loads(e.body)["reason"]]

patched = v1.patch_namespaced_pod(name, "default", {"metadata": {"labels": {"state": "busy"}}})
out["patched_labels"] = patched.metadata.labels

deleted = v1.delete_namespaced_pod(name, "default")
out["deleted_kind"] = deleted.kind
status = v1.delete_namespaced_secret("jit", "default")
out["secret_delete_status"] = status["status"] if isinstance(status, dict) else status.status
out["left"] = len(v1.list_namespaced_pod("default").items)
print(json.dumps(out))
"#;

#[tokio::test]
async fn the_python_client_creates_watches_and_deletes() {
    let kube =
        KubeEmulator::start(KubeEmulatorConfig::default().with_auth(Auth::Bearer(TOKEN.into())))
            .await
            .unwrap();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("config");
    std::fs::write(&kubeconfig, kube.kubeconfig(TOKEN)).unwrap();
    let output = run(tokio::process::Command::new(python())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .args(["-c", PYTHON_SCRIPT])
        .arg(&kubeconfig)
        .kill_on_drop(true))
    .await;
    let out: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(out["secret_data"], json!({"jitconfig": "YWJj"}));
    assert_eq!(out["secret_string_data"], Value::Null);
    assert_eq!(out["created_phase"], "Pending");
    let events = out["events"].as_array().unwrap();
    assert_eq!(events[0][0], "ADDED");
    assert_eq!(events.last().unwrap()[2], "Running");
    assert_eq!(out["listed"].as_array().unwrap().len(), 1);
    assert_eq!(out["none"], json!([]));
    assert_eq!(out["ready"], true);
    assert_eq!(out["missing"], json!([404, "NotFound"]));
    assert_eq!(out["duplicate"], json!([409, "AlreadyExists"]));
    assert_eq!(
        out["patched_labels"],
        json!({"app": "runner", "state": "busy"})
    );
    assert_eq!(out["deleted_kind"], "Pod");
    assert_eq!(out["secret_delete_status"], "Success");
    assert_eq!(out["left"], 0);
    kube.shutdown().await;
}
