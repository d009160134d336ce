//! Where a policy module comes from: a file in the function's package (the policy layer), or
//! an object in S3 pinned to one version, so that a new policy ships without a new layer or
//! a redeploy of the code, and a new upload changes nothing until the location names it.
//!
//! Modules fetched from S3 are kept in a cache directory (`/tmp/runway-policies` in Lambda),
//! by content hash: a warm function, or a second build in the same execution environment,
//! does not fetch the same version twice.
//!
//! Only `.wasm` components are accepted from S3, never `.cwasm`. A `.cwasm` is native code
//! that wasmtime runs outside the WebAssembly sandbox, trusting it completely; the sandbox is
//! what lets runway run policies that platform teams write. A layer is part of the stack the
//! operator deploys, but a bucket widens who can change the code (anyone who may write to it,
//! possibly from another account), and a pinned version id proves which upload it is, not who
//! made it. So an S3 policy is a `.wasm`, checked and compiled on load, and the optional
//! `sha256=` pin ties the location to the exact bytes reviewed.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::SetupError;

/// A policy module larger than this is refused: example policies are tens of kilobytes.
const MAX_POLICY_BYTES: u64 = 32 << 20;

/// The cache of fetched policies in the execution environment's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    std::env::temp_dir().join("runway-policies")
}

/// Where a policy module is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyLocation {
    /// A file: a `.wasm` component, or a `.cwasm` compiled ahead of time for this
    /// architecture (from the deployment's own package only).
    File(PathBuf),
    /// One version of a `.wasm` object in S3.
    S3(S3PolicyObject),
}

/// One version of a policy component in S3:
/// `s3://BUCKET/KEY.wasm?versionId=VERSION[&sha256=HEX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3PolicyObject {
    pub bucket: String,
    /// The object key, as stored (not percent-encoded).
    pub key: String,
    /// The version loaded: the bucket must have versioning on, and a new upload is ignored
    /// until the location names its version.
    pub version_id: String,
    /// The SHA-256 (lowercase hex) the object's bytes must have, when pinned.
    pub sha256: Option<String>,
}

impl PolicyLocation {
    /// Reads a location: `s3://...` as an [`S3PolicyObject`], anything else as a file path.
    pub fn parse(text: &str) -> Result<PolicyLocation, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3://") {
            return S3PolicyObject::parse(rest).map(PolicyLocation::S3);
        }
        if text.contains("://") {
            return Err(format!(
                "{text:?} is neither a file nor an s3:// location: give a path \
                 (/opt/policies/router.cwasm) or s3://BUCKET/KEY.wasm?versionId=VERSION"
            ));
        }
        if text.is_empty() {
            return Err("the location is empty".into());
        }
        Ok(PolicyLocation::File(PathBuf::from(text)))
    }
}

impl fmt::Display for PolicyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyLocation::File(path) => write!(f, "{}", path.display()),
            PolicyLocation::S3(object) => object.fmt(f),
        }
    }
}

impl S3PolicyObject {
    /// `rest` is what follows `s3://`.
    fn parse(rest: &str) -> Result<S3PolicyObject, String> {
        let form = "write s3://BUCKET/KEY.wasm?versionId=VERSION (optionally &sha256=HEX)";
        let (object, query) = rest.split_once('?').ok_or_else(|| {
            format!(
                "s3://{rest} names no version: pin one with ?versionId=VERSION (aws s3api \
                 list-object-versions lists them), so that a new upload changes nothing until \
                 the location names it"
            )
        })?;
        let (bucket, key) = object
            .split_once('/')
            .filter(|(_, key)| !key.is_empty())
            .ok_or_else(|| format!("s3://{object} names no object key: {form}"))?;
        check_bucket_name(bucket)?;
        if key.ends_with(".cwasm") {
            return Err(format!(
                "s3://{object}: a .cwasm is native code and is only loaded from the function's \
                 own package (the policy layer); upload the .wasm component and runway \
                 compiles it on load"
            ));
        }
        if !key.ends_with(".wasm") {
            return Err(format!(
                "s3://{object} is not a .wasm component: upload the .wasm that \
                 runway-policy-build writes"
            ));
        }
        let mut version_id = None;
        let mut sha256 = None;
        for pair in query.split('&') {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} in s3://{rest} is not NAME=VALUE: {form}"))?;
            let slot = match name {
                "versionId" => &mut version_id,
                "sha256" => &mut sha256,
                other => {
                    return Err(format!(
                        "unknown {other:?} in s3://{rest}: only versionId and sha256 are read"
                    ));
                }
            };
            if value.is_empty() {
                return Err(format!("{name} is empty in s3://{rest}: {form}"));
            }
            if slot.replace(value.to_owned()).is_some() {
                return Err(format!("{name} is given twice in s3://{rest}"));
            }
        }
        let version_id = version_id.ok_or_else(|| {
            format!("s3://{rest} names no versionId: pin the version to load ({form})")
        })?;
        let sha256 = sha256
            .map(|hash| {
                let hash = hash.to_ascii_lowercase();
                if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(hash)
                } else {
                    Err(format!(
                        "sha256={hash} in s3://{rest} is not 64 hex digits: give the output of \
                         sha256sum on the .wasm"
                    ))
                }
            })
            .transpose()?;
        Ok(S3PolicyObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id,
            sha256,
        })
    }

    /// The object's ARN, as the function's IAM policy names it.
    pub fn arn(&self) -> String {
        format!("arn:aws:s3:::{}/{}", self.bucket, self.key)
    }
}

fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and \
             hyphens)"
        ))
    }
}

impl fmt::Display for S3PolicyObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{}/{}?versionId={}",
            self.bucket, self.key, self.version_id
        )?;
        if let Some(hash) = &self.sha256 {
            write!(f, "&sha256={hash}")?;
        }
        Ok(())
    }
}

/// Fetches policy objects from S3 through a content-addressed cache directory.
#[derive(Debug, Clone)]
pub struct PolicyObjects {
    s3: aws_sdk_s3::Client,
    cache_dir: PathBuf,
}

impl PolicyObjects {
    pub fn new(s3: aws_sdk_s3::Client, cache_dir: impl Into<PathBuf>) -> PolicyObjects {
        PolicyObjects {
            s3,
            cache_dir: cache_dir.into(),
        }
    }

    /// On the S3 of `aws`. An endpoint override (a local S3 API) is addressed path-style:
    /// `BUCKET.127.0.0.1` does not resolve.
    pub fn from_config(aws: &SdkConfig, cache_dir: impl Into<PathBuf>) -> PolicyObjects {
        let config = aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(aws.endpoint_url().is_some())
            .build();
        PolicyObjects::new(aws_sdk_s3::Client::from_conf(config), cache_dir)
    }

    /// The bytes of `object`: from the cache when this version (or these bytes, when
    /// pinned) was fetched before, otherwise from S3, checked against the pin and cached.
    pub async fn fetch(&self, object: &S3PolicyObject) -> Result<Vec<u8>, SetupError> {
        let failed = |reason: String| SetupError::Policy {
            path: object.to_string(),
            reason,
        };
        let index = self.index_path(object);
        let known = object
            .sha256
            .clone()
            .or_else(|| std::fs::read_to_string(&index).ok());
        if let Some(bytes) = known.and_then(|hash| self.cached(hash.trim())) {
            return Ok(bytes);
        }
        let bytes = self.get_object(object).await.map_err(failed)?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if let Some(pinned) = &object.sha256
            && *pinned != hash
        {
            return Err(failed(format!(
                "its SHA-256 is {hash}, the location pins {pinned}: check that this version \
                 is the module you meant, then pin its hash"
            )));
        }
        info!(policy = %object, sha256 = %hash, bytes = bytes.len(), "policy fetched from S3");
        if let Err(error) = self.store(&hash, &bytes, &index) {
            warn!(policy = %object, dir = %self.cache_dir.display(), %error, "cannot cache the policy");
        }
        Ok(bytes)
    }

    /// Where the content hash of one object version is recorded.
    fn index_path(&self, object: &S3PolicyObject) -> PathBuf {
        let version = format!("{}\0{}\0{}", object.bucket, object.key, object.version_id);
        self.cache_dir
            .join("versions")
            .join(hex::encode(Sha256::digest(version.as_bytes())))
    }

    fn content_path(&self, hash: &str) -> PathBuf {
        self.cache_dir.join(format!("{hash}.wasm"))
    }

