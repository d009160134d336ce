//! Which calls fail, and when.

use rand::Rng;
use rand::rngs::StdRng;

use crate::call::Call;
use crate::fault::Fault;

/// When a rule's calls fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Each matching call fails with this probability (0 to 1), drawn from the proxy's seeded
    /// generator.
    Probability(f64),
    /// The first `skip` matching calls go through, the next `count` fail, the rest go through.
    Count { skip: u32, count: u32 },
    /// Bursts: of every `period` matching calls, the first `burst` fail (a large matrix
    /// queueing hundreds of jobs at once meets a limit of tens of calls a second this way).
    Bursts { period: u32, burst: u32 },
}

/// Calls of one service and action (`"*"` matches any) answered with `fault` when `trigger`
/// says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub service: String,
    pub action: String,
    pub fault: Fault,
    pub trigger: Trigger,
}

impl Rule {
    pub fn new(
        service: impl Into<String>,
        action: impl Into<String>,
        fault: Fault,
        trigger: Trigger,
    ) -> Rule {
        Rule {
            service: service.into(),
            action: action.into(),
            fault,
            trigger,
        }
    }

    pub(crate) fn matches(&self, call: &Call) -> bool {
        let fits =
            |pattern: &str, value: &str| pattern == "*" || pattern.eq_ignore_ascii_case(value);
        fits(&self.service, &call.service) && fits(&self.action, &call.action)
    }
}

/// A rule with the count of calls it has seen.
#[derive(Debug)]
pub(crate) struct ArmedRule {
    pub rule: Rule,
    pub seen: u64,
}

impl ArmedRule {
    pub fn new(rule: Rule) -> ArmedRule {
        ArmedRule { rule, seen: 0 }
    }

    /// Counts a matching call and says whether it fails.
    pub fn fires(&mut self, rng: &mut StdRng) -> bool {
        let index = self.seen;
        self.seen += 1;
        match self.rule.trigger {
            Trigger::Probability(p) => rng.random_bool(p.clamp(0.0, 1.0)),
            Trigger::Count { skip, count } => {
                index >= u64::from(skip) && index < u64::from(skip) + u64::from(count)
            }
            Trigger::Bursts { period, burst } => {
                period > 0 && index % u64::from(period) < u64::from(burst)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn fired(trigger: Trigger, calls: usize, seed: u64) -> Vec<bool> {
        let mut rule = ArmedRule::new(Rule::new(
            "ec2",
            "RunInstances",
            Fault::ssm_throttling(),
            trigger,
        ));
        let mut rng = StdRng::seed_from_u64(seed);
        (0..calls).map(|_| rule.fires(&mut rng)).collect()
    }

    #[test]
    fn a_count_fails_the_calls_after_the_skipped_ones() {
        let fired = fired(Trigger::Count { skip: 2, count: 3 }, 8, 0);
        assert_eq!(fired, [false, false, true, true, true, false, false, false]);
    }

    #[test]
    fn bursts_repeat_every_period() {
        let fired = fired(
            Trigger::Bursts {
                period: 4,
                burst: 2,
            },
            8,
            0,
        );
        assert_eq!(fired, [true, true, false, false, true, true, false, false]);
    }

    #[test]
    fn a_seed_replays_the_same_faults() {
        let first = fired(Trigger::Probability(0.3), 200, 7);
        assert_eq!(first, fired(Trigger::Probability(0.3), 200, 7));
        assert_ne!(first, fired(Trigger::Probability(0.3), 200, 8));
        let share = first.iter().filter(|f| **f).count();
        assert!((30..90).contains(&share), "{share} of 200 at p = 0.3");
    }

    #[test]
    fn a_wildcard_matches_any_action_of_the_service() {
        let rule = Rule::new(
            "ssm",
            "*",
            Fault::ssm_throttling(),
            Trigger::Probability(1.0),
        );
        let call = |service: &str, action: &str| Call {
            service: service.into(),
            action: action.into(),
        };
        assert!(rule.matches(&call("ssm", "PutParameter")));
        assert!(rule.matches(&call("SSM", "DeleteParameter")));
        assert!(!rule.matches(&call("ec2", "PutParameter")));
    }
}
