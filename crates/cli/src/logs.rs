//! `runway logs`: a job's runner logs, from a deployed stack's CloudWatch Logs or from a
//! running `runway local`.

use std::process::ExitCode;

use anyhow::Context as _;
use runway_runner_logs::{
    CloudWatchRunnerLogs, JobLogs, JobRef, RunnerLogLocation, RunnerOfJob, StepFunctionsHistory,
    job_logs, local_log_location, stack_log_location,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job: its id (the number at the end of the job's URL, .../job/<id>) or its
    /// execution name (job-<job id>-r<repository id>-a<attempt>).
    pub job: String,
    /// Read a deployed stack's logs: its `<stack>-job` state machine and runner log groups,
    /// with the AWS credentials and region of the environment.
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The Step Functions API (and console) of the `runway local` to read, when no --stack.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8083")]
    pub local: String,
    /// Print the runners and their lines as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let job: JobRef = args.job.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let logs = runtime.block_on(read(&args, &job))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&logs)?);
    } else {
        print!("{}", render(&logs));
    }
    Ok(if logs.runners.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn read(args: &Args, job: &JobRef) -> anyhow::Result<JobLogs> {
    match &args.stack {
        Some(stack) => {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let history = StepFunctionsHistory::for_machine_named(
                aws_sdk_sfn::Client::new(&aws),
                &format!("{stack}-job"),
            )
            .await?;
            let reader = CloudWatchRunnerLogs::new(aws_sdk_cloudwatchlogs::Client::new(&aws), None);
            let locate = |runner: &RunnerOfJob| stack_log_location(stack, runner);
            Ok(job_logs(&history, &reader, &locate, job).await?)
        }
        None => {
            let sfn = runway_local::step_functions_client(&args.local);
            let history =
                StepFunctionsHistory::for_machine_named(sfn, runway_local::JOB_MACHINE_NAME)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot read runway local's executions at {} (is `runway local` \
                             running? for a deployed stack, pass --stack NAME)",
                            args.local
                        )
                    })?;
            let reader = runway_local::console::ConsoleRunnerLogs::new(&args.local);
            Ok(job_logs(&history, &reader, &local_log_location, job).await?)
        }
    }
}

/// Each runner under a heading that says where its log is, then its lines.
fn render(logs: &JobLogs) -> String {
    let mut out = format!("execution {}\n", logs.execution);
    if logs.runners.is_empty() {
        out.push_str("  no runner yet: the job has not been routed and provisioned\n");
    }
    for log in &logs.runners {
        let runner = &log.runner;
        let host = match (&runner.provider, &runner.instance_id) {
            (Some(provider), Some(id)) => format!("{provider} {id}"),
            (Some(provider), None) => provider.clone(),
            _ => "unknown host".into(),
        };
        let how = if runner.adopted {
            "adopted warm runner"
        } else {
            "runner"
        };
        out.push_str(&format!(
            "\n== {how} {} (pool {}, {host}; {}){}\n",
            runner.runner_name,
            runner.pool.as_deref().unwrap_or("?"),
            runner.launched_by,
            log.location
                .as_ref()
                .map(|at: &RunnerLogLocation| format!(" — {at}"))
                .unwrap_or_default()
        ));
        if let Some(note) = &log.note {
            out.push_str(&format!("   {note}\n"));
        }
        for line in log.lines.iter().flatten() {
            match line.timestamp {
                Some(at) => out.push_str(&format!(
                    "{} {}\n",
                    at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    line.message
                )),
                None => out.push_str(&format!("{}\n", line.message)),
            }
        }
    }
    out
}
