"""Train the default edit score, models/edit_score.json (+ its model card models/edit_score.md).

One logistic model per candidate kind (game.detection.score: contact merges, gap merges, tree
splits) over region-graph features, trained on volumes with ground truth (bench/score_cases.py):
generated demo volumes (seeds 11-14, the boundary network's and the classical filter's maps) and
fibsem-gala z < 35 with four maps (gala's train-p1, the network fine-tuned on z < 35, the classical
filter, the shipped network). Never fibsem-gala z >= 35, snemi-mini or demo seeds 0-2, 7, 8: the
bench (bench/bench_detector.py) measures on those.

1. Features: backward elimination from each kind's candidates (game.detection.score.FEATURES),
   judged by leave-one-case-out on the training cases: per held-out case, the mean over thresholds
   of (AUC of the score - AUC of the boundary baseline) (cases with at least 5 correct candidates),
   and the log loss of its probabilities; objective: mean + minimum of the margins - mean log loss.
2. The model on every training case, each case (volume x map) weighing 1 in all.
3. Platt scaling on the leave-one-case-out scores, folded into the weights: a probability.
4. The stack for contact merges, sigmoid(c + a logit(scalar) + b logit(cnn)), on candidates neither
   model trained on: demo seeds 20, 21 (the CNN trained on 11-14) and fibsem z < 35 with the scalar's
   out-of-fold scores.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/train_default_score.py   # about 15 min the first time

The candidates are cached in bench/out/score_cache/ (the fine-tuned boundary map too).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scipy.optimize import minimize  # noqa: E402
from scipy.special import expit  # noqa: E402
from score_cases import ROOT, available, dataset  # noqa: E402

from game.detection.score import FEATURES, HOWS, Logistic, ScoreModel, log_loss, logit, roc_auc  # noqa: E402

TRAIN = tuple(f"demo{seed}-{source}" for seed in (11, 12, 13, 14) for source in ("net", "filter")) + \
    tuple(f"fib-lo-{source}" for source in ("p1", "ft", "filter", "net"))
STACK = tuple(f"demo{seed}-{source}" for seed in (20, 21) for source in ("net", "filter"))
L2 = 1.0
# a case's AUC is judged only with this many correct candidates (with fewer its standard error is over 0.1)
MIN_CASE_CORRECT = 5
OUT = ROOT / "models" / "edit_score.json"


class Table:
    """Labelled candidates of one kind as arrays."""

    def __init__(self, rows: list[dict], names):
        self.rows = rows
        self.case = np.array([r["case"] for r in rows])
        self.threshold = np.array([r["threshold"] for r in rows], float)
        self.truth = np.array([r["truth"] for r in rows], bool)
        self.x = np.array([[r["features"][n] for n in names] for r in rows], float).reshape(len(rows), len(names))
        self.names = list(names)
        self.baseline = np.array([1 - r["features"]["boundary_mean"] if r["kind"] == "merge"
                                  else r["features"]["boundary_mean"] for r in rows], float)
        self.cnn = np.array([r["features"].get("cnn", np.nan) for r in rows], float)

    def columns(self, names) -> np.ndarray:
        return self.x[:, [self.names.index(n) for n in names]]


def case_weights(case: np.ndarray) -> np.ndarray:
    """Each case weighs 1 in all, however many candidates it has."""
    w = np.ones(len(case))
    for c in np.unique(case):
        w[case == c] = 1.0 / (case == c).sum()
    return w


def fit(table: Table, names, rows=None) -> Logistic:
    rows = np.ones(len(table.truth), bool) if rows is None else rows
    return Logistic.fit(table.columns(names)[rows], table.truth[rows], names, weight=case_weights(table.case[rows]),
                        l2=L2)


def out_of_fold(table: Table, names) -> np.ndarray:
    """Each case's scores by a model trained on the other cases."""
    scores = np.full(len(table.truth), np.nan)
    for case in np.unique(table.case):
        held = table.case == case
        if (~held).any() and len(np.unique(table.truth[~held])) == 2:
            scores[held] = fit(table, names, ~held).predict(table.columns(names)[held])
    return scores


def margins(table: Table, scores: np.ndarray) -> np.ndarray:
    """Per case with at least MIN_CASE_CORRECT correct candidates: mean over thresholds of
    AUC(score) - AUC(baseline), where both classes occur."""
    out = []
    for case in np.unique(table.case):
        rows = table.case == case
        if table.truth[rows].sum() < MIN_CASE_CORRECT:
            continue
        d = [roc_auc(scores[rows & (table.threshold == t)], table.truth[rows & (table.threshold == t)])
             - roc_auc(table.baseline[rows & (table.threshold == t)], table.truth[rows & (table.threshold == t)])
             for t in np.unique(table.threshold[rows])]
        d = [v for v in d if not np.isnan(v)]
        if d:
            out.append(np.mean(d))
    return np.array(out)


