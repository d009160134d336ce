//! Handing a JIT config to a runner through SSM Parameter Store, shared by the AWS providers.
//!
//! The config is written as a SecureString in the Advanced tier: a GitHub JIT config is about
//! 4 KB and growing, and the Standard tier refuses values over 4,096 characters. A throttled
//! write (`ThrottlingException`, `TooManyUpdates`: a large matrix writes hundreds at once) is
//! retried with back-off on the provider's clock before it is reported as
//! [`ProviderError::Throttled`].

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use chrono::{DateTime, Utc};
use runway_clock::{Backoff, SharedClock};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::shared::{is_throttling, sdk_error};
use crate::{JitConfig, ProviderError};

/// Where a stack's JIT configs are kept in SSM Parameter Store unless the pool says otherwise:
/// `/runway/<stack>/jit` (the stack's IAM policies grant this path only).
pub fn jit_parameter_prefix(stack: &str) -> String {
    format!("/runway/{stack}/jit")
}

/// How many times a throttled JIT config write is tried before the launch fails as
/// [`ProviderError::Throttled`].
pub const SSM_WRITE_ATTEMPTS: u32 = 8;
/// The first back-off after a throttled write; it doubles with each try.
pub const SSM_WRITE_FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);
/// The longest back-off between two tries.
pub const SSM_WRITE_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// The pauses between tries of a throttled write: the shared policy, each wait jittered up to
/// twice its base, so the bases are half the ceilings above.
const SSM_WRITE: Backoff = Backoff::exponential(
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(2500),
    SSM_WRITE_ATTEMPTS as usize - 1,
);

const SSM_FIX: &str = "check the pool's JIT config path (ssm_prefix), its KMS key and runway's \
                       IAM permissions on them";

/// Checks a JIT config path: it goes into boot scripts and IAM resource patterns.
pub(crate) fn check_jit_prefix(prefix: &str, stack: &str) -> Result<(), ProviderError> {
    if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() < 2 {
        return Err(ProviderError::config(format!(
            "the SSM prefix {prefix:?} must start with '/' and not end with '/', e.g. {}",
            jit_parameter_prefix(stack)
        )));
    }
    Ok(())
}

/// Checks the KMS key that encrypts JIT configs: a key id, key ARN, alias name or alias ARN.
pub(crate) fn check_kms_key(key: &str) -> Result<(), ProviderError> {
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(ProviderError::config(format!(
            "the KMS key {key:?} for JIT configs must be a key id, key ARN, alias name \
             (alias/...) or alias ARN, without spaces"
        )));
    }
    Ok(())
}

/// One JIT config parameter to write.
#[derive(Debug)]
pub(crate) struct JitParameter<'a> {
    pub(crate) name: &'a str,
    pub(crate) runner_name: &'a str,
    /// Set on the first write (SSM takes no tags with `Overwrite`).
    pub(crate) tags: Vec<(&'a str, &'a str)>,
    /// `None`: the account's AWS managed key for SSM.
    pub(crate) kms_key_id: Option<&'a str>,
    /// SSM deletes the parameter by itself then, should nothing else have (an `Expiration`
    /// parameter policy, Advanced tier only).
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// Writes `config` to `parameter`, replacing an earlier try's value, retrying throttled writes
/// with back-off on `clock`.
pub(crate) async fn put_jit_parameter(
    ssm: &aws_sdk_ssm::Client,
    clock: &SharedClock,
    parameter: &JitParameter<'_>,
    config: &JitConfig,
) -> Result<(), ProviderError> {
    let mut pauses = write_backoff(parameter.name).pauses(clock);
    let mut overwrite = false;
    loop {
        let error = match put_once(ssm, parameter, config, overwrite).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let code = error.code();
        if code == Some("ParameterAlreadyExists") && !overwrite {
            // An earlier try of this launch wrote it; this try's JIT config replaces it.
            overwrite = true;
            continue;
        }
        // The runner is already starting: waiting here is cheaper than failing the launch,
        // stopping it and launching again into the same throttle.
        if code.is_some_and(is_throttling)
            && let Some(delay) = pauses.next_delay()
        {
            warn!(parameter = %parameter.name, attempt = pauses.taken(), code,
                delay_ms = delay.as_millis() as u64,
                "SSM throttled the JIT config write; trying again");
            clock.sleep(delay).await;
            continue;
        }
        return Err(sdk_error("SSM", "PutParameter", error, SSM_FIX));
    }
}

