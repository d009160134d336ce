//! The language: paths, sequences, predicates, operators, constructors, lambdas.
//! Expected values are the examples of docs.jsonata.org (the page is named in each test)
//! unless a comment says otherwise.

mod common;

use common::{err, ev, ev0, invoice, person};
use serde_json::{Map, json};

// docs: Simple Queries
#[test]
fn simple_field_navigation() {
    let p = person();
    assert_eq!(ev("Surname", &p), Some(json!("Smith")));
    assert_eq!(ev("Age", &p), Some(json!(28)));
    assert_eq!(ev("Address.City", &p), Some(json!("Winchester")));
    assert_eq!(ev("Other.Misc", &p), Some(json!(null)));
    assert_eq!(ev("Other.Nothing", &p), None);
    assert_eq!(ev("Other.`Over 18 ?`", &p), Some(json!(true)));
    assert_eq!(
        ev("Other.`Alternative.Address`.City", &p),
        Some(json!("London"))
    );
}

// docs: Simple Queries, "Navigating JSON Arrays"
#[test]
fn array_indexes() {
    let p = person();
    assert_eq!(
        ev("Phone[0]", &p),
        Some(json!({"type": "home", "number": "0203 544 1234"}))
    );
    assert_eq!(
        ev("Phone[1]", &p),
        Some(json!({"type": "office", "number": "01962 001234"}))
    );
    assert_eq!(
        ev("Phone[-1]", &p),
        Some(json!({"type": "mobile", "number": "077 7700 1234"}))
    );
    assert_eq!(
        ev("Phone[-2]", &p),
        Some(json!({"type": "office", "number": "01962 001235"}))
    );
    assert_eq!(ev("Phone[8]", &p), None);
    assert_eq!(ev("Phone[0].number", &p), Some(json!("0203 544 1234")));
    assert_eq!(
        ev("Phone.number", &p),
        Some(json!([
            "0203 544 1234",
            "01962 001234",
            "01962 001235",
            "077 7700 1234"
        ]))
    );
    // the index applies per step: the first number of each phone
    assert_eq!(
        ev("Phone.number[0]", &p),
        Some(json!([
            "0203 544 1234",
            "01962 001234",
            "01962 001235",
            "077 7700 1234"
        ]))
    );
    assert_eq!(ev("(Phone.number)[0]", &p), Some(json!("0203 544 1234")));
    assert_eq!(
        ev("Phone[[0..1]]", &p),
        Some(
            json!([{"type": "home", "number": "0203 544 1234"}, {"type": "office", "number": "01962 001234"}])
        )
    );
    // fractional indexes round down
    assert_eq!(ev("Phone[0.9].type", &p), Some(json!("home")));
}

// docs: Simple Queries, top-level arrays
#[test]
fn top_level_array_input() {
    let input = json!([{"ref": [1, 2]}, {"ref": [3, 4]}]);
    assert_eq!(ev("$[0]", &input), Some(json!({"ref": [1, 2]})));
    assert_eq!(ev("$[0].ref", &input), Some(json!([1, 2])));
    assert_eq!(ev("$[0].ref[0]", &input), Some(json!(1)));
    assert_eq!(ev("$.ref", &input), Some(json!([1, 2, 3, 4])));
    assert_eq!(ev("$", &input), Some(input.clone()));
    assert_eq!(ev("$$", &input), Some(input.clone()));
}

// docs: Predicate Queries
#[test]
fn predicates_filter_by_boolean() {
    let p = person();
    assert_eq!(
        ev("Phone[type='mobile']", &p),
        Some(json!({"type": "mobile", "number": "077 7700 1234"}))
    );
    assert_eq!(
        ev("Phone[type='mobile'].number", &p),
        Some(json!("077 7700 1234"))
    );
    assert_eq!(
        ev("Phone[type='office'].number", &p),
        Some(json!(["01962 001234", "01962 001235"]))
    );
    assert_eq!(ev("Phone[type='fax']", &p), None);
}

