//! A release of `actions/runner` as GitHub's releases API describes it, and the SHA-256 of
//! each platform's package: the asset's `digest` when GitHub gives one, else the
//! `<!-- BEGIN SHA linux-x64 -->…<!-- END SHA linux-x64 -->` markers of the release notes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CacheError;

/// One platform runway caches the runner for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "linux-x64")]
    LinuxX64,
    #[serde(rename = "linux-arm64")]
    LinuxArm64,
    #[serde(rename = "win-x64")]
    WinX64,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::LinuxX64, Platform::LinuxArm64, Platform::WinX64];

    /// The name the runner's releases use: `linux-x64`, `linux-arm64`, `win-x64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxX64 => "linux-x64",
            Platform::LinuxArm64 => "linux-arm64",
            Platform::WinX64 => "win-x64",
        }
    }

    /// The release asset of this platform at `version` (without the tag's `v`).
    pub fn asset_name(self, version: &str) -> String {
        let extension = match self {
            Platform::WinX64 => "zip",
            Platform::LinuxX64 | Platform::LinuxArm64 => "tar.gz",
        };
        format!("actions-runner-{}-{version}.{extension}", self.as_str())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /repos/{owner}/{repo}/releases/latest`, the fields runway reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: u64,
    pub tag_name: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub assets: Vec<ReleaseAsset>,
}

/// One asset of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAsset {
    pub id: u64,
    pub name: String,
    pub size: u64,
    /// `GET /repos/{owner}/{repo}/releases/assets/{id}` (with `Accept:
    /// application/octet-stream` it answers with the file, or a redirect to it).
    pub url: String,
    pub browser_download_url: String,
    /// `sha256:<hex>`; absent on assets uploaded before GitHub computed digests.
    #[serde(default)]
    pub digest: Option<String>,
}

/// What to fetch for one platform and the SHA-256 it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPackage {
    pub platform: Platform,
    pub asset: ReleaseAsset,
    /// Lower-case hex.
    pub sha256: String,
}

impl Release {
    /// The version the tag names: `v2.321.0` → `2.321.0`.
    pub fn version(&self) -> Result<String, CacheError> {
        let version = self
            .tag_name
            .strip_prefix('v')
            .unwrap_or(&self.tag_name)
            .to_string();
        // The version goes into object keys and boot scripts: digits and dots only.
        let plain = !version.is_empty()
            && version
                .split('.')
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
        if plain {
            Ok(version)
        } else {
            Err(CacheError::BadRelease {
                reason: format!(
                    "the tag {:?} is not a version such as v2.321.0",
                    self.tag_name
                ),
            })
        }
    }

    /// Each platform's package and its expected SHA-256.
    pub fn packages(&self) -> Result<Vec<PlatformPackage>, CacheError> {
        let version = self.version()?;
        Platform::ALL
            .iter()
            .map(|&platform| {
                let name = platform.asset_name(&version);
                let asset = self
                    .assets
                    .iter()
                    .find(|asset| asset.name == name)
                    .ok_or_else(|| CacheError::BadRelease {
                        reason: format!("release {} has no asset {name}", self.tag_name),
                    })?;
                let sha256 = expected_sha256(asset, self.body.as_deref(), platform)?;
                Ok(PlatformPackage {
                    platform,
                    asset: asset.clone(),
                    sha256,
                })
            })
            .collect()
    }
}

/// The SHA-256 GitHub publishes for `asset`: its `digest`, else the release notes' markers.
/// When both are there they must agree.
pub fn expected_sha256(
    asset: &ReleaseAsset,
    body: Option<&str>,
    platform: Platform,
) -> Result<String, CacheError> {
    let from_digest = match &asset.digest {
        Some(digest) => Some(parse_digest(digest).ok_or_else(|| CacheError::BadRelease {
            reason: format!(
                "asset {} has the digest {digest:?}, not sha256:<64 hex digits>",
                asset.name
            ),
        })?),
        None => None,
    };
    let from_body = body.and_then(|body| body_sha256(body, platform));
    match (from_digest, from_body) {
        (Some(digest), Some(marked)) if digest != marked => Err(CacheError::BadRelease {
            reason: format!(
                "asset {} has digest sha256:{digest} but the release notes say {marked}",
                asset.name
            ),
        }),
        (Some(digest), _) => Ok(digest),
        (None, Some(marked)) => Ok(marked),
        (None, None) => Err(CacheError::NoChecksum {
            asset: asset.name.clone(),
        }),
    }
}

/// `sha256:<64 hex>` → the hex, lower-case.
pub fn parse_digest(digest: &str) -> Option<String> {
    let hex = digest.trim().strip_prefix("sha256:")?;
    is_sha256_hex(hex).then(|| hex.to_ascii_lowercase())
}

/// The hash between `<!-- BEGIN SHA {platform} -->` and `<!-- END SHA {platform} -->`, if the
/// body has both markers around 64 hex digits (whitespace around it allowed).
pub fn body_sha256(body: &str, platform: Platform) -> Option<String> {
    let begin = format!("<!-- BEGIN SHA {} -->", platform.as_str());
    let end = format!("<!-- END SHA {} -->", platform.as_str());
    let start = body.find(&begin)? + begin.len();
    let length = body[start..].find(&end)?;
    let hash = body[start..start + length].trim();
    is_sha256_hex(hash).then(|| hash.to_ascii_lowercase())
}

