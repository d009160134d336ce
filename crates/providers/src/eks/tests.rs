use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::{JitConfig, LaunchOverrides};

/// Pods and secrets in memory, selected by label as the API server does (equality only).
#[derive(Debug, Default)]
struct MemoryKube {
    pods: Mutex<BTreeMap<(String, String), Pod>>,
    secrets: Mutex<BTreeMap<(String, String), Secret>>,
}

fn selected(metadata: &ObjectMeta, selector: &str) -> bool {
    let labels = metadata.labels.clone().unwrap_or_default();
    selector.split(',').all(|term| match term.split_once('=') {
        Some((key, value)) => labels.get(key).map(String::as_str) == Some(value),
        None => false,
    })
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

#[async_trait]
impl KubeApi for MemoryKube {
    async fn create_secret(&self, namespace: &str, secret: &Secret) -> Result<Secret, KubeError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let mut secrets = self.secrets.lock().unwrap();
        if secrets.contains_key(&key(namespace, &name)) {
            return Err(KubeError::Conflict(name));
        }
        secrets.insert(key(namespace, &name), secret.clone());
        Ok(secret.clone())
    }

    async fn patch_secret(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), KubeError> {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets
            .get_mut(&key(namespace, name))
            .ok_or_else(|| KubeError::NotFound(name.to_string()))?;
        if let Some(data) = patch.get("data") {
            secret.data = serde_json::from_value(data.clone()).unwrap();
        }
        if let Some(owners) = patch.pointer("/metadata/ownerReferences") {
            secret.metadata.owner_references = serde_json::from_value(owners.clone()).unwrap();
        }
        Ok(())
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool, KubeError> {
        Ok(self
            .secrets
            .lock()
            .unwrap()
            .remove(&key(namespace, name))
            .is_some())
    }

    async fn list_secrets(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Secret>, KubeError> {
        Ok(self
            .secrets
            .lock()
            .unwrap()
            .iter()
            .filter(|((ns, _), secret)| ns == namespace && selected(&secret.metadata, selector))
            .map(|(_, secret)| secret.clone())
            .collect())
    }

    async fn create_pod(&self, namespace: &str, pod: &Pod) -> Result<Pod, KubeError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut pods = self.pods.lock().unwrap();
        if pods.contains_key(&key(namespace, &name)) {
            return Err(KubeError::Conflict(name));
        }
        let mut created = pod.clone();
        created.metadata.uid = Some(format!("uid-{name}"));
        created.metadata.creation_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        pods.insert(key(namespace, &name), created.clone());
        Ok(created)
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, KubeError> {
        Ok(self
            .pods
            .lock()
            .unwrap()
            .get(&key(namespace, name))
            .cloned())
    }

    async fn delete_pod(&self, namespace: &str, name: &str) -> Result<bool, KubeError> {
        Ok(self
            .pods
            .lock()
            .unwrap()
            .remove(&key(namespace, name))
            .is_some())
    }

    async fn list_pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, KubeError> {
        Ok(self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|((ns, _), pod)| ns == namespace && selected(&pod.metadata, selector))
            .map(|(_, pod)| pod.clone())
            .collect())
    }
}

fn request(execution: &str, runner: &str) -> LaunchRequest {
    LaunchRequest {
        execution: execution.to_string(),
        pool: "linux".to_string(),
        runner_name: runner.to_string(),
        labels: vec!["self-hosted".to_string()],
        jit_config: JitConfig::new(format!("secret-jit-{runner}")),
        overrides: LaunchOverrides::default(),
    }
}

fn pool() -> EksPoolConfig {
    EksPoolConfig::new("ci", "runners", "ghcr.io/actions/actions-runner:latest")
}

fn provider() -> (Arc<MemoryKube>, EksProvider) {
    let kube = Arc::new(MemoryKube::default());
    let provider = EksProvider::new(kube.clone(), pool()).unwrap();
    (kube, provider)
}

#[test]
fn long_values_are_labelled_by_a_hash() {
    assert_eq!(label_value("runway"), "runway");
    let execution = "x".repeat(80);
    let hashed = label_value(&execution);
    assert!(
        is_label_value(&hashed) && hashed.starts_with("h-"),
        "{hashed}"
    );
    assert_eq!(hashed, label_value(&execution));
    assert_ne!(hashed, label_value(&"x".repeat(81)));
    // A value that looks like a hash is hashed too, so no two values share a label.
    assert_ne!(label_value(&hashed), hashed);
    assert!(is_label_value(&label_value("a b/c")));
}

#[test]
fn pod_names_are_dns_labels_unique_per_runner() {
    let name = pod_name("ci", "123-456-1-a1", "runway-local-Linux_x64-7");
    assert!(
        is_dns_label(&name) && name.starts_with("runway-local-linux-x64-7-"),
        "{name}"
    );
    assert_ne!(
        name,
        pod_name("ci", "123-456-1-a2", "runway-local-Linux_x64-7")
    );
    assert_ne!(
        name,
        pod_name("cd", "123-456-1-a1", "runway-local-Linux_x64-7")
    );
    let long = pod_name("ci", &"e".repeat(80), &"R".repeat(300));
    assert!(is_dns_label(&long), "{long}");
    assert!(is_dns_label(&pod_name("ci", "e", "___")));
    assert!(secret_name(&long).len() <= 253);
}

#[test]
fn the_pod_mounts_its_secret_and_holds_no_jit_config() {
    let (_, provider) = provider();
    let mut config = pool();
    config.cpu = Some("2".into());
    config.memory_limit = Some("4Gi".into());
    let provider = EksProvider::new(provider.kube.clone(), config).unwrap();
    let request = request(&"e".repeat(80), "r-1");
    let pod = provider.pod(&request);
    let shown = serde_json::to_string(&pod).unwrap();
    assert!(!shown.contains("secret-jit-r-1"), "{shown}");
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let volume = &spec.volumes.as_ref().unwrap()[0];
    let name = pod.metadata.name.clone().unwrap();
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some(secret_name(&name).as_str())
    );
    let container = &spec.containers[0];
    assert_eq!(
        container.volume_mounts.as_ref().unwrap()[0].mount_path,
        JIT_MOUNT_DIR
    );
    assert!(container.command.as_ref().unwrap()[2].contains("./run.sh --jitconfig"));
    let resources = container.resources.as_ref().unwrap();
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "2");
    assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "4Gi");
    let labels = pod.metadata.labels.as_ref().unwrap();
    let annotations = pod.metadata.annotations.as_ref().unwrap();
    assert!(labels.values().all(|value| is_label_value(value)));
    assert_eq!(annotations[LABEL_EXECUTION], "e".repeat(80));
    assert_eq!(labels[LABEL_EXECUTION], label_value(&"e".repeat(80)));
}

