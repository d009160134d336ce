//! Host bindings generated from `policies/wit`, and conversions to the crate's own records.
//! The two worlds declare the same records separately (a shared interface would be an
//! import), so the shared conversions are written once as a macro.

pub(crate) mod router {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "runway:policy/router@0.1.0",
    });
    pub(crate) use exports::runway::policy::routing as wit;
}

pub(crate) mod throttle {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "runway:policy/throttle@0.1.0",
    });
    pub(crate) use exports::runway::policy::throttling as wit;
}

use crate::types;

macro_rules! shared_records {
    ($wit:path) => {
        use $wit as wit;

        impl From<&types::Instant> for wit::Instant {
            fn from(t: &types::Instant) -> Self {
                wit::Instant {
                    seconds: t.seconds,
                    nanoseconds: t.nanoseconds,
                }
            }
        }

        impl From<types::Market> for wit::Market {
            fn from(m: types::Market) -> Self {
                match m {
                    types::Market::Spot => wit::Market::Spot,
                    types::Market::OnDemand => wit::Market::OnDemand,
                }
            }
        }

        impl From<&types::Job> for wit::Job {
            fn from(job: &types::Job) -> Self {
                wit::Job {
                    job_id: job.job_id,
                    run_id: job.run_id,
                    run_attempt: job.run_attempt,
                    repository: job.repository.clone(),
                    owner: job.owner.clone(),
                    labels: job.labels.clone(),
                    workflow_name: job.workflow_name.clone(),
                    job_name: job.job_name.clone(),
                    branch: job.branch.clone(),
                    default_branch: job.default_branch.clone(),
                    event_time: (&job.event_time).into(),
                    installation_id: job.installation_id,
                }
            }
        }

        impl From<&types::Pool> for wit::Pool {
            fn from(pool: &types::Pool) -> Self {
                wit::Pool {
                    name: pool.name.clone(),
                    labels: pool.labels.clone(),
                    instance_types: pool.instance_types.clone(),
                    image: pool.image.clone(),
                    disk_gib: pool.disk_gib,
                    market: pool.market.into(),
                    max_running: pool.max_running,
                    max_booting: pool.max_booting,
                    params: pool.params.clone(),
                }
            }
        }
    };
}

mod router_records {
    use super::*;
    shared_records!(super::router::wit);

    fn market(m: wit::Market) -> types::Market {
        match m {
            wit::Market::Spot => types::Market::Spot,
            wit::Market::OnDemand => types::Market::OnDemand,
        }
    }

    impl From<wit::RouteDecision> for types::RouteDecision {
        fn from(decision: wit::RouteDecision) -> Self {
            match decision {
                wit::RouteDecision::Run(run) => types::RouteDecision::Run {
                    pool: run.pool,
                    overrides: types::Overrides {
                        instance_types: run.overrides.instance_types,
                        image: run.overrides.image,
                        disk_gib: run.overrides.disk_gib,
                        market: run.overrides.market.map(market),
                    },
                    reason: run.reason,
                },
                wit::RouteDecision::Ignore(reason) => types::RouteDecision::Ignore { reason },
            }
        }
    }
}

mod throttle_records {
    use super::*;
    shared_records!(super::throttle::wit);

    impl From<&types::Counts> for wit::Counts {
        fn from(c: &types::Counts) -> Self {
            wit::Counts {
                running: c.running,
                booting: c.booting,
                waiting: c.waiting,
            }
        }
    }

    impl From<&types::Load> for wit::Load {
        fn from(load: &types::Load) -> Self {
            wit::Load {
                pool: (&load.pool).into(),
                org: (&load.org).into(),
                repo: (&load.repo).into(),
                now: (&load.now).into(),
            }
        }
    }

    impl From<wit::ThrottleDecision> for types::ThrottleDecision {
        fn from(decision: wit::ThrottleDecision) -> Self {
            match decision {
                wit::ThrottleDecision::Admit(reason) => types::ThrottleDecision::Admit { reason },
                wit::ThrottleDecision::Wait(wait) => types::ThrottleDecision::Wait {
                    priority: wait.priority,
                    recheck_after_seconds: wait.recheck_after_seconds,
                    reason: wait.reason,
                },
                wit::ThrottleDecision::Reject(reason) => types::ThrottleDecision::Reject { reason },
            }
        }
    }
}
