//! The account's default VPC: where runners go when neither the pool nor the stack names a
//! network (`runway local`, and the tests on moto).

use aws_sdk_ec2::types::Filter;

use crate::ProviderError;
use crate::shared::sdk_error;

const VPC_FIX: &str = "name subnets and security groups in the pool's provider settings, or \
                       create a default VPC (aws ec2 create-default-vpc)";

/// The default VPC's default subnets (one per availability zone), sorted.
pub async fn default_vpc_subnets(ec2: &aws_sdk_ec2::Client) -> Result<Vec<String>, ProviderError> {
    let found = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .map_err(|error| sdk_error("EC2", "DescribeSubnets", error, VPC_FIX))?;
    let mut subnets: Vec<String> = found
        .subnets()
        .iter()
        .filter_map(|subnet| subnet.subnet_id().map(str::to_string))
        .collect();
    subnets.sort();
    Ok(subnets)
}

/// The default VPC's `default` security group; `None` when the account has no default VPC.
pub async fn default_vpc_security_group(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Option<String>, ProviderError> {
    let vpcs = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .map_err(|error| sdk_error("EC2", "DescribeVpcs", error, VPC_FIX))?;
    let Some(vpc) = vpcs.vpcs().first().and_then(|vpc| vpc.vpc_id()) else {
        return Ok(None);
    };
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .map_err(|error| sdk_error("EC2", "DescribeSecurityGroups", error, VPC_FIX))?;
    Ok(groups
        .security_groups()
        .first()
        .and_then(|group| group.group_id())
        .map(str::to_string))
}
