"""Join reach: how much of the false splits' mass does the pool ever offer a correct merge for (issue 10, item 2)?

For each volume — the demo of seeds 0, 1, 2 and, where ../shared/data is
present, fibsem-gala and snemi-mini, made as ``bench/bench_split_reach.py``
makes them (same cache layout) — the initial automatic segmentation is
compared with the supervoxel limit (every supervoxel in its majority
ground-truth object, voxels weighed as
``game.puzzles.truth.supervoxel_truth`` weighs them: the labelled ones):

- a *part* is the labelled voxels of one segment whose supervoxels' majority
  object is ``o``; a *needed join* is two parts of one object ``o`` in two
  segments. Its *mass* is the product of the two parts' voxel counts: the
  voxel pairs of ``o`` that the join puts together, what it recovers of the
  split half of the Rand/VI errors;
- the *offered* merges are those :func:`game.detection.candidates.find_candidates`
  makes of the initial segmentation (the first pool, before any edit) that
  the game's truth calls correct (:meth:`game.puzzles.edit.PuzzleEdit.is_correct`);
  a needed join is offered when its two segments are connected by a chain
  of offered merges. (Merges found by later rescans join segments that
  earlier merges made, so they are chains of these.)
- a missed join is given the first cause of this list that holds for its
  two segments: ``intruder`` (the part is not its segment's dominant object:
  the segment is a false merge and a cut must come first; no merge can be
  correct), ``small segment`` (a segment under ``MIN_PART_VOXELS``),
  ``candidate not correct`` (a merge of the two is proposed but the truth
  says no or is silent: a near tie), ``contact not proposed`` (they touch,
  but the contact's boundary is above ``MAX_MERGE_BOUNDARY`` or its area
  under ``MIN_CONTACT_AREA``), and for segments that never touch:
  ``through the side`` (the last section of the one and the first of the
  other both reach an in-plane face of the volume: the neurite leaves the
  volume and comes back, nothing a picture inside it shows), ``beside``
  (they share sections: a gap in (y, x), which the gap scan along z never
  looks for), ``gap too long`` (more than ``MAX_GAP_SECTIONS`` sections
  between the end of one and the start of the other), ``ends do not
  overlap`` (the last section of one and the first of the other overlap by
  less than the gap scan's floors: an oblique neurite) and ``gap not
  proposed`` (the rest). Missed joins between two groups of segments already
  chained take the cause nearest to an offered join among their pairs, so
  each missed voxel pair is counted once.

Printed per volume: needed joins (pairs of parts), the share offered and
the share missed per cause, both of the voxel-pair mass and of the parts' VI
split (each part p of an object of n voxels counts p·log2(n/p); a missed
group of parts counts with the cause nearest to joining it to another), the
merge candidates and the share correct, with ``--home`` also the pair mass
offered by candidates that became the instance's puzzles (framing drops
candidates it cannot show, e.g. at the volume's side; a lower bound, as a
puzzle made after a known answer changed a segment has another key), and the oracle of the
start: every correct candidate of the first pool applied (merges first, then
cuts in the pool's order), as a share of the true gap (initial − supervoxel
limit) in VI and adapted Rand error.

Measured (contact merges of any area): the first pool offers 88%, 61%, 90% of
the demo's needed join mass (seeds 0, 1, 2; 72%, 55%, 70% of its VI split),
fibsem-gala's all, snemi-mini's 49% (64%). What it misses on the demo is
mostly not a merge candidate's business: parts that are intruders in false
merges (10%, 17%, 7% of the VI split), neurites that leave the volume
through its side and come back (9%, 7%, 10%), and one object of demo seed 1
whose two pieces share section 25 without touching (10%); oblique ends that
the gap scan along z misses make 3%, 10%, 7%. Following each end along its
segment's course (both ends terminal) found 2, 12 and 9 more gap merges on
the demo, 4 of them correct, and 589 on snemi-mini, 39 correct; the oracle
closed at most 1 point more of the VI gap: not kept.

    python bench/bench_join_reach.py [--volumes demo0 demo1 demo2 fib snemi] [--cache DIR]
                                     [--home demo0=INSTANCE_DIR ...] [--json FILE]

Volumes are made once into ``--cache`` (default bench/out/join-reach) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_split_reach import VOLUMES, measured_volumes  # the same volumes

from game.app.settings import load_settings
from game.detection import candidates as cand
from game.evaluation.quality import evaluate_mapping, gap_closed, supervoxel_limit, truth_table
from game.puzzles.edit import Moot, PuzzleEdit
from game.segmentation.agglomeration import Agglomeration

CAUSES = ("intruder", "small segment", "contact not proposed", "candidate not correct", "through the side",
          "beside", "gap too long", "ends do not overlap", "gap not proposed")
SIDE_VOXELS = 3  # a profile this near an in-plane face of the volume may leave it there


class Parts:
    """Union-find over segment ids."""

    def __init__(self):
        self.parent = {}

    def root(self, s: int) -> int:
        while self.parent.get(s, s) != s:
            s = self.parent[s]
        return s

    def join(self, a: int, b: int) -> None:
        a, b = self.root(a), self.root(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def needed_parts(agg, sv_truth: np.ndarray, weight: np.ndarray) -> tuple[dict, dict]:
    """``{object: {segment: labelled voxels of that object's supervoxels}}`` and each segment's dominant object."""
    mapping = np.asarray(agg.mapping)
    ids = np.arange(1, len(sv_truth))
    labelled = sv_truth[ids] != 0
    seg, obj, w = mapping[ids][labelled], sv_truth[ids][labelled], weight[ids][labelled]
    parts = defaultdict(lambda: defaultdict(float))
    for s, o, v in zip(seg.tolist(), obj.tolist(), w.tolist()):
        parts[o][s] += v
    per_segment = defaultdict(dict)
    for o, segs in parts.items():
        for s, v in segs.items():
            per_segment[s][o] = v
    dominant = {s: max(objs, key=objs.get) for s, objs in per_segment.items()}
    return parts, dominant


def extents(labels: np.ndarray) -> dict[int, tuple[int, int]]:
    """First and last section of every segment."""
    present = {}
    for z in range(labels.shape[0]):
        for s in np.unique(labels[z]).tolist():
            if s:
                first, _ = present.get(s, (z, z))
                present[s] = (first, z)
    return present


def ends_overlap(labels: np.ndarray, a: int, b: int, za: int, zb: int) -> tuple[int, float]:
    """Overlap in (y, x) of ``a`` at section ``za`` and ``b`` at ``zb``: voxels, share of the smaller."""
    ma, mb = labels[za] == a, labels[zb] == b
    both = int((ma & mb).sum())
    return both, both / max(1, min(int(ma.sum()), int(mb.sum())))


def at_side(labels: np.ndarray, segment: int, z: int) -> bool:
    """Whether the profile of ``segment`` at section ``z`` comes within ``SIDE_VOXELS`` of an in-plane face."""
    ys, xs = np.nonzero(labels[z] == segment)
    h, w = labels.shape[1:]
    return bool(len(ys)) and (ys.min() < SIDE_VOXELS or xs.min() < SIDE_VOXELS or ys.max() >= h - SIDE_VOXELS
                              or xs.max() >= w - SIDE_VOXELS)


def pair_cause(a: int, b: int, o: int, *, dominant, size, touching, proposed, labels, span) -> str:
    """Why no correct merge joins segments ``a`` and ``b`` (parts of object ``o``)."""
    if dominant.get(a) != o or dominant.get(b) != o:
        return "intruder"
    if min(size[a], size[b]) < cand.MIN_PART_VOXELS:
        return "small segment"
    key = (min(a, b), max(a, b))
    if key in proposed:
        return "candidate not correct"
    if key in touching:
        return "contact not proposed"
    (a0, a1), (b0, b1) = span[a], span[b]
    if a0 > b0:
        (a, a0, a1), (b, b0, b1) = (b, b0, b1), (a, a0, a1)
    if at_side(labels, a, a1) and at_side(labels, b, b0):
        return "through the side"
    if b0 <= a1:
        return "beside"
    if b0 - a1 - 1 > cand.MAX_GAP_SECTIONS:
        return "gap too long"
    overlap, share = ends_overlap(labels, a, b, a1, b0)
    if overlap < cand.MIN_GAP_OVERLAP or share < cand.MIN_GAP_SHARE:
        return "ends do not overlap"
    return "gap not proposed"


def oracle(volume, agg, rag, found: list[dict], sv_truth, weight) -> dict:
    """Metrics after every correct candidate of the first pool is applied (merges, then cuts)."""
    agg = Agglomeration(np.array(agg.mapping))
    for c in sorted(found, key=lambda c: c["kind"] != "merge"):
        edit = PuzzleEdit.of(c)
        try:
            if edit.is_correct(agg, sv_truth, weight):
                edit.apply(agg)
        except Moot:
            pass
    return evaluate_mapping(truth_table(volume), agg.mapping, rag)


def puzzle_keys(home: Path) -> set[str] | None:
    """The keys of the demo volume's puzzles in an instance folder (read from a copy of its store); None
    without a store."""
    if not (home / "proofquest.sqlite").exists():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        for file in home.glob("proofquest.sqlite*"):
            shutil.copy(file, scratch)
        with sqlite3.connect(Path(scratch) / "proofquest.sqlite") as db:
            keys = {k for (k,) in db.execute("SELECT key FROM puzzles WHERE volume = 'demo' AND key IS NOT NULL")}
    return keys or None


def offered_share(parts: dict, offered: Parts) -> float:
    """The share of the needed mass whose two parts ``offered`` chains together."""
    total, got = 0.0, 0.0
    for segs in parts.values():
        groups = defaultdict(float)
        for s, v in segs.items():
            groups[offered.root(s)] += v
        squares = sum(v * v for v in segs.values())
        total += (sum(segs.values()) ** 2 - squares) / 2
        got += (sum(m * m for m in groups.values()) - squares) / 2
    return got / total if total else float("nan")


def measure(volume, agg, rag, sizes, points, sv_truth, weight, *, puzzled: set[str] | None = None,
            **options) -> dict:
    """The figures of one volume for ``find_candidates(**options)``; with ``puzzled`` (the keys of an
    instance's puzzles) also the share offered by candidates that became puzzles."""
    started = time.perf_counter()
    found = cand.find_candidates(volume, agg, rag, sizes=sizes, points=points, **options)
    seconds = time.perf_counter() - started
    parts, dominant = needed_parts(agg, sv_truth, weight)
    mapping = np.asarray(agg.mapping)
    size = np.bincount(mapping, weights=sizes[:len(mapping)].astype(np.float64))
    merges = [c for c in found if c["kind"] == "merge"]
    correct = {}
    offered, as_puzzles = Parts(), Parts()
    for c in merges:
        try:
            truth = PuzzleEdit.of(c).is_correct(agg, sv_truth, weight)
        except Moot:
            truth = None
        correct[c["key"]] = truth
        if truth:
            offered.join(*c["segments"])
            if puzzled is not None and c["key"] in puzzled:
                as_puzzles.join(*c["segments"])
    proposed = {tuple(sorted(c["segments"])) for c in merges}
    su, sv = mapping[rag.u], mapping[rag.v]
    cross = su != sv
    touching = set(zip(np.minimum(su, sv)[cross].tolist(), np.maximum(su, sv)[cross].tolist()))
    labels = agg.materialize(np.asarray(volume.read("supervoxels", None, fill=0))).astype(np.int64)
    span = extents(labels)
    context = {"dominant": dominant, "size": size, "touching": touching, "proposed": proposed, "labels": labels,
               "span": span}
    total, got, needed = 0.0, 0.0, 0
    split_vi, split_left = 0.0, 0.0
    missed, missed_vi = defaultdict(float), defaultdict(float)
    # the cause nearest to an offered join first
    order = ("candidate not correct", "contact not proposed", "gap not proposed", "ends do not overlap",
             "gap too long", "beside", "through the side", "small segment", "intruder")
    for o, segs in parts.items():
        items = sorted(segs.items())
        needed += len(items) * (len(items) - 1) // 2
        groups = defaultdict(list)
        for s, v in items:
            groups[offered.root(s)].append((s, v))
        groups = list(groups.values())
        mass = [sum(v for _, v in g) for g in groups]
        all_mass = sum(mass)
        total += (all_mass ** 2 - sum(v * v for _, v in items)) / 2
        got += sum((m ** 2 - sum(v * v for _, v in g)) / 2 for g, m in zip(groups, mass))
        split_vi += sum(v * np.log2(all_mass / v) for _, v in items)
        split_left += sum(m * np.log2(all_mass / m) for m in mass)
        nearest = [len(order)] * len(groups)
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                causes = {pair_cause(a, b, o, **context) for a, _ in groups[i] for b, _ in groups[j]}
                cause = min(order.index(c) for c in causes)
                missed[order[cause]] += mass[i] * mass[j]
                nearest[i], nearest[j] = min(nearest[i], cause), min(nearest[j], cause)
        for m, cause in zip(mass, nearest):
            if cause < len(order):
                missed_vi[order[cause]] += m * np.log2(all_mass / m)
    table = truth_table(volume)
    initial, limit = evaluate_mapping(table, agg.mapping, rag), supervoxel_limit(table, rag)
    best = oracle(volume, agg, rag, found, sv_truth, weight)
    truths = [correct[c["key"]] for c in merges]
    by_how = defaultdict(lambda: [0, 0])
    for c in merges:
        by_how[c["how"]][0] += 1
        by_how[c["how"]][1] += bool(correct[c["key"]])
    return {"needed": needed, "mass": total, "offered_share": got / total if total else None,
            "missed": {c: missed[c] / total for c in CAUSES} if total else {},
            "vi_offered_share": 1 - split_left / split_vi if split_vi else None,
            "vi_missed": {c: missed_vi[c] / split_vi for c in CAUSES} if split_vi else {},
            "puzzled_share": None if puzzled is None else offered_share(parts, as_puzzles),
            "merges": len(merges), "merges_correct": sum(bool(t) for t in truths),
            "by_how": {h: list(v) for h, v in by_how.items()},
            "splits": len(found) - len(merges), "initial": initial, "limit": limit, "oracle": best,
            "oracle_gap_closed": gap_closed(initial, best, limit), "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", nargs="+", default=list(VOLUMES))
    parser.add_argument("--cache", default=str(ROOT / "bench" / "out" / "join-reach"))
    parser.add_argument("--home", nargs="*", default=[], metavar="KEY=DIR",
                        help="read a volume from an existing instance folder (e.g. demo0=/path/instance)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    settings = load_settings(environ={})
    homes = dict(item.split("=", 1) for item in args.home)
    results = {}
    print("needed joins: pairs of parts of one ground-truth object in two segments (supervoxel limit); shares of "
          "their voxel-pair mass / of their VI split (bits), as offered and as missed per cause")
    print("| volume | needed joins | offered (pairs / VI split) | " + " | ".join(CAUSES) + " | merge candidates "
          "(contact, gap) | correct | pairs offered by puzzles | oracle of the start: VI / ARE gap closed | seconds |")
    print("|---|---|---|" + "---|" * len(CAUSES) + "---|---|---|---|---|")
    for key, home, loaded in measured_volumes(args.volumes, homes, Path(args.cache), len(CAUSES) + 5):
        r = measure(*loaded, puzzled=puzzle_keys(home),
                    depth=settings["SPLIT_TREE_DEPTH"], contrast=settings["SPLIT_CUT_CONTRAST"])
        results[key] = r
        how = r["by_how"]
        puzzled = "–" if r["puzzled_share"] is None else f"{r['puzzled_share']:.0%}"
        print(f"| {key} | {r['needed']} | {r['offered_share']:.0%} / {r['vi_offered_share']:.0%} | "
              + " | ".join(f"{r['missed'][c]:.1%} / {r['vi_missed'][c]:.1%}" for c in CAUSES)
              + f" | {r['merges']} ({how.get('contact', [0])[0]}, {how.get('gap', [0])[0]}) | "
              f"{r['merges_correct'] / max(1, r['merges']):.0%} | {puzzled} | {r['oracle_gap_closed']['vi']:.0%} / "
              f"{r['oracle_gap_closed']['adapted_rand_error']:.0%} | {r['seconds']:.1f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
