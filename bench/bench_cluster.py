"""The blockwise stages on a dask.distributed LocalCluster beside the same runs in this process: time and equality.

    python bench/bench_cluster.py [--shape 32,192,192] [--workers 2] [--slab-voxels N]

A demo volume is generated once. ``segment`` (boundary network, watershed,
region graph, agglomeration) then runs on copies of it: in this process
(dask's synchronous scheduler), on local threads (dask's default), and on a
LocalCluster of ``--workers`` single-threaded worker processes reached by its
scheduler address, as a cluster of machines would be. The boundary map,
supervoxels, region graph and initial mapping of every run are compared with
the in-process run's, bit for bit.

On the segmented volume, the three stages after it run alone on each
scheduler, each compared with its in-process result: the region graph
(``build_rag_blockwise`` over the volume's chunks), the detection scan
(``contact_points``: supervoxel sizes and a point on every contact, two
passes) and the zarr export of the labels (slabs of ``--slab-voxels``, each a
task that writes its part of the new array; the data, chunks and metadata
but the export time compared). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _equal(a, b) -> bool:
    """Equal bit for bit: arrays (same dtype), dicts and tuples of them, or plain values."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="32,192,192")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slab-voxels", type=int, default=8 * 192 * 192,
                        help="voxels per export slab (one task each; default 8 sections of 192 x 192)")
    args = parser.parse_args()
    import zarr
    from distributed import LocalCluster

    from game import blockwise
    from game.app import exports, pipeline
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.detection.candidates import contact_points
    from game.geometry import BBox
    from game.segmentation.rag import RAG, build_rag_blockwise

    shape = tuple(int(x) for x in args.shape.split(","))
    base = Path(tempfile.mkdtemp(prefix="pq-cluster-"))
    made = base / "made"
    inst = Instance(made, load_settings({"HOME": str(made)}, environ={}))
    pipeline.make_demo(inst, "demo", shape=shape, seed=2)
    inst.store.close()
    report = {"shape": list(shape), "workers": args.workers, "stages": {}}
    schedulers = ("in_process", "threads", "local_cluster")

    def record(stage: str, label: str, seconds: float, result, **extra) -> None:
        runs = report["stages"].setdefault(stage, {"runs": {}, "_first": result})
        runs["runs"][label] = {"seconds": round(seconds, 2), "equal_to_in_process": _equal(runs["_first"], result),
                               **extra}
        print(stage, label, json.dumps(runs["runs"][label]), flush=True)

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        where = dict(zip(schedulers, ("synchronous", "threads", cluster.scheduler_address)))
        for label in schedulers:
            home = base / label
            shutil.copytree(made, home)
            inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
            started = time.perf_counter()
            info = pipeline.segment_volume(inst, "demo", scheduler=where[label])
            seconds = time.perf_counter() - started
            volume = inst.volumes.open("demo")
            record("segment", label, seconds, (volume.read("boundary"), volume.read("supervoxels"),
                                               volume.load_side("rag"), volume.load_side("mapping")),
                   supervoxels=info["supervoxels"])
            inst.store.close()
        inst = Instance(base / "in_process", load_settings({"HOME": str(base / "in_process")}, environ={}))
        volume = inst.volumes.open("demo")
        rag = RAG.from_arrays(volume.load_side("rag"))
        blocks = len(list(BBox.from_shape(volume.shape).tiles(volume.chunks)))
        for label in schedulers:
            started = time.perf_counter()
            graph = build_rag_blockwise(blockwise.layer(volume, "supervoxels"), blockwise.layer(volume, "boundary"),
                                        volume.shape, volume.chunks, n_supervoxels=rag.n_supervoxels,
                                        scheduler=where[label])
            record("region_graph", label, time.perf_counter() - started, graph.to_arrays(), blocks=blocks,
                   edges=len(graph))
        for label in schedulers:
            started = time.perf_counter()
            scan = contact_points(volume, rag, scheduler=where[label])
            record("detection_scan", label, time.perf_counter() - started, scan, blocks=blocks)
        for label in schedulers:
            job = exports.label_export(inst, "demo", slab_voxels=args.slab_voxels)
            started = time.perf_counter()
            path = exports.export_zarr(job, base / f"labels-{label}.zarr", scheduler=where[label])
            seconds = time.perf_counter() - started
            array = zarr.open_array(str(path), mode="r")
            attrs = {k: v for k, v in array.attrs.items() if k != "exported"}
            record("export_zarr", label, seconds, (array[:], array.chunks, attrs), slabs=len(job.slab_boxes()))
        inst.store.close()
    shutil.rmtree(base, ignore_errors=True)
    for stage in report["stages"].values():
        del stage["_first"]
    report["load_average"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
