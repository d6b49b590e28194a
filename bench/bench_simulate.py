"""The crowd's effect on the demo volume: weighted consensus beside plain majority.

For each crowd (accuracy 0.8 with 10% of players at chance; accuracy 0.65 with
30% at chance) and each rule, a fresh copy of one prepared instance is served
by ``python run.py`` and played by ``python run.py simulate`` (20 python-socketio
players). Reports the share of the oracle's improvement in adapted Rand error,
votes per retired puzzle and the share of retired puzzles decided wrongly.

    python bench/bench_simulate.py [--home PREPARED] [--players 20] [--votes-per-player 60]
                                   [--crowds 0.8 0.65] [--rules weighted majority] [--seeds 0 1 2]

Without ``--home`` it prepares a default-size demo instance first (a few minutes).
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

import requests

ROOT = Path(__file__).resolve().parents[1]
CROWDS = {"A=0.80, 10% at chance": (0.8, 0.1), "A=0.65, 30% at chance": (0.65, 0.3)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(home), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(3000):
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise RuntimeError("server exited")
        time.sleep(0.2)
    raise RuntimeError("server not ready")


def prepare(env: dict) -> Path:
    home = Path(tempfile.mkdtemp(prefix="pq-sim-")) / "instance"
    process, _ = serve(home, env)  # the first start builds the demo volume and its puzzles
    process.terminate()
    process.wait()
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", help="a prepared instance folder (copied, never changed)")
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--votes-per-player", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="crowd seeds: one run per seed; with several, the mean share is printed too")
    parser.add_argument("--crowds", nargs="+", choices=["0.8", "0.65"], default=["0.8", "0.65"],
                        help="which crowds to run (by accuracy)")
    parser.add_argument("--rules", nargs="+", choices=["weighted", "majority"], default=["weighted", "majority"])
    args = parser.parse_args()
    base_env = {**os.environ, "PROOFQUEST_LEADERBOARD_INTERVAL": "1.0"}
    prepared = Path(args.home) if args.home else prepare(base_env)
    results = {}
    for crowd, (accuracy, chance) in CROWDS.items():
        if f"{accuracy:g}" not in args.crowds:
            continue
        for rule, seed in [(r, s) for r in args.rules for s in args.seeds]:
            home = Path(tempfile.mkdtemp(prefix="pq-sim-")) / "instance"
            shutil.copytree(prepared, home)
            process, url = serve(home, {**base_env, "PROOFQUEST_CONSENSUS_RULE": rule})
            try:
                out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "simulate", "--url",
                                      url, "--players", str(args.players), "--accuracy", str(accuracy),
                                      "--chance-share", str(chance), "--votes-per-player",
                                      str(args.votes_per_player), "--seed", str(seed), "--json"],
                                     capture_output=True, text=True, check=True)
            finally:
                process.terminate()
                process.wait()
            r = json.loads(out.stdout)
            key = "adapted_rand_error"
            possible = r["before"][key] - r["oracle"][key]
            r["oracle_share"] = (r["before"][key] - r["after"][key]) / possible if possible > 0 else None
            results[f"{crowd} / {rule} / seed {seed}"] = r
            d = r["decisions"]
            print(f"{crowd:<24} {rule:<9} seed {seed}  ARE before {r['before'][key]:.4f} after {r['after'][key]:.4f} "
                  f"oracle {r['oracle'][key]:.4f}  share {r['oracle_share']:.2f}  votes {r['votes']}  "
                  f"votes/retired {d['votes_per_retired']:.2f}  wrong {d['wrong_share']:.3f}  "
                  f"expert {d['expert']}/{d['puzzles']}", flush=True)
    if len(args.seeds) > 1:
        for key in dict.fromkeys(k.rsplit(" / seed", 1)[0] for k in results):
            runs = [r for k, r in results.items() if k.startswith(key + " / seed")]
            shares = [r["oracle_share"] for r in runs]
            worse = sum(r["after"]["adapted_rand_error"] > r["before"]["adapted_rand_error"] for r in runs)
            print(f"{key:<36} mean share {sum(shares) / len(shares):.2f} (min {min(shares):.2f}, max "
                  f"{max(shares):.2f})  ended worse than it started: {worse}/{len(runs)}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
