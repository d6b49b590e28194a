"""Puzzles: a short stack of EM slices around a suspected error, and one yes/no question.

A *merge* puzzle (a suspected false split) colours two segments, A and B, and
asks whether they are one neurite; a *split* puzzle (a suspected false merge)
colours the two parts the computer proposes to cut one segment into and asks
whether it is one neurite. Each slice is rendered twice: the plain EM, and the
EM with the two parts as translucent fills and crisp outlines in a
colour-blind-safe pair (Okabe–Ito orange and blue, which also differ strongly
in lightness). :mod:`game.puzzles.framing` chooses the crop and
:mod:`game.puzzles.cache` keeps the PNGs.

References
----------
.. [1] Haehn, D. et al. "Guided Proofreading of Automatic Segmentations for
   Connectomics", CVPR 2018.
.. [2] Okabe, M. and Ito, K. "Color Universal Design (CUD): how to make
   figures and presentations that are friendly to colorblind people", 2008.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

PALETTE = ("#E69F00", "#0072B2")
TRUTH_PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
OUTLINE_PX = 2
# Smooth interpolation past twice the native size, or past half the output size, costs
# PNG bytes (2.2 times as many from 192 to 384 px on fibsem-gala) and adds no detail:
# beyond that, pixels are replicated.
EM_MAX_ZOOM = 2
PNG_COMPRESS_LEVEL = 6


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array: (H, W) greyscale or (H, W, 3) RGB."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"encode_png takes uint8 (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    # optimize=True (zlib level 9) saves under 1 % on EM at 4.5 times the time of level 6.
    Image.fromarray(array).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def render_slices(image: np.ndarray, part_a: np.ndarray, part_b: np.ndarray, *, out_size: int = 384,
                  palette: Sequence[str] = PALETTE, opacity: float = 0.45, outline: bool = True) -> list[dict]:
    """The PNGs of a puzzle: each section plain and with the two parts coloured.

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
    outline : bool
        Draw an ``OUTLINE_PX`` outline inside each part's border (not along the
        crop's edge, where the part goes on).

    Returns
    -------
    list of dict
        One ``{'plain': bytes, 'overlay': bytes}`` per section: the greyscale
        EM, and the EM in grey with the parts tinted.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or part_a.shape != image.shape or part_b.shape != image.shape:
        raise ValueError(f"render_slices takes a uint8 (Z, H, W) image and parts of its shape, got "
                         f"{image.dtype} {image.shape}, {part_a.shape} and {part_b.shape}")
    if np.any(part_a & part_b):
        raise ValueError("the two parts overlap; a voxel belongs to A or to B")
    labels = part_a.astype(np.uint8) + 2 * part_b.astype(np.uint8)
    return _render(image, labels, _colour_table(palette), out_size, opacity, outline)


