//! The REST client against the runway GitHub emulator: the same calls runway makes for real.

mod support;

use std::time::Duration;

use runway_clock::{SharedClock, SystemClock, VirtualClock};
use runway_github::{
    AppCredentials, Credentials, GitHub, GitHubError, JitConfigRequest, RestGitHub, RetryPolicy,
    RunnerScope,
};
use runway_github_emulator::{
    AppConfig, Emulator, EmulatorConfig, EmulatorHandle, EnterpriseConfig, Faults, NewJob,
};
use support::app_key;

const APP_ID: u64 = 314;
const INSTALLATION: u64 = 2718;

async fn emulator(clock: SharedClock, ghes: bool) -> EmulatorHandle {
    let config = EmulatorConfig {
        app: AppConfig {
            app_id: APP_ID,
            installation_id: INSTALLATION,
            public_key_pem: Some(app_key().public_pem.clone()),
            ..AppConfig::default()
        },
        repositories: vec!["octo-org/app".into()],
        organizations: vec!["octo-org".into()],
        enterprises: vec![EnterpriseConfig {
            slug: "octo-corp".into(),
            organizations: vec!["octo-org".into()],
        }],
        ghes,
        clock,
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.unwrap()
}

fn client(emulator: &EmulatorHandle, clock: SharedClock, private_pem: &str) -> RestGitHub {
    let credentials = Credentials::App(
        AppCredentials::new(APP_ID.to_string(), private_pem.as_bytes(), INSTALLATION).unwrap(),
    );
    RestGitHub::with_options(emulator.api_url(), credentials, clock, support::untimed()).unwrap()
}

fn jit_request(name: &str) -> JitConfigRequest {
    JitConfigRequest {
        name: name.into(),
        runner_group_id: 1,
        labels: vec!["self-hosted".into(), "linux".into()],
        work_folder: Some("_work".into()),
    }
}

#[tokio::test]
async fn a_jit_runner_is_created_listed_read_and_deleted_at_every_level() {
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), false).await;
    let github = client(&emulator, clock, &app_key().private_pem);
    for (scope, name) in [
        (RunnerScope::repository("octo-org", "app"), "runway-repo-1"),
        (RunnerScope::organization("octo-org"), "runway-org-1"),
        (RunnerScope::enterprise("octo-corp"), "runway-ent-1"),
    ] {
        let config = github
            .generate_jit_config(&scope, &jit_request(name))
            .await
            .unwrap();
        assert_eq!(config.runner.name, name);
        assert!(!config.encoded_jit_config.expose().is_empty());
        let id = config.runner.id;
        assert!(
            emulator
                .runners()
                .iter()
                .any(|r| r.id == id && r.name == name)
        );

        let listed = github.list_runners(&scope, Some(name)).await.unwrap();
        assert_eq!(
            listed.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id],
            "{scope:?}"
        );
        assert!(
            github
                .list_runners(&scope, None)
                .await
                .unwrap()
                .iter()
                .any(|r| r.id == id)
        );
        let runner = github.runner(&scope, id).await.unwrap();
        assert!(
            runner.labels.iter().any(|l| l.name == "linux"),
            "{runner:?}"
        );

        github.delete_runner(&scope, id).await.unwrap();
        assert!(!emulator.runners().iter().any(|r| r.id == id));
        let err = github.runner(&scope, id).await.unwrap_err();
        assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn registration_tokens_and_jobs_are_read() {
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), false).await;
    let github = client(&emulator, clock, &app_key().private_pem);
    for scope in [
        RunnerScope::repository("octo-org", "app"),
        RunnerScope::organization("octo-org"),
        RunnerScope::enterprise("octo-corp"),
    ] {
        let token = github.registration_token(&scope).await.unwrap();
        assert!(!token.token.expose().is_empty());
    }
    let created = emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))
        .unwrap();
    let job = github
        .workflow_job("octo-org", "app", created.job_id)
        .await
        .unwrap();
    assert_eq!(
        (job.id, job.run_id, job.status.as_str()),
        (created.job_id, created.run_id, "queued")
    );
    assert_eq!(job.labels, ["self-hosted", "linux"]);
    assert_eq!(job.runner_name, None);
    let err = github
        .workflow_job("octo-org", "app", created.job_id + 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_taken_runner_name_is_a_validation_error() {
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), false).await;
    let github = client(&emulator, clock, &app_key().private_pem);
    let scope = RunnerScope::repository("octo-org", "app");
    github
        .generate_jit_config(&scope, &jit_request("same"))
        .await
        .unwrap();
    let err = github
        .generate_jit_config(&scope, &jit_request("same"))
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::Validation { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_app_key_github_does_not_know_is_unauthorized() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), false).await;
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let other_pem = other.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let github = client(&emulator, clock, &other_pem);
    let err = github.workflow_job("octo-org", "app", 1).await.unwrap_err();
    assert!(matches!(err, GitHubError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn enterprise_server_base_urls_work() {
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), true).await;
    assert!(emulator.api_url().ends_with("/api/v3"));
    let github = client(&emulator, clock, &app_key().private_pem);
    let config = github
        .generate_jit_config(
            &RunnerScope::organization("octo-org"),
            &jit_request("ghes-1"),
        )
        .await
        .unwrap();
    assert_eq!(config.runner.name, "ghes-1");
}

