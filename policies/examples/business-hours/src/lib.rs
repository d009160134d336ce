//! A throttle with two ceilings: a higher one during business hours, when people wait for
//! their builds, and a lower one at night and at weekends, read from the decision's time.
//!
//! Pool settings (all optional):
//! - `business-hours.start`, `business-hours.end` (default `08:00`, `18:00`, local time);
//! - `business-hours.utc-offset-minutes` (default 0): local time is UTC plus this offset;
//! - `business-hours.day-ceiling` (default the pool's `max-running`);
//! - `business-hours.night-ceiling` (default a quarter of the day ceiling, at least 1);
//! - `business-hours.weekends` (`night` by default, or `day`).

use runway_policy::throttle::{Job, Load, Pool, ThrottleDecision};
use runway_policy::time::{civil, parse_hhmm};

const DAY_MINUTES: u32 = 24 * 60;

fn decide(_job: Job, pool: Pool, load: Load) -> ThrottleDecision {
    let start = pool.param("business-hours.start").map(parse_hhmm);
    let end = pool.param("business-hours.end").map(parse_hhmm);
    let (Some(start), Some(end)) = (start.unwrap_or(Some(8 * 60)), end.unwrap_or(Some(18 * 60)))
    else {
        return ThrottleDecision::reject(format!(
            "pool {}: business-hours.start and business-hours.end must be HH:MM",
            pool.name
        ));
    };
    let offset: i32 = pool
        .param_parse("business-hours.utc-offset-minutes")
        .unwrap_or(0);
    let day_ceiling = pool
        .param_parse("business-hours.day-ceiling")
        .unwrap_or(pool.max_running)
        .min(pool.max_running);
    let night_ceiling = pool
        .param_parse("business-hours.night-ceiling")
        .unwrap_or((day_ceiling / 4).max(1))
        .min(pool.max_running);
    let weekends_are_days = pool.param("business-hours.weekends") == Some("day");

    let local = civil(load.now.seconds, offset);
    let working_day = weekends_are_days || !local.weekday.is_weekend();
    let in_hours = working_day && local.minute_of_day >= start && local.minute_of_day < end;
    let (ceiling, period) = if in_hours {
        (day_ceiling, "business hours")
    } else {
        (night_ceiling, "outside business hours")
    };
    let active = load.pool.active();
    let clock = format!("{:02}:{:02}", local.hour, local.minute);
    if active < ceiling {
        return ThrottleDecision::admit(format!(
            "{active} of {ceiling} runners at {clock} ({period})"
        ));
    }
    // Check again when a slot may have been released, or when the ceiling next changes.
    let minutes_to_change = if in_hours {
        end - local.minute_of_day
    } else if working_day && local.minute_of_day < start {
        start - local.minute_of_day
    } else {
        DAY_MINUTES - local.minute_of_day + start
    };
    let recheck = (minutes_to_change * 60).clamp(30, 300);
    ThrottleDecision::wait(
        0,
        recheck,
        format!("{active} of {ceiling} runners at {clock} ({period}): wait for a slot"),
    )
}

runway_policy::export_throttle!(decide);
