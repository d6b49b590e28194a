"""How well the edit score ranks and how well it is calibrated, beside the boundary-only baseline.

On candidates no model was trained on (bench/score_cases.py; the shipped models/edit_score.json was
trained by bench/train_default_score.py on demo seeds 11-14 and fibsem-gala z < 35 only):

1. Ranking (ROC AUC) per case and kind, at the game's threshold 0.5 and as the mean over the case's
   agglomeration thresholds: the baseline (1 - mean boundary for a merge, the cut's mean boundary
   for a split), the CNN detector alone (contact merges, volumes with an image), the shipped score
   as trained (scalar), the stack with the CNN, and the score as a volume would use it after its
   known answers chose and calibrated it ("game": gold and teach puzzles drawn as the game draws
   them, game.puzzles.roles.choose_roles; its AUC differs from the scalar's only where they chose
   another scorer).
   Cases: fibsem-gala z >= 35 with each boundary map the project uses (gala's train-p1 with
   train-ws; the boundary network fine-tuned on z < 35 alone, watershed as `segment` makes it; the
   classical filter with train-ws; also the shipped network as is), held-out demo seeds 0, 1, 2,
   7, 8 (network and filter maps), and snemi-mini (its probability map inverted).
2. Calibration of P(edit correct) per kind: Brier score and log loss of the baseline read as a
   probability, the shipped score, and the score after the per-volume calibration on known answers
   (on the same candidates: the non-known ones), and the mean probability of correct and of wrong edits;
   a reliability table of the shipped score (10 bins) and diagrams in bench/out/reliability.png.
3. The scorer each volume's known answers choose (stack / scalar / baseline), per case family.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bench_detector.py [--write-card]

The first run builds the candidate cache (bench/out/score_cache/, about 15 min with the fine-tuned
boundary network); later runs take about a minute. Prints tables and a final JSON line; with
--write-card it also replaces the "Held-out figures" section of models/edit_score.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from score_cases import CACHE, GAME_THRESHOLD, ROOT, available, dataset  # noqa: E402

from game.detection.score import (  # noqa: E402
    HOWS,
    fit_calibration,
    load_score_model,
    log_loss,
    roc_auc,
    score,
)
from game.app.settings import SETTINGS_BY_NAME  # noqa: E402
from game.puzzles.roles import choose_roles  # noqa: E402

FIB_MAPS = {"p1": "gala's train-p1 + train-ws", "ft": "network fine-tuned on z<35 (segment)",
            "filter": "classical filter + train-ws", "net": "shipped network as is"}
DEMO_TEST = tuple(f"demo{seed}-{source}" for seed in (0, 1, 2, 7, 8) for source in ("net", "filter"))
TEST = tuple(f"fib-hi-{m}" for m in FIB_MAPS) + DEMO_TEST + ("snemi",)
COLUMNS = ("baseline", "cnn", "scalar", "stack", "game")
# the game's defaults (game/app/settings.py)
GOLD_PER_KIND, TEACH_PER_KIND, PRACTICE_PER_KIND = (SETTINGS_BY_NAME[n].default for n in
                                                    ("GOLD_PER_KIND", "TEACH_PER_KIND", "PRACTICE_PER_KIND"))
RELIABILITY_BINS = 10
MIN_CLASS = 5


def brier(p, y) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def segmentation_scores(model, rows: list[dict], seed: int) -> dict:
    """Every column's scores of one segmentation's candidates, and which were known answers.

    Known answers are drawn as the game draws them (choose_roles on the shipped scores); the "game"
    column is the score after the volume's calibration on them, which is what consensus gets.
    """
    candidates = [{**r, "score": 0.0} for r in rows]
    scalar = score(candidates, model)
    for c, s in zip(candidates, scalar):
        c["score"] = float(s)
    choose_roles(candidates, gold_per_kind=GOLD_PER_KIND, teach_per_kind=TEACH_PER_KIND,
                 practice_per_kind=PRACTICE_PER_KIND, seed=seed)
    known = [{**c, "answer": c["truth"]} for c in candidates if c.get("gold")]
    calibration = fit_calibration(model, known)
    out = {"truth": np.array([r["truth"] for r in rows], bool), "how": np.array([r["how"] for r in rows]),
           "known": np.array([bool(c.get("gold") or c.get("tutorial")) for c in candidates]),
           "scalar": scalar, "game": score(candidates, model, calibration),
           "baseline": np.array([1 - r["features"]["boundary_mean"] if r["kind"] == "merge"
                                 else r["features"]["boundary_mean"] for r in rows], float),
           "cnn": np.array([r["features"].get("cnn", np.nan) for r in rows], float),
           "chosen": {how: k.scorer for how, k in calibration.items()}}
    stack = out["scalar"].copy()
    contact = np.flatnonzero(out["how"] == "contact")
    if len(contact):
        stack[contact] = model.scorers([rows[k] for k in contact], "contact").get("stack", out["scalar"][contact])
    out["stack"] = stack
    return out


def case_figures(model, name: str) -> dict:
    """AUC per kind and column at the game's threshold and as the mean over thresholds."""
    rows = dataset(name)
    by_threshold = {}
    for k, t in enumerate(sorted({r["threshold"] for r in rows})):
        by_threshold[t] = segmentation_scores(model, [r for r in rows if r["threshold"] == t], seed=k)
    figures = {}
    for how in HOWS:
        entry = {}
        for t, s in by_threshold.items():
            mine = s["how"] == how
            entry.setdefault("n", 0)
            entry["n"] += int(mine.sum())
            entry.setdefault("correct", 0)
            entry["correct"] += int(s["truth"][mine].sum())
            for column in COLUMNS:
                values = s[column][mine]
                seen = ~np.isnan(values)
                auc = roc_auc(values[seen], s["truth"][mine][seen]) if seen.sum() >= 2 else float("nan")
                entry.setdefault(column, {})[t] = auc
        if entry.get("n"):
            row = {"n": entry["n"], "correct": entry["correct"]}
            for column in COLUMNS:
                aucs = [v for v in entry[column].values() if not np.isnan(v)]
                row[column] = {"mean": round(float(np.mean(aucs)), 3) if aucs else None,
                               "at_0.5": (None if np.isnan(entry[column].get(GAME_THRESHOLD, np.nan))
                                          else round(float(entry[column][GAME_THRESHOLD]), 3))}
            figures[how] = row
    return {"figures": figures, "segmentations": by_threshold}


