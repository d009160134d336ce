//! The API's semantics over HTTP: statuses, selectors, resourceVersion, watches, auth, TLS,
//! and pods' lives with and without a runtime.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use runway_kube_emulator::{
    Auth, CommandRuntime, KubeEmulator, KubeEmulatorConfig, KubeEmulatorHandle, fake_eks_token,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn start(config: KubeEmulatorConfig) -> (KubeEmulatorHandle, Api) {
    let kube = KubeEmulator::start(config.http()).await.unwrap();
    let api = Api {
        base: kube.url().to_string(),
        client: reqwest::Client::new(),
        token: None,
    };
    (kube, api)
}

struct Api {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Value)>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(("application/json", body)))
            .await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    async fn patch(&self, path: &str, content_type: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some((content_type, body)))
            .await
    }
}

fn pod(name: &str, labels: Value, command: &[&str]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "runner", "image": "runway/runner:1", "command": command}],
        },
    })
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn discovery() {
    let (_kube, api) = start(KubeEmulatorConfig::default()).await;
    let (status, version) = api.get("/version").await;
    assert_eq!(status, 200);
    assert_eq!(version["major"], "1");
    let (_, versions) = api.get("/api").await;
    assert_eq!(versions["kind"], "APIVersions");
    assert_eq!(versions["versions"], json!(["v1"]));
    let (_, resources) = api.get("/api/v1").await;
    let listed: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in ["namespaces", "pods", "pods/status", "pods/log", "secrets"] {
        assert!(listed.contains(&want), "{want} in {listed:?}");
    }
    let (_, groups) = api.get("/apis").await;
    assert_eq!(groups["kind"], "APIGroupList");
    let (status, missing) = api.get("/api/v1/configmaps").await;
    assert_eq!(status, 404);
    assert_eq!(missing["kind"], "Status");
}

#[tokio::test]
async fn errors_are_status_objects() {
    let (_kube, api) = start(KubeEmulatorConfig::default()).await;
    let (status, body) = api.get("/api/v1/namespaces/default/pods/nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"nope\" not found", "reason": "NotFound",
            "details": {"name": "nope", "kind": "pods"}, "code": 404,
        })
    );

    let secret = json!({"metadata": {"name": "jit"}, "stringData": {"a": "b"}});
    assert_eq!(
        api.post("/api/v1/namespaces/default/secrets", secret.clone())
            .await
            .0,
        201
    );
    let (status, body) = api.post("/api/v1/namespaces/default/secrets", secret).await;
    assert_eq!(status, 409);
    assert_eq!(body["reason"], "AlreadyExists");
    assert_eq!(body["message"], "secrets \"jit\" already exists");
    assert_eq!(body["details"], json!({"name": "jit", "kind": "secrets"}));
    assert_eq!(body["code"], 409);

    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/pods",
            pod("Bad_Name", json!({"ok": "yes"}), &["true"]),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["details"]["kind"], "Pod");
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(body["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"")
    );

    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/pods",
            pod("good", json!({"bad key!": "x"}), &["true"]),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.labels");

    let (status, body) = api
        .post(
            "/api/v1/namespaces/nowhere/pods",
            pod("p", json!({}), &["true"]),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "namespaces \"nowhere\" not found");

    let (status, body) = api
        .get("/api/v1/namespaces/default/pods?labelSelector=a%20in%20(")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["reason"], "BadRequest");
}

#[tokio::test]
async fn namespaces_and_secrets() {
    let (kube, api) = start(KubeEmulatorConfig {
        namespaces: vec!["runners".into()],
        ..KubeEmulatorConfig::default()
    })
    .await;
    let (_, list) = api.get("/api/v1/namespaces").await;
    assert_eq!(names(&list), ["default", "kube-system", "runners"]);
    assert_eq!(list["kind"], "NamespaceList");
    let (status, ns) = api
        .post("/api/v1/namespaces", json!({"metadata": {"name": "ci"}}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(ns["status"]["phase"], "Active");
    let (status, _) = api
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "Not.A.Label"}}),
        )
        .await;
    assert_eq!(status, 422);

    let (status, secret) = api
        .post(
            "/api/v1/namespaces/ci/secrets",
            json!({
                "metadata": {"name": "jit", "labels": {"runway.dev/runner": "r1"}},
                "data": {"raw": "aGk="},
                "stringData": {"jitconfig": "eyJhIjoxfQ=="},
            }),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none());
    assert_eq!(secret["data"]["raw"], "aGk=");
    assert_eq!(secret["data"]["jitconfig"], "ZXlKaElqb3hmUT09");
    let (_, fetched) = api.get("/api/v1/namespaces/ci/secrets/jit").await;
    assert_eq!(fetched, secret);
    assert_eq!(kube.secrets("ci").len(), 1);

    let (status, body) = api.delete("/api/v1/namespaces/ci/secrets/jit").await;
    assert_eq!(status, 200);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");

    api.post(
        "/api/v1/namespaces/ci/secrets",
        json!({"metadata": {"name": "again"}}),
    )
    .await;
    let (status, gone) = api.delete("/api/v1/namespaces/ci").await;
    assert_eq!(status, 200);
    assert_eq!(gone["status"]["phase"], "Terminating");
    assert!(kube.secrets("ci").is_empty());
    assert_eq!(api.get("/api/v1/namespaces/ci").await.0, 404);
}

