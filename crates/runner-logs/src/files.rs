//! Runner logs as files: `runway local` keeps each local runner's output in
//! `<dir>/<runner>.log`.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::{LogLine, MAX_LINES, RunnerLogError, RunnerLogLocation, RunnerLogReader, StreamName};

/// Directories of `<runner>.log` files (one per pool that keeps its own); the location's
/// group is not used.
#[derive(Debug, Clone, Default)]
pub struct FileRunnerLogs {
    dirs: Vec<PathBuf>,
}

impl FileRunnerLogs {
    pub fn new(dir: impl Into<PathBuf>) -> FileRunnerLogs {
        FileRunnerLogs {
            dirs: vec![dir.into()],
        }
    }

    /// Also looks in `dir`.
    pub fn add_dir(&mut self, dir: impl Into<PathBuf>) {
        let dir = dir.into();
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// Whether `name` is a runner name (letters, digits, `-`, `_`): nothing else may reach
    /// outside the directories.
    fn is_runner_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }
}

#[async_trait]
impl RunnerLogReader for FileRunnerLogs {
    async fn read(
        &self,
        location: &RunnerLogLocation,
    ) -> Result<Option<Vec<LogLine>>, RunnerLogError> {
        let StreamName::Exact(name) = &location.stream else {
            return Ok(None);
        };
        if !FileRunnerLogs::is_runner_name(name) {
            return Err(RunnerLogError::NotFound(format!(
                "{name:?} is not a runner name (letters, digits, '-', '_')"
            )));
        }
        let mut found = None;
        for dir in &self.dirs {
            let path = dir.join(format!("{name}.log"));
            match tokio::fs::read(&path).await {
                Ok(bytes) => {
                    found = Some(bytes);
                    break;
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(RunnerLogError::Io {
                        action: format!("read {}", path.display()),
                        source,
                    });
                }
            }
        }
        let Some(bytes) = found else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let skip = lines.len().saturating_sub(MAX_LINES);
        Ok(Some(
            lines[skip..]
                .iter()
                .map(|line| LogLine {
                    timestamp: None,
                    message: (*line).to_owned(),
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stream: &str) -> RunnerLogLocation {
        RunnerLogLocation {
            group: "local".into(),
            stream: StreamName::Exact(stream.into()),
        }
    }

    #[tokio::test]
    async fn reads_a_runners_file_and_refuses_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ci-7-a1-1.log"), "one\ntwo\n").unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("ci-9-a1-1.log"), "three\n").unwrap();
        let mut logs = FileRunnerLogs::new(dir.path());
        logs.add_dir(other.path());
        assert_eq!(logs.read(&at("ci-9-a1-1")).await.unwrap().unwrap().len(), 1);
        let lines = logs.read(&at("ci-7-a1-1")).await.unwrap().unwrap();
        let messages: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["one", "two"]);
        assert_eq!(logs.read(&at("ci-8-a1-1")).await.unwrap(), None);
        for bad in ["../etc/passwd", "a/b", "", "a.log"] {
            assert!(logs.read(&at(bad)).await.is_err(), "{bad}");
        }
    }
}
