"""A demo volume larger than memory, end to end: time and peak memory of every stage.

    python bench/bench_big_volume.py [--shape 256,1024,1024] [--scheduler threads] [--home DIR] [--votes 50]

Stages, each in a process of its own so that its peak resident memory is its
own (``ru_maxrss`` of the finished child): *demo* (the volume generated block
by block, its classical boundary filtered blockwise, watershed in slabs, the
region graph, the agglomeration, the truth table: ``run.py demo``, with the
time of each part from its progress bars), *detect* (the living pool's first
start: candidates, frames, known answers, the crowd's puzzles and their
pictures), *play* (``run.py`` serving it, a client answering ``--votes``
puzzles; the server's peak), *export* (``run.py export --what labels``, slab
by slab, to zarr and to HDF5). The last line printed is JSON.

Measured on this code (8ed9e7a) on 2 cores, this script at nice 15 beside lighter work (load about 2),
dask's two threads; ``--shape 256,1024,1024 --votes 20``; peak resident memory in GiB, wall seconds:

=========  =======  ====  ==========================================================================
stage      seconds  peak  parts (s)
=========  =======  ====  ==========================================================================
demo       440      6.97  volume 149, boundary filter 13, watershed 261, region graph 14, truth 2
detect     373      1.83  detecting 109, framing the known sample 103, their pictures 3,
                          detecting again 127, framing the crowd's 29
play       2.6      0.36  ready 2.5 s, 20 puzzles each fetched, pictured and answered: 4.8 ms median
export     6.3 / 7  0.43  zarr 24 MB (slabs as dask tasks), HDF5 31 MB (0.32 GiB)
=========  =======  ====  ==========================================================================

130,552 supervoxels, 502,359 RAG edges, 5,480 segments; 1,000 open crowd puzzles (POOL_OPEN), 36 secret
gold, 12 teach, 8 practice; 28 edits (the known answers). The demo's peak is the watershed: two 64-section
slabs (``WATERSHED_BLOCK_VOXELS``) flooded at once, about 3.5 GiB each; it grows with dask's workers, not
with the volume. The first such run (stop 20's code, the machine under load 4-18) took 4,370 s for demo and
1,178 s for detect, with the same peaks within 0.1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# Run as the child of a stage: the command line's main (or the first start's preparation, "prepare"), with
# the progress bars' descriptions marking where each part starts; prints the parts and its own peak memory.
HARNESS = """
import json, resource, sys, time
from game import cli
marks = []
class Bar:
    def __init__(self, desc): marks.append((desc, time.perf_counter()))
    def __call__(self, done, total): pass
    def close(self): pass
cli.progress_factory = lambda enabled=True: Bar
if sys.argv[1] == "prepare":
    from game.app.instance import Instance
    from game.app.prepare import prepare
    prepare(Instance(sys.argv[2]), progress=Bar)
    code = 0
else:
    code = cli.main(sys.argv[1:])
marks.append(("end", time.perf_counter()))
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print("PARTS " + json.dumps({"parts_s": [(d, round(b - a, 1)) for (d, a), (_, b) in zip(marks, marks[1:])],
                             "peak_rss_gb": round(peak / 2**20, 2)}))
sys.exit(code)
"""


def stage(args: list[str], env: dict) -> dict:
    """Run a stage's child; its wall time, peak resident memory and the parts its progress bars marked."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", HARNESS, *args], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{(out.stdout + out.stderr)[-3000:]}")
    found = [json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("PARTS ")][0]
    return {"seconds": round(time.perf_counter() - started, 1), **found}


def peak_of(child: subprocess.Popen) -> float:
    """Peak resident memory (GB) of a running child, from /proc (VmHWM)."""
    with open(f"/proc/{child.pid}/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return round(int(line.split()[1]) / 2**20, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="256,1024,1024")
    parser.add_argument("--scheduler", default="threads", help="dask scheduler of the blockwise stages")
    parser.add_argument("--home", help="instance folder (default: a new temporary one, removed at the end)")
    parser.add_argument("--votes", type=int, default=50)
    args = parser.parse_args()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="pq-big-")) / "instance"
    # Pictures are drawn on request here (PRERENDER=0): drawing every puzzle of a volume this size ahead of time
    # is hours of a background worker's time, not memory, and would hide the stages' own figures.
    env = {**os.environ, "PROOFQUEST_HOME": str(home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PROOFQUEST_PRERENDER": "0"}
    report = {"shape": [int(x) for x in args.shape.split(",")], "scheduler": args.scheduler, "stages": {}}
    report["voxels"] = int(report["shape"][0] * report["shape"][1] * report["shape"][2])
    stages = report["stages"]
    try:
        stages["demo"] = stage(["--home", str(home), "demo", "--shape", args.shape, "--scheduler", args.scheduler],
                               env)
        print("demo", json.dumps(stages["demo"]), flush=True)
        stages["detect"] = stage(["prepare", str(home)], env)
        print("detect", json.dumps(stages["detect"]), flush=True)
        stages["play"] = play(home, env, args.votes)
        print("play", json.dumps(stages["play"]), flush=True)
        for fmt in ("zarr", "h5"):
            out = home.parent / f"labels.{fmt}"
            stages[f"export_{fmt}"] = stage(["--home", str(home), "export", "demo", "--what", "labels",
                                             "--format", fmt, "--out", str(out)], env)
            stages[f"export_{fmt}"]["bytes"] = sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() \
                else out.stat().st_size
            print(f"export_{fmt}", json.dumps(stages[f"export_{fmt}"]), flush=True)
    finally:
        report["peak_rss_gb_max"] = max((s["peak_rss_gb"] for s in stages.values()), default=None)
        report["load_average"] = os.getloadavg()
        print(json.dumps(report))
        if not args.home:
            shutil.rmtree(home.parent, ignore_errors=True)


def play(home: Path, env: dict, votes: int) -> dict:
    """Serve the volume and answer ``votes`` puzzles as one player; the server's peak memory and the answers'."""
    import requests
    from conftest import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--home", str(home), "--port", str(port)],
                              env={**env, "PROOFQUEST_RATE_LIMITS_ENABLED": "0"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    try:
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None:
                raise SystemExit("the server exited")
            time.sleep(0.5)
        ready = time.perf_counter() - started
        latencies = []
        with requests.Session() as http:
            token = http.get(f"{url}/auth/csrf", timeout=60).json()["csrf_token"]
            # Logging in begins a fresh session: its form token is the one the login answers with.
            token = http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"},
                              timeout=60).json()["csrf_token"]
            for _ in range(votes):
                t0 = time.perf_counter()
                puzzle = http.get(f"{url}/api/puzzle/next", timeout=120).json()["puzzle"]
                http.get(f"{url}/puzzle-image/{puzzle['id']}/{puzzle['center']}/overlay.png",
                         params={"v": puzzle["picture"]}, timeout=120).raise_for_status()
                reply = http.post(f"{url}/api/vote", json={"puzzle": puzzle["id"], "answer": "unsure", "ms": 1000,
                                                           "ticket": puzzle["ticket"]},
                                  headers={"X-CSRFToken": token}, timeout=120).json()
                assert reply["ok"], reply
                latencies.append(time.perf_counter() - t0)
        latencies.sort()
        return {"ready_s": round(ready, 1), "votes": len(latencies),
                "puzzle_image_vote_ms_p50": round(1e3 * latencies[len(latencies) // 2], 1),
                "peak_rss_gb": peak_of(server), "seconds": round(time.perf_counter() - started, 1)}
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
