//! Conditional requests: the body and `ETag` of recent `GET` answers, by URL, so a repeated
//! request carries `If-None-Match` and an unchanged resource costs a `304 Not Modified`, which
//! GitHub does not count against the rate limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// At most this many URLs are remembered ...
pub const DEFAULT_CACHE_ENTRIES: usize = 512;
/// ... holding at most this many body bytes in all ...
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// ... none larger than this (a larger body is not cached).
const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cached {
    pub etag: String,
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<String, Cached>,
    /// Oldest store first: the first to go when a bound is reached.
    order: VecDeque<String>,
    bytes: usize,
}

/// Bounded in entries and bytes; the oldest stored entry goes first.
#[derive(Debug)]
pub(crate) struct ResponseCache {
    entries: Mutex<Entries>,
    max_entries: usize,
    max_bytes: usize,
}

impl ResponseCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> ResponseCache {
        ResponseCache {
            entries: Mutex::new(Entries::default()),
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Cached> {
        self.lock().by_key.get(key).cloned()
    }

    pub fn put(&self, key: &str, etag: &str, body: Bytes) {
        let size = body.len();
        let mut entries = self.lock();
        remove(&mut entries, key);
        if self.max_entries == 0 || size > MAX_ENTRY_BYTES.min(self.max_bytes) {
            return;
        }
        while entries.by_key.len() >= self.max_entries || entries.bytes + size > self.max_bytes {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(gone) = entries.by_key.remove(&oldest) {
                entries.bytes -= gone.body.len();
            }
        }
        entries.bytes += size;
        entries.order.push_back(key.to_owned());
        entries.by_key.insert(
            key.to_owned(),
            Cached {
                etag: etag.to_owned(),
                body,
            },
        );
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

fn remove(entries: &mut Entries, key: &str) {
    if let Some(gone) = entries.by_key.remove(key) {
        entries.bytes -= gone.body.len();
        entries.order.retain(|k| k != key);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever is stored, the bounds hold and the accounting matches the contents.
        #[test]
        fn bounds_hold(
            max_entries in 0_usize..6,
            max_bytes in 0_usize..64,
            puts in proptest::collection::vec((0_u8..10, 0_usize..40), 0..40),
        ) {
            let cache = ResponseCache::new(max_entries, max_bytes);
            for (key, size) in &puts {
                let key = format!("k{key}");
                cache.put(&key, "\"e\"", Bytes::from(vec![0_u8; *size]));
                prop_assert!(cache.len() <= max_entries);
                prop_assert!(cache.bytes() <= max_bytes);
                if *size <= max_bytes && max_entries > 0 {
                    prop_assert_eq!(cache.get(&key).map(|c| c.body.len()), Some(*size));
                }
                let entries = cache.lock();
                let sum: usize = entries.by_key.values().map(|c| c.body.len()).sum();
                prop_assert_eq!(sum, entries.bytes);
                prop_assert_eq!(entries.order.len(), entries.by_key.len());
            }
        }
    }
}