/// 64 hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HASH: &str = "5d13b77e0aa5306b6c03e234ad1da4d9c6aa7831d26fd7e37a3656e77153611e";

    fn asset(name: &str, digest: Option<&str>) -> ReleaseAsset {
        ReleaseAsset {
            id: 1,
            name: name.into(),
            size: 10,
            url: "u".into(),
            browser_download_url: "b".into(),
            digest: digest.map(str::to_string),
        }
    }

    #[test]
    fn asset_names_follow_the_runner_release() {
        assert_eq!(
            Platform::LinuxX64.asset_name("2.321.0"),
            "actions-runner-linux-x64-2.321.0.tar.gz"
        );
        assert_eq!(
            Platform::LinuxArm64.asset_name("2.321.0"),
            "actions-runner-linux-arm64-2.321.0.tar.gz"
        );
        assert_eq!(
            Platform::WinX64.asset_name("2.321.0"),
            "actions-runner-win-x64-2.321.0.zip"
        );
    }

    #[test]
    fn the_body_markers_of_a_real_release_are_read() {
        let body = format!(
            "## Linux x64\n```bash\n# Download\n```\n\
             The SHA-256 checksums:\n\
             - actions-runner-linux-x64-2.321.0.tar.gz <!-- BEGIN SHA linux-x64 -->{HASH}<!-- END SHA linux-x64 -->\n\
             - actions-runner-linux-arm64-2.321.0.tar.gz <!-- BEGIN SHA linux-arm64 -->{}<!-- END SHA linux-arm64 -->\n",
            "A".repeat(64)
        );
        assert_eq!(
            body_sha256(&body, Platform::LinuxX64).as_deref(),
            Some(HASH)
        );
        assert_eq!(
            body_sha256(&body, Platform::LinuxArm64),
            Some("a".repeat(64))
        );
        assert_eq!(body_sha256(&body, Platform::WinX64), None);
    }

    #[test]
    fn the_digest_wins_and_must_agree_with_the_body() {
        let with_digest = asset("a.tar.gz", Some(&format!("sha256:{HASH}")));
        assert_eq!(
            expected_sha256(&with_digest, None, Platform::LinuxX64).unwrap(),
            HASH
        );
        let body = format!(
            "<!-- BEGIN SHA linux-x64 -->{}<!-- END SHA linux-x64 -->",
            "0".repeat(64)
        );
        assert!(matches!(
            expected_sha256(&with_digest, Some(&body), Platform::LinuxX64),
            Err(CacheError::BadRelease { .. })
        ));
        let without = asset("a.tar.gz", None);
        assert_eq!(
            expected_sha256(&without, Some(&body), Platform::LinuxX64).unwrap(),
            "0".repeat(64)
        );
        assert!(matches!(
            expected_sha256(&without, None, Platform::LinuxX64),
            Err(CacheError::NoChecksum { .. })
        ));
        let bad = asset("a.tar.gz", Some("md5:abc"));
        assert!(matches!(
            expected_sha256(&bad, None, Platform::LinuxX64),
            Err(CacheError::BadRelease { .. })
        ));
    }

    #[test]
    fn a_tag_that_is_no_version_is_refused() {
        let release = |tag: &str| Release {
            id: 1,
            tag_name: tag.into(),
            body: None,
            assets: vec![],
        };
        assert_eq!(release("v2.321.0").version().unwrap(), "2.321.0");
        assert_eq!(release("2.1").version().unwrap(), "2.1");
        for tag in ["", "v", "v2..1", "v2.1-rc", "v2.1;reboot", "v2.1/../x"] {
            assert!(release(tag).version().is_err(), "{tag:?}");
        }
    }

    proptest! {
        #[test]
        fn any_marked_hash_is_found_whatever_surrounds_it(
            before in "[^<]{0,200}",
            after in "\\PC{0,200}",
            hash in "[0-9a-fA-F]{64}",
            space in "[ \n\t]{0,3}",
        ) {
            let body = format!(
                "{before}<!-- BEGIN SHA win-x64 -->{space}{hash}{space}<!-- END SHA win-x64 -->{after}"
            );
            prop_assert_eq!(body_sha256(&body, Platform::WinX64), Some(hash.to_ascii_lowercase()));
        }

        #[test]
        fn the_marker_parser_never_panics_and_only_returns_hashes(body in "\\PC{0,400}") {
            for platform in Platform::ALL {
                if let Some(hash) = body_sha256(&body, platform) {
                    prop_assert!(is_sha256_hex(&hash));
                }
            }
        }

        #[test]
        fn digests_parse_only_as_sha256_hex(digest in "\\PC{0,80}") {
            if let Some(hex) = parse_digest(&digest) {
                prop_assert!(is_sha256_hex(&hex));
                prop_assert_eq!(hex.clone(), hex.to_ascii_lowercase());
            }
        }
    }
}
