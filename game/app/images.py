"""A puzzle's pictures: each slice of its stack, plain and with the two parts coloured, rendered once
for each state of its parts (:func:`game.puzzles.cache.picture_key`), ahead of time where possible
(:func:`prerender`: when the pool makes puzzles, and after a decision changes their parts).

Puzzles store their frame (:class:`game.puzzles.framing.Frame`: the crop,
the key slice, the decision point), made when the puzzle was; this module
draws it centred on the spot in question (:func:`drawn_parts`), reads that
crop from the volume store, colours the parts the puzzle's edit names in the
current segmentation (:class:`game.puzzles.edit.PuzzleEdit`; for a copy of a
settled decision, the segmentation that decision was made on) and keeps the
PNGs in the instance's image cache. A puzzle made before frames were stored
is framed when it is first drawn.

A puzzle whose parts touch only across sections (its frame's ``across``) also
has a *pair* picture (:func:`game.puzzles.render.render_pair`): the section
where one part ends beside the one where the other begins, with the sections
between; slice 0 of the variant ``pair``. The pair and truth pictures are kept
apart from the slices, under the picture key plus ``-pair`` or ``-truth``
(:func:`stored_key`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from game.app import store as st
from game.errors import ProofQuestError
from game.geometry import BBox
from game.puzzles import render as pz
from game.puzzles.cache import PuzzleImageCache
from game.puzzles.cache import picture_key as cache_key
from game.puzzles.edit import Moot, PuzzleEdit, correct_answer
from game.puzzles.framing import SLICES, Frame, centred_frame, drawn_view, frame_candidate, frame_spec
from game.puzzles.truth import dominant_objects, object_weights, supervoxel_truth
from game.segmentation.agglomeration import Agglomeration, Edit

VARIANTS = ("plain", "overlay", "truth", "pair")


def puzzle_frame(inst, puzzle: dict) -> Frame:
    """The frame stored with a puzzle; for a puzzle made before frames were stored, one made now on the
    segmentation it is drawn from (:func:`shown_agglomeration`: a known answer's own edit applied since would
    leave it no frame, and its pictures drawn again would change)."""
    stored = (puzzle.get("detector") or {}).get("frame")
    if stored:
        return Frame.from_dict(stored)
    volume = inst.volumes.open(puzzle["volume"])
    return frame_candidate(volume, shown_agglomeration(inst, puzzle), puzzle) or \
        centred_frame(puzzle["location"], volume.shape, frame_spec(volume.resolution))


def stored_slices(puzzle: dict) -> int:
    """Sections in a puzzle's stack, as stored with its frame (the demo's for a puzzle made before)."""
    stored = (puzzle.get("detector") or {}).get("frame")
    return Frame.from_dict(stored).slices if stored else SLICES


def _objects(inst, volume, puzzle: dict) -> tuple[int, int]:
    """The ground-truth objects the puzzle's two parts mostly are: stored, or found now."""
    stored = (puzzle.get("detector") or {}).get("truth_objects")
    if stored:
        return int(stored[0]), int(stored[1])
    agg = shown_agglomeration(inst, puzzle)
    known = supervoxel_truth(volume, agg.n_supervoxels)
    if known is None:
        raise ProofQuestError(f"puzzle {puzzle['id']} has no ground truth to show")
    return dominant_objects(*object_weights(PuzzleEdit.of(puzzle), agg, *known))


def shown_agglomeration(inst, puzzle: dict) -> Agglomeration:
    """The segmentation a puzzle's parts are drawn from, the edit log replayed up to it where it is not the live one.

    A crowd puzzle: the live one. A copy of a settled decision
    (:mod:`game.crowd.settled`): the one that decision was made on. Any other
    puzzle with a known answer (gold, teach, practice): the one it was made on,
    the edits logged before it. Its pictures are kept under a key that does not
    change with the parts, and its own edit is applied once its answer is known
    (:func:`game.crowd.votes.apply_known_answers`): drawn again on the live
    segmentation (a new renderer, a cleared cache) it would be settled, not shown.
    """
    settled = (puzzle.get("detector") or {}).get("settled")
    if not settled and not (puzzle.get("gold") or puzzle.get("tutorial")):
        return inst.agglomeration(puzzle["volume"])
    rows = st.edits(inst.store, puzzle["volume"])
    made_on = (puzzle.get("detector") or {}).get("edits_before")  # None: made before it was stored; the clock
    before = int(settled["edits_before"]) if settled else int(made_on) if made_on is not None else \
        sum(1 for row in rows if row["created"] <= puzzle["created"])
    if before == len(rows):
        return inst.agglomeration(puzzle["volume"])
    initial = inst.volumes.open(puzzle["volume"]).load_side("mapping")
    return Agglomeration.replay(initial, (Edit.from_dict(row["edit"]) for row in rows[:before]))


