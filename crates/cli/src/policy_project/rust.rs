//! Rust policies: a `cdylib` crate on the runway SDK, built by cargo for
//! `wasm32-unknown-unknown` (what `runway-policy-build` does for runway's own policies).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use runway_policy_host::World;

use super::{Project, component, embedded, fill};

pub const TARGET: &str = "wasm32-unknown-unknown";
/// The guest stack: every decision runs in a fresh instance, and a small memory is cheaper to
/// create (the size runway's own policies are built with).
const GUEST_STACK_BYTES: u32 = 128 * 1024;

pub fn files(name: &str, world: World) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let values = [
        ("name", name),
        ("world", super::world_name(world)),
        ("runway_version", env!("CARGO_PKG_VERSION")),
    ];
    let (source, cases) = match world {
        World::Router => (embedded::rust::ROUTER, embedded::ROUTER_CASES),
        World::Throttle => (embedded::rust::THROTTLE, embedded::THROTTLE_CASES),
    };
    let mut files = vec![
        (
            PathBuf::from("Cargo.toml"),
            fill(embedded::rust::CARGO_TOML, &values),
        ),
        (PathBuf::from("Cargo.lock"), lock_file(name)?),
        (PathBuf::from("src/lib.rs"), fill(source, &values)),
        (PathBuf::from("cases.json"), cases.to_string()),
        (
            PathBuf::from("README.md"),
            fill(embedded::rust::README, &values),
        ),
        (
            PathBuf::from(".gitignore"),
            embedded::rust::GITIGNORE.to_string(),
        ),
        (PathBuf::from("wit/policy.wit"), embedded::WIT.to_string()),
        (PathBuf::from("sdk/rust/Cargo.toml"), sdk_manifest()?),
    ];
    for (file, text) in embedded::SDK_SOURCES {
        files.push((Path::new("sdk/rust/src").join(file), text.to_string()));
    }
    Ok(files)
}

/// The SDK's manifest without its `[workspace]` (the SDK and its build tool) and profiles:
/// in a project it is a path dependency of the policy crate.
fn sdk_manifest() -> anyhow::Result<String> {
    let mut manifest: toml::Table =
        toml::from_str(embedded::SDK_MANIFEST).context("the embedded SDK manifest")?;
    manifest.remove("workspace");
    manifest.remove("profile");
    let body = toml::to_string(&manifest).context("writing the SDK manifest")?;
    Ok(format!(
        "# The runway policy SDK, copied by `runway policy new` from runway {}.\n{body}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// A `Cargo.lock` for a project named `name`: the SDK's dependencies at the versions runway
/// builds its own policies with, in cargo's own format, so that the first build resolves
/// nothing (and works offline with those crates in cargo's cache).
fn lock_file(name: &str) -> anyhow::Result<String> {
    let mut blocks = embedded::POLICIES_LOCK.split("\n[[package]]\n");
    let header = blocks.next().unwrap_or_default().trim_end();
    let packages: Vec<LockedPackage> = blocks.map(LockedPackage::parse).collect();
    let mut wanted = vec!["runway-policy".to_string()];
    let mut kept: Vec<&LockedPackage> = Vec::new();
    while let Some(spec) = wanted.pop() {
        let mut parts = spec.split(' ');
        let dep_name = parts.next().unwrap_or_default();
        let version = parts.next();
        let package = packages
            .iter()
            .find(|p| p.name == dep_name && version.is_none_or(|v| p.version == v))
            .with_context(|| format!("the embedded lock file has no package {spec}"))?;
        if kept
            .iter()
            .any(|k| k.name == package.name && k.version == package.version)
        {
            continue;
        }
        kept.push(package);
        wanted.extend(package.dependencies.iter().cloned());
    }
    let own = format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"runway-policy\",\n]\n"
    );
    let mut entries: Vec<(&str, &str, String)> = kept
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.text.clone()))
        .collect();
    entries.push((name, "0.1.0", own));
    entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut text = format!("{header}\n");
    for (_, _, block) in entries {
        text.push_str("\n[[package]]\n");
        text.push_str(block.trim_end());
        text.push('\n');
    }
    Ok(text)
}

/// One `[[package]]` of a lock file, as text and as the few fields the closure needs.
struct LockedPackage {
    name: String,
    version: String,
    /// `name` or `name version` (when several versions are locked).
    dependencies: Vec<String>,
    text: String,
}

