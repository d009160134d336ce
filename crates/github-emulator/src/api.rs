//! GitHub's bookkeeping of REST calls: the primary rate limit (a window of `limit` requests
//! that resets hourly; `304 Not Modified` answers are not counted, as on GitHub) and the
//! entity tags conditional requests are answered with.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// GitHub's limit for an App installation (and a personal token).
pub const DEFAULT_RATE_LIMIT: u64 = 5000;
const WINDOW: Duration = Duration::hours(1);

/// What the REST API has served, as [`crate::EmulatorHandle::api_usage`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiUsage {
    /// Authenticated REST requests answered (injected faults and refusals excluded).
    pub requests: u64,
    /// Of those, answered `304 Not Modified`.
    pub not_modified: u64,
    /// Answered `403` because the rate limit was spent.
    pub rate_limited: u64,
}

impl ApiUsage {
    /// Requests counted against the rate limit.
    pub fn counted(&self) -> u64 {
        self.requests - self.not_modified - self.rate_limited
    }

    /// What was served between `earlier` and `self`.
    pub fn since(&self, earlier: &ApiUsage) -> ApiUsage {
        ApiUsage {
            requests: self.requests.saturating_sub(earlier.requests),
            not_modified: self.not_modified.saturating_sub(earlier.not_modified),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
        }
    }
}

/// The `x-ratelimit-*` values of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateView {
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
    pub reset: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct ApiAccounting {
    limit: u64,
    used: u64,
    window_ends: DateTime<Utc>,
    usage: ApiUsage,
}

impl ApiAccounting {
    pub fn new(now: DateTime<Utc>) -> ApiAccounting {
        ApiAccounting {
            limit: DEFAULT_RATE_LIMIT,
            used: 0,
            window_ends: now + WINDOW,
            usage: ApiUsage::default(),
        }
    }

    fn roll(&mut self, now: DateTime<Utc>) {
        if now >= self.window_ends {
            self.used = 0;
            self.window_ends = now + WINDOW;
        }
    }

    fn view(&self) -> RateView {
        RateView {
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.used),
            used: self.used,
            reset: self.window_ends.timestamp(),
        }
    }

    /// Before serving: `Err` with the headers of a refusal when the window's limit is spent.
    pub fn admit(&mut self, now: DateTime<Utc>) -> Result<(), RateView> {
        self.roll(now);
        if self.used >= self.limit {
            self.usage.requests += 1;
            self.usage.rate_limited += 1;
            return Err(self.view());
        }
        Ok(())
    }

    /// After serving: counts the request unless it was answered `304`.
    pub fn served(&mut self, now: DateTime<Utc>, not_modified: bool) -> RateView {
        self.roll(now);
        self.usage.requests += 1;
        if not_modified {
            self.usage.not_modified += 1;
        } else {
            self.used += 1;
        }
        self.view()
    }

    /// Sets the window's limit and what is left of it (tests of callers that keep a reserve).
    pub fn set(&mut self, now: DateTime<Utc>, limit: u64, remaining: u64) {
        self.roll(now);
        self.limit = limit;
        self.used = limit.saturating_sub(remaining);
    }

    pub fn usage(&self) -> ApiUsage {
        self.usage
    }

    pub fn rate(&mut self, now: DateTime<Utc>) -> RateView {
        self.roll(now);
        self.view()
    }
}

/// A weak entity tag of a body: equal bodies, equal tags.
pub(crate) fn entity_tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether an `If-None-Match` value names `etag` (a list, `*`, weak or strong forms).
pub(crate) fn matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = bare(etag);
    if_none_match
        .split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == wanted)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn not_modified_answers_are_not_counted_and_the_window_resets() {
        let start = Utc::now();
        let mut api = ApiAccounting::new(start);
        api.set(start, 10, 2);
        assert_eq!(api.served(start, false).remaining, 1);
        assert_eq!(api.served(start, true).remaining, 1);
        assert_eq!(api.served(start, false).remaining, 0);
        let refused = api.admit(start).unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            api.usage(),
            ApiUsage {
                requests: 4,
                not_modified: 1,
                rate_limited: 1
            }
        );
        assert_eq!(api.usage().counted(), 2);
        let later = start + WINDOW + Duration::seconds(1);
        assert!(api.admit(later).is_ok());
        assert_eq!(api.rate(later).remaining, 10);
    }

    #[test]
    fn entity_tags_match_as_http_says() {
        let tag = entity_tag(b"{}");
        assert_eq!(tag, entity_tag(b"{}"));
        assert_ne!(tag, entity_tag(b"[]"));
        assert!(matches(&tag, &tag));
        assert!(matches(tag.trim_start_matches("W/"), &tag));
        assert!(matches(&format!("\"other\", {tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"other\"", &tag));
    }

    proptest! {
        #[test]
        fn remaining_plus_used_is_the_limit(
            limit in 0_u64..50,
            answers in proptest::collection::vec(any::<bool>(), 0..80),
        ) {
            let now = Utc::now();
            let mut api = ApiAccounting::new(now);
            api.set(now, limit, limit);
            for not_modified in answers {
                let view = match api.admit(now) {
                    Ok(()) => api.served(now, not_modified),
                    Err(view) => view,
                };
                prop_assert_eq!(view.remaining + view.used, limit);
            }
            let usage = api.usage();
            prop_assert!(usage.counted() <= limit);
        }
    }
}
