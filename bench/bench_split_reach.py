"""Split reach: for how many false merges does the pool ever offer a correct cut (issue 10, item 1)?

For each volume — the demo of seeds 0, 1, 2 (the project's own ``demo``
pipeline, 64×256×256) and, where ../shared/data is present, fibsem-gala
(gala's supervoxels and boundary map, agglomerated at the default threshold)
and snemi-mini (its fragments, its membrane probability as image and boundary)
— the initial automatic segmentation is compared with the ground truth:

- a *false-merge segment* is a segment whose supervoxels' majority
  ground-truth objects differ; its *intruding voxels* are the labelled voxels
  of its supervoxels whose majority object is not the segment's dominant one
  (voxels weighed as ``game.puzzles.truth.supervoxel_truth`` weighs them: the
  labelled ones). This is what merge/split of supervoxels can fix: the
  supervoxel limit's view;
- the split candidates are those the living pool would ever offer for a
  segment of the initial segmentation: every split of
  :func:`game.detection.candidates.find_candidates` (with the settings'
  ``SPLIT_TREE_DEPTH``) for that segment, in the order the pool walks them
  (one open at a time, the next after a "no");
- a cut is *correct* when the game's own truth says so:
  :meth:`game.puzzles.edit.PuzzleEdit.is_correct` is True (moved and staying
  sides mostly different objects, the moved side holding at least as much of
  its object as stays, the staying side at least as much of its object as
  moves; near ties and unlabelled parts count as not correct);
- a correct cut *removes* the moved voxels that are not of the segment's
  dominant object; per false merge the best correct cut counts.

Printed per volume: false-merge segments (those with >= 500 intruding voxels),
the share with a correct cut offered (and of the >= 500 ones), the share of
all intruding voxels removed by the best correct cut of each, cuts offered
per false-merge segment and per other segment (every segment of the volume
that is not a false merge: a "no" walks a clean segment's cuts to the end, so
all are asked), cuts a perfect crowd is asked on a false merge before its
first correct cut ends the walk, and the total cuts asked. Every cut asked
costs about five crowd votes. Only the first level of the walk is counted: a
correct cut, once applied, makes new segments whose own cuts are not.

    python bench/bench_split_reach.py [--volumes demo0 demo1 demo2 fib snemi] [--cache DIR]
                                      [--home demo0=INSTANCE_DIR ...] [--depth N] [--json FILE]

Volumes are made once into ``--cache`` (default bench/out/split-reach) and
reused; ``--home key=DIR`` reads a demo volume from an existing instance
folder instead (its initial segmentation, whatever edits were made since).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import pipeline
from game.app.instance import Instance
from game.app.settings import load_settings
from game.detection.candidates import MIN_PART_VOXELS, contact_points, find_candidates
from game.puzzles.edit import PuzzleEdit
from game.puzzles.truth import supervoxel_truth
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG
from game.volumes.volume import VolumeStore

DATA = ROOT.parent / "shared" / "data"
VOLUMES = ("demo0", "demo1", "demo2", "fib", "snemi")
BIG_INTRUDER = 500  # intruding voxels: a false merge that matters


def _instance(home: Path):
    return Instance(home, load_settings({"HOME": str(home)}, environ={}))


# the real volumes: their folder under DATA, the files import takes, and the voxel size (nm, z y x)
REAL = {
    "fib": ("fibsem-gala", {"image": "train-image.h5", "supervoxels": "train-ws.lzf.h5",
                            "boundary": "train-p1.lzf.h5", "groundtruth": "train-gt.lzf.h5"}, (10, 10, 10)),
    "snemi": ("snemi-mini", {"image": "train-probabilities.tif", "supervoxels": "train-fragments.tif",
                             "boundary": "train-probabilities.tif", "groundtruth": "train-labels.tif"}, (29, 6, 6)),
}


def make_volume(key: str, cache: Path) -> Path | None:
    """The instance folder holding volume ``key`` (made on first use); None when its data are absent."""
    home = cache / key
    if (home / "ready").exists():
        return home
    if key.startswith("demo"):
        inst = _instance(home)
        pipeline.make_demo(inst, "demo", seed=int(key[4:]), overwrite=True)
    elif key in REAL:
        name, files, resolution = REAL[key]
        folder = DATA / name
        if not folder.is_dir():
            return None
        inst = _instance(home)
        pipeline.import_volume(inst, "demo", **{layer: str(folder / file) for layer, file in files.items()},
                               resolution=resolution, overwrite=True)
        pipeline.agglomerate_volume(inst, "demo")
    else:
        raise SystemExit(f"unknown volume {key!r}; known: {', '.join(VOLUMES)}")
    (home / "ready").touch()
    return home


def false_merges(agg, sv_truth: np.ndarray, weight: np.ndarray) -> dict[int, dict]:
    """Segments whose supervoxels' majority objects differ: ``{segment: {'dominant', 'intruding'}}``."""
    mapping = np.asarray(agg.mapping)
    labelled = sv_truth[1:] != 0
    seg, obj, w = mapping[1:][labelled], sv_truth[1:][labelled], weight[1:][labelled]
    pairs, inverse = np.unique(np.c_[seg, obj], axis=0, return_inverse=True)
    voxels = np.bincount(inverse.ravel(), weights=w)
    per_segment = defaultdict(dict)
    for (s, o), v in zip(pairs.tolist(), voxels.tolist()):
        per_segment[s][o] = v
    out = {}
    for s, objects in per_segment.items():
        if len(objects) > 1:
            main = max(objects, key=objects.get)
            out[s] = {"dominant": main, "intruding": sum(v for o, v in objects.items() if o != main)}
    return out


