//! The configuration of a local runway (`runway local --config FILE`), in TOML.
//!
//! ```toml
//! stack = "runway-local"            # this runway's name (the default): tagged on its EC2
//!                                   # runners, its JIT config path /runway/<stack>/jit, and
//!                                   # its runner names' prefix unless [github] sets one
//!
//! [listen]                          # where the three services listen (these are the defaults)
//! webhook = "127.0.0.1:8080"
//! sfn = "127.0.0.1:8083"
//! emulator = "127.0.0.1:8090"
//!
//! [github]
//! mode = "emulator"                 # or "app": a real GitHub App
//! repositories = ["octo-org/app"]   # emulator: the repositories and organizations it knows
//! organizations = ["octo-org"]
//! seed = 7                          # emulator: seeds the choice among matching idle runners
//! delivery_concurrency = 1          # emulator: webhooks in flight at once (one job's in order)
//! # app: api_url, app_id, installation_id, private_key_file, ca_bundle_file (optional)
//! webhook_secret = "…"              # else $RUNWAY_WEBHOOK_SECRET, else a generated one
//! scope = "repository"              # any other key is the job flow's [github] section
//!
//! [store]
//! kind = "memory"                   # or "dynamodb" with table = "runway"
//!
//! [aws]                             # optional; else the standard AWS_* environment
//! endpoint_url = "http://127.0.0.1:5000"
//! region = "us-east-1"
//!
//! [policies]                        # optional; else built-in label matching, admit to ceilings
//! router = "policies/build/labels-router.wasm"   # or a .cwasm from `runway policy compile`
//! throttle = "policies/build/fair-share.wasm"
//! # router_bounds = "fuel=2000000000,time=500ms,memory=128MiB"   # per policy; optional
//! reuse = "never"                   # or "verified", "verified:N": reuse checked instances
//!
//! [reaper]                          # optional; runs statemachines/reaper.asl.json locally
//! every_seconds = 60                # 0 (the default): never
//! grace_seconds = 120               # what is younger is left alone
//!
//! [replay]                          # optional; how `runway replay` simulates the hosts
//! seed = 7                          # (see `runway_local::replay::settings`)
//!
//! [[pools]]                         # the job flow's pool settings, plus where runners run
//! name = "linux-x64"
//! labels = ["self-hosted", "linux", "x64"]
//! max_running = 2
//! provider = { kind = "local", command = ["runway", "runner-sim"] }
//! # or, for EC2: image = "ami-…" and instance_types = ["m7i.large"] on the pool, and
//! # provider = { kind = "ec2", subnets = […] } (see `runway_config`)
//! ```
//!
//! Top-level keys other than these, the rest of `[github]` and the pools make up the pools
//! document ([`runway_config::Document`]), the same model the deployed stack reads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use runway_config::{Document, Host, ReadOptions};
pub use runway_config::{Ec2Settings, LocalRunners, ProviderSettings};
use runway_jobflow::{FlowConfig, PoolConfig};
use runway_policy_host::{InstanceReuse, PolicyBounds};
use serde::Deserialize;

use crate::replay::settings::ReplaySettings;

/// The stack name of a local runway that names none: apart from a deployed stack (`runway`
/// by default) sharing the account, so neither touches the other's runners.
pub const DEFAULT_LOCAL_STACK: &str = "runway-local";

/// The configuration `runway local` runs with when given none: three local pools, the GitHub
/// emulator and the example policies.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration is not valid TOML: {0}")]
    Toml(String),
    #[error("the configuration's {section} is not valid: {message}")]
    Section {
        section: &'static str,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// The pools document (top level, the job flow's `[github]` keys, `[[pools]]`).
    #[error(transparent)]
    Document(#[from] runway_config::ConfigError),
}

/// Where the services listen. Port 0 picks a free port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub webhook: SocketAddr,
    pub sfn: SocketAddr,
    pub emulator: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            webhook: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sfn: SocketAddr::from(([127, 0, 0, 1], 8083)),
            emulator: SocketAddr::from(([127, 0, 0, 1], 8090)),
        }
    }
}

impl Listen {
    /// Every service on a free port of 127.0.0.1 (for tests).
    pub fn any_free_port() -> Listen {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Listen {
            webhook: any,
            sfn: any,
            emulator: any,
        }
    }
}

