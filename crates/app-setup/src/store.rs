//! Where the setup token and the App's credentials live: a trait with an in-memory
//! implementation here (`runway local`, tests) and a Secrets Manager one in `runway-setup`.
//!
//! Both keep the same JSON documents, so the stack can create them before any setup:
//! - the token: `{"status": "pending", "token": "..."}`, then `{"status": "spent"}`;
//! - the App: `{"status": "pending"}` until set up, then [`StoredApp`]'s fields.

use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The setup token's state.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenState {
    /// Not used yet: setting up takes it.
    Pending(String),
    /// Used by a setup that completed: the page is closed.
    Spent,
}

impl fmt::Debug for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenState::Pending(_) => f.write_str("Pending([redacted])"),
            TokenState::Spent => f.write_str("Spent"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum TokenDocument {
    Pending { token: String },
    Spent,
}

impl TokenState {
    /// Reads the token document.
    pub fn from_json(text: &str) -> Result<TokenState, StoreError> {
        match serde_json::from_str(text) {
            Ok(TokenDocument::Pending { token }) if !token.trim().is_empty() => {
                Ok(TokenState::Pending(token.trim().to_owned()))
            }
            Ok(TokenDocument::Spent) => Ok(TokenState::Spent),
            _ => Err(StoreError::Malformed(
                "the setup token secret is not {\"status\": \"pending\", \"token\": \"...\"} \
                 or {\"status\": \"spent\"}"
                    .into(),
            )),
        }
    }

    pub fn to_json(&self) -> String {
        let document = match self {
            TokenState::Pending(token) => TokenDocument::Pending {
                token: token.clone(),
            },
            TokenState::Spent => TokenDocument::Spent,
        };
        serde_json::to_string(&document).unwrap_or_default()
    }
}

/// A GitHub App made by the setup page, as runway keeps it. `Debug` shows no credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredApp {
    pub app_id: u64,
    pub slug: String,
    /// The App's page (`https://github.com/apps/SLUG`).
    pub html_url: String,
    /// The REST API the App lives on.
    pub api_url: String,
    /// The App's private key (PEM).
    pub private_key: String,
    pub webhook_secret: String,
}

impl fmt::Debug for StoredApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredApp")
            .field("app_id", &self.app_id)
            .field("slug", &self.slug)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl StoredApp {
    /// Where to install it: `{html_url}/installations/new`.
    pub fn install_url(&self) -> String {
        format!("{}/installations/new", self.html_url.trim_end_matches('/'))
    }

    /// Reads the App document: `None` while setup is pending.
    pub fn from_json(text: &str) -> Result<Option<StoredApp>, StoreError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| StoreError::Malformed("the GitHub App secret is not JSON".into()))?;
        if value.get("status").and_then(|s| s.as_str()) == Some("pending") {
            return Ok(None);
        }
        serde_json::from_value(value).map(Some).map_err(|error| {
            StoreError::Malformed(format!(
                "the GitHub App secret is not an App runway stored ({})",
                // The error names a field, never a value.
                error
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
            ))
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The document of an App not set up yet.
    pub const PENDING: &'static str = r#"{"status": "pending"}"#;
}

/// Why the store could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Malformed(String),
    #[error("the setup store is not reachable: {0}")]
    Unavailable(String),
    /// Another setup stored its App first (two callbacks at once, or a setup done already):
    /// this App was not kept.
    #[error("{0}")]
    Conflict(String),
}

/// Where the token and the App live.
#[async_trait::async_trait]
pub trait SetupStore: Send + Sync {
    async fn token(&self) -> Result<TokenState, StoreError>;
    /// The App, once set up.
    async fn app(&self) -> Result<Option<StoredApp>, StoreError>;
    /// Stores `app` only while no App is stored: of two setups completing at once, exactly
    /// one is kept and the other gets [`StoreError::Conflict`]. This is the setup's claim.
    async fn save_app(&self, app: &StoredApp) -> Result<(), StoreError>;
    /// Marks the token spent (after the App is stored); spending a spent token is no change.
    async fn spend_token(&self) -> Result<(), StoreError>;
}

