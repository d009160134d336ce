//! A job's runner logs: find its execution, the runners it launched, and read their logs.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::history::{ExecutionHistory, RunnerOfJob, runners_of_execution};
use crate::{
    LogLine, RunnerLogError, RunnerLogLocation, RunnerLogReader, StreamName, ecs_runner_log_group,
    lambda_runner_log_group, runner_log_group,
};

/// What `runway logs` is asked for: a job execution's name
/// (`job-<job id>-r<repository id>-a<attempt>`, maybe `-retry<n>`) or a job id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    Execution(String),
    Job(u64),
}

impl JobRef {
    /// Whether the execution `name` is one of this job's.
    pub fn names(&self, name: &str) -> bool {
        match self {
            JobRef::Execution(execution) => execution == name,
            JobRef::Job(id) => name
                .strip_prefix(&format!("job-{id}-r"))
                .is_some_and(|rest| JobRef::from_str(&format!("job-{id}-r{rest}")).is_ok()),
        }
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobRef::Execution(name) => write!(f, "execution {name}"),
            JobRef::Job(id) => write!(f, "job {id}"),
        }
    }
}

impl FromStr for JobRef {
    type Err = RunnerLogError;

    fn from_str(text: &str) -> Result<JobRef, RunnerLogError> {
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let text = text.trim();
        if digits(text) {
            return text.parse().map(JobRef::Job).map_err(|_| {
                RunnerLogError::NotFound(format!("{text} is too large for a job id"))
            });
        }
        let well_formed = text.strip_prefix("job-").is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('-').collect();
            let (job, repository, attempt, retry) = match parts.as_slice() {
                [job, repository, attempt] => (job, repository, attempt, None),
                [job, repository, attempt, retry] => (job, repository, attempt, Some(retry)),
                _ => return false,
            };
            digits(job)
                && repository.strip_prefix('r').is_some_and(digits)
                && attempt.strip_prefix('a').is_some_and(digits)
                && retry.is_none_or(|retry| retry.strip_prefix("retry").is_some_and(digits))
        });
        if well_formed {
            Ok(JobRef::Execution(text.to_owned()))
        } else {
            Err(RunnerLogError::NotFound(format!(
                "{text:?} is neither a job id (digits, as in the job's URL \
                 .../actions/runs/<run>/job/<job id>) nor a job execution name \
                 (job-<job id>-r<repository id>-a<attempt>)"
            )))
        }
    }
}

/// One runner of a job, and its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerLog {
    pub runner: RunnerOfJob,
    pub location: Option<RunnerLogLocation>,
    /// `None`: no log was found (see `note`).
    pub lines: Option<Vec<LogLine>>,
    /// Why there are no lines, and where to look instead.
    pub note: Option<String>,
}

/// A job's runner logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobLogs {
    pub execution: String,
    pub runners: Vec<RunnerLog>,
}

/// Where a runner of a deployed stack writes its log; `Err` says where to look when runway
/// keeps none.
pub fn stack_log_location(stack: &str, runner: &RunnerOfJob) -> Result<RunnerLogLocation, String> {
    match runner.provider.as_deref() {
        Some("ec2") => {
            let Some(pool) = &runner.pool else {
                return Err("the execution does not say the runner's pool".into());
            };
            Ok(RunnerLogLocation {
                group: runner_log_group(stack, pool),
                stream: StreamName::Exact(runner.runner_name.clone()),
            })
        }
        Some("ecs") => {
            let task = runner
                .instance_id
                .as_deref()
                .and_then(|arn| arn.rsplit('/').next())
                .filter(|id| !id.is_empty())
                .ok_or("the execution does not say the runner's task")?;
            Ok(RunnerLogLocation {
                group: ecs_runner_log_group(stack),
                stream: StreamName::Matching {
                    prefix: "runway/".into(),
                    suffix: format!("/{task}"),
                },
            })
        }
        Some("lambda") => Err(format!(
            "Lambda runners log to the function's group {}: search it for {} (aws logs \
             filter-log-events --log-group-name {} --filter-pattern '\"{}\"')",
            lambda_runner_log_group(stack),
            runner.runner_name,
            lambda_runner_log_group(stack),
            runner.runner_name
        )),
        Some("eks") => Err(format!(
            "an EKS runner's log goes with its pod: `kubectl logs {}` while it runs, or the \
             cluster's own log shipping",
            runner.instance_id.as_deref().unwrap_or(&runner.runner_name)
        )),
        Some(other) => Err(format!("runway keeps no log of {other} runners")),
        None => Err("the execution does not say which kind of host ran the runner".into()),
    }
}

