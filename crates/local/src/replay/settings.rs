//! The `[replay]` section of a local configuration: how `runway replay` simulates the hosts
//! runners run on. `runway local` ignores it.
//!
//! ```toml
//! [replay]
//! seed = 7                                    # boot times, capacity errors, reclaims
//!
//! [replay.prices]                             # US dollars an hour, by instance type
//! "m7i.large" = { on-demand = 0.1008, spot = 0.0390 }
//!
//! [replay.pools.linux-x64]                    # one table per pool of [[pools]]
//! boot_seconds = { median = 45, p95 = 90 }    # or 40, or { min = 30, max = 60 }
//! capacity_error_rate = 0.02                  # share of launch attempts refused, per market
//! spot_reclaims_per_hour = 0.05               # of a spot runner's life
//! instance_type = "m7i.large"                 # else the pool's first instance type
//! ```
//!
//! A pool with no table boots in [`DEFAULT_BOOT_SECONDS`] and never fails.

use std::collections::BTreeMap;

use serde::Deserialize;

/// How long a runner boots when the configuration does not say.
pub const DEFAULT_BOOT_SECONDS: f64 = 30.0;
/// The instance type of a pool that names none.
pub const DEFAULT_INSTANCE_TYPE: &str = "runner";

/// The `[replay]` section.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySettings {
    /// Seeds every random draw of the simulation (each runner's draws depend only on the seed
    /// and its name, so one job's luck does not change another's).
    #[serde(default)]
    pub seed: u64,
    /// Prices by instance type.
    #[serde(default)]
    pub prices: BTreeMap<String, Prices>,
    /// Simulation settings by pool name.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolSimulation>,
}

/// What an instance type costs an hour, by market.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    #[serde(rename = "on-demand")]
    pub on_demand: Option<f64>,
    pub spot: Option<f64>,
}

/// How one pool's host behaves.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSimulation {
    /// From the launch to the runner connecting to GitHub.
    pub boot_seconds: Option<BootTime>,
    /// The share of launch attempts refused for want of capacity, per market tried (a pool
    /// buying spot then on-demand falls back to on-demand when spot is refused).
    #[serde(default)]
    pub capacity_error_rate: f64,
    /// How often a spot runner is reclaimed: the expected number of reclaims in an hour of
    /// its life (an exponential time to reclaim).
    #[serde(default)]
    pub spot_reclaims_per_hour: f64,
    /// The instance type runners run on, unless the router policy asks for another.
    pub instance_type: Option<String>,
}

/// A boot-time distribution, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum BootTime {
    /// Always this long.
    Fixed(f64),
    /// Uniform between the two.
    Uniform { min: f64, max: f64 },
    /// Log-normal with this median and 95th percentile.
    LogNormal { median: f64, p95: f64 },
}

impl BootTime {
    /// The boot time for a draw `u` uniform in [0, 1) and `z` standard normal.
    pub fn sample(self, u: f64, z: f64) -> f64 {
        match self {
            BootTime::Fixed(seconds) => seconds,
            BootTime::Uniform { min, max } => min + (max - min) * u,
            BootTime::LogNormal { median, p95 } => {
                let sigma = (p95 / median).ln() / 1.644_853_626_951_472_2;
                median * (sigma * z).exp()
            }
        }
    }

    fn check(self) -> Result<(), String> {
        let fine = |x: f64| x.is_finite() && x >= 0.0;
        match self {
            BootTime::Fixed(seconds) if fine(seconds) => Ok(()),
            BootTime::Fixed(seconds) => Err(format!("{seconds} must be 0 or more seconds")),
            BootTime::Uniform { min, max } if fine(min) && fine(max) && min <= max => Ok(()),
            BootTime::Uniform { min, max } => Err(format!(
                "{{ min = {min}, max = {max} }} needs 0 ≤ min ≤ max"
            )),
            BootTime::LogNormal { median, p95 } if median > 0.0 && p95 >= median && fine(p95) => {
                Ok(())
            }
            BootTime::LogNormal { median, p95 } => Err(format!(
                "{{ median = {median}, p95 = {p95} }} needs 0 < median ≤ p95"
            )),
        }
    }
}