// docs: Predicate Queries, "Singleton array and value equivalence"
#[test]
fn singleton_sequences_unwrap_and_keep_array() {
    let p = person();
    assert_eq!(
        ev("Phone[type='mobile'].number[]", &p),
        Some(json!(["077 7700 1234"]))
    );
    assert_eq!(
        ev("Phone[type='office'].number[]", &p),
        Some(json!(["01962 001234", "01962 001235"]))
    );
    assert_eq!(ev("Address.City[]", &p), Some(json!(["Winchester"])));
    // an array that is in the input stays an array, even with one member
    assert_eq!(ev("items", &json!({"items": [0]})), Some(json!([0])));
    assert_eq!(
        ev("a.items", &json!({"a": {"items": ["x"]}})),
        Some(json!(["x"]))
    );
    // but a sequence built from several steps unwraps
    assert_eq!(ev("a.b", &json!({"a": [{"b": 1}]})), Some(json!(1)));
}

// docs: Predicate Queries, wildcards and descendants
#[test]
fn wildcards_and_descendants() {
    let p = person();
    assert_eq!(
        ev("Address.*", &p),
        Some(json!(["Hursley Park", "Winchester", "SO21 2JN"]))
    );
    assert_eq!(ev("*.Postcode", &p), Some(json!("SO21 2JN")));
    assert_eq!(ev("**.Postcode", &p), Some(json!(["SO21 2JN", "E1 6RF"])));
    assert_eq!(ev("*", &json!(5)), None);
}

#[test]
fn predicate_on_object_treats_it_as_one_member_array() {
    let input = json!({"a": {"b": 1}});
    assert_eq!(ev("a[0]", &input), Some(json!({"b": 1})));
    assert_eq!(ev("a[1]", &input), None);
    assert_eq!(ev("a[b=1]", &input), Some(json!({"b": 1})));
    assert_eq!(ev("a[b=2]", &input), None);
    assert_eq!(ev("[1,2,3][$ > 1]", &input), Some(json!([2, 3])));
    assert_eq!(ev("[1,2,3][[0, 2]]", &input), Some(json!([1, 3])));
}

#[test]
fn undefined_propagates() {
    let input = json!({"a": 1});
    assert_eq!(ev("nothing", &input), None);
    assert_eq!(ev("nothing.deeper.still", &input), None);
    assert_eq!(ev("nothing + 1", &input), None);
    assert_eq!(ev("-nothing", &input), None);
    assert_eq!(ev("nothing < 1", &input), None);
    assert_eq!(ev("nothing = 1", &input), Some(json!(false)));
    assert_eq!(ev("nothing != 1", &input), Some(json!(false)));
    assert_eq!(ev("nothing & 'x'", &input), Some(json!("x")));
    assert_eq!(ev("[nothing, 1, nothing]", &input), Some(json!([1])));
    assert_eq!(ev("{'k': nothing}", &input), Some(json!({})));
    assert_eq!(ev("$uppercase(nothing)", &input), None);
    assert_eq!(ev("nothing ? 1 : 2", &input), Some(json!(2)));
    assert_eq!(ev("nothing ? 1", &input), None);
    assert_eq!(ev0("a"), None);
}

// docs: Numeric Operators
#[test]
fn arithmetic() {
    assert_eq!(ev0("5 + 2"), Some(json!(7)));
    assert_eq!(ev0("5 - 2"), Some(json!(3)));
    assert_eq!(ev0("5 * 2"), Some(json!(10)));
    assert_eq!(ev0("5 / 2"), Some(json!(2.5)));
    assert_eq!(ev0("5 % 2"), Some(json!(1)));
    assert_eq!(ev0("-5 % 2"), Some(json!(-1)));
    assert_eq!(ev0("-(1 + 2)"), Some(json!(-3)));
    assert_eq!(ev0("2 * 3 + 4"), Some(json!(10)));
    assert_eq!(ev0("2 * (3 + 4)"), Some(json!(14)));
    assert_eq!(ev0("1e3 + 0.5"), Some(json!(1000.5)));
    assert_eq!(ev0("0.1 + 0.2"), Some(json!(0.30000000000000004)));
    let invoice = invoice();
    let total = ev("$sum(Account.Order.Product.(Price * Quantity))", &invoice)
        .and_then(|v| v.as_f64())
        .unwrap();
    assert!((total - 336.36).abs() < 1e-9);
}

