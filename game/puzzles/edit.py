"""The edit a puzzle proposes: one definition, imported wherever a puzzle's edit is needed.

A *merge* puzzle (a suspected false split) proposes to join two segments; a
*split* puzzle (a suspected false merge) proposes to cut some supervoxels off
one segment. A :class:`PuzzleEdit` names its edit by supervoxels, not segment
ids, as FlyWire names edits, so it survives other edits renaming segments; it
knows whether it still fits the current agglomeration (:meth:`PuzzleEdit.parts`
raises :class:`Moot` when not), what it would move (:meth:`PuzzleEdit.plan`),
how much is at stake (:meth:`PuzzleEdit.stake`; what a right one gains: :func:`edit_value`) and, given
ground truth, whether it is correct (:meth:`PuzzleEdit.is_correct`). The candidates, the vote rules, the
renderer, the simulator and the tests' oracle all use it.

The question a player answers, and what "yes" means, live here too: "yes" to
a merge puzzle ("Are these one neurite?") supports the merge; "yes" to a split
puzzle ("Are orange and blue one neurite?") opposes the cut. Both ask about the
two colours: "Is this one neurite?" read as a question about the whole segment,
and a player who saw two neurites inside the orange side of a cut that only
shaves a sliver off answered "No, two" for the sliver's cut (a helper's
play-test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from game.errors import ProofQuestError
from game.segmentation.agglomeration import Agglomeration, Edit

KINDS = ("merge", "split")
# A truth whose deciding object beats its runner-up by no more than this share of its own voxels is a near
# tie: a few voxels would flip it, and the slices shown may well show the other object. It is silent (None):
# no figure counts it and no puzzle with a known answer uses it.
NEAR_TIE = 0.1
QUESTIONS = {"merge": "Are these one neurite?", "split": "Are orange and blue one neurite?"}
# What "yes" means for each kind, named by the edit the puzzle proposes.
YES_SUPPORTS_EDIT = {"merge": True, "split": False}


def edit_value(size_a: float | None, size_b: float | None) -> float | None:
    """What a right edit of two parts of these sizes (voxels) gains: (a + b)·H(a / (a + b)) voxel-bits.

    It is the variation of information the edit removes, times the volume's
    voxel count, when its two parts are wholly one object (a merge) or two
    (a split): merging two pieces of one neurite lowers the split entropy by
    this much, and cutting an intruder off lowers the merge entropy by as
    much. A small fragment joined to a large neuron gains little; two halves
    of one neurite, or a large intruder cut off, gain most. It does not
    depend on the volume's size, so puzzles of several volumes compare.
    None when a size is missing.
    """
    if size_a is None or size_b is None:
        return None
    a, b = max(float(size_a), 0.0), max(float(size_b), 0.0)
    total = a + b
    if a <= 0 or b <= 0:
        return 0.0
    return float(-(a * np.log2(a / total) + b * np.log2(b / total)))


def candidate_value(candidate: Mapping) -> float | None:
    """:func:`edit_value` of a candidate's part sizes as the detector measured them (its ``features``);
    None without them."""
    features = candidate.get("features") or {}
    return edit_value(features.get("size_a"), features.get("size_b"))


def expected_gain(candidate: Mapping) -> float:
    """What asking about a candidate is expected to gain before any vote: its score (the probability that
    its edit is right) times :func:`candidate_value` (1 voxel-bit without part sizes)."""
    value = candidate_value(candidate)
    return float(candidate["score"]) * (1.0 if value is None else value)


class Moot(Exception):
    """A puzzle's edit no longer fits the segmentation: an earlier edit changed its segments."""


def checked_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ProofQuestError(f"unknown puzzle kind {kind!r}; use one of {list(KINDS)}")
    return kind


def question_for(kind: str) -> str:
    """The question a player answers for a puzzle of ``kind``."""
    return QUESTIONS[checked_kind(kind)]


def edit_if_yes(kind: str) -> bool:
    """Whether a "yes" to a puzzle of ``kind`` means applying its proposed edit."""
    return YES_SUPPORTS_EDIT[checked_kind(kind)]


