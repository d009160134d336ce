//! The runner cache filled from GitHub's releases API (the GitHub emulator on 127.0.0.1)
//! into a real S3 API (moto on 127.0.0.1), and from in-memory stand-ins.

use std::collections::BTreeMap;

use bytes::Bytes;
use runway_github_emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, Faults, NewAsset, NewRelease,
};
use runway_runner_cache::{
    CacheError, CacheStore, FixedRelease, GitHubReleases, MANIFEST_KEY, Manifest, MemoryStore,
    Platform, Release, ReleaseAsset, S3Store, SyncOutcome, sync,
};
use runway_testkit::MotoServer;
use sha2::{Digest, Sha256};

fn package(platform: Platform, version: &str) -> Vec<u8> {
    format!("stand-in runner {platform} {version}\n")
        .repeat(50)
        .into_bytes()
}

fn assets(version: &str) -> Vec<NewAsset> {
    Platform::ALL
        .iter()
        .map(|&platform| NewAsset::new(&platform.asset_name(version), package(platform, version)))
        .collect()
}

async fn emulator() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::default()).await.unwrap()
}

async fn s3() -> aws_sdk_s3::Client {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let config = moto.sdk_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

async fn bucket(client: &aws_sdk_s3::Client, name: &str) -> S3Store {
    let store = S3Store::new(client.clone(), name);
    store.ensure_bucket().await.unwrap();
    store
}

async fn keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_string))
        .collect()
}

