//! Reading a running `runway local`'s runner logs from its console, as `runway logs` does.

use async_trait::async_trait;
use runway_runner_logs::{LogLine, RunnerLogError, RunnerLogLocation, RunnerLogReader, StreamName};
use serde::Deserialize;

/// The runner logs a `runway local` console at `base_url` serves.
#[derive(Debug, Clone)]
pub struct ConsoleRunnerLogs {
    base_url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    lines: Vec<LogLine>,
}

impl ConsoleRunnerLogs {
    /// `base_url`: the console's (and Step Functions API's) root, e.g. `http://127.0.0.1:8083`.
    pub fn new(base_url: impl Into<String>) -> ConsoleRunnerLogs {
        ConsoleRunnerLogs {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }
}

#[async_trait]
impl RunnerLogReader for ConsoleRunnerLogs {
    async fn read(
        &self,
        location: &RunnerLogLocation,
    ) -> Result<Option<Vec<LogLine>>, RunnerLogError> {
        let StreamName::Exact(name) = &location.stream else {
            return Ok(None);
        };
        let url = format!("{}/console/api/runners/{name}/log", self.base_url);
        let unreachable = |error: reqwest::Error| {
            RunnerLogError::NotFound(format!(
                "cannot reach runway local at {}: {error}; is it running (runway local)?",
                self.base_url
            ))
        };
        let response = self.http.get(&url).send().await.map_err(unreachable)?;
        match response.status() {
            status if status.is_success() => {
                let answer: Answer = response.json().await.map_err(|error| {
                    RunnerLogError::Malformed(format!("the answer of {url} is not a log: {error}"))
                })?;
                Ok(Some(answer.lines))
            }
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status => Err(RunnerLogError::Malformed(format!(
                "{url} answered {status}: {}",
                response.text().await.unwrap_or_default()
            ))),
        }
    }
}

/// A Step Functions client for the local engine's API at `base_url` (it takes any
/// credentials): what `runway logs` reads executions with.
pub fn step_functions_client(base_url: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
        .endpoint_url(base_url.trim_end_matches('/'))
        .region(aws_sdk_sfn::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "runway-local",
            "runway-local",
            None,
            None,
            "runway-local",
        ))
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}
