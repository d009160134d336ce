#![allow(dead_code)]

use serde_json::{Map, Value, json};

/// The sample document of docs.jsonata.org ("Simple Queries", "Navigating JSON Arrays").
pub fn person() -> Value {
    json!({
      "FirstName": "Fred",
      "Surname": "Smith",
      "Age": 28,
      "Address": {"Street": "Hursley Park", "City": "Winchester", "Postcode": "SO21 2JN"},
      "Phone": [
        {"type": "home", "number": "0203 544 1234"},
        {"type": "office", "number": "01962 001234"},
        {"type": "office", "number": "01962 001235"},
        {"type": "mobile", "number": "077 7700 1234"}
      ],
      "Email": [
        {"type": "work", "address": ["fred.smith@my-work.com", "fsmith@my-work.com"]},
        {"type": "home", "address": ["freddy@my-social.com", "frederic.smith@very-serious.com"]}
      ],
      "Other": {
        "Over 18 ?": true,
        "Misc": null,
        "Alternative.Address": {"Street": "Brick Lane", "City": "London", "Postcode": "E1 6RF"}
      }
    })
}

/// The invoice document of docs.jsonata.org ("Predicate Queries", "Sorting, Grouping").
pub fn invoice() -> Value {
    json!({
      "Account": {
        "Account Name": "Firefly",
        "Order": [
          {"OrderID": "order103", "Product": [
            {"Product Name": "Bowler Hat", "ProductID": 858383, "SKU": "0406654608",
             "Description": {"Colour": "Purple", "Width": 300, "Height": 200, "Depth": 210, "Weight": 0.75},
             "Price": 34.45, "Quantity": 2},
            {"Product Name": "Trilby hat", "ProductID": 858236, "SKU": "0406634348",
             "Description": {"Colour": "Orange", "Width": 300, "Height": 200, "Depth": 210, "Weight": 0.6},
             "Price": 21.67, "Quantity": 1}
          ]},
          {"OrderID": "order104", "Product": [
            {"Product Name": "Bowler Hat", "ProductID": 858383, "SKU": "040657863",
             "Description": {"Colour": "Purple", "Width": 300, "Height": 200, "Depth": 210, "Weight": 0.75},
             "Price": 34.45, "Quantity": 4},
            {"ProductID": 345664, "SKU": "0406654603", "Product Name": "Cloak",
             "Description": {"Colour": "Black", "Width": 30, "Height": 20, "Depth": 210, "Weight": 2},
             "Price": 107.99, "Quantity": 1}
          ]}
        ]
      }
    })
}

/// Evaluates with `input` as `$` and no bindings; panics on error.
pub fn ev(expr: &str, input: &Value) -> Option<Value> {
    runway_jsonata::evaluate(expr, Some(input), &Map::new())
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Evaluates without input.
pub fn ev0(expr: &str) -> Option<Value> {
    runway_jsonata::evaluate(expr, None, &Map::new()).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The error code an expression fails with.
pub fn err(expr: &str, input: Option<&Value>) -> String {
    match runway_jsonata::evaluate(expr, input, &Map::new()) {
        Ok(v) => panic!("{expr}: expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// Numbers compared with a tolerance, everything else exactly.
pub fn approx(expr: &str, got: Option<Value>, want: f64) {
    let got = got
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{expr}: not a number"));
    assert!((got - want).abs() < 1e-9, "{expr}: {got} != {want}");
}