def render_truth(image: np.ndarray, truth: np.ndarray, *, out_size: int = 384,
                 palette: Sequence[str] = TRUTH_PALETTE, opacity: float = 0.45,
                 outline: bool = True) -> list[bytes]:
    """Overlay PNGs of the ground truth, for the feedback after a practice puzzle.

    Touching objects get different colours where the palette allows (greedy
    colouring of the crop's adjacency graph, largest object first); the
    outlines separate objects that share a colour. Label 0 (unlabelled) stays
    grey.

    Parameters
    ----------
    image : uint8 ndarray (Z, H, W)
    truth : integer ndarray (Z, H, W)
        Ground-truth labels of the same crop.

    Returns
    -------
    list of bytes
        One overlay PNG per section.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or truth.shape != image.shape:
        raise ValueError(f"render_truth takes a uint8 (Z, H, W) image and labels of its shape, got "
                         f"{image.dtype} {image.shape} and {truth.shape}")
    ids, dense = np.unique(truth, return_inverse=True)
    dense = dense.reshape(truth.shape)
    if ids[0] != 0:
        dense += 1
    colours = _colour_table(palette)[1:]
    table = np.vstack([np.zeros(3), colours[_greedy_colouring(dense, len(colours))]])
    return [pngs["overlay"] for pngs in _render(image, dense, table, out_size, opacity, outline)]


def _colour_table(palette: Sequence[str]) -> np.ndarray:
    """Row 0 (no part) is unused, row k is the colour of label k."""
    rgb = [[int(c.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)] for c in palette]
    return np.array([[0, 0, 0], *rgb], dtype=np.float64)


def _greedy_colouring(dense: np.ndarray, n_colours: int) -> np.ndarray:
    """A colour index for each label 1..K of ``dense`` (row k-1); neighbours differ when they can.

    Objects separated only by unlabelled membrane count as neighbours: each
    unlabelled voxel joins its nearest object before adjacency is read.
    """
    n_labels = int(dense.max())
    if n_labels and (dense == 0).any():
        nearest = ndi.distance_transform_edt(dense == 0, return_distances=False, return_indices=True)
        dense = dense[tuple(nearest)]
    neighbours: list[set[int]] = [set() for _ in range(n_labels + 1)]
    for axis in range(dense.ndim):
        here = np.moveaxis(dense, axis, 0)[:-1].ravel()
        there = np.moveaxis(dense, axis, 0)[1:].ravel()
        touching = (here != there) & (here > 0) & (there > 0)
        for u, v in np.unique(np.stack([here[touching], there[touching]], axis=1), axis=0):
            neighbours[u].add(int(v))
            neighbours[v].add(int(u))
    colour = np.full(n_labels + 1, -1)
    sizes = np.bincount(dense.ravel(), minlength=n_labels + 1)
    for label in np.argsort(-sizes[1:], kind="stable") + 1:
        taken = {colour[n] for n in neighbours[label]}
        free = [c for c in range(n_colours) if c not in taken]
        colour[label] = free[0] if free else label % n_colours
    return colour[1:]


def _render(image: np.ndarray, labels: np.ndarray, table: np.ndarray, out_size: int,
            opacity: float, outline: bool) -> list[dict]:
    out_shape = _output_shape(image.shape[1:], out_size)
    slices = []
    for section, section_labels in zip(image, labels):
        grey = _upscale_em(section, out_shape)
        overlay = _overlay(grey, _nearest(section_labels, out_shape), table, opacity, outline)
        slices.append({"plain": encode_png(grey), "overlay": encode_png(overlay)})
    return slices


def _output_shape(shape: Sequence[int], out_size: int) -> tuple[int, int]:
    scale = out_size / max(shape)
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _nearest(array: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    rows = np.arange(out_shape[0]) * array.shape[0] // out_shape[0]
    cols = np.arange(out_shape[1]) * array.shape[1] // out_shape[1]
    return array[rows[:, None], cols]


def _upscale_em(section: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Bicubic to about ``EM_MAX_ZOOM`` times the native size, then pixel replication.

    The bicubic stage stops at half the output size (or the native size, if
    larger), so crops up to half the output keep all their detail.
    """
    native, out = max(section.shape), max(out_shape)
    replicate = max(1, out // min(EM_MAX_ZOOM * native, max(native, out // 2)))
    smooth = tuple(-(-n // replicate) for n in out_shape)
    resized = Image.fromarray(np.ascontiguousarray(section)).resize(smooth[::-1], Image.Resampling.BICUBIC)
    return _nearest(np.asarray(resized), out_shape)


def _overlay(grey: np.ndarray, labels: np.ndarray, table: np.ndarray, opacity: float,
             outline: bool) -> np.ndarray:
    """RGB of the EM in grey, each labelled pixel blended towards its label's colour."""
    alpha = np.full((len(table), 1, 1), opacity)
    alpha[0] = 0.0
    # One lookup per pixel: blend[label, grey] precomputed for every grey level.
    blend = (np.arange(256)[None, :, None] * (1 - alpha) + table[:, None, :] * alpha)
    rgb = np.rint(blend).astype(np.uint8)[labels, grey]
    if outline:
        size = 2 * OUTLINE_PX + 1
        # mode='nearest' so a part cut by the crop's edge gets no outline there.
        border = (ndi.maximum_filter(labels, size, mode="nearest")
                  != ndi.minimum_filter(labels, size, mode="nearest")) & (labels > 0)
        rgb[border] = table[labels[border]]
    return rgb