/// Which GitHub runway talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubConnection {
    /// The runway GitHub emulator, started in-process.
    Emulator(EmulatorSettings),
    /// A real GitHub App (github.com or GitHub Enterprise Server).
    App(AppSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorSettings {
    /// `owner/name` of every repository the emulator knows.
    pub repositories: Vec<String>,
    pub organizations: Vec<String>,
    pub seed: u64,
    /// Webhooks the emulator sends at once; one job's events always arrive in order.
    pub delivery_concurrency: usize,
}

impl Default for EmulatorSettings {
    fn default() -> Self {
        EmulatorSettings {
            repositories: vec!["octo-org/app".to_owned()],
            organizations: vec!["octo-org".to_owned()],
            seed: 0,
            delivery_concurrency: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// `https://api.github.com` or `https://HOST/api/v3`.
    pub api_url: String,
    pub app_id: String,
    pub installation_id: u64,
    pub private_key_file: PathBuf,
    /// CA certificates (PEM) trusted beside the system's roots: a GitHub Enterprise Server
    /// behind an internal CA.
    pub ca_bundle_file: Option<PathBuf>,
}

/// Where runway keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// In this process; gone when it stops.
    #[default]
    Memory,
    /// A DynamoDB table (created if absent), reached through the AWS settings.
    Dynamodb { table: String },
}

/// How AWS clients are set up; unset fields come from the standard AWS environment
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
}

/// The reaper, run on the local engine as its schedule runs it on AWS: it starts jobs whose
/// webhook was lost, frees stale slots and removes orphaned runners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaperSchedule {
    /// Seconds between runs; 0 (the default): the reaper does not run.
    #[serde(default)]
    pub every_seconds: u64,
    /// What is younger than this is left alone (a job queued, a runner launched, a slot taken).
    #[serde(default = "default_reaper_grace")]
    pub grace_seconds: u64,
}

impl Default for ReaperSchedule {
    fn default() -> Self {
        ReaperSchedule {
            every_seconds: 0,
            grace_seconds: default_reaper_grace(),
        }
    }
}

fn default_reaper_grace() -> u64 {
    120
}

/// The WebAssembly policies; none: built-in label matching and admission up to the ceilings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFiles {
    /// A `.wasm` component or a `.cwasm` compiled with `runway policy compile`.
    pub router: Option<PathBuf>,
    pub throttle: Option<PathBuf>,
    /// `reuse = "never"` (default): a pristine instance per decision, so every decision is
    /// replayable from its input. `"verified"` or `"verified:N"`: an instance serves the next
    /// call, every N-th reused call is checked against a pristine one (for stateless
    /// policies; see [`InstanceReuse`]).
    #[serde(default, deserialize_with = "instance_reuse")]
    pub reuse: InstanceReuse,
    /// Each policy's bounds, `"fuel=N,time=Dms,memory=MMiB"` (any subset); unset bounds
    /// keep the defaults for the policy's kind (a policy importing WASI, such as a Python
    /// or JavaScript one, gets more than one compiled from Rust or C).
    #[serde(default, deserialize_with = "policy_bounds")]
    pub router_bounds: PolicyBounds,
    #[serde(default, deserialize_with = "policy_bounds")]
    pub throttle_bounds: PolicyBounds,
}

fn policy_bounds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<PolicyBounds, D::Error> {
    let toml::Value::String(text) = toml::Value::deserialize(deserializer)? else {
        return Err(serde::de::Error::custom(
            "[policies] bounds must be a string such as \"fuel=2000000000,time=500ms,memory=128MiB\"",
        ));
    };
    text.parse()
        .map_err(|error: String| serde::de::Error::custom(format!("[policies] {error}")))
}

fn instance_reuse<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<InstanceReuse, D::Error> {
    let toml::Value::String(text) = toml::Value::deserialize(deserializer)? else {
        return Err(serde::de::Error::custom(
            "[policies] reuse must be a string: \"never\", \"verified\" or \"verified:N\" (N ≥ 1)",
        ));
    };
    text.parse().map_err(|error: String| {
        serde::de::Error::custom(format!("[policies] reuse = {text:?}: {error}"))
    })
}

