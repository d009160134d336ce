//! What a sweep did, as the console shows it: counts, one line per action, and why things
//! were left alone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One sweep of the reaper machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sweep {
    /// Runners a provider still runs whose execution is not running: terminated.
    OrphanRunners,
    /// runway's runners GitHub lists as offline whose execution is not running: removed.
    OfflineRunners,
    /// Slots held by executions that are not running: released, and the next waiter woken.
    StaleSlots,
    /// Queued jobs for runway's runners that have no execution (their webhook was lost):
    /// started, as the webhook intake would have.
    LostJobs,
}

impl Sweep {
    pub const ALL: [Sweep; 4] = [
        Sweep::OrphanRunners,
        Sweep::OfflineRunners,
        Sweep::StaleSlots,
        Sweep::LostJobs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sweep::OrphanRunners => "orphan-runners",
            Sweep::OfflineRunners => "offline-runners",
            Sweep::StaleSlots => "stale-slots",
            Sweep::LostJobs => "lost-jobs",
        }
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Sweep::name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sweep {0:?}: expected one of orphan-runners, offline-runners, stale-slots, lost-jobs"
)]
pub struct UnknownSweep(pub String);

impl FromStr for Sweep {
    type Err = UnknownSweep;

    fn from_str(name: &str) -> Result<Sweep, UnknownSweep> {
        Sweep::ALL
            .into_iter()
            .find(|sweep| sweep.name() == name)
            .ok_or_else(|| UnknownSweep(name.to_owned()))
    }
}

/// The output of one sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub sweep: Sweep,
    /// True: the sweep ran to its end (or to its bound). The machine's failure branch sets
    /// false.
    pub swept: bool,
    /// Things looked at.
    pub examined: u32,
    /// Things terminated, removed, released or started.
    pub acted: u32,
    /// Things left alone, by reason.
    pub kept: BTreeMap<String, u32>,
    /// One line per action, with its reason.
    pub actions: Vec<String>,
    /// One line per thing that could not be handled and will not be by retrying.
    pub failures: Vec<String>,
    /// The sweep stopped at `max_actions_per_sweep`; the next run does the rest.
    pub truncated: bool,
    /// GitHub requests the sweep made ...
    #[serde(default)]
    pub github_requests: u64,
    /// ... of which GitHub answered `304 Not Modified` (not counted against its rate limit).
    #[serde(default)]
    pub github_not_modified: u64,
    /// Why the sweep stopped before it had looked at everything: its GitHub request budget,
    /// or the rate limit it leaves to provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// What it left for the next run (repositories, slots), when it stopped early.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<String>,
    /// One sentence.
    pub summary: String,
}

impl SweepReport {
    pub(crate) fn new(sweep: Sweep) -> SweepReport {
        SweepReport {
            sweep,
            swept: true,
            examined: 0,
            acted: 0,
            kept: BTreeMap::new(),
            actions: Vec::new(),
            failures: Vec::new(),
            truncated: false,
            github_requests: 0,
            github_not_modified: 0,
            stopped: None,
            left: Vec::new(),
            summary: String::new(),
        }
    }

    /// The sweep stops early for `reason`, leaving `left` for the next run.
    pub(crate) fn stop(&mut self, reason: String, left: Vec<String>) {
        self.stopped = Some(reason);
        self.left = left;
    }

    pub(crate) fn keep(&mut self, reason: impl Into<String>) {
        *self.kept.entry(reason.into()).or_default() += 1;
    }

    pub(crate) fn acted(&mut self, line: String) {
        self.acted += 1;
        self.actions.push(line);
    }

    pub(crate) fn failed(&mut self, line: String) {
        self.failures.push(line);
    }

    /// Actions and failures both spend the sweep's bound.
    pub(crate) fn spent(&self) -> u32 {
        self.acted + self.failures.len() as u32
    }

    pub(crate) fn finish(mut self, what: &str, verb: &str) -> SweepReport {
        let kept: u32 = self.kept.values().sum();
        let mut summary = format!(
            "{} {what} examined: {} {verb}, {kept} kept",
            self.examined, self.acted
        );
        if !self.failures.is_empty() {
            summary.push_str(&format!(", {} failed", self.failures.len()));
        }
        if self.truncated {
            summary.push_str("; stopped at the per-sweep bound, the next run does the rest");
        }
        if let Some(reason) = &self.stopped {
            summary.push_str(&format!("; stopped early: {reason}"));
            if !self.left.is_empty() {
                const SHOWN: usize = 5;
                let mut names = self
                    .left
                    .iter()
                    .take(SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if self.left.len() > SHOWN {
                    names.push_str(", ...");
                }
                summary.push_str(&format!(
                    "; {} left for the next run ({names})",
                    self.left.len()
                ));
            }
        }
        if self.github_requests > 0 {
            summary.push_str(&format!(
                "; {} GitHub requests, {} of them not modified",
                self.github_requests, self.github_not_modified
            ));
        }
        self.summary = summary;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_names_round_trip() {
        for sweep in Sweep::ALL {
            assert_eq!(sweep.name().parse::<Sweep>(), Ok(sweep));
            assert_eq!(
                serde_json::to_value(sweep).unwrap(),
                serde_json::json!(sweep.name())
            );
        }
        let error = "lost-webhooks".parse::<Sweep>().unwrap_err().to_string();
        assert!(error.contains("orphan-runners"), "{error}");
    }
}
