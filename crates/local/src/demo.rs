//! The demo workload of `runway local`: a few jobs over several pools, queued through the
//! emulator's control API as a user (or a script) would.

use runway_github_emulator::{CreatedJob, NewJob};

use crate::system::LocalError;

/// A few jobs of different lengths over the built-in pools: more x64 jobs than the pool's
/// ceiling (some wait for a slot), two arm64 jobs on a pool of one, and one GPU job.
pub fn demo_jobs() -> Vec<NewJob> {
    let job = |repository: &str, name: &str, labels: &[&str], seconds: f64| {
        let mut job = NewJob::new(repository, labels);
        job.name = Some(name.to_owned());
        job.duration_seconds = seconds;
        job
    };
    let x64 = ["self-hosted", "linux", "x64"];
    vec![
        job("octo-org/app", "build", &x64, 2.0),
        job("octo-org/app", "test", &x64, 3.0),
        job("octo-org/api", "build", &x64, 1.5),
        job("octo-org/docs", "lint", &x64, 1.0),
        job(
            "octo-org/app",
            "build-arm64",
            &["self-hosted", "linux", "arm64"],
            2.0,
        ),
        job(
            "octo-org/api",
            "build-arm64",
            &["self-hosted", "linux", "arm64"],
            1.0,
        ),
        job(
            "octo-org/app",
            "train",
            &["self-hosted", "linux", "gpu"],
            2.5,
        ),
    ]
}

/// Queues `jobs` with `POST {emulator}/_emulator/jobs`, in order.
pub async fn submit(emulator_url: &str, jobs: &[NewJob]) -> Result<Vec<CreatedJob>, LocalError> {
    let http = reqwest::Client::new();
    let url = format!("{}/_emulator/jobs", emulator_url.trim_end_matches('/'));
    let mut created = Vec::new();
    for job in jobs {
        let response = http.post(&url).json(job).send().await.map_err(|error| {
            LocalError::Setup(format!("cannot queue a demo job at {url}: {error}"))
        })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(LocalError::Setup(format!(
                "the emulator refused a demo job ({status}): {body}"
            )));
        }
        let job: CreatedJob = response.json().await.map_err(|error| {
            LocalError::Setup(format!(
                "the emulator's answer to a demo job is unreadable: {error}"
            ))
        })?;
        created.push(job);
    }
    Ok(created)
}
