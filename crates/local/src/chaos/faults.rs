//! The kinds of fault a campaign injects, each switchable on its own.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One kind of fault, at one boundary of the job machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// GitHub REST calls answered 500/502/503, in short bursts.
    #[serde(rename = "github-5xx")]
    Github5xx,
    /// GitHub REST calls answered 429 with rate-limit headers, in short bursts.
    #[serde(rename = "github-429")]
    Github429,
    /// `queued` webhooks GitHub never delivers (the reaper's lost-jobs sweep must start them).
    LostQueuedWebhooks,
    /// `completed` webhooks GitHub never delivers (the job and its runner end unannounced).
    LostCompletedWebhooks,
    /// Webhooks delivered twice with the same delivery id.
    DuplicateWebhooks,
    /// EC2 `RunInstances` answered `InsufficientInstanceCapacity`.
    Ec2Capacity,
    /// EC2 calls answered `RequestLimitExceeded`.
    Ec2Throttling,
    /// SSM `PutParameter` (the JIT config) answered `ThrottlingException`, in bursts.
    SsmThrottling,
    /// The provision step dies after its runner launched, before it returns (the engine sees
    /// `Lambda.Unknown` and retries the step).
    ProvisionCrash,
    /// Lost `SendTaskSuccess` of admission wake-ups and runner-started events (their waits end
    /// by their own timeouts and re-check).
    LostWakeups,
    /// Lost `SendTaskSuccess` of job-completed and runner-gone events.
    LostCompletionCallbacks,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Github5xx,
        FaultKind::Github429,
        FaultKind::LostQueuedWebhooks,
        FaultKind::LostCompletedWebhooks,
        FaultKind::DuplicateWebhooks,
        FaultKind::Ec2Capacity,
        FaultKind::Ec2Throttling,
        FaultKind::SsmThrottling,
        FaultKind::ProvisionCrash,
        FaultKind::LostWakeups,
        FaultKind::LostCompletionCallbacks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Github5xx => "github-5xx",
            FaultKind::Github429 => "github-429",
            FaultKind::LostQueuedWebhooks => "lost-queued-webhooks",
            FaultKind::LostCompletedWebhooks => "lost-completed-webhooks",
            FaultKind::DuplicateWebhooks => "duplicate-webhooks",
            FaultKind::Ec2Capacity => "ec2-capacity",
            FaultKind::Ec2Throttling => "ec2-throttling",
            FaultKind::SsmThrottling => "ssm-throttling",
            FaultKind::ProvisionCrash => "provision-crash",
            FaultKind::LostWakeups => "lost-wakeups",
            FaultKind::LostCompletionCallbacks => "lost-completion-callbacks",
        }
    }

    /// Faults at the AWS API, which need a pool on EC2 (behind the fault proxy).
    pub fn needs_aws(self) -> bool {
        matches!(
            self,
            FaultKind::Ec2Capacity | FaultKind::Ec2Throttling | FaultKind::SsmThrottling
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not one of [`FaultKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {given:?}; the faults are: {}", FaultKind::ALL.map(FaultKind::name).join(", "))]
pub struct UnknownFault {
    pub given: String,
}

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownFault {
                given: text.to_owned(),
            })
    }
}

/// The faults a campaign injects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct FaultSet(BTreeSet<FaultKind>);

impl FaultSet {
    pub fn all() -> FaultSet {
        FaultSet(FaultKind::ALL.into_iter().collect())
    }

    pub fn none() -> FaultSet {
        FaultSet::default()
    }

    pub fn of(kinds: impl IntoIterator<Item = FaultKind>) -> FaultSet {
        FaultSet(kinds.into_iter().collect())
    }

    pub fn contains(&self, kind: FaultKind) -> bool {
        self.0.contains(&kind)
    }

    pub fn without(mut self, kind: FaultKind) -> FaultSet {
        self.0.remove(&kind);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = FaultKind> + '_ {
        self.0.iter().copied()
    }

    /// Parses `a,b,c` (or `all`, or `none`).
    pub fn parse_list(text: &str) -> Result<FaultSet, UnknownFault> {
        match text.trim() {
            "all" => return Ok(FaultSet::all()),
            "" | "none" => return Ok(FaultSet::none()),
            _ => {}
        }
        text.split(',')
            .map(str::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(FaultSet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_reads_back_from_its_name() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.name())
            );
        }
    }

    #[test]
    fn lists_parse_and_unknown_names_are_refused_with_the_known_ones() {
        let set = FaultSet::parse_list("github-5xx, provision-crash").unwrap();
        assert!(set.contains(FaultKind::Github5xx) && set.contains(FaultKind::ProvisionCrash));
        assert_eq!(set.iter().count(), 2);
        assert_eq!(FaultSet::parse_list("all").unwrap(), FaultSet::all());
        let error = FaultSet::parse_list("github-5xx,cosmic-rays").unwrap_err();
        assert!(error.to_string().contains("lost-wakeups"), "{error}");
    }
}
