"""Puzzle rendering on real EM: time per puzzle, PNG sizes, cached and uncached file access.

Puzzles are merge puzzles between touching ground-truth objects of the
FIB-SEM volume in ../shared/data/fibsem-gala (two objects touch where they
face each other across one membrane), the ones with the largest contacts
first. Each puzzle is 7 slices, rendered plain and with the overlay, at each
in-plane window size; the volume (100 px high) is extended to 200 px by
wrapping, so that 144 and 192 px windows hold EM everywhere, as they would in
a larger volume (zero padding would flatter the PNG sizes). The cache part times ``PuzzleImageCache.get``: the first
request of a puzzle (render and write all its files) and repeated requests of
rendered slices. The example overlay of the best-contact puzzle (its key
slice, framed by ``frame_decision`` as a puzzle is) is written to docs/puzzle-example.png. (snemi-mini ships
no raw EM, only a membrane probability map, so the real-EM figures are fibsem-gala's.)

Run: .venv/bin/python bench/bench_puzzles.py [--puzzles 12] [--gets 2000] [--seed 0]
The last line printed is JSON.

``--demo`` (no shared data needed) times what the game itself does on a generated demo volume whose pool
made its puzzles (pictures not drawn ahead): ``images.puzzle_image`` for a crowd puzzle's key slice when its
pictures are not drawn yet (*uncached*: reading its crop of the volume, colouring its parts and drawing and
writing the whole 7-slice stack, plain and overlay, 14 PNGs), then for its other slices (*cached*: the files
are there); the same for the pair picture of every puzzle that has one. It prints p50 and p95, the PNG bytes
per stack, and the machine's load; with the uncached p50 the process's CPU time per request, which is
about what the request takes on an idle machine (on a loaded one the wall-clock time waits for a core too).

    .venv/bin/python bench/bench_puzzles.py --demo [--shape 32,160,160] [--stacks 40]

``--served`` measures what a player waits for instead (no shared data needed):
a real server (``run.py``) over a generated demo volume whose pool made its
puzzles, a client that asks for puzzles and fetches each one's 7-slice stack
(plain and overlay, 14 PNGs) over HTTP. Once with ``PRERENDER`` off (the
first request of a puzzle draws it: *uncached*), once with the pictures drawn
when the pool made the puzzles (*cached*, as the game runs by default), and
how long drawing them ahead took per puzzle. The Chromium player's per-image
requests are the same GETs.

    .venv/bin/python bench/bench_puzzles.py --served [--shape 32,160,160] [--stacks 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.geometry import BBox
from game.puzzles.cache import PuzzleImageCache
from game.puzzles.framing import KEY, SLICES, WINDOW_LIMITS, frame_decision
from game.puzzles.render import render_slices

DATA = ROOT.parent / "shared" / "data" / "fibsem-gala"
WINDOW_SIZES = (64, 96, 144, 192)  # 64 is below WINDOW_LIMITS, for comparison


def load() -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(DATA / "train-image.h5") as f:
        image = f["stack"][:]
    with h5py.File(DATA / "train-gt.lzf.h5") as f:
        truth = f["stack"][:]
    return image, truth


def contacts(truth: np.ndarray, n: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """The ``n`` pairs of objects with the largest in-plane contacts: (a, b, a voxel of the contact)."""
    nearest = ndi.distance_transform_edt(truth == 0, return_distances=False, return_indices=True)
    filled = truth[tuple(nearest)]
    pairs, where = [], []
    for axis in (1, 2):
        lower, upper = [slice(None)] * 3, [slice(None)] * 3
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        here, there = filled[tuple(lower)], filled[tuple(upper)]
        touching = here != there
        pairs.append(np.sort(np.stack([here[touching], there[touching]], axis=1), axis=1))
        where.append(np.argwhere(touching))
    pairs, where = np.concatenate(pairs), np.concatenate(where)
    unique, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    chosen = []
    for index in np.argsort(-counts)[:n]:
        points = where[inverse.ravel() == index]
        middle = points[np.argmin(np.abs(points - np.median(points, axis=0)).sum(axis=1))]
        chosen.append((int(unique[index][0]), int(unique[index][1]), tuple(int(c) for c in middle)))
    return chosen


def puzzle_window(center, shape, side: int = WINDOW_LIMITS[0]) -> BBox:
    """A puzzle's crop of ``side`` pixels around ``center``, shifted inside the volume in-plane."""
    start = [center[0] - KEY] + [int(np.clip(c - side // 2, 0, max(0, n - side))) for c, n in zip(center[1:], shape[1:])]
    return BBox(start, (start[0] + SLICES, start[1] + side, start[2] + side))


def crop(volume: np.ndarray, window) -> np.ndarray:
    """The window's voxels, padded with 0 past the volume (as the volume reader does)."""
    inside = window.clip(volume.shape)
    out = np.zeros(window.shape, volume.dtype)
    out[inside.relative_to(window)] = volume[inside.slices]
    return out


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_rendering(image, truth, puzzles) -> dict:
    wrap = ((0, 0), (0, max(0, max(WINDOW_SIZES) - image.shape[1])), (0, 0))
    image, truth = np.pad(image, wrap, mode="wrap"), np.pad(truth, wrap, mode="wrap")
    report = {}
    for size in WINDOW_SIZES:
        seconds, plain, overlay = [], [], []
        for a, b, center in puzzles:
            window = puzzle_window(center, image.shape, size)
            em, labels = crop(image, window), crop(truth, window)
            started = time.perf_counter()
            slices = render_slices(em, labels == a, labels == b)
            seconds.append(time.perf_counter() - started)
            plain += [len(s["plain"]) for s in slices]
            overlay += [len(s["overlay"]) for s in slices]
        report[size] = {"render_ms_median": round(1e3 * percentile(seconds, 50), 1),
                        "render_ms_max": round(1e3 * max(seconds), 1),
                        "plain_kb_median": round(percentile(plain, 50) / 1024, 1),
                        "plain_kb_max": round(max(plain) / 1024, 1),
                        "overlay_kb_median": round(percentile(overlay, 50) / 1024, 1),
                        "overlay_kb_max": round(max(overlay) / 1024, 1)}
    return report


def time_cache(image, truth, puzzles, gets: int, rng) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        cache = PuzzleImageCache(folder)
        makers = []
        for a, b, center in puzzles:
            window = puzzle_window(center, image.shape)
            em, labels = crop(image, window), crop(truth, window)
            makers.append(lambda em=em, labels=labels, a=a, b=b: render_slices(em, labels == a, labels == b))
        uncached = []
        for key, make in enumerate(makers):
            started = time.perf_counter()
            cache.get(str(key), 3, True, make)
            uncached.append(time.perf_counter() - started)
        cached = []
        for _ in range(gets):
            key, z, overlay = int(rng.integers(len(makers))), int(rng.integers(7)), bool(rng.integers(2))
            started = time.perf_counter()
            cache.get(str(key), z, overlay, makers[key])
            cached.append(time.perf_counter() - started)
    return {"uncached_ms_median": round(1e3 * percentile(uncached, 50), 1),
            "uncached_ms_p95": round(1e3 * percentile(uncached, 95), 1),
            "cached_us_median": round(1e6 * percentile(cached, 50), 1),
            "cached_us_p99": round(1e6 * percentile(cached, 99), 1),
            "first_requests": len(uncached), "repeat_requests": len(cached)}


def write_example(image, truth, puzzle, path: Path) -> dict:
    a, b, center = puzzle
    # the objects touch across their unlabelled membrane: each membrane voxel joins its nearest object
    filled = truth[tuple(ndi.distance_transform_edt(truth == 0, return_distances=False, return_indices=True))]
    frame = frame_decision(filled == a, filled == b, BBox.from_shape(truth.shape), truth.shape, center)
    window = frame.box
    em, labels = crop(image, window), crop(truth, window)
    point = (frame.point[1] - window.start[1], frame.point[2] - window.start[2])
    slices = render_slices(em, labels == a, labels == b, point=point)
    path.write_bytes(slices[frame.key]["overlay"])
    return {"path": str(path.relative_to(ROOT)), "segments": [a, b], "point": list(frame.point),
            "window": frame.side}


def served(shape: tuple[int, int, int], stacks: int) -> dict:
    """Latency of puzzle pictures from a real server: drawn on first request, and drawn ahead by the pool."""
    import os
    import shutil

    import requests

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import running_server

    from game.app import images, pipeline
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings

    base = Path(tempfile.mkdtemp(prefix="pq-pictures-"))
    home = base / "made"
    inst = Instance(home, load_settings({"HOME": str(home), "PRERENDER": False}, environ={}))
    pipeline.make_demo(inst, "demo", shape=shape, seed=1)
    started = time.perf_counter()
    inst.pool.prepare_volume("demo")
    made_s = time.perf_counter() - started
    crowd = [p["id"] for p in st.puzzles(inst.store, volume="demo", state="open", gold=False)]
    inst.store.close()
    report = {"shape": list(shape), "crowd_puzzles": len(crowd), "pool_made_puzzles_s": round(made_s, 1)}

    ahead = base / "ahead"
    shutil.copytree(home, ahead)
    inst = Instance(ahead, load_settings({"HOME": str(ahead)}, environ={}))
    started = time.perf_counter()
    images.prerender(inst, crowd)
    report["drawn_ahead_s_per_puzzle"] = round((time.perf_counter() - started) / max(1, len(crowd)), 3)
    inst.store.close()

    for label, folder in (("uncached", home), ("cached", ahead)):
        with running_server(folder, PRERENDER=0, ESTABLISHED_GOLD_ANSWERS=5, GOLD_SHARE_NEW=0,
                            RATE_LIMITS_ENABLED=0) as url, requests.Session() as http:
            token = http.get(f"{url}/auth/csrf", timeout=30).json()["csrf_token"]
            http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"}, timeout=30)
            first, each, whole, seen = [], [], [], set()
            while len(whole) < stacks:
                reply = http.get(f"{url}/api/puzzle/next", params={"exclude": list(seen)[-10:]}, timeout=60).json()
                if not reply.get("ok") or reply["puzzle"]["id"] in seen:
                    break
                puzzle = reply["puzzle"]
                seen.add(puzzle["id"])
                t0 = time.perf_counter()
                for i, z in enumerate([puzzle["center"]] + [z for z in range(puzzle["slices"]) if z != puzzle["center"]]):
                    for variant in ("plain", "overlay"):
                        t1 = time.perf_counter()
                        got = http.get(f"{url}/puzzle-image/{puzzle['id']}/{z}/{variant}.png",
                                       params={"v": puzzle["picture"]}, timeout=60)
                        got.raise_for_status()
                        (first if i == 0 and variant == "plain" else each).append(time.perf_counter() - t1)
                whole.append(time.perf_counter() - t0)
                http.post(f"{url}/api/vote", json={"puzzle": puzzle["id"], "answer": "unsure", "ms": 1000,
                                                    "ticket": puzzle["ticket"]},
                          headers={"X-CSRFToken": token}, timeout=60)
        report[label] = {"stacks": len(whole),
                         "first_image_ms_p50": round(1e3 * percentile(first, 50), 1),
                         "stack_ms_p50": round(1e3 * percentile(whole, 50), 1),
                         "stack_ms_p90": round(1e3 * percentile(whole, 90), 1),
                         "other_images_ms_p50": round(1e3 * percentile(each, 50), 2)}
    shutil.rmtree(base, ignore_errors=True)
    report["load_average"] = os.getloadavg()
    return report


def demo(shape: tuple[int, int, int], stacks: int) -> dict:
    """Pictures as the game draws them (``images.puzzle_image``), uncached and cached, stacks and pair pictures."""
    import os
    import shutil

    from game.app import images, pipeline
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings

    base = Path(tempfile.mkdtemp(prefix="pq-pictures-"))
    try:
        inst = Instance(base, load_settings({"HOME": str(base), "PRERENDER": False}, environ={}))
        pipeline.make_demo(inst, "demo", shape=shape, seed=1)
        inst.pool.prepare_volume("demo")
        crowd = st.puzzles(inst.store, volume="demo", state="open", gold=False)
        timed = {"stack": ([], [], [], []), "pair": ([], [], [], [])}

        def measure(variant, puzzle, first, then):
            """The first request (uncached), then requests of pictures now drawn (cached)."""
            uncached, cpu, cached, sizes = timed[variant]
            started, used = time.perf_counter(), time.process_time()
            path, _ = images.puzzle_image(inst, puzzle["id"], *first)
            uncached.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
            # the pair picture is stored as slice 0's plain and overlay, one picture
            sizes.append(sum(f.stat().st_size for f in path.parent.glob("*.png")) // (2 if variant == "pair" else 1))
            for z, name in then:
                started = time.perf_counter()
                images.puzzle_image(inst, puzzle["id"], z, name)
                cached.append(time.perf_counter() - started)

        for puzzle in crowd[:stacks]:
            centre = images.puzzle_frame(inst, puzzle).key
            measure("stack", puzzle, (centre, "plain"),
                    [(z, name) for z in range(images.stored_slices(puzzle)) for name in ("plain", "overlay")])
        for puzzle in [p for p in crowd if images.has_pair(p)][:stacks]:
            measure("pair", puzzle, (0, "pair"), [(0, "pair")] * 5)
        inst.store.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report = {"shape": list(shape), "load_average": [round(x, 2) for x in os.getloadavg()]}
    for variant, (uncached, cpu, cached, sizes) in timed.items():
        if uncached:
            report[variant] = {"n": len(uncached),
                               "uncached_ms_p50": round(1e3 * percentile(uncached, 50), 1),
                               "uncached_ms_p95": round(1e3 * percentile(uncached, 95), 1),
                               "uncached_cpu_ms_p50": round(1e3 * percentile(cpu, 50), 1),
                               "cached_ms_p50": round(1e3 * percentile(cached, 50), 2),
                               "cached_ms_p95": round(1e3 * percentile(cached, 95), 2),
                               "kb_median": round(percentile(sizes, 50) / 1024, 1)}
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puzzles", type=int, default=12)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--served", action="store_true", help="pictures from a real server (see above)")
    parser.add_argument("--demo", action="store_true", help="pictures as the game draws them on the demo (see above)")
    parser.add_argument("--shape", default="32,160,160", help="--served, --demo: the demo volume's Z,Y,X")
    parser.add_argument("--stacks", type=int, default=20, help="--served, --demo: puzzles fetched per case")
    args = parser.parse_args(argv)
    if args.demo:
        report = demo(tuple(int(x) for x in args.shape.split(",")), args.stacks)
        for variant in ("stack", "pair"):
            if variant in report:
                r = report[variant]
                print(f"{variant:>6} (n={r['n']}): uncached p50 {r['uncached_ms_p50']} ms, p95 {r['uncached_ms_p95']} ms "
                      f"(CPU time p50 {r['uncached_cpu_ms_p50']} ms); "
                      f"cached p50 {r['cached_ms_p50']} ms, p95 {r['cached_ms_p95']} ms; {r['kb_median']} KB "
                      f"{'a stack (plain + overlay)' if variant == 'stack' else 'a picture'}")
        print(f"load average {report['load_average']}")
        print(json.dumps(report))
        return report
    if args.served:
        report = served(tuple(int(x) for x in args.shape.split(",")), args.stacks)
        print(json.dumps(report))
        return report
    image, truth = load()
    puzzles = contacts(truth, args.puzzles)
    report = {"volume": "fibsem-gala train", "shape": list(image.shape), "puzzles": len(puzzles),
              "slices": 7, "out_size": 384, "render": time_rendering(image, truth, puzzles),
              "cache": time_cache(image, truth, puzzles, args.gets, np.random.default_rng(args.seed)),
              "example": write_example(image, truth, puzzles[0], ROOT / "docs" / "puzzle-example.png")}
    print(f"{'window':>8}{'render ms':>11}{'plain KB':>10}{'overlay KB':>12}   (median / max over puzzles, slices)")
    for size, r in report["render"].items():
        print(f"{size:>8}{r['render_ms_median']:>6}/{r['render_ms_max']:<5}"
              f"{r['plain_kb_median']:>5}/{r['plain_kb_max']:<5}{r['overlay_kb_median']:>6}/{r['overlay_kb_max']:<5}")
    c = report["cache"]
    print(f"cache get: first request (7-slice stack drawn) {c['uncached_ms_median']} ms median, "
          f"{c['uncached_ms_p95']} ms p95; "
          f"rendered {c['cached_us_median']} us median, {c['cached_us_p99']} us p99")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