async fn put_once(
    ssm: &aws_sdk_ssm::Client,
    parameter: &JitParameter<'_>,
    config: &JitConfig,
    overwrite: bool,
) -> Result<(), SdkError<PutParameterError, aws_sdk_ssm::config::http::HttpResponse>> {
    let tags = (!overwrite).then(|| {
        parameter
            .tags
            .iter()
            .filter_map(|(key, value)| {
                aws_sdk_ssm::types::Tag::builder()
                    .key(*key)
                    .value(*value)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>()
    });
    ssm.put_parameter()
        .name(parameter.name)
        .description(format!(
            "runway JIT config for runner {}",
            parameter.runner_name
        ))
        .value(config.expose())
        .r#type(ParameterType::SecureString)
        // A JIT config is over the Standard tier's 4,096 characters.
        .tier(ParameterTier::Advanced)
        .set_key_id(parameter.kms_key_id.map(str::to_string))
        .set_overwrite(overwrite.then_some(true))
        .set_tags(tags)
        .set_policies(parameter.expires_at.map(expiration_policy))
        .send()
        .await
        .map(|_| ())
}

/// SSM's `Expiration` parameter policy for `at`.
pub(crate) fn expiration_policy(at: DateTime<Utc>) -> String {
    format!(
        r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{}"}}}}]"#,
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// Deletes a JIT config parameter; one already gone is success.
pub(crate) async fn delete_jit_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<(), ProviderError> {
    match ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ParameterNotFound") => Ok(()),
        Err(error) => Err(sdk_error("SSM", "DeleteParameter", error, SSM_FIX)),
    }
}

/// The back-off of a throttled write: [`SSM_WRITE`], jittered by the parameter's name, so a
/// burst of launches does not retry in lock-step and a launch's retries replay alike.
pub(crate) fn write_backoff(parameter: &str) -> Backoff {
    let digest = Sha256::digest(parameter.as_bytes());
    let seed = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    SSM_WRITE.with_seeded_jitter(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn write_backoff_grows_and_stays_bounded(name in "[a-z/0-9-]{1,40}", attempt in 1_usize..40) {
            let backoff = write_backoff(&name);
            let Some(delay) = backoff.delay(attempt) else {
                // One try and seven retries.
                proptest::prop_assert!(attempt >= SSM_WRITE_ATTEMPTS as usize);
                return Ok(());
            };
            proptest::prop_assert!(attempt < SSM_WRITE_ATTEMPTS as usize);
            proptest::prop_assert!(delay <= SSM_WRITE_MAX_BACKOFF);
            proptest::prop_assert!(delay >= SSM_WRITE_FIRST_BACKOFF / 2);
            // Written out, not recomputed: 200 ms doubling per attempt up to the 5 s cap, each
            // delay jittered within the upper half of its ceiling.
            let ceiling_ms = [200_u64, 400, 800, 1600, 3200]
                .get(attempt - 1)
                .copied()
                .unwrap_or(5000);
            let ceiling = std::time::Duration::from_millis(ceiling_ms);
            proptest::prop_assert!(delay >= ceiling / 2 && delay <= ceiling, "{:?} for attempt {}", delay, attempt);
            proptest::prop_assert_eq!(Some(delay), write_backoff(&name).delay(attempt));
        }
    }

    #[test]
    fn the_expiration_policy_is_ssm_s_shape() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            expiration_policy(at),
            r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2023-11-14T22:13:20.000Z"}}]"#
        );
    }

    #[test]
    fn a_jit_prefix_is_an_absolute_path_without_a_trailing_slash() {
        assert!(check_jit_prefix("/runway/s/jit", "s").is_ok());
        for bad in ["runway/jit", "/runway/", "/", ""] {
            assert!(check_jit_prefix(bad, "s").is_err(), "{bad}");
        }
    }
}
