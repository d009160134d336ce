//! The runner cache of `runway local`'s EC2 pools: a bucket (created when missing, as the
//! stack's template would have) filled at start from the GitHub emulator's `actions/runner`
//! release, so boot scripts name what a deployed stack's would.

use std::sync::Arc;

use runway_clock::SharedClock;
use runway_github_emulator::{EmulatorHandle, runner_release_stand_in};
use runway_providers::{ManifestReader, RunnerCacheReader};
use runway_runner_cache::{GitHubReleases, ReleaseSource, S3Store, sync};

use crate::LocalError;
use crate::system::setup;

/// The runner version the emulator publishes when it has no `actions/runner` release.
pub const STAND_IN_RUNNER_VERSION: &str = "2.321.0";

/// The bucket of a local stack's runner cache.
pub fn local_runner_cache_bucket(stack: &str) -> String {
    format!("{}-runner-cache", stack.to_ascii_lowercase())
}

/// A filled runner cache: its bucket and the reader EC2 providers share.
pub struct LocalRunnerCache {
    pub bucket: String,
    pub reader: Arc<dyn RunnerCacheReader>,
}

/// Creates the stack's runner cache bucket when missing and, with the GitHub emulator, fills
/// it from the emulator's latest `actions/runner` release (publishing a stand-in first when
/// it has none). With real GitHub the cache is filled as in a stack: `runway runner-cache
/// sync --bucket`.
pub async fn fill(
    stack: &str,
    aws: &aws_config::SdkConfig,
    emulator: Option<&EmulatorHandle>,
    clock: &SharedClock,
) -> Result<LocalRunnerCache, LocalError> {
    let bucket = local_runner_cache_bucket(stack);
    // An endpoint on this machine (moto) serves buckets by path, not by host name.
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(aws.endpoint_url().is_some())
            .build(),
    );
    let store = S3Store::new(client.clone(), &bucket);
    store.ensure_bucket().await.map_err(|error| {
        setup(format!(
            "cannot create the runner cache bucket {bucket}: {error}"
        ))
    })?;
    if let Some(emulator) = emulator {
        let source =
            GitHubReleases::new(emulator.api_url()).map_err(|error| setup(error.to_string()))?;
        if source.latest_release().await.is_err() {
            emulator
                .publish_release(runner_release_stand_in(STAND_IN_RUNNER_VERSION))
                .map_err(|error| setup(error.to_string()))?;
        }
        let outcome = sync(&source, &store)
            .await
            .map_err(|error| setup(format!("cannot fill the runner cache {bucket}: {error}")))?;
        tracing::info!(%bucket, version = outcome.version(), "runner cache ready");
    }
    Ok(LocalRunnerCache {
        bucket,
        reader: Arc::new(ManifestReader::s3(client, clock.clone())),
    })
}
