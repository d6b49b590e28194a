"""Weighted consensus against plain majority, in a simulated crowd.

No server: puzzles with a known truth and an informative detector score
(AUC about 0.8), 20 players whose accuracies are drawn around A plus a share
answering at chance, and the server's assignment loop: each arriving player
gets a gold puzzle a tenth of the time, else the oldest open puzzle they have
not answered; after each vote the puzzle's rule is applied, and reliabilities
are refitted from all votes every ``--refit-every`` votes. Both rules see the
same arrivals and the same answers (each player's answer to each puzzle is
drawn once), so the columns differ only by the rule. Ends with the time to fit
reliabilities on 100k votes and to decide one puzzle.

Run: .venv/bin/python bench/bench_consensus.py [--puzzles 2000] [--seed 0]
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.crowd.consensus import (
    OPPOSE,
    SUPPORT,
    UNSURE,
    ConsensusSettings,
    decide,
    estimate_reliability,
    majority_decide,
)

N_PLAYERS = 20
GOLD_SHARE = 0.1
UNSURE_RATE = 0.05
# Separation of the detector's score distributions; AUC = Phi(d'/sqrt 2) = 0.8.
DETECTOR_D_PRIME = 1.19


@dataclass(frozen=True)
class Crowd:
    """Everything random about one scenario, drawn once for both rules."""

    truth: np.ndarray       # (n_puzzles + n_gold,) bool: the edit is correct
    score: np.ndarray       # detector's P(edit correct), calibrated
    answers: np.ndarray     # (n_players, n_puzzles + n_gold) in edit space
    accuracy: np.ndarray    # (n_players,)
    n_puzzles: int          # ordinary puzzles are 0..n_puzzles-1, gold after


def draw_crowd(rng, n_puzzles: int, mean_accuracy: float,
               chance_share: float) -> Crowd:
    n_total = n_puzzles + max(N_PLAYERS, round(GOLD_SHARE * n_puzzles))
    truth = rng.random(n_total) < 0.5
    signal = rng.normal(np.where(truth, 0.5, -0.5) * DETECTOR_D_PRIME, 1.0)
    score = 1.0 / (1.0 + np.exp(-DETECTOR_D_PRIME * signal))
    accuracy = np.clip(rng.beta(20 * mean_accuracy, 20 * (1 - mean_accuracy),
                                N_PLAYERS), 0.5, 0.99)
    accuracy[: round(chance_share * N_PLAYERS)] = 0.5
    right = rng.random((N_PLAYERS, n_total)) < accuracy[:, None]
    answers = np.where(right == truth, SUPPORT, OPPOSE)
    answers[rng.random(answers.shape) < UNSURE_RATE] = UNSURE
    return Crowd(truth, score, answers, accuracy, n_puzzles)


def auc(score, truth) -> float:
    """Mann–Whitney estimate of the area under the ROC curve."""
    ranks = np.argsort(np.argsort(score)) + 1
    n_pos = truth.sum()
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2)
                 / (n_pos * (truth.size - n_pos)))


def play(crowd: Crowd, rule, settings: ConsensusSettings, seed: int,
         refit_every: int) -> dict:
    """Run the assignment loop until every ordinary puzzle leaves the queue."""
    rng = np.random.default_rng(seed)
    n_total = crowd.truth.size
    gold = {i: bool(crowd.truth[i]) for i in range(crowd.n_puzzles, n_total)}
    answered = np.zeros((N_PLAYERS, n_total), dtype=bool)
    voters = [[] for _ in range(crowd.n_puzzles)]
    votes = []
    reliability = np.full(N_PLAYERS, settings.reliability_prior_mean)
    queue = list(range(crowd.n_puzzles))
    outcome = {}
    while queue:
        player = int(rng.integers(N_PLAYERS))
        unseen_gold = np.flatnonzero(~answered[player, crowd.n_puzzles:])
        if rng.random() < GOLD_SHARE and unseen_gold.size:
            puzzle = crowd.n_puzzles + int(unseen_gold[0])
        else:
            puzzle = next((p for p in queue if not answered[player, p]), None)
            if puzzle is None:
                continue
        answered[player, puzzle] = True
        votes.append((player, puzzle, crowd.answers[player, puzzle]))
        if len(votes) % refit_every == 0:
            reliability = estimate_reliability(
                votes, gold, settings, scores=crowd.score, n_players=N_PLAYERS)
        if puzzle >= crowd.n_puzzles:
            continue
        voters[puzzle].append(player)
        who = voters[puzzle]
        decision = rule(crowd.answers[who, puzzle], reliability[who],
                        crowd.score[puzzle], settings)
        if decision.state != "open":
            outcome[puzzle] = decision
            queue.remove(puzzle)
    retired = [p for p, d in outcome.items() if d.state == "retired"]
    wrong = sum(outcome[p].answer != crowd.truth[p] for p in retired)
    ordinary = sum(p < crowd.n_puzzles for _, p, _ in votes)
    return {
        "votes_per_retired": round(
            float(np.mean([len(voters[p]) for p in retired])), 3),
        "wrong_retired": round(float(wrong) / max(len(retired), 1), 4),
        "expert": round(1 - len(retired) / crowd.n_puzzles, 4),
        "votes_per_puzzle": round(ordinary / crowd.n_puzzles, 3),
        "gold_votes": len(votes) - ordinary,
    }


def time_estimation(seed: int, repeats: int = 5) -> dict:
    """Median seconds to fit reliabilities on 100k votes (2,000 players,
    20,000 puzzles x 5 votes, 10% gold)."""
    rng = np.random.default_rng(seed)
    n_players, n_puzzles, per = 2000, 20000, 5
    accuracy = rng.uniform(0.5, 0.95, n_players)
    truth = rng.random(n_puzzles) < 0.5
    player = rng.integers(0, n_players, n_puzzles * per)
    puzzle = np.repeat(np.arange(n_puzzles), per)
    right = rng.random(player.size) < accuracy[player]
    votes = np.column_stack(
        [player, puzzle, np.where(right == truth[puzzle], SUPPORT, OPPOSE)])
    gold = np.column_stack([np.arange(n_puzzles // 10), truth[: n_puzzles // 10]])
    settings = ConsensusSettings()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        reliability = estimate_reliability(votes, gold, settings)
        seconds.append(time.perf_counter() - start)
    return {"votes": int(len(votes)), "seconds": round(float(np.median(seconds)), 4),
            "correlation": round(float(np.corrcoef(accuracy, reliability)[0, 1]), 3)}


def time_decide(repeats: int = 20000) -> float:
    """Median microseconds for one decide() on a puzzle with 5 votes."""
    answers = np.array([SUPPORT, OPPOSE, SUPPORT, UNSURE, SUPPORT])
    reliability = np.array([0.8, 0.7, 0.9, 0.75, 0.6])
    settings = ConsensusSettings()
    batches = []
    for _ in range(repeats // 1000):
        start = time.perf_counter()
        for _ in range(1000):
            decide(answers, reliability, 0.6, settings)
        batches.append((time.perf_counter() - start) / 1000)
    return round(float(np.median(batches)) * 1e6, 1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puzzles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refit-every", type=int, default=200)
    args = parser.parse_args(argv)
    settings = ConsensusSettings()
    report = {"settings": asdict(settings), "puzzles": args.puzzles,
              "players": N_PLAYERS, "gold_share": GOLD_SHARE,
              "unsure_rate": UNSURE_RATE, "scenarios": []}
    print(f"{'scenario':<24}{'rule':<10}{'votes/retired':>14}{'wrong':>8}"
          f"{'expert':>8}{'votes/puzzle':>14}")
    for mean_accuracy, chance_share in ((0.8, 0.0), (0.65, 0.3)):
        crowd = draw_crowd(np.random.default_rng(args.seed), args.puzzles,
                           mean_accuracy, chance_share)
        scenario = {"mean_accuracy": mean_accuracy, "chance_share": chance_share,
                    "detector_auc": round(auc(crowd.score, crowd.truth), 3)}
        for name, rule in (("weighted", decide), ("majority", majority_decide)):
            result = play(crowd, rule, settings, args.seed + 1, args.refit_every)
            scenario[name] = result
            print(f"{f'A={mean_accuracy} chance={chance_share}':<24}{name:<10}"
                  f"{result['votes_per_retired']:>14}{result['wrong_retired']:>8}"
                  f"{result['expert']:>8}{result['votes_per_puzzle']:>14}")
        report["scenarios"].append(scenario)
    report["estimate_reliability_100k"] = time_estimation(args.seed)
    report["decide_microseconds"] = time_decide()
    print(f"estimate_reliability on {report['estimate_reliability_100k']['votes']}"
          f" votes: {report['estimate_reliability_100k']['seconds']} s;"
          f" decide: {report['decide_microseconds']} us")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
