"""What a crowd closes of the true gap, on generated and real volumes (issue 10's figures).

For each volume — the demo of seeds 0, 1, 2 (64×256×256) and fibsem-gala's
held-out slab z >= 35 segmented with a boundary network fine-tuned on z < 35
only — a prepared instance (first start: puzzles, known answers, the living
pool) is copied, served by ``python run.py`` and played to the end by
``python run.py simulate`` (20 python-socketio players). Reported per run:

- ARE and VI of the automatic segmentation (initial), after the known answers
  (before the crowd), after the crowd, of the project's oracle (every correct
  crowd puzzle of the start applied) and of the supervoxel limit;
- the share of the true gap (initial − limit) closed by the known answers, by
  the crowd and in all;
- votes per retired puzzle, wrong decisions among retired puzzles, puzzles sent
  to the expert queue; VI gained per player-minute at 6.2 s per answer
  (Guided Proofreading's decision time; its figure is 0.00173);
- once the crowd has left, an expert (``simulate --expert``: an admin deciding
  by the truth through the admin routes) settles the expert queue: how many it
  applied and rejected, and the share of the true gap closed with it (the
  crowd's figures are those before it);
- the share of the true gap closed once the crowd had cast ``--budget`` votes
  (default 2,000: a class of 20 playing ten minutes at 6.2 s per answer), a
  figure that compares hand-out orders at the same cost, where a whole run's
  rate counts every puzzle the crowd answers before it leaves.

    python bench/bench_simulate.py [--volumes demo0 demo1 demo2 fib] [--crowds 0.8 0.65] [--seeds 0 1 2]
                                   [--rules weighted] [--players 20] [--cache DIR] [--keep DIR]
                                   [--set NAME=VALUE ...] [--patience SECONDS] [--budget VOTES]

The players do not leave at their first "no puzzle left" but come back every
2 s until none has come for ``--patience`` seconds (default 30), as the play
page does by itself: the decisions' rescans (the living pool) have time to
make new puzzles. The simulated crowd answers in milliseconds, not in 6.2 s,
so without patience (``--patience 0``) it left while the rescans of its last
decisions were still running, and a correct cut they opened was never asked
(demo0: the pool's reach at the end was 0.460 VI where the crowd stopped at
0.505).

Prepared instances are kept in ``--cache`` (default bench/out/sim) and reused;
delete a folder there to prepare it again. The fibsem volume needs
../shared/data and trains a boundary network first (about 5 CPU minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIBSEM = ROOT.parent / "shared" / "data" / "fibsem-gala"
CROWDS = {"0.8": (0.8, 0.1), "0.65": (0.65, 0.3)}  # accuracy, share of players at chance
SPLIT_Z = 35
FIB_THRESHOLD = 0.6  # the agglomeration threshold bench/bench_segment_fibsem.py chose on z < 35
GP_VI_PER_MINUTE = 0.00173
PATIENCE = 30.0  # seconds players keep asking once no puzzle is left (the play page asks again by itself)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(home.parent / "server.log", "w")
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(home), "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    started = time.time()
    for _ in range(6000):
        try:
            reply = requests.get(f"{url}/healthz", timeout=10)
            # ready once this start's own check of the folder is done, not on the copy's earlier "done"
            if reply.status_code == 200 and any(j["name"] == "prepare" and j["state"] == "done" and
                                                j["updated"] >= started for j in reply.json()["jobs"]):
                return process, url
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a loaded machine
            pass
        if process.poll() is not None:
            raise RuntimeError("server exited: see " + str(home.parent / "server.log"))
        time.sleep(0.2)
    process.terminate()
    process.wait()
    raise RuntimeError("server not ready")


def env_for(extra: dict | None = None) -> dict:
    # a simulated crowd answers as fast as the server allows: the per-player vote limit is lifted
    return {**os.environ, "PROOFQUEST_LEADERBOARD_INTERVAL": "1.0", "PROOFQUEST_RATE_LIMITS_ENABLED": "0",
            **(extra or {})}


def prepare_demo(home: Path, seed: int) -> None:
    process, _ = serve(home, env_for({"PROOFQUEST_DEMO_SEED": str(seed)}))  # first start makes it all
    process.terminate()
    process.wait()


def prepare_fib(home: Path, epochs: int) -> None:
    """fibsem z >= 35, segmented with a boundary network fine-tuned on z < 35 alone, then prepared."""
    import h5py

    from game.app import pipeline, training
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.prepare import prepare
    from game.app.settings import load_settings

    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    scratch = Path(tempfile.mkdtemp(prefix="pq-fib-"))
    try:
        for part, z in (("train", slice(0, SPLIT_Z)), ("held", slice(SPLIT_Z, None))):
            for layer, file in (("image", "train-image.h5"), ("gt", "train-gt.lzf.h5")):
                with h5py.File(FIBSEM / file, "r") as f:
                    np.save(scratch / f"{part}-{layer}.npy", f["stack"][z])
        pipeline.import_volume(inst, "fibtrain", image=str(scratch / "train-image.npy"),
                               groundtruth=str(scratch / "train-gt.npy"), resolution=(10, 10, 10))
        model = home / "fib-z-below-35.pt"
        # trained on z < 35 only (its own validation slab lies inside z < 35): z >= 35 is never seen
        training.train_boundary_volume(inst, "fibtrain", epochs=epochs, out=str(model))
        inst.volumes.delete("fibtrain")
        pipeline.import_volume(inst, "fib", image=str(scratch / "held-image.npy"),
                               groundtruth=str(scratch / "held-gt.npy"), resolution=(10, 10, 10))
        pipeline.segment_volume(inst, "fib", model=str(model), threshold=FIB_THRESHOLD)
        # fibsem's own candidates cannot make balanced gold (nearly every join is right, no cut is): players
        # earn their record on the demo's gold, as players of a lab's new volume would; the demo is kept out
        # of play (not live), so the crowd works on fibsem alone
        pipeline.make_demo(inst, "demo", shape=(64, 256, 256), seed=0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    prepare(inst, echo=True)
    st.set_live(inst.store, "demo", False)
    inst.store.close()


def prepared(cache: Path, name: str, epochs: int) -> Path | None:
    home = cache / name / "instance"
    if (cache / name / "ready").exists():
        return home
    shutil.rmtree(cache / name, ignore_errors=True)
    home.mkdir(parents=True)
    print(f"preparing {name} ...", flush=True)
    if name.startswith("demo"):
        prepare_demo(home, int(name[4:]))
    elif name == "fib":
        if not FIBSEM.is_dir():
            print(f"fib skipped: no data at {FIBSEM}")
            return None
        prepare_fib(home, epochs)
    (cache / name / "ready").write_text("")
    return home


def play(home: Path, crowd: str, rule: str, seed: int, players: int, settings: dict | None = None,
         keep: Path | None = None, patience: float = PATIENCE, hard_accuracy: float | None = None) -> dict:
    """One crowd's run on a copy of a prepared instance; with ``keep``, the played copy is moved there
    (its edit log and puzzles for bench/bench_edit_trace.py)."""
    accuracy, chance = CROWDS[crowd]
    scratch = Path(tempfile.mkdtemp(prefix="pq-sim-"))
    copy = scratch / "instance"
    shutil.copytree(home, copy)
    process, url = serve(copy, env_for({"PROOFQUEST_CONSENSUS_RULE": rule, **(settings or {})}))
    try:
        out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(copy), "simulate", "--url", url,
                              "--players", str(players), "--accuracy", str(accuracy), "--chance-share", str(chance),
                              "--seed", str(seed), "--patience", str(patience), "--json", "--expert",
                              *(["--hard-accuracy", str(hard_accuracy)] if hard_accuracy is not None else [])],
                             capture_output=True, text=True, env=env_for())
    finally:
        process.terminate()
        process.wait()
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(copy), str(keep))
    shutil.rmtree(scratch, ignore_errors=True)
    return json.loads(out.stdout)


def vi(m: dict) -> float:
    return m["vi_split"] + m["vi_merge"]


def ratio(per_minute: float | None) -> str:
    """A VI-per-player-minute figure beside Guided Proofreading's ("n/a" when too few curve points)."""
    return "n/a" if per_minute is None else f"{per_minute:.5f} = {per_minute / GP_VI_PER_MINUTE:.2f}x"