#[tokio::test]
async fn launch_writes_an_owned_secret_and_terminate_removes_both() {
    let (kube, provider) = provider();
    let execution = "exec-".repeat(16);
    let launched = provider.launch(request(&execution, "r-1")).await.unwrap();
    let secret_key = key("runners", &secret_name(&launched.instance_id));
    let secret = kube.secrets.lock().unwrap()[&secret_key].clone();
    assert_eq!(
        secret.data.as_ref().unwrap()[JIT_SECRET_KEY].0,
        b"secret-jit-r-1"
    );
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Pod", launched.instance_id.as_str())
    );

    let owned = provider.owned_by(&execution).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].execution, execution);
    assert_eq!(owned[0].pool.as_deref(), Some("linux"));
    assert_eq!(
        provider.runner_on(&launched.instance_id).await.unwrap(),
        Some(owned[0].clone())
    );

    // A retried launch finds the pod and hands it the new config.
    let mut again = request(&execution, "r-1");
    again.jit_config = JitConfig::new("second-try");
    let relaunched = provider.launch(again).await.unwrap();
    assert_eq!(relaunched.instance_id, launched.instance_id);
    assert_eq!(
        kube.secrets.lock().unwrap()[&secret_key]
            .data
            .as_ref()
            .unwrap()[JIT_SECRET_KEY]
            .0,
        b"second-try"
    );

    assert_eq!(
        provider.terminate(&execution, "r-1").await.unwrap(),
        Terminated::Stopped {
            instance_ids: vec![launched.instance_id.clone()]
        }
    );
    assert!(kube.pods.lock().unwrap().is_empty());
    assert!(kube.secrets.lock().unwrap().is_empty());
    assert_eq!(
        provider.terminate(&execution, "r-1").await.unwrap(),
        Terminated::AlreadyGone
    );
}

