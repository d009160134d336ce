//! Loading a policy from a file: a component (`.wasm`) or an artefact compiled ahead of time
//! (`.cwasm`), told apart by content, with errors that name the file.

use std::path::Path;

use wasmtime::Engine;

use crate::engine::{Policy, PolicyBounds, PolicyEngine};
use crate::error::PolicyError;

/// What a policy file holds, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileFormat {
    /// WebAssembly (`\0asm`): compiled on load; [`PolicyEngine::load`] refuses anything but
    /// a component.
    WebAssembly,
    /// wasmtime's native artefact (an ELF object with its engine section).
    Precompiled,
    Unknown,
}

fn file_format(bytes: &[u8]) -> FileFormat {
    if bytes.starts_with(b"\0asm") {
        FileFormat::WebAssembly
    } else if Engine::detect_precompiled(bytes).is_some() {
        FileFormat::Precompiled
    } else {
        FileFormat::Unknown
    }
}

fn named_cwasm(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("cwasm"))
}

impl PolicyEngine {
    /// Loads a policy file: a component (`.wasm`, compiled on load and cached as
    /// [`PolicyEngine::load`] does) or an artefact compiled ahead of time by
    /// `runway policy compile` (`.cwasm`, loaded in well under a millisecond). The content
    /// decides, not the name. Errors name the file and say what to do; a `.cwasm` built for
    /// another architecture or another runway version is refused with the advice to compile
    /// it again.
    ///
    /// A `.cwasm` is native code, run as is: a policy file is trusted as the program itself
    /// is, so name only files this deployment built (a layer of the function, a path in the
    /// operator's configuration). Bytes from anywhere else (S3, an upload) go through
    /// [`PolicyEngine::load`], which takes components only.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        self.load_file_with(path, &PolicyBounds::default())
    }

    /// As [`PolicyEngine::load_file`], with the policy's own bounds.
    pub fn load_file_with(
        &self,
        path: impl AsRef<Path>,
        bounds: &PolicyBounds,
    ) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let loaded = match file_format(&bytes) {
            FileFormat::WebAssembly => {
                if named_cwasm(path) {
                    tracing::warn!(
                        path = %path.display(),
                        "the policy file is named .cwasm but holds a WebAssembly component: \
                         it is compiled on load; compile it with `runway policy compile` for \
                         a fast start"
                    );
                }
                self.load_with(&bytes, bounds)
            }
            // SAFETY: a policy file is trusted as the program is (see above); wasmtime still
            // refuses an artefact that another version, architecture or setting produced.
            FileFormat::Precompiled => unsafe { self.load_precompiled_with(&bytes, bounds) },
            FileFormat::Unknown if named_cwasm(path) => Err(PolicyError::Incompatible {
                reason: "the file is not a precompiled policy".into(),
            }),
            FileFormat::Unknown => Err(PolicyError::Malformed {
                reason: "the file is neither a WebAssembly component (.wasm) nor a policy \
                         compiled with `runway policy compile` (.cwasm)"
                    .into(),
            }),
        };
        loaded.map_err(|error| PolicyError::File {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::Precompiled;

    #[test]
    fn formats_are_told_apart_by_content() {
        assert_eq!(file_format(b"\0asm\x0d\0\x01\0"), FileFormat::WebAssembly);
        assert_eq!(file_format(b"\0asm\x01\0\0\0"), FileFormat::WebAssembly);
        assert_eq!(file_format(b"\x7fELF not wasmtime"), FileFormat::Unknown);
        assert_eq!(file_format(b""), FileFormat::Unknown);
        assert!(named_cwasm(Path::new("/opt/policies/router.CWASM")));
        assert!(!named_cwasm(Path::new("/opt/policies/router.wasm")));
        assert!(!named_cwasm(Path::new("cwasm")));
    }

    #[test]
    fn precompiled_artefacts_are_detected() {
        let engine = Engine::default();
        let artefact = engine
            .precompile_component(&wat_component())
            .expect("an empty component compiles");
        assert_eq!(file_format(&artefact), FileFormat::Precompiled);
        assert!(matches!(
            Engine::detect_precompiled(&artefact),
            Some(Precompiled::Component)
        ));
    }

    /// The smallest component: `(component)`.
    fn wat_component() -> Vec<u8> {
        b"\0asm\x0d\0\x01\0".to_vec()
    }
}
