//! The functions AWS Step Functions adds to JSONata, and the JSONata executions recorded on
//! real AWS in shared/asl-conformance.

mod common;

use std::path::PathBuf;

use common::{err, ev0};
use serde_json::{Map, Value, json};

#[test]
fn partition() {
    // AWS docs: $partition([1,2,3,4], 2) is [[1,2],[3,4]]
    assert_eq!(
        ev0("$partition([1,2,3,4], 2)"),
        Some(json!([[1, 2], [3, 4]]))
    );
    assert_eq!(
        ev0("$partition([1,2,3,4,5], 2)"),
        Some(json!([[1, 2], [3, 4], [5]]))
    );
    assert_eq!(
        ev0("$partition([1,2,3,4,5,6,7,8,9], 3)"),
        Some(json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]]))
    );
    assert_eq!(ev0("$partition([1], 5)"), Some(json!([[1]])));
    assert_eq!(ev0("$partition([], 5)"), Some(json!([])));
    assert_eq!(err("$partition([1], 0)", None), "D3201");
    assert_eq!(err("$partition([1], 1.5)", None), "D3201");
}

#[test]
fn range() {
    // AWS docs: $range(0, 10, 2) is [0, 2, 4, 6, 8, 10]
    assert_eq!(ev0("$range(0, 10, 2)"), Some(json!([0, 2, 4, 6, 8, 10])));
    assert_eq!(ev0("$range(0, 9, 3)"), Some(json!([0, 3, 6, 9])));
    assert_eq!(ev0("$range(0, 10, 3)"), Some(json!([0, 3, 6, 9])));
    // a single member unwraps, as recorded on AWS
    assert_eq!(ev0("$range(1, 9, 9)"), Some(json!(1)));
    assert_eq!(ev0("$range(5, 1, -2)"), Some(json!([5, 3, 1])));
    assert_eq!(ev0("$range(1, 3)"), Some(json!([1, 2, 3])));
    assert_eq!(ev0("$range(3, 1, 1)"), None);
    assert_eq!(err("$range(1, 3, 0)", None), "D3202");
    assert_eq!(err("$range(1.5, 3, 1)", None), "D3202");
}

#[test]
fn hash() {
    // MD5 of "input data" is the example of AWS's States.Hash docs; the others are the FIPS
    // test vectors for "abc" (all cross-checked with coreutils' md5sum/sha*sum)
    assert_eq!(
        ev0("$hash('input data', 'MD5')"),
        Some(json!("812f45842bc6d66ee14572ce20db8e86"))
    );
    assert_eq!(
        ev0("$hash('abc', 'SHA-1')"),
        Some(json!("a9993e364706816aba3e25717850c26c9cd0d89d"))
    );
    assert_eq!(
        ev0("$hash('abc', 'SHA-256')"),
        Some(json!(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ))
    );
    assert_eq!(
        ev0("$hash('abc', 'SHA-384')"),
        Some(json!(
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        ))
    );
    assert_eq!(
        ev0("$hash('abc', 'SHA-512')").and_then(|v| v.as_str().map(|s| s[..16].to_string())),
        Some("ddaf35a193617aba".to_string())
    );
    assert_eq!(err("$hash('abc', 'CRC32')", None), "D3203");
}

#[test]
fn random_with_and_without_seed() {
    let a = ev0("$random(42)").and_then(|v| v.as_f64()).unwrap();
    let b = ev0("$random(42)").and_then(|v| v.as_f64()).unwrap();
    let c = ev0("$random(43)").and_then(|v| v.as_f64()).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!((0.0..1.0).contains(&a));
    assert_eq!(err("$random(1.5)", None), "D3200");
}

#[test]
fn uuid() {
    let a = ev0("$uuid()").unwrap();
    let b = ev0("$uuid()").unwrap();
    assert_ne!(a, b);
    let s = a.as_str().unwrap();
    let re =
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            .unwrap();
    assert!(re.is_match(s), "{s}");
}

#[test]
fn parse() {
    assert_eq!(ev0("$parse('-0')"), Some(json!(0)));
    assert_eq!(
        ev0("$parse('{\"a\": [1, true]}')"),
        Some(json!({"a": [1, true]}))
    );
    assert_eq!(ev0("$parse('[1]')"), Some(json!([1])));
    assert_eq!(ev0("$parse('null')"), Some(json!(null)));
    assert_eq!(err("$parse('{oops')", None), "D3204");
}

/// `$RUNWAY_ASL_CONFORMANCE_DIR`, else the shared folder beside the repository.
fn cases_dir() -> PathBuf {
    runway_testkit::asl_conformance_dir().unwrap_or_else(|error| panic!("{error}"))
}

/// Every recorded JSONata execution that is a single Pass state with an `Output` expression:
/// the expression, evaluated with `$states.input` bound, must give what AWS gave.
#[test]
fn recorded_pass_state_outputs_match_aws() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(cases_dir())
        .expect("the recorded cases are readable")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if case["query_language"] != "JSONata" || case["expected"]["status"] != "SUCCEEDED" {
            continue;
        }
        let states = case["definition"]["States"].as_object().unwrap();
        if states.len() != 1 {
            continue;
        }
        let state = states.values().next().unwrap();
        let Some(output) = state["Output"].as_str() else {
            continue;
        };
        let expr = output
            .strip_prefix("{%")
            .and_then(|s| s.strip_suffix("%}"))
            .unwrap()
            .trim();
        let mut bindings = Map::new();
        bindings.insert(
            "states".into(),
            json!({"input": case["input"], "context": {}}),
        );
        let got = runway_jsonata::evaluate(expr, None, &bindings)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            got.as_ref(),
            Some(&case["expected"]["output"]),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} recorded cases were checked");
}

/// The recorded Choice, Map and Wait cases' expressions give the values their outcome needs.
#[test]
fn recorded_condition_and_items_expressions() {
    let mut bindings = Map::new();
    bindings.insert("states".into(), json!({"input": {"condition": true}}));
    assert_eq!(
        runway_jsonata::evaluate("$states.input.condition", None, &bindings).unwrap(),
        Some(json!(true))
    );
    for items in [json!([]), json!([0]), json!([1, "two", true])] {
        let mut bindings = Map::new();
        bindings.insert("states".into(), json!({"input": {"items": items.clone()}}));
        assert_eq!(
            runway_jsonata::evaluate("$states.input.items", None, &bindings).unwrap(),
            Some(items)
        );
    }
}

#[test]
fn free_variables_are_the_outside_names_an_expression_reads() {
    let free = |expression: &str| {
        runway_jsonata::parse(expression)
            .map(|parsed| parsed.free_variables())
            .unwrap_or_default()
    };
    assert_eq!(free("$a + $b.c"), vec!["a", "b"]);
    // Names the expression binds itself, built-ins and the context are not free.
    assert_eq!(free("($x := 1; $x + $y)"), vec!["y"]);
    assert_eq!(free("$map([1], function($v) { $v + $k })"), vec!["k"]);
    assert_eq!(free("$sum([1]) + $count($) + $$.a"), Vec::<String>::new());
    assert_eq!(
        free("$states.input.items[$ > $limit]{'k': $other}"),
        vec!["limit", "other", "states"]
    );
    assert_eq!(
        free("$undefinedVar ? $a : $b"),
        vec!["a", "b", "undefinedVar"]
    );
}
