//! When a pool keeps warm runners: cron windows, each read in its own time zone.
//!
//! A pool's `warm` table lists windows; in every minute a window's cron expression matches
//! (read in the window's time zone, daylight saving time included), the pool keeps that
//! window's `idle` count of runners registered and waiting. When several windows match, the
//! largest count wins; when none does, the pool keeps none (it scales to zero).
//!
//! ```toml
//! [pools.warm]
//! replace_after_seconds = 3600      # an idle warm runner older than this is replaced
//! [[pools.warm.windows]]
//! cron = "* 8-17 * * MON-FRI"       # minute hour day-of-month month day-of-week
//! time_zone = "Europe/Berlin"       # IANA name; default UTC
//! idle = 2
//! ```
//!
//! Warm runners register where the pool's jobs' runners do; when that is per organisation or
//! per repository, the `warm` table names it (`organization = "acme"`,
//! `repository = "acme/app"`), since no job does yet.

mod cron;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use cron::{Cron, CronError, Minute};

/// What [`WarmSchedule::replace_after_seconds`] is when a pool says nothing: an hour, well
/// within a JIT configuration's life and the runner's own update checks.
pub const DEFAULT_REPLACE_AFTER_SECONDS: u32 = 3600;

/// The largest count one window may ask for: a warm pool is a head start, not a fleet.
pub const MAX_IDLE: u32 = 1000;

/// A pool's warm-runner schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmSchedule {
    /// The windows; an empty list keeps no warm runner.
    #[serde(default)]
    pub windows: Vec<WarmWindow>,
    /// An idle warm runner older than this is torn down and replaced, so that warm runners
    /// never go stale (image updates, the runner's own version).
    #[serde(default = "default_replace_after")]
    pub replace_after_seconds: u32,
    /// Where warm runners register when runners register per organisation: no job names the
    /// organisation yet, so the pool does. Jobs of other organisations launch their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Where warm runners register when runners register per repository (`owner/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

fn default_replace_after() -> u32 {
    DEFAULT_REPLACE_AFTER_SECONDS
}

impl WarmSchedule {
    /// How many idle runners the pool keeps at `now`: the largest count among the windows
    /// that match this minute, 0 when none does.
    pub fn idle_at(&self, now: DateTime<Utc>) -> u32 {
        self.windows
            .iter()
            .filter(|window| window.is_open_at(now))
            .map(|window| window.idle)
            .max()
            .unwrap_or(0)
    }
}

/// One window: a cron expression, the time zone it is read in, and a count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "WindowText", into = "WindowText")]
pub struct WarmWindow {
    pub cron: Cron,
    time_zone: jiff::tz::TimeZone,
    time_zone_name: String,
    pub idle: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowText {
    cron: String,
    #[serde(default = "utc")]
    time_zone: String,
    idle: u32,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Why a window was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("{0}")]
    Cron(#[from] CronError),
    #[error(
        "time zone {name:?} is not an IANA time zone name (write e.g. \"Europe/Berlin\", \
         \"America/New_York\" or \"UTC\")"
    )]
    TimeZone { name: String },
    #[error("idle is {idle}; a window keeps at most {MAX_IDLE} warm runners")]
    TooMany { idle: u32 },
}

impl WarmWindow {
    /// A window keeping `idle` runners whenever `cron` matches the time in `time_zone`.
    pub fn new(cron: &str, time_zone: &str, idle: u32) -> Result<WarmWindow, WindowError> {
        let cron = Cron::parse(cron)?;
        let zone = jiff::tz::TimeZone::get(time_zone).map_err(|_| WindowError::TimeZone {
            name: time_zone.to_owned(),
        })?;
        if idle > MAX_IDLE {
            return Err(WindowError::TooMany { idle });
        }
        Ok(WarmWindow {
            cron,
            time_zone: zone,
            time_zone_name: time_zone.to_owned(),
            idle,
        })
    }

    pub fn time_zone(&self) -> &str {
        &self.time_zone_name
    }

