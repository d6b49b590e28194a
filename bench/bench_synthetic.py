"""Benchmark the demo-volume generator and the errors it provokes.

Prints, for the default demo volume: generation time, neurite count, and the
scores of an initial automatic segmentation (classical membrane probability →
per-slice distance-transform watershed → hierarchical agglomeration by mean
boundary, a throwaway stand-in for game/graph.py); then time and peak traced
memory for generating a larger volume block by block, extrapolated to
512×1024×1024. The last line is JSON.

    .venv/bin/python bench/bench_synthetic.py [--large 128 512 512] [--full]
"""

from __future__ import annotations

import argparse
import heapq
import json
import pathlib
import sys
import time
import tracemalloc

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.metrics import adapted_rand_error, variation_of_information
from skimage.segmentation import watershed

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from game.segmentation.filters import membrane_probability
from game.volumes.synthetic import DemoSpec, generate, iter_blocks, neurite_count

FULL_SHAPE = (512, 1024, 1024)
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5)


def supervoxels(boundary: np.ndarray, *, foreground_below: float = 0.5, min_distance: int = 4) -> np.ndarray:
    """Per-slice watershed of the smoothed boundary map from distance-transform maxima.

    Seeds sit at the centres of low-boundary regions, so a gap in a membrane
    does not join two cells' seeds.
    """
    smooth = ndi.gaussian_filter(boundary, (0, 1, 1))
    labels = np.zeros(boundary.shape, np.int64)
    count = 0
    for z, plane in enumerate(smooth):
        inside = plane < foreground_below
        distance = ndi.gaussian_filter(ndi.distance_transform_edt(inside), 1)
        peaks = peak_local_max(distance, min_distance=min_distance, labels=ndi.label(inside)[0],
                               exclude_border=False)
        markers = np.zeros(plane.shape, np.int64)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1) + count
        count += len(peaks)
        labels[z] = watershed(plane, markers)
    return labels


def region_adjacency(labels: np.ndarray, boundary: np.ndarray) -> tuple[np.ndarray, ...]:
    """Edges (u < v) between touching supervoxels with the summed boundary and face area."""
    us, vs, sums = [], [], []
    for axis in range(3):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        a, b = labels[tuple(lower)], labels[tuple(upper)]
        face = a != b
        us.append(np.minimum(a[face], b[face]))
        vs.append(np.maximum(a[face], b[face]))
        sums.append((boundary[tuple(lower)][face] + boundary[tuple(upper)][face]) / 2)
    base = int(labels.max()) + 1
    key, inverse = np.unique(np.concatenate(us) * base + np.concatenate(vs), return_inverse=True)
    return key // base, key % base, np.bincount(inverse, np.concatenate(sums)), np.bincount(inverse)


def agglomerate(u, v, total, area, n_supervoxels: int, threshold: float) -> np.ndarray:
    """Mapping supervoxel → segment from merging the lowest mean-boundary edge until it exceeds ``threshold``."""
    parent = np.arange(n_supervoxels + 1)
    neighbours: list[dict[int, list[float]]] = [{} for _ in range(n_supervoxels + 1)]
    for a, b, t, c in zip(u.tolist(), v.tolist(), total.tolist(), area.tolist()):
        neighbours[a][b] = neighbours[b][a] = [t, c]
    heap = [(t / c, a, b) for a, b, t, c in zip(u.tolist(), v.tolist(), total.tolist(), area.tolist())]
    heapq.heapify(heap)
    while heap:
        mean, a, b = heapq.heappop(heap)
        if mean > threshold:
            break
        edge = neighbours[a].get(b)
        if edge is None or edge[0] / edge[1] != mean:
            continue  # stale: the edge was merged away or its mean has changed
        if len(neighbours[a]) < len(neighbours[b]):
            a, b = b, a
        parent[b] = a
        del neighbours[a][b], neighbours[b][a]
        for w, (t, c) in neighbours[b].items():
            del neighbours[w][b]
            merged = neighbours[a].setdefault(w, [0.0, 0])
            merged[0] += t
            merged[1] += c
            neighbours[w][a] = merged
            heapq.heappush(heap, (merged[0] / merged[1], min(a, w), max(a, w)))
        neighbours[b] = {}
    while not np.array_equal(parent, parent[parent]):
        parent = parent[parent]
    return parent


def scores(groundtruth: np.ndarray, segmentation: np.ndarray) -> dict[str, float]:
    split, merge = variation_of_information(groundtruth, segmentation, ignore_labels=(0,))
    error = adapted_rand_error(groundtruth, segmentation, ignore_labels=(0,))[0]
    return {"vi_split": round(float(split), 3), "vi_merge": round(float(merge), 3),
            "adapted_rand_error": round(float(error), 3)}


def initial_segmentation(image: np.ndarray, groundtruth: np.ndarray) -> dict:
    """Scores of the automatic pipeline at each agglomeration threshold."""
    start = time.perf_counter()
    boundary = membrane_probability(image)
    fragments = supervoxels(boundary)
    u, v, total, area = region_adjacency(fragments, boundary)
    sweep = {}
    for threshold in THRESHOLDS:
        mapping = agglomerate(u, v, total, area, int(fragments.max()), threshold)
        sweep[threshold] = {**scores(groundtruth, mapping[fragments]),
                            "segments": int(np.unique(mapping[fragments]).size)}
        print(f"  threshold {threshold}: {sweep[threshold]}")
    best = min(sweep, key=lambda t: sweep[t]["vi_split"] + sweep[t]["vi_merge"])
    return {"supervoxels": int(fragments.max()), "supervoxel_scores": scores(groundtruth, fragments),
            "best_threshold": best, **sweep[best], "pipeline_s": round(time.perf_counter() - start, 1)}


def blockwise(shape: tuple[int, int, int]) -> dict:
    """Time and peak traced memory to generate ``shape`` chunk by chunk, discarding each block."""
    spec = DemoSpec(shape=shape)
    tracemalloc.start()
    start = time.perf_counter()
    blocks = 0
    for _ in iter_blocks(spec):
        blocks += 1
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    voxels = int(np.prod(shape))
    return {"shape": list(shape), "blocks": blocks, "seconds": round(seconds, 1),
            "peak_mib": round(peak / 2**20, 1), "mvoxel_per_s": round(voxels / seconds / 1e6, 2),
            "full_extrapolated_min": round(seconds * np.prod(FULL_SHAPE) / voxels / 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, nargs=3, default=(128, 512, 512), metavar=("Z", "Y", "X"))
    parser.add_argument("--full", action="store_true", help=f"generate all of {FULL_SHAPE} block by block")
    args = parser.parse_args()

    spec = DemoSpec()
    start = time.perf_counter()
    image, groundtruth = generate(spec)
    generate_s = time.perf_counter() - start
    present = int(np.unique(groundtruth).size - 1)
    print(f"default {spec.shape}: generated in {generate_s:.1f} s; {neurite_count(spec)} neurites defined, "
          f"{present} present; membrane voxels {np.mean(groundtruth == 0):.3f}")
    pipeline = initial_segmentation(image, groundtruth)
    print(f"initial segmentation: {pipeline}")
    large = blockwise(FULL_SHAPE if args.full else tuple(args.large))
    print(f"block by block: {large}")
    print(json.dumps({"default_shape": list(spec.shape), "generate_s": round(generate_s, 1),
                      "neurites_defined": neurite_count(spec), "neurites_present": present,
                      "pipeline": pipeline, "blockwise": large}))


if __name__ == "__main__":
    main()