def _decision_truth(parts: tuple[np.ndarray, np.ndarray], puzzle: dict) -> tuple[np.ndarray, tuple[int, int]]:
    """A settled decision drawn as truth: both parts one object when it says one neurite, else two."""
    part_a, part_b = parts
    one = correct_answer(puzzle["kind"], bool(puzzle["truth"])) == "yes"
    return np.where(part_a, 1, np.where(part_b, 1 if one else 2, 0)), (1, 1 if one else 2)


def has_pair(puzzle: dict) -> bool:
    """Whether a puzzle has a pair picture: its stored frame joins parts across sections."""
    stored = (puzzle.get("detector") or {}).get("frame")
    return bool(stored and stored.get("across"))


def drawn_parts(volume, frame: Frame, edit: PuzzleEdit, agg: Agglomeration) -> tuple[Frame, np.ndarray, np.ndarray]:
    """The frame a puzzle's pictures are drawn in (:func:`game.puzzles.framing.drawn_view`: its stored frame
    centred on the spot in question, measured as drawn) and its two parts over that frame's box, from one read of
    the supervoxels; :class:`Moot` when the puzzle's parts are gone."""
    view, part_a, part_b, region = drawn_view(volume, frame, edit, agg)
    return view, _crop(part_a, region, view.box), _crop(part_b, region, view.box)


def drawn_frame(volume, frame: Frame, edit: PuzzleEdit, agg: Agglomeration) -> Frame:
    """The frame a puzzle's pictures are drawn in (:func:`drawn_parts`); the stored one when its parts are gone."""
    try:
        return drawn_parts(volume, frame, edit, agg)[0]
    except Moot:
        return frame


def _crop(mask: np.ndarray, region: BBox, box: BBox) -> np.ndarray:
    """``box`` of a mask over ``region``; False where the box reaches past it (past the volume)."""
    out = np.zeros(box.shape, bool)
    inside = box.intersect(region)
    if not inside.empty:
        out[inside.relative_to(box)] = mask[inside.relative_to(region)]
    return out


def _render(inst, puzzle: dict, variant: str) -> list[dict]:
    volume = inst.volumes.open(puzzle["volume"])
    settled = bool((puzzle.get("detector") or {}).get("settled"))
    stored = puzzle_frame(inst, puzzle)
    try:
        frame, part_a, part_b = drawn_parts(volume, stored, PuzzleEdit.of(puzzle), shown_agglomeration(inst, puzzle))
    except Moot:
        if variant != "truth" or settled:
            raise ProofQuestError(f"puzzle {puzzle['id']} was settled by another edit; ask for the next one") from None
        frame = stored  # the truth needs no parts
    box = frame.box
    padding = np.ones(box.shape, bool)
    padding[box.clip(volume.shape).relative_to(box)] = False
    image = volume.read("image", box)
    point = (frame.point[1] - box.start[1], frame.point[2] - box.start[2])
    if variant == "truth" and not settled:
        pngs = pz.render_truth(image, volume.read("groundtruth", box), _objects(inst, volume, puzzle),
                               padding=padding, point=point)
        return [{"plain": png, "overlay": png} for png in pngs]
    if variant == "truth":
        truth, objects = _decision_truth((part_a, part_b), puzzle)
        pngs = pz.render_truth(image, truth, objects, padding=padding, point=point)
        return [{"plain": png, "overlay": png} for png in pngs]
    if variant == "pair":
        png = pz.render_pair(image, part_a & ~padding, part_b & ~padding, frame.key, frame.across,
                             padding=padding, point=point)
        return [{"plain": png, "overlay": png}]
    return pz.render_slices(image, part_a & ~padding, part_b & ~padding, padding=padding, point=point)


def picture_key(inst, puzzle: dict) -> str:
    """The key a puzzle's pictures are kept under now (:func:`game.puzzles.cache.picture_key`)."""
    try:
        return cache_key(puzzle, inst.agglomeration(puzzle["volume"]), inst.picture_secret)
    except Moot:
        raise ProofQuestError(f"puzzle {puzzle['id']} was settled by another edit; ask for the next one") from None


def stored_key(picture: str, variant: str) -> str:
    """The cache key of a variant's pictures, from the puzzle's picture key (:func:`picture_key`): the pair and
    truth pictures apart from the slices (plain and overlay). The truth's is also the ``v`` its URL carries."""
    return f"{picture}-{variant}" if variant in ("pair", "truth") else picture