/// The conflict of an App stored while another was.
pub fn already_stored() -> StoreError {
    StoreError::Conflict("another GitHub App was stored first (a setup completed meanwhile)".into())
}

/// The store of `runway local` and the tests: in memory.
#[derive(Debug)]
pub struct MemorySetupStore {
    inner: Mutex<(TokenState, Option<StoredApp>)>,
}

impl MemorySetupStore {
    /// A store whose token is `token`, with no App yet.
    pub fn new(token: impl Into<String>) -> MemorySetupStore {
        MemorySetupStore {
            inner: Mutex::new((TokenState::Pending(token.into()), None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (TokenState, Option<StoredApp>)> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl SetupStore for MemorySetupStore {
    async fn token(&self) -> Result<TokenState, StoreError> {
        Ok(self.lock().0.clone())
    }

    async fn app(&self) -> Result<Option<StoredApp>, StoreError> {
        Ok(self.lock().1.clone())
    }

    async fn save_app(&self, app: &StoredApp) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.1.is_some() {
            return Err(already_stored());
        }
        inner.1 = Some(app.clone());
        Ok(())
    }

    async fn spend_token(&self) -> Result<(), StoreError> {
        self.lock().0 = TokenState::Spent;
        Ok(())
    }
}

/// A new setup token: 32 random letters and digits.
pub fn new_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_read_back_and_hide_their_secrets() {
        let pending = TokenState::Pending("tok".into());
        assert_eq!(TokenState::from_json(&pending.to_json()).unwrap(), pending);
        assert_eq!(
            TokenState::from_json(r#"{"status":"spent"}"#).unwrap(),
            TokenState::Spent
        );
        // What CloudFormation's GenerateSecretString makes from the stack's template.
        assert_eq!(
            TokenState::from_json(r#"{"status":"pending","token":"AbC123"}"#).unwrap(),
            TokenState::Pending("AbC123".into())
        );
        assert!(TokenState::from_json("tok").is_err());
        assert!(!format!("{pending:?}").contains("tok"));

        assert_eq!(StoredApp::from_json(StoredApp::PENDING).unwrap(), None);
        let app = StoredApp {
            app_id: 7,
            slug: "runway".into(),
            html_url: "https://github.com/apps/runway".into(),
            api_url: "https://api.github.com".into(),
            private_key: "-----BEGIN RSA PRIVATE KEY-----".into(),
            webhook_secret: "whsec".into(),
        };
        assert_eq!(
            StoredApp::from_json(&app.to_json()).unwrap(),
            Some(app.clone())
        );
        let shown = format!("{app:?}");
        assert!(
            !shown.contains("PRIVATE") && !shown.contains("whsec"),
            "{shown}"
        );
        let error = StoredApp::from_json(r#"{"app_id": 1, "pem": "SECRETVALUE"}"#)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("SECRETVALUE"), "{error}");
        assert_eq!(
            app.install_url(),
            "https://github.com/apps/runway/installations/new"
        );
        assert_eq!(new_token().len(), 32);
    }

    #[tokio::test]
    async fn the_first_app_stored_is_kept() {
        let store = MemorySetupStore::new("tok");
        let app = |id: u64| StoredApp {
            app_id: id,
            slug: format!("runway-{id}"),
            html_url: "https://github.com/apps/runway".into(),
            api_url: "https://api.github.com".into(),
            private_key: "key".into(),
            webhook_secret: "whsec".into(),
        };
        store.save_app(&app(1)).await.unwrap();
        assert!(matches!(
            store.save_app(&app(2)).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.app().await.unwrap().unwrap().app_id, 1);
        store.spend_token().await.unwrap();
        store.spend_token().await.unwrap();
        assert_eq!(store.token().await.unwrap(), TokenState::Spent);
    }
}
