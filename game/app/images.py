"""A puzzle's pictures: each slice of its stack, plain and with the two parts coloured, rendered once.

Puzzles store where they are and which supervoxels they show; this module
reads the crop from the volume store, colours the parts the puzzle's edit
names in the current segmentation (:class:`game.puzzles.edit.PuzzleEdit`)
and keeps the PNGs in the instance's image cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from game.app import store as st
from game.crowd.assignment import PUZZLE_SLICES
from game.errors import ProofQuestError
from game.puzzles import render as pz
from game.puzzles.cache import PuzzleImageCache
from game.puzzles.edit import Moot, PuzzleEdit
from game.puzzles.framing import puzzle_window

VARIANTS = ("plain", "overlay", "truth")


def _render(inst, puzzle: dict, variant: str) -> list[dict]:
    volume = inst.volumes.open(puzzle["volume"])
    box = puzzle_window(puzzle["location"], volume.shape, slices=PUZZLE_SLICES)
    image = volume.read("image", box)
    if variant == "truth":
        return [{"plain": png, "overlay": png} for png in pz.render_truth(image, volume.read("groundtruth", box))]
    supervoxels = volume.read("supervoxels", box)
    try:
        parts = PuzzleEdit.of(puzzle).parts(inst.agglomeration(puzzle["volume"]))
    except Moot:
        raise ProofQuestError(f"puzzle {puzzle['id']} was settled by another edit; ask for the next one") from None
    return pz.render_slices(image, np.isin(supervoxels, parts.a), np.isin(supervoxels, parts.b))


def puzzle_image(inst, puzzle_id: int, z: int, variant: str) -> Path:
    """The PNG of one slice of a puzzle, rendered once and cached."""
    if variant not in VARIANTS:
        raise ProofQuestError(f"unknown image variant {str(variant)[:20]!r}: use plain, overlay or truth")
    puzzle = st.puzzle(inst.store, puzzle_id) if 0 < puzzle_id < 2**63 else None
    if puzzle is None:
        raise ProofQuestError(f"there is no puzzle {puzzle_id}")
    if not 0 <= z < PUZZLE_SLICES:
        raise ProofQuestError(f"slice {z} is outside the puzzle's 0..{PUZZLE_SLICES - 1}")
    if variant == "truth" and not puzzle["tutorial"]:
        raise ProofQuestError("the truth is shown only for practice puzzles")
    cache = PuzzleImageCache(inst.cache_dir / "puzzles")
    key = f"{puzzle_id}-truth" if variant == "truth" else str(puzzle_id)
    return cache.get(key, z, variant != "plain", lambda: _render(inst, puzzle, variant))
