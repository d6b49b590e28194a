"""What each applied edit did to a played instance: its change of ARE and VI, and why it was made.

Replays the edit log of a volume from its initial mapping and scores the
segmentation after every edit against the ground truth. Per edit it prints who
made it (known answer, crowd, expert), its puzzle's kind, how and rank, the
truth stored when the puzzle was made, the truth of the same edit at the moment
it was applied (the parts may have changed in between), whether its parts had
changed since the puzzle was made, and for a merge whether one of its
segments had a split puzzle open when it was applied. Edits that worsen ARE by
more than ``--worse`` are listed apart: the late harmful edit of issue 10.

What stands in the way of judging each edit's puzzle by looking
(:func:`game.puzzles.looking.obstacles` of the view it is drawn in: sliver,
island, edge) is summed too: the crowd's change of ARE and VI from puzzles a person
can judge and from the rest. The simulated crowd answers every puzzle with
the same accuracy; people who look do worse on slivers and islands (the
looking module's membrane-contrast AUC 0.71 and 0.38–0.65) and cannot tell
a gap at the volume's side, so the second share is what a real crowd may not
win.
It also counts the crowd's wrong decisions, each judged against the
segmentation as it was when it was decided (an applied edit just before it was
applied, a rejection when it retired), where the simulator's own count uses
the truth stored when the puzzle was made.

    python bench/bench_edit_trace.py KEPT_INSTANCE [KEPT_INSTANCE ...] [--volume demo] [--worse 0.002] [--all]

A kept instance is a folder written by ``bench/bench_simulate.py --keep DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import store as st  # noqa: E402
from game.app.instance import Instance  # noqa: E402
from game.app.settings import load_settings  # noqa: E402
from game.evaluation.quality import evaluate_mapping, truth_table  # noqa: E402
from game.puzzles.edit import Moot, PuzzleEdit  # noqa: E402
from game.puzzles.looking import obstacles, shown_frame  # noqa: E402
from game.puzzles.truth import supervoxel_truth  # noqa: E402
from game.segmentation.agglomeration import Agglomeration, Edit  # noqa: E402
from game.segmentation.rag import RAG  # noqa: E402


def vi(q: dict) -> float:
    return q["vi_split"] + q["vi_merge"]


def trace(home: Path, name: str) -> list[dict]:
    """One row per edit of volume ``name`` in the instance at ``home``."""
    inst = Instance(home, load_settings({"HOME": str(home)}, environ={}))
    volume = inst.volumes.open(name)
    table, rag = truth_table(volume), RAG.from_arrays(volume.load_side("rag"))
    agg = Agglomeration(np.array(volume.load_side("mapping")))
    sv_truth, labelled = supervoxel_truth(volume, agg.n_supervoxels)
    puzzles = {p["id"]: p for p in st.puzzles(inst.store, volume=name)}
    splits = [p for p in puzzles.values() if p["kind"] == "split" and not p["gold"] and not p["tutorial"]]
    quality = evaluate_mapping(table, agg.mapping, rag)
    rows = []
    # crowd puzzles retired without an edit, judged against the segmentation as it was when they retired
    rejected = sorted((p for p in puzzles.values() if not p["gold"] and not p["tutorial"] and p["state"] == "retired"
                       and p["edit_seq"] is None), key=lambda p: p["retired"])

    def judge_rejected(until: float) -> None:
        while rejected and rejected[0]["retired"] <= until:
            p = rejected.pop(0)
            try:
                truth = PuzzleEdit.of(p).is_correct(agg, sv_truth, labelled)
            except Moot:
                continue
            rows.append({"seq": None, "rejected": p["id"], "decision": bool(p["decision"]), "truth_applied": truth})

    for entry in st.edits(inst.store, name):
        judge_rejected(entry["created"])
        edit = Edit.from_dict(entry["edit"])
        puzzle = puzzles.get(entry["puzzle_id"])
        row = {"seq": entry["seq"], "author": entry["author"], "kind": edit.kind, "puzzle": entry["puzzle_id"],
               "how": None, "rank": None, "truth_made": None, "truth_applied": None, "changed": None,
               "open_cut": None, "obstacles": None}
        if puzzle is not None:
            detector = json.loads(puzzle["detector"]) if isinstance(puzzle["detector"], str) else \
                (puzzle["detector"] or {})
            row.update(how=detector.get("how"), rank=detector.get("rank"), truth_made=puzzle["truth"],
                       gold=puzzle["gold"], n_votes=puzzle["n_votes"], posterior=puzzle["posterior"],
                       obstacles=obstacles(shown_frame({"detector": detector})))
            puzzle_edit = PuzzleEdit.of(puzzle)
            try:
                parts = puzzle_edit.parts(agg)
                row["truth_applied"] = puzzle_edit.is_correct(agg, sv_truth, labelled)
                made = detector.get("features", {})
                sizes_now = [int(labelled[parts.a].sum()), int(labelled[parts.b].sum())]
                row["changed"] = len(parts.a) != made.get("supervoxels_a") or \
                    len(parts.b) != made.get("supervoxels_b")
                row["sizes"] = sizes_now
            except Moot:
                row["truth_applied"] = "moot"
            if edit.kind == "merge":
                segments = {agg.segment_of(a) for a in puzzle["anchors"]}
                row["open_cut"] = [p["id"] for p in splits
                                   if p["created"] <= entry["created"] and (p["retired"] is None
                                                                            or p["retired"] >= entry["created"])
                                   and agg.segment_of(p["anchors"][0]) in segments]
        agg.apply(edit)
        after = evaluate_mapping(table, agg.mapping, rag)
        row.update(d_are=after["adapted_rand_error"] - quality["adapted_rand_error"], d_vi=vi(after) - vi(quality),
                   are=after["adapted_rand_error"], vi=vi(after))
        quality = after
        rows.append(row)
    judge_rejected(float("inf"))
    inst.store.close()
    return rows


def line(r: dict) -> str:
    return (f"  #{r['seq']:<4} {r['author']:<10} {r['kind']:<5} {str(r['how'] or ''):<7} rank {str(r['rank']):<4} "
            f"puzzle {str(r['puzzle']):<6} truth made {str(r['truth_made']):<5} applied {str(r['truth_applied']):<5} "
            f"parts changed {str(r['changed']):<5} open cuts {r['open_cut'] or '-'}  "
            f"ΔARE {r['d_are']:+.4f} ΔVI {r['d_vi']:+.4f}  → ARE {r['are']:.4f} VI {r['vi']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("instances", type=Path, nargs="+")
    parser.add_argument("--volume", default="demo")
    parser.add_argument("--worse", type=float, default=0.002, help="list edits that raise ARE by more than this")
    parser.add_argument("--all", action="store_true", help="print every edit, not only the harmful ones")
    args = parser.parse_args()
    for home in args.instances:
        rows = trace(home, args.volume)
        judged = [r for r in rows if r["seq"] is None]
        rows = [r for r in rows if r["seq"] is not None]
        crowd = [r for r in rows if r["author"] == "consensus"]
        decided = [r["truth_applied"] for r in crowd] + [not r["truth_applied"] if r["truth_applied"] is not None
                                                         else None for r in judged]
        print(f"{home}: crowd decisions judged when made (applied edits and rejections): {len(decided)}, wrong "
              f"{sum(d is False for d in decided)}, near ties or unlabelled {sum(d is None for d in decided)}")
        harmful = [r for r in rows if r["d_are"] > args.worse]
        stale = [r for r in crowd if r["truth_made"] is not None and r["truth_applied"] != bool(r["truth_made"])]
        print(f"{home}: {len(rows)} edits ({len(crowd)} by the crowd); ARE {rows[0]['are'] - rows[0]['d_are']:.4f}"
              f" → {rows[-1]['are']:.4f}; {len(harmful)} raise ARE by > {args.worse}; crowd edits whose truth when "
              f"applied differs from when made: {len(stale)}; merges applied with a cut of theirs open: "
              f"{sum(bool(r['open_cut']) for r in crowd)}")
        by_obstacle = {}
        for r in crowd:
            label = "+".join(r["obstacles"] or ()) or ("judgeable" if r["obstacles"] is not None else "no puzzle")
            got = by_obstacle.setdefault(label, [0, 0.0, 0.0])
            got[0] += 1
            got[1] += r["d_are"]
            got[2] += r["d_vi"]
        total_vi = sum(v[2] for v in by_obstacle.values()) or float("nan")
        print(f"{home}: the crowd's edits by what stands in the way of judging their puzzle by looking: " + "; ".join(
            f"{label} {n} edits, ΔARE {d_are:+.4f}, ΔVI {d_vi:+.4f} ({d_vi / total_vi:.0%} of the crowd's)"
            for label, (n, d_are, d_vi) in sorted(by_obstacle.items(), key=lambda kv: kv[1][2])))
        for r in rows if args.all else harmful:
            print(line(r))


if __name__ == "__main__":
    main()
