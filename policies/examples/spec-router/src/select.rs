//! Which instance types of a pool fit a spec, within what the pool allows.
//!
//! runway passes a pool's allow-lists to the router as params, after the operator's own, and
//! refuses any override outside them whatever the router says. This router reads them to stay
//! inside:
//!
//! - `runway.allowed_instance_types`: patterns separated by commas, `*` for any run of
//!   characters (`c7g.*, m7g.*`). The pool's own `instance_types` are always allowed.
//! - `runway.max_disk_gib`: the largest disk (default: the pool's `disk_gib`).
//! - `runway.allowed_markets`: `spot`, `on-demand` (the pool's own `market` is always allowed).
//!
//! and one param of its own, set by the operator:
//!
//! - `max_instance_types`: how many fitting types the decision lists, smallest first, for
//!   runway to try in order when one has no capacity (default 3, 1 to 20).

use runway_policy::router::{Market, Overrides, Pool};

use crate::catalog::{self, InstanceType};
use crate::spec::{Arch, Spec, gib};

const DEFAULT_MAX_TYPES: usize = 3;

/// The pool's allow-lists, as runway passes them.
const ALLOWED_INSTANCE_TYPES: &str = "runway.allowed_instance_types";
const MAX_DISK_GIB: &str = "runway.max_disk_gib";
const ALLOWED_MARKETS: &str = "runway.allowed_markets";

/// What a pool gives a spec.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The fitting types, smallest first (at most `max_instance_types`).
    pub types: Vec<InstanceType>,
    /// How many types fit in all.
    pub fitting: usize,
    pub overrides: Overrides,
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters; the same
/// rule runway applies to `allowed_instance_types`.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