impl LockedPackage {
    fn parse(block: &str) -> LockedPackage {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{key} = \"")))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_default()
                .to_string()
        };
        let dependencies = block
            .split_once("dependencies = [\n")
            .map(|(_, rest)| {
                rest.lines()
                    .take_while(|line| *line != "]")
                    .filter_map(|line| {
                        let dep = line.trim().trim_end_matches(',').trim_matches('"');
                        // `name version (source)`: the source is not needed to find it.
                        let dep = dep.split(" (").next().unwrap_or(dep);
                        (!dep.is_empty()).then(|| dep.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        LockedPackage {
            name: field("name"),
            version: field("version"),
            dependencies,
            text: block.to_string(),
        }
    }
}

/// `cargo build` for the wasm target, then a component of each `cdylib` it produced.
pub fn build(project: &Project, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = project.dir.join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--message-format=json-render-diagnostics")
        .arg(format!(
            "--config=target.{TARGET}.rustflags=[\"-C\", \"link-arg=-zstack-size={GUEST_STACK_BYTES}\"]"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .context("cannot run cargo: install Rust from https://rustup.rs")?;
    let stdout = child.stdout.take().context("cargo gave no output")?;
    let mut modules = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        if let Some(artifact) = cdylib_artifact(&line) {
            modules.push(artifact);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "cargo build failed ({status}); if the target is missing, run `rustup target add \
             {TARGET}`"
        );
    }
    let (package, module) = match modules.as_slice() {
        [one] => one.clone(),
        [] => bail!(
            "{} built no cdylib: a policy crate needs `[lib] crate-type = [\"cdylib\"]`",
            manifest.display()
        ),
        many => bail!(
            "{} built {} cdylibs ({}); build one policy crate at a time",
            manifest.display(),
            many.len(),
            many.iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let bytes = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let (component, world) =
        component::componentize(&bytes).with_context(|| format!("{}", module.display()))?;
    let out = out_dir.join(format!("{package}.wasm"));
    component::write_if_changed(&out, &component)?;
    eprintln!("runway: built {world} policy {}", out.display());
    Ok(out)
}

/// The package name and `.wasm` file of a `compiler-artifact` message for a `cdylib`.
fn cdylib_artifact(line: &str) -> Option<(String, PathBuf)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = message.get("target")?;
    let is_cdylib = target
        .get("crate_types")?
        .as_array()?
        .iter()
        .any(|kind| kind.as_str() == Some("cdylib"));
    if !is_cdylib {
        return None;
    }
    let module = message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))?;
    // The cdylib's target name is the package name with `-` as `_`; the component keeps the
    // package's own spelling, which the manifest id carries: `…#name@version` or `…/name#version`.
    let id = message.get("package_id")?.as_str()?;
    let package = match id.split_once('#') {
        Some((_, rest)) if rest.contains('@') => rest.split('@').next()?.to_string(),
        Some((url, _)) => url.rsplit('/').next()?.to_string(),
        None => id.split_whitespace().next()?.to_string(),
    };
    Some((package, PathBuf::from(module)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_holds_the_sdk_closure_and_the_project() {
        let lock = lock_file("my-policy").unwrap();
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."));
        assert!(lock.contains("\n[[package]]\nname = \"my-policy\"\nversion = \"0.1.0\"\n"));
        assert!(lock.contains("\n[[package]]\nname = \"runway-policy\"\n"));
        assert!(lock.contains("\n[[package]]\nname = \"wit-bindgen\"\n"));
        // Only what the SDK needs: not the other examples, nor their test dependencies.
        assert!(!lock.contains("name = \"labels-router\""));
        assert!(!lock.contains("name = \"proptest\""));
        let names: Vec<&str> = lock
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn the_sdk_manifest_loses_its_workspace() {
        let manifest: toml::Table = toml::from_str(&sdk_manifest().unwrap()).unwrap();
        assert!(manifest.get("workspace").is_none());
        assert!(manifest.get("profile").is_none());
        assert!(manifest["dependencies"].get("wit-bindgen").is_some());
        assert_eq!(manifest["package"]["name"].as_str(), Some("runway-policy"));
    }

    #[test]
    fn artifacts_name_their_package() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///tmp/p#my-policy@0.1.0","target":{"crate_types":["cdylib"]},"filenames":["/t/my_policy.wasm"]}"#;
        assert_eq!(
            cdylib_artifact(line),
            Some(("my-policy".to_string(), PathBuf::from("/t/my_policy.wasm")))
        );
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///tmp/my-policy#0.1.0","target":{"crate_types":["cdylib"]},"filenames":["/t/my_policy.wasm"]}"#;
        assert_eq!(cdylib_artifact(line).unwrap().0, "my-policy");
        assert_eq!(cdylib_artifact("not json"), None);
    }
}
