"""How much the consensus prior should trust the calibrated edit score: PRIOR_WEIGHT in a simulated crowd.

The consensus prior is PRIOR_WEIGHT * logit(score) (game.crowd.consensus). With the edit score now a
calibrated probability (bench/bench_detector.py), this measures, rather than assumes, which weight
serves the crowd. Puzzles: the held-out candidates of bench/score_cases.py at the game's threshold 0.5
(fibsem-gala z >= 35 with each boundary map, demo seeds 0-2, 7, 8 with both maps; snemi-mini at 0.2),
each with its true answer and its score as the game gives it (the shipped model after the volume's
known answers chose and calibrated it: bench_detector.segmentation_scores). Players: 20, accuracies
drawn around A, a share answering at chance, 5% "unsure"; each has answered 10 secret gold puzzles,
and game.crowd.reliability.standing makes their reliability and whether their votes count (as the game
does before settled decisions accrue). Each vote goes to the first undecided puzzle (best score first)
the player has not answered, and game.crowd.consensus.decide rules after it (the big-edit rule left
out: stake 0). The answers are drawn once per seed, so weights differ only by the prior. Reported per
100 puzzles, pooled over cases and seeds: correct edits applied, wrong edits applied, correct edits
rejected, puzzles sent to the expert, and votes per retired puzzle; the baseline (1 - mean boundary,
the old kind of prior) at weight 0.5 for reference. ``--prior scalar``: the score as trained, as on a
volume without known answers.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bench_prior_weight.py [--seeds 0 1 2]

Prints a table per crowd and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_detector import DEMO_TEST, FIB_MAPS, segmentation_scores  # noqa: E402
from score_cases import ROOT, available, dataset  # noqa: E402

from game.crowd.consensus import OPPOSE, SUPPORT, UNSURE, ConsensusSettings, decide  # noqa: E402
from game.crowd.reliability import standing  # noqa: E402
from game.detection.score import load_score_model  # noqa: E402

CASES = {**{f"fib-hi-{m}": 0.5 for m in FIB_MAPS}, **{name: 0.5 for name in DEMO_TEST}, "snemi": 0.2}
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
CROWDS = {"A=0.80, 10% at chance": (0.8, 0.1), "A=0.65, 30% at chance": (0.65, 0.3)}
N_PLAYERS, GOLD_ANSWERS, UNSURE_RATE = 20, 10, 0.05
KEYS = ("correct_applied", "wrong_applied", "correct_rejected", "expert")


def players(rng, accuracy: float, chance_share: float, settings: ConsensusSettings):
    """Accuracies, and reliability and established flag from a record of gold answers."""
    accuracies = np.clip(rng.beta(20 * accuracy, 20 * (1 - accuracy), N_PLAYERS), 0.5, 0.99)
    accuracies[: round(chance_share * N_PLAYERS)] = 0.5
    record = [standing(list(rng.random(GOLD_ANSWERS) < a), [], settings) for a in accuracies]
    return accuracies, np.array([r for r, _ in record]), np.array([e for _, e in record])


def play(truth: np.ndarray, prior: np.ndarray, answers: np.ndarray, reliability: np.ndarray,
         established: np.ndarray, settings: ConsensusSettings, rng) -> dict:
    """Votes until every puzzle is decided; counts per outcome and votes per retired puzzle."""
    order = list(np.argsort(-prior, kind="stable"))
    answered = np.zeros(answers.shape, bool)
    voters: dict[int, list[int]] = {p: [] for p in order}
    outcome = {}
    while order:
        player = int(rng.integers(N_PLAYERS))
        puzzle = next((p for p in order if not answered[player, p]), None)
        if puzzle is None:
            if answered[:, order].all():
                for p in order:
                    outcome[p] = "expert"
                break
            continue
        answered[player, puzzle] = True
        voters[puzzle].append(player)
        who = voters[puzzle]
        d = decide(answers[who, puzzle], reliability[who], float(prior[puzzle]), settings,
                   counted=established[who])
        if d.state != "open":
            outcome[puzzle] = "expert" if d.state == "expert" else bool(d.answer)
            order.remove(puzzle)
    retired = [p for p, o in outcome.items() if o != "expert"]
    return {"correct_applied": sum(outcome[p] is True and truth[p] for p in retired),
            "wrong_applied": sum(outcome[p] is True and not truth[p] for p in retired),
            "correct_rejected": sum(outcome[p] is False and truth[p] for p in retired),
            "expert": sum(o == "expert" for o in outcome.values()),
            "votes_retired": sum(len(voters[p]) for p in retired), "retired": len(retired), "n": len(truth)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default=str(ROOT / "models" / "edit_score.json"))
    parser.add_argument("--prior", choices=("game", "scalar"), default="game",
                        help="the score after the volume's known answers (game), or as trained (a volume without any)")
    args = parser.parse_args(argv)
    model = load_score_model(args.model)
    puzzles = []
    for name, threshold in CASES.items():
        if available(name):
            s = segmentation_scores(model, [r for r in dataset(name) if r["threshold"] == threshold], seed=0)
            crowd = ~s["known"]  # the known answers are gold, not crowd puzzles
            puzzles.append((name, s["truth"][crowd], s[args.prior][crowd], s["baseline"][crowd]))
    report = {"cases": [p[0] for p in puzzles], "seeds": args.seeds, "prior": args.prior, "crowds": {}}
    variants = [(f"{w:.2f}", w, "score") for w in WEIGHTS] + [("0.50 baseline", 0.5, "baseline")]
    for label, (accuracy, chance) in CROWDS.items():
        print(f"\n{label}: per 100 puzzles ({sum(len(p[1]) for p in puzzles)} puzzles of {len(puzzles)} cases "
              f"x {len(args.seeds)} seeds)")
        print(f"{'PRIOR_WEIGHT':>14s} {'right applied':>14s} {'wrong applied':>14s} {'right rejected':>15s} "
              f"{'to expert':>10s} {'votes/retired':>14s}")
        rows = {}
        for name, weight, prior_of in variants:
            settings = replace(ConsensusSettings(), prior_weight=weight)
            totals = dict.fromkeys(KEYS + ("votes_retired", "retired", "n"), 0)
            for seed in args.seeds:
                for k, (case, truth, score, baseline) in enumerate(puzzles):
                    rng = np.random.default_rng([seed, k])
                    accuracies, reliability, established = players(rng, accuracy, chance, settings)
                    right = rng.random((N_PLAYERS, len(truth))) < accuracies[:, None]
                    answers = np.where(right == truth, SUPPORT, OPPOSE)
                    answers[rng.random(answers.shape) < UNSURE_RATE] = UNSURE
                    result = play(truth, score if prior_of == "score" else baseline, answers, reliability,
                                  established, settings, np.random.default_rng([seed, k, 1]))
                    for key in totals:
                        totals[key] += result[key]
            row = {key: round(100 * totals[key] / totals["n"], 2) for key in KEYS}
            row["votes_per_retired"] = round(totals["votes_retired"] / max(totals["retired"], 1), 2)
            rows[name] = row
            print(f"{name:>14s} {row['correct_applied']:>14.2f} {row['wrong_applied']:>14.2f} "
                  f"{row['correct_rejected']:>15.2f} {row['expert']:>10.2f} {row['votes_per_retired']:>14.2f}",
                  flush=True)
        report["crowds"][label] = rows
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
