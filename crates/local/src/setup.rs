//! The setup page on `runway local`'s webhook listener (`/setup`, its token printed at
//! start), against the GitHub emulator: the App it makes becomes the emulator's App, and
//! runway moves to it at once, its job flow calling GitHub with the App's key and its intake
//! checking deliveries with the App's webhook secret.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runway_app_setup::{
    MemorySetupStore, SetupRequest, SetupService, SetupStore, StoreError, StoredApp, TokenState,
};
use runway_clock::SharedClock;
use runway_github::{AppCredentials, Credentials, RestGitHub, RestGitHubOptions, SwitchableGitHub};
use runway_webhook::{Intake, IntakeSlot, WebhookSecrets};
use tracing::{info, warn};

/// The variable that fixes the setup token (else one is generated and printed).
pub const SETUP_TOKEN_ENV: &str = "RUNWAY_SETUP_TOKEN";

/// Builds the intake for a webhook secret.
pub(crate) type IntakeFactory = Arc<dyn Fn(WebhookSecrets) -> Intake + Send + Sync>;

/// The in-memory store, and what moves runway to the App once it is stored.
pub(crate) struct LocalSetupStore {
    memory: MemorySetupStore,
    github: SwitchableGitHub,
    slot: IntakeSlot,
    make_intake: IntakeFactory,
    clock: SharedClock,
    options: RestGitHubOptions,
}

impl LocalSetupStore {
    pub(crate) fn new(
        token: String,
        github: SwitchableGitHub,
        slot: IntakeSlot,
        make_intake: IntakeFactory,
        clock: SharedClock,
        options: RestGitHubOptions,
    ) -> LocalSetupStore {
        LocalSetupStore {
            memory: MemorySetupStore::new(token),
            github,
            slot,
            make_intake,
            clock,
            options,
        }
    }

    /// What runway on `app` is made of (every installation of it served, found by each
    /// job's owner), checked before the App is stored.
    fn prepare(&self, app: &StoredApp) -> Result<(RestGitHub, WebhookSecrets), StoreError> {
        let refused = |what: &str, error: String| {
            StoreError::Unavailable(format!("the new App's {what} is not usable: {error}"))
        };
        let credentials =
            AppCredentials::new(app.app_id.to_string(), app.private_key.as_bytes(), 0)
                .map_err(|error| refused("key", error.to_string()))?
                .serving_any();
        let github = RestGitHub::with_options(
            &app.api_url,
            Credentials::App(credentials),
            self.clock.clone(),
            self.options.clone(),
        )
        .map_err(|error| refused("API URL", error.to_string()))?;
        let secrets = WebhookSecrets::new(app.webhook_secret.as_bytes().to_vec())
            .map_err(|error| refused("webhook secret", error.to_string()))?;
        Ok((github, secrets))
    }
}

#[async_trait::async_trait]
impl SetupStore for LocalSetupStore {
    async fn token(&self) -> Result<TokenState, StoreError> {
        self.memory.token().await
    }

    async fn app(&self) -> Result<Option<StoredApp>, StoreError> {
        self.memory.app().await
    }

    async fn save_app(&self, app: &StoredApp) -> Result<(), StoreError> {
        let (github, secrets) = self.prepare(app)?;
        // Stored first: an App that loses to another setup is not switched to.
        self.memory.save_app(app).await?;
        self.github.set(Arc::new(github));
        self.slot.set((self.make_intake)(secrets));
        info!(app_id = app.app_id, slug = %app.slug, "runway now acts as the new GitHub App");
        Ok(())
    }

    async fn spend_token(&self) -> Result<(), StoreError> {
        self.memory.spend_token().await
    }
}

/// The setup token: [`SETUP_TOKEN_ENV`], else a new one.
pub(crate) fn setup_token() -> String {
    match std::env::var(SETUP_TOKEN_ENV) {
        Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
        _ => runway_app_setup::new_token(),
    }
}

/// `GET /setup`, `POST /setup/start`, `GET /setup/callback`.
pub(crate) fn router(service: SetupService) -> Router {
    Router::new()
        .route(runway_app_setup::SETUP_PATH, get(serve))
        .route(runway_app_setup::START_PATH, axum::routing::post(serve))
        .route(runway_app_setup::CALLBACK_PATH, get(serve))
        .with_state(Arc::new(service))
}

async fn serve(
    State(service): State<Arc<SetupService>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    let answer = service
        .handle(SetupRequest {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or_default(),
            body: &body,
        })
        .await;
    let status = StatusCode::from_u16(answer.status).unwrap_or_else(|_| {
        warn!(status = answer.status, "the setup page gave no HTTP status");
        StatusCode::INTERNAL_SERVER_ERROR
    });
    let mut response = (status, answer.body.clone()).into_response();
    for (name, value) in answer.headers() {
        response
            .headers_mut()
            .insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}
