//! What the emulator knows at start: where it listens, where webhooks go, which accounts exist.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use runway_clock::{SharedClock, SystemClock};

/// Where `workflow_job` webhooks are delivered, and the secret they are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

/// An enterprise account and the organizations that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseConfig {
    pub slug: String,
    pub organizations: Vec<String>,
}

/// The GitHub App runway authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub app_id: u64,
    /// Accepted as the JWT `iss` as well as the app id.
    pub client_id: Option<String>,
    pub slug: String,
    /// The default installation of the app: it covers every configured account not listed in
    /// [`AppConfig::installations`], and it alone reaches enterprise endpoints.
    pub installation_id: u64,
    /// Accounts (organization or user logins) the app is installed on under an installation of
    /// their own, with that installation's id. On GitHub an App is installed per account and
    /// an installation token reaches only its installation's accounts; listing an account here
    /// lets tests see that: a token of another installation gets `404` under
    /// `/repos/{owner}/...` and `403` under `/orgs/{org}/...`. Logins compare
    /// case-insensitively and must name configured accounts. Empty (the default): one
    /// installation covers everything.
    pub installations: BTreeMap<String, u64>,
    /// PEM public key (SPKI or PKCS#1) of the app. When set, JWT signatures are verified;
    /// otherwise only the JWT's shape and claims are checked.
    pub public_key_pem: Option<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            app_id: 1,
            client_id: None,
            slug: "runway".to_string(),
            installation_id: 1,
            installations: BTreeMap::new(),
            public_key_pem: None,
        }
    }
}

impl AppConfig {
    /// The installation that covers `account` (a login, any case).
    pub fn installation_of(&self, account: &str) -> u64 {
        self.installations
            .iter()
            .find(|(login, _)| login.eq_ignore_ascii_case(account))
            .map_or(self.installation_id, |(_, id)| *id)
    }

    /// Whether `id` names an installation of the app.
    pub fn has_installation(&self, id: u64) -> bool {
        id == self.installation_id || self.installations.values().any(|other| *other == id)
    }

    /// The app's installations, each once.
    pub fn installation_ids(&self) -> std::collections::BTreeSet<u64> {
        std::iter::once(self.installation_id)
            .chain(self.installations.values().copied())
            .collect()
    }
}

/// Everything [`crate::Emulator::start`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Default 127.0.0.1:0 (a free port); `runway local` uses 127.0.0.1:8090.
    pub listen: SocketAddr,
    /// Where webhooks go. `None`: deliveries are recorded as skipped.
    pub webhook: Option<WebhookTarget>,
    /// Seeds the choice among several matching idle runners.
    pub seed: u64,
    /// Repositories as `owner/name`. An owner listed in `organizations` is an organization,
    /// any other owner a user.
    pub repositories: Vec<String>,
    pub organizations: Vec<String>,
    pub enterprises: Vec<EnterpriseConfig>,
    pub app: AppConfig,
    /// Personal access tokens accepted on the REST API. Empty: any token is accepted (tokens
    /// the emulator issued through the App endpoints are always accepted).
    pub tokens: Vec<String>,
    /// GitHub Enterprise Server mode: [`crate::EmulatorHandle::api_url`] ends in `/api/v3`.
    /// The REST API answers under both `/` and `/api/v3` either way.
    pub ghes: bool,
    /// The clock for timestamps and runner liveness.
    pub clock: SharedClock,
    /// A connected runner that has not polled for this long shows as `offline`.
    pub runner_offline_after: Duration,
    /// Webhooks in flight at once. GitHub sends deliveries concurrently and promises no
    /// order; the emulator always keeps one job's events in order, and with 1 (the default,
    /// for reproducible tests) every event in the order it happened.
    pub delivery_concurrency: usize,
    /// Deliveries kept for `/_emulator/deliveries` (each with its payload); beyond this the
    /// oldest finished ones are forgotten, as GitHub forgets old deliveries. Pending ones are
    /// always kept.
    pub deliveries_kept: usize,
}

/// [`EmulatorConfig::deliveries_kept`] by default.
pub const DEFAULT_DELIVERIES_KEPT: usize = 10_000;

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook: None,
            seed: 0,
            repositories: vec!["octo-org/app".to_string()],
            organizations: vec!["octo-org".to_string()],
            enterprises: Vec::new(),
            app: AppConfig::default(),
            tokens: Vec::new(),
            ghes: false,
            clock: SystemClock::shared(),
            runner_offline_after: Duration::from_secs(60),
            delivery_concurrency: 1,
            deliveries_kept: DEFAULT_DELIVERIES_KEPT,
        }
    }
}
