//! GitHub's JSON shapes for the emulated objects: runners, jobs, accounts, repositories,
//! installations and `workflow_job` webhook payloads.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::state::{Account, Job, JobEvent, JobStatus, Repository, Runner, World};

/// The emulator's own addresses, used in every `*_url` field.
#[derive(Debug, Clone)]
pub struct Urls {
    /// REST API root (`http://127.0.0.1:port` or `.../api/v3`).
    pub api: String,
    /// Web root (`http://127.0.0.1:port`).
    pub html: String,
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn node_id(kind: &str, id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

pub fn runner(runner: &Runner, now: DateTime<Utc>, world: &World) -> Value {
    let status = if runner.online(now, world.offline_after) {
        "online"
    } else {
        "offline"
    };
    let mut value = json!({
        "id": runner.id,
        "runner_group_id": runner.group_id,
        "name": runner.name,
        "os": runner.os,
        "status": status,
        "busy": runner.job.is_some(),
        "ephemeral": runner.ephemeral,
        "labels": runner.labels,
    });
    if let (Some(version), Some(map)) = (&runner.version, value.as_object_mut()) {
        map.insert("version".to_string(), json!(version));
    }
    value
}

pub fn job(job: &Job, urls: &Urls) -> Value {
    let repo = &job.repository;
    let (runner_id, runner_name, group_id, group_name) = match &job.runner {
        Some(r) => (
            json!(r.id),
            json!(r.name),
            json!(r.group_id),
            json!(r.group_name),
        ),
        None => (Value::Null, Value::Null, Value::Null, Value::Null),
    };
    let steps = steps(job);
    json!({
        "id": job.id,
        "run_id": job.run_id,
        "workflow_name": job.workflow_name,
        "head_branch": job.head_branch,
        "run_url": format!("{}/repos/{repo}/actions/runs/{}", urls.api, job.run_id),
        "run_attempt": job.run_attempt,
        "node_id": node_id("CheckRun", job.id),
        "head_sha": job.head_sha,
        "url": format!("{}/repos/{repo}/actions/jobs/{}", urls.api, job.id),
        "html_url": format!("{}/{repo}/actions/runs/{}/job/{}", urls.html, job.run_id, job.id),
        "status": job.status.as_str(),
        "conclusion": job.conclusion,
        "created_at": timestamp(job.created_at),
        // GitHub reports a queued job's start as its creation time.
        "started_at": timestamp(job.started_at.unwrap_or(job.created_at)),
        "completed_at": job.completed_at.map(timestamp),
        "name": job.name,
        "steps": steps,
        "check_run_url": format!("{}/repos/{repo}/check-runs/{}", urls.api, job.id),
        "labels": job.labels,
        "runner_id": runner_id,
        "runner_name": runner_name,
        "runner_group_id": group_id,
        "runner_group_name": group_name,
    })
}

/// A workflow run's status and conclusion, from the jobs of its latest attempt: queued until
/// one starts, completed when all are, in progress in between (as GitHub reports a run).
pub fn run_status(jobs: &[&Job]) -> (&'static str, Option<String>) {
    if jobs.iter().all(|job| job.status == JobStatus::Completed) {
        let conclusion = ["failure", "cancelled"]
            .into_iter()
            .find(|bad| {
                jobs.iter()
                    .any(|job| job.conclusion.as_deref() == Some(*bad))
            })
            .unwrap_or("success");
        return ("completed", Some(conclusion.to_string()));
    }
    if jobs.iter().all(|job| job.status == JobStatus::Queued) {
        return ("queued", None);
    }
    ("in_progress", None)
}

/// A workflow run, as `GET /repos/{owner}/{repo}/actions/runs` lists it. `jobs` are the jobs
/// of its latest attempt (never empty).
pub fn workflow_run(
    repo: &Repository,
    run_id: u64,
    jobs: &[&Job],
    urls: &Urls,
    epoch: DateTime<Utc>,
) -> Value {
    let first = jobs[0];
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", urls.api);
    let (status, conclusion) = run_status(jobs);
    let created = jobs.iter().map(|job| job.created_at).min().unwrap_or(epoch);
    let updated = jobs
        .iter()
        .flat_map(|job| [Some(job.created_at), job.started_at, job.completed_at])
        .flatten()
        .max()
        .unwrap_or(created);
    let attempt = first.run_attempt;
    let path = ".github/workflows/ci.yml";
    let workflow_id = 161_335_u64;
    let actor = Account {
        login: "monalisa".to_string(),
        id: 2,
        is_org: false,
        enterprise: None,
    };
    let author = json!({"name": "Monalisa Octocat", "email": "monalisa@example.com"});
    let repository = repository(repo, urls, epoch);
    json!({
        "id": run_id,
        "name": first.workflow_name,
        "node_id": node_id("WorkflowRun", run_id),
        "check_suite_id": run_id,
        "check_suite_node_id": node_id("CheckSuite", run_id),
        "head_branch": first.head_branch,
        "head_sha": first.head_sha,
        "path": path,
        "display_title": first.workflow_name,
        "run_number": run_id % 100_000,
        "run_attempt": attempt,
        "referenced_workflows": [],
        "event": "push",
        "status": status,
        "conclusion": conclusion,
        "workflow_id": workflow_id,
        "url": format!("{api}/actions/runs/{run_id}"),
        "html_url": format!("{}/{full}/actions/runs/{run_id}", urls.html),
        "pull_requests": [],
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
        "actor": user(&actor, urls),
        "triggering_actor": user(&actor, urls),
        "run_started_at": timestamp(created),
        "jobs_url": format!("{api}/actions/runs/{run_id}/jobs"),
        "logs_url": format!("{api}/actions/runs/{run_id}/logs"),
        "check_suite_url": format!("{api}/check-suites/{run_id}"),
        "artifacts_url": format!("{api}/actions/runs/{run_id}/artifacts"),
        "cancel_url": format!("{api}/actions/runs/{run_id}/cancel"),
        "rerun_url": format!("{api}/actions/runs/{run_id}/rerun"),
        "previous_attempt_url": (attempt > 1)
            .then(|| format!("{api}/actions/runs/{run_id}/attempts/{}", attempt - 1)),
        "workflow_url": format!("{api}/actions/workflows/{workflow_id}"),
        "head_commit": {
            "id": first.head_sha,
            "tree_id": first.head_sha,
            "message": "Build it",
            "timestamp": timestamp(created),
            "author": author,
            "committer": author,
        },
        "repository": repository,
        "head_repository": repository,
        "head_repository_id": repo.id,
    })
}

/// A running job has a "Set up job" step; a finished one also its single work step.
fn steps(job: &Job) -> Value {
    let (Some(started), Some(_)) = (job.started_at, &job.runner) else {
        return json!([]);
    };
    match job.status {
        JobStatus::Queued => json!([]),
        JobStatus::InProgress => json!([
            {"name": "Set up job", "status": "in_progress", "conclusion": null, "number": 1,
             "started_at": timestamp(started), "completed_at": null}
        ]),
        JobStatus::Completed => {
            let completed = job.completed_at.unwrap_or(started);
            json!([
                {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1,
                 "started_at": timestamp(started), "completed_at": timestamp(started)},
                {"name": "Run job", "status": "completed", "conclusion": job.conclusion, "number": 2,
                 "started_at": timestamp(started), "completed_at": timestamp(completed)}
            ])
        }
    }
}

pub fn user(account: &Account, urls: &Urls) -> Value {
    let login = &account.login;
    let api = &urls.api;
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id(if account.is_org { "Organization" } else { "User" }, account.id),
        "avatar_url": format!("{}/avatars/u/{}", urls.html, account.id),
        "gravatar_id": "",
        "url": format!("{api}/users/{login}"),
        "html_url": format!("{}/{login}", urls.html),
        "followers_url": format!("{api}/users/{login}/followers"),
        "following_url": format!("{api}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{login}/subscriptions"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "events_url": format!("{api}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{login}/received_events"),
        "type": if account.is_org { "Organization" } else { "User" },
        "user_view_type": "public",
        "site_admin": false,
    })
}

pub fn organization(account: &Account, urls: &Urls) -> Value {
    let login = &account.login;
    let api = &urls.api;
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id("Organization", account.id),
        "url": format!("{api}/orgs/{login}"),
        "repos_url": format!("{api}/orgs/{login}/repos"),
        "events_url": format!("{api}/orgs/{login}/events"),
        "hooks_url": format!("{api}/orgs/{login}/hooks"),
        "issues_url": format!("{api}/orgs/{login}/issues"),
        "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
        "public_members_url": format!("{api}/orgs/{login}/public_members{{/member}}"),
        "avatar_url": format!("{}/avatars/u/{}", urls.html, account.id),
        "description": null,
    })
}

