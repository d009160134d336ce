//! Check 2: the GitHub credentials the functions use exist (for the setup page's App: the
//! App secret holds an App, not `{"status": "pending"}`); check 3b: GitHub sends the App's
//! webhook to this stack's `WebhookUrl`, with a secret, and its latest delivery was taken.

use async_trait::async_trait;
use runway_app_setup::StoredApp;
use runway_clock::SharedClock;
use runway_github::{AppCredentials, AppWebhookConfig, Credentials, HookDelivery, RestGitHub};
use runway_setup::{CredentialSource, GitHubAuth};

use crate::secrets::Secrets;
use crate::{DoctorError, Finding};

/// A GitHub App runway acts as: enough to ask GitHub about its webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct AppIdentity {
    pub app_id: String,
    pub private_key: String,
    /// The REST API it lives on.
    pub api_url: String,
    /// Its settings page, when known (`https://github.com/settings/apps/SLUG`).
    pub settings_url: Option<String>,
}

impl std::fmt::Debug for AppIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppIdentity")
            .field("app_id", &self.app_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// What the credentials check learned.
#[derive(Debug, Clone, Default)]
pub struct GitHubFacts {
    /// The App, when runway acts as one.
    pub app: Option<AppIdentity>,
    /// The setup page's App (its webhook secret is the webhook's).
    pub stored_app: Option<StoredApp>,
}

/// Where a credential is, for messages.
pub fn location(source: &CredentialSource) -> String {
    match source {
        CredentialSource::Parameter(name) => format!("SSM parameter {name}"),
        CredentialSource::Secret(arn) => format!("secret {arn}"),
        CredentialSource::Value(_) => "the function's environment".to_owned(),
    }
}

/// Reads a credential wherever it is.
pub async fn read_source(
    secrets: &dyn Secrets,
    source: &CredentialSource,
) -> Result<String, DoctorError> {
    match source {
        CredentialSource::Value(value) => Ok(value.clone()),
        CredentialSource::Parameter(location) | CredentialSource::Secret(location) => {
            secrets.read(location).await
        }
    }
}

/// How to store a credential at `source`.
fn store_command(source: &CredentialSource, what: &str) -> String {
    match source {
        CredentialSource::Parameter(name) => format!(
            "aws ssm put-parameter --name {name} --type SecureString --overwrite --value \
             {what}"
        ),
        CredentialSource::Secret(arn) => {
            format!("aws secretsmanager put-secret-value --secret-id {arn} --secret-string {what}")
        }
        CredentialSource::Value(_) => "set it in the stack's parameters and deploy".to_owned(),
    }
}

/// Check 2.
pub async fn check_credentials(
    secrets: &dyn Secrets,
    github: &GitHubAuth,
    api_url: &str,
    setup_url: Option<&str>,
) -> (Finding, GitHubFacts) {
    const CHECK: &str = "github app";
    let mut facts = GitHubFacts::default();
    let finding = match github {
        GitHubAuth::SetupApp { secret } => match secrets.read(secret).await {
            Err(error) => Finding::fail(
                CHECK,
                format!("cannot read the GitHub App secret: {error}"),
                format!(
                    "give the doctor's credentials secretsmanager:GetSecretValue and \
                     kms:Decrypt on {secret} (the stack's SecretsKey)"
                ),
            ),
            Ok(text) => match StoredApp::from_json(&text) {
                Ok(None) => Finding::fail(
                    CHECK,
                    format!("setup pending: {secret} holds no GitHub App yet"),
                    format!(
                        "open the SetupUrl output{} and make the App in two clicks; the page \
                         asks for the token the SetupTokenCommand output prints",
                        setup_url.map(|url| format!(" ({url})")).unwrap_or_default()
                    ),
                ),
                Err(error) => Finding::fail(
                    CHECK,
                    format!("{secret}: {error}"),
                    format!(
                        "store {} there and open the SetupUrl output to make the App again",
                        StoredApp::PENDING
                    ),
                ),
                Ok(Some(app)) => {
                    let found = format!(
                        "GitHub App {} (id {}) on {}, made by the setup page",
                        app.slug, app.app_id, app.api_url
                    );
                    facts.app = Some(AppIdentity {
                        app_id: app.app_id.to_string(),
                        private_key: app.private_key.clone(),
                        api_url: app.api_url.clone(),
                        settings_url: settings_url(&app.html_url, &app.slug),
                    });
                    facts.stored_app = Some(app);
                    Finding::ok(CHECK, found)
                }
            },
        },
        GitHubAuth::App {
            app_id,
            installations,
            private_key,
        } => match read_source(secrets, private_key).await {
            Ok(key) if key.contains("PRIVATE KEY") => {
                facts.app = Some(AppIdentity {
                    app_id: app_id.clone(),
                    private_key: key,
                    api_url: api_url.to_owned(),
                    settings_url: None,
                });
                Finding::ok(
                    CHECK,
                    format!(
                        "GitHub App {app_id}, installation(s) {installations:?}, key in {}",
                        location(private_key)
                    ),
                )
            }
            Ok(_) => Finding::fail(
                CHECK,
                format!("{} does not hold a PEM private key", location(private_key)),
                store_command(private_key, "file://app-key.pem"),
            ),
            Err(error) => Finding::fail(
                CHECK,
                format!("cannot read the App's private key: {error}"),
                store_command(private_key, "file://app-key.pem"),
            ),
        },
        GitHubAuth::Token(source) => match read_source(secrets, source).await {
            Ok(token) if !token.trim().is_empty() => Finding::ok(
                CHECK,
                format!("a GitHub token in {} (no App)", location(source)),
            ),
            Ok(_) | Err(_) => Finding::fail(
                CHECK,
                format!("no GitHub token readable in {}", location(source)),
                store_command(source, "TOKEN"),
            ),
        },
    };
    (finding, facts)
}

/// `https://github.com/apps/SLUG` → `https://github.com/settings/apps/SLUG`.
fn settings_url(html_url: &str, slug: &str) -> Option<String> {
    let base = html_url.trim_end_matches('/');
    let base = base.strip_suffix(&format!("/apps/{slug}"))?;
    Some(format!("{base}/settings/apps/{slug}"))
}

/// GitHub's side of the App's webhook.
#[async_trait]
pub trait AppHooks: Send + Sync {
    async fn config(&self, app: &AppIdentity) -> Result<AppWebhookConfig, DoctorError>;
    /// The latest deliveries, newest first.
    async fn deliveries(&self, app: &AppIdentity) -> Result<Vec<HookDelivery>, DoctorError>;
}

/// GitHub's REST API, as the App (its JWT).
#[derive(Debug, Clone)]
pub struct RestAppHooks {
    clock: SharedClock,
}

impl RestAppHooks {
    pub fn new(clock: SharedClock) -> RestAppHooks {
        RestAppHooks { clock }
    }

    fn client(&self, app: &AppIdentity) -> Result<RestGitHub, DoctorError> {
        let credentials = AppCredentials::new(app.app_id.clone(), app.private_key.as_bytes(), 0)
            .map_err(|error| DoctorError::GitHub(format!("the App's key: {error}")))?;
        RestGitHub::new(
            &app.api_url,
            Credentials::App(credentials.serving_any()),
            self.clock.clone(),
        )
        .map_err(|error| DoctorError::GitHub(error.to_string()))
    }
}

#[async_trait]
impl AppHooks for RestAppHooks {
    async fn config(&self, app: &AppIdentity) -> Result<AppWebhookConfig, DoctorError> {
        self.client(app)?
            .app_webhook_config()
            .await
            .map_err(|error| DoctorError::GitHub(error.to_string()))
    }

    async fn deliveries(&self, app: &AppIdentity) -> Result<Vec<HookDelivery>, DoctorError> {
        self.client(app)?
            .app_webhook_deliveries(10)
            .await
            .map_err(|error| DoctorError::GitHub(error.to_string()))
    }
}

/// Check 3b: GitHub's webhook settings and latest delivery. `secret_advice` says how to give
/// GitHub the stack's webhook secret.
pub async fn check_github_hook(
    hooks: &dyn AppHooks,
    app: &AppIdentity,
    webhook_url: Option<&str>,
    secret_advice: &str,
) -> Vec<Finding> {
    const CHECK: &str = "github webhook";
    let settings = app
        .settings_url
        .clone()
        .unwrap_or_else(|| "GitHub → Settings → Developer settings → GitHub Apps → the App".into());
    let mut findings = Vec::new();
    match hooks.config(app).await {
        Err(error) => findings.push(Finding::warn(
            CHECK,
            format!("cannot read the App's webhook settings: {error}"),
            format!("check them by hand: {settings} → Webhook"),
        )),
        Ok(config) => {
            let url = config.url.clone().unwrap_or_default();
            let finding = match webhook_url {
                _ if url.is_empty() => Finding::fail(
                    CHECK,
                    "the App has no webhook URL: GitHub sends runway nothing",
                    format!(
                        "in {settings}, tick Webhook → Active and set the Webhook URL to {}",
                        webhook_url.unwrap_or("the stack's WebhookUrl output")
                    ),
                ),
                Some(expected) if url.trim_end_matches('/') != expected.trim_end_matches('/') => {
                    Finding::fail(
                        CHECK,
                        format!(
                            "GitHub sends the App's webhook to {url}, not to this stack's {expected}"
                        ),
                        format!("in {settings}, set the Webhook URL to {expected}"),
                    )
                }
                _ if config.secret.as_deref().is_none_or(str::is_empty) => Finding::fail(
                    CHECK,
                    "the App's webhook has no secret: runway refuses unsigned deliveries",
                    format!("in {settings}, set the Webhook secret: {secret_advice}"),
                ),
                _ => Finding::ok(CHECK, format!("GitHub sends the App's webhook to {url}")),
            };
            findings.push(finding);
        }
    }
    match hooks.deliveries(app).await {
        Err(error) => findings.push(Finding::warn(
            "github deliveries",
            format!("cannot read the App's recent deliveries: {error}"),
            format!("look at them by hand: {settings} → Advanced → Recent Deliveries"),
        )),
        Ok(deliveries) => findings.push(check_deliveries(&deliveries, &settings, secret_advice)),
    }
    findings
}

/// What the latest delivery says.
pub fn check_deliveries(
    deliveries: &[HookDelivery],
    settings: &str,
    secret_advice: &str,
) -> Finding {
    const CHECK: &str = "github deliveries";
    let Some(latest) = deliveries.iter().max_by_key(|d| (d.delivered_at, d.id)) else {
        return Finding::ok(CHECK, "no deliveries yet (GitHub sends one per job event)");
    };
    let when = latest.delivered_at.format("%Y-%m-%d %H:%M:%SZ");
    let what = match &latest.action {
        Some(action) => format!("{} {action}", latest.event),
        None => latest.event.clone(),
    };
    let failed = deliveries
        .iter()
        .filter(|d| !(200..300).contains(&d.status_code))
        .count();
    match latest.status_code {
        200..=299 => Finding::ok(
            CHECK,
            format!(
                "the latest ({what}, {when}) was answered {}; {failed} of the last {} failed",
                latest.status_code,
                deliveries.len()
            ),
        ),
        401 => Finding::fail(
            CHECK,
            format!(
                "the latest ({what}, {when}) was refused with 401: GitHub signs with another \
                 secret than the stack's"
            ),
            format!(
                "in {settings}, set the Webhook secret to the stack's: {secret_advice}; then \
                 redeliver from Advanced → Recent Deliveries"
            ),
        ),
        503 => Finding::fail(
            CHECK,
            format!(
                "the latest ({what}, {when}) was answered 503: runway was not set up or its secret unreadable"
            ),
            "finish setup (the SetupUrl output), then redeliver from Advanced → Recent Deliveries",
        ),
        0 => Finding::fail(
            CHECK,
            format!(
                "the latest ({what}, {when}) did not arrive: {}",
                latest.status
            ),
            "GitHub must reach the WebhookUrl from the internet: check the API and its URL",
        ),
        status => Finding::fail(
            CHECK,
            format!(
                "the latest ({what}, {when}) was answered {status} ({})",
                latest.status
            ),
            "the webhook function's log says why (aws logs tail /aws/lambda/FUNCTION --since 1h)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: u64, minute: u32, status_code: u16) -> HookDelivery {
        HookDelivery {
            id,
            guid: format!("g{id}"),
            delivered_at: chrono::DateTime::parse_from_rfc3339(&format!(
                "2026-12-05T10:{minute:02}:00Z"
            ))
            .unwrap()
            .into(),
            status: if status_code == 200 {
                "OK".into()
            } else {
                format!("Invalid HTTP Response: {status_code}")
            },
            status_code,
            event: "workflow_job".into(),
            action: Some("queued".into()),
            redelivery: false,
        }
    }

    #[test]
    fn the_latest_delivery_decides() {
        let fixed = [delivery(1, 1, 401), delivery(2, 5, 200)];
        let finding = check_deliveries(&fixed, "S", "A");
        assert_eq!(finding.status, crate::Status::Ok, "{finding:?}");
        assert!(finding.found.contains("1 of the last 2 failed"));
        let broken = [delivery(2, 5, 200), delivery(3, 9, 401)];
        let finding = check_deliveries(&broken, "S", "read it with X");
        assert_eq!(finding.status, crate::Status::Fail);
        assert!(finding.fix.unwrap().contains("read it with X"));
        assert_eq!(check_deliveries(&[], "S", "A").status, crate::Status::Ok);
    }

    #[test]
    fn an_apps_settings_page_is_found_from_its_page() {
        assert_eq!(
            settings_url("https://github.com/apps/runway-acme", "runway-acme").as_deref(),
            Some("https://github.com/settings/apps/runway-acme")
        );
        assert_eq!(settings_url("https://x/other", "runway"), None);
    }
}