def within_case_platt(p: np.ndarray, y: np.ndarray, case: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``sigmoid(a logit(p) + c)`` whose slope is fitted within cases.

    Each case gets its own intercept (volumes differ in their share of correct edits, which the
    known answers of a volume correct for), so the slope measures how far the scores spread within a
    volume; the shipped intercept is the mean of the cases' (each case weighing alike).
    """
    s, y = logit(p), y.astype(float)
    cases, k = np.unique(case, return_inverse=True)
    w = case_weights(case) * len(cases)

    def loss(theta):
        a, c = theta[0], theta[1:]
        z = a * s + c[k]
        g = w * (expit(z) - y)
        return (float(np.sum(w * (np.logaddexp(0, z) - y * z)) + 1e-3 * np.sum(c ** 2)),
                np.r_[np.sum(g * s), np.bincount(k, weights=g, minlength=len(cases)) + 2e-3 * c])

    theta = minimize(loss, np.r_[1.0, np.zeros(len(cases))], jac=True, method="L-BFGS-B",
                     bounds=[(0.0, None)] + [(None, None)] * len(cases)).x
    return float(theta[0]), float(theta[1:].mean())


def case_log_loss(table: Table, scores: np.ndarray) -> float:
    """Mean over cases of the log loss of their (out-of-fold) scores."""
    seen = ~np.isnan(scores)
    return float(np.mean([log_loss(scores[seen & (table.case == c)], table.truth[seen & (table.case == c)])
                          for c in np.unique(table.case[seen])]))


def select_features(table: Table, names) -> tuple[list[str], list[dict]]:
    """Backward elimination by the leave-one-case-out objective: mean + min of the AUC margins over the
    baseline (ranking within a volume) minus the mean log loss (probabilities that hold on a new volume)."""

    def objective(cols):
        oof = out_of_fold(table, cols)
        m = margins(table, oof)
        return float(m.mean() + m.min() - case_log_loss(table, oof)), m

    cols = list(names)
    best, m = objective(cols)
    trace = [{"features": list(cols), "objective": round(best, 4), "mean_margin": round(float(m.mean()), 4)}]
    while len(cols) > 2:
        (score, m), drop = max(((objective([c for c in cols if c != d]), d) for d in cols), key=lambda r: r[0][0])
        if score < best - 1e-4:
            break
        best, cols = score, [c for c in cols if c != drop]
        trace.append({"dropped": drop, "objective": round(score, 4), "mean_margin": round(float(m.mean()), 4)})
        print(f"  drop {drop:20s} objective {score:.4f} mean margin {m.mean():.4f} min {m.min():.4f}",
              file=sys.stderr, flush=True)
    return cols, trace


def train_kind(rows: list[dict], how: str) -> tuple[Logistic, dict]:
    table = Table([r for r in rows if r["how"] == how], FEATURES[how])
    print(f"{how}: {len(table.truth)} candidates, {int(table.truth.sum())} correct; selecting features",
          file=sys.stderr, flush=True)
    names, trace = select_features(table, FEATURES[how])
    model = fit(table, names)
    oof = out_of_fold(table, names)
    seen = ~np.isnan(oof)
    slope, shift = within_case_platt(oof[seen], table.truth[seen], table.case[seen])
    m = margins(table, oof)
    print(json.dumps({"selection": trace}), file=sys.stderr)
    report = {"candidates": len(table.truth), "correct": int(table.truth.sum()),
              "cases": sorted(set(table.case.tolist())), "features": names,
              "loco_log_loss": round(case_log_loss(table, oof), 4),
              "loco_margin_mean": round(float(m.mean()), 4), "loco_margin_min": round(float(m.min()), 4),
              "platt": {"slope": slope, "intercept": shift}}
    return model.scaled(slope, shift), {**report, "oof": oof, "table": table}


def train_stack(contact: Logistic, oof_rows: Table, oof_scores: np.ndarray, stack_rows: list[dict]) -> Logistic:
    """The stack on held-out scores of both models: fibsem z < 35 out of fold, demo seeds 20-21 never seen."""
    held = Table([r for r in stack_rows if r["how"] == "contact"], FEATURES["contact"])
    fib = np.char.startswith(oof_rows.case.astype(str), "fib-") & ~np.isnan(oof_rows.cnn) & ~np.isnan(oof_scores)
    scalar = np.r_[oof_scores[fib], contact.predict(held.columns(contact.names))]
    cnn = np.r_[oof_rows.cnn[fib], held.cnn]
    truth = np.r_[oof_rows.truth[fib], held.truth]
    case = np.r_[oof_rows.case[fib], held.case]
    seen = ~np.isnan(cnn)
    return Logistic.fit(np.c_[logit(scalar[seen]), logit(cnn[seen])], truth[seen], ("logit_scalar", "logit_cnn"),
                        weight=case_weights(case[seen]), l2=0.01)


def validation(model: Logistic, rows: list[dict], how: str) -> dict:
    """AUC of the final model and of the baseline on cases it never saw (demo seeds 20, 21), mean over thresholds."""
    table = Table([r for r in rows if r["how"] == how], FEATURES[how])
    scores = model.predict(table.columns(model.names))
    out = {}
    for case in np.unique(table.case):
        rows_ = table.case == case
        auc = {name: [roc_auc(v[rows_ & (table.threshold == t)], table.truth[rows_ & (table.threshold == t)])
                      for t in np.unique(table.threshold[rows_])] for name, v in (("score", scores),
                                                                                  ("baseline", table.baseline))}
        out[str(case)] = {"correct": int(table.truth[rows_].sum()), "candidates": int(rows_.sum()),
                          **{name: (round(float(np.nanmean(v)), 3) if not np.isnan(v).all() else None)
                             for name, v in auc.items()}}
    return out


def validated(figures: dict) -> str:
    return "; ".join(f"{case} {v['score']:.3f} / {v['baseline']:.3f}" for case, v in figures.items()
                     if v["score"] is not None and v["baseline"] is not None)


def card_markdown(card: dict) -> str:
    kinds = "\n".join(
        f"| {how} | {k['candidates']} / {k['correct']} | {', '.join(k['features'])} | {k['loco_margin_mean']:+.3f} "
        f"({k['loco_margin_min']:+.3f}) | {k['loco_log_loss']:.3f} | {k['platt']['slope']:.2f}, "
        f"{k['platt']['intercept']:+.2f} | {validated(k['validation'])} |"
        for how, k in card["kinds"].items())
    return f"""# Edit score (models/edit_score.json)

P(the proposed edit is correct) for each candidate kind of game/detection/candidates.py: one
logistic model per kind over region-graph features (game/detection/score.py), no image, so it
works on any imported boundary map and on volumes without an image. {card['parameters']} numbers in all.
Where the CNN detector (models/detector.pt) scored a contact merge, a stack
sigmoid({card['stack']['intercept']:.2f} + {card['stack']['weights']['logit_scalar']:.2f} logit(scalar) + {card['stack']['weights']['logit_cnn']:.2f} logit(cnn)) is available; a volume
uses it only when its own known answers rank it better (game.detection.score.fit_calibration).

## Data
Trained {card['date']} by `bench/train_default_score.py` ({card['seconds']:.0f} s) on the labelled candidates
(ground truth, game.puzzles.edit.label_edits) of mean agglomerations (fragments under 32 voxels folded) at
several thresholds of: {', '.join(card['trained_on'])}. Stack fitted on {', '.join(card['stack_on'])}
(plus fibsem z < 35 out of fold). Never trained on fibsem-gala z >= 35, snemi-mini or demo seeds 0-2, 7, 8.

## Kinds
Features chosen by backward elimination, leave one training case out; margin = mean over held-out
training cases of (AUC of the score - AUC of the boundary baseline) (worst case in brackets), log loss of
the held-out cases' probabilities; Platt scaling (slope within cases, mean intercept) fitted on the
out-of-fold scores and folded into the weights; validation: AUC score / baseline on demo seeds 20, 21
(never trained on), mean over thresholds.

| kind | candidates / correct | features | LOCO AUC margin | LOCO log loss | Platt | validation |
| --- | --- | --- | --- | --- | --- | --- |
{kinds}

## Held-out figures
`bench/bench_detector.py --write-card` replaces this section with its figures.

## Limits
Trained on the game's two demo maps and four maps of one FIB-SEM volume. Gap merges are rare outside the
demo (none on fibsem z < 35), so their model rests on the demo. On a new volume, known answers (gold and
teach puzzles, expert decisions) choose between stack, scalar and baseline and recalibrate each kind
(`fit_calibration`); players' answers retrain it (`retrain-detector`).
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    train = [r for name in TRAIN if available(name) for r in dataset(name)]
    stack_rows = [r for name in STACK for r in dataset(name)]
    kinds, reports = {}, {}
    for how in HOWS:
        kinds[how], reports[how] = train_kind(train, how)
    contact = reports["contact"]
    platt = contact["platt"]
    oof = 1 / (1 + np.exp(-(platt["slope"] * logit(contact["oof"]) + platt["intercept"])))
    stack = train_stack(kinds["contact"], contact["table"], oof, stack_rows)
    for how in HOWS:
        reports[how]["validation"] = validation(kinds[how], stack_rows, how)
        print(f"{how} on demo seeds 20, 21: {json.dumps(reports[how]['validation'])}", file=sys.stderr, flush=True)
    card = {"name": "ProofQuest edit score", "date": date.today().isoformat(),
            "trained_on": [n for n in TRAIN if available(n)], "stack_on": list(STACK),
            "kinds": {how: {k: v for k, v in r.items() if k not in ("oof", "table")} for how, r in reports.items()},
            "stack": stack.to_dict(), "seconds": round(time.perf_counter() - started, 1),
            "parameters": sum(1 + len(m.weights) for m in kinds.values()) + 3}
    model = ScoreModel(kinds, stack, card)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    out.with_suffix(".md").write_text(card_markdown(card))
    result = {"model": str(out), "bytes": out.stat().st_size, **{how: card["kinds"][how] for how in HOWS},
              "stack": card["stack"], "seconds": card["seconds"]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
