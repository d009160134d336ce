"""A routing policy in Python: labels first, then repository rules, then the market.

Build it with scripts/build-policies.sh (componentize-py), or by hand:

    componentize-py -d ../../wit -w router componentize app -o python-router.wasm

Pools are tuned through their `params` (strings, set in the pools configuration):

- `python-router.repositories`: comma-separated glob patterns (`acme/*,globex/web`); only
  repositories matching one of them may use the pool. Absent: every repository may.
- `python-router.on-demand-for-default-branch`: `true` buys on-demand capacity for runs of
  the repository's default branch (a release must not lose its runner to a spot reclaim),
  spot for the rest.

The policy prints one line per decision: runway keeps it, bounded, in the decision's log
record.
"""

from fnmatch import fnmatchcase
from typing import List, Optional

import wit_world
from wit_world.exports import routing
from wit_world.exports.routing import (
    Market,
    Overrides,
    RouteDecision_Ignore,
    RouteDecision_Run,
    Run,
)

PARAM_REPOSITORIES = "python-router.repositories"
PARAM_ON_DEMAND = "python-router.on-demand-for-default-branch"

# GitHub adds `self-hosted` to every self-hosted job's labels; no pool needs to list it.
IMPLICIT_LABELS = {"self-hosted"}


def param(pool: routing.Pool, name: str) -> Optional[str]:
    for key, value in pool.params:
        if key == name:
            return value
    return None


def repository_allowed(pool: routing.Pool, repository: str) -> Optional[str]:
    """The pattern that lets `repository` use `pool`, `"*"` when the pool has no rule, or
    None when the pool's rule leaves the repository out."""
    rule = param(pool, PARAM_REPOSITORIES)
    if rule is None:
        return "*"
    for pattern in (p.strip() for p in rule.split(",")):
        if pattern and fnmatchcase(repository.lower(), pattern.lower()):
            return pattern
    return None


def market_for(job: routing.Job, pool: routing.Pool) -> Optional[Market]:
    on_default = job.branch is not None and job.branch == job.default_branch
    wanted = (param(pool, PARAM_ON_DEMAND) or "").strip().lower() == "true"
    if on_default and wanted and pool.market != Market.ON_DEMAND:
        return Market.ON_DEMAND
    return None


class Routing(wit_world.exports.Routing):
    def route(self, job: routing.Job, pools: List[routing.Pool]) -> routing.RouteDecision:
        wanted = {label.lower() for label in job.labels} - IMPLICIT_LABELS
        shown = ", ".join(sorted({label.lower() for label in job.labels}))
        if not wanted:
            return self.ignore(job, f"labels [{shown}] name no pool")

        fitting = []
        for index, pool in enumerate(pools):
            offered = {label.lower() for label in pool.labels} - IMPLICIT_LABELS
            if not wanted <= offered:
                continue
            pattern = repository_allowed(pool, job.repository)
            extra = len(offered - wanted)
            fitting.append((pattern is None, extra, index, pool, pattern))
        if not fitting:
            return self.ignore(job, f"no pool offers labels [{shown}]")

        # Allowed pools first, then the fewest extra labels, then configuration order.
        fitting.sort(key=lambda entry: entry[:3])
        refused, extra, _, pool, pattern = fitting[0]
        if refused:
            return self.ignore(
                job,
                f"labels [{shown}] fit pool {pool.name}, which does not take "
                f"{job.repository} ({PARAM_REPOSITORIES})",
            )

        market = market_for(job, pool)
        reason = f"labels [{shown}] fit pool {pool.name} ({extra} extra label{'' if extra == 1 else 's'})"
        if pattern != "*":
            reason += f"; {job.repository} matches {pattern}"
        if market == Market.ON_DEMAND:
            reason += f"; on-demand for the default branch {job.default_branch}"
        print(f"route {job.repository} job {job.job_id}: {pool.name}")
        return RouteDecision_Run(
            Run(
                pool=pool.name,
                overrides=Overrides(
                    instance_types=None, image=None, disk_gib=None, market=market
                ),
                reason=reason,
            )
        )

    @staticmethod
    def ignore(job: routing.Job, reason: str) -> routing.RouteDecision:
        print(f"route {job.repository} job {job.job_id}: ignored")
        return RouteDecision_Ignore(reason)
