"""Puzzles: questions, rendered slices, colour-blind safety, the image cache (framing: test_framing.py)."""

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from game.crowd import consensus
from game.errors import ProofQuestError
from game.puzzles.cache import PuzzleImageCache
from game.puzzles.edit import YES_SUPPORTS_EDIT, edit_if_yes, question_for
from game.puzzles.render import (
    CORRIDOR_FADE,
    FILL_OPACITY,
    OUTLINE_PX,
    PALETTE,
    SPOT_GAP_PX,
    SPOT_TICK_PX,
    _square_filter,
    encode_png,
    render_slices,
    render_truth,
)
from game.puzzles.roles import choose_roles, sample_strata

FIBSEM = Path(__file__).resolve().parents[2] / "shared" / "data" / "fibsem-gala"

# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
MACHADO = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}
# CIELAB distance below which two fills are easily confused.
DISTINCT_DELTA_E = 30


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def as_seen(colour: np.ndarray, deficiency: str) -> np.ndarray:
    """sRGB 0..255 colour as simulated for a dichromat, as CIELAB."""
    c = colour / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    seen = np.clip(np.array(MACHADO[deficiency]) @ linear, 0, 1)
    srgb = np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)
    return rgb2lab(srgb[None, None, :])[0, 0]


@pytest.fixture
def two_parts():
    """A 7x32x32 crop: a grey ramp, part A on the left, part B on the right, touching at x=16."""
    image = np.tile(np.linspace(40, 220, 32).astype(np.uint8), (7, 32, 1))
    a = np.zeros(image.shape, bool)
    b = np.zeros(image.shape, bool)
    a[:, 8:24, 4:16] = True
    b[:, 8:24, 16:28] = True
    return image, a, b


# ----------------------------------------------------------------------------- questions

def test_each_kind_asks_about_one_neurite():
    assert question_for("merge") == "Are these one neurite?"
    assert question_for("split") == "Are orange and blue one neurite?"


def test_yes_applies_a_merge_but_keeps_a_split_segment_whole():
    assert edit_if_yes("merge") is True
    assert edit_if_yes("split") is False


def test_consensus_reads_yes_as_the_puzzles_define_it():
    for kind in ("merge", "split"):
        assert (consensus.vote_value(kind, "yes") == consensus.SUPPORT) == edit_if_yes(kind) == YES_SUPPORTS_EDIT[kind]


def test_unknown_kind_is_rejected_with_the_known_kinds():
    with pytest.raises(ProofQuestError, match="'merge', 'split'"):
        question_for("undo")


# ----------------------------------------------------------------------------- rendering

def test_png_round_trips_greyscale_and_colour():
    grey = np.arange(64 * 48, dtype=np.uint32).reshape(64, 48).astype(np.uint8)
    colour = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    assert np.array_equal(decode(encode_png(grey)), grey)
    assert np.array_equal(decode(encode_png(colour)), colour)


def test_png_refuses_other_shapes_and_types():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4, 4), np.uint8))


def test_each_slice_decodes_to_the_output_size(two_parts):
    slices = render_slices(*two_parts)
    assert len(slices) == 7
    for pngs in slices:
        plain, overlay = decode(pngs["plain"]), decode(pngs["overlay"])
        assert plain.shape == (384, 384)
        assert overlay.shape == (384, 384, 3)


def test_a_wide_crop_keeps_its_aspect():
    image = np.zeros((5, 40, 80), np.uint8)
    none = np.zeros(image.shape, bool)
    pngs = render_slices(image, none, none, out_size=200)[0]
    assert decode(pngs["plain"]).shape == (100, 200)
    assert decode(pngs["overlay"]).shape == (100, 200, 3)


def test_overlay_tints_part_a_towards_its_colour_and_leaves_the_rest_grey(two_parts):
    opacity = 0.45
    pngs = render_slices(*two_parts, opacity=opacity)[3]
    plain, overlay = decode(pngs["plain"]).astype(float), decode(pngs["overlay"]).astype(float)
    inside_a = np.s_[120:260, 60:150]  # crop rows 10..21, columns 5..12: inside A, off its outline and the border
    expected = (1 - opacity) * plain[inside_a][..., None] + opacity * rgb(PALETTE[0])
    assert np.abs(overlay[inside_a] - expected).max() <= 1
    outside = np.s_[0:96, :]  # crop rows 0..8, above both parts
    assert np.array_equal(overlay[outside][..., 0], plain[outside])
    assert np.array_equal(overlay[outside][..., 1], plain[outside])
    assert np.array_equal(overlay[outside][..., 2], plain[outside])


