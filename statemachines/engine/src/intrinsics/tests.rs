use proptest::prelude::*;
use serde_json::json;

use super::*;

fn eval_with(expression: &str, input: &Value) -> Result<Value, IntrinsicError> {
    let context =
        json!({"Execution": {"Id": "arn:aws:states:us-east-1:1:execution:sm:run", "Input": input}});
    let mut variables = Map::new();
    variables.insert("words".into(), json!(["a", "b"]));
    variables.insert("n".into(), json!(3));
    let scope = Scope {
        input,
        context: &context,
        variables: &variables,
    };
    evaluate(expression, &scope)
}

fn eval(expression: &str, input: Value) -> Value {
    eval_with(expression, &input).unwrap_or_else(|e| panic!("{expression}: {e:?}"))
}

fn fails(expression: &str, input: Value) -> IntrinsicError {
    match eval_with(expression, &input) {
        Err(e) => e,
        Ok(v) => panic!("{expression} should fail, gave {v}"),
    }
}

fn assert_invalid_arguments(expression: &str, input: Value, function: &str) {
    let e = fails(expression, input);
    assert_eq!(e.error, "States.Runtime", "{expression}");
    assert_eq!(
        e.cause,
        format!("Invalid arguments in {function}"),
        "{expression}"
    );
}

#[test]
fn recognises_intrinsic_calls() {
    assert!(is_intrinsic("States.Array()"));
    assert!(is_intrinsic("  States.Format('{}', $.a)"));
    assert!(!is_intrinsic("$.a"));
}

#[test]
fn format_substitutes_placeholders_in_order() {
    assert_eq!(
        eval(
            "States.Format('Hello, my name is {}.', $.name)",
            json!({"name": "Arnav"})
        ),
        json!("Hello, my name is Arnav.")
    );
    assert_eq!(
        eval(
            "States.Format('{} {} {}', $.a, $.b, $.c)",
            json!({"a": "x", "b": 2, "c": true})
        ),
        json!("x 2 true")
    );
    assert_eq!(
        eval(
            "States.Format($.template, $.name)",
            json!({"template": "Hi {}", "name": "Ada"})
        ),
        json!("Hi Ada")
    );
    assert_eq!(
        eval("States.Format('no placeholders')", json!({})),
        json!("no placeholders")
    );
    assert_eq!(
        eval("States.Format('  {}  ', 'x')", json!({})),
        json!("  x  ")
    );
    assert_eq!(
        eval(
            "States.Format('{}:{}', $.name, $$.Execution.Input.suffix)",
            json!({"name": "job", "suffix": "run"})
        ),
        json!("job:run")
    );
    assert_eq!(
        eval(
            "States.Format('arn:{}:{}', $.svc, States.JsonToString($.obj))",
            json!({"svc": "lambda", "obj": {"k": 1}})
        ),
        json!("arn:lambda:{\"k\":1}")
    );
    assert_eq!(
        eval("States.Format('{} and {}', $words, $n)", json!({})),
        json!("[a, b] and 3")
    );
}

#[test]
fn format_prints_floats_like_java() {
    let input = json!({"v": [1.1, 100.0, 0.001, 1e7, 1.5e-5, -2.5e10, 0.0, 12345]});
    assert_eq!(
        eval("States.Format('{}', $.v)", input),
        json!("[1.1, 100.0, 0.001, 1.0E7, 1.5E-5, -2.5E10, 0.0, 12345]")
    );
    assert_eq!(java_double(-0.0), "-0.0");
    assert_eq!(java_double(9_999_999.5), "9999999.5");
}

#[test]
fn format_escapes() {
    assert_eq!(
        eval(
            "States.Format('Name: \\'{}\\', Surname: \"{}\"', $.name, $.surname)",
            json!({"name": "Gabriel", "surname": "Moreira"})
        ),
        json!("Name: 'Gabriel', Surname: \"Moreira\"")
    );
    assert_eq!(
        eval("States.Format('\\{{}\\}', 'x')", json!({})),
        json!("{x}")
    );
    assert_eq!(
        eval("States.Format('a\\\\b {}', 1)", json!({})),
        json!("a\\b 1")
    );
}

