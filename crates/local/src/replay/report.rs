//! What a replay found: per pool and overall, queue waits, runner-minutes, idle minutes, cost,
//! ceilings hit and fallbacks; printed as a table, or two side by side.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// EC2 bills Linux instances by the second with a one-minute minimum.
pub const MINIMUM_BILLED_SECONDS: f64 = 60.0;

/// Queue waits, in seconds: from GitHub queueing a job to a runner starting it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Waits {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
    pub mean: f64,
}

impl Waits {
    /// Nearest-rank percentiles of `waits`.
    pub fn of(waits: &[f64]) -> Waits {
        if waits.is_empty() {
            return Waits::default();
        }
        let mut sorted = waits.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = (p * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Waits {
            p50: rank(0.50),
            p95: rank(0.95),
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }
}

/// One pool's figures (or all pools', under the name `all`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PoolReport {
    pub pool: String,
    /// Jobs a runner of the pool ran.
    pub jobs: usize,
    pub wait_seconds: Waits,
    /// Runners launched.
    pub runners: usize,
    /// Instance time, launch to termination (or reclaim).
    pub runner_minutes: f64,
    /// Of that, time a job ran.
    pub busy_minutes: f64,
    /// Of that, time no job ran: boot, waiting for a job, teardown.
    pub idle_minutes: f64,
    /// US dollars: billed seconds (at least a minute an instance) at the instance type's price
    /// in its market.
    pub cost_usd: f64,
    /// Jobs that found a ceiling (pool, organisation or repository) full, once per wait (a
    /// re-check that finds it still full is the same wait).
    pub ceilings_hit: u64,
    /// Jobs the throttle policy queued, once per wait.
    pub policy_waits: u64,
    /// Jobs the throttle policy refused.
    pub rejected: u64,
    /// Launch attempts refused for capacity (simulated), one per market tried.
    pub capacity_errors: u64,
    /// Launches that wanted spot and got on-demand.
    pub market_fallbacks: u64,
    /// Spot runners reclaimed (simulated).
    pub spot_reclaims: u64,
    /// Warm runners the keeper launched (a pool with a `warm` schedule).
    pub warm_runners: usize,
    /// Jobs a warm runner ran (adopted, or taken by it on its own).
    pub warm_jobs: usize,
    /// What the warm runners cost in waiting: their instance time no job ran.
    pub warm_idle_minutes: f64,
    /// The queue wait warm runners saved: for each job a warm runner ran, the pool's mean
    /// boot (a cold runner's launch to its first job) less the job's own wait.
    pub wait_saved_minutes: f64,
}

/// A whole replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The configuration replayed (its file name).
    pub config: String,
    pub jobs: usize,
    /// The first arrival and the moment everything had ended, on the virtual clock.
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Wall-clock seconds the replay took.
    pub wall_seconds: f64,
    /// Jobs that never started (no pool took them, refused, or cancelled after a day).
    pub jobs_not_run: usize,
    /// Jobs that ran and did not succeed (their runner was reclaimed under them, say).
    pub jobs_failed: usize,
    pub overall: PoolReport,
    pub pools: Vec<PoolReport>,
    /// Policy decisions that fell back to the built-in behaviour, by policy (router,
    /// throttle).
    pub policy_fallbacks: BTreeMap<String, u64>,
    /// Executions that did not succeed, by how they ended.
    pub executions_not_succeeded: BTreeMap<String, u64>,
    /// Instance types with no price in `[replay.prices]` (costed at 0).
    pub unpriced: Vec<String>,
}

fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 3600.0 {
        format!("{}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{}h{:02.0}m", (s / 3600.0).floor(), (s % 3600.0) / 60.0)
    }
}

const COLUMNS: [&str; 14] = [
    "pool",
    "jobs",
    "wait p50",
    "wait p95",
    "wait max",
    "runners",
    "runner-min",
    "idle-min",
    "cost $",
    "ceilings",
    "policy waits",
    "fallbacks",
    "capacity",
    "reclaims",
];

fn row(pool: &PoolReport) -> [String; 14] {
    [
        pool.pool.clone(),
        pool.jobs.to_string(),
        seconds(pool.wait_seconds.p50),
        seconds(pool.wait_seconds.p95),
        seconds(pool.wait_seconds.max),
        pool.runners.to_string(),
        format!("{:.1}", pool.runner_minutes),
        format!("{:.1}", pool.idle_minutes),
        format!("{:.2}", pool.cost_usd),
        pool.ceilings_hit.to_string(),
        pool.policy_waits.to_string(),
        pool.market_fallbacks.to_string(),
        pool.capacity_errors.to_string(),
        pool.spot_reclaims.to_string(),
    ]
}

fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "runway replay of {}: {} jobs, {} to {} (virtual time), replayed in {:.1} s",
            self.config,
            self.jobs,
            self.started_at.to_rfc3339(),
            self.ended_at.to_rfc3339(),
            self.wall_seconds
        )?;
        let mut rows = vec![COLUMNS.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>()];
        rows.extend(self.pools.iter().map(|p| row(p).to_vec()));
        rows.push(row(&self.overall).to_vec());
        f.write_str(&table(&rows))?;
        let fallbacks: Vec<String> = self
            .policy_fallbacks
            .iter()
            .map(|(policy, n)| format!("{policy} {n}"))
            .collect();
        writeln!(
            f,
            "policy fallbacks: {}; jobs not run: {}; jobs failed: {}; rejected: {}",
            if fallbacks.is_empty() {
                "none".to_owned()
            } else {
                fallbacks.join(", ")
            },
            self.jobs_not_run,
            self.jobs_failed,
            self.overall.rejected
        )?;
        for pool in self.pools.iter().filter(|pool| pool.warm_runners > 0) {
            writeln!(
                f,
                "warm pool {}: {} warm runners ran {} jobs, saving about {:.1} min of queue \
                 wait for {:.1} idle min paid",
                pool.pool,
                pool.warm_runners,
                pool.warm_jobs,
                pool.wait_saved_minutes,
                pool.warm_idle_minutes
            )?;
        }
        if !self.executions_not_succeeded.is_empty() {
            let ended: Vec<String> = self
                .executions_not_succeeded
                .iter()
                .map(|(how, n)| format!("{how} {n}"))
                .collect();
            writeln!(f, "executions not succeeded: {}", ended.join(", "))?;
        }
        if !self.unpriced.is_empty() {
            writeln!(
                f,
                "no price in [replay.prices] for: {} (costed at $0)",
                self.unpriced.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Two replays of one trace side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: ReplayReport,
    pub b: ReplayReport,
}

fn change(a: f64, b: f64, format: impl Fn(f64) -> String) -> String {
    let delta = b - a;
    let sign = if delta > 0.0 {
        "+"
    } else if delta < 0.0 {
        "-"
    } else {
        return "=".to_owned();
    };
    let percent = if a != 0.0 {
        format!(" ({sign}{:.0}%)", (delta / a * 100.0).abs())
    } else {
        String::new()
    };
    format!("{sign}{}{percent}", format(delta.abs()))
}

fn compare_rows(rows: &mut Vec<Vec<String>>, a: &PoolReport, b: &PoolReport) {
    type Figure = (&'static str, fn(&PoolReport) -> f64, fn(f64) -> String);
    let figures: [Figure; 12] = [
        ("jobs", |p| p.jobs as f64, |x| format!("{x:.0}")),
        ("wait p50", |p| p.wait_seconds.p50, seconds),
        ("wait p95", |p| p.wait_seconds.p95, seconds),
        ("wait max", |p| p.wait_seconds.max, seconds),
        ("runners", |p| p.runners as f64, |x| format!("{x:.0}")),
        (
            "runner-minutes",
            |p| p.runner_minutes,
            |x| format!("{x:.1}"),
        ),
        ("idle minutes", |p| p.idle_minutes, |x| format!("{x:.1}")),
        ("cost $", |p| p.cost_usd, |x| format!("{x:.2}")),
        (
            "ceilings hit",
            |p| p.ceilings_hit as f64,
            |x| format!("{x:.0}"),
        ),
        (
            "policy waits",
            |p| p.policy_waits as f64,
            |x| format!("{x:.0}"),
        ),
        (
            "market fallbacks",
            |p| p.market_fallbacks as f64,
            |x| format!("{x:.0}"),
        ),
        (
            "capacity errors",
            |p| p.capacity_errors as f64,
            |x| format!("{x:.0}"),
        ),
    ];
    for (name, figure, format) in figures {
        let (x, y) = (figure(a), figure(b));
        rows.push(vec![
            format!("{} {name}", a.pool),
            format(x),
            format(y),
            change(x, y, format),
        ]);
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "runway replay: {} jobs, A = {}, B = {} (replayed in {:.1} s and {:.1} s)",
            self.a.jobs, self.a.config, self.b.config, self.a.wall_seconds, self.b.wall_seconds
        )?;
        let mut rows = vec![vec![
            String::new(),
            format!("A: {}", self.a.config),
            format!("B: {}", self.b.config),
            "B - A".to_owned(),
        ]];
        compare_rows(&mut rows, &self.a.overall, &self.b.overall);
        let empty = PoolReport::default();
        let mut names: Vec<&str> = self.a.pools.iter().map(|p| p.pool.as_str()).collect();
        for pool in &self.b.pools {
            if !names.contains(&pool.pool.as_str()) {
                names.push(&pool.pool);
            }
        }
        for name in names {
            let find = |report: &ReplayReport| {
                report
                    .pools
                    .iter()
                    .find(|p| p.pool == name)
                    .cloned()
                    .unwrap_or_else(|| PoolReport {
                        pool: name.to_owned(),
                        ..empty.clone()
                    })
            };
            compare_rows(&mut rows, &find(&self.a), &find(&self.b));
        }
        let fallbacks = |r: &ReplayReport| r.policy_fallbacks.values().sum::<u64>() as f64;
        let count = |x: f64| format!("{x:.0}");
        for (name, x, y) in [
            ("policy fallbacks", fallbacks(&self.a), fallbacks(&self.b)),
            (
                "jobs not run",
                self.a.jobs_not_run as f64,
                self.b.jobs_not_run as f64,
            ),
            (
                "jobs failed",
                self.a.jobs_failed as f64,
                self.b.jobs_failed as f64,
            ),
        ] {
            rows.push(vec![
                name.to_owned(),
                count(x),
                count(y),
                change(x, y, count),
            ]);
        }
        f.write_str(&table(&rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let waits = Waits::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(waits.p50, 3.0);
        assert_eq!(waits.p95, 5.0);
        assert_eq!(waits.max, 5.0);
        assert_eq!(waits.mean, 3.0);
        let many: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Waits::of(&many).p95, 95.0);
        assert_eq!(Waits::of(&[]), Waits::default());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(seconds(42.0), "42 s");
        assert_eq!(seconds(125.0), "2m05s");
        assert_eq!(seconds(7260.0), "2h01m");
        assert_eq!(change(10.0, 15.0, |x| format!("{x:.0}")), "+5 (+50%)");
        assert_eq!(change(4.0, 4.0, |x| format!("{x:.0}")), "=");
    }
}
