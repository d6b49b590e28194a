"""Votes per second with many concurrent Socket.IO clients, beside a bare echo server, in one run.

Both servers run as subprocesses on 127.0.0.1, driven by the same
python-socketio clients, so the ratio between them is the figure to quote:
the clients share the machine's cores with the servers. The clients live in
``--client-processes`` processes of their own (default one per 250 clients),
each client a greenlet of gevent (a thread per client, as before, established
only 95 of 1,000 clients in one process). With ``--processes N`` each server
is N processes sharing their Socket.IO rooms through a Redis message queue (a
``redis-server`` started here on 127.0.0.1), the echo's too, and client ``i``
talks to process ``i mod N`` (as a proxy with sticky sessions would spread
them).

    python bench/bench_socket.py [--clients 200] [--seconds 20] [--processes 1] [--client-processes K]
                                 [--async-mode gevent] [--profile DIR]

Every ProofQuest vote is real: committed, counted by consensus, acknowledged
after the commit. The clients play as perfect players (the bench knows its
puzzles' truth): a warm-up phase lasts until each has answered enough secret
gold puzzles to be *established* (``ESTABLISHED_GOLD_ANSWERS`` = 2 here, 20 by
default), so that every vote of the measured phase counts in consensus. The
server runs with its rate limits off (``RATE_LIMITS_ENABLED=0``: 200 guests
from one address and 90 votes a minute per player would be refused) and with
puzzles that never retire (``MIN_VOTES`` huge, so the pool does not drain in
seconds): each vote still runs the full path, ticket, commit, consensus over
all its puzzle's counted votes, points, leaderboard, and the choice of the
player's next puzzle, which the vote's acknowledgement carries (``next``, as
the play page asks; ``--separate-next``: a ``next_puzzle`` call before each
vote, as the page did before). At the end the bench
checks the database: every acknowledged vote is a row, every voter counted.

Beside calls per second, the bench reads each server's CPU time (Linux's
/proc) over the measured phase: on a shared machine the calls per second
follow the CPU a server is given, its CPU per call does not.
``ratio_cpu_per_call`` (the echo's CPU per call over ProofQuest's) is the
ratio of calls per second when each server has the same CPU to itself.

``--profile DIR`` samples the (first) ProofQuest process with py-spy during
the measured phase and writes its flame graph and the functions where the
most samples were (``py-spy`` on PATH, or PY_SPY=/path/to/py-spy).
"""

import sys

if __name__ == "__main__" and "--clients-of" in sys.argv:
    from gevent import monkey  # a client process: every client a greenlet, patched before anything is imported

    monkey.patch_all()

import argparse
import collections
import contextlib
import json
import os
import select
import shutil
import socket
import sqlite3
import subprocess
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

