//! Calendar arithmetic on the `instant` records of the input: policies have no clock and no
//! time-zone database, so local time is UTC plus an offset the operator configures.

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

/// Local calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub weekday: Weekday,
    pub hour: u32,
    pub minute: u32,
    /// Minutes since local midnight.
    pub minute_of_day: u32,
}

/// The local calendar time of `unix_seconds` at `offset_minutes` east of UTC.
pub fn civil(unix_seconds: i64, offset_minutes: i32) -> Civil {
    let local = unix_seconds.saturating_add(i64::from(offset_minutes) * 60);
    let days = local.div_euclid(86_400);
    let seconds_of_day = local.rem_euclid(86_400) as u32;
    // 1970-01-01 was a Thursday.
    let weekday = match (days + 3).rem_euclid(7) {
        0 => Weekday::Monday,
        1 => Weekday::Tuesday,
        2 => Weekday::Wednesday,
        3 => Weekday::Thursday,
        4 => Weekday::Friday,
        5 => Weekday::Saturday,
        _ => Weekday::Sunday,
    };
    let (year, month, day) = civil_from_days(days);
    let minute_of_day = seconds_of_day / 60;
    Civil {
        year,
        month,
        day,
        weekday,
        hour: minute_of_day / 60,
        minute: minute_of_day % 60,
        minute_of_day,
    }
}

/// Parses `HH:MM` into minutes since midnight.
pub fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let c = civil(0, 0);
        assert_eq!(
            (c.year, c.month, c.day, c.weekday),
            (1970, 1, 1, Weekday::Thursday)
        );
        // 2026-11-25T21:18:47Z is a Wednesday.
        let c = civil(1_795_641_527, 0);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (2026, 11, 25, 21, 18)
        );
        assert_eq!(c.weekday, Weekday::Wednesday);
        let c = civil(1_795_641_527, 180);
        assert_eq!((c.day, c.hour, c.weekday), (26, 0, Weekday::Thursday));
    }

    #[test]
    fn hhmm() {
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        assert_eq!(parse_hhmm("25:00"), None);
        assert_eq!(parse_hhmm("8"), None);
    }
}
