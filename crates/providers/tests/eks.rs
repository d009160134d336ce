//! The EKS provider against a real EKS API (moto on 127.0.0.1) and runway's Kubernetes
//! emulator (HTTPS with its own CA, EKS tokens checked for shape).
//!
//! Where moto is not EKS: its `DescribeCluster` gives a made-up endpoint and CA, so the
//! provider is pointed at the emulator ([`EksCluster::with_endpoint`]) and still asks moto
//! whether the cluster is active.

mod contract;

use std::sync::{Arc, OnceLock};

use runway_kube_emulator::{Auth, KubeEmulator, KubeEmulatorConfig, KubeEmulatorHandle};
use runway_providers::{
    EksCluster, EksPoolConfig, EksProvider, EksTokenSource, JIT_MOUNT_DIR, KubeEndpoint,
    LABEL_EXECUTION, LABEL_MANAGED, LABEL_POOL, LABEL_RUNNER, LABEL_STACK, Provider, ProviderError,
    Terminated, label_value, secret_name,
};
use runway_testkit::MotoServer;
use serde_json::Value;

const CLUSTER: &str = "runway-runners";
const NAMESPACE: &str = "runners";
const IMAGE: &str = "ghcr.io/actions/actions-runner:2.321.0";

/// One emulator per test binary, serving every test (each uses its own executions). It runs
/// on a runtime of its own: each test's runtime ends with the test.
static EMULATOR: OnceLock<&'static KubeEmulatorHandle> = OnceLock::new();

async fn emulator() -> &'static KubeEmulatorHandle {
    EMULATOR.get_or_init(|| {
        let (started, handle) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the emulator");
            runtime.block_on(async move {
                let mut config = KubeEmulatorConfig::default().with_auth(Auth::EksToken {
                    cluster_name: CLUSTER.to_string(),
                });
                config.namespaces = vec![NAMESPACE.to_string()];
                let emulator = KubeEmulator::start(config)
                    .await
                    .expect("the Kubernetes emulator starts");
                let emulator: &'static KubeEmulatorHandle = Box::leak(Box::new(emulator));
                let _ = started.send(emulator);
                std::future::pending::<()>().await;
            });
        });
        handle
            .recv()
            .expect("the emulator thread hands its emulator over")
    })
}

async fn aws() -> aws_config::SdkConfig {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    moto.sdk_config().await
}

/// The cluster in moto (made once; creating it again is refused, which is fine).
async fn cluster(aws: &aws_config::SdkConfig, name: &str) {
    let eks = aws_sdk_eks::Client::new(aws);
    if eks.describe_cluster().name(name).send().await.is_ok() {
        return;
    }
    let subnets = runway_providers::default_vpc_subnets(&aws_sdk_ec2::Client::new(aws))
        .await
        .unwrap();
    let _ = eks
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnets[..2].to_vec()))
                .build(),
        )
        .send()
        .await;
}

async fn kube(aws: &aws_config::SdkConfig, cluster_name: &str) -> Arc<EksCluster> {
    let kube = emulator().await;
    cluster(aws, cluster_name).await;
    let tokens = Arc::new(EksTokenSource::new(
        aws.credentials_provider().expect("credentials"),
        aws.region().expect("region").to_string(),
    ));
    Arc::new(
        EksCluster::new(aws_sdk_eks::Client::new(aws), cluster_name, tokens).with_endpoint(
            KubeEndpoint {
                url: kube.url().to_string(),
                ca_pem: kube.ca_pem().expect("HTTPS").to_string(),
            },
        ),
    )
}

fn pool_config() -> EksPoolConfig {
    let mut config = EksPoolConfig::new(CLUSTER, NAMESPACE, IMAGE);
    config.cpu = Some("1".into());
    config.memory = Some("2Gi".into());
    config.memory_limit = Some("2Gi".into());
    config
        .node_selector
        .insert("kubernetes.io/os".into(), "linux".into());
    config.extra_labels.insert("team".into(), "platform".into());
    config
}

async fn fixture(_name: &str) -> Box<dyn Provider> {
    let aws = aws().await;
    Box::new(EksProvider::new(kube(&aws, CLUSTER).await, pool_config()).unwrap())
}

provider_contract_tests!(fixture);

