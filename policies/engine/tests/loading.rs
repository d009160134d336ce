//! One loader for policy files (a component or an artefact compiled ahead of time, told apart
//! by content, with errors that name the file), and the text form of [`InstanceReuse`] that
//! configuration files and environment variables use.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use runway_policy_host::{
    EngineConfig, InstanceReuse, Job, PolicyEngine, PolicyError, Pool, Target, World,
};

fn module(name: &str) -> Vec<u8> {
    runway_testkit::built_policy_bytes(name).unwrap()
}

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::new(EngineConfig::default()).expect("engine"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn other_target() -> Target {
    match Target::host().expect("a supported architecture") {
        Target::X86_64 => Target::Aarch64,
        Target::Aarch64 => Target::X86_64,
    }
}

fn gpu_job() -> (Job, Vec<Pool>) {
    let job = Job {
        labels: vec!["self-hosted".into(), "linux".into(), "gpu".into()],
        ..Job::default()
    };
    let pools = vec![
        Pool {
            name: "linux".into(),
            labels: vec!["linux".into()],
            ..Pool::default()
        },
        Pool {
            name: "gpu".into(),
            labels: vec!["linux".into(), "gpu".into()],
            ..Pool::default()
        },
    ];
    (job, pools)
}

#[test]
fn a_component_and_its_precompiled_artefact_load_from_files_and_decide_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let source = module("labels-router.wasm");
    let artefact = engine()
        .precompile(&source, Target::host().unwrap())
        .unwrap();
    let wasm = write(dir.path(), "router.wasm", &source);
    let cwasm = write(dir.path(), "router.cwasm", &artefact);
    // The content decides, not the name.
    let renamed = write(dir.path(), "router.bin", &artefact);
    let misnamed = write(dir.path(), "component.cwasm", &source);

    let (job, pools) = gpu_job();
    let mut decisions = Vec::new();
    for path in [&wasm, &cwasm, &renamed, &misnamed] {
        let policy = engine()
            .load_file(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(policy.world(), World::Router, "{}", path.display());
        decisions.push(policy.router().unwrap().route(&job, &pools).unwrap());
    }
    assert!(decisions.iter().all(|decision| decision == &decisions[0]));
    assert!(
        matches!(&decisions[0], runway_policy_host::RouteDecision::Run { pool, .. } if pool == "gpu")
    );
}

#[test]
fn an_artefact_for_another_architecture_names_the_file_and_says_to_compile_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = engine()
        .precompile(&module("fair-share.wasm"), other_target())
        .unwrap();
    let path = write(dir.path(), "throttle.cwasm", &foreign);
    let error = engine().load_file(&path).unwrap_err();
    assert_eq!(error.kind(), "incompatible", "{error}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("runway policy compile"), "{message}");
    assert!(matches!(error, PolicyError::File { .. }), "{error:?}");
}

#[test]
fn files_that_are_not_policies_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let cases: [(&str, &[u8], &str, &str); 5] = [
        (
            "notes.cwasm",
            b"not an artefact",
            "incompatible",
            "runway policy compile",
        ),
        (
            "notes.wasm",
            b"not webassembly",
            "malformed",
            "neither a WebAssembly component",
        ),
        (
            "empty.wasm",
            b"",
            "malformed",
            "neither a WebAssembly component",
        ),
        (
            "elf.cwasm",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0",
            "incompatible",
            "runway policy compile",
        ),
        (
            "core.wasm",
            &core_module,
            "malformed",
            "core WebAssembly module",
        ),
    ];
    for (name, bytes, kind, hint) in cases {
        let path = write(dir.path(), name, bytes);
        let error = engine().load_file(&path).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.kind(), kind, "{name}: {message}");
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: {message}"
        );
        assert!(message.contains(hint), "{name}: {message}");
    }

    let missing = dir.path().join("missing.cwasm");
    let error = engine().load_file(&missing).unwrap_err();
    assert_eq!(error.kind(), "io");
    assert!(error.to_string().contains("missing.cwasm"), "{error}");
}

