"""Segmentation quality over time: metrics after each edit, and the best any edit could reach.

Every evaluation relabels one cached ground truth × supervoxel table through
the mapping (``metrics.relabel_segments``), so a point on the curve costs
O(table cells), never a pass over the voxels. The browser draws the curves.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from game.errors import ProofQuestError
from game.evaluation import metrics
from game.segmentation.agglomeration import Agglomeration, Edit
from game.segmentation.rag import RAG

CURVE_KEYS = ("adapted_rand_error", "vi_split", "vi_merge", "edge_accuracy")


def truth_table(volume) -> metrics.ContingencyTable:
    """The ground truth × supervoxels table a volume keeps beside its layers (side array ``sv_gt_table``)."""
    if not volume.has("groundtruth"):
        raise ProofQuestError(f"volume {volume.name!r} has no ground truth to evaluate against; "
                              "import one with --groundtruth")
    return metrics.ContingencyTable(**volume.load_side("sv_gt_table"))


def evaluate_mapping(table: metrics.ContingencyTable, mapping: np.ndarray, rag: RAG,
                     sv_truth: np.ndarray | None = None) -> dict:
    """All metrics of the segmentation ``mapping[supervoxels]``."""
    sv_truth = metrics.supervoxel_truth(table=table) if sv_truth is None else sv_truth
    return metrics.evaluate(table=metrics.relabel_segments(table, mapping), u=rag.u, v=rag.v, mapping=mapping,
                            sv_truth=sv_truth)


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
    unlabelled = np.flatnonzero(truth == 0)[1:]
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


