"""Framing a puzzle around its decision, what a person can judge, near ties, the puzzle-quality report."""

from dataclasses import replace

import numpy as np
import pytest

from game.geometry import BBox
from game.puzzles.framing import (
    KEY,
    MARGIN_PX,
    OUT_SIZE,
    SLICES,
    VIEW_MARGIN,
    WINDOW_LIMITS,
    Frame,
    FrameSpec,
    _thickness,
    _width,
    centred_frame,
    frame_across_sections,
    frame_decision,
    view_frame,
    view_region,
)
from game.puzzles.looking import ISLAND_ENCLOSURE, SLIVER_PX, judgeable, obstacles, shown_frame
from game.puzzles.report import blind_scores, puzzles_report, role_of
from game.puzzles.truth import NEAR_TIE, dominant_objects, is_near_tie, truth_margin


def touching_halves(shape=(20, 200, 200), contact_x=100, rows=(60, 140)):
    """Part A left of ``contact_x`` and part B right of it, both over ``rows``, on every section."""
    a, b = np.zeros(shape, bool), np.zeros(shape, bool)
    a[:, rows[0]:rows[1], 40:contact_x] = True
    b[:, rows[0]:rows[1], contact_x:160] = True
    return a, b


def frame_of(a, b, location=None):
    return frame_decision(a, b, BBox.from_shape(a.shape), a.shape, location)


def point_in_image(frame: Frame) -> tuple[float, float]:
    """The decision point's centre on the displayed image, in pixels."""
    return tuple((p - s + 0.5) * frame.scale for p, s in zip(frame.point[1:], frame.start[1:]))


# ----------------------------------------------------------------------------- framing

def test_the_frame_is_centred_on_the_contact_with_the_key_slice_in_the_middle():
    a, b = touching_halves()
    frame = frame_of(a, b, (10, 100, 100))
    assert frame.point[2] in (99, 100)  # on the contact: the last column of A or the first of B
    assert 60 <= frame.point[1] < 140
    assert frame.key == KEY and frame.box.shape == (SLICES, frame.side, frame.side)
    y, x = point_in_image(frame)
    assert abs(x - OUT_SIZE / 2) <= frame.scale and abs(y - OUT_SIZE / 2) <= frame.scale
    assert frame.margin_px >= MARGIN_PX


def test_the_key_slice_is_where_the_smaller_part_shows_most():
    a, b = touching_halves()
    b[:, 60:140, 100:160] = False
    for z, rows in ((4, (95, 105)), (9, (70, 130)), (14, (90, 110))):
        b[z, rows[0]:rows[1], 100:130] = True
    frame = frame_of(a, b, (4, 100, 100))
    assert frame.point[0] == 9


def test_a_contact_near_the_volume_edge_is_framed_at_least_the_margin_inside():
    a, b = touching_halves(contact_x=190)
    b[:, :, 160:] = True
    b &= ~a
    frame = frame_of(a, b, (10, 100, 190))
    y, x = point_in_image(frame)
    assert min(x, OUT_SIZE - x, y, OUT_SIZE - y) >= MARGIN_PX
    assert frame.box.stop[2] == 200  # flush with the volume's face, never past it
    assert frame.margin_px >= MARGIN_PX


def test_a_contact_only_at_the_volume_side_is_framed_and_drawn_centred_past_the_side():
    a, b = np.zeros((20, 200, 200), bool), np.zeros((20, 200, 200), bool)
    a[:, 50:150, 180:197] = True
    b[:, 50:150, 197:] = True  # the contact lies 2 voxels from the face x = 199
    frame = frame_of(a, b, (10, 100, 197))
    assert frame is not None and frame.point[2] in (196, 197) and frame.box.stop[2] == 200
    view = view_of(frame, a, b)
    assert on_border(view.point, a, b)
    y, x = point_in_image(view)
    assert abs(x - OUT_SIZE / 2) <= view.scale and abs(y - OUT_SIZE / 2) <= view.scale  # centred, not at the edge
    assert view.box.stop[2] > 200  # past the volume's side: drawn as padding
    assert frame.side_voxels == 199 - frame.point[2] and "side" in obstacles(frame)  # hard to judge, never gold
    assert "side" not in obstacles(frame_of(*touching_halves(), (10, 100, 100)))


def test_a_contact_only_on_the_first_sections_is_framed_with_the_stack_padded_before_them():
    a, b = touching_halves()
    a[KEY:] = b[KEY:] = False  # the parts touch only on the first three sections
    frame = frame_of(a, b, (1, 100, 100))
    assert frame is not None and frame.point[0] < KEY and frame.key == KEY and frame.start[0] < 0


