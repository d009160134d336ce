//! A local Amazon States Language engine that behaves like AWS Step Functions.
//!
//! It runs any ASL definition and knows nothing of runway's jobs, pools or runners.

pub mod intrinsics;
pub mod jsonpath;
