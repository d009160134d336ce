//! A fault-injecting HTTP proxy on 127.0.0.1 in front of an AWS API (the moto server in tests
//! and `runway chaos`).
//!
//! Every request is forwarded to the upstream unchanged, except those a [`Rule`] picks: for
//! them the proxy answers itself, with the error AWS would send, in the service's own wire
//! shape ([`Fault`]): EC2's XML `<Response><Errors><Error><Code>…` for
//! `InsufficientInstanceCapacity` or `RequestLimitExceeded`, the JSON protocols'
//! `{"__type": "ThrottlingException", …}` for SSM or DynamoDB. The AWS SDKs then react exactly
//! as they do to the real thing (their retries included), so the code under test is exercised
//! at its true boundary.
//!
//! A call is named by its service (the SigV4 credential scope: `ec2`, `ssm`, `dynamodb`) and
//! action (the `X-Amz-Target` header's operation, or the query protocol's `Action=` field).
//! Rules fire by probability (from one seeded generator, so a seed replays the same faults for
//! the same sequence of calls) or by count (skip some calls, fail the next few, optionally
//! again every so many calls). The proxy counts what it forwarded and what it injected.
//!
//! ```no_run
//! # async fn demo() -> Result<(), runway_aws_faults::FaultProxyError> {
//! use runway_aws_faults::{Fault, FaultProxy, Rule, Trigger};
//! let proxy = FaultProxy::start(
//!     "http://127.0.0.1:5000",
//!     vec![Rule::new("ec2", "RunInstances", Fault::insufficient_instance_capacity(),
//!         Trigger::Probability(0.2))],
//!     42,
//! ).await?;
//! println!("point the AWS clients at {}", proxy.url());
//! # Ok(()) }
//! ```

mod call;
mod fault;
mod proxy;
mod rule;

pub use call::Call;
pub use fault::{ErrorShape, Fault};
pub use proxy::{FaultProxy, FaultProxyError, Injected};
pub use rule::{Rule, Trigger};
