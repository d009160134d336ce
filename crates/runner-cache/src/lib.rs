//! The actions runner's release packages, cached in the stack's S3 bucket so boot scripts on
//! stock images (Amazon Linux, Ubuntu, Windows Server) install the runner without reaching
//! GitHub's download host and without anyone baking an image at every runner release.
//!
//! [`sync`] reads the latest `actions/runner` release ([`ReleaseSource`]), picks the
//! linux-x64, linux-arm64 and win-x64 packages, checks each against the SHA-256 GitHub
//! publishes (the asset's `digest`, else the release notes' `BEGIN SHA` markers) while it
//! streams into the bucket ([`CacheStore`]) under `runners/<version>/<asset>`, and then writes
//! `runners/latest.json` ([`Manifest`]). A cache already holding the release is left alone;
//! a package whose checksum or size is wrong stores nothing at all.
//!
//! Both outside systems sit behind traits: [`GitHubReleases`] (GitHub's REST API, or the GitHub
//! emulator) and [`FixedRelease`]; [`S3Store`] and [`MemoryStore`].

mod error;
pub mod manifest;
pub mod release;
pub mod source;
pub mod store;
mod sync;

pub use error::CacheError;
pub use manifest::{CachedPackage, MANIFEST_KEY, Manifest, package_key};
pub use release::{Platform, PlatformPackage, Release, ReleaseAsset};
pub use source::{
    ByteStream, FixedRelease, GITHUB_API, GitHubReleases, RUNNER_REPOSITORY, ReleaseSource,
};
pub use store::{CacheStore, MemoryStore, PART_BYTES, S3Store, Upload};
pub use sync::{MAX_PACKAGE_BYTES, SyncOutcome, current_manifest, sync};
