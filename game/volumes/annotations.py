"""What a lab's annotation volume is: neuron labels in 3D, labels per section, a membrane mask, tissue classes.

Labs annotate serial-section EM in several ways, and each means something
else to the game:

* ``3d``: neuron ids that continue from section to section (SNEMI3D, CREMI):
  ground truth for everything, puzzles included;
* ``2d``: labels drawn section by section, each section's ids independent
  (the same id reused in unrelated places, or ids that never continue across
  z): they say which profiles of one section are one cell, never which
  profiles of two sections are. Evaluated per section, and never used to
  decide a link across sections (so no puzzle gets its truth from them);
* ``membrane``: a membrane (boundary) mask, binary or a probability: a
  training target for the boundary network, not neuron ids;
* ``tissue``: a few classes (membrane, cytoplasm, mitochondria, ...) each in
  many separate pieces: nothing the game can use as neuron truth.

:func:`classify_annotation` tells them apart from a sample of sections, and
says why, so an import can declare what it was given (and a user can say
otherwise with ``--groundtruth-kind``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from game.errors import ProofQuestError

KINDS = ("3d", "2d", "membrane", "tissue")
# Pairs of neighbouring sections looked at.
SAMPLE_PAIRS = 8
# Neuron ids in 3D: a label on two neighbouring sections (nearly) always touches itself across them. Of the labels
# on two sampled neighbouring sections, this share or more in places that do not touch means ids reused per
# section. Measured: snemi-mini 0 of 101, fibsem-gala 0 of 269, the demo 1 of 252; snemi-mini's labels
# renumbered section by section in raster order (scikit-image's label), 217 of 295.
MAX_REUSED = 0.1
# Tissue classes: at most this many labels, each in this many pieces per section on average.
TISSUE_MAX_CLASSES = 16
TISSUE_MIN_PIECES = 4.0


@dataclass(frozen=True)
class Annotation:
    """What an annotation volume was found to be, and the evidence.

    Attributes
    ----------
    kind : {'3d', '2d', 'membrane', 'tissue'}
    reason : str
        The evidence, in words, for messages and the volume's metadata.
    reused : float or None
        Of the labels found on two neighbouring sections, the share in places that do not touch.
    """

    kind: str
    reason: str
    reused: float | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "reused": self.reused}


def _sample_pairs(depth: int, pairs: int) -> list[int]:
    """First sections of up to ``pairs`` neighbouring pairs (z, z + 1), spread over the volume."""
    if depth < 2:
        return []
    return sorted({int(z) for z in np.linspace(0, depth - 2, min(pairs, depth - 1)).round()})


def _reused(first: np.ndarray, second: np.ndarray) -> tuple[int, int]:
    """Labels found on both sections in places that do not touch (4-connected, across them); labels on both."""
    both = np.intersect1d(np.unique(first[first != 0]), np.unique(second[second != 0]))
    touching = [np.unique(first[(first == second) & (first != 0)])]
    for axis in (0, 1):
        for step in (1, -1):
            shifted = np.roll(second, step, axis=axis)
            edge = [slice(None)] * 2
            edge[axis] = 0 if step == 1 else -1
            shifted[tuple(edge)] = 0  # np.roll wraps around; nothing comes in from outside the section
            touching.append(np.unique(first[(first == shifted) & (first != 0)]))
    return len(np.setdiff1d(both, np.concatenate(touching))), len(both)


def _pieces_per_label(section: np.ndarray) -> float:
    """Mean number of 4-connected pieces per label in one section."""
    labels = np.unique(section)
    pieces = [ndi.label(section == label)[1] for label in labels]
    return float(np.mean(pieces)) if pieces else 0.0


def classify_annotation(source, *, pairs: int = SAMPLE_PAIRS) -> Annotation:
    """What an annotation volume is (:data:`KINDS`), from ``pairs`` pairs of neighbouring sections.

    Parameters
    ----------
    source : array-like (z, y, x)
        Read a pair of sections at a time (a lazy source reads only those).

    Returns
    -------
    Annotation
    """
    dtype = np.dtype(source.dtype)
    if dtype == np.bool_:
        return Annotation("membrane", "booleans: a binary membrane mask")
    if np.issubdtype(dtype, np.floating):
        sample = np.concatenate([np.asarray(source[z:z + 2]).ravel() for z in _sample_pairs(source.shape[0], pairs)
                                 or [0]])
        low, high = float(np.nanmin(sample)), float(np.nanmax(sample))
        if low < 0 or high > 1:
            raise ProofQuestError(f"the annotation holds {dtype} values {low:g}..{high:g}: labels must be integers, "
                                  "and a membrane probability lies in 0..1")
        return Annotation("membrane", f"{dtype} values in 0..1: a membrane probability")
    if not np.issubdtype(dtype, np.integer):
        raise ProofQuestError(f"an annotation volume holds integers (labels) or floats (a membrane probability), "
                              f"not {dtype}")
    depth = int(source.shape[0])
    starts = _sample_pairs(depth, pairs) or [0]
    values: set[int] = set()
    apart, found, firsts = 0, 0, []
    for z in starts:
        block = np.asarray(source[z:z + 2])
        values.update(np.unique(block).tolist())
        firsts.append(block[0])
        if len(block) == 2:
            reused, both = _reused(block[0], block[1])
            apart, found = apart + reused, found + both
    if values <= {0, 1} or values <= {0, 255}:
        return Annotation("membrane", f"only the values {sorted(values)}: a binary membrane mask")
    pieces = [_pieces_per_label(section) for section in firsts] if len(values - {0}) <= TISSUE_MAX_CLASSES else [0]
    if np.mean(pieces) >= TISSUE_MIN_PIECES:
        return Annotation("tissue", f"{len(values)} values, each in {np.mean(pieces):.0f} separate pieces per "
                                    "section on average: classes of tissue, not one id per neuron")
    if depth < 2:
        return Annotation("3d", "one section: read as labels")
    if found == 0:
        return Annotation("2d", "no label continues from one section to the next: labels drawn per section", 1.0)
    share = apart / found
    if share >= MAX_REUSED:
        return Annotation("2d", f"{apart} of {found} labels found on two neighbouring sections lie in places that "
                                "do not touch: ids reused section by section, not neurons followed in 3D",
                          round(share, 3))
    return Annotation("3d", f"labels continue across sections ({found - apart} of {found} found on two "
                            "neighbouring sections touch themselves across them): neuron ids in 3D", round(share, 3))
