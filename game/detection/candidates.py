"""Suspected segmentation errors and the edits that would fix them.

Three kinds of proposal, each with the edit that would fix it:

- a *contact merge*: two touching segments whose contact is faint enough
  that they may be one neurite (a false split); the edit joins them;
- a *gap merge*: two segments that never touch, one ending where the other
  starts a few sections further in z, overlapping in (y, x): a neurite
  interrupted by another crossing it, or by a damaged section; the edit joins
  them;
- a *tree split*: a segment that may hold two neurites (a false merge). The
  automatic segmentation built each segment by mean agglomeration
  (:func:`game.segmentation.merging.agglomerate`), and replaying it on the
  edges inside the segment reproduces its merge tree
  (:func:`game.segmentation.merging.mean_linkage_tree`): undoing one of its
  merges cuts the segment where it may have gone wrong, the smaller side (the
  suspected intruder) moving. The last few merges (where the agglomeration
  was least sure) are proposed as they are; a deeper merge only where the
  boundary across its cut is stronger than inside the segment on average
  (boundary evidence of two neurites). A segment's cuts are asked strongest
  boundary first (``rank`` 0), one at a time, the next after a "no".
  Measured by ``bench/bench_split_reach.py`` on the demo (seeds 0, 1, 2): a
  correct cut is offered for 51 of the 55 false merges with at least 64
  intruding voxels (28 with the last 8 merges and a least share of 2% of the
  segment), the best removing 76%, 61% and 80% of the intruding voxels (54%,
  47%, 77%), at 2.4 to 3.1 cuts per clean segment (2.0 to 2.3).

Candidates are plain, JSON-safe dicts, so that they travel unchanged into the
puzzle store and back out in the exports that retrain the detector::

    kind         'merge' | 'split'
    how          'contact' | 'gap' (merge) or 'tree' (split)
    key          what the edit does, independent of segment ids: one question is asked once
    score        P(the proposed edit is correct); here the baseline score
    location     [z, y, x], a voxel on the contact, the gap's end face or the cut
    segments     [a, b] for a merge, [segment] for a split
    anchors      merge: one supervoxel of each segment at the contact;
                 split: [a supervoxel that stays, a supervoxel that moves]
    supervoxels  split: the supervoxels that move; merge: []
    rank         split: its place in the segment's walk (0: the strongest boundary across)
    z_end, z_start  gap merge: the section where ``a`` ends and the one where ``b`` starts
    features     boundary and size statistics (inputs of the detector)
    truth        (after game.puzzles.edit.label_edits) is the proposed edit correct

Anchors let an edit be resolved again after other edits renamed segments
(:class:`game.puzzles.edit.PuzzleEdit`), as FlyWire resolves edits through
supervoxels. The *baseline score* ranks contact merges by how faint the
boundary between the two segments is, splits by how strong the boundary
across the cut is, gap merges by how much the two ends overlap: what the
detector must beat. :func:`find_candidates` scans a whole segmentation, or
only the segments an edit touched (``segments``), for the living pool.

References
----------
Nunez-Iglesias, J. et al. (2013). Machine learning of hierarchical clustering to
segment 2D and 3D images. PLoS ONE 8(8):e71715.
Haehn, D. et al. (2018). Guided Proofreading of automatic segmentations for
connectomics. CVPR.
Zung, J., Tartavull, I., Lee, K., Seung, H. S. (2017). An error detection and
correction framework for connectomics. NIPS.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Iterable, Sequence

import numpy as np

from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.merging import mean_linkage_tree
from game.segmentation.rag import RAG

KINDS = ("merge", "split")
# A contact whose mean boundary is above this is a membrane, not a false split worth a puzzle. 0.95 rather than
# 0.9: on fibsem-gala the last correct joins lie between the two (one wrong question more, the limit reached).
MAX_MERGE_BOUNDARY = 0.95
# Contacts of any area are proposed: on the demo (seeds 0, 1, 2) the contacts of 1 to 3 voxel faces are correct
# joins more often than the larger ones (6 of 47, against 1 in 10), an oblique neurite's two pieces meeting
# edge to edge; a floor of 4 faces left out 6% of demo seed 2's needed join mass (bench/bench_join_reach.py).
MIN_CONTACT_AREA = 1
# Parts smaller than this many voxels are too small to see in a puzzle. (No least share of the segment: a
# small intruder in a large segment is a false merge too; a 2% least share left out 23 of the demo's 55 false
# merges with at least 64 intruding voxels.)
MIN_PART_VOXELS = 64
# The last merges of a segment's tree proposed as cuts whatever the boundary across (deeper ones need evidence).
TREE_DEPTH = 4
# A deeper cut is proposed when the mean boundary across it exceeds the segment's inside mean by more than this.
CUT_CONTRAST = 0.0
# Gap merges: the most sections between an end and a start, and the least overlap (voxels, share of a face).
MAX_GAP_SECTIONS = 12
MIN_GAP_OVERLAP = 20
MIN_GAP_SHARE = 0.3


# --- one pass over the supervoxels ------------------------------------------------------

def _pair_keys(a: np.ndarray, b: np.ndarray, n_supervoxels: int) -> np.ndarray:
    a, b = a.astype(np.int64), b.astype(np.int64)
    return np.minimum(a, b) * (n_supervoxels + 1) + np.maximum(a, b)


def _block_faces(block: np.ndarray, tile: BBox, n_supervoxels: int) -> tuple[np.ndarray, np.ndarray]:
    """The faces in a block between two supervoxels: the pair's key and the face's lower voxel
    ``[z, y, x]``, in scan order (axis by axis, C order within an axis).

    ``block`` is ``tile`` and one voxel more on each + side: a face is counted by the tile holding its
    lower voxel.
    """
    found_keys, found_points = [], []
    for axis in range(3):
        lower = [slice(0, c) for c in tile.shape]
        lower[axis] = slice(0, min(tile.shape[axis], block.shape[axis] - 1))
        upper = list(lower)
        upper[axis] = slice(1, lower[axis].stop + 1)
        a, b = block[tuple(lower)], block[tuple(upper)]
        face = (a != b) & (a != 0) & (b != 0)
        found_keys.append(_pair_keys(a[face], b[face], n_supervoxels))
        found_points.append(np.argwhere(face) + np.asarray(tile.start))
    return np.concatenate(found_keys), np.concatenate(found_points)


def _read_outer(read, tile: BBox, shape) -> np.ndarray:
    """``tile`` and one voxel more on each + side (clipped at the volume's end)."""
    return np.asarray(read(BBox(tile.start, tuple(s + 1 for s in tile.stop)).clip(shape)))


def scan_counts(read, tile: BBox, shape: tuple[int, ...], n_supervoxels: int, faces: bool) -> tuple:
    """The first pass of :func:`scan_supervoxels` over one block (a task): the supervoxel ids in ``tile``
    with their voxel counts, and (with ``faces``) the pairs touching in it with their face counts and the
    sums of their face voxels' coordinates."""
    block = _read_outer(read, tile, shape)
    voxels = np.bincount(block[tuple(slice(0, c) for c in tile.shape)].ravel().astype(np.intp, copy=False))
    ids = np.flatnonzero(voxels)
    voxels = voxels[ids]
    if not faces:
        return ids, voxels, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    keys, points = _block_faces(block, tile, n_supervoxels)
    pairs, counts = np.unique(keys, return_counts=True)
    inverse = np.searchsorted(pairs, keys)
    sums = np.stack([np.bincount(inverse, weights=points[:, axis], minlength=len(pairs)) for axis in range(3)],
                    axis=1)  # sums of integer coordinates: exact in float64
    return ids, voxels, pairs, counts, sums


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``keys`` stands in ``sorted_keys``, and whether it is there at all."""
    if not len(sorted_keys):
        return np.zeros(len(keys), np.intp), np.zeros(len(keys), bool)
    index = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return index, sorted_keys[index] == keys


def scan_nearest(read, tile: BBox, shape: tuple[int, ...], n_supervoxels: int, pairs: np.ndarray,
                 centroid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The second pass of :func:`scan_supervoxels` over one block (a task): of each pair in ``pairs``
    (sorted keys, with their ``centroid``), the face voxel in ``tile`` nearest to it, the first in
    (z, y, x) of equally near ones; returns the pairs' indices, squared distances and the voxels' flat
    indices in the volume (C order: their (z, y, x) order)."""
    keys, points = _block_faces(_read_outer(read, tile, shape), tile, n_supervoxels)
    index, hit = _find(pairs, keys)
    index, points = index[hit], points[hit]
    distance = ((points - centroid[index]) ** 2).sum(axis=1)
    flat = np.ravel_multi_index(tuple(points.T), shape) if len(points) else np.zeros(0, np.int64)
    order = np.lexsort((flat, distance, index))
    first = order[np.r_[True, index[order][1:] != index[order][:-1]]] if len(order) else order
    return index[first], distance[first], flat[first]


def scan_supervoxels(volume, pairs: np.ndarray, n_supervoxels: int, *,
                     progress: ProgressCallback | None = None,
                     scheduler: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voxel count of every supervoxel and a point on the contact of each pair, chunk by chunk as tasks
    of dask.

    The contact point of a pair is the face voxel (the face's lower voxel) nearest
    to the centroid of all its faces: the middle of the contact, and on it even
    when the contact is curved; of equally near ones, the first in (z, y, x)
    order, so the point does not depend on the chunks it was read in. Two
    passes, so that memory holds a few numbers per pair and one chunk, never
    the faces of the whole volume: the first counts the voxels and sums each
    pair's face voxels per chunk (:func:`scan_counts`), the parent adding them
    up into the centroids; the second finds each chunk's nearest face voxel of
    the pairs that touch in it (:func:`scan_nearest`), the parent keeping the
    nearest of all. Counts and sums are integers, exact in any order, so the
    result does not depend on where the tasks ran.

    Parameters
    ----------
    volume : Volume or any object with ``shape`` and ``read(layer, bbox, fill=0)``
        Read chunk by chunk (its ``chunks`` when it has them): a stored volume
        by URL (:func:`game.blockwise.layer`), so that its chunks can be read
        by other processes.
    pairs : ndarray, shape (P, 2)
        Touching supervoxel pairs (edges of the RAG).
    n_supervoxels : int
        Largest supervoxel id.
    progress : callable, optional
        ``progress(done, total)`` over the chunks of both passes.
    scheduler : str, optional
        Where the tasks run (:func:`game.blockwise.compute`): local threads by default.

    Returns
    -------
    sizes : ndarray of int64, shape (n_supervoxels + 1,)
    points : ndarray of int64, shape (P, 3)
        ``[z, y, x]`` for each pair, in the order given.
    """
    from game import blockwise
    shape = tuple(volume.shape)
    read = blockwise.Shared(blockwise.layer(volume, "supervoxels"))  # an in-memory stand-in goes once
    asked = _pair_keys(pairs[:, 0], pairs[:, 1], n_supervoxels)
    wanted = np.unique(asked)
    sizes = np.zeros(n_supervoxels + 1, np.int64)
    counts = np.zeros(len(wanted), np.int64)
    sums = np.zeros((len(wanted), 3), np.float64)
    tiles = list(BBox.from_shape(shape).tiles(getattr(volume, "chunks", shape)))
    passes = 2 if len(wanted) else 1
    touching = []  # per chunk: the indices in ``wanted`` of the pairs that touch in it
    first = blockwise.stream([functools.partial(scan_counts, read, tile, shape, n_supervoxels, bool(len(wanted)))
                              for tile in tiles], scheduler=scheduler, window=blockwise.WINDOW,
                             progress=None if progress is None else lambda done, total: progress(done, passes * total))
    for ids, voxels, found, found_counts, found_sums in first:
        inside = ids <= n_supervoxels
        sizes[ids[inside].astype(np.intp)] += voxels[inside]
        index, hit = _find(wanted, found)
        counts[index[hit]] += found_counts[hit]
        sums[index[hit]] += found_sums[hit]
        touching.append(index[hit])
    if not len(wanted):
        return sizes, np.zeros((0, 3), np.int64)
    if (counts == 0).any():
        raise ProofQuestError("the RAG has an edge that the supervoxel layer does not: "
                              "rebuild the RAG from this volume's supervoxels")
    centroid = sums / counts[:, None]
    best = np.full(len(wanted), np.inf)
    nearest = np.zeros(len(wanted), np.int64)  # the flat index of each pair's nearest face voxel so far
    second = [(index, functools.partial(scan_nearest, read, tile, shape, n_supervoxels, wanted[index], centroid[index]))
              for tile, index in zip(tiles, touching) if len(index)]
    done_first = len(tiles)
    results = blockwise.stream([task for _, task in second], scheduler=scheduler, window=blockwise.WINDOW,
                               progress=None if progress is None else
                               lambda done, total: progress(done_first + done * len(tiles) // max(total, 1),
                                                            2 * len(tiles)))
    for (index, _), (local, distance, flat) in zip(second, results):
        pair = index[local]
        closer = (distance < best[pair]) | (distance == best[pair]) & (flat < nearest[pair])
        best[pair[closer]], nearest[pair[closer]] = distance[closer], flat[closer]
    points = np.stack(np.unravel_index(nearest, shape), axis=1).astype(np.int64)
    return sizes, points[np.searchsorted(wanted, asked)]


# --- contact merges ----------------------------------------------------------------

def _scope(rag: RAG, agg: Agglomeration, segments: Iterable[int] | None) -> np.ndarray:
    """Indices of the RAG edges to look at: all, or those touching the given segments' supervoxels."""
    if segments is None:
        return np.arange(len(rag.u))
    members = [agg.members(s) for s in sorted({int(s) for s in segments})]
    return rag.incident(np.concatenate(members)) if members else np.zeros(0, np.int64)


def merge_proposals(rag: RAG, mapping: np.ndarray, index: np.ndarray, *,
                    max_boundary: float = MAX_MERGE_BOUNDARY, min_area: int = MIN_CONTACT_AREA) -> list[dict]:
    """Segment pairs touching through the edges ``index`` whose contact is faint enough to be a false split.

    Each proposal has ``segments``, ``anchors`` (the supervoxel pair with the
    largest contact between the two segments, the spot a puzzle shows), its
    RAG edge and the contact's boundary statistics (over the pair's edges among
    ``index``: all of them when ``index`` holds every edge of either segment).
    """
    su, sv = mapping[rag.u[index]], mapping[rag.v[index]]
    cross = su != sv
    edges = index[cross]
    a, b = np.minimum(su[cross], sv[cross]).astype(np.int64), np.maximum(su[cross], sv[cross]).astype(np.int64)
    if len(edges) == 0:
        return []
    order = np.lexsort((-rag.area[edges], b, a))
    a, b, edges = a[order], b[order], edges[order]
    starts = np.flatnonzero(np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])])
    area = np.add.reduceat(rag.area[edges].astype(np.float64), starts)
    mean = np.add.reduceat(rag.mean[edges].astype(np.float64) * rag.area[edges], starts) / area
    linkage = np.add.reduceat(rag.linkage[edges].astype(np.float64) * rag.area[edges], starts) / area
    across = np.add.reduceat(rag.z_area[edges], starts) / area
    low = np.minimum.reduceat(rag.min[edges], starts)
    high = np.maximum.reduceat(rag.max[edges], starts)
    proposals = []
    for k in np.flatnonzero((linkage <= max_boundary) & (area >= min_area)).tolist():
        e = int(edges[starts[k]])  # the pair's largest contact comes first
        first, second = int(rag.u[e]), int(rag.v[e])
        if mapping[first] != a[starts[k]]:
            first, second = second, first
        proposals.append({
            "kind": "merge", "how": "contact", "segments": [int(a[starts[k]]), int(b[starts[k]])],
            "anchors": [first, second], "supervoxels": [], "edge": e,
            "features": {"boundary_mean": float(mean[k]), "boundary_min": float(low[k]),
                         "boundary_max": float(high[k]), "anchor_mean": float(rag.mean[e]),
                         "contact_area": int(area[k]), "ncut": 0.0, "linkage": float(linkage[k]),
                         "across_sections": float(across[k])}})
    return proposals


