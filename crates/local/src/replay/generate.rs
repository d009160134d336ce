//! A synthetic trace (`runway replay --generate`): working hours on weekdays, quiet nights and
//! weekends, and bursts (a merge to a monorepo fanning out into a matrix). Seeded: the same
//! options always give the same trace.
//!
//! Jobs ask for the labels of the built-in configuration's pools (`linux-x64` most, then
//! `linux-arm64`, a few `gpu`), across three organisations' repositories.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::trace::TraceJob;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub jobs: usize,
    pub seed: u64,
    /// Midnight UTC of the first day.
    pub start: DateTime<Utc>,
    pub days: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            jobs: 10_000,
            seed: 1,
            // A Monday.
            start: DateTime::from_timestamp(1_796_601_600, 0).unwrap_or(DateTime::UNIX_EPOCH),
            days: 1,
        }
    }
}

/// Repositories with their relative weights: a few busy ones, a long tail.
const REPOSITORIES: [(&str, f64); 9] = [
    ("octo-org/app", 20.0),
    ("octo-org/api", 15.0),
    ("octo-org/docs", 3.0),
    ("octo-org/monorepo", 25.0),
    ("acme/web", 12.0),
    ("acme/infra", 5.0),
    ("acme/mobile", 6.0),
    ("hooli/search", 9.0),
    ("hooli/ads", 5.0),
];
const LABELS: [(&[&str], f64); 3] = [
    (&["self-hosted", "linux", "x64"], 0.75),
    (&["self-hosted", "linux", "arm64"], 0.21),
    (&["self-hosted", "linux", "gpu"], 0.04),
];
/// The share of jobs that come in bursts.
const BURST_SHARE: f64 = 0.2;
/// Jobs in one burst, at most.
const BURST_SIZE: usize = 120;
/// A burst's jobs arrive within this many seconds.
const BURST_SPREAD_SECONDS: f64 = 90.0;

/// How busy an hour of a day is, relative to the busiest (UTC working hours around 09:00–18:00).
fn hourly(hour: u32) -> f64 {
    match hour {
        0..=5 => 0.08,
        6 | 7 => 0.3,
        8 => 0.7,
        9..=11 => 1.0,
        12 => 0.75,
        13..=16 => 1.0,
        17 => 0.7,
        18 | 19 => 0.4,
        _ => 0.15,
    }
}

fn daily(day: Weekday) -> f64 {
    match day {
        Weekday::Sat | Weekday::Sun => 0.15,
        Weekday::Fri => 0.8,
        _ => 1.0,
    }
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut at = rng.random::<f64>() * total;
    for item in items {
        at -= weight(item);
        if at < 0.0 {
            return item;
        }
    }
    &items[items.len() - 1]
}

/// Run time: log-normal, median 4 minutes, 95th percentile about 25 minutes, at most 2 hours.
fn run_seconds(rng: &mut impl Rng) -> f64 {
    let sigma = (25.0f64 / 4.0).ln() / 1.645;
    (240.0 * (sigma * normal(rng)).exp())
        .clamp(10.0, 7200.0)
        .round()
}

fn job(rng: &mut impl Rng, at: DateTime<Utc>, repository: &str) -> TraceJob {
    let (labels, _) = pick(rng, &LABELS, |(_, weight)| *weight);
    TraceJob {
        at,
        repository: repository.to_owned(),
        organization: repository
            .split_once('/')
            .map(|(owner, _)| owner.to_owned()),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        run_seconds: run_seconds(rng),
    }
}

/// The trace `options` describe, in order of arrival.
pub fn generate(options: &GenerateOptions) -> Vec<TraceJob> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let minutes = options.days.max(1) as usize * 24 * 60;
    // The weight of each minute of the period, cumulated.
    let mut cumulative = Vec::with_capacity(minutes);
    let mut total = 0.0;
    for minute in 0..minutes {
        let at = options.start + Duration::minutes(minute as i64);
        total += hourly(at.hour()) * daily(at.weekday());
        cumulative.push(total);
    }
    let at_minute = |rng: &mut StdRng| {
        let target = rng.random::<f64>() * total;
        let minute = cumulative
            .partition_point(|&c| c <= target)
            .min(minutes - 1);
        options.start
            + Duration::minutes(minute as i64)
            + Duration::milliseconds((rng.random::<f64>() * 60_000.0) as i64)
    };
    let mut jobs = Vec::with_capacity(options.jobs);
    let bursty = (options.jobs as f64 * BURST_SHARE) as usize;
    while jobs.len() < bursty {
        let size = rng
            .random_range(BURST_SIZE / 4..=BURST_SIZE)
            .min(bursty - jobs.len());
        let at = at_minute(&mut rng);
        let (repository, _) = *pick(&mut rng, &REPOSITORIES, |(_, weight)| *weight);
        for _ in 0..size {
            let offset = Duration::milliseconds(
                (rng.random::<f64>() * BURST_SPREAD_SECONDS * 1000.0) as i64,
            );
            jobs.push(job(&mut rng, at + offset, repository));
        }
    }
    while jobs.len() < options.jobs {
        let at = at_minute(&mut rng);
        let (repository, _) = *pick(&mut rng, &REPOSITORIES, |(_, weight)| *weight);
        jobs.push(job(&mut rng, at, repository));
    }
    jobs.sort_by_key(|job| job.at);
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_day() {
        let options = GenerateOptions {
            jobs: 500,
            ..GenerateOptions::default()
        };
        let a = generate(&options);
        assert_eq!(a.len(), 500);
        assert_eq!(a, generate(&options));
        let other = generate(&GenerateOptions {
            seed: 2,
            ..options.clone()
        });
        assert_ne!(a, other);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(options.start.weekday(), Weekday::Mon);
    }

    #[test]
    fn working_hours_are_busier_than_the_night_and_weekends_quieter() {
        let week = generate(&GenerateOptions {
            jobs: 20_000,
            days: 7,
            ..GenerateOptions::default()
        });
        let count = |f: &dyn Fn(&TraceJob) -> bool| week.iter().filter(|j| f(j)).count();
        let night = count(&|j| j.at.hour() < 6);
        let day = count(&|j| (9..15).contains(&j.at.hour()));
        assert!(day > 3 * night, "day {day}, night {night}");
        let weekend = count(&|j| matches!(j.at.weekday(), Weekday::Sat | Weekday::Sun));
        let monday = count(&|j| j.at.weekday() == Weekday::Mon);
        assert!(
            monday > 2 * weekend / 2,
            "monday {monday}, weekend {weekend}"
        );
    }
}
