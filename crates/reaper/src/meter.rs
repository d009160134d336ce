//! How much of GitHub's rate limit a sweep may use: a budget of requests per sweep, and a
//! reserve of the installation's limit left to provisioning.

use runway_clock::SharedClock;
use runway_github::{ApiUsage, GitHub};

use crate::config::ReaperConfig;
use crate::report::SweepReport;

/// Counts one sweep's GitHub requests. The client counts every request it makes; a sweep
/// reads the difference, so sweeps sharing a client in one process (`runway local` runs the
/// four side by side) see each other's requests and stop early rather than late.
pub(crate) struct GitHubMeter<'a> {
    github: &'a dyn GitHub,
    start: ApiUsage,
    budget: u64,
    reserve: u64,
    clock: SharedClock,
}

impl<'a> GitHubMeter<'a> {
    pub fn new(
        github: &'a dyn GitHub,
        config: &ReaperConfig,
        clock: SharedClock,
    ) -> GitHubMeter<'a> {
        GitHubMeter {
            github,
            start: github.usage(),
            budget: u64::from(config.github_requests_per_sweep),
            reserve: config.rate_limit_reserve,
            clock,
        }
    }

    /// What the sweep used so far.
    pub fn used(&self) -> ApiUsage {
        self.github.usage().since(&self.start)
    }

    /// Why the sweep may make no further request, if it may not.
    pub fn exhausted(&self) -> Option<String> {
        let used = self.used();
        if used.counted() >= self.budget {
            return Some(format!(
                "it made {} GitHub requests counted against the rate limit, its budget per \
                 sweep (github_requests_per_sweep)",
                used.counted()
            ));
        }
        // A limit seen before its window reset no longer holds: the next request learns the
        // new one.
        let now = self.clock.now();
        match used.rate_limit {
            Some(rate)
                if rate
                    .remaining_at(now)
                    .is_some_and(|left| left < self.reserve) =>
            {
                Some(format!(
                    "GitHub's rate limit has {} of {} requests left, under the {} kept for \
                     provisioning (rate_limit_reserve)",
                    rate.remaining, rate.limit, self.reserve
                ))
            }
            _ => None,
        }
    }

    /// Puts the sweep's request counts in the report.
    pub fn record(&self, report: &mut SweepReport) {
        let used = self.used();
        report.github_requests = used.requests;
        report.github_not_modified = used.not_modified;
    }
}
