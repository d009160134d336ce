"""A Python router that probes the host on request, by job name, and reports what it saw in
the decision's reason:

- `clock`: time.time(), time.monotonic() and datetime.now(UTC);
- `random`: random.random(), os.urandom(4) and the hash of a string (hash randomisation);
- `environment`: os.environ, sys.argv, the working directory;
- `file`: tries to open /etc/passwd; `listdir`: lists /;
- `socket`: tries to connect to 127.0.0.1:9 and to resolve a name;
- `sleep`: time.sleep(5) (refused: a decision must not wait);
- `raise`: raises ValueError (a trap, its traceback on stderr);
- `spin`: loops forever; `hoard`: allocates until the memory cap;
- `chatter`: prints 100 KB to stdout and a line to stderr;
- `exit`: sys.exit(3).
Any other job runs in the first pool.
"""

import datetime
import os
import random
import socket
import sys
import time

import wit_world
from wit_world.exports import routing
from wit_world.exports.routing import Overrides, RouteDecision_Ignore, RouteDecision_Run, Run


def attempt(action):
    try:
        return f"ok {action()!r}"
    except Exception as error:  # noqa: BLE001 - the probe reports whatever fails
        return f"{type(error).__name__}"


def probe(name):
    if name == "clock":
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        return f"time={time.time()} monotonic={time.monotonic()} now={now}"
    if name == "random":
        return f"random={random.random()} urandom={os.urandom(4).hex()} hash={hash('runway')}"
    if name == "environment":
        return f"environ={dict(os.environ)} argv={sys.argv} cwd={attempt(os.getcwd)}"
    if name == "file":
        return "open: " + attempt(lambda: open("/etc/passwd").read(10))
    if name == "listdir":
        return "listdir: " + attempt(lambda: os.listdir("/"))
    if name == "socket":
        connect = attempt(lambda: socket.create_connection(("127.0.0.1", 9), timeout=1))
        resolve = attempt(lambda: socket.getaddrinfo("example.com", 443))
        return f"connect: {connect} resolve: {resolve}"
    if name == "sleep":
        time.sleep(5)
        return "slept"
    if name == "raise":
        raise ValueError("the probe raises on purpose")
    if name == "spin":
        n = 0
        while True:
            n += 1
    if name == "hoard":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if name == "chatter":
        for _ in range(1000):
            print("x" * 99)
        print("a line on stderr", file=sys.stderr)
        return "chattered"
    if name == "exit":
        sys.exit(3)
    return None


class Routing(wit_world.exports.Routing):
    def route(self, job: routing.Job, pools):
        seen = probe(job.job_name)
        if seen is not None:
            return RouteDecision_Ignore(seen)
        if not pools:
            return RouteDecision_Ignore("no pools")
        return RouteDecision_Run(
            Run(pool=pools[0].name, overrides=Overrides(None, None, None, None), reason="first pool")
        )