/// Everything a [`crate::LocalSystem`] is built from.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// This runway's stack name (see [`DEFAULT_LOCAL_STACK`]).
    pub stack: String,
    pub listen: Listen,
    pub github: GitHubConnection,
    /// The configured webhook secret (`$RUNWAY_WEBHOOK_SECRET` wins over it).
    pub webhook_secret: Option<String>,
    pub store: StoreConfig,
    pub aws: AwsSettings,
    pub policies: PolicyFiles,
    /// True for the built-in configuration: missing policy files fall back to built-in
    /// matching (with a note) instead of being an error.
    pub policies_optional: bool,
    /// Relative paths (policies, private key, log directories) are resolved against these
    /// directories in order; the current directory comes first.
    pub search_dirs: Vec<PathBuf>,
    pub reaper: ReaperSchedule,
    /// How `runway replay` simulates the hosts runners run on (`runway local` ignores it).
    pub replay: ReplaySettings,
    /// The pools document: the job flow's configuration and where each pool's runners run,
    /// the model the deployed stack reads.
    pub document: Document,
}

impl LocalConfig {
    /// The job flow's configuration: pools, ceilings, timeouts, GitHub scope.
    pub fn flow(&self) -> &FlowConfig {
        &self.document.flow
    }

    /// Every pool with where its runners run, in the document's order.
    pub fn pools(&self) -> impl Iterator<Item = (&PoolConfig, &ProviderSettings)> {
        self.document.pools()
    }
}

/// The `[github]` keys that say how to reach GitHub; the others belong to the job flow.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitHubKeys {
    mode: Option<String>,
    repositories: Option<Vec<String>>,
    organizations: Option<Vec<String>>,
    seed: Option<u64>,
    delivery_concurrency: Option<usize>,
    api_url: Option<String>,
    app_id: Option<toml::Value>,
    installation_id: Option<u64>,
    private_key_file: Option<PathBuf>,
    ca_bundle_file: Option<PathBuf>,
    webhook_secret: Option<String>,
}

const GITHUB_KEYS: &[&str] = &[
    "mode",
    "repositories",
    "organizations",
    "seed",
    "delivery_concurrency",
    "api_url",
    "app_id",
    "installation_id",
    "private_key_file",
    "ca_bundle_file",
    "webhook_secret",
];

fn section<T: for<'de> Deserialize<'de> + Default>(
    table: &mut toml::Table,
    key: &'static str,
) -> Result<T, ConfigError> {
    match table.remove(key) {
        None => Ok(T::default()),
        Some(value) => value
            .try_into()
            .map_err(|error: toml::de::Error| ConfigError::Section {
                section: key,
                message: error.message().to_owned(),
            }),
    }
}

impl LocalConfig {
    /// The built-in configuration (see [`DEFAULT_CONFIG`]).
    pub fn embedded_default() -> Result<LocalConfig, ConfigError> {
        let mut config = LocalConfig::from_toml_str(DEFAULT_CONFIG)?;
        config.policies_optional = true;
        // Running from a source checkout: the example policies are built at its root.
        config
            .search_dirs
            .push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        Ok(config)
    }