def test_each_part_has_an_opaque_outline_in_its_colour_but_not_along_the_border_between_them(two_parts):
    overlay = decode(render_slices(*two_parts)[3]["overlay"])
    # Part A spans crop x 4..16, i.e. output columns 48..192; its left border is 2 px wide.
    left_border = overlay[160, 48:48 + OUTLINE_PX]
    assert (left_border == rgb(PALETTE[0])).all()
    assert not (overlay[160, 48 + OUTLINE_PX] == rgb(PALETTE[0])).all()
    # Where A meets B (output column 192) neither outline covers the membrane.
    border = overlay[160, 192 - 3 * OUTLINE_PX:192 + 3 * OUTLINE_PX]
    assert not (border == rgb(PALETTE[0])).all(axis=-1).any()
    assert not (border == rgb(PALETTE[1])).all(axis=-1).any()


def test_the_fill_fades_along_the_border_so_the_membrane_shows(two_parts):
    image, a, b = two_parts
    flat = np.full(image.shape, 100, np.uint8)
    overlay = decode(render_slices(flat, a, b)[3]["overlay"]).astype(float)
    deep, near = overlay[160, 100], overlay[160, 190]  # inside A, and 2 px from the border with B
    tint = lambda alpha: (1 - alpha) * 100 + alpha * rgb(PALETTE[0])
    assert np.abs(deep - tint(FILL_OPACITY)).max() <= 1
    assert np.abs(near - tint(FILL_OPACITY * CORRIDOR_FADE)).max() <= 1


def test_a_part_cut_by_the_crop_edge_has_no_outline_along_it(two_parts):
    image, a, b = two_parts
    a[:, :, 0:16] = True
    overlay = decode(render_slices(image, a, b)[3]["overlay"])
    assert not (overlay[160, 0:OUTLINE_PX] == rgb(PALETTE[0])).all(axis=-1).any()


def test_padding_past_the_volume_is_hatched_in_both_pictures(two_parts):
    image, a, b = two_parts
    padding = np.zeros(image.shape, bool)
    padding[0] = True  # the first section lies past the volume's face
    pngs = render_slices(image, a & ~padding, b & ~padding, padding=padding)
    for variant in ("plain", "overlay"):
        hatched = decode(pngs[0][variant])
        assert set(np.unique(hatched)) == {40, 70}
    assert len(np.unique(decode(pngs[1]["plain"]))) > 2


def test_ticks_point_at_the_spot_from_four_sides_and_leave_it_clear(two_parts):
    image, a, b = two_parts
    plain = decode(render_slices(image, a, b)[3]["overlay"])
    marked = decode(render_slices(image, a, b, point=(16, 16))[3]["overlay"])
    changed = np.argwhere((plain != marked).any(axis=-1))
    spot = np.array([16.5 * 12 - 0.5] * 2)  # the point's centre at 12 px per voxel
    distance = np.abs(changed - spot).max(axis=1)
    assert distance.min() >= SPOT_GAP_PX - 1  # the spot itself (the membrane there) is never covered
    assert distance.max() <= SPOT_GAP_PX + SPOT_TICK_PX + 1
    for side in (changed[:, 0] < spot[0], changed[:, 0] > spot[0], changed[:, 1] < spot[1], changed[:, 1] > spot[1]):
        assert side.sum() > SPOT_TICK_PX  # a tick above, below, left and right
    assert abs(changed[:, 0].mean() - spot[0]) < 1 and abs(changed[:, 1].mean() - spot[1]) < 1


def test_ticks_slide_out_past_a_small_piece_and_never_hide_it(two_parts):
    image, a, b = two_parts
    b[:, 10:16, 16:20] = False
    b[:, 12:14, 16:18] = True  # a piece of B two voxels square, apart from the rest, where the tick above would be
    plain = decode(render_slices(image, a, b)[3]["overlay"])
    marked = decode(render_slices(image, a, b, point=(16, 16))[3]["overlay"])
    changed = (plain != marked).any(axis=-1)
    piece = np.zeros(changed.shape, bool)
    piece[12 * 12:14 * 12, 16 * 12:18 * 12] = True  # the piece on screen (12 px per voxel)
    assert not (changed & piece).any()  # no tick over it
    spot = 16.5 * 12 - 0.5
    rows = np.flatnonzero(changed[:, 190:206].any(axis=1))
    above = rows[rows < spot]
    assert above.size > SPOT_TICK_PX and above.max() < 12 * 12  # the tick above still points at the spot, past it
    below = rows[rows > spot]
    assert below.min() >= spot + SPOT_GAP_PX - 1 and below.max() <= spot + SPOT_GAP_PX + SPOT_TICK_PX + 1


