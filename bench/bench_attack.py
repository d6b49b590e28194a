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
- *replay* (``--replay``): a guest that never votes asks for puzzles
  REPLAY_LISTING_CALLS times and so lists the known-answer puzzles a new
  player is handed (the same for every account); one person answers them once
  (REPLAY_ACCURACY, played from the stored truth); every attacker account
  answers from that table and forces every other edit. The record is per
  account, the set is shared: before shared voices (game.crowd.voices), 5
  such guests forced 90-116 wrong edits and 20 forced 304-347 (demo0, seeds
  0-2), the true gap closed fell from 52-57% (ARE) to -70..-1227%. Now the
  copies are found by how often they agree and speak as one, accounts
  that back every edit whatever it shows stop counting, and the decisions
  they carried are decided again (stop 28: 0-4 wrong edits, the honest
  crowd's gain kept, with 5 and 20 guests).

- *sleeper* (``--sleeper``): k registered accounts play honestly (every
  answer right, secret gold included) until established with a high
  reliability, then all answer the same target big edits wrongly — for a
  wrong big merge or split, against a right one — while established honest
  players (accuracy 0.8) vote on them too. Set up for real on the server: the
  crowd's puzzles are held back while the honest players and the sleepers
  answer every puzzle with known truth they are handed (their record); then
  the server starts again with only the targets open (and the given
  BIG_APPLY_AGREEMENT, BIG_RELIABILITY_CAP), the same accounts log in again,
  and the voters ask for puzzles one at a time in random order (``mixed``) or
  the sleepers first (``first``). Reported: the share of wrong targets the
  sleepers got applied and of right ones they got rejected, sent to experts,
  and what each sleeper spent (gold answers before established, all answers).

  Measured on demo0 (40 wrong big edits, 4 of them splits, and the 3 right
  ones; seed 0). Each sleeper answered 48 puzzles (36 secret gold, all right:
  established after 7, reliability 0.95); the honest players 27-34 of 36
  right (0.72-0.90). Wrong big edits applied, BIG_RELIABILITY_CAP at the
  ceiling (off) -> 0.8, for k = 1, 2, 3, 5 sleepers:

  ====== ===== ============== ======================== =======================
  honest order BIG_APPLY_AGR. uncapped                 cap 0.8
  ====== ===== ============== ======================== =======================
  5      mixed 0.667 or 0.75  0%, 0%, 10%, 45%         0%, 0%, 0%, 8%
  5      first 0.667 or 0.75  0%, 0%, 60%, 98%         0%, 0%, 0%, 10%
  10     mixed 0.667          0%, 0%, 5%, 22%          0%, 0%, 0%, 0%
  10     mixed 0.75           0%, 0%, 5%, 20%          0%, 0%, 0%, 2%
  10     first 0.667 or 0.75  0%, 2%, 62%, 98%         0%, 0%, 0%, 10%
  ====== ===== ============== ======================== =======================

  The agreement bar never bound: the posterior passed at the sleepers' own
  votes, while they held nearly all the weight. Uncapped, one sleeper voting
  first got all 3 right big edits rejected against 10 honest voters (who
  applied all 3 alone); capped, 1 of 3 (the honest 10 applied 2 of 3 alone).
  Capped, the wrong edits the honest 5 do not settle stay open (up to 40 of
  40 at k = 3 first) for the next voters. A sleeper's record barely notices:
  its reliability after the attack was 0.83-0.95 (settled decisions against
  its votes), above every honest player's.

Reported per scenario (force, block, harvest): wrong edits applied (crowd puzzles retired "apply"
whose truth says no), the honest crowd's share of the true gap closed beside
the run without attackers, attacker votes accepted and how many of them
counted in a decision (the votes' own record, kept when their puzzle
retired), and how many attackers were established (counted in consensus) at
the end.

    python bench/bench_attack.py [--accounts 1 5 20] [--cache bench/out/sim] [--quick | --replay [--noise P]]
    python bench/bench_attack.py --sleeper [--honest 5 10] [--sleepers 0 1 2 3 5] [--bars 0.667 0.75]
                                 [--caps 0.98 0.8] [--orders mixed first] [--targets 20]
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
from game.crowd.reliability import standing  # noqa: E402
from game.puzzles.edit import Moot, PuzzleEdit, edit_if_yes  # noqa: E402
from game.simulate import Player  # noqa: E402


# The replay attack (--replay): requests a guest that never votes makes to list the known-answer set, and the
# accuracy of the one person who answers it for every attacker account
REPLAY_LISTING_CALLS = 200
REPLAY_ACCURACY = 0.85


class Attacker(Player):
    """An account that answers without looking: for every edit (force) or against every edit (block)."""

    def __init__(self, url: str, mode: str, rng: random.Random, harvested: dict, username: str | None,
                 noise: float = 0.0):
        super().__init__(url, 0.5, None, rng, username=username)
        self.mode, self.harvested, self.noise = mode, harvested, noise

    def answer(self, puzzle: dict) -> str:
        if puzzle["id"] in self.harvested:
            known = self.harvested[puzzle["id"]]  # flipped at random now and then: copies that differ a little
            return {"yes": "no", "no": "yes"}.get(known, known) if self.rng.random() < self.noise else known
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


def replay_table(home: Path, url: str, rng: random.Random, accuracy: float = REPLAY_ACCURACY) -> dict[int, str]:
    """The *replay* attack's table: a guest that never votes lists the puzzles a new player is handed (only
    known answers, until established), and one person answers each once at ``accuracy`` (played here from the
    stored truth, the role of a human who looked); the table is then shared by every attacker account."""
    from game.puzzles.edit import correct_answer
    lister = Player(url, 0.5, None, random.Random(rng.getrandbits(32)))
    listed: set[int] = set()
    for _ in range(REPLAY_LISTING_CALLS):
        got = lister.sio.call("next_puzzle", {}, timeout=60)
        if got.get("ok"):
            listed.add(got["puzzle"]["id"])
    lister.close()
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    table = {}
    for pid in sorted(listed):
        p = st.puzzle(inst.store, pid)
        if p is not None and p["truth"] is not None:
            right = correct_answer(p["kind"], bool(p["truth"]))
            table[pid] = right if rng.random() < accuracy else {"yes": "no", "no": "yes"}[right]
    inst.store.close()
    return table


# The honest crowd leaves at its first "no puzzle left", as every attack figure so far was measured (simulate's
# default now waits 30 s for the living pool's next puzzles: a longer game, against the same attackers).
HONEST_PATIENCE = 0.0


def honest_crowd(home: Path, url: str, seed: int) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "simulate", "--url", url,
                          "--players", "20", "--accuracy", "0.8", "--chance-share", "0.1", "--seed", str(seed),
                          "--patience", str(HONEST_PATIENCE), "--json"], capture_output=True, text=True, env=env_for())
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout)


