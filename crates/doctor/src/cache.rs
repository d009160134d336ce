//! Check 6: the runner cache is filled: `runners/latest.json` in the stack's bucket, and each
//! package it names there with the size it says.

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use runway_runner_cache::{MANIFEST_KEY, Manifest};

use crate::{DoctorError, Finding};

/// The bucket's objects.
#[async_trait]
pub trait CacheObjects: Send + Sync {
    /// A small object whole; `None` when there is none.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, DoctorError>;
    /// An object's size; `None` when there is none.
    async fn size(&self, bucket: &str, key: &str) -> Result<Option<u64>, DoctorError>;
}

/// S3.
#[derive(Debug, Clone)]
pub struct S3CacheObjects {
    client: aws_sdk_s3::Client,
}

impl S3CacheObjects {
    pub fn new(client: aws_sdk_s3::Client) -> S3CacheObjects {
        S3CacheObjects { client }
    }
}

#[async_trait]
impl CacheObjects for S3CacheObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, DoctorError> {
        let store = runway_runner_cache::S3Store::new(self.client.clone(), bucket);
        runway_runner_cache::CacheStore::get(&store, key)
            .await
            .map_err(|error| DoctorError::Aws {
                call: format!("s3:GetObject s3://{bucket}/{key}"),
                reason: error.to_string(),
            })
    }

    async fn size(&self, bucket: &str, key: &str) -> Result<Option<u64>, DoctorError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(output.content_length().unwrap_or(0).max(0) as u64)),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(error) => Err(DoctorError::aws(
                format!("s3:HeadObject s3://{bucket}/{key}"),
                DisplayErrorContext(&error),
            )),
        }
    }
}

/// Check 6.
pub async fn check_runner_cache(cache: &dyn CacheObjects, bucket: Option<&str>) -> Finding {
    const CHECK: &str = "runner cache";
    let Some(bucket) = bucket else {
        return Finding::warn(
            CHECK,
            "the stack has no RunnerCacheBucketName output",
            "update the stack to runway's current template.yaml (sam deploy)",
        );
    };
    let sync = format!(
        "fill it once: runway runner-cache sync --bucket {bucket} (the stack's runner-cache \
         function then keeps it current every day)"
    );
    let manifest = match cache.get(bucket, MANIFEST_KEY).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Finding::fail(
                CHECK,
                format!(
                    "s3://{bucket}/{MANIFEST_KEY} is missing: the cache is empty, and runners on stock images cannot install the runner"
                ),
                sync,
            );
        }
        Err(error) => {
            return Finding::fail(
                CHECK,
                format!("cannot read s3://{bucket}/{MANIFEST_KEY}: {error}"),
                format!("give the doctor's credentials s3:GetObject on the bucket, or {sync}"),
            );
        }
    };
    let manifest = match Manifest::parse(&manifest) {
        Ok(manifest) => manifest,
        Err(error) => {
            return Finding::fail(
                CHECK,
                format!("s3://{bucket}/{MANIFEST_KEY}: {error}"),
                sync,
            );
        }
    };
    for (platform, package) in &manifest.platforms {
        match cache.size(bucket, &package.key).await {
            Ok(Some(size)) if size == package.size => {}
            Ok(Some(size)) => {
                return Finding::fail(
                    CHECK,
                    format!(
                        "s3://{bucket}/{} ({platform}) has {size} bytes, the manifest says {}",
                        package.key, package.size
                    ),
                    sync,
                );
            }
            Ok(None) => {
                return Finding::fail(
                    CHECK,
                    format!(
                        "the manifest names s3://{bucket}/{} ({platform}), which is missing",
                        package.key
                    ),
                    sync,
                );
            }
            Err(error) => {
                return Finding::warn(
                    CHECK,
                    format!("cannot check s3://{bucket}/{}: {error}", package.key),
                    "give the doctor's credentials s3:GetObject on the bucket",
                );
            }
        }
    }
    let platforms: Vec<String> = manifest.platforms.keys().map(ToString::to_string).collect();
    Finding::ok(
        CHECK,
        format!(
            "runner {} for {} in s3://{bucket}",
            manifest.version,
            platforms.join(", ")
        ),
    )
}