#[tokio::test(start_paused = true)]
async fn injected_server_errors_and_rate_limits_are_ridden_out_on_virtual_time() {
    let clock = VirtualClock::new().shared();
    let emulator = emulator(clock.clone(), false).await;
    let github = client(&emulator, clock.clone(), &app_key().private_pem);
    let created = emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted"]))
        .unwrap();
    // Warm the token cache so the faults hit the call itself.
    github
        .workflow_job("octo-org", "app", created.job_id)
        .await
        .unwrap();

    emulator.set_faults(Faults {
        server_errors: 2,
        server_error_status: Some(502),
        ..Faults::default()
    });
    let wall = std::time::Instant::now();
    let before = clock.now();
    github
        .workflow_job("octo-org", "app", created.job_id)
        .await
        .unwrap();
    assert!(
        (clock.now() - before).num_seconds() >= 3,
        "backoff 1 s + 2 s on the clock"
    );

    emulator.set_faults(Faults {
        rate_limits: 1,
        ..Faults::default()
    });
    let before = clock.now();
    github
        .workflow_job("octo-org", "app", created.job_id)
        .await
        .unwrap();
    assert!(
        (clock.now() - before).num_seconds() >= 1,
        "Retry-After honoured"
    );
    assert_eq!(emulator.faults().rate_limits, 0);
    assert!(wall.elapsed() < Duration::from_secs(10));

    let github = github.with_retry_policy(RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    });
    emulator.set_faults(Faults {
        server_errors: 5,
        ..Faults::default()
    });
    let err = github
        .workflow_job("octo-org", "app", created.job_id)
        .await
        .unwrap_err();
    assert_eq!(err, GitHubError::Server { status: 500 });
}