def attack(home: Path, url: str, *, accounts: int, mode: str, registered: bool, harvest: bool,
           seed: int, replay: bool = False, noise: float = 0.0) -> tuple[list[Attacker], dict]:
    rng = random.Random(seed)
    harvested: dict[int, str] = {}
    if replay:
        harvested = replay_table(home, url, random.Random(seed + 777))
    elif harvest:
        harvester = Harvester(url, random.Random(seed + 999))
        harvester.play(10_000)
        harvested = harvester.harvested
        harvester.close()
    attackers = [Attacker(url, mode, random.Random(rng.getrandbits(32)), harvested,
                          f"mallory{seed}x{i}" if registered else None, noise) for i in range(accounts)]
    threads = [threading.Thread(target=a.play, args=(10_000,)) for a in attackers]
    return attackers, {"threads": threads, "harvested": len(harvested)}


def scenario(prepared_home: Path, *, accounts: int = 0, mode: str = "none", registered: bool = False,
             harvest: bool = False, seed: int = 0, replay: bool = False, noise: float = 0.0) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="pq-attack-"))
    home = scratch / "instance"
    shutil.copytree(prepared_home, home)
    process, url = serve(home, env_for())
    try:
        attackers, info = ([], {"threads": [], "harvested": 0}) if not accounts else attack(
            home, url, accounts=accounts, mode=mode, registered=registered, harvest=harvest, seed=seed,
            replay=replay, noise=noise)
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
    voiced = {r["id"] for r in inst.store.query("SELECT id FROM players WHERE voice IS NOT NULL")}
    one_sided = st.one_sided_players(inst.store)
    attacker_votes = sum(a.votes for a in attackers)
    out = {"accounts": accounts, "mode": mode, "registered": registered, "harvest": harvest, "replay": replay,
           "noise": noise,
           "harvested_answers": info["harvested"], "attacker_votes": attacker_votes,
           "wrong_edits": sum(1 for p in crowd if p["decision"] and not p["truth"]),
           "wrong_rejections": sum(1 for p in crowd if not p["decision"] and p["truth"]),
           "gap_closed": result["gap_closed"]["total"], "crowd_gap_closed": result["gap_closed"]["crowd"],
           "established_attackers": sum(1 for r, e in standings.values() if e), "votes": result["votes"],
           "attacker_votes_counted": st.counted_votes(inst.store, [a.id for a in attackers]),
           # accounts found to answer as one (game.crowd.voices): attackers, and honest players (false alarms)
           "attackers_in_voices": sum(1 for p in voiced if p in {a.id for a in attackers}),
           "honest_in_voices": sum(1 for p in voiced if p not in {a.id for a in attackers}),
           # accounts whose crowd answers back one side whatever is shown (game.crowd.reliability.one_sided_evidence)
           "attackers_one_sided": sum(1 for p in one_sided if p in {a.id for a in attackers}),
           "honest_one_sided": sum(1 for p in one_sided if p not in {a.id for a in attackers}),
           "vote_timeouts": result.get("vote_timeouts", 0) + sum(a.timeouts for a in attackers)}
    inst.store.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return out


