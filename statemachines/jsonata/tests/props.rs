//! Property tests: the parser and evaluator never panic, and arithmetic is IEEE arithmetic.

use proptest::prelude::*;
use serde_json::{Map, json};

const TOKENS: &[&str] = &[
    "a", "b", "$", "$$", "$x", "$f", "1", "2", "0.5", "'s'", "\"t\"", "true", "null", ".", "[",
    "]", "{", "}", "(", ")", ",", ";", ":", "?", "+", "-", "*", "/", "%", "=", "!=", "<", "<=",
    ">", ">=", "&", "and", "or", "in", "..", ":=", "~>", "^", "**", "function", "$sum", "$map",
    "$string", "[]", "/ab/i", "`q`", "|", "@", "#", "??", "?:",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|t| t.join(" "))
}

fn literal(n: f64) -> String {
    // JSONata has no negative literals: negation is the unary minus
    let text = format!("{:e}", n.abs());
    if n < 0.0 { format!("(-{text})") } else { text }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(src in "\\PC{0,64}") {
        let _ = runway_jsonata::parse(&src);
    }

    #[test]
    fn parser_and_evaluator_never_panic_on_token_soup(src in token_soup()) {
        if let Ok(expr) = runway_jsonata::parse(&src) {
            let input = json!({"a": [1, {"b": 2}], "b": "x", "q": null});
            let _ = expr.evaluate(Some(&input), &Map::new());
        }
    }

    #[test]
    fn arithmetic_matches_f64(
        a in -1e12f64..1e12,
        b in prop_oneof![-1e12f64..1e12, -10f64..10.0],
        op in prop::sample::select(vec!["+", "-", "*", "/", "%"]),
    ) {
        prop_assume!(b != 0.0 || (op != "/" && op != "%"));
        let expected = match op {
            "+" => a + b,
            "-" => a - b,
            "*" => a * b,
            "/" => a / b,
            _ => a % b,
        };
        let expr = format!("{} {op} {}", literal(a), literal(b));
        let got = runway_jsonata::evaluate(&expr, None, &Map::new());
        if expected.is_finite() {
            let got = got.unwrap().unwrap().as_f64().unwrap();
            // -0 is written as 0 in JSON
            prop_assert!(got == expected || (got == 0.0 && expected == 0.0), "{expr}: {got} != {expected}");
        } else {
            prop_assert_eq!(got.unwrap_err().code, "D1001");
        }
    }

    #[test]
    fn comparisons_match_f64(a in -1e6f64..1e6, b in -1e6f64..1e6) {
        let expr = format!("[{0} < {1}, {0} <= {1}, {0} > {1}, {0} >= {1}, {0} = {1}]", literal(a), literal(b));
        let got = runway_jsonata::evaluate(&expr, None, &Map::new()).unwrap().unwrap();
        prop_assert_eq!(got, json!([a < b, a <= b, a > b, a >= b, a == b]));
    }

    #[test]
    fn string_round_trips_through_json_text(s in "\\PC{0,32}") {
        let mut bindings = Map::new();
        bindings.insert("s".into(), json!(s.clone()));
        let got = runway_jsonata::evaluate("$parse($string([$s]))[0]", None, &bindings).unwrap();
        prop_assert_eq!(got, Some(json!(s)));
    }
}