def test_overlapping_parts_are_refused(two_parts):
    image, a, _ = two_parts
    with pytest.raises(ValueError, match="overlap"):
        render_slices(image, a, a)


@pytest.mark.parametrize("deficiency", sorted(MACHADO))
@pytest.mark.parametrize("background", [None, 60, 128, 200])
def test_the_two_fills_stay_distinct_for_colour_blind_players(deficiency, background):
    a, b = rgb(PALETTE[0]), rgb(PALETTE[1])
    if background is not None:
        a, b = 0.55 * background + 0.45 * a, 0.55 * background + 0.45 * b
    assert np.linalg.norm(as_seen(a, deficiency) - as_seen(b, deficiency)) > DISTINCT_DELTA_E


def test_the_colour_blind_check_catches_red_against_green():
    red, green = np.array([220.0, 50, 32]), np.array([0.0, 153, 0])
    assert np.linalg.norm(as_seen(red, "deuteranopia") - as_seen(green, "deuteranopia")) < DISTINCT_DELTA_E


def test_truth_colours_the_two_parts_objects_as_one_or_two_neurites():
    image = np.full((5, 24, 24), 128, np.uint8)
    truth = np.zeros(image.shape, np.int64)
    truth[:, :, :11] = 7
    truth[:, :, 12:] = 900  # one unlabelled membrane column between them
    truth[:, 20:, :] = 5    # another object, not either part's
    two = decode(render_truth(image, truth, (7, 900), out_size=96)[2])
    left, right, other = two[30, 20], two[30, 70], two[90, 50]
    assert left[0] > left[2] and right[2] > right[0]  # orange, then blue: two neurites
    assert other[0] == other[1] == other[2] == 128
    one = decode(render_truth(image, truth, (7, 7), out_size=96)[2])
    assert (one[30, 20] == two[30, 20]).all()
    assert one[30, 70][0] == one[30, 70][1] == one[30, 70][2] == 128


def test_truth_of_an_unlabelled_crop_is_plain_grey():
    image = np.full((5, 8, 8), 90, np.uint8)
    picture = decode(render_truth(image, np.zeros(image.shape, np.uint32), (3, 4), out_size=16)[0])
    assert (picture == 90).all()


@pytest.mark.skipif(not FIBSEM.is_dir(), reason="needs ../shared/data/fibsem-gala")
def test_real_em_slices_stay_small():
    h5py = pytest.importorskip("h5py")
    with h5py.File(FIBSEM / "train-image.h5") as f:
        image = f["stack"][22:29, 2:98, 52:148]
    with h5py.File(FIBSEM / "train-gt.lzf.h5") as f:
        truth = f["stack"][22:29, 2:98, 52:148]
    # zlib level 1 (PNG_COMPRESS_LEVEL) encodes 4 to 7 times as fast as level 6 for files up to 18 % larger:
    # here at most 35 KB plain and 67 KB overlay (32 and 56 KB at level 6)
    for pngs in render_slices(image, truth == 28, truth == 40, point=(48, 48)):
        assert len(pngs["plain"]) < 40_000
        assert len(pngs["overlay"]) < 70_000


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 6, 8])
def test_the_square_filter_is_scipys_maximum_and_minimum_filter_with_nearest_edges(radius):
    rng = np.random.default_rng(radius)
    for shape in [(3, 40, 33), (2, 5, 9), (1, 1, 17)]:
        stack = rng.integers(0, 3, shape).astype(np.uint8)
        size = (1, 2 * radius + 1, 2 * radius + 1)
        assert np.array_equal(_square_filter(stack, radius, np.maximum), ndi.maximum_filter(stack, size, mode="nearest"))
        assert np.array_equal(_square_filter(stack, radius, np.minimum), ndi.minimum_filter(stack, size, mode="nearest"))


# ----------------------------------------------------------------------------- cache

class CountingRenderer:
    """A ``make`` for the cache that counts its calls."""

    def __init__(self, slices):
        self.slices = slices
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.slices


