//! Repository releases and their downloadable assets, shaped as GitHub's REST API gives them:
//! `GET /repos/{o}/{r}/releases`, `.../releases/latest`, `.../releases/assets/{id}` (JSON, or
//! with `Accept: application/octet-stream` a `302` to the file, as GitHub does) and the
//! `browser_download_url` `GET /{o}/{r}/releases/download/{tag}/{name}`.
//!
//! Releases of a public repository need no credentials, so these routes take none; armed
//! REST faults ([`crate::Faults`]) apply to them as to every REST call.

// Handlers bail out early with a finished response; its size is irrelevant on that path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::payloads::{Urls, timestamp};
use crate::shared::Shared;

/// A release to publish on the emulator.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// `owner/name`.
    pub repository: String,
    /// `v2.321.0`.
    pub tag_name: String,
    pub body: Option<String>,
    pub prerelease: bool,
    pub assets: Vec<NewAsset>,
}

impl NewRelease {
    pub fn new(repository: &str, tag_name: &str, assets: Vec<NewAsset>) -> NewRelease {
        NewRelease {
            repository: repository.to_string(),
            tag_name: tag_name.to_string(),
            body: None,
            prerelease: false,
            assets,
        }
    }
}

/// A stand-in release of `actions/runner` at `version`: the linux-x64, linux-arm64 and
/// win-x64 packages named as GitHub names them, with digests and the release notes' `BEGIN
/// SHA` markers. Their content is a short text, not a runner: for a runner cache filled where
/// no instance boots (`runway local` on moto).
pub fn runner_release_stand_in(version: &str) -> NewRelease {
    let mut body = String::from("Stand-in release of the GitHub emulator.\n\n");
    let assets: Vec<NewAsset> = [
        ("linux-x64", "tar.gz"),
        ("linux-arm64", "tar.gz"),
        ("win-x64", "zip"),
    ]
    .into_iter()
    .map(|(platform, extension)| {
        let name = format!("actions-runner-{platform}-{version}.{extension}");
        let asset = NewAsset::new(&name, format!("runway emulator stand-in for {name}\n"));
        body.push_str(&format!(
            "- {name} <!-- BEGIN SHA {platform} -->{}<!-- END SHA {platform} -->\n",
            asset
                .digest
                .as_deref()
                .and_then(|d| d.strip_prefix("sha256:"))
                .unwrap_or_default()
        ));
        asset
    })
    .collect();
    let mut release = NewRelease::new("actions/runner", &format!("v{version}"), assets);
    release.body = Some(body);
    release
}

/// One file of a release.
#[derive(Debug, Clone)]
pub struct NewAsset {
    pub name: String,
    pub content: Bytes,
    /// The asset's `digest`; [`NewAsset::new`] sets the true `sha256:<hex>`. `None` answers
    /// without one, as GitHub does for assets uploaded before it computed digests.
    pub digest: Option<String>,
}

impl NewAsset {
    /// An asset with its true digest.
    pub fn new(name: &str, content: impl Into<Bytes>) -> NewAsset {
        let content = content.into();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&content)));
        NewAsset {
            name: name.to_string(),
            content,
            digest: Some(digest),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StoredRelease {
    id: u64,
    owner: String,
    repo: String,
    release: NewRelease,
    asset_ids: Vec<u64>,
    published_at: DateTime<Utc>,
}

/// Every published release, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    next_id: u64,
    published: Vec<StoredRelease>,
}

impl Releases {
    /// Publishes `release`; returns its id.
    pub(crate) fn publish(
        &mut self,
        release: NewRelease,
        now: DateTime<Utc>,
    ) -> Result<u64, String> {
        let Some((owner, repo)) = release.repository.split_once('/') else {
            return Err(format!(
                "the repository {:?} is not owner/name",
                release.repository
            ));
        };
        if release.tag_name.is_empty() || release.tag_name.contains('/') {
            return Err(format!("the tag {:?} is not a tag name", release.tag_name));
        }
        self.next_id += 1;
        let id = 7_000_000 + self.next_id;
        let asset_ids = (0..release.assets.len())
            .map(|index| id * 100 + index as u64)
            .collect();
        self.published.push(StoredRelease {
            id,
            owner: owner.to_string(),
            repo: repo.to_string(),
            release,
            asset_ids,
            published_at: now,
        });
        Ok(id)
    }

    fn of_repository(&self, owner: &str, repo: &str) -> impl Iterator<Item = &StoredRelease> {
        let (owner, repo) = (owner.to_ascii_lowercase(), repo.to_ascii_lowercase());
        self.published.iter().rev().filter(move |stored| {
            stored.owner.to_ascii_lowercase() == owner && stored.repo.to_ascii_lowercase() == repo
        })
    }

    fn asset(&self, owner: &str, repo: &str, asset_id: u64) -> Option<(&StoredRelease, usize)> {
        self.of_repository(owner, repo).find_map(|stored| {
            stored
                .asset_ids
                .iter()
                .position(|id| *id == asset_id)
                .map(|index| (stored, index))
        })
    }
}

