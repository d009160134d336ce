//! `runway config check FILE`: reads a configuration the way runway would and prints every
//! problem with its field path, without starting anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use runway_config::{Document, Host, Problem, ProviderSettings, ReadOptions};
use runway_jobflow::PoolConfig;
use runway_local::LocalConfig;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a configuration: a pools document (JSON, as the deployed stack reads it from
    /// RunwayConfig or its SSM parameter) or a `runway local` file (TOML).
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The file; `.json` is read as JSON, `.toml` as TOML, anything else by its first
    /// character (`{`: JSON).
    file: PathBuf,
    /// Where the document runs: `lambda` (the deployed stack; the default for JSON) or
    /// `local` (`runway local`; the default for TOML, which is then read as a whole
    /// `runway local` configuration).
    #[arg(long = "for", value_parser = parse_host)]
    host: Option<Host>,
    /// The stack the document configures (runner names, JIT config path); the default is
    /// runway's.
    #[arg(long)]
    stack: Option<String>,
}

fn parse_host(text: &str) -> Result<Host, String> {
    match text {
        "lambda" => Ok(Host::Lambda),
        "local" => Ok(Host::Local),
        other => Err(format!("{other:?}: expected lambda or local")),
    }
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(args) => check(&args),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    Json,
    Toml,
}

fn spelling(path: &Path, text: &str) -> Spelling {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Spelling::Json,
        Some("toml") => Spelling::Toml,
        _ if text.trim_start().starts_with('{') => Spelling::Json,
        _ => Spelling::Toml,
    }
}

/// One line per pool: what a reader of the file would want confirmed.
fn describe(pool: &PoolConfig, provider: &ProviderSettings) -> String {
    format!(
        "{}: labels [{}], {} runners, at most {} at once",
        pool.name,
        pool.labels.join(", "),
        provider.kind(),
        pool.max_running
    )
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let spelling = spelling(&args.file, &text);
    let host = args.host.unwrap_or(match spelling {
        Spelling::Json => Host::Lambda,
        Spelling::Toml => Host::Local,
    });
    let read: Result<Vec<String>, Vec<Problem>> = match (spelling, host) {
        // A whole `runway local` file: its own sections are checked too.
        (Spelling::Toml, Host::Local) => {
            if args.stack.is_some() {
                anyhow::bail!(
                    "a runway local file names its stack itself (its `stack` key): leave out \
                     --stack, or check a pools document with --for lambda"
                );
            }
            match LocalConfig::from_file(&args.file) {
                Ok(config) => Ok(config
                    .pools()
                    .map(|(pool, provider)| describe(pool, provider))
                    .collect()),
                Err(runway_local::ConfigError::Document(error)) => Err(error.problems()),
                Err(other) => Err(vec![Problem::new("", other.to_string())]),
            }
        }
        (spelling, host) => {
            let options = match &args.stack {
                Some(stack) => ReadOptions::for_stack(host, stack.as_str()),
                None => ReadOptions::new(host),
            };
            let document = match spelling {
                Spelling::Json => Document::from_json(&text, &options),
                Spelling::Toml => Document::from_toml(&text, &options),
            };
            document
                .map(|document| {
                    document
                        .pools()
                        .map(|(pool, provider)| describe(pool, provider))
                        .collect()
                })
                .map_err(|error| error.problems())
        }
    };
    let file = args.file.display();
    match read {
        Ok(pools) => {
            println!("{file}: ok, {} pool(s)", pools.len());
            for pool in pools {
                println!("  {pool}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{file}: {problem}");
            }
            eprintln!(
                "{file}: {} problem(s); nothing was started",
                problems.len().max(1)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
