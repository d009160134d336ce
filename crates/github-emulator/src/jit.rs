//! The emulator's just-in-time runner configuration: base64 of a JSON document naming the
//! runner, the emulator's runner endpoint and the runner's own credential. (A real JIT config
//! is a different base64 document; only the emulator and `runway runner-sim` read this one.)

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::matching::Scope;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitConfig {
    pub runner_id: u64,
    pub runner_name: String,
    pub labels: Vec<String>,
    pub scope: Scope,
    /// The emulator's base URL.
    pub url: String,
    /// Where the runner protocol is served (`{url}/_runner`).
    pub runner_endpoint: String,
    /// Authenticates this runner (and only it) on the runner protocol.
    pub credential: String,
    pub work_folder: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JitConfigError {
    #[error(
        "the JIT config is not base64: {0}; pass the encoded_jit_config string exactly as the emulator returned it"
    )]
    NotBase64(#[from] base64::DecodeError),
    #[error("the JIT config is not a runway emulator JIT config: {0}")]
    NotJson(#[from] serde_json::Error),
}

impl JitConfig {
    pub fn encode(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    pub fn decode(encoded: &str) -> Result<JitConfig, JitConfigError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim())?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoding_round_trips(
            runner_id in any::<u64>(),
            name in "\\PC{0,20}",
            labels in proptest::collection::vec("[a-zA-Z0-9-]{1,10}", 0..5),
        ) {
            let config = JitConfig {
                runner_id,
                runner_name: name,
                labels,
                scope: Scope::organization("octo-org"),
                url: "http://127.0.0.1:1".into(),
                runner_endpoint: "http://127.0.0.1:1/_runner".into(),
                credential: "secret".into(),
                work_folder: "_work".into(),
            };
            prop_assert_eq!(JitConfig::decode(&config.encode()).unwrap(), config);
        }

        #[test]
        fn garbage_is_refused_not_panicked_on(input in "\\PC{0,64}") {
            let _ = JitConfig::decode(&input);
        }
    }

    #[test]
    fn bad_configs_are_explained() {
        assert!(matches!(
            JitConfig::decode("%%%"),
            Err(JitConfigError::NotBase64(_))
        ));
        let not_json = base64::engine::general_purpose::STANDARD.encode("hello");
        assert!(matches!(
            JitConfig::decode(&not_json),
            Err(JitConfigError::NotJson(_))
        ));
    }
}
