"""Peak memory of `segment` with the watershed in one piece and slab by slab.

Makes a demo volume (default 64×512×512), then runs `segment` on copies of it
in fresh processes: once with the whole volume flooded at once, once with
``WATERSHED_BLOCK_VOXELS`` set to a slab of 8 sections. Prints peak resident
memory, time and the adapted Rand error of each, and a final JSON line.

    .venv/bin/python bench/bench_segment_memory.py [--shape 64,512,512]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from game import pipeline
from game.app.settings import load_settings
from game.app.instance import Instance
block = int(sys.argv[2])
if block:
    pipeline.WATERSHED_BLOCK_VOXELS = block
inst = Instance(sys.argv[1], load_settings({{"HOME": sys.argv[1]}}, environ={{}}))
t = time.perf_counter()
info = pipeline.segment_volume(inst, "demo")
seconds = time.perf_counter() - t
quality = pipeline.evaluate_volume(inst, "demo")
print(json.dumps({{"block_voxels": block or None, "seconds": round(seconds, 1), "supervoxels": info["supervoxels"],
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "adapted_rand_error": round(quality["adapted_rand_error"], 4)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="64,512,512")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    sys.path.insert(0, str(ROOT))
    from game.app import pipeline
    from game.app.instance import Instance
    from game.app.settings import load_settings

    base = Path(tempfile.mkdtemp(prefix="pq-segmem-"))
    prepared = base / "prepared"
    inst = Instance(prepared, load_settings({"HOME": str(prepared)}, environ={}))
    pipeline.make_demo(inst, "demo", shape=shape, seed=11)
    inst.store.close()
    results = []
    for block in (0, 8 * shape[1] * shape[2]):
        home = base / f"run-{block}"
        shutil.copytree(prepared, home)
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(home), str(block)],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({"shape": list(shape), "runs": results}))


if __name__ == "__main__":
    main()
