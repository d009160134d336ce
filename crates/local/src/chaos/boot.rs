//! What an EC2 instance's boot script does, for instances on an AWS API without machines
//! (moto): read the instance's JIT config from SSM, delete it, run one ephemeral runner against
//! the GitHub emulator, and shut the instance down (terminate) when the runner exits.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// How often the boot loop looks for new instances.
const TICK: Duration = Duration::from_millis(300);

/// Instances of runway's with a live state.
pub(crate) async fn live_instances(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<(String, BTreeMap<String, String>)>, String> {
    let mut found = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:runway:managed")
                .values("true")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| format!("DescribeInstances failed: {error:?}"))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let live = matches!(
                instance.state().and_then(|s| s.name()),
                Some(InstanceStateName::Pending | InstanceStateName::Running)
            );
            if let (true, Some(id)) = (live, instance.instance_id()) {
                let tags = instance
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect();
                found.push((id.to_owned(), tags));
            }
        }
    }
    Ok(found)
}

/// Boots runners for runway's instances until `stop` turns true.
pub(crate) async fn boot_instances(
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    ssm_prefix: String,
    runner_url: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut runners: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    loop {
        if *stop.borrow() {
            break;
        }
        match live_instances(&ec2).await {
            Ok(live) => {
                let live_ids: Vec<&String> = live.iter().map(|(id, _)| id).collect();
                // A terminated instance takes its runner with it.
                runners.retain(|id, runner| {
                    let live = live_ids.contains(&id);
                    if !live {
                        runner.abort();
                    }
                    live
                });
                for (id, _) in &live {
                    if runners.contains_key(id) {
                        continue;
                    }
                    let parameter = format!("{ssm_prefix}/{id}");
                    let config = ssm
                        .get_parameter()
                        .name(&parameter)
                        .with_decryption(true)
                        .send()
                        .await;
                    let Some(jit) = config
                        .ok()
                        .and_then(|out| out.parameter().and_then(|p| p.value()).map(str::to_owned))
                    else {
                        // Not written yet: the boot script keeps asking.
                        continue;
                    };
                    if let Err(error) = ssm.delete_parameter().name(&parameter).send().await {
                        warn!(%parameter, error = ?error, "the booted runner could not delete its JIT config");
                    }
                    debug!(instance = %id, "booting a runner");
                    let ec2 = ec2.clone();
                    let url = runner_url.clone();
                    let instance = id.clone();
                    runners.insert(
                        id.clone(),
                        tokio::spawn(async move {
                            let options =
                                runway_github_emulator::runner::RunnerOptions::new(Some(url), jit);
                            if let Err(error) = runway_github_emulator::runner::run(options).await {
                                debug!(%error, "a booted runner stopped");
                            }
                            // `shutdown -h now`: the instance terminates itself.
                            let _ = ec2
                                .terminate_instances()
                                .instance_ids(instance)
                                .send()
                                .await;
                        }),
                    );
                }
            }
            Err(error) => warn!(%error, "cannot list the instances to boot"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => {}
        }
    }
    for (_, runner) in runners {
        runner.abort();
    }
}
