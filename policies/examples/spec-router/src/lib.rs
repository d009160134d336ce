//! A router that sizes the runner from a spec in the job's `runs-on` labels:
//!
//! ```yaml
//! runs-on: [self-hosted, linux, runway/cpu=4/ram=16/family=m7]
//! ```
//!
//! The other labels choose the pool as in `labels-router` (every label offered, the most
//! specific pool first); the spec (grammar in [`spec`]) chooses the instance types: those of
//! the built-in [`catalog`] with at least the vCPUs and memory asked for, of the family and
//! architecture asked for, within what the pool allows ([`select`]), smallest first. When the
//! most specific pool has no fitting type the next matching pool is tried. A job without a
//! spec runs on the pool's defaults; a malformed spec, or one nothing fits, leaves the job
//! alone, and the reason says what was asked and why nothing was chosen.

pub mod catalog;
pub mod select;
pub mod spec;

use runway_policy::router::{Job, Market, Pool, RouteDecision, Run};

/// Labels every self-hosted runner carries whether configured or not.
const IMPLICIT_LABELS: &[&str] = &["self-hosted"];

/// The pools offering every label in `wanted`, most specific first (fewest labels beyond
/// the wanted ones, then configuration order), with their count of extra labels.
fn matching_pools<'a>(wanted: &[String], pools: &'a [Pool]) -> Vec<(&'a Pool, usize)> {
    let mut matching: Vec<(usize, &Pool, usize)> = pools
        .iter()
        .enumerate()
        .filter(|(_, pool)| {
            wanted.iter().all(|label| {
                IMPLICIT_LABELS
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(label))
                    || pool
                        .labels
                        .iter()
                        .any(|o| o.trim().eq_ignore_ascii_case(label))
            })
        })
        .map(|(index, pool)| {
            let extra = pool
                .labels
                .iter()
                .filter(|o| !wanted.iter().any(|w| w.eq_ignore_ascii_case(o.trim())))
                .count();
            (index, pool, extra)
        })
        .collect();
    matching.sort_by_key(|(index, _, extra)| (*extra, *index));
    matching
        .into_iter()
        .map(|(_, pool, extra)| (pool, extra))
        .collect()
}

fn route(job: Job, pools: Vec<Pool>) -> RouteDecision {
    let mut labels: Vec<String> = Vec::new();
    let mut specs: Vec<&str> = Vec::new();
    for raw in &job.labels {
        let label = raw.trim();
        if label.is_empty() {
            continue;
        }
        if spec::is_spec(label) {
            specs.push(label);
        } else {
            labels.push(label.to_ascii_lowercase());
        }
    }
    labels.sort();
    labels.dedup();
    if labels.is_empty() && specs.is_empty() {
        return RouteDecision::ignore("the job asks for no labels");
    }
    if !labels.iter().any(|l| l == "self-hosted") {
        let all: Vec<&str> = job.labels.iter().map(|l| l.trim()).collect();
        return RouteDecision::ignore(format!(
            "labels [{}] do not ask for a self-hosted runner",
            all.join(", ")
        ));
    }
    let asked = match specs.as_slice() {
        [] => None,
        [label] => match spec::parse(label) {
            Ok(spec) => Some((*label, spec)),
            Err(error) => {
                return RouteDecision::ignore(format!(
                    "runner spec {label} is malformed: {error}; write it as \
                     runway/cpu=4/ram=16/family=m7"
                ));
            }
        },
        many => {
            return RouteDecision::ignore(format!(
                "the job gives {} runner specs ({}); write one",
                many.len(),
                many.join(", ")
            ));
        }
    };
    let matching = matching_pools(&labels, &pools);
    let Some(&(first, extra)) = matching.first() else {
        return RouteDecision::ignore(format!("no pool offers all of [{}]", labels.join(", ")));
    };
    let Some((label, spec)) = asked else {
        return RouteDecision::run(
            &first.name,
            format!(
                "labels [{}] match pool {} ({extra} extra label{}); no runway/ spec, so the \
                 pool's own instance types",
                labels.join(", "),
                first.name,
                if extra == 1 { "" } else { "s" }
            ),
        );
    };
    let mut refusals = Vec::new();
    for (pool, _) in &matching {
        match select::fit(&spec, pool) {
            Ok(fit) => {
                let mut chosen: Vec<String> = fit.types.iter().map(|t| t.name.clone()).collect();
                if let Some(first) = fit.types.first() {
                    chosen[0] = format!(
                        "{} ({} vCPU, {} GiB)",
                        first.name,
                        first.vcpus,
                        spec::gib(first.mem_mib)
                    );
                }
                let how_many = match (fit.types.len(), fit.fitting) {
                    (_, 1) => "the only type that fits".to_string(),
                    (1, all) => format!("the smallest of {all} that fit"),
                    (listed, all) if listed == all => format!("the {all} types that fit"),
                    (listed, all) => format!("the smallest {listed} of {all} that fit"),
                };
                let mut reason = format!(
                    "{label} asks for {spec}: pool {} runs {}, {how_many}",
                    pool.name,
                    chosen.join(", then "),
                );
                if let Some(disk) = fit.overrides.disk_gib {
                    reason.push_str(&format!(", disk {disk} GiB"));
                }
                match fit.overrides.market {
                    Some(Market::Spot) => reason.push_str(", spot"),
                    Some(Market::OnDemand) => reason.push_str(", on-demand"),
                    None => {}
                }
                for refusal in &refusals {
                    reason.push_str(&format!("; not {refusal}"));
                }
                return RouteDecision::Run(Run {
                    pool: pool.name.clone(),
                    overrides: fit.overrides,
                    reason,
                });
            }
            Err(why) => refusals.push(format!("pool {}: {why}", pool.name)),
        }
    }
    RouteDecision::ignore(format!(
        "{label} asks for {spec}: nothing fits; {}",
        refusals.join("; ")
    ))
}

runway_policy::export_router!(route);
