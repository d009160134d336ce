//! ECS pools on `runway local`: what a deployed stack creates for them (a cluster with the
//! Fargate capacity providers) is made here when missing, and pools that name no subnets run
//! in the account's default VPC, so `sam/local-ecs.toml` needs nothing prepared.

use runway_clock::SharedClock;
use runway_config::{EcsDefaults, EcsSettings};
use runway_jobflow::PoolConfig;
use runway_providers::EcsProvider;

use crate::system::LocalError;

/// The cluster `runway local` runs a stack's ECS pools in when they name none.
pub fn local_cluster(stack: &str) -> String {
    format!("{stack}-runners")
}

/// The ECS defaults of `stack` on `runway local`: its cluster (created when missing, with
/// FARGATE and FARGATE_SPOT), and the default VPC's subnets and security group for pools that
/// name none.
pub(crate) async fn defaults(
    aws: &aws_config::SdkConfig,
    stack: &str,
    pools: &[(&PoolConfig, &EcsSettings)],
) -> Result<EcsDefaults, LocalError> {
    let mut defaults = EcsDefaults::for_stack(stack);
    if pools.iter().any(|(_, settings)| settings.cluster.is_none()) {
        let cluster = local_cluster(stack);
        ensure_cluster(&aws_sdk_ecs::Client::new(aws), &cluster).await?;
        defaults.cluster = Some(cluster);
    }
    let needs_network = pools
        .iter()
        .any(|(_, settings)| settings.subnets.is_none() || settings.security_groups.is_none());
    if needs_network {
        let ec2 = aws_sdk_ec2::Client::new(aws);
        defaults.subnets = default_subnets(&ec2).await?;
        defaults.security_groups = default_security_group(&ec2).await?.into_iter().collect();
    }
    Ok(defaults)
}

/// Creates `cluster` with the Fargate capacity providers; ECS answers an existing cluster's
/// name with that cluster, so this is safe to repeat.
async fn ensure_cluster(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<(), LocalError> {
    ecs.create_cluster()
        .cluster_name(cluster)
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .send()
        .await
        .map_err(|error| {
            crate::system::setup(format!(
                "could not create the ECS cluster {cluster:?} for the ECS pools: {}; create it \
                 (with the FARGATE and FARGATE_SPOT capacity providers) or name one in the \
                 pools' provider.cluster",
                aws_smithy_types::error::display::DisplayErrorContext(&error)
            ))
        })?;
    Ok(())
}

async fn default_subnets(ec2: &aws_sdk_ec2::Client) -> Result<Vec<String>, LocalError> {
    let mut subnets = runway_providers::default_vpc_subnets(ec2)
        .await
        .map_err(|error| {
            crate::system::setup(format!(
                "could not find the default VPC's subnets for the ECS pools: {error}"
            ))
        })?;
    subnets.truncate(16);
    if subnets.is_empty() {
        return Err(crate::system::setup(
            "the account has no default VPC subnets for the ECS pools: name subnets in the \
             pools' provider.subnets",
        ));
    }
    Ok(subnets)
}

async fn default_security_group(ec2: &aws_sdk_ec2::Client) -> Result<Option<String>, LocalError> {
    runway_providers::default_vpc_security_group(ec2)
        .await
        .map_err(|error| {
            crate::system::setup(format!(
                "could not find the default VPC's security group for the ECS pools: {error}"
            ))
        })
}

/// The provider of ECS pool `pool` (at `pools[index]`), mapped as the deployed stack maps it,
/// running the task definition runway registers for it when it names none.
pub(crate) fn provider(
    index: usize,
    pool: &PoolConfig,
    settings: &EcsSettings,
    defaults: &EcsDefaults,
    aws: &aws_config::SdkConfig,
    clock: &SharedClock,
) -> Result<EcsProvider, LocalError> {
    let config =
        runway_config::ecs_pool_config(index, pool, settings, defaults).map_err(|problems| {
            crate::system::setup(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    let definition = runway_config::ecs_default_task_definition(pool, &config, defaults);
    let mut provider = EcsProvider::new(
        aws_sdk_ecs::Client::new(aws),
        aws_sdk_ssm::Client::new(aws),
        config,
    )
    .map_err(|error| crate::system::setup(format!("pool {}: {error}", pool.name)))?
    .with_clock(clock.clone());
    if let Some(definition) = definition {
        provider = provider
            .with_default_task_definition(definition)
            .map_err(|error| crate::system::setup(format!("pool {}: {error}", pool.name)))?;
    }
    Ok(provider)
}