def puzzle_image(inst, puzzle_id: int, z: int, variant: str, *, player_id: int | None = None) -> tuple[Path, str]:
    """The PNG of one slice of a puzzle, rendered once and cached, and the key that marks its URL immutable
    (``?v=``: the picture key; for the truth, its stored key).

    The truth is shown for practice puzzles, and for a teach puzzle to a
    player who has answered it; never for secret gold or crowd puzzles. The
    pair picture (``variant`` 'pair', slice 0) only for a puzzle that has one (:func:`has_pair`).
    """
    if variant not in VARIANTS:
        raise ProofQuestError(f"unknown image variant {str(variant)[:20]!r}: use plain, overlay, truth or pair")
    puzzle = st.puzzle(inst.store, puzzle_id) if 0 < puzzle_id < 2**63 else None
    if puzzle is None:
        raise ProofQuestError(f"there is no puzzle {puzzle_id}")
    slices = 1 if variant == "pair" else stored_slices(puzzle)
    if variant == "pair" and not has_pair(puzzle):
        raise ProofQuestError(f"puzzle {puzzle_id} has no pair picture: its parts touch within a section")
    if not 0 <= z < slices:
        raise ProofQuestError(f"slice {z} is outside the puzzle's 0..{slices - 1}")
    if variant == "truth" and not (puzzle["tutorial"] or (
            puzzle["teach"] and player_id is not None and st.has_voted(inst.store, puzzle_id, player_id))):
        raise ProofQuestError("the truth is shown only for practice puzzles and, once answered, teaching ones")
    cache = PuzzleImageCache(inst.cache_dir / "puzzles")
    picture = picture_key(inst, puzzle)
    path = cache.get(stored_key(picture, variant), z, variant != "plain", lambda: _render(inst, puzzle, variant))
    return path, stored_key(picture, variant) if variant == "truth" else picture


# Pictures not under a puzzle's current key are removed once they are this old (seconds): one drawn since
# may be of an edit another process has made, or be on a player's screen.
PRUNE_AFTER_SECONDS = 3600.0
# A long-running server prunes after a rescan at most this often (seconds).
PRUNE_EVERY_SECONDS = 3600.0


def current_keys(inst) -> set[str]:
    """The stored keys (:func:`stored_key`) of every puzzle's pictures as the segmentation is now."""
    keys = set()
    for name in inst.volumes.names():
        for puzzle in st.puzzles(inst.store, volume=name, tutorial=None):
            try:
                picture = picture_key(inst, puzzle)
            except ProofQuestError:
                continue  # settled by an edit: asked for no more
            keys.update(stored_key(picture, variant) for variant in VARIANTS)
    return keys


def prune(inst, *, older_than: float | None = None) -> tuple[int, int]:
    """Remove the cached pictures that no puzzle shows any more (an edit changed its parts, a new drawing
    replaced them), drawn over :data:`PRUNE_AFTER_SECONDS` ago; returns the folders removed and their bytes."""
    inst.pictures_pruned_at = time.monotonic()  # (before: one that fails is not tried again at every rescan)
    cache = PuzzleImageCache(inst.cache_dir / "puzzles")
    cutoff = time.time() - PRUNE_AFTER_SECONDS if older_than is None else older_than
    keep = current_keys(inst)  # (worked out after the cutoff: a picture drawn meanwhile is newer than it)
    return cache.prune(keep, cutoff)


def prune_if_due(inst) -> tuple[int, int] | None:
    """:func:`prune`, if this process's last was over :data:`PRUNE_EVERY_SECONDS` ago (or it never ran one)."""
    last = inst.pictures_pruned_at
    if last is not None and time.monotonic() - last < PRUNE_EVERY_SECONDS:
        return None
    return prune(inst)


def prerender(inst, puzzle_ids, *, progress=None) -> int:
    """Render puzzles' pictures now, those not cached under their current key (with the truth for practice
    and teach puzzles); returns how many were rendered. A puzzle settled meanwhile is skipped."""
    cache = PuzzleImageCache(inst.cache_dir / "puzzles")
    rendered = 0
    for done, puzzle_id in enumerate(puzzle_ids, 1):
        puzzle = st.puzzle(inst.store, puzzle_id)
        try:
            key = picture_key(inst, puzzle)
        except ProofQuestError:
            key = None
        if key is not None and not cache.has(key):
            cache.get(key, 0, False, lambda: _render(inst, puzzle, "overlay"))
            rendered += 1
        if key is not None and has_pair(puzzle) and not cache.has(stored_key(key, "pair")):
            cache.get(stored_key(key, "pair"), 0, True, lambda: _render(inst, puzzle, "pair"))
        if key is not None and (puzzle["tutorial"] or puzzle["teach"]) and not cache.has(stored_key(key, "truth")):
            cache.get(stored_key(key, "truth"), 0, True, lambda: _render(inst, puzzle, "truth"))
        if progress is not None:
            progress(done, len(puzzle_ids))
    return rendered
