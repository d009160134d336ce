//! The setup page's store on a deployed stack: two Secrets Manager secrets the template
//! creates under the stack's key, holding `runway_app_setup`'s documents.
//!
//! - the token secret: `{"status":"pending","token":"..."}` (CloudFormation generates the
//!   token at deploy), then `{"status":"spent"}`;
//! - the App secret: `{"status":"pending"}`, then the App runway made ([`StoredApp`]).
//!
//! Secrets Manager has no compare-and-swap, but a version's id is the request's
//! `ClientRequestToken`, and a version cannot be rewritten with another value
//! (`ResourceExistsException`). So every write names its version after the version it
//! replaces ([`successor_version`]): of two writers that read the same version, the first
//! creates the successor and the second, with a different value, is refused. Storing the App
//! is the setup's claim (only over a pending App, conditional this way); two callbacks at once
//! keep exactly one App and the other is told to delete its own. Spending the token follows,
//! written the same way: a repeat writes the same value to the same version, which Secrets
//! Manager treats as done, so the token is spent once.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use runway_app_setup::{SetupStore, StoreError, StoredApp, TokenState, already_stored};
use sha2::{Digest, Sha256};
use tracing::info;

/// The version id a write over `previous` takes: a UUID-shaped digest of it, so every writer
/// over the same version names the same successor.
pub fn successor_version(previous: &str, what: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"runway-setup-successor/1\n")
        .chain_update(what.as_bytes())
        .chain_update(b"\n")
        .chain_update(previous.as_bytes())
        .finalize();
    let hex = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The setup store in Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerSetupStore {
    client: aws_sdk_secretsmanager::Client,
    token_secret: String,
    app_secret: String,
}

/// A secret's current value and version.
struct Current {
    text: String,
    version: String,
}

impl SecretsManagerSetupStore {
    /// The store on the token secret and the App secret (ARNs or names).
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        token_secret: impl Into<String>,
        app_secret: impl Into<String>,
    ) -> SecretsManagerSetupStore {
        SecretsManagerSetupStore {
            client,
            token_secret: token_secret.into(),
            app_secret: app_secret.into(),
        }
    }

    async fn current(&self, id: &str) -> Result<Current, StoreError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|error| {
                StoreError::Unavailable(format!(
                    "cannot read secret {id}: {}",
                    DisplayErrorContext(&error)
                ))
            })?;
        match (output.secret_string, output.version_id) {
            (Some(text), Some(version)) => Ok(Current { text, version }),
            _ => Err(StoreError::Malformed(format!(
                "secret {id} has no current string value: the stack creates it with one"
            ))),
        }
    }

    /// Writes `text` as the successor of `previous`; `Conflict` when another value took it.
    async fn replace(
        &self,
        id: &str,
        previous: &Current,
        what: &str,
        text: String,
    ) -> Result<(), StoreError> {
        let version = successor_version(&previous.version, what);
        let written = self
            .client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(&version)
            .secret_string(text)
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(PutSecretValueError::ResourceExistsException(_)) => Err(already_stored()),
                Some(other) if other.code() == Some("AccessDeniedException") => {
                    Err(StoreError::Unavailable(format!(
                        "cannot write secret {id}: access denied (the setup function's role \
                         needs secretsmanager:PutSecretValue on it): {}",
                        DisplayErrorContext(&error)
                    )))
                }
                _ => Err(StoreError::Unavailable(format!(
                    "cannot write secret {id}: {}",
                    DisplayErrorContext(&error)
                ))),
            },
        }
    }
}

#[async_trait::async_trait]
impl SetupStore for SecretsManagerSetupStore {
    async fn token(&self) -> Result<TokenState, StoreError> {
        TokenState::from_json(&self.current(&self.token_secret).await?.text)
    }

    async fn app(&self) -> Result<Option<StoredApp>, StoreError> {
        StoredApp::from_json(&self.current(&self.app_secret).await?.text)
    }

    async fn save_app(&self, app: &StoredApp) -> Result<(), StoreError> {
        let current = self.current(&self.app_secret).await?;
        if StoredApp::from_json(&current.text)?.is_some() {
            return Err(already_stored());
        }
        self.replace(&self.app_secret, &current, "app", app.to_json())
            .await?;
        info!(app_id = app.app_id, "GitHub App stored in Secrets Manager");
        Ok(())
    }

    async fn spend_token(&self) -> Result<(), StoreError> {
        let current = self.current(&self.token_secret).await?;
        if TokenState::from_json(&current.text)? == TokenState::Spent {
            return Ok(());
        }
        self.replace(
            &self.token_secret,
            &current,
            "spent",
            TokenState::Spent.to_json(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Secrets Manager takes 32 to 64 characters; the same version always has the same
        /// successor, and different versions different ones.
        #[test]
        fn successors_are_valid_request_tokens(a in "[a-f0-9-]{1,64}", b in "[a-f0-9-]{1,64}") {
            let successor = successor_version(&a, "app");
            prop_assert_eq!(successor.len(), 36);
            prop_assert_eq!(&successor, &successor_version(&a, "app"));
            prop_assert_ne!(&successor, &successor_version(&a, "spent"));
            if a != b {
                prop_assert_ne!(successor, successor_version(&b, "app"));
            }
        }
    }
}