def group(name: str) -> str:
    """The summary row a case belongs to: each fibsem map alone, the demo by map, snemi-mini."""
    if name.startswith("fib-hi"):
        return f"fibsem z>=35, {FIB_MAPS[name.split('-')[-1]]}"
    return f"demo held-out, {'network' if name.endswith('-net') else 'filter'} map" if name.startswith("demo") \
        else "snemi-mini"


def summary(results: dict) -> dict:
    """Per group and kind: mean ROC AUC over its segmentations with at least MIN_CLASS candidates of each
    answer (fewer make an AUC too noisy to average), and how many segmentations that is."""
    rows = {}
    for name, r in results.items():
        for s in r["segmentations"].values():
            for how in HOWS:
                mine = s["how"] == how
                y = s["truth"][mine]
                if min(y.sum(), (~y).sum()) < MIN_CLASS:
                    continue
                entry = rows.setdefault((group(name), how), {c: [] for c in COLUMNS})
                for column in COLUMNS:
                    values = s[column][mine]
                    if not np.isnan(values).any():
                        entry[column].append(roc_auc(values, y))
    return {f"{g} | {how}": {"segmentations": len(v["scalar"]),
                              **{c: round(float(np.mean(a)), 3) if a else None for c, a in v.items()}}
            for (g, how), v in rows.items()}


def family(name: str) -> str:
    return "fibsem z>=35" if name.startswith("fib-hi") else "snemi-mini" if name == "snemi" else "demo held-out"


def unknown_candidates(results: dict, how: str, fam: str | None = None) -> tuple[np.ndarray, dict]:
    """Truth and each column's scores of the candidates of one kind that are not known answers (one family, or
    all)."""
    parts = [(s, (s["how"] == how) & ~s["known"]) for name, r in results.items() if fam in (None, family(name))
             for s in r["segmentations"].values()]
    y = np.concatenate([s["truth"][m] for s, m in parts]) if parts else np.zeros(0, bool)
    return y, {c: np.concatenate([s[c][m] for s, m in parts]) if parts else np.zeros(0)
               for c in ("baseline", "scalar", "game")}


def calibration_table(results: dict) -> dict:
    """Brier, log loss and the mean score of correct and of wrong edits, per family and kind, on the candidates
    that are not known answers."""
    table = {}
    for fam in ("fibsem z>=35", "demo held-out", "snemi-mini"):
        for how in HOWS:
            y, scores = unknown_candidates(results, how, fam)
            if len(y) < 10:
                continue
            row = {"n": int(len(y)), "correct": int(y.sum())}
            for column, p in scores.items():
                row[column] = {"brier": round(brier(p, y), 4), "log_loss": round(log_loss(p, y), 4),
                               "mean_correct": round(float(p[y].mean()), 4) if y.any() else None,
                               "mean_wrong": round(float(p[~y].mean()), 4) if (~y).any() else None}
            table[f"{fam} {how}"] = row
    return table