    /// Reads a configuration file; relative paths in it are resolved against the current
    /// directory, then the file's directory.
    pub fn from_file(path: &Path) -> Result<LocalConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = LocalConfig::from_toml_str(&text)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            config.search_dirs.push(dir.to_owned());
        }
        Ok(config)
    }

    /// Parses a configuration.
    pub fn from_toml_str(text: &str) -> Result<LocalConfig, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigError::Toml(error.to_string()))?;
        let stack = match table.remove("stack") {
            None => DEFAULT_LOCAL_STACK.to_owned(),
            Some(toml::Value::String(stack)) if runway_providers::is_stack_name(&stack) => stack,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "stack = {other} is not a stack name: use letters, digits and '-' (e.g. \
                     \"{DEFAULT_LOCAL_STACK}\")"
                )));
            }
        };
        let listen: Listen = section(&mut table, "listen")?;
        let store: StoreConfig = section(&mut table, "store")?;
        let aws: AwsSettings = section(&mut table, "aws")?;
        let policies: PolicyFiles = section(&mut table, "policies")?;
        let reaper: ReaperSchedule = section(&mut table, "reaper")?;
        let replay: ReplaySettings = section(&mut table, "replay")?;

        let mut github_table = match table.remove("github") {
            None => toml::Table::new(),
            Some(toml::Value::Table(github)) => github,
            Some(_) => {
                return Err(ConfigError::Invalid(
                    "[github] must be a table of settings".to_owned(),
                ));
            }
        };
        let mut mine = toml::Table::new();
        for key in GITHUB_KEYS {
            if let Some(value) = github_table.remove(*key) {
                mine.insert((*key).to_owned(), value);
            }
        }
        let keys: GitHubKeys =
            toml::Value::Table(mine)
                .try_into()
                .map_err(|error: toml::de::Error| ConfigError::Section {
                    section: "github",
                    message: error.message().to_owned(),
                })?;
        let (github, webhook_secret) = github_connection(keys)?;
        if !github_table.is_empty() {
            table.insert("github".to_owned(), toml::Value::Table(github_table));
        }
        // The rest is the pools document, the same model the deployed stack reads.
        let document =
            Document::from_toml_table(table, &ReadOptions::for_stack(Host::Local, &stack))?;
        replay
            .validate(document.flow.pools.iter().map(|pool| pool.name.as_str()))
            .map_err(ConfigError::Invalid)?;
        Ok(LocalConfig {
            stack,
            listen,
            github,
            webhook_secret,
            store,
            aws,
            policies,
            policies_optional: false,
            search_dirs: Vec::new(),
            reaper,
            replay,
            document,
        })
    }

    /// `path` as given when it exists (or is absolute), else the first search directory
    /// that has it; `None` when none does.
    pub fn resolve(&self, path: &Path) -> Option<PathBuf> {
        if path.is_absolute() || path.exists() {
            return path.exists().then(|| path.to_owned());
        }
        self.search_dirs
            .iter()
            .map(|dir| dir.join(path))
            .find(|candidate| candidate.exists())
    }
}

fn github_connection(keys: GitHubKeys) -> Result<(GitHubConnection, Option<String>), ConfigError> {
    let mode = keys.mode.as_deref().unwrap_or("emulator");
    let connection = match mode {
        "emulator" => {
            if keys.api_url.is_some()
                || keys.app_id.is_some()
                || keys.private_key_file.is_some()
                || keys.ca_bundle_file.is_some()
            {
                return Err(ConfigError::Invalid(
                    "[github] api_url, app_id, private_key_file and ca_bundle_file are for \
                     mode = \"app\"; \
                     the emulator needs none"
                        .to_owned(),
                ));
            }
            let defaults = EmulatorSettings::default();
            GitHubConnection::Emulator(EmulatorSettings {
                repositories: keys.repositories.unwrap_or(defaults.repositories),
                organizations: keys.organizations.unwrap_or(defaults.organizations),
                seed: keys.seed.unwrap_or(defaults.seed),
                delivery_concurrency: match keys.delivery_concurrency {
                    Some(0) => {
                        return Err(ConfigError::Invalid(
                            "[github] delivery_concurrency must be at least 1".to_owned(),
                        ));
                    }
                    Some(lanes) => lanes,
                    None => defaults.delivery_concurrency,
                },
            })
        }
        "app" => {
            let missing = |what: &str| {
                ConfigError::Invalid(format!(
                    "[github] mode = \"app\" needs {what} (the GitHub App's settings page shows it)"
                ))
            };
            let app_id = match keys.app_id {
                Some(toml::Value::String(id)) => id,
                Some(toml::Value::Integer(id)) => id.to_string(),
                Some(_) => return Err(missing("app_id as a number or string")),
                None => return Err(missing("app_id")),
            };
            GitHubConnection::App(AppSettings {
                api_url: keys
                    .api_url
                    .unwrap_or_else(|| runway_github::GITHUB_API_URL.to_owned()),
                app_id,
                installation_id: keys
                    .installation_id
                    .ok_or_else(|| missing("installation_id"))?,
                private_key_file: keys
                    .private_key_file
                    .ok_or_else(|| missing("private_key_file (the App's .pem key)"))?,
                ca_bundle_file: keys.ca_bundle_file,
            })
        }
        other => {
            return Err(ConfigError::Invalid(format!(
                "[github] mode {other:?} is unknown: use \"emulator\" or \"app\""
            )));
        }
    };
    Ok((connection, keys.webhook_secret))
}

#[cfg(test)]
mod tests {
    use runway_providers::CapacityPreference;

    use super::*;

    const MINIMAL: &str = r#"
        [[pools]]
        name = "linux"
        labels = ["self-hosted", "linux"]
    "#;