#[tokio::test]
async fn a_secret_without_its_pod_is_owned_until_terminated() {
    let (kube, provider) = provider();
    let launched = provider.launch(request("e1", "r-1")).await.unwrap();
    kube.pods.lock().unwrap().clear();
    let owned = provider.owned().await.unwrap();
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(owned[0].instance_id, launched.instance_id);
    assert_eq!(
        provider.terminate("e1", "r-1").await.unwrap(),
        Terminated::AlreadyGone
    );
    assert!(kube.secrets.lock().unwrap().is_empty());
    assert!(provider.owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn other_stacks_are_left_alone() {
    let (kube, provider) = provider();
    provider.launch(request("e1", "r-1")).await.unwrap();
    let mut other = pool();
    other.stack = "other".into();
    let other = EksProvider::new(kube.clone(), other).unwrap();
    assert!(other.owned().await.unwrap().is_empty());
    assert_eq!(
        other.terminate("e1", "r-1").await.unwrap(),
        Terminated::AlreadyGone
    );
    assert_eq!(provider.owned().await.unwrap().len(), 1);
}

#[test]
fn unusable_settings_are_refused() {
    assert!(pool().validate().is_ok());
    type Change = Box<dyn Fn(&mut EksPoolConfig)>;
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "cluster",
            "arn",
            Box::new(|c| c.cluster = "arn:aws:eks:x".into()),
        ),
        ("cluster", "empty", Box::new(|c| c.cluster = String::new())),
        (
            "namespace",
            "upper",
            Box::new(|c| c.namespace = "Runners".into()),
        ),
        ("image", "ami", Box::new(|c| c.image = "ami-123".into())),
        ("image", "empty", Box::new(|c| c.image = String::new())),
        (
            "service_account",
            "bad",
            Box::new(|c| c.service_account = Some("A B".into())),
        ),
        ("cpu", "bad", Box::new(|c| c.cpu = Some("two".into()))),
        (
            "memory_limit",
            "bad",
            Box::new(|c| c.memory_limit = Some("4GB".into())),
        ),
        (
            "node_selector",
            "bad",
            Box::new(|c| {
                c.node_selector
                    .insert("kubernetes.io/arch".into(), "a b".into());
            }),
        ),
        (
            "labels",
            "reserved",
            Box::new(|c| {
                c.extra_labels.insert("runway/stack".into(), "x".into());
            }),
        ),
        (
            "tolerations",
            "operator",
            Box::new(|c| {
                c.tolerations.push(EksToleration {
                    key: Some("k".into()),
                    operator: Some("In".into()),
                    ..EksToleration::default()
                })
            }),
        ),
        (
            "tolerations",
            "seconds",
            Box::new(|c| {
                c.tolerations.push(EksToleration {
                    key: Some("k".into()),
                    toleration_seconds: Some(30),
                    effect: Some("NoSchedule".into()),
                    ..EksToleration::default()
                })
            }),
        ),
        (
            "runner_dir",
            "relative",
            Box::new(|c| c.runner_dir = "home".into()),
        ),
        ("", "stack", Box::new(|c| c.stack = "a/b".into())),
    ];
    for (key, name, change) in cases {
        let mut config = pool();
        change(&mut config);
        let problems = config.problems();
        assert!(
            problems.iter().any(|(k, _)| *k == key),
            "{key} {name}: {problems:?}"
        );
    }
    let mut config = pool();
    config.cpu = Some("500m".into());
    config.memory = Some("1.5Gi".into());
    config
        .node_selector
        .insert("kubernetes.io/arch".into(), "arm64".into());
    config.tolerations.push(EksToleration {
        key: Some("dedicated".into()),
        operator: Some("Equal".into()),
        value: Some("ci".into()),
        effect: Some("NoSchedule".into()),
        toleration_seconds: None,
    });
    assert_eq!(config.problems(), vec![]);
}
