//! `runway policy new` and `runway policy build`: policy projects outside runway's repository.
//!
//! A project gets everything it needs from the `runway` binary, so it builds offline and
//! against the contract this runway runs: `policy new` writes the WIT contract
//! (`policies/wit/policy.wit`) and, for Rust, the SDK (`policies/sdk/rust`, not on crates.io)
//! into the project, both embedded here at compile time ([`embedded`]). A path dependency on
//! a runway checkout instead would break for anyone with only the binary, and would tie the
//! project to whatever that checkout holds later.
//!
//! Each language is a [`Language`]: the files `policy new` writes (a module's `files`) and the
//! steps `policy build` runs. Rust and C build a core module, which [`component::componentize`]
//! turns into a component that imports nothing; Python (componentize-py) and TypeScript (tsc,
//! then componentize-js) tools write a component themselves, one that imports only the
//! deterministic WASI runway offers language runtimes. Templates live under
//! `crates/cli/templates/policy/`; projects that are not Cargo crates name their language in
//! `runway-policy.toml` ([`Manifest`]).

pub mod c;
pub mod component;
pub mod embedded;
pub mod python;
pub mod rust;
pub mod typescript;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use runway_policy_host::World;

/// The file that names a non-Cargo project's language, world and name.
pub const MANIFEST: &str = "runway-policy.toml";

/// A language policies can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    C,
    Python,
    #[value(alias = "ts")]
    Typescript,
}

