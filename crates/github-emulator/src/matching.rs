//! Which runner may take which job: GitHub's rules, kept pure so they can be property-tested
//! (the label rule lives in `runway-github-types`, with its properties).

/// GitHub's label rule, shared with the job flow's routing so the emulator cannot drift from
/// what runway expects.
pub use runway_github_types::labels_match;

/// Where a runner is registered: a repository, an organization or an enterprise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum Scope {
    Repository { owner: String, repo: String },
    Organization { org: String },
    Enterprise { enterprise: String },
}

impl Scope {
    pub fn repository(owner: impl Into<String>, repo: impl Into<String>) -> Self {
        Scope::Repository {
            owner: owner.into(),
            repo: repo.into(),
        }
    }

    pub fn organization(org: impl Into<String>) -> Self {
        Scope::Organization { org: org.into() }
    }

    pub fn enterprise(enterprise: impl Into<String>) -> Self {
        Scope::Enterprise {
            enterprise: enterprise.into(),
        }
    }

    /// Same scope, ignoring case as GitHub does for account and repository names.
    pub fn same_as(&self, other: &Scope) -> bool {
        match (self, other) {
            (
                Scope::Repository { owner, repo },
                Scope::Repository {
                    owner: other_owner,
                    repo: other_repo,
                },
            ) => owner.eq_ignore_ascii_case(other_owner) && repo.eq_ignore_ascii_case(other_repo),
            (Scope::Organization { org }, Scope::Organization { org: other }) => {
                org.eq_ignore_ascii_case(other)
            }
            (Scope::Enterprise { enterprise }, Scope::Enterprise { enterprise: other }) => {
                enterprise.eq_ignore_ascii_case(other)
            }
            _ => false,
        }
    }

    /// Whether a runner registered here may run jobs of `owner/repo`, an account that belongs
    /// to `enterprise` (if any).
    pub fn serves(&self, owner: &str, repo: &str, enterprise: Option<&str>) -> bool {
        match self {
            Scope::Repository {
                owner: runner_owner,
                repo: runner_repo,
            } => runner_owner.eq_ignore_ascii_case(owner) && runner_repo.eq_ignore_ascii_case(repo),
            Scope::Organization { org } => org.eq_ignore_ascii_case(owner),
            Scope::Enterprise {
                enterprise: runner_enterprise,
            } => enterprise.is_some_and(|e| e.eq_ignore_ascii_case(runner_enterprise)),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Repository { owner, repo } => write!(f, "repository {owner}/{repo}"),
            Scope::Organization { org } => write!(f, "organization {org}"),
            Scope::Enterprise { enterprise } => write!(f, "enterprise {enterprise}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_serve_their_repositories() {
        let repo = Scope::repository("Octo-Org", "App");
        assert!(repo.serves("octo-org", "app", None));
        assert!(!repo.serves("octo-org", "other", None));
        let org = Scope::organization("octo-org");
        assert!(org.serves("OCTO-ORG", "anything", None));
        assert!(!org.serves("someone-else", "anything", None));
        let enterprise = Scope::enterprise("acme");
        assert!(enterprise.serves("octo-org", "app", Some("ACME")));
        assert!(!enterprise.serves("octo-org", "app", None));
    }
}
