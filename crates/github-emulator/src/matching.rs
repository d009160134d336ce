//! Which runner may take which job: GitHub's rules, kept pure so they can be property-tested.

/// True when the runner's labels contain every label the job asks for. GitHub compares labels
/// without regard to case.
pub fn labels_match(job_labels: &[String], runner_labels: &[String]) -> bool {
    job_labels.iter().all(|wanted| {
        runner_labels
            .iter()
            .any(|offered| offered.eq_ignore_ascii_case(wanted))
    })
}

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
    use proptest::prelude::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_subset_matches_regardless_of_case() {
        assert!(labels_match(
            &strings(&["self-hosted", "Linux"]),
            &strings(&["SELF-HOSTED", "linux", "x64"])
        ));
        assert!(!labels_match(
            &strings(&["self-hosted", "gpu"]),
            &strings(&["self-hosted", "linux"])
        ));
        assert!(labels_match(&[], &strings(&["anything"])));
        assert!(!labels_match(&strings(&["linux"]), &[]));
    }

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

    proptest! {
        #[test]
        fn any_subset_in_any_case_matches(
            runner in proptest::collection::vec("[a-zA-Z0-9-]{1,8}", 0..6),
            picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
            upper in any::<bool>(),
        ) {
            let job: Vec<String> = if runner.is_empty() {
                Vec::new()
            } else {
                picks
                    .iter()
                    .map(|i| {
                        let label = &runner[i.index(runner.len())];
                        if upper { label.to_uppercase() } else { label.to_lowercase() }
                    })
                    .collect()
            };
            prop_assert!(labels_match(&job, &runner));
        }

        #[test]
        fn a_label_the_runner_lacks_never_matches(
            runner in proptest::collection::vec("[a-z]{1,8}", 0..6),
            extra in "[0-9]{1,4}",
        ) {
            let mut job = runner.clone();
            job.push(extra);
            prop_assert!(!labels_match(&job, &runner));
        }
    }
}
