"""Supervoxels: a seeded watershed over-segmentation of a boundary map.

The segmentation is supervoxels plus a mapping: ``supervoxels`` is a fixed
watershed over-segmentation (this module) and ``mapping[sv]`` the segment of
each supervoxel (:mod:`game.segmentation.merging` makes the initial one,
:mod:`game.segmentation.agglomeration` edits it).
"""

from __future__ import annotations

from typing import Sequence

import fastremap
import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as connected_regions
from skimage.segmentation import watershed

from game.errors import ProofQuestError
from game.progress import ProgressCallback
from game.segmentation.rag import boundary_as_float, id_dtype


def _relative_sampling(sampling: Sequence[float]) -> np.ndarray:
    sampling = np.asarray(sampling, dtype=float)
    if sampling.shape != (3,) or (sampling <= 0).any():
        raise ProofQuestError(f"sampling is three positive voxel sizes (z, y, x), got {sampling.tolist()}")
    return sampling / sampling.min()


def _seeds(inside: np.ndarray, min_distance: float, sampling: np.ndarray) -> np.ndarray:
    """Markers at the maxima of the distance to the nearest non-``inside`` voxel.

    One seed per thick part of each region: a neck narrower than the parts it
    joins separates two maxima, so two cells touching through a faint
    membrane still get a seed each (the distance-transform watershed).
    """
    distance = ndi.distance_transform_edt(inside, sampling=sampling)
    size = tuple(2 * max(1, round(min_distance / s)) + 1 for s in sampling)
    peaks = inside & (ndi.maximum_filter(distance, size=size) == distance)
    markers, _ = ndi.label(peaks)
    return markers


def _as_dense_ids(labels: np.ndarray) -> np.ndarray:
    labels, _ = fastremap.renumber(labels, preserve_zero=True, in_place=True)
    return labels.astype(id_dtype(int(labels.max(initial=0))), copy=False)


def watershed_supervoxels(boundary: np.ndarray, *, mask: np.ndarray | None = None,
                          seed_threshold: float = 0.5, min_distance: float = 4,
                          sigma: float = 1.0, sampling: Sequence[float] = (1, 1, 1),
                          compactness: float = 0.0) -> np.ndarray:
    """Over-segment a boundary map into supervoxels by seeded 3D watershed.

    Seeds are the maxima of the distance transform of the low-boundary region
    (smoothed boundary < ``seed_threshold``), at least ``min_distance`` apart;
    the smoothed boundary map is flooded from them. Distances and smoothing
    use the voxel size, so anisotropic EM gets seeds spaced alike in nm.

    Parameters
    ----------
    boundary : ndarray
        Membrane probability (z, y, x), float 0..1 or uint8 0..255.
    mask : ndarray of bool, optional
        Voxels to label; the rest get 0.
    seed_threshold : float
        Boundary value below which a voxel counts as cell interior.
    min_distance : float
        Least distance between seeds, in voxels of the finest axis.
    sigma : float
        Gaussian smoothing of the boundary map, in voxels of the finest axis.
    sampling : sequence of 3 float
        Voxel size (z, y, x), any unit.
    compactness : float
        Compact watershed (Neubert & Protzel 2014); 0 is the classic flood.

    Returns
    -------
    ndarray of uint32
        Supervoxel ids ``1..N`` (0 outside ``mask``).

    References
    ----------
    Beucher & Meyer (1993), The morphological approach to segmentation: the
    watershed transformation. Zlateski & Seung (2015), Image segmentation by
    size-dependent single linkage clustering of a watershed basin graph.
    """
    relative = _relative_sampling(sampling)
    surface = boundary_as_float(boundary)
    if sigma > 0:
        surface = ndi.gaussian_filter(surface, sigma / relative)
    inside = surface < seed_threshold
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        inside &= mask
    labels = watershed(surface, _seeds(inside, min_distance, relative), mask=mask,
                       compactness=compactness)
    # parts of the mask that no seed reached (e.g. all membrane) become supervoxels of their own
    unreached = labels == 0 if mask is None else mask & (labels == 0)
    if unreached.any():
        extra, _ = ndi.label(unreached)
        labels[unreached] = extra[unreached] + labels.max()
    return _as_dense_ids(labels)


# In one section, seeds need the interior to be clearly so: at 0.5 a faint membrane between two profiles let one
# seed flood both (snemi-mini and the demo: supervoxel limit 0.21 and 0.022 at 0.5, 0.16 and 0.019 at 0.3).
SECTION_SEED_THRESHOLD = 0.3


