"""The tutorial's lesson pictures (``static/img/lesson-*.png``), drawn from a prepared demo by the game's renderer.

The lesson must show what the game shows: run this again whenever the drawing changes
(:data:`game.puzzles.render.RENDERER_VERSION`). Each picture is a crowd puzzle of the volume (never one with a
known answer: secret gold stays secret) with a clear ground truth, chosen by a rule and drawn in its view
(:func:`game.puzzles.framing.view_frame`) as :mod:`game.app.images` draws it, a view that lies inside the
volume (no padding to explain). Drawn from the default demo (seed 0, as prepared on a first start): another
seed's has no sliver fit to teach with (seed 1: two, both specks). The organelle and the sliver are crowd
puzzles that are hard to judge (handed out after the judgeable ones); the pair picture's puzzle is a
judgeable crowd puzzle of the default demo whose answer the lesson shows.

* ``lesson-pair.png`` and ``lesson-pair-slice.png``: a right join one section apart (parts that touch only
  across sections, one neurite, judgeable as drawn), its pair picture and the key slice where the first
  part ends; the one whose smaller profile the other overlaps most (the same outline at the same place). On
  the default demo none shows each part on its own section only: a corner of the other shows beside it;
* ``lesson-organelle.png``: a join whose view is an island (the smaller part enclosed by the larger) and
  whose truth is one neurite, the most enclosed, then the largest: the key slice beside its truth;
* ``lesson-sliver.png``: a join whose view is a sliver and not an island, whose truth is two neurites, the
  one the larger part borders most (a sliver that looks like part of it): the key slice beside its truth.

The two-panel pictures are ``2 * PANEL + GUTTER`` pixels wide (the tutorial's 608 x 300). Prints the
puzzles chosen (``--pair``, ``--organelle``, ``--sliver`` take a puzzle id instead of the rule).

    .venv/bin/python run.py --home H serve      # its first start prepares the demo; stop it once ready
    .venv/bin/python scripts/lesson_pictures.py --home H [--volume demo] [--out static/img]
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from game.app import images
from game.app import store as st
from game.app.instance import Instance
from game.app.settings import load_settings
from game.puzzles.edit import correct_answer
from game.puzzles.looking import SLIVER_AREA_PX, obstacles, stored_view
from game.puzzles.render import PAIR_BACKGROUND, encode_png
from game.puzzles.truth import has_clear_truth

PANEL = 300
GUTTER = 8


def _views(puzzles, shape):
    """(puzzle, view) of the crowd merge puzzles with a clear truth and a stored view that lies inside the volume
    (of ``shape``): no padding, nothing at the volume's side to explain."""
    for p in puzzles:
        view = stored_view(p)
        if p["kind"] == "merge" and not (p["gold"] or p["tutorial"]) and view is not None and has_clear_truth(p) \
                and view.box.clip(shape) == view.box:
            yield p, view


def _overlap_share(view) -> float:
    """Across sections: the share of the smaller profile that the other overlaps (the contact is the overlap's
    diameter on screen, :func:`game.puzzles.framing._measure`)."""
    return math.pi * (view.contact_px / 2) ** 2 / min(view.areas_px)


def _one(p) -> bool:
    return correct_answer(p["kind"], bool(p["truth"])) == "yes"


def choose(puzzles, shape) -> dict[str, dict]:
    """The puzzle of each picture, by the rules of the module's docstring, among views inside the volume."""
    views = list(_views(puzzles, shape))
    rules = {
        "pair": ([(p, v) for p, v in views if v.across == 1 and _one(p) and not obstacles(v)],
                 lambda pv: (round(_overlap_share(pv[1]), 2), min(pv[1].areas_px), -pv[0]["id"])),
        "organelle": ([(p, v) for p, v in views if "island" in obstacles(v) and _one(p)
                       and min(v.areas_px) >= SLIVER_AREA_PX],
                      lambda pv: (pv[1].enclosure, min(pv[1].areas_px), -pv[0]["id"])),
        "sliver": ([(p, v) for p, v in views if obstacles(v) == ["sliver"] and not _one(p)],
                   lambda pv: (pv[1].enclosure, min(pv[1].areas_px), -pv[0]["id"])),
    }
    chosen = {}
    for name, (found, key) in rules.items():
        if not found:
            raise SystemExit(f"no puzzle fits the {name} picture's rule")
        chosen[name] = max(found, key=key)[0]
    return chosen


def _picture(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def side_by_side(left: bytes, right: bytes) -> bytes:
    """Two pictures as ``PANEL`` px squares, ``GUTTER`` apart on the viewer's dark stage."""
    sheet = Image.new("RGB", (2 * PANEL + GUTTER, PANEL), PAIR_BACKGROUND)
    for x, png in ((0, left), (PANEL + GUTTER, right)):
        sheet.paste(_picture(png).resize((PANEL, PANEL), Image.Resampling.LANCZOS), (x, 0))
    return encode_png(np.asarray(sheet))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--volume", default="demo")
    parser.add_argument("--out", default=str(ROOT / "static" / "img"))
    for name in ("pair", "organelle", "sliver"):
        parser.add_argument(f"--{name}", type=int, help=f"the {name} picture's puzzle id (default: by the rule)")
    args = parser.parse_args(argv)
    inst = Instance(args.home, load_settings({"HOME": args.home}, environ={}))
    puzzles = st.puzzles(inst.store, volume=args.volume, tutorial=None)
    chosen = choose(puzzles, inst.volumes.open(args.volume).shape)
    for name in chosen:
        if getattr(args, name) is not None:
            chosen[name] = st.puzzle(inst.store, getattr(args, name))
    out = Path(args.out)
    pair = chosen["pair"]
    key = images.puzzle_frame(inst, pair).key
    pictures = {
        "lesson-pair.png": images._render(inst, pair, "pair")[0]["overlay"],
        "lesson-pair-slice.png": images._render(inst, pair, "overlay")[key]["overlay"],
    }
    for name in ("organelle", "sliver"):
        p = chosen[name]
        key = images.puzzle_frame(inst, p).key
        pictures[f"lesson-{name}.png"] = side_by_side(images._render(inst, p, "overlay")[key]["overlay"],
                                                      images._render(inst, p, "truth")[key]["overlay"])
    for filename, png in pictures.items():  # the same pixels, compressed harder than the game's fast PNGs
        _picture(png).save(out / filename, optimize=True)
    for name, p in chosen.items():
        view = stored_view(p)
        print(f"{name}: puzzle {p['id']} ({p['key']}), view {view.side} voxels, smaller part "
              f"{min(view.areas_px):.0f} px², {view.width_px} px wide, enclosure {view.enclosure}")
    print(f"wrote {', '.join(pictures)} to {out}")


if __name__ == "__main__":
    main()
