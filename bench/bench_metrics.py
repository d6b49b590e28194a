"""Benchmark game.evaluation.metrics against skimage.metrics on realistic label volumes.

Ground truth: Voronoi cells of random seeds with their one-voxel boundaries set
to 0 (unlabeled, as in EM ground truth). Segmentation: Voronoi cells of the same
seeds jittered by a few voxels (boundaries disagree), plus extra seeds (false
splits), with some cells joined to their nearest neighbour (false merges).
Label ids are shuffled over a range 20x the count, so they are not dense, but
kept small because skimage's sparse table allocates rows up to the largest label.

Part 1, at --size (256^3): skimage adapted_rand_error + variation_of_information
against ours (evaluate without a graph; each metric alone), uint32 and uint64,
median of --repeats runs in this process.

Part 2, at 2 x --size (512^3), each in a fresh process so its peak memory is its own:
evaluate on the whole arrays versus a ContingencyAccumulator fed slabs of
--slab z-planes made on the fly (the volume never exists whole). The volume
tiles the part-1 pair 2 x 2 x 2 with distinct labels per tile. contingency_table
slabs whole arrays internally too, so the memory difference is the arrays.

Run: .venv/bin/python bench/bench_metrics.py   (last line: JSON of the figures)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.evaluation.metrics import ContingencyAccumulator, adapted_rand_error, evaluate, variation_of_information


def voronoi(shape, seeds):
    """Label each voxel 1..len(seeds) by its nearest seed (exact EDT)."""
    free = np.ones(shape, bool)
    at = tuple(seeds.T)
    free[at] = False
    nearest = ndimage.distance_transform_edt(free, return_distances=False, return_indices=True)
    owner = np.zeros(shape, np.uint32)
    owner[at] = np.arange(1, len(seeds) + 1, dtype=np.uint32)
    return owner[tuple(nearest)]


def shuffled_ids(labels, rng):
    """Replace 1..n by distinct random ids below 20 n; 0 stays 0."""
    n = int(labels.max())
    ids = np.zeros(n + 1, np.uint32)
    ids[1:] = rng.choice(np.arange(1, 20 * n + 1, dtype=np.uint32), size=n, replace=False)
    return ids[labels]


def make_pair(size, *, cells=400, splits=120, merges=40, jitter=3.0, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    seeds = rng.integers(0, size, (cells, 3))
    gt = voronoi(shape, seeds)
    boundary = np.zeros(shape, bool)
    for axis in range(3):
        step = np.diff(gt, axis=axis) != 0
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        boundary[tuple(lower)] |= step
        boundary[tuple(upper)] |= step
    gt[boundary] = 0

    moved = np.clip(np.rint(seeds + rng.normal(0, jitter, seeds.shape)), 0, size - 1)
    seg_seeds = np.concatenate([moved.astype(np.int64), rng.integers(0, size, (splits, 3))])
    seg = voronoi(shape, seg_seeds)
    # join some cells to the cell of their nearest other seed
    _, nearest = cKDTree(seg_seeds).query(seg_seeds, k=2)
    joined = np.arange(len(seg_seeds) + 1, dtype=np.uint32)
    chosen = rng.choice(len(seg_seeds), merges, replace=False)
    joined[chosen + 1] = nearest[chosen, 1] + 1
    seg = joined[seg]
    return shuffled_ids(gt, rng), shuffled_ids(seg, rng)


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_with_skimage(gt32, seg32, repeats):
    import skimage.metrics as skm

    figures = {}
    for dtype in (np.uint32, np.uint64):
        gt, seg = gt32.astype(dtype), seg32.astype(dtype)
        theirs = skm.adapted_rand_error(gt, seg)[0], *skm.variation_of_information(
            gt, seg, ignore_labels=(0,)
        )
        scores = evaluate(gt, seg)
        ours = scores["adapted_rand_error"], scores["vi_split"], scores["vi_merge"]
        assert np.allclose(ours, theirs, rtol=0, atol=1e-9), (ours, theirs)
        skimage_s = median_seconds(
            lambda: (
                skm.adapted_rand_error(gt, seg),
                skm.variation_of_information(gt, seg, ignore_labels=(0,)),
            ),
            repeats,
        )
        name = np.dtype(dtype).name
        figures[name] = {
            "skimage_are_plus_vi_s": skimage_s,
            "evaluate_s": median_seconds(lambda: evaluate(gt, seg), repeats),
            "adapted_rand_error_s": median_seconds(lambda: adapted_rand_error(gt, seg), repeats),
            "variation_of_information_s": median_seconds(
                lambda: variation_of_information(gt, seg), repeats
            ),
            "scores": scores,
        }
        figures[name]["speedup_evaluate"] = skimage_s / figures[name]["evaluate_s"]
        figures[name]["speedup_are_plus_vi"] = skimage_s / (
            figures[name]["adapted_rand_error_s"] + figures[name]["variation_of_information_s"]
        )
    return figures


def tiled_slab(tile, z0, z1, label_step):
    """z-planes z0..z1 of the 2x2x2 tiling of ``tile``, each tile's labels offset."""
    n = tile.shape[0]
    slab = np.empty((z1 - z0, 2 * n, 2 * n), np.uint64)
    for z in range(z0, z1):
        for ty in range(2):
            for tx in range(2):
                offset = label_step * ((z // n) * 4 + ty * 2 + tx)
                plane = tile[z % n].astype(np.uint64)
                slab[z - z0, ty * n:(ty + 1) * n, tx * n:(tx + 1) * n] = np.where(
                    plane == 0, 0, plane + np.uint64(offset)
                )
    return slab


def peak_rss_mib():
    """This process's peak resident memory.

    VmHWM rather than ru_maxrss: Linux carries ru_maxrss over fork and exec, so
    a child would report its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode, pair_path, slab, repeats):
    with np.load(pair_path) as pair:
        gt_tile, seg_tile = pair["gt"], pair["seg"]
    label_step = int(max(gt_tile.max(), seg_tile.max())) + 1
    size = 2 * gt_tile.shape[0]
    if mode == "whole":
        gt = tiled_slab(gt_tile, 0, size, label_step)
        seg = tiled_slab(seg_tile, 0, size, label_step)

    def score():
        """Scores, seconds spent scoring, seconds spent making blocks."""
        making_s = 0.0
        start = time.perf_counter()
        if mode == "whole":
            scores = evaluate(gt, seg)
        else:
            accumulator = ContingencyAccumulator()
            for z0 in range(0, size, slab):
                z1 = min(size, z0 + slab)
                made = time.perf_counter()
                blocks = (tiled_slab(gt_tile, z0, z1, label_step),
                          tiled_slab(seg_tile, z0, z1, label_step))
                making_s += time.perf_counter() - made
                accumulator.add(*blocks)
                del blocks
            scores = evaluate(table=accumulator.table())
        return scores, time.perf_counter() - start - making_s, making_s

    rss_before = peak_rss_mib()
    tracemalloc.start()
    runs = [score() for _ in range(repeats)]
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(json.dumps({
        "mode": mode,
        "shape": [size] * 3,
        "seconds": statistics.median(run[1] for run in runs),
        "making_blocks_s": statistics.median(run[2] for run in runs),
        "tracemalloc_peak_mib": traced_peak,
        "maxrss_before_mib": rss_before,
        "maxrss_mib": peak_rss_mib(),
        "scores": runs[0][0],
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slab", type=int, default=32, help="z-planes per block in part 2")
    parser.add_argument("--child", choices=["whole", "blockwise"], help=argparse.SUPPRESS)
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pair, args.slab, args.repeats)
        return

    start = time.perf_counter()
    gt, seg = make_pair(args.size)
    print(f"made {args.size}^3 pair in {time.perf_counter() - start:.1f} s: "
          f"{len(np.unique(gt)) - 1} gt labels, {len(np.unique(seg))} segments, "
          f"{np.mean(gt == 0):.1%} gt voxels unlabeled")
    result = {"size": args.size, "repeats": args.repeats}
    result["vs_skimage"] = compare_with_skimage(gt, seg, args.repeats)
    for dtype, f in result["vs_skimage"].items():
        print(f"{args.size}^3 {dtype}: skimage ARE+VI {f['skimage_are_plus_vi_s']:.3f} s | "
              f"evaluate {f['evaluate_s']:.3f} s ({f['speedup_evaluate']:.1f}x) | "
              f"ARE {f['adapted_rand_error_s']:.3f} s + VI {f['variation_of_information_s']:.3f} s "
              f"({f['speedup_are_plus_vi']:.1f}x)")

    with tempfile.TemporaryDirectory() as folder:
        pair_path = Path(folder) / "pair.npz"
        np.savez(pair_path, gt=gt, seg=seg)
        for mode in ("whole", "blockwise"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--pair", str(pair_path),
                 "--slab", str(args.slab), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True,
            ).stdout
            big = json.loads(out.strip().splitlines()[-1])
            result[f"big_{mode}"] = big
            print(f"{2 * args.size}^3 uint64 {mode}: {big['seconds']:.2f} s scoring "
                  f"(+{big['making_blocks_s']:.2f} s making blocks), "
                  f"tracemalloc peak {big['tracemalloc_peak_mib']:.0f} MiB, "
                  f"peak RSS {big['maxrss_mib']:.0f} MiB (before scoring {big['maxrss_before_mib']:.0f})")
    whole, blockwise = result["big_whole"]["scores"], result["big_blockwise"]["scores"]
    assert all(np.isclose(whole[k], blockwise[k], rtol=0, atol=1e-12)
               for k in whole if whole[k] is not None), (whole, blockwise)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