#[test]
fn arithmetic_type_errors() {
    assert_eq!(err("'5' + 2", None), "T2001");
    assert_eq!(err("5 + '2'", None), "T2002");
    assert_eq!(err("true * 2", None), "T2001");
    assert_eq!(err("-'a'", None), "D1002");
    // division by zero gives Infinity, which JSON cannot hold
    assert_eq!(err("1/0", None), "D1001");
    assert_eq!(err("$string(1/0)", None), "D3001");
}

// docs: Comparison Operators
#[test]
fn comparisons() {
    assert_eq!(ev0("1 + 1 = 2"), Some(json!(true)));
    assert_eq!(ev0("'Hello' = 'World'"), Some(json!(false)));
    assert_eq!(ev0("1 + 1 != 3"), Some(json!(true)));
    assert_eq!(ev0("22 / 7 > 3"), Some(json!(true)));
    assert_eq!(ev0("5 >= 5"), Some(json!(true)));
    assert_eq!(ev0("5 < 5"), Some(json!(false)));
    assert_eq!(ev0("5 <= 5"), Some(json!(true)));
    assert_eq!(ev0("'a' < 'b'"), Some(json!(true)));
    assert_eq!(ev0("[1,2] = [1,2]"), Some(json!(true)));
    assert_eq!(ev0("{'a': 1} = {'a': 1}"), Some(json!(true)));
    assert_eq!(ev0("'1' = 1"), Some(json!(false)));
    assert_eq!(err("'1' < 1", None), "T2009");
    assert_eq!(err("true < 1", None), "T2010");
    assert_eq!(err("[1,2] < 3", None), "T2010");
}

// docs: Comparison Operators, "in"
#[test]
fn inclusion() {
    assert_eq!(ev0("'world' in ['hello', 'world']"), Some(json!(true)));
    assert_eq!(ev0("'world' in 'world'"), Some(json!(true)));
    assert_eq!(ev0("'xyz' in ['hello', 'world']"), Some(json!(false)));
    assert_eq!(ev0("nothing in [1]"), Some(json!(false)));
    let p = person();
    assert_eq!(
        ev("Phone['mobile' in type].number", &p),
        Some(json!("077 7700 1234"))
    );
}

// docs: Boolean Operators
#[test]
fn boolean_operators() {
    assert_eq!(ev0("true and false"), Some(json!(false)));
    assert_eq!(ev0("true or false"), Some(json!(true)));
    assert_eq!(ev0("1 and 'x'"), Some(json!(true)));
    assert_eq!(ev0("0 or ''"), Some(json!(false)));
    assert_eq!(ev0("nothing or true"), Some(json!(true)));
    // the right side is not evaluated when the left decides
    assert_eq!(ev0("false and $error('not reached')"), Some(json!(false)));
    assert_eq!(ev0("true or $error('not reached')"), Some(json!(true)));
    // `and`, `or`, `in` are field names where an operand is expected
    assert_eq!(ev("and + or", &json!({"and": 1, "or": 2})), Some(json!(3)));
}

// docs: Other Operators
#[test]
fn concatenation_condition_range() {
    assert_eq!(ev0("'Hello' & ' ' & 'World'"), Some(json!("Hello World")));
    assert_eq!(ev0("5 & 0 & true"), Some(json!("50true")));
    assert_eq!(
        ev0("1 & [1,2] & {'a': null}"),
        Some(json!("1[1,2]{\"a\":null}"))
    );
    let p = person();
    assert_eq!(ev("Age > 18 ? 'adult' : 'minor'", &p), Some(json!("adult")));
    assert_eq!(ev0("[1..5]"), Some(json!([1, 2, 3, 4, 5])));
    assert_eq!(ev0("[1..3, 7..9]"), Some(json!([1, 2, 3, 7, 8, 9])));
    assert_eq!(ev0("[5..1]"), Some(json!([])));
    assert_eq!(ev0("[1..1]"), Some(json!([1])));
    assert_eq!(ev0("[1..3].($ * $)"), Some(json!([1, 4, 9])));
    assert_eq!(err("[1.5..3]", None), "T2003");
    assert_eq!(err("[1..'3']", None), "T2004");
    assert_eq!(err("[1..20000000]", None), "D2014");
}

