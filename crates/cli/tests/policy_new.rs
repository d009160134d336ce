//! `runway policy new` writes projects that build and pass their cases as written: for each
//! language and world, a project is generated, the commands of its README's "Build and test"
//! section are run in it, and the cases must all pass.
//!
//! The projects live at fixed paths under cargo's test scratch directory and build into the
//! policies' shared target directory (the one scripts/build-policies.sh uses), so that a run
//! recompiles only the project itself, not the SDK's dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNWAY: &str = env!("CARGO_BIN_EXE_runway");

fn policies_target_dir() -> PathBuf {
    match std::env::var_os("RUNWAY_POLICIES_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/runway/policies-target"),
    }
}

/// A fresh directory for one project. Its path is fixed for this checkout (clones sharing a
/// build directory do not share it), so builds reuse what the last run compiled.
fn project_dir(name: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut checkout = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut checkout);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("policy-new-{:016x}", checkout.finish()))
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    dir
}

/// The commands of the README's "Build and test" section (its first `sh` block).
fn readme_commands(readme: &str) -> Vec<String> {
    let section = readme
        .split_once("## Build and test")
        .expect("the README has a Build and test section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("the section has a sh block")
        .1
        .split_once("```")
        .expect("the block ends")
        .0;
    block
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The language toolchains scripts/setup.sh installs into the checkout (componentize-py in
/// `.tools/venv`, tsc and componentize-js in `scripts/node`), named as a user would name
/// their own.
fn toolchain_env() -> Vec<(&'static str, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        ("COMPONENTIZE_PY", ".tools/venv/bin/componentize-py"),
        ("TSC", "scripts/node/node_modules/.bin/tsc"),
        (
            "COMPONENTIZE_JS",
            "scripts/node/node_modules/.bin/componentize-js",
        ),
    ]
    .into_iter()
    .map(|(var, relative)| (var, root.join(relative)))
    .filter(|(_, path)| path.is_file())
    .collect()
}

/// Writes `name` with `runway policy new`, runs its README's commands in it and checks the
/// cases passed.
fn new_build_and_test(name: &str, lang: &str, world: &str) {
    let dir = project_dir(name);
    let status = Command::new(RUNWAY)
        .args([
            "policy", "new", name, "--lang", lang, "--world", world, "--dir",
        ])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "runway policy new {name}");
    // A Rust project's lock file, as written.
    let lock_written = std::fs::read_to_string(dir.join("Cargo.lock")).ok();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert_eq!(commands.len(), 2, "{commands:?}");
    let mut last_output = String::new();
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[0], "runway", "{command}");
        let output = Command::new(RUNWAY)
            .args(&words[1..])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", policies_target_dir())
            .envs(toolchain_env())
            .output()
            .unwrap();
        last_output = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`{command}` in {} failed:\n{last_output}\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let count = cases["cases"].as_array().expect("a list of cases").len();
    assert!(
        last_output.contains(&format!("{count} passed, 0 failed")),
        "{last_output}"
    );
    assert!(dir.join(format!("build/{name}.wasm")).is_file());
    if let Some(written) = lock_written {
        // The build kept every version the lock file written pins: it resolved nothing anew
        // (cargo may drop a dependency edge a feature of runway's examples added).
        let kept = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
        assert_eq!(
            locked_versions(&written),
            locked_versions(&kept),
            "the build changed the versions the Cargo.lock of {name} pins"
        );
        assert!(kept.contains(&format!("name = \"{name}\"")));
    }
}

/// The `name version` of every package a lock file pins.
fn locked_versions(lock: &str) -> Vec<String> {
    lock.split("[[package]]")
        .skip(1)
        .map(|block| {
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{key} = ")))
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string()
            };
            format!("{} {}", field("name"), field("version"))
        })
        .collect()
}

#[test]
fn a_new_rust_router_builds_and_passes_its_cases() {
    new_build_and_test("rust-router", "rust", "router");
}

#[test]
fn a_new_rust_throttle_builds_and_passes_its_cases() {
    new_build_and_test("rust-throttle", "rust", "throttle");
}

/// The C build needs clang and wasm-ld, which scripts/setup.sh installs (CI has them);
/// elsewhere the test says what is missing and passes.
fn c_toolchain_present() -> bool {
    let found = |names: &[&str]| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        names
            .iter()
            .any(|name| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    let present = found(&[
        "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14",
    ]) && found(&[
        "wasm-ld",
        "wasm-ld-19",
        "wasm-ld-18",
        "wasm-ld-17",
        "wasm-ld-16",
        "wasm-ld-15",
        "wasm-ld-14",
    ]);
    if !present {
        eprintln!(
            "SKIPPED: clang or wasm-ld is not installed (apt-get install clang lld), so C \
             policies cannot be built here"
        );
    }
    present
}

#[test]
fn a_new_c_router_builds_and_passes_its_cases() {
    if c_toolchain_present() {
        new_build_and_test("c-router", "c", "router");
    }
}

#[test]
fn a_new_c_throttle_builds_and_passes_its_cases() {
    if c_toolchain_present() {
        new_build_and_test("c-throttle", "c", "throttle");
    }
}

// Python and TypeScript projects build with the toolchains scripts/setup.sh installs (CI
// has them); each component carries its runtime, so these take tens of seconds.
#[test]
fn a_new_python_router_builds_and_passes_its_cases() {
    new_build_and_test("python-router", "python", "router");
}

#[test]
fn a_new_python_throttle_builds_and_passes_its_cases() {
    new_build_and_test("python-throttle", "python", "throttle");
}

#[test]
fn a_new_typescript_router_builds_and_passes_its_cases() {
    new_build_and_test("typescript-router", "typescript", "router");
}

#[test]
fn a_new_typescript_throttle_builds_and_passes_its_cases() {
    new_build_and_test("typescript-throttle", "typescript", "throttle");
}

#[test]
fn new_refuses_a_directory_with_files_and_an_unknown_language() {
    let dir = project_dir("taken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), "package main").unwrap();
    let output = Command::new(RUNWAY)
        .args(["policy", "new", "taken", "--lang", "rust", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    let output = Command::new(RUNWAY)
        .args(["policy", "new", "x", "--lang", "go"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rust") && stderr.contains("c"), "{stderr}");
    // Building a directory that holds no project says how to make one.
    let output = Command::new(RUNWAY)
        .args(["policy", "build"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("runway policy new"), "{stderr}");
}
