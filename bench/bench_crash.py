"""Durability: acknowledged votes against persisted ones over several SIGKILLs of a loaded server.

Each round serves the same instance folder with ``python run.py``, lets
``--voters`` python-socketio guests vote at once, kills the server with
SIGKILL after ``--kill-after`` acknowledgements, starts it again and audits
the database (``tests/crashload.py``: every acknowledged vote there, vote
counts whole, no edit twice, every decision with its edit, the log replays
edit by edit).

    python bench/bench_crash.py [--kills 3] [--voters 50] [--kill-after 200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--kill-after", type=int, default=200, help="acknowledged votes before each kill")
    args = parser.parse_args()

    from conftest import TINY_SHAPE, _settings, oracle_puzzles
    from crashload import audit, load_and_kill_in_child

    from game.app import pipeline
    from game.app.instance import Instance

    home = Path(tempfile.mkdtemp(prefix="bench-crash-")) / "instance"
    inst = Instance(home, _settings(home))
    pipeline.make_demo(inst, "demo", shape=TINY_SHAPE, seed=3)
    ids, puzzles = oracle_puzzles(inst, n_merge=40, n_split=20, gold_every=2)
    inst.store.close()
    answers = {i: "yes" if p["truth"] == (p["kind"] == "merge") else "no" for i, p in zip(ids, puzzles)}
    total_acked = total_persisted = 0
    for kill in range(1, args.kills + 1):
        # votes count once a voter is established: two right gold answers here, so edits happen under load
        run = load_and_kill_in_child(home, answers, voters=args.voters, kill_after=args.kill_after,
                                     ESTABLISHED_GOLD_ANSWERS=2, ESTABLISHED_ALPHA=0.4)
        figures = audit(home, run["acked"])
        total_acked += figures["acked"]
        total_persisted += figures["persisted"]
        print(f"kill {kill}: {args.voters} voters, SIGKILL after {run['killed_at']:.1f} s; acknowledged "
              f"{figures['acked']}, persisted {figures['persisted']}; database {figures['votes']} votes, "
              f"{figures['edits']} edits replayed; {run['refused']} votes refused with an error ack")
    print(f"over {args.kills} kills: {total_persisted} of {total_acked} acknowledged votes persisted")
    shutil.rmtree(home.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