#[test]
fn coalescing_operators() {
    // JSONata 2.1 `??` (default when undefined) and `?:` (default when falsy)
    assert_eq!(ev0("nothing ?? 5"), Some(json!(5)));
    assert_eq!(ev0("0 ?? 5"), Some(json!(0)));
    assert_eq!(ev0("0 ?: 5"), Some(json!(5)));
    assert_eq!(ev0("'x' ?: 5"), Some(json!("x")));
}

// docs: Construction
#[test]
fn array_and_object_constructors() {
    let p = person();
    assert_eq!(
        ev("Email.address", &p),
        Some(json!([
            "fred.smith@my-work.com",
            "fsmith@my-work.com",
            "freddy@my-social.com",
            "frederic.smith@very-serious.com"
        ]))
    );
    assert_eq!(
        ev("Email.[address]", &p),
        Some(json!([
            ["fred.smith@my-work.com", "fsmith@my-work.com"],
            ["freddy@my-social.com", "frederic.smith@very-serious.com"]
        ]))
    );
    assert_eq!(
        ev("[Address, Other.`Alternative.Address`].City", &p),
        Some(json!(["Winchester", "London"]))
    );
    assert_eq!(ev0("[[1,2],[3]]"), Some(json!([[1, 2], [3]])));
    assert_eq!(ev0("[[1,2],3]"), Some(json!([[1, 2], 3])));
    assert_eq!(ev0("[]"), Some(json!([])));
    assert_eq!(ev0("{}"), Some(json!({})));
    assert_eq!(
        ev("Phone.{type: number}", &p),
        Some(
            json!([{"home": "0203 544 1234"}, {"office": "01962 001234"}, {"office": "01962 001235"}, {"mobile": "077 7700 1234"}])
        )
    );
    assert_eq!(
        ev("Phone{type: number}", &p),
        Some(
            json!({"home": "0203 544 1234", "office": ["01962 001234", "01962 001235"], "mobile": "077 7700 1234"})
        )
    );
    assert_eq!(
        ev("Phone{type: number[]}", &p),
        Some(
            json!({"home": ["0203 544 1234"], "office": ["01962 001234", "01962 001235"], "mobile": ["077 7700 1234"]})
        )
    );
    assert_eq!(
        ev0("{'a': 1, 'b': [1, 2], 'c': {'d': true}}"),
        Some(json!({"a": 1, "b": [1, 2], "c": {"d": true}}))
    );
    assert_eq!(err("{1: 2}", None), "T1003");
    assert_eq!(err("{'a': 1, 'a': 2}", None), "D1009");
}

// docs: Sorting, Grouping and Aggregation
#[test]
fn grouping_with_aggregation() {
    let inv = invoice();
    let got = ev("Account.Order.Product{`Product Name`: $sum(Price)}", &inv).unwrap();
    assert_eq!(got["Trilby hat"], json!(21.67));
    assert_eq!(got["Cloak"], json!(107.99));
    assert!((got["Bowler Hat"].as_f64().unwrap() - 68.9).abs() < 1e-9);
    assert_eq!(
        ev("Account.Order.Product{`Product Name`: Price}", &inv),
        Some(json!({"Bowler Hat": [34.45, 34.45], "Trilby hat": 21.67, "Cloak": 107.99}))
    );
    assert_eq!(
        ev("Account.Order{OrderID: $count(Product)}", &inv),
        Some(json!({"order103": 2, "order104": 2}))
    );
}

// docs: Sorting, Grouping and Aggregation, order-by
#[test]
fn order_by() {
    let inv = invoice();
    assert_eq!(
        ev("Account.Order.Product^(Price).`Product Name`", &inv),
        Some(json!(["Trilby hat", "Bowler Hat", "Bowler Hat", "Cloak"]))
    );
    assert_eq!(
        ev("Account.Order.Product^(>Price).`Product Name`", &inv),
        Some(json!(["Cloak", "Bowler Hat", "Bowler Hat", "Trilby hat"]))
    );
    assert_eq!(
        ev("Account.Order.Product^(>Price, <Quantity).Quantity", &inv),
        Some(json!([1, 2, 4, 1]))
    );
    assert_eq!(ev0("[3, 1, 2]^($)"), Some(json!([1, 2, 3])));
    assert_eq!(ev0("['b', 'a']^(>$)"), Some(json!(["b", "a"])));
    assert_eq!(err("[1, 'a']^($)", None), "T2007");
    assert_eq!(err("[[1], [2]]^($)", None), "T2008");
}

