//! GitHub's App manifest flow: a form posting a manifest to
//! `/settings/apps/new` (a personal account) or `/organizations/{org}/settings/apps/new`, a
//! page whose "Create GitHub App" button sends the browser to the manifest's `redirect_url`
//! with a one-time `code` and the caller's `state`, and `POST /app-manifests/{code}/conversions`
//! turning the code into the new App's credentials. After the conversion the emulator's App is
//! that App: JWTs signed with its key are accepted, and webhooks go to its webhook URL, signed
//! with its new secret. Its installations are the ones the emulator already had (as if the
//! App had been installed on every configured account).
//!
//! Every App made here has the same key pair (`src/keys/`): the emulator is for tests and
//! `runway local`, and a fixed key spares an RSA key generation per conversion.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::{AppConfig, WebhookTarget};
use crate::payloads::timestamp;
use crate::shared::{Shared, random_token};

/// The private key of every App a manifest makes (PKCS#1 PEM, as GitHub hands out).
pub const MANIFEST_APP_PRIVATE_KEY: &str = include_str!("keys/manifest-app-private-key.pem");
const MANIFEST_APP_PUBLIC_KEY: &str = include_str!("keys/manifest-app-public-key.pem");

/// GitHub's codes are good for one hour.
const CODE_LIFETIME_MINUTES: i64 = 60;

/// A manifest a user confirmed, waiting for its conversion.
#[derive(Debug, Clone)]
pub(crate) struct PendingManifest {
    manifest: Value,
    owner: String,
    created: DateTime<Utc>,
}

/// Confirmed manifests by code; a conversion removes its code.
#[derive(Debug, Default)]
pub(crate) struct Manifests {
    pending: BTreeMap<String, PendingManifest>,
    /// How many Apps manifests have made, for their ids.
    made: u64,
}

type AppState = Arc<Shared>;

/// What the App-creation form posts: the manifest (JSON).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ManifestForm {
    manifest: Option<String>,
    /// Sent back by the confirmation page.
    state: Option<String>,
    owner: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct StateQuery {
    state: Option<String>,
}

pub(crate) fn routes() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/settings/apps/new", post(new_for_user))
        .route(
            "/organizations/{org}/settings/apps/new",
            post(new_for_organization),
        )
        .route("/settings/apps/new/create", post(create))
}

async fn new_for_user(
    State(shared): State<AppState>,
    Query(query): Query<StateQuery>,
    Form(form): Form<ManifestForm>,
) -> Response {
    // The signed-in user: the first user account, else the first account.
    let owner = shared.read(|world, _| {
        world
            .accounts
            .iter()
            .find(|account| !account.is_org)
            .or_else(|| world.accounts.first())
            .map(|account| account.login.clone())
    });
    confirmation_page(owner.unwrap_or_else(|| "octocat".to_owned()), query, form)
}

async fn new_for_organization(
    State(shared): State<AppState>,
    Path(org): Path<String>,
    Query(query): Query<StateQuery>,
    Form(form): Form<ManifestForm>,
) -> Response {
    let known = shared.read(|world, _| world.organization(&org).is_some());
    if !known {
        return page(
            StatusCode::NOT_FOUND,
            "Not Found",
            "<p>No such organization.</p>",
        );
    }
    confirmation_page(org, query, form)
}

/// GitHub's "Create GitHub App for OWNER" page, with the manifest's name and a button.
fn confirmation_page(owner: String, query: StateQuery, form: ManifestForm) -> Response {
    let Some(text) = form.manifest else {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid manifest",
            "<p>The form has no <code>manifest</code> field.</p>",
        );
    };
    let manifest = match parse_manifest(&text) {
        Ok(manifest) => manifest,
        Err(reason) => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid manifest",
                &format!("<p>{}</p>", escape(&reason)),
            );
        }
    };
    let name = manifest["name"].as_str().unwrap_or("GitHub App");
    let body = format!(
        r#"<h1>Create GitHub App for {owner}</h1>
<p>Name: <strong id="app-name">{name}</strong></p>
<form method="post" action="/settings/apps/new/create">
<input type="hidden" name="manifest" value="{manifest}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="owner" value="{owner}">
<button type="submit" id="create-app">Create GitHub App for {owner}</button>
</form>"#,
        owner = escape(&owner),
        name = escape(name),
        manifest = escape(&text),
        state = escape(query.state.as_deref().unwrap_or("")),
    );
    page(StatusCode::OK, "Create GitHub App", &body)
}

/// The manifest as GitHub checks it: JSON, with a `url` and, for this flow, a `redirect_url`.
fn parse_manifest(text: &str) -> Result<Value, String> {
    let manifest: Value =
        serde_json::from_str(text).map_err(|error| format!("the manifest is not JSON: {error}"))?;
    if !manifest.is_object() {
        return Err("the manifest is not a JSON object".into());
    }
    for field in ["url", "redirect_url"] {
        if manifest[field].as_str().is_none_or(str::is_empty) {
            return Err(format!("the manifest has no {field}"));
        }
    }
    Ok(manifest)
}

