use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The two kinds of policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum World {
    Router,
    Throttle,
}

impl World {
    /// The world's name in the WIT package.
    pub fn wit_name(self) -> &'static str {
        match self {
            World::Router => "runway:policy/router@0.1.0",
            World::Throttle => "runway:policy/throttle@0.1.0",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Router => "router",
            World::Throttle => "throttle",
        })
    }
}

impl std::str::FromStr for World {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "router" => Ok(World::Router),
            "throttle" => Ok(World::Throttle),
            other => Err(format!(
                "unknown world `{other}`: expected router or throttle"
            )),
        }
    }
}

/// Everything that can go wrong loading or running a policy. None of these is a panic or a
/// hang: a call that misbehaves is stopped and reported as one of these.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "not a policy component: {reason} (build policies with runway-policy-build, see policies/README.md)"
    )]
    Malformed { reason: String },
    /// The policy imports something outside the deterministic WASI subset.
    #[error(
        "the policy imports {refused:?}, which runway does not offer: a policy may import nothing, or only WASI 0.2's cli, clocks, random and io interfaces (and filesystem and sockets, with nothing to open); remove the import or the library that needs it"
    )]
    ForbiddenImports { refused: Vec<String> },
    /// The policy imports a WASI interface under a name runway offers but with another shape.
    #[error(
        "the policy's imports do not match the WASI 0.2 that runway offers: {reason}; build it against WASI 0.2 (wasm32-wasip2, componentize-py, componentize-js)"
    )]
    ImportMismatch { reason: String },
    #[error(
        "the policy is not a {expected} (it exports {found}); load it as the world it implements"
    )]
    WrongWorld { expected: World, found: String },
    #[error(
        "cannot load the precompiled policy: {reason}; compile it again with `runway policy compile` for this runway version and architecture"
    )]
    Incompatible { reason: String },
    /// Loading a policy file failed; `error` says how.
    #[error("policy file {path}: {error}")]
    File {
        path: PathBuf,
        error: Box<PolicyError>,
    },
    #[error("the policy ran out of fuel ({fuel} units): it loops or computes too much")]
    OutOfFuel { fuel: u64 },
    #[error("the policy exceeded its time budget of {budget:?}")]
    Timeout { budget: Duration },
    #[error("the policy exceeded its memory cap of {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: usize },
    #[error("the policy trapped: {message}")]
    Trap { message: String },
    #[error("the policy chose pool `{pool}`, which is not configured (pools: {known:?})")]
    UnknownPool { pool: String, known: Vec<String> },
    #[error("policy engine: {message}")]
    Engine { message: String },
}

impl PolicyError {
    /// A short stable name for the kind of failure, for logs, JSON and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Io { .. } => "io",
            PolicyError::Malformed { .. } => "malformed",
            PolicyError::ForbiddenImports { .. } => "forbidden-import",
            PolicyError::ImportMismatch { .. } => "import-mismatch",
            PolicyError::WrongWorld { .. } => "wrong-world",
            PolicyError::Incompatible { .. } => "incompatible",
            PolicyError::File { error, .. } => error.kind(),
            PolicyError::OutOfFuel { .. } => "out-of-fuel",
            PolicyError::Timeout { .. } => "timeout",
            PolicyError::MemoryLimit { .. } => "memory-limit",
            PolicyError::Trap { .. } => "trap",
            PolicyError::UnknownPool { .. } => "unknown-pool",
            PolicyError::Engine { .. } => "engine",
        }
    }

    pub(crate) fn engine(error: impl fmt::Display) -> Self {
        PolicyError::Engine {
            message: format!("{error:#}"),
        }
    }
}
