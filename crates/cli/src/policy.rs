//! `runway policy`: evaluate, test and compile WebAssembly routing and throttling policies.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use runway_policy_host::{
    EngineConfig, Policy, PolicyBounds, PolicyEngine, PolicyOutput, Target, World, cases,
};

use crate::policy_project::{self, Language};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run a policy on one input and print its decision as JSON.
    Eval {
        /// The policy: a component (.wasm) or a precompiled artefact (.cwasm).
        #[arg(long)]
        policy: PathBuf,
        /// The world the policy must implement (router or throttle); checked if given.
        #[arg(long)]
        world: Option<World>,
        /// The input JSON ({"job", "pools"} for a router, {"job", "pool", "load"} for a
        /// throttle); `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        bounds: Bounds,
    },
    /// Run recorded cases (input and expected decision) and report `N passed, N failed`.
    Test {
        #[arg(long)]
        policy: PathBuf,
        /// A cases JSON file, or a directory of them.
        #[arg(long)]
        cases: PathBuf,
        #[command(flatten)]
        bounds: Bounds,
    },
    /// Write a new policy project that builds and passes its cases as written: the policy's
    /// source, a cases file, and a README with the commands to build and test it.
    New {
        /// The policy's name: lower-case letters, digits, `-` and `_` (its component is
        /// build/NAME.wasm).
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: Language,
        /// The world it implements: router or throttle.
        #[arg(long, default_value = "router")]
        world: World,
        /// Where to write the project (default: ./NAME); it must be new or empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build the policy project in DIR (default: the current directory) into a component
    /// that imports nothing, DIR/build/NAME.wasm; the language is found from the project's
    /// files (runway-policy.toml, or Cargo.toml for Rust).
    Build {
        dir: Option<PathBuf>,
        /// Where to write the component (default: DIR/build).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Compile a policy ahead of time for a Lambda architecture (a .cwasm artefact).
    Compile {
        /// The policy component (.wasm).
        file: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// x86_64 or aarch64 (Graviton); defaults to this machine's.
        #[arg(long)]
        target: Option<Target>,
    },
}

/// The policy's bounds per call; unset, the ones runway runs such a policy with (more for a
/// policy importing WASI, such as a Python or JavaScript one, than for one in Rust or C).
#[derive(Debug, clap::Args)]
pub struct Bounds {
    /// Fuel (roughly WebAssembly instructions) per call.
    #[arg(long)]
    fuel: Option<u64>,
    /// Wall-clock budget per call, in milliseconds.
    #[arg(long)]
    time_budget_ms: Option<u64>,
    /// Linear memory cap per call, in MiB.
    #[arg(long)]
    memory_mib: Option<usize>,
}

impl Bounds {
    fn policy_bounds(&self) -> PolicyBounds {
        PolicyBounds {
            fuel: self.fuel,
            time_budget: self.time_budget_ms.map(std::time::Duration::from_millis),
            memory_limit_bytes: self.memory_mib.map(|mib| mib.saturating_mul(1 << 20)),
        }
    }

    /// An engine whose instances have room for the memory cap asked for.
    fn engine(&self) -> anyhow::Result<PolicyEngine> {
        let mut config = EngineConfig::default();
        if let Some(bytes) = self.policy_bounds().memory_limit_bytes {
            config.max_memory_bytes = config.max_memory_bytes.max(bytes);
        }
        Ok(PolicyEngine::new(config)?)
    }
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Eval {
            policy,
            world,
            input,
            bounds,
        } => eval(&policy, world, &input, &bounds),
        Command::Test {
            policy,
            cases,
            bounds,
        } => test(&policy, &cases, &bounds),
        Command::New {
            name,
            lang,
            world,
            dir,
        } => new(&name, lang, world, dir),
        Command::Build { dir, out_dir } => build(dir, out_dir),
        Command::Compile {
            file,
            output,
            target,
        } => compile(&file, &output, target),
    }
}