/// The button: a code for the manifest, and the browser sent to `redirect_url`.
async fn create(State(shared): State<AppState>, Form(form): Form<ManifestForm>) -> Response {
    let manifest = match form.manifest.as_deref().map(parse_manifest) {
        Some(Ok(manifest)) => manifest,
        Some(Err(reason)) => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid manifest",
                &format!("<p>{}</p>", escape(&reason)),
            );
        }
        None => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid manifest",
                "<p>no manifest</p>",
            );
        }
    };
    let redirect = manifest["redirect_url"].as_str().unwrap_or_default();
    let code = random_token("", 20).to_ascii_lowercase();
    let now = shared.clock.now();
    shared.manifests().pending.insert(
        code.clone(),
        PendingManifest {
            manifest: manifest.clone(),
            owner: form.owner.unwrap_or_else(|| "octocat".to_owned()),
            created: now,
        },
    );
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect}{separator}code={code}");
    if let Some(state) = form.state.filter(|state| !state.is_empty()) {
        location.push_str("&state=");
        location.push_str(&percent_encode(&state));
    }
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `POST /app-manifests/{code}/conversions`: no authentication; 201 with the App's
/// credentials once, 404 for an unknown, used or expired code.
pub(crate) async fn convert(State(shared): State<AppState>, Path(code): Path<String>) -> Response {
    let now = shared.clock.now();
    let (pending, number) = {
        let mut manifests = shared.manifests();
        let Some(pending) = manifests.pending.remove(&code) else {
            return not_found();
        };
        if now - pending.created > Duration::minutes(CODE_LIFETIME_MINUTES) {
            return not_found();
        }
        manifests.made += 1;
        (pending, manifests.made)
    };
    let current = shared.app();
    let manifest = &pending.manifest;
    let name = manifest["name"].as_str().unwrap_or("runway").to_owned();
    let app = AppConfig {
        app_id: current.app_id + number,
        client_id: Some(format!("Iv23li{}", random_token("", 14))),
        slug: slug_of(&name),
        public_key_pem: Some(MANIFEST_APP_PUBLIC_KEY.to_owned()),
        ..current
    };
    let webhook_secret = random_token("", 40);
    let hook_url = manifest["hook_attributes"]["url"].as_str();
    let hook_active = manifest["hook_attributes"]["active"]
        .as_bool()
        .unwrap_or(true);
    if let (Some(url), true) = (hook_url, hook_active) {
        shared.set_webhook_target(Some(WebhookTarget {
            url: url.to_owned(),
            secret: webhook_secret.clone(),
        }));
    }
    shared.replace_app(app.clone());
    let owner = shared.read(|world, _| {
        world
            .accounts
            .iter()
            .find(|account| account.login.eq_ignore_ascii_case(&pending.owner))
            .or_else(|| world.accounts.first())
            .cloned()
    });
    let at = timestamp(now);
    let permissions = manifest
        .get("default_permissions")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut permissions: serde_json::Map<String, Value> =
        permissions.as_object().cloned().unwrap_or_default();
    permissions
        .entry("metadata")
        .or_insert_with(|| json!("read"));
    let body = json!({
        "id": app.app_id,
        "slug": app.slug,
        "node_id": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("011:Integration{}", app.app_id)),
        "client_id": app.client_id,
        "owner": owner.map(|owner| crate::payloads::user(&owner, &shared.urls)),
        "name": name,
        "description": manifest["description"].as_str(),
        "external_url": manifest["url"].as_str().unwrap_or_default(),
        "html_url": format!("{}/apps/{}", shared.urls.html, app.slug),
        "created_at": at,
        "updated_at": at,
        "permissions": permissions,
        "events": manifest.get("default_events").cloned().unwrap_or_else(|| json!([])),
        "installations_count": 0,
        "client_secret": random_token("", 40),
        "webhook_secret": webhook_secret,
        "pem": MANIFEST_APP_PRIVATE_KEY,
    });
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// GitHub's slug: the name lower-cased, runs of other characters one `-`.
fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() { "app".into() } else { slug }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest",
            "status": "404",
        })),
    )
        .into_response()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>",
        escape(title)
    );
    (status, Html(html)).into_response()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Shared {
    pub(crate) fn manifests(&self) -> std::sync::MutexGuard<'_, Manifests> {
        self.manifests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_with_dashes() {
        assert_eq!(slug_of("runway (ci)"), "runway-ci");
        assert_eq!(slug_of("Runway"), "runway");
        assert_eq!(slug_of("!!"), "app");
    }

    #[test]
    fn a_manifest_needs_its_urls() {
        assert!(parse_manifest("{}").is_err());
        assert!(parse_manifest("[]").is_err());
        assert!(parse_manifest(r#"{"url": "x", "redirect_url": "y"}"#).is_ok());
    }
}