def test_a_stack_inside_the_volume_is_taken_over_a_padded_one_that_shows_the_contact_as_well():
    a, b = touching_halves()  # the same contact on every section
    for z in (0, 1, 18, 19):
        assert frame_of(a, b, (z, 100, 100)).box.start[0] >= 0 and frame_of(a, b, (z, 100, 100)).box.stop[0] <= 20


def test_a_volume_thinner_than_the_stack_is_padded_around_the_key_slice():
    a, b = touching_halves(shape=(3, 200, 200))
    frame = frame_of(a, b, (1, 100, 100))
    assert frame.key == KEY and frame.start[0] == frame.point[0] - KEY < 0


def test_the_zoom_follows_the_smaller_part():
    a, b = touching_halves(shape=(20, 400, 400), contact_x=200, rows=(100, 300))
    a[:, 100:300, 40:200] = True
    b[:, 100:300, 200:360] = True
    big = frame_of(a, b, (10, 200, 200))
    b[:, :, 212:] = False  # now B is 12 voxels wide
    small = frame_of(a, b, (10, 200, 200))
    assert big.side == WINDOW_LIMITS[1] and small.side == WINDOW_LIMITS[0]
    assert small.width_px == 11 * OUT_SIZE / WINDOW_LIMITS[0]  # 12 voxels wide (the widest disc: 11), zoomed in
    assert small.point[1] == 200  # the contact is equally thick all along: the point nearest the location


@pytest.mark.parametrize("rows", [(0, 7), (100, 107), (193, 200)])
def test_a_pieces_width_is_the_same_wherever_it_lies_in_the_window(rows):
    strip = np.zeros((200, 200), bool)
    strip[rows[0]:rows[1], 20:180] = True  # 7 voxels wide, against the window's top, in the middle, at its bottom
    disc = np.hypot(*np.ogrid[-100:100, -100:100]) <= 10.5  # not a box: the diagonal distances count
    assert _width(strip) == 7.0 and _width(strip.T) == 7.0
    assert _width(disc) == _width(np.pad(disc, 50)) and 20.0 < _width(disc) <= 21.0  # 21 voxels across
    assert _width(np.zeros((200, 200), bool)) == 0.0


def test_thickness_is_the_smaller_parts_area_in_pixels_around_the_point():
    a, b = touching_halves()  # A is x 40..99, B x 100..159
    # the 13 x 13 square around (100, 99) holds 7 columns of A and 6 of B; at (100, 60) no B at all
    assert _thickness(a[10], b[10], np.array([100, 100]), np.array([99, 60])).tolist() == [6 * 13, 0]


def test_a_window_never_reaches_past_a_volume_narrower_than_it():
    a, b = touching_halves(shape=(20, 80, 200), rows=(10, 70))
    frame = frame_of(a, b, (10, 40, 100))
    assert frame.side == 80 and frame.box.start[1] == 0 and frame.box.stop[1] == 80


def test_frames_survive_json():
    a, b = touching_halves()
    frame = frame_of(a, b, (10, 100, 100))
    assert Frame.from_dict(frame.to_dict()) == frame


def test_a_centred_frame_keeps_the_location_inside_the_volume():
    frame = centred_frame((10, 3, 100), (20, 200, 200))
    assert frame.start[1] == 0 and frame.point == (10, 3, 100) and frame.key == KEY


# ----------------------------------------------------------------------------- looking

def test_a_sliver_and_an_island_are_hard_to_judge():
    a, b = touching_halves()
    b[:, 60:140, 103:160] = False  # B is a strip 3 voxels wide
    sliver = frame_of(a, b, (10, 100, 100))
    assert sliver.width_px < SLIVER_PX and obstacles(sliver) == ["sliver"]

    a, b = np.zeros((20, 200, 200), bool), np.zeros((20, 200, 200), bool)
    a[:, 40:160, 40:160] = True
    b[:, 85:115, 85:115] = True  # an organelle-like blob inside A
    a &= ~b
    island = frame_of(a, b, (10, 100, 100))
    assert island.enclosure >= ISLAND_ENCLOSURE and obstacles(island) == ["island"]

    clear = frame_of(*touching_halves(), (10, 100, 100))
    assert judgeable(clear) and clear.enclosure < 0.5
    assert obstacles(None) == ["unframed"]


# ----------------------------------------------------------------------------- near ties

