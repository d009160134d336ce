//! EKS bearer tokens: what `aws eks get-token` and aws-iam-authenticator make.
//!
//! A token is `k8s-aws-v1.` and the unpadded base64url of a presigned STS
//! `GetCallerIdentity` URL whose signature covers the header `x-k8s-aws-id: <cluster>`. The
//! cluster's authenticator calls that URL to learn who signed it, so the token proves the
//! caller's IAM identity to that cluster only. The URL is presigned for 60 seconds, as the
//! authenticator does; EKS accepts a token for 15 minutes, so one is reused for 10.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use tokio::sync::Mutex;

use crate::ProviderError;

/// What every EKS token starts with.
pub const EKS_TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header naming the cluster a token is for.
const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid, as aws-iam-authenticator signs it.
const PRESIGN_EXPIRY: Duration = Duration::from_secs(60);
/// How long a token is reused (EKS accepts one for 15 minutes).
pub const TOKEN_REUSE: Duration = Duration::from_secs(600);

/// The STS endpoint of `region` (China's partition has its own domain).
fn sts_host(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("sts.{region}.{domain}")
}

/// An EKS token for `cluster` signed with `credentials` in `region` at `now`.
pub fn eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, ProviderError> {
    let host = sts_host(region);
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let headers = [("host", host.as_str()), (CLUSTER_HEADER, cluster)];
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|error| ProviderError::other(format!("could not sign an EKS token: {error}")))?;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRY);
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|error| ProviderError::other(format!("could not sign an EKS token: {error}")))?
        .into();
    let (instructions, _signature) = sign(request, &params)
        .map_err(|error| ProviderError::other(format!("could not sign an EKS token: {error}")))?
        .into_parts();
    let mut presigned = url;
    for (name, value) in instructions.params() {
        presigned.push('&');
        presigned.push_str(name);
        presigned.push('=');
        presigned.push_str(&percent_encode(value));
    }
    Ok(format!(
        "{EKS_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    ))
}

/// RFC 3986 query encoding (what SigV4 canonicalises with).
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Makes EKS tokens with the SDK's credentials, reusing one for [`TOKEN_REUSE`].
#[derive(Debug)]
pub struct EksTokenSource {
    credentials: SharedCredentialsProvider,
    region: String,
    /// By cluster: one source may serve several pools' clusters.
    cached: Mutex<HashMap<String, (String, Instant)>>,
}

impl EksTokenSource {
    /// Tokens signed with `credentials` (the SDK config's provider) in `region`.
    pub fn new(credentials: SharedCredentialsProvider, region: impl Into<String>) -> Self {
        EksTokenSource {
            credentials,
            region: region.into(),
            cached: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `cluster`, fresh or less than [`TOKEN_REUSE`] old.
    pub async fn token(&self, cluster: &str) -> Result<String, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, made)) = cached.get(cluster)
            && made.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|error| {
                ProviderError::config(format!(
                    "no AWS credentials to sign an EKS token with: {error}"
                ))
            })?;
        let token = eks_token(&credentials, &self.region, cluster, SystemTime::now())?;
        cached.insert(cluster.to_string(), (token.clone(), Instant::now()));
        Ok(token)
    }

    /// Forgets the cached token of `cluster` (after the cluster refused it).
    pub async fn forget(&self, cluster: &str) {
        self.cached.lock().await.remove(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let encoded = token.strip_prefix(EKS_TOKEN_PREFIX).expect("prefix");
        assert!(!encoded.contains('='), "unpadded");
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = eks_token(&credentials, "eu-west-1", "ci-runners", now).unwrap();
        let url = decode(&token);
        assert!(
            url.starts_with(
                "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        assert!(url.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"), "{url}");
        assert!(url.contains("X-Amz-Expires=60"), "{url}");
        assert!(
            url.contains(
                "X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fsts%2Faws4_request"
            ),
            "{url}"
        );
        assert!(
            url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Signature="), "{url}");
        // The secret key never appears; the same inputs sign the same token.
        assert!(!url.contains("secret"));
        assert_eq!(
            token,
            eks_token(&credentials, "eu-west-1", "ci-runners", now).unwrap()
        );
        assert_ne!(
            token,
            eks_token(&credentials, "eu-west-1", "other", now).unwrap()
        );
    }

    #[test]
    fn session_credentials_sign_with_their_token() {
        let credentials = Credentials::new("ASIA", "secret", Some("session/+=".into()), None, "t");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let url = decode(&eks_token(&credentials, "cn-north-1", "c", now).unwrap());
        assert!(
            url.starts_with("https://sts.cn-north-1.amazonaws.com.cn/"),
            "{url}"
        );
        assert!(
            url.contains("X-Amz-Security-Token=session%2F%2B%3D"),
            "{url}"
        );
    }

    #[tokio::test]
    async fn tokens_are_reused() {
        let credentials = Credentials::new("AKID", "secret", None, None, "test");
        let source = EksTokenSource::new(SharedCredentialsProvider::new(credentials), "us-east-1");
        let first = source.token("c").await.unwrap();
        assert_eq!(first, source.token("c").await.unwrap());
        source.forget("c").await;
        assert!(
            source
                .token("c")
                .await
                .unwrap()
                .starts_with(EKS_TOKEN_PREFIX)
        );
    }
}
