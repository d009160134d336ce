// {{name}}: a runway router in TypeScript. It runs a self-hosted job in the first pool whose
// runners offer every label the job asks for, and leaves every other job alone.

import type { Job, Pool, RouteDecision, Routing } from "./runway-policy";

export const routing: Routing = {
  route(job: Job, pools: Pool[]): RouteDecision {
    // GitHub compares labels without regard to case.
    const wanted = new Set(job.labels.map((label) => label.toLowerCase()));
    if (!wanted.delete("self-hosted")) {
      return { tag: "ignore", val: "not a self-hosted job" };
    }
    for (const pool of pools) {
      const offered = new Set(pool.labels.map((label) => label.toLowerCase()));
      if ([...wanted].every((label) => offered.has(label))) {
        // No overrides: keep every pool default.
        return {
          tag: "run",
          val: { pool: pool.name, overrides: {}, reason: `pool ${pool.name} offers every label of the job` },
        };
      }
    }
    return { tag: "ignore", val: "no pool offers every label of the job" };
  },
};
