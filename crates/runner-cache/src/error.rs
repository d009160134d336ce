use thiserror::Error;

/// Why the runner cache could not be brought up to date. Nothing in the bucket changes on
/// any of these: uploads are completed only once every package checked out.
#[derive(Debug, Error)]
pub enum CacheError {
    /// GitHub answered with an error status.
    #[error("GitHub answered {status} to GET {url}: {message}{hint}", hint = github_hint(*status))]
    GitHub {
        status: u16,
        url: String,
        message: String,
    },
    /// GitHub could not be reached, or the answer broke off.
    #[error(
        "could not reach GitHub at {url}: {reason}; check the network path to GitHub and try again"
    )]
    GitHubUnreachable { url: String, reason: String },
    /// The release is not what the runner's releases look like.
    #[error("the runner release cannot be cached: {reason}")]
    BadRelease { reason: String },
    /// Neither a digest nor the release notes give the package's SHA-256.
    #[error(
        "GitHub publishes no SHA-256 for {asset} (no asset digest, no BEGIN SHA marker in the \
         release notes), so it cannot be checked and is not cached"
    )]
    NoChecksum { asset: String },
    /// The package downloaded does not have the SHA-256 GitHub publishes.
    #[error(
        "{asset} has SHA-256 {actual} but GitHub publishes {expected}: nothing was stored; \
         the download was corrupted or tampered with, try again and report it if it persists"
    )]
    ChecksumMismatch {
        asset: String,
        expected: String,
        actual: String,
    },
    /// The download was longer or shorter than the release says.
    #[error("{asset} is {actual} bytes but the release says {expected}: nothing was stored")]
    SizeMismatch {
        asset: String,
        expected: u64,
        actual: u64,
    },
    /// The package is larger than runway caches.
    #[error("{asset} is {size} bytes, over the {limit} bytes runway caches")]
    TooLarge {
        asset: String,
        size: u64,
        limit: u64,
    },
    /// `runners/latest.json` is not a manifest runway wrote.
    #[error("the runner cache manifest is unusable: {reason}")]
    BadManifest { reason: String },
    /// The bucket refused or failed an operation.
    #[error(
        "S3 {operation} on s3://{bucket}/{key} failed: {reason}; check the bucket exists and runway may write runners/*"
    )]
    Store {
        operation: &'static str,
        bucket: String,
        key: String,
        reason: String,
    },
}

fn github_hint(status: u16) -> &'static str {
    match status {
        500..=599 => " (GitHub is failing; the next scheduled sync tries again)",
        403 | 429 => " (rate limited: wait, or give a token)",
        404 => " (check the repository name)",
        _ => "",
    }
}
