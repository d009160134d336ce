//! Python policies: componentize-py bundles CPython, the policy (`app.py`) and the bindings it
//! generates from `wit/policy.wit` into a component. It imports the deterministic WASI runway
//! offers language runtimes (see runway's `policies/README.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use runway_policy_host::World;

use super::{Project, embedded, fill, find_tool, run};

/// The componentize-py release runway builds and tests its Python policies with
/// (scripts/requirements-dev.txt pins the same).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

pub fn files(name: &str, world: World) -> Vec<(PathBuf, String)> {
    let (source, cases) = match world {
        World::Router => (embedded::python::ROUTER, embedded::ROUTER_CASES),
        World::Throttle => (embedded::python::THROTTLE, embedded::THROTTLE_CASES),
    };
    let values = [
        ("name", name),
        ("world", super::world_name(world)),
        ("runway_version", env!("CARGO_PKG_VERSION")),
        ("componentize_py_version", COMPONENTIZE_PY_VERSION),
    ];
    vec![
        (PathBuf::from("app.py"), fill(source, &values)),
        (
            PathBuf::from(super::MANIFEST),
            fill(embedded::python::MANIFEST, &values),
        ),
        (PathBuf::from("cases.json"), cases.to_string()),
        (
            PathBuf::from("README.md"),
            fill(embedded::python::README, &values),
        ),
        (
            PathBuf::from(".gitignore"),
            embedded::python::GITIGNORE.to_string(),
        ),
        (PathBuf::from("wit/policy.wit"), embedded::WIT.to_string()),
    ]
}

/// componentize-py: `COMPONENTIZE_PY`, else the PATH's.
fn componentize_py() -> anyhow::Result<PathBuf> {
    find_tool(Some("COMPONENTIZE_PY"), &["componentize-py"]).with_context(|| {
        format!(
            "Python policies need componentize-py: pip install \
             componentize-py=={COMPONENTIZE_PY_VERSION} (or name it in COMPONENTIZE_PY)"
        )
    })
}

pub fn build(project: &Project, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let (Some(name), Some(world)) = (&project.name, project.world) else {
        bail!(
            "{} names no policy name and world: a Python project needs its {}",
            project.dir.display(),
            super::MANIFEST
        );
    };
    if !project.dir.join("app.py").is_file() {
        bail!(
            "{} has no app.py: a Python policy is the module `app` (see README.md)",
            project.dir.display()
        );
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let component = out_dir.join(format!("{name}.wasm"));
    run(
        Command::new(componentize_py()?)
            .current_dir(&project.dir)
            .arg("-d")
            .arg(project.dir.join("wit"))
            .args(["-w", super::world_name(world), "componentize", "app", "-p"])
            .arg(&project.dir)
            .arg("-o")
            .arg(&component),
        "componentize-py",
    )?;
    Ok(component)
}
