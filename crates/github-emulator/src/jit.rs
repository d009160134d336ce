//! The emulator's just-in-time runner configuration, shaped like GitHub's `encoded_jit_config`:
//! base64 of a JSON object whose values `.runner`, `.credentials` and `.credentials_rsaparams`
//! are themselves base64 of JSON documents (the files the actions runner would write).
//!
//! `.runner` carries GitHub's fields (`AgentId`, `AgentName`, `PoolId`, `ServerUrl`,
//! `GitHubUrl`, `WorkFolder`, ...) plus the emulator's `Labels` and `Scope`; `.credentials`
//! carries the runner's own credential for the emulator's runner protocol as its access token;
//! `.credentials_rsaparams` is random key material in the layout of an RSA key's parameters.
//! GitHub's configs are about 4 KB and growing; the emulator sizes its key parameters like a
//! 3072-bit key's, so every config it issues is over 5 KB and every test carries one past the
//! 4,096 characters an SSM Standard-tier parameter holds.

use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::matching::Scope;

/// The bytes of the modulus and private exponent of the key material (3072 bits).
const KEY_BYTES: usize = 384;

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
    #[error("the JIT config has no {0}: pass the encoded_jit_config the emulator returned")]
    Missing(&'static str),
}

/// The `.runner` document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunnerSettings {
    agent_id: u64,
    agent_name: String,
    pool_id: u64,
    pool_name: String,
    disable_update: bool,
    ephemeral: bool,
    server_url: String,
    server_url_v2: String,
    use_v2_flow: bool,
    git_hub_url: String,
    work_folder: String,
    labels: Vec<String>,
    scope: Scope,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn random_b64(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    rand::rng().fill(&mut buffer[..]);
    b64().encode(buffer)
}

/// base64 of a JSON document.
fn wrap(document: &impl Serialize) -> String {
    // Serializing plain strings, numbers and maps cannot fail.
    b64().encode(serde_json::to_vec(document).unwrap_or_default())
}

fn unwrap_document(outer: &Value, key: &'static str) -> Result<Value, JitConfigError> {
    let encoded = outer
        .get(key)
        .and_then(Value::as_str)
        .ok_or(JitConfigError::Missing(key))?;
    Ok(serde_json::from_slice(&b64().decode(encoded)?)?)
}

impl JitConfig {
    pub fn encode(&self) -> String {
        let runner = RunnerSettings {
            agent_id: self.runner_id,
            agent_name: self.runner_name.clone(),
            pool_id: 1,
            pool_name: "Default".to_string(),
            disable_update: false,
            ephemeral: true,
            server_url: self.runner_endpoint.clone(),
            server_url_v2: self.runner_endpoint.clone(),
            use_v2_flow: true,
            git_hub_url: self.url.clone(),
            work_folder: self.work_folder.clone(),
            labels: self.labels.clone(),
            scope: self.scope.clone(),
        };
        let client_id = uuid::Uuid::new_v4().to_string();
        let credentials = json!({
            "Scheme": "OAuth",
            "Data": {
                "clientId": client_id,
                "authorizationUrl": format!("{}/_apis/oauth2/token/{client_id}", self.runner_endpoint),
                "requireFipsCryptography": "True",
                "accessToken": self.credential,
            },
        });
        let half = KEY_BYTES / 2;
        let rsa = json!({
            "d": random_b64(KEY_BYTES),
            "dp": random_b64(half),
            "dq": random_b64(half),
            "exponent": "AQAB",
            "inverseQ": random_b64(half),
            "modulus": random_b64(KEY_BYTES),
            "p": random_b64(half),
            "q": random_b64(half),
        });
        wrap(&json!({
            ".runner": wrap(&runner),
            ".credentials": wrap(&credentials),
            ".credentials_rsaparams": wrap(&rsa),
        }))
    }