def _walk_order(cuts: list[dict]) -> dict[int, list[dict]]:
    """Each segment's split candidates in the order the pool asks them (game.app.pool.Pool.refill)."""
    walks = defaultdict(list)
    for c in sorted(cuts, key=lambda c: (c.get("rank", 0), -c["score"])):
        walks[c["segments"][0]].append(c)
    return walks


def perfect_walk(volume, agg, rag, sizes, points, sv_truth, weight, fm: dict, **options) -> tuple[float, int]:
    """Intruding voxels left in false merges after a crowd that always answers right walked every false
    merge's cuts, the pieces of each applied cut walked again (the pool's rescan), and the cuts it asked."""
    agg = Agglomeration(np.array(agg.mapping))
    todo, asked = sorted(fm), 0
    while todo:
        segment = todo.pop()
        cuts = [c for c in find_candidates(volume, agg, rag, sizes=sizes, points=points, segments=[segment],
                                           gaps=False, **options) if c["kind"] == "split"]
        for c in _walk_order(cuts)[segment]:
            asked += 1
            edit = PuzzleEdit.of(c)
            if edit.is_correct(agg, sv_truth, weight):
                edit.apply(agg)
                todo += [agg.segment_of(a) for a in edit.anchors]
                break
    left = sum(f["intruding"] for f in false_merges(agg, sv_truth, weight).values())
    return left, asked


def measure(volume, agg, rag, sizes, points, sv_truth, weight, *, depth: int | None, **options) -> dict:
    """The figures of one volume for the split candidates of ``find_candidates(depth=depth, **options)``."""

    started = time.perf_counter()
    cuts = [c for c in find_candidates(volume, agg, rag, sizes=sizes, points=points, gaps=False, depth=depth,
                                       **options) if c["kind"] == "split"]
    seconds = time.perf_counter() - started
    walks = _walk_order(cuts)
    fm = false_merges(agg, sv_truth, weight)
    covered, covered_big, covered_seen, removed, asked_fm = 0, 0, 0, 0.0, 0
    for segment, info in fm.items():
        best, first = None, None
        for position, c in enumerate(walks.get(segment, [])):
            if not PuzzleEdit.of(c).is_correct(agg, sv_truth, weight):
                continue
            moved = np.asarray(c["supervoxels"], np.int64)
            gone = float(weight[moved][sv_truth[moved] != info["dominant"]].sum())
            best = gone if best is None else max(best, gone)
            first = position if first is None else first
        covered += best is not None
        covered_big += best is not None and info["intruding"] >= BIG_INTRUDER
        covered_seen += best is not None and info["intruding"] >= MIN_PART_VOXELS
        removed += best or 0.0
        asked_fm += len(walks.get(segment, [])) if first is None else first + 1
    intruding = sum(f["intruding"] for f in fm.values())
    others = agg.n_segments - len(fm)
    on_others = sum(len(w) for s, w in walks.items() if s not in fm)
    left, walked = perfect_walk(volume, agg, rag, sizes, points, sv_truth, weight, fm, depth=depth, **options)
    return {"false_merges": len(fm), "big": sum(f["intruding"] >= BIG_INTRUDER for f in fm.values()),
            "seen": sum(f["intruding"] >= MIN_PART_VOXELS for f in fm.values()),
            "covered": covered, "covered_big": covered_big, "covered_seen": covered_seen,
            "walk_removed_share": 1 - left / intruding if intruding else None,
            "walk_asked_per_false_merge": walked / len(fm) if fm else None,
            "covered_share": covered / len(fm) if fm else None,
            "removed_share": removed / intruding if intruding else None,
            "per_false_merge": sum(len(walks.get(s, [])) for s in fm) / len(fm) if fm else None,
            "asked_per_false_merge": asked_fm / len(fm) if fm else None,
            "per_other": on_others / others if others else 0.0,
            "asked": asked_fm + on_others, "cuts": len(cuts), "seconds": seconds}