/// Where `runway local` keeps a runner's log.
pub fn local_log_location(runner: &RunnerOfJob) -> Result<RunnerLogLocation, String> {
    Ok(RunnerLogLocation {
        group: "local".into(),
        stream: StreamName::Exact(runner.runner_name.clone()),
    })
}

/// The runner logs of `job`: its newest execution, the runners that execution launched or
/// adopted, and each one's log where `locate` says it is.
pub async fn job_logs(
    history: &dyn ExecutionHistory,
    reader: &dyn RunnerLogReader,
    locate: &(dyn Fn(&RunnerOfJob) -> Result<RunnerLogLocation, String> + Sync),
    job: &JobRef,
) -> Result<JobLogs, RunnerLogError> {
    let Some(execution) = history.find(job).await? else {
        return Err(RunnerLogError::NotFound(format!(
            "no execution of {job}: runway starts one when GitHub sends the job's queued \
             webhook (check the App's recent deliveries)"
        )));
    };
    let outputs = history.state_outputs(&execution).await?;
    let mut runners = Vec::new();
    for runner in runners_of_execution(&outputs) {
        let log = match locate(&runner) {
            Err(note) => RunnerLog {
                runner,
                location: None,
                lines: None,
                note: Some(note),
            },
            Ok(location) => {
                let lines = reader.read(&location).await?;
                let note = lines.is_none().then(|| {
                    format!(
                        "no log at {location}: the runner did not boot far enough to send one, \
                         or the log has expired"
                    )
                });
                RunnerLog {
                    runner,
                    location: Some(location),
                    lines,
                    note,
                }
            }
        };
        runners.push(log);
    }
    Ok(JobLogs { execution, runners })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn job_ids_and_execution_names_parse() {
        assert_eq!("42".parse::<JobRef>().unwrap(), JobRef::Job(42));
        for name in ["job-42-r7-a1", "job-42-r7-a2-retry1"] {
            assert_eq!(
                name.parse::<JobRef>().unwrap(),
                JobRef::Execution(name.into())
            );
        }
        for bad in [
            "",
            "job-42",
            "job-x-r7-a1",
            "job-42-r7-a1-again",
            "42a",
            "99999999999999999999999",
        ] {
            let error = bad.parse::<JobRef>().unwrap_err().to_string();
            assert!(!error.is_empty(), "{bad}");
        }
        assert!(JobRef::Job(42).names("job-42-r7-a1"));
        assert!(JobRef::Job(42).names("job-42-r7-a1-retry3"));
        assert!(!JobRef::Job(4).names("job-42-r7-a1"));
        assert!(!JobRef::Job(42).names("job-42-rx-a1"));
    }

    #[test]
    fn each_host_kind_logs_where_the_stack_sends_it() {
        let runner = |provider: &str, instance: &str| RunnerOfJob {
            runner_name: "ci-7-a1-1".into(),
            pool: Some("linux-x64".into()),
            provider: Some(provider.into()),
            instance_id: Some(instance.into()),
            launched_by: "Provision".into(),
            adopted: false,
        };
        let ec2 = stack_log_location("ci", &runner("ec2", "i-1")).unwrap();
        assert_eq!(ec2.group, "/runway/ci/runners/linux-x64");
        assert_eq!(ec2.stream, StreamName::Exact("ci-7-a1-1".into()));
        let ecs = stack_log_location(
            "ci",
            &runner("ecs", "arn:aws:ecs:eu-west-1:1:task/ci-runners/0f3a"),
        )
        .unwrap();
        assert_eq!(ecs.group, "/runway/ci/ecs-runners");
        assert_eq!(
            ecs.stream,
            StreamName::Matching {
                prefix: "runway/".into(),
                suffix: "/0f3a".into()
            }
        );
        let lambda = stack_log_location("ci", &runner("lambda", "x")).unwrap_err();
        assert!(lambda.contains("/runway/ci/lambda-runner"), "{lambda}");
        let eks = stack_log_location("ci", &runner("eks", "ci-7-a1-1")).unwrap_err();
        assert!(eks.contains("kubectl logs"), "{eks}");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_names_parse_back(text in "\\PC{0,40}") {
            let _ = text.parse::<JobRef>();
        }

        #[test]
        fn every_execution_name_runway_makes_parses(
            job in any::<u64>(), repository in any::<u64>(), attempt in any::<u32>(),
            retry in proptest::option::of(any::<u32>()),
        ) {
            let mut name = format!("job-{job}-r{repository}-a{attempt}");
            if let Some(retry) = retry {
                name.push_str(&format!("-retry{retry}"));
            }
            prop_assert_eq!(name.parse::<JobRef>().unwrap(), JobRef::Execution(name.clone()));
            prop_assert!(JobRef::Job(job).names(&name));
        }
    }
}