# --- tree splits ---------------------------------------------------------------------

def _internal_edges(rag: RAG, mapping: np.ndarray, index: np.ndarray):
    """Yield ``(segment, edge indices inside it)`` for each segment with internal edges among ``index``."""
    su = mapping[rag.u[index]]
    internal = index[su == mapping[rag.v[index]]]
    segment = mapping[rag.u[internal]]
    order = np.argsort(segment, kind="stable")
    internal, segment = internal[order], segment[order]
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]) if len(internal) else np.zeros(0, int)
    for start, stop in zip(starts.tolist(), np.r_[starts[1:], len(internal)].tolist()):
        yield int(segment[start]), np.sort(internal[start:stop])


def tree_cuts(rag: RAG, edges: np.ndarray, sizes: np.ndarray, *, depth: int = TREE_DEPTH,
              min_voxels: int = MIN_PART_VOXELS, contrast: float | None = CUT_CONTRAST) -> list[dict]:
    """Cuts of one segment that undo a merge of its tree, the smaller side moving, strongest boundary first.

    A merge of the segment's mean-linkage tree is undone by moving the smaller
    of the two clusters it joined out of the whole segment. The last
    ``depth`` merges are proposed whatever the boundary; a deeper one when
    the mean linkage across its cut (area-weighted) exceeds the mean linkage
    of all the segment's inside edges by more than ``contrast``: inside a
    false merge the membrane between the two neurites is stronger than the
    segment's own inside on average, while a cut through one neurite crosses
    faint contacts. Over every tree cut of the demo (seeds 0, 1, 2) this excess
    ranks cuts by correctness with ROC AUC 0.82, the merge's place in the tree
    (last first) with 0.76. On a badly under-segmented volume (snemi-mini at
    the default threshold, segments of ten objects) correct cuts can be
    fainter than such an inside: the last merges keep them.

    Parameters
    ----------
    rag : RAG
    edges : ndarray
        Indices of the RAG edges inside the segment.
    sizes : ndarray
        Voxels per supervoxel id.
    depth : int
        The last merges proposed whatever the boundary across.
    min_voxels : int
        Leave out cuts whose smaller side has fewer voxels.
    contrast : float, optional
        The excess of the boundary across a deeper cut over the segment's inside mean that it must pass; None:
        every merge is proposed.

    Returns
    -------
    list of dict
        ``{'rank' (0: the strongest boundary across), 'moved' (supervoxels), 'edge' (the largest RAG edge
        across the cut), 'height' (linkage of the undone merge), 'boundary' (mean linkage across the cut),
        'across' (indices of the edges across the cut)}``, strongest boundary first; a partition found twice
        is given once.

    References
    ----------
    Nunez-Iglesias, J. et al. (2013). Machine learning of hierarchical clustering to segment 2D and 3D
    images. PLoS ONE 8(8):e71715 (the merge tree).
    """
    u, v = rag.u[edges], rag.v[edges]
    linkage, area = rag.linkage[edges].astype(np.float64), rag.area[edges].astype(np.float64)
    nodes, ends = np.unique(np.concatenate([u, v]), return_inverse=True)
    i, j = np.split(ends, 2)
    merges, members = mean_linkage_tree(len(nodes), i, j, linkage, area)
    inside = float(np.average(linkage, weights=area))
    voxels = sizes[nodes].astype(np.float64)
    total = voxels.sum()
    cuts, seen = [], set()
    for position, (height, left, right, _) in enumerate(reversed(merges)):
        side = min((members[left], members[right]), key=lambda m: voxels[m].sum())
        moved = voxels[side].sum()
        if min(moved, total - moved) < min_voxels:
            continue
        key = frozenset(side.tolist())
        if key in seen:
            continue
        seen.add(key)
        moving = np.zeros(len(nodes), bool)
        moving[side] = True
        across = np.flatnonzero(moving[i] != moving[j])
        boundary = float(np.average(linkage[across], weights=area[across]))
        if position >= depth and contrast is not None and boundary - inside <= contrast + 1e-6:  # (1e-6: rounding)
            continue
        cuts.append({"moved": nodes[side], "height": float(height), "boundary": boundary, "across": edges[across],
                     "edge": int(edges[across[np.argmax(area[across])]])})
    cuts.sort(key=lambda c: -c["boundary"])
    for rank, cut in enumerate(cuts):
        cut["rank"] = rank
    return cuts