def correct_answer(kind: str, edit_is_correct: bool) -> str:
    """The right answer, 'yes' or 'no', to a puzzle of ``kind`` whose edit is (or is not) correct."""
    return "yes" if bool(edit_is_correct) == edit_if_yes(kind) else "no"


@dataclass(frozen=True)
class Parts:
    """A puzzle's two parts in the current segmentation.

    For a merge, ``first`` and ``second`` are the two segments and ``a`` and
    ``b`` their members; for a split, both are the segment to cut, ``a`` the
    supervoxels that stay and ``b`` those that move.
    """

    first: int
    second: int
    a: np.ndarray
    b: np.ndarray


def _dominant(truth: np.ndarray, weight: np.ndarray) -> tuple[int, dict]:
    """The ground-truth label with the most weight (label 0 excluded) and each label's weight."""
    labels, inverse = np.unique(truth, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=weight, minlength=len(labels))
    share = {int(label): float(total) for label, total in zip(labels, totals) if label != 0}
    return (max(share, key=share.get) if share else 0), share


def _margin(winner: float, loser: float) -> float:
    """How far ``winner`` beats ``loser``, as a share of ``winner`` (negative when it loses)."""
    return (winner - loser) / winner if winner > 0 else 0.0


def truth_margin(kind: str, weights_a: Mapping[int, float], weights_b: Mapping[int, float]) -> float | None:
    """The smallest margin among the comparisons that decide a puzzle's truth; None when it has none.

    Each part's dominant ground-truth object against its runner-up; for a
    split also the moved object's voxels on the moving side against those left
    behind, and the staying object's voxels on the staying side against those
    moved (the comparisons of :meth:`PuzzleEdit.is_correct`).

    Parameters
    ----------
    weights_a, weights_b : mapping
        Voxels of each ground-truth object (label 0 left out) in part A and part B.
    """
    labels = [max(w, key=w.get) if w else 0 for w in (weights_a, weights_b)]
    if 0 in labels:
        return None
    margins = []
    for weights in (weights_a, weights_b):
        ranked = sorted(weights.values(), reverse=True)
        margins.append(_margin(ranked[0], ranked[1] if len(ranked) > 1 else 0.0))
    label_a, label_b = labels
    if kind == "split" and label_a != label_b:
        margins.append(_margin(weights_b[label_b], weights_a.get(label_b, 0.0)))
        margins.append(_margin(weights_a[label_a], weights_b.get(label_a, 0.0)))
    return min(margins)


def is_near_tie(margin: float | None, tolerance: float = NEAR_TIE) -> bool:
    """Whether a truth with this :func:`truth_margin` is too close a call to count (no truth counts too)."""
    return margin is None or margin <= tolerance


