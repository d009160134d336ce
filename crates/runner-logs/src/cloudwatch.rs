//! Runner logs in CloudWatch Logs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use tracing::info;

use crate::{
    LogLine, RunnerLogError, RunnerLogGroups, RunnerLogLocation, RunnerLogReader, StreamName,
};

/// Most lines one read returns (the newest are kept): a runner's log is a boot and one job.
pub const MAX_LINES: usize = 50_000;

/// A group made (or found) this recently is not asked for again.
const KNOWN_GROUP_TTL: Duration = Duration::from_secs(3600);

/// Most stream pages searched for an ECS task's stream.
const MAX_STREAM_PAGES: usize = 20;

/// Runner log groups and streams in CloudWatch Logs.
#[derive(Debug, Clone)]
pub struct CloudWatchRunnerLogs {
    client: Client,
    /// Days a new group keeps events; `None`: forever.
    retention_days: Option<i32>,
    known_groups: Arc<Mutex<HashMap<String, Instant>>>,
}

impl CloudWatchRunnerLogs {
    /// Groups it makes keep events for `retention_days` (one of the values CloudWatch
    /// accepts: 1, 3, 5, 7, 14, 30, ...), or forever.
    pub fn new(client: Client, retention_days: Option<i32>) -> CloudWatchRunnerLogs {
        CloudWatchRunnerLogs {
            client,
            retention_days,
            known_groups: Arc::default(),
        }
    }

    fn recently_made(&self, group: &str) -> bool {
        let known = self
            .known_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known
            .get(group)
            .is_some_and(|made| made.elapsed() < KNOWN_GROUP_TTL)
    }

    fn remember(&self, group: &str) {
        self.known_groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group.to_owned(), Instant::now());
    }

    /// The name of the first stream of `group` that starts with `prefix` and ends with
    /// `suffix`.
    async fn find_stream(
        &self,
        group: &str,
        prefix: &str,
        suffix: &str,
    ) -> Result<Option<String>, RunnerLogError> {
        let mut token = None;
        for _ in 0..MAX_STREAM_PAGES {
            let listed = self
                .client
                .describe_log_streams()
                .log_group_name(group)
                .log_stream_name_prefix(prefix)
                .set_next_token(token)
                .send()
                .await;
            let Some(page) = unless_missing(listed, || format!("list the log streams of {group}"))?
            else {
                return Ok(None);
            };
            if let Some(stream) = page
                .log_streams()
                .iter()
                .filter_map(|stream| stream.log_stream_name())
                .find(|name| name.ends_with(suffix))
            {
                return Ok(Some(stream.to_owned()));
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl RunnerLogGroups for CloudWatchRunnerLogs {
    async fn ensure_group(&self, group: &str) -> Result<(), RunnerLogError> {
        if self.recently_made(group) {
            return Ok(());
        }
        let mut request = self
            .client
            .create_log_group()
            .log_group_name(group)
            .tags("runway:managed", "true");
        if let Some(stack) = group
            .strip_prefix("/runway/")
            .and_then(|rest| rest.split('/').next())
        {
            request = request.tags("runway:stack", stack);
        }
        match request.send().await {
            Ok(_) => info!(%group, "made the runner log group"),
            // Another launch made it, or an earlier process did: its retention is still set
            // below, so a try whose retention call failed, or a changed stack setting, is
            // mended by the next launch.
            Err(error) if error.code() == Some("ResourceAlreadyExistsException") => {}
            Err(error) => {
                return Err(RunnerLogError::aws(
                    format!("create the runner log group {group}"),
                    &error,
                ));
            }
        }
        if let Some(days) = self.retention_days {
            self.client
                .put_retention_policy()
                .log_group_name(group)
                .retention_in_days(days)
                .send()
                .await
                .map_err(|error| {
                    RunnerLogError::aws(
                        format!("keep the runner log group {group} for {days} days"),
                        &error,
                    )
                })?;
        }
        self.remember(group);
        Ok(())
    }
}

#[async_trait]
impl RunnerLogReader for CloudWatchRunnerLogs {
    async fn read(
        &self,
        location: &RunnerLogLocation,
    ) -> Result<Option<Vec<LogLine>>, RunnerLogError> {
        let group = &location.group;
        let stream = match &location.stream {
            StreamName::Exact(stream) => stream.clone(),
            StreamName::Matching { prefix, suffix } => {
                match self.find_stream(group, prefix, suffix).await? {
                    Some(stream) => stream,
                    None => return Ok(None),
                }
            }
        };
        let mut lines: Vec<LogLine> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let read = self
                .client
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(&stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await;
            let Some(page) =
                unless_missing(read, || format!("read the log stream {stream} of {group}"))?
            else {
                return Ok(None);
            };
            let events = page.events();
            lines.extend(events.iter().map(|event| {
                LogLine {
                    timestamp: event
                        .timestamp()
                        .and_then(DateTime::<Utc>::from_timestamp_millis),
                    message: event.message().unwrap_or_default().to_owned(),
                }
            }));
            if lines.len() > MAX_LINES {
                lines.drain(..lines.len() - MAX_LINES);
            }
            // Reading forward, the last page repeats its token with no events.
            let next = page.next_forward_token().map(str::to_owned);
            if events.is_empty() || next.is_none() || next == token {
                break;
            }
            token = next;
        }
        Ok(Some(lines))
    }
}

/// A call's answer; `None` when its group or stream does not exist (yet, or any more).
fn unless_missing<T, E>(
    answer: Result<T, aws_sdk_cloudwatchlogs::error::SdkError<E>>,
    action: impl FnOnce() -> String,
) -> Result<Option<T>, RunnerLogError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match answer {
        Ok(answer) => Ok(Some(answer)),
        Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(error) => Err(RunnerLogError::aws(action(), &error)),
    }
}
