//! ECS pools on `runway local`: what a deployed stack creates for them (a cluster with the
//! Fargate capacity providers) is made here when missing, and pools that name no subnets run
//! in the account's default VPC, so `sam/local-ecs.toml` needs nothing prepared.

use std::collections::BTreeMap;

use runway_clock::SharedClock;
use runway_config::{EcsDefaults, EcsSettings, ProviderSettings};
use runway_jobflow::PoolConfig;
use runway_providers::EcsProvider;

use crate::LocalConfig;
use crate::system::LocalError;

/// The cluster `runway local` runs a stack's ECS pools in when they name none.
pub fn local_cluster(stack: &str) -> String {
    format!("{stack}-runners")
}

/// The ECS defaults of `stack` on `runway local`: its cluster (created when missing, with
/// FARGATE and FARGATE_SPOT), and the default VPC's subnets and security group for pools that
/// name none.
async fn defaults(
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

/// A provider for every ECS pool of `config`, mapped as the deployed stack maps them, each
/// running the task definition runway registers for it when it names none.
pub(crate) async fn providers(
    config: &LocalConfig,
    aws: &aws_config::SdkConfig,
    clock: &SharedClock,
) -> Result<BTreeMap<String, EcsProvider>, LocalError> {
    let pools: Vec<(&PoolConfig, &EcsSettings)> = config
        .pools()
        .filter_map(|(pool, provider)| match provider {
            ProviderSettings::Ecs(settings) => Some((pool, settings)),
            _ => None,
        })
        .collect();
    if pools.is_empty() {
        return Ok(BTreeMap::new());
    }
    let defaults = defaults(aws, config.stack.as_str(), &pools).await?;
    let document = &config.document;
    let configs = document
        .ecs_pools(&defaults)
        .map_err(|error| crate::system::setup(error.to_string()))?;
    let mut definitions = document.ecs_task_definitions(&configs, &defaults);
    let (ecs, ssm) = (aws_sdk_ecs::Client::new(aws), aws_sdk_ssm::Client::new(aws));
    let mut providers = BTreeMap::new();
    for (pool, pool_config) in configs {
        let definition = definitions.remove(&pool);
        let provider = EcsProvider::for_pool(
            ecs.clone(),
            ssm.clone(),
            pool_config,
            definition,
            clock.clone(),
        )
        .map_err(|error| crate::system::setup(format!("pool {pool}: {error}")))?;
        providers.insert(pool, provider);
    }
    Ok(providers)
}
