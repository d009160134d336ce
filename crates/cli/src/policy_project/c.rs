//! C policies: wit-bindgen's C generator writes the bindings from `wit/policy.wit`, clang
//! compiles every `*.c` file for wasm32 with no libc, wasm-ld links a module that imports
//! nothing (as policies/examples/ceiling-c/build.sh does for runway's own C policy).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use runway_policy_host::World;

use super::{Project, component, embedded, fill, find_tool, run};

/// The wit-bindgen release whose C generator builds C policies (scripts/build-policies.sh
/// installs the same).
pub const WIT_BINDGEN_VERSION: &str = "0.51.0";

const CLANGS: &[&str] = &[
    "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14",
];
const WASM_LDS: &[&str] = &[
    "wasm-ld",
    "wasm-ld-19",
    "wasm-ld-18",
    "wasm-ld-17",
    "wasm-ld-16",
    "wasm-ld-15",
    "wasm-ld-14",
];

pub fn files(name: &str, world: World) -> Vec<(PathBuf, String)> {
    let (source, cases, export) = match world {
        World::Router => (
            embedded::c::ROUTER,
            embedded::ROUTER_CASES,
            "exports_runway_policy_routing_route",
        ),
        World::Throttle => (
            embedded::c::THROTTLE,
            embedded::THROTTLE_CASES,
            "exports_runway_policy_throttling_decide",
        ),
    };
    let values = [
        ("name", name),
        ("world", super::world_name(world)),
        ("export", export),
        ("runway_version", env!("CARGO_PKG_VERSION")),
        ("wit_bindgen_version", WIT_BINDGEN_VERSION),
    ];
    let mut files = vec![
        (PathBuf::from("policy.c"), fill(source, &values)),
        (
            PathBuf::from(super::MANIFEST),
            fill(embedded::c::MANIFEST, &values),
        ),
        (PathBuf::from("cases.json"), cases.to_string()),
        (
            PathBuf::from("README.md"),
            fill(embedded::c::README, &values),
        ),
        (
            PathBuf::from(".gitignore"),
            embedded::c::GITIGNORE.to_string(),
        ),
        (PathBuf::from("wit/policy.wit"), embedded::WIT.to_string()),
    ];
    for (file, text) in embedded::C_RUNTIME {
        files.push((PathBuf::from(file), text.to_string()));
    }
    files
}

/// clang and wasm-ld, or why not.
pub fn compilers() -> anyhow::Result<(PathBuf, PathBuf)> {
    let clang = find_tool(Some("CLANG"), CLANGS);
    let wasm_ld = find_tool(Some("WASM_LD"), WASM_LDS);
    match (clang, wasm_ld) {
        (Some(clang), Some(wasm_ld)) => Ok((clang, wasm_ld)),
        _ => bail!(
            "C policies need clang and wasm-ld (lld): install them (Debian, Ubuntu: apt-get \
             install clang lld) or name them in CLANG and WASM_LD"
        ),
    }
}

/// Where runway keeps the tools it installs: `~/.cache/runway/tools`.
fn tools_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .context("HOME is not set: name wit-bindgen in WIT_BINDGEN")?;
    Ok(PathBuf::from(home).join(".cache/runway/tools"))
}

fn has_version(tool: &Path) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(WIT_BINDGEN_VERSION))
}

/// wit-bindgen with its C generator: `WIT_BINDGEN`, else the one in runway's tools, else the
/// PATH's of the right version, else installed into runway's tools with `cargo install`.
pub fn wit_bindgen() -> anyhow::Result<PathBuf> {
    if let Some(named) = std::env::var_os("WIT_BINDGEN").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(named));
    }
    let tools = tools_dir()?;
    let installed = tools.join("bin/wit-bindgen");
    if has_version(&installed) {
        return Ok(installed);
    }
    if let Some(on_path) = find_tool(None, &["wit-bindgen"])
        && has_version(&on_path)
    {
        return Ok(on_path);
    }
    eprintln!(
        "runway: installing wit-bindgen {WIT_BINDGEN_VERSION} (C generator) into {} with cargo \
         install; this happens once",
        tools.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(
        Command::new(cargo)
            .args([
                "install",
                "--quiet",
                "--locked",
                "wit-bindgen-cli",
                "--version",
            ])
            .arg(WIT_BINDGEN_VERSION)
            .args(["--no-default-features", "--features", "c", "--root"])
            .arg(&tools),
        "cargo install wit-bindgen-cli (set WIT_BINDGEN to use one you have)",
    )?;
    Ok(installed)
}

/// The C files of the project, sorted.
fn sources(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "c") && path.is_file() {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

pub fn build(project: &Project, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let (Some(name), Some(world)) = (&project.name, project.world) else {
        bail!(
            "{} needs a {} with its name and world",
            project.dir.display(),
            super::MANIFEST
        );
    };
    let dir = &project.dir;
    let sources = sources(dir)?;
    if sources.is_empty() {
        bail!("{} holds no .c file to build", dir.display());
    }
    let (clang, wasm_ld) = compilers()?;
    let wit_bindgen = wit_bindgen()?;
    let work = dir.join("target/c");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let world = super::world_name(world);
    run(
        Command::new(&wit_bindgen)
            .arg("c")
            .arg(dir.join("wit"))
            .args(["--world", world, "--out-dir"])
            .arg(&work),
        "wit-bindgen c",
    )?;
    let bindings = work.join(format!("{world}.c"));
    let mut objects = Vec::new();
    for source in sources.iter().chain([&bindings]) {
        let stem = source
            .file_stem()
            .and_then(|stem| stem.to_str())
            .context("a C file name that is not UTF-8")?;
        // The bindings' object apart from the project's, whatever its files are called.
        let object = if *source == bindings {
            work.join(format!("bindings-{world}.o"))
        } else {
            work.join(format!("{stem}.o"))
        };
        run(
            Command::new(&clang)
                .args([
                    "--target=wasm32-unknown-unknown",
                    "-O2",
                    "-ffreestanding",
                    "-nostdlib",
                    "-Wall",
                    "-Werror",
                    "-I",
                ])
                .arg(&work)
                .arg("-I")
                .arg(dir)
                .arg("-isystem")
                .arg(dir.join("libc"))
                .arg("-c")
                .arg(source)
                .arg("-o")
                .arg(&object),
            &format!("clang {}", source.display()),
        )?;
        objects.push(object);
    }
    objects.push(work.join(format!("{world}_component_type.o")));
    let module = work.join(format!("{name}.core.wasm"));
    run(
        Command::new(&wasm_ld)
            .arg("--no-entry")
            .arg("-o")
            .arg(&module)
            .args(&objects),
        "wasm-ld",
    )?;
    let bytes = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let (component, built) =
        component::componentize(&bytes).with_context(|| format!("{}", module.display()))?;
    let out = out_dir.join(format!("{name}.wasm"));
    component::write_if_changed(&out, &component)?;
    eprintln!("runway: built {built} policy {}", out.display());
    Ok(out)
}
