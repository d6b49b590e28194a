"""Suspected segmentation errors and the edits that would fix them.

A *merge* candidate is a suspected false split: two touching segments that
may be one neurite; the proposed edit joins them. A *split* candidate is a
suspected false merge: one segment that may be two neurites; the proposed edit
moves the supervoxels on one side of its weakest internal cut to a new segment.

Candidates are plain, JSON-safe dicts, so that they travel unchanged into the
puzzle store and back out in the exports that retrain the detector::

    kind         'merge' | 'split'
    score        P(the proposed edit is correct); here the baseline score
    location     [z, y, x], a voxel on the contact (merge) or on the cut (split)
    segments     [a, b] for a merge, [segment] for a split
    anchors      merge: one supervoxel of each segment at the contact;
                 split: [a supervoxel that stays, a supervoxel that moves]
    supervoxels  split: the supervoxels that move; merge: []
    how          split: the cut that proposed it ('ncut', 'attachment', 'min-cut')
    features     boundary and size statistics (inputs of the detector)
    truth        (after game.puzzles.edit.label_edits) is the proposed edit correct

Anchors let an edit be resolved again after other edits renamed segments
(:class:`game.puzzles.edit.PuzzleEdit`), as FlyWire resolves edits through supervoxels.
The *baseline score* ranks merge candidates by how faint the boundary between
the two segments is and split candidates by how strong the boundary across the
cut is: what the detector must beat.

References
----------
Shi, J. & Malik, J. (2000). Normalized cuts and image segmentation. IEEE TPAMI 22(8).
Haehn, D. et al. (2018). Guided Proofreading of automatic segmentations for
connectomics. CVPR.
Zung, J., Tartavull, I., Lee, K., Seung, H. S. (2017). An error detection and
correction framework for connectomics. NIPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import sparse
from scipy.linalg import eigh
from scipy.sparse.csgraph import breadth_first_order, maximum_flow
from scipy.sparse.linalg import eigsh

from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG, edges_between

KINDS = ("merge", "split")
# A contact whose mean boundary is above this is a membrane, not a false split worth a puzzle.
MAX_MERGE_BOUNDARY = 0.9
MIN_CONTACT_AREA = 4
# Parts smaller than this many voxels are too small to see in a puzzle.
MIN_PART_VOXELS = 64
# Above this many supervoxels a segment's cut uses a sparse eigensolver.
DENSE_EIGEN_LIMIT = 300



# --- one pass over the supervoxels ------------------------------------------------------

def _pair_keys(a: np.ndarray, b: np.ndarray, n_supervoxels: int) -> np.ndarray:
    a, b = a.astype(np.int64), b.astype(np.int64)
    return np.minimum(a, b) * (n_supervoxels + 1) + np.maximum(a, b)


def _nearest_to_centroid(keys: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct key, the point nearest to the centroid of that key's points."""
    if len(keys) == 0:
        return keys, points
    order = np.argsort(keys, kind="stable")
    keys, points = keys[order], points[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[starts, len(keys)])
    centroid = np.add.reduceat(points.astype(np.float64), starts) / counts[:, None]
    distance = ((points - np.repeat(centroid, counts, axis=0)) ** 2).sum(axis=1)
    group = np.repeat(np.arange(len(starts)), counts)
    nearest = np.lexsort((distance, group))[starts]
    return keys[starts], points[nearest]


