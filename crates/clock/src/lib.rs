//! The clock behind every timer in runway.
//!
//! Wait states, retry intervals, heartbeats, idle deadlines and TTLs all read time through
//! [`Clock`], so the same code runs on wall-clock time in production and on virtual time in
//! tests, where a one-hour wait costs no wall time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub mod retry;
pub use retry::Backoff;

/// A future that completes when a clock reaches a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of "now" and of timers.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `deadline` (at once if it already has).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep;

    /// Completes after `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> Sleep {
        let step = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let deadline = self
            .now()
            .checked_add_signed(step)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.sleep_until(deadline)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time, with tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let remaining = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(remaining))
    }
}

/// Virtual time that starts at a fixed instant and moves with tokio's clock.
///
/// In a runtime whose time is paused (`#[tokio::test(start_paused = true)]`, or a runtime built
/// with `start_paused(true)`), tokio jumps straight to the next timer whenever every task is
/// waiting, so a one-hour `Wait` completes at once while the history still shows an hour
/// passing. In a runtime with running time it behaves like the system clock, offset to `start`.
/// Time on this clock is deterministic for a given program, which is what replay needs.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl VirtualClock {
    /// A virtual clock reading `start` now. Must be called inside a tokio runtime.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        VirtualClock {
            start,
            origin: tokio::time::Instant::now(),
        }
    }

    /// A virtual clock starting at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        Self::starting_at(start)
    }

    pub fn shared(self) -> SharedClock {
        Arc::new(self)
    }

    /// Time elapsed on this clock since it started.
    pub fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().duration_since(self.origin)
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.start
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let offset = (deadline - self.start).to_std().unwrap_or(Duration::ZERO);
        let at = self.origin.checked_add(offset);
        match at {
            Some(at) => Box::pin(tokio::time::sleep_until(at)),
            // Beyond what tokio can represent: never fires.
            None => Box::pin(std::future::pending()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_hour_of_virtual_time_passes_at_once() {
        let clock = VirtualClock::new();
        let before = clock.now();
        let wall = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!((clock.now() - before).num_seconds(), 3600);
        assert!(wall.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_until_the_past_returns_at_once() {
        let clock = VirtualClock::new();
        let past = clock.now() - chrono::Duration::seconds(10);
        clock.sleep_until(past).await;
        assert_eq!(clock.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn timers_fire_in_deadline_order() {
        let clock = VirtualClock::new();
        let start = clock.now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for secs in [30_i64, 10, 20] {
            let clock = clock.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                clock
                    .sleep_until(start + chrono::Duration::seconds(secs))
                    .await;
                let _ = tx.send(secs);
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(secs) = rx.recv().await {
            order.push(secs);
        }
        assert_eq!(order, vec![10, 20, 30]);
    }

    #[tokio::test]
    async fn system_clock_reads_wall_time() {
        let clock = SystemClock;
        let drift = (clock.now() - Utc::now()).num_seconds().abs();
        assert!(drift <= 1);
        clock.sleep(Duration::from_millis(1)).await;
    }
}