// docs: Programming constructs, variables and blocks
#[test]
fn variables_and_blocks() {
    assert_eq!(ev0("($x := 5; $x * 2)"), Some(json!(10)));
    assert_eq!(ev0("($x := $y := 3; $x + $y)"), Some(json!(6)));
    // a block's bindings stay inside it
    assert_eq!(ev0("($x := 1; ($x := 2); $x)"), Some(json!(1)));
    assert_eq!(ev0("()"), None);
    let p = person();
    assert_eq!(
        ev("($city := Address.City; $uppercase($city))", &p),
        Some(json!("WINCHESTER"))
    );
    assert_eq!(
        ev("Address.($$.FirstName & ' of ' & City)", &p),
        Some(json!("Fred of Winchester"))
    );
    assert_eq!(err("1 := 2", None), "S0212");
}

#[test]
fn bindings_are_variables() {
    let mut bindings = Map::new();
    bindings.insert(
        "states".into(),
        json!({"input": {"n": 4, "items": [1, 2]}, "context": {"Execution": {"Name": "x"}}}),
    );
    bindings.insert("limit".into(), json!(10));
    let got = runway_jsonata::evaluate(
        "$states.input.n * $limit + $count($states.input.items)",
        None,
        &bindings,
    )
    .unwrap();
    assert_eq!(got, Some(json!(42)));
    let got = runway_jsonata::evaluate("$states.context.Execution.Name", None, &bindings).unwrap();
    assert_eq!(got, Some(json!("x")));
    let got = runway_jsonata::evaluate("$states.input.items", None, &bindings).unwrap();
    assert_eq!(got, Some(json!([1, 2])));
    let got = runway_jsonata::evaluate("$missing", None, &bindings).unwrap();
    assert_eq!(got, None);
}

// docs: Programming constructs, functions
#[test]
fn lambdas_and_closures() {
    assert_eq!(
        ev0("function($l, $w, $h){ $l * $w * $h }(10, 10, 5)"),
        Some(json!(500))
    );
    assert_eq!(
        ev0("($factorial := function($x){ $x <= 1 ? 1 : $x * $factorial($x-1) }; $factorial(4))"),
        Some(json!(24))
    );
    assert_eq!(
        ev0("($add := function($a){ function($b){ $a + $b } }; $add5 := $add(5); $add5(3))"),
        Some(json!(8))
    );
    assert_eq!(ev0("λ($x){ $x * 2 }(21)"), Some(json!(42)));
    // missing arguments are undefined
    assert_eq!(
        ev0("function($a, $b){ $exists($b) }(1)"),
        Some(json!(false))
    );
    // a signature checks and coerces arguments
    assert_eq!(ev0("function($x)<n:n>{ $x * 2 }(4)"), Some(json!(8)));
    assert_eq!(err("function($x)<n:n>{ $x * 2 }('a')", None), "T0410");
    assert_eq!(err("nothing()", None), "T1006");
    assert_eq!(err("($f := 5; $f())", None), "T1006");
}

// docs: Programming constructs, partial application and chaining
#[test]
fn partial_application_and_chains() {
    assert_eq!(
        ev0("($first5 := $substring(?, 0, 5); $first5('Hello, World'))"),
        Some(json!("Hello"))
    );
    assert_eq!(
        ev(
            "Email[type='work'].address[0] ~> $substringAfter('@') ~> $substringBefore('.') ~> $uppercase()",
            &person()
        ),
        Some(json!("MY-WORK"))
    );
    assert_eq!(ev0("'abc' ~> $uppercase"), Some(json!("ABC")));
    assert_eq!(
        ev0("($f := $uppercase ~> $substring(?, 1); $f('abc'))"),
        Some(json!("BC"))
    );
    assert_eq!(ev0("[1..5] ~> $reverse()"), Some(json!([5, 4, 3, 2, 1])));
    assert_eq!(err("1 ~> 2", None), "T2006");
}

