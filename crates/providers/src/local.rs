//! Runners as processes on this machine, for `runway local` and tests.
//!
//! Each runner is a child process in its own process group, recorded by execution and runner
//! name. Terminate sends SIGTERM to the group, then SIGKILL after a grace period, and reaps
//! the child. A child that exits by itself (an ephemeral runner that ran its job) is reaped
//! the next time the provider looks, and is no longer listed. Dropping the provider kills every
//! group it started.
//!
//! The JIT config reaches the process in the `RUNWAY_JITCONFIG` environment variable, which
//! other users cannot read. A `{jitconfig}` placeholder in the command line also works (the
//! real runner wants `run.sh --jitconfig X`), but then the config is visible to anyone
//! running `ps` on this machine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use runway_clock::{SharedClock, SystemClock};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::{
    LaunchRequest, Launched, OwnedRunner, Provider, ProviderError, ProviderKind, Terminated,
};

/// The environment variable that carries the JIT config to a local runner.
pub const JITCONFIG_ENV: &str = "RUNWAY_JITCONFIG";

/// How local runners are started.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Program and arguments. `{jitconfig}`, `{url}`, `{runner}`, `{execution}` and `{pool}`
    /// are replaced in each argument (see the module docs about `{jitconfig}`).
    pub command: Vec<String>,
    /// What `{url}` stands for (and `RUNWAY_GITHUB_URL`): the GitHub (emulator) base URL.
    pub url: Option<String>,
    /// The runners' working directory (default: this process's).
    pub work_dir: Option<PathBuf>,
    /// Extra environment for the runners.
    pub env: Vec<(String, String)>,
    /// Where `<runner>.log` files (stdout and stderr) go; none: output is discarded.
    pub log_dir: Option<PathBuf>,
    /// How long a runner has to stop after SIGTERM before SIGKILL.
    pub grace: Duration,
}

impl LocalConfig {
    /// Runs `command` with runway's defaults elsewhere.
    pub fn new(command: Vec<String>) -> LocalConfig {
        LocalConfig {
            command,
            url: None,
            work_dir: None,
            env: Vec::new(),
            log_dir: None,
            grace: Duration::from_secs(5),
        }
    }

    /// The simulated runner built into this binary: `<current exe> runner-sim`.
    pub fn runner_sim() -> Result<LocalConfig, ProviderError> {
        let exe = std::env::current_exe().map_err(|error| {
            ProviderError::config(format!(
                "cannot find the runway binary to run `runner-sim` ({error}); \
                 set the local runner command explicitly"
            ))
        })?;
        Ok(LocalConfig::new(vec![
            exe.display().to_string(),
            "runner-sim".to_string(),
        ]))
    }
}

#[derive(Debug)]
struct Running {
    child: Child,
    pid: u32,
    pool: String,
    launched_at: DateTime<Utc>,
}

/// Runners as local processes.
#[derive(Debug)]
pub struct LocalProvider {
    config: LocalConfig,
    clock: SharedClock,
    // (execution, runner name) → process.
    running: Mutex<HashMap<(String, String), Running>>,
}

