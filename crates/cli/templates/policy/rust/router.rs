//! {{name}}: a runway router. It runs a self-hosted job in the first pool whose runners
//! offer every label the job asks for, and leaves every other job alone.

use runway_policy::router::{Job, Pool, RouteDecision};

fn is_self_hosted(label: &str) -> bool {
    label.eq_ignore_ascii_case("self-hosted")
}

fn route(job: Job, pools: Vec<Pool>) -> RouteDecision {
    if !job.labels.iter().any(|label| is_self_hosted(label)) {
        return RouteDecision::ignore("not a self-hosted job");
    }
    let offers_all = |pool: &&Pool| {
        job.labels
            .iter()
            .all(|label| is_self_hosted(label) || pool.has_label(label))
    };
    match pools.iter().find(offers_all) {
        Some(pool) => RouteDecision::run(
            &pool.name,
            format!("pool {} offers every label of the job", pool.name),
        ),
        None => RouteDecision::ignore("no pool offers every label of the job"),
    }
}

runway_policy::export_router!(route);
