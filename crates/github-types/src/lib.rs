//! GitHub's payload shapes that runway reads both from the REST API (`runway-github`) and from
//! webhooks (`runway-webhook`): one type each, so a repository or job found through the API is
//! the same value as one a webhook carries. Also GitHub's label-matching rule, [`labels_match`].
//!
//! Only the fields runway uses are decoded; every other field GitHub sends is ignored.

mod job;
mod labels;

use serde::{Deserialize, Serialize};

pub use job::WorkflowJob;
pub use labels::labels_match;

/// A repository, as webhooks, workflow runs and `GET /installation/repositories` carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    pub owner: Account,
    #[serde(default)]
    pub private: Option<bool>,
}

/// A user or organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub login: String,
    #[serde(default)]
    pub id: Option<u64>,
    /// `User`, `Organization` or `Bot`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Account {
    pub fn is_organization(&self) -> bool {
        self.kind.as_deref() == Some("Organization")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repository_keeps_what_runway_reads_and_ignores_the_rest() {
        let repository: Repository = serde_json::from_value(json!({
            "id": 591427149,
            "node_id": "R_kgDOIz8ZzQ",
            "name": "elastic-machines-testing",
            "full_name": "lineville/elastic-machines-testing",
            "private": false,
            "owner": {"login": "lineville", "id": 25349044, "type": "User", "site_admin": false}
        }))
        .unwrap();
        assert_eq!(repository.full_name, "lineville/elastic-machines-testing");
        assert_eq!(repository.owner.kind.as_deref(), Some("User"));
        assert!(!repository.owner.is_organization());
    }

    #[test]
    fn an_owner_without_a_type_is_not_an_organization_and_writes_no_type() {
        let account: Account = serde_json::from_value(json!({"login": "octo-org"})).unwrap();
        assert_eq!(account.id, None);
        assert!(!account.is_organization());
        assert_eq!(
            serde_json::to_value(&account).unwrap(),
            json!({"login": "octo-org", "id": null})
        );
        let organization = Account {
            kind: Some("Organization".to_owned()),
            ..account
        };
        assert!(organization.is_organization());
        assert_eq!(
            serde_json::to_value(&organization).unwrap()["type"],
            "Organization"
        );
    }
}
