"""Supervoxels, their region adjacency graph, agglomeration and edits.

The segmentation is supervoxels plus a mapping: ``supervoxels`` is a fixed
watershed over-segmentation and ``mapping[sv]`` the segment of each
supervoxel. This module makes supervoxels (:func:`watershed_supervoxels`,
:func:`oversegment_segments`), an initial mapping by mean agglomeration
(:func:`agglomerate`) and the graph queries the error detector needs; the RAG
lives in :mod:`game.rag` and the editable mapping in :mod:`game.agglomeration`,
re-exported here so that ``game.graph`` is the one place to import from.
"""

from __future__ import annotations

import heapq
from typing import Sequence

import fastremap
import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as connected_regions
from skimage.segmentation import watershed

from .agglomeration import Agglomeration, Edit
from .errors import ProofQuestError
from .rag import (RAG, RAGAccumulator, boundary_as_float, build_rag, build_rag_blockwise,
                  edges_between, id_dtype)

__all__ = ["RAG", "RAGAccumulator", "Agglomeration", "Edit", "agglomerate", "build_rag",
           "build_rag_blockwise", "edges_between", "oversegment_segments", "segment_subgraph",
           "watershed_supervoxels"]


def _relative_sampling(sampling: Sequence[float]) -> np.ndarray:
    sampling = np.asarray(sampling, dtype=float)
    if sampling.shape != (3,) or (sampling <= 0).any():
        raise ProofQuestError(f"sampling is three positive voxel sizes (z, y, x), got {sampling.tolist()}")
    return sampling / sampling.min()


def _seeds(inside: np.ndarray, min_distance: float, sampling: np.ndarray) -> np.ndarray:
    """Markers at the maxima of the distance to the nearest non-``inside`` voxel.

    One seed per thick part of each region: a neck narrower than the parts it
    joins separates two maxima, so two cells touching through a faint
    membrane still get a seed each (the distance-transform watershed).
    """
    distance = ndi.distance_transform_edt(inside, sampling=sampling)
    size = tuple(2 * max(1, round(min_distance / s)) + 1 for s in sampling)
    peaks = inside & (ndi.maximum_filter(distance, size=size) == distance)
    markers, _ = ndi.label(peaks)
    return markers


def _as_dense_ids(labels: np.ndarray) -> np.ndarray:
    labels, _ = fastremap.renumber(labels, preserve_zero=True, in_place=True)
    return labels.astype(id_dtype(int(labels.max(initial=0))), copy=False)


def watershed_supervoxels(boundary: np.ndarray, *, mask: np.ndarray | None = None,
                          seed_threshold: float = 0.5, min_distance: float = 4,
                          sigma: float = 1.0, sampling: Sequence[float] = (1, 1, 1),
                          compactness: float = 0.0) -> np.ndarray:
    """Over-segment a boundary map into supervoxels by seeded 3D watershed.

    Seeds are the maxima of the distance transform of the low-boundary region
    (smoothed boundary < ``seed_threshold``), at least ``min_distance`` apart;
    the smoothed boundary map is flooded from them. Distances and smoothing
    use the voxel size, so anisotropic EM gets seeds spaced alike in nm.

    Parameters
    ----------
    boundary : ndarray
        Membrane probability (z, y, x), float 0..1 or uint8 0..255.
    mask : ndarray of bool, optional
        Voxels to label; the rest get 0.
    seed_threshold : float
        Boundary value below which a voxel counts as cell interior.
    min_distance : float
        Least distance between seeds, in voxels of the finest axis.
    sigma : float
        Gaussian smoothing of the boundary map, in voxels of the finest axis.
    sampling : sequence of 3 float
        Voxel size (z, y, x), any unit.
    compactness : float
        Compact watershed (Neubert & Protzel 2014); 0 is the classic flood.

    Returns
    -------
    ndarray of uint32
        Supervoxel ids ``1..N`` (0 outside ``mask``).

    References
    ----------
    Beucher & Meyer (1993), The morphological approach to segmentation: the
    watershed transformation. Zlateski & Seung (2015), Image segmentation by
    size-dependent single linkage clustering of a watershed basin graph.
    """
    relative = _relative_sampling(sampling)
    surface = boundary_as_float(boundary)
    if sigma > 0:
        surface = ndi.gaussian_filter(surface, sigma / relative)
    inside = surface < seed_threshold
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        inside &= mask
    labels = watershed(surface, _seeds(inside, min_distance, relative), mask=mask,
                       compactness=compactness)
    # parts of the mask that no seed reached (e.g. all membrane) become supervoxels of their own
    unreached = labels == 0 if mask is None else mask & (labels == 0)
    if unreached.any():
        extra, _ = ndi.label(unreached)
        labels[unreached] = extra[unreached] + labels.max()
    return _as_dense_ids(labels)


