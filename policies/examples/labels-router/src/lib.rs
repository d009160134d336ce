//! A router that picks the pool by the job's `runs-on` labels: a pool matches when its
//! runners offer every label the job asks for, and the most specific match wins (the pool
//! with the fewest labels beyond those asked for; the earlier pool on a tie).
//!
//! Labels of the form `key=value` are options rather than labels to match:
//! `instance-type=m7g.large+c7g.large`, `image=ami-…`, `disk=100` (GiB), `spot=true|false`.

pub mod matching;

use runway_policy::router::{Job, Market, Overrides, Pool, RouteDecision, Run};

fn route(job: Job, pools: Vec<Pool>) -> RouteDecision {
    let request = matching::parse(&job.labels);
    if request.labels.is_empty() {
        return RouteDecision::ignore("the job asks for no labels");
    }
    if !request.labels.iter().any(|l| l == "self-hosted") {
        return RouteDecision::ignore(format!(
            "labels [{}] do not ask for a self-hosted runner",
            request.labels.join(", ")
        ));
    }
    let Some((index, extra)) =
        matching::best_pool(&request.labels, pools.iter().map(|p| p.labels.as_slice()))
    else {
        return RouteDecision::ignore(format!(
            "no pool offers all of [{}]",
            request.labels.join(", ")
        ));
    };
    let pool = &pools[index];
    let options = request.options;
    let overrides = Overrides {
        instance_types: (!options.instance_types.is_empty()).then_some(options.instance_types),
        image: options.image,
        disk_gib: options.disk_gib,
        market: options
            .spot
            .map(|spot| if spot { Market::Spot } else { Market::OnDemand }),
    };
    let mut reason = format!(
        "labels [{}] match pool {} ({extra} extra label{})",
        request.labels.join(", "),
        pool.name,
        if extra == 1 { "" } else { "s" }
    );
    if !request.invalid.is_empty() {
        reason.push_str(&format!(
            "; ignored unreadable options [{}]",
            request.invalid.join(", ")
        ));
    }
    RouteDecision::Run(Run {
        pool: pool.name.clone(),
        overrides,
        reason,
    })
}

runway_policy::export_router!(route);
