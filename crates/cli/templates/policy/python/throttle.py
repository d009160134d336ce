"""{{name}}: a runway throttle in Python. It admits a job while fewer runners than the
pool's `max-active` setting (at most its `max_running`) are running or booting, and queues
it otherwise."""

import wit_world
from wit_world.exports import throttling
from wit_world.exports.throttling import (
    ThrottleDecision_Admit,
    ThrottleDecision_Wait,
    Wait,
)

RECHECK_SECONDS = 30


def param_u32(pool: throttling.Pool, key: str, fallback: int) -> int:
    """The pool setting `key` as a number, or `fallback` when absent or not a number."""
    for name, value in pool.params:
        if name == key:
            return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else fallback
    return fallback


class Throttling(wit_world.exports.Throttling):
    def decide(
        self, job: throttling.Job, pool: throttling.Pool, load: throttling.Load
    ) -> throttling.ThrottleDecision:
        ceiling = min(param_u32(pool, "max-active", pool.max_running), pool.max_running)
        active = load.pool.running + load.pool.booting
        reason = f"{active} of {ceiling} runners active in pool {pool.name}"
        if active < ceiling:
            return ThrottleDecision_Admit(reason)
        return ThrottleDecision_Wait(
            Wait(priority=0, recheck_after_seconds=RECHECK_SECONDS,
                 reason=f"{reason}: wait for a slot")
        )
