//! `runway runner-cache sync` as a real process: the GitHub emulator's runner release into a
//! bucket on moto (both on 127.0.0.1).

use std::time::Duration;

use runway_github_emulator::{Emulator, EmulatorConfig, Faults, runner_release_stand_in};
use runway_testkit::MotoServer;

const RUNWAY: &str = env!("CARGO_BIN_EXE_runway");

async fn sync(api_url: &str, moto: &MotoServer, bucket: &str) -> std::process::Output {
    let child = tokio::process::Command::new(RUNWAY)
        .args([
            "runner-cache",
            "sync",
            "--bucket",
            bucket,
            "--api-url",
            api_url,
            "--create-bucket",
        ])
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("GITHUB_TOKEN")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("runway runner-cache sync ends")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fills_the_bucket_once_and_says_what_it_did() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let github = Emulator::start(EmulatorConfig::default()).await.unwrap();
    github
        .publish_release(runner_release_stand_in("2.321.0"))
        .unwrap();

    let first = sync(github.api_url(), &moto, "cli-runner-cache").await;
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("s3://cli-runner-cache/: cached runner 2.321.0"),
        "{stdout}"
    );
    let again = sync(github.api_url(), &moto, "cli-runner-cache").await;
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("runner 2.321.0 already cached"), "{stdout}");

    // GitHub failing: a clear error and a failed exit.
    github.set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(503),
        ..Faults::default()
    });
    let failed = sync(github.api_url(), &moto, "cli-runner-cache").await;
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("GitHub answered 503"), "{stderr}");
}
