//! Values read from a slow or billed source (an SSM parameter, a bucket's manifest) and reused
//! for a while, so a burst of launches reads each once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Key → (value, when it was read).
type Entries<V> = HashMap<String, (V, DateTime<Utc>)>;

/// Values by key, each reused for a TTL after it was read; clones share them.
#[derive(Debug, Clone)]
pub(crate) struct Remembered<V> {
    ttl: chrono::Duration,
    entries: Arc<Mutex<Entries<V>>>,
}

impl<V: Clone> Remembered<V> {
    /// Each value is reused for `ttl` after it was read.
    pub(crate) fn new(ttl: Duration) -> Remembered<V> {
        Remembered {
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            entries: Arc::default(),
        }
    }

    /// What was read for `key` less than the TTL before `now`.
    pub(crate) fn get(&self, key: &str, now: DateTime<Utc>) -> Option<V> {
        self.entries()
            .get(key)
            .filter(|(_, read)| now - *read < self.ttl)
            .map(|(value, _)| value.clone())
    }

    /// `value` was read for `key` at `now`.
    pub(crate) fn put(&self, key: &str, value: V, now: DateTime<Utc>) {
        self.entries().insert(key.to_owned(), (value, now));
    }

    fn entries(&self) -> MutexGuard<'_, Entries<V>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_reused_until_its_ttl_is_up_and_clones_share_it() {
        let remembered = Remembered::new(Duration::from_secs(300));
        let read_at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(remembered.get("/ami", read_at), None);
        remembered.put("/ami", "ami-1".to_owned(), read_at);
        let clone = remembered.clone();
        let later = |seconds| read_at + chrono::Duration::seconds(seconds);
        assert_eq!(clone.get("/ami", later(299)), Some("ami-1".to_owned()));
        assert_eq!(clone.get("/ami", later(300)), None);
        assert_eq!(remembered.get("/other", later(1)), None);
        clone.put("/ami", "ami-2".to_owned(), later(300));
        assert_eq!(remembered.get("/ami", later(301)), Some("ami-2".to_owned()));
    }
}