pub fn repository(repo: &Repository, urls: &Urls, created: DateTime<Utc>) -> Value {
    let full = repo.full_name();
    let r = format!("{}/repos/{full}", urls.api);
    let html = format!("{}/{full}", urls.html);
    let host = urls
        .html
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let at = timestamp(created);
    json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full,
        "private": true,
        "owner": user(&repo.owner, urls),
        "html_url": html,
        "description": null,
        "fork": false,
        "url": r,
        "forks_url": format!("{r}/forks"),
        "keys_url": format!("{r}/keys{{/key_id}}"),
        "collaborators_url": format!("{r}/collaborators{{/collaborator}}"),
        "teams_url": format!("{r}/teams"),
        "hooks_url": format!("{r}/hooks"),
        "issue_events_url": format!("{r}/issues/events{{/number}}"),
        "events_url": format!("{r}/events"),
        "assignees_url": format!("{r}/assignees{{/user}}"),
        "branches_url": format!("{r}/branches{{/branch}}"),
        "tags_url": format!("{r}/tags"),
        "blobs_url": format!("{r}/git/blobs{{/sha}}"),
        "git_tags_url": format!("{r}/git/tags{{/sha}}"),
        "git_refs_url": format!("{r}/git/refs{{/sha}}"),
        "trees_url": format!("{r}/git/trees{{/sha}}"),
        "statuses_url": format!("{r}/statuses/{{sha}}"),
        "languages_url": format!("{r}/languages"),
        "stargazers_url": format!("{r}/stargazers"),
        "contributors_url": format!("{r}/contributors"),
        "subscribers_url": format!("{r}/subscribers"),
        "subscription_url": format!("{r}/subscription"),
        "commits_url": format!("{r}/commits{{/sha}}"),
        "git_commits_url": format!("{r}/git/commits{{/sha}}"),
        "comments_url": format!("{r}/comments{{/number}}"),
        "issue_comment_url": format!("{r}/issues/comments{{/number}}"),
        "contents_url": format!("{r}/contents/{{+path}}"),
        "compare_url": format!("{r}/compare/{{base}}...{{head}}"),
        "merges_url": format!("{r}/merges"),
        "archive_url": format!("{r}/{{archive_format}}{{/ref}}"),
        "downloads_url": format!("{r}/downloads"),
        "issues_url": format!("{r}/issues{{/number}}"),
        "pulls_url": format!("{r}/pulls{{/number}}"),
        "milestones_url": format!("{r}/milestones{{/number}}"),
        "notifications_url": format!("{r}/notifications{{?since,all,participating}}"),
        "labels_url": format!("{r}/labels{{/name}}"),
        "releases_url": format!("{r}/releases{{/id}}"),
        "deployments_url": format!("{r}/deployments"),
        "created_at": at,
        "updated_at": at,
        "pushed_at": at,
        "git_url": format!("git://{host}/{full}.git"),
        "ssh_url": format!("git@{host}:{full}.git"),
        "clone_url": format!("{html}.git"),
        "svn_url": html,
        "homepage": null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": null,
        "has_issues": true,
        "has_projects": true,
        "has_downloads": true,
        "has_wiki": true,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": 0,
        "license": null,
        "allow_forking": true,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": [],
        "visibility": "private",
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": "main",
        "custom_properties": {},
    })
}

