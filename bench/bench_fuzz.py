"""Fuzz every REST route and Socket.IO event; count the cases that fail and how.

The cases are those of the property test (``tests/webfuzz.py``): malformed,
oversized, wrong-typed and forged calls as anonymous, guest, player, teacher
and admin on a tiny demo with oracle puzzles. A case fails when the answer is
a 5xx, an event gets no acknowledgement, a refused call changes the
database, an error echoes its whole input or a redirect leaves the site.

    python bench/bench_fuzz.py [--rest 2000] [--socket 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest", type=int, default=2000, help="REST cases")
    parser.add_argument("--socket", type=int, default=1000, help="Socket.IO cases")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the server logs the failures it survives; the table below counts them

    import webfuzz
    from conftest import TINY_SHAPE, _settings, oracle_puzzles
    from hypothesis import HealthCheck, given, seed, settings

    from game.app import pipeline
    from game.app import store as st
    from game.app.instance import Instance
    from game.web import create_app, socketio

    home = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    inst = Instance(home, _settings(home))
    pipeline.make_demo(inst, "demo", shape=TINY_SHAPE, seed=3)
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    app = create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 3600, "RATE_LIMITS_ENABLED": False}, instance=inst)
    ids = webfuzz.Identities(app, socketio)
    failures: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    counts = collections.Counter()

    def record(kind: str, problems: list[str]) -> None:
        counts[kind] += 1
        counts[kind + " failed"] += bool(problems)
        for problem in problems:
            key = re.sub(r"/[^ :]*", "/…", problem, count=1) if kind == "rest" else re.sub(r"'.*?'", "'…'", problem, 1)
            failures[key] += 1
            examples.setdefault(key, problem)

    def common(n):
        return settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))

    @seed(args.seed)
    @common(args.rest)
    @given(case=webfuzz.rest_cases(webfuzz.routes(app)))
    def rest(case):
        record("rest", webfuzz.run_rest_case(ids, case))

    @seed(args.seed)
    @common(args.socket)
    @given(case=webfuzz.socket_cases(webfuzz.events(socketio)))
    def sockets(case):
        record("socket", webfuzz.run_socket_case(ids, case))

    start = time.perf_counter()
    rest()
    sockets()
    print(f"fuzz: {counts['rest']} REST cases ({counts['rest failed']} failed) over {len(webfuzz.routes(app))} "
          f"routes, {counts['socket']} Socket.IO cases ({counts['socket failed']} failed) over "
          f"{len(webfuzz.events(socketio))} events, {time.perf_counter() - start:.0f} s")
    print(f"{len(failures)} kinds of failure")
    for key, n in failures.most_common():
        print(f"  {n:5d}  {examples[key][:150]}")
    inst.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
