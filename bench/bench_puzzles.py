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
slice, framed by ``frame_decision`` as a puzzle is) is written to docs/puzzle-example.png.

Run: .venv/bin/python bench/bench_puzzles.py [--puzzles 12] [--gets 2000] [--seed 0]
The last line printed is JSON.
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
            "uncached_ms_p99": round(1e3 * percentile(uncached, 99), 1),
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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puzzles", type=int, default=12)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
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
    print(f"cache get: first request {c['uncached_ms_median']} ms median, {c['uncached_ms_p99']} ms p99; "
          f"rendered {c['cached_us_median']} us median, {c['cached_us_p99']} us p99")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