#[test]
fn a_file_loaded_policy_follows_the_engines_reuse_setting() {
    let source = module("labels-router.wasm");
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "router.wasm", &source);
    for (reuse, reuses) in [("never", false), ("verified", true), ("verified:8", true)] {
        let engine = PolicyEngine::new(EngineConfig {
            reuse: reuse.parse().unwrap(),
            prepared_instances: 0,
            ..EngineConfig::default()
        })
        .unwrap();
        let router = engine.load_file(&path).unwrap().router().unwrap();
        assert_eq!(router.policy().reuses_instances(), reuses, "{reuse}");
        let (job, pools) = gpu_job();
        router.route(&job, &pools).unwrap();
        router.route(&job, &pools).unwrap();
        assert_eq!(
            router.policy().warm_instances(),
            usize::from(reuses),
            "{reuse}"
        );
    }
}

#[test]
fn reuse_parses_the_three_forms() {
    assert_eq!("never".parse(), Ok(InstanceReuse::Never));
    assert_eq!(
        "verified".parse(),
        Ok(InstanceReuse::Verified {
            verify_every: InstanceReuse::DEFAULT_VERIFY_EVERY
        })
    );
    assert_eq!(
        " Verified:8 ".parse(),
        Ok(InstanceReuse::Verified { verify_every: 8 })
    );
    assert_eq!(
        "verified:1".parse(),
        Ok(InstanceReuse::Verified { verify_every: 1 })
    );
    assert_eq!(InstanceReuse::default().to_string(), "never");
    assert_eq!(
        InstanceReuse::verified().to_string(),
        format!("verified:{}", InstanceReuse::DEFAULT_VERIFY_EVERY)
    );
}

#[test]
fn reuse_refuses_anything_else_and_says_what_is_expected() {
    for junk in [
        "",
        "always",
        "verified:",
        "verified:0",
        "verified:-1",
        "verified:+5",
        "verified:1.5",
        "verified:99999999999",
        "verified:8:9",
        "never:3",
        "verify:3",
        ":3",
    ] {
        let error = junk.parse::<InstanceReuse>().unwrap_err();
        assert!(
            error.contains("expected never, verified or verified:N (N ≥ 1)"),
            "{junk:?}: {error}"
        );
    }
}

proptest! {
    #[test]
    fn reuse_round_trips_through_its_text(verify_every in 1u32..) {
        for reuse in [InstanceReuse::Never, InstanceReuse::Verified { verify_every }] {
            prop_assert_eq!(reuse.to_string().parse::<InstanceReuse>(), Ok(reuse));
        }
    }

    #[test]
    fn reuse_text_parses_or_is_refused_without_panicking(text in "\\PC{0,24}") {
        match text.parse::<InstanceReuse>() {
            Ok(reuse) => {
                let canonical = text.trim().to_ascii_lowercase();
                prop_assert!(
                    canonical == "never"
                        || canonical == "verified"
                        || canonical.starts_with("verified:"),
                    "{:?} parsed as {:?}", text, reuse
                );
                prop_assert_eq!(reuse.to_string().parse::<InstanceReuse>(), Ok(reuse));
            }
            Err(error) => prop_assert!(error.contains("verified:N (N ≥ 1)")),
        }
    }

    #[test]
    fn reuse_near_misses_are_refused(
        prefix in prop::sample::select(vec!["verified", "never", "Verified", "verify", ""]),
        separator in prop::sample::select(vec![":", "=", "::", ""]),
        number in "[-+]?[0-9a-f.]{0,12}",
    ) {
        let text = format!("{prefix}{separator}{number}");
        let expected = match (prefix.to_ascii_lowercase().as_str(), separator, number.as_str()) {
            ("never", _, "") if separator.is_empty() => Some(InstanceReuse::Never),
            ("verified", _, "") if separator.is_empty() => Some(InstanceReuse::verified()),
            ("verified", ":", n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse::<u32>().ok().filter(|&every| every >= 1)
                    .map(|verify_every| InstanceReuse::Verified { verify_every })
            }
            _ => None,
        };
        prop_assert_eq!(text.parse::<InstanceReuse>().ok(), expected, "{}", text);
    }
}