#[tokio::test]
async fn pods_metadata_selectors_and_patches() {
    let (kube, api) = start(KubeEmulatorConfig::default()).await;
    let mut created = Vec::new();
    for (i, pool) in ["small", "small", "large"].iter().enumerate() {
        let mut body = pod("", json!({"pool": pool, "idx": i.to_string()}), &["true"]);
        body["metadata"] = json!({"generateName": "runner-", "labels": {"pool": pool}});
        let (status, created_pod) = api.post("/api/v1/namespaces/default/pods", body).await;
        assert_eq!(status, 201);
        created.push(created_pod);
    }
    let first = &created[0];
    let name = first["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("runner-") && name.len() == "runner-".len() + 5);
    assert_eq!(first["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        first["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(first["status"]["phase"], "Pending");
    assert_eq!(first["metadata"]["namespace"], "default");
    assert!(rv(&created[1]) > rv(&created[0]));

    let query =
        |selector: &str| format!("/api/v1/namespaces/default/pods?labelSelector={selector}");
    let (_, list) = api.get(&query("pool%3Dsmall")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["items"][0].get("kind").is_none());
    let (_, list) = api.get(&query("pool%20notin%20(small)")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = api.get(&query("!pool")).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, list) = api
        .get(&format!(
            "/api/v1/pods?fieldSelector=metadata.name%3D{name}"
        ))
        .await;
    assert_eq!(names(&list), [name]);
    assert!(rv(&list) >= rv(&created[2]));

    // Merge patch, a stale resourceVersion, JSON patch.
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    let (_, current) = api.get(&path).await;
    let (status, patched) = api
        .patch(
            &path,
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"state": "busy", "pool": null}}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["metadata"]["labels"], json!({"state": "busy"}));
    assert!(rv(&patched) > rv(&current));
    let (status, conflict) = api
        .patch(
            &path,
            "application/merge-patch+json",
            json!({"metadata": {"resourceVersion": current["metadata"]["resourceVersion"], "labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(conflict["reason"], "Conflict");
    let (status, patched) = api
        .patch(
            &path,
            "application/json-patch+json",
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["metadata"]["annotations"], json!({"a": "b"}));

    // deletecollection with a selector.
    let (status, deleted) = api
        .delete("/api/v1/namespaces/default/pods?labelSelector=pool%3Dsmall")
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["items"].as_array().unwrap().len(), 1);
    assert_eq!(kube.pods("default").len(), 2);
    assert_eq!(kube.request_count("deletecollection pods"), 1);
    assert_eq!(kube.request_count("create pods"), 3);
}

/// Reads a watch's newline-delimited events (bookmarks aside) until `count` have come.
async fn read_events(response: &mut reqwest::Response, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("no watch event in time")
            .unwrap()
            .expect("the watch ended");
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).unwrap();
            if event["type"] != "BOOKMARK" {
                events.push(event);
            }
        }
    }
    events
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

fn secret(name: &str, app: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": app}}, "stringData": {"k": "v"}})
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn watches_replay_and_follow_in_order() {
    let (_kube, api) = start(KubeEmulatorConfig::default()).await;
    let secrets = "/api/v1/namespaces/default/secrets";
    api.post(secrets, secret("s1", "r")).await;
    let (_, list) = api.get(secrets).await;
    let list_rv = rv(&list);

    api.post(secrets, secret("s2", "x")).await;
    api.post(secrets, secret("s3", "r")).await;
    // A label change that moves an object out of the selection is seen as its deletion.
    api.patch(
        &format!("{secrets}/s1"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"app": "gone"}}}),
    )
    .await;
    api.patch(
        &format!("{secrets}/s3"),
        "application/merge-patch+json",
        json!({"metadata": {"annotations": {"a": "b"}}}),
    )
    .await;
    api.delete(&format!("{secrets}/s3")).await;

    let mut watch = api
        .client
        .get(format!(
            "{}{secrets}?watch=1&labelSelector=app%3Dr&resourceVersion={list_rv}&allowWatchBookmarks=true",
            api.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    let replayed = read_events(&mut watch, 4).await;
    assert_eq!(
        summary(&replayed),
        pairs(&[
            ("ADDED", "s3"),
            ("DELETED", "s1"),
            ("MODIFIED", "s3"),
            ("DELETED", "s3")
        ])
    );
    let mut last = list_rv;
    for event in &replayed {
        assert!(rv(&event["object"]) > last);
        last = rv(&event["object"]);
    }
    assert!(replayed[3]["object"]["metadata"]["deletionTimestamp"].is_string());

    // Then live changes.
    api.post(secrets, secret("s4", "x")).await;
    api.post(secrets, secret("s5", "r")).await;
    let live = read_events(&mut watch, 1).await;
    assert_eq!(summary(&live), pairs(&[("ADDED", "s5")]));
    assert!(rv(&live[0]["object"]) > last);

    // Without a resourceVersion: the current objects first, as ADDED.
    let mut fresh = api
        .client
        .get(format!(
            "{}/api/v1/secrets?watch=true&timeoutSeconds=1",
            api.base
        ))
        .send()
        .await
        .unwrap();
    let mut seen = summary(&read_events(&mut fresh, 4).await);
    seen.sort();
    assert_eq!(
        seen,
        pairs(&[
            ("ADDED", "s1"),
            ("ADDED", "s2"),
            ("ADDED", "s4"),
            ("ADDED", "s5")
        ])
    );
    // timeoutSeconds ends the stream.
    let end = tokio::time::timeout(WAIT, async {
        while fresh.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(end.is_ok());
}

#[tokio::test]
async fn bearer_and_eks_auth() {
    let (_kube, mut api) =
        start(KubeEmulatorConfig::default().with_auth(Auth::Bearer("s3cret".into()))).await;
    let (status, body) = api.get("/api/v1/namespaces").await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    api.token = Some("s3cret".into());
    assert_eq!(api.get("/api/v1/namespaces").await.0, 200);

    let (_kube, mut api) = start(KubeEmulatorConfig::default().with_auth(Auth::EksToken {
        cluster_name: "runners".into(),
    }))
    .await;
    api.token = Some(fake_eks_token("eu-west-1", chrono::Utc::now()));
    assert_eq!(api.get("/api/v1/namespaces").await.0, 200);
    api.token = Some(fake_eks_token(
        "eu-west-1",
        chrono::Utc::now() - chrono::Duration::minutes(16),
    ));
    assert_eq!(api.get("/api/v1/namespaces").await.0, 401);
    api.token = Some("s3cret".into());
    assert_eq!(api.get("/api/v1/namespaces").await.0, 401);
}

#[tokio::test]
async fn https_with_the_generated_ca() {
    let kube = KubeEmulator::start(KubeEmulatorConfig::default())
        .await
        .unwrap();
    assert!(kube.url().starts_with("https://127.0.0.1:"));
    let ca = reqwest::Certificate::from_pem(kube.ca_pem().unwrap().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let version: Value = client
        .get(format!("{}/version", kube.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["major"], "1");
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{}/version", kube.url()))
            .send()
            .await
            .is_err()
    );
    let kubeconfig = kube.kubeconfig("tok");
    assert!(kubeconfig.contains(&kube.ca_base64().unwrap()));
    assert!(kubeconfig.contains("token: tok"));
    kube.shutdown().await;
}

fn runner_pod(name: &str, script: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "jit", "secret": {"secretName": "jit"}}],
            "containers": [{
                "name": "runner",
                "image": "busybox",
                "command": ["sh", "-c", script],
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "JIT", "valueFrom": {"secretKeyRef": {"name": "jit", "key": "jitconfig"}}},
                ],
                "volumeMounts": [{"name": "jit", "mountPath": "/etc/runner", "readOnly": true}],
            }],
        },
    })
}

