//! What runs a pod's containers: the [`PodRuntime`] an embedder supplies, and
//! [`CommandRuntime`], which runs each container as a local process.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// Why a runtime could not start a pod (the pod then fails, reason `StartError`).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no command for image {0}")]
    NoCommand(String),
    #[error("cannot start container {container}: {source}")]
    Spawn {
        container: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A `secret` (or `emptyDir`) volume mounted into a container, materialised on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name in the pod spec.
    pub volume: String,
    /// `mountPath` inside the container.
    pub mount_path: String,
    /// The host directory holding the volume's files (a secret's keys as files).
    pub host_dir: PathBuf,
    pub read_only: bool,
}

/// One container to start, with everything resolved from the API objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLaunch {
    pub name: String,
    pub image: String,
    /// `command` (the image's entrypoint override), possibly empty.
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// `env` and `envFrom` as plain values, in the order Kubernetes applies them (a later
    /// entry of the same name wins): `envFrom` first, then `env`; `valueFrom.secretKeyRef`
    /// and `fieldRef` are resolved.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<VolumeMount>,
    pub working_dir: Option<String>,
    /// Where the container's output goes; `GET .../pods/{name}/log` serves this file.
    pub log_path: PathBuf,
}

/// A pod to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLaunch {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The pod's own temporary directory (volumes, logs); removed when the pod is deleted.
    pub pod_dir: PathBuf,
    pub containers: Vec<ContainerLaunch>,
}

