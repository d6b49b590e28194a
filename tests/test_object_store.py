"""Volumes and exports in an object store spoken to over S3's own protocol.

fsspec's ``memory://`` store (tests/test_blockwise.py, tests/test_volume.py)
lives in one process and has no network, listings or missing-key errors of its
own. Here the store is moto's S3 server on 127.0.0.1, reached through s3fs and
botocore over HTTP, as a lab's bucket would be: the import reads a volume from
a bucket, the workers of a dask.distributed cluster (other processes) write
the labels' slabs into one, and the command line does the same with the
endpoint and keys given only by fsspec's environment variables, as the README
tells users to. Skipped where moto or s3fs is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import _settings

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "proofquest-lab"
CLUSTER_WARNINGS = ("ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 with one bucket; fsspec told its endpoint and keys, in this process and, by
    fsspec's environment variables, in every process started meanwhile. Yields the variables."""
    import fsspec

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}", "FSSPEC_S3_KEY": "lab-key",
           "FSSPEC_S3_SECRET": "lab-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    saved_env = {k: os.environ.get(k) for k in env}
    saved_conf = fsspec.config.conf.get("s3")
    os.environ.update(env)
    fsspec.config.conf["s3"] = {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"], "key": "lab-key",
                                "secret": "lab-secret"}
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET)
    try:
        yield env
    finally:
        server.stop()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if saved_conf is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_conf
        fsspec.filesystem("s3").invalidate_cache()


@pytest.fixture(scope="module")
def cluster(s3):
    """Two worker processes, started after the S3 settings are in the environment (as a cluster's workers
    would be given them)."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def _bucket():
    import fsspec
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    return fs


@pytest.mark.slow
@pytest.mark.filterwarnings(*CLUSTER_WARNINGS)
def test_a_volume_in_a_bucket_imports_like_its_local_copy_and_a_cluster_exports_its_labels_into_one(
        inst, tmp_path, s3, cluster):
    from game.app import exports, pipeline
    from game.app.instance import Instance
    from game.errors import ProofQuestError

    demo = inst.volumes.open("demo")
    image = demo.read("image")
    segmentation = inst.agglomeration("demo").materialize(demo.read("supervoxels")).astype(np.uint32)
    # the lab's volume: one zarr group in the bucket, and the same arrays on local disk
    for where in (f"s3://{BUCKET}/volume.zarr", str(tmp_path / "volume.zarr")):
        group = zarr.open_group(where, mode="w")
        group.create_array("raw", data=image, chunks=(4, 48, 48))
        group.create_array("seg/labels", data=segmentation, chunks=(4, 48, 48))
    assert _bucket().exists(f"{BUCKET}/volume.zarr/raw/zarr.json"), "the arrays are objects in the bucket"

    imported = {}
    for where, base in (("bucket", f"s3://{BUCKET}/volume.zarr"), ("disk", str(tmp_path / "volume.zarr"))):
        home = tmp_path / f"home-{where}"
        other = Instance(home, _settings(home))
        info = pipeline.import_volume(other, "lab", image=f"{base}:raw", segmentation=f"{base}:seg/labels",
                                      scheduler=cluster.scheduler_address)
        volume = other.volumes.open("lab")
        imported[where] = (volume.read("image"), volume.read("supervoxels"), volume.load_side("mapping"), info)
        other.store.close()
    bucket, disk = imported["bucket"], imported["disk"]
    assert np.array_equal(bucket[0], image) and np.array_equal(bucket[0], disk[0])
    assert np.array_equal(bucket[1], disk[1]) and np.array_equal(bucket[2], disk[2]) and bucket[1].max() > 10
    with pytest.raises(ProofQuestError, match="not found"):
        pipeline.import_volume(inst, "missing", image=f"s3://{BUCKET}/nothing.zarr:raw")

    # the labels written slab by slab by the cluster's workers straight into the bucket
    url = f"s3://{BUCKET}/exports/labels.zarr"
    local = exports.export(inst, "demo", what="labels", fmt=None, out=str(tmp_path / "labels.zarr"))
    seen = []
    assert exports.export_labels(inst, "demo", fmt=None, out=url, scheduler=cluster.scheduler_address,
                                 progress=lambda done, total: seen.append((done, total))) == url
    assert seen and seen[-1][0] == seen[-1][1]
    written = zarr.open_array(url, mode="r")
    expected = zarr.open_array(str(local), mode="r")
    assert np.array_equal(written[:], expected[:]) and written.chunks == expected.chunks
    assert written.attrs["checksum"] == exports.label_checksum(expected[:]) == expected.attrs["checksum"]
    with pytest.raises(ProofQuestError, match="already exists"):
        exports.export_labels(inst, "demo", fmt=None, out=url)

    def fail(done, total):
        raise RuntimeError("stopped")
    with pytest.raises(RuntimeError, match="stopped"):
        exports.export_labels(inst, "demo", fmt=None, out=url, overwrite=True, progress=fail)
    assert not _bucket().exists(f"{BUCKET}/exports/labels.zarr/zarr.json"), "a failed export leaves no store"


@pytest.mark.slow
def test_the_command_line_exports_into_a_bucket_named_only_by_fsspecs_environment(home, tmp_path, s3):
    """What a user runs: the endpoint and keys only in the environment, the store by its URL."""
    url = f"s3://{BUCKET}/cli/labels.zarr"
    env = {**os.environ, **s3, "PYTHONPATH": str(ROOT)}
    ran = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "export", "demo",
                          "--what", "labels", "--out", url, "--scheduler", "processes"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    from game.app import exports
    from game.app.instance import Instance
    inst = Instance(home, _settings(home))
    try:
        expected = inst.agglomeration("demo").materialize(inst.volumes.open("demo").read("supervoxels"))
    finally:
        inst.store.close()
    written = zarr.open_array(url, mode="r")
    assert np.array_equal(written[:], expected) and written.attrs["checksum"] == exports.label_checksum(expected)
    # a store that is not there, in a bucket that is not there: one line saying so, not a traceback
    ran = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "import", "other",
                          "--image", "s3://no-such-bucket/volume.zarr:raw"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode != 0 and "Traceback" not in ran.stderr and "no-such-bucket" in ran.stderr
