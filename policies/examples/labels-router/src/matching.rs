//! Label matching, free of any WebAssembly binding so that it can be tested and measured
//! natively too.

/// Labels every self-hosted runner carries whether configured or not.
const IMPLICIT_LABELS: &[&str] = &["self-hosted"];

/// Per-job settings written as `key=value` labels in `runs-on`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Options {
    pub instance_types: Vec<String>,
    pub image: Option<String>,
    pub disk_gib: Option<u32>,
    pub spot: Option<bool>,
}

/// The job's labels split into labels to match and options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    pub labels: Vec<String>,
    pub options: Options,
    /// Option labels whose value could not be read, reported in the reason.
    pub invalid: Vec<String>,
}

pub fn parse(job_labels: &[String]) -> Request {
    let mut request = Request::default();
    for raw in job_labels {
        let label = raw.trim();
        if label.is_empty() {
            continue;
        }
        let Some((key, value)) = label.split_once('=') else {
            request.labels.push(label.to_ascii_lowercase());
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "instance-type" => request.options.instance_types.extend(
                value
                    .split('+')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
            ),
            "image" => request.options.image = Some(value.to_string()),
            "disk" => match value.trim_end_matches("gb").trim_end_matches("GB").parse() {
                Ok(gib) => request.options.disk_gib = Some(gib),
                Err(_) => request.invalid.push(label.to_string()),
            },
            "spot" => match value.to_ascii_lowercase().as_str() {
                "true" | "yes" => request.options.spot = Some(true),
                "false" | "no" => request.options.spot = Some(false),
                _ => request.invalid.push(label.to_string()),
            },
            // Not an option runway knows: match it like any other label.
            _ => request.labels.push(label.to_ascii_lowercase()),
        }
    }
    request.labels.sort();
    request.labels.dedup();
    request
}

/// The best pool for `wanted` labels: every wanted label must be offered by the pool; of
/// those, the pool offering the fewest labels beyond the wanted ones wins (most specific),
/// and the earlier pool wins a tie. Returns the pool's index and its count of extra labels.
pub fn best_pool<'a, I>(wanted: &[String], pools: I) -> Option<(usize, usize)>
where
    I: IntoIterator<Item = &'a [String]>,
{
    let mut best: Option<(usize, usize)> = None;
    for (index, offered) in pools.into_iter().enumerate() {
        let offers = |label: &str| {
            IMPLICIT_LABELS
                .iter()
                .any(|l| l.eq_ignore_ascii_case(label))
                || offered.iter().any(|o| o.trim().eq_ignore_ascii_case(label))
        };
        if !wanted.iter().all(|label| offers(label)) {
            continue;
        }
        let extra = offered
            .iter()
            .filter(|o| !wanted.iter().any(|w| w.eq_ignore_ascii_case(o.trim())))
            .count();
        if best.is_none_or(|(_, fewest)| extra < fewest) {
            best = Some((index, extra));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::{best_pool, parse};

    fn labels(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn most_specific_pool_wins() {
        let pools = [
            labels(&["linux", "x64", "gpu"]),
            labels(&["linux", "x64"]),
            labels(&["linux"]),
        ];
        let pick = |job: &[&str]| {
            let request = parse(&labels(job));
            best_pool(&request.labels, pools.iter().map(Vec::as_slice))
        };
        assert_eq!(pick(&["self-hosted", "linux"]), Some((2, 0)));
        assert_eq!(pick(&["self-hosted", "Linux", "x64"]), Some((1, 0)));
        assert_eq!(pick(&["self-hosted", "linux", "gpu"]), Some((0, 1)));
        assert_eq!(pick(&["self-hosted", "windows"]), None);
        assert_eq!(pick(&["self-hosted"]), Some((2, 1)));
    }

    #[test]
    fn options_are_not_matched() {
        let request = parse(&labels(&[
            "linux",
            "disk=100",
            "spot=false",
            "instance-type=m7g.large+c7g.large",
            "cpu=4",
        ]));
        assert_eq!(request.labels, labels(&["cpu=4", "linux"]));
        assert_eq!(request.options.disk_gib, Some(100));
        assert_eq!(request.options.spot, Some(false));
        assert_eq!(
            request.options.instance_types,
            labels(&["m7g.large", "c7g.large"])
        );
        assert!(parse(&labels(&["disk=lots"])).invalid == labels(&["disk=lots"]));
    }
}
