"""Classical, training-free image filters for EM of neural tissue."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from game.errors import ProofQuestError

# Ridge strength (scale-normalised curvature of the darkness, 0..1 units) that
# counts as certain membrane; a membrane a few voxels wide at full contrast
# reaches about this.
_RIDGE_SATURATION = 0.3


def darkness(image: np.ndarray, *, intensity_range: tuple[float, float] | None = None) -> np.ndarray:
    """Intensity turned upside down and stretched to 0..1 (1 = black), float32.

    Parameters
    ----------
    image : EM intensities, any real dtype.
    intensity_range : (black, white) levels mapped to 1 and 0. By default
        the 1st and 99th percentiles of ``image``; pass fixed levels when
        filtering a large volume block by block so that blocks agree.
    """
    image = np.asarray(image, dtype=np.float32)
    low, high = intensity_range if intensity_range is not None else np.percentile(image, (1, 99))
    if high <= low:
        return np.zeros(image.shape, np.float32)
    return np.clip((np.float32(high) - image) / np.float32(high - low), 0, 1)


def ridge_strength(dark: np.ndarray, sigmas: Sequence[float] = (1.0, 2.0)) -> np.ndarray:
    """Multi-scale bright-ridge measure of a 3D stack, computed in each 2D slice.

    At each scale σ the in-plane Hessian of the Gaussian-smoothed stack is
    taken; a thin bright line has a strongly negative eigenvalue across it,
    so the response is σ² · max(−λ_min, 0), and the result is the maximum
    over scales (Sato et al.'s line filter in 2D, without the 3D coupling
    that anisotropic sections cannot support).

    Parameters
    ----------
    dark : (z, y, x) float array where membranes are bright.
    sigmas : in-plane scales in voxels, about half the membrane widths to
        detect.

    Returns
    -------
    float32 array of the same shape, 0 where there is no ridge.

    References
    ----------
    Sato, Y. et al. (1998). Three-dimensional multi-scale line filter for
    segmentation and visualization of curvilinear structures in medical
    images. Medical Image Analysis 2(2), 143–168.
    """
    response = np.zeros(dark.shape, np.float32)
    for sigma in sigmas:
        scale = (0.0, sigma, sigma)
        hyy = ndi.gaussian_filter(dark, scale, order=(0, 2, 0))
        hxx = ndi.gaussian_filter(dark, scale, order=(0, 0, 2))
        hxy = ndi.gaussian_filter(dark, scale, order=(0, 1, 1))
        lowest = (hyy + hxx) / 2 - np.sqrt(((hyy - hxx) / 2) ** 2 + hxy**2)
        np.maximum(response, np.float32(sigma**2) * np.maximum(-lowest, 0), out=response)
    return response


def membrane_probability(image: np.ndarray, *, intensity_range: tuple[float, float] | None = None,
                         sigmas: Sequence[float] = (1.0, 2.0)) -> np.ndarray:
    """A training-free estimate of where the cell membranes are, 0..1.

    Membranes in EM are dark, thin and line-like. The estimate is the mean
    of two cues, each in 0..1: the lightly smoothed darkness (catches broad,
    faint membranes) and the in-plane ridge strength (prefers thin lines over
    dark blobs such as mitochondria interiors). Filtering is done slice by
    slice because EM sections are much thicker than their pixels.

    Parameters
    ----------
    image : (z, y, x) or (y, x) EM intensities (membranes dark).
    intensity_range : (black, white) levels; see :func:`darkness`.
    sigmas : ridge scales in pixels; see :func:`ridge_strength`.

    Returns
    -------
    float32 array of ``image.shape`` in 0..1, high on membranes.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise ProofQuestError(
            f"membrane_probability needs a non-empty 2D slice or 3D (z, y, x) stack, got shape {image.shape}")
    stack = image[None] if image.ndim == 2 else image
    dark = darkness(stack, intensity_range=intensity_range)
    smooth = ndi.gaussian_filter(dark, (0.0, 1.0, 1.0))
    ridge = np.minimum(ridge_strength(dark, sigmas) / np.float32(_RIDGE_SATURATION), 1)
    probability = np.clip(np.float32(0.5) * (smooth + ridge), 0, 1)
    return probability.reshape(image.shape)


def membrane_halo(sigmas: Sequence[float] = (1.0, 2.0)) -> int:
    """In-plane voxels of context :func:`membrane_probability` reads around each output voxel.

    Its filters are separable Gaussians (and derivatives) truncated at 4σ in
    y and x, and none in z; a block filtered with this much image around it
    (and the volume's own edges where it ends) equals the same voxels filtered
    in the whole volume.
    """
    return max(int(4.0 * s + 0.5) for s in (1.0, *sigmas))


def intensity_percentiles(histogram: np.ndarray, q: Sequence[float] = (1, 99)) -> tuple[float, ...]:
    """``np.percentile`` (linear interpolation) of an integer image from its histogram (counts per level).

    Lets a volume larger than memory get the levels of :func:`darkness` from
    histograms summed block by block, exactly as from the whole array.
    """
    counts = np.asarray(histogram, dtype=np.int64)
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    if n == 0:
        raise ProofQuestError("intensity_percentiles needs a histogram of at least one voxel")

    def order_statistic(k: int) -> float:  # the k-th smallest level (0-based)
        return float(np.searchsorted(cumulative, k + 1))

    out = []
    for percent in q:
        position = percent / 100.0 * (n - 1)
        low = int(np.floor(position))
        high = min(low + 1, n - 1)
        a, b = order_statistic(low), order_statistic(high)
        out.append(a + (b - a) * (position - low))
    return tuple(out)
