//! Where the stack keeps its credentials and its configuration: SSM parameters and Secrets
//! Manager secrets, read by the rule the functions use (a `arn:…:secretsmanager:…` location is
//! a secret, anything else an SSM parameter).

use async_trait::async_trait;

use crate::DoctorError;

/// Reads a stored value.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The value at `location` (decrypted).
    async fn read(&self, location: &str) -> Result<String, DoctorError>;
}

/// SSM and Secrets Manager, through `runway_setup::read_credential` (what the functions call).
#[derive(Debug, Clone)]
pub struct AwsSecrets {
    aws: aws_config::SdkConfig,
}

impl AwsSecrets {
    pub fn new(aws: aws_config::SdkConfig) -> AwsSecrets {
        AwsSecrets { aws }
    }
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn read(&self, location: &str) -> Result<String, DoctorError> {
        runway_setup::read_credential(&self.aws, location)
            .await
            .map_err(|error| DoctorError::Unreadable {
                location: location.to_owned(),
                reason: error.to_string(),
            })
    }
}
