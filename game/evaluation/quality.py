"""Segmentation quality over time: metrics after each edit, and the best any edit could reach.

Every evaluation relabels one cached ground truth × supervoxel table through
the mapping (``metrics.relabel_segments``), so a point on the curve costs
O(table cells), never a pass over the voxels. The browser draws the curves.

Ground truth drawn per section (:mod:`game.volumes.annotations`, kind
``2d``) says which profiles of one section are one cell, never which
profiles of two sections are: its table (a :class:`SectionTable`) keys each
row by (section, label), and every metric is computed section by section and
averaged over the sections (``per_section`` in the result says so), as the
2D metrics of ISBI 2012 were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from game.errors import ProofQuestError
from game.evaluation import metrics
from game.segmentation.agglomeration import Agglomeration, Edit
from game.segmentation.rag import RAG

CURVE_KEYS = ("adapted_rand_error", "vi_split", "vi_merge", "edge_accuracy")
# A row of a SectionTable is section * SECTION_STRIDE + label (labels of 2D truth are below 2**32).
SECTION_STRIDE = 2**32


@dataclass(frozen=True, eq=False)
class SectionTable(metrics.ContingencyTable):
    """Ground truth drawn per section × supervoxels: row labels are ``section * SECTION_STRIDE + label``."""


def section_labels(labels: np.ndarray, first_section: int) -> np.ndarray:
    """Labels of 2D ground truth (z, y, x) keyed by section, so that each section's ids are its own; 0 stays 0."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) >= SECTION_STRIDE:
        raise ProofQuestError(f"labels drawn per section must be below {SECTION_STRIDE}; found {int(labels.max())}")
    z = np.arange(first_section, first_section + labels.shape[0], dtype=np.int64)[:, None, None]
    return np.where(labels != 0, z * SECTION_STRIDE + labels.astype(np.int64), 0)


def is_per_section(volume) -> bool:
    """Whether a volume's ground truth was declared drawn per section (kind '2d')."""
    return (volume.attrs.get("truth") or {}).get("kind") == "2d"


def truth_table(volume) -> metrics.ContingencyTable:
    """The ground truth × supervoxels table a volume keeps beside its layers (side array ``sv_gt_table``).

    A :class:`SectionTable` when the ground truth was drawn per section.
    """
    if not volume.has("groundtruth"):
        raise ProofQuestError(f"volume {volume.name!r} has no ground truth to evaluate against; "
                              "import one with --groundtruth")
    kind = SectionTable if is_per_section(volume) else metrics.ContingencyTable
    return kind(**volume.load_side("sv_gt_table"))


def evaluate_mapping(table: metrics.ContingencyTable, mapping: np.ndarray, rag: RAG,
                     sv_truth: np.ndarray | None = None) -> dict:
    """All metrics of the segmentation ``mapping[supervoxels]``.

    Against a :class:`SectionTable` every metric is the mean over sections
    (edge accuracy over the edges inside one section), and ``per_section``
    gives their number; it is None for 3D truth.
    """
    sv_truth = metrics.supervoxel_truth(table=table) if sv_truth is None else sv_truth
    relabelled = metrics.relabel_segments(table, mapping)
    if not isinstance(table, SectionTable):
        return {**metrics.evaluate(table=relabelled, u=rag.u, v=rag.v, mapping=mapping, sv_truth=sv_truth),
                "per_section": None}
    section = relabelled.gt_labels[relabelled.rows] // SECTION_STRIDE
    scores = []
    for z in np.unique(section):
        cells = section == z
        scores.append(metrics.evaluate(table=metrics.ContingencyTable(
            relabelled.gt_labels, relabelled.seg_labels, relabelled.rows[cells], relabelled.cols[cells],
            relabelled.counts[cells])))
    result = {key: float(np.mean([s[key] for s in scores])) for key in ("adapted_rand_error", "rand_index",
                                                                        "vi_split", "vi_merge")}
    inside = (sv_truth[rag.u] // SECTION_STRIDE == sv_truth[rag.v] // SECTION_STRIDE)
    return {**result, "edge_accuracy": metrics.edge_accuracy(rag.u[inside], rag.v[inside], mapping, sv_truth),
            "segments": int(np.count_nonzero(relabelled.seg_labels)), "per_section": len(scores)}


def limit_mapping(table: metrics.ContingencyTable) -> np.ndarray:
    """The supervoxel limit as a mapping: every supervoxel to the ground-truth object covering most of it.

    A supervoxel without any labelled voxel gets a fresh segment of its own
    (it is never scored). No merge or split of whole supervoxels does better:
    the gap between a segmentation and this limit is the part of its error
    proofreading can close; the rest lies inside supervoxels.

    References
    ----------
    Nunez-Iglesias J, Kennedy R, Parag T, Shi J, Chklovskii DB (2013). Machine
    learning of hierarchical clustering to segment 2D and 3D images. PLoS ONE
    8(8):e71715 (the best agglomeration of a given over-segmentation).
    """
    truth = metrics.supervoxel_truth(table=table).astype(np.int64)
    unlabelled = np.flatnonzero(truth == 0)[1:]  # 2D truth: unique (section, label) keys, so per section too
    truth[unlabelled] = truth.max(initial=0) + 1 + np.arange(len(unlabelled))
    return truth


def supervoxel_limit(table: metrics.ContingencyTable, rag: RAG) -> dict:
    """All metrics of the supervoxel limit (:func:`limit_mapping`)."""
    return evaluate_mapping(table, limit_mapping(table), rag)


def gap_closed(before: dict, after: dict, limit: dict) -> dict:
    """Share of the true gap (before − limit) that ``after`` closes, in adapted Rand error and in VI.

    NaN where the gap is empty (nothing left that supervoxel edits could fix).
    """
    def share(error) -> float:
        gap = error(before) - error(limit)
        return float((error(before) - error(after)) / gap) if gap > 0 else float("nan")
    return {"adapted_rand_error": share(lambda m: m["adapted_rand_error"]),
            "vi": share(lambda m: m["vi_split"] + m["vi_merge"])}


def history(table: metrics.ContingencyTable, initial: np.ndarray, edits: Sequence[Edit], rag: RAG,
            *, points: int = 60) -> list[dict]:
    """Metrics after 0, k, 2k, … edits (about ``points`` of them) and after the last.

    Undo entries are edits like the others, so a revert shows on the curve.
    """
    sv_truth = metrics.supervoxel_truth(table=table)
    agg = Agglomeration(np.array(initial))
    step = max(1, len(edits) // points)
    out = [{"edits": 0, **evaluate_mapping(table, agg.mapping, rag, sv_truth)}]
    for i, edit in enumerate(edits, 1):
        agg.apply(edit)
        if i % step == 0 or i == len(edits):
            out.append({"edits": i, **evaluate_mapping(table, agg.mapping, rag, sv_truth)})
    return out


