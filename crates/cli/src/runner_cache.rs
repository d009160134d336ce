//! `runway runner-cache sync --bucket B`: brings a runner cache bucket up to the latest
//! `actions/runner` release once, as the stack's scheduled function does every day (for a
//! first deploy, or a bucket outside a stack).

use std::process::ExitCode;

use anyhow::Context;
use runway_runner_cache::{GITHUB_API, GitHubReleases, S3Store, SyncOutcome, sync};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Download the latest runner release, check its SHA-256 and store it in the bucket
    /// (nothing happens when the bucket already holds it).
    Sync(SyncArgs),
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The runner cache bucket (the stack's `RunnerCacheBucket` output).
    #[arg(long)]
    bucket: String,
    /// The GitHub REST API the release is read from.
    #[arg(long, default_value = GITHUB_API)]
    api_url: String,
    /// A GitHub token, only to lift the unauthenticated rate limit.
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Create the bucket (versioned) when it does not exist: for a bucket outside a stack.
    #[arg(long)]
    create_bucket: bool,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Sync(args) = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_sync(args))
}

async fn run_sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // An endpoint override (moto, a local S3) serves buckets by path, not by host name.
    let path_style = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(path_style)
            .build(),
    );
    let store = S3Store::new(client, &args.bucket);
    if args.create_bucket {
        store.ensure_bucket().await?;
    }
    let mut source = GitHubReleases::new(&args.api_url)?;
    if let Some(token) = args.token.filter(|token| !token.is_empty()) {
        source = source.with_token(token);
    }
    match sync(&source, &store).await? {
        SyncOutcome::Current { version } => {
            println!("s3://{}/: runner {version} already cached", args.bucket);
        }
        SyncOutcome::Updated {
            version, previous, ..
        } => match previous {
            Some(previous) => println!(
                "s3://{}/: cached runner {version} (was {previous})",
                args.bucket
            ),
            None => println!("s3://{}/: cached runner {version}", args.bucket),
        },
    }
    Ok(ExitCode::SUCCESS)
}