def split_proposals(rag: RAG, mapping: np.ndarray, sizes: np.ndarray, index: np.ndarray, *,
                    segments: Iterable[int] | None = None, depth: int = TREE_DEPTH,
                    min_voxels: int = MIN_PART_VOXELS, contrast: float | None = CUT_CONTRAST,
                    progress: ProgressCallback | None = None) -> list[dict]:
    """:func:`tree_cuts` of every segment with internal edges among ``index`` (or only ``segments``)."""
    wanted = None if segments is None else {int(s) for s in segments}
    groups = [(s, e) for s, e in _internal_edges(rag, mapping, index) if wanted is None or s in wanted]
    proposals = []
    for done, (segment, edges) in enumerate(groups, 1):
        for cut in tree_cuts(rag, edges, sizes, depth=depth, min_voxels=min_voxels, contrast=contrast):
            across, e = cut["across"], cut["edge"]
            area = rag.area[across]
            first, second = int(rag.u[e]), int(rag.v[e])
            if first in set(cut["moved"].tolist()):
                first, second = second, first
            proposals.append({
                "kind": "split", "how": "tree", "rank": cut["rank"], "segments": [segment],
                "anchors": [first, second], "supervoxels": sorted(int(s) for s in cut["moved"]), "edge": e,
                "features": {"boundary_mean": float(np.average(rag.mean[across], weights=area)),
                             "boundary_min": float(rag.min[across].min()),
                             "boundary_max": float(rag.max[across].max()), "anchor_mean": float(rag.mean[e]),
                             "contact_area": int(area.sum()), "ncut": cut["height"],
                             "linkage": float(np.average(rag.linkage[across], weights=area)),
                             "across_sections": float(rag.z_area[across].sum() / area.sum())}})
        if progress is not None:
            progress(done, len(groups))
    return proposals