#[tokio::test]
async fn queued_jobs_are_found_through_runs_and_installation_repositories_page_by_page() {
    let clock = SystemClock::shared();
    // One more repository than a page holds.
    let mut repositories = vec!["octo-org/app".to_owned()];
    repositories.extend((1..=100).map(|n| format!("octo-org/repo-{n}")));
    let config = EmulatorConfig {
        app: AppConfig {
            app_id: APP_ID,
            installation_id: INSTALLATION,
            public_key_pem: Some(app_key().public_pem.clone()),
            ..AppConfig::default()
        },
        repositories,
        organizations: vec!["octo-org".into()],
        clock: clock.clone(),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.unwrap();
    let github = client(&emulator, clock, &app_key().private_pem);

    let listed = github.installation_repositories().await.unwrap();
    assert_eq!(listed.len(), 101);
    let app = &listed
        .iter()
        .find(|r| r.repository.full_name == "octo-org/app")
        .unwrap()
        .repository;
    assert!(listed.iter().all(|r| r.last_activity().is_some()));
    assert_eq!(
        (app.name.as_str(), app.owner.login.as_str()),
        ("app", "octo-org")
    );
    assert!(app.owner.is_organization(), "{app:?}");
    assert!(
        listed
            .iter()
            .any(|r| r.repository.full_name == "octo-org/repo-100")
    );

    // One run of 101 jobs (two pages of jobs), then 100 runs of one job: 101 runs.
    let first = emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))
        .unwrap();
    for _ in 0..100 {
        let mut job = NewJob::new("octo-org/app", &["self-hosted", "linux"]);
        job.run_id = Some(first.run_id);
        emulator.create_job(job).unwrap();
    }
    let mut single = Vec::new();
    for _ in 0..100 {
        single.push(
            emulator
                .create_job(NewJob::new("octo-org/app", &["self-hosted"]))
                .unwrap(),
        );
    }
    emulator.cancel_job(single[0].job_id).unwrap();

    let queued = github
        .workflow_runs("octo-org", "app", "queued")
        .await
        .unwrap();
    assert_eq!(queued.len(), 100, "the cancelled run is not queued");
    let big = queued.iter().find(|run| run.id == first.run_id).unwrap();
    assert_eq!(big.repository.full_name, "octo-org/app");
    assert_eq!(big.status.as_deref(), Some("queued"));
    assert!(big.repository.id > 0);
    assert!(!queued.iter().any(|run| run.id == single[0].run_id));
    let ids: std::collections::BTreeSet<u64> = queued.iter().map(|run| run.id).collect();
    assert_eq!(
        ids.len(),
        queued.len(),
        "no run is listed twice across pages"
    );
    for status in ["completed", "cancelled"] {
        let runs = github
            .workflow_runs("octo-org", "app", status)
            .await
            .unwrap();
        assert_eq!(
            runs.iter().map(|run| run.id).collect::<Vec<_>>(),
            [single[0].run_id],
            "{status}"
        );
    }
    assert!(
        github
            .workflow_runs("octo-org", "app", "in_progress")
            .await
            .unwrap()
            .is_empty()
    );

    let jobs = github
        .workflow_run_jobs("octo-org", "app", first.run_id)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 101);
    assert!(
        jobs.iter()
            .all(|job| job.status == "queued" && job.run_id == first.run_id)
    );
    assert_eq!(jobs[0].id, first.job_id);
    assert_eq!(jobs[0].workflow_name.as_deref(), Some("CI"));
    assert_eq!(jobs[0].head_branch.as_deref(), Some("main"));
    assert_eq!(jobs[0].labels, ["self-hosted", "linux"]);
    assert!(jobs[0].created_at.is_some());

    // Another repository's run, or one that does not exist, is not found.
    for (repo, run_id) in [("repo-1", first.run_id), ("app", 1)] {
        let err = github
            .workflow_run_jobs("octo-org", repo, run_id)
            .await
            .unwrap_err();
        assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
    }
    let err = github
        .workflow_runs("octo-org", "missing", "queued")
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_server_error_while_listing_runs_is_retryable() {
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), false).await;
    let github = client(&emulator, clock, &app_key().private_pem).with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    emulator.set_faults(Faults {
        server_errors: 1,
        server_error_status: Some(503),
        ..Faults::default()
    });
    let err = github
        .workflow_runs("octo-org", "app", "queued")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        github
            .workflow_runs("octo-org", "app", "queued")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn unchanged_resources_cost_304s_the_emulator_does_not_count_and_a_spent_limit_is_refused() {
    let clock = SystemClock::shared();
    let emulator = emulator(clock.clone(), false).await;
    let github = RestGitHub::new(
        emulator.api_url(),
        Credentials::Token(runway_github::Secret::new("t")),
        clock,
    )
    .unwrap();
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))
        .unwrap();
    let served = emulator.api_usage();
    let remaining = emulator.rate_limit().remaining;

    for _ in 0..2 {
        github
            .workflow_runs("octo-org", "app", "queued")
            .await
            .unwrap();
        github
            .workflow_job("octo-org", "app", job.job_id)
            .await
            .unwrap();
    }
    let used = emulator.api_usage().since(&served);
    assert_eq!((used.requests, used.not_modified), (4, 2), "{used:?}");
    assert_eq!(used.counted(), 2);
    assert_eq!(emulator.rate_limit().remaining, remaining - 2);
    let seen = github.usage();
    assert_eq!((seen.requests, seen.not_modified), (4, 2), "{seen:?}");
    assert_eq!(
        seen.rate_limit.map(|rate| rate.remaining),
        Some(remaining - 2),
        "the client saw the emulator's count"
    );

    // A change (another run) is answered in full again.
    emulator
        .create_job(NewJob::new("octo-org/app", &["self-hosted", "linux"]))
        .unwrap();
    let served = emulator.api_usage();
    let runs = github
        .workflow_runs("octo-org", "app", "queued")
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(emulator.api_usage().since(&served).not_modified, 0);

    // Once the window is spent, GitHub refuses with 403 until the reset.
    emulator.set_rate_limit(5000, 0);
    let err = github
        .workflow_job("octo-org", "app", job.job_id + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::RateLimited { retry_after } if retry_after > Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(emulator.api_usage().rate_limited, 1);
}