fn release_json(urls: &Urls, stored: &StoredRelease) -> Value {
    let (owner, repo) = (&stored.owner, &stored.repo);
    let release = &stored.release;
    let api = format!("{}/repos/{owner}/{repo}/releases/{}", urls.api, stored.id);
    let assets: Vec<Value> = (0..release.assets.len())
        .map(|index| asset_json(urls, stored, index))
        .collect();
    json!({
        "url": api,
        "assets_url": format!("{api}/assets"),
        "upload_url": format!("{}/repos/{owner}/{repo}/releases/{}/assets{{?name,label}}", urls.api, stored.id),
        "html_url": format!("{}/{owner}/{repo}/releases/tag/{}", urls.html, release.tag_name),
        "id": stored.id,
        "node_id": format!("RE_{}", stored.id),
        "tag_name": release.tag_name,
        "target_commitish": "main",
        "name": release.tag_name,
        "draft": false,
        "prerelease": release.prerelease,
        "created_at": timestamp(stored.published_at),
        "published_at": timestamp(stored.published_at),
        "assets": assets,
        "tarball_url": format!("{}/repos/{owner}/{repo}/tarball/{}", urls.api, release.tag_name),
        "zipball_url": format!("{}/repos/{owner}/{repo}/zipball/{}", urls.api, release.tag_name),
        "body": release.body,
    })
}

fn asset_json(urls: &Urls, stored: &StoredRelease, index: usize) -> Value {
    let (owner, repo) = (&stored.owner, &stored.repo);
    let asset = &stored.release.assets[index];
    let id = stored.asset_ids[index];
    let content_type = if asset.name.ends_with(".zip") {
        "application/zip"
    } else if asset.name.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    };
    json!({
        "url": format!("{}/repos/{owner}/{repo}/releases/assets/{id}", urls.api),
        "id": id,
        "node_id": format!("RA_{id}"),
        "name": asset.name,
        "label": "",
        "content_type": content_type,
        "state": "uploaded",
        "size": asset.content.len(),
        "digest": asset.digest,
        "download_count": 0,
        "created_at": timestamp(stored.published_at),
        "updated_at": timestamp(stored.published_at),
        "browser_download_url": download_url(urls, stored, index),
    })
}

fn download_url(urls: &Urls, stored: &StoredRelease, index: usize) -> String {
    format!(
        "{}/{}/{}/releases/download/{}/{}",
        urls.html,
        stored.owner,
        stored.repo,
        stored.release.tag_name,
        stored.release.assets[index].name
    )
}

type AppState = Arc<Shared>;

/// The release routes under the REST API root.
pub(crate) fn api_router(shared: AppState) -> Router<AppState> {
    Router::new()
        .route("/repos/{owner}/{repo}/releases", get(list_releases))
        .route("/repos/{owner}/{repo}/releases/latest", get(latest_release))
        .route(
            "/repos/{owner}/{repo}/releases/assets/{asset_id}",
            get(get_asset),
        )
        .layer(middleware::from_fn_with_state(shared, faults_first))
}

/// `browser_download_url`s, under the web root.
pub(crate) fn download_router(shared: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/{owner}/{repo}/releases/download/{tag}/{name}",
            get(download),
        )
        .layer(middleware::from_fn_with_state(shared, faults_first))
}

async fn faults_first(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(status) = shared.update(|world, _| world.take_api_fault()) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return gh_error(status, "Server Error");
    }
    next.run(request).await
}

fn gh_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest/releases/releases",
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

async fn list_releases(
    State(shared): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    let releases = shared.releases();
    let listed: Vec<Value> = releases
        .of_repository(&owner, &repo)
        .map(|stored| release_json(&shared.urls, stored))
        .collect();
    axum::Json(listed).into_response()
}

async fn latest_release(
    State(shared): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    let releases = shared.releases();
    // GitHub's latest release: the newest that is neither a draft nor a prerelease.
    match releases
        .of_repository(&owner, &repo)
        .find(|stored| !stored.release.prerelease)
    {
        Some(stored) => axum::Json(release_json(&shared.urls, stored)).into_response(),
        None => gh_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn get_asset(
    State(shared): State<AppState>,
    Path((owner, repo, asset_id)): Path<(String, String, u64)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let releases = shared.releases();
    let Some((stored, index)) = releases.asset(&owner, &repo, asset_id) else {
        return gh_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let wants_file = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/octet-stream"));
    if !wants_file {
        return axum::Json(asset_json(&shared.urls, stored, index)).into_response();
    }
    // GitHub redirects to its download host.
    let location = download_url(&shared.urls, stored, index);
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn download(
    State(shared): State<AppState>,
    Path((owner, repo, tag, name)): Path<(String, String, String, String)>,
) -> Response {
    let releases = shared.releases();
    let file = releases
        .of_repository(&owner, &repo)
        .filter(|stored| stored.release.tag_name == tag)
        .find_map(|stored| {
            stored
                .release
                .assets
                .iter()
                .find(|asset| asset.name == name)
        });
    match file {
        Some(asset) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            asset.content.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}
