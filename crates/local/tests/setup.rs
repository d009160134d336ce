//! The setup page of `runway local` over HTTP, against its GitHub emulator: the page with its
//! token, the manifest posted to the emulator, the emulator's button, the callback; then the
//! token is spent and a queued job runs through the new App (its key, its webhook secret).

use std::time::Duration;

use std::sync::Arc;

use runway_github_emulator::NewJob;
use runway_local::bench::InProcessRunners;
use runway_local::{Listen, LocalConfig, LocalSystem, Supplied};
use runway_providers::Provider;

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value after `after` up to the next `"`, unescaped.
fn attribute(html: &str, after: &str) -> String {
    let start = html
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {html}"))
        + after.len();
    let end = html[start..].find('"').unwrap() + start;
    unescape(&html[start..end])
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                runway_app_setup::form_encode(k),
                runway_app_setup::form_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_form(http: &reqwest::Client, url: &str, body: String) -> reqwest::Response {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The embedded default with its runners as tasks of this test (the default runs
/// `runway runner-sim` processes of the `runway` binary, which a test binary is not).
async fn start_with_in_process_runners() -> (LocalSystem, Vec<Arc<InProcessRunners>>) {
    let mut config = LocalConfig::embedded_default().unwrap();
    config.listen = Listen::any_free_port();
    let mut supplied = Supplied::default();
    let mut runners = Vec::new();
    for (pool, _) in config.pools() {
        let pool_runners = Arc::new(InProcessRunners::for_pool(None, &pool.name));
        supplied
            .providers
            .insert(pool.name.clone(), pool_runners.clone() as Arc<dyn Provider>);
        runners.push(pool_runners);
    }
    let system = LocalSystem::start_with(config, supplied).await.unwrap();
    let url = system.emulator().unwrap().base_url().to_owned();
    for pool_runners in &runners {
        pool_runners.set_url(Some(url.clone()));
    }
    (system, runners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_makes_an_app_and_a_job_runs_through_it() {
    let (system, _runners) = start_with_in_process_runners().await;
    let emulator = system.emulator().expect("the emulator runs");
    let setup_url = system.setup_url().expect("a setup page").to_owned();
    let token = setup_url.split("token=").nth(1).unwrap().to_owned();
    let base = setup_url.split("/setup").next().unwrap().to_owned();
    let before = emulator.app();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A wrong token changes nothing.
    let wrong = http
        .get(format!("{base}/setup?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let page = http.get(&setup_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(!page.contains(&token), "the page never carries the token");
    let started = post_form(
        &http,
        &format!("{base}/setup/start"),
        form(&[
            ("ticket", &attribute(&page, "name=\"ticket\" value=\"")),
            ("name", &attribute(&page, "name=\"name\" value=\"")),
            ("owner", "organization"),
            ("organization", "octo-org"),
            ("scope", "repository"),
            ("site", "default"),
        ]),
    )
    .await;
    assert_eq!(started.status(), 200);
    let started = started.text().await.unwrap();
    let action = attribute(&started, "action=\"");
    assert!(
        action.starts_with(&format!(
            "{}/organizations/octo-org/settings/apps/new?state=",
            emulator.base_url()
        )),
        "{action}"
    );
    let manifest = attribute(&started, "name=\"manifest\" value=\"");

    // GitHub's page, and its button.
    let github_page = post_form(&http, &action, form(&[("manifest", &manifest)])).await;
    assert_eq!(github_page.status(), 200);
    let github_page = github_page.text().await.unwrap();
    let created = post_form(
        &http,
        &format!(
            "{}{}",
            emulator.base_url(),
            attribute(&github_page, "action=\"")
        ),
        form(&[
            (
                "manifest",
                &attribute(&github_page, "name=\"manifest\" value=\""),
            ),
            ("state", &attribute(&github_page, "name=\"state\" value=\"")),
            ("owner", &attribute(&github_page, "name=\"owner\" value=\"")),
        ]),
    )
    .await;
    assert_eq!(created.status(), 302);
    let callback = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{base}/setup/callback?code=")),
        "{callback}"
    );
    let done = http.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("id=\"install-app\""), "{done}");
    assert!(!done.contains(&token) && !done.contains("PRIVATE KEY"));

    // The token is spent: the page is closed.
    let again = http.get(&setup_url).send().await.unwrap();
    assert_eq!(again.status(), 410);
    assert_eq!(http.get(&callback).send().await.unwrap().status(), 410);

    runs_through_the_new_app(&system, before.app_id).await;
    system.shutdown().await;
}

/// After the setup: the emulator's App is the new one, its webhooks signed with the new
/// secret (the secret runway started with no longer verifies), and a job runs through it.
async fn runs_through_the_new_app(system: &LocalSystem, app_before: u64) {
    let emulator = system.emulator().expect("the emulator runs");
    assert_ne!(emulator.app().app_id, app_before);
    assert_eq!(
        emulator.webhook_url().as_deref(),
        Some(system.webhook_url())
    );
    let old_secret = system.webhook_secret().to_owned();
    let body = br#"{"zen":"x","hook_id":1}"#;
    let refused = reqwest::Client::new()
        .post(system.webhook_url())
        .header("x-github-event", "ping")
        .header(
            "x-hub-signature-256",
            runway_webhook::sign_with(old_secret.as_bytes(), body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the old secret is replaced");

    let job = emulator
        .create_job(NewJob::new(
            "octo-org/app",
            &["self-hosted", "linux", "x64"],
        ))
        .unwrap();
    let execution = system
        .wait_for_job_execution(job.job_id, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| {
            let deliveries: Vec<_> = emulator
                .deliveries()
                .into_iter()
                .filter(|delivery| delivery.job_id == job.job_id)
                .collect();
            let execution = system.execution_for_job(job.job_id);
            let history = execution.as_ref().map(|execution| {
                let events = system
                    .service()
                    .get_execution_history(&execution.execution_arn, true)
                    .unwrap_or_default();
                events.into_iter().take(12).collect::<Vec<_>>()
            });
            panic!(
                "the job's execution did not end in 60 s; its deliveries: {deliveries:#?}; \
                 its execution: {execution:#?}, its last events: {history:#?}"
            )
        });
    assert_eq!(
        execution.status,
        runway_asl::ExecutionStatus::Succeeded,
        "{execution:?}"
    );
}

/// The setup as a person does it, in headless Chromium (Debian's `chromium`, installed by
/// scripts/setup.sh; as the console's tests, this fails rather than skips without it),
/// driven over the DevTools protocol by `tests/browser/setup_click_through.py`: the page
/// with its token, the organisation typed, runway's button, GitHub's button, the last page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_clicks_through_the_setup_and_a_job_runs_through_the_app() {
    let (system, _runners) = start_with_in_process_runners().await;
    let emulator = system.emulator().expect("the emulator runs");
    let before = emulator.app().app_id;
    let setup_url = system.setup_url().expect("a setup page").to_owned();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/setup_click_through.py");
    let python = runway_testkit::workspace_root().join(".tools/venv/bin/python");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&setup_url)
        .arg("octo-org")
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(180), run).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!(
            "cannot run {} ({error}); run scripts/setup.sh",
            python.display()
        ),
        Err(_) => panic!("the click-through did not finish in 180 s"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}{stdout}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let pages: Vec<&str> = seen["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|page| page.as_str().unwrap())
        .collect();
    assert!(pages[0].starts_with(&setup_url), "{seen}");
    assert!(
        pages[1].starts_with(&format!(
            "{}/organizations/octo-org/settings/apps/new",
            emulator.base_url()
        )),
        "{seen}"
    );
    assert!(pages[2].contains("/setup/callback?code="), "{seen}");
    assert_eq!(seen["slug"], emulator.app().slug, "{seen}");
    assert_eq!(seen["script_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(
        reqwest::get(&setup_url).await.unwrap().status(),
        410,
        "the token is spent"
    );
    runs_through_the_new_app(&system, before).await;
    system.shutdown().await;
}
