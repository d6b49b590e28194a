"""Votes per second with many concurrent Socket.IO clients, beside a bare echo server.

Both servers run as subprocesses on 127.0.0.1 on this machine, in the same
run, driven by the same python-socketio clients, so the ratio between them
is the figure to quote (the clients share the 2 cores with the server).

    python bench/bench_socket.py [--clients 200] [--seconds 20] [--home DIR]

The ProofQuest server runs on a copy of a prepared instance folder (``--home``,
default: a tiny demo made here with hand-made puzzles); every vote is real:
committed, counted by consensus, and acknowledged after the commit.
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
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ECHO_SERVER = textwrap.dedent("""
    import sys
    from flask import Flask
    from flask_socketio import SocketIO
    app = Flask(__name__)
    sio = SocketIO(app, async_mode="threading")

    @sio.on("vote")
    def vote(data):
        return {"ok": True, "puzzle": data.get("puzzle")}

    @sio.on("next_puzzle")
    def next_puzzle(data=None):
        return {"ok": True, "puzzle": {"id": 1}}

    sio.run(app, host="127.0.0.1", port=int(sys.argv[1]), allow_unsafe_werkzeug=True, log_output=False)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, path: str, process) -> None:
    for _ in range(600):
        try:
            if requests.get(url + path, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise RuntimeError("server exited")
        time.sleep(0.1)
    raise RuntimeError("server not ready")


def connect(url: str, login: bool) -> socketio.Client:
    headers = {}
    if login:
        http = requests.Session()
        token = http.get(f"{url}/auth/csrf", timeout=30).json()["csrf_token"]
        http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"}, timeout=30)
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        http.close()  # no idle keep-alive connection (and server thread) per client beside its WebSocket
    client = socketio.Client(reconnection=False)
    client.connect(url, headers=headers, transports=["websocket"], wait_timeout=60)
    return client


def drive(url: str, clients: int, seconds: float, login: bool) -> dict:
    """Each client: ask for a puzzle, vote, repeat; latency is the vote's acknowledgement time."""
    conns = [connect(url, login) for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in conns]
    refused = [0]
    start_gate = threading.Event()
    deadline = [0.0]

    def run(i: int, client: socketio.Client) -> None:
        start_gate.wait()
        while time.perf_counter() < deadline[0]:
            got = client.call("next_puzzle", {}, timeout=120)
            if not got.get("ok"):
                return
            t0 = time.perf_counter()
            answer = ("yes", "no", "unsure")[len(latencies[i]) % 3]
            ack = client.call("vote", {"puzzle": got["puzzle"]["id"], "answer": answer, "ms": 1000,
                                       "ticket": got["puzzle"].get("ticket")}, timeout=120)
            if ack.get("ok"):
                latencies[i].append(time.perf_counter() - t0)
            else:
                refused[0] += 1

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_gate.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    # Disconnect all at once: websocket-client waits up to 3 s for each close handshake, which one
    # by one made a 200-client run spend ten minutes after the measurement had ended.
    closers = [threading.Thread(target=c.disconnect) for c in conns]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
    flat = np.array([x for per in latencies for x in per])
    return {"clients": clients, "votes": int(flat.size), "refused": refused[0], "seconds": round(elapsed, 1),
            "votes_per_s": round(flat.size / elapsed, 1),
            "ack_ms_median": round(float(np.median(flat)) * 1000, 1) if flat.size else None,
            "ack_ms_p99": round(float(np.percentile(flat, 99)) * 1000, 1) if flat.size else None}


def prepared_home(n_puzzles_per_client: int) -> Path:
    from conftest import oracle_puzzles  # the tests' hand-made puzzles need no detector

    from game.app import pipeline
    from game.app.instance import Instance
    from game.app.settings import load_settings

    home = Path(tempfile.mkdtemp(prefix="pq-bench-")) / "instance"
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    pipeline.make_demo(inst, "demo", shape=(32, 128, 128), seed=5)
    oracle_puzzles(inst, n_merge=40, n_split=20)
    inst.store.close()
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--home", help="a prepared instance folder (copied, never changed)")
    parser.add_argument("--only", choices=["echo", "proofquest"], help="measure one server (each runs in its "
                        "own process, so no client state carries over)")
    args = parser.parse_args()
    if args.only is None:
        results = {}
        for which in ("echo", "proofquest"):
            argv = [sys.executable, __file__, "--only", which, "--clients", str(args.clients), "--seconds",
                    str(args.seconds)] + (["--home", args.home] if args.home else [])
            out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
            results[which] = json.loads(out.stdout.strip().splitlines()[-1])
            print(which, json.dumps(results[which]), flush=True)
        results["ratio_votes_per_s"] = round(results["proofquest"]["votes_per_s"] / results["echo"]["votes_per_s"], 3)
        print(json.dumps(results))
        return
    print(json.dumps(measure_echo(args) if args.only == "echo" else measure_game(args)))


def measure_echo(args) -> dict:
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}", "/socket.io/?EIO=4&transport=polling", echo)
        return drive(f"http://127.0.0.1:{port}", args.clients, args.seconds, login=False)
    finally:
        echo.kill()
        echo.wait()


def measure_game(args) -> dict:
    home = Path(tempfile.mkdtemp(prefix="pq-bench-")) / "instance"
    shutil.copytree(args.home or prepared_home(0), home)
    port = free_port()
    # Puzzles never retire here (every client may vote on every puzzle), so the pool never drains;
    # each vote still runs the full path: commit, consensus over all its puzzle's votes, points.
    env = {**os.environ, "PROOFQUEST_LEADERBOARD_INTERVAL": "0.5", "PROOFQUEST_MIN_VOTES": "1000000",
           "PROOFQUEST_MAX_VOTES": "1000000", "PROOFQUEST_BIG_MAX_VOTES": "1000000",
           "PROOFQUEST_RATE_LIMITS_ENABLED": "0"}
    game = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(home), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}", "/healthz", game)
        return drive(f"http://127.0.0.1:{port}", args.clients, args.seconds, login=True)
    finally:
        game.kill()
        game.wait()


if __name__ == "__main__":
    main()
