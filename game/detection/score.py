"""P(a proposed edit is correct): region-graph features, a small logistic model per candidate kind, calibration.

Every candidate of :mod:`game.detection.candidates` is scored from what every
volume of the game has, whatever classifier made its boundary map and whether
or not it has an image: the supervoxel RAG, the segmentation and the
supervoxel sizes. Boundary values are made comparable across maps by giving
them as *quantiles* of the volume's own supervoxel contacts, sizes are in
units of the volume's median supervoxel, and each part is described by its
context (its faintest other contact, its internal boundary, its neighbours):

- contact merges: the contact's mean-boundary quantile, its faintest
  supervoxel contact, its extremes, both parts' sizes and internal boundary,
  the smaller part's degree (:data:`CONTACT`);
- gap merges: how much the end and the start overlap, across how many
  sections, and the two parts (:data:`GAP`);
- tree splits: the boundary across the cut, the height of the merge it undoes
  in the segment's mean-agglomeration tree, its rank (its place in the
  segment's walk, strongest boundary across first), the segment's and the
  moving part's sizes, each side's internal boundary (:data:`TREE`).

Each kind (``how``) has its own logistic model (its own intercept and
weights), fitted by likelihood on volumes with ground truth and Platt-scaled on
out-of-fold scores (``bench/train_default_score.py``); the weights are a few
dozen numbers in ``models/edit_score.json``. Where the CNN of
:mod:`game.detection.net` scored a contact merge (a volume with an image), a
*stack* ``sigmoid(c + a·logit(scalar) + b·logit(cnn))`` may replace the
scalar score.

On a volume with known answers (gold and teach puzzles, expert decisions),
:func:`fit_calibration` checks the shipped score on them, per kind: a scorer
that ranks them clearly worse than another (stack, scalar, the boundary
baseline) is replaced, and a per-volume Platt scaling with priors (slope
N(1, 0.5²), intercept N(0, 1²)) moves the probabilities to the volume's own
share of correct edits. Gold and teach puzzles are drawn with both answers in
equal numbers (:mod:`game.puzzles.roles`), so each known answer carries its
class's inverse sampling rate (``sample_weight``) and the fit weighs by it.
Without known answers the calibration is the identity.

References
----------
Nunez-Iglesias, J. et al. (2013). Machine learning of hierarchical clustering to segment 2D and 3D
images. PLoS ONE 8(8): e71715 (edge features from boundary statistics and sizes).
Platt, J. (1999). Probabilistic outputs for support vector machines and comparisons to regularized
likelihood methods. Advances in Large Margin Classifiers.
Wolpert, D. H. (1992). Stacked generalization. Neural Networks 5(2): 241-259.
Horvitz, D. G. & Thompson, D. J. (1952). A generalization of sampling without replacement from a finite
universe. JASA 47: 663-685 (inverse-probability weights for the class-balanced known answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from game.detection.candidates import baseline_score
from game.errors import ProofQuestError
from game.evaluation.metrics import roc_auc
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG

HOWS = ("contact", "gap", "tree")
# the features each kind's model may use (all are computed; a model file names the ones it uses)
CONTACT = ("boundary_mean", "mean_quantile", "weakest_sv", "weakest_sv_quantile", "anchor_mean", "boundary_min",
           "log_area_rel", "log_small_rel", "log_large_rel", "internal_small", "internal_large", "log_degree_small")
GAP = ("overlap_share", "gap", "log_area_rel", "log_small_rel", "log_large_rel", "internal_small", "internal_large",
       "log_degree_small")
TREE = ("boundary_mean", "mean_quantile", "boundary_min", "boundary_max", "anchor_mean", "log_area_rel", "height",
        "height_quantile", "rank", "log_segment_rel", "log_moved_rel", "moved_share", "internal_stay",
        "internal_move")
FEATURES = {"contact": CONTACT, "gap": GAP, "tree": TREE}
EPS = 1e-4
# the known-answer check: a scorer is replaced when another ranks the known answers better by this much,
# judged only with at least this many known answers of each class
SWITCH_MARGIN, SWITCH_MIN_CLASS = 0.05, 5
SLOPE_PRIOR_SD, INTERCEPT_PRIOR_SD = 0.5, 1.0


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def how_of(candidate: Mapping) -> str | None:
    """The candidate's kind as the score knows it (``contact``, ``gap``, ``tree``); None for another kind
    (split proposals of earlier versions: ncut, attachment, min-cut)."""
    how = candidate.get("how") or ("contact" if candidate.get("kind") == "merge" else "tree")
    return how if how in HOWS else None


# --- features ------------------------------------------------------------------------

def _weighted_quantile_function(values: np.ndarray, weights: np.ndarray):
    """x ↦ share of the weight at values <= x."""
    if len(values) == 0:
        return lambda x: np.asarray(x, float) * 0 + 0.5
    order = np.argsort(values, kind="stable")
    v, w = values[order].astype(float), np.cumsum(weights[order].astype(float))
    w /= w[-1]
    return lambda x: np.interp(np.asarray(x, float), v, w, left=0.0, right=1.0)


class GraphContext:
    """Per-volume and per-segment statistics of one segmentation, computed once for all its candidates.

    Parameters
    ----------
    rag : RAG
        Supervoxel RAG of the volume.
    agg : Agglomeration
        The segmentation the candidates were found on.
    sizes : ndarray
        Voxels per supervoxel id.

    Attributes
    ----------
    quantile : callable
        A boundary value's quantile among the volume's supervoxel contacts, weighted by area.
    median_size, median_area, median_segment : float
        Median supervoxel size, supervoxel contact area and segment size (voxels, faces, voxels).
    stop : float
        The faintest contact left between segments: where the agglomeration stopped; the internal boundary
        of a part without internal contacts.
    """

    def __init__(self, rag: RAG, agg: Agglomeration, sizes: np.ndarray):
        self.rag, self.agg = rag, agg
        mapping = np.asarray(agg.mapping)
        sizes = np.asarray(sizes, np.float64)
        self.quantile = _weighted_quantile_function(rag.mean, rag.area)
        present = sizes[1:][sizes[1:] > 0]
        self.median_size = float(np.median(present)) if len(present) else 1.0
        self.median_area = float(np.median(rag.area)) if len(rag) else 1.0
        self.segments = np.unique(mapping[1:])
        dense = np.searchsorted(self.segments, mapping)  # supervoxel -> segment index (0 for supervoxel 0)
        n = max(len(self.segments), 1)
        self.voxels = np.bincount(dense[1:], weights=sizes[1:len(mapping)], minlength=n)
        self.median_segment = float(np.median(self.voxels)) if len(self.voxels) else 1.0
        su, sv = dense[rag.u], dense[rag.v]
        inside = su == sv
        area = rag.area.astype(np.float64)
        boundary = rag.mean.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.internal = (np.bincount(su[inside], weights=boundary[inside] * area[inside], minlength=n)
                             / np.bincount(su[inside], weights=area[inside], minlength=n))
        cross = ~inside
        a, b = np.minimum(su[cross], sv[cross]), np.maximum(su[cross], sv[cross])
        keys = a.astype(np.int64) * n + b
        pairs, pair = np.unique(keys, return_inverse=True)
        pair_mean = (np.bincount(pair, weights=boundary[cross] * area[cross], minlength=len(pairs))
                     / np.maximum(np.bincount(pair, weights=area[cross], minlength=len(pairs)), 1e-12))
        self.stop = float(pair_mean.min()) if len(pairs) else 0.5
        pa, pb = pairs // n, pairs % n
        self.degree = np.bincount(np.r_[pa, pb], minlength=n)
        order = np.argsort(keys, kind="stable")
        self._keys, self._cross_mean, self._n = keys[order], boundary[cross][order], n

    def index(self, segment: int) -> int:
        k = int(np.searchsorted(self.segments, segment))
        if k >= len(self.segments) or self.segments[k] != segment:
            raise ProofQuestError(f"segment {segment} is not in this segmentation")
        return k

    def _internal(self, k: int) -> float:
        value = self.internal[k]
        return self.stop if np.isnan(value) else float(value)

    def _weakest(self, i: int, j: int, fallback: float) -> float:
        key = min(i, j) * self._n + max(i, j)
        lo, hi = np.searchsorted(self._keys, [key, key + 1])
        return float(self._cross_mean[lo:hi].min()) if hi > lo else fallback

    def _log_rel(self, value: float, median: float) -> float:
        return float(np.log(max(value, 1.0) / max(median, 1.0)))

    def merge_features(self, candidate: Mapping) -> dict:
        """Part context of a merge (both kinds), and the contact's link evidence for a contact merge."""
        f = candidate["features"]
        i, j = (self.index(int(s)) for s in candidate["segments"])
        small, large = (i, j) if self.voxels[i] <= self.voxels[j] else (j, i)
        out = {"log_small_rel": self._log_rel(self.voxels[small], self.median_size),
               "log_large_rel": self._log_rel(self.voxels[large], self.median_size),
               "internal_small": self._internal(small), "internal_large": self._internal(large),
               "log_degree_small": float(np.log1p(self.degree[small])),
               "log_area_rel": self._log_rel(f["contact_area"], self.median_area)}
        if how_of(candidate) == "contact":
            mean = float(f["boundary_mean"])
            weakest = self._weakest(i, j, mean)
            out.update(mean_quantile=float(self.quantile(mean)), weakest_sv=weakest,
                       weakest_sv_quantile=float(self.quantile(weakest)))
        return out

    def split_features(self, candidate: Mapping) -> dict:
        """The cut's boundary, the merge it undoes, and the two sides of a tree split."""
        f, rag = candidate["features"], self.rag
        segment = int(candidate["segments"][0])
        k = self.index(segment)
        members = self.agg.members(segment)
        edges = rag.incident(members)
        mapping = self.agg.mapping
        edges = edges[(mapping[rag.u[edges]] == segment) & (mapping[rag.v[edges]] == segment)]
        moved = np.asarray(candidate["supervoxels"], np.int64)
        move_u, move_v = np.isin(rag.u[edges], moved), np.isin(rag.v[edges], moved)
        area, boundary = rag.area[edges].astype(np.float64), rag.mean[edges].astype(np.float64)

        def internal(side: np.ndarray) -> float:
            return float(np.average(boundary[side], weights=area[side])) if side.any() else self.stop

        moved_voxels = float(f["size_b"])  # the moving side (game.detection.candidates: staying side a, moving b)
        return {"mean_quantile": float(self.quantile(f["boundary_mean"])),
                "height": float(f["ncut"]), "height_quantile": float(self.quantile(f["ncut"])),
                "rank": float(candidate.get("rank", 0)),
                "log_area_rel": self._log_rel(f["contact_area"], self.median_area),
                "log_segment_rel": self._log_rel(self.voxels[k], self.median_segment),
                "log_moved_rel": self._log_rel(moved_voxels, self.median_size),
                "moved_share": moved_voxels / max(float(self.voxels[k]), 1.0),
                "internal_stay": internal(~move_u & ~move_v), "internal_move": internal(move_u & move_v)}

    def features(self, candidate: Mapping) -> dict:
        """The candidate's ``features`` with the score's inputs (:data:`FEATURES` of its kind) added."""
        extra = self.split_features(candidate) if candidate["kind"] == "split" else self.merge_features(candidate)
        return {**candidate["features"], **extra}


