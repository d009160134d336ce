//! Brings the cache up to the latest release: every platform's package downloaded, checked
//! against GitHub's SHA-256 while it streams into the bucket, then the manifest.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::CacheError;
use crate::manifest::{MANIFEST_KEY, Manifest, package_key};
use crate::release::PlatformPackage;
use crate::source::ReleaseSource;
use crate::store::{CacheStore, Upload, abort_all};

/// The largest package runway caches (runner packages are about 200 MB).
pub const MAX_PACKAGE_BYTES: u64 = 1024 * 1024 * 1024;

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The manifest already named this release: nothing was downloaded.
    Current { version: String },
    /// The packages and the manifest of `version` were stored.
    Updated {
        version: String,
        previous: Option<String>,
        keys: Vec<String>,
    },
}

impl SyncOutcome {
    pub fn version(&self) -> &str {
        match self {
            SyncOutcome::Current { version } | SyncOutcome::Updated { version, .. } => version,
        }
    }
}

/// The manifest in `store`, if there is a usable one.
pub async fn current_manifest(store: &dyn CacheStore) -> Result<Option<Manifest>, CacheError> {
    match store.get(MANIFEST_KEY).await? {
        None => Ok(None),
        Some(bytes) => Manifest::parse(&bytes).map(Some),
    }
}

/// Caches the latest release of `source` in `store`, unless the manifest already names it.
///
/// Either everything is stored or nothing is: each package is uploaded as it downloads, and
/// the uploads are completed (and the manifest written) only when every package has the
/// SHA-256 and size GitHub publishes.
pub async fn sync(
    source: &dyn ReleaseSource,
    store: &dyn CacheStore,
) -> Result<SyncOutcome, CacheError> {
    let release = source.latest_release().await?;
    let version = release.version()?;
    let packages = release.packages()?;
    let previous = match current_manifest(store).await {
        Ok(manifest) => manifest,
        Err(error) => {
            // The bucket is versioned: the unusable manifest stays as a noncurrent version.
            warn!(%error, "replacing an unusable runner cache manifest");
            None
        }
    };
    if let Some(manifest) = &previous
        && manifest.holds(&version, &packages)
    {
        info!(%version, "the runner cache is current");
        return Ok(SyncOutcome::Current { version });
    }
    let mut open: VecDeque<(String, Box<dyn Upload>)> = VecDeque::new();
    for package in &packages {
        let key = package_key(&version, &package.asset.name);
        match fetch_checked(source, store, package, &key).await {
            Ok(upload) => open.push_back((key, upload)),
            Err(error) => {
                abort_all(open.into()).await;
                return Err(error);
            }
        }
    }
    let mut keys = Vec::new();
    while let Some((key, upload)) = open.pop_front() {
        if let Err(error) = upload.complete().await {
            abort_all(open.into()).await;
            return Err(error);
        }
        keys.push(key);
    }
    let manifest = Manifest::of(&version, &packages);
    store
        .put(MANIFEST_KEY, manifest.to_json(), "application/json")
        .await?;
    info!(%version, previous = ?previous.as_ref().map(|m| &m.version), "cached the runner");
    Ok(SyncOutcome::Updated {
        version,
        previous: previous.map(|manifest| manifest.version),
        keys,
    })
}

/// Streams `package` into an upload of `key`, hashing as it goes; the upload is returned open
/// when the hash and size are right, aborted otherwise.
async fn fetch_checked(
    source: &dyn ReleaseSource,
    store: &dyn CacheStore,
    package: &PlatformPackage,
    key: &str,
) -> Result<Box<dyn Upload>, CacheError> {
    let asset = &package.asset;
    if asset.size > MAX_PACKAGE_BYTES {
        return Err(CacheError::TooLarge {
            asset: asset.name.clone(),
            size: asset.size,
            limit: MAX_PACKAGE_BYTES,
        });
    }
    let mut download = source.download(asset).await?;
    let content_type = if asset.name.ends_with(".zip") {
        "application/zip"
    } else {
        "application/gzip"
    };
    let mut upload = store.upload(key, content_type).await?;
    let mut hasher = Sha256::new();
    let mut length: u64 = 0;
    let streamed = async {
        while let Some(chunk) = download.next_chunk().await? {
            length += chunk.len() as u64;
            // Never more than the release says: a runaway download stops here.
            if length > asset.size {
                return Err(CacheError::SizeMismatch {
                    asset: asset.name.clone(),
                    expected: asset.size,
                    actual: length,
                });
            }
            hasher.update(&chunk);
            upload.write(chunk).await?;
        }
        if length != asset.size {
            return Err(CacheError::SizeMismatch {
                asset: asset.name.clone(),
                expected: asset.size,
                actual: length,
            });
        }
        Ok(())
    }
    .await;
    let checked = streamed.and_then(|()| {
        let actual = hex::encode(hasher.finalize());
        if actual == package.sha256 {
            Ok(())
        } else {
            Err(CacheError::ChecksumMismatch {
                asset: asset.name.clone(),
                expected: package.sha256.clone(),
                actual,
            })
        }
    });
    match checked {
        Ok(()) => Ok(upload),
        Err(error) => {
            abort_all(vec![(key.to_string(), upload)]).await;
            Err(error)
        }
    }
}
