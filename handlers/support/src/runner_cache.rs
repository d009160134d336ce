//! The runner-cache Lambda: on its schedule, brings the stack's runner cache bucket up to the
//! latest `actions/runner` release ([`runway_runner_cache::sync`]).
//!
//! Settings: `RUNWAY_RUNNER_CACHE_BUCKET` (the bucket), `RUNWAY_RUNNER_RELEASES_API_URL`
//! (default `https://api.github.com`; a GitHub Enterprise Server mirror of `actions/runner`
//! works too).

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use runway_runner_cache::{CacheError, GITHUB_API, GitHubReleases, S3Store, SyncOutcome, sync};
use runway_setup::{RUNNER_CACHE_BUCKET_ENV, SetupError, load_aws_config};
use serde_json::{Value, json};

/// The REST API the runner's releases are read from.
pub const RELEASES_API_URL_ENV: &str = "RUNWAY_RUNNER_RELEASES_API_URL";

/// The function's answer: what the sync did.
pub fn outcome_json(outcome: &SyncOutcome) -> Value {
    match outcome {
        SyncOutcome::Current { version } => json!({ "version": version, "updated": false }),
        SyncOutcome::Updated {
            version,
            previous,
            keys,
        } => json!({ "version": version, "updated": true, "previous": previous, "keys": keys }),
    }
}

/// The Lambda error of a failed sync, named so alarms can tell a tampered package from an
/// outage.
pub fn sync_diagnostic(error: CacheError) -> Diagnostic {
    let error_type = match &error {
        CacheError::ChecksumMismatch { .. } | CacheError::SizeMismatch { .. } => {
            "Runway.RunnerChecksum"
        }
        CacheError::GitHub { .. } | CacheError::GitHubUnreachable { .. } => "Runway.GitHub",
        CacheError::Store { .. } => "Runway.Store",
        _ => "Runway.RunnerRelease",
    };
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: error.to_string(),
    }
}

/// The whole life of the runner-cache Lambda.
pub async fn run_runner_cache() -> Result<(), lambda_runtime::Error> {
    crate::init_tracing();
    let bucket = std::env::var(RUNNER_CACHE_BUCKET_ENV)
        .ok()
        .filter(|bucket| !bucket.is_empty())
        .ok_or_else(|| {
            SetupError::Settings(format!(
                "{RUNNER_CACHE_BUCKET_ENV} is not set: the template passes the stack's runner \
                 cache bucket"
            ))
        })?;
    let api = std::env::var(RELEASES_API_URL_ENV).unwrap_or_else(|_| GITHUB_API.to_string());
    let source = GitHubReleases::new(&api)?;
    let aws = load_aws_config().await;
    let store = S3Store::new(aws_sdk_s3::Client::new(&aws), bucket);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (source, store) = (source.clone(), store.clone());
        async move {
            // `runway doctor` checks the function starts: no sync, no download.
            if crate::is_doctor_event(&event.payload) {
                return Ok(crate::doctor_answer(crate::Handler::RunnerCache));
            }
            sync(&source, &store)
                .await
                .map(|outcome| outcome_json(&outcome))
                .map_err(sync_diagnostic)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_package_is_named_apart_from_an_outage() {
        let tampered = sync_diagnostic(CacheError::ChecksumMismatch {
            asset: "a".into(),
            expected: "b".into(),
            actual: "c".into(),
        });
        assert_eq!(tampered.error_type, "Runway.RunnerChecksum");
        let outage = sync_diagnostic(CacheError::GitHub {
            status: 502,
            url: "u".into(),
            message: "m".into(),
        });
        assert_eq!(outage.error_type, "Runway.GitHub");
    }

    #[test]
    fn the_answer_says_whether_anything_changed() {
        let current = outcome_json(&SyncOutcome::Current {
            version: "2.321.0".into(),
        });
        assert_eq!(current["updated"], false);
    }
}