# --- sleepers: honest until established, then all wrong on the same big edits

PASSWORD = "sleeper-bench-password"


class Sleeper(Player):
    """Answers right (accuracy 1) except on its group's targets, where it answers for the wrong outcome."""

    def __init__(self, url: str, truths, rng: random.Random, targets: set[int], **account):
        super().__init__(url, 1.0, truths, rng, **account)
        self.targets = targets

    def answer(self, puzzle: dict) -> str:
        right = super().answer(puzzle)
        if puzzle["id"] not in self.targets:
            return right
        return "no" if right == "yes" else "yes"


def step(player: Player) -> bool:
    """One puzzle asked for and answered; False when none is left for the player."""
    before = player.votes
    player.play(before + 1)
    return player.votes > before


def big_targets(inst: Instance, rng: random.Random, wrong: int) -> tuple[list[int], list[int]]:
    """Open crowd puzzles whose edit is big (BIG_EDIT_STAKE): ``wrong`` sampled among those whose edit is wrong
    (every wrong split, then merges), and every right one."""
    found = {(kind, truth): [] for kind in ("split", "merge") for truth in (False, True)}
    for p in st.puzzles(inst.store, gold=False):
        if p["state"] != "open" or p["truth"] is None:
            continue
        try:
            stake = PuzzleEdit.of(p).stake(inst.agglomeration(p["volume"]), inst.supervoxel_sizes(p["volume"]))
        except Moot:
            continue
        if stake >= inst.consensus.big_edit_stake:
            found[(p["kind"], bool(p["truth"]))].append(p["id"])
    splits = found[("split", False)][:wrong]
    merges = rng.sample(found[("merge", False)], min(wrong - len(splits), len(found[("merge", False)])))
    return sorted(splits + merges), sorted(found[("split", True)] + found[("merge", True)])


def gold_until_established(gold: list[bool], settings) -> int | None:
    """How many secret gold answers the record took to make its player established (None: never)."""
    return next((i for i in range(1, len(gold) + 1) if standing(gold[:i], [], settings)[1]), None)