/// How one container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerExit {
    pub name: String,
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`...; `None` picks `Completed` for 0 and `Error` else.
    pub reason: Option<String>,
}

type Exited = BoxFuture<'static, Vec<ContainerExit>>;
type Kill = Box<dyn FnOnce() + Send>;

/// A started pod: a future that resolves when all its containers have exited, and a way to
/// kill them (called when the pod is deleted or the emulator stops).
pub struct RunningPod {
    exited: Exited,
    kill: Kill,
}

impl std::fmt::Debug for RunningPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPod").finish_non_exhaustive()
    }
}

impl RunningPod {
    /// `exited` must still resolve after `kill` is called (with whatever the kill left).
    pub fn new(
        exited: impl std::future::Future<Output = Vec<ContainerExit>> + Send + 'static,
        kill: impl FnOnce() + Send + 'static,
    ) -> RunningPod {
        RunningPod {
            exited: Box::pin(exited),
            kill: Box::new(kill),
        }
    }

    /// A pod whose containers run until killed (what the emulator does with no runtime).
    pub fn until_killed(names: Vec<String>) -> RunningPod {
        let (kill, killed) = oneshot::channel::<()>();
        RunningPod::new(
            async move {
                let _ = killed.await;
                names
                    .into_iter()
                    .map(|name| ContainerExit {
                        name,
                        exit_code: 137,
                        reason: Some("Error".into()),
                    })
                    .collect()
            },
            move || {
                let _ = kill.send(());
            },
        )
    }

    pub(crate) fn into_parts(self) -> (Exited, Kill) {
        (self.exited, self.kill)
    }
}

/// Starts pods. Called once per pod, after its secrets were resolved and volumes written.
#[async_trait::async_trait]
pub trait PodRuntime: Send + Sync + std::fmt::Debug {
    /// Starts the pod's containers; the returned handle reports exit, and is killed on delete.
    async fn start(&self, pod: PodLaunch) -> Result<RunningPod, RuntimeError>;
}

/// Runs each container as a local process.
///
/// The argv is, in order of preference: the one configured for the container's image
/// ([`CommandRuntime::image`]), the default one ([`CommandRuntime::default_argv`]), or the
/// container's own `command` followed by its `args` (so `command: [sh, -c, ...]` runs as is).
///
/// The process runs in the pod's directory with an environment of only:
/// - `PATH` (the emulator's) and what [`CommandRuntime::env`] added;
/// - the container's resolved `env` (literal values, secret keys, `envFrom`);
/// - `KUBE_POD_NAME`, `KUBE_POD_NAMESPACE`, `KUBE_POD_UID`, `KUBE_CONTAINER_NAME`,
///   `KUBE_CONTAINER_IMAGE`, `KUBE_POD_DIR`;
/// - for each volume mount, `KUBE_MOUNT_<PATH>` = the host directory holding its files, where
///   `<PATH>` is the `mountPath` upper-cased with every run of characters other than letters
///   and digits turned into one `_`, trimmed of `_` (`/etc/runner` → `KUBE_MOUNT_ETC_RUNNER`);
///   and `KUBE_MOUNTS` = `mountPath=hostDir` pairs joined by `:`.
///
/// Standard output and error go to the container's log file. The exit code is the process's;
/// a process killed by a signal exits `128 + signal`.
#[derive(Debug, Clone, Default)]
pub struct CommandRuntime {
    images: HashMap<String, Vec<String>>,
    default_argv: Option<Vec<String>>,
    env: Vec<(String, String)>,
}

impl CommandRuntime {
    pub fn new() -> CommandRuntime {
        CommandRuntime::default()
    }

    /// Runs `argv` for containers of `image` (matched exactly, tag included).
    pub fn image(mut self, image: &str, argv: Vec<String>) -> CommandRuntime {
        self.images.insert(image.to_string(), argv);
        self
    }

    /// Runs `argv` for images with no argv of their own.
    pub fn default_argv(mut self, argv: Vec<String>) -> CommandRuntime {
        self.default_argv = Some(argv);
        self
    }

    /// Adds a variable to every container's environment (before the container's own).
    pub fn env(mut self, name: &str, value: &str) -> CommandRuntime {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    fn argv(&self, container: &ContainerLaunch) -> Option<Vec<String>> {
        let argv = self
            .images
            .get(&container.image)
            .or(self.default_argv.as_ref())
            .cloned()
            .unwrap_or_else(|| {
                container
                    .command
                    .iter()
                    .chain(&container.args)
                    .cloned()
                    .collect()
            });
        (!argv.is_empty()).then_some(argv)
    }
}

/// The variable naming a mount's host directory: `/etc/runner` → `KUBE_MOUNT_ETC_RUNNER`.
pub fn mount_env_name(mount_path: &str) -> String {
    let mut name = String::from("KUBE_MOUNT_");
    let mut pending = false;
    for c in mount_path.chars() {
        if c.is_ascii_alphanumeric() {
            if pending && !name.ends_with('_') {
                name.push('_');
            }
            pending = false;
            name.push(c.to_ascii_uppercase());
        } else {
            pending = true;
        }
    }
    name
}

#[async_trait::async_trait]
impl PodRuntime for CommandRuntime {
    async fn start(&self, pod: PodLaunch) -> Result<RunningPod, RuntimeError> {
        let mut children = Vec::new();
        for container in &pod.containers {
            let argv = self
                .argv(container)
                .ok_or_else(|| RuntimeError::NoCommand(container.image.clone()))?;
            let log = std::fs::File::create(&container.log_path).map_err(|source| {
                RuntimeError::Spawn {
                    container: container.name.clone(),
                    source,
                }
            })?;
            let log_err = log.try_clone().map_err(|source| RuntimeError::Spawn {
                container: container.name.clone(),
                source,
            })?;
            let mut command = tokio::process::Command::new(&argv[0]);
            command
                .args(&argv[1..])
                .current_dir(&pod.pod_dir)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(self.env.iter().cloned())
                .envs(container.env.iter().cloned())
                .env("KUBE_POD_NAME", &pod.name)
                .env("KUBE_POD_NAMESPACE", &pod.namespace)
                .env("KUBE_POD_UID", &pod.uid)
                .env("KUBE_CONTAINER_NAME", &container.name)
                .env("KUBE_CONTAINER_IMAGE", &container.image)
                .env("KUBE_POD_DIR", &pod.pod_dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .kill_on_drop(true)
                // Its own group, so a kill reaches whatever the container's process started.
                .process_group(0);
            let mut pairs = Vec::new();
            for mount in &container.mounts {
                command.env(mount_env_name(&mount.mount_path), &mount.host_dir);
                pairs.push(format!("{}={}", mount.mount_path, mount.host_dir.display()));
            }
            command.env("KUBE_MOUNTS", pairs.join(":"));
            let child = command.spawn().map_err(|source| RuntimeError::Spawn {
                container: container.name.clone(),
                source,
            })?;
            tracing::debug!(pod = %pod.name, container = %container.name, ?argv, "container started");
            children.push((container.name.clone(), child));
        }
        let groups: Vec<u32> = children.iter().filter_map(|(_, c)| c.id()).collect();
        let (kill, killed) = oneshot::channel::<()>();
        let exited = async move {
            let waits = children.into_iter().map(|(name, mut child)| async move {
                let status = child.wait().await;
                (name, status, child)
            });
            let all = futures::future::join_all(waits);
            tokio::pin!(all);
            let finished = tokio::select! {
                finished = &mut all => finished,
                _ = killed => {
                    for pid in &groups {
                        signal_group(*pid, libc::SIGKILL);
                    }
                    // Dropping the children also kills them (kill_on_drop) and reaps them.
                    return Vec::new();
                }
            };
            finished
                .into_iter()
                .map(|(name, status, _)| ContainerExit {
                    name,
                    exit_code: status.map(exit_code).unwrap_or(128),
                    reason: None,
                })
                .collect()
        };
        Ok(RunningPod::new(exited, move || {
            let _ = kill.send(());
        }))
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

fn exit_code(status: std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_names() {
        assert_eq!(mount_env_name("/etc/runner"), "KUBE_MOUNT_ETC_RUNNER");
        assert_eq!(
            mount_env_name("/run/secrets//jit-config/"),
            "KUBE_MOUNT_RUN_SECRETS_JIT_CONFIG"
        );
        assert_eq!(mount_env_name("/a.b"), "KUBE_MOUNT_A_B");
    }
}