CALL_TIMEOUT = 60  # seconds a client waits for an acknowledgement before it stops playing (counted as refused)
ECHO_SERVER = textwrap.dedent("""
    import sys
    mode, port, queue = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
    if mode == "gevent":
        from gevent import monkey; monkey.patch_all()
    from flask import Flask
    from flask_socketio import SocketIO
    app = Flask(__name__)
    sio = SocketIO(app, async_mode=mode, message_queue=queue)

    @sio.on("vote")
    def vote(data):
        return {"ok": True, "puzzle": data.get("puzzle")}

    @sio.on("next_puzzle")
    def next_puzzle(data=None):
        return {"ok": True, "puzzle": {"id": 1}}

    sio.run(app, host="127.0.0.1", port=port, log_output=False,
            **({"allow_unsafe_werkzeug": True} if mode == "threading" else {}))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, path: str, process, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url + path, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise RuntimeError("server exited")
        time.sleep(0.1)
    raise RuntimeError("server not ready")


def connect(url: str, login: bool) -> socketio.Client:
    headers = {}
    if login:
        http = requests.Session()
        token = http.get(f"{url}/auth/csrf", timeout=60).json()["csrf_token"]
        http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"}, timeout=60)
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        http.close()  # no idle keep-alive connection (and server thread) per client beside its WebSocket
    client = socketio.Client(reconnection=False)
    client.connect(url, headers=headers, transports=["websocket"], wait_timeout=120)
    return client


def connect_all(urls: list[str], first: int, count: int, login: bool) -> list[socketio.Client]:
    """Clients ``first`` .. ``first + count - 1``, client i to ``urls[i % len(urls)]``, made 20 at a time."""
    conns: list[socketio.Client | None] = [None] * count
    lock = threading.Lock()
    queue = list(range(count))

    def work():
        while True:
            with lock:
                if not queue:
                    return
                j = queue.pop()
            conns[j] = connect(urls[(first + j) % len(urls)], login)

    workers = [threading.Thread(target=work) for _ in range(min(20, count))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if any(c is None for c in conns):
        raise RuntimeError("some clients could not connect")
    return conns


class Play:
    """Each client: ask for a puzzle, answer it (correctly when the truth is known), repeat.

    ``phase`` is "warm-up" until :meth:`measure` starts the measured phase;
    latencies count only there: the vote's acknowledgement time.
    """

    def __init__(self, conns: list[socketio.Client], truth: dict[int, str], separate_next: bool = False):
        self.conns, self.truth, self.separate_next = conns, truth, separate_next
        self.latencies: list[list[float]] = [[] for _ in conns]
        self.acked = 0
        self.refused: collections.Counter = collections.Counter()
        self.measuring = threading.Event()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i, c)) for i, c in enumerate(conns)]
        for t in self.threads:
            t.start()

    def _run(self, i: int, client: socketio.Client) -> None:
        try:
            self._play(i, client)
        except socketio.exceptions.SocketIOError as exc:  # a call unanswered for CALL_TIMEOUT, a lost connection
            with self._lock:
                self.refused[f"client gave up: {type(exc).__name__}"] += 1

    def _play(self, i: int, client: socketio.Client) -> None:
        n, puzzle = 0, None
        while not self.stop.is_set():
            if puzzle is None:  # the first, or every one with --separate-next
                got = client.call("next_puzzle", {}, timeout=CALL_TIMEOUT)
                if not got.get("ok"):
                    with self._lock:
                        self.refused[got.get("error", "?")[:60]] += 1
                    return
                puzzle = got["puzzle"]
            answer = self.truth.get(puzzle["id"]) or ("yes", "no")[n % 2]
            n += 1
            measured = self.measuring.is_set()
            t0 = time.perf_counter()
            vote = {"puzzle": puzzle["id"], "answer": answer, "ms": 1000, "ticket": puzzle.get("ticket")}
            if not self.separate_next:  # as the play page does: the acknowledgement carries the next puzzle
                vote["next"] = {"exclude": [puzzle["id"]]}
            ack = client.call("vote", vote, timeout=CALL_TIMEOUT)
            took = time.perf_counter() - t0
            puzzle = ack.get("next")
            with self._lock:
                if ack.get("next_error"):
                    self.refused[f"next: {ack['next_error'][:54]}"] += 1
                if ack.get("ok"):
                    self.acked += 1
                    if measured and self.measuring.is_set():
                        self.latencies[i].append(took)
                else:
                    self.refused[ack.get("error", "?")[:60]] += 1

    def measure(self, seconds: float) -> dict:
        """Measure for ``seconds``, stop, disconnect; the acknowledgement times of the measured votes."""
        self.measuring.set()
        time.sleep(seconds)
        self.measuring.clear()
        self.stop.set()
        for t in self.threads:
            t.join()
        # Disconnect all at once: websocket-client waits up to 3 s for each close handshake.
        closers = [threading.Thread(target=c.disconnect) for c in self.conns]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        return {"latencies": [x for per in self.latencies for x in per], "acked_in_all": self.acked,
                "refused": dict(self.refused)}


def client_process(args) -> None:
    """One client process (``--clients-of``): connect, say so, play; measure when told on stdin, report."""
    truth = {int(k): v for k, v in json.loads(Path(args.truth).read_text()).items()} if args.truth else {}
    conns = connect_all(args.clients_of.split(","), args.first, args.clients, login=bool(truth))
    play = Play(conns, truth, separate_next=args.separate_next)
    print("connected", len(conns), flush=True)
    select.select([sys.stdin], [], [])  # gevent's: the clients play while this waits (a read would block them)
    command = sys.stdin.readline().split()  # "measure SECONDS"
    print(json.dumps(play.measure(float(command[1]))), flush=True)


def run_clients(urls: list[str], clients: int, processes: int, truth_file: Path | None,
                logs: Path, separate_next: bool = False) -> list[subprocess.Popen]:
    """Start the client processes (client i of ``clients`` in process ``i * processes // clients``; each
    process's errors in ``logs/clients-K.log``) and wait until each has connected its clients."""
    bounds = [clients * k // processes for k in range(processes + 1)]
    logs.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([sys.executable, __file__, "--clients-of", ",".join(urls), "--first", str(lo),
                               "--clients", str(hi - lo), "--truth", str(truth_file or "")]
                              + (["--separate-next"] if separate_next else []),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              stderr=open(logs / f"clients-{k}.log", "w"))
             for k, (lo, hi) in enumerate(zip(bounds, bounds[1:])) if hi > lo]
    for p in procs:
        line = p.stdout.readline()
        if not line.startswith("connected"):
            stop(procs)
            raise RuntimeError(f"a client process failed to connect its clients (exit {p.poll()}; see {logs})")
    return procs


def check_alive(procs: list[subprocess.Popen], logs: Path) -> None:
    """Stop the bench when a client process has died (its clients no longer play)."""
    dead = [p for p in procs if p.poll() is not None]
    if dead:
        raise RuntimeError(f"a client process exited ({dead[0].returncode}) before the measurement; see {logs}")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux's /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def measure_clients(procs: list[subprocess.Popen], seconds: float, servers: list[int]) -> dict:
    """Tell every client process to measure for ``seconds``; their votes per second and latencies together,
    and the CPU time the ``servers`` spent per acknowledged call meanwhile (on a shared machine the calls per
    second follow the CPU the servers were given; the CPU per call does not)."""
    for p in procs:
        p.stdin.write(f"measure {seconds}\n")
        p.stdin.flush()
    cpu = cpu_seconds(servers)
    time.sleep(seconds)
    cpu = cpu_seconds(servers) - cpu
    reports = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait(timeout=120)
    flat = np.array([x for r in reports for x in r["latencies"]])
    refused: collections.Counter = collections.Counter()
    for r in reports:
        refused.update(r["refused"])
    return {"calls": int(flat.size), "seconds": seconds, "calls_per_s": round(flat.size / seconds, 1),
            "ack_ms_median": round(float(np.median(flat)) * 1000, 1) if flat.size else None,
            "ack_ms_p99": round(float(np.percentile(flat, 99)) * 1000, 1) if flat.size else None,
            "server_cpu_ms_per_call": round(cpu * 1000 / flat.size, 2) if flat.size else None,
            "server_cpu_share": round(cpu / seconds, 2),
            "acked_in_all": sum(r["acked_in_all"] for r in reports), "refused": dict(refused)}


def prepared_home(merges: int = 120, splits: int = 40) -> Path:
    """A demo volume with hand-made puzzles (no detector needed), every fourth secret gold."""
    from conftest import oracle_puzzles

    from game.app import pipeline
    from game.app.instance import Instance
    from game.app.prepare import prepare
    from game.app.settings import load_settings

    home = Path(tempfile.mkdtemp(prefix="pq-bench-")) / "instance"
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    pipeline.make_demo(inst, "demo", shape=(32, 192, 192), seed=5)
    oracle_puzzles(inst, n_merge=merges, n_split=splits)
    # the pictures are drawn now, as a served instance has them: otherwise the server's start draws them while
    # it is measured (a fifth of its samples in py-spy's profile)
    prepare(inst)
    inst.store.close()
    return home


def wait_prepared(home: Path, since: float, seconds: float = 600) -> None:
    """Wait until the server's start has finished its jobs (checking the folder, drawing missing pictures)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(home / "proofquest.sqlite", timeout=30)) as db:
            done = {name for name, state, updated in db.execute("SELECT name, state, updated FROM jobs")
                    if state == "done" and updated >= since}
            shown = db.execute("SELECT count(*) FROM puzzles WHERE state = 'open' OR gold OR tutorial").fetchone()[0]
        if {"prepare", "pictures"} <= done or ("prepare" in done and not shown):
            return
        time.sleep(0.5)
    raise RuntimeError("the server's start did not finish its jobs")


def truth_of(home: Path) -> dict[int, str]:
    """The right answer of every puzzle with known truth (the bench's clients play perfectly)."""
    from game.puzzles.edit import correct_answer
    with sqlite3.connect(home / "proofquest.sqlite") as db:
        rows = db.execute("SELECT id, kind, truth FROM puzzles WHERE truth IS NOT NULL").fetchall()
    return {i: correct_answer(kind, bool(truth)) for i, kind, truth in rows}


def start_redis() -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--processes > 1 needs redis-server (Debian: apt-get install redis-server)")
    port = free_port()
    redis = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return redis, f"redis://127.0.0.1:{port}"
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def stop(processes) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    binary = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if binary is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy) on PATH or PY_SPY=/path/to/py-spy")
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([binary, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                             "--format", "raw", "--output", str(out / "profile.txt"), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 25) -> list[tuple[str, float]]:
    """Share of samples in which each function is on the stack (inclusive), from py-spy's collapsed stacks."""
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] += n
    return [(frame, round(n / total, 3)) for frame, n in inclusive.most_common(top)]


def measure(args, which: str) -> dict:
    n = args.processes
    redis, queue = start_redis() if n > 1 else (None, "")
    procs, client_procs = [], []
    try:
        ports = [free_port() for _ in range(n)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        if which == "echo":
            for port in ports:
                procs.append(subprocess.Popen([sys.executable, "-c", ECHO_SERVER, args.async_mode, str(port), queue],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for url, p in zip(urls, procs):
                wait_ready(url, "/socket.io/?EIO=4&transport=polling", p)
            truth, home = {}, None
        else:
            home = Path(tempfile.mkdtemp(prefix="pq-bench-")) / "instance"
            shutil.copytree(args.home or prepared_home(), home)
            truth = truth_of(home)
            env = {**os.environ, "PROOFQUEST_LEADERBOARD_INTERVAL": "0.5", "PROOFQUEST_MIN_VOTES": "1000000",
                   "PROOFQUEST_MAX_VOTES": "1000000", "PROOFQUEST_BIG_MAX_VOTES": "1000000",
                   "PROOFQUEST_ESTABLISHED_GOLD_ANSWERS": "2", "PROOFQUEST_ESTABLISHED_ALPHA": "0.4",
                   "PROOFQUEST_RATE_LIMITS_ENABLED": "0",
                   "PROOFQUEST_MESSAGE_QUEUE": queue, "PROOFQUEST_ASYNC_MODE": args.async_mode}
            log = open(home.parent / "server.log", "w")
            launched = time.time()
            for port in ports:
                procs.append(subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(home), "--port",
                                               str(port)], env=env, stdout=log, stderr=subprocess.STDOUT))
            for url, p in zip(urls, procs):
                wait_ready(url, "/healthz", p)
            wait_prepared(home, launched)
        truth_file = None
        if truth:
            truth_file = home.parent / "truth.json"
            truth_file.write_text(json.dumps(truth))
        started = time.perf_counter()
        logs = Path(tempfile.mkdtemp(prefix="pq-bench-clients-"))
        client_procs = run_clients(urls, args.clients, args.client_processes, truth_file, logs,
                                   separate_next=args.separate_next)
        connected = round(time.perf_counter() - started, 1)
        warm = warm_up(home, args, lambda: check_alive(client_procs, logs))
        spy = profile(procs[0].pid, args.seconds, Path(args.profile)) if args.profile and which == "proofquest" \
            else None
        check_alive(client_procs, logs)
        result = {"server": which, "processes": n, "async_mode": args.async_mode, "clients": args.clients,
                  "client_processes": len(client_procs), "connect_s": connected, "warm_up_s": warm,
                  **measure_clients(client_procs, args.seconds, [p.pid for p in procs])}
        if spy is not None:
            spy.wait(timeout=120)
            result["profile"] = summarize_profile(Path(args.profile) / "profile.txt")
        if home is not None:
            result.update(audit(home, result["acked_in_all"]))
        return result
    finally:
        stop(client_procs)
        stop(procs)
        if redis is not None:
            stop([redis])


def warm_up(home: Path | None, args, check) -> float:
    """Play until every ProofQuest client is established (at least ``--warm-up`` seconds); ``check()`` raises
    when the clients cannot get there."""
    started = time.perf_counter()
    time.sleep(args.warm_up)
    while home is not None and time.perf_counter() - started < 300:
        check()
        with sqlite3.connect(home / "proofquest.sqlite", timeout=30) as db:
            waiting = db.execute("SELECT COUNT(*) FROM players p WHERE established = 0"
                                 " AND EXISTS (SELECT 1 FROM votes v WHERE v.player_id = p.id)").fetchone()[0]
        if waiting == 0:
            break
        time.sleep(0.5)
    return round(time.perf_counter() - started, 1)


def audit(home: Path, acked: int) -> dict:
    """Every acknowledged vote is in the database, and every voter's votes count."""
    with sqlite3.connect(home / "proofquest.sqlite", timeout=30) as db:
        rows = db.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
        uncounted = db.execute("SELECT COUNT(*) FROM players WHERE established = 0 OR suspended = 1").fetchone()[0]
    return {"votes_in_db": rows, "all_acked_votes_in_db": rows == acked, "players_not_counted": uncounted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-up", type=float, default=5, help="seconds of play before measuring (at least)")
    parser.add_argument("--processes", type=int, default=1, help="server processes (a Redis queue when > 1)")
    parser.add_argument("--async-mode", default="gevent", choices=["threading", "gevent"],
                        help="both servers run so (the game's default, ASYNC_MODE, is gevent)")
    parser.add_argument("--home", help="a prepared instance folder (copied, never changed)")
    parser.add_argument("--profile", help="folder for py-spy's samples of the ProofQuest server")
    parser.add_argument("--client-processes", type=int, help="processes the clients run in (default: one per "
                        "250 clients)")
    parser.add_argument("--only", choices=["echo", "proofquest"], help="measure one server (each runs with its "
                        "own clients process, so no client state carries over)")
    parser.add_argument("--separate-next", action="store_true", help="ask for each puzzle with next_puzzle, two "
                        "calls per vote (by default a vote's acknowledgement carries the next puzzle, as the play page "
                        "asks from its second answer on)")
    parser.add_argument("--clients-of", help=argparse.SUPPRESS)  # a client process: the servers' URLs
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients_of:
        client_process(args)
        return
    args.client_processes = args.client_processes or max(1, round(args.clients / 250))
    if args.only is not None:
        print(json.dumps(measure(args, args.only)))
        return
    results = {}
    for which in ("echo", "proofquest"):
        argv = [sys.executable, __file__, "--only", which] + [a for a in sys.argv[1:]]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if out.returncode:
            raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
        print(which, json.dumps(results[which]), flush=True)
    game, echo = results["proofquest"], results["echo"]
    if not (game["calls"] and echo["calls"]):
        raise SystemExit("a server acknowledged no call in the measured phase (see 'refused' above)")
    results["ratio_calls_per_s"] = round(game["calls_per_s"] / echo["calls_per_s"], 3)
    results["ratio_p99"] = round(game["ack_ms_p99"] / echo["ack_ms_p99"], 3)
    # calls per second if each server had the machine's CPU to itself: the ratio a shared machine cannot bend
    results["ratio_cpu_per_call"] = round(echo["server_cpu_ms_per_call"] / game["server_cpu_ms_per_call"], 3)
    results["load_average"] = os.getloadavg()
    print(json.dumps({k: results[k] for k in ("ratio_calls_per_s", "ratio_p99", "ratio_cpu_per_call",
                                              "load_average")}))


if __name__ == "__main__":
    main()
