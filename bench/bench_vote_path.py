"""CPU time of the game's own part of a vote, in process: ``next_puzzle`` then ``cast_vote``, no sockets.

The figure beside ``bench_socket.py``'s server CPU per vote: what the core
(choosing a puzzle, the vote's transaction, its consensus) costs, without
Socket.IO, Flask or the clients. Same settings and database as
``bench_socket.py`` (puzzles that never retire, established players), played
in turn by ``--players`` players who answer yes and no alternately; a
warm-up of ``--warm-up`` votes first (puzzles gather a few hundred votes,
as in the socket bench), then ``--votes`` measured.

    python bench/bench_vote_path.py [--players 200] [--votes 3000] [--warm-up 2000] [--home DIR]
                                    [--set NAME=VALUE ...]

``--set`` changes a setting, e.g. ``PUZZLE_ORDER=uncertainty`` to compare hand-out orders.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

SETTINGS = {"MIN_VOTES": "1000000", "MAX_VOTES": "1000000", "BIG_MAX_VOTES": "1000000",
            "ESTABLISHED_GOLD_ANSWERS": "2", "ESTABLISHED_ALPHA": "0.4",
            "RATE_LIMITS_ENABLED": "0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--votes", type=int, default=3000)
    parser.add_argument("--warm-up", type=int, default=2000)
    parser.add_argument("--home", help="a prepared instance folder (copied, never changed); default: bench_socket's")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="settings, e.g. PUZZLE_ORDER=value")
    args = parser.parse_args()
    settings = {**SETTINGS, **dict(s.split("=", 1) for s in args.set)}

    from bench_socket import prepared_home
    from conftest import establish

    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.crowd import assignment, votes

    home = Path(tempfile.mkdtemp(prefix="pq-vote-path-")) / "instance"
    shutil.copytree(args.home or prepared_home(), home)
    inst = Instance(home, load_settings({"HOME": str(home)},
                                        environ={f"PROOFQUEST_{k}": v for k, v in settings.items()}))
    players = [st.create_player(inst.store, f"p{i}", None, is_guest=True) for i in range(args.players)]
    establish(inst, players)
    rng = random.Random(0)
    spent = [0.0, 0.0]  # CPU seconds in next_puzzle, in cast_vote

    def play(n: int) -> None:
        clock = time.process_time
        for k in range(n):
            player = players[k % len(players)]
            t0 = clock()
            puzzle = assignment.next_puzzle(inst, {"id": player["id"]}, rng=rng)
            t1 = clock()
            votes.cast_vote(inst, player["id"], puzzle["id"], ("yes", "no")[k % 2], 1000, puzzle["ticket"])
            spent[0] += t1 - t0
            spent[1] += clock() - t1

    play(args.warm_up)
    spent[:] = [0.0, 0.0]
    play(args.votes)
    ms = [1000 * s / args.votes for s in spent]
    print(json.dumps({"settings": args.set, "votes": args.votes, "players": args.players,
                      "next_puzzle_cpu_ms": round(ms[0], 3),
                      "cast_vote_cpu_ms": round(ms[1], 3), "cpu_ms_per_vote": round(sum(ms), 3)}))
    shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
