//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), as crontab(5)
//! reads them: `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, month names
//! `JAN`-`DEC` and day names `SUN`-`SAT` (Sunday is 0 or 7). When both the day of the month
//! and the day of the week are restricted, a day matching either matches, as in cron.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One minute of civil time, as a cron expression sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    pub minute: u8,
    pub hour: u8,
    /// 1-31.
    pub day: u8,
    /// 1-12.
    pub month: u8,
    /// 0 (Sunday) to 6 (Saturday).
    pub weekday: u8,
}

/// A parsed cron expression.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Why a cron expression was refused; the message quotes the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression {text:?}: {reason}")]
pub struct CronError {
    text: String,
    reason: String,
}

struct Field {
    name: &'static str,
    low: u8,
    high: u8,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        low: 0,
        high: 59,
        names: &[],
    },
    Field {
        name: "hour",
        low: 0,
        high: 23,
        names: &[],
    },
    Field {
        name: "day of the month",
        low: 1,
        high: 31,
        names: &[],
    },
    Field {
        name: "month",
        low: 1,
        high: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    Field {
        name: "day of the week",
        low: 0,
        high: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

impl Field {
    fn value(&self, text: &str) -> Result<u8, String> {
        if let Some(index) = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
        {
            // Month names count from 1, day names from 0 (SUN).
            let offset = if self.low == 1 { 1 } else { 0 };
            return u8::try_from(index + offset).map_err(|_| format!("{text:?} is out of range"));
        }
        let value: u8 = text.parse().map_err(|_| {
            if self.names.is_empty() {
                format!("{text:?} is not a number ({} field)", self.name)
            } else {
                format!(
                    "{text:?} is not a number or a name like {} ({} field)",
                    self.names[0], self.name
                )
            }
        })?;
        if value < self.low || value > self.high {
            return Err(format!(
                "{value} is outside {}-{} ({} field)",
                self.low, self.high, self.name
            ));
        }
        Ok(value)
    }

    /// The field's values as a bit set.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut set = 0u64;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => {
                    let step: u8 = step
                        .parse()
                        .ok()
                        .filter(|step| *step > 0)
                        .ok_or_else(|| format!("step {step:?} is not a positive number"))?;
                    (range, step)
                }
                None => (part, 1),
            };
            let (from, to) = if range == "*" {
                (self.low, self.high)
            } else if let Some((from, to)) = range.split_once('-') {
                let (from, to) = (self.value(from)?, self.value(to)?);
                if from > to {
                    return Err(format!(
                        "range {range:?} runs backwards ({} field)",
                        self.name
                    ));
                }
                (from, to)
            } else {
                let value = self.value(range)?;
                // `5/10` means from 5 to the end, every 10.
                if part.contains('/') {
                    (value, self.high)
                } else {
                    (value, value)
                }
            };
            let mut value = from;
            while value <= to {
                set |= 1 << value;
                value = match value.checked_add(step) {
                    Some(next) => next,
                    None => break,
                };
            }
        }
        Ok(set)
    }
}

impl Cron {
    /// Parses a five-field expression.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let failed = |reason: String| CronError {
            text: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(failed(format!(
                "it has {} fields; write 5 fields: minute hour day-of-month month day-of-week \
                 (e.g. \"* 8-17 * * MON-FRI\")",
                parts.len()
            )));
        }
        let mut sets = [0u64; 5];
        for ((set, field), part) in sets.iter_mut().zip(FIELDS.iter()).zip(&parts) {
            *set = field.parse(part).map_err(failed)?;
        }
        // Sunday is 0 or 7.
        let weekdays = (sets[4] | (sets[4] >> 7)) & 0x7f;
        Ok(Cron {
            text: parts.join(" "),
            minutes: sets[0],
            hours: sets[1],
            days: sets[2],
            months: sets[3],
            weekdays,
            days_restricted: !parts[2].starts_with('*'),
            weekdays_restricted: !parts[4].starts_with('*'),
        })
    }

    /// Whether the expression matches `minute`.
    pub fn matches(&self, minute: Minute) -> bool {
        let has = |set: u64, value: u8| value < 64 && set & (1 << value) != 0;
        let day = has(self.days, minute.day);
        let weekday = has(self.weekdays, minute.weekday);
        let day_matches = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            _ => day && weekday,
        };
        has(self.minutes, minute.minute)
            && has(self.hours, minute.hour)
            && has(self.months, minute.month)
            && day_matches
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.text)
    }
}

