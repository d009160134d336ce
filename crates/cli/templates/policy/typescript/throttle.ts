// {{name}}: a runway throttle in TypeScript. It admits a job while fewer runners than the
// pool's `max-active` setting (at most its `max_running`) are running or booting, and queues
// it otherwise.

import type { Job, Load, Pool, ThrottleDecision, Throttling } from "./runway-policy";

const RECHECK_SECONDS = 30;

/** The pool setting `key` as a number, or `fallback` when absent or not a number. */
function paramU32(pool: Pool, key: string, fallback: number): number {
  const found = pool.params.find(([name]) => name === key);
  if (found === undefined) return fallback;
  return /^[0-9]{1,9}$/.test(found[1]) ? Number(found[1]) : fallback;
}

export const throttling: Throttling = {
  decide(_job: Job, pool: Pool, load: Load): ThrottleDecision {
    const ceiling = Math.min(paramU32(pool, "max-active", pool.maxRunning), pool.maxRunning);
    const active = load.pool.running + load.pool.booting;
    const reason = `${active} of ${ceiling} runners active in pool ${pool.name}`;
    if (active < ceiling) {
      return { tag: "admit", val: reason };
    }
    return {
      tag: "wait",
      val: { priority: 0, recheckAfterSeconds: RECHECK_SECONDS, reason: `${reason}: wait for a slot` },
    };
  },
};
