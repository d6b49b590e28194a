"""The region adjacency graph (RAG) of a supervoxel volume.

Each edge joins two touching supervoxels and carries statistics of the
boundary map over the faces where they touch: the mean, minimum and maximum
boundary value, the contact area (the number of faces) and how many of those
faces lie across sections (between z and z + 1) rather than in-plane. In
serial-section EM the two kinds differ: an in-plane face lies on a membrane a
person sees, a face across sections only says that two profiles overlap, so
they are featured apart (:func:`game.segmentation.merging.section_linkage`).
A face is a pair of
6-connected voxels with different non-zero ids; its value is the mean of the
two voxels' boundary values (symmetric in the two sides; on the fibsem-gala
volume it agglomerated slightly better than their maximum).

Everything is vectorised: faces are found by comparing each voxel with its +1
neighbour along each axis, and grouped per supervoxel pair by sorting an int64
pair key and reducing with ``np.*.reduceat``. Statistics add up exactly across
blocks (sums, minima, maxima and counts), which is what lets
:func:`build_rag_blockwise` process a volume chunk by chunk.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback

_FIELDS = ("u", "v", "mean", "min", "max", "area", "z_area", "linkage")


def boundary_as_float(boundary: np.ndarray) -> np.ndarray:
    """A boundary map as float32 in 0..1 (uint8 maps are 0..255 = probability × 255)."""
    boundary = np.asarray(boundary)
    if boundary.dtype == np.uint8:
        return boundary.astype(np.float32) / np.float32(255)
    if not np.issubdtype(boundary.dtype, np.floating):
        raise ProofQuestError(
            f"a boundary map must be float 0..1 or uint8 0..255, got {boundary.dtype}")
    return boundary.astype(np.float32, copy=False)


def id_dtype(largest: int) -> np.dtype:
    """uint32 while ids fit in it, else uint64 (the project's id convention)."""
    return np.dtype(np.uint32) if largest < 2 ** 32 else np.dtype(np.uint64)


@dataclass(eq=False)
class RAG:
    """Edges between touching supervoxels with their boundary statistics.

    Attributes
    ----------
    u, v : ndarray of uint32 or uint64
        Endpoints, ``u < v``, pairs unique and sorted by ``(u, v)``.
    mean, min, max : ndarray of float32
        Boundary value (0..1) over the contact faces.
    area : ndarray of int64
        Number of contact faces.
    n_supervoxels : int
        Largest node id (supervoxel ids are ``1..n_supervoxels``).
    z_area : ndarray of int64
        How many of the faces lie across sections (default: none known).
    linkage : ndarray of float32
        What agglomeration merges by, 0..1, lowest first: the mean boundary
        (the default), or for supervoxels made section by section a value
        that features faces across sections apart
        (:func:`game.segmentation.merging.section_linkage`). Segment-level
        edges combine it area-weighted, like the mean.
    """

    u: np.ndarray
    v: np.ndarray
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    area: np.ndarray
    n_supervoxels: int
    z_area: np.ndarray | None = None
    linkage: np.ndarray | None = None

    def __post_init__(self):
        if self.z_area is None:
            self.z_area = np.zeros(len(self.u), np.int64)
        if self.linkage is None:
            self.linkage = np.asarray(self.mean, np.float32)

    def __len__(self) -> int:
        return len(self.u)

    def subset(self, index: np.ndarray) -> "RAG":
        """The RAG restricted to the edges selected by ``index`` (mask or sorted indices)."""
        return RAG(**{name: getattr(self, name)[index] for name in _FIELDS}, n_supervoxels=self.n_supervoxels)

    def with_linkage(self, linkage: np.ndarray) -> "RAG":
        """The same edges with another ``linkage``."""
        linkage = np.asarray(linkage, np.float32)
        if linkage.shape != self.mean.shape:
            raise ProofQuestError(f"linkage has {linkage.shape} values for {len(self)} edges")
        return RAG(**{name: getattr(self, name) for name in _FIELDS if name != "linkage"},
                   n_supervoxels=self.n_supervoxels, linkage=linkage)

    @cached_property
    def _order_by_v(self) -> np.ndarray:
        return np.argsort(self.v, kind="stable")

    def incident(self, supervoxels: np.ndarray) -> np.ndarray:
        """Sorted indices of the edges that touch any of ``supervoxels``.

        Costs O(k log E) for k supervoxels and their edges, not O(E): ``u`` is
        sorted, and an argsort of ``v`` is built once on first use.
        """
        nodes = np.unique(np.asarray(supervoxels, dtype=self.u.dtype))
        by_u = _ranges(self.u, nodes)
        by_v = self._order_by_v[_ranges(self.v[self._order_by_v], nodes)]
        return np.union1d(by_u, by_v)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in _FIELDS}
        arrays["n_supervoxels"] = np.int64(self.n_supervoxels)
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> "RAG":
        """A RAG from :meth:`to_arrays`; one saved before ``z_area`` and ``linkage`` existed gets the defaults."""
        return cls(**{name: np.asarray(arrays[name]) for name in _FIELDS if name in arrays},
                   n_supervoxels=int(arrays["n_supervoxels"]))

    def save(self, path: str | Path) -> None:
        """Write the RAG as an ``.npz`` file."""
        np.savez_compressed(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> "RAG":
        with np.load(path) as arrays:
            return cls.from_arrays(arrays)


def _ranges(sorted_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Indices ``i`` with ``sorted_values[i]`` in ``keys`` (keys sorted, unique)."""
    lo = np.searchsorted(sorted_values, keys, side="left")
    hi = np.searchsorted(sorted_values, keys, side="right")
    counts = hi - lo
    # concatenated aranges lo[k]..hi[k] without a Python loop
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    return starts + np.arange(counts.sum())


@dataclass
class _EdgeSums:
    """Per-pair sums that combine exactly: the accumulator's working form."""

    key: np.ndarray      # int64 u * (n + 1) + v, sorted unique after reduce
    total: np.ndarray    # float64 sum of face values
    low: np.ndarray
    high: np.ndarray
    area: np.ndarray     # int64
    z_area: np.ndarray   # int64 faces across sections
    linked: np.ndarray   # float64 sum of linkage x faces

    @classmethod
    def concatenate(cls, parts: Sequence["_EdgeSums"]) -> "_EdgeSums":
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def reduce(self) -> "_EdgeSums":
        """Combine the rows that share a key (sort, then reduceat per run)."""
        if len(self.key) == 0:
            return self
        order = np.argsort(self.key, kind="stable")
        key = self.key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        return _EdgeSums(key[starts],
                         np.add.reduceat(self.total[order], starts),
                         np.minimum.reduceat(self.low[order], starts),
                         np.maximum.reduceat(self.high[order], starts),
                         np.add.reduceat(self.area[order], starts),
                         np.add.reduceat(self.z_area[order], starts),
                         np.add.reduceat(self.linked[order], starts))

    def to_rag(self, n_nodes: int) -> RAG:
        dtype = id_dtype(n_nodes)
        u, v = np.divmod(self.key, np.int64(n_nodes + 1))
        area = np.maximum(self.area, 1)
        return RAG(u.astype(dtype), v.astype(dtype), (self.total / area).astype(np.float32),
                   self.low.astype(np.float32), self.high.astype(np.float32),
                   self.area.astype(np.int64), int(n_nodes), z_area=self.z_area.astype(np.int64),
                   linkage=(self.linked / area).astype(np.float32))


def _pair_key(a: np.ndarray, b: np.ndarray, n_nodes: int) -> np.ndarray:
    if (n_nodes + 1) ** 2 > np.iinfo(np.int64).max:
        raise ProofQuestError(f"{n_nodes} nodes are too many for an int64 pair key; split the volume")
    a, b = a.astype(np.int64), b.astype(np.int64)
    return np.minimum(a, b) * (n_nodes + 1) + np.maximum(a, b)


def _face_sums(supervoxels: np.ndarray, boundary: np.ndarray, core: Sequence[int],
               n_nodes: int) -> _EdgeSums:
    """Faces whose lower voxel lies in the ``core`` corner of the arrays.

    The arrays may extend one voxel past ``core`` on the + side of each axis;
    the faces into that margin are counted here and nowhere else, so blocks
    that tile a volume count every face exactly once.
    """
    parts = []
    for axis in range(supervoxels.ndim):
        extent = [slice(0, c) for c in core]
        extent[axis] = slice(0, min(core[axis], supervoxels.shape[axis] - 1))
        nxt = list(extent)
        nxt[axis] = slice(extent[axis].start + 1, extent[axis].stop + 1)
        a, b = supervoxels[tuple(extent)], supervoxels[tuple(nxt)]
        face = (a != b) & (a != 0) & (b != 0)
        value = (boundary[tuple(extent)][face].astype(np.float64) + boundary[tuple(nxt)][face]) / 2
        ones = np.ones(len(value), np.int64)
        parts.append(_EdgeSums(_pair_key(a[face], b[face], n_nodes), value, value, value, ones,
                               ones if axis == 0 else np.zeros_like(ones), value))
    return _EdgeSums.concatenate(parts).reduce()


def build_rag(supervoxels: np.ndarray, boundary: np.ndarray) -> RAG:
    """The region adjacency graph of a supervoxel volume, in memory.

    Parameters
    ----------
    supervoxels : ndarray of int
        Label volume (z, y, x); 0 is no supervoxel and has no edges.
    boundary : ndarray
        Boundary map of the same shape, float 0..1 or uint8 0..255.

    Returns
    -------
    RAG
        One edge per pair of 6-connected supervoxels, each face valued by the
        mean of its two voxels' boundary values.
    """
    supervoxels = np.asarray(supervoxels)
    if supervoxels.shape != np.shape(boundary):
        raise ProofQuestError(
            f"supervoxels {supervoxels.shape} and boundary {np.shape(boundary)} differ in shape")
    accumulator = RAGAccumulator(int(supervoxels.max(initial=0)))
    accumulator.add(supervoxels, boundary, supervoxels.shape)
    return accumulator.finish()


class RAGAccumulator:
    """Builds a RAG from blocks, combining their statistics exactly.

    Each block is given with a one-voxel margin on the + side of each axis
    (clipped at the volume's end) and the shape of its core; faces between two
    blocks are counted by the block on their − side only.

    Parameters
    ----------
    n_supervoxels : int
        Largest supervoxel id in the whole volume (it sets the pair key).
    buffer_rows : int
        Partial edge rows kept before they are combined, to bound memory.
    """

    def __init__(self, n_supervoxels: int, buffer_rows: int = 4_000_000):
        self.n_supervoxels = int(n_supervoxels)
        self.buffer_rows = buffer_rows
        self._parts: list[_EdgeSums] = [_EdgeSums(*(np.zeros(0, t) for t in (np.int64, float, float, float, np.int64,
                                                                             np.int64, float)))]
        self._rows = 0

    def add(self, supervoxels: np.ndarray, boundary: np.ndarray, core_shape: Sequence[int]) -> None:
        """Add one block: its core plus the + side margin, and the core's shape."""
        self.add_sums(_face_sums(np.asarray(supervoxels), boundary_as_float(boundary), core_shape,
                                 self.n_supervoxels))

    def add_sums(self, part: "_EdgeSums") -> None:
        """Add one block's face sums (:func:`block_face_sums`, computed wherever the block was read)."""
        self._parts.append(part)
        self._rows += len(part.key)
        if self._rows > self.buffer_rows:
            self._parts = [_EdgeSums.concatenate(self._parts).reduce()]
            self._rows = len(self._parts[0].key)

    def finish(self) -> RAG:
        return _EdgeSums.concatenate(self._parts).reduce().to_rag(self.n_supervoxels)


def block_face_sums(read_supervoxels: Callable[[BBox], np.ndarray], read_boundary: Callable[[BBox], np.ndarray],
                    tile: BBox, shape: Sequence[int], n_supervoxels: int) -> _EdgeSums:
    """The face sums of one block of a volume (a task of :func:`build_rag_blockwise`): ``tile`` read with a
    one-voxel margin on each + side."""
    outer = BBox(tile.start, tuple(s + 1 for s in tile.stop)).clip(shape)
    return _face_sums(np.asarray(read_supervoxels(outer)), boundary_as_float(read_boundary(outer)), tile.shape,
                      int(n_supervoxels))


def _largest(read: Callable[[BBox], np.ndarray], tile: BBox) -> int:
    return int(np.max(read(tile), initial=0))


def build_rag_blockwise(read_supervoxels: Callable[[BBox], np.ndarray],
                        read_boundary: Callable[[BBox], np.ndarray],
                        shape: Sequence[int], chunks: Sequence[int], *,
                        n_supervoxels: int | None = None,
                        progress: ProgressCallback | None = None, scheduler: str | None = None) -> RAG:
    """The RAG of a volume too large for memory, built chunk by chunk as tasks of dask.

    Each block's face sums (:func:`block_face_sums`) are a task of
    :func:`game.blockwise.stream`; the parent adds them up in block order as
    they come, so the result does not depend on where the tasks ran.

    Parameters
    ----------
    read_supervoxels, read_boundary : callable
        ``read(bbox) -> ndarray`` for a box of the volume, e.g.
        ``game.blockwise.layer(volume, "supervoxels")``; picklable (as that one
        is) for a scheduler of processes or a cluster.
    shape, chunks : sequence of int
        Volume shape and block size (a multiple of the store's chunks reads
        each stored chunk fewer times).
    n_supervoxels : int, optional
        Largest supervoxel id; found by a first pass over the volume when omitted.
    progress : callable, optional
        Called as ``progress(done, total)`` as blocks are added.
    scheduler : str, optional
        Where the tasks run (:func:`game.blockwise.compute`): local threads by default.

    Returns
    -------
    RAG
        Equal to ``build_rag`` on the whole volume.
    """
    from game import blockwise
    volume = BBox.from_shape(shape)
    tiles = list(volume.tiles(chunks))
    read_supervoxels, read_boundary = blockwise.Shared(read_supervoxels), blockwise.Shared(read_boundary)
    if n_supervoxels is None:
        n_supervoxels = max(blockwise.compute([functools.partial(_largest, read_supervoxels, tile) for tile in tiles],
                                              scheduler=scheduler))
    accumulator = RAGAccumulator(n_supervoxels)
    for part in blockwise.stream([functools.partial(block_face_sums, read_supervoxels, read_boundary, tile,
                                                    tuple(shape), n_supervoxels) for tile in tiles],
                                 scheduler=scheduler, progress=progress, window=blockwise.WINDOW):
        accumulator.add_sums(part)
    return accumulator.finish()


def edges_between(rag: RAG, mapping: np.ndarray) -> RAG:
    """The RAG of the segments: edges between different segments, combined per pair.

    Parameters
    ----------
    rag : RAG
        Supervoxel RAG.
    mapping : ndarray
        ``mapping[sv]`` is the segment of supervoxel ``sv``.

    Returns
    -------
    RAG
        Nodes are segment ids (``n_supervoxels`` holds the largest); ``mean``
        and ``linkage`` are the contact-area weighted means over the
        supervoxel edges, ``min`` and ``max`` their extremes, ``area`` and
        ``z_area`` their totals.
    """
    mapping = np.asarray(mapping)
    su, sv = mapping[rag.u], mapping[rag.v]
    keep = su != sv
    # key on dense indices: imported segment ids can be too large to square
    segments, dense = np.unique(np.concatenate([su[keep], sv[keep]]), return_inverse=True)
    a, b = np.split(dense, 2)
    area = rag.area[keep]
    sums = _EdgeSums(_pair_key(a, b, len(segments)), rag.mean[keep].astype(np.float64) * area,
                     rag.min[keep], rag.max[keep], area, rag.z_area[keep],
                     rag.linkage[keep].astype(np.float64) * area)
    dense = sums.reduce().to_rag(len(segments))
    largest = int(mapping.max(initial=0))
    u, v = (segments[ends].astype(id_dtype(largest)) for ends in (dense.u, dense.v))
    return RAG(u, v, dense.mean, dense.min, dense.max, dense.area, largest, z_area=dense.z_area,
               linkage=dense.linkage)