impl FromStr for Cron {
    type Err = CronError;
    fn from_str(text: &str) -> Result<Cron, CronError> {
        Cron::parse(text)
    }
}

impl TryFrom<String> for Cron {
    type Error = CronError;
    fn try_from(text: String) -> Result<Cron, CronError> {
        Cron::parse(&text)
    }
}

impl From<Cron> for String {
    fn from(cron: Cron) -> String {
        cron.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn minute(minute: u8, hour: u8, day: u8, month: u8, weekday: u8) -> Minute {
        Minute {
            minute,
            hour,
            day,
            month,
            weekday,
        }
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let cron = Cron::parse("*/15 8-17 * JAN,jul mon-fri").unwrap();
        assert!(cron.matches(minute(0, 8, 5, 1, 1)));
        assert!(cron.matches(minute(45, 17, 5, 7, 5)));
        assert!(!cron.matches(minute(10, 8, 5, 1, 1)));
        assert!(!cron.matches(minute(0, 18, 5, 1, 1)));
        assert!(!cron.matches(minute(0, 8, 5, 2, 1)));
        assert!(!cron.matches(minute(0, 8, 5, 1, 0)));
        let offset = Cron::parse("5/20 * * * *").unwrap();
        assert!(offset.matches(minute(45, 0, 1, 1, 0)));
        assert!(!offset.matches(minute(0, 0, 1, 1, 0)));
    }

    #[test]
    fn sunday_is_zero_or_seven_and_restricted_days_match_either() {
        let sunday = Cron::parse("0 0 * * 7").unwrap();
        assert!(sunday.matches(minute(0, 0, 3, 1, 0)));
        // The 1st of the month, or any Monday.
        let either = Cron::parse("0 0 1 * MON").unwrap();
        assert!(either.matches(minute(0, 0, 1, 3, 4)));
        assert!(either.matches(minute(0, 0, 9, 3, 1)));
        assert!(!either.matches(minute(0, 0, 9, 3, 2)));
    }

    #[test]
    fn errors_say_which_field_and_why() {
        for (text, says) in [
            ("* * * *", "5 fields"),
            ("60 * * * *", "outside 0-59 (minute field)"),
            ("* 25 * * *", "outside 0-23 (hour field)"),
            ("* * 0 * *", "outside 1-31"),
            ("* * * FOO *", "name like JAN"),
            ("*/0 * * * *", "positive"),
            ("* 17-8 * * *", "backwards"),
        ] {
            let error = Cron::parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
            assert!(error.contains(text.split_whitespace().next().unwrap()));
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "[0-9A-Za-z*/,\\- ]{0,40}") {
            let _ = Cron::parse(&text);
        }

        #[test]
        fn a_single_value_matches_exactly_that_value(
            m in 0u8..60, h in 0u8..24, other_m in 0u8..60, other_h in 0u8..24,
        ) {
            let cron = Cron::parse(&format!("{m} {h} * * *")).unwrap();
            prop_assert!(cron.matches(minute(m, h, 1, 1, 0)));
            prop_assert_eq!(cron.matches(minute(other_m, other_h, 1, 1, 0)), m == other_m && h == other_h);
        }

        #[test]
        fn a_step_matches_every_nth_value(step in 1u8..30, m in 0u8..60) {
            let cron = Cron::parse(&format!("*/{step} * * * *")).unwrap();
            prop_assert_eq!(cron.matches(minute(m, 0, 1, 1, 0)), m % step == 0);
        }

        #[test]
        fn display_parses_back_to_the_same_expression(
            a in 0u8..60, b in 0u8..60, h in 0u8..24, d in 1u8..32,
        ) {
            let (low, high) = (a.min(b), a.max(b));
            let cron = Cron::parse(&format!("{low}-{high}  {h} {d} * *")).unwrap();
            prop_assert_eq!(Cron::parse(&cron.to_string()).unwrap(), cron);
        }
    }
}
