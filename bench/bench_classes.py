"""Class board latency: how long after a student's answer the projector board shows it.

One class of 40 students answering at once, then 5 classes of 40 at once, each
against its own real server process (``run.py`` on a copy of a prepared
instance folder) on 127.0.0.1, driven by python-socketio clients on this
machine (they share its cores with the server). Every student joins with the
class code and a nickname over HTTP, like a phone, and plays through the
``next_puzzle`` / ``vote`` events; each class's teacher watches the board
(``watch_class``). A vote's latency runs from the moment it is sent to the
arrival of the first ``class_board`` message in which its student's answer
count includes it; also reported: the vote's own acknowledgement time, and
boards that reached a teacher of another class (must be 0).

    python bench/bench_classes.py [--students 40] [--classes 1,5] [--seconds 20] [--think 1.0,3.0]

``--think`` is the range of seconds a student looks at a puzzle before
answering (uniform); ``--think 0,0`` answers as fast as the server allows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_socket import free_port, wait_ready

TEACHER = ("teacher", "teacher password")
MAX_CLASSES = 5


def prepared_home() -> tuple[Path, list[tuple[int, str]]]:
    """A small demo with hand-made puzzles, a teacher and five classes; (home, [(class id, code)])."""
    from conftest import oracle_puzzles

    from game.app import pipeline, players
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.crowd import classes

    home = Path(tempfile.mkdtemp(prefix="pq-bench-classes-")) / "instance"
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    pipeline.make_demo(inst, "demo", shape=(32, 128, 128), seed=5)
    oracle_puzzles(inst, n_merge=40, n_split=20)
    teacher = players.register(inst.store, *TEACHER, role="teacher")
    made = []
    for i in range(MAX_CLASSES):
        cls = classes.create_class(inst.store, teacher, f"Class {i + 1}", code_hours=24)
        made.append((cls["id"], st.current_join_code(inst.store, cls["id"])["code"]))
    inst.store.close()
    return home, made


def _session(url: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    return http, http.get(f"{url}/auth/csrf", timeout=60).json()["csrf_token"]


def _socket(url: str, http: requests.Session) -> socketio.Client:
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    http.close()  # no idle keep-alive connection (and server thread) per client beside its WebSocket
    client = socketio.Client(reconnection=False)
    client.connect(url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=60)
    return client


def join(url: str, code: str, nickname: str) -> tuple[socketio.Client, int]:
    """A student joined from a phone: their socket and player id."""
    http, token = _session(url)
    reply = http.post(f"{url}/join", json={"code": code, "nickname": nickname},
                      headers={"X-CSRFToken": token, "Accept": "application/json"}, timeout=60)
    reply.raise_for_status()
    return _socket(url, http), reply.json()["player"]["id"]


class Watcher:
    """A teacher's board: when each student's answer count was first seen at each value."""

    def __init__(self, url: str, class_id: int):
        http, token = _session(url)
        http.post(f"{url}/auth/login", json={"username": TEACHER[0], "password": TEACHER[1]},
                  headers={"X-CSRFToken": token}, timeout=60).raise_for_status()
        self.http_cookies = dict(http.cookies)
        self.class_id = class_id
        self.seen: dict[tuple[int, int], float] = {}  # (player id, answered) -> first arrival
        self.messages = 0
        self.foreign = 0
        self._lock = threading.Lock()
        self.client = _socket(url, http)
        self.client.on("class_board", self._board)
        assert self.client.call("watch_class", {"class": class_id}, timeout=60)["ok"]

    def _board(self, board: dict) -> None:
        now = time.perf_counter()
        with self._lock:
            if board["class"]["id"] != self.class_id:
                self.foreign += 1
                return
            self.messages += 1
            for row in board["ranking"]:
                for n in range(1, row["answered"] + 1):
                    self.seen.setdefault((row["player_id"], n), now)

    def start_round(self, url: str, seconds: int) -> None:
        http = requests.Session()
        http.cookies.update(self.http_cookies)
        token = http.get(f"{url}/auth/csrf", timeout=60).json()["csrf_token"]
        reply = http.post(f"{url}/classes/{self.class_id}/rounds", json={"seconds": seconds, "puzzle_set": "mixed"},
                          headers={"X-CSRFToken": token, "Accept": "application/json"}, timeout=60)
        reply.raise_for_status()
        http.close()


def run_classes(url: str, made: list[tuple[int, str]], n_classes: int, students: int, seconds: float,
                think: tuple[float, float], seed: int = 0) -> dict:
    watchers = [Watcher(url, class_id) for class_id, _ in made[:n_classes]]
    pupils = []  # (watcher, client, player id)
    for w, (_, code) in zip(watchers, made[:n_classes]):
        for i in range(students):
            pupils.append((w, *join(url, code, f"Student {i + 1}")))
    for w in watchers:
        w.start_round(url, int(seconds) + 120)
    sent: list[list[tuple[float, float]]] = [[] for _ in pupils]  # (sent, acked) of each acknowledged vote
    gate, deadline = threading.Event(), [0.0]

    def play(i: int, client: socketio.Client) -> None:
        rng = random.Random(seed * 1000 + i)
        gate.wait()
        time.sleep(rng.uniform(0, max(think[1], 0.05)))  # students do not all start on the same tick
        while time.perf_counter() < deadline[0]:
            got = client.call("next_puzzle", {}, timeout=120)
            if not got.get("ok"):
                return
            time.sleep(rng.uniform(*think))
            t0 = time.perf_counter()
            ack = client.call("vote", {"puzzle": got["puzzle"]["id"], "answer": rng.choice(("yes", "no")),
                                       "ms": 1500, "ticket": got["puzzle"]["ticket"]}, timeout=120)
            if ack.get("ok"):
                sent[i].append((t0, time.perf_counter()))

    threads = [threading.Thread(target=play, args=(i, c)) for i, (_, c, _) in enumerate(pupils)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    gate.set()
    for t in threads:
        t.join()
    time.sleep(2.0)  # the last boards
    latencies, acks, missing = [], [], 0
    for (w, _, pid), votes in zip(pupils, sent):
        for n, (t_sent, t_ack) in enumerate(votes, 1):
            acks.append(t_ack - t_sent)
            seen = w.seen.get((pid, n))
            if seen is None:
                missing += 1
            else:
                latencies.append(seen - t_sent)
    closers = [threading.Thread(target=c.disconnect) for c in [p[1] for p in pupils] + [w.client for w in watchers]]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
    lat, ack = np.array(latencies), np.array(acks)
    return {"classes": n_classes, "students_per_class": students, "seconds": seconds, "think_s": list(think),
            "votes": len(acks), "boards_received": sum(w.messages for w in watchers),
            "boards_to_other_classes": sum(w.foreign for w in watchers), "votes_never_on_board": missing,
            "board_ms_median": _ms(np.median(lat)) if lat.size else None,
            "board_ms_p99": _ms(np.percentile(lat, 99)) if lat.size else None,
            "ack_ms_median": _ms(np.median(ack)) if ack.size else None,
            "ack_ms_p99": _ms(np.percentile(ack, 99)) if ack.size else None}


def _ms(seconds: float) -> float:
    return round(float(seconds) * 1000, 1)


def measure(home: Path, made, n_classes: int, args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="pq-bench-classes-run-")) / "instance"
    shutil.copytree(home, work)
    port = free_port()
    # Puzzles never retire here, so the pool never drains; each vote still runs the full path.
    env = {**os.environ, "PROOFQUEST_MIN_VOTES": "1000000", "PROOFQUEST_MAX_VOTES": "1000000",
           "PROOFQUEST_BIG_MAX_VOTES": "1000000"}
    server = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(work), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, "/healthz", server)
        return run_classes(url, made, n_classes, args.students, args.seconds, args.think)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=40, help="students per class")
    parser.add_argument("--classes", default="1,5", help="numbers of classes playing at once, one run each")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--think", default="1.0,3.0", help="seconds per puzzle before answering: LOW,HIGH")
    args = parser.parse_args()
    args.think = tuple(float(x) for x in args.think.split(","))
    home, made = prepared_home()
    try:
        for n in (int(c) for c in args.classes.split(",")):
            print(json.dumps(measure(home, made, min(n, MAX_CLASSES), args)), flush=True)
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
