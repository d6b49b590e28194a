"""Can a person judge a puzzle by looking? What its frame says about that.

Players only see the slices. Some candidates show nothing a person can
judge: a *sliver* (the smaller part a few pixels across, often a strip of
membrane whose truth is whichever side a few voxels fall on), or an *island*
(the smaller part almost wholly enclosed by the larger on the key slice): an
organelle inside a cell looks like that, and so does a neurite pushing into
a cell, and the dark rim of an organelle reads as a membrane.

Such puzzles are handed out after the judgeable ones (at half what they are
expected to gain in the value order: :func:`game.app.store.assignable_puzzles`),
never become puzzles with a
known answer (practice, teach, gold), and the tutorial shows a sliver and an
organelle so players know what they are.

The thresholds are where the evidence a person reads, the membrane between
the two colours on the shown slices, stops telling the answer
(``bench/bench_looking.py`` on the default demo after its first start, 1,129
framed candidates with a clear truth; ROC AUC of the membrane contrast on the
contact for "no"): 0.89–0.96 for smaller parts 8 px and wider on screen,
0.71 below 8 px; 0.89–0.98 for smaller parts of 256 px² and more, 0.85
below; 0.92–0.99 up to an enclosure of 0.75, then 0.65 (0.75–0.85) and 0.38
(above 0.85), where an organelle's dark rim reads as a membrane. The width
asked for is twice the measured 8 px: a part narrower than 16 px lies mostly
in the faded corridor the overlay draws along the other part
(:mod:`game.puzzles.render`) and barely shows its colour. How many sections
show both parts did not decide it (0.81–0.97 from one section up), so it is
measured and reported, not a filter.

Across a gap of sections (a gap merge, :mod:`game.puzzles.framing`), a part
whose profile lies at the volume's side (``face_px``) is *at the edge*: a
neurite that leaves the volume there and comes back a few sections later
looks exactly like one that ends beside another that begins, and the images
cannot show which. On demo seed 1 (its first start), 21 of the 25 framed gap
merges at the side were wrong joins and 4 right; of the 6 right long joins
(8 to 13 sections apart) that could be framed, 4 were at the side, and in
every right join at the side the neurite's ground truth is missing from some
section of the gap: it left the volume.

A decision point fewer than ``SIDE_VOXELS`` from the volume's side is *at
the side*: the view is centred on it, half of it padding, and one part may
be a sliver cut off by the side. In the looking test of stop 23
(``bench/looking_test.py``, two lookers each), the puzzles at the volume's
side or first or last sections were answered right 25 times, wrong 5 times
and "not sure" 4 times; the puzzles of a first start, hard ones (slivers,
islands, gaps at the edge) among them, 63 right of 63 answered.
"""

from __future__ import annotations

import math
from typing import Mapping

from game.puzzles.framing import Frame

# The smaller part on the key slice is a sliver when narrower (px on the 384 px image) or smaller (px²).
SLIVER_PX = 16
SLIVER_AREA_PX = 256
# Share of the smaller part's outline bordering the larger one from which it is an island.
ISLAND_ENCLOSURE = 0.75
# Across a gap, a part's profile with at least this much length on screen at the volume's side is at the edge.
EDGE_PX = 1.0
# A decision point nearer the volume's side (in-plane voxels) is at the side: the old framing's margin floor.
SIDE_VOXELS = 6
# Across sections the tutorial teaches: the later profile carrying on the earlier one's outline and size means one
# neurite. A pair reads so when the other profile covers at least this share of the smaller one, and the smaller
# has at least this share of the larger's area.
CONTINUES_SHARE = 0.5


def obstacles(frame: Frame | None) -> list[str]:
    """Why a person may not judge a puzzle with this frame by looking; empty when nothing stands in the way.

    Returns
    -------
    list of str
        Among 'unframed' (its decision cannot be shown inside the volume),
        'sliver', 'island', 'edge' and 'side'.
    """
    if frame is None:
        return ["unframed"]
    reasons = []
    if frame.width_px < SLIVER_PX or min(frame.areas_px) < SLIVER_AREA_PX:
        reasons.append("sliver")
    if frame.enclosure >= ISLAND_ENCLOSURE:
        reasons.append("island")
    if frame.across > 1 and frame.face_px >= EDGE_PX:
        reasons.append("edge")
    if frame.side_voxels is not None and frame.side_voxels < SIDE_VOXELS:
        reasons.append("side")
    return reasons


def looks_like_one(frame: Frame | None) -> bool | None:
    """Across sections, whether the pair reads as one neurite by the tutorial's rule: the two profiles lie over
    one another (``CONTINUES_SHARE`` of the smaller covered) and are of a size; None for parts that touch
    in-plane (or no frame).

    The overlap's area is read off ``contact_px``, the diameter of a disc of that area on screen
    (:func:`game.puzzles.framing.frame_across_sections`).
    """
    if frame is None or not frame.across or min(frame.areas_px) <= 0:
        return None
    covered = math.pi * (frame.contact_px / 2) ** 2 / min(frame.areas_px)
    return covered >= CONTINUES_SHARE and min(frame.areas_px) / max(frame.areas_px) >= CONTINUES_SHARE


def judgeable(frame: Frame | None) -> bool:
    """Whether nothing in the frame stands in the way of judging the puzzle by looking.

    Pass the view, the frame as drawn (:func:`game.puzzles.framing.view_frame`, :func:`shown_frame`): what
    players see.
    """
    return not obstacles(frame)


def stored_frame(puzzle: Mapping) -> Frame | None:
    """The frame a puzzle or candidate was made with (``frame``, or under ``detector``), or None."""
    data = puzzle.get("frame") or (puzzle.get("detector") or {}).get("frame")
    return Frame.from_dict(data) if data else None


def stored_view(puzzle: Mapping) -> Frame | None:
    """The view a puzzle's pictures were drawn in when it was made, measured as drawn (``view``, or under
    ``detector``: :func:`game.puzzles.framing.view_frame`); None for a puzzle made before views were stored."""
    data = puzzle.get("view") or (puzzle.get("detector") or {}).get("view")
    return Frame.from_dict(data) if data else None


def shown_frame(puzzle: Mapping) -> Frame | None:
    """What a person is judged to see of a puzzle: its stored view, or for a puzzle made before views were
    stored its stored frame; None when it has neither."""
    return stored_view(puzzle) or stored_frame(puzzle)
