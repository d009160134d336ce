// runway's policy contract (policies/wit/policy.wit, runway:policy@0.1.0) as componentize-js
// presents it to JavaScript: records are objects with camelCase fields, u64 and s64 are
// bigint, other integers are number, an option is the value or undefined, an enum is its
// case name, and a variant is `{ tag, val }`.
//
// A router module exports `routing: Routing`; a throttle module exports
// `throttling: Throttling`.

/** A point in time in UTC: seconds since the Unix epoch, plus nanoseconds. */
export interface Instant {
  seconds: bigint;
  nanoseconds: number;
}

/** A queued GitHub Actions job, as the `workflow_job` webhook described it. */
export interface Job {
  jobId: bigint;
  runId: bigint;
  runAttempt: number;
  /** `owner/name` of the repository. */
  repository: string;
  owner: string;
  /** The job's `runs-on` labels, as written in the workflow. */
  labels: string[];
  workflowName: string;
  jobName: string;
  branch?: string;
  defaultBranch: string;
  eventTime: Instant;
  installationId: bigint;
}

/** How instances are bought. */
export type Market = "spot" | "on-demand";

/** A pool of runners as configured by the operator. */
export interface Pool {
  name: string;
  labels: string[];
  instanceTypes: string[];
  image?: string;
  diskGib?: number;
  market: Market;
  maxRunning: number;
  maxBooting: number;
  /** Free-form settings for policies, in configuration order. */
  params: [string, string][];
}

/** Per-job changes to the pool's defaults; undefined keeps the pool's value. */
export interface Overrides {
  instanceTypes?: string[];
  image?: string;
  diskGib?: number;
  market?: Market;
}

export interface Run {
  pool: string;
  overrides: Overrides;
  reason: string;
}

export type RouteDecision =
  | { tag: "run"; val: Run }
  | { tag: "ignore"; val: string };

export interface Routing {
  route(job: Job, pools: Pool[]): RouteDecision;
}

/** Runners counted in one scope. */
export interface Counts {
  running: number;
  booting: number;
  waiting: number;
}

/** The live load of the chosen pool when the throttle is asked. */
export interface Load {
  pool: Counts;
  org: Counts;
  repo: Counts;
  now: Instant;
}

export interface Wait {
  /** Higher priority leaves the pool's FIFO queue first. */
  priority: number;
  recheckAfterSeconds: number;
  reason: string;
}

export type ThrottleDecision =
  | { tag: "admit"; val: string }
  | { tag: "wait"; val: Wait }
  | { tag: "reject"; val: string };

export interface Throttling {
  decide(job: Job, pool: Pool, load: Load): ThrottleDecision;
}

// What the runtime offers beyond ECMAScript: `console` writes to the decision's captured
// stdout (log, info, debug) and stderr (warn, error). `Date` and `Math.random` read runway's
// deterministic clock and seed.
declare global {
  const console: {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    debug(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
  };
}
