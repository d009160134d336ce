//! What a router policy may change about a pool's launches: the pool's allow-lists.
//!
//! A router policy can ask for another image, other instance types, a larger disk or another
//! market. Routers often take these from the job's labels, which whoever writes the workflow
//! controls, so the host bounds them: a pool's own settings are always allowed, anything else
//! only when the pool's allow-list names it. A pool without an allow-list for a field takes no
//! override of it.

use runway_policy_host::{Market, Overrides};

use crate::config::PoolConfig;

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none
/// included) and every other character for itself: `c7g.*` matches `c7g.large` and
/// `c7g.16xlarge`, not `c7gn.large`; `*` matches everything.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    // No `*`: the whole text.
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    // Each middle part at its first occurrence leaves the most room for the ones after it.
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

fn allowed_by(patterns: &[String], value: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| pattern_matches(pattern, value))
}

/// `Ok(())` when every override stays within `pool`'s allow-lists, or the refusal naming each
/// override outside them (for the route's output, where the console shows it).
pub fn check_overrides(pool: &PoolConfig, overrides: &Overrides) -> Result<(), String> {
    let mut refused = Vec::new();
    if let Some(image) = &overrides.image
        && pool.image.as_ref() != Some(image)
        && !allowed_by(&pool.allowed_images, image)
    {
        refused.push(format!(
            "image {image} is not in allowed_images {:?}",
            pool.allowed_images
        ));
    }
    if let Some(types) = &overrides.instance_types {
        let outside: Vec<&String> = types
            .iter()
            .filter(|kind| {
                !pool.instance_types.contains(kind)
                    && !allowed_by(&pool.allowed_instance_types, kind)
            })
            .collect();
        if !outside.is_empty() {
            refused.push(format!(
                "instance types {outside:?} are not in allowed_instance_types {:?}",
                pool.allowed_instance_types
            ));
        }
    }
    if let Some(disk) = overrides.disk_gib {
        let limit = pool.max_disk_gib.or(pool.disk_gib);
        if limit.is_none_or(|limit| disk > limit) {
            refused.push(match limit {
                Some(limit) => format!("disk {disk} GiB is over max_disk_gib {limit}"),
                None => format!("disk {disk} GiB asked, but the pool sets no max_disk_gib"),
            });
        }
    }
    if let Some(market) = overrides.market
        && market != pool.market
        && !pool.allowed_markets.contains(&market)
    {
        refused.push(format!(
            "market {} is not in allowed_markets {:?}",
            market_name(market),
            pool.allowed_markets
                .iter()
                .map(|market| market_name(*market))
                .collect::<Vec<_>>()
        ));
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "pool {} refuses the router's overrides: {}",
            pool.name,
            refused.join("; ")
        ))
    }
}

fn market_name(market: Market) -> &'static str {
    match market {
        Market::Spot => "spot",
        Market::OnDemand => "on-demand",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The reference: a straightforward backtracking matcher over characters.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|skip| reference(rest, &text[skip..])),
            Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
        }
    }

    #[test]
    fn wildcards_match_families_not_neighbours() {
        for (pattern, text, matches) in [
            ("c7g.*", "c7g.large", true),
            ("c7g.*", "c7g.16xlarge", true),
            ("c7g.*", "c7gn.large", false),
            ("c7g.*", "c7g", false),
            ("c7g.large", "c7g.large", true),
            ("c7g.large", "c7g.larger", false),
            ("*", "anything", true),
            ("*", "", true),
            ("*.metal", "m7g.metal", true),
            ("*.metal", "m7g.large", false),
            ("m7*.*large", "m7g.2xlarge", true),
            ("m7*.*large", "m6g.large", false),
            ("ami-*", "ami-0123", true),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(
                pattern_matches(pattern, text),
                matches,
                "{pattern} / {text}"
            );
        }
    }

    fn pool() -> PoolConfig {
        let mut pool = PoolConfig::new("arm", &["self-hosted", "arm64"]);
        pool.instance_types = vec!["c7g.large".into()];
        pool.image = Some("ami-pool".into());
        pool.disk_gib = Some(40);
        pool
    }

    #[test]
    fn without_allow_lists_only_the_pools_own_settings_pass() {
        let pool = pool();
        let own = Overrides {
            instance_types: Some(vec!["c7g.large".into()]),
            image: Some("ami-pool".into()),
            disk_gib: Some(30),
            market: Some(Market::Spot),
        };
        assert_eq!(check_overrides(&pool, &own), Ok(()));
        assert_eq!(check_overrides(&pool, &Overrides::default()), Ok(()));
        let other = Overrides {
            instance_types: Some(vec!["c7g.large".into(), "p5.48xlarge".into()]),
            image: Some("ami-other".into()),
            disk_gib: Some(41),
            market: Some(Market::OnDemand),
        };
        let reason = check_overrides(&pool, &other).unwrap_err();
        for part in [
            "pool arm refuses the router's overrides",
            "image ami-other is not in allowed_images []",
            "instance types [\"p5.48xlarge\"] are not in allowed_instance_types []",
            "disk 41 GiB is over max_disk_gib 40",
            "market on-demand is not in allowed_markets []",
        ] {
            assert!(reason.contains(part), "{part}: {reason}");
        }
    }

    #[test]
    fn allow_lists_widen_what_passes() {
        let mut pool = pool();
        pool.allowed_instance_types = vec!["c7g.*".into(), "m7g.large".into()];
        pool.allowed_images = vec!["ami-team-*".into()];
        pool.max_disk_gib = Some(200);
        pool.allowed_markets = vec![Market::OnDemand];
        let wide = Overrides {
            instance_types: Some(vec!["c7g.4xlarge".into(), "m7g.large".into()]),
            image: Some("ami-team-gpu".into()),
            disk_gib: Some(200),
            market: Some(Market::OnDemand),
        };
        assert_eq!(check_overrides(&pool, &wide), Ok(()));
        let too_far = Overrides {
            instance_types: Some(vec!["m7g.xlarge".into()]),
            disk_gib: Some(201),
            ..Overrides::default()
        };
        let reason = check_overrides(&pool, &too_far).unwrap_err();
        assert!(reason.contains("[\"m7g.xlarge\"]"), "{reason}");
        assert!(reason.contains("over max_disk_gib 200"), "{reason}");
        assert!(!reason.contains("image"), "{reason}");
    }

    proptest! {
        /// The matcher agrees with a backtracking reference on patterns and texts drawn from a
        /// small alphabet (so `*`, repeats and near misses are frequent).
        #[test]
        fn matching_agrees_with_the_reference(
            pattern in "[ab.*]{0,8}",
            text in "[ab.]{0,10}",
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(pattern_matches(&pattern, &text), reference(&p, &t));
        }

        /// A pattern without `*` matches exactly itself; `prefix*` every text starting with
        /// `prefix`; `*` everything.
        #[test]
        fn literal_prefix_and_star_patterns(
            literal in "[a-z0-9.]{0,12}",
            text in "[a-z0-9.]{0,12}",
        ) {
            prop_assert_eq!(pattern_matches(&literal, &text), literal == text);
            let prefix = format!("{literal}*");
            prop_assert_eq!(pattern_matches(&prefix, &text), text.starts_with(&literal));
            prop_assert!(pattern_matches("*", &text));
            let family = format!("{literal}.*");
            let member = format!("{literal}.{text}");
            prop_assert!(pattern_matches(&family, &member));
        }
    }
}