fn pods_of(execution: &str) -> impl Fn(&Value) -> bool + '_ {
    move |object: &Value| {
        object["metadata"]["annotations"][LABEL_EXECUTION].as_str() == Some(execution)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_pod_is_labelled_and_gets_its_config_from_its_own_secret_only() {
    let aws = aws().await;
    let provider = EksProvider::new(kube(&aws, CLUSTER).await, pool_config()).unwrap();
    let kube = emulator().await;
    // An execution name of 80 characters: more than a label value takes.
    let execution = format!("eks-details-{}", "e".repeat(68));
    let request = contract::request(&execution, "eks-details-runner");
    let secret = request.jit_config.expose().to_string();
    let launched = provider.launch(request).await.unwrap();
    let pod = kube
        .pod(NAMESPACE, &launched.instance_id)
        .expect("the pod exists");

    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels[LABEL_STACK], "runway");
    assert_eq!(labels[LABEL_EXECUTION], label_value(&execution));
    assert_ne!(labels[LABEL_EXECUTION], execution.as_str());
    assert_eq!(labels[LABEL_POOL], "contract-pool");
    assert_eq!(labels[LABEL_RUNNER], "eks-details-runner");
    assert_eq!(labels[LABEL_MANAGED], "true");
    assert_eq!(labels["team"], "platform");
    assert_eq!(
        pod["metadata"]["annotations"][LABEL_EXECUTION],
        execution.as_str()
    );
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["resources"]["requests"]["memory"], "2Gi");
    assert_eq!(container["volumeMounts"][0]["mountPath"], JIT_MOUNT_DIR);
    assert!(
        !pod.to_string().contains(&secret),
        "the JIT config leaked into the pod"
    );

    // The JIT config is in the pod's secret, owned by the pod.
    let secret_object = kube
        .secret(NAMESPACE, &secret_name(&launched.instance_id))
        .expect("the secret exists");
    let stored = secret_object["data"]["jitconfig"].as_str().unwrap();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(stored)
        .unwrap();
    assert_eq!(decoded, secret.as_bytes());
    let owner = &secret_object["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Pod");
    assert_eq!(owner["name"], launched.instance_id.as_str());
    assert_eq!(owner["uid"], pod["metadata"]["uid"]);
    assert_eq!(
        secret_object["metadata"]["labels"][LABEL_RUNNER],
        "eks-details-runner"
    );

    // Teardown finds both by the execution's label and deletes them.
    let owned = provider.owned_by(&execution).await.unwrap();
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(owned[0].execution, execution);
    assert_eq!(
        provider.runner_on(&launched.instance_id).await.unwrap(),
        Some(owned[0].clone())
    );
    assert!(matches!(
        provider
            .terminate(&execution, "eks-details-runner")
            .await
            .unwrap(),
        Terminated::Stopped { .. }
    ));
    assert!(
        kube.pods(NAMESPACE)
            .iter()
            .all(|pod| !pods_of(&execution)(pod))
    );
    assert!(
        kube.secrets(NAMESPACE)
            .iter()
            .all(|secret| !pods_of(&execution)(secret))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_launch_finds_its_pod_and_hands_it_the_new_config() {
    let aws = aws().await;
    let provider = EksProvider::new(kube(&aws, CLUSTER).await, pool_config()).unwrap();
    let kube = emulator().await;
    let first = provider
        .launch(contract::request("eks-retry", "eks-retry-runner"))
        .await
        .unwrap();
    let mut again = contract::request("eks-retry", "eks-retry-runner");
    again.jit_config = runway_providers::JitConfig::new("second-try");
    let second = provider.launch(again).await.unwrap();
    assert_eq!(first.instance_id, second.instance_id);
    assert_eq!(
        kube.pods(NAMESPACE)
            .iter()
            .filter(|pod| pods_of("eks-retry")(pod))
            .count(),
        1
    );
    let secret = kube
        .secret(NAMESPACE, &secret_name(&first.instance_id))
        .unwrap();
    assert_eq!(secret["data"]["jitconfig"], "c2Vjb25kLXRyeQ==");
    provider
        .terminate("eks-retry", "eks-retry-runner")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_left_without_its_pod_is_owned_and_removed() {
    let aws = aws().await;
    let provider = EksProvider::new(kube(&aws, CLUSTER).await, pool_config()).unwrap();
    let kube = emulator().await;
    let launched = provider
        .launch(contract::request("eks-stray", "eks-stray-runner"))
        .await
        .unwrap();
    // The pod goes without the cluster's garbage collector taking the secret (the emulator
    // has none).
    kube.delete("pods", NAMESPACE, &launched.instance_id)
        .unwrap();
    let owned = provider.owned_by("eks-stray").await.unwrap();
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(owned[0].instance_id, launched.instance_id);
    assert_eq!(
        provider
            .terminate("eks-stray", "eks-stray-runner")
            .await
            .unwrap(),
        Terminated::AlreadyGone
    );
    assert!(
        kube.secret(NAMESPACE, &secret_name(&launched.instance_id))
            .is_none()
    );
    assert!(provider.owned_by("eks-stray").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_not_there_is_a_configuration_error() {
    let aws = aws().await;
    let tokens = Arc::new(EksTokenSource::new(
        aws.credentials_provider().unwrap(),
        "us-east-1",
    ));
    let kube = Arc::new(EksCluster::new(
        aws_sdk_eks::Client::new(&aws),
        "no-such-cluster",
        tokens,
    ));
    let mut config = pool_config();
    config.cluster = "no-such-cluster".into();
    let provider = EksProvider::new(kube, config).unwrap();
    let error = provider
        .launch(contract::request("eks-missing", "eks-missing-runner"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error}");
    assert!(error.to_string().contains("DescribeCluster"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_is_not_there_says_what_to_fix() {
    let aws = aws().await;
    let mut config = pool_config();
    config.namespace = "missing".into();
    let provider = EksProvider::new(kube(&aws, CLUSTER).await, config).unwrap();
    let error = provider
        .launch(contract::request(
            "eks-no-namespace",
            "eks-no-namespace-runner",
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Config { .. }), "{error}");
    assert!(error.to_string().contains("namespace"), "{error}");
}