#[test]
fn format_recorded_on_aws() {
    // test_format_2: each input was run through
    // States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)
    let expression = "States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, $.FunctionInput.snd)";
    let cases = [
        (json!(""), "Formatting arguments fst= and snd=."),
        (json!(" "), "Formatting arguments fst=  and snd= ."),
        (
            json!("HelloWorld"),
            "Formatting arguments fst=HelloWorld and snd=HelloWorld.",
        ),
        (json!(null), "Formatting arguments fst=null and snd=null."),
        (json!(1), "Formatting arguments fst=1 and snd=1."),
        (json!(1.1), "Formatting arguments fst=1.1 and snd=1.1."),
        (
            json!("{\"Arg1\": 1, \"Arg2\": []}"),
            "Formatting arguments fst={\"Arg1\": 1, \"Arg2\": []} and snd={\"Arg1\": 1, \"Arg2\": []}.",
        ),
        (
            json!({"Arg1": 1, "Arg2": []}),
            "Formatting arguments fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}.",
        ),
    ];
    for (value, expected) in cases {
        let input = json!({"FunctionInput": {"fst": value, "snd": value}});
        assert_eq!(eval(expression, input), json!(expected));
    }
}

#[test]
fn format_errors() {
    assert_invalid_arguments(
        "States.Format('{} {}', $.a)",
        json!({"a": "x"}),
        "States.Format",
    );
    assert_invalid_arguments(
        "States.Format('{}', $.a, $.b)",
        json!({"a": "x", "b": "y"}),
        "States.Format",
    );
    assert_invalid_arguments(
        "States.Format($.t, $.a)",
        json!({"t": 123, "a": "x"}),
        "States.Format",
    );
    assert_invalid_arguments(
        "States.Format('Hello {', $.a)",
        json!({"a": "x"}),
        "States.Format",
    );
    assert_invalid_arguments(
        "States.Format('Hello {{}}', $.a)",
        json!({"a": "x"}),
        "States.Format",
    );
    assert_invalid_arguments("States.Format('}')", json!({}), "States.Format");
    assert_invalid_arguments("States.Format()", json!({}), "States.Format");
}

#[test]
fn string_to_json_and_back() {
    assert_eq!(
        eval("States.StringToJson($.s)", json!({"s": "{\"number\": 20}"})),
        json!({"number": 20})
    );
    assert_eq!(
        eval("States.StringToJson('[1, \"a\"]')", json!({})),
        json!([1, "a"])
    );
    assert_eq!(eval("States.StringToJson('\"x\"')", json!({})), json!("x"));
    // Recorded on AWS (test_string_to_json): blank strings give null, "-0" gives 0.
    for (text, expected) in [
        ("", json!(null)),
        (" ", json!(null)),
        ("null", json!(null)),
        ("-0", json!(0)),
        ("1.1", json!(1.1)),
        ("true", json!(true)),
    ] {
        let value = eval(
            "States.StringToJson($.FunctionInput)",
            json!({"FunctionInput": text}),
        );
        assert_eq!(value, expected, "{text:?}");
        assert_eq!(value.to_string(), expected.to_string(), "{text:?}");
    }
    assert_eq!(
        eval(
            "States.JsonMerge(States.StringToJson('{\"constant_in_literal\": \"false\"}'), $$.Execution.Input.input_field, false)",
            json!({"input_field": {"constant_input_field": "constant_value"}})
        ),
        json!({"constant_in_literal": "false", "constant_input_field": "constant_value"})
    );
    assert_invalid_arguments("States.StringToJson('{')", json!({}), "States.StringToJson");
    assert_invalid_arguments(
        "States.StringToJson($.n)",
        json!({"n": 1}),
        "States.StringToJson",
    );
    assert_eq!(
        eval(
            "States.JsonToString($.o)",
            json!({"o": {"a": [1, null], "b": "x"}})
        ),
        json!("{\"a\":[1,null],\"b\":\"x\"}")
    );
    assert_eq!(
        eval(
            "States.JsonToString($.probe)",
            json!({"probe": [null, "", " ", 0, 1, true, false, [0, 1, false]]})
        ),
        json!("[null,\"\",\" \",0,1,true,false,[0,1,false]]")
    );
    let original = json!({"z": 1, "a": {"k": [1, 2]}});
    let round = eval(
        "States.StringToJson(States.JsonToString($))",
        original.clone(),
    );
    assert_eq!(round, original);
}