# --- gap merges ----------------------------------------------------------------------

def _faces(labels: np.ndarray, beside: np.ndarray) -> np.ndarray:
    """Labels of ``labels`` where the section ``beside`` has another label (0 elsewhere)."""
    return np.where(labels != beside, labels, 0)


def gap_proposals(volume, agg: Agglomeration, touching: set[tuple[int, int]], *,
                  max_gap: int = MAX_GAP_SECTIONS, min_overlap: int = MIN_GAP_OVERLAP,
                  min_share: float = MIN_GAP_SHARE, slab: int = 32) -> list[dict]:
    """Pairs of segments that never touch, one ending where the other starts a few sections further in z.

    A segment's *end face* at section z is where it has voxels at z and none
    at z + 1; another's *start face* at z + d is where it has voxels and none
    at z + d − 1. An end face and a start face overlapping in (y, x) across
    1..``max_gap`` sections, between segments that do not touch, is a
    candidate join: on the demo, a neurite whose voxels another crossing it
    claimed; on serial-section EM, a damaged or missing section.

    Parameters
    ----------
    volume : Volume or stand-in
        Its ``supervoxels`` layer is read in slabs of ``slab`` sections (plus ``max_gap``).
    agg : Agglomeration
    touching : set of (a, b), a < b
        Segment pairs that touch: the contact merges' business.
    max_gap, min_overlap, min_share
        The most sections between end and start; the least overlap in voxels, and as a share of the
        smaller face.

    Returns
    -------
    list of dict
        Proposals (kind merge, how gap) with ``z_end``, ``z_start`` and the overlap's centre on the end
        face as ``location``; per pair the gap with the largest overlap.
    """
    shape = tuple(volume.shape)
    best: dict[tuple[int, int], dict] = {}
    for z0 in range(0, shape[0], slab):
        box = BBox((z0, 0, 0), (min(shape[0], z0 + slab + max_gap + 1),) + shape[1:])
        svs = np.asarray(volume.read("supervoxels", box, fill=0))
        labels = agg.materialize(svs).astype(np.int64)
        for z in range(z0, min(shape[0] - 1, z0 + slab)):
            end = _faces(labels[z - z0], labels[z - z0 + 1])
            if not end.any():
                continue
            end_area = np.bincount(end.ravel())
            for zs in range(z + 2, min(z + max_gap + 2, box.stop[0])):
                start = _faces(labels[zs - z0], labels[zs - z0 - 1])
                both = (end != 0) & (start != 0) & (end != start)
                if not both.any():
                    continue
                pairs, counts = np.unique(np.c_[end[both], start[both]], axis=0, return_counts=True)
                start_area = np.bincount(start.ravel())
                for (a, b), count in zip(pairs.tolist(), counts.tolist()):
                    key = (min(a, b), max(a, b))
                    if key in touching or count < min_overlap or count < min_share * min(end_area[a],
                                                                                        start_area[b]):
                        continue
                    if key not in best or count > best[key]["overlap"]:
                        ys, xs = np.nonzero(both & (end == a) & (start == b))
                        k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
                        y, x = int(ys[k]), int(xs[k])
                        best[key] = {"overlap": int(count), "share": count / min(end_area[a], start_area[b]),
                                     "z_end": z, "z_start": zs, "a": a, "b": b, "y": y, "x": x,
                                     "anchors": [int(svs[z - z0, y, x]), int(svs[zs - z0, y, x])]}
    proposals = []
    for found in best.values():
        first, second = found["anchors"]
        proposals.append({
            "kind": "merge", "how": "gap", "segments": sorted([found["a"], found["b"]]),
            "anchors": [first, second] if found["a"] < found["b"] else [second, first], "supervoxels": [],
            "location": [found["z_end"], found["y"], found["x"]], "z_end": found["z_end"],
            "z_start": found["z_start"],
            "features": {"boundary_mean": 1.0 - float(found["share"]), "boundary_min": 1.0, "boundary_max": 1.0,
                         "anchor_mean": 1.0, "contact_area": int(found["overlap"]), "ncut": 0.0,
                         "gap": found["z_start"] - found["z_end"] - 1, "overlap_share": float(found["share"])}})
    return proposals


