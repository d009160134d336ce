//! Write runway policies in Rust.
//!
//! A policy is one function over typed records, exported with one macro:
//!
//! ```ignore
//! use runway_policy::router::{Job, Pool, RouteDecision};
//!
//! fn route(job: Job, pools: Vec<Pool>) -> RouteDecision {
//!     match pools.first() {
//!         Some(pool) => RouteDecision::run(&pool.name, "the first pool takes everything"),
//!         None => RouteDecision::Ignore("no pools configured".into()),
//!     }
//! }
//!
//! runway_policy::export_router!(route);
//! ```
//!
//! Build it with `runway-policy-build` (in this SDK), which compiles the crate for
//! `wasm32-unknown-unknown` and turns the module into a component that imports nothing.
//!
//! runway runs every decision in a fresh instance, so the SDK installs a bump allocator
//! (`bump::BumpAllocator`) that uses the memory the module starts with instead of growing it
//! on the first allocation. Turn off the default `bump-allocator` feature to bring your own
//! `#[global_allocator]`.

pub mod time;

#[cfg(target_arch = "wasm32")]
pub mod bump;

#[cfg(all(target_arch = "wasm32", feature = "bump-allocator"))]
#[global_allocator]
static ALLOCATOR: bump::BumpAllocator = bump::BumpAllocator::new();

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// The `router` world: choose the pool a job runs in.
pub mod router {
    #[doc(hidden)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "runway:policy/router@0.1.0",
            pub_export_macro: true,
            export_macro_name: "__export_router_world",
            default_bindings_module: "runway_policy::router::bindings",
            generate_all,
        });
    }

    pub use bindings::exports::runway::policy::routing::{
        Guest, Instant, Job, Market, Overrides, Pool, RouteDecision, Run,
    };

    impl RouteDecision {
        /// Run in `pool` with the pool's defaults.
        pub fn run(pool: &str, reason: impl Into<String>) -> Self {
            RouteDecision::Run(Run {
                pool: pool.into(),
                overrides: Overrides::default(),
                reason: reason.into(),
            })
        }

        /// Not a job for runway.
        pub fn ignore(reason: impl Into<String>) -> Self {
            RouteDecision::Ignore(reason.into())
        }
    }

    #[allow(clippy::derivable_impls)]
    impl Default for Overrides {
        fn default() -> Self {
            Overrides {
                instance_types: None,
                image: None,
                disk_gib: None,
                market: None,
            }
        }
    }

    crate::pool_helpers!(Pool);
}

/// The `throttle` world: decide whether a routed job may start now.
pub mod throttle {
    #[doc(hidden)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "runway:policy/throttle@0.1.0",
            pub_export_macro: true,
            export_macro_name: "__export_throttle_world",
            default_bindings_module: "runway_policy::throttle::bindings",
            generate_all,
        });
    }

    pub use bindings::exports::runway::policy::throttling::{
        Counts, Guest, Instant, Job, Load, Market, Pool, ThrottleDecision, Wait,
    };

    impl ThrottleDecision {
        pub fn admit(reason: impl Into<String>) -> Self {
            ThrottleDecision::Admit(reason.into())
        }

        pub fn wait(priority: i32, recheck_after_seconds: u32, reason: impl Into<String>) -> Self {
            ThrottleDecision::Wait(Wait {
                priority,
                recheck_after_seconds,
                reason: reason.into(),
            })
        }

        pub fn reject(reason: impl Into<String>) -> Self {
            ThrottleDecision::Reject(reason.into())
        }
    }

    impl Counts {
        /// Runners that hold a slot: running plus booting.
        pub fn active(&self) -> u32 {
            self.running.saturating_add(self.booting)
        }
    }

    crate::pool_helpers!(Pool);
}

#[doc(hidden)]
#[macro_export]
macro_rules! pool_helpers {
    ($pool:ty) => {
        impl $pool {
            /// The value of a pool setting, if configured.
            pub fn param(&self, key: &str) -> Option<&str> {
                self.params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            }

            /// A pool setting parsed as a number; `None` when absent or not a number.
            pub fn param_parse<T: core::str::FromStr>(&self, key: &str) -> Option<T> {
                self.param(key).and_then(|v| v.trim().parse().ok())
            }

            /// Whether runners of this pool carry `label` (case-insensitive, like GitHub).
            pub fn has_label(&self, label: &str) -> bool {
                self.labels.iter().any(|l| l.eq_ignore_ascii_case(label))
            }
        }
    };
}

/// Export `fn(Job, Vec<Pool>) -> RouteDecision` as this component's router.
#[macro_export]
macro_rules! export_router {
    ($route:path) => {
        struct __RunwayRouter;
        impl $crate::router::Guest for __RunwayRouter {
            fn route(
                job: $crate::router::Job,
                pools: ::std::vec::Vec<$crate::router::Pool>,
            ) -> $crate::router::RouteDecision {
                $route(job, pools)
            }
        }
        $crate::router::bindings::__export_router_world!(__RunwayRouter);
    };
}

/// Export `fn(Job, Pool, Load) -> ThrottleDecision` as this component's throttle.
#[macro_export]
macro_rules! export_throttle {
    ($decide:path) => {
        struct __RunwayThrottle;
        impl $crate::throttle::Guest for __RunwayThrottle {
            fn decide(
                job: $crate::throttle::Job,
                pool: $crate::throttle::Pool,
                load: $crate::throttle::Load,
            ) -> $crate::throttle::ThrottleDecision {
                $decide(job, pool, load)
            }
        }
        $crate::throttle::bindings::__export_throttle_world!(__RunwayThrottle);
    };
}
