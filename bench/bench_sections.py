"""Puzzles whose decision spans sections, in prepared instances: how many are asked and how many are right.

For each instance folder (one volume each, prepared by a first start, e.g. bench_simulate's cache), counts
the puzzles whose frame joins the parts across sections (``across`` > 0: they open side by side), split into
gap merges 8 or more sections apart (``--long``), shorter gap merges, and parts framed across sections
because a stack would show them stacked; for each, right and wrong edits, how many a person can judge by
looking (:func:`game.puzzles.looking.obstacles`; 'edge': a gap at the volume's side) and how many became
known answers (practice, teach, gold).

    python bench/bench_sections.py /work/scratch/sections-cache/demo{0,1,2}/instance [--long 8]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import store as st  # noqa: E402
from game.app.instance import Instance  # noqa: E402
from game.app.settings import load_settings  # noqa: E402
from game.puzzles.looking import obstacles, shown_frame, stored_frame  # noqa: E402


def kind_of(puzzle: dict, long: int) -> str | None:
    frame = stored_frame(puzzle)
    if frame is None or not frame.across:
        return None
    if puzzle["detector"].get("how") == "gap":
        return f"gap >= {long}" if frame.across >= long else f"gap < {long}"
    return f"{puzzle['kind']} stacked"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("homes", nargs="+", type=Path)
    parser.add_argument("--long", type=int, default=8, help="sections apart from which a gap merge is long")
    args = parser.parse_args()
    for home in args.homes:
        inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
        counts: Counter = Counter()
        for puzzle in st.puzzles(inst.store, tutorial=None):
            kind = kind_of(puzzle, args.long)
            if kind is None:
                continue
            truth = {None: "unknown", 1: "right", 0: "wrong"}[puzzle["truth"]]
            reasons = obstacles(shown_frame(puzzle))  # judged on the view it is drawn in, as the pool does
            counts[(kind, truth, "judgeable" if not reasons else "/".join(reasons),
                    "known" if puzzle["gold"] or puzzle["tutorial"] else "crowd")] += 1
        inst.store.close()
        print(f"{home}: puzzles across sections (kind, edit, by looking, role): count")
        for key in sorted(counts):
            print("   ", ", ".join(key), counts[key])
        for kind in sorted({k[0] for k in counts}):
            right = sum(n for k, n in counts.items() if k[0] == kind and k[1] == "right")
            judged = sum(n for k, n in counts.items() if k[0] == kind and k[1] == "right" and k[2] == "judgeable")
            print(f"  {kind}: {sum(n for k, n in counts.items() if k[0] == kind)} asked, {right} right edits "
                  f"({judged} of them judgeable by looking)")


if __name__ == "__main__":
    main()
