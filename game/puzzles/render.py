"""Puzzles: a short stack of EM slices around a suspected error, and one yes/no question.

A *merge* puzzle (a suspected false split) colours two segments, A and B, and
asks whether they are one neurite; a *split* puzzle (a suspected false merge)
colours the two parts the computer proposes to cut one segment into and asks
whether it is one neurite. Each slice is rendered twice: the plain EM, and the
EM with the two parts as crisp outlines over faint fills (the EM's texture and
its membranes stay in their own grey, not mottled by colour) in a colour-blind-safe
pair (Okabe–Ito orange and blue, which also differ strongly in lightness).
Along the border between the parts, where the decision is, the fills fade and
the outlines stop: the membrane there (or its absence) is never under colour.
Four white ticks point at the spot in question, leaving it clear
(:func:`game.puzzles.framing.view_frame` puts it in the middle of the picture),
and never lie over a small piece of a part: a tick slides out along its line
past it.
:mod:`game.puzzles.framing` chooses the crop and :mod:`game.puzzles.cache`
keeps the PNGs.

Two parts that touch only across sections (a neurite's profile ending on one
section where the other part's begins on the next, or a few sections further
over a gap) show no border in any one slice: :func:`render_pair` draws the
section where one part ends beside the section where the other begins, at
the same place, with a strip of the sections between, so their outlines can
be compared side by side.

References
----------
.. [1] Haehn, D. et al. "Guided Proofreading of Automatic Segmentations for
   Connectomics", CVPR 2018.
.. [2] Okabe, M. and Ito, K. "Color Universal Design (CUD): how to make
   figures and presentations that are friendly to colorblind people", 2008.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import imagecodecs
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

# The version of the drawing, part of every picture's cache key (game.puzzles.cache.picture_key): BUMP IT
# whenever what a picture shows changes (colours, outlines, marks, captions, sizes...), so that pictures
# drawn by the older code are never served again, neither from the server's cache nor a browser's.
RENDERER_VERSION = 6
PALETTE = ("#E69F00", "#0072B2")
# Faint fills (0.35 until renderer 3: lookers called the colours mottled and asked for outlines only); the
# outlines carry the parts' shapes.
FILL_OPACITY = 0.2
OUTLINE_PX = 2
# Within this many voxels (at least CORRIDOR_MIN_PX pixels) of the border between the two parts the
# fills fade to CORRIDOR_FADE of their opacity (0.1, as faint as before renderer 3) and carry no outline: a
# membrane, 2 to 4 voxels thick in the EM, stays in
# sight with its grey on either side.
CORRIDOR_VOXELS = 2
CORRIDOR_MIN_PX = 4
CORRIDOR_FADE = 0.5
HATCH_PX = 6
# The spot in question is marked by four white ticks (dark-rimmed) pointing at it from above, below, left and
# right, SPOT_TICK_PX long, ending SPOT_GAP_PX from it: what decides (a membrane 2 to 4 voxels thick, 8 to 16
# pixels at the demo's zoom) is never covered.
SPOT_GAP_PX = 22
SPOT_TICK_PX = 16
SPOT_TICK_WIDTH_PX = 3
# A tick never lies over a small piece of a part (one of at most SMALL_PIECE_PX² on screen, on any section: a
# piece a few voxels across that a tick could hide): it slides out along its line, up to the image's edge, to
# the first place TICK_CLEAR_PX clear of every such piece (where there is none, it stays SPOT_GAP_PX from the spot).
SMALL_PIECE_PX = SPOT_TICK_PX + 8
TICK_CLEAR_PX = 4
# Smooth interpolation past twice the native size, or past half the output size, costs
# PNG bytes (2.2 times as many from 192 to 384 px on fibsem-gala) and adds no detail:
# beyond that, pixels are replicated.
EM_MAX_ZOOM = 2
# zlib level 1 with every row Paeth-filtered, by libpng (through imagecodecs): 1.4 to 1.9 times as fast as
# Pillow's level 1 (which tries several filters on every row) and 4 to 7 times as fast as its level 6, for
# files 13 to 17 % larger than level 6 (demo and fibsem-gala stacks). The pixels are the same.
PNG_COMPRESS_LEVEL = 1
PNG_FILTER = imagecodecs.PNG.FILTER.PAETH
# A stack's PNGs are encoded on this many threads at once (libpng runs without holding the GIL).
PNG_THREADS = 2
# The pair picture (render_pair): panels apart by this many pixels, a caption band above each row, and at most
# this many of the sections between (evenly spaced, in order) in the strip below the two panels.
PAIR_GUTTER = 8
# Each panel's caption in two lines ("This section" over "orange") large enough to read on a phone, where the
# picture is shown at about 0.43 of its size (40 px type: 17 px there; 24 px on one line was 7 px high); the
# strip's one-line caption smaller.
PAIR_FONT_PX = 40
PAIR_CAPTION_PX = 2 * (PAIR_FONT_PX + 4) + 8
PAIR_STRIP_FONT_PX = 34
PAIR_STRIP_CAPTION_PX = PAIR_STRIP_FONT_PX + 10
PAIR_STRIP = 6
# The pair zooms on its two profiles: in the stack's window they were 15 to 25 px of a 270 px panel on a desktop
# and about 10 px on a phone, half hidden by the ticks (a play-test). Its window is PAIR_CONTEXT times the
# profiles' extent on the two sections, at least PAIR_MIN_WINDOW voxels (the membranes around them stay in
# sight), never more than the stack's; the ticks stand clear of the zoomed profiles.
PAIR_CONTEXT = 3.0
PAIR_MIN_WINDOW = 40
# Dark like the viewer's stage around the EM; captions light. On a phone the picture is shown 0.45 times its size.
PAIR_BACKGROUND = (12, 16, 26)
PAIR_TEXT = (235, 238, 245)
COLOUR_NAMES = ("orange", "blue")


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array: (H, W) greyscale or (H, W, 3) RGB."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"encode_png takes uint8 (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(array), level=PNG_COMPRESS_LEVEL, filter=PNG_FILTER))


def render_slices(image: np.ndarray, part_a: np.ndarray, part_b: np.ndarray, *, out_size: int = 384,
                  palette: Sequence[str] = PALETTE, opacity: float = FILL_OPACITY,
                  padding: np.ndarray | None = None, point: Sequence[int] | None = None) -> list[dict]:
    """The PNGs of a puzzle: each section plain and with the two parts coloured.

    The parts are light fills with crisp outlines; along the border between
    the two parts (``CORRIDOR_VOXELS`` on either side) the fills fade and the
    outlines stop, so the membrane that separates them, or its absence, is
    never hidden under colour.

    Parameters
    ----------
    image : uint8 ndarray (Z, H, W)
        The EM crop.
    part_a, part_b : bool ndarray (Z, H, W)
        Disjoint masks: segments A and B of a merge puzzle, or the two parts
        of a proposed cut in a split puzzle.
    out_size : int
        Length in pixels of the images' longer side.
    palette : (colour_a, colour_b)
        ``#RRGGBB`` colours of the two parts.
    opacity : float
        Opacity of the fills; outlines are opaque.
    padding : bool ndarray (Z, H, W), optional
        Voxels outside the volume: hatched in both images, never shown as EM.
    point : (y, x), optional
        The spot in question in the crop: four ticks on the overlay point at
        it from above, below, left and right, ``SPOT_GAP_PX`` short of it or
        further, clear of every small piece of a part (``SMALL_PIECE_PX``).

    Returns
    -------
    list of dict
        One ``{'plain': bytes, 'overlay': bytes}`` per section: the greyscale
        EM, and the EM in grey with the parts tinted.
    """
    labels = _part_labels(image, part_a, part_b, "render_slices")
    return _encoded(*_draw(image, labels, _colour_table(palette), out_size, opacity, padding, point))


def _part_labels(image: np.ndarray, part_a: np.ndarray, part_b: np.ndarray, caller: str) -> np.ndarray:
    """0 outside the parts, 1 in part A, 2 in part B; ValueError unless the image and parts fit together."""
    if image.dtype != np.uint8 or image.ndim != 3 or part_a.shape != image.shape or part_b.shape != image.shape:
        raise ValueError(f"{caller} takes a uint8 (Z, H, W) image and parts of its shape, got "
                         f"{image.dtype} {image.shape}, {part_a.shape} and {part_b.shape}")
    if np.any(part_a & part_b):
        raise ValueError("the two parts overlap; a voxel belongs to A or to B")
    return part_a.astype(np.uint8) + 2 * part_b.astype(np.uint8)


def render_truth(image: np.ndarray, truth: np.ndarray, objects: Sequence[int], *, out_size: int = 384,
                 palette: Sequence[str] = PALETTE, opacity: float = FILL_OPACITY,
                 padding: np.ndarray | None = None, point: Sequence[int] | None = None) -> list[bytes]:
    """Overlay PNGs of the truth about a puzzle, for the feedback after it is answered.

    The ground-truth object that part A mostly is gets part A's colour; the
    object that part B mostly is gets part B's colour, or A's when it is the
    same object: one colour means one neurite, two colours two neurites, as
    in the puzzle itself. Other objects stay grey.

    Parameters
    ----------
    image : uint8 ndarray (Z, H, W)
    truth : integer ndarray (Z, H, W)
        Ground-truth labels of the same crop.
    objects : (label_a, label_b)
        The dominant ground-truth object of each part (:func:`game.puzzles.truth.dominant_objects`).

    Returns
    -------
    list of bytes
        One overlay PNG per section.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or truth.shape != image.shape:
        raise ValueError(f"render_truth takes a uint8 (Z, H, W) image and labels of its shape, got "
                         f"{image.dtype} {image.shape} and {truth.shape}")
    label_a, label_b = (int(o) for o in objects)
    labels = np.where(truth == label_a, 1, np.where(truth == label_b, 2, 0)).astype(np.uint8)
    colours = _colour_table(palette)
    if label_a == label_b:
        colours[2] = colours[1]
    return _encode_all(_draw(image, labels, colours, out_size, opacity, padding, point)[1])


