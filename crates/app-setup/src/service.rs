//! The setup pages' logic, apart from any HTTP server: a request in, a page out. The Lambda's
//! `setup` entry point and `runway local`'s webhook listener both serve it.

use std::sync::Arc;

use runway_github::{ConvertedApp, GitHubError, RestGitHubOptions};
use tracing::{info, warn};

use crate::form;
use crate::manifest::{GitHubSite, Owner, RunnerScope, app_manifest, is_login};
use crate::page;
use crate::state;
use crate::store::{SetupStore, StoreError, StoredApp, TokenState};

/// Turns a manifest's code into the App (GitHub's `POST /app-manifests/{code}/conversions`).
#[async_trait::async_trait]
pub trait ManifestConversion: Send + Sync {
    async fn convert(&self, api_url: &str, code: &str) -> Result<ConvertedApp, GitHubError>;
}

/// The conversion over GitHub's REST API.
#[derive(Clone, Default)]
pub struct GitHubConversion {
    options: RestGitHubOptions,
}

impl GitHubConversion {
    pub fn new(options: RestGitHubOptions) -> GitHubConversion {
        GitHubConversion { options }
    }
}

#[async_trait::async_trait]
impl ManifestConversion for GitHubConversion {
    async fn convert(&self, api_url: &str, code: &str) -> Result<ConvertedApp, GitHubError> {
        runway_github::convert_app_manifest(api_url, code, &self.options).await
    }
}

/// What a setup needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct SetupConfig {
    /// runway's public root (`https://API.execute-api.REGION.amazonaws.com`,
    /// `http://127.0.0.1:8080`): the webhook and the callback are under it.
    pub base_url: String,
    /// The GitHub offered first (github.com; the emulator under `runway local`).
    pub site: GitHubSite,
    /// The App's suggested name (GitHub's names are unique, at most 34 characters).
    pub app_name: String,
    /// How the deployer reads the token, shown when the page asks for it.
    pub token_command: String,
}

/// An HTTP request to a setup path.
#[derive(Debug, Clone, Copy)]
pub struct SetupRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: &'a str,
    /// A posted form.
    pub body: &'a [u8],
}

/// An HTML page (or a redirect) to answer with, with [`SetupResponse::headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupResponse {
    pub status: u16,
    pub body: String,
}

impl SetupResponse {
    fn page(status: u16, body: String) -> SetupResponse {
        SetupResponse { status, body }
    }

    /// The page's headers: never cached, never framed, no `Referer` (the setup URL carries
    /// the token).
    pub fn headers(&self) -> [(&'static str, &'static str); 5] {
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
        ]
    }
}

/// The setup pages.
#[derive(Clone)]
pub struct SetupService {
    config: SetupConfig,
    store: Arc<dyn SetupStore>,
    conversion: Arc<dyn ManifestConversion>,
}

impl std::fmt::Debug for SetupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Compares in time independent of where the texts differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn gone() -> SetupResponse {
    SetupResponse::page(
        410,
        page::problem(
            "runway is set up already",
            "The setup token was spent when the GitHub App was created, so this page is closed. \
             To start again, delete the App in GitHub, then store a new setup token (see the \
             README's Deploy section).",
        ),
    )
}

fn unavailable(error: &StoreError) -> SetupResponse {
    warn!(%error, "setup store unavailable");
    SetupResponse::page(
        503,
        page::problem(
            "The setup store cannot be read",
            &format!("{error}. Nothing changed; try again in a minute."),
        ),
    )
}

impl SetupService {
    pub fn new(
        config: SetupConfig,
        store: Arc<dyn SetupStore>,
        conversion: Arc<dyn ManifestConversion>,
    ) -> SetupService {
        SetupService {
            config,
            store,
            conversion,
        }
    }

    pub fn config(&self) -> &SetupConfig {
        &self.config
    }

    fn webhook_url(&self) -> String {
        format!(
            "{}{}",
            self.config.base_url.trim_end_matches('/'),
            crate::WEBHOOK_PATH
        )
    }