fn new(name: &str, lang: Language, world: World, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let files = policy_project::new_project(&dir, name, lang, world)?;
    println!(
        "runway: wrote a {lang} {world} policy into {}:",
        dir.display()
    );
    for file in files {
        println!("  {}", file.display());
    }
    println!(
        "build and test it (README.md says more):\n  cd {}\n  runway policy build\n  \
         runway policy test --policy build/{name}.wasm --cases cases.json",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn build(dir: Option<PathBuf>, out_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let project = policy_project::Project::find(&dir)?;
    let out_dir = out_dir.unwrap_or_else(|| dir.join("build"));
    project.build(&out_dir).with_context(|| {
        format!(
            "building the {} policy in {}",
            project.language,
            dir.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Loads a component, or a precompiled artefact the user pointed at.
fn load(
    engine: &PolicyEngine,
    path: &Path,
    bounds: &Bounds,
) -> Result<Policy, runway_policy_host::PolicyError> {
    // The operator named this file on the command line: a `.cwasm` is trusted as `runway`
    // itself is (wasmtime still refuses one this version and architecture did not produce).
    engine.load_file_with(path, &bounds.policy_bounds())
}

/// What the policy wrote, on standard error, so that standard output stays the decision.
fn print_output(output: &PolicyOutput) {
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        for line in text.lines() {
            eprintln!("policy {stream}: {line}");
        }
    }
    if output.dropped_bytes > 0 {
        eprintln!(
            "policy output: {} more bytes were not kept (runway keeps {} per stream)",
            output.dropped_bytes,
            runway_policy_host::CAPTURED_OUTPUT_BYTES
        );
    }
}

fn print_error(error: &runway_policy_host::PolicyError) -> anyhow::Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&cases::error_json(error))?
    );
    eprintln!("runway: policy error ({}): {error}", error.kind());
    Ok(ExitCode::FAILURE)
}

fn eval(
    policy_path: &Path,
    world: Option<World>,
    input_path: &Path,
    bounds: &Bounds,
) -> anyhow::Result<ExitCode> {
    let input_text = if input_path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the input from standard input")?;
        text
    } else {
        std::fs::read_to_string(input_path)
            .with_context(|| format!("reading input {}", input_path.display()))?
    };
    let input: serde_json::Value = serde_json::from_str(&input_text)
        .with_context(|| format!("{} is not JSON", input_path.display()))?;
    let engine = bounds.engine()?;
    let policy = match load(&engine, policy_path, bounds) {
        Ok(policy) => policy,
        Err(error) => return print_error(&error),
    };
    if let Some(world) = world {
        let checked = match world {
            World::Router => policy.router().map(|_| ()),
            World::Throttle => policy.throttle().map(|_| ()),
        };
        if let Err(error) = checked {
            return print_error(&error);
        }
    }
    match cases::eval_with_output(&policy, &input) {
        Err(message) => bail!("{}: {message}", input_path.display()),
        Ok((Err(error), output)) => {
            print_output(&output);
            print_error(&error)
        }
        Ok((Ok(decision), output)) => {
            print_output(&output);
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn test(policy_path: &Path, cases_path: &Path, bounds: &Bounds) -> anyhow::Result<ExitCode> {
    let engine = bounds.engine()?;
    let policy = load(&engine, policy_path, bounds)
        .with_context(|| format!("loading policy {}", policy_path.display()))?;
    let cases = cases::load(cases_path)?;
    if cases.is_empty() {
        bail!("{} holds no cases", cases_path.display());
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        let outcome = cases::run(&policy, case);
        match &outcome.failure {
            None => {
                passed += 1;
                println!("ok     {}", outcome.name);
            }
            Some(why) => {
                failed += 1;
                println!(
                    "FAILED {} ({}): {why}",
                    outcome.name,
                    outcome.source.display()
                );
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn compile(file: &Path, output: &Path, target: Option<Target>) -> anyhow::Result<ExitCode> {
    let target = match target.or_else(Target::host) {
        Some(target) => target,
        None => bail!(
            "this machine's architecture has no default target: pass --target x86_64 or --target aarch64"
        ),
    };
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let engine = PolicyEngine::new(EngineConfig::default())?;
    let artefact = engine
        .precompile(&bytes, target)
        .with_context(|| format!("compiling {}", file.display()))?;
    std::fs::write(output, &artefact).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "runway: compiled {} for {} into {} ({} bytes)",
        file.display(),
        target.triple(),
        output.display(),
        artefact.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(name: &str) -> PathBuf {
        runway_testkit::built_policy(name).unwrap()
    }

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../policies/examples")
            .join(name)
    }

    fn bounds() -> Bounds {
        Bounds {
            fuel: None,
            time_budget_ms: None,
            memory_mib: None,
        }
    }

    fn code(result: anyhow::Result<ExitCode>) -> ExitCode {
        result.expect("the command runs")
    }

    #[test]
    fn test_passes_the_examples_and_fails_a_wrong_expectation() {
        for name in [
            "labels-router",
            "spec-router",
            "fair-share",
            "business-hours",
        ] {
            let outcome = code(test(
                &build(&format!("{name}.wasm")),
                &example(name).join("cases.json"),
                &bounds(),
            ));
            assert_eq!(outcome, ExitCode::SUCCESS, "{name}");
        }
        // The throttle's cases against the router: every case fails, so the command does.
        let outcome = code(test(
            &build("labels-router.wasm"),
            &example("fair-share").join("cases.json"),
            &bounds(),
        ));
        assert_eq!(outcome, ExitCode::FAILURE);
    }

    #[test]
    fn eval_succeeds_on_a_decision_and_fails_on_a_policy_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.json");
        std::fs::write(
            &input,
            r#"{"job": {"labels": ["self-hosted", "linux"], "job_name": "spin"},
                "pools": [{"name": "linux", "labels": ["linux"]}]}"#,
        )
        .unwrap();
        let router = build("labels-router.wasm");
        let ok = code(eval(&router, Some(World::Router), &input, &bounds()));
        assert_eq!(ok, ExitCode::SUCCESS);
        let wrong_world = code(eval(&router, Some(World::Throttle), &input, &bounds()));
        assert_eq!(wrong_world, ExitCode::FAILURE);
        let hostile = build("tests/hostile-router.wasm");
        let spin = code(eval(&hostile, None, &input, &bounds()));
        assert_eq!(spin, ExitCode::FAILURE);
        // Input that is not JSON is an error of the command itself.
        std::fs::write(&input, "{").unwrap();
        assert!(eval(&router, None, &input, &bounds()).is_err());
    }

    #[test]
    fn python_and_typescript_policies_pass_their_cases_and_bounds_apply_to_them() {
        for name in ["python-router", "typescript-throttle"] {
            let outcome = code(test(
                &build(&format!("{name}.wasm")),
                &example(name).join("cases.json"),
                &bounds(),
            ));
            assert_eq!(outcome, ExitCode::SUCCESS, "{name}");
        }
        // Too little fuel for CPython to decide: every case fails with out-of-fuel.
        let starved = Bounds {
            fuel: Some(1_000),
            ..bounds()
        };
        let outcome = code(test(
            &build("python-router.wasm"),
            &example("python-router").join("cases.json"),
            &starved,
        ));
        assert_eq!(outcome, ExitCode::FAILURE);
    }

    #[test]
    fn compile_writes_an_artefact_that_eval_loads() {
        let dir = tempfile::tempdir().unwrap();
        let artefact = dir.path().join("router.cwasm");
        let host = Target::host().expect("supported architecture");
        let outcome = code(compile(&build("labels-router.wasm"), &artefact, Some(host)));
        assert_eq!(outcome, ExitCode::SUCCESS);
        let input = dir.path().join("input.json");
        std::fs::write(
            &input,
            r#"{"job": {"labels": ["self-hosted"]}, "pools": [{"name": "any"}]}"#,
        )
        .unwrap();
        assert_eq!(
            code(eval(&artefact, Some(World::Router), &input, &bounds())),
            ExitCode::SUCCESS
        );
        // Malformed input for compile is an error, not a panic.
        std::fs::write(&input, "not wasm").unwrap();
        assert!(compile(&input, &artefact, Some(host)).is_err());
    }
}