#[test]
fn strings_and_escapes() {
    assert_eq!(ev0("\"double\" & 'single'"), Some(json!("doublesingle")));
    assert_eq!(ev0(r#"'a\nb\t\u00e9\\'"#), Some(json!("a\nb\té\\")));
    assert_eq!(ev0(r#""\ud83d\ude00""#), Some(json!("😀")));
    assert_eq!(ev0("/* a comment */ 1"), Some(json!(1)));
    assert_eq!(ev("'x'.y", &json!({})), None);
    assert_eq!(ev("\"field\"", &json!({"field": 1})), Some(json!("field")));
    assert_eq!(ev("a.\"b c\"", &json!({"a": {"b c": 1}})), Some(json!(1)));
}

#[test]
fn regex_literals() {
    assert_eq!(ev0("$contains('Hello World', /wo/i)"), Some(json!(true)));
    assert_eq!(ev0("$contains('Hello World', /wo/)"), Some(json!(false)));
    assert_eq!(ev0("10 / 2 / 5"), Some(json!(1)));
    assert_eq!(err("$contains('a', /(/)", None), "S0303");
}

#[test]
fn syntax_errors_carry_positions() {
    let e = runway_jsonata::parse("1 + ").unwrap_err();
    assert_eq!(e.code, "S0207");
    assert!(e.position.is_some());
    let e = runway_jsonata::parse("(1 + 2").unwrap_err();
    assert_eq!(e.code, "S0203");
    let e = runway_jsonata::parse("a b").unwrap_err();
    assert_eq!(e.code, "S0201");
    assert_eq!(e.position, Some(3));
    assert!(e.to_string().contains("position 3"), "{e}");
    assert_eq!(runway_jsonata::parse("'abc").unwrap_err().code, "S0101");
    assert_eq!(runway_jsonata::parse("`abc").unwrap_err().code, "S0105");
    assert_eq!(runway_jsonata::parse("/* open").unwrap_err().code, "S0106");
    assert_eq!(runway_jsonata::parse("'\\q'").unwrap_err().code, "S0103");
    assert_eq!(runway_jsonata::parse("a.1").unwrap_err().code, "S0213");
    assert_eq!(runway_jsonata::parse("1 # $i").unwrap_err().code, "S0217");
    assert_eq!(runway_jsonata::parse("a.%").unwrap_err().code, "S0217");
    assert_eq!(
        runway_jsonata::parse("function(x){1}").unwrap_err().code,
        "S0208"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(runway_jsonata::parse(&deep).unwrap_err().code, "S0100");
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(runway_jsonata::parse(&deep).unwrap_err().code, "S0100");
    let deep = "-".repeat(5000) + "1";
    assert_eq!(runway_jsonata::parse(&deep).unwrap_err().code, "S0100");
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    // run on a thread with the default 2 MiB stack, as a tokio worker would have
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            runway_jsonata::evaluate(
                "($f := function($x){ $f($x + 1) }; $f(0))",
                None,
                &Map::new(),
            )
        })
        .unwrap();
    let e = handle.join().unwrap().unwrap_err();
    assert_eq!(e.code, "U1001");
    // moderate recursion is fine
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            runway_jsonata::evaluate(
                "($sum := function($n){ $n = 0 ? 0 : $n + $sum($n - 1) }; $sum(50))",
                None,
                &Map::new(),
            )
        })
        .unwrap();
    assert_eq!(handle.join().unwrap().unwrap(), Some(json!(1275)));
}

#[test]
fn parsed_expressions_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let expr = runway_jsonata::parse("$x + 1").unwrap();
    assert_send_sync(&expr);
    let shared = std::sync::Arc::new(expr);
    let other = shared.clone();
    let mut bindings = Map::new();
    bindings.insert("x".into(), json!(1));
    let got = std::thread::spawn(move || other.evaluate(None, &bindings).unwrap())
        .join()
        .unwrap();
    assert_eq!(got, Some(json!(2)));
}

#[test]
fn parse_once_evaluate_many() {
    let expr = runway_jsonata::parse("$.n * 2").unwrap();
    for n in 0..5 {
        let got = expr.evaluate(Some(&json!({"n": n})), &Map::new()).unwrap();
        assert_eq!(got, Some(json!(n * 2)));
    }
}

#[test]
fn functions_cannot_be_returned_as_json() {
    assert_eq!(ev0("$uppercase"), None);
    assert_eq!(ev0("{'f': $uppercase, 'a': 1}"), Some(json!({"a": 1})));
}
