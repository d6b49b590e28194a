"""Exporting the consensus labels of a large volume: time and peak memory per format, and a download's first byte.

Builds a synthetic volume of the given shape (default 256×1024×1024) directly:
a supervoxel layer of jittered boxes (about 8×32×32 voxels each, 1 GiB of
uint32 labels) and a mapping that joins them ten by ten into segments; no
image, boundary or demo pipeline (making a demo volume this size would take
far longer than exporting it, and the export reads only supervoxels and mapping).

Then, each in a fresh process:
* ``export`` to a file in each format (HDF5, TIFF, .npy, zarr): wall time and peak resident memory;
* the admin page's download of each format from a running server: time to the first byte, total time,
  and the server's peak resident memory while it streamed.

    .venv/bin/python bench/bench_export.py [--shape 256,1024,1024] [--formats h5,tif,npy,zarr]

Prints one line per measurement and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ADMIN = ("bench-admin", "bench password")
CHUNKS = (32, 128, 128)

EXPORT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from game.app import exports
from game.app.instance import Instance
from game.app.settings import load_settings
home, fmt, out, slab = sys.argv[1:5]
if int(slab):
    exports.SLAB_VOXELS = int(slab)
inst = Instance(home, load_settings({{"HOME": home}}, environ={{}}))
inst.agglomeration("big")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
exports.export(inst, "big", what="labels", fmt=fmt, out=out)
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": round(seconds, 1), "baseline_mib": round(before / 1024),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""

SERVE = """
import sys
sys.path.insert(0, {root!r})
from werkzeug.serving import make_server
from game.app.instance import Instance
from game.app.settings import load_settings
from game.web import create_app
home, port = sys.argv[1], int(sys.argv[2])
inst = Instance(home, load_settings({{"HOME": home}}, environ={{}}))
inst.agglomeration("big")
make_server("127.0.0.1", port, create_app(instance=inst), threaded=True).serve_forever()
"""


def make_volume(home: Path, shape: tuple[int, int, int], seed: int = 0) -> int:
    """The supervoxel layer and mapping of a synthetic volume ``big``, chunk by chunk; returns the supervoxels."""
    sys.path.insert(0, str(ROOT))
    from game.app import players
    from game.app import store as st
    from game.app.instance import Instance
    from game.app.settings import load_settings
    from game.geometry import BBox

    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    rng = np.random.default_rng(seed)
    cell = np.array((8, 32, 32))
    grid = -(-np.array(shape) // cell)
    n = int(np.prod(grid))
    ids = rng.permutation(n).astype(np.uint32) + 1  # scattered ids, as a watershed leaves them
    with inst.volumes.create("big", shape=shape, resolution=(30.0, 6.0, 6.0), chunks=CHUNKS) as w:
        for box in BBox.from_shape(shape).tiles(CHUNKS):
            z, y, x = np.meshgrid(*(np.arange(a, b) for a, b in zip(box.start, box.stop)), indexing="ij")
            # boxes with wavy faces, so neighbouring chunks and slices are not all alike
            zz = np.clip((z + (np.sin(y / 7.0) * 2).astype(int)) // cell[0], 0, grid[0] - 1)
            yy = np.clip((y + (np.sin(x / 5.0) * 4).astype(int)) // cell[1], 0, grid[1] - 1)
            xx = np.clip((x + (np.sin(z / 3.0) * 4).astype(int)) // cell[2], 0, grid[2] - 1)
            w.write("supervoxels", box, ids[(zz * grid[1] + yy) * grid[2] + xx])
        w.attrs["n_supervoxels"] = n
        mapping = np.concatenate([[0], 1 + rng.permutation(n) // 10]).astype(np.uint64)
        w.save_side("mapping", mapping)
    players.register(inst.store, *ADMIN, role="admin")
    st.set_job(inst.store, "prepare", "done", 1, 1, "ready")
    inst.store.close()
    return n


def _child(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script.format(root=str(ROOT)), *map(str, args)],
                         check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def _download(home: Path, fmt: str) -> dict:
    """Serve the instance in a fresh process, log in as admin, stream one download to nowhere."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVE.format(root=str(ROOT)), str(home), str(port)],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        for _ in range(600):
            try:
                token = json.loads(opener.open(url + "/auth/csrf", timeout=2).read())["csrf_token"]
                break
            except OSError:
                time.sleep(0.1)
        login = urllib.request.Request(url + "/auth/login", data=json.dumps(dict(zip(("username", "password"),
                                                                                     ADMIN))).encode(),
                                       headers={"Content-Type": "application/json", "X-CSRFToken": token})
        opener.open(login).read()
        baseline = _peak_mib(server.pid)
        started = time.perf_counter()
        response = opener.open(f"{url}/admin/export/big/labels?format={fmt}")
        first = response.read(1)
        first_byte = time.perf_counter() - started
        size = len(first)
        while piece := response.read(1 << 20):
            size += len(piece)
        total = time.perf_counter() - started
        return {"first_byte_s": round(first_byte, 2), "seconds": round(total, 1), "bytes": size,
                "server_baseline_mib": baseline, "server_peak_mib": _peak_mib(server.pid)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="256,1024,1024")
    parser.add_argument("--formats", default="h5,tif,npy,zarr")
    parser.add_argument("--no-download", action="store_true", help="measure the file exports only")
    parser.add_argument("--slab-voxels", type=int, default=0,
                        help="voxels per slab of the file exports (default: exports.SLAB_VOXELS)")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    base = Path(tempfile.mkdtemp(prefix="pq-export-"))
    try:
        t = time.perf_counter()
        n = make_volume(base / "home", shape)
        print(f"synthetic volume {shape}: {n} supervoxels, {np.prod(shape) * 4 / 2**30:.2f} GiB of uint32 labels, "
              f"made in {time.perf_counter() - t:.0f} s", flush=True)
        results = {"shape": list(shape), "supervoxels": n, "slab_voxels": args.slab_voxels or None,
                   "export": {}, "download": {}}
        suffix = {"h5": ".h5", "tif": ".tif", "npy": ".npy", "zarr": ".zarr"}
        for fmt in args.formats.split(","):
            out = base / f"labels{suffix[fmt]}"
            row = _child(EXPORT, base / "home", fmt, out, args.slab_voxels)
            row["file_mib"] = round(_size(out) / 2**20, 1)
            results["export"][fmt] = row
            print(f"export {fmt:>4}: {row['seconds']:6.1f} s, peak RSS {row['peak_rss_mib']} MiB "
                  f"(baseline {row['baseline_mib']} MiB), file {row['file_mib']} MiB", flush=True)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
            Path(str(out) + ".json").unlink(missing_ok=True)
        if not args.no_download:
            for fmt in args.formats.split(","):
                row = _download(base / "home", fmt)
                results["download"][fmt] = row
                print(f"download {fmt:>4}: first byte after {row['first_byte_s']} s, all {row['bytes'] / 2**20:.0f} "
                      f"MiB in {row['seconds']} s, server peak RSS {row['server_peak_mib']} MiB "
                      f"(before {row['server_baseline_mib']} MiB)", flush=True)
        print(json.dumps(results))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
