"""How puzzles are drawn: the stored frame against its view (:func:`game.puzzles.framing.view_frame`).

For every puzzle of an instance's volume (or the first ``--limit``), with its parts as they are now: on
the key slice (across sections: the section where a part begins, too), the smaller part's piece at the
spot — its least distance to the image's edge in displayed pixels (0: it touches the edge) and its
width on screen — in the stored frame (as drawn before renderer 3) and in the view (as drawn now);
how far the spot moved (voxels); and the share a person can judge by looking (:func:`game.puzzles.looking.judgeable`)
measured on the stored frame and on the view (measured as drawn). Prints medians and shares, the last line JSON.

    .venv/bin/python bench/bench_view.py --home H --volume demo [--limit 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import images
from game.app import store as st
from game.app.instance import Instance
from game.app.settings import load_settings
from game.puzzles.edit import Moot, PuzzleEdit
from game.puzzles.framing import OUT_SIZE, Frame, _piece, _width, part_masks
from game.puzzles.looking import judgeable

# A piece this close to the image's edge (displayed pixels) counts as "at the edge".
AT_EDGE_PX = 8


def piece_measures(frame: Frame, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(least displayed pixels from the smaller piece at the spot to the image's edge, its width on screen)."""
    key = frame.key
    y, x = (p - s for p, s in zip(frame.point[1:], frame.start[1:]))
    masks = ([a[key] | b[key], a[key + frame.across] | b[key + frame.across]] if frame.across
             else [a[key], b[key]])
    pieces = [p for p in (_piece(m, y, x) for m in masks) if p.any()]
    if not pieces:
        return float("nan"), float("nan")
    small = min(pieces, key=lambda p: p.sum())
    ys, xs = np.nonzero(small)
    side = frame.side
    edge = min(ys.min(), xs.min(), side - 1 - ys.max(), side - 1 - xs.max())
    return float(edge * frame.scale), float(_width(small) * frame.scale)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--volume", required=True)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    inst = Instance(args.home, load_settings({"HOME": args.home}))
    volume = inst.volumes.open(args.volume)
    rows = []
    for puzzle in st.puzzles(inst.store, volume=args.volume, tutorial=None)[:args.limit]:
        if not (puzzle.get("detector") or {}).get("frame"):
            continue
        stored = images.puzzle_frame(inst, puzzle)
        edit, agg = PuzzleEdit.of(puzzle), images.shown_agglomeration(inst, puzzle)
        try:
            view = images.drawn_frame(volume, stored, edit, agg)
            before = piece_measures(stored, *part_masks(volume.read("supervoxels", stored.box), edit, agg))
            after = piece_measures(view, *part_masks(volume.read("supervoxels", view.box), edit, agg))
        except Moot:
            continue
        moved = float(np.abs(np.subtract(view.point, stored.point)).max())
        rows.append((puzzle["kind"], *before, *after, moved, stored.side, view.side, judgeable(stored),
                     judgeable(view)))
    table = np.array([r[1:] for r in rows], float)
    result = {"volume": args.volume, "puzzles": len(rows)}
    for name, (edge, width) in (("stored", (0, 1)), ("view", (2, 3))):
        result[name] = {"at_edge_share": round(float(np.nanmean(table[:, edge] < AT_EDGE_PX)), 3),
                        "edge_px_p50": round(float(np.nanmedian(table[:, edge])), 1),
                        "small_width_px_p50": round(float(np.nanmedian(table[:, width])), 1),
                        "small_width_px_p10": round(float(np.nanpercentile(table[:, width], 10)), 1),
                        "side_p50": float(np.median(table[:, 5 if name == "stored" else 6])),
                        "judgeable_share": round(float(np.mean(table[:, 7 if name == "stored" else 8])), 3)}
    result["spot_moved_voxels_p50"] = float(np.median(table[:, 4]))
    result["spot_moved_share"] = round(float(np.mean(table[:, 4] > 0)), 3)
    for name in ("stored", "view"):
        r = result[name]
        print(f"{name:6s}: smaller piece within {AT_EDGE_PX} px of the image edge in {100 * r['at_edge_share']:.0f}% "
              f"(median {r['edge_px_p50']} px from it); its width p50 {r['small_width_px_p50']} px, p10 "
              f"{r['small_width_px_p10']} px (of {OUT_SIZE}); window p50 {r['side_p50']:.0f} voxels; judgeable by "
              f"looking {100 * r['judgeable_share']:.0f}%")
    print(f"spot moved in {100 * result['spot_moved_share']:.0f}% of {len(rows)} puzzles "
          f"(median {result['spot_moved_voxels_p50']:.0f} voxels)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