def sleeper_setup(prepared_home: Path, scratch: Path, *, honest: int, sleepers: int, wrong: int,
                  seed: int) -> dict:
    """Honest players and sleepers earn their records on the server while the crowd's puzzles are held back."""
    home = scratch / "asleep"
    shutil.copytree(prepared_home, home)
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    wrong_ids, right_ids = big_targets(inst, random.Random(seed), wrong)
    for p in st.puzzles(inst.store, gold=False):
        if p["state"] == "open":
            st.set_puzzle_state(inst.store, p["id"], "expert")  # held back: only known truth is handed out
    accounts = [f"honest{seed}x{i}" for i in range(honest)] + [f"sleeper{seed}x{i}" for i in range(sleepers)]
    process, url = serve(home, env_for())
    try:
        truths = lambda pid: st.puzzle(inst.store, pid)  # noqa: E731
        players = [Player(url, 0.8 if name.startswith("honest") else 1.0, truths, random.Random(f"{seed}{name}"),
                       username=name, password=PASSWORD) for name in accounts]
        threads = [threading.Thread(target=p.play, args=(10_000,)) for p in players]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in players:
            p.close()
    finally:
        process.terminate()
        process.wait()
    records = {}
    for name, p in zip(accounts, players):
        rows = st.player_votes(inst.store, p.id)
        gold = [(v["supports_edit"] == 1) == bool(v["truth"]) for v in rows
                if v["gold"] and not v["teach"] and v["supports_edit"] is not None]
        reliability, established = st.standings(inst.store, [p.id])[p.id]
        records[name] = {"id": p.id, "answers": len(rows), "gold": len(gold), "gold_right": sum(gold),
                         "gold_to_establish": gold_until_established(gold, inst.consensus),
                         "reliability": reliability, "established": established}
    for pid in wrong_ids + right_ids:
        st.set_puzzle_state(inst.store, pid, "open")
    inst.store.close()
    return {"home": home, "accounts": accounts, "records": records, "wrong": wrong_ids, "right": right_ids}