def at_budget(r: dict, budget: int) -> dict:
    """The share of the true gap (ARE, VI) closed by the time the crowd had cast ``budget`` votes: the last
    point of the run's curve at or before it (the known answers' gain included, as in the total)."""
    points = [p for p in r.get("curve") or () if p["votes"] <= budget]
    start, limit = r["initial"], r["limit"]
    now = points[-1] if points else {"vi": vi(r["before"]), "adapted_rand_error": r["before"]["adapted_rand_error"]}
    if points and points[-1] is r["curve"][-1]:
        now = {"vi": vi(r["after"]), "adapted_rand_error": r["after"]["adapted_rand_error"]}  # the run ended
    gap_are = start["adapted_rand_error"] - limit["adapted_rand_error"]
    gap_vi = vi(start) - vi(limit)
    return {"adapted_rand_error": (start["adapted_rand_error"] - now["adapted_rand_error"]) / gap_are
            if gap_are else None, "vi": (vi(start) - now["vi"]) / gap_vi if gap_vi else None}


def row(label: str, r: dict, budget: int = 2000) -> str:
    g, d = r["gap_closed"], r["decisions"]
    per_minute, first_quarter = r["vi_per_player_minute"], r.get("vi_per_player_minute_first_quarter")
    early = at_budget(r, budget)
    return (f"{label:<28} ARE {r['initial']['adapted_rand_error']:.4f} → known {r['before']['adapted_rand_error']:.4f}"
            f" → crowd {r['after']['adapted_rand_error']:.4f} (oracle {r['oracle']['adapted_rand_error']:.4f}, limit "
            f"{r['limit']['adapted_rand_error']:.4f})  VI {vi(r['initial']):.3f} → {vi(r['before']):.3f} → "
            f"{vi(r['after']):.3f} (oracle {vi(r['oracle']):.3f}, limit {vi(r['limit']):.3f})  gap closed ARE "
            f"{g['total']['adapted_rand_error']:.0%} (known {g['known_answers']['adapted_rand_error']:.0%}, crowd "
            f"{g['crowd']['adapted_rand_error']:.0%}) VI {g['total']['vi']:.0%} (known {g['known_answers']['vi']:.0%},"
            f" crowd {g['crowd']['vi']:.0%})  votes {r['votes']}  votes/retired {d['votes_per_retired'] or 0:.2f}  "
            f"wrong {d['wrong_share'] or 0:.3f}  expert {d['expert']}/{d['puzzles']}  VI/player-min "
            f"{per_minute if per_minute is not None else float('nan'):.5f} "
            f"({(per_minute or 0) / GP_VI_PER_MINUTE:.2f}x GP; first quarter of the votes {ratio(first_quarter)})  "
            f"after {budget} votes ARE {early['adapted_rand_error'] or 0:.0%} VI "
            f"{early['vi'] or 0:.0%}  puzzles {d['puzzles']}  seconds {r['seconds']}  "
            f"waits {r.get('waits', 0)}" + expert_part(r))


