//! The proxy in front of a real EC2 and SSM API (moto on 127.0.0.1): the AWS SDK sees the
//! injected errors exactly as it sees AWS's (codes, retries), and everything else reaches moto.

use aws_config::retry::RetryConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use runway_aws_faults::{Fault, FaultProxy, Injected, Rule, Trigger};
use runway_testkit::MotoServer;

/// An AMI moto knows.
const AMI: &str = "ami-12c6146b";

async fn sdk_config(endpoint: &str, retries: RetryConfig) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .empty_test_environment()
        .test_credentials()
        .region(aws_config::Region::from_static("us-east-1"))
        .endpoint_url(endpoint)
        .retry_config(retries)
        .load()
        .await
}

fn moto() -> &'static MotoServer {
    MotoServer::shared().expect("moto starts (run scripts/setup.sh)")
}

fn injected(proxy: &FaultProxy, service: &str, action: &str, code: &str) -> u64 {
    proxy
        .injected()
        .get(&Injected {
            service: service.into(),
            action: action.into(),
            code: code.into(),
        })
        .copied()
        .unwrap_or(0)
}

async fn run_one(ec2: &aws_sdk_ec2::Client, token: &str) -> Result<String, String> {
    ec2.run_instances()
        .image_id(AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .client_token(token)
        .send()
        .await
        .map(|out| {
            out.instances()
                .first()
                .and_then(|i| i.instance_id())
                .unwrap_or_default()
                .to_owned()
        })
        .map_err(|error| error.code().unwrap_or("no code").to_owned())
}

#[tokio::test]
async fn a_capacity_error_reaches_the_sdk_as_ec2_sends_it_and_the_next_launch_goes_through() {
    let proxy = FaultProxy::start(
        &moto().endpoint_url(),
        vec![Rule::new(
            "ec2",
            "RunInstances",
            Fault::insufficient_instance_capacity(),
            Trigger::Count { skip: 0, count: 1 },
        )],
        1,
    )
    .await
    .unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config(&proxy.url(), RetryConfig::disabled()).await);

    assert_eq!(
        run_one(&ec2, "capacity-1").await,
        Err("InsufficientInstanceCapacity".to_owned())
    );
    let instance = run_one(&ec2, "capacity-2")
        .await
        .expect("the second launch reaches moto");
    assert!(instance.starts_with("i-"), "{instance}");
    // The instance is moto's: found through the proxy, which forwards the look-up.
    let found = ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    assert_eq!(found.reservations().len(), 1);
    assert_eq!(
        injected(
            &proxy,
            "ec2",
            "RunInstances",
            "InsufficientInstanceCapacity"
        ),
        1
    );
    assert_eq!(proxy.injected_total(), 1);
    assert!(proxy.forwarded() >= 2, "{}", proxy.forwarded());
    proxy.shutdown().await;
}

#[tokio::test]
async fn ec2_throttling_is_retried_by_the_sdk_until_it_passes() {
    let proxy = FaultProxy::start(
        &moto().endpoint_url(),
        vec![Rule::new(
            "ec2",
            "RunInstances",
            Fault::ec2_request_limit_exceeded(),
            Trigger::Count { skip: 0, count: 2 },
        )],
        2,
    )
    .await
    .unwrap();
    // The SDK's standard mode: three attempts, throttling errors retried with backoff.
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config(&proxy.url(), RetryConfig::standard()).await);
    let instance = run_one(&ec2, "throttled-1").await;
    assert!(
        instance.as_deref().is_ok_and(|id| id.starts_with("i-")),
        "{instance:?}"
    );
    assert_eq!(
        injected(&proxy, "ec2", "RunInstances", "RequestLimitExceeded"),
        2
    );

    // Without retries the caller sees the throttling code itself.
    proxy.set_rules(vec![Rule::new(
        "ec2",
        "*",
        Fault::ec2_request_limit_exceeded(),
        Trigger::Probability(1.0),
    )]);
    let bare = aws_sdk_ec2::Client::new(&sdk_config(&proxy.url(), RetryConfig::disabled()).await);
    assert_eq!(
        run_one(&bare, "throttled-2").await,
        Err("RequestLimitExceeded".to_owned())
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn ssm_put_parameter_bursts_are_throttled_and_nothing_is_written_for_them() {
    let proxy = FaultProxy::start(
        &moto().endpoint_url(),
        vec![Rule::new(
            "ssm",
            "PutParameter",
            Fault::ssm_throttling(),
            Trigger::Bursts {
                period: 3,
                burst: 2,
            },
        )],
        3,
    )
    .await
    .unwrap();
    let ssm = aws_sdk_ssm::Client::new(&sdk_config(&proxy.url(), RetryConfig::disabled()).await);
    let mut outcomes = Vec::new();
    for n in 0..6 {
        let put = ssm
            .put_parameter()
            .name(format!("/runway-faults-test/burst-{n}"))
            .value("jit")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await;
        outcomes.push(
            put.map(|_| ())
                .map_err(|e| e.code().unwrap_or("no code").to_owned()),
        );
    }
    let throttled = Err("ThrottlingException".to_owned());
    assert_eq!(
        outcomes,
        [
            throttled.clone(),
            throttled.clone(),
            Ok(()),
            throttled.clone(),
            throttled,
            Ok(())
        ]
    );
    // Only the calls that went through wrote anything; reads are not throttled by the rule.
    for (n, written) in [(0, false), (1, false), (2, true), (5, true)] {
        let got = ssm
            .get_parameter()
            .name(format!("/runway-faults-test/burst-{n}"))
            .with_decryption(true)
            .send()
            .await;
        match got {
            Ok(found) => {
                assert!(written, "parameter {n} should not exist");
                assert_eq!(found.parameter().and_then(|p| p.value()), Some("jit"));
            }
            Err(error) => {
                assert!(!written, "parameter {n}: {error:?}");
                assert_eq!(error.code(), Some("ParameterNotFound"));
            }
        }
    }
    assert_eq!(
        injected(&proxy, "ssm", "PutParameter", "ThrottlingException"),
        4
    );

    // Switched off, every call goes through.
    proxy.set_enabled(false);
    let put = ssm
        .put_parameter()
        .name("/runway-faults-test/after")
        .value("jit")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await;
    assert!(put.is_ok(), "{put:?}");
    assert_eq!(proxy.injected_total(), 4);
    proxy.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_injects_the_same_faults() {
    let mut patterns = Vec::new();
    for seed in [11, 11, 12] {
        let proxy = FaultProxy::start(
            &moto().endpoint_url(),
            vec![Rule::new(
                "ec2",
                "DescribeInstances",
                Fault::ec2_request_limit_exceeded(),
                Trigger::Probability(0.5),
            )],
            seed,
        )
        .await
        .unwrap();
        let ec2 =
            aws_sdk_ec2::Client::new(&sdk_config(&proxy.url(), RetryConfig::disabled()).await);
        let mut pattern = Vec::new();
        for _ in 0..24 {
            pattern.push(ec2.describe_instances().send().await.is_ok());
        }
        patterns.push(pattern);
        proxy.shutdown().await;
    }
    assert_eq!(patterns[0], patterns[1]);
    assert_ne!(patterns[0], patterns[2]);
    assert!(patterns[0].contains(&true) && patterns[0].contains(&false));
}
