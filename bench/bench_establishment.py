"""How often a chance-level account is ever established, and how many gold answers an honest player needs.

Secret gold is balanced, so an account answering without looking is right on
each gold answer with probability 0.5. The game re-checks a player's standing
after every gold answer (:func:`game.crowd.reliability.standing`): a test
checked that often is crossed by chance far more often than its one-look
level says. This bench plays ``--trials`` random records of ``--answers`` gold
answers and reports, for the shipped rule (``ESTABLISHED_GOLD_ANSWERS``,
``ESTABLISHED_RELIABILITY``, ``ESTABLISHED_CERTAINTY``, gold record only) and
for an anytime-valid alternative (a mixture Bayes factor against chance, with
a uniform prior on accuracies above one half, which is a nonnegative
martingale under chance, so by Ville's inequality it ever reaches ``1/α``
with probability at most ``α`` [1]_):

- the share of chance-level accounts ever established within the record;
- the median number of gold answers an honest player at ``--accuracy`` needs.

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


def records(rng: np.random.Generator, trials: int, answers: int, accuracy: float) -> np.ndarray:
    """Right answers so far after each gold answer, one row per account."""
    return np.cumsum(rng.random((trials, answers)) < accuracy, axis=1)


def shipped_rule(right: np.ndarray, settings: dict) -> np.ndarray:
    n = np.arange(1, right.shape[1] + 1)
    reliability = (1 + right) / (2 + n)  # the gold record's posterior mean from a prior at 0.5
    return (n >= settings["ESTABLISHED_GOLD_ANSWERS"]) & (reliability >= settings["ESTABLISHED_RELIABILITY"]) & \
        (beta.sf(0.5, 1 + right, 1 + n - right) >= settings["ESTABLISHED_CERTAINTY"])


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
    rules = {"shipped (certainty {:.2f})".format(settings["ESTABLISHED_CERTAINTY"]):
             lambda r: shipped_rule(r, settings)}
    for alpha in (0.05, 0.01):
        rules[f"anytime-valid, alpha {alpha}"] = (
            lambda r, a=alpha: ville_rule(r, a, settings["ESTABLISHED_GOLD_ANSWERS"]))
    for name, rule in rules.items():
        ever = rule(chance).any(axis=1).mean()
        needed = np.median(first_pass(rule(honest)))
        print(f"{name:<28} chance-level accounts ever established within {args.answers} gold answers: "
              f"{ever:.1%}; an honest player at {args.accuracy:.0%} needs a median {needed:.0f} gold answers")


if __name__ == "__main__":
    main()
