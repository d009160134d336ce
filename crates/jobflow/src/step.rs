//! The steps of the job state machine.

use std::fmt;
use std::str::FromStr;

/// One task of `statemachines/job.asl.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    Route,
    Admit,
    WaitForSlot,
    Provision,
    Watch,
    CheckRunner,
    Teardown,
    Release,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Route,
        Step::Admit,
        Step::WaitForSlot,
        Step::Provision,
        Step::Watch,
        Step::CheckRunner,
        Step::Teardown,
        Step::Release,
    ];

    /// The ASL substitution variable of the step's function ARN (`${RouteFunctionArn}`, ...).
    pub fn substitution(self) -> &'static str {
        match self {
            Step::Route => "RouteFunctionArn",
            Step::Admit => "AdmitFunctionArn",
            Step::WaitForSlot => "WaitForSlotFunctionArn",
            Step::Provision => "ProvisionFunctionArn",
            Step::Watch => "WatchFunctionArn",
            Step::CheckRunner => "CheckRunnerFunctionArn",
            Step::Teardown => "TeardownFunctionArn",
            Step::Release => "ReleaseFunctionArn",
        }
    }

    /// Short kebab name used for function names and binaries.
    pub fn name(self) -> &'static str {
        match self {
            Step::Route => "route",
            Step::Admit => "admit",
            Step::WaitForSlot => "wait-for-slot",
            Step::Provision => "provision",
            Step::Watch => "watch",
            Step::CheckRunner => "check-runner",
            Step::Teardown => "teardown",
            Step::Release => "release",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Step::name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown step {0:?}: expected one of route, admit, wait-for-slot, provision, watch, check-runner, teardown, release"
)]
pub struct UnknownStep(pub String);

impl FromStr for Step {
    type Err = UnknownStep;

    fn from_str(name: &str) -> Result<Step, UnknownStep> {
        Step::ALL
            .into_iter()
            .find(|step| step.name() == name)
            .ok_or_else(|| UnknownStep(name.to_owned()))
    }
}