fn source(emulator: &EmulatorHandle) -> GitHubReleases {
    GitHubReleases::new(emulator.api_url()).unwrap()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_latest_release_is_cached_once_with_its_manifest() {
    let github = emulator().await;
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.320.0",
            assets("2.320.0"),
        ))
        .unwrap();
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.321.0",
            assets("2.321.0"),
        ))
        .unwrap();
    let client = s3().await;
    let store = bucket(&client, "cache-fills-once").await;

    let outcome = sync(&source(&github), &store).await.unwrap();
    let SyncOutcome::Updated {
        version,
        previous,
        keys: stored,
    } = outcome
    else {
        panic!("expected an update, got {outcome:?}");
    };
    assert_eq!(version, "2.321.0");
    assert_eq!(previous, None);
    assert_eq!(stored.len(), 3);

    let manifest = Manifest::parse(&store.get(MANIFEST_KEY).await.unwrap().unwrap()).unwrap();
    assert_eq!(manifest.version, "2.321.0");
    for platform in Platform::ALL {
        let entry = &manifest.platforms[&platform];
        let expected = package(platform, "2.321.0");
        assert_eq!(
            entry.key,
            format!("runners/2.321.0/{}", platform.asset_name("2.321.0"))
        );
        assert_eq!(entry.sha256, sha(&expected));
        assert_eq!(entry.size, expected.len() as u64);
        assert_eq!(store.get(&entry.key).await.unwrap().unwrap(), expected);
    }

    // Current: nothing is downloaded again.
    let again = sync(&source(&github), &store).await.unwrap();
    assert_eq!(
        again,
        SyncOutcome::Current {
            version: "2.321.0".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_release_replaces_the_manifest_and_keeps_the_old_packages() {
    let github = emulator().await;
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.320.0",
            assets("2.320.0"),
        ))
        .unwrap();
    let client = s3().await;
    let store = bucket(&client, "cache-follows-releases").await;
    sync(&source(&github), &store).await.unwrap();
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.321.0",
            assets("2.321.0"),
        ))
        .unwrap();
    let outcome = sync(&source(&github), &store).await.unwrap();
    assert!(
        matches!(&outcome, SyncOutcome::Updated { previous: Some(old), .. } if old == "2.320.0"),
        "{outcome:?}"
    );
    let listed = keys(&client, "cache-follows-releases").await;
    assert_eq!(listed.len(), 7, "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_digests_the_release_notes_markers_are_checked() {
    let github = emulator().await;
    let mut release = NewRelease::new("actions/runner", "v2.322.0", assets("2.322.0"));
    let mut body = String::from("## Changes\n");
    for (platform, asset) in Platform::ALL.iter().zip(release.assets.iter_mut()) {
        asset.digest = None;
        body.push_str(&format!(
            "- {} <!-- BEGIN SHA {platform} -->{}<!-- END SHA {platform} -->\n",
            asset.name,
            sha(&asset.content)
        ));
    }
    release.body = Some(body);
    github.publish_release(release).unwrap();
    let client = s3().await;
    let store = bucket(&client, "cache-from-markers").await;
    let outcome = sync(&source(&github), &store).await.unwrap();
    assert_eq!(outcome.version(), "2.322.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_checksum_stores_nothing_and_says_so() {
    let github = emulator().await;
    let mut release = NewRelease::new("actions/runner", "v2.323.0", assets("2.323.0"));
    // The last package is tampered with: the two before it streamed already.
    release.assets[2].content = Bytes::from(
        String::from_utf8(release.assets[2].content.to_vec())
            .unwrap()
            .replacen("stand-in", "tampered", 1),
    );
    github.publish_release(release).unwrap();
    let client = s3().await;
    let store = bucket(&client, "cache-refuses-tampering").await;
    let error = sync(&source(&github), &store).await.unwrap_err();
    assert!(
        matches!(&error, CacheError::ChecksumMismatch { asset, .. } if asset == "actions-runner-win-x64-2.323.0.zip"),
        "{error:?}"
    );
    assert!(error.to_string().contains("nothing was stored"), "{error}");
    assert_eq!(
        keys(&client, "cache-refuses-tampering").await,
        Vec::<String>::new()
    );
    let uploads = client
        .list_multipart_uploads()
        .bucket("cache-refuses-tampering")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "every upload was aborted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_server_error_is_reported_and_changes_nothing() {
    let github = emulator().await;
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.321.0",
            assets("2.321.0"),
        ))
        .unwrap();
    github.set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(502),
        ..Faults::default()
    });
    let store = MemoryStore::new();
    let error = sync(&source(&github), &store).await.unwrap_err();
    assert!(
        matches!(error, CacheError::GitHub { status: 502, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("GitHub is failing"), "{error}");
    assert!(store.keys().is_empty());
    // The next run goes through.
    assert_eq!(
        sync(&source(&github), &store).await.unwrap().version(),
        "2.321.0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_failing_midway_stores_nothing() {
    let github = emulator().await;
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.321.0",
            assets("2.321.0"),
        ))
        .unwrap();
    let store = MemoryStore::new();
    // The release answers; the first download gets the 500.
    let releases = source(&github);
    let release = runway_runner_cache::ReleaseSource::latest_release(&releases)
        .await
        .unwrap();
    let fixed = FixedRelease {
        release,
        files: BTreeMap::new(),
    };
    let error = sync(&fixed, &store).await.unwrap_err();
    assert!(
        matches!(error, CacheError::GitHub { status: 404, .. }),
        "{error:?}"
    );
    assert!(store.keys().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_error_is_reported_with_the_bucket_and_what_to_check() {
    let github = emulator().await;
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.321.0",
            assets("2.321.0"),
        ))
        .unwrap();
    let client = s3().await;
    // Never created.
    let store = S3Store::new(client, "no-such-runner-cache");
    let error = sync(&source(&github), &store).await.unwrap_err();
    let CacheError::Store { bucket, .. } = &error else {
        panic!("expected a store error, got {error:?}");
    };
    assert_eq!(bucket, "no-such-runner-cache");
    assert!(
        error.to_string().contains("check the bucket exists"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_download_through_the_asset_api_and_the_browser_url() {
    let github = emulator().await;
    github
        .publish_release(NewRelease::new(
            "actions/runner",
            "v2.321.0",
            assets("2.321.0"),
        ))
        .unwrap();
    let http = reqwest::Client::new();
    let release: Release = http
        .get(format!(
            "{}/repos/actions/runner/releases/latest",
            github.api_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let asset: &ReleaseAsset = &release.assets[0];
    let expected = package(Platform::LinuxX64, "2.321.0");
    let through_api = http
        .get(&asset.url)
        .header("Accept", "application/octet-stream")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(through_api.to_vec(), expected);
    let direct = http
        .get(&asset.browser_download_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(direct.to_vec(), expected);
    let metadata: serde_json::Value = http
        .get(&asset.url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["digest"], format!("sha256:{}", sha(&expected)));
    let listed: Vec<Release> = http
        .get(format!(
            "{}/repos/actions/runner/releases",
            github.api_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

fn fixed(version: &str, tweak: impl Fn(&mut ReleaseAsset, &mut Bytes)) -> FixedRelease {
    let mut release = Release {
        id: 1,
        tag_name: format!("v{version}"),
        body: None,
        assets: Vec::new(),
    };
    let mut files = BTreeMap::new();
    for (index, platform) in Platform::ALL.iter().enumerate() {
        let mut content = Bytes::from(package(*platform, version));
        let mut asset = ReleaseAsset {
            id: index as u64,
            name: platform.asset_name(version),
            size: content.len() as u64,
            url: format!("memory://{index}"),
            browser_download_url: format!("memory://{index}"),
            digest: Some(format!("sha256:{}", sha(&content))),
        };
        tweak(&mut asset, &mut content);
        files.insert(asset.id, content);
        release.assets.push(asset);
    }
    FixedRelease { release, files }
}

#[tokio::test]
async fn a_download_longer_or_shorter_than_the_release_says_is_refused() {
    for (name, grow) in [("longer", true), ("shorter", false)] {
        let source = fixed("2.1.0", |_, content| {
            let mut bytes = content.to_vec();
            if grow {
                bytes.push(b'x');
            } else {
                bytes.pop();
            }
            *content = Bytes::from(bytes);
        });
        let store = MemoryStore::new();
        let error = sync(&source, &store).await.unwrap_err();
        assert!(
            matches!(error, CacheError::SizeMismatch { .. }),
            "{name}: {error:?}"
        );
        assert!(store.keys().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_release_missing_a_platform_is_refused() {
    let mut source = fixed("2.1.0", |_, _| {});
    source.release.assets.remove(1);
    let error = sync(&source, &MemoryStore::new()).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("actions-runner-linux-arm64-2.1.0.tar.gz"),
        "{error}"
    );
}

#[tokio::test]
async fn an_oversized_asset_is_refused_before_downloading() {
    let source = fixed("2.1.0", |asset, _| {
        asset.size = runway_runner_cache::MAX_PACKAGE_BYTES + 1;
    });
    let error = sync(&source, &MemoryStore::new()).await.unwrap_err();
    assert!(matches!(error, CacheError::TooLarge { .. }), "{error:?}");
}

#[tokio::test]
async fn an_unusable_manifest_is_replaced() {
    let store = MemoryStore::new();
    store
        .put(MANIFEST_KEY, b"{broken".to_vec(), "application/json")
        .await
        .unwrap();
    let outcome = sync(&fixed("2.1.0", |_, _| {}), &store).await.unwrap();
    assert!(matches!(
        outcome,
        SyncOutcome::Updated { previous: None, .. }
    ));
    assert!(Manifest::parse(&store.object(MANIFEST_KEY).unwrap()).is_ok());
}
