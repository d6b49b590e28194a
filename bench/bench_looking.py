"""What a puzzle shows a person, against its truth: where looking stops carrying the answer.

A person judges a puzzle by the membrane between the two colours: a dark line
along their border on the slices means two neurites ("no"), none means one
("yes"). This benchmark measures how well that evidence, taken from exactly
the slices and window a puzzle shows (its frame), separates the two answers,
for bins of what the frame says about the puzzle (:mod:`game.puzzles.looking`):
the smaller part's width on screen, how far it is enclosed by the larger part,
and on how many of the seven sections both parts show. Where the evidence's
ROC AUC falls towards 0.5 the image no longer tells the answer, however hard
one looks; those bins set the thresholds that keep candidates from becoming
puzzles with a known answer.

Two looking machines read the shown slices:

* *membrane contrast*: the mean EM grey of the parts within 3 voxels of their
  contact minus the grey on the contact (a membrane is dark), on every shown
  section with a contact;
* *boundary*: the mean of the volume's boundary map on the contact.

Candidates come from the detector on each volume's live segmentation (the
instance's pool), are framed as puzzles are, and keep a clear truth only (no
near tie, :mod:`game.puzzles.truth`).

Run: .venv/bin/python bench/bench_looking.py --home INSTANCE [--volumes demo fib] [--json]
(an instance after its first start, ``python run.py --home INSTANCE``; other volumes made as the README
shows, e.g. fibsem-gala imported as ``fib``). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app.instance import Instance
from game.app.settings import load_settings
from game.detection.net import roc_auc
from game.puzzles.edit import PuzzleEdit, correct_answer
from game.puzzles.framing import Frame, part_masks
from game.puzzles.truth import is_near_tie

BINS = {
    "width_px": [0, 8, 16, 24, 32, 48, 64, 1e9],
    "small_area_px": [0, 256, 576, 1024, 2304, 4096, 1e9],
    "enclosure": [0, 0.5, 0.65, 0.75, 0.85, 1.01],
    "both_slices": [0, 1, 2, 3, 5, 8],
}


def evidence(volume, agg, candidate: dict, frame) -> tuple[float, float] | None:
    """(membrane contrast, boundary on the contact) over the shown slices; None without a shown contact."""
    box = frame.box.clip(volume.shape)
    image = volume.read("image", box).astype(float)
    boundary = volume.read("boundary", box).astype(float) if volume.has("boundary") else None
    a, b = part_masks(volume.read("supervoxels", box), PuzzleEdit.of(candidate), agg)
    contact = np.zeros_like(a)
    for axis in (1, 2):
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        touching = (a[tuple(lo)] & b[tuple(hi)]) | (b[tuple(lo)] & a[tuple(hi)])
        contact[tuple(lo)] |= touching
        contact[tuple(hi)] |= touching
    if not contact.any():
        return None
    near = ndi.binary_dilation(contact, np.ones((1, 7, 7), bool)) & (a | b) & ~contact
    contrast = float(image[near].mean() - image[contact].mean()) if near.any() else 0.0
    return contrast, float(boundary[contact].mean()) if boundary is not None else float("nan")


def measure(inst, name: str) -> list[dict]:
    volume, agg = inst.volumes.open(name), inst.agglomeration(name)
    if not volume.has_side("sv_gt_table"):
        raise SystemExit(f"volume {name} has no ground truth")
    rows = []
    # the candidates of the live segmentation, framed as puzzles are (with each part's truth and its margin)
    for candidate in inst.pool.frame(name, inst.pool.detect(name)):
        if candidate.get("truth") is None or is_near_tie(candidate.get("truth_margin")):
            continue
        frame = Frame.from_dict(candidate["frame"])
        seen = evidence(volume, agg, candidate, frame)
        if seen is None:
            continue
        rows.append({"kind": candidate["kind"], "no": correct_answer(candidate["kind"], candidate["truth"]) == "no",
                     "contrast": seen[0], "boundary": seen[1], "width_px": frame.width_px,
                     "small_area_px": min(frame.areas_px), "enclosure": frame.enclosure,
                     "both_slices": frame.both_slices})
    return rows


def binned(rows: list[dict], key: str) -> list[dict]:
    edges = BINS[key]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mine = [r for r in rows if lo <= r[key] < hi]
        no = np.array([r["no"] for r in mine], bool)
        out.append({"bin": [lo, hi if hi < 1e8 else None], "n": len(mine), "share_no": float(no.mean()) if mine else None,
                    "auc_contrast": _auc([r["contrast"] for r in mine], no),
                    "auc_boundary": _auc([r["boundary"] for r in mine], no)})
    return out


def _auc(scores, truth) -> float | None:
    truth = np.asarray(truth, bool)
    if truth.all() or not truth.any():
        return None
    value = roc_auc(np.asarray(scores, float), truth)
    return None if np.isnan(value) else round(float(value), 3)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--volumes", nargs="+", default=["demo"])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    inst = Instance(args.home, load_settings({"HOME": args.home}))
    result = {}
    for name in args.volumes:
        rows = measure(inst, name)
        result[name] = {"candidates": len(rows), **{key: binned(rows, key) for key in BINS}}
        if args.json:
            continue
        print(f"{name}: {len(rows)} framed candidates with a clear truth")
        for key in BINS:
            print(f"  {key:12s}      n   no   AUC(contrast)  AUC(boundary)")
            for b in result[name][key]:
                hi = "+" if b["bin"][1] is None else f"{b['bin'][1]:g}"
                fmt = lambda v: "   —" if v is None else f"{v:.2f}"
                print(f"    [{b['bin'][0]:g}, {hi}) {b['n']:7d} {fmt(b['share_no'])}        {fmt(b['auc_contrast'])}"
                      f"          {fmt(b['auc_boundary'])}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