def watershed_sections(boundary: np.ndarray, *, mask: np.ndarray | None = None,
                       seed_threshold: float = SECTION_SEED_THRESHOLD, min_distance: float = 4,
                       sigma: float = 1.0, first_id: int = 0,
                       progress: ProgressCallback | None = None) -> np.ndarray:
    """Supervoxels of one section each: a 2D watershed per section, for serial-section EM.

    Where z is several times coarser than y and x, a cell's profile moves
    between sections by more than a membrane's width, and a 3D flood follows
    the low boundary from one cell into the next section's neighbour. Flooded
    section by section, no supervoxel crosses a section; which profiles are
    one neurite is left to the agglomeration, which features the contacts
    across sections apart (:func:`game.segmentation.merging.section_linkage`).

    Parameters
    ----------
    boundary : ndarray
        Membrane probability (z, y, x), float 0..1 or uint8 0..255.
    mask, seed_threshold, min_distance, sigma
        As in :func:`watershed_supervoxels`, in-plane.
    first_id : int
        Ids start after this one (for slabs of a larger volume).
    progress : callable, optional
        ``progress(sections_done, sections)``.

    Returns
    -------
    ndarray of uint32 (uint64 past 2**32 - 1)
        Ids ``first_id + 1 ..``, dense, each inside one section; 0 outside ``mask``.

    References
    ----------
    Beucher & Meyer (1993), as :func:`watershed_supervoxels`. Kaynig, V. et al.
    (2015). Large-scale automatic reconstruction of neuronal processes from
    electron microscopy images. Medical Image Analysis 22(1) (2D regions per
    section, linked across sections).
    """
    boundary = np.asarray(boundary)
    labels = np.zeros(boundary.shape, np.uint64)
    top = int(first_id)
    for z in range(boundary.shape[0]):
        section = watershed_supervoxels(boundary[z:z + 1], mask=None if mask is None else mask[z:z + 1],
                                        seed_threshold=seed_threshold, min_distance=min_distance, sigma=sigma)
        found = section > 0
        labels[z:z + 1][found] = section[found].astype(np.uint64) + np.uint64(top)
        top += int(section.max(initial=0))
        if progress is not None:
            progress(z + 1, boundary.shape[0])
    return labels.astype(id_dtype(top), copy=False)


def oversegment_segments(segmentation: np.ndarray, boundary: np.ndarray | None = None, *,
                         seed_threshold: float = 0.5, min_distance: float = 4,
                         sigma: float = 1.0, sampling: Sequence[float] = (1, 1, 1)
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Supervoxels for a volume that arrives segmented: a watershed inside each segment.

    Without a boundary map each segment is cut at the necks of its distance
    transform; with one, seeds come from its low-boundary interior as in
    :func:`watershed_supervoxels`. Every supervoxel is a connected piece of
    one segment, so ``mapping[supervoxels]`` reproduces ``segmentation``.

    Parameters
    ----------
    segmentation : ndarray of int
        Segment ids (z, y, x), 0 = none; they are kept as they are in ``mapping``.
    boundary : ndarray, optional
        Membrane probability, float 0..1 or uint8 0..255.
    seed_threshold, min_distance, sigma, sampling
        As in :func:`watershed_supervoxels`.

    Returns
    -------
    supervoxels : ndarray of uint32
        Dense ids ``1..N``, 0 where ``segmentation`` is 0.
    mapping : ndarray
        ``mapping[sv]`` = the segment of ``sv``; ``mapping[0] == 0``.
    """
    segmentation = np.asarray(segmentation)
    if not np.issubdtype(segmentation.dtype, np.integer) or segmentation.min(initial=0) < 0:
        raise ProofQuestError("a segmentation holds non-negative integer ids")
    relative = _relative_sampling(sampling)
    labelled = segmentation != 0
    interior = labelled.copy()
    for axis in range(segmentation.ndim):
        lo = [slice(None)] * segmentation.ndim
        hi = list(lo)
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        differ = segmentation[tuple(lo)] != segmentation[tuple(hi)]
        interior[tuple(lo)] &= ~differ
        interior[tuple(hi)] &= ~differ
    if boundary is None:
        surface = -ndi.distance_transform_edt(interior, sampling=relative)
        inside = interior
    else:
        surface = boundary_as_float(boundary)
        if sigma > 0:
            surface = ndi.gaussian_filter(surface, sigma / relative)
        inside = interior & (surface < seed_threshold)
    basins = watershed(surface, _seeds(inside, min_distance, relative), mask=labelled)
    # a basin that flooded across a segment border is cut there: one id per (basin, segment) piece
    dense_segments = _as_dense_ids(segmentation.copy())
    pieces = basins.astype(np.int64) * (int(dense_segments.max()) + 1) + dense_segments
    pieces[~labelled] = 0
    supervoxels = _as_dense_ids(connected_regions(pieces, background=0, connectivity=1))
    mapping = np.zeros(int(supervoxels.max(initial=0)) + 1,
                       dtype=id_dtype(int(segmentation.max(initial=0))))
    mapping[supervoxels] = segmentation
    return supervoxels, mapping
