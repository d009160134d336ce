//! The whole manifest flow against the GitHub emulator: the setup page with its token, the
//! manifest posted to the emulator's page, its button, the callback, the conversion; and
//! every refusal on the way leaving the store as it was.

use std::sync::Arc;

use runway_app_setup::{
    GitHubConversion, GitHubSite, MemorySetupStore, SetupConfig, SetupRequest, SetupResponse,
    SetupService, SetupStore, TokenState, form_encode, form_value,
};
use runway_github::{AppCredentials, Credentials, GitHub, RestGitHub};
use runway_github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Faults};

const TOKEN: &str = "Tk7setupTOKENforTHEtests0123456789";

struct Setup {
    emulator: EmulatorHandle,
    store: Arc<MemorySetupStore>,
    service: SetupService,
}

async fn setup() -> Setup {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let store = Arc::new(MemorySetupStore::new(TOKEN));
    let service = SetupService::new(
        SetupConfig {
            base_url: "http://127.0.0.1:9".into(),
            site: GitHubSite {
                web_url: emulator.base_url().to_owned(),
                api_url: emulator.api_url().to_owned(),
            },
            app_name: "runway-test".into(),
            token_command: "cat token".into(),
        },
        store.clone(),
        Arc::new(GitHubConversion::default()),
    );
    Setup {
        emulator,
        store,
        service,
    }
}

async fn get(service: &SetupService, path: &str, query: &str) -> SetupResponse {
    service
        .handle(SetupRequest {
            method: "GET",
            path,
            query,
            body: b"",
        })
        .await
}

async fn post(service: &SetupService, path: &str, body: &str) -> SetupResponse {
    service
        .handle(SetupRequest {
            method: "POST",
            path,
            query: "",
            body: body.as_bytes(),
        })
        .await
}

/// The value of the first `name="NAME" value="..."` or `ATTR="..."` in a page, unescaped.
fn attribute(html: &str, after: &str) -> String {
    let start = html
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {html}"))
        + after.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Through the emulator's page and button: the callback's query (`code=...&state=...`).
async fn through_github(action: &str, manifest: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("manifest", manifest)]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"create-app\""), "{page}");
    // The page's own form posts on the same site.
    let base = action.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let created = http
        .post(format!("{base}{}", attribute(&page, "action=\"")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("manifest", &attribute(&page, "name=\"manifest\" value=\"")),
            ("state", &attribute(&page, "name=\"state\" value=\"")),
            ("owner", &attribute(&page, "name=\"owner\" value=\"")),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 302);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:9/setup/callback?"),
        "{location}"
    );
    location.split_once('?').unwrap().1.to_owned()
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "a page carries a secret");
    }
}