def expert_part(r: dict) -> str:
    """What the expert's decisions on the queue added once the crowd had left (runs without it: nothing)."""
    settled, g = r.get("expert_decisions"), r["gap_closed"]
    if settled is None:
        return ""
    return (f"  expert applied {settled['applied']} rejected {settled['rejected']} → gap closed with the expert ARE "
            f"{g['with_expert']['adapted_rand_error']:.0%} VI {g['with_expert']['vi']:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", nargs="+", default=["demo0", "demo1", "demo2", "fib"])
    parser.add_argument("--crowds", nargs="+", choices=sorted(CROWDS), default=["0.8", "0.65"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="crowd seeds, one run each")
    parser.add_argument("--rules", nargs="+", choices=["weighted", "majority"], default=["weighted"])
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20, help="boundary network fine-tuning on fibsem z < 35")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "sim")
    parser.add_argument("--set", nargs="*", action="extend", default=[], metavar="NAME=VALUE",
                        help="settings for the served game, e.g. MIN_VOTES_TO_REJECT=2 (to compare rules); "
                        "a second --set adds to the first")
    parser.add_argument("--patience", type=float, default=PATIENCE, metavar="SECONDS",
                        help="players keep coming back this long once no puzzle is left (the living pool's "
                             f"rescans make more), as the play page does by itself (default {PATIENCE:g}); 0: they "
                             "leave at their first 'no puzzle left', before the rescans of the last decisions ran")
    parser.add_argument("--hard-accuracy", type=float, default=None, metavar="A",
                        help="the crowd's accuracy on puzzles hard to judge by looking (slivers, islands, gaps at "
                             "the edge), as bench/looking_test.py measures people on them; default the crowd's")
    parser.add_argument("--budget", type=int, default=2000, metavar="VOTES",
                        help="also report the gap closed after this many votes (default 2000)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep each played instance in this folder (KEEP/<volume>-<crowd>-<rule>-s<seed>)")
    args = parser.parse_args()
    settings = {f"PROOFQUEST_{k}": v for k, v in (s.split("=", 1) for s in args.set)}
    results = {}
    for name in args.volumes:
        home = prepared(args.cache, name, args.epochs)
        if home is None:
            continue
        for crowd in args.crowds:
            for rule in args.rules:
                runs = []
                for seed in args.seeds:
                    keep = args.keep / f"{name}-{crowd}-{rule}-s{seed}" if args.keep else None
                    r = play(home, crowd, rule, seed, args.players, settings, keep, args.patience,
                             args.hard_accuracy)
                    results[f"{name} / A={crowd} / {rule} / seed {seed}"] = r
                    runs.append(r)
                    r["at_budget"] = {"votes": args.budget, **at_budget(r, args.budget)}
                    print(row(f"{name} A={crowd} {rule} s{seed}", r, args.budget), flush=True)
                shares = {k: [r["gap_closed"]["total"][k] for r in runs] for k in ("adapted_rand_error", "vi")}
                early = {k: [r["at_budget"][k] or 0 for r in runs] for k in ("adapted_rand_error", "vi")}
                worse = sum(r["after"]["adapted_rand_error"] > r["initial"]["adapted_rand_error"]
                            or vi(r["after"]) > vi(r["initial"]) for r in runs)
                expert = {k: [r["gap_closed"]["with_expert"][k] for r in runs] for k in ("adapted_rand_error", "vi")}
                print(f"{name} A={crowd} {rule}: mean true gap closed ARE {np.mean(shares['adapted_rand_error']):.0%}"
                      f" (min {min(shares['adapted_rand_error']):.0%}), VI {np.mean(shares['vi']):.0%} (min "
                      f"{min(shares['vi']):.0%}); after {args.budget} votes ARE "
                      f"{np.mean(early['adapted_rand_error']):.0%}, VI {np.mean(early['vi']):.0%}; ended worse than "
                      f"the automatic segmentation (ARE or VI): {worse}/{len(runs)}; with the expert's decisions "
                      f"ARE {np.mean(expert['adapted_rand_error']):.0%} (min {min(expert['adapted_rand_error']):.0%}),"
                      f" VI {np.mean(expert['vi']):.0%} (min {min(expert['vi']):.0%})",
                      flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
