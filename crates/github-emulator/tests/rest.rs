//! The REST API over HTTP: authentication, JIT configs at every level, runners, jobs, App
//! installation tokens, GHES paths and injected faults.

mod common;

use common::{APP_PRIVATE_KEY, APP_PUBLIC_KEY, OTHER_PRIVATE_KEY, app_jwt, call, config};
use reqwest::Method;
use runway_github_emulator::{AppConfig, Emulator, EmulatorConfig, Faults, JitConfig, NewJob};
use serde_json::json;

fn jit_body(name: &str) -> serde_json::Value {
    json!({"name": name, "runner_group_id": 1, "labels": ["self-hosted", "linux", "x64"]})
}

#[tokio::test]
async fn requests_without_a_token_get_401_and_unknown_tokens_are_refused_when_tokens_are_listed() {
    let emulator = Emulator::start(EmulatorConfig {
        tokens: vec!["ghp_known".into()],
        ..config()
    })
    .await
    .unwrap();
    let url = format!("{}/repos/octo-org/app/actions/runners", emulator.api_url());
    let (status, body) = call(Method::GET, &url, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Requires authentication");
    let (status, body) = call(Method::GET, &url, Some("ghp_wrong"), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Bad credentials");
    let (status, _) = call(Method::GET, &url, Some("ghp_known"), None).await;
    assert_eq!(status, 200);
    // `Authorization: token ...` works too.
    let response = common::client()
        .get(&url)
        .header("Authorization", "token ghp_known")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-ratelimit-remaining"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_app_jwt_buys_an_installation_token_that_works_on_the_api() {
    let emulator = Emulator::start(EmulatorConfig {
        tokens: vec!["ghp_only_this".into()],
        app: AppConfig {
            app_id: 4242,
            installation_id: 77,
            public_key_pem: Some(APP_PUBLIC_KEY.into()),
            ..AppConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let api = emulator.api_url().to_string();
    let jwt = app_jwt(APP_PRIVATE_KEY, "4242");

    let (status, installation) = call(
        Method::GET,
        &format!("{api}/repos/octo-org/app/installation"),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 200, "{installation}");
    assert_eq!(installation["id"], 77);
    assert_eq!(installation["app_id"], 4242);
    assert_eq!(installation["account"]["login"], "octo-org");

    let (status, token) = call(
        Method::POST,
        &format!("{api}/app/installations/77/access_tokens"),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghs_"));
    let (status, _) = call(
        Method::GET,
        &format!("{api}/orgs/octo-org/actions/runners"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // A JWT signed by another key, naming another app, or a token where a JWT is needed.
    let forged = app_jwt(OTHER_PRIVATE_KEY, "4242");
    let wrong_app = app_jwt(APP_PRIVATE_KEY, "1");
    for bad in [
        forged.as_str(),
        wrong_app.as_str(),
        "ghp_only_this",
        "x.y.z",
    ] {
        let (status, body) = call(
            Method::POST,
            &format!("{api}/app/installations/77/access_tokens"),
            Some(bad),
            None,
        )
        .await;
        assert_eq!(status, 401, "{bad}: {body}");
    }
    // The JWT itself is not a token for the runner endpoints.
    let (status, _) = call(
        Method::GET,
        &format!("{api}/orgs/octo-org/actions/runners"),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Unknown installation.
    let (status, _) = call(
        Method::POST,
        &format!("{api}/app/installations/78/access_tokens"),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 404);
    emulator.shutdown().await;
}

#[tokio::test]
async fn jit_configs_at_repo_org_and_enterprise_level_register_offline_ephemeral_runners() {
    let emulator = Emulator::start(config()).await.unwrap();
    let api = emulator.api_url().to_string();
    for (prefix, name) in [
        ("repos/octo-org/app", "repo-runner"),
        ("orgs/octo-org", "org-runner"),
        ("enterprises/acme", "enterprise-runner"),
    ] {
        let (status, body) = call(
            Method::POST,
            &format!("{api}/{prefix}/actions/runners/generate-jitconfig"),
            Some("t"),
            Some(jit_body(name)),
        )
        .await;
        assert_eq!(status, 201, "{prefix}: {body}");
        let runner = &body["runner"];
        assert_eq!(runner["name"], name);
        assert_eq!(runner["status"], "offline");
        assert_eq!(runner["busy"], false);
        assert_eq!(runner["ephemeral"], true);
        let config = JitConfig::decode(body["encoded_jit_config"].as_str().unwrap()).unwrap();
        assert_eq!(config.runner_id, runner["id"].as_u64().unwrap());
        assert_eq!(config.url, emulator.base_url());

        let (status, list) = call(
            Method::GET,
            &format!("{api}/{prefix}/actions/runners?name={name}"),
            Some("t"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(list["total_count"], 1, "{list}");
        assert_eq!(list["runners"][0]["id"], runner["id"]);

        let id = runner["id"].as_u64().unwrap();
        let (status, got) = call(
            Method::GET,
            &format!("{api}/{prefix}/actions/runners/{id}"),
            Some("t"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(&got, runner);
        let (status, _) = call(
            Method::DELETE,
            &format!("{api}/{prefix}/actions/runners/{id}"),
            Some("t"),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(
            Method::GET,
            &format!("{api}/{prefix}/actions/runners/{id}"),
            Some("t"),
            None,
        )
        .await;
        assert_eq!(status, 404);
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_githubs_errors() {
    let emulator = Emulator::start(config()).await.unwrap();
    let api = emulator.api_url().to_string();
    let jit = format!("{api}/orgs/octo-org/actions/runners/generate-jitconfig");
    let (status, _) = call(
        Method::POST,
        &jit,
        Some("t"),
        Some(json!({"name": "x", "runner_group_id": 1})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        Method::POST,
        &jit,
        Some("t"),
        Some(json!({"name": "x", "runner_group_id": 1, "labels": []})),
    )
    .await;
    assert_eq!(status, 422);
    let response = common::client()
        .post(&jit)
        .bearer_auth("t")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let (status, _) = call(Method::POST, &jit, Some("t"), Some(jit_body("dup"))).await;
    assert_eq!(status, 201);
    let (status, body) = call(Method::POST, &jit, Some("t"), Some(jit_body("dup"))).await;
    assert_eq!(status, 409, "{body}");
    for url in [
        format!("{api}/orgs/nobody/actions/runners"),
        format!("{api}/repos/octo-org/missing/actions/runners"),
        format!("{api}/enterprises/nope/actions/runners"),
        format!("{api}/orgs/octo-org/actions/runners/abc"),
        format!("{api}/repos/octo-org/app/actions/jobs/1"),
        format!("{api}/no/such/path"),
    ] {
        let (status, body) = call(Method::GET, &url, Some("t"), None).await;
        assert_eq!(status, 404, "{url}");
        assert_eq!(body["message"], "Not Found");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn jobs_are_served_for_their_repository_only_and_registration_tokens_are_issued() {
    let emulator = Emulator::start(config()).await.unwrap();
    let api = emulator.api_url().to_string();
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))
        .unwrap();
    let (status, body) = call(
        Method::GET,
        &format!("{api}/repos/Octo-Org/App/actions/jobs/{}", job.job_id),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], job.job_id);
    assert_eq!(body["run_id"], job.run_id);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["runner_name"], serde_json::Value::Null);
    assert_eq!(body["labels"], json!(["self-hosted", "linux"]));
    let (status, _) = call(
        Method::GET,
        &format!("{api}/repos/octo-org/lib/actions/jobs/{}", job.job_id),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, token) = call(
        Method::POST,
        &format!("{api}/repos/octo-org/app/actions/runners/registration-token"),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    assert!(token["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(token["expires_at"].is_string());
    emulator.shutdown().await;
}

#[tokio::test]
async fn ghes_mode_serves_the_api_under_api_v3() {
    let emulator = Emulator::start(EmulatorConfig {
        ghes: true,
        ..config()
    })
    .await
    .unwrap();
    assert_eq!(
        emulator.api_url(),
        format!("{}/api/v3", emulator.base_url())
    );
    let (status, body) = call(
        Method::POST,
        &format!(
            "{}/orgs/octo-org/actions/runners/generate-jitconfig",
            emulator.api_url()
        ),
        Some("t"),
        Some(jit_body("ghes")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]))
        .unwrap();
    let (status, body) = call(
        Method::GET,
        &format!(
            "{}/repos/octo-org/app/actions/jobs/{}",
            emulator.api_url(),
            job.job_id
        ),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with(emulator.api_url())
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn fault_switches_answer_5xx_and_429_for_the_next_calls_then_recover() {
    let emulator = Emulator::start(config()).await.unwrap();
    let url = format!("{}/orgs/octo-org/actions/runners", emulator.api_url());
    // Through the control API, as a demo would.
    let (status, faults) = call(
        Method::POST,
        &format!("{}/_emulator/faults", emulator.base_url()),
        None,
        Some(json!({"server_errors": 2, "server_error_status": 502})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(faults["server_errors"], 2);
    assert_eq!(call(Method::GET, &url, Some("t"), None).await.0, 502);
    assert_eq!(call(Method::GET, &url, Some("t"), None).await.0, 502);
    assert_eq!(call(Method::GET, &url, Some("t"), None).await.0, 200);

    emulator.set_faults(Faults {
        rate_limits: 1,
        ..Faults::default()
    });
    let response = common::client()
        .get(&url)
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    // A secondary rate limit: wait as Retry-After says; the hourly limit is not spent.
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_ne!(response.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(call(Method::GET, &url, Some("t"), None).await.0, 200);
    assert_eq!(emulator.faults(), Faults::default());
    // The usage route counts the answered calls, the injected faults not among them.
    let (status, usage) = call(
        Method::GET,
        &format!("{}/_emulator/usage", emulator.base_url()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(usage["requests"], 2, "{usage}");

    let (status, _) = call(
        Method::POST,
        &format!("{}/_emulator/faults", emulator.base_url()),
        None,
        Some(json!({"server_errors": 1, "server_error_status": 404})),
    )
    .await;
    assert_eq!(status, 422);
    emulator.shutdown().await;
}

#[tokio::test]
async fn runner_lists_are_paginated_with_link_headers() {
    let emulator = Emulator::start(config()).await.unwrap();
    for n in 0..5 {
        emulator
            .generate_jitconfig(
                runway_github_emulator::Scope::organization("octo-org"),
                &format!("r{n}"),
                &["linux"],
            )
            .unwrap();
    }
    let url = format!(
        "{}/orgs/octo-org/actions/runners?per_page=2",
        emulator.api_url()
    );
    let response = common::client()
        .get(&url)
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["total_count"], 5);
    assert_eq!(body["runners"].as_array().unwrap().len(), 2);

    let (_, last) = call(Method::GET, &format!("{url}&page=3"), Some("t"), None).await;
    assert_eq!(last["runners"].as_array().unwrap().len(), 1);
    assert_eq!(last["runners"][0]["name"], "r4");
    let (status, beyond) = call(
        Method::GET,
        &format!("{url}&page=18446744073709551615"),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(beyond["runners"], json!([]));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_queued_until_a_job_starts_and_its_lists_page_with_link_headers() {
    use runway_github_emulator::runner::{self, RunnerOptions};
    use runway_github_emulator::{JobStatus, Scope};
    use std::time::Duration;

    let emulator = Emulator::start(config()).await.unwrap();
    let api = emulator.api_url().to_string();
    let running = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]).lasting(Duration::from_secs(2)))
        .unwrap();
    let mut waiting = NewJob::new("octo-org/app", &["nobody"]);
    waiting.run_id = Some(running.run_id);
    let waiting = emulator.create_job(waiting).unwrap();
    let other = emulator
        .create_job(NewJob::new("octo-org/app", &["nobody"]))
        .unwrap();
    let runs = |status: &'static str| {
        let url = format!("{api}/repos/octo-org/app/actions/runs?status={status}");
        async move {
            let (code, body) = call(Method::GET, &url, Some("t"), None).await;
            assert_eq!(code, 200, "{body}");
            body["workflow_runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| run["id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    // Newest first.
    assert_eq!(runs("queued").await, [other.run_id, running.run_id]);

    let generated = emulator
        .generate_jitconfig(Scope::organization("octo-org"), "busy", &["linux"])
        .unwrap();
    let mut options = RunnerOptions::new(
        Some(emulator.base_url().into()),
        generated.encoded_jit_config,
    );
    options.poll_wait = Duration::from_millis(500);
    let sim = tokio::spawn(runner::run(options));
    emulator
        .wait_for_job(
            running.job_id,
            JobStatus::InProgress,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    // One job runs, the other is still queued: the run is in progress.
    assert_eq!(runs("queued").await, [other.run_id]);
    assert_eq!(runs("in_progress").await, [running.run_id]);
    let url = format!(
        "{api}/repos/octo-org/app/actions/runs/{}/jobs",
        running.run_id
    );
    let (_, jobs) = call(Method::GET, &url, Some("t"), None).await;
    let statuses: Vec<(u64, &str)> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| (job["id"].as_u64().unwrap(), job["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [(running.job_id, "in_progress"), (waiting.job_id, "queued")]
    );

    // Paging keeps the filter in GitHub's Link header.
    let response = common::client()
        .get(format!(
            "{api}/repos/octo-org/app/actions/runs?status=queued&per_page=1"
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("link").is_none(),
        "one queued run fits one page"
    );
    let response = common::client()
        .get(format!("{api}/repos/octo-org/app/actions/runs?per_page=1"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains("per_page=1&page=2>; rel=\"next\""), "{link}");
    let (status, body) = call(
        Method::GET,
        &format!("{url}?filter=newest"),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = call(
        Method::GET,
        &format!("{api}/repos/octo-org/nothing/actions/runs"),
        Some("t"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    sim.await.unwrap().unwrap();
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Several installations of one App

/// `octo-org` (and the user `mona`, and the enterprise `acme`) on the default installation 77,
/// `other-org` on installation 88; `ghp_admin` is a personal access token.
fn two_installations() -> EmulatorConfig {
    let mut config = config();
    config.repositories.push("other-org/app".into());
    config.organizations.push("other-org".into());
    config.tokens = vec!["ghp_admin".into()];
    config.app = AppConfig {
        app_id: 4242,
        installation_id: 77,
        installations: [("Other-Org".to_string(), 88)].into(),
        public_key_pem: Some(APP_PUBLIC_KEY.into()),
        ..AppConfig::default()
    };
    config
}

/// An installation token for installation `id`, bought with the App's JWT.
async fn installation_token(api: &str, id: u64) -> String {
    let jwt = app_jwt(APP_PRIVATE_KEY, "4242");
    let (status, body) = call(
        Method::POST,
        &format!("{api}/app/installations/{id}/access_tokens"),
        Some(&jwt),
        None,
    )
    .await;
    assert_eq!(status, 201, "installation {id}: {body}");
    body["token"].as_str().unwrap().to_string()
}

/// The status and `message` of `GET {url}` with `token`.
async fn get_status(url: &str, token: &str) -> (u16, serde_json::Value) {
    let (status, body) = call(Method::GET, url, Some(token), None).await;
    (status, body["message"].clone())
}

#[tokio::test]
async fn installation_tokens_reach_their_own_accounts_and_get_404_or_403_elsewhere() {
    let emulator = Emulator::start(two_installations()).await.unwrap();
    let api = emulator.api_url().to_string();
    let octo = installation_token(&api, 77).await;
    let other = installation_token(&api, 88).await;
    for (token, own, foreign) in [
        (&octo, "octo-org", "other-org"),
        (&other, "other-org", "octo-org"),
    ] {
        let own_repo = format!("{api}/repos/{own}/app/actions/runners");
        let own_org = format!("{api}/orgs/{own}/actions/runners");
        assert_eq!(get_status(&own_repo, token).await.0, 200, "{own_repo}");
        assert_eq!(get_status(&own_org, token).await.0, 200, "{own_org}");
        let (status, body) = call(
            Method::POST,
            &format!("{api}/orgs/{own}/actions/runners/generate-jitconfig"),
            Some(token),
            Some(jit_body(&format!("{own}-runner"))),
        )
        .await;
        assert_eq!(status, 201, "{own}: {body}");

        // GitHub hides another installation's repositories and forbids its organizations,
        // whatever the spelling of the login.
        for url in [
            format!("{api}/repos/{foreign}/app/actions/runners"),
            format!("{api}/repos/{}/app/actions/runs", foreign.to_uppercase()),
            format!("{api}/repos/{foreign}/app/actions/jobs/1"),
        ] {
            let (status, message) = get_status(&url, token).await;
            assert_eq!((status, message), (404, json!("Not Found")), "{url}");
        }
        let (status, body) = call(
            Method::POST,
            &format!("{api}/orgs/{foreign}/actions/runners/generate-jitconfig"),
            Some(token),
            Some(jit_body("intruder")),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["message"], "Resource not accessible by integration");
        let (status, message) =
            get_status(&format!("{api}/orgs/{foreign}/actions/runners"), token).await;
        assert_eq!(
            (status, message),
            (403, json!("Resource not accessible by integration"))
        );
    }
    assert!(
        emulator
            .runners()
            .iter()
            .all(|runner| runner.name != "intruder"),
        "a refused request registered nothing"
    );
    // Enterprise endpoints belong to the default installation.
    let enterprise = format!("{api}/enterprises/acme/actions/runners");
    assert_eq!(get_status(&enterprise, &octo).await.0, 200);
    assert_eq!(get_status(&enterprise, &other).await.0, 403);
    // A personal access token reaches every account.
    for url in [
        format!("{api}/repos/octo-org/app/actions/runners"),
        format!("{api}/repos/other-org/app/actions/runners"),
        format!("{api}/orgs/other-org/actions/runners"),
        enterprise.clone(),
    ] {
        assert_eq!(get_status(&url, "ghp_admin").await.0, 200, "{url}");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn installation_repositories_lists_the_tokens_own_installation() {
    let emulator = Emulator::start(two_installations()).await.unwrap();
    let api = emulator.api_url().to_string();
    let url = format!("{api}/installation/repositories");
    let listed = |token: String| {
        let url = url.clone();
        async move {
            let (status, body) = call(Method::GET, &url, Some(&token), None).await;
            assert_eq!(status, 200, "{body}");
            let names: Vec<String> = body["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|repo| repo["full_name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(body["total_count"], names.len(), "{body}");
            names
        }
    };
    assert_eq!(
        listed(installation_token(&api, 77).await).await,
        ["octo-org/app", "octo-org/lib", "mona/dotfiles"]
    );
    assert_eq!(
        listed(installation_token(&api, 88).await).await,
        ["other-org/app"]
    );
    assert_eq!(listed("ghp_admin".to_string()).await.len(), 4);
    emulator.shutdown().await;
}

#[tokio::test]
async fn installation_lookups_name_each_accounts_own_installation() {
    let emulator = Emulator::start(two_installations()).await.unwrap();
    let api = emulator.api_url().to_string();
    let jwt = app_jwt(APP_PRIVATE_KEY, "4242");
    for (path, id, login) in [
        ("repos/octo-org/app/installation", 77, "octo-org"),
        ("repos/mona/dotfiles/installation", 77, "mona"),
        ("repos/Other-Org/App/installation", 88, "other-org"),
        ("orgs/octo-org/installation", 77, "octo-org"),
        ("orgs/OTHER-ORG/installation", 88, "other-org"),
        ("app/installations/77", 77, "octo-org"),
        ("app/installations/88", 88, "other-org"),
    ] {
        let (status, installation) =
            call(Method::GET, &format!("{api}/{path}"), Some(&jwt), None).await;
        assert_eq!(status, 200, "{path}: {installation}");
        assert_eq!(installation["id"], id, "{path}");
        assert_eq!(installation["account"]["login"], login, "{path}");
        assert_eq!(
            installation["access_tokens_url"],
            format!("{api}/app/installations/{id}/access_tokens"),
            "{path}"
        );
        assert!(
            installation["html_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/settings/installations/{id}")),
            "{path}: {installation}"
        );
    }
    for (method, path) in [
        (Method::GET, "app/installations/99"),
        (Method::POST, "app/installations/99/access_tokens"),
    ] {
        let (status, body) = call(method, &format!("{api}/{path}"), Some(&jwt), None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, app) = call(Method::GET, &format!("{api}/app"), Some(&jwt), None).await;
    assert_eq!(status, 200);
    assert_eq!(app["installations_count"], 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn in_ghes_mode_installation_tokens_are_checked_under_api_v3_too() {
    let emulator = Emulator::start(EmulatorConfig {
        ghes: true,
        ..two_installations()
    })
    .await
    .unwrap();
    let api = emulator.api_url().to_string();
    assert!(api.ends_with("/api/v3"));
    let other = installation_token(&api, 88).await;
    let octo = installation_token(&api, 77).await;
    assert_eq!(
        get_status(&format!("{api}/orgs/other-org/actions/runners"), &other)
            .await
            .0,
        200
    );
    assert_eq!(
        get_status(&format!("{api}/repos/octo-org/app/actions/runners"), &other)
            .await
            .0,
        404
    );
    assert_eq!(
        get_status(&format!("{api}/orgs/octo-org/actions/runners"), &other)
            .await
            .0,
        403
    );
    // An escaped login is the same login.
    assert_eq!(
        get_status(
            &format!("{api}/repos/%6Fther-org/app/actions/runners"),
            &octo
        )
        .await
        .0,
        404
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_webhook_names_the_installation_of_its_repositorys_owner() {
    let (emulator, receiver) = common::start_with_receiver(two_installations()).await;
    let other = emulator
        .create_job(NewJob::new("other-org/app", &["linux"]))
        .unwrap();
    let octo = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]))
        .unwrap();
    let received = receiver.wait_for(2).await;
    let installation_of = |job_id: u64| {
        received
            .iter()
            .find(|webhook| webhook.job_id() == job_id)
            .map(|webhook| webhook.payload["installation"]["id"].clone())
    };
    assert_eq!(installation_of(other.job_id), Some(json!(88)));
    assert_eq!(installation_of(octo.job_id), Some(json!(77)));
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_installation_for_an_unknown_account_is_a_configuration_error() {
    let mut config = two_installations();
    config.app.installations.insert("nobody".into(), 99);
    let error = Emulator::start(config).await.unwrap_err();
    assert!(error.to_string().contains("nobody"), "{error}");
}
