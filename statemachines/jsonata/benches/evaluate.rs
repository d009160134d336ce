//! Evaluation speed for the expressions a state machine typically carries.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, json};

fn bindings() -> Map<String, serde_json::Value> {
    let orders: Vec<_> = (0..100)
        .map(|i| json!({"id": format!("order-{i}"), "price": i as f64 * 1.5, "qty": i % 7, "tags": ["a", "b"]}))
        .collect();
    let mut b = Map::new();
    b.insert(
        "states".into(),
        json!({"input": {"orders": orders, "customer": {"name": "Fred", "tier": "gold"}}, "context": {}}),
    );
    b
}

fn evaluate(c: &mut Criterion) {
    let bindings = bindings();
    let cases = [
        ("field", "$states.input.customer.name"),
        (
            "filter_sum",
            "$sum($states.input.orders[qty > 3].(price * qty))",
        ),
        (
            "object_and_map",
            "{'names': $map($states.input.orders, function($o){ $uppercase($o.id) }), 'n': $count($states.input.orders)}",
        ),
        (
            "group_sort",
            "$states.input.orders^(>price){$string(qty): $sum(price)}",
        ),
    ];
    for (name, src) in cases {
        let expr = runway_jsonata::parse(src).unwrap();
        c.bench_function(&format!("evaluate/{name}"), |b| {
            b.iter(|| expr.evaluate(None, &bindings).unwrap())
        });
    }
    c.bench_function("parse/object_and_map", |b| {
        b.iter(|| runway_jsonata::parse(cases[2].1).unwrap())
    });
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
