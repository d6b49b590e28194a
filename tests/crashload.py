"""Kill a loaded server and count what survived (shared by tests/test_crash.py and bench/bench_crash.py).

``python run.py`` serves an instance folder; voters (python-socketio clients,
one guest each, all at once) ask for puzzles and answer them, mostly right,
and keep every acknowledgement. The server is sent SIGKILL mid-load and
started again on the same folder; :func:`audit` then reads the database:
every acknowledged vote is there, each puzzle's vote count matches its
votes, no puzzle's edit is in the log twice, every applied decision has its
edit (or none when it no longer fitted) and every edit its decision, and
replaying the edit log on the initial mapping works edit by edit (an edit
that does not fit the state before it raises) and each merge joins what its
puzzle said.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, port: int, **env) -> subprocess.Popen:
    """``python run.py`` on ``home``; returns once ``/healthz`` is 200."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PROOFQUEST_DEMO_SHAPE": "16,96,96",
               "PROOFQUEST_BIG_EDIT_STAKE": "1.0", **{f"PROOFQUEST_{k}": str(v) for k, v in env.items()}}
    with open(home / "server.log", "a") as log:  # the child keeps its own handle
        server = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(home), "--port", str(port)],
                                  cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with requests.Session() as http, http.get(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                if reply.status_code == 200:
                    return server
        except requests.RequestException:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("the server did not become ready:\n" + (home / "server.log").read_text()[-3000:])
        time.sleep(0.1)


def _voter(url: str) -> tuple[int, socketio.Client]:
    with requests.Session() as http:
        token = http.get(f"{url}/auth/csrf", timeout=30).json()["csrf_token"]
        reply = http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"},
                          timeout=30)
        player = reply.json()["player"]["id"]
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    client = socketio.Client(reconnection=False)
    client.connect(url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=30)
    return player, client


def load_and_kill(home: Path, answers: dict[int, str], *, voters: int = 50, kill_after: int = 150,
                  accuracy: float = 0.9, **env) -> dict:
    """Serve ``home``, let ``voters`` vote, SIGKILL the server after ``kill_after`` acknowledgements.

    Returns ``{"acked": [(player, puzzle, answer)], "refused": n, "killed_at": seconds}``.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(home, port, **env)
    acked: list[tuple[int, int, str]] = []
    refused = [0]
    lock = threading.Lock()
    enough = threading.Event()
    try:
        clients = [_voter(url) for _ in range(voters)]
        gate = threading.Event()

        def vote(i: int, player: int, client: socketio.Client) -> None:
            rng = random.Random(i)
            gate.wait()
            try:
                while True:
                    got = client.call("next_puzzle", {}, timeout=20)
                    if not got or not got.get("ok"):
                        return
                    pid = got["puzzle"]["id"]
                    right = answers.get(pid, "unsure")
                    answer = right if rng.random() < accuracy else {"yes": "no", "no": "yes"}.get(right, "yes")
                    ack = client.call("vote", {"puzzle": pid, "answer": answer, "ms": 900,
                                              "ticket": got["puzzle"].get("ticket")}, timeout=20)
                    with lock:
                        if ack and ack.get("ok"):
                            acked.append((player, pid, answer))
                            if len(acked) >= kill_after:
                                enough.set()
                        else:
                            refused[0] += 1
            except (socketio.exceptions.SocketIOError, OSError):
                return  # the server is gone

        threads = [threading.Thread(target=vote, args=(i, p, c), daemon=True) for i, (p, c) in enumerate(clients)]
        for t in threads:
            t.start()
        started = time.perf_counter()
        gate.set()
        enough.wait(timeout=60)
        os.kill(server.pid, signal.SIGKILL)
        killed_at = time.perf_counter() - started
        server.wait()
        for t in threads:
            t.join(timeout=30)
        for _, client in clients:
            threading.Thread(target=client.disconnect, daemon=True).start()  # no close handshake to wait for
        with lock:
            return {"acked": list(acked), "refused": refused[0], "killed_at": killed_at}
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def audit(home: Path, acked: list[tuple[int, int, str]], volume: str = "demo") -> dict:
    """Start the server again on ``home`` and check the database; returns the figures, raises on a breach."""
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.segmentation.agglomeration import Agglomeration, Edit

    port = free_port()
    server = serve(home, port)
    try:
        db = sqlite3.connect(f"file:{home / 'proofquest.sqlite'}?mode=ro", uri=True)
        votes = set(db.execute("SELECT player_id, puzzle_id, answer FROM votes").fetchall())
        lost = [v for v in acked if v not in votes]
        counts = db.execute("SELECT p.id FROM puzzles p WHERE p.n_votes !="
                            " (SELECT COUNT(*) FROM votes v WHERE v.puzzle_id = p.id)").fetchall()
        twice = db.execute("SELECT puzzle_id FROM edits WHERE puzzle_id IS NOT NULL"
                           " GROUP BY volume, puzzle_id HAVING COUNT(*) > 1").fetchall()
        # (a puzzle decided 'apply' whose edit no longer fitted retired without one: edit_seq NULL)
        applied = dict(db.execute("SELECT id, edit_seq FROM puzzles WHERE state = 'retired' AND decision = 1"
                                  " AND edit_seq IS NOT NULL AND volume = ?", (volume,)).fetchall())
        logged = dict(db.execute("SELECT puzzle_id, seq FROM edits WHERE puzzle_id IS NOT NULL AND volume = ?",
                                 (volume,)).fetchall())
        puzzles = {r[0]: r for r in db.execute("SELECT id, kind, anchors, supervoxels FROM puzzles").fetchall()}
        db.close()
        assert not lost, f"{len(lost)} acknowledged votes are not in the database: {lost[:5]}"
        assert not counts, f"puzzles whose vote count is not their votes: {counts[:5]}"
        assert not twice, f"puzzles with their edit in the log twice: {twice[:5]}"
        assert applied == logged, f"applied decisions and logged edits differ: {applied} vs {logged}"
        inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
        log = [Edit.from_dict(row["edit"]) for row in st.edits(inst.store, volume)]
        by_seq = {seq: pid for pid, seq in logged.items()}
        replayed = Agglomeration(inst.volumes.open(volume).load_side("mapping"))
        for seq, edit in enumerate(log):
            replayed.apply(edit)  # raises on an edit that does not fit the state before it (applied twice, half)
            _, kind, anchors, _ = puzzles[by_seq[seq]] if seq in by_seq else (None, None, "[]", None)
            if kind == "merge":
                a, b = json.loads(anchors)
                assert replayed.segment_of(a) == replayed.segment_of(b), f"edit {seq} did not join its puzzle"
        inst.store.close()
        return {"acked": len(acked), "persisted": len(acked) - len(lost), "votes": len(votes), "edits": len(log)}
    finally:
        server.terminate()
        server.wait(timeout=10)


def load_and_kill_in_child(home: Path, answers: dict[int, str], **options) -> dict:
    """:func:`load_and_kill` in a child process: the voters' threads and half-closed sockets end with it."""
    import tempfile
    with tempfile.NamedTemporaryFile("w+", suffix=".json") as io:
        json.dump({"home": str(home), "answers": answers, "options": options}, io)
        io.flush()
        subprocess.run([sys.executable, __file__, io.name], check=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
        io.seek(0)
        run = json.load(io)
    run["acked"] = [tuple(vote) for vote in run["acked"]]
    return run


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        job = json.load(f)
    result = load_and_kill(Path(job["home"]), {int(k): v for k, v in job["answers"].items()}, **job["options"])
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
