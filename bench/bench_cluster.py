"""`segment` on a dask.distributed LocalCluster beside the same run in this process: time and equality.

    python bench/bench_cluster.py [--shape 32,192,192] [--workers 2]

A demo volume is generated once; ``segment`` (boundary network, watershed,
region graph, agglomeration) then runs on copies of it: in this process
(dask's synchronous scheduler), on local threads (dask's default), and on a
LocalCluster of ``--workers`` single-threaded worker processes reached by its
scheduler address, as a cluster of machines would be. The boundary map,
supervoxels and initial mapping of every run are compared with the first.
The last line printed is JSON.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="32,192,192")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import LocalCluster

    from game.app import pipeline
    from game.app.instance import Instance
    from game.app.settings import load_settings

    shape = tuple(int(x) for x in args.shape.split(","))
    base = Path(tempfile.mkdtemp(prefix="pq-cluster-"))
    made = base / "made"
    inst = Instance(made, load_settings({"HOME": str(made)}, environ={}))
    pipeline.make_demo(inst, "demo", shape=shape, seed=2)
    inst.store.close()
    report, first = {"shape": list(shape), "workers": args.workers, "runs": {}}, None
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for label, scheduler in (("in_process", "synchronous"), ("threads", "threads"),
                                 ("local_cluster", cluster.scheduler_address)):
            home = base / label
            shutil.copytree(made, home)
            inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
            started = time.perf_counter()
            info = pipeline.segment_volume(inst, "demo", scheduler=scheduler)
            seconds = time.perf_counter() - started
            volume = inst.volumes.open("demo")
            result = (volume.read("boundary"), volume.read("supervoxels"), volume.load_side("mapping"))
            first = first or result
            report["runs"][label] = {"seconds": round(seconds, 1), "supervoxels": info["supervoxels"],
                                     "equal_to_in_process": all(np.array_equal(a, b) for a, b in zip(first, result))}
            print(label, json.dumps(report["runs"][label]), flush=True)
            inst.store.close()
    shutil.rmtree(base, ignore_errors=True)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
