//! What `runway policy new` writes that lives elsewhere in runway's repository, embedded at
//! compile time so that the binary alone is enough (and a project gets the contract this
//! runway runs): the WIT contract, the Rust SDK with the versions it was tested with, the C
//! runtime of the C example, and the templates.

/// The contract, `runway:policy@0.1.0`.
pub const WIT: &str = include_str!("../../../../policies/wit/policy.wit");

/// The Rust SDK (`policies/sdk/rust`): its manifest and sources. Its bindings come from
/// `../../wit`, so a project holds it at `sdk/rust` beside `wit/policy.wit`.
pub const SDK_MANIFEST: &str = include_str!("../../../../policies/sdk/rust/Cargo.toml");
pub const SDK_SOURCES: [(&str, &str); 3] = [
    (
        "lib.rs",
        include_str!("../../../../policies/sdk/rust/src/lib.rs"),
    ),
    (
        "bump.rs",
        include_str!("../../../../policies/sdk/rust/src/bump.rs"),
    ),
    (
        "time.rs",
        include_str!("../../../../policies/sdk/rust/src/time.rs"),
    ),
];

/// The example policies' lock file: the versions of the SDK's dependencies that runway builds
/// and tests its Rust policies with.
pub const POLICIES_LOCK: &str = include_str!("../../../../policies/examples/Cargo.lock");

/// The freestanding runtime of the C example (`policies/examples/ceiling-c`).
pub const C_RUNTIME: [(&str, &str); 3] = [
    (
        "runtime.c",
        include_str!("../../../../policies/examples/ceiling-c/runtime.c"),
    ),
    (
        "libc/stdlib.h",
        include_str!("../../../../policies/examples/ceiling-c/libc/stdlib.h"),
    ),
    (
        "libc/string.h",
        include_str!("../../../../policies/examples/ceiling-c/libc/string.h"),
    ),
];

/// Cases every language's template passes: the templates decide alike.
pub const ROUTER_CASES: &str = include_str!("../../templates/policy/cases/router.json");
pub const THROTTLE_CASES: &str = include_str!("../../templates/policy/cases/throttle.json");

pub mod rust {
    pub const CARGO_TOML: &str = include_str!("../../templates/policy/rust/Cargo.toml");
    pub const ROUTER: &str = include_str!("../../templates/policy/rust/router.rs");
    pub const THROTTLE: &str = include_str!("../../templates/policy/rust/throttle.rs");
    pub const README: &str = include_str!("../../templates/policy/rust/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/policy/rust/gitignore");
}

pub mod c {
    pub const ROUTER: &str = include_str!("../../templates/policy/c/router.c");
    pub const THROTTLE: &str = include_str!("../../templates/policy/c/throttle.c");
    pub const MANIFEST: &str = include_str!("../../templates/policy/c/runway-policy.toml");
    pub const README: &str = include_str!("../../templates/policy/c/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/policy/c/gitignore");
}

pub mod python {
    pub const ROUTER: &str = include_str!("../../templates/policy/python/router.py");
    pub const THROTTLE: &str = include_str!("../../templates/policy/python/throttle.py");
    pub const MANIFEST: &str = include_str!("../../templates/policy/python/runway-policy.toml");
    pub const README: &str = include_str!("../../templates/policy/python/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/policy/python/gitignore");
}

pub mod typescript {
    pub const ROUTER: &str = include_str!("../../templates/policy/typescript/router.ts");
    pub const THROTTLE: &str = include_str!("../../templates/policy/typescript/throttle.ts");
    /// The contract as JavaScript sees it (`policies/sdk/typescript`).
    pub const CONTRACT: &str =
        include_str!("../../../../policies/sdk/typescript/runway-policy.d.ts");
    pub const TSCONFIG: &str = include_str!("../../templates/policy/typescript/tsconfig.json");
    pub const PACKAGE: &str = include_str!("../../templates/policy/typescript/package.json");
    pub const MANIFEST: &str = include_str!("../../templates/policy/typescript/runway-policy.toml");
    pub const README: &str = include_str!("../../templates/policy/typescript/README.md");
    pub const GITIGNORE: &str = include_str!("../../templates/policy/typescript/gitignore");
}
