//! What the AWS providers share: ownership tags, the stack name's rules, stable hashed ids, and
//! the mapping from AWS error codes to errors a caller can act on.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::ProviderError;

/// The stack a provider belongs to unless told otherwise.
pub const DEFAULT_STACK: &str = "runway";

pub(crate) const TAG_STACK: &str = "runway:stack";
pub(crate) const TAG_EXECUTION: &str = "runway:execution";
pub(crate) const TAG_POOL: &str = "runway:pool";
pub(crate) const TAG_RUNNER: &str = "runway:runner";
pub(crate) const TAG_MANAGED: &str = "runway:managed";

/// A CloudFormation stack name: letters, digits and `-`, at most 128, not starting with `-`.
pub fn is_stack_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Characters that may go into a boot script or an SSM path unquoted.
pub(crate) fn is_plain_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-')
}

/// The stack-name problem, worded once for every provider.
/// A pool's settings as one result: the first of its problems (`(setting, reason)`, as the
/// settings' `problems()` list them), or none.
pub(crate) fn first_problem(problems: Vec<(&'static str, String)>) -> Result<(), ProviderError> {
    match problems.into_iter().next() {
        None => Ok(()),
        Some((_, reason)) => Err(ProviderError::Config { reason }),
    }
}

pub(crate) fn check_stack_name(stack: &str) -> Result<(), ProviderError> {
    if is_stack_name(stack) {
        return Ok(());
    }
    Err(ProviderError::config(format!(
        "the stack name {stack:?} must be 1 to 128 letters, digits and '-', starting with a \
         letter or digit (a CloudFormation stack name)"
    )))
}

/// `prefix` followed by the hex of the first `bytes` bytes of a SHA-256 over `parts`, each
/// length-prefixed so ("ab", "c") and ("a", "bc") differ: a stable id for the same inputs.
pub(crate) fn hashed_id(prefix: &str, parts: &[&str], bytes: usize) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    format!(
        "{prefix}{}",
        hex::encode(&digest[..bytes.min(digest.len())])
    )
}

pub(crate) fn to_chrono(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

/// Error codes of a throttled AWS request (SSM, EC2, ECS).
pub(crate) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "TooManyUpdates" | "Throttling" | "RequestLimitExceeded"
    )
}

/// Maps an AWS error code to the error a caller can act on; `fix` says what to check when the
/// pool's settings or runway's rights are wrong.
pub(crate) fn classify(
    service: &str,
    action: &str,
    code: Option<&str>,
    message: &str,
    fix: &str,
) -> ProviderError {
    let reason = format!("{action}: {message}");
    let Some(code) = code else {
        return ProviderError::Unavailable {
            service: service.to_string(),
            reason,
        };
    };
    match code {
        _ if is_throttling(code) => ProviderError::Throttled {
            service: service.to_string(),
            reason,
        },
        "InternalError"
        | "InternalFailure"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "Unavailable"
        | "ServerException" => ProviderError::Unavailable {
            service: service.to_string(),
            reason,
        },
        _ if code.starts_with("Invalid")
            || code.starts_with("Unauthorized")
            || code.starts_with("AccessDenied")
            || code.starts_with("Missing")
            || code.ends_with("LimitExceeded")
            || code == "AuthFailure"
            || code == "OptInRequired"
            || code == "PendingVerification"
            || code == "VcpuLimitExceeded" =>
        {
            ProviderError::Config {
                reason: format!("{reason} ({code}); {fix}"),
            }
        }
        _ => ProviderError::Other {
            reason: format!("{service} {reason} ({code})"),
        },
    }
}

/// [`classify`] for an SDK error of any AWS client.
pub(crate) fn sdk_error<E, R>(
    service: &str,
    action: &str,
    error: SdkError<E, R>,
    fix: &str,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(_) => classify(service, action, error.code(), &message, fix),
        SdkError::ConstructionFailure(_) => {
            ProviderError::other(format!("{service} {action}: {message}"))
        }
        _ => classify(service, action, None, &message, fix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_ids_are_stable_and_separate_their_parts() {
        let id = hashed_id("runway-", &["a", "bc"], 14);
        assert_eq!(id, hashed_id("runway-", &["a", "bc"], 14));
        assert_ne!(id, hashed_id("runway-", &["ab", "c"], 14));
        assert_eq!(id.len(), "runway-".len() + 28);
    }

    #[test]
    fn errors_are_classified_for_the_caller() {
        assert!(matches!(
            classify("ECS", "x", Some("ThrottlingException"), "m", "fix"),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            classify("ECS", "x", Some("ServerException"), "m", "fix"),
            ProviderError::Unavailable { .. }
        ));
        let config = classify("ECS", "x", Some("InvalidParameterException"), "m", "fix it");
        assert!(config.to_string().contains("fix it"), "{config}");
    }
}