    /// Answers one request to a setup path.
    pub async fn handle(&self, request: SetupRequest<'_>) -> SetupResponse {
        let response = match (request.method, request.path.trim_end_matches('/')) {
            ("GET", crate::SETUP_PATH) => self.setup_page(request.query).await,
            ("POST", crate::START_PATH) => self.start(&String::from_utf8_lossy(request.body)).await,
            ("GET", crate::CALLBACK_PATH) => self.callback(request.query).await,
            _ => SetupResponse::page(
                404,
                page::problem("Not found", "Open the setup URL the stack's outputs give."),
            ),
        };
        // The path only: queries and forms carry the token, the state and the code.
        info!(
            method = request.method,
            path = request.path,
            status = response.status,
            "setup request"
        );
        response
    }

    /// The pending token, or the page to answer instead.
    async fn pending_token(&self) -> Result<String, SetupResponse> {
        match self.store.token().await {
            Ok(TokenState::Pending(token)) => Ok(token),
            Ok(TokenState::Spent) => Err(gone()),
            Err(error) => Err(unavailable(&error)),
        }
    }

    async fn setup_page(&self, query: &str) -> SetupResponse {
        let token = match self.pending_token().await {
            Ok(token) => token,
            Err(response) => return response,
        };
        // The token, or the whole document the token command prints.
        let given =
            form::value(query, "token").map(|given| match TokenState::from_json(given.trim()) {
                Ok(TokenState::Pending(inside)) => inside,
                _ => given,
            });
        match given.filter(|given| !given.is_empty()) {
            None => SetupResponse::page(200, page::ask_token(&self.config.token_command)),
            Some(given) if same(given.trim(), &token) => SetupResponse::page(
                200,
                page::choose(
                    &state::issue(&token, ""),
                    &self.config.app_name,
                    &self.webhook_url(),
                ),
            ),
            Some(_) => SetupResponse::page(
                401,
                page::problem(
                    "Wrong setup token",
                    &format!(
                        "That is not the setup token. Read it with: {}",
                        self.config.token_command
                    ),
                ),
            ),
        }
    }

    async fn start(&self, body: &str) -> SetupResponse {
        let token = match self.pending_token().await {
            Ok(token) => token,
            Err(response) => return response,
        };
        let field = |name: &str| form::value(body, name).unwrap_or_default();
        let ticket_ok =
            state::verify(&token, &field("ticket")).is_some_and(|s| s.api_url.is_empty());
        if !ticket_ok {
            return SetupResponse::page(
                401,
                page::problem(
                    "This form is not runway's",
                    "The form did not come from this runway's setup page, or the setup token \
                     changed since. Open the setup URL again.",
                ),
            );
        }
        match self.manifest_form(&token, body) {
            Ok(page) => SetupResponse::page(200, page),
            Err(advice) => SetupResponse::page(400, page::problem("Check the form", &advice)),
        }
    }

    /// The page that posts the manifest, from the choices in `body`.
    fn manifest_form(&self, token: &str, body: &str) -> Result<String, String> {
        let field = |name: &str| form::value(body, name).unwrap_or_default();
        let name = field("name").trim().to_owned();
        if name.is_empty() || name.chars().count() > 34 {
            return Err("Give the App a name of 1 to 34 characters.".into());
        }
        let owner = match field("owner").as_str() {
            "user" => Owner::User,
            "organization" => {
                let org = field("organization").trim().to_owned();
                if !is_login(&org) {
                    return Err(format!(
                        "{org:?} is not an organisation's login: letters, digits and single \
                         hyphens."
                    ));
                }
                Owner::Organization(org)
            }
            other => return Err(format!("Pick an owner (not {other:?}).")),
        };
        let scope = match field("scope").as_str() {
            "organization" => RunnerScope::Organization,
            "repository" | "" => RunnerScope::Repository,
            other => return Err(format!("Pick a runner scope (not {other:?}).")),
        };
        let site = match field("site").as_str() {
            "server" => GitHubSite::enterprise_server(&field("server_url"))
                .map_err(|reason| format!("GitHub Enterprise Server URL: {reason}"))?,
            _ => self.config.site.clone(),
        };
        let state = state::issue(token, &site.api_url);
        let manifest = app_manifest(&name, &self.config.base_url, scope).to_string();
        Ok(page::post_manifest(
            &site.new_app_url(&owner, &state),
            &manifest,
        ))
    }