    pub fn decode(encoded: &str) -> Result<JitConfig, JitConfigError> {
        let outer: Value = serde_json::from_slice(&b64().decode(encoded.trim())?)?;
        let runner: RunnerSettings = serde_json::from_value(unwrap_document(&outer, ".runner")?)?;
        let credentials = unwrap_document(&outer, ".credentials")?;
        let credential = credentials
            .pointer("/Data/accessToken")
            .and_then(Value::as_str)
            .ok_or(JitConfigError::Missing(".credentials Data.accessToken"))?;
        unwrap_document(&outer, ".credentials_rsaparams")?;
        Ok(JitConfig {
            runner_id: runner.agent_id,
            runner_name: runner.agent_name,
            labels: runner.labels,
            scope: runner.scope,
            url: runner.git_hub_url,
            runner_endpoint: runner.server_url,
            credential: credential.to_string(),
            work_folder: runner.work_folder,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(runner_id: u64, name: String, labels: Vec<String>) -> JitConfig {
        JitConfig {
            runner_id,
            runner_name: name,
            labels,
            scope: Scope::organization("octo-org"),
            url: "http://127.0.0.1:1".into(),
            runner_endpoint: "http://127.0.0.1:1/_runner".into(),
            credential: "secret".into(),
            work_folder: "_work".into(),
        }
    }

    proptest! {
        #[test]
        fn encoding_round_trips(
            runner_id in any::<u64>(),
            name in "\\PC{0,20}",
            labels in proptest::collection::vec("[a-zA-Z0-9-]{1,10}", 0..5),
        ) {
            let config = config(runner_id, name, labels);
            prop_assert_eq!(JitConfig::decode(&config.encode()).unwrap(), config);
        }

        #[test]
        fn garbage_is_refused_not_panicked_on(input in "\\PC{0,64}") {
            let _ = JitConfig::decode(&input);
        }
    }

    #[test]
    fn a_config_is_shaped_and_sized_like_github_s() {
        let config = config(
            42,
            "runway-12877621891-a1-1".into(),
            vec!["self-hosted".into(), "linux".into(), "x64".into()],
        );
        let encoded = config.encode();
        // Over SSM's Standard-tier limit, within the Advanced tier's 8 KB.
        assert!(encoded.len() >= 4_500, "{} bytes", encoded.len());
        assert!(encoded.len() <= 8_192, "{} bytes", encoded.len());
        let outer: Value = serde_json::from_slice(&b64().decode(&encoded).unwrap()).unwrap();
        let mut keys: Vec<&str> = outer
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [".credentials", ".credentials_rsaparams", ".runner"],
            "{outer}"
        );
        let runner = unwrap_document(&outer, ".runner").unwrap();
        assert_eq!(runner["AgentName"], "runway-12877621891-a1-1");
        assert_eq!(runner["AgentId"], 42);
        assert_eq!(runner["Ephemeral"], true);
        let credentials = unwrap_document(&outer, ".credentials").unwrap();
        assert_eq!(credentials["Scheme"], "OAuth");
        let rsa = unwrap_document(&outer, ".credentials_rsaparams").unwrap();
        assert_eq!(rsa["exponent"], "AQAB");
        let modulus = b64().decode(rsa["modulus"].as_str().unwrap()).unwrap();
        assert_eq!(modulus.len(), KEY_BYTES);
        // Two configs for the same runner carry different key material.
        assert_ne!(encoded, config.encode());
    }

    #[test]
    fn bad_configs_are_explained() {
        assert!(matches!(
            JitConfig::decode("%%%"),
            Err(JitConfigError::NotBase64(_))
        ));
        let not_json = b64().encode("hello");
        assert!(matches!(
            JitConfig::decode(&not_json),
            Err(JitConfigError::NotJson(_))
        ));
        let no_runner = b64().encode(r#"{".credentials": ""}"#);
        assert!(matches!(
            JitConfig::decode(&no_runner),
            Err(JitConfigError::Missing(".runner"))
        ));
    }
}
