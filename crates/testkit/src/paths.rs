use std::path::{Path, PathBuf};

use crate::TestkitError;

/// The root of the runway workspace (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
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

/// Recorded GitHub payloads: `<shared>/fixtures`.
pub fn fixtures_dir() -> Result<PathBuf, TestkitError> {
    let dir = shared_dir()?.join("fixtures");
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(TestkitError::SharedDirMissing {
            path: dir.display().to_string(),
        })
    }
}
