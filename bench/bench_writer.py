"""SQLite's single writer: votes committed per second by 1, 2 and 4 processes that do nothing but vote.

    python bench/bench_writer.py [--processes 1,2,4] [--seconds 10]

Each process opens the same instance folder (a copy of bench_socket's demo
with hand-made puzzles) and casts votes as fast as it can through the real
path (``game.crowd.votes.cast_vote``: ticket, one write transaction with the
consensus update, commit), as its own established players. No sockets, no
assignment: what is left is the writer, the ceiling under everything the game
can commit however many server processes it runs. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SETTINGS = {"MIN_VOTES": 10**6, "MAX_VOTES": 10**6, "BIG_MAX_VOTES": 10**6, "RATE_LIMITS_ENABLED": False,
            "REFIT_EVERY_VOTES": 0}


def voter(home: str, index: int, seconds: float, start, results) -> None:
    from game.app import players
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.crowd import assignment, votes

    inst = Instance(home, load_settings({"HOME": home, **SETTINGS}, environ={}))
    puzzles = [p["id"] for p in st.puzzles(inst.store, gold=False)]
    crowd = [players.create_guest(inst.store)["id"] for _ in range(40)]
    st.set_reliabilities(inst.store, {p: (0.8, True) for p in crowd})
    pairs = [(p, q) for p in crowd for q in puzzles]
    start.wait()
    done, held, deadline = 0, 0.0, time.perf_counter() + seconds
    for player, puzzle in pairs:
        if time.perf_counter() >= deadline:
            break
        ticket = assignment.issue_ticket(inst.ticket_key, player, puzzle)
        t0 = time.perf_counter()
        votes.cast_vote(inst, player, puzzle, "yes" if (player + puzzle) % 2 else "no", 1000, ticket)
        held += time.perf_counter() - t0
        done += 1
    results.put((index, done, held))


def measure(home: Path, processes: int, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=voter, args=(str(home), i, seconds, start, results)) for i in range(processes)]
    for w in workers:
        w.start()
    time.sleep(3)  # imports and players made before the clock starts
    started = time.perf_counter()
    start.set()
    got = [results.get(timeout=seconds + 120) for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    votes = sum(n for _, n, _ in got)
    return {"processes": processes, "votes": votes, "votes_per_s": round(votes / elapsed, 1),
            "ms_per_vote": round(1e3 * sum(h for _, _, h in got) / max(1, votes), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--home", help="a prepared instance folder (copied); default: bench_socket's")
    args = parser.parse_args()
    from bench_socket import prepared_home
    source = Path(args.home) if args.home else prepared_home()
    report = {"runs": []}
    for n in (int(x) for x in args.processes.split(",")):
        home = Path(tempfile.mkdtemp(prefix="pq-writer-")) / "instance"
        shutil.copytree(source, home)
        report["runs"].append(measure(home, n, args.seconds))
        print(json.dumps(report["runs"][-1]), flush=True)
        shutil.rmtree(home.parent, ignore_errors=True)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