impl ReplaySettings {
    /// Checks the numbers and that every pool named is one of `pools`; the error names the
    /// field.
    pub fn validate<'a>(&self, pools: impl Iterator<Item = &'a str> + Clone) -> Result<(), String> {
        for (name, sim) in &self.pools {
            if !pools.clone().any(|pool| pool == name) {
                let known: Vec<&str> = pools.clone().collect();
                return Err(format!(
                    "[replay.pools.{name}] names no pool of [[pools]] (they are: {}); rename \
                     the table or add the pool",
                    known.join(", ")
                ));
            }
            let at = |field: &str| format!("[replay.pools.{name}] {field}");
            if let Some(boot) = sim.boot_seconds {
                boot.check()
                    .map_err(|problem| format!("{} = {problem}", at("boot_seconds")))?;
            }
            if !(0.0..=1.0).contains(&sim.capacity_error_rate) {
                return Err(format!(
                    "{} = {} must be a share between 0 and 1",
                    at("capacity_error_rate"),
                    sim.capacity_error_rate
                ));
            }
            if !(sim.spot_reclaims_per_hour.is_finite() && sim.spot_reclaims_per_hour >= 0.0) {
                return Err(format!(
                    "{} = {} must be 0 or more",
                    at("spot_reclaims_per_hour"),
                    sim.spot_reclaims_per_hour
                ));
            }
        }
        for (instance_type, prices) in &self.prices {
            for (market, price) in [("on-demand", prices.on_demand), ("spot", prices.spot)] {
                if let Some(price) = price
                    && !(price.is_finite() && price >= 0.0)
                {
                    return Err(format!(
                        "[replay.prices] \"{instance_type}\".{market} = {price} must be 0 or \
                         more US dollars an hour"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The simulation of `pool` (defaults when it has no table).
    pub fn pool(&self, pool: &str) -> PoolSimulation {
        self.pools.get(pool).cloned().unwrap_or_default()
    }

    /// The hourly price of `instance_type` in `market` (`spot` or `on-demand`), if known.
    pub fn price(&self, instance_type: &str, market: &str) -> Option<f64> {
        let prices = self.prices.get(instance_type)?;
        match market {
            "spot" => prices.spot,
            _ => prices.on_demand,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ReplaySettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn boot_times_are_a_number_a_range_or_a_log_normal() {
        let settings = parse(
            r#"
            [pools.a]
            boot_seconds = 40
            [pools.b]
            boot_seconds = { min = 30, max = 60 }
            [pools.c]
            boot_seconds = { median = 45, p95 = 90 }
            "#,
        );
        assert_eq!(settings.pool("a").boot_seconds, Some(BootTime::Fixed(40.0)));
        assert_eq!(
            settings.pool("b").boot_seconds.unwrap().sample(0.5, 0.0),
            45.0
        );
        let c = settings.pool("c").boot_seconds.unwrap();
        assert!((c.sample(0.0, 0.0) - 45.0).abs() < 1e-9);
        assert!((c.sample(0.0, 1.644_853_626_951_472_2) - 90.0).abs() < 1e-6);
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let settings = parse("[pools.a]\ncapacity_error_rate = 1.5\n");
        let error = settings.validate(["a"].into_iter()).unwrap_err();
        assert!(
            error.contains("[replay.pools.a] capacity_error_rate"),
            "{error}"
        );
        let error = parse("[pools.zzz]\n")
            .validate(["a"].into_iter())
            .unwrap_err();
        assert!(
            error.contains("[replay.pools.zzz] names no pool"),
            "{error}"
        );
        assert!(error.contains("they are: a"), "{error}");
        let error = parse("[pools.a]\nboot_seconds = { min = 9, max = 3 }\n")
            .validate(["a"].into_iter())
            .unwrap_err();
        assert!(error.contains("boot_seconds"), "{error}");
    }
}
