"""The blockwise stages as tasks of dask: on local threads by default, or on a dask.distributed cluster.

A stage that works block by block (the demo's boundary filter, the boundary
network, the watershed's slabs, the zarr export's slabs) is a list of
independent tasks, each reading its block (with the context it needs) from a
zarr array and writing its result to another. A stage that adds up what each
block holds (the region graph, the detection scan) gets the blocks' partial
results back in order from :func:`stream`, a window at a time, and reduces
them in the parent. :func:`compute` runs them with dask: ``scheduler`` is one of
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

import collections
import contextlib
import functools
import os
from typing import Callable, Iterator, Sequence

import numpy as np

from game.errors import ProofQuestError
from game.geometry import BBox
from game.volumes.formats import is_url


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


# Tasks in flight at once when results are reduced as they come (:func:`stream`): bounds what the parent holds.
WINDOW = 64


class Shared:
    """An argument many tasks share (a mapping, a table): sent to each worker of a cluster once, not with
    every task. Wrap it in a task's ``functools.partial`` arguments; the task receives the value itself."""

    def __init__(self, value):
        self.value = value


class Layer:
    """A picklable reader of one zarr array by URL: ``Layer(url)(box)`` is :func:`read` of ``box``."""

    def __init__(self, url: str):
        self.url = url

    def __call__(self, box: BBox) -> np.ndarray:
        return read(self.url, box)


def layer(volume, name: str) -> Callable[[BBox], np.ndarray]:
    """A reader of ``volume``'s layer ``name`` that tasks in other processes can use: the zarr array by URL
    for a stored volume (or one being written), the volume's own ``read`` for an in-memory stand-in."""
    from game.volumes.volume import Volume, VolumeWriter
    if isinstance(volume, (Volume, VolumeWriter)):
        return Layer(array_url(volume, name))
    return functools.partial(volume.read, name)


def _parts(task) -> tuple[Callable, tuple, dict]:
    if isinstance(task, functools.partial):
        return task.func, task.args, task.keywords
    return task, (), {}


def _unshared(task):
    """The task with its :class:`Shared` arguments replaced by their values (local schedulers)."""
    func, args, keywords = _parts(task)
    if not any(isinstance(a, Shared) for a in (*args, *keywords.values())):
        return task
    return functools.partial(func, *(a.value if isinstance(a, Shared) else a for a in args),
                             **{k: v.value if isinstance(v, Shared) else v for k, v in keywords.items()})


def stream(tasks: Sequence[Callable[[], object]], *, scheduler: str | None = None,
           progress: Callable[[int, int], None] | None = None, task_bytes: int | None = None,
           window: int | None = None) -> Iterator:
    """Run ``tasks`` with dask and yield their results in order, at most ``window`` of them (default all)
    in flight or held at once, so a parent that reduces them as they come holds a few, never all.

    ``scheduler``, ``progress`` and ``task_bytes`` as in :func:`compute`. On a
    ``dask.distributed`` scheduler the tasks are submitted to its workers
    (:class:`Shared` arguments scattered to every worker once); local
    schedulers run them ``window`` at a time.
    """
    import dask
    tasks = list(tasks)
    total = len(tasks)
    if not total:
        return
    window = max(1, window or total)
    if scheduler and "://" in scheduler:
        from distributed import Client
        with Client(scheduler) as client:
            scattered: dict[int, object] = {}

            def value(arg):
                if not isinstance(arg, Shared):
                    return arg
                if id(arg) not in scattered:
                    # a key of its own: one by content could be the key a previous stage is still releasing
                    scattered[id(arg)] = client.scatter(arg.value, broadcast=True, hash=False)
                return scattered[id(arg)]

            def submit(task):
                func, args, keywords = _parts(task)
                return client.submit(func, *map(value, args), **{k: value(v) for k, v in keywords.items()},
                                     pure=False)

            pending = collections.deque(submit(task) for task in tasks[:window])
            for done in range(1, total + 1):
                result = pending.popleft().result()
                if done + window <= total:
                    pending.append(submit(tasks[done + window - 1]))
                if progress is not None:
                    progress(done, total)
                yield result
        return
    local = {} if scheduler == "synchronous" else {"num_workers": local_workers(task_bytes)}
    done = 0

    def finished(*_):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)
    with contextlib.ExitStack() as stack:
        if scheduler == "processes" and total > window:  # one pool of processes for every window, not one each
            from concurrent.futures import ProcessPoolExecutor

            from dask.multiprocessing import get_context
            local["pool"] = stack.enter_context(ProcessPoolExecutor(local["num_workers"], mp_context=get_context()))
        for start in range(0, total, window):
            batch = [dask.delayed(_unshared(task), pure=False)() for task in tasks[start:start + window]]
            # this computation's own callbacks, (start, start_state, pretask, posttask, finish) as dask's local
            # schedulers take them (a `with Callback` would count every computation of the process)
            results = dask.compute(*batch, scheduler=scheduler or "threads",
                                   callbacks=[(None, None, None, finished, None)], **local)
            yield from results


def compute(tasks: Sequence[Callable[[], object]], *, scheduler: str | None = None,
            progress: Callable[[int, int], None] | None = None, task_bytes: int | None = None) -> list:
    """Run ``tasks`` (callables without arguments, e.g. ``functools.partial``) with dask; their results in order.

    ``scheduler``: None or ``"threads"`` (local threads), ``"processes"``,
    ``"synchronous"`` (one at a time, here), or a ``dask.distributed``
    scheduler's address. ``task_bytes``: the working memory one task needs;
    local schedulers then run only as many at once as free memory holds
    (:func:`local_workers`), so a many-core machine does not run out of
    memory where a 2-core one did not (a cluster's workers have their own
    memory limits). Arguments wrapped in :class:`Shared` go to each worker once.
    """
    return list(stream(tasks, scheduler=scheduler, progress=progress, task_bytes=task_bytes))


def array_url(volume, layer: str) -> str:
    """The URL a task opens ``layer`` of a volume (or one being written) by."""
    from game.volumes.volume import GROUP
    return f"{volume.path / GROUP}/{layer}"


def _open(url: str, mode: str):
    """The array at ``url``: a local one opened once per process while its metadata stay the same (a volume
    replaced under the same name is opened afresh); one in a store named by URL opened for each task, since
    nothing cheap tells whether it was replaced."""
    if is_url(url):
        import zarr
        return zarr.open_array(url, mode=mode)
    return _opened(url, mode, _stamp(url))


def _stamp(url: str) -> tuple[int, int] | None:
    """Which version of a local array's metadata file is there (None: none yet)."""
    try:
        info = os.stat(os.path.join(url, "zarr.json"))
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _opened(url: str, mode: str, stamp):
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


def relabel_block(supervoxels_url: str, labels_url: str, box: BBox, mapping: np.ndarray) -> None:
    """Write ``mapping[supervoxels]`` of ``box`` into the labels array (an export's slab)."""
    write(labels_url, box, np.take(mapping, read(supervoxels_url, box)))