    /// Whether the window is open in the minute holding `now`.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        let Ok(instant) = jiff::Timestamp::from_second(now.timestamp()) else {
            return false;
        };
        let local = instant.to_zoned(self.time_zone.clone());
        self.cron.matches(Minute {
            minute: local.minute().unsigned_abs(),
            hour: local.hour().unsigned_abs(),
            day: local.day().unsigned_abs(),
            month: local.month().unsigned_abs(),
            weekday: local.weekday().to_sunday_zero_offset().unsigned_abs(),
        })
    }
}

impl TryFrom<WindowText> for WarmWindow {
    type Error = WindowError;
    fn try_from(text: WindowText) -> Result<Self, WindowError> {
        WarmWindow::new(&text.cron, &text.time_zone, text.idle)
    }
}

impl From<WarmWindow> for WindowText {
    fn from(window: WarmWindow) -> WindowText {
        WindowText {
            cron: window.cron.to_string(),
            time_zone: window.time_zone_name,
            idle: window.idle,
        }
    }
}

impl PartialEq for WarmWindow {
    fn eq(&self, other: &Self) -> bool {
        (&self.cron, &self.time_zone_name, self.idle)
            == (&other.cron, &other.time_zone_name, other.idle)
    }
}

impl Eq for WarmWindow {}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn window(cron: &str, zone: &str, idle: u32) -> WarmWindow {
        WarmWindow::new(cron, zone, idle).unwrap()
    }

    #[test]
    fn office_hours_in_berlin_follow_daylight_saving_time() {
        let office = window("* 8-17 * * MON-FRI", "Europe/Berlin", 2);
        // Winter: Berlin is UTC+1, so 08:00 there is 07:00 UTC.
        assert!(!office.is_open_at(at("2026-12-07T06:59:00Z")));
        assert!(office.is_open_at(at("2026-12-07T07:00:00Z")));
        assert!(office.is_open_at(at("2026-12-07T16:59:59Z")));
        assert!(!office.is_open_at(at("2026-12-07T17:00:00Z")));
        // Summer: UTC+2, so 08:00 there is 06:00 UTC.
        assert!(office.is_open_at(at("2026-07-06T06:00:00Z")));
        assert!(!office.is_open_at(at("2026-07-06T16:00:00Z")));
        // Saturday.
        assert!(!office.is_open_at(at("2026-12-05T10:00:00Z")));
    }

    #[test]
    fn the_largest_open_window_wins_and_none_means_zero() {
        let schedule = WarmSchedule {
            windows: vec![
                window("* 8-17 * * MON-FRI", "UTC", 2),
                window("* 9 * * MON", "UTC", 5),
            ],
            replace_after_seconds: DEFAULT_REPLACE_AFTER_SECONDS,
            organization: None,
            repository: None,
        };
        let monday = |hour| Utc.with_ymd_and_hms(2026, 12, 7, hour, 30, 0).unwrap();
        assert_eq!(schedule.idle_at(monday(8)), 2);
        assert_eq!(schedule.idle_at(monday(9)), 5);
        assert_eq!(schedule.idle_at(monday(20)), 0);
    }

    #[test]
    fn windows_read_from_toml_like_json_and_say_what_is_wrong() {
        let schedule: WarmSchedule = serde_json::from_str(
            r#"{"windows": [{"cron": "*/5 8-17 * * 1-5", "time_zone": "America/New_York", "idle": 3},
                            {"cron": "0 0 1 1 *", "idle": 1}]}"#,
        )
        .unwrap();
        assert_eq!(
            schedule.replace_after_seconds,
            DEFAULT_REPLACE_AFTER_SECONDS
        );
        assert_eq!(schedule.windows[1].time_zone(), "UTC");
        let back = serde_json::to_value(&schedule).unwrap();
        assert_eq!(back["windows"][0]["time_zone"], "America/New_York");

        let error = serde_json::from_str::<WarmSchedule>(
            r#"{"windows": [{"cron": "* * * *", "idle": 1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("5 fields"), "{error}");
        let error = serde_json::from_str::<WarmSchedule>(
            r#"{"windows": [{"cron": "* * * * *", "time_zone": "Mars/Olympus", "idle": 1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("IANA"), "{error}");
    }
}