#[tokio::test]
async fn command_runtime_runs_pods_to_the_end() {
    let (kube, api) =
        start(KubeEmulatorConfig::default().with_runtime(CommandRuntime::new())).await;
    api.post(
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "jit"}, "stringData": {"jitconfig": "e30="}}),
    )
    .await;
    let script =
        r#"cat "$KUBE_MOUNT_ETC_RUNNER/jitconfig"; echo " $GREETING $JIT $KUBE_POD_NAME"; exit 0"#;
    let (status, _) = api
        .post("/api/v1/namespaces/default/pods", runner_pod("ok", script))
        .await;
    assert_eq!(status, 201);
    let done = kube
        .wait_for_phase("default", "ok", "Succeeded", WAIT)
        .await
        .unwrap();
    let terminated = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0);
    assert_eq!(terminated["reason"], "Completed");
    let (_, log) = api.get("/api/v1/namespaces/default/pods/ok/log").await;
    assert_eq!(log, Value::String("e30= hello e30= ok\n".into()));
    // Pending → Running → Succeeded, in that order.
    let phases: Vec<String> = kube
        .events()
        .into_iter()
        .filter(|e| e.name == "ok" && e.resource == "pods")
        .filter_map(|e| e.phase)
        .collect();
    let mut distinct = phases.clone();
    distinct.dedup();
    assert_eq!(distinct, ["Pending", "Running", "Succeeded"], "{phases:?}");

    api.post(
        "/api/v1/namespaces/default/pods",
        runner_pod("bad", "exit 3"),
    )
    .await;
    let failed = kube
        .wait_for_phase("default", "bad", "Failed", WAIT)
        .await
        .unwrap();
    let terminated = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
    assert_eq!(terminated["reason"], "Error");

    let work_dir = kube.work_dir().to_path_buf();
    assert!(work_dir.join("default").exists());
    kube.shutdown().await;
    assert!(!work_dir.exists());
}

