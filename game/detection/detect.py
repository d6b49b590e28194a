"""The error detector: suspected errors, scored, best first, each with a proposed edit.

:func:`detect` is the whole pipeline: candidates from the segmentation's graph
(:mod:`game.detection.candidates`), then a score for each, P(the proposed edit is
correct), by the edit score of :mod:`game.detection.score` (region-graph
features, one small logistic model per kind, optionally stacked with the CNN of
:mod:`game.detection.net` where the volume has an image, chosen and calibrated
on the volume's known answers), or, without a model, by the boundary map alone
(the baseline). Players' answers retrain the edit score
(:func:`game.detection.score.retrain`, from :func:`read_answers`).

References
----------
Haehn, D. et al. (2018). Guided Proofreading of automatic segmentations for
connectomics. CVPR.
Zung, J., Tartavull, I., Lee, K., Seung, H. S. (2017). An error detection and
correction framework for connectomics. NIPS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from game.detection.candidates import (
    KINDS,
    baseline_score,
    contact_points,
    find_candidates,
    interleave,
    scan_supervoxels,
)
from game.detection.net import (
    KIND_INDEX,
    PATCH,
    PATCH_SLICES,
    SCALARS,
    DetectorNet,
    Examples,
    load_detector,
    predict,
    roc_auc,
)
from game.detection.score import ScoreModel, fit_calibration, load_score_model, score, with_features
from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback
from game.puzzles.edit import Moot, PuzzleEdit
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG

__all__ = ["ArrayVolume", "candidate_examples", "cnn_scores", "detect", "evaluate_ranking", "find_candidates",
           "precision_at", "read_answers", "roc_auc", "score_candidates"]

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

def _as_net(model: DetectorNet | str | Path | None) -> DetectorNet | None:
    return load_detector(model) if isinstance(model, (str, Path)) else model


def _as_score_model(model: ScoreModel | str | Path | None) -> ScoreModel | None:
    return load_score_model(model) if isinstance(model, (str, Path)) else model


def cnn_scores(volume, agg: Agglomeration, candidates: Sequence[dict], net: DetectorNet, *,
               progress: ProgressCallback | None = None) -> np.ndarray:
    """The CNN's P(edit correct) of each candidate; NaN where it no longer fits ``agg``."""
    # in batches of neighbouring candidates: patches of a whole large volume would not fit in memory
    chunks = np.asarray(getattr(volume, "chunks", volume.shape))
    tiles = np.array([c["location"] for c in candidates], np.int64).reshape(-1, 3) // chunks
    order = np.lexsort(tiles.T[::-1])
    scores = np.full(len(candidates), np.nan)
    for start in range(0, len(order), SCORING_BATCH):
        batch = order[start:start + SCORING_BATCH]
        examples, keep = candidate_examples(volume, agg, [candidates[k] for k in batch])
        scores[batch[keep]] = predict(net, examples)
        if progress is not None:
            progress(min(start + SCORING_BATCH, len(order)), len(order))
    return scores


def score_candidates(volume, agg: Agglomeration, rag: RAG, candidates: Sequence[dict],
                     model: ScoreModel | str | Path | None = None, *, cnn: DetectorNet | str | Path | None = None,
                     known: Iterable[dict] = (), sizes: np.ndarray | None = None,
                     progress: ProgressCallback | None = None) -> list[dict]:
    """Copies of the candidates with their score features and ``score`` = P(the proposed edit is correct).

    Parameters
    ----------
    volume : Volume or stand-in
        Layers ``supervoxels`` (and ``image``, ``boundary`` for the CNN).
    agg : Agglomeration
        The segmentation the candidates were found on.
    rag : RAG
        The supervoxel RAG of ``volume``.
    candidates : list of dict
    model : ScoreModel or path, optional
        The edit score (:mod:`game.detection.score`); None scores by the boundary alone
        (:func:`game.detection.candidates.baseline_score`).
    cnn : DetectorNet or path, optional
        The CNN detector: where the volume has an image, its score of each contact merge is kept as the
        feature ``cnn`` (an input of the stack).
    known : iterable of dict
        The volume's known answers (candidates with ``answer``): they choose each kind's scorer and
        calibrate it (:func:`game.detection.score.fit_calibration`); none leaves the score as trained.
    sizes : ndarray, optional
        Voxels per supervoxel (read from ``volume`` when not given).
    progress : callable, optional
        ``progress(done, total)`` over the candidates the CNN scores.

    Returns
    -------
    list of dict
        In the order given, scores strictly between 0 and 1.
    """
    if sizes is None:
        sizes, _ = scan_supervoxels(volume, np.zeros((0, 2), np.int64), agg.n_supervoxels)
    scored = with_features(candidates, rag, agg, sizes)
    net = _as_net(cnn)
    contact = [k for k, c in enumerate(scored) if c.get("how") == "contact"]
    if net is not None and contact and volume.has("image"):
        for k, s in zip(contact, cnn_scores(volume, agg, [scored[k] for k in contact], net, progress=progress)):
            if not np.isnan(s):
                scored[k]["features"]["cnn"] = float(s)
    model = _as_score_model(model)
    calibration = fit_calibration(model, known) if model is not None else None
    for c, s in zip(scored, score(scored, model, calibration)):
        c["score"] = float(s)
    return scored


def detect(volume, agg: Agglomeration, rag: RAG, *, model: ScoreModel | str | Path | None = None,
           cnn: DetectorNet | str | Path | None = None, known: Iterable[dict] = (), limit: int | None = 300,
           skip: Iterable[str] = (), progress: ProgressCallback | None = None, scheduler: str | None = None,
           **scan) -> list[dict]:
    """Suspected errors of a segmentation, best first, the two kinds taking turns.

    Parameters
    ----------
    volume : Volume or stand-in
        Layers ``supervoxels`` (and ``image``, ``boundary`` for the CNN).
    agg : Agglomeration
    rag : RAG
        The supervoxel RAG of ``volume``.
    model, cnn, known
        As in :func:`score_candidates`; no model ranks by the baseline.
    limit : int, optional
        How many to return.
    skip : iterable of str
        Keys of candidates to leave out before they are scored (questions already asked: the living
        pool's rescans would otherwise score again every candidate of a segment, most of them asked).
    progress : callable, optional
        ``progress(done, total)`` of each stage.
    scheduler : str, optional
        Where the scan of the supervoxels runs when ``sizes`` and ``points`` are not given
        (:func:`game.detection.candidates.scan_supervoxels`).
    **scan
        Passed to :func:`game.detection.candidates.find_candidates` (``sizes``,
        ``points``, ``segments``, ``gaps``, ``depth``, ``contrast``).

    Returns
    -------
    list of dict
        Candidates (:mod:`game.detection.candidates`) with their score features and ``score``.
    """
    if scan.get("sizes") is None or scan.get("points") is None:
        scan["sizes"], scan["points"] = contact_points(volume, rag, progress=progress, scheduler=scheduler)
    skip = set(skip)
    candidates = [c for c in find_candidates(volume, agg, rag, progress=progress, **scan) if c["key"] not in skip]
    ranked = interleave(score_candidates(volume, agg, rag, candidates, model, cnn=cnn, known=known,
                                         sizes=scan["sizes"], progress=progress))
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
