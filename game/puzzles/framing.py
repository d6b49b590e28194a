"""Framing: which crop of the volume a puzzle shows.

A puzzle shows a short stack of sections around its decision point, wide
enough for both parts to be seen and deep enough to follow a neurite through
the stack; thick sections (serial-section EM) get fewer slices than thin ones.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from game.errors import ProofQuestError
from game.geometry import BBox

MIN_SLICES, MAX_SLICES = 5, 9
# Below 96 px, EM zoomed to a 384 px image reads blurred (checked on fibsem-gala).
WINDOW_LIMITS = (96, 192)
# Depth, in in-plane voxels, that a stack should span when the anisotropy is known:
# about a thin neurite's diameter, so the parts can be followed through the stack.
STACK_DEPTH = 40


def slices_for_anisotropy(anisotropy: float) -> int:
    """The odd number of slices, 5 to 9, whose stack spans about ``STACK_DEPTH`` in-plane voxels.

    Parameters
    ----------
    anisotropy : float
        Section thickness over in-plane voxel size (1 for FIB-SEM, 5 to 10 for
        serial-section TEM). Thin sections change little from one to the next,
        so they get more slices; thick ones fewer.
    """
    if not anisotropy > 0:
        raise ProofQuestError(f"anisotropy must be positive, got {anisotropy}")
    odd = 2 * math.floor(STACK_DEPTH / anisotropy / 2) + 1
    return int(np.clip(odd, MIN_SLICES, MAX_SLICES))


def puzzle_window(center: Sequence[int], volume_shape: Sequence[int], *, slices: int = 7,
                  size: Sequence[int] = (96, 96), anisotropy: float | None = None) -> BBox:
    """The crop shown for a puzzle: ``slices`` sections by ``size`` pixels around ``center``.

    The window is centred on ``center`` where it can be, and shifted inward
    along any axis where the volume is at least as large as the window, so a
    player sees EM everywhere rather than padding. Along an axis where the
    volume is smaller than the window, the window covers the whole axis and
    reaches past it (the reader pads with 0). Either way ``center`` lies inside
    the window, though not always at its middle near the volume's faces.

    Parameters
    ----------
    center : (z, y, x)
        The suspected error, inside the volume.
    volume_shape : (Z, Y, X)
    slices : int
        Number of sections, 5 to 9; ``center[0]`` is section ``slices // 2``
        away from the volume's faces.
    size : (height, width)
        In-plane window, e.g. from :func:`fit_window`.
    anisotropy : float, optional
        Section thickness over in-plane voxel size; when given it chooses the
        number of slices (:func:`slices_for_anisotropy`) instead of ``slices``.

    Returns
    -------
    BBox
    """
    if anisotropy is not None:
        slices = slices_for_anisotropy(anisotropy)
    if not MIN_SLICES <= slices <= MAX_SLICES:
        raise ProofQuestError(f"a puzzle shows {MIN_SLICES} to {MAX_SLICES} slices, got {slices}")
    window = BBox.around(center, (slices, *size))
    shape = BBox.from_shape(volume_shape).shape
    if not BBox.from_shape(shape).contains(center):
        raise ProofQuestError(f"puzzle centre {tuple(center)} lies outside the volume of shape {shape}")
    start = [int(np.clip(a, min(0, n - s), max(0, n - s)))
             for a, n, s in zip(window.start, shape, window.shape)]
    return window.shift(np.subtract(start, window.start))


def fit_window(part_a: np.ndarray, part_b: np.ndarray, center: Sequence[int], *,
               min_area: int = 256, limits: Sequence[int] = WINDOW_LIMITS, step: int = 16) -> tuple[int, int]:
    """The smallest square in-plane window around ``center`` in which both parts are visible.

    A part is visible when at least ``min_area`` of its pixels (all of them,
    for a smaller part), projected along z, fall inside the window.

    Parameters
    ----------
    part_a, part_b : bool ndarray, (Z, H, W) or (H, W)
        The two parts in a crop reaching at least ``limits[1] / 2`` around ``center``.
    center : (y, x) or (z, y, x)
        The contact point in the crop's coordinates; z is ignored.
    min_area : int
        Pixels of a part that must show; 256 is a thin neurite's cross-section.
    limits : (low, high)
        Bounds of the returned size.
    step : int
        The size is rounded up to a multiple of ``step``.

    Returns
    -------
    (height, width)
        Equal, even, within ``limits``. A part with no pixels does not
        constrain the size.
    """
    cy, cx = (int(c) for c in tuple(center)[-2:])
    needed = 0
    for part in (part_a, part_b):
        footprint = part.any(axis=0) if part.ndim == 3 else part
        ys, xs = np.nonzero(footprint)
        if ys.size == 0:
            continue
        distance = np.sort(np.maximum(np.abs(ys - cy), np.abs(xs - cx)))
        needed = max(needed, 2 * (int(distance[min(min_area, ys.size) - 1]) + 1))
    side = int(np.clip(-(-needed // step) * step, *limits))
    return side, side