#[test]
fn array_builds_from_any_arguments() {
    // test_array_0
    assert_eq!(
        eval("States.Array()", json!({"FunctionInput": "HelloWorld"})),
        json!([])
    );
    assert_eq!(
        eval("States.Array($.Id)", json!({"Id": 123456})),
        json!([123456])
    );
    assert_eq!(
        eval(
            "States.Array('Foo', 2020, $.x, true, null, -1.5, States.Array())",
            json!({"x": {"a": 1}})
        ),
        json!(["Foo", 2020, {"a": 1}, true, null, -1.5, []])
    );
}

#[test]
fn array_partition() {
    assert_eq!(
        eval(
            "States.ArrayPartition($.a, 4)",
            json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
        ),
        json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
    );
    assert_eq!(
        eval("States.ArrayPartition($.a, 5)", json!({"a": [0, 1]})),
        json!([[0, 1]])
    );
    assert_eq!(
        eval("States.ArrayPartition($.a, 1)", json!({"a": []})),
        json!([])
    );
    assert_invalid_arguments(
        "States.ArrayPartition($.a, 0)",
        json!({"a": [1]}),
        "States.ArrayPartition",
    );
    assert_invalid_arguments(
        "States.ArrayPartition($.a, 0.49)",
        json!({"a": [1]}),
        "States.ArrayPartition",
    );
    assert_invalid_arguments(
        "States.ArrayPartition($.a, -1)",
        json!({"a": [1]}),
        "States.ArrayPartition",
    );
    assert_invalid_arguments(
        "States.ArrayPartition('x', 1)",
        json!({}),
        "States.ArrayPartition",
    );
}

#[test]
fn array_contains_recorded_on_aws() {
    let expression = "States.ArrayContains($.FunctionInput.fst, $.FunctionInput.snd)";
    let cases = [
        (json!([]), json!(null), false),
        (json!([]), json!([]), false),
        (json!([]), json!(1), false),
        (json!([[1, 2, 3], 2]), json!(null), false),
        (json!([[1, 2, 3], 2]), json!([1, 2, 3]), true),
        (json!([{"1": 2, "2": []}]), json!([]), false),
        (json!([{"1": 2, "2": []}]), json!({"1": 2, "2": []}), true),
        (json!([true, false]), json!(true), true),
        (json!([true, false]), json!(false), true),
    ];
    for (array, value, expected) in cases {
        let input = json!({"FunctionInput": {"fst": array, "snd": value}});
        assert_eq!(eval(expression, input), json!(expected));
    }
    assert_invalid_arguments(
        "States.ArrayContains('x', 'x')",
        json!({}),
        "States.ArrayContains",
    );
}

