//! GitHub App and token authentication.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::error::GitHubError;
use crate::secret::Secret;

/// How long an App JWT lives. GitHub refuses more than 10 minutes; 9 leaves room for drift.
pub const JWT_LIFETIME: Duration = Duration::minutes(9);
/// How far `iat` is back-dated, as GitHub recommends against clock drift.
pub const JWT_BACKDATE: Duration = Duration::seconds(60);
/// An installation token is replaced this long before it expires.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::minutes(5);

/// How runway authenticates to GitHub.
#[derive(Clone)]
pub enum Credentials {
    /// A GitHub App installation (recommended): short-lived tokens, fine-grained permissions.
    App(AppCredentials),
    /// A personal access token (classic or fine-grained) or any other bearer token.
    Token(Secret),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::App(app) => f.debug_tuple("App").field(app).finish(),
            Credentials::Token(_) => f.write_str("Token([redacted])"),
        }
    }
}

/// A GitHub App's identity and the installations runway acts for.
#[derive(Clone)]
pub struct AppCredentials {
    app_id: String,
    key: EncodingKey,
    /// The first served installation: it acts where a request names no owner (an
    /// enterprise's runners).
    installation_id: u64,
    /// Every installation runway may act for, `installation_id` first.
    served: Arc<[u64]>,
    /// Every installation of the App is served (an App made for this runway alone, with no
    /// installation list given): each request acts for the installation on its owner.
    any_installation: bool,
}

impl AppCredentials {
    /// `app_id`: the App's id (or client id); `private_key_pem`: the App's private key as
    /// GitHub issues it (PKCS#1 `BEGIN RSA PRIVATE KEY`, or PKCS#8).
    pub fn new(
        app_id: impl Into<String>,
        private_key_pem: &[u8],
        installation_id: u64,
    ) -> Result<Self, GitHubError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem).map_err(|err| GitHubError::Config {
            message: format!(
                "the GitHub App private key is not an RSA PEM key ({err}); use the .pem file GitHub generated"
            ),
        })?;
        Ok(AppCredentials {
            app_id: app_id.into(),
            key,
            installation_id,
            served: Arc::from([installation_id]),
            any_installation: false,
        })
    }

    /// The same App serving every installation it has: each request acts for the
    /// installation on its repository's or organization's owner, found when first needed.
    /// A request naming no owner (an enterprise's runners) acts for the installation the
    /// credentials were made with.
    pub fn serving_any(&self) -> AppCredentials {
        AppCredentials {
            any_installation: true,
            ..self.clone()
        }
    }

    /// Whether every installation of the App is served ([`AppCredentials::serving_any`]).
    pub fn serves_any(&self) -> bool {
        self.any_installation
    }

    /// Whether runway acts for installation `id`.
    pub fn serves(&self, id: u64) -> bool {
        self.any_installation || self.served.contains(&id)
    }

    /// The same App serving several of its installations (one per organization or user it is
    /// installed on): each request acts for the installation on its repository's or
    /// organization's owner, and an owner whose installation is not among `installations` is
    /// refused. The first one acts where a request names no owner. An empty list changes
    /// nothing.
    pub fn serving(&self, installations: &[u64]) -> AppCredentials {
        let mut served: Vec<u64> = Vec::with_capacity(installations.len());
        for id in installations {
            if !served.contains(id) {
                served.push(*id);
            }
        }
        match served.first() {
            Some(first) => AppCredentials {
                installation_id: *first,
                served: Arc::from(served),
                any_installation: false,
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// Every installation this App acts for, the default one first.
    pub fn installations(&self) -> &[u64] {
        &self.served
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn installation_id(&self) -> u64 {
        self.installation_id
    }

    /// The same App acting for one of its installations only.
    pub fn with_installation(&self, installation_id: u64) -> AppCredentials {
        AppCredentials {
            installation_id,
            served: Arc::from([installation_id]),
            any_installation: false,
            ..self.clone()
        }
    }

    /// A JWT for the App itself (RS256), valid from `now - 60 s` for nine minutes.
    ///
    /// Signed here rather than by octocrab's `AppAuth`: octocrab dates its JWTs by the wall
    /// clock (and would bring a second jsonwebtoken), while runway's are dated by runway's
    /// clock, so the virtual-time tests and a skewed host see the same claims.
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<Secret, GitHubError> {
        let claims = AppClaims {
            iat: (now - JWT_BACKDATE).timestamp(),
            exp: (now + JWT_LIFETIME).timestamp(),
            iss: self.app_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret::new)
            .map_err(|err| GitHubError::Config {
                message: format!("could not sign the GitHub App JWT: {err}"),
            })
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("key", &"[redacted]")
            .field("installations", &self.served)
            .field("any_installation", &self.any_installation)
            .finish()
    }
}

/// The claims of a GitHub App JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppClaims {
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// An installation access token and when it stops working.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InstallationToken {
    pub token: Secret,
    pub expires_at: DateTime<Utc>,
}

impl InstallationToken {
    pub fn fresh_at(&self, now: DateTime<Utc>) -> bool {
        now + TOKEN_REFRESH_MARGIN < self.expires_at
    }
}

/// One installation's token, behind a lock held while it is fetched: concurrent callers for
/// the same installation wait for one fetch, other installations are not held up.
pub(crate) type TokenSlot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

/// Installation tokens by installation id, shared by every handle of a client (see
/// [`crate::RestGitHub::for_installation`]).
#[derive(Debug, Default)]
pub(crate) struct InstallationTokens {
    slots: Mutex<HashMap<u64, TokenSlot>>,
}

impl InstallationTokens {
    pub fn slot(&self, installation_id: u64) -> TokenSlot {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(installation_id)
            .or_default()
            .clone()
    }
}

/// How long the installation found on an owner is trusted before it is looked up again
/// (an App uninstalled and installed again gets a new installation id).
pub(crate) const OWNER_INSTALLATION_TTL: Duration = Duration::hours(1);

/// The installation found on each owner (organization or user, by lower-case login), shared
/// by every handle of a client.
#[derive(Debug, Default)]
pub(crate) struct OwnerInstallations {
    owners: Mutex<HashMap<String, (u64, DateTime<Utc>)>>,
}

impl OwnerInstallations {
    pub fn get(&self, owner: &str, now: DateTime<Utc>) -> Option<u64> {
        let owners = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        owners
            .get(&owner.to_ascii_lowercase())
            .filter(|(_, until)| now < *until)
            .map(|(id, _)| *id)
    }

    pub fn put(&self, owner: &str, installation_id: u64, now: DateTime<Utc>) {
        let mut owners = self
            .owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bounded by the owners runway serves; expired entries go when the map grows.
        if owners.len() >= 10_000 {
            owners.retain(|_, (_, until)| now < *until);
        }
        owners.insert(
            owner.to_ascii_lowercase(),
            (installation_id, now + OWNER_INSTALLATION_TTL),
        );
    }
}

/// `GET /repos/{owner}/{repo}/installation`, `GET /orgs/{org}/installation`: as much of the
/// installation as routing needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InstallationRef {
    pub id: u64,
}