@pytest.mark.parametrize("kind, a, b, margin", [
    ("merge", {1: 100.0}, {1: 50.0, 2: 10.0}, 0.8),
    ("merge", {1: 100.0, 2: 95.0}, {3: 40.0}, 0.05),
    # a split moving most of object 2: the moved object's voxels left behind decide
    ("split", {1: 100.0, 2: 30.0}, {2: 40.0}, 0.25),
    ("split", {1: 100.0}, {2: 40.0, 1: 38.0}, 0.05),
])
def test_the_truth_margin_is_the_closest_of_the_deciding_comparisons(kind, a, b, margin):
    assert truth_margin(kind, a, b) == pytest.approx(margin)
    assert is_near_tie(truth_margin(kind, a, b)) == (margin <= NEAR_TIE)


def test_an_unlabelled_part_has_no_truth_and_counts_as_a_tie():
    assert truth_margin("merge", {}, {1: 5.0}) is None and is_near_tie(None)
    assert dominant_objects({4: 3.0, 9: 8.0}, {}) == (9, 0)


# ----------------------------------------------------------------------------- report

def puzzle(kind, answer_yes, *, gold=False, teach=False, tutorial=False, margin=0.5, frame=None):
    edit_correct = answer_yes == (kind == "merge")
    return {"kind": kind, "truth": edit_correct, "gold": gold, "teach": teach, "tutorial": tutorial,
            "detector": {"truth_margin": margin, "frame": frame}}


def test_blind_strategies_on_a_balanced_gold_set_score_chance():
    gold = [puzzle(k, yes, gold=True) for k in ("merge", "split") for yes in (True, False)] * 3
    assert blind_scores(gold) == {"puzzles": 12, "always_yes": 0.5, "always_no": 0.5, "badge": 0.5}


def test_answering_by_the_badge_wins_when_each_kind_leans_one_way():
    gold = [puzzle("split", True, gold=True)] * 9 + [puzzle("split", False, gold=True)] \
        + [puzzle("merge", False, gold=True)] * 5 + [puzzle("merge", True, gold=True)]
    scores = blind_scores(gold)
    assert scores["badge"] == round(14 / 16, 3) and scores["always_yes"] == round(10 / 16, 3)


def test_near_ties_count_in_no_figure():
    tie = puzzle("merge", True, gold=True, margin=0.05)
    assert blind_scores([tie])["puzzles"] == 0
    report = puzzles_report([tie, puzzle("merge", False, gold=True)])
    assert report["balance"]["gold"]["merge"] == {"clear": 1, "yes": 0, "no": 1, "share_yes": 0.0, "near_ties": 1}
    assert report["goals"]["no_near_ties_with_known_answers"] is False


def test_roles_and_the_framing_goal():
    a, b = touching_halves()
    inside = frame_of(a, b, (10, 100, 100)).to_dict()
    puzzles = [puzzle("merge", True, tutorial=True, frame=inside), puzzle("merge", False, gold=True, teach=True,
                                                                          frame=inside),
               puzzle("split", True, gold=True, frame=inside), {**puzzle("split", False), "truth": None}]
    assert [role_of(p) for p in puzzles] == ["practice", "teach", "gold", "crowd"]
    report = puzzles_report(puzzles)
    assert report["roles"] == {"practice": 1, "teach": 1, "gold": 1, "crowd": 1}
    assert report["framing"]["framed"] == 3 and report["framing"]["decision_inside"] == 3
    assert report["goals"]["decision_inside_all"] is False  # the crowd puzzle has no frame
    assert report["framing"]["hard_to_judge"] == {"unframed": 1}


def test_the_client_opens_every_puzzle_on_its_key_slice():
    from game.crowd.assignment import public_puzzle
    shown = public_puzzle({"id": 1, "kind": "merge"})
    assert shown["slices"] == SLICES and shown["center"] == KEY


def test_goals_over_no_puzzles_are_not_counted_as_met():
    goals = puzzles_report([puzzle("merge", True)])["goals"]  # a crowd puzzle: no gold, no known answers
    assert goals["gold_blind_at_most_60"] is None and goals["known_answers_balanced"] is None


# ----------------------------------------------------------------------------- the view (how a frame is drawn)

def view_of(frame: Frame, a: np.ndarray, b: np.ndarray) -> Frame:
    region = view_region(frame, FrameSpec(), a.shape)
    return view_frame(frame, a[region.slices], b[region.slices], region, FrameSpec(), a.shape)


def on_border(point, a, b) -> bool:
    """Whether a voxel is a pixel of one part with a 4-neighbour of the other, on its section."""
    z, y, x = point
    other = b if a[z, y, x] else a if b[z, y, x] else None
    return other is not None and bool(other[z, y - 1:y + 2, x].any() or other[z, y, x - 1:x + 2].any())


