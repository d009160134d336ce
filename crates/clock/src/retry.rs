//! One back-off policy for every call runway retries (GitHub, DynamoDB, SSM, the emulator's
//! runners): backon's exponential back-off, its waits taken on runway's [`Clock`](crate::Clock),
//! so a virtual-time test waits no wall time and a deadline read on the clock bounds them.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable};

use crate::{SharedClock, Sleep};

/// How long to wait before each retry of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    retries: usize,
    jitter: Jitter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jitter {
    None,
    Random,
    Seeded(u64),
}

impl Backoff {
    /// Waits `first`, then twice as long before each further retry up to `max`, for at most
    /// `retries` retries.
    pub const fn exponential(first: Duration, max: Duration, retries: usize) -> Backoff {
        Backoff {
            first,
            max,
            retries,
            jitter: Jitter::None,
        }
    }

    /// Each wait lengthened by a random part of itself (up to twice as long), so callers that
    /// failed together do not retry in lock-step.
    pub const fn with_jitter(self) -> Backoff {
        Backoff {
            jitter: Jitter::Random,
            ..self
        }
    }

    /// As [`Backoff::with_jitter`], with the same waits for the same seed (a caller seeds it
    /// with what tells it apart, such as a resource name, so its retries replay alike).
    pub const fn with_seeded_jitter(self, seed: u64) -> Backoff {
        Backoff {
            jitter: Jitter::Seeded(seed),
            ..self
        }
    }

    /// Retries at most.
    pub const fn retries(&self) -> usize {
        self.retries
    }

    /// The longest wait before jitter.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The waits, one per retry, in order, to the millisecond (backon multiplies in `f32`,
    /// which leaves a few nanoseconds on a doubled wait).
    pub fn delays(&self) -> Delays {
        self.builder().build().map(whole_millis)
    }

    /// The wait before retry `retry` (the first retry is 1); `None` once the retries are spent.
    pub fn delay(&self, retry: usize) -> Option<Duration> {
        retry
            .checked_sub(1)
            .and_then(|skipped| self.delays().nth(skipped))
    }

    /// The waits, taken on `clock`.
    pub fn pauses(&self, clock: &SharedClock) -> Pauses {
        Pauses {
            clock: clock.clone(),
            delays: self.delays(),
            taken: 0,
        }
    }

    fn builder(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_max_times(self.retries);
        match self.jitter {
            Jitter::None => builder,
            Jitter::Random => builder.with_jitter(),
            Jitter::Seeded(seed) => builder.with_jitter().with_jitter_seed(seed),
        }
    }

    /// Runs `call` until it succeeds, fails with an error `retryable` refuses, or the retries
    /// are spent (the last error is returned); waits between tries on `clock`.
    pub async fn retry<T, E, Call, Fut>(
        &self,
        clock: &SharedClock,
        retryable: impl FnMut(&E) -> bool,
        call: Call,
    ) -> Result<T, E>
    where
        Call: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        call.retry(self.builder())
            .sleep(ClockSleeper(clock.clone()))
            .when(retryable)
            .await
    }
}

/// A back-off's waits, in order.
pub type Delays = std::iter::Map<ExponentialBackoff, fn(Duration) -> Duration>;

fn whole_millis(delay: Duration) -> Duration {
    let millis = delay.as_nanos().saturating_add(500_000) / 1_000_000;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A back-off's waits, taken one at a time on a clock.
pub struct Pauses {
    clock: SharedClock,
    delays: Delays,
    taken: usize,
}

impl std::fmt::Debug for Pauses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pauses")
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl Pauses {
    /// Waits out the next pause and returns true; returns false at once when the retries
    /// are spent.
    pub async fn wait(&mut self) -> bool {
        match self.next_delay() {
            Some(delay) => {
                self.clock.sleep(delay).await;
                true
            }
            None => false,
        }
    }

    /// The next pause without waiting it (for a caller that bounds it by a deadline first).
    pub fn next_delay(&mut self) -> Option<Duration> {
        let delay = self.delays.next()?;
        self.taken += 1;
        Some(delay)
    }

    /// Pauses handed out so far.
    pub fn taken(&self) -> usize {
        self.taken
    }
}

/// backon's sleeper on a runway clock.
#[derive(Debug, Clone)]
pub struct ClockSleeper(pub SharedClock);

impl backon::Sleeper for ClockSleeper {
    type Sleep = Sleep;

    fn sleep(&self, duration: Duration) -> Sleep {
        self.0.sleep(duration)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::VirtualClock;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn waits_double_up_to_the_ceiling_and_stop_after_the_retries() {
        let backoff = Backoff::exponential(MS(100), MS(500), 5);
        let waits: Vec<Duration> = backoff.delays().collect();
        assert_eq!(waits, [MS(100), MS(200), MS(400), MS(500), MS(500)]);
        assert_eq!(backoff.delay(1), Some(MS(100)));
        assert_eq!(backoff.delay(4), Some(MS(500)));
        assert_eq!(backoff.delay(6), None);
        assert_eq!(backoff.delay(0), None);
    }

    #[test]
    fn jitter_stays_within_twice_the_wait_and_a_seed_repeats_it() {
        let plain = Backoff::exponential(MS(100), MS(800), 6);
        let seeded = plain.with_seeded_jitter(42);
        let first: Vec<Duration> = seeded.delays().collect();
        assert_eq!(first, seeded.delays().collect::<Vec<_>>());
        for (jittered, base) in first.iter().zip(plain.delays()) {
            assert!(
                *jittered >= base && *jittered <= base * 2,
                "{jittered:?} vs {base:?}"
            );
        }
        for (jittered, base) in plain.with_jitter().delays().zip(plain.delays()) {
            assert!(jittered >= base && jittered <= base * 2);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_are_taken_on_the_clock() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock: SharedClock = Arc::new(VirtualClock::starting_at(start));
        let mut pauses = Backoff::exponential(Duration::from_secs(60), Duration::from_secs(60), 2)
            .pauses(&clock);
        assert!(pauses.wait().await);
        assert!(pauses.wait().await);
        assert!(!pauses.wait().await);
        assert_eq!(pauses.taken(), 2);
        assert_eq!((clock.now() - start).num_seconds(), 120);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_at_success_a_refused_error_or_the_last_try() {
        let clock: SharedClock = Arc::new(VirtualClock::starting_at(Utc::now()));
        let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8), 3);
        let calls = AtomicU32::new(0);
        let outcome: Result<u32, &str> = backoff
            .retry(
                &clock,
                |_| true,
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    if n < 3 { Err("busy") } else { Ok(n) }
                },
            )
            .await;
        assert_eq!(outcome, Ok(3));

        calls.store(0, Ordering::SeqCst);
        let outcome: Result<u32, &str> = backoff
            .retry(
                &clock,
                |error| *error != "final",
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("final")
                },
            )
            .await;
        assert_eq!((outcome, calls.load(Ordering::SeqCst)), (Err("final"), 1));

        calls.store(0, Ordering::SeqCst);
        let outcome: Result<u32, &str> = backoff
            .retry(
                &clock,
                |_| true,
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("busy")
                },
            )
            .await;
        assert_eq!((outcome, calls.load(Ordering::SeqCst)), (Err("busy"), 4));
    }
}