    async fn callback(&self, query: &str) -> SetupResponse {
        let token = match self.pending_token().await {
            Ok(token) => token,
            Err(response) => return response,
        };
        let Some(state) = form::value(query, "state")
            .and_then(|text| state::verify(&token, &text))
            .filter(|state| !state.api_url.is_empty())
        else {
            warn!("setup callback with a state runway did not make refused");
            return SetupResponse::page(
                400,
                page::problem(
                    "This answer is not for this runway",
                    "GitHub's answer does not carry the state runway's setup page sent (a forged \
                     or stale link). Nothing was stored; open the setup URL again.",
                ),
            );
        };
        let Some(code) = form::value(query, "code").filter(|code| !code.is_empty()) else {
            return SetupResponse::page(
                400,
                page::problem(
                    "No code from GitHub",
                    "GitHub's answer has no code. Open the setup URL again.",
                ),
            );
        };
        let converted = match self.conversion.convert(&state.api_url, &code).await {
            Ok(converted) => converted,
            Err(error) => return conversion_failed(&error),
        };
        let Some(webhook_secret) = converted.webhook_secret.as_ref() else {
            return SetupResponse::page(
                502,
                page::problem(
                    "GitHub made the App without a webhook secret",
                    "Delete the App in GitHub, then open the setup URL again.",
                ),
            );
        };
        let app = StoredApp {
            app_id: converted.id,
            slug: converted.slug.clone(),
            html_url: converted.html_url.clone(),
            api_url: state.api_url.clone(),
            private_key: converted.pem.expose().to_owned(),
            webhook_secret: webhook_secret.expose().to_owned(),
        };
        if let Err(error) = self.store.save_app(&app).await {
            warn!(%error, app_id = app.app_id, "the new App's credentials could not be stored");
            if let StoreError::Conflict(reason) = &error {
                return SetupResponse::page(
                    409,
                    page::problem(
                        "runway is set up with another App",
                        &format!(
                            "{reason}. GitHub made the App {} but runway did not keep it: \
                             delete it in GitHub. runway works with the App stored first.",
                            app.slug
                        ),
                    ),
                );
            }
            return SetupResponse::page(
                503,
                page::problem(
                    "The App's credentials could not be stored",
                    &format!(
                        "{error}. GitHub made the App {} but runway could not keep its key: \
                         delete it in GitHub and open the setup URL again (the token is still \
                         valid).",
                        app.slug
                    ),
                ),
            );
        }
        if let Err(error) = self.store.spend_token().await {
            warn!(%error, "the setup token could not be marked spent");
        }
        info!(app_id = app.app_id, slug = %app.slug, "GitHub App created and stored");
        SetupResponse::page(
            200,
            page::done(&app.slug, &app.install_url(), &self.webhook_url()),
        )
    }
}

fn conversion_failed(error: &GitHubError) -> SetupResponse {
    warn!(%error, "manifest conversion failed");
    match error {
        GitHubError::NotFound { .. } => SetupResponse::page(
            400,
            page::problem(
                "GitHub does not know this code",
                "The code is used or expired (codes last an hour). Nothing was stored; open the \
                 setup URL again.",
            ),
        ),
        other => SetupResponse::page(
            502,
            page::problem(
                "GitHub did not make the App",
                &format!(
                    "{other}. Nothing was stored and the setup token is still valid: open the \
                     setup URL and try again."
                ),
            ),
        ),
    }
}
