//! What the client knows about its own use of the API: requests sent, answers GitHub did not
//! count (304 Not Modified), the rate limit as last seen, and the deadline a caller gives
//! every call it makes.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use http::HeaderMap;

/// GitHub's primary rate limit as the last answer reported it (`x-ratelimit-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    /// Requests left in the current window.
    pub remaining: u64,
    /// When the window ends (`x-ratelimit-reset`, Unix seconds).
    pub reset: i64,
}

impl RateLimit {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let number =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        Some(RateLimit {
            limit: number("x-ratelimit-limit")?,
            remaining: number("x-ratelimit-remaining")?,
            reset: number("x-ratelimit-reset")
                .and_then(|reset| i64::try_from(reset).ok())
                .unwrap_or(0),
        })
    }

    /// The requests left at `now`: `None` once the window has reset, when what was last seen
    /// says nothing any more (a caller that stopped on a spent limit must not stay stopped on
    /// a remembered one).
    pub fn remaining_at(&self, now: DateTime<Utc>) -> Option<u64> {
        (now.timestamp() < self.reset).then_some(self.remaining)
    }
}

/// A client's use of the API since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiUsage {
    /// HTTP requests sent (retries and pages included).
    pub requests: u64,
    /// Of those, answered `304 Not Modified` from the client's cache: GitHub does not count
    /// them against the rate limit.
    pub not_modified: u64,
    /// The rate limit as last seen, if any answer carried it.
    pub rate_limit: Option<RateLimit>,
}

impl ApiUsage {
    /// Requests GitHub counts against the rate limit.
    pub fn counted(&self) -> u64 {
        self.requests.saturating_sub(self.not_modified)
    }

    /// The requests made between `earlier` and `self`; the rate limit is `self`'s.
    pub fn since(&self, earlier: &ApiUsage) -> ApiUsage {
        ApiUsage {
            requests: self.requests.saturating_sub(earlier.requests),
            not_modified: self.not_modified.saturating_sub(earlier.not_modified),
            rate_limit: self.rate_limit,
        }
    }
}

/// The counters behind [`ApiUsage`].
#[derive(Debug, Default)]
pub(crate) struct UsageCounters {
    requests: AtomicU64,
    not_modified: AtomicU64,
    rate_limit: Mutex<Option<RateLimit>>,
}

impl UsageCounters {
    pub(crate) fn sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn not_modified(&self) {
        self.not_modified.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn saw(&self, headers: &HeaderMap) {
        if let Some(seen) = RateLimit::from_headers(headers) {
            *self
                .rate_limit
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(seen);
        }
    }

    pub(crate) fn snapshot(&self) -> ApiUsage {
        ApiUsage {
            requests: self.requests.load(Ordering::Relaxed),
            not_modified: self.not_modified.load(Ordering::Relaxed),
            rate_limit: *self
                .rate_limit
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }
}

tokio::task_local! {
    static CALL_DEADLINE: DateTime<Utc>;
}

/// Runs `work` with every GitHub call in it bounded by `deadline` (on the client's clock):
/// a call does not wait for a retry or a rate limit past it, but returns the error it has.
/// A Lambda handler passes its invocation's deadline less a margin, so retries never outlive
/// the function's timeout.
pub async fn with_call_deadline<F: Future>(deadline: DateTime<Utc>, work: F) -> F::Output {
    CALL_DEADLINE.scope(deadline, work).await
}

/// The deadline [`with_call_deadline`] set for the running task, if any.
pub(crate) fn call_deadline() -> Option<DateTime<Utc>> {
    CALL_DEADLINE.try_with(|deadline| *deadline).ok()
}

#[cfg(test)]
mod rate_limit_tests {
    use super::*;

    #[test]
    fn a_remembered_limit_says_nothing_once_its_window_has_reset() {
        let reset = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let rate = RateLimit {
            limit: 5000,
            remaining: 0,
            reset: reset.timestamp(),
        };
        assert_eq!(
            rate.remaining_at(reset - chrono::Duration::seconds(1)),
            Some(0)
        );
        assert_eq!(rate.remaining_at(reset), None);
        assert_eq!(rate.remaining_at(reset + chrono::Duration::hours(1)), None);
    }
}