    /// The cached bytes of `hash`, when present and intact.
    fn cached(&self, hash: &str) -> Option<Vec<u8>> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = std::fs::read(self.content_path(hash)).ok()?;
        (hex::encode(Sha256::digest(&bytes)) == hash).then_some(bytes)
    }

    fn store(&self, hash: &str, bytes: &[u8], index: &Path) -> std::io::Result<()> {
        write_atomically(&self.content_path(hash), bytes)?;
        write_atomically(index, hash.as_bytes())
    }

    async fn get_object(&self, object: &S3PolicyObject) -> Result<Vec<u8>, String> {
        let output = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .version_id(&object.version_id)
            .send()
            .await
            .map_err(|error| object_error_reason(object, error))?;
        if output
            .content_length
            .is_some_and(|length| u64::try_from(length).unwrap_or(0) > MAX_POLICY_BYTES)
        {
            return Err(format!(
                "it is larger than {MAX_POLICY_BYTES} bytes: is it a policy component?"
            ));
        }
        let body = output.body.collect().await.map_err(|error| {
            format!("its download failed: {error}; retry, or check the network path to S3")
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

/// What went wrong fetching a policy object, and what to do about it.
fn object_error_reason(
    object: &S3PolicyObject,
    error: aws_sdk_s3::error::SdkError<GetObjectError>,
) -> String {
    let detail = aws_sdk_s3::error::DisplayErrorContext(&error).to_string();
    let Some(service) = error.as_service_error() else {
        return format!("{detail}; check the network path to S3");
    };
    let (bucket, key, version) = (&object.bucket, &object.key, &object.version_id);
    match (service, service.code()) {
        (GetObjectError::NoSuchKey(_), _) => {
            format!("the bucket has no object {key}: upload it, or fix the key ({detail})")
        }
        (_, Some("NoSuchVersion" | "InvalidArgument")) => format!(
            "version {version} of {key} does not exist: give a version id from aws s3api \
             list-object-versions --bucket {bucket} --prefix {key} ({detail})"
        ),
        (_, Some("NoSuchBucket")) => {
            format!("bucket {bucket} does not exist: create it, or fix the name ({detail})")
        }
        (_, Some("AccessDenied")) => format!(
            "access denied: the function's role needs s3:GetObject and s3:GetObjectVersion on \
             {} (the template grants them for the policy locations it is given) ({detail})",
            object.arn()
        ),
        _ => detail,
    }
}

/// Writes `bytes` to `path` so that no reader sees a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const VERSION: &str = "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY";

    fn s3(text: &str) -> S3PolicyObject {
        match PolicyLocation::parse(text) {
            Ok(PolicyLocation::S3(object)) => object,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn an_s3_location_names_bucket_key_version_and_an_optional_hash() {
        let object = s3(&format!(
            "s3://runway-policies/teams/router.wasm?versionId={VERSION}"
        ));
        assert_eq!(object.bucket, "runway-policies");
        assert_eq!(object.key, "teams/router.wasm");
        assert_eq!(object.version_id, VERSION);
        assert_eq!(object.sha256, None);
        assert_eq!(
            object.arn(),
            "arn:aws:s3:::runway-policies/teams/router.wasm"
        );

        let hash = "AB".repeat(32);
        let object = s3(&format!("s3://b.example/r.wasm?sha256={hash}&versionId=v1"));
        assert_eq!(object.sha256, Some("ab".repeat(32)));
        assert_eq!(
            object.to_string(),
            format!(
                "s3://b.example/r.wasm?versionId=v1&sha256={}",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn paths_stay_files() {
        assert_eq!(
            PolicyLocation::parse(" /opt/policies/router.cwasm ").unwrap(),
            PolicyLocation::File(PathBuf::from("/opt/policies/router.cwasm"))
        );
    }

    #[test]
    fn bad_locations_say_what_to_write() {
        for (text, wanted) in [
            ("s3://bucket/router.wasm", "pin one with ?versionId"),
            ("s3://bucket/router.wasm?sha256=00", "names no versionId"),
            ("s3://bucket?versionId=1", "names no object key"),
            ("s3://bucket/?versionId=1", "names no object key"),
            ("s3://bucket/router.cwasm?versionId=1", "native code"),
            (
                "s3://bucket/router.zip?versionId=1",
                "not a .wasm component",
            ),
            (
                "s3://Bucket_1/router.wasm?versionId=1",
                "not an S3 bucket name",
            ),
            ("s3://b/router.wasm?versionId=1", "not an S3 bucket name"),
            ("s3://bucket/router.wasm?versionId=", "versionId is empty"),
            (
                "s3://bucket/router.wasm?versionId=1&versionId=2",
                "given twice",
            ),
            (
                "s3://bucket/router.wasm?versionId=1&etag=2",
                "unknown \"etag\"",
            ),
            ("s3://bucket/router.wasm?versionId", "is not NAME=VALUE"),
            (
                "s3://bucket/router.wasm?versionId=1&sha256=xyz",
                "not 64 hex digits",
            ),
            (
                "https://example.com/router.wasm",
                "neither a file nor an s3://",
            ),
        ] {
            let error = PolicyLocation::parse(text).unwrap_err();
            assert!(error.contains(wanted), "{text}: {error}");
        }
    }

    proptest! {
        #[test]
        fn s3_locations_round_trip(
            bucket in "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]",
            key in "[A-Za-z0-9/_.-]{0,30}\\.wasm",
            version in "[A-Za-z0-9._]{1,40}",
            hash in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let object = S3PolicyObject { bucket, key, version_id: version, sha256: hash };
            let text = object.to_string();
            prop_assert_eq!(PolicyLocation::parse(&text), Ok(PolicyLocation::S3(object)));
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}") {
            let _ = PolicyLocation::parse(&text);
            let _ = PolicyLocation::parse(&format!("s3://{text}"));
        }
    }
}