#[tokio::test]
async fn an_app_is_made_in_two_clicks_and_the_token_is_spent() {
    let Setup {
        emulator,
        store,
        service,
    } = setup().await;

    // No token: the page asks for it. A wrong one: 401.
    let ask = get(&service, "/setup", "").await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("cat token"));
    assert_eq!(get(&service, "/setup", "token=nope").await.status, 401);

    let page = get(&service, "/setup", &format!("token={TOKEN}")).await;
    assert_eq!(page.status, 200);
    assert_no_secret(&page.body, &[TOKEN]);
    let ticket = attribute(&page.body, "name=\"ticket\" value=\"");

    // A form not from the page is refused.
    let forged = post(
        &service,
        "/setup/start",
        &form(&[("ticket", "x.y.z"), ("owner", "user"), ("name", "a")]),
    )
    .await;
    assert_eq!(forged.status, 401);
    let bad_org = post(
        &service,
        "/setup/start",
        &form(&[
            ("ticket", &ticket),
            ("name", "runway-test"),
            ("owner", "organization"),
            ("organization", "no/such"),
        ]),
    )
    .await;
    assert_eq!(bad_org.status, 400);

    let started = post(
        &service,
        "/setup/start",
        &form(&[
            ("ticket", &ticket),
            ("name", "runway-test"),
            ("owner", "organization"),
            ("organization", "octo-org"),
            ("scope", "repository"),
            ("site", "default"),
        ]),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_no_secret(&started.body, &[TOKEN]);
    let action = attribute(&started.body, "action=\"");
    assert!(
        action.starts_with(&format!(
            "{}/organizations/octo-org/settings/apps/new?state=",
            emulator.base_url()
        )),
        "{action}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&attribute(&started.body, "name=\"manifest\" value=\"")).unwrap();
    assert_eq!(
        manifest["hook_attributes"]["url"],
        "http://127.0.0.1:9/webhook"
    );
    assert_eq!(
        manifest["redirect_url"],
        "http://127.0.0.1:9/setup/callback"
    );
    assert_eq!(manifest["public"], false);
    assert_eq!(
        manifest["default_permissions"],
        serde_json::json!({"actions": "read", "administration": "write"})
    );

    let callback = through_github(&action, &manifest.to_string()).await;

    // A state runway did not make: refused, nothing stored.
    let code = form_value(&callback, "code").unwrap();
    let forged = get(
        &service,
        "/setup/callback",
        &format!("code={code}&state=0123.abcd.ef"),
    )
    .await;
    assert_eq!(forged.status, 400);
    assert_eq!(store.app().await.unwrap(), None);

    // GitHub failing: 502, the token still good, the code still unused.
    emulator.set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(502),
        ..Faults::default()
    });
    let failed = get(&service, "/setup/callback", &callback).await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(matches!(
        store.token().await.unwrap(),
        TokenState::Pending(_)
    ));
    assert_eq!(store.app().await.unwrap(), None);

    let done = get(&service, "/setup/callback", &callback).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let app = store.app().await.unwrap().expect("the App is stored");
    assert_eq!(app.app_id, emulator.app().app_id);
    assert_eq!(app.api_url, emulator.api_url());
    assert!(app.private_key.contains("PRIVATE KEY"));
    assert_eq!(
        attribute(&done.body, "id=\"install-app\" href=\""),
        format!("{}/apps/runway-test/installations/new", emulator.base_url())
    );
    assert_no_secret(&done.body, &[TOKEN, &app.private_key, &app.webhook_secret]);
    assert_eq!(store.token().await.unwrap(), TokenState::Spent);
    assert_eq!(
        emulator.webhook_url().as_deref(),
        Some("http://127.0.0.1:9/webhook"),
        "the emulator's webhooks now go to the new App's URL"
    );

    // Spent: every page is 410, and the code converts once only.
    assert_eq!(
        get(&service, "/setup/callback", &callback).await.status,
        410
    );
    assert_eq!(
        get(&service, "/setup", &format!("token={TOKEN}"))
            .await
            .status,
        410
    );
    let again = runway_github::convert_app_manifest(emulator.api_url(), &code, &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(again, runway_github::GitHubError::NotFound { .. }),
        "{again}"
    );

    // The stored key is the App's: an installation token through it works, for any
    // installation of the App.
    let credentials = AppCredentials::new(app.app_id.to_string(), app.private_key.as_bytes(), 0)
        .unwrap()
        .serving_any();
    let github = RestGitHub::new(
        &app.api_url,
        Credentials::App(credentials),
        runway_clock::SystemClock::shared(),
    )
    .unwrap();
    assert_eq!(
        github.installation_for("octo-org", "app").await.unwrap(),
        Some(1)
    );
    let runners = github
        .list_runners(
            &runway_github::RunnerScope::Repository {
                owner: "octo-org".into(),
                repo: "app".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert!(runners.is_empty());
}

#[tokio::test]
async fn a_personal_app_on_a_server_url_posts_to_that_server() {
    let Setup {
        emulator, service, ..
    } = setup().await;
    let page = get(&service, "/setup", &format!("token={TOKEN}")).await;
    let ticket = attribute(&page.body, "name=\"ticket\" value=\"");
    let started = post(
        &service,
        "/setup/start",
        &form(&[
            ("ticket", &ticket),
            ("name", "runway-ghes"),
            ("owner", "user"),
            ("scope", "organization"),
            ("site", "server"),
            ("server_url", emulator.base_url()),
        ]),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let action = attribute(&started.body, "action=\"");
    assert!(
        action.starts_with(&format!("{}/settings/apps/new?state=", emulator.base_url())),
        "{action}"
    );
    let manifest = attribute(&started.body, "name=\"manifest\" value=\"");
    assert!(manifest.contains("organization_self_hosted_runners"));
    let callback = through_github(&action, &manifest).await;
    let state = form_value(&callback, "state").unwrap();
    let read = runway_app_setup::state::verify(TOKEN, &state).unwrap();
    assert_eq!(read.api_url, format!("{}/api/v3", emulator.base_url()));
    assert_eq!(
        get(&service, "/setup/callback", &callback).await.status,
        200
    );
}