def load(home: Path):
    """Volume, initial segmentation, RAG, voxel counts, contact points and supervoxel truth of ``home``'s demo."""
    store = VolumeStore(home / "volumes")
    volume = store.open("demo")
    rag = RAG.from_arrays(volume.load_side("rag"))
    agg = Agglomeration(np.asarray(volume.load_side("mapping")))
    if volume.has_side("sv_sizes") and volume.has_side("rag_points"):
        sizes, points = volume.load_side("sv_sizes"), volume.load_side("rag_points")
    else:
        sizes, points = contact_points(volume, rag)
    known = supervoxel_truth(volume, agg.n_supervoxels)
    return volume, agg, rag, sizes, points, known


def measured_volumes(keys, homes: dict, cache: Path, columns: int):
    """For each volume key: the home it is read from (``homes``, else made in ``cache``) and what :func:`load`
    gives, with its truth; a volume without data or 3D truth is a row that says so (``columns`` empty cells)."""
    for key in keys:
        home = Path(homes[key]) if key in homes else make_volume(key, cache)
        if home is None:
            print(f"| {key} | skipped: {DATA} holds no data for it |" + " |" * columns)
            continue
        volume, agg, rag, sizes, points, known = load(home)
        if known is None:
            print(f"| {key} | skipped: no 3D ground truth |" + " |" * columns)
            continue
        yield key, home, (volume, agg, rag, sizes, points, *known)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", nargs="+", default=list(VOLUMES))
    parser.add_argument("--cache", default=str(ROOT / "bench" / "out" / "split-reach"))
    parser.add_argument("--home", nargs="*", default=[], metavar="KEY=DIR",
                        help="read a volume from an existing instance folder (e.g. demo0=/path/instance)")
    parser.add_argument("--depth", type=int, default=None,
                        help="merges of each tree undone, last first (default: SPLIT_TREE_DEPTH; 0: every merge)")
    parser.add_argument("--contrast", type=float, default=None,
                        help="least excess of a cut's boundary over its segment's inside (default: SPLIT_CUT_CONTRAST)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    settings = load_settings(environ={})
    depth = args.depth if args.depth is not None else settings["SPLIT_TREE_DEPTH"]
    contrast = args.contrast if args.contrast is not None else settings["SPLIT_CUT_CONTRAST"]
    homes = dict(item.split("=", 1) for item in args.home)
    cache = Path(args.cache)
    results = {}
    print(f"split candidates of find_candidates: last {depth} merges of each tree whatever the boundary, cut contrast {contrast}; "
          f"a false merge 'big' with >= {BIG_INTRUDER} intruding voxels")
    print("| volume | false merges (>= 64, >= 500 intruding) | correct cut offered | of those >= 64 | of those >= 500 "
          "| intruding voxels removed by the best | cuts per false merge | asked per false merge | "
          "cuts per other segment | cuts asked in all | walk: intruding removed | walk: asked per false merge "
          "| seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, _, loaded in measured_volumes(args.volumes, homes, cache, 12):
        r = measure(*loaded, depth=depth, contrast=contrast)
        results[key] = r

        def pct(x):
            return "–" if x is None else f"{100 * x:.0f}%"

        def num(x):
            return "–" if x is None else f"{x:.2f}"
        print(f"| {key} | {r['false_merges']} ({r['seen']}, {r['big']}) | {r['covered']} ({pct(r['covered_share'])}) "
              f"| {r['covered_seen']}/{r['seen']} | {r['covered_big']}/{r['big']} | {pct(r['removed_share'])} | "
              f"{num(r['per_false_merge'])} | {num(r['asked_per_false_merge'])} | {r['per_other']:.2f} | "
              f"{r['asked']} | {pct(r['walk_removed_share'])} | {num(r['walk_asked_per_false_merge'])} | "
              f"{r['seconds']:.1f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
