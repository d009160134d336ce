//! What a boot installs: the runner the stack's runner cache holds, read from its manifest
//! (`runners/latest.json`) at launch and remembered briefly, so a burst of launches reads it
//! once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use runway_clock::SharedClock;
use runway_runner_cache::{CacheError, CacheStore, Platform, current_manifest};

use crate::ProviderError;
use crate::boot::{CachedRunner, RunnerInstall};

/// How long a manifest read is reused.
pub const MANIFEST_TTL: Duration = Duration::from_secs(300);

/// Reads what the runner cache in a bucket holds.
#[async_trait]
pub trait RunnerCacheReader: Send + Sync + fmt::Debug {
    /// The runner the cache in `bucket` holds; `None` while it is empty.
    async fn runner_install(&self, bucket: &str) -> Result<Option<RunnerInstall>, ProviderError>;
}

/// Opens the store of a bucket: S3 in a stack, memory in tests.
pub type StoreFor = Arc<dyn Fn(&str) -> Arc<dyn CacheStore> + Send + Sync>;

/// A [`RunnerCacheReader`] over [`CacheStore`]s (`runway_runner_cache::S3Store` or
/// `MemoryStore`), remembering each bucket's manifest for [`MANIFEST_TTL`].
#[derive(Clone)]
pub struct ManifestReader {
    store_for: StoreFor,
    clock: SharedClock,
    read: Arc<Mutex<Remembered>>,
}

/// Bucket → (what its manifest said, when it was read).
type Remembered = HashMap<String, (Option<RunnerInstall>, DateTime<Utc>)>;

impl fmt::Debug for ManifestReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestReader").finish_non_exhaustive()
    }
}

impl ManifestReader {
    pub fn new(store_for: StoreFor, clock: SharedClock) -> ManifestReader {
        ManifestReader {
            store_for,
            clock,
            read: Arc::default(),
        }
    }

    /// Reads buckets through S3.
    pub fn s3(client: aws_sdk_s3::Client, clock: SharedClock) -> ManifestReader {
        ManifestReader::new(
            Arc::new(move |bucket: &str| {
                Arc::new(runway_runner_cache::S3Store::new(client.clone(), bucket))
                    as Arc<dyn CacheStore>
            }),
            clock,
        )
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl RunnerCacheReader for ManifestReader {
    async fn runner_install(&self, bucket: &str) -> Result<Option<RunnerInstall>, ProviderError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(MANIFEST_TTL).unwrap_or_default();
        if let Some((install, read)) = self.remembered().get(bucket)
            && now - *read < ttl
        {
            return Ok(install.clone());
        }
        let store = (self.store_for)(bucket);
        let manifest = current_manifest(store.as_ref())
            .await
            .map_err(|error| match error {
                CacheError::Store { .. } => ProviderError::Unavailable {
                    service: "S3".to_string(),
                    reason: error.to_string(),
                },
                other => ProviderError::config(format!(
                    "{other}; run `runway runner-cache sync --bucket {bucket}` to rewrite it"
                )),
            })?;
        let install = manifest.map(|manifest| {
            let package = |platform| {
                manifest
                    .platforms
                    .get(&platform)
                    .map(|package| CachedRunner {
                        key: package.key.clone(),
                        sha256: package.sha256.clone(),
                    })
            };
            RunnerInstall {
                bucket: bucket.to_string(),
                version: manifest.version.clone(),
                linux_x64: package(Platform::LinuxX64),
                linux_arm64: package(Platform::LinuxArm64),
                win_x64: package(Platform::WinX64),
            }
        });
        self.remembered()
            .insert(bucket.to_string(), (install.clone(), now));
        Ok(install)
    }
}
