//! `runway doctor --stack NAME`: checks a deployed stack (`runway_doctor`) and prints each
//! check as ok, warn or FAIL with what to do; exits 1 when any check failed.

use std::process::ExitCode;

use anyhow::Context;
use runway_doctor::Doctor;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CloudFormation stack runway was deployed as.
    #[arg(long)]
    stack: String,
    /// The stack's region (default: the AWS configuration's).
    #[arg(long)]
    region: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(examine(args))
}

async fn examine(args: Args) -> anyhow::Result<ExitCode> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = args.region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let aws = loader.load().await;
    let doctor = Doctor::aws(&aws, runway_clock::SystemClock::shared())?;
    let report = doctor.examine(&args.stack).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
