//! Check 5: each EC2 pool's image and subnets exist. The pools are read as the functions read
//! them (the configuration document with the stack's defaults, `StackSettings::ec2_pools`),
//! so a subnet the stack gives every pool is checked too.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use runway_providers::{Ec2PoolConfig, ImageSource, RESOLVE_SSM};

use crate::{DoctorError, Finding};

/// What EC2 and SSM say of images and subnets.
#[async_trait]
pub trait Images: Send + Sync {
    /// The AMI's state (`available`, `pending`, ...); `None` when there is no such image.
    async fn image_state(&self, ami: &str) -> Result<Option<String>, DoctorError>;
    /// An SSM parameter's value; `None` when there is none.
    async fn parameter(&self, name: &str) -> Result<Option<String>, DoctorError>;
    /// Whether the subnet exists.
    async fn subnet_exists(&self, id: &str) -> Result<bool, DoctorError>;
}

/// EC2 and SSM.
#[derive(Debug, Clone)]
pub struct AwsImages {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
}

impl AwsImages {
    pub fn new(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client) -> AwsImages {
        AwsImages { ec2, ssm }
    }
}

#[async_trait]
impl Images for AwsImages {
    async fn image_state(&self, ami: &str) -> Result<Option<String>, DoctorError> {
        match self.ec2.describe_images().image_ids(ami).send().await {
            Ok(output) => Ok(output.images().first().map(|image| {
                image
                    .state()
                    .map(|state| state.as_str().to_owned())
                    .unwrap_or_else(|| "available".to_owned())
            })),
            Err(error)
                if error
                    .code()
                    .is_some_and(|code| code.starts_with("InvalidAMIID")) =>
            {
                Ok(None)
            }
            Err(error) => Err(DoctorError::aws(
                format!("ec2:DescribeImages {ami}"),
                DisplayErrorContext(&error),
            )),
        }
    }

    async fn parameter(&self, name: &str) -> Result<Option<String>, DoctorError> {
        match self.ssm.get_parameter().name(name).send().await {
            Ok(output) => Ok(output
                .parameter()
                .and_then(|p| p.value())
                .map(str::to_owned)),
            Err(error)
                if aws_sdk_ssm::error::ProvideErrorMetadata::code(&error)
                    == Some("ParameterNotFound") =>
            {
                Ok(None)
            }
            Err(error) => Err(DoctorError::aws(
                format!("ssm:GetParameter {name}"),
                aws_sdk_ssm::error::DisplayErrorContext(&error),
            )),
        }
    }

    async fn subnet_exists(&self, id: &str) -> Result<bool, DoctorError> {
        match self.ec2.describe_subnets().subnet_ids(id).send().await {
            Ok(output) => Ok(!output.subnets().is_empty()),
            Err(error) if error.code() == Some("InvalidSubnetID.NotFound") => Ok(false),
            Err(error) => Err(DoctorError::aws(
                format!("ec2:DescribeSubnets {id}"),
                DisplayErrorContext(&error),
            )),
        }
    }
}

/// Check 5 on every EC2 pool: one finding per pool.
pub async fn check_pools(
    images: &dyn Images,
    pools: &BTreeMap<String, Ec2PoolConfig>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (pool, config) in pools {
        findings.push(check_pool(images, pool, config).await);
    }
    findings
}

async fn check_pool(images: &dyn Images, pool: &str, config: &Ec2PoolConfig) -> Finding {
    let check = format!("pool {pool}");
    let fix_image = format!(
        "set pool {pool}'s ec2.image to an AMI of this region (aws ec2 describe-images --owners \
         amazon --filters Name=name,Values='al2023-ami-2023*-x86_64' --query \
         'sort_by(Images,&CreationDate)[-1].ImageId') or to resolve:ssm:/aws/service/\
         ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64, then update the configuration"
    );
    let image = match &config.image {
        ImageSource::Ami(ami) => match images.image_state(ami).await {
            Ok(Some(state)) if state == "available" => format!("image {ami}"),
            Ok(Some(state)) => {
                return Finding::fail(
                    check,
                    format!("image {ami} is {state}, not available"),
                    fix_image,
                );
            }
            Ok(None) => {
                return Finding::fail(
                    check,
                    format!(
                        "image {ami} does not exist in this region (or is not shared with this account)"
                    ),
                    fix_image,
                );
            }
            Err(error) => {
                return Finding::warn(
                    check,
                    format!("cannot check image {ami}: {error}"),
                    "give the doctor's credentials ec2:DescribeImages",
                );
            }
        },
        ImageSource::SsmParameter(parameter) => match images.parameter(parameter).await {
            Ok(Some(ami)) => match images.image_state(&ami).await {
                Ok(Some(state)) if state == "available" => {
                    format!("image {RESOLVE_SSM}{parameter} = {ami}")
                }
                Ok(_) => {
                    return Finding::fail(
                        check,
                        format!(
                            "{RESOLVE_SSM}{parameter} names {ami}, which is not an available image"
                        ),
                        format!(
                            "put an available AMI id in {parameter} (aws ssm put-parameter --name {parameter} --overwrite --value ami-...), or {fix_image}"
                        ),
                    );
                }
                Err(error) => {
                    return Finding::warn(
                        check,
                        format!("cannot check image {ami}: {error}"),
                        "give the doctor's credentials ec2:DescribeImages",
                    );
                }
            },
            Ok(None) => {
                return Finding::fail(
                    check,
                    format!(
                        "{RESOLVE_SSM}{parameter}: there is no such SSM parameter in this region"
                    ),
                    fix_image,
                );
            }
            Err(error) => {
                return Finding::warn(
                    check,
                    format!("cannot read {parameter}: {error}"),
                    "give the doctor's credentials ssm:GetParameter",
                );
            }
        },
        ImageSource::LaunchTemplate { template, .. } => {
            format!("launch template {template:?} (its image is EC2's to check at launch)")
        }
    };
    let mut missing = Vec::new();
    for subnet in &config.subnets {
        match images.subnet_exists(subnet).await {
            Ok(true) => {}
            Ok(false) => missing.push(subnet.clone()),
            Err(error) => {
                return Finding::warn(
                    check,
                    format!("{image}; cannot check subnet {subnet}: {error}"),
                    "give the doctor's credentials ec2:DescribeSubnets",
                );
            }
        }
    }
    if !missing.is_empty() {
        return Finding::fail(
            check,
            format!(
                "{image}; subnet(s) {} do not exist in this region",
                missing.join(", ")
            ),
            format!(
                "list the subnets there are (aws ec2 describe-subnets --query \
                 'Subnets[].[SubnetId,VpcId,AvailabilityZone]' --output text) and set pool {pool}'s \
                 ec2.subnets, or the stack's RunnerSubnets parameter, to existing ones"
            ),
        );
    }
    let subnets = if config.subnets.is_empty() {
        "the default VPC's subnets".to_owned()
    } else {
        format!("subnet(s) {}", config.subnets.join(", "))
    };
    Finding::ok(check, format!("{image}, {subnets}"))
}
