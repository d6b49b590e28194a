"""The blockwise stages as tasks of dask: on local threads by default, or on a dask.distributed cluster.

A stage that works block by block (the demo's boundary filter, the boundary
network, the watershed's slabs) is a list of independent tasks, each reading
its block (with the context it needs) from a zarr array and writing its result
to another. :func:`compute` runs them with dask: ``scheduler`` is one of
dask's local schedulers (``"threads"``, the default; ``"processes"``;
``"synchronous"``) or the address of a ``dask.distributed`` scheduler
(``tcp://host:8786``), whose workers then do the work. The arrays are named by
URL (:func:`array_url`): a folder on a disk the workers share, or any store
fsspec opens (``s3://bucket/volume.zarr``, ``gs://…``), so the workers of a
cluster need no shared disk. The tasks are module-level functions of
picklable arguments, so they run in other processes unchanged.

References
----------
.. [1] Rocklin, M. "Dask: Parallel Computation with Blocked algorithms and Task Scheduling", Proc. SciPy 2015.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Sequence

import numpy as np

from game.errors import ProofQuestError
from game.geometry import BBox


# Of the memory free when a stage starts, the share its local workers may take together.
MEMORY_SHARE = 0.8


def local_workers(task_bytes: int | None, *, available: int | None = None, cpus: int | None = None) -> int:
    """How many tasks of ``task_bytes`` working memory run at once on this machine: one per CPU, as many as
    ``MEMORY_SHARE`` of the free memory holds, and at least one (None: one per CPU)."""
    cpus = cpus or os.cpu_count() or 1
    if not task_bytes:
        return cpus
    if available is None:
        import psutil
        available = psutil.virtual_memory().available
    return max(1, min(cpus, int(available * MEMORY_SHARE) // int(task_bytes)))


def compute(tasks: Sequence[Callable[[], object]], *, scheduler: str | None = None,
            progress: Callable[[int, int], None] | None = None, task_bytes: int | None = None) -> list:
    """Run ``tasks`` (callables without arguments, e.g. ``functools.partial``) with dask; their results in order.

    ``scheduler``: None or ``"threads"`` (local threads), ``"processes"``,
    ``"synchronous"`` (one at a time, here), or a ``dask.distributed``
    scheduler's address. ``task_bytes``: the working memory one task needs;
    local schedulers then run only as many at once as free memory holds
    (:func:`local_workers`), so a many-core machine does not run out of
    memory where a 2-core one did not (a cluster's workers have their own
    memory limits).
    """
    import dask
    if not tasks:
        return []
    delayed = [dask.delayed(task, pure=False)() for task in tasks]
    if scheduler and "://" in scheduler:
        from distributed import Client, as_completed
        with Client(scheduler) as client:
            futures = client.compute(delayed)
            for done, _ in enumerate(as_completed(futures), 1):
                if progress is not None:
                    progress(done, len(futures))
            return client.gather(futures)
    local = {} if scheduler == "synchronous" else {"num_workers": local_workers(task_bytes)}
    results = dask.compute(*delayed, scheduler=scheduler or "threads", **local)
    if progress is not None:
        progress(len(tasks), len(tasks))
    return list(results)


def array_url(volume, layer: str) -> str:
    """The URL a task opens ``layer`` of a volume (or one being written) by."""
    from game.volumes.volume import GROUP
    return f"{volume.path / GROUP}/{layer}"


@functools.lru_cache(maxsize=64)
def _open(url: str, mode: str):
    import zarr
    return zarr.open_array(url, mode=mode)


def read(url: str, box: BBox, *, fill: int = 0) -> np.ndarray:
    """``box`` of the array at ``url``; parts outside it are ``fill``."""
    array = _open(url, "r")
    inside = box.clip(tuple(array.shape))
    out = np.full(box.shape, fill, dtype=array.dtype)
    if not inside.empty:
        out[inside.relative_to(box)] = array[inside.slices]
    return out


def write(url: str, box: BBox, block: np.ndarray) -> None:
    """Write ``block`` at ``box`` of the array at ``url`` (boxes of different tasks cover whole chunks)."""
    _open(url, "r+")[box.slices] = block


# ----------------------------------------------------------------------------- the stages' tasks

def image_histogram(image_url: str, box: BBox) -> np.ndarray:
    """Voxels per grey level (0..255) of ``box`` of a uint8 image."""
    return np.bincount(read(image_url, box).ravel(), minlength=256)


def membrane_block(image_url: str, boundary_url: str, box: BBox, levels: tuple[float, float]) -> None:
    """The demo's classical boundary (:func:`game.segmentation.filters.membrane_probability`) of ``box``,
    from the image around it (:func:`~game.segmentation.filters.membrane_halo`): equal to filtering the
    whole volume with the same intensity ``levels``."""
    from game.segmentation import filters
    halo = filters.membrane_halo()
    context = box.expand((0, halo, halo)).clip(tuple(_open(image_url, "r").shape))
    probability = filters.membrane_probability(read(image_url, context), intensity_range=levels)
    write(boundary_url, box, np.round(probability[box.relative_to(context)] * 255).astype(np.uint8))


@functools.lru_cache(maxsize=2)
def _network(model_path: str):
    from game.segmentation import boundary as bnd
    from game.segmentation.unet import load_model
    device = bnd.default_device()
    return bnd.inference_network(load_model(model_path, device=device), device), device


def boundary_block(image_url: str, boundary_url: str, tile: BBox, overlap: tuple[int, int, int],
                   model_path: str) -> None:
    """The boundary network's prediction of one block (the model loaded once per worker)."""
    from game.segmentation import boundary as bnd
    network, device = _network(model_path)
    shape = tuple(_open(image_url, "r").shape)
    write(boundary_url, tile, bnd.predict_tile(network, lambda box: read(image_url, box), tile, overlap, shape,
                                               device))


def watershed_slabs(boundary_url: str, labels_url: str, slabs: list[BBox],
                    sampling: tuple[float, float, float], sections: bool = False) -> list[int]:
    """Supervoxels of each slab in turn, numbered 1..n within it (written as uint32); returns each n.

    In 3D (:func:`game.segmentation.watershed.watershed_supervoxels`), or with
    ``sections`` one section at a time (:func:`~game.segmentation.watershed.watershed_sections`).
    """
    import fastremap

    from game.segmentation.watershed import watershed_sections, watershed_supervoxels
    counts = []
    for slab in slabs:
        boundary = read(boundary_url, slab)
        if sections:
            labels = watershed_sections(boundary)
        else:
            labels, _ = fastremap.renumber(watershed_supervoxels(boundary, sampling=sampling),
                                           preserve_zero=True, in_place=True)
        top = int(labels.max(initial=0))
        if top >= 2**32:
            raise ProofQuestError(f"more than {2**32 - 1} supervoxels in one slab: the boundary map is too "
                                  "fragmented to store")
        write(labels_url, slab, labels.astype(np.uint32))
        counts.append(top)
    return counts


def offset_slabs(labels_url: str, slabs: list[BBox], offsets: list[int]) -> None:
    """Shift each slab's supervoxel ids by its offset (the supervoxels of the slabs before it)."""
    for slab, offset in zip(slabs, offsets):
        if offset:
            labels = read(labels_url, slab)
            labels[labels > 0] += np.uint32(offset)
            write(labels_url, slab, labels)
