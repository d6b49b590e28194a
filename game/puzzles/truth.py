"""What the ground truth says about a puzzle's two parts, and how close a call it is.

A puzzle's truth (:meth:`game.puzzles.edit.PuzzleEdit.is_correct`) compares
the ground-truth objects each part mostly is. When the deciding object is
barely the majority — within ``NEAR_TIE`` of the runner-up, by voxels — a few
voxels would flip the answer, and the slices shown may well show the other
object: such a truth is a *near tie*. A near tie is neither a puzzle with a
known answer (practice, teach, gold) nor counted right or wrong in any figure.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from game.evaluation.metrics import ContingencyTable
from game.evaluation.metrics import supervoxel_truth as majority_truth
from game.evaluation.quality import is_per_section
from game.puzzles.edit import NEAR_TIE, Moot, PuzzleEdit, correct_answer, is_near_tie, truth_margin  # noqa: F401
from game.puzzles.looking import judgeable, looks_like_one, shown_frame


def has_puzzle_truth(volume) -> bool:
    """Whether a volume's ground truth decides its puzzles: 3D ground truth does, none or labels per section not."""
    return volume.has_side("sv_gt_table") and not is_per_section(volume)


def supervoxel_truth(volume, n_supervoxels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Majority ground-truth object and labelled voxels of every supervoxel; None without ground truth.

    Read from the volume's supervoxel × ground-truth table (``sv_gt_table``),
    as the candidates' truth is. Ground truth drawn per section gives None
    too: a puzzle asks whether two parts are one neurite in 3D, and labels
    drawn section by section never say which profiles of two sections are
    (no practice, teach or gold puzzle, no known answer, no simulated
    player's answer comes from them).
    """
    if not has_puzzle_truth(volume):
        return None
    table = ContingencyTable(**volume.load_side("sv_gt_table"))
    sizes = np.zeros(n_supervoxels + 1)
    sizes[table.seg_labels] = table.seg_sizes  # labelled voxels only: the ones a majority is taken over
    return majority_truth(table=table), sizes


def annotate_truth(candidates, agg, known: tuple[np.ndarray, np.ndarray]) -> None:
    """Add ``truth_objects`` (each part's dominant object) and ``truth_margin`` to candidates with truth.

    Kept with the puzzle, so the truth can be drawn and near ties left out
    after edits have changed the segmentation.
    """
    sv_truth, sizes = known
    for c in candidates:
        if c.get("truth") is None:
            continue
        try:
            weights = object_weights(PuzzleEdit.of(c), agg, sv_truth, sizes)
        except Moot:
            continue
        c["truth_objects"] = list(dominant_objects(*weights))
        c["truth_margin"] = truth_margin(c["kind"], *weights)


def object_weights(edit: PuzzleEdit, agg, sv_truth: np.ndarray,
                   sizes: np.ndarray | None = None) -> tuple[dict[int, float], dict[int, float]]:
    """Voxels (or supervoxels, without ``sizes``) of each ground-truth object in part A and in part B.

    Label 0 (unlabelled) is left out. Raises :class:`game.puzzles.edit.Moot`
    when the edit no longer fits ``agg``.
    """
    parts = edit.parts(agg)

    def weights(members: np.ndarray) -> dict[int, float]:
        weight = np.ones(len(members)) if sizes is None else sizes[members].astype(float)
        labels, inverse = np.unique(sv_truth[members], return_inverse=True)
        totals = np.bincount(inverse.ravel(), weights=weight, minlength=len(labels))
        return {int(label): float(total) for label, total in zip(labels, totals) if label != 0}

    return weights(parts.a), weights(parts.b)


def dominant_objects(weights_a: Mapping[int, float], weights_b: Mapping[int, float]) -> tuple[int, int]:
    """The ground-truth object each part mostly is (0 for an unlabelled part)."""
    return tuple(max(w, key=w.get) if w else 0 for w in (weights_a, weights_b))  # type: ignore[return-value]


def puzzle_truth_margin(puzzle: Mapping) -> float | None:
    """The truth margin a puzzle or candidate was made with (stored under ``truth_margin``)."""
    stored = puzzle.get("truth_margin", (puzzle.get("detector") or {}).get("truth_margin"))
    return None if stored is None else float(stored)


def has_clear_truth(puzzle: Mapping) -> bool:
    """Whether a puzzle's truth is known and no near tie.

    A puzzle stored without its margin (made before margins were kept) counts
    by its truth alone: :meth:`game.puzzles.edit.PuzzleEdit.is_correct` leaves
    the closest calls without one.
    """
    if puzzle.get("truth") is None:
        return False
    margin = puzzle_truth_margin(puzzle)
    return margin is None or not is_near_tie(margin)


def fit_for_known_answer(candidate: Mapping) -> bool:
    """Whether a candidate may be a puzzle with a known answer (practice, teach, gold).

    Its truth must be known and clear (no near tie), and a person must be
    able to judge it by looking (:func:`game.puzzles.looking.judgeable`) on the view it is drawn in
    (:func:`game.puzzles.looking.shown_frame`): players are measured and taught only on what they can see.
    A pair across sections must read by the tutorial's rule as its truth says
    (:func:`game.puzzles.looking.looks_like_one`): a practice puzzle whose profiles carried on one another's
    outline at the same size, answered "two", taught the opposite of the lesson (a play-test), and on the
    default demo 3 of 3 teach puzzles and 1 of 5 gold ones across sections read against their truth.
    """
    return has_clear_truth(candidate) and judgeable(shown_frame(candidate)) and \
        reads_as(candidate, bool(candidate["truth"]))


def reads_as(puzzle: Mapping, edit_is_correct: bool) -> bool:
    """Whether a puzzle's view reads as this answer by the tutorial's rule (always, for parts that touch
    in-plane): a pair across sections reads as one neurite when :func:`game.puzzles.looking.looks_like_one`."""
    reads_one = looks_like_one(shown_frame(puzzle))
    return reads_one is None or reads_one == (correct_answer(puzzle["kind"], edit_is_correct) == "yes")
