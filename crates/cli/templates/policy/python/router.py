"""{{name}}: a runway router in Python. It runs a self-hosted job in the first pool whose
runners offer every label the job asks for, and leaves every other job alone."""

from typing import List

import wit_world
from wit_world.exports import routing
from wit_world.exports.routing import (
    Overrides,
    RouteDecision_Ignore,
    RouteDecision_Run,
    Run,
)


class Routing(wit_world.exports.Routing):
    def route(self, job: routing.Job, pools: List[routing.Pool]) -> routing.RouteDecision:
        # GitHub compares labels without regard to case.
        wanted = {label.lower() for label in job.labels}
        if "self-hosted" not in wanted:
            return RouteDecision_Ignore("not a self-hosted job")
        wanted.discard("self-hosted")
        for pool in pools:
            if wanted <= {label.lower() for label in pool.labels}:
                # None everywhere: keep every pool default.
                keep = Overrides(instance_types=None, image=None, disk_gib=None, market=None)
                return RouteDecision_Run(
                    Run(pool=pool.name, overrides=keep,
                        reason=f"pool {pool.name} offers every label of the job")
                )
        return RouteDecision_Ignore("no pool offers every label of the job")
