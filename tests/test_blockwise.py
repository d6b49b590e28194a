"""The blockwise stages as tasks of dask: block by block equals whole-volume, a cluster equals in-process."""

import functools
import shutil
import time

import numpy as np
import pytest
import zarr
from conftest import _settings
from scipy import ndimage as ndi

from game import blockwise
from game.geometry import BBox
from game.segmentation import filters


def test_the_membrane_filter_block_by_block_equals_the_whole_volume(tmp_path):
    rng = np.random.default_rng(1)
    image = np.clip(ndi.gaussian_filter(rng.normal(128, 60, (6, 70, 90)), 1.5) * 3 - 250, 0, 255).astype(np.uint8)
    source = zarr.open_array(str(tmp_path / "image"), mode="w", shape=image.shape, chunks=(2, 16, 16), dtype="u1")
    source[:] = image
    zarr.open_array(str(tmp_path / "boundary"), mode="w", shape=image.shape, chunks=(2, 16, 16), dtype="u1")
    blocks = list(BBox.from_shape(image.shape).tiles((2, 32, 32)))
    histogram = np.sum(blockwise.compute([functools.partial(blockwise.image_histogram, str(tmp_path / "image"), b)
                                          for b in blocks]), axis=0)
    levels = filters.intensity_percentiles(histogram)
    assert np.allclose(levels, np.percentile(image, (1, 99)))
    blockwise.compute([functools.partial(blockwise.membrane_block, str(tmp_path / "image"), str(tmp_path / "boundary"),
                                         b, levels) for b in blocks], scheduler="processes")
    whole = np.round(filters.membrane_probability(image, intensity_range=levels) * 255).astype(np.uint8)
    assert np.array_equal(zarr.open_array(str(tmp_path / "boundary"), mode="r")[:], whole)


def test_local_workers_run_only_as_many_tasks_at_once_as_free_memory_holds():
    gib = 2**30
    assert blockwise.local_workers(None, cpus=16) == 16
    assert blockwise.local_workers(int(3.5 * gib), available=16 * gib, cpus=16) == 3  # 0.8 * 16 GiB / 3.5 GiB
    assert blockwise.local_workers(int(3.5 * gib), available=64 * gib, cpus=2) == 2
    assert blockwise.local_workers(64 * gib, available=2 * gib, cpus=16) == 1, "one at a time, never none"

    import threading
    lock, active, most = threading.Lock(), [0], [0]

    def task(i):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return i
    tasks = [functools.partial(task, i) for i in range(6)]
    assert blockwise.compute(tasks, task_bytes=2**62) == list(range(6))
    assert most[0] == 1, "a task larger than free memory runs alone"


