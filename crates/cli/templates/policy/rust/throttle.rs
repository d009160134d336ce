//! {{name}}: a runway throttle. It admits a job while the pool has fewer active runners
//! (running or booting) than the pool setting `max-active` (default and ceiling: the pool's
//! max-running); otherwise the job waits for a slot.

use runway_policy::throttle::{Job, Load, Pool, ThrottleDecision};

/// Seconds after which a waiting job is asked about again, if no slot was released sooner.
const RECHECK_SECONDS: u32 = 30;

fn decide(_job: Job, pool: Pool, load: Load) -> ThrottleDecision {
    let ceiling = pool
        .param_parse::<u32>("max-active")
        .unwrap_or(pool.max_running)
        .min(pool.max_running);
    let active = load.pool.active();
    let reason = format!("{active} of {ceiling} runners active in pool {}", pool.name);
    if active < ceiling {
        ThrottleDecision::admit(reason)
    } else {
        ThrottleDecision::wait(0, RECHECK_SECONDS, format!("{reason}: wait for a slot"))
    }
}

runway_policy::export_throttle!(decide);