#[tokio::test]
async fn a_missing_secret_holds_the_pod_until_it_exists() {
    let (kube, api) =
        start(KubeEmulatorConfig::default().with_runtime(CommandRuntime::new())).await;
    let mut spec = runner_pod("waits", "echo $JIT");
    spec["spec"]["volumes"] = json!([]);
    spec["spec"]["containers"][0]["volumeMounts"] = json!([]);
    api.post("/api/v1/namespaces/default/pods", spec).await;
    let waiting = kube
        .wait_for_pod("default", "waits", WAIT, |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        })
        .await
        .unwrap();
    assert_eq!(waiting["status"]["phase"], "Pending");
    assert_eq!(
        waiting["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "secret \"jit\" not found"
    );
    api.post(
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "jit"}, "stringData": {"jitconfig": "late"}}),
    )
    .await;
    assert!(
        kube.wait_for_phase("default", "waits", "Succeeded", WAIT)
            .await
            .is_some()
    );
    let (_, log) = api.get("/api/v1/namespaces/default/pods/waits/log").await;
    assert_eq!(log, Value::String("late\n".into()));
}

fn alive(pid: u32) -> bool {
    // A zombie (already dead, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn deleting_a_pod_kills_its_processes() {
    let (kube, api) =
        start(KubeEmulatorConfig::default().with_runtime(CommandRuntime::new())).await;
    let scratch = tempfile::tempdir().unwrap();
    let pid_file = scratch.path().join("pid");
    let script = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
    let spec = json!({
        "metadata": {"name": "sleeper"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]},
    });
    api.post("/api/v1/namespaces/default/pods", spec).await;
    let running = kube
        .wait_for_phase("default", "sleeper", "Running", WAIT)
        .await
        .unwrap();
    let dir = kube.work_dir().join("default").join(format!(
        "sleeper-{}",
        running["metadata"]["uid"].as_str().unwrap()
    ));
    let deadline = tokio::time::Instant::now() + WAIT;
    let pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(tokio::time::Instant::now() < deadline, "no pid written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(alive(pid));
    assert!(dir.exists());
    let (status, deleted) = api.delete("/api/v1/namespaces/default/pods/sleeper").await;
    assert_eq!(status, 200);
    assert_eq!(deleted["kind"], "Pod");
    let deadline = tokio::time::Instant::now() + WAIT;
    while alive(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} survived the delete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!dir.exists());
    assert!(kube.pod("default", "sleeper").is_none());
}

#[tokio::test]
async fn without_a_runtime_pods_run_until_told() {
    let (kube, api) = start(KubeEmulatorConfig::default()).await;
    api.post(
        "/api/v1/namespaces/default/pods",
        pod("idle", json!({}), &["true"]),
    )
    .await;
    let running = kube
        .wait_for_phase("default", "idle", "Running", WAIT)
        .await
        .unwrap();
    let status = &running["status"];
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    assert!(status["startTime"].is_string());
    assert_eq!(running["spec"]["nodeName"], "kube-emulator");
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(kube.pod_phase("default", "idle").unwrap(), "Running");

    let (code, done) = api
        .post(
            "/_emulator/pods/default/idle/phase",
            json!({"phase": "Failed", "exitCode": 2}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(done["status"]["phase"], "Failed");
    assert_eq!(
        done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        2
    );
    // The kill does not overwrite what was set.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(kube.pod_phase("default", "idle").unwrap(), "Failed");
    let (_, events) = api.get("/_emulator/events").await;
    assert!(events["events"].as_array().unwrap().len() >= 4);
    let (_, requests) = api.get("/_emulator/requests").await;
    assert_eq!(requests["create pods"], 1);
}
