// A throttling policy in TypeScript: per-owner and per-repository caps, a queue order that
// puts releases first, and an evening allowance. Built by scripts/build-policies.sh (tsc, then
// componentize-js).
//
// Pools tune it through `params` (strings, set in the pools configuration):
// - `ts-throttle.org-max` (default 8) and `ts-throttle.repo-max` (default 4): runners one
//   owner, one repository may hold at once (running and booting);
// - `ts-throttle.evening-factor` (default 2): the caps are multiplied by it from 18:00 to
//   06:00 UTC, when the pool is quiet;
// - `ts-throttle.blocked`: comma-separated repositories never run (rejected).
//
// The policy reads the time with `new Date()`: runway's clock reads the decision's time
// (`load.now`), so the same input gives the same decision in every replay.

import type { Job, Load, Pool, ThrottleDecision, Throttling } from "../../sdk/typescript/runway-policy";

const RECHECK_SECONDS = 30;

function param(pool: Pool, name: string): string | undefined {
  const found = pool.params.find(([key]) => key === name);
  return found?.[1];
}

function numberParam(pool: Pool, name: string, fallback: number): number {
  const text = param(pool, name);
  const value = text === undefined ? NaN : Number.parseInt(text, 10);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

/** Releases first, then the default branch, then everything else. */
function priorityOf(job: Job): [number, string] {
  if (job.branch?.startsWith("release/")) return [20, "release branch"];
  if (job.branch !== undefined && job.branch === job.defaultBranch) return [10, "default branch"];
  return [0, "branch " + (job.branch ?? "(none)")];
}

function wait(job: Job, why: string): ThrottleDecision {
  const [priority, what] = priorityOf(job);
  return {
    tag: "wait",
    val: { priority, recheckAfterSeconds: RECHECK_SECONDS, reason: `${why}; ${what} queues at priority ${priority}` },
  };
}

export const throttling: Throttling = {
  decide(job: Job, pool: Pool, load: Load): ThrottleDecision {
    const blocked = (param(pool, "ts-throttle.blocked") ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name.length > 0);
    if (blocked.includes(job.repository.toLowerCase())) {
      return { tag: "reject", val: `${job.repository} is blocked in pool ${pool.name}` };
    }

    const hour = new Date().getUTCHours();
    const evening = hour >= 18 || hour < 6;
    const factor = evening ? numberParam(pool, "ts-throttle.evening-factor", 2) : 1;
    const orgMax = numberParam(pool, "ts-throttle.org-max", 8) * factor;
    const repoMax = numberParam(pool, "ts-throttle.repo-max", 4) * factor;
    const when = evening ? ` (evening caps, x${factor})` : "";

    const held = (c: { running: number; booting: number }) => c.running + c.booting;
    const poolHeld = held(load.pool);
    if (poolHeld >= pool.maxRunning) {
      return wait(job, `pool ${pool.name} is full (${poolHeld} of ${pool.maxRunning})`);
    }
    if (held(load.org) >= orgMax) {
      return wait(job, `${job.owner} holds ${held(load.org)} of its ${orgMax} runners${when}`);
    }
    if (held(load.repo) >= repoMax) {
      return wait(job, `${job.repository} holds ${held(load.repo)} of its ${repoMax} runners${when}`);
    }
    console.log(`admit ${job.repository} job ${job.jobId} at ${hour}h`);
    return {
      tag: "admit",
      val: `${job.owner} ${held(load.org)}/${orgMax}, ${job.repository} ${held(load.repo)}/${repoMax}${when}`,
    };
  },
};