#[test]
fn array_range() {
    assert_eq!(
        eval("States.ArrayRange(1, 9, 2)", json!({})),
        json!([1, 3, 5, 7, 9])
    );
    assert_eq!(
        eval("States.ArrayRange(0, 10, 3)", json!({})),
        json!([0, 3, 6, 9])
    );
    assert_eq!(eval("States.ArrayRange(1, 9, 9)", json!({})), json!([1]));
    assert_eq!(
        eval("States.ArrayRange(-2, 2, 2)", json!({})),
        json!([-2, 0, 2])
    );
    assert_eq!(
        eval("States.ArrayRange(5, 1, -2)", json!({})),
        json!([5, 3, 1])
    );
    assert_eq!(eval("States.ArrayRange(3, 3, -1)", json!({})), json!([3]));
    assert_eq!(eval("States.ArrayRange(5, 1, 1)", json!({})), json!([]));
    assert_eq!(eval("States.ArrayRange(1, 5, -1)", json!({})), json!([]));
    // AWS cuts fractional arguments toward zero.
    assert_eq!(
        eval("States.ArrayRange(1.4, 5.6, 2.2)", json!({})),
        json!([1, 3, 5])
    );
    assert_eq!(
        eval("States.ArrayRange(1.6, 1.4, 1)", json!({})),
        json!([1])
    );
    assert_eq!(
        eval("States.ArrayRange(5.4, -0.6, -2.4)", json!({})),
        json!([5, 3, 1])
    );
    assert_eq!(
        eval("States.ArrayRange(1, 1000, 1)", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1000
    );
    assert_eq!(
        eval("States.ArrayRange(1000, 1, -1)", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1000
    );
    assert_eq!(
        eval(
            "States.ArrayRange(States.MathAdd($.base, 1), States.MathAdd($.base, 5), 2)",
            json!({"base": 0})
        ),
        json!([1, 3, 5])
    );
    assert_eq!(
        eval(
            "States.ArrayRange($.fst, $.snd, $.trd)",
            json!({"fst": 0, "snd": 9, "trd": 3})
        ),
        json!([0, 3, 6, 9])
    );
    for bad in [
        "States.ArrayRange(1, 1001, 1)",
        "States.ArrayRange(1001, 1, -1)",
        "States.ArrayRange(1, 10, 0)",
        "States.ArrayRange(1, 10, 0.49)",
        "States.ArrayRange('a', 5, 1)",
        "States.ArrayRange(1, 'b', 1)",
        "States.ArrayRange(1, 5, 'c')",
        "States.ArrayRange(1, 5)",
        "States.ArrayRange(1, 5, 1, 99)",
        "States.ArrayRange(-9223372036854775808, 9223372036854775807, 1)",
    ] {
        assert_invalid_arguments(bad, json!({}), "States.ArrayRange");
    }
}

#[test]
fn array_get_item() {
    assert_eq!(
        eval(
            "States.ArrayGetItem($.inputArray, $.index)",
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5})
        ),
        json!(6)
    );
    assert_eq!(
        eval("States.ArrayGetItem($.arr, 0)", json!({"arr": [null]})),
        json!(null)
    );
    assert_eq!(
        eval(
            "States.ArrayGetItem(States.Array('x', 'y', 'z'), 1)",
            json!({})
        ),
        json!("y")
    );
    assert_eq!(
        eval(
            "States.ArrayGetItem($.arr, 1.2)",
            json!({"arr": [10, 20, 30]})
        ),
        json!(20)
    );
    assert_eq!(
        eval("States.ArrayGetItem($.arr, 999)", json!({"arr": []})),
        json!(null)
    );
    assert_eq!(
        eval(
            "States.ArrayGetItem($$.Execution.Input.arr, $.idx)",
            json!({"arr": ["zero", "one", "two"], "idx": 2})
        ),
        json!("two")
    );
    assert_invalid_arguments(
        "States.ArrayGetItem('not-array', 0)",
        json!({}),
        "States.ArrayGetItem",
    );
    assert_invalid_arguments(
        "States.ArrayGetItem($.arr, 3)",
        json!({"arr": [10, 20, 30]}),
        "States.ArrayGetItem",
    );
    assert_invalid_arguments(
        "States.ArrayGetItem($.arr, -1)",
        json!({"arr": [10, 20, 30]}),
        "States.ArrayGetItem",
    );
    assert_invalid_arguments(
        "States.ArrayGetItem($.arr, '1')",
        json!({"arr": [10, 20, 30]}),
        "States.ArrayGetItem",
    );
}

