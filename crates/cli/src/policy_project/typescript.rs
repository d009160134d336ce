//! TypeScript policies: tsc type-checks `policy.ts` against `runway-policy.d.ts` (the contract
//! as JavaScript sees it) and emits JavaScript, which componentize-js embeds in a JavaScript
//! engine component. HTTP and fetch are left out, so the component imports only the
//! deterministic WASI runway offers language runtimes (see runway's `policies/README.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use runway_policy_host::World;

use super::{Project, embedded, fill, find_tool, run};

/// The versions runway builds and tests its TypeScript policies with (scripts/node pins the
/// same); a new project's package.json pins them.
pub const TYPESCRIPT_VERSION: &str = "7.0.2";
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
pub const PREVIEW2_SHIM_VERSION: &str = "0.25.0";

pub fn files(name: &str, world: World) -> Vec<(PathBuf, String)> {
    let (source, cases) = match world {
        World::Router => (embedded::typescript::ROUTER, embedded::ROUTER_CASES),
        World::Throttle => (embedded::typescript::THROTTLE, embedded::THROTTLE_CASES),
    };
    let values = [
        ("name", name),
        ("world", super::world_name(world)),
        ("runway_version", env!("CARGO_PKG_VERSION")),
        ("typescript_version", TYPESCRIPT_VERSION),
        ("componentize_js_version", COMPONENTIZE_JS_VERSION),
        ("preview2_shim_version", PREVIEW2_SHIM_VERSION),
    ];
    let template = |path: &str, text: &str| (PathBuf::from(path), fill(text, &values));
    vec![
        template("policy.ts", source),
        template("runway-policy.d.ts", embedded::typescript::CONTRACT),
        template("tsconfig.json", embedded::typescript::TSCONFIG),
        template("package.json", embedded::typescript::PACKAGE),
        template(super::MANIFEST, embedded::typescript::MANIFEST),
        (PathBuf::from("cases.json"), cases.to_string()),
        template("README.md", embedded::typescript::README),
        template(".gitignore", embedded::typescript::GITIGNORE),
        (PathBuf::from("wit/policy.wit"), embedded::WIT.to_string()),
    ]
}

/// A tool: the environment variable `var`, else the project's `node_modules/.bin` (after
/// `npm install`), else the PATH's.
fn node_tool(project: &Project, var: &str, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(named) = std::env::var_os(var).filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(named));
    }
    let local = project.dir.join("node_modules/.bin").join(name);
    if local.is_file() {
        return Ok(local);
    }
    find_tool(None, &[name]).with_context(|| {
        format!(
            "TypeScript policies need {name}: run `npm install` in {} (its package.json names \
             the versions), or name it in {var}",
            project.dir.display()
        )
    })
}

pub fn build(project: &Project, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let (Some(name), Some(world)) = (&project.name, project.world) else {
        bail!(
            "{} names no policy name and world: a TypeScript project needs its {}",
            project.dir.display(),
            super::MANIFEST
        );
    };
    if !project.dir.join("tsconfig.json").is_file() {
        bail!(
            "{} has no tsconfig.json: `runway policy new --lang typescript` writes one",
            project.dir.display()
        );
    }
    let tsc = node_tool(project, "TSC", "tsc")?;
    let componentize_js = node_tool(project, "COMPONENTIZE_JS", "componentize-js")?;
    let js = project.dir.join("target/js");
    run(
        Command::new(tsc)
            .current_dir(&project.dir)
            .args(["-p", "tsconfig.json", "--outDir"])
            .arg(&js),
        "tsc",
    )?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let component = out_dir.join(format!("{name}.wasm"));
    // componentize-js reads --wit relative to the working directory.
    run(
        Command::new(componentize_js)
            .current_dir(&project.dir)
            .arg(js.join("policy.js"))
            .args(["--wit", "wit", "--world-name", super::world_name(world)])
            .args(["--disable", "http", "fetch-event", "-o"])
            .arg(&component),
        "componentize-js",
    )?;
    Ok(component)
}