@pytest.fixture(scope="module")
def rendered():
    image = np.tile(np.linspace(40, 220, 24).astype(np.uint8), (5, 24, 1))
    a = np.zeros(image.shape, bool)
    a[:, 4:12, 4:12] = True
    return render_slices(image, a, np.zeros(image.shape, bool), out_size=96)


def test_cache_renders_once_and_serves_the_files_after(tmp_path, rendered):
    cache = PuzzleImageCache(tmp_path)
    make = CountingRenderer(rendered)
    assert not cache.has("p1")
    first = cache.get("p1", 0, False, make)
    overlay = cache.get("p1", 4, True, make)
    assert make.calls == 1
    assert cache.has("p1")
    assert first == tmp_path / "p1" / "0_plain.png"
    assert first.read_bytes() == rendered[0]["plain"]
    assert overlay.read_bytes() == rendered[4]["overlay"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1"]


def test_a_new_cache_object_on_the_same_folder_reuses_the_files(tmp_path, rendered):
    PuzzleImageCache(tmp_path).get("7-truth", 0, True, CountingRenderer(rendered))
    make = CountingRenderer(rendered)
    PuzzleImageCache(tmp_path).get("7-truth", 2, True, make)
    assert make.calls == 0


def test_concurrent_first_requests_render_once_and_all_get_valid_files(tmp_path, rendered):
    make = CountingRenderer(rendered)
    start = threading.Barrier(8)
    paths, errors = [], []

    def request(z):
        try:
            start.wait()
            paths.append(PuzzleImageCache(tmp_path).get("p1", z % 5, z % 2 == 1, make))
        except Exception as exc:  # collected so the main thread can report it
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(z,)) for z in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert make.calls == 1
    assert len(paths) == 8
    for path in paths:
        assert decode(path.read_bytes()).shape[:2] == (96, 96)


def test_losing_a_race_with_another_process_keeps_the_winners_files(tmp_path, rendered):
    other_process = PuzzleImageCache(tmp_path)

    def make_slowly():
        # Another server process finishes the same puzzle while this one renders.
        other_process._install("p1", rendered)
        return [{"plain": b"late", "overlay": b"late"}]

    path = PuzzleImageCache(tmp_path).get("p1", 0, False, make_slowly)
    assert path.read_bytes() == rendered[0]["plain"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1"]


def test_a_failed_render_leaves_nothing_behind(tmp_path):
    def broken():
        raise RuntimeError("volume unreadable")

    cache = PuzzleImageCache(tmp_path)
    with pytest.raises(RuntimeError):
        cache.get("p1", 0, False, broken)
    assert not cache.has("p1")
    assert list(tmp_path.iterdir()) == []


def test_a_slice_past_the_stack_is_refused(tmp_path, rendered):
    cache = PuzzleImageCache(tmp_path)
    with pytest.raises(ProofQuestError, match="0..4"):
        cache.get("p1", 5, False, CountingRenderer(rendered))


@pytest.mark.parametrize("key", ["../etc", "a/b", ".hidden", "", "p 1"])
def test_keys_that_are_not_plain_names_are_refused(tmp_path, key):
    with pytest.raises(ProofQuestError, match="letters, digits"):
        PuzzleImageCache(tmp_path).has(key)


def test_roles_chosen_from_a_sample_of_each_kind_and_answer_weigh_as_if_chosen_from_all():
    rng = np.random.default_rng(0)
    sizes = {("merge", True): 80, ("merge", False): 3000, ("split", True): 40, ("split", False): 1500}
    candidates = [{"kind": kind, "truth": truth, "score": float(rng.random())}
                  for (kind, truth), n in sizes.items() for _ in range(n)]
    sampled = sample_strata(candidates, 200)
    for (kind, truth), n in sizes.items():
        mine = [c for c in sampled if c["kind"] == kind and c["truth"] == truth]
        assert len(mine) == min(n, 200) and {c["stratum_rate"] for c in mine} == {n / len(mine)}
    roles = {"gold_per_kind": 12, "teach_per_kind": 6, "practice_per_kind": 4}
    weights_sampled = {(c["kind"], c["truth"]): c["sample_weight"] for c in choose_roles(sampled, **roles)
                       if c.get("gold")}
    weights_all = {(c["kind"], c["truth"]): c["sample_weight"] for c in choose_roles(
        [dict(c) for c in candidates], **roles) if c.get("gold")}
    assert weights_sampled.keys() == weights_all.keys() == set(sizes)
    for key, weight in weights_all.items():
        assert weights_sampled[key] == pytest.approx(weight, rel=0.02), key