def oversegment_segments(segmentation: np.ndarray, boundary: np.ndarray | None = None, *,
                         seed_threshold: float = 0.5, min_distance: float = 4,
                         sigma: float = 1.0, sampling: Sequence[float] = (1, 1, 1)
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Supervoxels for a volume that arrives segmented: a watershed inside each segment.

    Without a boundary map each segment is cut at the necks of its distance
    transform; with one, seeds come from its low-boundary interior as in
    :func:`watershed_supervoxels`. Every supervoxel is a connected piece of
    one segment, so ``mapping[supervoxels]`` reproduces ``segmentation``.

    Parameters
    ----------
    segmentation : ndarray of int
        Segment ids (z, y, x), 0 = none; they are kept as they are in ``mapping``.
    boundary : ndarray, optional
        Membrane probability, float 0..1 or uint8 0..255.
    seed_threshold, min_distance, sigma, sampling
        As in :func:`watershed_supervoxels`.

    Returns
    -------
    supervoxels : ndarray of uint32
        Dense ids ``1..N``, 0 where ``segmentation`` is 0.
    mapping : ndarray
        ``mapping[sv]`` = the segment of ``sv``; ``mapping[0] == 0``.
    """
    segmentation = np.asarray(segmentation)
    if not np.issubdtype(segmentation.dtype, np.integer) or segmentation.min(initial=0) < 0:
        raise ProofQuestError("a segmentation holds non-negative integer ids")
    relative = _relative_sampling(sampling)
    labelled = segmentation != 0
    interior = labelled.copy()
    for axis in range(segmentation.ndim):
        lo = [slice(None)] * segmentation.ndim
        hi = list(lo)
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        differ = segmentation[tuple(lo)] != segmentation[tuple(hi)]
        interior[tuple(lo)] &= ~differ
        interior[tuple(hi)] &= ~differ
    if boundary is None:
        surface = -ndi.distance_transform_edt(interior, sampling=relative)
        inside = interior
    else:
        surface = boundary_as_float(boundary)
        if sigma > 0:
            surface = ndi.gaussian_filter(surface, sigma / relative)
        inside = interior & (surface < seed_threshold)
    basins = watershed(surface, _seeds(inside, min_distance, relative), mask=labelled)
    # a basin that flooded across a segment border is cut there: one id per (basin, segment) piece
    dense_segments = _as_dense_ids(segmentation.copy())
    pieces = basins.astype(np.int64) * (int(dense_segments.max()) + 1) + dense_segments
    pieces[~labelled] = 0
    supervoxels = _as_dense_ids(connected_regions(pieces, background=0, connectivity=1))
    mapping = np.zeros(int(supervoxels.max(initial=0)) + 1,
                       dtype=id_dtype(int(segmentation.max(initial=0))))
    mapping[supervoxels] = segmentation
    return supervoxels, mapping


def _merge_by_mean(a: np.ndarray, b: np.ndarray, total: np.ndarray, area: np.ndarray,
                   threshold: float, n_nodes: int) -> np.ndarray:
    """Mean agglomeration on nodes ``0..n_nodes-1``; returns each node's root.

    A heap holds (mean, a, b) and is invalidated lazily: an entry is stale
    when an endpoint has merged away or the pair's mean has changed since.
    The smaller adjacency is folded into the larger, so the work is
    O(E log E) overall.
    """
    a, b, total, area = a.tolist(), b.tolist(), total.tolist(), area.tolist()
    adjacency: list[dict | None] = [{} for _ in range(n_nodes)]
    for x, y, s, n in zip(a, b, total, area):
        adjacency[x][y] = adjacency[y][x] = (s, n)
    heap = list(zip((np.asarray(total) / np.asarray(area)).tolist(), a, b))
    heapq.heapify(heap)
    parent = list(range(n_nodes))
    while heap and heap[0][0] < threshold:
        mean, x, y = heapq.heappop(heap)
        keep, gone = adjacency[x], adjacency[y]
        if keep is None or gone is None:
            continue
        edge = keep.get(y)
        if edge is None or edge[0] / edge[1] != mean:
            continue
        if len(keep) < len(gone):
            x, y, keep, gone = y, x, gone, keep
        adjacency[y] = None
        parent[y] = x
        del keep[y]
        for z, (s, n) in gone.items():
            if z == x:
                continue
            near = adjacency[z]
            del near[y]
            if z in keep:
                s0, n0 = keep[z]
                s, n = s + s0, n + n0
            keep[z] = near[x] = (s, n)
            heapq.heappush(heap, (s / n, x, z))
    parent = np.array(parent)
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def agglomerate(rag: RAG, threshold: float, *, mapping: np.ndarray | None = None) -> np.ndarray:
    """Hierarchical agglomeration by mean boundary value.

    Repeatedly merges the two adjacent regions whose contact has the lowest
    area-weighted mean boundary value, while it is below ``threshold``; a
    merged region's contact with a common neighbour is the area-weighted mean
    of the two contacts it replaces.

    Parameters
    ----------
    rag : RAG
        Supervoxel RAG (boundary statistics 0..1).
    threshold : float
        Stop when the lowest mean boundary reaches this.
    mapping : ndarray, optional
        Initial supervoxel → segment mapping to start from (default: each
        supervoxel alone).

    Returns
    -------
    ndarray
        New mapping; each segment takes the smallest id among the segments
        (or supervoxels) merged into it.

    References
    ----------
    Nunez-Iglesias et al. (2013), Machine learning of hierarchical clustering
    to segment 2D and 3D images, PLoS ONE 8(8):e71715. Lee et al. (2017),
    Superhuman accuracy on the SNEMI3D connectomics challenge, arXiv:1706.00120.
    Funke et al. (2018), Large scale image segmentation with structured loss
    based deep learning for connectome reconstruction, IEEE TPAMI (waterz).
    """
    initial = np.arange(rag.n_supervoxels + 1) if mapping is None else np.asarray(mapping)
    if len(initial) != rag.n_supervoxels + 1:
        raise ProofQuestError(
            f"the mapping covers {len(initial) - 1} supervoxels but the RAG has {rag.n_supervoxels}")
    result = initial.astype(id_dtype(int(initial.max(initial=0))))
    graph = edges_between(rag, initial)
    if len(graph) == 0:
        return result
    nodes, ends = np.unique(np.concatenate([graph.u, graph.v]), return_inverse=True)
    a, b = np.split(ends, 2)
    roots = _merge_by_mean(a, b, graph.mean.astype(np.float64) * graph.area, graph.area,
                           threshold, len(nodes))
    smallest = np.full(len(nodes), np.iinfo(np.uint64).max, dtype=np.uint64)
    np.minimum.at(smallest, roots, nodes.astype(np.uint64))
    where = np.minimum(np.searchsorted(nodes, result), len(nodes) - 1)
    merged = nodes[where] == result
    result[merged] = smallest[roots[where[merged]]]
    return result


def segment_subgraph(rag: RAG, agglomeration: Agglomeration, segment: int) -> RAG:
    """The RAG edges inside ``segment`` (both ends among its supervoxels).

    Costs O(members and their edges), not O(E), via :meth:`RAG.incident`.
    """
    index = rag.incident(agglomeration.members(segment))
    mapping = agglomeration.mapping
    inside = (mapping[rag.u[index]] == segment) & (mapping[rag.v[index]] == segment)
    return rag.subset(index[inside])
