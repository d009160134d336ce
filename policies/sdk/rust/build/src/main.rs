//! `runway-policy-build`: builds the policy crates of a Cargo workspace (or one crate) for
//! `wasm32-unknown-unknown` and turns each `cdylib` into a WebAssembly component with
//! `wit-component`. A component that imports anything is refused: runway runs policies with
//! no WASI, no clock and no network, so an import could never be satisfied.
//!
//! Usage: runway-policy-build [--manifest-path Cargo.toml] [--out-dir DIR] [-- CARGO ARGS...]
//!        runway-policy-build --module CORE.wasm --name NAME [--out-dir DIR]
//!
//! The second form componentizes a core module built by another toolchain (C with clang and
//! `wit-bindgen c`, for example): it must carry the `component-type` custom section that
//! wit-bindgen generates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const TARGET: &str = "wasm32-unknown-unknown";
const GUEST_STACK_BYTES: u32 = 128 * 1024;

struct Args {
    /// A core module to componentize instead of building a crate.
    module: Option<(PathBuf, String)>,
    manifest_path: PathBuf,
    out_dir: PathBuf,
    cargo_args: Vec<String>,
}

fn usage() -> String {
    "usage: runway-policy-build [--manifest-path PATH/Cargo.toml] [--out-dir DIR] [-- CARGO BUILD ARGS...]\n\
     Builds every cdylib policy crate for wasm32-unknown-unknown (release) and writes one\n\
     component per crate as DIR/<package>.wasm (default DIR: ./build).\n\
     or:    runway-policy-build --module CORE.wasm --name NAME [--out-dir DIR]\n\
     Turns a core module that carries wit-bindgen's component-type section into DIR/NAME.wasm."
        .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut manifest_path = PathBuf::from("Cargo.toml");
    let mut out_dir = PathBuf::from("build");
    let mut cargo_args = Vec::new();
    let mut module = None;
    let mut name = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--manifest-path" => {
                manifest_path = args.next().ok_or_else(usage)?.into();
            }
            "--module" => module = Some(PathBuf::from(args.next().ok_or_else(usage)?)),
            "--name" => name = Some(args.next().ok_or_else(usage)?),
            "--out-dir" | "-o" => {
                out_dir = args.next().ok_or_else(usage)?.into();
            }
            "--" => {
                cargo_args.extend(args.by_ref());
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    let module = match (module, name) {
        (Some(module), Some(name)) => Some((module, name)),
        (None, None) => None,
        _ => return Err(format!("--module and --name go together\n{}", usage())),
    };
    Ok(Args {
        module,
        manifest_path,
        out_dir,
        cargo_args,
    })
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| build(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("runway-policy-build: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One `cdylib` that cargo produced for the wasm target.
struct Artifact {
    package: String,
    module: PathBuf,
}

fn build(args: &Args) -> Result<(), String> {
    let artifacts = match &args.module {
        Some((module, name)) => vec![Artifact {
            package: name.clone(),
            module: module.clone(),
        }],
        None => cargo_build(args)?,
    };
    if artifacts.is_empty() {
        return Err(format!(
            "{} built no cdylib: a policy crate needs `[lib] crate-type = [\"cdylib\"]`",
            args.manifest_path.display()
        ));
    }
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.out_dir.display()))?;
    for artifact in artifacts {
        let out = args.out_dir.join(format!("{}.wasm", artifact.package));
        let module = std::fs::read(&artifact.module)
            .map_err(|e| format!("cannot read {}: {e}", artifact.module.display()))?;
        let component =
            componentize(&module).map_err(|e| format!("{}: {e}", artifact.module.display()))?;
        write_if_changed(&out, &component)?;
        eprintln!(
            "runway-policy-build: {} -> {}",
            artifact.package,
            out.display()
        );
    }
    Ok(())
}

fn cargo_build(args: &Args) -> Result<Vec<Artifact>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&args.manifest_path)
        .arg("--message-format=json-render-diagnostics")
        // A 128 KiB shadow stack instead of Rust's 1 MiB: a policy instance is created for
        // every decision, and a smaller memory is cheaper to create and reset.
        .arg(format!(
            "--config=target.{TARGET}.rustflags=[\"-C\", \"link-arg=-zstack-size={GUEST_STACK_BYTES}\"]"
        ))
        .args(&args.cargo_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = child.stdout.take().ok_or("cargo gave no output")?;
    let mut artifacts = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        if let Some(artifact) = parse_artifact(&line) {
            artifacts.push(artifact);
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build failed ({status}); if the target is missing run `rustup target add {TARGET}`"
        ));
    }
    Ok(artifacts)
}

fn parse_artifact(line: &str) -> Option<Artifact> {
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
    // The package id looks like `path+file:///…/labels-router#0.1.0` or `… labels-router 0.1.0 (…)`.
    let package = package_name(message.get("package_id")?.as_str()?).unwrap_or_else(|| {
        target
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("policy")
            .to_string()
    });
    Some(Artifact {
        package,
        module: PathBuf::from(module),
    })
}

fn package_name(package_id: &str) -> Option<String> {
    if let Some((url, rest)) = package_id.split_once('#') {
        // `…/dir#name@version` or `…/name#version`.
        if let Some((name, _version)) = rest.split_once('@') {
            return Some(name.to_string());
        }
        return url.rsplit('/').next().map(str::to_string);
    }
    package_id.split_whitespace().next().map(str::to_string)
}

/// Wraps a core module whose `component-type` custom section (written by wit-bindgen)
/// describes the world it exports, and checks the result imports nothing.
fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    let core_imports = core_imports(module)?;
    if !core_imports.is_empty() {
        return Err(format!(
            "the module imports {}: a policy may import nothing (no WASI, no host functions). \
             Build for {TARGET} and avoid crates that need a host (clocks, randomness, I/O).",
            core_imports.join(", ")
        ));
    }
    let component = wit_component::ComponentEncoder::default()
        .module(module)
        .map_err(|e| format!("not a policy module (was it built with runway-policy?): {e:#}"))?
        .validate(true)
        .encode()
        .map_err(|e| format!("cannot make a component: {e:#}"))?;
    let imports = component_imports(&component)?;
    if !imports.is_empty() {
        return Err(format!(
            "the component imports {}: a policy may import nothing",
            imports.join(", ")
        ));
    }
    Ok(component)
}

fn core_imports(module: &[u8]) -> Result<Vec<String>, String> {
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| format!("not a WebAssembly module: {e}"))?;
        if let wasmparser::Payload::ImportSection(section) = payload {
            for import in section.into_imports() {
                let import = import.map_err(|e| format!("bad import section: {e}"))?;
                imports.push(format!("{}::{}", import.module, import.name));
            }
        }
    }
    Ok(imports)
}

fn component_imports(component: &[u8]) -> Result<Vec<String>, String> {
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| format!("invalid component: {e}"))?;
        match payload {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            // Only the outermost component's imports are the policy's imports.
            wasmparser::Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| format!("bad import section: {e}"))?;
                    imports.push(import.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_from_ids() {
        assert_eq!(
            package_name("path+file:///work/policies/examples/labels-router#0.1.0").as_deref(),
            Some("labels-router")
        );
        assert_eq!(
            package_name("path+file:///work/x#labels-router@0.1.0").as_deref(),
            Some("labels-router")
        );
        assert_eq!(
            package_name("labels-router 0.1.0 (path+file:///x)").as_deref(),
            Some("labels-router")
        );
    }
}
