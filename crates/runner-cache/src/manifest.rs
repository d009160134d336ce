//! `runners/latest.json`: which runner version the bucket holds, and for each platform its
//! object key and SHA-256. Boot scripts install exactly what it names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::CacheError;
use crate::release::{Platform, PlatformPackage, is_sha256_hex};

/// Where the manifest is kept in the bucket.
pub const MANIFEST_KEY: &str = "runners/latest.json";

/// Where one package is kept: `runners/<version>/<asset>`.
pub fn package_key(version: &str, asset_name: &str) -> String {
    format!("runners/{version}/{asset_name}")
}

/// The cache's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `2.321.0`.
    pub version: String,
    pub platforms: BTreeMap<Platform, CachedPackage>,
}

/// One platform's package in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedPackage {
    pub key: String,
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    /// The manifest of `packages` of `version` once stored.
    pub fn of(version: &str, packages: &[PlatformPackage]) -> Manifest {
        Manifest {
            version: version.to_string(),
            platforms: packages
                .iter()
                .map(|package| {
                    (
                        package.platform,
                        CachedPackage {
                            key: package_key(version, &package.asset.name),
                            sha256: package.sha256.clone(),
                            size: package.asset.size,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Reads a manifest, checking what boot scripts rely on: a plain version, keys under
    /// `runners/<version>/`, SHA-256 hex digests.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, CacheError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|error| CacheError::BadManifest {
                reason: error.to_string(),
            })?;
        manifest.check()?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A map of strings and numbers always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), CacheError> {
        let bad = |reason: String| Err(CacheError::BadManifest { reason });
        let plain_version = !self.version.is_empty()
            && self
                .version
                .split('.')
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
        if !plain_version {
            return bad(format!(
                "the version {:?} is not like 2.321.0",
                self.version
            ));
        }
        let prefix = format!("runners/{}/", self.version);
        for (platform, package) in &self.platforms {
            let plain_key = package.key.starts_with(&prefix)
                && package.key.len() > prefix.len()
                && package.key[prefix.len()..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !plain_key {
                return bad(format!(
                    "{platform}: the key {:?} is not a file under {prefix}",
                    package.key
                ));
            }
            if !is_sha256_hex(&package.sha256) {
                return bad(format!(
                    "{platform}: {:?} is not a SHA-256 hex digest",
                    package.sha256
                ));
            }
        }
        Ok(())
    }

    /// Whether this manifest already holds `packages` of `version`, byte for byte.
    pub fn holds(&self, version: &str, packages: &[PlatformPackage]) -> bool {
        *self == Manifest::of(version, packages)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn manifest() -> Manifest {
        let mut platforms = BTreeMap::new();
        platforms.insert(
            Platform::LinuxX64,
            CachedPackage {
                key: "runners/2.321.0/actions-runner-linux-x64-2.321.0.tar.gz".into(),
                sha256: "a".repeat(64),
                size: 3,
            },
        );
        Manifest {
            version: "2.321.0".into(),
            platforms,
        }
    }

    #[test]
    fn a_manifest_round_trips_with_platform_names_as_keys() {
        let json = manifest().to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"linux-x64\""), "{text}");
        assert_eq!(Manifest::parse(&json).unwrap(), manifest());
    }

    #[test]
    fn a_manifest_a_boot_script_could_not_trust_is_refused() {
        let mut shell = manifest();
        shell.version = "2.1; reboot".into();
        let mut outside = manifest();
        outside.platforms.get_mut(&Platform::LinuxX64).unwrap().key =
            "runners/2.321.0/../../etc/passwd".into();
        let mut hash = manifest();
        hash.platforms.get_mut(&Platform::LinuxX64).unwrap().sha256 = "zz".into();
        for bad in [shell, outside, hash] {
            assert!(matches!(
                Manifest::parse(&bad.to_json()),
                Err(CacheError::BadManifest { .. })
            ));
        }
        assert!(Manifest::parse(b"{\"version\":\"1\",\"platforms\":{\"mac\":{}}}").is_err());
        assert!(Manifest::parse(b"not json").is_err());
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Manifest::parse(&bytes);
        }

        #[test]
        fn any_valid_manifest_round_trips(
            version in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            hash in "[0-9a-f]{64}",
            size in any::<u64>(),
        ) {
            let mut platforms = BTreeMap::new();
            for platform in Platform::ALL {
                platforms.insert(platform, CachedPackage {
                    key: package_key(&version, &platform.asset_name(&version)),
                    sha256: hash.clone(),
                    size,
                });
            }
            let manifest = Manifest { version, platforms };
            prop_assert_eq!(Manifest::parse(&manifest.to_json()).unwrap(), manifest);
        }
    }
}
