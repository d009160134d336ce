//! runway's setup page: a GitHub App made from a manifest in two clicks (GitHub's documented
//! manifest flow), its credentials stored where runway's functions read them.
//!
//! - `GET /setup?token=...`: the one-time setup token (only the deployer can read it) opens a
//!   form: the App's owner (an organisation or a personal account), GitHub or a GitHub
//!   Enterprise Server, runners per repository or per organisation.
//! - `POST /setup/start`: a page that posts the manifest ([`app_manifest`]) to GitHub's
//!   `.../settings/apps/new?state=...`; `state` is random and signed with the token
//!   ([`state`]).
//! - `GET /setup/callback?code=...&state=...`: GitHub sends the browser back; the state is
//!   checked, the code converted (`POST /app-manifests/{code}/conversions`), the App's id,
//!   key and webhook secret stored ([`SetupStore`]), the token spent, and the page links to the
//!   App's installation. A wrong token is 401, a spent one 410, and a failed conversion leaves
//!   the token valid for another try.
//!
//! No page, log line or error carries the token, the key or the webhook secret.

mod form;
pub mod manifest;
mod page;
mod service;
pub mod state;
mod store;

pub use form::{encode as form_encode, parse as parse_form, value as form_value};
pub use manifest::{GitHubSite, Owner, RunnerScope, app_manifest};
pub use service::{
    GitHubConversion, ManifestConversion, SetupConfig, SetupRequest, SetupResponse, SetupService,
};
pub use store::{
    MemorySetupStore, SetupStore, StoreError, StoredApp, TokenState, already_stored, new_token,
};

/// The setup page.
pub const SETUP_PATH: &str = "/setup";
/// Where the setup page's form posts.
pub const START_PATH: &str = "/setup/start";
/// Where GitHub sends the browser back.
pub const CALLBACK_PATH: &str = "/setup/callback";
/// runway's webhook, under the same root (as `runway_webhook::WEBHOOK_PATH`).
pub const WEBHOOK_PATH: &str = "/webhook";

/// Whether `path` is one of the setup pages.
pub fn is_setup_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    [SETUP_PATH, START_PATH, CALLBACK_PATH].contains(&path)
}
