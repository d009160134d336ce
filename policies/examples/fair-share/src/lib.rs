//! A throttle that shares a pool fairly between organisations and repositories, and puts
//! builds of the default branch first in the queue.
//!
//! Pool settings (all optional):
//! - `fair-share.org-percent` (default 50): the share of `max-running` one owner may hold;
//! - `fair-share.repo-percent` (default 25): the share one repository may hold;
//! - `fair-share.default-branch-priority` (default 100): added to the queue priority of
//!   default-branch builds;
//! - `fair-share.recheck-seconds` (default 30): the recheck hint of a waiting job.
//!
//! A share never rounds down to zero runners. Owners with fewer active runners get a higher
//! priority in the queue, so a busy owner cannot starve a quiet one.

use runway_policy::throttle::{Job, Load, Pool, ThrottleDecision};

/// Ceiling of `percent` of `max`, at least one runner.
pub fn share(max: u32, percent: u32) -> u32 {
    let percent = u64::from(percent.min(100));
    let share = (u64::from(max) * percent).div_ceil(100);
    (share as u32).max(1)
}

fn decide(job: Job, pool: Pool, load: Load) -> ThrottleDecision {
    let max = pool.max_running;
    if max == 0 {
        return ThrottleDecision::reject(format!(
            "pool {} has no capacity (max-running 0)",
            pool.name
        ));
    }
    let org_cap = share(
        max,
        pool.param_parse("fair-share.org-percent").unwrap_or(50),
    );
    let repo_cap = share(
        max,
        pool.param_parse("fair-share.repo-percent").unwrap_or(25),
    );
    let bonus: i32 = pool
        .param_parse("fair-share.default-branch-priority")
        .unwrap_or(100);
    let recheck: u32 = pool.param_parse("fair-share.recheck-seconds").unwrap_or(30);

    let on_default_branch = job.branch.as_deref() == Some(job.default_branch.as_str());
    let org_active = load.org.active();
    // Fewer runners held by the owner means earlier in the queue.
    let priority = (if on_default_branch { bonus } else { 0 })
        .saturating_sub(i32::try_from(org_active).unwrap_or(i32::MAX));
    let branch_note = if on_default_branch {
        ", default branch"
    } else {
        ""
    };

    let pool_active = load.pool.active();
    if pool_active >= max {
        return ThrottleDecision::wait(
            priority,
            recheck,
            format!(
                "pool {} is full ({pool_active} of {max}){branch_note}",
                pool.name
            ),
        );
    }
    if org_active >= org_cap {
        return ThrottleDecision::wait(
            priority,
            recheck,
            format!(
                "{} holds {org_active} runners, its share of {} is {org_cap}{branch_note}",
                job.owner, pool.name
            ),
        );
    }
    let repo_active = load.repo.active();
    if repo_active >= repo_cap {
        return ThrottleDecision::wait(
            priority,
            recheck,
            format!(
                "{} holds {repo_active} runners, its share of {} is {repo_cap}{branch_note}",
                job.repository, pool.name
            ),
        );
    }
    ThrottleDecision::admit(format!(
        "within shares: pool {pool_active}/{max}, {} {org_active}/{org_cap}, {} {repo_active}/{repo_cap}",
        job.owner, job.repository
    ))
}

runway_policy::export_throttle!(decide);