    #[test]
    fn the_built_in_configuration_parses() {
        let config = LocalConfig::embedded_default().unwrap();
        assert_eq!(config.listen, Listen::default());
        assert!(matches!(config.github, GitHubConnection::Emulator(_)));
        assert_eq!(config.store, StoreConfig::Memory);
        assert!(config.pools().count() >= 2, "{:?}", config.document);
        assert!(config.policies_optional);
    }

    #[test]
    fn a_minimal_configuration_takes_the_defaults() {
        let config = LocalConfig::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.listen, Listen::default());
        assert_eq!(
            config.github,
            GitHubConnection::Emulator(EmulatorSettings::default())
        );
        let (pool, provider) = config.pools().next().unwrap();
        assert_eq!(pool.name, "linux");
        assert_eq!(pool.labels, vec!["self-hosted", "linux"]);
        assert_eq!(provider, &ProviderSettings::Local(LocalRunners::default()));
        assert_eq!(config.webhook_secret, None);
        assert!(!config.policies_optional);
        assert_eq!(config.stack, DEFAULT_LOCAL_STACK);
        assert_eq!(config.flow().github.runner_name_prefix, DEFAULT_LOCAL_STACK);
    }

    #[test]
    fn the_stack_names_the_runners_unless_a_prefix_is_given() {
        let config = LocalConfig::from_toml_str(&format!("stack = \"ci-a\"\n{MINIMAL}")).unwrap();
        assert_eq!(config.stack, "ci-a");
        assert_eq!(config.flow().github.runner_name_prefix, "ci-a");
        let config = LocalConfig::from_toml_str(&format!(
            "stack = \"ci-a\"\n[github]\nrunner_name_prefix = \"ci\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(config.flow().github.runner_name_prefix, "ci");
        for bad in ["\"a/b\"", "\"\"", "7"] {
            let error = LocalConfig::from_toml_str(&format!("stack = {bad}\n{MINIMAL}"))
                .unwrap_err()
                .to_string();
            assert!(error.contains("not a stack name"), "{bad}: {error}");
        }
    }

    #[test]
    fn providers_and_connection_keys_are_taken_out_of_the_flow_settings() {
        let config = LocalConfig::from_toml_str(
            r#"
            [github]
            mode = "emulator"
            repositories = ["acme/web"]
            organizations = ["acme"]
            seed = 3
            delivery_concurrency = 4
            webhook_secret = "s3cret"
            scope = "repository"

            [store]
            kind = "dynamodb"
            table = "runway-test"

            [[pools]]
            name = "local"
            labels = ["self-hosted", "linux"]
            provider = { kind = "local", command = ["sleep", "60"], env = { A = "b" } }

            [[pools]]
            name = "cloud"
            labels = ["self-hosted", "linux", "x64"]
            image = "ami-12c6146b"
            instance_types = ["m5.large"]
            [pools.provider]
            kind = "ec2"
            capacity = "on-demand"
            "#,
        )
        .unwrap();
        assert_eq!(config.webhook_secret.as_deref(), Some("s3cret"));
        assert_eq!(
            config.github,
            GitHubConnection::Emulator(EmulatorSettings {
                repositories: vec!["acme/web".into()],
                organizations: vec!["acme".into()],
                seed: 3,
                delivery_concurrency: 4,
            })
        );
        assert_eq!(
            config.store,
            StoreConfig::Dynamodb {
                table: "runway-test".into()
            }
        );
        let providers: Vec<&ProviderSettings> = config.pools().map(|(_, p)| p).collect();
        let ProviderSettings::Local(local) = providers[0] else {
            panic!("{:?}", providers[0]);
        };
        assert_eq!(
            local.command.as_deref(),
            Some(&["sleep".to_owned(), "60".to_owned()][..])
        );
        let ProviderSettings::Ec2(ec2) = providers[1] else {
            panic!("{:?}", providers[1]);
        };
        assert_eq!(ec2.capacity, Some(CapacityPreference::OnDemand));
    }

    #[test]
    fn bad_configurations_say_what_to_fix() {
        let cases = [
            ("not toml [", "not valid TOML"),
            ("", "no pools"),
            (
                "[[pools]]\nlabels = [\"x\"]",
                "pools[0]: missing field `name`",
            ),
            (
                "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\n[[pools]]\nname = \"a\"\nlabels = [\"x\"]",
                "pools[1].name: pool \"a\" is configured twice",
            ),
            (
                "[github]\nmode = \"carrier-pigeon\"\n[[pools]]\nname = \"a\"",
                "use \"emulator\" or \"app\"",
            ),
            (
                "[github]\nmode = \"app\"\n[[pools]]\nname = \"a\"",
                "needs app_id",
            ),
            (
                "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\nprovider = { kind = \"mainframe\" }",
                "pools[0].provider.kind: unknown variant `mainframe`",
            ),
            (
                "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\nimage = \"ami-1\"\nprovider = { kind = \"ec2\" }",
                "pools[0].instance_types",
            ),
            (
                "[[pools]]\nname = \"a\"\nlabels = [\"x\"]\nprovider = { kind = \"ec2\", ami = \"ami-1\" }",
                "pools[0].provider.ami: this setting belongs to the pool now",
            ),
            (
                "[listen]\nwebhook = \"not an address\"\n[[pools]]\nname = \"a\"",
                "listen",
            ),
            (
                "[store]\nkind = \"dynamodb\"\n[[pools]]\nname = \"a\"",
                "store",
            ),
            (
                "[github]\ndelivery_concurrency = 0\n[[pools]]\nname = \"a\"",
                "delivery_concurrency must be at least 1",
            ),
        ];
        for (text, expected) in cases {
            let error = LocalConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn policy_instance_reuse_is_read_and_defaults_to_never() {
        let config = LocalConfig::from_toml_str(MINIMAL).unwrap();
        assert_eq!(config.policies.reuse, InstanceReuse::Never);
        for (text, reuse) in [
            ("never", InstanceReuse::Never),
            ("verified", InstanceReuse::verified()),
            ("verified:8", InstanceReuse::Verified { verify_every: 8 }),
        ] {
            let config =
                LocalConfig::from_toml_str(&format!("[policies]\nreuse = {text:?}\n{MINIMAL}"))
                    .unwrap();
            assert_eq!(config.policies.reuse, reuse, "{text}");
        }
        for bad in ["\"sometimes\"", "\"verified:0\"", "8", "true"] {
            let error =
                LocalConfig::from_toml_str(&format!("[policies]\nreuse = {bad}\n{MINIMAL}"))
                    .unwrap_err()
                    .to_string();
            assert!(error.contains("policies"), "{bad}: {error}");
            assert!(error.contains("[policies] reuse"), "{bad}: {error}");
        }
        let error =
            LocalConfig::from_toml_str(&format!("[policies]\nreuse = \"always\"\n{MINIMAL}"))
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("[policies] reuse = \"always\"")
                && error.contains("expected never, verified or verified:N (N ≥ 1)"),
            "{error}"
        );
    }

    #[test]
    fn an_app_connection_reads_its_settings() {
        let config = LocalConfig::from_toml_str(
            r#"
            [github]
            mode = "app"
            app_id = 12345
            installation_id = 678
            private_key_file = "key.pem"
            [[pools]]
            name = "a"
            labels = ["self-hosted"]
            "#,
        )
        .unwrap();
        assert_eq!(
            config.github,
            GitHubConnection::App(AppSettings {
                api_url: runway_github::GITHUB_API_URL.to_owned(),
                app_id: "12345".into(),
                installation_id: 678,
                private_key_file: "key.pem".into(),
                ca_bundle_file: None,
            })
        );
    }

    #[test]
    fn a_ca_bundle_is_for_an_app_connection_only() {
        let app = LocalConfig::from_toml_str(
            r#"
            [github]
            mode = "app"
            api_url = "https://ghes.example.internal/api/v3"
            app_id = "1"
            installation_id = 2
            private_key_file = "key.pem"
            ca_bundle_file = "internal-ca.pem"
            [[pools]]
            name = "a"
            labels = ["self-hosted"]
            "#,
        )
        .unwrap();
        let GitHubConnection::App(settings) = &app.github else {
            panic!("{:?}", app.github);
        };
        assert_eq!(
            settings.ca_bundle_file.as_deref(),
            Some(Path::new("internal-ca.pem"))
        );
        let error = LocalConfig::from_toml_str(
            "[github]\nca_bundle_file = \"ca.pem\"\n[[pools]]\nname = \"a\"\nlabels = [\"x\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("ca_bundle_file are for"), "{error}");
    }
}