def with_features(candidates: Sequence[dict], rag: RAG, agg: Agglomeration, sizes: np.ndarray) -> list[dict]:
    """Copies of candidates found on ``agg`` whose ``features`` hold every input of the score."""
    if not candidates:
        return []
    context = GraphContext(rag, agg, sizes)
    return [{**c, "features": context.features(c)} for c in candidates]


def feature_matrix(candidates: Sequence[Mapping], names: Sequence[str]) -> np.ndarray:
    """``names`` of each candidate's ``features``, one row each."""
    try:
        return np.array([[float(c["features"][n]) for n in names] for c in candidates], float).reshape(
            len(candidates), len(names))
    except KeyError as missing:
        raise ProofQuestError(f"a candidate lacks the score's feature {missing}: compute its features with "
                              "game.detection.score.with_features") from None


# --- the models ------------------------------------------------------------------------

@dataclass
class Logistic:
    """P = sigmoid(intercept + Σ weights[name] · x[name]), weights in the features' own units."""

    intercept: float
    weights: dict[str, float]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def decision(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + np.asarray(x, float) @ np.array(list(self.weights.values()), float)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return expit(self.decision(x))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, names: Sequence[str], *, weight: np.ndarray | None = None,
            l2: float = 1.0, around: "Logistic | None" = None) -> "Logistic":
        """Weighted, L2-penalised maximum likelihood on standardised features.

        Parameters
        ----------
        x, y : ndarray
            Features (columns ``names``) and outcomes (1: the edit is correct).
        weight : ndarray, optional
            Per-row weights (normalised to mean 1).
        l2 : float
            Penalty on the squared weights of the standardised features.
        around : Logistic, optional
            Shrink toward these weights instead of toward zero (retraining from answers).
        """
        x, y = np.asarray(x, float), np.asarray(y, float)
        weight = np.ones(len(y)) if weight is None else np.asarray(weight, float)
        weight = weight / weight.mean()
        mu, sd = x.mean(0), x.std(0) + 1e-9
        z = (x - mu) / sd
        centre = np.zeros(x.shape[1]) if around is None else np.array([around.weights[n] for n in names]) * sd

        def loss(theta):
            b, w = theta[0], theta[1:]
            s = b + z @ w
            g = weight * (expit(s) - y)
            return (float(np.sum(weight * (np.logaddexp(0, s) - y * s)) + 0.5 * l2 * np.sum((w - centre) ** 2)),
                    np.r_[g.sum(), z.T @ g + l2 * (w - centre)])

        start = np.r_[0.0, centre]
        theta = minimize(loss, start, jac=True, method="L-BFGS-B").x
        w = theta[1:] / sd
        return cls(float(theta[0] - mu @ w), {n: float(v) for n, v in zip(names, w)})

    def scaled(self, slope: float, shift: float) -> "Logistic":
        """The model whose logit is ``slope · logit + shift`` (a Platt scaling folded in)."""
        return Logistic(slope * self.intercept + shift, {n: slope * w for n, w in self.weights.items()})

    def to_dict(self) -> dict:
        return {"intercept": self.intercept, "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Logistic":
        return cls(float(data["intercept"]), {str(n): float(w) for n, w in data["weights"].items()})


@dataclass
class ScoreModel:
    """The shipped score: one :class:`Logistic` per kind, the optional stack with the CNN, a model card.

    A kind without a model is scored by its baseline (:func:`game.detection.candidates.baseline_score`).
    """

    kinds: dict[str, Logistic]
    stack: Logistic | None = None
    card: dict = field(default_factory=dict)

    def scorers(self, candidates: Sequence[Mapping], how: str) -> dict[str, np.ndarray]:
        """P(correct) of candidates of one kind by each scorer available for them, in order of preference.

        ``scalar`` (the kind's model), ``stack`` (contact merges, where any has a CNN score ``cnn``),
        ``baseline``.
        """
        out = {}
        if how in self.kinds:
            model = self.kinds[how]
            out["scalar"] = model.predict(feature_matrix(candidates, model.names))
            cnn = np.array([c["features"].get("cnn", np.nan) for c in candidates], float)
            if how == "contact" and self.stack is not None and not np.isnan(cnn).all():
                seen = ~np.isnan(cnn)  # the CNN scores only what it can see: the scalar score elsewhere
                out["stack"] = out["scalar"].copy()
                out["stack"][seen] = self.stack.predict(np.c_[logit(out["scalar"][seen]), logit(cnn[seen])])
        out["baseline"] = np.array([baseline_score(c) for c in candidates], float)
        return out

    def to_dict(self) -> dict:
        data = {"kinds": {how: m.to_dict() for how, m in self.kinds.items()}, "card": self.card}
        if self.stack is not None:
            data["stack"] = self.stack.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "ScoreModel":
        kinds = {str(how): Logistic.from_dict(m) for how, m in data["kinds"].items()}
        unknown = set(kinds) - set(HOWS)
        if unknown:
            raise ProofQuestError(f"the score model has kinds {sorted(unknown)} that no candidate has")
        for how, model in kinds.items():
            extra = set(model.names) - set(FEATURES[how])
            if extra:
                raise ProofQuestError(f"the {how} model uses features {sorted(extra)} that are not computed")
        stack = Logistic.from_dict(data["stack"]) if data.get("stack") else None
        return cls(kinds, stack, dict(data.get("card", {})))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")


def load_score_model(path: str | Path) -> ScoreModel:
    """A :class:`ScoreModel` from its JSON file; a clear error for a missing or malformed one."""
    path = Path(path)
    try:
        return ScoreModel.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ProofQuestError(f"no score model at {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ProofQuestError(f"{path} is not a score model ({error})") from None


# --- the volume's own known answers ------------------------------------------------------

def platt_with_priors(p: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *,
                      slope_sd: float = SLOPE_PRIOR_SD, intercept_sd: float = INTERCEPT_PRIOR_SD
                      ) -> tuple[float, float]:
    """``(a, c)`` of ``sigmoid(a·logit(p) + c)`` by maximum a posteriori on labelled probabilities.

    Priors a ~ N(1, slope_sd²), c ~ N(0, intercept_sd²): the identity without
    data, moved only as far as the answers support. ``weight`` (normalised to
    mean 1) weighs each answer, e.g. by its inverse sampling rate.
    """
    s, y = logit(p), np.asarray(y, float)
    weight = np.ones(len(y)) if weight is None or len(y) == 0 else np.asarray(weight, float) / np.mean(weight)

    def loss(theta):
        a, c = theta
        z = a * s + c
        g = weight * (expit(z) - y)
        value = (np.sum(weight * (np.logaddexp(0, z) - y * z)) + 0.5 * (a - 1) ** 2 / slope_sd ** 2
                 + 0.5 * c ** 2 / intercept_sd ** 2)
        return value, np.array([np.sum(g * s) + (a - 1) / slope_sd ** 2, np.sum(g) + c / intercept_sd ** 2])

    a, c = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B").x
    return float(a), float(c)


def choose_scorer(scores: Mapping[str, np.ndarray], truth: np.ndarray) -> str:
    """The scorer a volume should use, judged on its known answers.

    The first scorer (in the order given, the preferred first) unless a later
    one ranks the known answers better by more than :data:`SWITCH_MARGIN`
    ROC AUC; the first one when either answer is known fewer than
    :data:`SWITCH_MIN_CLASS` times.
    """
    names = list(scores)
    truth = np.asarray(truth, bool)
    if min(truth.sum(), (~truth).sum()) < SWITCH_MIN_CLASS:
        return names[0]
    auc = {n: roc_auc(scores[n], truth) for n in names}
    chosen = names[0]
    for n in names[1:]:
        if auc[n] > auc[chosen] + SWITCH_MARGIN:
            chosen = n
    return chosen


@dataclass(frozen=True)
class KindCalibration:
    """How one kind is scored on one volume: a scorer, then ``sigmoid(slope·logit(p) + intercept)``."""

    scorer: str = "scalar"
    slope: float = 1.0
    intercept: float = 0.0
    answers: int = 0

    def apply(self, p: np.ndarray) -> np.ndarray:
        if self.slope == 1.0 and self.intercept == 0.0:
            return np.clip(np.asarray(p, float), EPS, 1 - EPS)
        return expit(self.slope * logit(p) + self.intercept)


def fit_calibration(model: ScoreModel, known: Iterable[Mapping]) -> dict[str, KindCalibration]:
    """Per kind, the scorer and the Platt scaling that the volume's known answers support.

    Parameters
    ----------
    model : ScoreModel
    known : iterable of dict
        Candidates of the volume with ``answer`` (bool: the edit is correct), their ``features`` and, where
        they were drawn with both answers in equal numbers, ``sample_weight`` (inverse sampling rate).

    Returns
    -------
    dict
        ``{how: KindCalibration}`` for the kinds with known answers; kinds missing from it are scored by
        their preferred scorer unchanged.
    """
    known = [c for c in known if isinstance(c.get("answer"), bool)]
    out = {}
    for how in HOWS:
        needed = set(model.kinds[how].names) if how in model.kinds else {"boundary_mean"}
        mine = [c for c in known if how_of(c) == how and needed <= set(c.get("features", {}))]
        if not mine:
            continue
        truth = np.array([c["answer"] for c in mine], bool)
        weight = np.array([float(c.get("sample_weight") or 1.0) for c in mine])
        scores = model.scorers(mine, how)
        scorer = choose_scorer(scores, truth)
        slope, intercept = platt_with_priors(scores[scorer], truth, weight)
        out[how] = KindCalibration(scorer, slope, intercept, len(mine))
    return out


def score(candidates: Sequence[Mapping], model: ScoreModel | None,
          calibration: Mapping[str, KindCalibration] | None = None) -> np.ndarray:
    """P(the proposed edit is correct) of each candidate, strictly between 0 and 1.

    Parameters
    ----------
    candidates : list of dict
        With their score features (:func:`with_features`).
    model : ScoreModel or None
        None scores every candidate by its baseline.
    calibration : dict, optional
        :func:`fit_calibration` of the volume; none is the identity.
    """
    out = np.zeros(len(candidates))
    if model is None:
        model = ScoreModel({})
    calibration = calibration or {}
    hows = np.array([how_of(c) for c in candidates])
    unknown = {c.get("how") for c, how in zip(candidates, hows) if how is None}
    if unknown:
        raise ProofQuestError(f"candidates of kind {sorted(map(str, unknown))} cannot be scored "
                              f"(known: {', '.join(HOWS)})")
    for how in HOWS:
        rows = np.flatnonzero(hows == how)
        if len(rows) == 0:
            continue
        mine = [candidates[k] for k in rows]
        scores = model.scorers(mine, how)
        chosen = calibration.get(how)
        if chosen is None or chosen.scorer not in scores:  # no answers, or the CNN is gone: the preferred one
            chosen = KindCalibration(scorer=next(iter(scores)))
        out[rows] = chosen.apply(scores[chosen.scorer])
    return np.clip(out, EPS, 1 - EPS)


# --- learning from players' answers -------------------------------------------------------

MIN_RETRAIN_CLASS = 10


def log_loss(p, y) -> float:
    p, y = np.clip(np.asarray(p, float), EPS, 1 - EPS), np.asarray(y, float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def retrain(model: ScoreModel, answers: Sequence[Mapping], *, holdout: float = 0.3, l2: float = 1.0,
            seed: int = 0, volume: str = "unnamed") -> tuple[ScoreModel, dict]:
    """Refit each kind's weights on answers, shrunk toward the current ones; keep what validates better.

    For each kind with at least :data:`MIN_RETRAIN_CLASS` answers of each
    class, a stratified ``holdout`` share is set aside, the kind's model is
    refitted on the rest (L2 toward its current weights, so a few answers
    move it a little), and the new weights replace the old only when their
    log loss on the held-out answers is lower. The model card records what
    was learned from.

    Parameters
    ----------
    model : ScoreModel
    answers : list of dict
        Candidates with their score features and ``answer`` (the edit is correct), e.g. the crowd's
        decisions exported as JSON lines (:func:`game.detection.detect.read_answers`).
    volume : str
        Recorded in the model card.

    Returns
    -------
    model : ScoreModel
        A new model (the given one is not changed).
    report : dict
        Per kind: ``answers``, ``skipped`` (without the score's features), ``train``, ``holdout``,
        ``before`` and ``after`` (held-out log loss), ``kept_new``; or ``reason`` when it was not refitted.
    """
    rng = np.random.default_rng(seed)
    kinds, report = dict(model.kinds), {}
    for how, current in model.kinds.items():
        mine = [a for a in answers if how_of(a) == how and isinstance(a.get("answer"), bool)]
        usable = [a for a in mine if set(current.names) <= set(a.get("features", {}))]
        y = np.array([a["answer"] for a in usable], bool)
        entry = {"answers": len(mine), "skipped": len(mine) - len(usable)}
        if min(int(y.sum()), int((~y).sum())) < MIN_RETRAIN_CLASS:
            report[how] = {**entry, "reason": f"fewer than {MIN_RETRAIN_CLASS} answers of each class"}
            continue
        held = np.zeros(len(y), bool)
        for label in (True, False):
            members = np.flatnonzero(y == label)
            held[rng.choice(members, max(1, round(holdout * len(members))), replace=False)] = True
        x = feature_matrix(usable, current.names)
        tuned = Logistic.fit(x[~held], y[~held], current.names, l2=l2, around=current)
        before, after = log_loss(current.predict(x[held]), y[held]), log_loss(tuned.predict(x[held]), y[held])
        kept = after < before
        if kept:
            kinds[how] = tuned
        report[how] = {**entry, "train": int((~held).sum()), "holdout": int(held.sum()), "before": before,
                       "after": after, "kept_new": bool(kept)}
    learned = {how: r["train"] + r["holdout"] for how, r in report.items() if r.get("kept_new")}
    card = dict(model.card)
    if learned:
        card["retrained"] = [*card.get("retrained", []), {"volume": volume, "answers": learned,
                                                           "source": "player answers",
                                                           "date": date.today().isoformat()}]
    return ScoreModel(kinds, model.stack, card), report
