use std::path::{Path, PathBuf};

use crate::TestkitError;

/// The root of the runway workspace: `$RUNWAY_ROOT` (set by `scripts/env.sh`), else two levels
/// above this crate as it was compiled.
///
/// The variable comes first because one build directory serves every clone on a machine:
/// cargo may reuse this crate as compiled in another clone, whose path is the one compiled in.
pub fn workspace_root() -> PathBuf {
    let root = match std::env::var_os("RUNWAY_ROOT") {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    root.canonicalize().unwrap_or(root)
}

/// The shared directory beside the repository: `$RUNWAY_SHARED_DIR`, or `<workspace>/../shared`.
pub fn shared_dir() -> Result<PathBuf, TestkitError> {
    let dir = match std::env::var_os("RUNWAY_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared"),
    };
    if dir.is_dir() {
        Ok(dir.canonicalize().unwrap_or(dir))
    } else {
        Err(TestkitError::SharedDirMissing {
            path: dir.display().to_string(),
        })
    }
}

/// Recorded GitHub payloads: `$RUNWAY_FIXTURES_DIR`, else `<shared>/fixtures`.
///
/// Every test, benchmark and tool that reads the fixtures finds them here, so the variables
/// mean the same everywhere.
pub fn fixtures_dir() -> Result<PathBuf, TestkitError> {
    let dir = match std::env::var_os("RUNWAY_FIXTURES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => shared_dir()?.join("fixtures"),
    };
    existing(dir, "RUNWAY_FIXTURES_DIR")
}

/// The Step Functions executions recorded on AWS that the ASL engine and JSONata conform to:
/// `$RUNWAY_ASL_CONFORMANCE_DIR`, else `<shared>/asl-conformance/cases`.
pub fn asl_conformance_dir() -> Result<PathBuf, TestkitError> {
    let dir = match std::env::var_os("RUNWAY_ASL_CONFORMANCE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => shared_dir()?.join("asl-conformance/cases"),
    };
    existing(dir, "RUNWAY_ASL_CONFORMANCE_DIR")
}

/// `dir` when it is a directory; otherwise an error naming the variable that moves it.
fn existing(dir: PathBuf, variable: &'static str) -> Result<PathBuf, TestkitError> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(TestkitError::DirMissing {
            path: dir.display().to_string(),
            variable,
        })
    }
}

/// A policy module that `scripts/build-policies.sh` built: `policies/build/{relative}` (an
/// example, `labels-router.wasm`, or a host test module, `tests/hostile-router.wasm`).
pub fn built_policy(relative: &str) -> Result<PathBuf, TestkitError> {
    let path = workspace_root().join("policies/build").join(relative);
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestkitError::PolicyNotBuilt {
            path: path.display().to_string(),
            reason: "missing".to_owned(),
        })
    }
}

/// The bytes of [`built_policy`]`(relative)`.
pub fn built_policy_bytes(relative: &str) -> Result<Vec<u8>, TestkitError> {
    let path = built_policy(relative)?;
    std::fs::read(&path).map_err(|error| TestkitError::PolicyNotBuilt {
        path: path.display().to_string(),
        reason: error.to_string(),
    })
}
