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


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning")
def test_segment_on_a_local_cluster_of_two_workers_equals_the_in_process_run(tmp_path, tiny_demo_home):
    from distributed import LocalCluster

    from game.app import pipeline
    from game.app.instance import Instance

    results = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for where, scheduler in (("in-process", "synchronous"), ("cluster", cluster.scheduler_address)):
            home = tmp_path / where
            shutil.copytree(tiny_demo_home, home)
            inst = Instance(home, _settings(home))
            started = time.perf_counter()
            pipeline.segment_volume(inst, "demo", scheduler=scheduler)
            volume = inst.volumes.open("demo")
            results[where] = (volume.read("boundary"), volume.read("supervoxels"), volume.load_side("mapping"),
                              time.perf_counter() - started)
            inst.store.close()
    local, remote = results["in-process"], results["cluster"]
    assert np.array_equal(local[0], remote[0]) and np.array_equal(local[1], remote[1])
    assert np.array_equal(local[2], remote[2]) and local[1].max() > 10