impl LocalProvider {
    /// Checks the configuration; an empty command is [`ProviderError::Config`].
    pub fn new(config: LocalConfig) -> Result<LocalProvider, ProviderError> {
        if config
            .command
            .first()
            .is_none_or(|program| program.is_empty())
        {
            return Err(ProviderError::config(
                "the local runner command is empty: give a program to run (e.g. `runway \
                 runner-sim` or a path to run.sh)",
            ));
        }
        Ok(LocalProvider {
            config,
            clock: SystemClock::shared(),
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Uses `clock` for launch times instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> LocalProvider {
        self.clock = clock;
        self
    }

    /// Where runners' `<runner>.log` files go, if anywhere.
    pub fn log_dir(&self) -> Option<&std::path::Path> {
        self.config.log_dir.as_deref()
    }

    fn command_for(&self, request: &LaunchRequest) -> Result<Command, ProviderError> {
        let fill = |arg: &str| {
            arg.replace("{url}", self.config.url.as_deref().unwrap_or(""))
                .replace("{runner}", &request.runner_name)
                .replace("{execution}", &request.execution)
                .replace("{pool}", &request.pool)
                .replace("{jitconfig}", request.jit_config.expose())
        };
        let (program, args) = self
            .config
            .command
            .split_first()
            .ok_or_else(|| ProviderError::config("the local runner command is empty"))?;
        let mut command = Command::new(fill(program));
        command
            .args(args.iter().map(|arg| fill(arg)))
            .env(JITCONFIG_ENV, request.jit_config.expose())
            .env("RUNWAY_RUNNER_NAME", &request.runner_name)
            .env("RUNWAY_EXECUTION", &request.execution)
            .env("RUNWAY_POOL", &request.pool)
            .env("RUNWAY_LABELS", request.labels.join(","))
            .envs(self.config.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            // Its own group, so terminate reaches whatever the runner starts.
            .process_group(0);
        if let Some(url) = &self.config.url {
            command.env("RUNWAY_GITHUB_URL", url);
        }
        if let Some(dir) = &self.config.work_dir {
            command.current_dir(dir);
        }
        match &self.config.log_dir {
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Some(dir) => {
                let path = dir.join(format!("{}.log", request.runner_name));
                let open = || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(|error| {
                            ProviderError::config(format!(
                                "cannot open the runner log {}: {error}; check the log directory",
                                path.display()
                            ))
                        })
                };
                command.stdout(open()?).stderr(open()?);
            }
        }
        Ok(command)
    }

    /// Drops children that have exited, killing what they left in their group.
    fn reap_exited(running: &mut HashMap<(String, String), Running>) {
        running.retain(
            |(execution, runner), process| match process.child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    info!(execution, runner, %status, "local runner exited by itself");
                    signal_group(process.pid, libc::SIGKILL);
                    false
                }
                Err(error) => {
                    warn!(execution, runner, %error, "cannot check a local runner; forgetting it");
                    signal_group(process.pid, libc::SIGKILL);
                    false
                }
            },
        );
    }

    async fn stop(&self, mut process: Running) -> Result<ExitStatus, ProviderError> {
        signal_group(process.pid, libc::SIGTERM);
        let status = match tokio::time::timeout(self.config.grace, process.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                warn!(
                    pid = process.pid,
                    "local runner ignored SIGTERM; killing it"
                );
                signal_group(process.pid, libc::SIGKILL);
                process.child.wait().await
            }
        };
        // Anything else the runner started goes with it.
        signal_group(process.pid, libc::SIGKILL);
        status.map_err(|error| {
            ProviderError::other(format!(
                "could not reap local runner process {}: {error}",
                process.pid
            ))
        })
    }
}

/// Sends `signal` to the process group led by `pid`; a group that is gone is fine.
fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the group.
    unsafe {
        libc::kill(-pid, signal);
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let key = (request.execution.clone(), request.runner_name.clone());
        let mut running = self.running.lock().await;
        LocalProvider::reap_exited(&mut running);
        if running.contains_key(&key) {
            return Err(ProviderError::other(format!(
                "runner {} of execution {} is already running; terminate it first or use a \
                 new runner name",
                request.runner_name, request.execution
            )));
        }
        let mut command = self.command_for(&request)?;
        let child = command.spawn().map_err(|error| {
            ProviderError::config(format!(
                "cannot start the local runner {:?}: {error}; check the local runner command",
                self.config.command[0]
            ))
        })?;
        let pid = child
            .id()
            .ok_or_else(|| ProviderError::other("the local runner exited before it started"))?;
        let launched_at = self.clock.now();
        info!(pid, runner = %request.runner_name, execution = %request.execution,
            "launched local runner");
        running.insert(
            key,
            Running {
                child,
                pid,
                pool: request.pool.clone(),
                launched_at,
            },
        );
        Ok(Launched {
            runner_name: request.runner_name,
            provider: ProviderKind::Local,
            instance_id: format!("pid-{pid}"),
            instance_type: None,
            subnet_id: None,
            capacity: None,
            launched_at,
        })
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let process = {
            let mut running = self.running.lock().await;
            LocalProvider::reap_exited(&mut running);
            running.remove(&(execution.to_string(), runner_name.to_string()))
        };
        let Some(process) = process else {
            return Ok(Terminated::AlreadyGone);
        };
        let pid = process.pid;
        let status = self.stop(process).await?;
        info!(pid, runner = runner_name, execution, %status, "terminated local runner");
        Ok(Terminated::Stopped {
            instance_ids: vec![format!("pid-{pid}")],
        })
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        let mut running = self.running.lock().await;
        LocalProvider::reap_exited(&mut running);
        let mut owned: Vec<OwnedRunner> = running
            .iter()
            .map(|((execution, runner_name), process)| OwnedRunner {
                provider: ProviderKind::Local,
                execution: execution.clone(),
                runner_name: runner_name.clone(),
                pool: Some(process.pool.clone()),
                instance_id: format!("pid-{}", process.pid),
                launched_at: Some(process.launched_at),
            })
            .collect();
        owned.sort_by(|a, b| (a.launched_at, &a.runner_name).cmp(&(b.launched_at, &b.runner_name)));
        Ok(owned)
    }
}

impl Drop for LocalProvider {
    fn drop(&mut self) {
        // kill_on_drop reaches the child only; its group may hold more.
        for process in self.running.get_mut().values() {
            signal_group(process.pid, libc::SIGKILL);
        }
    }
}
