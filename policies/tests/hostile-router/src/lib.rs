//! Misbehaves on request, by job name: `spin` loops forever, `trap` panics (a trap under
//! `panic = "abort"`), `alloc-bomb` allocates until memory runs out, `recurse` overflows the
//! stack, `unknown-pool` names a pool nobody configured. Any other job runs in the first pool.

use std::hint::black_box;

use runway_policy::router::{Job, Pool, RouteDecision};

fn route(job: Job, pools: Vec<Pool>) -> RouteDecision {
    match job.job_name.as_str() {
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "trap" => panic!("this policy traps on purpose"),
        "alloc-bomb" => {
            // Reserve without touching: only memory.grow, so the memory cap, not fuel, stops it.
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut block: Vec<u8> = Vec::with_capacity(1 << 20);
                block.push(1);
                hoard.push(black_box(block));
                black_box(&hoard);
            }
        }
        "recurse" => RouteDecision::ignore(format!("depth {}", recurse(black_box(1)))),
        "unknown-pool" => RouteDecision::run("no-such-pool", "a pool nobody configured"),
        _ => match pools.first() {
            Some(pool) => RouteDecision::run(&pool.name, "first pool"),
            None => RouteDecision::ignore("no pools"),
        },
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    recurse(black_box(depth + 1)) + frame[black_box(3) as usize]
}

runway_policy::export_router!(route);
