"""How often a chance-level account is ever established, and how many gold answers an honest player needs.

Secret gold is balanced, so an account answering without looking is right on
each gold answer with probability 0.5. The game re-checks a player's standing
after every gold answer (:func:`game.crowd.reliability.standing`): a test
checked that often is crossed by chance far more often than its one-look
level says. This bench plays ``--trials`` random records of ``--answers`` gold
answers and reports, for the shipped rule (``ESTABLISHED_GOLD_ANSWERS``,
``ESTABLISHED_RELIABILITY``, and the likelihood ratio at
``ESTABLISHED_ALTERNATIVE`` against chance reaching ``1 / ESTABLISHED_ALPHA``:
a nonnegative martingale under chance, so by Ville's inequality it ever
passes with probability at most alpha [1]_), for the rule before it (a
one-look certainty, P(accuracy > 0.5) >= 0.95 under a uniform prior, after 5
answers at reliability 0.6) and for a mixture Bayes factor (accuracy uniform
above one half):

- the share of chance-level accounts ever established within the record;
- the median number of gold answers an honest player at ``--accuracy`` needs,
  and the share established after 24 and 36 gold answers (a volume's secret
  gold: ``GOLD_PER_KIND`` of each of two kinds).

    python bench/bench_establishment.py [--answers 60] [--trials 200000] [--accuracy 0.8]

References
----------
.. [1] Ramdas A, Grünwald P, Vovk V, Shafer G (2023) Game-theoretic statistics
       and safe anytime-valid inference. Statistical Science 38(4): 576–601.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.special import betaln
from scipy.stats import beta

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game.app.settings import load_settings  # noqa: E402
from game.crowd.consensus import ConsensusSettings  # noqa: E402
from game.crowd.reliability import standing  # noqa: E402


def records(rng: np.random.Generator, trials: int, answers: int, accuracy: float) -> np.ndarray:
    """Right answers so far after each gold answer, one row per account."""
    return np.cumsum(rng.random((trials, answers)) < accuracy, axis=1)


def shipped_rule(right: np.ndarray, settings: dict) -> np.ndarray:
    """The game's own rule (:func:`standing` on the gold record alone), read off a table of every (answers,
    right) a record of this length can reach."""
    consensus = ConsensusSettings.from_settings(settings)
    answers = right.shape[1]
    table = np.zeros((answers + 1, answers + 1), bool)
    for n in range(1, answers + 1):
        for r in range(n + 1):
            table[n, r] = standing([True] * r + [False] * (n - r), [], consensus)[1]
    return table[np.arange(1, answers + 1), right]


def earlier_rule(right: np.ndarray) -> np.ndarray:
    """The rule before ESTABLISHED_ALPHA: 5 answers, reliability 0.6, P(accuracy > 0.5) >= 0.95 at each look."""
    n = np.arange(1, right.shape[1] + 1)
    return (n >= 5) & ((2 + right) / (4 + n) >= 0.6) & (beta.sf(0.5, 1 + right, 1 + n - right) >= 0.95)


def ville_rule(right: np.ndarray, alpha: float, minimum: int) -> np.ndarray:
    """Mixture Bayes factor of accuracy ~ U(0.5, 1) against accuracy 0.5, at least ``1/alpha``."""
    n = np.arange(1, right.shape[1] + 1)
    upper = np.maximum(beta.sf(0.5, right + 1, n - right + 1), 1e-300)
    log_factor = np.log(2) + betaln(right + 1, n - right + 1) + np.log(upper) + n * np.log(2)
    return (n >= minimum) & (log_factor >= np.log(1 / alpha))


def first_pass(passed: np.ndarray) -> np.ndarray:
    return np.where(passed.any(axis=1), passed.argmax(axis=1) + 1, passed.shape[1] + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=60)
    parser.add_argument("--trials", type=int, default=200_000)
    parser.add_argument("--accuracy", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = load_settings(environ={})
    rng = np.random.default_rng(args.seed)
    chance = records(rng, args.trials, args.answers, 0.5)
    honest = records(rng, args.trials // 10, args.answers, args.accuracy)
    rules = {"shipped (alpha {}, alternative {})".format(settings["ESTABLISHED_ALPHA"],
                                                         settings["ESTABLISHED_ALTERNATIVE"]):
             lambda r: shipped_rule(r, settings),
             "earlier (one-look certainty 0.95)": earlier_rule}
    for alpha in (0.05, 0.01):
        rules[f"mixture Bayes factor, alpha {alpha}"] = (
            lambda r, a=alpha: ville_rule(r, a, settings["ESTABLISHED_GOLD_ANSWERS"]))
    for name, rule in rules.items():
        ever = rule(chance).any(axis=1).mean()
        passed = rule(honest)
        needed = np.median(first_pass(passed))
        within = ", ".join(f"{passed[:, k - 1].mean():.0%} established after {k}" for k in (24, 36)
                           if k <= args.answers)
        print(f"{name:<40} chance-level accounts ever established within {args.answers} gold answers: "
              f"{ever:.1%}; an honest player at {args.accuracy:.0%} needs a median {needed:.0f} gold answers "
              f"({within})")

if __name__ == "__main__":
    main()