@dataclass(frozen=True)
class PuzzleEdit:
    """The edit of one puzzle (or candidate), named by supervoxels.

    Attributes
    ----------
    kind : {'merge', 'split'}
    anchors : (int, int)
        Merge: one supervoxel of each segment, at their contact. Split: a
        supervoxel that stays and one that moves, across the cut.
    moved : tuple of int
        Split: every supervoxel cut off (the second anchor among them).
        Merge: empty.
    """

    kind: str
    anchors: tuple[int, int]
    moved: tuple[int, ...] = ()

    def __post_init__(self):
        checked_kind(self.kind)
        if len(self.anchors) != 2:
            raise ProofQuestError(f"a puzzle edit has two anchor supervoxels, got {list(self.anchors)}")
        object.__setattr__(self, "anchors", (int(self.anchors[0]), int(self.anchors[1])))
        object.__setattr__(self, "moved", tuple(int(s) for s in self.moved))
        if (self.kind == "split") != bool(self.moved):
            raise ProofQuestError("a split names the supervoxels it moves, and only a split does")

    @classmethod
    def of(cls, puzzle: Mapping) -> "PuzzleEdit":
        """The edit of a puzzle row or candidate dict (``kind``, ``anchors``, ``supervoxels``)."""
        return cls(puzzle["kind"], tuple(puzzle["anchors"]),
                   tuple(puzzle.get("supervoxels") or ()) if puzzle["kind"] == "split" else ())

    # --- against the current segmentation -------------------------------------------------

    def parts(self, agg: Agglomeration) -> Parts:
        """The two parts the puzzle shows, in ``agg``; :class:`Moot` when its edit no longer fits.

        A merge is moot once its anchors share a segment. A split is moot
        unless both anchors and every supervoxel to move are still in one
        segment that also holds supervoxels that stay: what the puzzle showed
        is what would be cut, never a remnant of it.
        """
        first, second = (agg.segment_of(a) for a in self.anchors)
        if self.kind == "merge":
            if first == second:
                raise Moot("the two segments are already one")
            return Parts(first, second, agg.members(first).copy(), agg.members(second).copy())
        moved = np.asarray(self.moved, np.uint64)
        if first != second or (agg.mapping[moved] != first).any():
            raise Moot("the part to cut off is no longer inside one segment with the rest")
        members = agg.members(first)
        stay = np.setdiff1d(members, moved)
        if len(stay) == 0:
            raise Moot("the part to cut off is already a segment of its own")
        return Parts(first, first, stay, moved)

    def is_moot(self, agg: Agglomeration) -> bool:
        try:
            self.parts(agg)
        except Moot:
            return True
        return False

    def plan(self, agg: Agglomeration) -> Edit:
        """The mapping edit this puzzle's "edit" decision makes, checked but not applied."""
        parts = self.parts(agg)
        if self.kind == "merge":
            return agg.plan_merge(parts.first, parts.second)
        return agg.plan_split(parts.first, parts.b)

    def apply(self, agg: Agglomeration) -> Edit:
        """Make the edit on ``agg`` (:class:`Moot` when it no longer fits)."""
        return agg.apply(self.plan(agg))

    def stake(self, agg: Agglomeration, sizes: np.ndarray) -> float:
        """The share of same-segment voxel pairs the edit moves: 2·|A|·|B| / Σ|segment|².

        |A| and |B| are the voxels of the two segments (merge) or of the part
        that stays and the part that moves (split); 0 when moot. It bounds what
        the edit can change the adapted Rand error by.

        Parameters
        ----------
        sizes : ndarray
            Voxels per supervoxel id.
        """
        part_sizes = self._part_sizes(agg, sizes)
        if part_sizes is None:
            return 0.0
        a, b = part_sizes
        mapping = np.asarray(agg.mapping)
        segments = np.bincount(mapping, weights=sizes[:len(mapping)])
        total = float(np.dot(segments[1:], segments[1:]))
        return 2.0 * a * b / total if total else 0.0

    def gain(self, agg: Agglomeration, sizes: np.ndarray) -> float:
        """:func:`edit_value` of the edit's two parts as they are now (``sizes``: voxels per supervoxel id);
        0 when moot. A puzzle's stored value is of its parts when it was made; edits since change them."""
        part_sizes = self._part_sizes(agg, sizes)
        return 0.0 if part_sizes is None else edit_value(*part_sizes) or 0.0

    def _part_sizes(self, agg: Agglomeration, sizes: np.ndarray) -> tuple[float, float] | None:
        """Voxels of the edit's two parts as they are now (:meth:`parts`); None when moot."""
        try:
            parts = self.parts(agg)
        except Moot:
            return None
        return float(sizes[parts.a].sum()), float(sizes[parts.b].sum())

    def is_correct(self, agg: Agglomeration, sv_truth: np.ndarray, sizes: np.ndarray | None = None) -> bool | None:
        """Whether the edit agrees with the ground truth; None when the truth is silent.

        A merge is correct when the two whole segments are mostly the same
        ground-truth object (their dominant labels agree): a puzzle shows both
        segments, and merging two segments of which one is mostly another
        neuron would add a false merge even where their contact is one object.
        A split is correct when the moving side and the staying side are
        mostly different objects, and the moving side holds most of its
        object's part of the segment: moving a sliver of the staying object
        would be a new false split. The truth is silent (None) where a part is
        unlabelled or the call is a near tie (:func:`is_near_tie`).

        Parameters
        ----------
        sv_truth : ndarray
            Majority ground-truth label per supervoxel (0: unlabelled).
        sizes : ndarray, optional
            Voxels per supervoxel, to weigh majorities by volume (default:
            each supervoxel counts once).
        """
        parts = self.parts(agg)

        def dominant(members):
            weight = np.ones(len(members)) if sizes is None else sizes[members].astype(float)
            return _dominant(sv_truth[members], weight)

        (label_a, weight_a), (label_b, weight_b) = dominant(parts.a), dominant(parts.b)
        if is_near_tie(truth_margin(self.kind, weight_a, weight_b)):
            return None  # unlabelled, or a near tie that a few voxels would flip
        if self.kind == "merge":
            return label_a == label_b
        return (label_b != label_a and weight_b[label_b] >= weight_a.get(label_b, 0.0)
                and weight_a[label_a] >= weight_b.get(label_a, 0.0))