def sleeper_attack(asleep: dict, *, sleepers: int, order: str, bar: float, cap: float, seed: int) -> dict:
    """The first ``sleepers`` sleepers and every honest player vote on the targets; what the crowd decided."""
    scratch = Path(tempfile.mkdtemp(prefix="pq-sleeper-"))
    home = scratch / "instance"
    shutil.copytree(asleep["home"], home)
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    truths = lambda pid: st.puzzle(inst.store, pid)  # noqa: E731
    targets = set(asleep["wrong"] + asleep["right"])
    honest = [a for a in asleep["accounts"] if a.startswith("honest")]
    group = [a for a in asleep["accounts"] if a.startswith("sleeper")][:sleepers]
    process, url = serve(home, env_for({"PROOFQUEST_BIG_APPLY_AGREEMENT": str(bar),
                                        "PROOFQUEST_BIG_RELIABILITY_CAP": str(cap),
                                        "PROOFQUEST_LIVING_POOL": "0"}))
    rng = random.Random(seed)
    try:
        account = dict(password=PASSWORD, returning=True)
        voters = [Player(url, 0.8, truths, random.Random(f"{seed}{n}b"), username=n, **account) for n in honest]
        wakers = [Sleeper(url, truths, random.Random(f"{seed}{n}b"), targets, username=n, **account) for n in group]
        if order == "first":
            for v in wakers + voters:
                v.play(10_000)
        else:
            active = voters + wakers
            while active:
                v = rng.choice(active)
                if not step(v):
                    active.remove(v)
        for v in voters + wakers:
            v.close()
    finally:
        process.terminate()
        process.wait()
    rows = {p["id"]: p for p in st.puzzles(inst.store, gold=False)}
    wrong, right = [rows[i] for i in asleep["wrong"]], [rows[i] for i in asleep["right"]]
    ids = [asleep["records"][n]["id"] for n in group]
    out = {"honest": len(honest), "sleepers": sleepers, "order": order, "bar": bar, "cap": cap,
           "wrong_targets": len(wrong), "right_targets": len(right),
           "forced": sum(p["state"] == "retired" and p["decision"] == 1 for p in wrong),
           "wrong_to_expert": sum(p["state"] == "expert" for p in wrong),
           "wrong_open": sum(p["state"] == "open" for p in wrong),
           "blocked": sum(p["state"] == "retired" and p["decision"] == 0 for p in right),
           "right_applied": sum(p["state"] == "retired" and p["decision"] == 1 for p in right),
           "right_to_expert": sum(p["state"] == "expert" for p in right),
           "votes_per_target": sum(p["n_votes"] for p in wrong + right) / max(1, len(wrong) + len(right)),
           "sleeper_reliability_after": [round(r, 3) for r, _ in st.standings(inst.store, ids).values()]}
    inst.store.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def sleeper_main(args, home: Path) -> None:
    results = []
    for honest in args.honest:
        scratch = Path(tempfile.mkdtemp(prefix="pq-asleep-"))
        try:
            asleep = sleeper_setup(home, scratch, honest=honest, sleepers=max(args.sleepers), wrong=args.targets,
                                   seed=args.seed)
            for name, r in asleep["records"].items():
                print(f"{name:<14} answers {r['answers']:>3}  secret gold {r['gold_right']:>2}/{r['gold']:<2} "
                      f"established after {r['gold_to_establish']} gold  reliability {r['reliability']:.3f} "
                      f"established {r['established']}", flush=True)
            print(f"targets: {len(asleep['wrong'])} wrong big edits, {len(asleep['right'])} right ones", flush=True)
            for cap in args.caps:
                for bar in args.bars:
                    for order in args.orders:
                        for k in args.sleepers:
                            if order == "first" and k == 0:
                                continue
                            r = sleeper_attack(asleep, sleepers=k, order=order, bar=bar, cap=cap, seed=args.seed)
                            r["cost"] = {n: asleep["records"][n] for n in asleep["accounts"]
                                         if n.startswith("sleeper")}
                            results.append(r)
                            print(f"honest {honest:>2} cap {cap:.2f} bar {bar:.3f} {order:<5} k {k}  wrong applied "
                                  f"{r['forced']:>2}/{r['wrong_targets']} ({r['forced'] / r['wrong_targets']:.0%}) "
                                  f"to experts {r['wrong_to_expert']:>2} open {r['wrong_open']}  right rejected "
                                  f"{r['blocked']}/{r['right_targets']} applied {r['right_applied']} experts "
                                  f"{r['right_to_expert']}  votes/target {r['votes_per_target']:.1f}  sleepers' "
                                  f"reliability after {r['sleeper_reliability_after']}", flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(results, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--volume", default="demo0")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "sim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="only 20 guests forcing and blocking, and the baseline")
    parser.add_argument("--replay", action="store_true", help="the baseline and guests (--accounts) forcing with a "
                        "replayed table of the known answers a new player is handed")
    parser.add_argument("--noise", type=float, default=0.0, help="--replay: each attacker flips each answer of "
                        "the table with this probability (copies that differ a little)")
    parser.add_argument("--modes", nargs="+", choices=["force", "block"], default=["force", "block"])
    parser.add_argument("--sleeper", action="store_true", help="the sleeper attack instead (the options below)")
    parser.add_argument("--honest", type=int, nargs="+", default=[5, 10], help="established honest voters")
    parser.add_argument("--sleepers", type=int, nargs="+", default=[0, 1, 2, 3, 5])
    parser.add_argument("--bars", type=float, nargs="+", default=[0.667, 0.75], help="BIG_APPLY_AGREEMENT")
    parser.add_argument("--caps", type=float, nargs="+", default=[0.98, 0.8],
                        help="BIG_RELIABILITY_CAP (0.98, the ceiling: off)")
    parser.add_argument("--orders", nargs="+", choices=["mixed", "first"], default=["mixed", "first"])
    parser.add_argument("--targets", type=int, default=20, help="wrong big edits aimed at")
    args = parser.parse_args()
    home = prepared(args.cache, args.volume, 20)
    if args.sleeper:
        sleeper_main(args, home)
        return
    runs = [dict()]
    if args.replay:
        runs += [dict(accounts=n, mode="force", replay=True, noise=args.noise) for n in args.accounts]
    elif args.quick:
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
              f"{'harvest ' if r['harvest'] else 'replay ' if r['replay'] else '':<8} wrong edits {r['wrong_edits']:>2}  wrong rejections "
              f"{r['wrong_rejections']:>3}  attacker votes {r['attacker_votes']:>5} "
              f"(counted {r['attacker_votes_counted']})  established "
              f"{r['established_attackers']:>3}  sharing a voice {r['attackers_in_voices']:>2} (honest "
              f"{r['honest_in_voices']})  one-sided {r['attackers_one_sided']:>2} (honest {r['honest_one_sided']})"
              f"  true gap closed ARE {r['gap_closed']['adapted_rand_error']:.0%} "
              f"VI {r['gap_closed']['vi']:.0%} (baseline ARE {results[0]['gap_closed']['adapted_rand_error']:.0%} VI "
              f"{results[0]['gap_closed']['vi']:.0%})  timed-out votes {r['vote_timeouts']}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
