"""Issue 9: the same crowd, single-threaded and seeded, against the rules before and after the House refactor.

A seeded crowd of 20 players (accuracy 0.8, 10% at chance), taking turns at random, each asks for a
puzzle and answers from ground truth until none is left; the script writes the votes' digest, every
puzzle's decision, the edit log and the final mapping's digest. Run it in checkouts of the commit
before the refactor (be6e3a5) and after it (3cff2c7) on copies of one prepared instance, and compare:

    git worktree add --detach /tmp/before be6e3a5 && git worktree add --detach /tmp/after 3cff2c7
    (cd /tmp/before && python -c "from game.instance import Instance; from game.bootstrap import prepare; \
        prepare(Instance('/tmp/home'))")
    (cd /tmp/before && python /path/to/bench/bench_house_replay.py /tmp/home before.json)
    (cd /tmp/after && python /path/to/bench/bench_house_replay.py /tmp/home after.json)

The re-fit of reliabilities, which before ran only in the web layer's broadcast loop (so never here),
is turned off after the refactor (REFIT_EVERY_VOTES 0) for a like-for-like comparison.
"""
import os
import sys as _sys

_sys.path.insert(0, os.getcwd())  # the checkout it is run from, not the installed project
import hashlib
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

src, out = Path(sys.argv[1]), Path(sys.argv[2])
home = Path(tempfile.mkdtemp()) / "instance"
shutil.copytree(src, home)
try:  # after the refactor
    from game.app import players
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.crowd import assignment, votes
    from game.errors import ProofQuestError
    settings = load_settings({"HOME": str(home), "REFIT_EVERY_VOTES": 0}, environ={})
    inst = Instance(home, settings)
    next_puzzle, cast_vote = assignment.next_puzzle, votes.cast_vote
    from game.puzzles.edit import correct_answer
except ImportError:  # before
    from game import play, players
    from game import store as st
    from game.config import load_settings
    from game.errors import ProofQuestError
    from game.instance import Instance
    from game.puzzles import correct_answer
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    next_puzzle, cast_vote = play.next_puzzle, play.cast_vote

rng = random.Random(0)
accuracy = np.where(np.random.default_rng(0).random(20) < 0.1, 0.5, np.random.default_rng(1).beta(24, 6, 20))
crowd = [players.create_guest(inst.store) for _ in range(20)]
active = list(range(20))
order_rng = random.Random(1)
trace = []
while active:
    i = active[order_rng.randrange(len(active))]
    player = st.player(inst.store, crowd[i]["id"])
    try:
        puzzle = next_puzzle(inst, player, rng=random.Random(rng.getrandbits(32)))
    except ProofQuestError:
        active.remove(i)
        continue
    row = st.puzzle(inst.store, puzzle["id"])
    right = correct_answer(row["kind"], bool(row["truth"])) if row["truth"] is not None else "yes"
    answer = right if rng.random() < accuracy[i] else ("no" if right == "yes" else "yes")
    cast_vote(inst, crowd[i]["id"], puzzle["id"], answer, 1000)
    trace.append([i, puzzle["id"], answer])
puzzles = {p["id"]: [p["state"], p["decision"], p["edit_seq"]] for p in st.puzzles(inst.store, tutorial=None)}
edits = [[e["kind"], e["supervoxels"], e["source"], e["target"], e["puzzle_id"]] for e in st.edits(inst.store, "demo")]
mapping = np.asarray(inst.agglomeration("demo").mapping)
out.write_text(json.dumps({"votes": len(trace), "trace_digest": hashlib.sha1(json.dumps(trace).encode()).hexdigest(),
                           "puzzles": puzzles, "edits": edits,
                           "mapping_digest": hashlib.sha1(mapping.astype(np.int64).tobytes()).hexdigest()}))
print(len(trace), "votes;", sum(1 for p in puzzles.values() if p[0] == "retired"), "retired;", len(edits), "edits")
