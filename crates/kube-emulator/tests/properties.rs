//! Property tests of the parsers: label selectors (parse, print, match) and EKS tokens.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use runway_kube_emulator::selector::{Operator, Requirement};
use runway_kube_emulator::{
    EksTokenError, LabelSelector, check_eks_token, fake_eks_token, parse_eks_token,
};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9]{0,6}",
        "[a-z]{1,5}\\.[a-z]{2,3}/[a-z][a-z0-9_.-]{0,5}[a-z0-9]",
    ]
}

fn value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9])?"
}

fn requirement() -> impl Strategy<Value = Requirement> {
    (key(), 0..6usize, prop::collection::vec(value(), 1..4)).prop_map(|(key, op, values)| {
        let operator = [
            Operator::Equals,
            Operator::NotEquals,
            Operator::In,
            Operator::NotIn,
            Operator::Exists,
            Operator::DoesNotExist,
        ][op];
        let values = match operator {
            Operator::Equals | Operator::NotEquals => vec![values[0].clone()],
            Operator::In | Operator::NotIn => values,
            _ => Vec::new(),
        };
        Requirement {
            key,
            operator,
            values,
        }
    })
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(key(), value(), 0..5)
}

/// The meaning of a requirement, written out independently of the emulator's code.
fn model(requirement: &Requirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&requirement.key);
    let listed = value.map(|v| requirement.values.iter().any(|w| w == v));
    match requirement.operator {
        Operator::Exists => value.is_some(),
        Operator::DoesNotExist => value.is_none(),
        Operator::Equals | Operator::In => listed == Some(true),
        Operator::NotEquals | Operator::NotIn => listed != Some(true),
    }
}

proptest! {
    #[test]
    fn selectors_print_and_parse_back(requirements in prop::collection::vec(requirement(), 0..5)) {
        let selector = LabelSelector { requirements };
        let text = selector.to_string();
        prop_assert_eq!(LabelSelector::parse(&text).unwrap(), selector);
    }

    #[test]
    fn spaces_around_operators_do_not_matter(requirement in requirement()) {
        let spaced = requirement
            .to_string()
            .replace("!=", " != ")
            .replace("==", "=")
            .replace('=', " = ")
            .replace("! = ", "!= ")
            .replace(',', " , ");
        let parsed = LabelSelector::parse(&spaced);
        prop_assert_eq!(parsed.map(|s| s.requirements), Ok(vec![requirement]), "{}", spaced);
    }

    #[test]
    fn matching_follows_the_model(
        requirements in prop::collection::vec(requirement(), 0..4),
        labels in labels(),
        extra in requirement(),
    ) {
        // Make the labels hit some requirements' keys and values.
        let mut labels = labels;
        if let Some(value) = extra.values.first() {
            labels.insert(extra.key.clone(), value.clone());
        }
        let mut requirements = requirements;
        requirements.push(extra);
        let want = requirements.iter().all(|r| model(r, &labels));
        let selector = LabelSelector::parse(&LabelSelector { requirements }.to_string()).unwrap();
        prop_assert_eq!(selector.matches(&labels), want);
    }

    #[test]
    fn any_text_parses_or_is_refused(text in "\\PC{0,40}") {
        let _ = LabelSelector::parse(&text);
    }

    #[test]
    fn selector_text_with_punctuation_never_panics(text in "[a-z!=(), ]{0,30}") {
        if let Ok(selector) = LabelSelector::parse(&text) {
            // What parsed prints as something that parses to the same.
            prop_assert_eq!(LabelSelector::parse(&selector.to_string()).unwrap(), selector);
        }
    }
}

fn signed_at() -> impl Strategy<Value = DateTime<Utc>> {
    (1_600_000_000i64..2_000_000_000).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

fn region() -> impl Strategy<Value = String> {
    "(us|eu|ap)-(east|west|central)-[1-3]"
}

fn decoded(token: &str) -> String {
    let encoded = token.strip_prefix("k8s-aws-v1.").unwrap();
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

fn encoded(url: &str) -> String {
    format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

proptest! {
    #[test]
    fn tokens_are_valid_for_fifteen_minutes(
        at in signed_at(),
        region in region(),
        age in 0i64..(15 * 60),
    ) {
        let token = fake_eks_token(&region, at);
        let parsed = check_eks_token(&token, at + Duration::seconds(age)).unwrap();
        prop_assert_eq!(parsed.region, region);
        prop_assert_eq!(parsed.signed_at, at);
        let late = check_eks_token(&token, at + Duration::seconds(15 * 60 + 1 + age));
        prop_assert!(matches!(late, Err(EksTokenError::Expired(_))));
    }

    #[test]
    fn dropping_any_required_parameter_is_refused(
        at in signed_at(),
        region in region(),
        which in 0usize..8,
    ) {
        let url = decoded(&fake_eks_token(&region, at));
        let (base, query) = url.split_once('?').unwrap();
        let mut pairs: Vec<&str> = query.split('&').collect();
        pairs.remove(which);
        let broken = encoded(&format!("{base}?{}", pairs.join("&")));
        prop_assert!(parse_eks_token(&broken).is_err());
    }

    #[test]
    fn the_cluster_id_header_must_be_signed(at in signed_at(), region in region()) {
        let url = decoded(&fake_eks_token(&region, at)).replace("host%3Bx-k8s-aws-id", "host");
        prop_assert_eq!(parse_eks_token(&encoded(&url)), Err(EksTokenError::ClusterIdNotSigned));
    }

    #[test]
    fn arbitrary_tokens_never_panic(text in "\\PC{0,80}") {
        let _ = parse_eks_token(&text);
        let _ = parse_eks_token(&format!("k8s-aws-v1.{text}"));
        let _ = parse_eks_token(&encoded(&format!("https://sts.amazonaws.com/?{text}")));
    }
}
