"""The error detector: suspected errors, scored, best first, each with a proposed edit.

:func:`detect` is the whole pipeline: candidates from the segmentation's graph
(:mod:`game.detection.candidates`), then a score for each, P(the proposed edit is
correct), from the CNN of :mod:`game.detection.net` looking at the EM image,
the boundary map and the two parts around the spot, or, without a model, from
the boundary map alone (the baseline). :func:`finetune` retrains the detector
on the answers players gave, keeping the old weights unless the new ones rank
a held-out share of those answers better.

References
----------
Haehn, D. et al. (2018). Guided Proofreading of automatic segmentations for
connectomics. CVPR.
Zung, J., Tartavull, I., Lee, K., Seung, H. S. (2017). An error detection and
correction framework for connectomics. NIPS.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from game.detection.candidates import (
    KINDS,
    baseline_score,
    find_candidates,
    interleave,
)
from game.detection.net import (
    KIND_INDEX,
    PATCH,
    PATCH_SLICES,
    SCALARS,
    DetectorNet,
    Examples,
    load_detector,
    log_loss,
    predict,
    ranking_quality,
    roc_auc,
    save_detector,
    train_detector,
)
from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback
from game.puzzles.edit import Moot, PuzzleEdit
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG

__all__ = ["ArrayVolume", "candidate_examples", "detect", "evaluate_ranking", "find_candidates",
           "finetune", "load_detector", "precision_at", "read_answers", "roc_auc",
           "save_detector", "score_candidates", "train_detector"]

PRECISION_DEPTHS = (20, 50, 100)
# Candidates whose patches are held at once while scoring: 100 MB of uint8 patches.
SCORING_BATCH = 2048


class ArrayVolume:
    """Layers held in memory behind the reading interface of :class:`game.volumes.volume.Volume`.

    Parameters
    ----------
    chunks : (z, y, x)
        Block size the readers work in.
    **layers : ndarray
        Arrays of one shape, named as volume layers (``image``, ``boundary``, ...).
    """

    def __init__(self, *, chunks: Sequence[int] = (32, 128, 128), **layers: np.ndarray):
        shapes = {np.shape(a) for a in layers.values()}
        if len(shapes) != 1:
            raise ProofQuestError(f"the layers of a volume must have one shape, got {sorted(shapes)}")
        self.shape = shapes.pop()
        self.chunks = tuple(chunks)
        self.layers = layers

    def has(self, layer: str) -> bool:
        return layer in self.layers

    def read(self, layer: str, bbox: BBox | None = None, *, fill: int = 0) -> np.ndarray:
        array = self.layers[layer]
        bbox = BBox.from_shape(self.shape) if bbox is None else bbox
        inside = bbox.clip(self.shape)
        crop = np.full(bbox.shape, fill, dtype=array.dtype)
        crop[inside.relative_to(bbox)] = array[inside.slices]
        return crop


# --- network inputs -----------------------------------------------------------------

def scalar_features(candidates: Sequence[dict]) -> np.ndarray:
    """The detector's scalar inputs (:data:`game.detection.net.SCALARS`), one row per candidate."""
    rows = []
    for c in candidates:
        f = c["features"]
        small, large = sorted((f["size_a"], f["size_b"]))
        few, many = sorted((f["supervoxels_a"], f["supervoxels_b"]))
        how = c.get("how")
        rows.append([baseline_score(c), f["boundary_mean"], f["boundary_min"], f["boundary_max"],
                     f["anchor_mean"], np.log1p(f["contact_area"]) / 5, np.log1p(small) / 10,
                     np.log1p(large) / 10, np.log1p(few) / 3, np.log1p(many) / 3, f["ncut"],
                     # a thin neck: little contact for the size of the smaller part
                     np.log1p(f["contact_area"] / max(small, 1) ** (2 / 3)),
                     how == "ncut", how == "attachment", how == "min-cut"])
    return np.asarray(rows, np.float32).reshape(len(rows), len(SCALARS))


