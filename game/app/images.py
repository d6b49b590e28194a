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


def puzzle_image(inst, puzzle_id: int, z: int, variant: str, *, player_id: int | None = None) -> Path:
    """The PNG of one slice of a puzzle, rendered once and cached.

    The truth is shown for practice puzzles, and for a teach puzzle to a
    player who has answered it; never for secret gold or crowd puzzles.
    """
    if variant not in VARIANTS:
        raise ProofQuestError(f"unknown image variant {str(variant)[:20]!r}: use plain, overlay or truth")
    puzzle = st.puzzle(inst.store, puzzle_id) if 0 < puzzle_id < 2**63 else None
    if puzzle is None:
        raise ProofQuestError(f"there is no puzzle {puzzle_id}")
    if not 0 <= z < PUZZLE_SLICES:
        raise ProofQuestError(f"slice {z} is outside the puzzle's 0..{PUZZLE_SLICES - 1}")
    if variant == "truth" and not (puzzle["tutorial"] or (
            puzzle["teach"] and player_id is not None and st.has_voted(inst.store, puzzle_id, player_id))):
        raise ProofQuestError("the truth is shown only for practice puzzles and, once answered, teaching ones")
    cache = PuzzleImageCache(inst.cache_dir / "puzzles")
    key = f"{puzzle_id}-truth" if variant == "truth" else str(puzzle_id)
    return cache.get(key, z, variant != "plain", lambda: _render(inst, puzzle, variant))


def prerender(inst, puzzle_ids, *, progress=None) -> int:
    """Render puzzles' pictures now (with the truth for practice and teach puzzles); returns how many."""
    cache = PuzzleImageCache(inst.cache_dir / "puzzles")
    for done, puzzle_id in enumerate(puzzle_ids, 1):
        puzzle = st.puzzle(inst.store, puzzle_id)
        cache.get(str(puzzle_id), 0, False, lambda: _render(inst, puzzle, "overlay"))
        if puzzle["tutorial"] or puzzle["teach"]:
            cache.get(f"{puzzle_id}-truth", 0, True, lambda: _render(inst, puzzle, "truth"))
        if progress is not None:
            progress(done, len(puzzle_ids))
    return len(puzzle_ids)