impl Language {
    pub const ALL: [Language; 4] = [
        Language::Rust,
        Language::C,
        Language::Python,
        Language::Typescript,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::Python => "python",
            Language::Typescript => "typescript",
        }
    }

    /// The language `name` names in a manifest, or an error listing the known ones.
    pub fn from_name(name: &str) -> anyhow::Result<Language> {
        Language::ALL
            .into_iter()
            .find(|language| language.name().eq_ignore_ascii_case(name.trim()))
            .with_context(|| {
                format!(
                    "unknown policy language {name:?}; runway knows {}",
                    Language::known()
                )
            })
    }

    /// The known languages, for messages: `rust, c`.
    pub fn known() -> String {
        Language::ALL
            .iter()
            .map(|language| language.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The files of a new project, relative to its directory.
    fn files(self, name: &str, world: World) -> anyhow::Result<Vec<(PathBuf, String)>> {
        match self {
            Language::Rust => rust::files(name, world),
            Language::C => Ok(c::files(name, world)),
            Language::Python => Ok(python::files(name, world)),
            Language::Typescript => Ok(typescript::files(name, world)),
        }
    }

    /// Builds `project` into the component `out_dir/<name>.wasm` and returns its path.
    fn build(self, project: &Project, out_dir: &Path) -> anyhow::Result<PathBuf> {
        match self {
            Language::Rust => rust::build(project, out_dir),
            Language::C => c::build(project, out_dir),
            Language::Python => python::build(project, out_dir),
            Language::Typescript => typescript::build(project, out_dir),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `runway-policy.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub language: String,
    pub world: World,
}

/// A policy project found on disk.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub language: Language,
    /// The policy's name (its component is `<name>.wasm`); Rust takes its package's.
    pub name: Option<String>,
    pub world: Option<World>,
}

impl Project {
    /// The project in `dir`: a `runway-policy.toml` names its language; a `Cargo.toml` alone
    /// makes it Rust.
    pub fn find(dir: &Path) -> anyhow::Result<Project> {
        let manifest_path = dir.join(MANIFEST);
        if manifest_path.is_file() {
            let text = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?;
            let manifest: Manifest = toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a project manifest (name, language, world)",
                    manifest_path.display()
                )
            })?;
            let language = Language::from_name(&manifest.language)
                .with_context(|| format!("in {}", manifest_path.display()))?;
            check_name(&manifest.name)
                .with_context(|| format!("in {}", manifest_path.display()))?;
            return Ok(Project {
                dir: dir.to_path_buf(),
                language,
                name: Some(manifest.name),
                world: Some(manifest.world),
            });
        }
        if dir.join("Cargo.toml").is_file() {
            return Ok(Project {
                dir: dir.to_path_buf(),
                language: Language::Rust,
                name: None,
                world: None,
            });
        }
        bail!(
            "{} holds no policy project: no {MANIFEST} and no Cargo.toml; \
             `runway policy new --lang {} NAME` makes one",
            dir.display(),
            Language::known().replace(", ", "|")
        )
    }

    pub fn build(&self, out_dir: &Path) -> anyhow::Result<PathBuf> {
        self.language.build(self, out_dir)
    }
}

/// The world's name in the contract, as bindings generators take it.
pub(crate) fn world_name(world: World) -> &'static str {
    match world {
        World::Router => "router",
        World::Throttle => "throttle",
    }
}

/// A policy name: what its crate, its files and its component are called.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "{name:?} is not a policy name: use lower-case letters, digits, `-` and `_`, \
             starting with a letter, at most 64 characters (e.g. my-router)"
        );
    }
    Ok(())
}

/// Writes a new project for `name` into `dir` (created if missing; refused unless empty).
/// Returns the files written, relative to `dir`.
pub fn new_project(
    dir: &Path,
    name: &str,
    language: Language,
    world: World,
) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name)?;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: `runway policy new` writes a new project only into a \
                     new or empty directory; choose another with --dir",
                    dir.display()
                );
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", dir.display()));
        }
    }
    let files = language.files(name, world)?;
    for (relative, content) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(relative, _)| relative).collect())
}

/// Fills a template's `{{key}}` placeholders.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

/// The tool the environment variable `var` names, else the first of `names` on the PATH.
pub(crate) fn find_tool(var: Option<&str>, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = var.and_then(std::env::var_os).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs `command`, failing with what it printed when it fails.
pub(crate) fn run(command: &mut std::process::Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what} ({:?})", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        check_name("my-router").unwrap();
        check_name("p_2").unwrap();
        for bad in ["", "My", "2x", "a b", "a/b", "ü", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_languages_list_the_known_ones() {
        assert_eq!(Language::from_name(" C ").unwrap(), Language::C);
        let error = Language::from_name("cobol").unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown policy language \"cobol\"; runway knows rust, c, python, typescript"
        );
    }

    #[test]
    fn new_refuses_a_directory_that_is_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let error = new_project(dir.path(), "p", Language::C, World::Router)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not empty"), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
        let error = new_project(
            &dir.path().join("x"),
            "Bad Name",
            Language::C,
            World::Router,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("is not a policy name"), "{error}");
    }

    #[test]
    fn projects_are_found_by_their_manifest() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Project::find(dir.path())
                .unwrap_err()
                .to_string()
                .contains("holds no policy project")
        );
        new_project(dir.path(), "ceiling", Language::C, World::Throttle).unwrap();
        let project = Project::find(dir.path()).unwrap();
        assert_eq!(project.language, Language::C);
        assert_eq!(project.world, Some(World::Throttle));
        assert_eq!(project.name.as_deref(), Some("ceiling"));
        std::fs::write(
            dir.path().join(MANIFEST),
            "name = \"x\"\nlanguage = \"go\"\nworld = \"router\"\n",
        )
        .unwrap();
        let error = format!("{:#}", Project::find(dir.path()).unwrap_err());
        assert!(
            error.contains("runway knows rust, c, python, typescript"),
            "{error}"
        );

        let dir = tempfile::tempdir().unwrap();
        let written = new_project(dir.path(), "sizer", Language::Rust, World::Router).unwrap();
        assert!(written.contains(&PathBuf::from("sdk/rust/src/lib.rs")));
        assert!(written.contains(&PathBuf::from("wit/policy.wit")));
        assert_eq!(Project::find(dir.path()).unwrap().language, Language::Rust);
    }
}
