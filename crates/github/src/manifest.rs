//! The last step of GitHub's App manifest flow: `POST /app-manifests/{code}/conversions`
//! turns the one-time code GitHub gave the browser into the new App's credentials. It needs
//! no credential (the code is the proof) and is never retried: a code converts once.

use std::fmt;

use http::header::{ACCEPT, CONTENT_LENGTH, USER_AGENT};
use http::{Method, Request, StatusCode};
use octocrab::OctoBody;

use crate::error::GitHubError;
use crate::rest::API_VERSION;
use crate::secret::Secret;
use crate::transport::{RestGitHubOptions, Transport};

/// What GitHub answers a conversion with (its `integration` schema plus the credentials);
/// only what runway keeps. `Debug` shows no credential.
#[derive(Clone, serde::Deserialize)]
pub struct ConvertedApp {
    pub id: u64,
    pub slug: String,
    pub html_url: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The App's private key (PEM).
    pub pem: Secret,
    /// `null` when the manifest asked for no webhook.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

impl fmt::Debug for ConvertedApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConvertedApp")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("html_url", &self.html_url)
            .finish_non_exhaustive()
    }
}

/// Exchanges a manifest's `code` at the REST API `api_url` (`https://api.github.com`, or
/// `https://HOST/api/v3`) for the App it made.
pub async fn convert_app_manifest(
    api_url: &str,
    code: &str,
    options: &RestGitHubOptions,
) -> Result<ConvertedApp, GitHubError> {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(GitHubError::Validation {
            status: 400,
            message: "the manifest code is not one GitHub issues (letters and digits)".into(),
        });
    }
    let transport = Transport::new(api_url, options)?;
    let path = format!("/app-manifests/{code}/conversions");
    let request = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header(ACCEPT, "application/vnd.github+json")
        .header("x-github-api-version", API_VERSION)
        .header(USER_AGENT, concat!("runway/", env!("CARGO_PKG_VERSION")))
        .header(CONTENT_LENGTH, "0")
        .body(OctoBody::empty())
        .map_err(|error| GitHubError::Config {
            message: format!("the conversion request could not be made: {error}"),
        })?;
    let answer = transport.send(request, None).await?;
    let message = || {
        serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|body| body["message"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    match answer.status {
        StatusCode::CREATED | StatusCode::OK => {
            serde_json::from_slice(&answer.body).map_err(|error| GitHubError::Unexpected {
                status: answer.status.as_u16(),
                message: format!("the conversion's answer is not an App: {error}"),
            })
        }
        StatusCode::NOT_FOUND => Err(GitHubError::NotFound {
            message: format!(
                "the manifest code is unknown, used or expired (codes last an hour) {}",
                message()
            ),
        }),
        status if status.is_server_error() => Err(GitHubError::Server {
            status: status.as_u16(),
        }),
        status if status.as_u16() == 422 => Err(GitHubError::Validation {
            status: 422,
            message: message(),
        }),
        status => Err(GitHubError::Unexpected {
            status: status.as_u16(),
            message: message(),
        }),
    }
}