fn list_param<'a>(pool: &'a Pool, key: &str) -> Vec<&'a str> {
    pool.param(key)
        .map(|value| {
            value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|item| !item.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The pool's architecture: from its labels (`arm64`, `x64`, …), else from its default
/// instance types when the catalog knows them and they agree.
pub fn pool_arch(pool: &Pool) -> Option<Arch> {
    if let Some(arch) = pool.labels.iter().find_map(|label| Arch::from_name(label)) {
        return Some(arch);
    }
    let mut arches = pool
        .instance_types
        .iter()
        .filter_map(|name| catalog::lookup(name))
        .map(|t| t.arch);
    let first = arches.next()?;
    arches.all(|arch| arch == first).then_some(first)
}

fn family_matches(spec: &Spec, t: &InstanceType) -> bool {
    spec.families
        .iter()
        .any(|prefix| t.family().starts_with(prefix.as_str()))
}

fn market_name(market: Market) -> &'static str {
    match market {
        Market::Spot => "spot",
        Market::OnDemand => "on-demand",
    }
}

/// The types, disk and market `pool` gives `spec`, or why it cannot.
pub fn fit(spec: &Spec, pool: &Pool) -> Result<Fit, String> {
    let patterns = list_param(pool, ALLOWED_INSTANCE_TYPES);
    let allowed = |t: &InstanceType| {
        pool.instance_types
            .iter()
            .any(|own| own.trim().eq_ignore_ascii_case(&t.name))
            || patterns.iter().any(|p| pattern_matches(p, &t.name))
    };
    let catalog = catalog::all();
    let allowed_types: Vec<&InstanceType> = catalog
        .iter()
        .filter(|t| allowed(t))
        // Burstable types only when the spec's family names them, or the pool runs them.
        .filter(|t| {
            !t.burstable
                || family_matches(spec, t)
                || pool.instance_types.iter().any(|own| own.trim() == t.name)
        })
        .collect();
    if allowed_types.is_empty() {
        return Err(
            "allows no instance type the catalog knows (set its instance_types or \
             allowed_instance_types)"
                .to_string(),
        );
    }
    let arch = pool_arch(pool);
    if let (Some(asked), Some(runs)) = (spec.arch, arch)
        && asked != runs
    {
        return Err(format!(
            "runs {} and the spec asks for {}",
            runs.name(),
            asked.name()
        ));
    }
    let mut fitting: Vec<InstanceType> = allowed_types
        .iter()
        .filter(|t| spec.cpu.is_none_or(|cpu| t.vcpus >= cpu))
        .filter(|t| spec.ram_mib.is_none_or(|mib| t.mem_mib >= mib))
        .filter(|t| spec.families.is_empty() || family_matches(spec, t))
        .filter(|t| spec.arch.or(arch).is_none_or(|a| t.arch == a))
        .map(|t| (*t).clone())
        .collect();
    fitting.sort_by_key(|t| (t.vcpus, t.mem_mib, t.rank));
    // One image boots one architecture: with none known, keep the smallest type's.
    if let Some(first) = fitting.first().map(|t| t.arch) {
        fitting.retain(|t| t.arch == first);
    }
    if fitting.is_empty() {
        let sized = spec.cpu.is_some() || spec.ram_mib.is_some();
        let largest = allowed_types
            .iter()
            .filter(|_| sized)
            .max_by_key(|t| (t.vcpus, t.mem_mib))
            .map(|t| {
                format!(
                    "; its largest is {} ({} vCPU, {} GiB)",
                    t.name,
                    t.vcpus,
                    gib(t.mem_mib)
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "none of its {} allowed types fits{largest}",
            allowed_types.len()
        ));
    }
    let mut overrides = Overrides::default();
    if let Some(disk) = spec.disk_gib
        && pool.disk_gib.is_none_or(|own| own < disk)
    {
        let limit = pool.param_parse::<u32>(MAX_DISK_GIB).or(pool.disk_gib);
        match limit {
            Some(limit) if disk <= limit => overrides.disk_gib = Some(disk),
            Some(limit) => return Err(format!("allows disks up to {limit} GiB, not {disk}")),
            None => {
                return Err(format!(
                    "sets no disk_gib and no max_disk_gib, so not {disk} GiB"
                ));
            }
        }
    }
    if let Some(spot) = spec.spot {
        let market = if spot { Market::Spot } else { Market::OnDemand };
        if market != pool.market {
            let allowed = list_param(pool, ALLOWED_MARKETS)
                .iter()
                .any(|m| m.eq_ignore_ascii_case(market_name(market)));
            if !allowed {
                return Err(format!(
                    "runs {} and does not allow {} (allowed_markets)",
                    market_name(pool.market),
                    market_name(market)
                ));
            }
            overrides.market = Some(market);
        }
    }
    let max_types = pool
        .param_parse::<usize>("max_instance_types")
        .unwrap_or(DEFAULT_MAX_TYPES)
        .clamp(1, 20);
    let count = fitting.len();
    fitting.truncate(max_types);
    overrides.instance_types = Some(fitting.iter().map(|t| t.name.clone()).collect());
    Ok(Fit {
        types: fitting,
        fitting: count,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    fn pool(types: &[&str], allowed: &str) -> Pool {
        Pool {
            name: "linux".into(),
            labels: vec!["linux".into()],
            instance_types: types.iter().map(|t| t.to_string()).collect(),
            image: None,
            disk_gib: Some(50),
            market: Market::Spot,
            max_running: 10,
            max_booting: 10,
            params: vec![(ALLOWED_INSTANCE_TYPES.into(), allowed.into())],
        }
    }

    fn names(fit: &Fit) -> Vec<&str> {
        fit.types.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn smallest_fitting_types_first_within_the_allow_list() {
        let pool = pool(&["m7i.large"], "m7*.*, c7i.*");
        let fit = fit(&parse("runway/cpu=4/ram=16").unwrap(), &pool).unwrap();
        assert_eq!(names(&fit), ["m7i-flex.xlarge", "m7i.xlarge", "m7a.xlarge"]);
        let fit = super::fit(&parse("runway/cpu=3/ram=6").unwrap(), &pool).unwrap();
        assert_eq!(names(&fit), ["c7i.xlarge", "m7i-flex.xlarge", "m7i.xlarge"]);
        assert_eq!(fit.overrides.disk_gib, None);
    }

    #[test]
    fn patterns_match_like_runway() {
        assert!(pattern_matches("c7g.*", "c7g.large"));
        assert!(!pattern_matches("c7g.*", "c7gn.large"));
        assert!(pattern_matches("*", "m7i.large"));
        assert!(pattern_matches("m7*.x*", "m7i-flex.xlarge"));
        assert!(!pattern_matches("a*a", "a"));
        assert!(pattern_matches("m7i.large", "m7i.large"));
    }
}