#[test]
fn array_length_and_unique() {
    let values = json!([null, null, true, true, false, false, 1, 1, 1.1, 0, 0, "HelloWorld", "HelloWorld", [], [], [null], [null], {"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1, "b": 1}]);
    // test_array_unique (which runs States.ArrayLength)
    assert_eq!(
        eval(
            "States.ArrayLength($.FunctionInput)",
            json!({"FunctionInput": values.clone()})
        ),
        json!(20)
    );
    assert_eq!(
        eval("States.ArrayUnique($.v)", json!({"v": values})),
        json!([null, true, false, 1, 1.1, 0, "HelloWorld", [], [null], {"a": 1, "b": 2}, {"a": 1, "b": 1}])
    );
    assert_eq!(
        eval(
            "States.ArrayUnique($.v)",
            json!({"v": [1, 2, 3, 3, 3, 3, 3, 3, 4]})
        ),
        json!([1, 2, 3, 4])
    );
    assert_invalid_arguments("States.ArrayLength('x')", json!({}), "States.ArrayLength");
    assert_invalid_arguments(
        "States.ArrayUnique($.o)",
        json!({"o": {}}),
        "States.ArrayUnique",
    );
}

#[test]
fn base64_recorded_on_aws_and_limits() {
    assert_eq!(
        eval(
            "States.Base64Decode($.FunctionInput)",
            json!({"FunctionInput": ""})
        ),
        json!("")
    );
    assert_eq!(
        eval(
            "States.Base64Decode($.FunctionInput)",
            json!({"FunctionInput": "RGF0YSB0byBlbmNvZGU="})
        ),
        json!("Data to encode")
    );
    assert_eq!(
        eval(
            "States.Base64Encode($.input)",
            json!({"input": "Data to encode"})
        ),
        json!("RGF0YSB0byBlbmNvZGU=")
    );
    assert_eq!(
        eval(
            "States.Base64Decode(States.Base64Encode('héllo ✓'))",
            json!({})
        ),
        json!("héllo ✓")
    );
    assert_eq!(
        eval("States.Base64Encode($.s)", json!({"s": "a".repeat(10_000)}))
            .as_str()
            .unwrap()
            .len(),
        13_336
    );
    assert_invalid_arguments(
        "States.Base64Encode($.s)",
        json!({"s": "a".repeat(10_001)}),
        "States.Base64Encode",
    );
    assert_invalid_arguments("States.Base64Encode(1)", json!({}), "States.Base64Encode");
    assert_invalid_arguments(
        "States.Base64Decode('not base64!')",
        json!({}),
        "States.Base64Decode",
    );
    assert_invalid_arguments(
        "States.Base64Decode($.s)",
        json!({"s": "A".repeat(10_004)}),
        "States.Base64Decode",
    );
}

#[test]
fn hash_recorded_on_aws() {
    let cases = [
        ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
        ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        (
            "SHA-256",
            "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
        ),
        (
            "SHA-384",
            "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562",
        ),
        (
            "SHA-512",
            "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4",
        ),
    ];
    for (algorithm, digest) in cases {
        let input = json!({"FunctionInput": {"fst": "input data", "snd": algorithm}});
        assert_eq!(
            eval(
                "States.Hash($.FunctionInput.fst, $.FunctionInput.snd)",
                input
            ),
            json!(digest)
        );
    }
}

#[test]
fn hash_inputs_and_errors() {
    assert_eq!(
        eval("States.Hash('', 'SHA-256')", json!({})),
        json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        eval("States.Hash($.s, 'MD5')", json!({"s": "abc\u{0}def"})),
        json!("a5e4d5963ae44c1f4bfb37b1a3d55a3c")
    );
    assert_eq!(
        eval("States.Hash('🚀', 'SHA-256')", json!({})),
        json!("ebbc0b2870eb323f2b6cffa5c493ceef81ae7eb36afc73d4e0367301631daec5")
    );
    assert_eq!(
        eval(
            "States.Hash(States.Format('{}:{}', $.a, $.b), 'SHA-256')",
            json!({"a": "x", "b": "y"})
        ),
        json!("1274e286686b54fe765ec40735665b4bf789cee2a5b22124c5e0491a88e15271")
    );
    assert_eq!(
        eval(
            "States.Hash($.s, 'SHA-256')",
            json!({"s": "a".repeat(10_000)})
        )
        .as_str()
        .unwrap()
        .len(),
        64
    );
    assert_invalid_arguments(
        "States.Hash($.s, 'SHA-256')",
        json!({"s": "a".repeat(10_001)}),
        "States.Hash",
    );
    for algorithm in ["UNSUPPORTED", "sha-256", "SHA256", "", "MD-5", "SHA-257"] {
        assert_invalid_arguments(
            &format!("States.Hash('data', '{algorithm}')"),
            json!({}),
            "States.Hash",
        );
    }
    assert_invalid_arguments("States.Hash('hello', 123)", json!({}), "States.Hash");
    assert_invalid_arguments("States.Hash()", json!({}), "States.Hash");
    assert_invalid_arguments("States.Hash('hello')", json!({}), "States.Hash");
    assert_invalid_arguments(
        "States.Hash('hello', 'SHA-256', 'extra')",
        json!({}),
        "States.Hash",
    );
}

#[test]
fn json_merge_is_shallow() {
    // test_json_merge
    let input = json!({"FunctionInput": {"fst": {"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3}, "snd": {"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4}}});
    assert_eq!(
        eval(
            "States.JsonMerge($.FunctionInput.fst, $.FunctionInput.snd, false)",
            input.clone()
        ),
        json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3, "d": 4})
    );
    assert_invalid_arguments(
        "States.JsonMerge($.FunctionInput.fst, $.FunctionInput.snd, true)",
        input.clone(),
        "States.JsonMerge",
    );
    assert_invalid_arguments(
        "States.JsonMerge($.FunctionInput.fst, 'x', false)",
        input.clone(),
        "States.JsonMerge",
    );
    assert_invalid_arguments(
        "States.JsonMerge($.FunctionInput.fst, $.FunctionInput.snd)",
        input,
        "States.JsonMerge",
    );
}

#[test]
fn math_add_rounds_like_java() {
    assert_eq!(
        eval(
            "States.MathAdd($.value1, $.step)",
            json!({"value1": 111, "step": -1})
        ),
        json!(110)
    );
    assert_eq!(
        eval("States.MathAdd($.Iterations, -1)", json!({"Iterations": 3})),
        json!(2)
    );
    let cases = [
        (-9.0, 3.0, -6),
        (1.49, 1.50, 3),
        (1.50, 1.51, 4),
        (-1.49, -1.50, -2),
        (-1.50, -1.51, -3),
        (0.5, 0.0, 1),
        (2.5, 0.0, 3),
        (-0.5, 0.0, 0),
        (-2.5, 0.0, -2),
        (-0.5, 0.5, 1),
    ];
    for (a, b, sum) in cases {
        assert_eq!(
            eval("States.MathAdd($.a, $.b)", json!({"a": a, "b": b})),
            json!(sum),
            "{a} + {b}"
        );
    }
    assert_invalid_arguments(
        "States.MathAdd($.a, 1)",
        json!({"a": "NOT A NUMBER"}),
        "States.MathAdd",
    );
    assert_invalid_arguments("States.MathAdd(1)", json!({}), "States.MathAdd");
    assert_invalid_arguments(
        "States.MathAdd(9223372036854775807, 1)",
        json!({}),
        "States.MathAdd",
    );
}

#[test]
fn math_random_stays_in_range_and_is_deterministic_with_a_seed() {
    for _ in 0..50 {
        let v = eval("States.MathRandom(1, 5)", json!({})).as_i64().unwrap();
        assert!((1..5).contains(&v));
        let w = eval("States.MathRandom(1.6, 5.4)", json!({}))
            .as_i64()
            .unwrap();
        assert!((1..5).contains(&w));
    }
    let first = eval("States.MathRandom(1, 100, 42)", json!({}));
    assert_eq!(first, eval("States.MathRandom(1, 100, 42)", json!({})));
    assert!((1..100).contains(&first.as_i64().unwrap()));
    let seeded = eval(
        "States.MathRandom($.start, $.end, $.seed)",
        json!({"start": 2147483640, "end": 2147483647, "seed": 1}),
    );
    assert!((2147483640..2147483647).contains(&seeded.as_i64().unwrap()));
    let wide = eval("States.MathRandom(-5000000000, 5000000000, -10)", json!({}))
        .as_i64()
        .unwrap();
    assert!((-5_000_000_000..5_000_000_000).contains(&wide));
    for bad in [
        "States.MathRandom(1, 1)",
        "States.MathRandom(10, 5)",
        "States.MathRandom(1.4, 1.6)",
        "States.MathRandom('a', 10)",
        "States.MathRandom(1, 'b')",
        "States.MathRandom(1, 10, 'seed')",
        "States.MathRandom(1, 10, null)",
        "States.MathRandom(1)",
        "States.MathRandom(1, 10, 5, 99)",
    ] {
        assert_invalid_arguments(bad, json!({}), "States.MathRandom");
    }
}

#[test]
fn java_random_matches_java_util_random() {
    // new java.util.Random(42).nextInt() is -1170105035, so nextInt(10) is 0 and
    // nextInt(100) is 30 (both take the top 31 bits of the same step).
    assert_eq!(JavaRandom::new(42).next(32) as i32, -1_170_105_035);
    assert_eq!(JavaRandom::new(42).below(10), 0);
    assert_eq!(JavaRandom::new(42).below(100), 30);
    // A power-of-two bound takes the high bits instead of a remainder.
    assert_eq!(JavaRandom::new(42).below(2), 1);
}

#[test]
fn string_split_recorded_on_aws() {
    let cases = [
        (" ", ",", json!([" "])),
        (" , ", ",", json!([" ", " "])),
        (", , ,", ",", json!([" ", " "])),
        (",,,,", ",", json!([])),
        ("1,2,3,4,5", ",", json!(["1", "2", "3", "4", "5"])),
        (
            "This.is+a,test=string",
            ".+,=",
            json!(["This", "is", "a", "test", "string"]),
        ),
        (
            "split on T and \nnew line",
            "T\n",
            json!(["split on ", " and ", "new line"]),
        ),
    ];
    for (text, delimiters, expected) in cases {
        let input = json!({"FunctionInput": {"fst": text, "snd": delimiters}});
        assert_eq!(
            eval(
                "States.StringSplit($.FunctionInput.fst, $.FunctionInput.snd)",
                input
            ),
            expected,
            "{text:?}"
        );
    }
    // test_escape_sequence: the definition holds real newline characters.
    assert_eq!(
        eval(
            "States.StringSplit('Hello\nWorld', '\n')",
            json!({"FunctionInput": null})
        ),
        json!(["Hello", "World"])
    );
    assert_invalid_arguments(
        "States.StringSplit(1, ',')",
        json!({}),
        "States.StringSplit",
    );
}

#[test]
fn uuid_is_a_random_v4() {
    let a = eval("States.UUID()", json!({}));
    let b = eval("States.UUID()", json!({}));
    assert_ne!(a, b);
    let parsed = uuid::Uuid::parse_str(a.as_str().unwrap()).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_invalid_arguments("States.UUID(1)", json!({}), "States.UUID");
}

#[test]
fn arguments_of_every_kind() {
    assert_eq!(
        eval(
            "States.Array( 'a' , -2, 3.5, 1e2, true,false , null, $.x, $$.Execution.Id, $words, $n )",
            json!({"x": 1})
        ),
        json!([
            "a",
            -2,
            3.5,
            100.0,
            true,
            false,
            null,
            1,
            "arn:aws:states:us-east-1:1:execution:sm:run",
            ["a", "b"],
            3
        ])
    );
    assert_eq!(
        eval(
            "States.Array($.a['b c'], $.l[?(@.v > 1)].v, $.l[-1].v)",
            json!({"a": {"b c": 1}, "l": [{"v": 1}, {"v": 2}]})
        ),
        json!([1, [2], 2])
    );
    assert_eq!(eval("States.Array($)", json!({"k": 1})), json!([{"k": 1}]));
}

#[test]
fn nested_calls_as_in_the_aws_docs() {
    let input = json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:1:image-recipe/my-recipe.2024.1/1.0.0"}});
    let expression = "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))";
    assert_eq!(eval(expression, input), json!("1.0"));
}

#[test]
fn missing_path_argument_reports_the_input() {
    let e = fails("States.Hash($.missing, 'SHA-256')", json!({}));
    assert_eq!(e.error, "States.Runtime");
    assert!(
        e.cause.contains("could not be found in the input '{}'"),
        "{}",
        e.cause
    );
    let context = json!({});
    let variables = Map::new();
    let input = json!({"a": 1});
    let scope = Scope {
        input: &input,
        context: &context,
        variables: &variables,
    };
    let e = evaluate_in_field("States.Array($.b)", "value.$", &scope).unwrap_err();
    assert_eq!(
        e.cause,
        "The JsonPath argument for the field 'value.$' could not be found in the input '{\"a\":1}'"
    );
    let e = fails("States.Array($undefined)", json!({}));
    assert_eq!(e.error, "States.Runtime");
    assert!(e.cause.contains("undefined"), "{}", e.cause);
}

#[test]
fn malformed_expressions_fail() {
    for bad in [
        "States.Nope()",
        "States.Array(",
        "States.Array(1,)",
        "States.Array(, 1)",
        "States.Array('unterminated)",
        "States.Array(1) extra",
        "States.Array(tru)",
        "States.Array($.a[)",
        "States.ArrayGetItem($.arr, )",
        "Array(1)",
        "",
    ] {
        let e = fails(bad, json!({"a": [1]}));
        assert_eq!(e.error, "States.Runtime", "{bad}");
        assert!(validate_intrinsic(bad).is_err(), "{bad}");
    }
}

#[test]
fn validation_checks_names_arity_and_literals() {
    assert!(validate_intrinsic("States.Format('{} {}', $.a, States.UUID())").is_ok());
    assert!(validate_intrinsic("States.JsonMerge($.a, $.b, false)").is_ok());
    assert!(validate_intrinsic("States.MathRandom(1, 2)").is_ok());
    assert!(validate_intrinsic("States.MathRandom(1, 2, 3)").is_ok());
    let reason = validate_intrinsic("States.ArrayRange(1, 5)").unwrap_err();
    assert!(reason.contains("States.ArrayRange takes 3"), "{reason}");
    assert!(validate_intrinsic("States.UUID(1)").is_err());
    assert!(validate_intrinsic("States.JsonMerge($.a, $.b, true)").is_err());
    assert!(validate_intrinsic("States.Format('{}')").is_err());
    assert!(validate_intrinsic("States.Format('{')").is_err());
    assert!(validate_intrinsic("States.Array(States.Hash('a'))").is_err());
    assert!(validate_intrinsic("States.Array($.a[?(@.b ==)])").is_err());
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    let deep = format!("{}1{}", "States.Array(".repeat(200), ")".repeat(200));
    assert!(validate_intrinsic(&deep).is_err());
    assert!(eval_with(&deep, &json!({})).is_err());
    let ok = format!("{}1{}", "States.Array(".repeat(10), ")".repeat(10));
    assert!(validate_intrinsic(&ok).is_ok());
}

proptest! {
    #[test]
    fn parser_never_panics(text in "\\PC{0,60}") {
        let _ = validate_intrinsic(&text);
        let _ = eval_with(&text, &json!({"a": [1, 2], "s": "x"}));
    }

    #[test]
    fn parser_never_panics_on_call_like_text(text in "States\\.(Array|Format|Hash|MathAdd|ArrayRange)\\([$@'a-c0-9,.{}\\\\() \\[\\]-]{0,30}\\)?") {
        let _ = validate_intrinsic(&text);
        let _ = eval_with(&text, &json!({"a": [1, 2], "b": "x", "c": 1}));
    }

    #[test]
    fn format_without_placeholders_is_identity(text in "[^{}\\\\']{0,40}") {
        let expression = format!("States.Format('{text}')");
        prop_assert_eq!(eval(&expression, json!({})), Value::String(text));
    }

    #[test]
    fn format_of_escaped_text_is_identity(text in "\\PC{0,40}") {
        let escaped: String = text
            .chars()
            .flat_map(|c| if matches!(c, '{' | '}' | '\\' | '\'') { vec!['\\', c] } else { vec![c] })
            .collect();
        let expression = format!("States.Format('{escaped}')");
        prop_assert_eq!(eval(&expression, json!({})), Value::String(text));
    }

    #[test]
    fn array_range_length_matches_arithmetic(start in -50i64..50, end in -50i64..50, step in prop_oneof![-7i64..0, 1i64..8]) {
        let value = eval(&format!("States.ArrayRange({start}, {end}, {step})"), json!({}));
        let items = value.as_array().unwrap();
        let expected: Vec<i64> = if step > 0 {
            (start..=end).step_by(step as usize).collect()
        } else {
            let mut v = Vec::new();
            let mut x = start;
            while x >= end { v.push(x); x += step; }
            v
        };
        prop_assert_eq!(items.iter().map(|v| v.as_i64().unwrap()).collect::<Vec<_>>(), expected);
    }
}
