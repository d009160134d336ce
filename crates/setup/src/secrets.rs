//! Credentials from SSM Parameter Store or Secrets Manager, chosen by the form of their
//! location ([`CredentialSource::from_location`]): a Secrets Manager ARN is read with
//! `GetSecretValue`, any other location is an SSM SecureString read with `GetParameter`.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use crate::SetupError;
use crate::settings::CredentialSource;
use crate::wiring::read_parameter;

/// Whether `location` is a Secrets Manager ARN: `arn:PARTITION:secretsmanager:...`, in any
/// partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
pub fn is_secret_arn(location: &str) -> bool {
    let mut fields = location.splitn(4, ':');
    matches!(
        (fields.next(), fields.next(), fields.next(), fields.next()),
        (Some("arn"), Some(partition), Some("secretsmanager"), Some(_))
            if partition.starts_with("aws")
    )
}

/// Reads the secret string of a Secrets Manager secret (its current version).
pub async fn read_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<String, SetupError> {
    let failed = |reason: String| SetupError::Secret {
        id: id.to_owned(),
        reason,
    };
    let output = secrets
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|error| failed(secret_error_reason(error)))?;
    match output.secret_string {
        Some(value) if !value.trim().is_empty() => Ok(value),
        Some(_) => Err(failed(
            "it is empty: put the credential in it (aws secretsmanager put-secret-value \
             --secret-id ARN --secret-string file://VALUE)"
                .into(),
        )),
        None if output.secret_binary.is_some() => Err(failed(
            "it holds binary data: store the credential as the secret's string \
             (put-secret-value --secret-string)"
                .into(),
        )),
        None => Err(failed(
            "it has no value: put the credential in it (aws secretsmanager put-secret-value \
             --secret-id ARN --secret-string file://VALUE)"
                .into(),
        )),
    }
}

/// What went wrong reading a secret, and what to do about it.
fn secret_error_reason(
    error: aws_sdk_secretsmanager::error::SdkError<GetSecretValueError>,
) -> String {
    let detail = aws_sdk_secretsmanager::error::DisplayErrorContext(&error).to_string();
    let Some(service) = error.as_service_error() else {
        return format!("{detail}; check the network path to Secrets Manager");
    };
    match service {
        GetSecretValueError::ResourceNotFoundException(_) => format!(
            "it does not exist: give the full ARN of a secret in this account and region \
             (or create it with aws secretsmanager create-secret) ({detail})"
        ),
        GetSecretValueError::DecryptionFailure(_) => format!(
            "it cannot be decrypted: the function's role needs kms:Decrypt on the secret's KMS \
             key, through Secrets Manager ({detail})"
        ),
        GetSecretValueError::InvalidRequestException(_) => format!(
            "it cannot be read now, for example because it is scheduled for deletion: restore \
             it (aws secretsmanager restore-secret) ({detail})"
        ),
        other if other.code() == Some("AccessDeniedException") => format!(
            "access denied: the function's role needs secretsmanager:GetSecretValue on this \
             secret's ARN (set it as the stack's credential parameter so the template grants \
             it) ({detail})"
        ),
        _ => detail,
    }
}

/// The value of a credential, from wherever `source` says it is.
pub(crate) async fn credential_value(
    aws: &SdkConfig,
    source: &CredentialSource,
) -> Result<String, SetupError> {
    match source {
        CredentialSource::Value(value) => Ok(value.clone()),
        CredentialSource::Parameter(name) => {
            read_parameter(&aws_sdk_ssm::Client::new(aws), name).await
        }
        CredentialSource::Secret(arn) => {
            read_secret(&aws_sdk_secretsmanager::Client::new(aws), arn).await
        }
    }
}

/// Reads the credential stored at `location`: a Secrets Manager secret when it is a secret's
/// ARN, otherwise an SSM SecureString (see [`CredentialSource::from_location`]).
pub async fn read_credential(aws: &SdkConfig, location: &str) -> Result<String, SetupError> {
    credential_value(aws, &CredentialSource::from_location(location)).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn secret_arns_are_told_from_parameter_names() {
        for arn in [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:runway/github-AbCdEf",
            "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:key-AbCdEf",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:k-AbCdEf",
        ] {
            assert!(is_secret_arn(arn), "{arn}");
            assert_eq!(
                CredentialSource::from_location(&format!(" {arn} ")),
                CredentialSource::Secret(arn.into())
            );
        }
        for other in [
            "/runway/github/private-key",
            "runway-key",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/runway/key",
            "arn:aws:secretsmanager",
            "arn:gcp:secretsmanager:x:y:secret:z",
            "secretsmanager:arn:aws:x",
            "",
        ] {
            assert!(!is_secret_arn(other), "{other}");
        }
        assert_eq!(
            CredentialSource::from_location("/runway/github/token"),
            CredentialSource::Parameter("/runway/github/token".into())
        );
    }

    proptest! {
        /// SSM parameter names never contain ':', so no parameter is taken for a secret; and
        /// every ARN of a secret, whatever its name, is one.
        #[test]
        fn parameter_names_are_never_secrets(name in "/[A-Za-z0-9_.\\-/]{1,60}") {
            prop_assert!(!is_secret_arn(&name));
            prop_assert_eq!(
                CredentialSource::from_location(&name),
                CredentialSource::Parameter(name.clone())
            );
        }

        #[test]
        fn secret_arns_are_secrets(
            partition in "aws(-[a-z]{2,6})?",
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            account in "[0-9]{12}",
            name in "[A-Za-z0-9/_+=.@\\-]{1,40}",
        ) {
            let arn = format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{name}");
            prop_assert!(is_secret_arn(&arn));
        }
    }
}
