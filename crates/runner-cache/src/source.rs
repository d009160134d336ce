//! Where runner releases come from: GitHub's releases API ([`GitHubReleases`], which the
//! GitHub emulator serves too) or a release held in memory ([`FixedRelease`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::CacheError;
use crate::release::{Release, ReleaseAsset};

/// The repository the actions runner is released from.
pub const RUNNER_REPOSITORY: &str = "actions/runner";

/// github.com's REST API.
pub const GITHUB_API: &str = "https://api.github.com";

/// A download, chunk by chunk, so no package is held whole in memory.
#[async_trait]
pub trait ByteStream: Send {
    /// The next chunk; `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, CacheError>;
}

/// What runway asks of wherever runner releases come from.
#[async_trait]
pub trait ReleaseSource: Send + Sync + fmt::Debug {
    /// The latest release (`GET /repos/{owner}/{repo}/releases/latest`).
    async fn latest_release(&self) -> Result<Release, CacheError>;

    /// The bytes of `asset`.
    async fn download(&self, asset: &ReleaseAsset) -> Result<Box<dyn ByteStream>, CacheError>;
}

/// GitHub's REST API over HTTPS. Releases of a public repository need no credentials; a
/// token (`with_token`) only lifts the rate limit of 60 unauthenticated requests an hour.
///
/// This is plain HTTP rather than runway's App client (`runway-github`): that client answers
/// whole JSON documents, and a package is a 200 MB file behind a redirect to another host,
/// streamed here.
#[derive(Clone)]
pub struct GitHubReleases {
    http: reqwest::Client,
    api_url: String,
    repository: String,
    token: Option<String>,
}

impl fmt::Debug for GitHubReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubReleases")
            .field("api_url", &self.api_url)
            .field("repository", &self.repository)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GitHubReleases {
    /// `actions/runner` on the REST API at `api_url` (github.com: [`GITHUB_API`]).
    pub fn new(api_url: &str) -> Result<GitHubReleases, CacheError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("runway-runner-cache/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A whole package on a slow link; each read is bounded below.
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| CacheError::GitHubUnreachable {
                url: api_url.to_string(),
                reason: error.to_string(),
            })?;
        Ok(GitHubReleases {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            repository: RUNNER_REPOSITORY.to_string(),
            token: None,
        })
    }

    /// Releases of `owner/name` instead of `actions/runner`.
    pub fn with_repository(mut self, repository: impl Into<String>) -> GitHubReleases {
        self.repository = repository.into();
        self
    }

    /// Sends `Authorization: Bearer <token>` to the API (never to the download host a
    /// redirect leads to).
    pub fn with_token(mut self, token: impl Into<String>) -> GitHubReleases {
        self.token = Some(token.into());
        self
    }

    async fn get(&self, url: &str, accept: &str) -> Result<reqwest::Response, CacheError> {
        let mut request = self
            .http
            .get(url)
            .header("Accept", accept)
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|error| CacheError::GitHubUnreachable {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        Err(CacheError::GitHub {
            status: status.as_u16(),
            url: url.to_string(),
            message,
        })
    }
}

#[async_trait]
impl ReleaseSource for GitHubReleases {
    async fn latest_release(&self) -> Result<Release, CacheError> {
        let url = format!("{}/repos/{}/releases/latest", self.api_url, self.repository);
        let response = self.get(&url, "application/vnd.github+json").await?;
        let body = response
            .bytes()
            .await
            .map_err(|error| CacheError::GitHubUnreachable {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        serde_json::from_slice(&body).map_err(|error| CacheError::BadRelease {
            reason: format!("GET {url} answered with no release: {error}"),
        })
    }

    async fn download(&self, asset: &ReleaseAsset) -> Result<Box<dyn ByteStream>, CacheError> {
        // The asset API answers with the file (or a redirect to it) for this media type.
        let response = self.get(&asset.url, "application/octet-stream").await?;
        Ok(Box::new(HttpStream {
            response,
            url: asset.url.clone(),
        }))
    }
}

struct HttpStream {
    response: reqwest::Response,
    url: String,
}

#[async_trait]
impl ByteStream for HttpStream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, CacheError> {
        self.response
            .chunk()
            .await
            .map_err(|error| CacheError::GitHubUnreachable {
                url: self.url.clone(),
                reason: format!("the download broke off: {error}"),
            })
    }
}

/// A release held in memory, its assets' bytes by asset id: for tests and for machines with
/// no way to GitHub.
#[derive(Debug, Clone)]
pub struct FixedRelease {
    pub release: Release,
    pub files: BTreeMap<u64, Bytes>,
}

/// Chunks a [`FixedRelease`] download is cut into.
const FIXED_CHUNK: usize = 64 * 1024;

#[async_trait]
impl ReleaseSource for FixedRelease {
    async fn latest_release(&self) -> Result<Release, CacheError> {
        Ok(self.release.clone())
    }

    async fn download(&self, asset: &ReleaseAsset) -> Result<Box<dyn ByteStream>, CacheError> {
        let bytes = self
            .files
            .get(&asset.id)
            .cloned()
            .ok_or_else(|| CacheError::GitHub {
                status: 404,
                url: asset.url.clone(),
                message: "Not Found".to_string(),
            })?;
        Ok(Box::new(MemoryStream { bytes }))
    }
}

struct MemoryStream {
    bytes: Bytes,
}

#[async_trait]
impl ByteStream for MemoryStream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, CacheError> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let take = self.bytes.len().min(FIXED_CHUNK);
        Ok(Some(self.bytes.split_to(take)))
    }
}
