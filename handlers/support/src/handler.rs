//! Which code a function runs.
//!
//! runway ships one Lambda executable for all its functions. Each function's `Handler`
//! setting names what it runs (`webhook`, a step of the job flow, `reap`), and Lambda passes
//! that setting to the executable as `_HANDLER`. One executable is compiled once and uploaded
//! once, where one per function would link the same dependencies ten times.

use std::fmt;
use std::str::FromStr;

use runway_jobflow::Step;

use crate::SetupError;

/// The variable through which Lambda passes a function's `Handler` setting to a custom
/// runtime.
pub const HANDLER_ENV: &str = "_HANDLER";

/// One of runway's Lambda entry points, named as the function's `Handler` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Handler {
    /// The webhook: API Gateway event in, intake, HTTP response out.
    Webhook,
    /// One step of the job state machine.
    Step(Step),
    /// The reaper machine's sweeps.
    Reap,
    /// The scheduled refresh of the runner cache bucket.
    RunnerCache,
    /// The setup pages (`/setup`, `/setup/start`, `/setup/callback`): a GitHub App in two
    /// clicks, stored in the stack's App secret.
    Setup,
}

impl Handler {
    /// Every entry point: the webhook, each step of the job flow, the reaper.
    pub fn all() -> impl Iterator<Item = Handler> {
        std::iter::once(Handler::Webhook)
            .chain(Step::ALL.into_iter().map(Handler::Step))
            .chain([Handler::Reap, Handler::RunnerCache, Handler::Setup])
    }

    /// The `Handler` setting that selects this entry point.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Webhook => "webhook",
            Handler::Step(step) => step.name(),
            Handler::Reap => "reap",
            Handler::RunnerCache => "runner-cache",
            Handler::Setup => "setup",
        }
    }

    /// The entry point the running function's `Handler` setting names.
    pub fn from_env() -> Result<Handler, SetupError> {
        Handler::from_setting(std::env::var(HANDLER_ENV).ok().as_deref())
    }

    /// The entry point `setting` names; `None` when the variable is not set.
    pub fn from_setting(setting: Option<&str>) -> Result<Handler, SetupError> {
        let setting = setting.ok_or_else(|| {
            SetupError::Settings(format!(
                "{HANDLER_ENV} is not set: Lambda sets it from the function's Handler; outside \
                 Lambda, set it to one of {}",
                Handler::names()
            ))
        })?;
        setting
            .trim()
            .parse()
            .map_err(|unknown: UnknownHandler| SetupError::Settings(unknown.to_string()))
    }

    fn names() -> String {
        Handler::all()
            .map(Handler::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `Handler` setting that names none of runway's entry points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown handler {given:?}: set the function's Handler to one of {expected}",
    expected = Handler::names()
)]
pub struct UnknownHandler {
    pub given: String,
}

impl FromStr for Handler {
    type Err = UnknownHandler;

    fn from_str(name: &str) -> Result<Handler, UnknownHandler> {
        Handler::all()
            .find(|handler| handler.name() == name)
            .ok_or_else(|| UnknownHandler {
                given: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_entry_point_has_its_own_name_and_parses_back() {
        let handlers: Vec<Handler> = Handler::all().collect();
        assert_eq!(handlers.len(), Step::ALL.len() + 4);
        let names: BTreeSet<&str> = handlers.iter().map(|handler| handler.name()).collect();
        assert_eq!(names.len(), handlers.len(), "names are unique");
        for handler in handlers {
            assert_eq!(handler.name().parse::<Handler>(), Ok(handler));
            assert_eq!(handler.to_string(), handler.name());
        }
        assert_eq!("route".parse(), Ok(Handler::Step(Step::Route)));
        assert_eq!("reap".parse(), Ok(Handler::Reap));
        assert_eq!("runner-cache".parse(), Ok(Handler::RunnerCache));
        assert_eq!("setup".parse(), Ok(Handler::Setup));
    }

    #[test]
    fn the_sam_default_handler_is_refused_with_the_names_to_use() {
        let error = Handler::from_setting(Some("bootstrap")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"bootstrap\""), "{message}");
        assert!(
            message.contains("webhook, route, admit, wait-for-slot"),
            "{message}"
        );
        assert!(message.contains("reap"), "{message}");
    }

    #[test]
    fn a_missing_setting_says_where_it_comes_from() {
        let message = Handler::from_setting(None).unwrap_err().to_string();
        assert!(message.contains("_HANDLER is not set"), "{message}");
        assert!(message.contains("Handler"), "{message}");
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(
            Handler::from_setting(Some(" webhook\n")).unwrap(),
            Handler::Webhook
        );
    }

    proptest! {
        #[test]
        fn any_other_setting_is_refused_without_panicking(setting in "\\PC{0,24}") {
            let known = Handler::all().any(|handler| handler.name() == setting.trim());
            prop_assert_eq!(Handler::from_setting(Some(&setting)).is_ok(), known);
        }
    }
}
