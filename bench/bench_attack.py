"""Can free accounts fool the crowd? Attackers force or block edits while an honest crowd plays (issue 12).

An honest crowd of 20 simulated players at accuracy 0.8 (10% at chance) plays
a prepared demo instance to the end (``run.py simulate``), as in
bench/bench_simulate.py. Attackers are real accounts on the same live server
(python-socketio clients), guests or registered players, that answer every
puzzle they are handed — secret gold included — without looking:

- *force*: every answer supports the puzzle's edit (yes to a join, no to
  "is this one neurite?"), alongside the honest crowd;
- *block*: every answer opposes the edit, all cast before the honest crowd
  arrives (rejecting needs less certainty than applying: the cheapest attack);
- *harvest*: one more account first answers what it is handed and keeps every
  answer the game reveals (teach puzzles show theirs); the attackers then
  answer those puzzles right whenever they are handed them, to buy a record.

Reported per scenario: wrong edits applied (crowd puzzles retired "apply"
whose truth says no), the honest crowd's share of the true gap closed beside
the run without attackers, attacker votes accepted and how many of them
counted in a decision (the votes' own record, kept when their puzzle
retired), and how many attackers were established (counted in consensus) at
the end.

    python bench/bench_attack.py [--accounts 1 5 20] [--cache bench/out/sim] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_simulate import env_for, prepared, serve  # noqa: E402

from game.app import store as st  # noqa: E402
from game.app.instance import Instance  # noqa: E402
from game.app.settings import load_settings  # noqa: E402
from game.puzzles.edit import edit_if_yes  # noqa: E402
from game.simulate import Player  # noqa: E402


class Attacker(Player):
    """An account that answers without looking: for every edit (force) or against every edit (block)."""

    def __init__(self, url: str, mode: str, rng: random.Random, harvested: dict, username: str | None):
        super().__init__(url, 0.5, None, rng, username=username)
        self.mode, self.harvested = mode, harvested

    def answer(self, puzzle: dict) -> str:
        if puzzle["id"] in self.harvested:
            return self.harvested[puzzle["id"]]
        support = self.mode == "force"
        return "yes" if support == edit_if_yes(puzzle["kind"]) else "no"


class Harvester(Player):
    """Answers what it is handed and keeps every answer the game reveals."""

    def __init__(self, url: str, rng: random.Random):
        super().__init__(url, 0.5, None, rng)
        self.harvested: dict[int, str] = {}

    def answer(self, puzzle: dict) -> str:
        return "yes"

    def play(self, limit: int) -> None:
        while self.votes < limit:
            got = self.sio.call("next_puzzle", {}, timeout=60)
            if not got.get("ok"):
                return
            puzzle = got["puzzle"]
            ack = self.sio.call("vote", {"puzzle": puzzle["id"], "answer": "yes", "ms": 3000,
                                         "ticket": puzzle["ticket"]}, timeout=60)
            if ack.get("ok"):
                self.votes += 1
                if ack.get("feedback"):
                    self.harvested[puzzle["id"]] = ack["feedback"]["answer"]


def honest_crowd(home: Path, url: str, seed: int) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "simulate", "--url", url,
                          "--players", "20", "--accuracy", "0.8", "--chance-share", "0.1", "--seed", str(seed),
                          "--json"], capture_output=True, text=True, env=env_for())
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout)


def attack(home: Path, url: str, *, accounts: int, mode: str, registered: bool, harvest: bool,
           seed: int) -> tuple[list[Attacker], dict]:
    rng = random.Random(seed)
    harvested: dict[int, str] = {}
    if harvest:
        harvester = Harvester(url, random.Random(seed + 999))
        harvester.play(10_000)
        harvested = harvester.harvested
        harvester.close()
    attackers = [Attacker(url, mode, random.Random(rng.getrandbits(32)), harvested,
                          f"mallory{seed}x{i}" if registered else None) for i in range(accounts)]
    threads = [threading.Thread(target=a.play, args=(10_000,)) for a in attackers]
    return attackers, {"threads": threads, "harvested": len(harvested)}


def scenario(prepared_home: Path, *, accounts: int = 0, mode: str = "none", registered: bool = False,
             harvest: bool = False, seed: int = 0) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="pq-attack-"))
    home = scratch / "instance"
    shutil.copytree(prepared_home, home)
    process, url = serve(home, env_for())
    try:
        attackers, info = ([], {"threads": [], "harvested": 0}) if not accounts else attack(
            home, url, accounts=accounts, mode=mode, registered=registered, harvest=harvest, seed=seed)
        if mode == "block":  # all their rejections first
            for t in info["threads"]:
                t.start()
            for t in info["threads"]:
                t.join()
            result = honest_crowd(home, url, seed)
        else:
            for t in info["threads"]:
                t.start()
            result = honest_crowd(home, url, seed)
            for t in info["threads"]:
                t.join()
        for a in attackers:
            a.close()
    finally:
        process.terminate()
        process.wait()
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    crowd = [p for p in st.puzzles(inst.store, gold=False) if p["truth"] is not None and p["state"] == "retired"]
    standings = st.standings(inst.store, [a.id for a in attackers])
    attacker_votes = sum(a.votes for a in attackers)
    out = {"accounts": accounts, "mode": mode, "registered": registered, "harvest": harvest,
           "harvested_answers": info["harvested"], "attacker_votes": attacker_votes,
           "wrong_edits": sum(1 for p in crowd if p["decision"] and not p["truth"]),
           "wrong_rejections": sum(1 for p in crowd if not p["decision"] and p["truth"]),
           "gap_closed": result["gap_closed"]["total"], "crowd_gap_closed": result["gap_closed"]["crowd"],
           "established_attackers": sum(1 for r, e in standings.values() if e), "votes": result["votes"],
           "attacker_votes_counted": st.counted_votes(inst.store, [a.id for a in attackers]),
           "vote_timeouts": result.get("vote_timeouts", 0) + sum(a.timeouts for a in attackers)}
    inst.store.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--volume", default="demo0")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "sim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="only 20 guests forcing and blocking, and the baseline")
    parser.add_argument("--modes", nargs="+", choices=["force", "block"], default=["force", "block"])
    args = parser.parse_args()
    home = prepared(args.cache, args.volume, 20)
    runs = [dict()]
    if args.quick:
        runs += [dict(accounts=20, mode="force"), dict(accounts=20, mode="block")]
    else:
        for n in args.accounts:
            runs += [dict(accounts=n, mode="force"), dict(accounts=n, mode="block")]
        n = max(args.accounts)
        runs += [dict(accounts=n, mode=m, registered=True) for m in ("force", "block")]
        runs += [dict(accounts=n, mode=m, harvest=True) for m in ("force", "block")]
    runs = [r for r in runs if r.get("mode", "none") in (*args.modes, "none")]
    results = []
    for spec in runs:
        r = scenario(home, seed=args.seed, **spec)
        results.append(r)
        print(f"{r['mode']:>5} {r['accounts']:>2} {'registered' if r['registered'] else 'guests':<10} "
              f"{'harvest ' if r['harvest'] else '':<8} wrong edits {r['wrong_edits']:>2}  wrong rejections "
              f"{r['wrong_rejections']:>3}  attacker votes {r['attacker_votes']:>5} "
              f"(counted {r['attacker_votes_counted']})  established "
              f"{r['established_attackers']:>3}  true gap closed ARE {r['gap_closed']['adapted_rand_error']:.0%} "
              f"VI {r['gap_closed']['vi']:.0%} (baseline ARE {results[0]['gap_closed']['adapted_rand_error']:.0%} VI "
              f"{results[0]['gap_closed']['vi']:.0%})  timed-out votes {r['vote_timeouts']}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