/// The `workflow_job` webhook body for one change of one job.
pub fn workflow_job_event(
    world: &World,
    job: &Job,
    event: JobEvent,
    urls: &Urls,
    installation_id: u64,
    epoch: DateTime<Utc>,
) -> Value {
    let mut workflow_job = self::job(job, urls);
    // The webhook carries the job as it was at the change it announces.
    if let Some(map) = workflow_job.as_object_mut() {
        match event {
            JobEvent::Queued => {
                map.insert("status".into(), json!("queued"));
                map.insert("conclusion".into(), Value::Null);
                map.insert("completed_at".into(), Value::Null);
                map.insert("steps".into(), json!([]));
                map.insert("started_at".into(), json!(timestamp(job.created_at)));
                for key in [
                    "runner_id",
                    "runner_name",
                    "runner_group_id",
                    "runner_group_name",
                ] {
                    map.insert(key.into(), Value::Null);
                }
            }
            JobEvent::InProgress => {
                map.insert("status".into(), json!("in_progress"));
                map.insert("conclusion".into(), Value::Null);
                map.insert("completed_at".into(), Value::Null);
                if let Some(started) = job.started_at {
                    map.insert(
                        "steps".into(),
                        json!([{"name": "Set up job", "status": "in_progress", "conclusion": null,
                                "number": 1, "started_at": timestamp(started), "completed_at": null}]),
                    );
                }
            }
            JobEvent::Completed => {}
        }
    }
    let mut payload = serde_json::Map::new();
    payload.insert("action".into(), json!(event.action()));
    payload.insert("workflow_job".into(), workflow_job);
    if let Some(repo) = world.repository_by_full_name(&job.repository) {
        payload.insert("repository".into(), repository(repo, urls, epoch));
        if repo.owner.is_org {
            payload.insert("organization".into(), organization(&repo.owner, urls));
        }
    }
    let sender = Account {
        login: "monalisa".to_string(),
        id: 2,
        is_org: false,
        enterprise: None,
    };
    payload.insert("sender".into(), user(&sender, urls));
    payload.insert(
        "installation".into(),
        json!({"id": installation_id, "node_id": node_id("Installation", installation_id)}),
    );
    Value::Object(payload)
}

pub fn error(message: &str, status: u16) -> Value {
    json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.to_string(),
    })
}