/// An App installed on two organizations, each its own installation, and a third one the
/// deployment does not serve.
async fn emulator_with_installations(clock: SharedClock) -> EmulatorHandle {
    let config = EmulatorConfig {
        app: AppConfig {
            app_id: APP_ID,
            installation_id: INSTALLATION,
            installations: [
                ("other-org".to_owned(), 2719),
                ("third-org".to_owned(), 2720),
            ]
            .into_iter()
            .collect(),
            public_key_pem: Some(app_key().public_pem.clone()),
            ..AppConfig::default()
        },
        repositories: vec![
            "octo-org/app".into(),
            "other-org/api".into(),
            "third-org/web".into(),
        ],
        organizations: vec!["octo-org".into(), "other-org".into(), "third-org".into()],
        clock,
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.unwrap()
}

#[tokio::test]
async fn an_app_serving_several_installations_acts_for_each_owners_own() {
    let clock = SystemClock::shared();
    let emulator = emulator_with_installations(clock.clone()).await;
    let app = AppCredentials::new(
        APP_ID.to_string(),
        app_key().private_pem.as_bytes(),
        INSTALLATION,
    )
    .unwrap()
    .serving(&[INSTALLATION, 2719]);
    let github = RestGitHub::with_options(
        emulator.api_url(),
        Credentials::App(app),
        clock,
        support::untimed(),
    )
    .unwrap();

    // Each organization's runner is registered through its own installation's token (another
    // installation's token gets a 404 or 403 from GitHub).
    for (scope, name) in [
        (RunnerScope::repository("octo-org", "app"), "runway-a-1"),
        (RunnerScope::repository("other-org", "api"), "runway-b-1"),
        (RunnerScope::organization("other-org"), "runway-b-2"),
        (RunnerScope::organization("OCTO-ORG"), "runway-a-2"),
    ] {
        let config = github
            .generate_jit_config(&scope, &jit_request(name))
            .await
            .unwrap_or_else(|e| panic!("{scope:?}: {e}"));
        let listed = github.list_runners(&scope, Some(name)).await.unwrap();
        assert_eq!(listed.len(), 1, "{scope:?}");
        github
            .delete_runner(&scope, config.runner.id)
            .await
            .unwrap();
    }
    assert_eq!(
        github.installation_for("other-org", "api").await.unwrap(),
        Some(2719)
    );
    assert_eq!(
        github.installation_for("octo-org", "app").await.unwrap(),
        Some(INSTALLATION)
    );

    // The repositories of every served installation, and none of the unserved one.
    let mut repositories: Vec<String> = github
        .installation_repositories()
        .await
        .unwrap()
        .into_iter()
        .map(|repo| repo.repository.full_name)
        .collect();
    repositories.sort();
    assert_eq!(repositories, ["octo-org/app", "other-org/api"]);

    // An owner whose installation is not served is refused, naming the installation.
    let refused = github
        .generate_jit_config(
            &RunnerScope::repository("third-org", "web"),
            &jit_request("runway-c-1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, GitHubError::Forbidden { message } if message.contains("2720")),
        "{refused:?}"
    );
    assert!(emulator.runners().is_empty());

    // One installation's handle acts for it alone: the other's repository is out of reach.
    let pinned = github.for_installation(INSTALLATION).unwrap();
    let error = pinned
        .list_runners(&RunnerScope::repository("other-org", "api"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
    emulator.shutdown().await;
}