def reliability_table(results: dict, column: str = "scalar") -> dict:
    """Per kind, over every held-out family, the candidates that are not known answers in RELIABILITY_BINS
    equal bins of the predicted probability: count, mean prediction, share correct (the reliability diagram as
    numbers)."""
    table = {}
    for how in HOWS:
        y, scores = unknown_candidates(results, how)
        p = scores[column]
        k = np.clip((p * RELIABILITY_BINS).astype(int), 0, RELIABILITY_BINS - 1)
        table[how] = [{"bin": f"{b / RELIABILITY_BINS:.1f}-{(b + 1) / RELIABILITY_BINS:.1f}", "n": int((k == b).sum()),
                       "mean_p": round(float(p[k == b].mean()), 3), "share_correct": round(float(y[k == b].mean()), 3)}
                      for b in range(RELIABILITY_BINS) if (k == b).any()]
    return table


def reliability_png(results: dict, path: Path) -> None:
    """Reliability diagrams (10 bins) per kind: baseline as P, the shipped score, after the volume's calibration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for ax, how in zip(axes, HOWS):
        y, scores = unknown_candidates(results, how)
        ax.plot([0, 1], [0, 1], color="0.7", lw=1)
        for column, colour, label in (("baseline", "tab:gray", "baseline as P"), ("scalar", "tab:blue", "edit score"),
                                      ("game", "tab:red", "+ volume's known answers")):
            p = scores[column]
            edges = np.linspace(0, 1, 11)
            k = np.clip(np.digitize(p, edges) - 1, 0, 9)
            have = np.bincount(k, minlength=10) >= 5
            mean_p = np.bincount(k, weights=p, minlength=10)[have] / np.bincount(k, minlength=10)[have]
            share = np.bincount(k, weights=y, minlength=10)[have] / np.bincount(k, minlength=10)[have]
            ax.plot(mean_p, share, "o-", color=colour, ms=4,
                    label=f"{label} (Brier {brier(p, y):.3f})")
        ax.set(title=f"{how} ({len(y)} candidates, {int(y.sum())} correct)", xlabel="predicted P(edit correct)",
               ylabel="share correct", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Held-out candidates (fibsem z>=35, demo seeds 0-2, 7, 8, snemi-mini), known answers left out")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def fmt(v) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def print_tables(results: dict, summaries: dict, calibration: dict, reliability: dict, choices: dict) -> list[str]:
    """The tables, printed and as markdown lines for the model card."""
    print(f"ROC AUC, mean over segmentations with >= {MIN_CLASS} candidates of each answer")
    print(f"{'group | kind':58s} {'segm.':>5s} " + " ".join(f"{c:>8s}" for c in COLUMNS))
    md = [f"Summary: ROC AUC, mean over the segmentations (case x threshold) with at least {MIN_CLASS} candidates of "
          "each answer.", "", "| group | kind | segmentations | baseline | CNN | edit score | stack | "
          "as the game uses it |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, row in summaries.items():
        print(f"{label:58s} {row['segmentations']:>5d} " + " ".join(f"{fmt(row[c]):>8s}" for c in COLUMNS))
        g, how = label.split(" | ")
        md.append(f"| {g} | {how} | {row['segmentations']} | " + " | ".join(fmt(row[c]) for c in COLUMNS) + " |")
    print()
    md += ["", "Per case:", "",
           "| case | kind | n / correct | baseline | CNN | edit score | stack | as the game uses it |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    print("ROC AUC, mean over thresholds (at 0.5 in brackets); 'game' = the scorer the volume's known answers chose")
    print(f"{'case':16s} {'kind':8s} {'n/correct':>10s}  " + "  ".join(f"{c:>15s}" for c in COLUMNS))
    for name, r in results.items():
        for how, row in r["figures"].items():
            if row["correct"] in (0, row["n"]):
                continue
            cells = [f"{fmt(row[c]['mean'])} ({fmt(row[c]['at_0.5'])})" for c in COLUMNS]
            print(f"{name:16s} {how:8s} {row['n']:>5d}/{row['correct']:<4d}  " + "  ".join(f"{c:>15s}" for c in cells))
            label = f"fibsem z>=35, {FIB_MAPS[name.split('-')[-1]]}" if name.startswith("fib-hi") else name
            md.append(f"| {label} | {how} | {row['n']} / {row['correct']} | " + " | ".join(cells) + " |")
    print("\nCalibration on candidates that are not known answers: Brier / log loss (mean P of correct / wrong edits)")
    md += ["", "Calibration on the candidates that are not known answers: Brier / log loss (mean P of correct / "
           "wrong edits).", "", "| candidates | n / correct | baseline as P | edit score | + volume's known answers |",
           "| --- | --- | --- | --- | --- |"]
    for label, row in calibration.items():
        cells = [f"{row[c]['brier']:.3f} / {row[c]['log_loss']:.3f} ({fmt(row[c]['mean_correct'])} / "
                 f"{fmt(row[c]['mean_wrong'])})" for c in ("baseline", "scalar", "game")]
        print(f"{label:28s} {row['n']:>5d}/{row['correct']:<5d} " + "   ".join(cells))
        md.append(f"| {label} | {row['n']} / {row['correct']} | " + " | ".join(cells) + " |")
    print("\nReliability of the edit score (all held-out families, not known answers): bin: n, mean P, share correct")
    md += ["", "Reliability of the edit score (every held-out family, not known answers): per bin of P, "
           "candidates, mean P, share correct.", "", "| kind | " + " | ".join(
               f"{b / RELIABILITY_BINS:.1f}-{(b + 1) / RELIABILITY_BINS:.1f}" for b in range(RELIABILITY_BINS)) + " |",
           "| --- |" + " --- |" * RELIABILITY_BINS]
    for how, bins in reliability.items():
        cells = {b["bin"]: f"{b['n']}: {b['mean_p']:.3f} / {b['share_correct']:.3f}" for b in bins}
        print(f"  {how:8s} " + "; ".join(f"{k} {v}" for k, v in cells.items()))
        md.append(f"| {how} | " + " | ".join(cells.get(f"{b / RELIABILITY_BINS:.1f}-{(b + 1) / RELIABILITY_BINS:.1f}",
                                                        "") for b in range(RELIABILITY_BINS)) + " |")
    print("\nScorer chosen by the known answers (segmentations):")
    md += ["", "Scorer the known answers chose, per kind (segmentations): "
           + "; ".join(f"{fam} {how}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items()))
                       for (fam, how), c in choices.items())]
    for (fam, how), c in choices.items():
        print(f"  {fam:14s} {how:8s} " + ", ".join(f"{s} {n}" for s, n in sorted(c.items())))
    return md


def write_card(md: list[str]) -> None:
    card = ROOT / "models" / "edit_score.md"
    text = card.read_text()
    start = text.index("## Held-out figures")
    end = text.index("\n## ", start + 3)
    section = ("## Held-out figures\nFrom `bench/bench_detector.py` (this weights file): ROC AUC, mean over each "
               "case's agglomeration thresholds (at the game's 0.5 in brackets); 'as the game uses it' = the scorer "
               "the volume's known answers (gold and teach puzzles drawn as the game draws them) chose. Calibration "
               "on the candidates that were not known answers. Reliability diagrams: "
               "docs/edit_score_reliability.png.\n\n"
               + "\n".join(md) + "\n")
    card.write_text(text[:start] + section + text[end:])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "edit_score.json"))
    parser.add_argument("--write-card", action="store_true", help="replace the held-out section of the model card")
    args = parser.parse_args(argv)
    model = load_score_model(args.model)
    results = {name: case_figures(model, name) for name in TEST if available(name)}
    skipped = [name for name in TEST if not available(name)]
    calibration = calibration_table(results)
    choices = {}
    for name, r in results.items():
        for s in r["segmentations"].values():
            for how, chosen in s["chosen"].items():
                counts = choices.setdefault((family(name), how), {})
                counts[chosen] = counts.get(chosen, 0) + 1
    summaries = summary(results)
    reliability = reliability_table(results)
    md = print_tables(results, summaries, calibration, reliability, choices)
    png = CACHE.parent / "reliability.png"
    reliability_png(results, png)
    print(f"\nreliability diagrams: {png}" + (f"; skipped (no data): {skipped}" if skipped else ""))
    if args.write_card:
        write_card(md)
    report = {"model": args.model, "summary": summaries, "auc": {name: r["figures"] for name, r in results.items()},
              "calibration": calibration, "reliability": reliability, "chosen": {f"{f} {h}": c for (f, h), c in choices.items()},
              "skipped": skipped, "reliability_png": str(png)}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