def test_the_view_marks_the_middle_of_the_border_between_the_parts_not_its_end_at_a_junction():
    a, b = touching_halves()  # A and B share a border along x = 100 over rows 60..139; other segments around
    stored = centred_frame((10, 62, 99), a.shape)  # a point at the border's end, where other segments meet it
    view = view_of(stored, a, b)
    assert on_border(view.point, a, b)
    assert abs(view.point[1] - 100) <= 2 and view.point[0] == 10  # the middle of the border, on the key slice
    y, x = point_in_image(view)
    assert abs(y - OUT_SIZE / 2) <= view.scale and abs(x - OUT_SIZE / 2) <= view.scale
    assert view.box.shape[0] == stored.slices and view.start[0] == stored.start[0]  # the same sections


def test_the_view_keeps_a_small_part_at_the_volumes_side_clear_of_the_image_edge():
    a, b = np.zeros((20, 200, 200), bool), np.zeros((20, 200, 200), bool)
    b[:, 92:108, 0:14] = True  # a small profile against the volume's side x = 0
    a[:, 70:130, 14:80] = True
    stored = frame_of(a, b, (10, 100, 13))
    assert stored.start[2] == 0  # as stored: the window flush with the volume's side, the profile at its edge
    view = view_of(stored, a, b)
    assert on_border(view.point, a, b)
    ys, xs = np.nonzero(b[view.point[0]])
    inside = np.array([ys.min() - view.start[1], view.start[1] + view.side - 1 - ys.max(),
                       xs.min() - view.start[2], view.start[2] + view.side - 1 - xs.max()])
    assert (inside >= VIEW_MARGIN * view.side - 1).all()  # the small part keeps a margin from every edge
    assert view.start[2] < 0  # the window reaches past the volume's side: drawn as padding


def test_the_view_of_a_small_piece_is_the_least_window_and_a_large_one_widens_to_fit():
    a, b = touching_halves()
    b[:, 60:140, 100:160] = False
    b[:, 96:104, 100:108] = True  # a profile 8 voxels across
    frame = frame_of(a, b, (10, 100, 100))
    close = view_of(replace(frame, side=WINDOW_LIMITS[1]), a, b)
    assert close.side == WINDOW_LIMITS[0], "narrowed to the least window, never closer (blurred, short of context)"
    a, b = touching_halves(rows=(20, 180))
    wide = view_of(centred_frame((10, 100, 99), a.shape), a, b)
    assert wide.side == WINDOW_LIMITS[1]


def test_the_view_is_measured_as_drawn_and_judged_on_that():
    a, b = touching_halves()
    b[:, 60:140, 100:160] = False
    b[:, 96:104, 100:108] = True  # a profile 8 voxels across: 14 px wide in the widest window, 28 px in the least
    stored = replace(frame_of(a, b, (10, 100, 100)), side=WINDOW_LIMITS[1], start=(7, 4, 4))
    stored = replace(stored, width_px=7 * stored.scale, areas_px=(stored.areas_px[0], 64 * stored.scale ** 2))
    view = view_of(stored, a, b)
    assert view.side == WINDOW_LIMITS[0]
    assert view.width_px == 7 * view.scale and view.areas_px[1] == 64 * view.scale ** 2  # at the view's zoom
    assert view.contact_px == 2 * 8 * view.scale and view.both_slices == SLICES  # both sides of the border
    assert "sliver" in obstacles(stored) and judgeable(view)  # players see the view: they can judge it
    # the report and the known answers measure a puzzle's view when it has one
    assert shown_frame({"detector": {"frame": stored.to_dict(), "view": view.to_dict()}}) == view
    assert shown_frame({"detector": {"frame": stored.to_dict()}}) == stored
    report = puzzles_report([{**puzzle("merge", True, gold=True, frame=stored.to_dict()),
                              "view": view.to_dict()}])
    assert report["framing"]["judgeable"] == report["framing"]["on_view"] == 1
    assert report["goals"]["known_answers_judgeable"]


def test_the_view_across_sections_keeps_the_areas_in_the_order_of_the_parts():
    a, b = np.zeros((20, 200, 200), bool), np.zeros((20, 200, 200), bool)
    b[:11, 90:110, 90:110] = True  # B ends on section 10, A (larger) begins on 11 over it
    a[11:, 80:120, 80:120] = True
    stored = frame_across_sections(a, b, BBox.from_shape(a.shape), a.shape, (10, 100, 100))
    assert stored.across == 1 and stored.areas_px[1] < stored.areas_px[0]
    view = view_of(stored, a, b)
    assert view.across == 1 and view.areas_px == (1600 * view.scale ** 2, 400 * view.scale ** 2)