# --- assembling candidates -------------------------------------------------------------

def contact_points(volume, rag: RAG, *, progress: ProgressCallback | None = None,
                   scheduler: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voxels per supervoxel and a point on every RAG edge's contact, in one scan of the supervoxels
    (:func:`scan_supervoxels`, as tasks of dask's ``scheduler``).

    Kept beside a volume (side arrays ``sv_sizes`` and ``rag_points``), they
    let the living pool place a new candidate without reading the volume.
    """
    pairs = np.stack([rag.u, rag.v], axis=1).astype(np.int64)
    return scan_supervoxels(volume, pairs, rag.n_supervoxels, progress=progress, scheduler=scheduler)


def baseline_score(candidate: dict) -> float:
    """P(edit correct) from the boundary alone: faint contact → merge, strong cut → split.

    The contact's ``linkage`` where it has one (what the agglomeration merged
    by: on serial sections it features faces across sections apart), else its
    mean boundary. A gap merge's "boundary" is one minus the overlap share of
    its two ends.
    """
    features = candidate["features"]
    boundary = features.get("linkage", features["boundary_mean"])
    return float(1.0 - boundary) if candidate["kind"] == "merge" else float(boundary)


def candidate_key(candidate: dict) -> str:
    """What the candidate's edit does, independent of segment ids: the game asks each question once.

    A merge is its pair of segments at the time it was found (ids are never
    reused); a split is the set of supervoxels it moves.
    """
    if candidate["kind"] == "merge":
        a, b = sorted(int(s) for s in candidate["segments"])
        return f"merge:{a}:{b}"
    moved = np.asarray(sorted(int(s) for s in candidate["supervoxels"]), np.int64)
    return "split:" + hashlib.sha1(moved.tobytes()).hexdigest()[:20]


def _finish(proposal: dict, agg: Agglomeration, sizes: np.ndarray, points: np.ndarray) -> dict:
    """Add the sizes of the two parts, the location, the key and the baseline score."""
    candidate = {key: value for key, value in proposal.items() if key != "edge"}
    features = dict(candidate["features"])
    if candidate["kind"] == "merge":
        parts = [agg.members(s) for s in candidate["segments"]]
    else:
        move = np.asarray(candidate["supervoxels"], np.int64)
        parts = [np.setdiff1d(agg.members(candidate["segments"][0]), move), move]
    voxels = [int(sizes[p].sum()) for p in parts]
    features.update(size_a=voxels[0], size_b=voxels[1], supervoxels_a=len(parts[0]), supervoxels_b=len(parts[1]))
    candidate["features"] = features
    if "edge" in proposal:
        candidate["location"] = [int(c) for c in points[proposal["edge"]]]
    candidate["key"] = candidate_key(candidate)
    candidate["score"] = baseline_score(candidate)
    return candidate


def interleave(candidates: Sequence[dict]) -> list[dict]:
    """Best first within each kind, the kinds taking turns (merge, split, merge, ...).

    Scores of the two kinds need not be on one scale for this order to give
    players a mix of both puzzles.
    """
    queues = [sorted((c for c in candidates if c["kind"] == kind), key=lambda c: -c["score"])
              for kind in KINDS]
    mixed = []
    for rank in range(max((len(q) for q in queues), default=0)):
        mixed.extend(q[rank] for q in queues if rank < len(q))
    return mixed


def find_candidates(volume, agg: Agglomeration, rag: RAG, *, sizes: np.ndarray | None = None,
                    points: np.ndarray | None = None, segments: Iterable[int] | None = None,
                    gaps: bool | None = None, limit: int | None = None, depth: int = TREE_DEPTH,
                    contrast: float | None = CUT_CONTRAST, min_part_voxels: int = MIN_PART_VOXELS,
                    progress: ProgressCallback | None = None) -> list[dict]:
    """Suspected false splits and false merges of a segmentation, with baseline scores.

    Parameters
    ----------
    volume : Volume or stand-in
        Its ``supervoxels`` layer is read once (chunk by chunk) unless ``sizes``
        and ``points`` are given, and again for gap merges.
    agg : Agglomeration
        The segmentation to check.
    rag : RAG
        The supervoxel RAG of ``volume``.
    sizes, points : ndarray, optional
        :func:`contact_points` of the volume, when already known.
    segments : iterable of int, optional
        Only candidates that involve these segments (those an edit touched);
        default every segment.
    gaps : bool, optional
        Look for gap merges (a pass over the volume); default only in a full scan.
    limit : int, optional
        Keep at most this many, the most suspicious of each kind first.
    depth : int
        The last merges of each segment's tree proposed as cuts whatever the boundary (:func:`tree_cuts`).
    contrast : float, optional
        A deeper merge is proposed when its cut's boundary exceeds the segment's inside mean by more than this.
    min_part_voxels : int
        Leave out candidates where a part (segment or side of a cut) is smaller.
    progress : callable, optional
        ``progress(done, total)`` over the segments cut and the chunks read.

    Returns
    -------
    list of dict
        Candidates as described in this module's docstring, interleaved by kind.
    """
    if sizes is None or points is None:
        sizes, points = contact_points(volume, rag, progress=progress)
    mapping = agg.mapping
    index = _scope(rag, agg, segments)
    proposals = merge_proposals(rag, mapping, index)
    proposals += split_proposals(rag, mapping, sizes, index, segments=segments, depth=depth,
                                 min_voxels=min_part_voxels, contrast=contrast)
    if gaps if gaps is not None else segments is None:
        touching = {tuple(p["segments"]) for p in merge_proposals(rag, mapping, np.arange(len(rag.u)),
                                                                   max_boundary=1.0, min_area=0)}
        proposals += gap_proposals(volume, agg, touching)
    candidates = [_finish(p, agg, sizes, points) for p in proposals]
    candidates = [c for c in candidates
                  if min(c["features"]["size_a"], c["features"]["size_b"]) >= min_part_voxels]
    candidates = interleave(candidates)
    return candidates if limit is None else candidates[:limit]
