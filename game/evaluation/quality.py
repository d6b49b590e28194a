"""Segmentation quality over time: metrics after each edit, and their curve as a picture.

Every evaluation relabels one cached ground truth × supervoxel table through
the mapping (``metrics.relabel_segments``), so a point on the curve costs
O(table cells), never a pass over the voxels.
"""

from __future__ import annotations

import io
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


def history(table: metrics.ContingencyTable, initial: np.ndarray, edits: Sequence[Edit], rag: RAG,
            *, points: int = 60) -> list[dict]:
    """Metrics after 0, k, 2k, … edits (about ``points`` of them) and after the last."""
    sv_truth = metrics.supervoxel_truth(table=table)
    agg = Agglomeration(np.array(initial))
    step = max(1, len(edits) // points)
    out = [{"edits": 0, **evaluate_mapping(table, agg.mapping, rag, sv_truth)}]
    for i, edit in enumerate(edits, 1):
        agg.apply(edit)
        if i % step == 0 or i == len(edits):
            out.append({"edits": i, **evaluate_mapping(table, agg.mapping, rag, sv_truth)})
    return out


def curve_png(histories: dict[str, list[dict]]) -> bytes:
    """Metric curves against the number of edits, one panel per metric, one line per volume."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(12, 3), dpi=90)
    for ax, key in zip(axes, CURVE_KEYS):
        for name, rows in histories.items():
            xs = [r["edits"] for r in rows]
            ys = [r[key] if r[key] is not None else np.nan for r in rows]
            ax.plot(xs, ys, marker="o", markersize=2, label=name)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("edits applied")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
