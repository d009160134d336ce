//! The provider contract: every [`Provider`] passes these.
//!
//! Each test uses its own execution names, so tests may share a provider's backing service
//! (one moto server per test binary) and run in parallel.

use runway_providers::{
    JitConfig, LaunchOverrides, LaunchRequest, OwnedRunner, Provider, Terminated,
};

/// A launch request for `runner` owned by `execution`, with a JIT config unique to it.
pub fn request(execution: &str, runner: &str) -> LaunchRequest {
    LaunchRequest {
        execution: execution.to_string(),
        pool: "contract-pool".to_string(),
        runner_name: runner.to_string(),
        labels: vec!["self-hosted".to_string(), "linux".to_string()],
        jit_config: JitConfig::new(format!("jit-config-for-{runner}")),
        overrides: LaunchOverrides::default(),
    }
}

async fn owned_by(provider: &dyn Provider, execution: &str) -> Vec<OwnedRunner> {
    provider
        .owned()
        .await
        .expect("owned() lists runners")
        .into_iter()
        .filter(|runner| runner.execution == execution)
        .collect()
}

/// launch → owned lists it → terminate → owned does not → terminate again is AlreadyGone.
pub async fn a_launched_runner_is_owned_until_terminated(provider: &dyn Provider, tag: &str) {
    let execution = format!("{tag}-lifecycle");
    let runner = format!("{tag}-lifecycle-runner");
    let launched = provider
        .launch(request(&execution, &runner))
        .await
        .expect("launch succeeds");
    assert_eq!(launched.runner_name, runner);
    assert_eq!(launched.provider, provider.kind());
    assert!(!launched.instance_id.is_empty());

    let owned = owned_by(provider, &execution).await;
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(owned[0].runner_name, runner);
    assert_eq!(owned[0].instance_id, launched.instance_id);
    assert_eq!(owned[0].provider, provider.kind());
    assert_eq!(owned[0].pool.as_deref(), Some("contract-pool"));

    let terminated = provider
        .terminate(&execution, &runner)
        .await
        .expect("terminate succeeds");
    assert_eq!(
        terminated,
        Terminated::Stopped {
            instance_ids: vec![launched.instance_id.clone()]
        }
    );
    assert!(owned_by(provider, &execution).await.is_empty());

    let again = provider
        .terminate(&execution, &runner)
        .await
        .expect("terminating again succeeds");
    assert_eq!(again, Terminated::AlreadyGone);
}

/// Two runners are launched, listed and terminated independently.
pub async fn runners_are_independent(provider: &dyn Provider, tag: &str) {
    let execution_a = format!("{tag}-independent-a");
    let execution_b = format!("{tag}-independent-b");
    let runner_a = format!("{tag}-independent-runner-a");
    let runner_b = format!("{tag}-independent-runner-b");
    let a = provider
        .launch(request(&execution_a, &runner_a))
        .await
        .expect("launch a");
    let b = provider
        .launch(request(&execution_b, &runner_b))
        .await
        .expect("launch b");
    assert_ne!(a.instance_id, b.instance_id);

    // The wrong execution does not own runner b.
    assert_eq!(
        provider.terminate(&execution_a, &runner_b).await.unwrap(),
        Terminated::AlreadyGone
    );
    assert_eq!(owned_by(provider, &execution_b).await.len(), 1);

    assert!(matches!(
        provider.terminate(&execution_a, &runner_a).await.unwrap(),
        Terminated::Stopped { .. }
    ));
    assert!(owned_by(provider, &execution_a).await.is_empty());
    let still = owned_by(provider, &execution_b).await;
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(still[0].runner_name, runner_b);
    assert_eq!(still[0].instance_id, b.instance_id);

    assert!(matches!(
        provider.terminate(&execution_b, &runner_b).await.unwrap(),
        Terminated::Stopped { .. }
    ));
    assert!(owned_by(provider, &execution_b).await.is_empty());
}

/// A runner never launched is already gone.
pub async fn an_unknown_runner_is_already_gone(provider: &dyn Provider, tag: &str) {
    let outcome = provider
        .terminate(&format!("{tag}-never-started"), &format!("{tag}-no-runner"))
        .await
        .expect("terminating an unknown runner succeeds");
    assert_eq!(outcome, Terminated::AlreadyGone);
}

/// Runs every contract test against the provider a fixture function makes.
#[macro_export]
macro_rules! provider_contract_tests {
    ($fixture:path) => {
        provider_contract_tests!(@each $fixture;
            a_launched_runner_is_owned_until_terminated,
            runners_are_independent,
            an_unknown_runner_is_already_gone,
        );
    };
    (@each $fixture:path; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let provider = $fixture(stringify!($name)).await;
                contract::$name(provider.as_ref(), stringify!($name)).await;
            }
        )*
    };
}