def _window(location: Sequence[int]) -> BBox:
    return BBox.around(location, (PATCH_SLICES, PATCH, PATCH))


def candidate_patches(volume, agg: Agglomeration, candidates: Sequence[dict], *,
                      progress: ProgressCallback | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Image, boundary and the two parts' masks around each candidate (see :class:`Examples`).

    Candidates whose location lies in one chunk are cut from one read of
    that chunk and its margin, so each chunk is read about once.

    Returns
    -------
    patches : ndarray of uint8, shape (n, PATCH_SLICES * 4, PATCH, PATCH)
    resolved : ndarray of bool, shape (n,)
        False where the candidate no longer fits the segmentation (its patch is empty).
    """
    n = len(candidates)
    patches = np.zeros((n, PATCH_SLICES, 4, PATCH, PATCH), np.uint8)
    resolved = np.ones(n, bool)
    locations = np.array([c["location"] for c in candidates], np.int64).reshape(n, 3)
    chunks = np.asarray(getattr(volume, "chunks", volume.shape))
    tiles, group = np.unique(locations // chunks, axis=0, return_inverse=True)
    side = np.zeros(agg.n_supervoxels + 1, np.uint8)
    for tile in range(len(tiles)):
        members = np.flatnonzero(group.ravel() == tile)
        windows = [_window(locations[k]) for k in members]
        region = BBox(np.min([w.start for w in windows], axis=0), np.max([w.stop for w in windows], axis=0))
        image, boundary, supervoxels = (volume.read(layer, region, fill=0)
                                        for layer in ("image", "boundary", "supervoxels"))
        for k, window in zip(members.tolist(), windows):
            try:
                parts = PuzzleEdit.of(candidates[k]).parts(agg)
            except Moot:
                resolved[k] = False
                continue
            part_a, part_b = parts.a, parts.b
            inner = window.relative_to(region)
            side[part_a], side[part_b] = 1, 2
            parts = side[supervoxels[inner]]
            side[part_a], side[part_b] = 0, 0
            patches[k, :, 0], patches[k, :, 1] = image[inner], boundary[inner]
            patches[k, :, 2], patches[k, :, 3] = parts == 1, parts == 2
        if progress is not None:
            progress(tile + 1, len(tiles))
    return patches.reshape(n, PATCH_SLICES * 4, PATCH, PATCH), resolved


def candidate_examples(volume, agg: Agglomeration, candidates: Sequence[dict], *,
                       labels: Sequence[bool] | None = None,
                       progress: ProgressCallback | None = None) -> tuple[Examples, np.ndarray]:
    """Network inputs for the candidates that still fit ``agg``, and which those are.

    With ``labels`` (e.g. each candidate's ``truth``, or a player's answer),
    candidates whose label is None are left out too.
    """
    patches, resolved = candidate_patches(volume, agg, candidates, progress=progress)
    kinds = np.array([KIND_INDEX[c["kind"]] for c in candidates], np.int64)
    if labels is not None:
        known = np.array([label is not None for label in labels], bool)
        resolved &= known
        labels = np.array([bool(label) for label in labels], np.float32)
    examples = Examples(patches, scalar_features(candidates), kinds, labels)
    keep = np.flatnonzero(resolved)
    return examples.subset(keep), keep


# --- scoring ------------------------------------------------------------------------

def _as_model(model: DetectorNet | str | Path | None) -> DetectorNet | None:
    return load_detector(model) if isinstance(model, (str, Path)) else model


def score_candidates(volume, agg: Agglomeration, candidates: Sequence[dict],
                     model: DetectorNet | str | Path | None = None, *,
                     progress: ProgressCallback | None = None) -> list[dict]:
    """Copies of the candidates with ``score`` = P(the proposed edit is correct).

    Parameters
    ----------
    volume : Volume or stand-in
        Layers ``image``, ``boundary`` (uint8) and ``supervoxels``.
    agg : Agglomeration
        The segmentation the candidates were found on.
    candidates : list of dict
    model : DetectorNet or path, optional
        None scores by the boundary map alone (:func:`game.detection.candidates.baseline_score`).
    progress : callable, optional
        ``progress(done, total)`` over the candidates scored.

    Returns
    -------
    list of dict
        In the order given; a candidate that no longer fits ``agg`` gets score 0.
    """
    model = _as_model(model)
    if model is None:
        return [{**c, "score": baseline_score(c)} for c in candidates]
    # in batches of neighbouring candidates: patches of a whole large volume would not fit in memory
    chunks = np.asarray(getattr(volume, "chunks", volume.shape))
    tiles = np.array([c["location"] for c in candidates], np.int64).reshape(-1, 3) // chunks
    order = np.lexsort(tiles.T[::-1])
    scores = np.zeros(len(candidates))
    for start in range(0, len(order), SCORING_BATCH):
        batch = order[start:start + SCORING_BATCH]
        examples, keep = candidate_examples(volume, agg, [candidates[k] for k in batch])
        scores[batch[keep]] = predict(model, examples)
        if progress is not None:
            progress(min(start + SCORING_BATCH, len(order)), len(order))
    return [{**c, "score": float(s)} for c, s in zip(candidates, scores)]


def detect(volume, agg: Agglomeration, rag: RAG, *, model: DetectorNet | str | Path | None = None,
           limit: int | None = 300, progress: ProgressCallback | None = None, **scan) -> list[dict]:
    """Suspected errors of a segmentation, best first, the two kinds taking turns.

    Parameters
    ----------
    volume : Volume or stand-in
        Layers ``image``, ``boundary``, ``supervoxels``.
    agg : Agglomeration
    rag : RAG
        The supervoxel RAG of ``volume``.
    model : DetectorNet or path, optional
        None ranks by the baseline.
    limit : int, optional
        How many to return.
    progress : callable, optional
        ``progress(done, total)`` of each stage.
    **scan
        Passed to :func:`game.detection.candidates.find_candidates` (``sizes``,
        ``points``, ``segments``, ``gaps``, ``depth``).

    Returns
    -------
    list of dict
        Candidates (:mod:`game.detection.candidates`) with ``score``.
    """
    candidates = find_candidates(volume, agg, rag, progress=progress, **scan)
    ranked = interleave(score_candidates(volume, agg, candidates, model, progress=progress))
    return ranked if limit is None else ranked[:limit]


# --- evaluation ---------------------------------------------------------------------

def precision_at(scores, truth, depth: int) -> float:
    """Share of correct edits among the ``depth`` best-scored (all of them when fewer); NaN if none."""
    scores, truth = np.asarray(scores, float), np.asarray(truth, bool)
    if len(scores) == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[:depth]
    return float(truth[top].mean())


def evaluate_ranking(candidates: Iterable[dict]) -> dict:
    """How well the scores rank the candidates whose ``truth`` is known, per kind.

    Returns
    -------
    dict
        ``{kind: {'n', 'positives', 'auc', 'precision@20', 'precision@50', 'precision@100'}}``;
        a figure that is undefined (a kind with one class, or none) is None.
    """
    report = {}
    known = [c for c in candidates if c.get("truth") is not None]
    for kind in KINDS:
        mine = [c for c in known if c["kind"] == kind]
        scores = np.array([c["score"] for c in mine], float)
        truth = np.array([c["truth"] for c in mine], bool)
        figures = {"n": len(mine), "positives": int(truth.sum()), "auc": roc_auc(scores, truth)}
        figures.update({f"precision@{d}": precision_at(scores, truth, d) for d in PRECISION_DEPTHS})
        report[kind] = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in figures.items()}
    return report


# --- learning from players' answers ---------------------------------------------------

def read_answers(path: str | Path) -> list[dict]:
    """Labelled candidates from a JSON-lines export: a candidate dict plus ``"answer": true|false``.

    ``answer`` true means the proposed edit is correct.
    """
    labelled = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ProofQuestError(f"{path}, line {number}: not JSON ({error})") from error
        if not isinstance(record, dict) or not isinstance(record.get("answer"), bool) \
                or record.get("kind") not in KINDS:
            raise ProofQuestError(f"{path}, line {number}: expected a candidate with 'kind' and a "
                                  "true/false 'answer'")
        labelled.append(record)
    return labelled


def _stratified_holdout(kinds: np.ndarray, labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A mask of about ``share`` of the examples in each (kind, label) class, at least one per class of two."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(kinds), bool)
    for kind in np.unique(kinds):
        for label in (0.0, 1.0):
            members = np.flatnonzero((kinds == kind) & (labels == label))
            if len(members) >= 2:
                held[rng.choice(members, max(1, round(share * len(members))), replace=False)] = True
    return held


def _quality(model: DetectorNet, examples: Examples, measure: str) -> float:
    scores = predict(model, examples)
    return ranking_quality(scores, examples) if measure == "auc" else -log_loss(scores, examples.labels)


def finetune(model: DetectorNet | str | Path, labelled_candidates: Sequence[dict], volume,
             agg: Agglomeration, *, volume_name: str | None = None, holdout: float = 0.3,
             epochs: int = 30, learning_rate: float = 1e-3, seed: int = 0,
             progress: ProgressCallback | None = None) -> tuple[DetectorNet, dict]:
    """Retrain the detector on players' answers; keep the new weights only if they validate better.

    A stratified ``holdout`` share of the answers is set aside; the network
    is trained from its current weights on the rest, and the new weights
    replace the old only when they rank the held-out answers better (mean
    per-kind ROC AUC; log loss where no kind has both answers). The model card
    then records the volume, the number of labels and the date.

    Parameters
    ----------
    model : DetectorNet or path
    labelled_candidates : list of dict
        Candidates with ``"answer"`` (bool), e.g. from :func:`read_answers`.
    volume : Volume or stand-in
    agg : Agglomeration
        The segmentation the candidates were found on; candidates that no
        longer resolve through their anchors are skipped.
    volume_name : str, optional
        Recorded in the model card (default: ``volume.name``).

    Returns
    -------
    model : DetectorNet
        The new weights or the old ones.
    report : dict
        ``labels``, ``skipped``, ``train``, ``holdout``, ``measure``
        (``'auc'`` or ``'neg_log_loss'``), ``before`` and ``after`` (the
        held-out figure of the old and the new weights), ``kept_new``.
    """
    model = _as_model(model)
    examples, keep = candidate_examples(volume, agg, labelled_candidates,
                                        labels=[c["answer"] for c in labelled_candidates], progress=progress)
    held = _stratified_holdout(examples.kinds, examples.labels, holdout, seed)
    if held.all() or not held.any():
        raise ProofQuestError(f"{len(examples)} usable answers are too few to both train and validate; "
                              "collect more answers first")
    train, check = examples.subset(np.flatnonzero(~held)), examples.subset(np.flatnonzero(held))
    tuned, _ = train_detector(train, model=model, epochs=epochs, learning_rate=learning_rate, seed=seed)
    # ranking decides, because the game serves puzzles in the detector's order
    measure = "auc" if not np.isnan(ranking_quality(np.zeros(len(check)), check)) else "neg_log_loss"
    before, after = _quality(model, check, measure), _quality(tuned, check, measure)
    kept_new = after > before
    if kept_new:
        name = volume_name or getattr(volume, "name", "unnamed")
        tuned.card = {**model.card, "trained_on": [*model.card.get("trained_on", []),
                                                   {"volume": name, "labels": len(examples),
                                                    "source": "player answers",
                                                    "date": date.today().isoformat()}]}
    report = {"labels": len(examples), "skipped": len(labelled_candidates) - len(examples),
              "train": len(train), "holdout": len(check),
              "measure": measure, "before": before, "after": after, "kept_new": bool(kept_new)}
    return (tuned if kept_new else model), report