def _colour_table(palette: Sequence[str]) -> np.ndarray:
    """Row 0 (no part) is unused, row k is the colour of label k."""
    rgb = [[int(c.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)] for c in palette]
    return np.array([[0, 0, 0], *rgb], dtype=np.float64)


def _draw(image: np.ndarray, labels: np.ndarray, table: np.ndarray, out_size: int, opacity: float,
          padding: np.ndarray | None, point: Sequence[int] | None,
          clear: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The stack's pictures as arrays, plain (Z, H, W) and overlay (Z, H, W, 3), all sections at once;
    ``clear``: voxels around ``point`` that the ticks keep clear of (beyond ``SPOT_GAP_PX``)."""
    out_shape = _output_shape(image.shape[1:], out_size)
    scale = out_shape[0] / image.shape[1]
    corridor = max(CORRIDOR_MIN_PX, round(CORRIDOR_VOXELS * scale))
    grey = _upscale_em(image, out_shape)
    if padding is not None and padding.any():
        grey = np.where(_nearest(padding, out_shape), _hatch(out_shape), grey).astype(np.uint8)
    overlay = _overlay(grey, _nearest(labels, out_shape), table, opacity, corridor)
    if point is not None:
        centre = [(p + 0.5) * scale - 0.5 for p in point]
        fill, rim = _spot_marks(out_shape, centre, _tick_gaps(_nearest(_small_pieces(labels, scale), out_shape),
                                                              centre, start=max(SPOT_GAP_PX, clear * scale)))
        overlay[:, fill] = 255
        overlay[:, rim] = 0
    return grey, overlay


def _encoded(plain: np.ndarray, overlay: np.ndarray) -> list[dict]:
    pngs = _encode_all([*plain, *overlay])
    return [{"plain": grey, "overlay": coloured} for grey, coloured in zip(pngs[:len(plain)], pngs[len(plain):])]


def _encode_all(pictures: Sequence[np.ndarray]) -> list[bytes]:
    with ThreadPoolExecutor(PNG_THREADS, thread_name_prefix="png") as pool:
        return list(pool.map(encode_png, pictures))


def _output_shape(shape: Sequence[int], out_size: int) -> tuple[int, int]:
    scale = out_size / max(shape)
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _nearest(array: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of the last two axes to ``out_shape``."""
    rows = np.arange(out_shape[0]) * array.shape[-2] // out_shape[0]
    cols = np.arange(out_shape[1]) * array.shape[-1] // out_shape[1]
    return array.take(rows, axis=-2).take(cols, axis=-1)


def _upscale_em(sections: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Bicubic to about ``EM_MAX_ZOOM`` times the native size, then pixel replication, section by section.

    The bicubic stage stops at half the output size (or the native size, if
    larger), so crops up to half the output keep all their detail.
    """
    native, out = max(sections.shape[1:]), max(out_shape)
    replicate = max(1, out // min(EM_MAX_ZOOM * native, max(native, out // 2)))
    smooth = tuple(-(-n // replicate) for n in out_shape)
    resized = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(section)).resize(
        smooth[::-1], Image.Resampling.BICUBIC)) for section in sections])
    return _nearest(resized, out_shape)


def _overlay(grey: np.ndarray, labels: np.ndarray, table: np.ndarray, opacity: float,
             corridor: int) -> np.ndarray:
    """RGB of the EM in grey, each part tinted and outlined; faint and unoutlined along the parts' border.

    Pixels of a part within ``corridor`` pixels of another part are tinted at
    ``CORRIDOR_FADE`` of the opacity, and the outlines stop short of the
    border between the parts, so the membrane there (or its absence) shows in
    its own grey; a thin part keeps its outline everywhere else. Each part's
    border is outlined ``OUTLINE_PX`` wide, but not along the crop's edge,
    where the part goes on. ``grey`` and ``labels`` are (Z, H, W) stacks
    (labels 0, no part, to 7); the colour of every pixel is one look-up in a
    table indexed by its state (tinted, faded, outline), its label and its
    grey level.
    """
    # Bit k set: label k is within that many pixels (square). Windows grow by composition: the labels within
    # r + s pixels are those within s pixels of a pixel whose labels within r are known.
    own = np.left_shift(np.uint8(1), labels)
    within, present, reach = {}, own, 0
    for radius in sorted({OUTLINE_PX, OUTLINE_PX + 1, corridor}):
        present = _square_filter(present, radius - reach, np.bitwise_or)
        within[radius], reach = present, radius
    other = ~own & np.uint8(0xFE)  # the bits of every part but the pixel's own
    # the outline: pixels of a part with something else within OUTLINE_PX, but no other part within one more
    border = (labels > 0) & ((within[OUTLINE_PX] & ~own) != 0) & ((within[OUTLINE_PX + 1] & other) == 0)
    near_other = (labels > 0) & ((within[corridor] & other) != 0)
    state = np.where(border, np.uint8(2), near_other.view(np.uint8))
    looks = np.stack([_blend(table, opacity), _blend(table, opacity * CORRIDOR_FADE),
                      np.broadcast_to(table.astype(np.uint8)[:, None, :], (len(table), 256, 3))])
    row = (state * np.uint8(len(table)) + labels).astype(np.uint16)
    return looks.reshape(-1, 3).take((row << 8) | grey, axis=0)


def _square_filter(stack: np.ndarray, radius: int, extreme: np.ufunc) -> np.ndarray:
    """The largest (``np.maximum``), smallest (``np.minimum``) or union of the bits (``np.bitwise_or``) of
    the values within ``radius`` pixels (square) of each pixel of each section of a (Z, H, W) stack, the
    sections' edges extended.

    As ``scipy.ndimage.maximum_filter(stack, (1, 2 * radius + 1, 2 * radius + 1), mode='nearest')`` (or
    ``minimum_filter``), but as a few whole-array ufunc calls on shifted views, the window doubling each
    time: scipy filters line by line, about 10 times slower on a 7-section stack of 384 px.
    """
    width = 2 * radius + 1
    out = stack
    for axis in (1, 2):
        size = out.shape[axis]
        # span[i] holds the extreme of padded[i : i + reach]
        span = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
        reach = 1
        while 2 * reach <= width:
            span = extreme(_along(span, axis, None, -reach), _along(span, axis, reach, None))
            reach *= 2
        # two windows of ``reach`` >= width / 2 cover the window of ``width``
        out = extreme(_along(span, axis, 0, size), _along(span, axis, width - reach, width - reach + size))
    return out


def _along(array: np.ndarray, axis: int, start: int | None, stop: int | None) -> np.ndarray:
    return array[(slice(None),) * axis + (slice(start, stop),)]


def _blend(table: np.ndarray, opacity: float) -> np.ndarray:
    """``blend[label, grey]``: the RGB of each grey level tinted by each label's colour (label 0 untinted)."""
    alpha = np.full((len(table), 1, 1), opacity)
    alpha[0] = 0.0
    return np.rint(np.arange(256)[None, :, None] * (1 - alpha) + table[:, None, :] * alpha).astype(np.uint8)


def _hatch(shape: tuple[int, int]) -> np.ndarray:
    """Diagonal stripes that no EM looks like: where the crop reaches past the volume."""
    rows, cols = np.indices(shape)
    return np.where((rows + cols) // HATCH_PX % 2 == 0, 40, 70).astype(np.uint8)


def _small_pieces(labels: np.ndarray, scale: float) -> np.ndarray:
    """(H, W): where a small piece of a part lies on any section of a (Z, H, W) stack of labels: an 8-connected
    piece of one label of at most ``SMALL_PIECE_PX`` squared on screen (``scale`` pixels per voxel)."""
    small = np.zeros(labels.shape[1:], bool)
    most = SMALL_PIECE_PX ** 2 / scale ** 2
    for section in labels:
        for label in np.unique(section[section > 0]):
            pieces, _ = ndi.label(section == label, structure=np.ones((3, 3), int))
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            small |= ((sizes > 0) & (sizes <= most))[pieces]
    return small


def _tick_gaps(keep: np.ndarray, point: Sequence[float],
               start: float = SPOT_GAP_PX) -> tuple[float, float, float, float]:
    """How far from ``point`` (display pixels) each tick begins, above, below, left and right: ``start``
    (``SPOT_GAP_PX``, or more where the ticks must clear what is around the point), or the least distance beyond
    it, with the whole tick inside the image, at which the tick (its rim and ``TICK_CLEAR_PX`` more) lies clear
    of ``keep`` (display pixels to keep in sight); ``start`` when none is clear (at most as far as the tick
    still fits inside the image)."""
    rows, cols = np.arange(keep.shape[0]), np.arange(keep.shape[1])
    lane = SPOT_TICK_WIDTH_PX / 2 + 1 + TICK_CLEAR_PX
    near_col, near_row = np.abs(cols - point[1]) <= lane, np.abs(rows - point[0]) <= lane
    gaps = []
    for along, centre, hit in ((rows, point[0], keep[:, near_col].any(axis=1)), (cols, point[1],
                                                                                keep[near_row].any(axis=0))):
        for sign in (-1, 1):
            distance = sign * (along - centre)  # from the spot along the tick's line, positive on its side
            taken = distance[hit & (distance > 0)]
            room = distance.max() - SPOT_TICK_PX - 1  # the tick and its rim inside the image
            first = int(round(max(SPOT_GAP_PX, min(start, room))))
            gap = float(first)
            for begin in np.arange(first, max(first, room) + 1):
                reach = (taken >= begin - 1 - TICK_CLEAR_PX) & (taken <= begin + SPOT_TICK_PX + 1 + TICK_CLEAR_PX)
                if not reach.any():
                    gap = float(begin)
                    break
            gaps.append(gap)
    return tuple(gaps)


def _spot_marks(shape: tuple[int, int], point: Sequence[float],
                gaps: Sequence[float] = (SPOT_GAP_PX,) * 4) -> tuple[np.ndarray, np.ndarray]:
    """Masks of four short ticks around ``point`` (display pixels), above, below, left and right of it, each
    beginning its ``gaps`` (above, below, left, right) from it, so a disc of at least ``SPOT_GAP_PX`` around it
    stays clear: fill, rim."""
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    dy, dx = rows - point[0], cols - point[1]
    up, down, left, right = gaps

    def ticks(grow: float) -> np.ndarray:
        thin = lambda d: np.abs(d) <= SPOT_TICK_WIDTH_PX / 2 + grow
        along = lambda d, gap: (d >= gap - grow) & (d <= gap + SPOT_TICK_PX + grow)
        return (thin(dx) & (along(-dy, up) | along(dy, down))) | (thin(dy) & (along(-dx, left) | along(dx, right)))

    fill = ticks(0.0)
    return fill, ticks(1.0) & ~fill


def _pair_window(labels: np.ndarray, point: Sequence[int]) -> tuple[tuple[int, int, int, int], float]:
    """The pair's window (y0, y1, x0, x1) in the stack's crop, square around the two profiles (``labels`` of its
    two sections, :data:`PAIR_CONTEXT`, :data:`PAIR_MIN_WINDOW`), holding ``point``; and how far from the point
    (voxels) the profiles reach, for the ticks to stand clear of."""
    height, width = labels.shape[1:]
    ys, xs = np.nonzero(labels.any(axis=0))
    if ys.size == 0:
        return (0, height, 0, width), 0.0
    low, high = np.array([ys.min(), xs.min()]), np.array([ys.max(), xs.max()]) + 1
    size = int(min(max(np.ceil((high - low).max() * PAIR_CONTEXT), PAIR_MIN_WINDOW), height, width))
    starts = []
    for axis, length in enumerate((height, width)):
        centre = (low[axis] + high[axis]) / 2
        start = int(round(centre - size / 2))
        start = min(max(start, point[axis] - size + 1), point[axis])  # the point inside
        starts.append(min(max(start, 0), length - size))
    reach = float(np.sqrt(((ys - point[0]) ** 2 + (xs - point[1]) ** 2).max())) + 1
    return (starts[0], starts[0] + size, starts[1], starts[1] + size), reach


def render_pair(image: np.ndarray, part_a: np.ndarray, part_b: np.ndarray, key: int, across: int, *,
                point: Sequence[int], out_size: int = 384, palette: Sequence[str] = PALETTE,
                opacity: float = FILL_OPACITY, padding: np.ndarray | None = None) -> bytes:
    """One PNG: the section where one part ends beside the section where the other begins, at one place.

    Two parts that touch only across sections have no border in any single
    slice; what tells one neurite from two is whether the second part's
    profile continues the first's outline at the same place. The left panel
    is section ``key`` of the stack (the part that ends there), the right one
    section ``key + across`` (the part that begins there), both with the
    colours of :func:`render_slices`; for a gap (``across`` > 1) a strip below
    shows the sections between, at most ``PAIR_STRIP`` of them evenly spaced,
    in order. Each row has a caption naming the colours and sections.

    Parameters
    ----------
    image, part_a, part_b, padding, out_size, palette, opacity
        As in :func:`render_slices` (the whole stack).
    key : int
        Index in the stack of the section where one part ends.
    point : (y, x)
        The decision point in the crop: on the part that ends, on section ``key`` (the caption names
        its colour first), and marked by ticks on both panels.
    across : int
        Sections from there to the section where the other part begins (>= 1).

    Returns
    -------
    bytes
        The PNG, ``2 * out_size + PAIR_GUTTER`` pixels wide.
    """
    if not (0 <= key and 1 <= across and key + across < image.shape[0]):
        raise ValueError(f"render_pair needs sections {key} and {key + across} of a stack of {image.shape[0]}")
    between = list(range(key + 1, key + across))
    if len(between) > PAIR_STRIP:
        between = [between[round(i * (len(between) - 1) / (PAIR_STRIP - 1))] for i in range(PAIR_STRIP)]
    shown = [key, key + across, *between]
    labels = _part_labels(image, part_a, part_b, "render_pair")[shown]
    ends = 0 if part_a[key][tuple(point)] else 1  # the colour of the part that ends here, named first
    (y0, y1, x0, x1), clear = _pair_window(labels[:2], point)
    crop = (lambda array: None if array is None else array[shown][:, y0:y1, x0:x1])
    point = (point[0] - y0, point[1] - x0)
    overlays = _draw(crop(image), labels[:, y0:y1, x0:x1], _colour_table(palette), out_size, opacity,
                     crop(padding), point, clear=clear)[1]
    panels = [Image.fromarray(overlay) for overlay in overlays]
    width = 2 * panels[0].width + PAIR_GUTTER
    strip = (width - (PAIR_STRIP - 1) * PAIR_GUTTER) // PAIR_STRIP
    height = PAIR_CAPTION_PX + panels[0].height + (PAIR_STRIP_CAPTION_PX + strip if between else 0)
    sheet = Image.new("RGB", (width, height), PAIR_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=PAIR_FONT_PX)
    first, second = COLOUR_NAMES[ends], COLOUR_NAMES[1 - ends]
    further = "The next section" if across == 1 else f"{across} sections further"
    for x, caption in ((0, f"This section:\n{first}"), (panels[0].width + PAIR_GUTTER, f"{further}:\n{second}")):
        draw.multiline_text((x + 4, 4), caption, fill=PAIR_TEXT, font=font, spacing=4)
    sheet.paste(panels[0], (0, PAIR_CAPTION_PX))
    sheet.paste(panels[1], (panels[0].width + PAIR_GUTTER, PAIR_CAPTION_PX))
    if between:
        top = PAIR_CAPTION_PX + panels[0].height
        gone = across - 1
        draw.text((4, top + 5), f"The {gone} section{'s' if gone > 1 else ''} between, in order"
                  + ("" if len(between) == gone else f" ({len(between)} of them shown)"), fill=PAIR_TEXT,
                  font=ImageFont.load_default(size=PAIR_STRIP_FONT_PX))
        for i, panel in enumerate(panels[2:]):
            sheet.paste(panel.resize((strip, strip), Image.Resampling.LANCZOS),
                        (i * (strip + PAIR_GUTTER), top + PAIR_STRIP_CAPTION_PX))
    return encode_png(np.asarray(sheet))
