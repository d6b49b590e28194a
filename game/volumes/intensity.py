"""Images and boundary maps in whatever type a lab saved them, scaled to the store's uint8.

The store keeps EM intensities as uint8 0..255 and a boundary (membrane)
map as probability × 255. Files come as uint8, uint16, floats, booleans, a
binary 0/1 mask, a probability 0..1 or 0..255. The scale is decided once for
the whole file from its type and value range (:func:`value_range`), never
block by block, so every block of a volume is scaled alike:

* a boundary map (or a membrane mask) is a probability: 0..1 (floats, or a
  binary mask of any type, booleans included) becomes 0..255; integers up to
  255 are taken as 0..255 already; wider integers as 0..their type's maximum
  (a probability saved as uint16 0..65535). Negative values, or floats past
  255, are refused: that is no probability;
* an EM image keeps uint8 as it is; anything else is stretched linearly from
  its smallest to its largest value (a 16-bit camera's counts, floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from game.errors import ProofQuestError
from game.progress import ProgressCallback

# Sections read at once while scanning a file's range.
SCAN_VOXELS = 2**24


def value_range(source, *, progress: ProgressCallback | None = None) -> tuple[float, float]:
    """Smallest and largest value of a (z, y, x) source (NaN ignored), read slab by slab."""
    depth = max(1, SCAN_VOXELS // max(1, int(np.prod(source.shape[1:]))))
    low, high = np.inf, -np.inf
    for z in range(0, source.shape[0], depth):
        block = np.asarray(source[z:z + depth])
        if block.size and np.issubdtype(block.dtype, np.floating):
            block = block[np.isfinite(block)]
        if block.size:
            low, high = min(low, float(block.min())), max(high, float(block.max()))
        if progress is not None:
            progress(min(z + depth, source.shape[0]), source.shape[0])
    return (0.0, 0.0) if low > high else (low, high)


@dataclass(frozen=True)
class Scaling:
    """A linear map from a file's values to uint8: ``(value - low) * 255 / (high - low)``, clipped and rounded."""

    low: float
    high: float
    note: str

    def __call__(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        if block.dtype == np.uint8 and (self.low, self.high) == (0.0, 255.0):
            return block
        values = np.nan_to_num(block.astype(np.float64), nan=self.low)
        scaled = (values - self.low) * (255.0 / (self.high - self.low)) if self.high > self.low else values * 0
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "note": self.note}


def probability_scaling(dtype, low: float, high: float, *, what: str = "boundary map") -> Scaling:
    """How a boundary map or membrane mask of ``dtype`` with values ``low..high`` becomes probability × 255."""
    dtype = np.dtype(dtype)
    if low < 0:
        raise ProofQuestError(f"the {what} has negative values ({low:g}); a membrane probability is 0..1 "
                              "(or 0..255): rescale it")
    if dtype == np.bool_ or high <= 1.0:
        kind = "a binary mask" if dtype == np.bool_ or np.issubdtype(dtype, np.integer) else "a probability 0..1"
        return Scaling(0.0, 1.0, f"{kind}, scaled to 0..255")
    if high <= 255.0:
        return Scaling(0.0, 255.0, "values 0..255, kept")
    if np.issubdtype(dtype, np.integer):
        top = float(np.iinfo(dtype).max)
        return Scaling(0.0, top, f"{dtype} values, read as 0..{top:g}")
    raise ProofQuestError(f"the {what} has values up to {high:g}; a membrane probability is 0..1 (or 0..255): "
                          "rescale it")


def image_scaling(dtype, low: float, high: float) -> Scaling:
    """How an EM image of ``dtype`` with values ``low..high`` becomes uint8 intensities."""
    if np.dtype(dtype) == np.uint8:
        return Scaling(0.0, 255.0, "uint8, kept")
    return Scaling(low, high, f"{np.dtype(dtype)} values {low:g}..{high:g}, stretched to 0..255")


def uint8_converter(source, layer: str, *, invert: bool = False,
                    progress: ProgressCallback | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], Scaling]:
    """The block converter for copying ``source`` into an intensity ``layer``, and the scaling it applies.

    Parameters
    ----------
    layer : {'image', 'boundary', 'membranes'}
    invert : bool
        A boundary map that is high inside cells: the membrane probability is 1 − value.
    progress : callable, optional
        Over the scan of the value range (skipped for uint8 images, kept as they are).
    """
    dtype = np.dtype(source.dtype)
    if layer == "image" and dtype == np.uint8:
        scaling = image_scaling(dtype, 0.0, 255.0)
    else:
        low, high = value_range(source, progress=progress)
        scaling = image_scaling(dtype, low, high) if layer == "image" else \
            probability_scaling(dtype, low, high, what="membrane mask" if layer == "membranes" else "boundary map")
    if invert:
        return (lambda block: 255 - scaling(block)), scaling
    return scaling, scaling
