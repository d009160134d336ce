//! The GitHub App manifest runway asks GitHub for, and where the browser posts it.

use serde_json::{Value, json};

/// Where runway registers its runners: the App's permissions follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerScope {
    /// Runners per repository (`POST /repos/{o}/{r}/actions/runners/generate-jitconfig`).
    Repository,
    /// Runners per organisation (`POST /orgs/{org}/actions/runners/generate-jitconfig`).
    Organization,
}

impl RunnerScope {
    /// Exactly what runway calls: jobs and runs are read (`actions: read`), runners are
    /// registered and removed (`administration: write` on repositories, or
    /// `organization_self_hosted_runners: write`). `metadata: read` comes with every App.
    pub fn permissions(self) -> Value {
        match self {
            RunnerScope::Repository => json!({"actions": "read", "administration": "write"}),
            RunnerScope::Organization => {
                json!({"actions": "read", "organization_self_hosted_runners": "write"})
            }
        }
    }
}

/// The account the App is created under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The signed-in user's own account.
    User,
    Organization(String),
}

/// The GitHub the App lives on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubSite {
    /// Web pages: `https://github.com`, or `https://HOST` for GitHub Enterprise Server.
    pub web_url: String,
    /// The REST API: `https://api.github.com`, or `https://HOST/api/v3`.
    pub api_url: String,
}

impl GitHubSite {
    pub fn github_com() -> GitHubSite {
        GitHubSite {
            web_url: "https://github.com".into(),
            api_url: runway_github::GITHUB_API_URL.into(),
        }
    }

    /// A GitHub Enterprise Server at `url` (`https://HOST`, a path after the host ignored).
    /// Only `https://` (or `http://` to a loopback address, for an emulator).
    pub fn enterprise_server(url: &str) -> Result<GitHubSite, String> {
        let url = url.trim().trim_end_matches('/');
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://127.0.0.1").map(|_| ""))
            .ok_or_else(|| format!("{url:?} is not an https:// URL"))?;
        let host = rest.split('/').next().unwrap_or_default();
        let web_url = if rest.is_empty() {
            // http://127.0.0.1[:port]: an emulator on this machine.
            url.split('/').take(3).collect::<Vec<_>>().join("/")
        } else {
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            {
                return Err(format!("{url:?} names no host"));
            }
            format!("https://{host}")
        };
        Ok(GitHubSite {
            api_url: format!("{web_url}/api/v3"),
            web_url,
        })
    }

    /// Where the browser posts the manifest (GitHub's documented URLs), with `state`.
    pub fn new_app_url(&self, owner: &Owner, state: &str) -> String {
        let state = crate::form::encode(state);
        match owner {
            Owner::User => format!("{}/settings/apps/new?state={state}", self.web_url),
            Owner::Organization(org) => format!(
                "{}/organizations/{}/settings/apps/new?state={state}",
                self.web_url,
                crate::form::encode(org)
            ),
        }
    }
}

/// Whether `login` can be a GitHub organisation's login: letters, digits and single
/// hyphens, not at either end, at most 39 characters.
pub fn is_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
}

/// The manifest of runway's App: its webhook is runway's, GitHub sends the browser back to
/// runway's callback, it is private, it receives `workflow_job` events only, and it holds
/// only the permissions `scope` needs.
pub fn app_manifest(name: &str, base_url: &str, scope: RunnerScope) -> Value {
    let base = base_url.trim_end_matches('/');
    json!({
        "name": name,
        "url": format!("{base}/setup"),
        "description": "runway: ephemeral self-hosted GitHub Actions runners, one per job.",
        "hook_attributes": {"url": format!("{base}{}", crate::WEBHOOK_PATH), "active": true},
        "redirect_url": format!("{base}{}", crate::CALLBACK_PATH),
        "public": false,
        "default_permissions": scope.permissions(),
        "default_events": ["workflow_job"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_points_at_runway_and_asks_only_for_what_runway_calls() {
        let manifest = app_manifest(
            "runway-ci",
            "https://abc.execute-api.eu-west-1.amazonaws.com/",
            RunnerScope::Repository,
        );
        assert_eq!(
            manifest["hook_attributes"]["url"],
            "https://abc.execute-api.eu-west-1.amazonaws.com/webhook"
        );
        assert_eq!(
            manifest["redirect_url"],
            "https://abc.execute-api.eu-west-1.amazonaws.com/setup/callback"
        );
        assert_eq!(manifest["public"], false);
        assert_eq!(manifest["default_events"], json!(["workflow_job"]));
        assert_eq!(
            manifest["default_permissions"],
            json!({"actions": "read", "administration": "write"})
        );
        assert_eq!(
            RunnerScope::Organization.permissions(),
            json!({"actions": "read", "organization_self_hosted_runners": "write"})
        );
    }

    #[test]
    fn the_form_posts_to_githubs_documented_urls() {
        let com = GitHubSite::github_com();
        assert_eq!(
            com.new_app_url(&Owner::User, "a.b"),
            "https://github.com/settings/apps/new?state=a.b"
        );
        assert_eq!(
            com.new_app_url(&Owner::Organization("octo-org".into()), "s"),
            "https://github.com/organizations/octo-org/settings/apps/new?state=s"
        );
        let ghes = GitHubSite::enterprise_server("https://ghe.example.com/some/page").unwrap();
        assert_eq!(ghes.web_url, "https://ghe.example.com");
        assert_eq!(ghes.api_url, "https://ghe.example.com/api/v3");
        let emulator = GitHubSite::enterprise_server("http://127.0.0.1:8090/").unwrap();
        assert_eq!(emulator.api_url, "http://127.0.0.1:8090/api/v3");
        for refused in [
            "http://ghe.example.com",
            "ghe.example.com",
            "https://",
            "https://a b",
        ] {
            assert!(GitHubSite::enterprise_server(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn logins_are_checked() {
        assert!(is_login("octo-org") && is_login("a1"));
        for bad in ["", "-a", "a-", "a--b", "a/b", "a b", &"a".repeat(40)] {
            assert!(!is_login(bad), "{bad}");
        }
    }
}
