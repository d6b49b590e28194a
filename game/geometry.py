"""Bounding boxes in (z, y, x) voxel coordinates."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence


def _triple(values: Sequence[int], what: str) -> tuple[int, int, int]:
    values = tuple(int(v) for v in values)
    if len(values) != 3:
        raise ValueError(f"{what} needs 3 values (z, y, x), got {len(values)}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class BBox:
    """A half-open box ``[start, stop)`` in (z, y, x) voxel coordinates."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    def __post_init__(self):
        object.__setattr__(self, "start", _triple(self.start, "start"))
        object.__setattr__(self, "stop", _triple(self.stop, "stop"))

    @classmethod
    def from_shape(cls, shape: Sequence[int]) -> "BBox":
        return cls((0, 0, 0), _triple(shape, "shape"))

    @classmethod
    def around(cls, center: Sequence[int], size: Sequence[int]) -> "BBox":
        """The box of ``size`` centred on ``center`` (not clipped)."""
        center, size = _triple(center, "center"), _triple(size, "size")
        start = tuple(c - s // 2 for c, s in zip(center, size))
        return cls(start, tuple(a + s for a, s in zip(start, size)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(max(0, b - a) for a, b in zip(self.start, self.stop))

    @property
    def size(self) -> int:
        z, y, x = self.shape
        return z * y * x

    @property
    def empty(self) -> bool:
        return self.size == 0

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop))

    def intersect(self, other: "BBox") -> "BBox":
        start = tuple(max(a, b) for a, b in zip(self.start, other.start))
        stop = tuple(min(a, b) for a, b in zip(self.stop, other.stop))
        stop = tuple(max(a, b) for a, b in zip(start, stop))
        return BBox(start, stop)

    def contains(self, point: Sequence[int]) -> bool:
        return all(a <= p < b for a, p, b in zip(self.start, point, self.stop))

    def expand(self, margin: int | Sequence[int]) -> "BBox":
        m = (margin,) * 3 if isinstance(margin, int) else _triple(margin, "margin")
        return BBox(tuple(a - d for a, d in zip(self.start, m)), tuple(b + d for b, d in zip(self.stop, m)))

    def clip(self, shape: Sequence[int]) -> "BBox":
        return self.intersect(BBox.from_shape(shape))

    def shift(self, offset: Sequence[int]) -> "BBox":
        o = _triple(offset, "offset")
        return BBox(tuple(a + d for a, d in zip(self.start, o)), tuple(b + d for b, d in zip(self.stop, o)))

    def relative_to(self, outer: "BBox") -> tuple[slice, slice, slice]:
        """Slices that address this box inside an array that holds ``outer``."""
        return tuple(slice(a - o, b - o) for a, b, o in zip(self.start, self.stop, outer.start))

    def expand_to_chunks(self, chunks: Sequence[int]) -> "BBox":
        c = _triple(chunks, "chunks")
        return BBox(tuple(a // k * k for a, k in zip(self.start, c)),
                    tuple(-(-b // k) * k for b, k in zip(self.stop, c)))

    def tiles(self, chunks: Sequence[int]) -> Iterator["BBox"]:
        """The chunk-aligned tiles of ``chunks`` that cover this box, each clipped to it."""
        c = _triple(chunks, "chunks")
        ranges = [range(a // k * k, b, k) for a, b, k in zip(self.start, self.stop, c)]
        for corner in itertools.product(*ranges):
            yield BBox(corner, tuple(p + k for p, k in zip(corner, c))).intersect(self)
