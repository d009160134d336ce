//! Which accounts a REST caller reaches. GitHub installs an App per account (organization or
//! user): an installation token reaches only the accounts of its installation, a personal
//! access token every account its user can see (here: all of them).

use crate::config::AppConfig;

/// Who a REST token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A personal access token: every account.
    Personal,
    /// An installation token: the accounts of that installation.
    Installation(u64),
}

impl Caller {
    /// Whether the caller reaches `account` (a login, any case).
    pub(crate) fn reaches(self, app: &AppConfig, account: &str) -> bool {
        match self {
            Caller::Personal => true,
            Caller::Installation(id) => app.installation_of(account) == id,
        }
    }

    /// Enterprise accounts are not installations of their own here: the default installation
    /// stands for the one installed on the enterprise.
    fn reaches_enterprises(self, app: &AppConfig) -> bool {
        match self {
            Caller::Personal => true,
            Caller::Installation(id) => id == app.installation_id,
        }
    }
}

/// Why a caller may not go where a path leads, as GitHub answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OutOfReach {
    /// A repository outside the installation: GitHub does not even admit it exists (404).
    #[error("Not Found")]
    Hidden,
    /// An organization or enterprise outside the installation (403).
    #[error("Resource not accessible by integration")]
    Forbidden,
}

/// Checks a REST path (without any `/api/v3` prefix) against what `caller` reaches. Paths
/// that name no account (`/installation/repositories`, unknown paths) are everyone's.
pub(crate) fn check(app: &AppConfig, caller: Caller, path: &str) -> Result<(), OutOfReach> {
    let mut segments = path.trim_start_matches('/').split('/');
    let (Some(kind), Some(name)) = (segments.next(), segments.next()) else {
        return Ok(());
    };
    let name = percent_decoded(name);
    match kind {
        "repos" if !caller.reaches(app, &name) => Err(OutOfReach::Hidden),
        "orgs" if !caller.reaches(app, &name) => Err(OutOfReach::Forbidden),
        "enterprises" if !caller.reaches_enterprises(app) => Err(OutOfReach::Forbidden),
        _ => Ok(()),
    }
}

/// A path segment as the router hands it to handlers: `%XX` escapes decoded, so an escaped
/// login cannot slip past the check.
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppConfig {
        AppConfig {
            installation_id: 77,
            installations: [("Other-Org".to_string(), 88)].into(),
            ..AppConfig::default()
        }
    }

    #[test]
    fn an_installation_token_reaches_its_own_accounts_only() {
        let app = app();
        let own = Caller::Installation(77);
        let other = Caller::Installation(88);
        assert_eq!(
            check(&app, own, "/repos/octo-org/app/actions/runners"),
            Ok(())
        );
        assert_eq!(
            check(&app, own, "/repos/other-org/app/actions/runners"),
            Err(OutOfReach::Hidden)
        );
        assert_eq!(
            check(&app, own, "/orgs/OTHER-ORG/actions/runners"),
            Err(OutOfReach::Forbidden)
        );
        assert_eq!(
            check(&app, other, "/orgs/other-org/actions/runners"),
            Ok(())
        );
        assert_eq!(
            check(&app, other, "/repos/octo-org/app"),
            Err(OutOfReach::Hidden)
        );
        assert_eq!(
            check(&app, other, "/enterprises/acme/actions/runners"),
            Err(OutOfReach::Forbidden)
        );
        assert_eq!(
            check(&app, own, "/enterprises/acme/actions/runners"),
            Ok(())
        );
        assert_eq!(check(&app, other, "/installation/repositories"), Ok(()));
    }

    #[test]
    fn a_personal_token_reaches_everything() {
        let app = app();
        for path in [
            "/repos/other-org/app/actions/runners",
            "/orgs/octo-org/actions/runners",
            "/enterprises/acme/actions/runners",
        ] {
            assert_eq!(check(&app, Caller::Personal, path), Ok(()), "{path}");
        }
    }

    #[test]
    fn escaped_logins_are_checked_as_the_router_reads_them() {
        let app = app();
        assert_eq!(percent_decoded("%6Fther-org"), "other-org");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(
            check(&app, Caller::Installation(77), "/repos/%6Fther-org/app"),
            Err(OutOfReach::Hidden)
        );
    }
}