CLUSTER_WARNINGS = ("ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def cluster():
    """One dask.distributed LocalCluster of two single-threaded worker processes for this module's tests."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.mark.slow
@pytest.mark.filterwarnings(*CLUSTER_WARNINGS)
def test_segment_on_a_local_cluster_of_two_workers_equals_the_in_process_run(tmp_path, tiny_demo_home, cluster):
    from game.app import pipeline
    from game.app.instance import Instance

    results = {}
    for where, scheduler in (("in-process", "synchronous"), ("cluster", cluster.scheduler_address)):
        home = tmp_path / where
        shutil.copytree(tiny_demo_home, home)
        inst = Instance(home, _settings(home))
        started = time.perf_counter()
        pipeline.segment_volume(inst, "demo", scheduler=scheduler)
        volume = inst.volumes.open("demo")
        results[where] = (volume.read("boundary"), volume.read("supervoxels"), volume.load_side("mapping"),
                          volume.load_side("rag"), time.perf_counter() - started)
        inst.store.close()
    local, remote = results["in-process"], results["cluster"]
    assert np.array_equal(local[0], remote[0]) and np.array_equal(local[1], remote[1])
    assert np.array_equal(local[2], remote[2]) and local[1].max() > 10
    assert all(np.array_equal(local[3][k], remote[3][k]) for k in local[3])


def _bytes(arrays: dict) -> dict:
    return {name: (np.asarray(a).dtype.str, np.asarray(a).tobytes()) for name, a in arrays.items()}


@pytest.mark.slow
@pytest.mark.filterwarnings(*CLUSTER_WARNINGS)
def test_the_region_graph_on_a_local_cluster_equals_the_in_process_run(tiny_demo_home, cluster):
    from game.app.instance import Instance
    from game.segmentation.rag import build_rag_blockwise

    volume = Instance(tiny_demo_home, _settings(tiny_demo_home)).volumes.open("demo")
    runs = {}
    for where, scheduler in (("in-process", "synchronous"), ("cluster", cluster.scheduler_address)):
        seen = []
        rag = build_rag_blockwise(blockwise.layer(volume, "supervoxels"), blockwise.layer(volume, "boundary"),
                                  volume.shape, (4, 32, 32), progress=lambda done, total: seen.append((done, total)),
                                  scheduler=scheduler)
        runs[where] = _bytes(rag.to_arrays())
        tiles = len(list(BBox.from_shape(volume.shape).tiles((4, 32, 32))))
        assert seen[-1] == (tiles, tiles) and len(seen) == tiles
    assert runs["cluster"] == runs["in-process"], "bit for bit, every field"
    assert runs["in-process"] == _bytes(volume.load_side("rag")), "and equal to the RAG the demo was made with"


@pytest.mark.slow
@pytest.mark.filterwarnings(*CLUSTER_WARNINGS)
def test_the_detection_scan_on_a_local_cluster_equals_the_in_process_run(tiny_demo_home, tmp_path, cluster):
    from game.app.instance import Instance
    from game.detection.candidates import contact_points
    from game.segmentation.rag import RAG
    from game.volumes.volume import VolumeStore

    demo = Instance(tiny_demo_home, _settings(tiny_demo_home)).volumes.open("demo")
    rag = RAG.from_arrays(demo.load_side("rag"))
    # the demo's supervoxels stored in small chunks: 48 blocks, most contacts spanning several
    store = VolumeStore(tmp_path / "volumes")
    with store.create("small", shape=demo.shape, resolution=demo.resolution, chunks=(5, 24, 40)) as writer:
        writer.write("supervoxels", None, demo.read("supervoxels"))
    scans = {}
    for volume in (demo, store.open("small")):
        seen = []
        for where, scheduler in (("in-process", "synchronous"), ("cluster", cluster.scheduler_address)):
            scans[volume.name, where] = contact_points(volume, rag, scheduler=scheduler,
                                                       progress=lambda done, total: seen.append((done, total)))
        assert seen[-1][0] == seen[-1][1]
    local = scans["demo", "in-process"]
    for scan in scans.values():
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(local, scan))
    assert len(local[1]) == len(rag) > 10
    assert np.array_equal(local[0][1:], np.bincount(demo.read("supervoxels").ravel())[1:])


@pytest.mark.slow
@pytest.mark.filterwarnings(*CLUSTER_WARNINGS)
def test_a_zarr_export_written_by_a_local_cluster_equals_the_in_process_export(inst, tmp_path, cluster):
    from game.app import exports
    from game.volumes.formats import export_array

    def job():  # slabs two sections deep: eight tasks
        return exports.label_export(inst, "demo", slab_voxels=2 * 96 * 96)
    streamed = job()
    paths = {"in-process": export_array(tmp_path / "streamed.zarr", None, streamed.shape, streamed.dtype,
                                        streamed.slabs(), attrs=streamed.attrs, chunks=streamed.file_chunks)}
    seen = []
    paths["cluster"] = exports.export_zarr(job(), tmp_path / "cluster.zarr", scheduler=cluster.scheduler_address,
                                           progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8) and not list(tmp_path.glob(".*")), "every slab a task; no temporary left"
    exported = {}
    for where, path in paths.items():
        array = zarr.open_array(str(path), mode="r")
        exported[where] = (array[:], array.chunks, array.dtype,
                           {k: v for k, v in array.attrs.items() if k != "exported"})
    local, remote = exported["in-process"], exported["cluster"]
    assert np.array_equal(local[0], remote[0]) and local[1:] == remote[1:]
    expected = inst.agglomeration("demo").materialize(inst.volumes.open("demo").read("supervoxels"))
    assert np.array_equal(remote[0], expected) and remote[3]["checksum"] == exports.label_checksum(expected)


def test_a_zarr_export_to_a_store_url_equals_the_local_export_and_refuses_what_a_url_cannot_hold(inst, tmp_path):
    import uuid

    from game.app import exports
    from game.errors import ProofQuestError
    url = f"memory://export-{uuid.uuid4().hex}/labels.zarr"  # fsspec's in-memory store: one a URL names
    local = exports.export(inst, "demo", what="labels", fmt=None, out=str(tmp_path / "labels.zarr"))
    assert exports.export(inst, "demo", what="labels", fmt=None, out=url) == url
    exported = [zarr.open_array(str(where), mode="r") for where in (local, url)]
    assert np.array_equal(exported[0][:], exported[1][:]) and exported[0].chunks == exported[1].chunks
    assert exported[1].attrs["checksum"] == exports.label_checksum(exported[0][:])
    with pytest.raises(ProofQuestError, match="already exists"):
        exports.export_labels(inst, "demo", fmt=None, out=url)
    assert exports.export_labels(inst, "demo", fmt=None, out=url, at=0, overwrite=True) == url
    assert zarr.open_array(url, mode="r").attrs["edits"] == 0
    with pytest.raises(ProofQuestError, match="only zarr"):
        exports.export(inst, "demo", what="labels", fmt=None, out="memory://elsewhere/labels.h5")
    with pytest.raises(ProofQuestError, match="local file"):
        exports.export(inst, "demo", what="votes", fmt="csv", out="memory://elsewhere/votes.csv")
    with pytest.raises(ProofQuestError, match="cannot write"):
        exports.export(inst, "demo", what="labels", fmt=None, out="nosuchscheme://bucket/labels.zarr")
    with pytest.raises(ProofQuestError, match="ends in .zarr"):
        exports.export(inst, "demo", what="labels", fmt="zarr", out="memory://elsewhere/labels")

    def fail(done, total):
        raise RuntimeError("stopped")
    with pytest.raises(RuntimeError, match="stopped"):
        exports.export_labels(inst, "demo", fmt=None, out=url, overwrite=True, progress=fail)
    import fsspec
    assert not fsspec.filesystem("memory").exists(url.removeprefix("memory://")), "a failed export leaves no store"
    # a file:// URL is a local path: labels and tables land where it says, and the path says so
    assert exports.export(inst, "demo", what="labels", fmt=None, out=f"file://{tmp_path}/f.zarr") == \
        tmp_path / "f.zarr"
    assert exports.export(inst, "demo", what="votes", fmt="csv", out=f"file://{tmp_path}/votes.csv") == \
        tmp_path / "votes.csv"
    assert (tmp_path / "votes.csv").is_file()