def label_edits(candidates: Sequence[dict], agg: Agglomeration, sv_truth: np.ndarray, *,
                sizes: np.ndarray | None = None) -> list[dict]:
    """Copies of puzzle or candidate dicts with ``truth`` from the ground truth (:meth:`PuzzleEdit.is_correct`).

    A candidate that no longer fits ``agg`` gets ``truth`` None.
    """
    out = []
    for c in candidates:
        try:
            truth = PuzzleEdit.of(c).is_correct(agg, sv_truth, sizes)
        except Moot:
            truth = None
        out.append({**c, "truth": truth})
    return out


# A cut whose side matches what an applied merge joined by at least this Jaccard index (of supervoxels) undoes it.
UNDO_OVERLAP = 0.9


@dataclass(frozen=True)
class Decided:
    """The applied edits, to keep later questions from undoing them.

    An applied split says its staying and moving anchors are two neurites (a
    cannot-link); an applied merge says the supervoxels it joined belong with
    the segment they joined (a must-link), as constraints from earlier answers
    do in interactive clustering (Wagstaff et al. 2001). A later candidate
    that would join the two sides of an applied cut, or cut off again what a
    merge joined, asks again what was decided, and a wrong decision then
    undoes a right edit: in the simulated demo, the merge between the two
    sides of a known answer's cut (which had lowered ARE by 0.023) was asked
    again in every run, and the merge tree of every merged segment proposed
    undoing its merge first.

    Attributes
    ----------
    joined : tuple of frozenset
        Per applied merge, the supervoxels it moved (``Edit.supervoxels``).
    separated : tuple of (int, int)
        Per applied split puzzle, its anchors (a supervoxel that stayed, one that moved).

    References
    ----------
    Wagstaff, K., Cardie, C., Rogers, S., Schroedl, S. (2001). Constrained
    k-means clustering with background knowledge. ICML.
    """

    joined: tuple[frozenset, ...] = ()
    separated: tuple[tuple[int, int], ...] = ()

    def contradicted(self, agg: Agglomeration) -> Callable[[Mapping], bool]:
        """A test of whether a puzzle's (or candidate's) edit would, in ``agg`` as it is now, join the two
        sides of an applied cut or cut off again (a side matching it by :data:`UNDO_OVERLAP`) what an applied
        merge joined."""
        apart = {frozenset((agg.segment_of(a), agg.segment_of(b))) for a, b in self.separated}
        joined: dict[int, list[frozenset]] = {}
        for moved in self.joined:
            joined.setdefault(agg.segment_of(next(iter(moved))), []).append(moved)

        def jaccard(a: set, b: frozenset) -> float:
            return len(a & b) / len(a | b)

        def test(puzzle: Mapping) -> bool:
            first, second = (agg.segment_of(int(s)) for s in puzzle["anchors"])
            if puzzle["kind"] == "merge":
                return first != second and frozenset((first, second)) in apart
            if first not in joined:
                return False
            moved = {int(s) for s in puzzle["supervoxels"]}
            stay = set(agg.members(first).tolist()) - moved
            return any(max(jaccard(moved, j), jaccard(stay, j)) >= UNDO_OVERLAP for j in joined[first])
        return test