def scan_supervoxels(volume, pairs: np.ndarray, n_supervoxels: int, *,
                     progress: ProgressCallback | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voxel count of every supervoxel and a point on the contact of each pair, in one pass.

    The contact point of a pair is the face voxel (the face's lower voxel) nearest
    to the centroid of all its faces: the middle of the contact, and on it even
    when the contact is curved.

    Parameters
    ----------
    volume : Volume or any object with ``shape`` and ``read(layer, bbox, fill=0)``
        Read chunk by chunk (its ``chunks`` when it has them).
    pairs : ndarray, shape (P, 2)
        Touching supervoxel pairs (edges of the RAG).
    n_supervoxels : int
        Largest supervoxel id.

    Returns
    -------
    sizes : ndarray of int64, shape (n_supervoxels + 1,)
    points : ndarray of int64, shape (P, 3)
        ``[z, y, x]`` for each pair, in the order given.
    """
    shape = tuple(volume.shape)
    asked = _pair_keys(pairs[:, 0], pairs[:, 1], n_supervoxels)
    wanted = np.unique(asked)
    sizes = np.zeros(n_supervoxels + 1, np.int64)
    found_keys, found_points = [np.zeros(0, np.int64)], [np.zeros((0, 3), np.int64)]
    tiles = list(BBox.from_shape(shape).tiles(getattr(volume, "chunks", shape)))
    for done, tile in enumerate(tiles, start=1):
        outer = BBox(tile.start, tuple(s + 1 for s in tile.stop)).clip(shape)
        block = np.asarray(volume.read("supervoxels", outer, fill=0))
        core = block[tuple(slice(0, c) for c in tile.shape)]
        sizes += np.bincount(core.ravel().astype(np.intp, copy=False), minlength=n_supervoxels + 1)[:n_supervoxels + 1]
        # faces to the + neighbour, counted by the block that holds their lower voxel
        for axis in range(3):
            lower = [slice(0, c) for c in tile.shape]
            lower[axis] = slice(0, min(tile.shape[axis], block.shape[axis] - 1))
            upper = list(lower)
            upper[axis] = slice(1, lower[axis].stop + 1)
            a, b = block[tuple(lower)], block[tuple(upper)]
            face = (a != b) & (a != 0) & (b != 0)
            keys = _pair_keys(a[face], b[face], n_supervoxels)
            hit = np.isin(keys, wanted, assume_unique=False, kind="sort")
            found_keys.append(keys[hit])
            found_points.append(np.argwhere(face)[hit] + np.asarray(tile.start))
        if progress is not None:
            progress(done, len(tiles))
    keys, points = _nearest_to_centroid(np.concatenate(found_keys), np.concatenate(found_points))
    where = np.searchsorted(keys, asked)
    if len(asked) and (where.max() >= len(keys) or (keys[where] != asked).any()):
        raise ProofQuestError("the RAG has an edge that the supervoxel layer does not: "
                              "rebuild the RAG from this volume's supervoxels")
    return sizes, points[where].reshape(len(asked), 3)


# --- merge candidates ----------------------------------------------------------------

def _largest_contacts(rag: RAG, mapping: np.ndarray) -> np.ndarray:
    """For each segment pair, the index of its supervoxel edge with the largest contact area.

    Ordered by (segment a, segment b), as :func:`edges_between` orders its edges.
    """
    su, sv = mapping[rag.u], mapping[rag.v]
    cross = np.flatnonzero(su != sv)
    a, b = np.minimum(su[cross], sv[cross]), np.maximum(su[cross], sv[cross])
    order = np.lexsort((-rag.area[cross], b, a))
    a, b = a[order], b[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])][:len(a)]
    return cross[order[first]]


def merge_proposals(rag: RAG, mapping: np.ndarray, *, max_boundary: float = MAX_MERGE_BOUNDARY,
                    min_area: int = MIN_CONTACT_AREA) -> list[dict]:
    """Touching segment pairs whose contact is faint enough to be a false split.

    Each proposal has ``segments`` and ``anchors`` (the supervoxel pair with the
    largest contact between the two segments, the spot a puzzle shows) and the
    contact's boundary statistics; locations and sizes come later from the volume.
    """
    between = edges_between(rag, mapping)
    anchor_edges = _largest_contacts(rag, mapping)
    keep = np.flatnonzero((between.mean <= max_boundary) & (between.area >= min_area))
    proposals = []
    for k in keep.tolist():
        e = anchor_edges[k]
        first, second = int(rag.u[e]), int(rag.v[e])
        if mapping[first] != between.u[k]:
            first, second = second, first
        proposals.append({
            "kind": "merge", "segments": [int(between.u[k]), int(between.v[k])],
            "anchors": [first, second], "supervoxels": [],
            "features": {"boundary_mean": float(between.mean[k]), "boundary_min": float(between.min[k]),
                         "boundary_max": float(between.max[k]), "anchor_mean": float(rag.mean[e]),
                         "contact_area": int(between.area[k]), "ncut": 0.0}})
    return proposals


# --- split candidates ----------------------------------------------------------------

@dataclass(frozen=True)
class _AffinityGraph:
    """A segment's supervoxel graph with affinity weights, on local node indices 0..n-1.

    Affinity is (1 − mean boundary) × contact area: a wide contact through
    faint membrane binds strongly. A floor keeps every edge, so the graph of a
    connected segment stays connected.
    """

    nodes: np.ndarray
    i: np.ndarray
    j: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, graph: RAG) -> "_AffinityGraph":
        nodes, ends = np.unique(np.concatenate([graph.u, graph.v]), return_inverse=True)
        i, j = np.split(ends, 2)
        return cls(nodes, i, j, (1.0 - graph.mean.astype(np.float64)) * graph.area + 1e-6)

    @property
    def n(self) -> int:
        return len(self.nodes)

    def matrix(self) -> sparse.csr_matrix:
        return sparse.coo_matrix((np.r_[self.weight, self.weight], (np.r_[self.i, self.j], np.r_[self.j, self.i])),
                                 shape=(self.n, self.n)).tocsr()

    @property
    def degree(self) -> np.ndarray:
        return np.bincount(np.r_[self.i, self.j], weights=np.r_[self.weight, self.weight], minlength=self.n)

    def ncut(self, side: np.ndarray) -> float:
        """cut/vol(A) + cut/vol(B) for the partition ``side`` (Shi & Malik 2000)."""
        cut = self.weight[side[self.i] != side[self.j]].sum()
        degree = self.degree
        return float(cut / degree[side].sum() + cut / degree[~side].sum())


def _fiedler_order(graph: _AffinityGraph) -> np.ndarray:
    """Nodes sorted by the second generalised eigenvector of (D − W) y = λ D y."""
    if graph.n == 2:
        return np.arange(2)
    degree = graph.degree
    scale = sparse.diags(1 / np.sqrt(degree))
    laplacian = sparse.identity(graph.n) - scale @ graph.matrix() @ scale
    if graph.n <= DENSE_EIGEN_LIMIT:
        _, vectors = eigh(laplacian.toarray(), subset_by_index=[0, 1])
    else:
        # shift-invert just below 0, where the smallest eigenvalues of a Laplacian lie
        _, vectors = eigsh(laplacian.tocsc(), k=2, sigma=-1e-3, which="LM")
    return np.argsort(vectors[:, 1] / np.sqrt(degree), kind="stable")


def normalized_cut(graph: RAG) -> tuple[np.ndarray, np.ndarray, float]:
    """The weakest balanced cut of a supervoxel graph by the normalized-cut criterion.

    Nodes are ordered by the Fiedler vector of the normalized Laplacian of the
    affinity graph ((1 − mean boundary) × contact area) and the order is split
    where ``cut/vol(A) + cut/vol(B)`` is least (the splitting-point sweep of
    Shi & Malik), which also finds a zero cut between disconnected parts.

    Parameters
    ----------
    graph : RAG
        The edges inside one segment (:func:`game.segmentation.merging.segment_subgraph`).

    Returns
    -------
    nodes : ndarray
        The supervoxels of the graph, sorted.
    side : ndarray of bool
        ``side[k]`` is True for ``nodes[k]`` on the first side of the cut.
    ncut : float
        The normalized cut value, 0 (disconnected) .. 2.

    References
    ----------
    Shi, J. & Malik, J. (2000). Normalized cuts and image segmentation. IEEE TPAMI 22(8):888-905.
    """
    weighted = _AffinityGraph.of(graph)
    return weighted.nodes, *_ncut_sweep(weighted)


def _ncut_sweep(graph: _AffinityGraph) -> tuple[np.ndarray, float]:
    order = _fiedler_order(graph)
    position = np.empty(graph.n, np.int64)
    position[order] = np.arange(graph.n)
    first = np.minimum(position[graph.i], position[graph.j])
    last = np.maximum(position[graph.i], position[graph.j])
    # an edge crosses the cut after the k first nodes when first < k <= last
    crossing = np.zeros(graph.n + 1)
    np.add.at(crossing, first + 1, graph.weight)
    np.add.at(crossing, last + 1, -graph.weight)
    cut = np.cumsum(crossing)[1:graph.n]
    degree = graph.degree
    volume = np.cumsum(degree[order])[:-1]
    ncut = cut / volume + cut / (degree.sum() - volume)
    best = int(np.argmin(ncut))
    side = np.zeros(graph.n, bool)
    side[order[:best + 1]] = True
    return side, float(ncut[best])


def _weakest_attachment(graph: _AffinityGraph, boundary: np.ndarray, area: np.ndarray) -> np.ndarray:
    """The supervoxel whose contact with the rest of its segment has the strongest boundary.

    A small piece of another neurite, attached through a gap in the membrane,
    shows as one supervoxel walled off from the rest: no balanced cut finds it.
    """
    ends = np.r_[graph.i, graph.j]
    weighted = np.bincount(ends, weights=np.r_[boundary * area, boundary * area], minlength=graph.n)
    mean = weighted / np.bincount(ends, weights=np.r_[area, area], minlength=graph.n)
    side = np.ones(graph.n, bool)
    side[int(np.argmax(mean))] = False
    return side


def _min_cut_across_strongest_boundary(graph: _AffinityGraph, boundary: np.ndarray) -> np.ndarray:
    """The minimum cut between the two supervoxels of the internal edge with the strongest boundary.

    Two parallel neurites merged through one gap touch along their length
    across real membrane; a cut between two supervoxels on either side of it
    follows that membrane (the multicut between marked supervoxels of
    FlyWire's split tool, with the marks chosen by the boundary map).
    """
    strongest = int(np.argmax(boundary))
    source, sink = int(graph.i[strongest]), int(graph.j[strongest])
    scale = 1000.0 / graph.weight.max()
    capacity = np.maximum(np.rint(graph.weight * scale), 1).astype(np.int32)
    network = sparse.coo_matrix((np.r_[capacity, capacity], (np.r_[graph.i, graph.j], np.r_[graph.j, graph.i])),
                                shape=(graph.n, graph.n)).tocsr()
    flow = maximum_flow(network, source, sink).flow
    residual = network - flow
    residual.data = (residual.data > 0).astype(np.int8)
    residual.eliminate_zeros()
    side = np.zeros(graph.n, bool)
    side[breadth_first_order(residual, source, directed=True, return_predecessors=False)] = True
    return side


def _internal_graphs(rag: RAG, mapping: np.ndarray):
    """Yield ``(segment, subgraph)`` for each segment with internal edges.

    One sort over the internal edges instead of a subgraph query per segment
    (:func:`game.segmentation.merging.segment_subgraph`).
    """
    su = mapping[rag.u]
    internal = np.flatnonzero(su == mapping[rag.v])
    order = internal[np.argsort(su[internal], kind="stable")]
    segment = su[order]
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]) if len(order) else np.zeros(0, int)
    for start, stop in zip(starts.tolist(), np.r_[starts[1:], len(order)].tolist()):
        yield int(segment[start]), rag.subset(np.sort(order[start:stop]))


def _cut_proposal(segment: int, graph: RAG, weighted: _AffinityGraph, side: np.ndarray, how: str) -> dict:
    """A split proposal for the partition ``side`` of a segment's nodes, with its cut's statistics."""
    across = np.flatnonzero(side[weighted.i] != side[weighted.j])
    area = graph.area[across]
    e = across[np.argmax(area)]
    anchors = [int(graph.u[e]), int(graph.v[e])]
    return {
        "kind": "split", "segments": [segment], "how": how,
        "anchors": anchors if side[weighted.i[e]] else anchors[::-1],
        "parts": [weighted.nodes[side], weighted.nodes[~side]],
        "features": {"boundary_mean": float(np.average(graph.mean[across], weights=area)),
                     "boundary_min": float(graph.min[across].min()),
                     "boundary_max": float(graph.max[across].max()),
                     "anchor_mean": float(graph.mean[e]), "contact_area": int(area.sum()),
                     "ncut": weighted.ncut(side)}}


def split_proposals(rag: RAG, mapping: np.ndarray, *, progress: ProgressCallback | None = None) -> list[dict]:
    """Up to three ways to cut each segment, as proposals to split it there.

    The balanced weakest cut (:func:`normalized_cut`), the supervoxel most
    walled off from the rest, and the minimum cut across the strongest internal
    boundary; a partition found twice is proposed once. Which side moves is
    decided later from the voxel sizes (the smaller one); until then ``parts``
    holds both sides and ``anchors`` the supervoxel pair with the largest
    contact across the cut.
    """
    graphs = list(_internal_graphs(rag, mapping))
    proposals = []
    for done, (segment, graph) in enumerate(graphs, start=1):
        weighted = _AffinityGraph.of(graph)
        seen = set()
        for how, side in (("ncut", _ncut_sweep(weighted)[0]),
                          ("attachment", _weakest_attachment(weighted, graph.mean, graph.area)),
                          ("min-cut", _min_cut_across_strongest_boundary(weighted, graph.mean))):
            key = frozenset(weighted.nodes[side if side[0] else ~side].tolist())
            if key not in seen and 0 < side.sum() < weighted.n:
                seen.add(key)
                proposals.append(_cut_proposal(segment, graph, weighted, side, how))
        if progress is not None:
            progress(done, len(graphs))
    return proposals


# --- assembling candidates -------------------------------------------------------------

def baseline_score(candidate: dict) -> float:
    """P(edit correct) from the boundary alone: faint contact → merge, strong cut → split."""
    boundary = candidate["features"]["boundary_mean"]
    return float(1.0 - boundary) if candidate["kind"] == "merge" else float(boundary)


def _finish(proposal: dict, agg: Agglomeration, sizes: np.ndarray, location: np.ndarray) -> dict:
    """Decide the moved side of a split, add sizes, the location and the baseline score."""
    candidate = {key: value for key, value in proposal.items() if key != "parts"}
    features = dict(candidate["features"])
    if candidate["kind"] == "merge":
        parts = [agg.members(s) for s in candidate["segments"]]
    else:
        stay, move = proposal["parts"]
        if sizes[move].sum() > sizes[stay].sum():
            stay, move = move, stay
            candidate["anchors"] = candidate["anchors"][::-1]
        # members with no internal edge (a disconnected segment) stay
        parts = [np.setdiff1d(agg.members(candidate["segments"][0]), move), move]
        candidate["supervoxels"] = sorted(int(s) for s in move)
    voxels = [int(sizes[p].sum()) for p in parts]
    features.update(size_a=voxels[0], size_b=voxels[1],
                    supervoxels_a=len(parts[0]), supervoxels_b=len(parts[1]))
    candidate["features"] = features
    candidate["location"] = [int(c) for c in location]
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


def find_candidates(volume, agg: Agglomeration, rag: RAG, *, limit: int | None = None,
                    min_part_voxels: int = MIN_PART_VOXELS, progress: ProgressCallback | None = None) -> list[dict]:
    """Suspected false splits and false merges of a segmentation, with baseline scores.

    Parameters
    ----------
    volume : Volume or stand-in
        Needs the ``supervoxels`` layer (read once, chunk by chunk).
    agg : Agglomeration
        The segmentation to check.
    rag : RAG
        The supervoxel RAG of ``volume``.
    limit : int, optional
        Keep at most this many, the most suspicious of each kind first.
    min_part_voxels : int
        Leave out candidates where a part (segment or side of a cut) is smaller.
    progress : callable, optional
        ``progress(done, total)`` over the segments cut and the chunks read.

    Returns
    -------
    list of dict
        Candidates as described in this module's docstring, interleaved by kind.
    """
    mapping = agg.mapping
    splits_total = len(np.unique(mapping[rag.u][mapping[rag.u] == mapping[rag.v]]))
    scan_total = len(list(BBox.from_shape(volume.shape).tiles(getattr(volume, "chunks", volume.shape))))

    def report(offset):
        return None if progress is None else (lambda done, _: progress(offset + done, splits_total + scan_total))

    proposals = merge_proposals(rag, mapping) + split_proposals(rag, mapping, progress=report(0))
    pairs = np.array([p["anchors"] for p in proposals], np.int64).reshape(-1, 2)
    sizes, points = scan_supervoxels(volume, pairs, agg.n_supervoxels, progress=report(splits_total))
    candidates = [_finish(p, agg, sizes, point) for p, point in zip(proposals, points)]
    candidates = [c for c in candidates
                  if min(c["features"]["size_a"], c["features"]["size_b"]) >= min_part_voxels]
    candidates = interleave(candidates)
    return candidates if limit is None else candidates[:limit]
