use proptest::prelude::*;
use serde_json::json;

use super::*;

fn store() -> Value {
    json!({
        "store": {
            "book": [
                {"category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95},
                {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99},
                {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99},
                {"category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99}
            ],
            "bicycle": {"color": "red", "price": 19.95}
        },
        "expensive": 10,
        "a b": {"c.d": 1, "it's": 2},
        "delivery-partner": "ups"
    })
}

fn q(path: &str) -> Value {
    query(path, &store()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn root_returns_the_whole_document() {
    assert_eq!(q("$"), store());
}

#[test]
fn dot_and_bracket_children() {
    assert_eq!(q("$.expensive"), json!(10));
    assert_eq!(q("$['expensive']"), json!(10));
    assert_eq!(q("$[\"expensive\"]"), json!(10));
    assert_eq!(q("$.store.bicycle.color"), json!("red"));
    assert_eq!(q("$['store']['bicycle']['color']"), json!("red"));
    assert_eq!(q("$.delivery-partner"), json!("ups"));
}

#[test]
fn keys_with_special_characters() {
    assert_eq!(q("$['a b']['c.d']"), json!(1));
    assert_eq!(q("$['a b']['it\\'s']"), json!(2));
    assert_eq!(q("$[\"a b\"][\"it's\"]"), json!(2));
}

#[test]
fn array_indexes_including_negative() {
    assert_eq!(q("$.store.book[0].author"), json!("Nigel Rees"));
    assert_eq!(q("$.store.book[-1].author"), json!("J. R. R. Tolkien"));
    assert_eq!(q("$.store.book[-4].author"), json!("Nigel Rees"));
}

#[test]
fn slices() {
    let titles = |path: &str| {
        q(path)
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        titles("$.store.book[1:3]"),
        ["Sword of Honour", "Moby Dick"]
    );
    assert_eq!(
        titles("$.store.book[-2:]"),
        ["Moby Dick", "The Lord of the Rings"]
    );
    assert_eq!(
        titles("$.store.book[:2]"),
        ["Sayings of the Century", "Sword of Honour"]
    );
    assert_eq!(titles("$.store.book[2:100]").len(), 2);
    assert_eq!(q("$.store.book[3:1]"), json!([]));
}

#[test]
fn unions() {
    assert_eq!(q("$.store.book[0,1].price"), json!([8.95, 12.99]));
    assert_eq!(q("$.store.bicycle['color','price']"), json!(["red", 19.95]));
    assert_eq!(q("$.store.book[0, -1].price"), json!([8.95, 22.99]));
}

#[test]
fn wildcards() {
    assert_eq!(q("$.store.bicycle.*"), json!(["red", 19.95]));
    assert_eq!(
        q("$.store.book[*].price"),
        json!([8.95, 12.99, 8.99, 22.99])
    );
    assert_eq!(q("$.expensive.*"), json!([]));
}

#[test]
fn recursive_descent() {
    assert_eq!(
        q("$..author"),
        json!([
            "Nigel Rees",
            "Evelyn Waugh",
            "Herman Melville",
            "J. R. R. Tolkien"
        ])
    );
    assert_eq!(
        q("$.store..price"),
        json!([8.95, 12.99, 8.99, 22.99, 19.95])
    );
    assert_eq!(q("$..book[2].title"), json!(["Moby Dick"]));
    assert_eq!(q("$..missing"), json!([]));
    assert_eq!(q("$..['c.d']"), json!([1]));
}

#[test]
fn filters_compare_numbers_strings_and_literals() {
    assert_eq!(
        q("$.store.book[?(@.price < 10)].title"),
        json!(["Sayings of the Century", "Moby Dick"])
    );
    assert_eq!(
        q("$.store.book[?(@.price <= 8.95)].title"),
        json!(["Sayings of the Century"])
    );
    assert_eq!(
        q("$.store.book[?(@.price > 20)].title"),
        json!(["The Lord of the Rings"])
    );
    assert_eq!(
        q("$.store.book[?(@.price >= 22.99)].title"),
        json!(["The Lord of the Rings"])
    );
    assert_eq!(
        q("$.store.book[?(@.category == 'reference')].title"),
        json!(["Sayings of the Century"])
    );
    assert_eq!(
        q("$.store.book[?(@.category == \"reference\")].price"),
        json!([8.95])
    );
    assert_eq!(
        q("$.store.book[?(@.category != 'fiction')].price"),
        json!([8.95])
    );
    assert_eq!(
        q("$.store.book[?(@.price > $.expensive)].price"),
        json!([12.99, 22.99])
    );
}

#[test]
fn filters_with_boolean_logic_and_existence() {
    assert_eq!(
        q("$.store.book[?(@.isbn)].title"),
        json!(["Moby Dick", "The Lord of the Rings"])
    );
    assert_eq!(q("$.store.book[?(!@.isbn)].price"), json!([8.95, 12.99]));
    assert_eq!(
        q("$.store.book[?(@.category == 'fiction' && @.price < 10)].title"),
        json!(["Moby Dick"])
    );
    assert_eq!(
        q("$.store.book[?(@.price < 9 || @.price > 20)].price"),
        json!([8.95, 8.99, 22.99])
    );
    assert_eq!(
        q("$.store.book[?((@.price < 9 || @.price > 20) && @.isbn)].price"),
        json!([8.99, 22.99])
    );
}

#[test]
fn filters_with_true_false_null_literals() {
    let doc = json!({"items": [{"ok": true, "v": null}, {"ok": false, "v": 1}, {"v": "x"}]});
    assert_eq!(
        query("$.items[?(@.ok == true)].v", &doc).unwrap(),
        json!([null])
    );
    assert_eq!(
        query("$.items[?(@.ok == false)].v", &doc).unwrap(),
        json!([1])
    );
    assert_eq!(
        query("$.items[?(@.v == null)].ok", &doc).unwrap(),
        json!([true])
    );
    // A missing value is not equal to anything, so `!=` keeps it.
    assert_eq!(
        query("$.items[?(@.ok != true)].v", &doc).unwrap(),
        json!([1, "x"])
    );
}

#[test]
fn filter_on_the_current_item_itself() {
    let doc = json!({"n": [1, 5, 2, 8], "s": ["a", "b"]});
    assert_eq!(query("$.n[?(@ > 1)]", &doc).unwrap(), json!([5, 2, 8]));
    assert_eq!(query("$.s[?(@ == 'b')]", &doc).unwrap(), json!(["b"]));
    assert_eq!(query("$.s[?(@ > 'a')]", &doc).unwrap(), json!(["b"]));
    // Values of different types never compare.
    assert_eq!(query("$.n[?(@ > 'a')]", &doc).unwrap(), json!([]));
    assert_eq!(query("$.n[?(@ == 5.0)]", &doc).unwrap(), json!([5]));
}

#[test]
fn regex_filter_matches_the_whole_value() {
    assert_eq!(
        q("$.store.book[?(@.author =~ /.*Rees/)].price"),
        json!([8.95])
    );
    assert_eq!(q("$.store.book[?(@.author =~ /Rees/)].price"), json!([]));
    assert_eq!(
        q("$.store.book[?(@.author =~ /nigel.*/i)].price"),
        json!([8.95])
    );
}

#[test]
fn filter_on_an_object_tests_the_object_itself() {
    assert_eq!(
        q("$.store.bicycle[?(@.color == 'red')].price"),
        json!([19.95])
    );
    assert_eq!(q("$.store.bicycle[?(@.color == 'blue')]"), json!([]));
}

#[test]
fn recorded_filter_case_from_aws() {
    // test_state_pass_regex_json_path_base: `$.users[?(@.status == 0)]`.
    let input = json!({"users": [{"year": 1997, "status": 0}, {"year": 1998, "status": 1}]});
    assert_eq!(
        query("$.users[?(@.status == 0)]", &input).unwrap(),
        json!([{"year": 1997, "status": 0}])
    );
}

#[test]
fn length_function() {
    assert_eq!(q("$.store.book.length()"), json!(4));
    assert_eq!(q("$.store.bicycle.length()"), json!(2));
    assert_eq!(q("$..price.length()"), json!(5));
    assert_eq!(q("$.store.book[?(@.price < 10)].length()"), json!(2));
    assert!(matches!(
        query("$.expensive.length()", &store()),
        Err(PathError::Invalid { .. })
    ));
    let odd = json!({"a": {"length()x": 1, "length": 2}});
    assert_eq!(query("$.a.length()x", &odd).unwrap(), json!(1));
    assert_eq!(query("$.a.length", &odd).unwrap(), json!(2));
    let doc = json!({"items": [{"n": 1}, {"n": 2, "length": 3}]});
    assert_eq!(
        query("$.items[?(@.n.length() > 0)]", &doc).unwrap(),
        json!([])
    );
}

#[test]
fn definite_paths_that_do_not_exist_fail() {
    for path in [
        "$.nope",
        "$.store.book[10]",
        "$.store.book[-5]",
        "$.expensive.x",
        "$.store.book.x",
        "$['nope']",
    ] {
        assert_eq!(
            query(path, &store()),
            Err(PathError::NotFound {
                path: path.to_owned()
            }),
            "{path}"
        );
    }
}

#[test]
fn indefinite_paths_without_matches_are_empty_arrays() {
    assert_eq!(q("$.nope[*]"), json!([]));
    assert_eq!(q("$.store.book[?(@.price > 100)]"), json!([]));
    assert_eq!(q("$.store.book[7,8]"), json!([]));
}

#[test]
fn object_key_order_is_preserved() {
    let doc: Value = serde_json::from_str(r#"{"z": 1, "a": 2, "m": 3}"#).unwrap();
    assert_eq!(query("$.*", &doc).unwrap(), json!([1, 2, 3]));
    let whole = query("$", &doc).unwrap();
    assert_eq!(
        whole.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["z", "a", "m"]
    );
}

#[test]
fn invalid_syntax_is_reported_with_a_reason() {
    for path in [
        "",
        "a",
        "$.",
        "$..",
        "$[",
        "$[']",
        "$['a'",
        "$.a[",
        "$.a[?(@.b ==)]",
        "$.a[?(@.b =~ 'x')]",
        "$.a[1:2:3]",
        "$.a[x]",
        "$ .a",
        "$.a]",
        "$.a[?(@.b == 1]",
        "$.a[?(@.b =~ /(/)]",
    ] {
        match query(path, &json!({})) {
            Err(PathError::Invalid { reason, .. }) => assert!(!reason.is_empty(), "{path}"),
            other => panic!("{path:?} should be invalid, got {other:?}"),
        }
    }
}

#[test]
fn resolve_reads_context_variables_and_input() {
    let input = json!({"a": 1});
    let context = json!({"Execution": {"Id": "arn:exec"}, "Map": {"Item": {"Index": 2}}});
    let mut variables = Map::new();
    variables.insert("x".into(), json!({"y": [10, 20]}));
    variables.insert("my_var2".into(), json!("v"));
    let scope = Scope {
        input: &input,
        context: &context,
        variables: &variables,
    };
    assert_eq!(resolve("$", &scope).unwrap(), input);
    assert_eq!(resolve("$.a", &scope).unwrap(), json!(1));
    assert_eq!(resolve("$$", &scope).unwrap(), context);
    assert_eq!(
        resolve("$$.Execution.Id", &scope).unwrap(),
        json!("arn:exec")
    );
    assert_eq!(resolve("$$.Map.Item.Index", &scope).unwrap(), json!(2));
    assert_eq!(resolve("$x", &scope).unwrap(), json!({"y": [10, 20]}));
    assert_eq!(resolve("$x.y", &scope).unwrap(), json!([10, 20]));
    assert_eq!(resolve("$x.y[-1]", &scope).unwrap(), json!(20));
    assert_eq!(resolve("$x['y'][0]", &scope).unwrap(), json!(10));
    assert_eq!(resolve("$my_var2", &scope).unwrap(), json!("v"));
    assert_eq!(
        resolve("$nope.a", &scope),
        Err(PathError::UnknownVariable {
            path: "$nope.a".into(),
            name: "nope".into()
        })
    );
    assert_eq!(
        resolve("$$.Execution.Missing", &scope),
        Err(PathError::NotFound {
            path: "$$.Execution.Missing".into()
        })
    );
    assert_eq!(
        resolve("$x.z", &scope),
        Err(PathError::NotFound {
            path: "$x.z".into()
        })
    );
}

#[test]
fn set_writes_reference_paths() {
    let input = json!({"a": 1, "b": {"c": 2}, "list": [1, 2, 3]});
    assert_eq!(set(input.clone(), "$", json!("x")).unwrap(), json!("x"));
    assert_eq!(set(input.clone(), "$.a", json!(9)).unwrap()["a"], json!(9));
    assert_eq!(
        set(input.clone(), "$.b.c", json!(9)).unwrap(),
        json!({"a": 1, "b": {"c": 9}, "list": [1, 2, 3]})
    );
    assert_eq!(
        set(input.clone(), "$.new.deep.key", json!(true)).unwrap()["new"],
        json!({"deep": {"key": true}})
    );
    assert_eq!(
        set(input.clone(), "$.list[1]", json!("two")).unwrap()["list"],
        json!([1, "two", 3])
    );
    assert_eq!(
        set(input.clone(), "$['b']['d e']", json!(0)).unwrap()["b"],
        json!({"c": 2, "d e": 0})
    );
    // Replacing keeps the key in its place.
    let replaced = set(input, "$.a", json!(0)).unwrap();
    assert_eq!(
        replaced.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["a", "b", "list"]
    );
}

#[test]
fn set_into_a_non_object_is_a_result_path_match_failure() {
    assert_eq!(
        set(json!("text"), "$.a", json!(1)),
        Err(PathError::ResultPathMatchFailure {
            path: "$.a".into(),
            input: "\"text\"".into()
        })
    );
    assert!(matches!(
        set(json!({"a": 5}), "$.a.b", json!(1)),
        Err(PathError::ResultPathMatchFailure { .. })
    ));
    assert!(matches!(
        set(json!({"a": [1]}), "$.a[3]", json!(1)),
        Err(PathError::ResultPathMatchFailure { .. })
    ));
    let err = set(json!([1]), "$.x", json!(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Unable to apply ReferencePath $.x to input [1]"
    );
}

#[test]
fn set_rejects_paths_that_are_not_reference_paths() {
    for path in [
        "$.a[*]",
        "$..a",
        "$.a[0,1]",
        "$.a[?(@.b)]",
        "$.a[1:2]",
        "$.a.length()",
        "$.*",
        "nope",
    ] {
        assert!(
            matches!(
                set(json!({}), path, json!(1)),
                Err(PathError::Invalid { .. })
            ),
            "{path}"
        );
    }
}

#[test]
fn validation_helpers() {
    assert!(validate_path("$.a[?(@.b > 1)]").is_ok());
    assert!(validate_path("$$.Execution.Input").is_ok());
    assert!(validate_path("$var.x").is_ok());
    assert!(validate_path("$.a[").is_err());
    assert!(validate_path("$var[").is_err());
    assert!(is_reference_path("$.a.b[0]"));
    assert!(is_reference_path("$$.Map.Item.Value"));
    assert!(is_reference_path("$v"));
    assert!(!is_reference_path("$.a[*]"));
    assert!(!is_reference_path("$.a.length()"));
    assert!(validate_reference_path("$..x").is_err());
    assert!(is_definite_path("$.a['b'][-1]"));
    assert!(!is_definite_path("$.a[1:]"));
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z_][a-zA-Z0-9_-]{0,5}", "[ -~]{1,6}"]
}

proptest! {
    #[test]
    fn query_never_panics(path in "\\PC{0,40}", doc in json_value()) {
        let _ = query(&path, &doc);
        let _ = validate_path(&path);
        let _ = set(doc, &path, Value::Null);
    }

    #[test]
    fn query_never_panics_on_path_like_text(path in "\\$[\\.\\[\\]\\?\\(\\)@'\"a-c0-9,:\\*<>=!&| -]{0,30}", doc in json_value()) {
        let _ = query(&path, &doc);
    }

    #[test]
    fn set_then_query_round_trips(
        root in prop::collection::btree_map("[a-z]{1,3}", json_value(), 0..4),
        keys in prop::collection::vec(key(), 1..4),
        value in json_value(),
    ) {
        let root = Value::Object(root.into_iter().collect());
        let path = keys.iter().fold(String::from("$"), |mut acc, k| {
            let escaped = k.replace('\\', "\\\\").replace('\'', "\\'");
            acc.push_str(&format!("['{escaped}']"));
            acc
        });
        match set(root, &path, value.clone()) {
            Ok(updated) => prop_assert_eq!(query(&path, &updated).unwrap(), value),
            // Only allowed when the path runs into an existing value that is not an object.
            Err(PathError::ResultPathMatchFailure { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn set_into_fresh_objects_always_succeeds(keys in prop::collection::vec("[a-zA-Z_][a-zA-Z0-9_]{0,5}", 1..5), value in json_value()) {
        let path = format!("$.{}", keys.join("."));
        let updated = set(json!({}), &path, value.clone()).unwrap();
        prop_assert_eq!(query(&path, &updated).unwrap(), value);
    }
}
